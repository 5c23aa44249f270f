//! `report.json`: what one `cargo xtask bench` run found, as written to disk and as the
//! Markdown and the charts read it.
//!
//! Every run of `ssectl bench` appears whole, as the [`BenchReport`] it printed.

use serde::Serialize;
use sse_cli::bench_report::BenchReport;

use super::broadcaster::BroadcasterTiming;

/// The whole report.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// `"quick"` or `"full"`.
    pub(super) mode: &'static str,
    /// Whether server and client were pinned to cores 0 and 1.
    pub(super) pinned: bool,
    pub(super) cores: usize,
    /// The sections `--only` asked for; absent when every section ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) only: Option<Vec<&'static str>>,
    // A section left out by `--only` (or criterion by `--no-criterion`) is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) criterion: Option<Vec<CriterionMean>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_check: Option<ClientCheck>,
    /// One row per subscriber count of the plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fanout: Option<Vec<Fanout>>,
    /// One run per event rate of the plan, to the same subscribers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) latency: Option<Vec<FirehoseRun>>,
    /// One run per subscriber count of the plan, at the same deliveries per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) latency_spread: Option<Vec<FirehoseRun>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle: Option<Idle>,
    /// Idle streams' memory per protocol, and the connections one GiB holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle_memory: Option<Vec<IdleMemory>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) http_publish: Option<Vec<HttpPublish>>,
    /// Single-event publishing against nginx + nchan, with the HTTP publishing section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) http_publish_nchan: Option<NchanSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cluster: Option<ClusterSection>,
}

/// `ssectl bench` reading the in-harness broadcaster: what the client adds to the
/// latency beyond what the broadcaster's own timing allows.
#[derive(Debug, Serialize)]
pub(super) struct ClientCheck {
    pub(super) connections: u64,
    /// Events per second the broadcaster sent to each connection.
    pub(super) rate: u64,
    /// The goal: bench's p99 at most this much above the broadcaster's p99 round time.
    pub(super) goal_added_p99_ms: f64,
    /// Whether `added_p99_ms` is within the goal.
    pub(super) met: bool,
    /// Bench's p50 minus the broadcaster's p50 round time; `None` without samples.
    pub(super) added_p50_ms: Option<f64>,
    /// Bench's p99 minus the broadcaster's p99 round time; `None` without samples.
    pub(super) added_p99_ms: Option<f64>,
    pub(super) broadcaster: BroadcasterTiming,
    pub(super) bench: BenchReport,
}

/// The mean time of one criterion benchmark.
#[derive(Debug, Serialize)]
pub(super) struct CriterionMean {
    /// Criterion's full id, `group/function/parameter`.
    pub(super) id: String,
    pub(super) mean_ns: f64,
}

/// The firehose publishing to `subscribers` streams read by one `ssectl bench`.
#[derive(Debug, Serialize)]
pub(super) struct FirehoseRun {
    /// Events per second the firehose was asked for; 0 is as fast as the hub accepts.
    pub(super) rate: u64,
    pub(super) subscribers: u64,
    pub(super) bench: BenchReport,
}

/// The fan-out search for one subscriber count.
#[derive(Debug, Serialize)]
pub(super) struct Fanout {
    /// The rate of the best clean run, or the last rate tried when none was clean.
    pub(super) rate: u64,
    pub(super) subscribers: u64,
    /// The best run that kept every subscriber; `None` when every run lost some.
    pub(super) bench: Option<BenchReport>,
    /// Every run of the search, in order.
    pub(super) attempts: Vec<Attempt>,
}

/// One run of the fan-out search.
#[derive(Debug, Serialize)]
pub(super) struct Attempt {
    pub(super) rate: u64,
    pub(super) deliveries_per_second: f64,
    pub(super) disconnects: u64,
}

