//! A mutex whose lock ignores poisoning, so lock sites read `lock()` and nothing else.
//!
//! # Why ignoring poison is right here
//!
//! A std mutex is poisoned when a thread panics while holding it; the next `lock` then
//! reports an error because the protected value may be half-updated. Our two locks, the
//! hub's routes and history and each subscriber's queue, are never left half-updated by a
//! panic:
//!
//! - every critical section validates before it changes anything (publish encodes, and
//!   may fail, before it records the event), then makes updates that do not panic: a
//!   push, a swap, a map insert or removal, a flag store. The few indexes and sums rely
//!   on the state's own invariants (a route's index, the history's positions), never on
//!   input, and running out of memory aborts rather than unwinds;
//! - the only foreign code run under a lock is a [`Waker`](std::task::Waker): cloned and
//!   dropped under a queue lock, woken under the hub lock during fan-out. If an
//!   executor's waker panics mid-fan-out, the event is recorded in the history and has
//!   reached only some subscribers, and a subscriber just cut off stays registered (closed,
//!   so it takes no more events) until its [`Subscription`](crate::Subscription) is
//!   dropped. Each of those is a state the code already handles, so the next lock holder
//!   can carry on.
//!
//! Refusing every later lock instead would turn one panicking publisher into a hub that
//! panics on every publish, subscribe and drop.

use std::sync::{MutexGuard, PoisonError};

/// [`std::sync::Mutex`] with a `lock` that cannot fail (see the module doc).
#[derive(Debug)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Blocks until the lock is free and returns the guard, poisoned or not.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{self, AssertUnwindSafe};

    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_hands_out_the_value() {
        let mutex = Mutex::new(vec![1]);
        let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut guard = mutex.lock();
            guard.push(2);
            panic!("a panic while holding the lock poisons it");
        }));
        assert!(panicked.is_err());
        assert!(mutex.0.is_poisoned());
        assert_eq!(*mutex.lock(), [1, 2]);
    }
}
