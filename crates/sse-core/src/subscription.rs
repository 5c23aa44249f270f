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
//! `capacity` events, or `max_bytes` of encoded events, behind) the subscriber is cut
//! off: its queue is freed, it is removed from the hub, and the reader sees the stream
//! end with [`CloseReason::Lagged`]. A client that reconnects with its last event ID
//! replays what it missed from the history. Counting bytes is one add per push and a
//! reset per take, under the lock the push holds anyway.
//!
//! # Replay
//!
//! A resuming subscription does not copy its replay: it keeps a cursor into the hub's
//! history and reads the next bounded piece under the hub lock each time its reader asks,
//! before anything from the queue (which collects live events meanwhile, bounded as
//! above). What the writer holds besides the queue is therefore one piece or one batch.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;

use crate::history::ReplayCursor;
use crate::hub::HubShared;
use crate::namespace::Namespace;
use crate::sync::Mutex;

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The subscriber fell `queue_capacity` events, or `queue_bytes` of encoded events,
    /// behind and was cut off.
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
    /// The encoded bytes of `events`.
    bytes: usize,
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
    max_bytes: usize,
    state: Mutex<QueueState>,
}

impl SubscriberQueue {
    /// A queue of at most `capacity` events and `max_bytes` of them (an event larger than
    /// `max_bytes` still fits an empty queue: the bound is on falling behind).
    pub(crate) fn new(
        key: u64,
        namespaces: Vec<Namespace>,
        capacity: usize,
        max_bytes: usize,
    ) -> SubscriberQueue {
        SubscriberQueue {
            key,
            namespaces,
            capacity,
            max_bytes,
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
            let over_bytes =
                state.bytes > 0 && state.bytes.saturating_add(event.len()) > self.max_bytes;
            if state.events.len() >= self.capacity || over_bytes {
                state.closed = Some(CloseReason::Lagged);
                state.events = Vec::new();
                state.bytes = 0;
                (Pushed::Overflowed, state.waker.take())
            } else {
                state.bytes += event.len();
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

/// Tells whether a [`Subscription`] has ended without reading it (for example to give up
/// a write that waits on its client once it was cut off). Holds the subscription weakly:
/// it keeps nothing alive.
#[derive(Debug, Clone)]
pub struct SubscriptionWatch {
    queue: Weak<SubscriberQueue>,
}

impl SubscriptionWatch {
    /// Ready with the reason once the subscription has ended, or with `None` once it was
    /// dropped; registers `cx` to be woken otherwise. The subscription keeps one waker:
    /// poll this only from the task that reads the subscription, or its reader will miss
    /// wake-ups.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Option<CloseReason>> {
        match self.queue.upgrade() {
            Some(queue) => queue.poll_closed(cx).map(Some),
            None => Poll::Ready(None),
        }
    }

    /// Whether the subscription was dropped.
    pub fn is_dropped(&self) -> bool {
        self.queue.strong_count() == 0
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
    /// Events handed over whole (a gap notice, a cluster's replay), then events taken
    /// from the queue but not yet yielded.
    ready: VecDeque<Bytes>,
    /// The rest of the replay from the hub's history, read piece by piece after `ready`
    /// and before the queue.
    replay: Option<ReplayCursor>,
}

impl Subscription {
    pub(crate) fn new(
        queue: Arc<SubscriberQueue>,
        hub: Arc<HubShared>,
        ready: Vec<Bytes>,
        replay: Option<ReplayCursor>,
    ) -> Subscription {
        Subscription {
            queue,
            hub,
            ready: ready.into(),
            replay: replay.filter(|cursor| !cursor.is_done()),
        }
    }

    /// Appends the next piece of the replay to `out`, if any is left; reads on while
    /// pieces come out empty (no entry of them matched) until one does or the replay is
    /// over. Gives whether the replay is over.
    fn read_replay(&mut self, out: &mut Vec<Bytes>) -> bool {
        let before = out.len();
        while let Some(cursor) = &mut self.replay {
            self.hub.read_replay(cursor, &self.queue.namespaces, out);
            if cursor.is_done() {
                self.replay = None;
            }
            if out.len() > before {
                break;
            }
        }
        self.replay.is_none()
    }

    /// Ready with the reason once the subscription has ended (cut off, or the hub
    /// closed), whatever it still has to yield; registers `cx` to be woken otherwise. A
    /// writer stuck on a socket polls this to give up on a subscriber that was cut off.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.queue.poll_closed(cx)
    }

    /// A handle that tells whether this subscription ended, without reading it.
    pub fn watch(&self) -> SubscriptionWatch {
        SubscriptionWatch {
            queue: Arc::downgrade(&self.queue),
        }
    }
}

impl SubscriberQueue {
    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let mut state = self.state.lock();
        if let Some(reason) = state.closed {
            return Poll::Ready(reason);
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
}

impl Subscription {
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
    ///
    /// A replay comes in pieces of bounded size, one per call; the events queued
    /// meanwhile follow the last piece.
    pub fn poll_recv_many(&mut self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<usize> {
        let before = out.len();
        out.extend(self.ready.drain(..));
        if !self.read_replay(out) {
            return Poll::Ready(out.len() - before);
        }
        let mut state = self.queue.state.lock();
        state.bytes = 0;
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
        if !self.read_replay(out) {
            return Some(out.len() - before);
        }
        let mut state = self.queue.state.lock();
        state.bytes = 0;
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
            .field("replaying", &self.replay.is_some())
            .field("close_reason", &self.close_reason())
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.queue);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use futures::StreamExt;

    use super::*;
    use crate::{Event, Hub};

    /// A waker that counts its wake-ups, so a test sees whether one happened without
    /// threads or timing.
    #[derive(Default)]
    struct WakeCounter(AtomicUsize);

    impl WakeCounter {
        fn new() -> (Arc<WakeCounter>, Waker) {
            let counter = Arc::new(WakeCounter::default());
            (Arc::clone(&counter), Waker::from(counter))
        }

        fn wakes(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Wake for WakeCounter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ns(text: &str) -> Namespace {
        Namespace::parse(text).unwrap()
    }

    fn queue(capacity: usize) -> SubscriberQueue {
        SubscriberQueue::new(0, vec![Namespace::root()], capacity, usize::MAX)
    }

    fn event(data: &str) -> Bytes {
        Bytes::from(format!("data: {data}\n\n"))
    }

    fn publish(hub: &Hub, namespace: &str, data: &str) {
        hub.publish(&ns(namespace), Event::new(data)).unwrap();
    }

    /// The `data` of each encoded event (each one line of data).
    fn data(events: &[Bytes]) -> Vec<&str> {
        events
            .iter()
            .map(|bytes| {
                let text = std::str::from_utf8(bytes).unwrap();
                let (_, data) = text.split_once("data: ").unwrap();
                data.trim_end()
            })
            .collect()
    }

    fn noop_context() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn a_queue_holds_up_to_its_capacity() {
        let queue = queue(3);
        for i in 0..3 {
            assert_eq!(queue.push(&event(&i.to_string())), Pushed::Queued);
        }
        let state = queue.state.lock();
        assert_eq!(data(&state.events), ["0", "1", "2"]);
        assert_eq!(state.closed, None);
    }

    #[test]
    fn a_push_into_a_full_queue_cuts_the_subscriber_off_as_lagged_and_frees_the_queue() {
        let queue = queue(2);
        queue.push(&event("0"));
        queue.push(&event("1"));
        assert_eq!(queue.push(&event("2")), Pushed::Overflowed);
        let state = queue.state.lock();
        assert_eq!(state.closed, Some(CloseReason::Lagged));
        assert!(state.events.is_empty());
        assert_eq!(state.events.capacity(), 0, "the queued events are freed");
    }

    #[test]
    fn a_queue_past_its_bytes_cuts_the_subscriber_off_as_lagged() {
        let queue = SubscriberQueue::new(0, vec![Namespace::root()], 100, 20);
        assert_eq!(queue.push(&event("0123")), Pushed::Queued);
        assert_eq!(queue.push(&event("4")), Pushed::Overflowed, "12 + 9 > 20");
        let state = queue.state.lock();
        assert_eq!(state.closed, Some(CloseReason::Lagged));
        assert_eq!((state.events.capacity(), state.bytes), (0, 0));
    }

    #[test]
    fn taking_the_queue_frees_its_bytes_and_an_empty_queue_takes_any_event() {
        let hub = Hub::builder().queue_bytes(20).build();
        let sub = hub.subscribe(&[ns("/a")]);
        publish(&hub, "/a", "a long event, longer than the bound");
        publish(&hub, "/a", "x");
        assert_eq!(sub.close_reason(), Some(CloseReason::Lagged));
        let mut sub = hub.subscribe(&[ns("/a")]);
        for i in 0..10 {
            publish(&hub, "/a", &i.to_string());
            assert_eq!(sub.try_recv_many(&mut Vec::new()), Some(1));
        }
        assert_eq!(sub.close_reason(), None, "read as it goes, it never lags");
    }

    #[test]
    fn a_cut_off_queue_refuses_later_pushes() {
        let queue = queue(1);
        queue.push(&event("0"));
        queue.push(&event("1"));
        assert_eq!(queue.push(&event("2")), Pushed::Closed);
        assert!(queue.state.lock().events.is_empty());
    }

    #[test]
    fn the_first_close_reason_wins() {
        let queue = queue(1);
        queue.close(CloseReason::HubClosed);
        queue.close(CloseReason::Lagged);
        assert_eq!(queue.push(&event("0")), Pushed::Closed);
        assert_eq!(queue.state.lock().closed, Some(CloseReason::HubClosed));
    }

    #[test]
    fn a_cut_off_reader_gets_none_of_its_queued_events_only_the_end() {
        let hub = Hub::builder().queue_capacity(2).build();
        let mut sub = hub.subscribe(&[ns("/a")]);
        for i in 0..3 {
            publish(&hub, "/a", &i.to_string());
        }
        let mut out = Vec::new();
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut out),
            Poll::Ready(0)
        );
        assert!(out.is_empty());
        assert_eq!(sub.close_reason(), Some(CloseReason::Lagged));
        assert_eq!(sub.try_recv_many(&mut out), None);
        assert_eq!(sub.poll_next_unpin(&mut noop_context()), Poll::Ready(None));
        let stats = hub.stats();
        assert_eq!((stats.lagged_cutoffs, stats.subscribers), (1, 0));
    }

    #[test]
    fn a_cut_off_reader_still_reads_its_replay_before_the_end() {
        let hub = Hub::builder().queue_capacity(1).build();
        let first = hub.publish(&ns("/a"), Event::new("0")).unwrap();
        publish(&hub, "/a", "1");
        let mut sub = hub.subscribe_after(&[ns("/a")], &first.id);
        publish(&hub, "/a", "2");
        publish(&hub, "/a", "3");
        assert_eq!(sub.close_reason(), Some(CloseReason::Lagged));
        let mut out = Vec::new();
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut out),
            Poll::Ready(1)
        );
        assert_eq!(data(&out), ["1"]);
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut Vec::new()),
            Poll::Ready(0)
        );
    }

    #[test]
    fn poll_recv_many_takes_the_replay_and_everything_queued_in_one_call() {
        let hub = Hub::new();
        let first = hub.publish(&ns("/a"), Event::new("0")).unwrap();
        publish(&hub, "/a", "1");
        let mut sub = hub.subscribe_after(&[ns("/a")], &first.id);
        for i in 2..5 {
            publish(&hub, "/a", &i.to_string());
        }
        let mut out = Vec::new();
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut out),
            Poll::Ready(4)
        );
        assert_eq!(data(&out), ["1", "2", "3", "4"]);
        assert!(sub
            .poll_recv_many(&mut noop_context(), &mut Vec::new())
            .is_pending());
    }

    #[test]
    fn poll_recv_many_hands_its_empty_buffer_to_the_queue_so_reading_does_not_allocate() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&[ns("/a")]);
        publish(&hub, "/a", "0");
        let mut out = Vec::with_capacity(16);
        let spare = out.as_ptr();
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut out),
            Poll::Ready(1)
        );
        assert_eq!(sub.queue.state.lock().events.as_ptr(), spare);
    }

    #[test]
    fn poll_recv_many_returns_what_was_queued_before_a_close_then_the_end() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&[ns("/a")]);
        publish(&hub, "/a", "0");
        publish(&hub, "/a", "1");
        hub.close();
        let mut out = Vec::new();
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut out),
            Poll::Ready(2)
        );
        assert_eq!(data(&out), ["0", "1"]);
        assert_eq!(
            sub.poll_recv_many(&mut noop_context(), &mut Vec::new()),
            Poll::Ready(0)
        );
        assert_eq!(sub.close_reason(), Some(CloseReason::HubClosed));
    }

    #[test]
    fn a_push_after_a_pending_poll_wakes_the_reader_exactly_once() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&[ns("/a")]);
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert!(sub.poll_recv_many(&mut cx, &mut Vec::new()).is_pending());
        assert_eq!(counter.wakes(), 0);

        publish(&hub, "/a", "0");
        assert_eq!(counter.wakes(), 1);
        publish(&hub, "/a", "1");
        assert_eq!(counter.wakes(), 1, "one wake-up per registration");
        let mut out = Vec::new();
        assert_eq!(sub.poll_recv_many(&mut cx, &mut out), Poll::Ready(2));
    }

    #[test]
    fn an_event_pushed_before_the_poll_is_returned_at_once_without_a_wake_up() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&[ns("/a")]);
        publish(&hub, "/a", "0");
        let (counter, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(sub.poll_recv_many(&mut cx, &mut Vec::new()), Poll::Ready(1));
        publish(&hub, "/a", "1");
        assert_eq!(counter.wakes(), 0, "a Ready poll registers nothing to wake");
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&[ns("/a")]);
        let (old, old_waker) = WakeCounter::new();
        let (new, new_waker) = WakeCounter::new();
        let mut out = Vec::new();
        assert!(sub
            .poll_recv_many(&mut Context::from_waker(&old_waker), &mut out)
            .is_pending());
        assert!(sub
            .poll_recv_many(&mut Context::from_waker(&new_waker), &mut out)
            .is_pending());

        publish(&hub, "/a", "0");
        assert_eq!((old.wakes(), new.wakes()), (0, 1));
    }

    #[test]
    fn dropping_a_subscription_unregisters_it_from_the_hub() {
        let hub = Hub::new();
        let both = hub.subscribe(&[ns("/a"), ns("/b")]);
        let _a = hub.subscribe(&[ns("/a")]);
        assert_eq!(hub.stats().subscribers, 2);
        drop(both);
        assert_eq!(hub.stats().subscribers, 1);
        assert_eq!(hub.subscribers_by_namespace(), [(ns("/a"), 1)]);
        assert_eq!(
            hub.publish(&ns("/b"), Event::new("x")).unwrap().subscribers,
            0
        );
    }

    #[test]
    fn dropping_a_subscription_the_hub_already_let_go_of_counts_it_once() {
        let hub = Hub::builder().queue_capacity(1).build();
        let lagging = hub.subscribe(&[ns("/a")]);
        let other = hub.subscribe(&[ns("/b")]);
        publish(&hub, "/a", "0");
        publish(&hub, "/a", "1");
        assert_eq!(hub.stats().subscribers, 1);
        drop(lagging);
        assert_eq!(hub.stats().subscribers, 1);

        hub.close();
        assert_eq!(hub.stats().subscribers, 0);
        drop(other);
        assert_eq!(hub.stats().subscribers, 0);
        assert!(hub.subscribers_by_namespace().is_empty());
    }
}
