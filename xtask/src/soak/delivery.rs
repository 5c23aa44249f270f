//! The delivery soak: one `ssectl serve`, a feed publishing numbered events at a fixed
//! rate for a bounded time, and many subscribers of three kinds:
//!
//! - healthy (90%): read everything, on one connection;
//! - churning (5%): read a few hundred events, hang up (FIN or RST, alternating), and
//!   resume with `Last-Event-ID`, over and over;
//! - stalled (5%): subscribe with a small receive buffer and never read.
//!
//! The contract checked: healthy and churning subscribers receive every event once and
//! in order (no gap, no duplicate, ids increasing), and the server's memory stays flat
//! (RSS sampled every second). Stalled subscribers may be cut off; how many streams the
//! server still holds for them at the end is reported.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::check::Check;
use super::feed::Feed;
use super::probes::{metric, metrics, rss, streams, wait_for};
use super::subscribers::{read, stall, Phase, ReaderOutcome};
use super::tally::Tally;
use super::wire::address;
use crate::bench::processes::{ServerProcess, Tools};

/// Where the feed publishes: below the namespace the subscribers read.
const FEED_NAMESPACE: &str = "/soak/feed";

/// The replay history, in seconds of publishing: a churning subscriber resumes within
/// moments, so a few seconds is plenty.
const HISTORY_SECONDS: u64 = 5;

/// How long subscribers have to open, and readers to receive the last event after
/// publishing ends.
const SUBSCRIBE_DEADLINE: Duration = Duration::from_secs(60);
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server has to close every stream once the clients are gone.
const SETTLE: Duration = Duration::from_secs(30);
/// The server's `--write-timeout`: shorter than the default, so a stalled stream that the
/// lag cut-off missed is still closed within the soak.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most interruptions whose reason the report keeps.
const KEPT_INTERRUPTIONS: usize = 5;

/// Largest RSS growth accepted, in percent: the last third's median over the first
/// third's, after the warm-up.
const FLAT_PERCENT: u64 = 10;

/// The sizes of a delivery soak.
#[derive(Debug, Clone)]
pub(super) struct DeliveryPlan {
    pub(super) subscribers: u64,
    /// Events per second.
    pub(super) rate: u64,
    pub(super) duration: Duration,
    /// The first part of the run, left out of the memory check (the history and the
    /// stalled subscribers' queues fill up meanwhile).
    pub(super) warmup: Duration,
}

impl DeliveryPlan {
    /// 5% stalled, 5% churning, the rest healthy.
    fn stalled(&self) -> u64 {
        self.subscribers / 20
    }

    fn churning(&self) -> u64 {
        self.subscribers / 20
    }

    fn healthy(&self) -> u64 {
        self.subscribers - self.stalled() - self.churning()
    }
}

/// What a delivery soak measured.
#[derive(Debug, Serialize)]
pub(super) struct DeliveryReport {
    pub(super) healthy: u64,
    pub(super) churning: u64,
    pub(super) stalled: u64,
    pub(super) rate: u64,
    pub(super) duration_seconds: f64,
    pub(super) warmup_seconds: f64,
    pub(super) history: u64,
    pub(super) published: u64,
    pub(super) publish_seconds: f64,
    /// Events received by healthy and churning subscribers per second of publishing.
    pub(super) deliveries_per_second: f64,
    pub(super) healthy_tally: Tally,
    pub(super) churning_tally: Tally,
    /// Events healthy (churning) subscribers lost: skipped, or never received.
    pub(super) healthy_lost: u64,
    pub(super) churning_lost: u64,
    pub(super) churn_reconnects: u64,
    /// Healthy or churning streams that ended or failed before their last event, with
    /// the first few reasons.
    pub(super) interrupted: u64,
    pub(super) interruptions: Vec<String>,
    /// Seconds since publishing started, and the server's RSS then.
    pub(super) rss_samples: Vec<(f64, u64)>,
    pub(super) rss_before_publishing_kib: u64,
    pub(super) rss_start_kib: Option<u64>,
    pub(super) rss_peak_kib: Option<u64>,
    pub(super) rss_end_kib: Option<u64>,
    /// Subscribers the server cut off for lagging (`sse_subscribers_lagged_total`).
    pub(super) lagged_cutoffs: u64,
    /// Streams the server still held once healthy and churning readers had left but
    /// stalled ones were still connected.
    pub(super) stalled_streams_held: u64,
}

