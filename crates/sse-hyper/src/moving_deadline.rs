//! A deadline that moves often and is rarely reached, such as the next request head's
//! on a keep-alive connection (each answer moves it). Registering a timer and removing
//! it again for every request cost a publish on the direct path as much as parsing its
//! head; here the timer is armed once, keeps its place while the deadline moves later,
//! and when it fires before the deadline of the moment it is re-armed to it.

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// A deadline whose timer exists only while someone waits for it, and is re-armed only
/// when it fires early.
#[derive(Debug)]
pub(crate) struct MovingDeadline {
    deadline: Instant,
    /// Boxed, so that a connection that no longer waits can free it.
    timer: Option<Pin<Box<Sleep>>>,
}

impl MovingDeadline {
    /// A deadline at `deadline`, its timer armed by the first wait.
    pub(crate) fn new(deadline: Instant) -> MovingDeadline {
        MovingDeadline {
            deadline,
            timer: None,
        }
    }

    /// The deadline of the moment.
    pub(crate) fn at(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline. A move later costs nothing now; a move earlier than the armed
    /// timer re-arms it, so the deadline is never passed unnoticed.
    pub(crate) fn set(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let Some(timer) = &mut self.timer {
            if timer.deadline() > deadline {
                timer.as_mut().reset(deadline);
            }
        }
    }

    /// Frees the timer, for a wait that will not come for long (it is armed again by
    /// the next [`reached`](Self::reached)).
    pub(crate) fn disarm(&mut self) {
        self.timer = None;
    }

    /// Completes once the deadline of the moment has passed.
    pub(crate) async fn reached(&mut self) {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            timer.as_mut().await;
            if Instant::now() >= self.deadline {
                return;
            }
            // Fired for an earlier deadline than the one of the moment.
            timer.as_mut().reset(self.deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Waits for `deadline` for `wait`, which ends first (the timer is armed meanwhile).
    async fn wait_short_of(deadline: &mut MovingDeadline, wait: Duration) {
        tokio::select! {
            () = deadline.reached() => panic!("reached within {wait:?}"),
            () = tokio::time::sleep(wait) => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_is_reached_then_not_before() {
        let start = Instant::now();
        let mut deadline = MovingDeadline::new(start + 10 * SECOND);
        // Armed at 10 s by a wait that ends first (the head arrived).
        wait_short_of(&mut deadline, 4 * SECOND).await;
        deadline.set(start + 14 * SECOND);
        deadline.reached().await;
        assert_eq!(Instant::now(), start + 14 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_earlier_is_reached_at_the_earlier_time() {
        let start = Instant::now();
        let mut deadline = MovingDeadline::new(start + 60 * SECOND);
        wait_short_of(&mut deadline, SECOND).await;
        deadline.set(start + 5 * SECOND);
        deadline.reached().await;
        assert_eq!(Instant::now(), start + 5 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_deadline_is_armed_again_by_the_next_wait() {
        let start = Instant::now();
        let mut deadline = MovingDeadline::new(start + 3 * SECOND);
        wait_short_of(&mut deadline, SECOND).await;
        deadline.disarm();
        assert!(deadline.timer.is_none());
        deadline.set(start + 7 * SECOND);
        deadline.reached().await;
        assert_eq!(Instant::now(), start + 7 * SECOND);
        assert_eq!(deadline.at(), start + 7 * SECOND);
    }
}
