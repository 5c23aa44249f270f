//! The per-subscriber queue and the [`Subscription`] handle that reads it.
//!
//! # The queue
//!
//! Each subscriber owns a bounded queue of encoded events (shared [`Bytes`], never copies)
//! behind its own small mutex. The publisher pushes under that mutex and wakes the reader's
//! [`Waker`] after releasing it; the reader takes *every* queued event in one step by
//! swapping vectors, so a server can write them with one syscall and the steady state
//! allocates nothing.
//!
//! # Slow subscribers
//!
//! The publisher never waits. When a push finds the queue full (the subscriber fell
//! `capacity` events behind) the subscriber is cut off: its queue is freed, it is removed
//! from the hub, and the reader sees the stream end with [`CloseReason::Lagged`]. A client
//! that reconnects with its last event ID replays what it missed from the history.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;

use crate::hub::HubShared;
use crate::namespace::Namespace;
use crate::sync::Mutex;

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The subscriber fell `queue_capacity` events behind and was cut off.
    Lagged,
    /// The hub was closed (for example, the server is shutting down).
    HubClosed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Lagged => {
                f.write_str("the subscriber fell too far behind and was cut off")
            }
            CloseReason::HubClosed => f.write_str("the hub was closed"),
        }
    }
}

/// What a push into a subscriber queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The queue was full: the subscriber is now cut off and must be unregistered.
    Overflowed,
    /// The subscriber was already closed.
    Closed,
}

#[derive(Debug, Default)]
struct QueueState {
    events: Vec<Bytes>,
    waker: Option<Waker>,
    closed: Option<CloseReason>,
}

/// The part of a subscriber that the hub and the [`Subscription`] share.
#[derive(Debug)]
pub(crate) struct SubscriberQueue {
    pub(crate) key: u64,
    /// The subscribed namespaces, reduced so that none contains another.
    pub(crate) namespaces: Vec<Namespace>,
    capacity: usize,
    state: Mutex<QueueState>,
}

impl SubscriberQueue {
    pub(crate) fn new(key: u64, namespaces: Vec<Namespace>, capacity: usize) -> SubscriberQueue {
        SubscriberQueue {
            key,
            namespaces,
            capacity,
            state: Mutex::new(QueueState::default()),
        }
    }

    /// Queues one event without ever blocking on the reader.
    pub(crate) fn push(&self, event: &Bytes) -> Pushed {
        let (pushed, waker) = {
            let mut state = self.state.lock();
            if state.closed.is_some() {
                return Pushed::Closed;
            }
            if state.events.len() >= self.capacity {
                state.closed = Some(CloseReason::Lagged);
                state.events = Vec::new();
                (Pushed::Overflowed, state.waker.take())
            } else {
                state.events.push(event.clone());
                (Pushed::Queued, state.waker.take())
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        pushed
    }

    /// Ends the subscription with `reason`, unless it already ended.
    pub(crate) fn close(&self, reason: CloseReason) {
        let waker = {
            let mut state = self.state.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A live subscription to one or more namespaces: yields the encoded bytes of every
/// matching event (replayed ones first), then ends when it is cut off or the hub closes.
///
/// Read it as a [`Stream`] of [`Bytes`], or take everything queued at once with
/// [`poll_recv_many`](Subscription::poll_recv_many). Dropping it unsubscribes.
pub struct Subscription {
    queue: Arc<SubscriberQueue>,
    hub: Arc<HubShared>,
    /// Replayed events, then events taken from the queue but not yet yielded.
    ready: VecDeque<Bytes>,
}

impl Subscription {
    pub(crate) fn new(
        queue: Arc<SubscriberQueue>,
        hub: Arc<HubShared>,
        replay: Vec<Bytes>,
    ) -> Subscription {
        Subscription {
            queue,
            hub,
            ready: replay.into(),
        }
    }

    /// The namespaces this subscription receives, reduced so that none contains another
    /// (subscribing to `/a` and `/a/b` is subscribing to `/a`).
    pub fn namespaces(&self) -> &[Namespace] {
        &self.queue.namespaces
    }

    /// Why the subscription ended, once it has; `None` while it is live.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.state.lock().closed
    }

    /// Moves every event that is ready into `out` (which should be empty; its capacity is
    /// reused) and returns how many there were. `Ready(0)` means the subscription ended;
    /// see [`close_reason`](Subscription::close_reason).
    pub fn poll_recv_many(&mut self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<usize> {
        let before = out.len();
        out.extend(self.ready.drain(..));
        let mut state = self.queue.state.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut state.events);
        } else {
            out.append(&mut state.events);
        }
        if out.len() > before {
            return Poll::Ready(out.len() - before);
        }
        if state.closed.is_some() {
            return Poll::Ready(0);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Takes every event that is ready without waiting; `None` once the subscription has
    /// ended and nothing is left.
    pub fn try_recv_many(&mut self, out: &mut Vec<Bytes>) -> Option<usize> {
        let before = out.len();
        out.extend(self.ready.drain(..));
        let mut state = self.queue.state.lock();
        out.append(&mut state.events);
        let taken = out.len() - before;
        if taken == 0 && state.closed.is_some() {
            return None;
        }
        Some(taken)
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(event) = self.ready.pop_front() {
            return Poll::Ready(Some(event));
        }
        let mut batch = Vec::new();
        match self.poll_recv_many(cx, &mut batch) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(0) => Poll::Ready(None),
            Poll::Ready(_) => {
                self.ready.extend(batch);
                Poll::Ready(self.ready.pop_front())
            }
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("namespaces", &self.queue.namespaces)
            .field("ready", &self.ready.len())
            .field("close_reason", &self.close_reason())
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.queue);
    }
}