/// Idle streams held by `ssectl serve`: what they cost the server. The samples come
/// from /proc and are `None` where it cannot be read.
#[derive(Debug, Serialize)]
pub(super) struct Idle {
    /// Streams the client was asked to open.
    pub(super) connections: u64,
    /// Streams the server reported open while its RSS and CPU were sampled.
    pub(super) held: u64,
    pub(super) rss_before_kib: Option<u64>,
    pub(super) rss_during_kib: Option<u64>,
    pub(super) rss_per_connection_kib: Option<f64>,
    pub(super) cpu_percent_of_one_core: Option<f64>,
    /// Server CPU time spent before the client started, start-up included.
    pub(super) cpu_before_seconds: Option<f64>,
    /// The server's keepalive interval.
    pub(super) keepalive: &'static str,
}

/// Idle streams of one protocol held by `ssectl serve` (default keepalive): the server's
/// peak RSS over its RSS before, per stream held.
#[derive(Debug, Serialize)]
pub(super) struct IdleMemory {
    /// `"HTTP/1.1"`, `"HTTP/1.1 over TLS"` or `"HTTP/2"` (one stream per connection).
    pub(super) protocol: &'static str,
    /// Streams the client was asked to open.
    pub(super) connections: u64,
    /// Streams the client held (its report's `connections_held`).
    pub(super) held: u64,
    pub(super) rss_before_kib: Option<u64>,
    /// The highest RSS sampled while the client ran.
    pub(super) rss_peak_kib: Option<u64>,
    pub(super) rss_per_connection_kib: Option<f64>,
    /// 1 GiB over the RSS per connection: how many such streams one GiB of server
    /// memory holds.
    pub(super) connections_per_gib: Option<f64>,
    /// Why the protocol was not measured (no `openssl` to make a certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) skipped: Option<String>,
}

impl IdleMemory {
    /// A protocol that could not be measured, and why.
    pub(super) fn skipped(protocol: &'static str, connections: u64, why: String) -> IdleMemory {
        IdleMemory {
            protocol,
            connections,
            held: 0,
            rss_before_kib: None,
            rss_peak_kib: None,
            rss_per_connection_kib: None,
            connections_per_gib: None,
            skipped: Some(why),
        }
    }
}

/// The connections that `per_connection_kib` of RSS each fit in one GiB.
pub(super) fn connections_per_gib(per_connection_kib: f64) -> Option<f64> {
    (per_connection_kib > 0.0).then(|| 1024.0 * 1024.0 / per_connection_kib)
}

/// One run of `ssectl bench --publish-rate` against `ssectl serve`.
#[derive(Debug, Serialize)]
pub(super) struct HttpPublish {
    pub(super) name: &'static str,
    /// Events per second asked for; `None` for a rate no server takes (back to back).
    pub(super) offered_rate: Option<u64>,
    pub(super) events_per_request: u64,
    pub(super) published_per_second: f64,
    pub(super) bench: BenchReport,
}

/// Single events back to back against `ssectl serve` and nginx + nchan: measured, or
/// skipped and why.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum NchanSection {
    Skipped { reason: String },
    Measured(Box<NchanComparison>),
}

/// The same client publishing one event per request to ours and to nchan, alternating.
#[derive(Debug, Serialize)]
pub(super) struct NchanComparison {
    /// `nginx -v`.
    pub(super) nginx_version: String,
    /// The generated nginx configuration (of the last round; only paths and port vary).
    pub(super) nginx_config: String,
    /// The client's command against nchan (against ours, only `--server` differs).
    pub(super) client_command: String,
    /// The `wrk` command against nchan, when `wrk` is installed and ran too.
    pub(super) wrk_command: Option<String>,
    pub(super) rounds: Vec<NchanRound>,
    /// Medians over the rounds, in published events per second.
    pub(super) ours_median: f64,
    pub(super) nchan_median: f64,
    /// The median over the rounds of ours/nchan (each round's two runs follow each
    /// other, so they share the machine's load); `None` when nchan published nothing.
    pub(super) ratio: Option<f64>,
    /// The same for the `wrk` runs, when there were any.
    pub(super) wrk_ratio: Option<f64>,
    /// The median over the rounds of floor/nchan under `wrk`: the most this client
    /// measured of any server against nchan.
    pub(super) floor_ratio: Option<f64>,
    /// The median over the rounds of nchan's server CPU time per request over ours,
    /// under `wrk`: how many requests ours serves per CPU second for each of nchan's,
    /// whatever limits the client.
    pub(super) cpu_ratio: Option<f64>,
    /// The same for the floor: the most a server that does nothing else gets.
    pub(super) floor_cpu_ratio: Option<f64>,
    /// How long one of the project's client's requests to ours took, answer included,
    /// in microseconds (it sends one at a time: the inverse of `ours_median`); `None`
    /// when it published nothing.
    pub(super) round_trip_us: Option<f64>,
    /// The median over the rounds of our server's CPU time per request under `wrk`:
    /// the part of a round trip that is the server's work.
    pub(super) ours_server_us: Option<f64>,
    pub(super) target_ratio: f64,
    /// Whether `ratio` (the project's own client) reaches `target_ratio`.
    pub(super) met: bool,
}