/// Runs the soak against a fresh server.
pub(super) async fn delivery(
    tools: &Tools,
    plan: &DeliveryPlan,
) -> Result<(DeliveryReport, Vec<Check>), String> {
    let history = plan.rate * HISTORY_SECONDS;
    let mut command = tools.command(&tools.ssectl, 0);
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    command.args(["--history", &history.to_string()]);
    command.args(["--write-timeout", &format!("{}s", WRITE_TIMEOUT.as_secs())]);
    let server = ServerProcess::start(command)?;
    let addr = address(&server.base)?;
    let pid = server.pid();
    eprintln!(
        "xtask: soak, {} subscribers ({} healthy, {} churning, {} stalled) at {} events/s for {:?}",
        plan.subscribers,
        plan.healthy(),
        plan.churning(),
        plan.stalled(),
        plan.rate,
        plan.duration
    );

    let (phase, watching) = watch::channel(Phase::Publishing);
    let mut stalled = Vec::new();
    for _ in 0..plan.stalled() {
        stalled.push(stall(addr).await?);
    }
    let readers: Vec<JoinHandle<ReaderOutcome>> = (0..plan.healthy() + plan.churning())
        .map(|index| {
            let churning = index >= plan.healthy();
            tokio::spawn(read(addr, churning, index, watching.clone()))
        })
        .collect();
    let (opened, all_open) = wait_for(
        SUBSCRIBE_DEADLINE,
        || streams(addr),
        |s| s.subscribers >= plan.subscribers,
    )
    .await?;
    if !all_open {
        let _ = phase.send(Phase::Abort);
        return Err(format!(
            "only {} of {} subscribers registered within {SUBSCRIBE_DEADLINE:?}",
            opened.subscribers, plan.subscribers
        ));
    }
    let rss_before_publishing_kib = rss(pid)?;

    let (stop_sampling, sampling) = watch::channel(false);
    let sampler = tokio::spawn(sample_rss(pid, sampling));
    let feed = Feed {
        addr,
        namespace: FEED_NAMESPACE,
        rate: plan.rate,
    };
    let (_never_stop, no_stop) = watch::channel(false);
    let published = feed.run(Some(plan.duration), no_stop).await;
    let published = match published {
        Ok(published) => published,
        Err(error) => {
            let _ = phase.send(Phase::Abort);
            return Err(error);
        }
    };
    let _ = phase.send(Phase::Published(published.events));
    let outcomes = collect(readers, &phase).await?;
    let _ = stop_sampling.send(true);
    let rss_samples = sampler
        .await
        .map_err(|e| format!("the RSS sampler failed: {e}"))?;

    // The readers are gone. A stalled client's stream that the server cut off (for lagging,
    // or after the write timeout) must be closed although the client still holds its
    // socket; the rest of the stalled streams are legitimately open.
    let counters = metrics(addr).await?;
    let lagged_cutoffs = metric(&counters, "sse_subscribers_lagged_total")?;
    let write_timeouts = metric(&counters, "sse_write_timeouts_total")?;
    let may_hold = plan
        .stalled()
        .saturating_sub(lagged_cutoffs + write_timeouts);
    let (held, released) = wait_for(SETTLE, || streams(addr), |s| s.open <= may_hold).await?;
    let stalled_streams_held = held.open;
    drop(stalled);
    let (rest, at_rest) = wait_for(
        SETTLE,
        || streams(addr),
        |s| s.open == 0 && s.subscribers == 0,
    )
    .await?;
    drop(server);

    let mut report = DeliveryReport {
        healthy: plan.healthy(),
        churning: plan.churning(),
        stalled: plan.stalled(),
        rate: plan.rate,
        duration_seconds: plan.duration.as_secs_f64(),
        warmup_seconds: plan.warmup.as_secs_f64(),
        history,
        published: published.events,
        publish_seconds: published.seconds,
        deliveries_per_second: 0.0,
        healthy_tally: Tally::default(),
        churning_tally: Tally::default(),
        healthy_lost: 0,
        churning_lost: 0,
        churn_reconnects: 0,
        interrupted: 0,
        interruptions: Vec::new(),
        rss_samples,
        rss_before_publishing_kib,
        rss_start_kib: None,
        rss_peak_kib: None,
        rss_end_kib: None,
        lagged_cutoffs,
        stalled_streams_held,
    };
    add_outcomes(&mut report, &outcomes, plan.healthy());
    let flat = memory(&mut report, plan.warmup.as_secs_f64());
    let mut checks = checks(&report, flat, rest.open, rest.subscribers, at_rest);
    checks.push(Check::new(
        "soak: stalled streams cut off are closed while their clients still hold them",
        released,
        format!(
            "{stalled_streams_held} of {} stalled streams held; {lagged_cutoffs} cut off for lagging, {write_timeouts} write timeouts",
            plan.stalled()
        ),
    ));
    Ok((report, checks))
}

