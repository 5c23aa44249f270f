//! Publish and delivery rates, from one-second samples of the hub's counters.
//!
//! The maintenance task records a sample every second; the window keeps the last
//! [`HISTORY_SECONDS`] of them (a few kilobytes), from which come the current rates (over
//! the last [`CURRENT_RATE_SECONDS`]) and the per-second series the admin page charts.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sse_core::HubStats;

/// How far back the rate series reaches, in one-second samples.
pub(crate) const HISTORY_SECONDS: usize = 300;
/// How many seconds the current rates average over.
pub(crate) const CURRENT_RATE_SECONDS: usize = 10;

/// Recent samples of the hub's counters.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    samples: VecDeque<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    wall: SystemTime,
    stats: HubStats,
}

/// Publish and delivery rates over a span of time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Events published per second.
    pub publish_per_second: f64,
    /// Events queued to subscribers per second.
    pub deliveries_per_second: f64,
    /// The span the rates are measured over, in seconds.
    pub window_seconds: f64,
}

/// The rates of one second of the recent past, as the admin page charts them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    /// The end of the second, in seconds since the UNIX epoch.
    pub at: f64,
    /// Events published per second.
    pub publish_per_second: f64,
    /// Events queued to subscribers per second.
    pub deliveries_per_second: f64,
}

impl RateWindow {
    /// Records the counters as they are at `at` (wall-clock time `wall`).
    pub(crate) fn record(&mut self, at: Instant, wall: SystemTime, stats: &HubStats) {
        if self.samples.len() > HISTORY_SECONDS {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at,
            wall,
            stats: *stats,
        });
    }

    /// The rates over the last [`CURRENT_RATE_SECONDS`] (zero until two samples exist).
    pub(crate) fn current(&self) -> Rates {
        let first = self.samples.len().saturating_sub(CURRENT_RATE_SECONDS + 1);
        match (self.samples.get(first), self.samples.back()) {
            (Some(from), Some(to)) => between(from, to),
            _ => Rates::default(),
        }
    }

    /// The rate of every sampled second, oldest first.
    pub(crate) fn series(&self) -> Vec<RatePoint> {
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .map(|(from, to)| {
                let rates = between(from, to);
                RatePoint {
                    at: to
                        .wall
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    publish_per_second: rates.publish_per_second,
                    deliveries_per_second: rates.deliveries_per_second,
                }
            })
            .collect()
    }
}

fn between(from: &Sample, to: &Sample) -> Rates {
    let seconds = to.at.duration_since(from.at).as_secs_f64();
    if seconds <= 0.0 {
        return Rates::default();
    }
    let per_second = |before: u64, after: u64| after.saturating_sub(before) as f64 / seconds;
    Rates {
        publish_per_second: per_second(from.stats.events_published, to.stats.events_published),
        deliveries_per_second: per_second(from.stats.deliveries, to.stats.deliveries),
        window_seconds: seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stats(published: u64, deliveries: u64) -> HubStats {
        HubStats {
            events_published: published,
            deliveries,
            ..HubStats::default()
        }
    }

    #[test]
    fn current_rates_are_deltas_over_the_last_seconds() {
        let mut window = RateWindow::default();
        let (t0, wall) = (Instant::now(), SystemTime::now());
        window.record(t0, wall, &stats(10, 100));
        window.record(t0 + Duration::from_secs(2), wall, &stats(30, 500));
        let rates = window.current();
        assert_eq!(rates.publish_per_second, 10.0);
        assert_eq!(rates.deliveries_per_second, 200.0);
        assert_eq!(rates.window_seconds, 2.0);
    }

    #[test]
    fn current_rates_forget_what_is_older_than_their_window() {
        let mut window = RateWindow::default();
        let (t0, wall) = (Instant::now(), SystemTime::now());
        // A burst long ago, then a steady 5 events/s.
        window.record(t0, wall, &stats(0, 0));
        window.record(t0 + Duration::from_secs(1), wall, &stats(1_000, 0));
        for second in 2..=20u64 {
            let published = 1_000 + 5 * (second - 1);
            window.record(t0 + Duration::from_secs(second), wall, &stats(published, 0));
        }
        assert_eq!(window.current().publish_per_second, 5.0);
    }

    #[test]
    fn the_series_has_one_point_per_second_and_a_bounded_length() {
        let mut window = RateWindow::default();
        let (t0, wall) = (Instant::now(), SystemTime::now());
        assert!(window.series().is_empty());
        for second in 0..1_000u64 {
            let at = Duration::from_secs(second);
            window.record(t0 + at, wall + at, &stats(second * 3, second * 30));
        }
        let series = window.series();
        assert_eq!(series.len(), HISTORY_SECONDS);
        assert!(series
            .iter()
            .all(|p| p.publish_per_second == 3.0 && p.deliveries_per_second == 30.0));
        assert!(series.windows(2).all(|w| w[1].at - w[0].at == 1.0));
    }
}