impl NchanComparison {
    pub(super) fn new(
        nginx_version: String,
        nginx_config: String,
        client_command: String,
        wrk_command: Option<String>,
        rounds: Vec<NchanRound>,
    ) -> NchanComparison {
        let ours_median = median(rounds.iter().map(|r| r.ours_per_second).collect());
        let nchan_median = median(rounds.iter().map(|r| r.nchan_per_second).collect());
        let ratio = median_ratio(
            rounds
                .iter()
                .map(|r| (r.ours_per_second, r.nchan_per_second)),
        );
        let wrk_ratio = median_ratio(rounds.iter().filter_map(|r| {
            Some((
                r.ours_wrk.as_ref()?.per_second,
                r.nchan_wrk.as_ref()?.per_second,
            ))
        }));
        let floor_ratio = median_ratio(rounds.iter().filter_map(|r| {
            Some((
                r.floor_wrk.as_ref()?.per_second,
                r.nchan_wrk.as_ref()?.per_second,
            ))
        }));
        // Requests per CPU second: the inverse of CPU time per request.
        let cpu_ratio = median_ratio(rounds.iter().filter_map(|r| {
            Some((
                r.nchan_wrk.as_ref()?.server_us?,
                r.ours_wrk.as_ref()?.server_us?,
            ))
        }));
        let floor_cpu_ratio = median_ratio(rounds.iter().filter_map(|r| {
            Some((
                r.nchan_wrk.as_ref()?.server_us?,
                r.floor_wrk.as_ref()?.server_us?,
            ))
        }));
        let round_trip_us = (ours_median > 0.0).then(|| 1e6 / ours_median);
        let server_us: Vec<f64> = rounds
            .iter()
            .filter_map(|r| r.ours_wrk.as_ref()?.server_us)
            .collect();
        let ours_server_us = (!server_us.is_empty()).then(|| median(server_us));
        let target_ratio = super::nchan::TARGET_RATIO;
        NchanComparison {
            nginx_version,
            nginx_config,
            client_command,
            wrk_command,
            rounds,
            ours_median,
            nchan_median,
            ratio,
            wrk_ratio,
            floor_ratio,
            cpu_ratio,
            floor_cpu_ratio,
            round_trip_us,
            ours_server_us,
            target_ratio,
            met: ratio.is_some_and(|ratio| ratio >= target_ratio),
        }
    }
}

/// One round: ours, then nchan, each a fresh server; `ssectl bench` first, then `wrk`
/// when it is installed.
#[derive(Debug, Serialize)]
pub(super) struct NchanRound {
    pub(super) ours_per_second: f64,
    pub(super) nchan_per_second: f64,
    /// `wrk -t1 -c32` against each (one event per request); `None` without `wrk`.
    pub(super) ours_wrk: Option<WrkRun>,
    pub(super) nchan_wrk: Option<WrkRun>,
    /// The same `wrk` load on the publishing floor (`publish_floor.rs`).
    pub(super) floor_wrk: Option<WrkRun>,
    pub(super) ours: BenchReport,
    pub(super) nchan: BenchReport,
}