/// Adds up the readers' outcomes, the first `healthy` of them healthy, the rest
/// churning, against the events published.
fn add_outcomes(report: &mut DeliveryReport, outcomes: &[ReaderOutcome], healthy: u64) {
    for (index, outcome) in outcomes.iter().enumerate() {
        let (tally, lost) = if (index as u64) < healthy {
            (&mut report.healthy_tally, &mut report.healthy_lost)
        } else {
            report.churn_reconnects += outcome.reconnects;
            (&mut report.churning_tally, &mut report.churning_lost)
        };
        tally.add(&outcome.tally);
        *lost += outcome.tally.lost(report.published);
        if let Some(reason) = &outcome.interrupted {
            report.interrupted += 1;
            if report.interruptions.len() < KEPT_INTERRUPTIONS {
                report.interruptions.push(reason.clone());
            }
        }
    }
    let received = report.healthy_tally.received + report.churning_tally.received;
    report.deliveries_per_second = received as f64 / report.publish_seconds.max(1e-9);
}

/// Fills in start, peak and end RSS after the warm-up; returns whether memory stayed
/// flat and the two peaks compared.
fn memory(report: &mut DeliveryReport, warmup: f64) -> Flat {
    let measured: Vec<u64> = report
        .rss_samples
        .iter()
        .filter(|(at, _)| *at >= warmup)
        .map(|(_, kib)| *kib)
        .collect();
    report.rss_start_kib = measured.first().copied();
    report.rss_peak_kib = measured.iter().copied().max();
    report.rss_end_kib = measured.last().copied();
    flatness(&measured)
}

/// RSS growth over a run: the median of its last third against the median of its first
/// (medians, so that a moment's burst does not decide; a trend moves them both).
#[derive(Debug, PartialEq)]
pub(super) struct Flat {
    pub(super) first_median: u64,
    pub(super) last_median: u64,
    pub(super) flat: bool,
}

/// Whether the samples stay flat: the last third's median at most [`FLAT_PERCENT`]
/// above the first third's. Fewer than three samples cannot show it.
pub(super) fn flatness(samples: &[u64]) -> Flat {
    let third = samples.len() / 3;
    if third == 0 {
        return Flat {
            first_median: 0,
            last_median: 0,
            flat: false,
        };
    }
    let first_median = median(&samples[..third]);
    let last_median = median(&samples[samples.len() - third..]);
    Flat {
        first_median,
        last_median,
        flat: last_median * 100 <= first_median * (100 + FLAT_PERCENT),
    }
}

