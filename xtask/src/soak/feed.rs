//! The soak's publisher: numbered events at a fixed rate, through the HTTP batch API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::wire::Publisher;

/// Data after each event's number, so that events have a realistic size (~80 bytes on
/// the wire with their id).
pub(super) const PADDING: &str = "soak-soak-soak-soak-soak-soak-soak";

/// How often a batch is published.
const TICK: Duration = Duration::from_millis(10);

/// The most events in one batch (when publishing has fallen behind, it catches up in
/// batches of this size).
const MAX_BATCH: u64 = 1_000;

/// Numbered events at a fixed rate to one namespace.
pub(super) struct Feed {
    pub(super) addr: SocketAddr,
    pub(super) namespace: &'static str,
    /// Events per second.
    pub(super) rate: u64,
}

/// What a feed published.
#[derive(Debug, Clone, Copy)]
pub(super) struct Published {
    /// Events `0..events` were published.
    pub(super) events: u64,
    pub(super) seconds: f64,
}

impl Feed {
    /// Publishes events `0, 1, …` at the feed's rate until `duration` has passed or
    /// `stop` turns true, whichever comes first. The rate is kept over the whole run: a
    /// late tick publishes what is due.
    pub(super) async fn run(
        &self,
        duration: Option<Duration>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Published, String> {
        let mut publisher = Publisher::connect(self.addr).await?;
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let start = Instant::now();
        let mut published = 0u64;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            let elapsed = start.elapsed();
            if duration.is_some_and(|d| elapsed >= d) {
                break;
            }
            let due = (elapsed.as_secs_f64() * self.rate as f64) as u64;
            let count = due.saturating_sub(published).min(MAX_BATCH);
            if count > 0 {
                publisher
                    .publish(self.namespace, published, count, PADDING)
                    .await?;
                published += count;
            }
        }
        Ok(Published {
            events: published,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Publishes `count` events at once (in batches), numbered from 0: fills the server's
/// replay history before memory is measured.
pub(super) async fn fill(addr: SocketAddr, namespace: &str, count: u64) -> Result<(), String> {
    let mut publisher = Publisher::connect(addr).await?;
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(MAX_BATCH);
        publisher.publish(namespace, sent, batch, PADDING).await?;
        sent += batch;
    }
    Ok(())
}
