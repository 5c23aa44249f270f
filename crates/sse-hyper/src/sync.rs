//! A mutex that does not poison.
//!
//! Every lock in this crate guards state that stays consistent at every instruction a
//! panic could interrupt: a map insert or remove, a waker swap, a sample pushed onto a
//! ring. None of them leaves a half-made value behind. A panic elsewhere while the lock is
//! held (a bug) must therefore not turn every later lock into a second panic that takes
//! the whole server down, so the poison flag is ignored here, in one place, instead of at
//! every lock site.

use std::sync::MutexGuard;

/// [`std::sync::Mutex`] whose [`lock`](Mutex::lock) ignores poisoning.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Locks, taking the value as it is even if a holder panicked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panic_while_locked_does_not_poison_later_locks() {
        let mutex = Arc::new(Mutex::new(1));
        let holder = Arc::clone(&mutex);
        let panicked = std::thread::spawn(move || {
            let _guard = holder.lock();
            panic!("a holder panics");
        })
        .join();
        assert!(panicked.is_err());
        *mutex.lock() += 1;
        assert_eq!(*mutex.lock(), 2);
    }
}