impl NchanRound {
    pub(super) fn new(ours: BenchReport, nchan: BenchReport) -> NchanRound {
        NchanRound {
            ours_per_second: published_per_second(&ours),
            nchan_per_second: published_per_second(&nchan),
            ours_wrk: None,
            nchan_wrk: None,
            floor_wrk: None,
            ours,
            nchan,
        }
    }
}

/// One `wrk` run against one server.
#[derive(Debug, Clone, Serialize)]
pub(super) struct WrkRun {
    /// Requests per second, as wrk reports them.
    pub(super) per_second: f64,
    /// The server's CPU time (user and system, every thread) per request during the
    /// run, in microseconds; `None` when /proc could not tell.
    pub(super) server_us: Option<f64>,
}

/// The median of `ours / nchan` over the pairs where nchan is above 0; `None` for none.
fn median_ratio(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let ratios: Vec<f64> = pairs
        .filter(|(_, nchan)| *nchan > 0.0)
        .map(|(ours, nchan)| ours / nchan)
        .collect();
    (!ratios.is_empty()).then(|| median(ratios))
}

/// Events the client published per second of its measurement window.
pub(super) fn published_per_second(bench: &BenchReport) -> f64 {
    if bench.measured_seconds > 0.0 {
        bench.events_published as f64 / bench.measured_seconds
    } else {
        0.0
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

/// The cluster section: measured against one `redis-server`, or skipped and why.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum ClusterSection {
    Skipped { reason: String },
    Measured(Box<ClusterReport>),
}

/// Cluster mode (`ssectl serve --redis`) against one `redis-server` of the run's own.
#[derive(Debug, Serialize)]
pub(super) struct ClusterReport {
    /// `redis-server --version`.
    pub(super) redis_version: String,
    /// How Redis was started.
    pub(super) redis_command: String,
    /// The core Redis was pinned to, beside the servers; `None` when not pinned.
    pub(super) redis_core: Option<u8>,
    /// One client publishing NDJSON batches back to back through a cluster node.
    pub(super) publish: ClusterRun,
    pub(super) fanout: ClusterFanout,
    pub(super) latency: ClusterLatency,
}

/// The same subscribers and publishing client against an in-memory node and a
/// cluster node.
#[derive(Debug, Serialize)]
pub(super) struct ClusterFanout {
    /// Events per second published.
    pub(super) rate: u64,
    pub(super) subscribers: u64,
    pub(super) in_memory: ClusterRun,
    pub(super) cluster: ClusterRun,
    /// Cluster deliveries/s over in-memory deliveries/s.
    pub(super) deliveries_ratio: f64,
}

/// Publish-to-receive latency with publisher and subscribers on one in-memory node,
/// and published on node A for subscribers on node B.
#[derive(Debug, Serialize)]
pub(super) struct ClusterLatency {
    /// Events per second published.
    pub(super) rate: u64,
    pub(super) subscribers: u64,
    pub(super) one_node: ClusterRun,
    pub(super) cross_node: ClusterRun,
}

/// One `ssectl bench` run of the cluster section, with what the servers and Redis spent
/// over it (the client's whole run, connecting and draining included).
#[derive(Debug, Serialize)]
pub(super) struct ClusterRun {
    /// The client's command, as run (binary paths shortened to their names).
    pub(super) client_command: String,
    /// Every server's command, in the order they started.
    pub(super) server_commands: Vec<String>,
    /// Events accepted per second of the measurement window.
    pub(super) published_per_second: f64,
    /// CPU time of the server processes (user + system, /proc), `None` where unreadable.
    pub(super) servers_cpu_seconds: Option<f64>,
    /// `servers_cpu_seconds` per event received by the client, in µs.
    pub(super) servers_cpu_us_per_delivery: Option<f64>,
    /// CPU time of Redis (`INFO cpu`: user + system); `None` without Redis.
    pub(super) redis_cpu_seconds: Option<f64>,
    /// `redis_cpu_seconds` per event published, in µs.
    pub(super) redis_cpu_us_per_event: Option<f64>,
    pub(super) bench: BenchReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