/// The middle value (the upper one of an even count); `samples` must not be empty.
fn median(samples: &[u64]) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn checks(
    report: &DeliveryReport,
    flat: Flat,
    open: u64,
    subscribers: u64,
    at_rest: bool,
) -> Vec<Check> {
    let clean = |tally: &Tally, lost: u64| {
        lost == 0 && tally.duplicates == 0 && tally.ids_out_of_order == 0 && tally.foreign == 0
    };
    let describe = |tally: &Tally, lost: u64, count: u64| {
        format!(
            "{} subscribers × {} events: {} received, {lost} lost, {} duplicates, {} ids out of order, {} foreign events",
            count, report.published, tally.received, tally.duplicates, tally.ids_out_of_order, tally.foreign
        )
    };
    vec![
        Check::new(
            "soak: healthy subscribers lose nothing",
            clean(&report.healthy_tally, report.healthy_lost),
            describe(&report.healthy_tally, report.healthy_lost, report.healthy),
        ),
        Check::new(
            "soak: churning subscribers resume with Last-Event-ID and lose nothing",
            clean(&report.churning_tally, report.churning_lost),
            format!(
                "{}; {} reconnections",
                describe(&report.churning_tally, report.churning_lost, report.churning),
                report.churn_reconnects
            ),
        ),
        Check::new(
            "soak: no healthy or churning stream ended early",
            report.interrupted == 0,
            if report.interruptions.is_empty() {
                "none".to_owned()
            } else {
                format!("{}: {}", report.interrupted, report.interruptions.join("; "))
            },
        ),
        Check::new(
            &format!("soak: RSS flat (last third's median within {FLAT_PERCENT}% of the first third's)"),
            flat.flat,
            format!(
                "first third {} KiB, last third {} KiB (medians of {} samples after {:.0} s of warm-up)",
                flat.first_median,
                flat.last_median,
                report
                    .rss_samples
                    .iter()
                    .filter(|(at, _)| *at >= report.warmup_seconds)
                    .count(),
                report.warmup_seconds
            ),
        ),
        Check::new(
            "soak: 0 open streams and 0 subscribers once the clients left",
            at_rest,
            format!("{open} open streams, {subscribers} subscribers"),
        ),
    ]
}

/// Waits for every reader to finish, telling them to stop at the deadline.
async fn collect(
    readers: Vec<JoinHandle<ReaderOutcome>>,
    phase: &watch::Sender<Phase>,
) -> Result<Vec<ReaderOutcome>, String> {
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    let mut outcomes = Vec::with_capacity(readers.len());
    for reader in readers {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut reader = reader;
        let outcome = match tokio::time::timeout(remaining, &mut reader).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let _ = phase.send(Phase::Abort);
                reader.await
            }
        };
        outcomes.push(outcome.map_err(|e| format!("a reader failed: {e}"))?);
    }
    Ok(outcomes)
}

/// Samples the server's RSS once a second until `stop` turns true.
async fn sample_rss(pid: u32, mut stop: watch::Receiver<bool>) -> Vec<(f64, u64)> {
    let start = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return samples,
        }
        if let Ok(kib) = rss(pid) {
            samples.push((start.elapsed().as_secs_f64(), kib));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_memory_is_flat() {
        let samples = [100, 104, 98, 101, 103, 99, 102, 105, 100];
        assert!(flatness(&samples).flat);
    }

    #[test]
    fn growing_memory_is_not_flat() {
        let samples = [100, 105, 110, 115, 120, 125, 130, 135, 140];
        let flat = flatness(&samples);
        assert_eq!((flat.first_median, flat.last_median), (105, 135));
        assert!(!flat.flat);
    }

    #[test]
    fn a_passing_burst_is_not_growth() {
        let samples = [100, 101, 100, 102, 100, 101, 100, 180, 101];
        assert!(flatness(&samples).flat);
    }

    #[test]
    fn too_few_samples_show_nothing() {
        assert!(!flatness(&[100, 100]).flat);
    }
}
