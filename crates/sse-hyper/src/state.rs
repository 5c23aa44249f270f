//! What one service and its server share: the hub, the configuration, the stream
//! registry, the draining flag, the request counters and the rate samples, and the one
//! background task that keeps them (keepalive sweeps; every second, rate samples and
//! the end of streams whose token expired).
//!
//! Fields are private: routes read through methods, so that what the state promises (a
//! drain is final; the maintenance task runs once, and ends with the last reference) is
//! kept in this file.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sse_core::{encode_comment, encode_preamble, Hub};

use crate::config::Config;
use crate::rates::{RatePoint, RateWindow, Rates};
use crate::streams::Streams;
use crate::sync::Mutex;

/// The state behind every clone of one [`SseService`](crate::SseService).
#[derive(Debug)]
pub(crate) struct State {
    hub: Hub,
    config: Config,
    streams: Arc<Streams>,
    started_at: SystemTime,
    started: Instant,
    draining: AtomicBool,
    rates: Mutex<RateWindow>,
    publish_requests: AtomicU64,
    rejected_requests: AtomicU64,
    preamble: Bytes,
    keepalive: Bytes,
    maintenance: Once,
}

/// Request counters since start, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestCounts {
    pub(crate) publish_requests: u64,
    pub(crate) rejected_requests: u64,
}

impl State {
    pub(crate) fn new(hub: Hub, config: Config) -> State {
        // Saturates rather than fails: no retry needs more than u64 milliseconds.
        let retry_ms = config
            .retry
            .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
        State {
            hub,
            preamble: encode_preamble("ok", retry_ms),
            keepalive: encode_comment("keepalive"),
            config,
            streams: Arc::new(Streams::default()),
            started_at: SystemTime::now(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            rates: Mutex::new(RateWindow::default()),
            publish_requests: AtomicU64::new(0),
            rejected_requests: AtomicU64::new(0),
            maintenance: Once::new(),
        }
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The cluster this server is a node of, if any.
    #[cfg(feature = "redis")]
    pub(crate) fn cluster(&self) -> Option<&sse_redis::Cluster> {
        self.config.cluster.as_ref()
    }

    /// Whether the node is cut off from its cluster's Redis (always `false` alone).
    pub(crate) fn is_degraded(&self) -> bool {
        #[cfg(feature = "redis")]
        if let Some(cluster) = self.cluster() {
            return !cluster.is_connected();
        }
        false
    }

    pub(crate) fn streams(&self) -> &Arc<Streams> {
        &self.streams
    }

    /// What every stream writes first: a comment, and `retry:` when configured.
    pub(crate) fn preamble(&self) -> &Bytes {
        &self.preamble
    }

    /// The comment an idle stream writes when the keepalive sweep marks it.
    pub(crate) fn keepalive_comment(&self) -> &Bytes {
        &self.keepalive
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining, for good: health checks fail, new streams and publishes are
    /// refused, and every open stream ends cleanly.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.streams.end_all();
    }

    pub(crate) fn count_publish_request(&self) {
        self.publish_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rejected_request(&self) {
        self.rejected_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            publish_requests: self.publish_requests.load(Ordering::Relaxed),
            rejected_requests: self.rejected_requests.load(Ordering::Relaxed),
        }
    }

    /// When the state was made, by the wall clock.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Publish and delivery rates over the last few seconds.
    pub(crate) fn rates(&self) -> Rates {
        self.rates.lock().current()
    }

    /// The rate of each of the last minutes' seconds, oldest first.
    pub(crate) fn rate_series(&self) -> Vec<RatePoint> {
        self.rates.lock().series()
    }

    /// Starts the maintenance task on first use. Outside a tokio runtime there is none:
    /// hyper on tokio always has one, and without it there are no streams to keep alive.
    pub(crate) fn ensure_maintenance(self: &Arc<Self>) {
        self.maintenance.call_once(|| {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(maintenance(Arc::downgrade(self)));
            }
        });
    }

    fn sample_rates(&self) {
        let stats = self.hub.stats();
        let mut rates = self.rates.lock();
        rates.record(Instant::now(), SystemTime::now(), &stats);
        #[cfg(feature = "redis")]
        if let Some(cluster) = self.cluster() {
            let current = rates.current();
            cluster.report(sse_redis::NodeReport {
                connections: self.streams.open_count() as u64,
                subscribers: stats.subscribers,
                publish_per_second: current.publish_per_second,
                deliveries_per_second: current.deliveries_per_second,
            });
        }
    }
}

/// The background work of one state: keepalive sweeps, and a rate sample every second.
/// Holds only a weak reference, so it ends once the last service clone is dropped.
async fn maintenance(state: Weak<State>) {
    let Some(interval) = state.upgrade().map(|s| s.config.keepalive) else {
        return;
    };
    // The first sweep comes one interval from now: a stream that just opened is not idle.
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                let Some(state) = state.upgrade() else { return };
                state.streams.sweep_keepalives();
            }
            _ = sample.tick() => {
                let Some(state) = state.upgrade() else { return };
                state.sample_rates();
                state.streams.sweep_expired(SystemTime::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_is_final_and_ends_the_registry() {
        let state = State::new(Hub::new(), Config::default());
        assert!(!state.is_draining());
        state.start_draining();
        assert!(state.is_draining());
        assert!(state.streams().is_ending());
    }

    #[tokio::test(start_paused = true)]
    async fn maintenance_samples_rates_and_stops_with_the_state() {
        let state = Arc::new(State::new(Hub::new(), Config::default()));
        state.ensure_maintenance();
        let ns = sse_core::Namespace::parse("/a").unwrap();
        for second in 0..3 {
            state.hub().publish(&ns, sse_core::Event::new("x")).unwrap();
            tokio::time::sleep(Duration::from_millis(1_000 + second)).await;
        }
        assert!(!state.rate_series().is_empty(), "samples were recorded");
        let weak = Arc::downgrade(&state);
        drop(state);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            weak.upgrade().is_none(),
            "the task holds no strong reference"
        );
    }
}
