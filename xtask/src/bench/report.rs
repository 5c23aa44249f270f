//! `report.json`: what one `cargo xtask bench` run found, as written to disk and as the
//! Markdown and the charts read it.
//!
//! Every run of `ssectl bench` appears whole, as the [`BenchReport`] it printed.

use serde::Serialize;
use sse_cli::bench_report::BenchReport;

/// The whole report.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// `"quick"` or `"full"`.
    pub(super) mode: &'static str,
    /// Whether server and client were pinned to cores 0 and 1.
    pub(super) pinned: bool,
    pub(super) cores: usize,
    pub(super) criterion: Vec<CriterionMean>,
    /// One row per subscriber count of the plan.
    pub(super) fanout: Vec<Fanout>,
    /// One run per event rate of the plan, to the same subscribers.
    pub(super) latency: Vec<FirehoseRun>,
    /// One run per subscriber count of the plan, at the same deliveries per second.
    pub(super) latency_spread: Vec<FirehoseRun>,
    pub(super) idle: Idle,
    pub(super) http_publish: Vec<HttpPublish>,
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
