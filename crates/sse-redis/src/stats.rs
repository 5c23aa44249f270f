//! The broker's counters, read by the server's metrics and status.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

/// A snapshot of one node's traffic with Redis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerStats {
    /// Whether the node is connected to Redis now.
    pub connected: bool,
    /// Events this node published through Redis.
    pub published: u64,
    /// Events this node received from Redis and delivered to its subscribers.
    pub received: u64,
    /// Times the node reconnected to Redis after losing it.
    pub reconnects: u64,
    /// Redis commands that failed or timed out.
    pub errors: u64,
    /// Times the node found events missing from the shared history after an outage.
    pub gaps: u64,
    /// Round trips of publish requests to Redis.
    pub publish_latency: Histogram,
}

/// Counts of observations per latency bucket ([`LATENCY_BUCKETS_MS`], then one for
/// anything slower), with their sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; one more than the bounds.
    pub counts: Vec<u64>,
    /// The sum of all observations, in seconds.
    pub sum_seconds: f64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connected: AtomicBool,
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) gaps: AtomicU64,
    latency_counts: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn observe_publish(&self, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_counts[bucket].fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BrokerStats {
        BrokerStats {
            connected: self.connected.load(Relaxed),
            published: self.published.load(Relaxed),
            received: self.received.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            errors: self.errors.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            publish_latency: Histogram {
                counts: self
                    .latency_counts
                    .iter()
                    .map(|c| c.load(Relaxed))
                    .collect(),
                sum_seconds: self.latency_sum_micros.load(Relaxed) as f64 / 1e6,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_the_first_bucket_that_holds_them() {
        let counters = Counters::default();
        counters.observe_publish(Duration::from_micros(100));
        counters.observe_publish(Duration::from_millis(3));
        counters.observe_publish(Duration::from_secs(60));
        let histogram = counters.snapshot().publish_latency;
        assert_eq!(histogram.counts[0], 1);
        assert_eq!(histogram.counts[4], 1, "3 ms is at most 5 ms");
        assert_eq!(histogram.counts[LATENCY_BUCKETS_MS.len()], 1);
        assert!((histogram.sum_seconds - 60.0031).abs() < 1e-9);
    }
}
