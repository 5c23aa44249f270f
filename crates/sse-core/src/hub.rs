//! The hub: the registry of subscribers, the publish fan-out, and the replay history.
//!
//! # Data structure
//!
//! Subscribers are registered under the exact namespaces they subscribe to, in a map from
//! namespace text to a [`Route`] (a vector of subscriber queues plus an index for O(1)
//! removal). An event published to `M` is delivered to the routes of `M` and of each of
//! its ancestors up to `/`: `depth + 1` map look-ups, then one queue push per matching
//! subscriber. Unrelated subscribers are never visited, and the encoded bytes are shared,
//! never copied or re-encoded per subscriber.
//!
//! A subscription's namespaces are reduced so that none contains another. Two namespaces
//! that both contain `M` lie on `M`'s ancestor chain, so one contains the other; after the
//! reduction an event therefore matches at most one of a subscription's namespaces, and is
//! delivered to it at most once with no per-event bookkeeping.
//!
//! # Locking and ordering
//!
//! One mutex guards the routes and the history. Publish holds it to assign the id, encode,
//! append to the history and push into the matching queues; subscribe holds it to place
//! the replay's cursor and register the queue. Every event is therefore either before the
//! cursor's end (in a new subscriber's replay) or in its queue, never both and never
//! neither, and every subscriber sees events in publish order. The replay itself is read
//! later, a bounded piece per lock. The publisher never waits for a subscriber: a push takes only the
//! subscriber's own queue lock for one `Vec::push`, and a full queue cuts the subscriber
//! off (see [`Subscription`]).
//!
//! # Memory
//!
//! Everything the hub holds is bounded in bytes as well as in counts: the history (at most
//! `history_capacity` events and `history_bytes` encoded bytes), each event
//! (`max_event_bytes` encoded, larger is refused with [`PublishError::TooLarge`]), and each
//! subscriber's queue (`queue_capacity` events and `queue_bytes`; past either it is cut
//! off as lagging). A replay holds a cursor, not a copy.
//!
//! # Ids
//!
//! A client resumes after the last id it saw, so ids are unique among retained events:
//! a publisher-chosen id that the history retains is refused
//! ([`PublishError::DuplicateId`]), and server-assigned ids skip ids in use. A batch
//! ([`Hub::publish_batch`]) is checked whole under the lock before any of it is recorded.
//!
//! # Events ordered elsewhere
//!
//! In a cluster a broker decides the order and the ids, and each node's hub only fans out:
//! [`Hub::deliver`] takes an event that already has its id, with the broker's order key,
//! and records it in the history under that key. A new subscriber that resumes after an id
//! gets its replay from the broker (which retains everything), joined under the lock with
//! the retained events ordered after the broker's answer
//! ([`Hub::subscribe_with_replay`]), so that nothing that reached this node meanwhile is
//! lost or repeated. [`Hub::announce_gap`] tells every subscriber when the broker lost
//! events.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, EventError};
use crate::history::{id_base_from_clock, Gap, History, IdCursor, ReplayCursor};
use crate::namespace::Namespace;
use crate::subscription::{CloseReason, Pushed, SubscriberQueue, Subscription};
use crate::sync::Mutex;

/// The default bound on one subscriber's queue, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// The default number of events kept for replay.
pub const DEFAULT_HISTORY_CAPACITY: usize = 10_000;
/// The default bound on the encoded bytes kept for replay: 64 MiB.
pub const DEFAULT_HISTORY_BYTES: usize = 64 * 1024 * 1024;
/// The default bound on one subscriber's unsent bytes: 4 MiB.
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The default bound on one event's encoded size: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The in-process publish/subscribe hub. Cloning is cheap and every clone is the same hub;
/// it may be used from many threads at once.
///
/// ```
/// use sse_core::{Event, Hub, Namespace};
/// use futures::StreamExt;
///
/// let hub = Hub::new();
/// let mut pets = hub.subscribe(&[Namespace::parse("/pets").unwrap()]);
///
/// let dogs = Namespace::parse("/pets/dogs").unwrap();
/// let published = hub.publish(&dogs, Event::new("Corgi").with_event("new-dog")).unwrap();
/// assert_eq!(published.subscribers, 1);
///
/// let bytes = futures::executor::block_on(pets.next()).unwrap();
/// let expected = format!("id: {}\nevent: new-dog\ndata: Corgi\n\n", published.id);
/// assert_eq!(bytes, expected.as_bytes());
/// ```
#[derive(Clone, Debug)]
pub struct Hub {
    shared: Arc<HubShared>,
}

/// Configuration for a [`Hub`]; start from [`Hub::builder`].
#[derive(Debug, Clone)]
pub struct HubBuilder {
    queue_capacity: usize,
    queue_bytes: usize,
    history_capacity: usize,
    history_bytes: usize,
    max_event_bytes: usize,
    id_base: Option<u64>,
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event's id: the publisher's, or the one the hub assigned.
    pub id: Arc<str>,
    /// How many subscribers the event was queued for.
    pub subscribers: usize,
}

/// A snapshot of the hub's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Subscriptions currently registered.
    pub subscribers: u64,
    /// Events published since the hub started.
    pub events_published: u64,
    /// Events queued for a subscriber, summed over subscribers, since the hub started.
    pub deliveries: u64,
    /// Subscribers cut off because they fell too far behind, since the hub started.
    pub lagged_cutoffs: u64,
}

#[derive(Debug)]
pub(crate) struct HubShared {
    state: Mutex<HubState>,
    queue_capacity: usize,
    queue_bytes: usize,
    max_event_bytes: usize,
    next_subscriber_key: AtomicU64,
    subscribers: AtomicU64,
    events_published: AtomicU64,
    deliveries: AtomicU64,
    lagged_cutoffs: AtomicU64,
}

#[derive(Debug)]
struct HubState {
    routes: HashMap<Namespace, Route>,
    history: History,
    closed: bool,
}

/// The subscribers registered under one exact namespace.
#[derive(Debug, Default)]
struct Route {
    queues: Vec<Arc<SubscriberQueue>>,
    /// Subscriber key → index in `queues`, so removal is O(1) by swap-remove.
    index: HashMap<u64, usize>,
}

impl Route {
    fn insert(&mut self, queue: Arc<SubscriberQueue>) {
        self.index.insert(queue.key, self.queues.len());
        self.queues.push(queue);
    }

    fn remove(&mut self, key: u64) -> bool {
        let Some(at) = self.index.remove(&key) else {
            return false;
        };
        self.queues.swap_remove(at);
        if let Some(moved) = self.queues.get(at) {
            self.index.insert(moved.key, at);
        }
        true
    }
}

impl Default for HubBuilder {
    fn default() -> Self {
        HubBuilder {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            history_capacity: DEFAULT_HISTORY_CAPACITY,
            history_bytes: DEFAULT_HISTORY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            id_base: None,
        }
    }
}

impl HubBuilder {
    /// How many events a subscriber may fall behind before it is cut off (at least 1;
    /// default [`DEFAULT_QUEUE_CAPACITY`]).
    pub fn queue_capacity(mut self, events: usize) -> HubBuilder {
        self.queue_capacity = events.max(1);
        self
    }

    /// How many encoded bytes a subscriber may fall behind before it is cut off (default
    /// [`DEFAULT_QUEUE_BYTES`]). An event larger than this still reaches a subscriber
    /// that is not behind.
    pub fn queue_bytes(mut self, bytes: usize) -> HubBuilder {
        self.queue_bytes = bytes;
        self
    }

    /// How many recent events to keep for replay; 0 disables replay (default
    /// [`DEFAULT_HISTORY_CAPACITY`]).
    pub fn history_capacity(mut self, events: usize) -> HubBuilder {
        self.history_capacity = events;
        self
    }

    /// How many encoded bytes of recent events to keep for replay, at most (default
    /// [`DEFAULT_HISTORY_BYTES`]); the oldest events are dropped first.
    pub fn history_bytes(mut self, bytes: usize) -> HubBuilder {
        self.history_bytes = bytes;
        self
    }

    /// The largest encoded event accepted, in bytes (default [`DEFAULT_MAX_EVENT_BYTES`]):
    /// a larger one is refused with [`PublishError::TooLarge`]. The encoded size is what
    /// goes on the wire, fields and a `data: ` prefix per line included, so data made of
    /// many short lines grows several-fold.
    pub fn max_event_bytes(mut self, bytes: usize) -> HubBuilder {
        self.max_event_bytes = bytes;
        self
    }

    /// The number that server-assigned ids count up from. The default, the current time in
    /// nanoseconds since the UNIX epoch, keeps ids from a restarted hub above those of the
    /// previous one; set it only for reproducible tests.
    pub fn id_base(mut self, base: u64) -> HubBuilder {
        self.id_base = Some(base);
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        let id_base = self.id_base.unwrap_or_else(id_base_from_clock);
        Hub {
            shared: Arc::new(HubShared {
                state: Mutex::new(HubState {
                    routes: HashMap::new(),
                    history: History::new(self.history_capacity, self.history_bytes, id_base),
                    closed: false,
                }),
                queue_capacity: self.queue_capacity,
                queue_bytes: self.queue_bytes,
                max_event_bytes: self.max_event_bytes,
                next_subscriber_key: AtomicU64::new(0),
                subscribers: AtomicU64::new(0),
                events_published: AtomicU64::new(0),
                deliveries: AtomicU64::new(0),
                lagged_cutoffs: AtomicU64::new(0),
            }),
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub with the default queue and history sizes.
    pub fn new() -> Hub {
        HubBuilder::default().build()
    }

    /// Starts configuring a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// Publishes `event` to `namespace`: every subscriber of the namespace or of one of its
    /// ancestors gets it once. Without an id, the hub assigns the next one (skipping ids
    /// in use).
    ///
    /// Never waits for a subscriber.
    ///
    /// # Errors
    ///
    /// Nothing is published and no id is used up when a field is invalid
    /// ([`PublishError::Invalid`], see [`Event::validate`]) or when the publisher's id is
    /// that of an event the history retains ([`PublishError::DuplicateId`]: a client
    /// resuming after that id would skip events without knowing it).
    ///
    /// ```
    /// use sse_core::{Event, Hub, Namespace, PublishError};
    ///
    /// let hub = Hub::new();
    /// let orders = Namespace::parse("/orders").unwrap();
    /// hub.publish(&orders, Event::new("paid").with_id("7")).unwrap();
    /// let chat = Namespace::parse("/chat").unwrap();
    /// let refused = hub.publish(&chat, Event::new("hi").with_id("7")).unwrap_err();
    /// assert!(matches!(refused, PublishError::DuplicateId { index: 0, .. }));
    /// ```
    pub fn publish(&self, namespace: &Namespace, event: Event) -> Result<Published, PublishError> {
        let mut state = self.shared.state.lock();
        let mut ids = state.history.id_cursor();
        let limit = self.shared.max_event_bytes;
        let (id, bytes) = prepare(&state.history, &mut ids, 0, event, limit, |_| false)?;
        state.history.commit_ids(ids);
        state
            .history
            .push(Arc::clone(&id), namespace.clone(), bytes.clone());
        let subscribers = self.shared.fan_out(&mut state, namespace, &bytes);
        drop(state);
        self.shared.count_published(subscribers);
        Ok(Published { id, subscribers })
    }

    /// Publishes `events` in order, as one contiguous run (no other publish lands between
    /// them), or none of them: each as [`publish`](Hub::publish) would.
    ///
    /// # Errors
    ///
    /// As [`publish`](Hub::publish), for the first event refused (its `index` in
    /// `events`); an id that an earlier event of the batch has, chosen or assigned, is a
    /// [`PublishError::DuplicateId`] too. Nothing of the batch is published then.
    ///
    /// ```
    /// use sse_core::{Event, Hub, Namespace, PublishError};
    ///
    /// let hub = Hub::new();
    /// let a = Namespace::parse("/a").unwrap();
    /// let twice = vec![
    ///     (a.clone(), Event::new("1").with_id("x")),
    ///     (a.clone(), Event::new("2").with_id("x")),
    /// ];
    /// let refused = hub.publish_batch(twice).unwrap_err();
    /// assert!(matches!(refused, PublishError::DuplicateId { index: 1, .. }));
    /// assert_eq!(hub.stats().events_published, 0);
    /// ```
    pub fn publish_batch(
        &self,
        events: Vec<(Namespace, Event)>,
    ) -> Result<Vec<Published>, PublishError> {
        // Assigned ids are unique by construction (the cursor skips ids in use); only a
        // batch with publisher-chosen ids can repeat one, so only then are ids tracked.
        let chosen_ids = events.iter().any(|(_, event)| event.id().is_some());
        let mut state = self.shared.state.lock();
        let mut ids = state.history.id_cursor();
        let mut in_batch: HashSet<Arc<str>> = HashSet::new();
        let mut prepared = Vec::with_capacity(events.len());
        let limit = self.shared.max_event_bytes;
        for (index, (namespace, event)) in events.into_iter().enumerate() {
            let (id, bytes) = prepare(&state.history, &mut ids, index, event, limit, |id| {
                in_batch.contains(id)
            })?;
            if chosen_ids {
                in_batch.insert(Arc::clone(&id));
            }
            prepared.push((namespace, id, bytes));
        }
        state.history.commit_ids(ids);
        let mut published = Vec::with_capacity(prepared.len());
        for (namespace, id, bytes) in prepared {
            state
                .history
                .push(Arc::clone(&id), namespace.clone(), bytes.clone());
            let subscribers = self.shared.fan_out(&mut state, &namespace, &bytes);
            published.push(Published { id, subscribers });
        }
        drop(state);
        let deliveries = published.iter().map(|outcome| outcome.subscribers).sum();
        self.shared
            .count_published_many(published.len(), deliveries);
        Ok(published)
    }

    /// Delivers an event that was ordered and given its id elsewhere (by a cluster's
    /// broker): every subscriber of the namespace or of an ancestor gets it once, and the
    /// history keeps it under `order`, a key that grows with the broker's order. An event
    /// without an id is sent without one.
    ///
    /// Never waits for a subscriber. Fails only when a field is invalid, in which case
    /// nothing is delivered or recorded.
    ///
    /// ```
    /// use sse_core::{Event, Hub, Namespace};
    ///
    /// let hub = Hub::new();
    /// let mut pets = hub.subscribe(&[Namespace::parse("/pets").unwrap()]);
    /// let dogs = Namespace::parse("/pets/dogs").unwrap();
    /// hub.deliver(&dogs, Event::new("Corgi").with_id("1700000000000-0"), 1).unwrap();
    /// let mut out = Vec::new();
    /// pets.try_recv_many(&mut out);
    /// assert_eq!(out[0], "id: 1700000000000-0\ndata: Corgi\n\n");
    /// ```
    pub fn deliver(
        &self,
        namespace: &Namespace,
        event: Event,
        order: u128,
    ) -> Result<Published, EventError> {
        let bytes = event.encode()?.into_bytes();
        let id = Arc::<str>::from(event.id().unwrap_or_default());
        let mut state = self.shared.state.lock();
        state
            .history
            .push_ordered(Arc::clone(&id), namespace.clone(), bytes.clone(), order);
        let subscribers = self.shared.fan_out(&mut state, namespace, &bytes);
        drop(state);
        self.shared.count_published(subscribers);
        Ok(Published { id, subscribers })
    }

    /// Subscribes to live events published to any of `namespaces` or below them. An empty
    /// list receives nothing.
    pub fn subscribe(&self, namespaces: &[Namespace]) -> Subscription {
        self.subscribe_inner(namespaces, None)
    }

    /// Subscribes, first replaying the retained events published after the one with id
    /// `last_event_id` that match. When that id is no longer retained (or was never
    /// issued), the subscription starts with an `sse-gap` event (see [`Gap`]) and then
    /// replays everything retained that matches. No event is lost or repeated between the
    /// replay and the live events.
    pub fn subscribe_after(&self, namespaces: &[Namespace], last_event_id: &str) -> Subscription {
        self.subscribe_inner(namespaces, Some(last_event_id))
    }

    /// Subscribes with a replay fetched elsewhere (from a cluster's broker, which answered
    /// up to the event with order key `answered_through`): first `replay`, then the
    /// retained events ordered after `answered_through` that match, then live events, all
    /// joined under the lock so that none is lost or repeated. Without
    /// `answered_through`, only `replay` and then live events.
    ///
    /// # Errors
    ///
    /// [`HistoryTooShort`] when this hub's history no longer reaches back to
    /// `answered_through` (it evicted an event that may have come after it): fetch a newer
    /// replay and try again.
    pub fn subscribe_with_replay(
        &self,
        namespaces: &[Namespace],
        replay: Vec<Bytes>,
        answered_through: Option<u128>,
    ) -> Result<Subscription, HistoryTooShort> {
        self.register(namespaces, |history, subscribed| {
            let mut events = replay;
            if let Some(order) = answered_through {
                events.extend(
                    history
                        .after_order(order, subscribed)
                        .ok_or(HistoryTooShort)?,
                );
            }
            Ok((events, None))
        })
    }

    /// Sends every current subscriber an `sse-gap` event: events may have been lost
    /// before this point (a cluster's broker came back without them).
    pub fn announce_gap(&self, gap: &Gap) {
        let bytes = encode_gap(gap);
        let mut state = self.shared.state.lock();
        let mut told = std::collections::HashSet::new();
        let mut overflowed = Vec::new();
        for queue in state.routes.values().flat_map(|route| &route.queues) {
            if told.insert(queue.key) && queue.push(&bytes) == Pushed::Overflowed {
                overflowed.push(Arc::clone(queue));
            }
        }
        self.shared.cut_off(&mut state, overflowed);
    }

    fn subscribe_inner(
        &self,
        namespaces: &[Namespace],
        last_event_id: Option<&str>,
    ) -> Subscription {
        let subscribed = self.register(namespaces, |history, _| {
            Ok::<_, std::convert::Infallible>(match last_event_id {
                Some(id) => {
                    let (cursor, gap) = history.replay_cursor(id);
                    (
                        gap.as_ref().map(encode_gap).into_iter().collect(),
                        Some(cursor),
                    )
                }
                None => (Vec::new(), None),
            })
        });
        match subscribed {
            Ok(subscription) => subscription,
            Err(never) => match never {},
        }
    }

    /// Registers a subscription whose replay `replay` computes from the history (events
    /// to hand over first, then where to read the history from), under the same lock that
    /// publishing holds, so the replay and the live events meet exactly.
    fn register<E>(
        &self,
        namespaces: &[Namespace],
        replay: impl FnOnce(&History, &[Namespace]) -> Result<(Vec<Bytes>, Option<ReplayCursor>), E>,
    ) -> Result<Subscription, E> {
        let namespaces = Namespace::outermost(namespaces);
        let key = self
            .shared
            .next_subscriber_key
            .fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(SubscriberQueue::new(
            key,
            namespaces,
            self.shared.queue_capacity,
            self.shared.queue_bytes,
        ));
        let mut state = self.shared.state.lock();
        let (ready, cursor) = replay(&state.history, &queue.namespaces)?;
        if state.closed {
            queue.close(CloseReason::HubClosed);
        } else {
            for namespace in &queue.namespaces {
                state
                    .routes
                    .entry(namespace.clone())
                    .or_default()
                    .insert(Arc::clone(&queue));
            }
            self.shared.subscribers.fetch_add(1, Ordering::Relaxed);
        }
        drop(state);
        Ok(Subscription::new(
            queue,
            Arc::clone(&self.shared),
            ready,
            cursor,
        ))
    }

    /// The largest encoded event this hub accepts, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.shared.max_event_bytes
    }

    /// The encoded bytes the history retains now (at most the configured
    /// `history_bytes`).
    pub fn history_bytes(&self) -> usize {
        self.shared.state.lock().history.retained_bytes()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> HubStats {
        let s = &self.shared;
        HubStats {
            subscribers: s.subscribers.load(Ordering::Relaxed),
            events_published: s.events_published.load(Ordering::Relaxed),
            deliveries: s.deliveries.load(Ordering::Relaxed),
            lagged_cutoffs: s.lagged_cutoffs.load(Ordering::Relaxed),
        }
    }

    /// How many subscriptions are registered under each exact namespace, sorted by
    /// namespace.
    pub fn subscribers_by_namespace(&self) -> Vec<(Namespace, usize)> {
        let state = self.shared.state.lock();
        let mut counts: Vec<_> = state
            .routes
            .iter()
            .map(|(namespace, route)| (namespace.clone(), route.queues.len()))
            .collect();
        drop(state);
        counts.sort();
        counts
    }

    /// Ends every subscription with [`CloseReason::HubClosed`]; later subscriptions end at
    /// once (after their replay). Publishing still records history.
    pub fn close(&self) {
        let mut state = self.shared.state.lock();
        state.closed = true;
        let routes = std::mem::take(&mut state.routes);
        drop(state);
        let mut closed = std::collections::HashSet::new();
        for queue in routes.into_values().flat_map(|route| route.queues) {
            if closed.insert(queue.key) {
                queue.close(CloseReason::HubClosed);
                self.shared.subscribers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The id and encoding of the event `index` of a publish, checked against the history
/// and the ids `taken` by earlier events of the same publish; records nothing.
fn prepare(
    history: &History,
    ids: &mut IdCursor,
    index: usize,
    event: Event,
    max_event_bytes: usize,
    taken: impl Fn(&str) -> bool,
) -> Result<(Arc<str>, Bytes), PublishError> {
    let (id, event) = match event.id() {
        Some(id) if history.is_retained(id) || taken(id) => {
            return Err(PublishError::DuplicateId {
                index,
                id: id.to_owned(),
            });
        }
        Some(id) => {
            history.note_chosen_id(ids, id);
            (Arc::<str>::from(id), event)
        }
        None => {
            let id = history.assign_id(ids, index, &taken);
            (Arc::from(id.as_str()), event.with_id(id))
        }
    };
    let bytes = event
        .encode()
        .map_err(|error| PublishError::Invalid { index, error })?
        .into_bytes();
    if bytes.len() > max_event_bytes {
        return Err(PublishError::TooLarge {
            index,
            bytes: bytes.len(),
            limit: max_event_bytes,
        });
    }
    Ok((id, bytes))
}

/// Why [`Hub::publish`] or [`Hub::publish_batch`] refused; nothing was published.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// A field of the event at `index` (0 for a single publish) is not allowed on the
    /// wire.
    Invalid {
        /// The event's position in the batch.
        index: usize,
        /// What is wrong with it.
        error: EventError,
    },
    /// The publisher of the event at `index` chose an id that a retained event has (or an
    /// earlier event of the same batch): ids are unique while retained.
    DuplicateId {
        /// The event's position in the batch.
        index: usize,
        /// The id asked for.
        id: String,
    },
    /// The event at `index`, encoded, is larger than the hub's `max_event_bytes`.
    TooLarge {
        /// The event's position in the batch.
        index: usize,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl PublishError {
    /// The position in the batch of the event refused (0 for a single publish).
    pub fn index(&self) -> usize {
        match self {
            PublishError::Invalid { index, .. }
            | PublishError::DuplicateId { index, .. }
            | PublishError::TooLarge { index, .. } => *index,
        }
    }
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Invalid { error, .. } => {
                write!(f, "field {:?}: {error}", error.field())
            }
            PublishError::DuplicateId { id, .. } => write!(
                f,
                "id {id:?} belongs to an event the history still retains, or to an earlier \
                 event of the batch; a client resuming after it could not tell which"
            ),
            PublishError::TooLarge { bytes, limit, .. } => write!(
                f,
                "the event is {bytes} bytes on the wire (each line of data is sent as its \
                 own 'data: ' line), more than the limit of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Invalid { error, .. } => Some(error),
            PublishError::DuplicateId { .. } | PublishError::TooLarge { .. } => None,
        }
    }
}

/// The hub's history no longer reaches back to the order key a replay was answered
/// through; see [`Hub::subscribe_with_replay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryTooShort;

impl std::fmt::Display for HistoryTooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the history no longer reaches back to where the replay was answered")
    }
}

impl std::error::Error for HistoryTooShort {}

impl HubShared {
    fn count_published_many(&self, events: usize, deliveries: usize) {
        self.events_published
            .fetch_add(events as u64, Ordering::Relaxed);
        self.deliveries
            .fetch_add(deliveries as u64, Ordering::Relaxed);
    }

    fn count_published(&self, subscribers: usize) {
        self.events_published.fetch_add(1, Ordering::Relaxed);
        self.deliveries
            .fetch_add(subscribers as u64, Ordering::Relaxed);
    }

    /// Pushes `bytes` to every subscriber of `namespace` and its ancestors; returns how
    /// many got it. Cuts off and unregisters the ones whose queue overflowed.
    fn fan_out(&self, state: &mut HubState, namespace: &Namespace, bytes: &Bytes) -> usize {
        let mut delivered = 0;
        let mut overflowed = Vec::new();
        for route_name in namespace.self_and_ancestors() {
            let Some(route) = state.routes.get(route_name) else {
                continue;
            };
            for queue in &route.queues {
                match queue.push(bytes) {
                    Pushed::Queued => delivered += 1,
                    Pushed::Overflowed => overflowed.push(Arc::clone(queue)),
                    Pushed::Closed => {}
                }
            }
        }
        self.cut_off(state, overflowed);
        delivered
    }

    /// Unregisters the subscribers whose queue overflowed, counting them as lagged.
    fn cut_off(&self, state: &mut HubState, overflowed: Vec<Arc<SubscriberQueue>>) {
        for queue in overflowed {
            self.lagged_cutoffs.fetch_add(1, Ordering::Relaxed);
            if unregister(state, &queue) {
                self.subscribers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Appends the next piece of a subscriber's replay to `out`, after the `sse-gap`
    /// event when the history evicted what the cursor had yet to read.
    pub(crate) fn read_replay(
        &self,
        cursor: &mut ReplayCursor,
        subscribed: &[Namespace],
        out: &mut Vec<Bytes>,
    ) {
        let before = out.len();
        let state = self.state.lock();
        let gap = state.history.read_replay(cursor, subscribed, out);
        drop(state);
        if let Some(gap) = gap {
            out.insert(before, encode_gap(&gap));
        }
    }

    /// Unregisters a subscription (on drop).
    pub(crate) fn unsubscribe(&self, queue: &SubscriberQueue) {
        let mut state = self.state.lock();
        let removed = unregister(&mut state, queue);
        drop(state);
        if removed {
            self.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Removes a subscriber from the route of each namespace it subscribed to; returns
/// whether it was still registered anywhere.
fn unregister(state: &mut HubState, queue: &SubscriberQueue) -> bool {
    let mut removed = false;
    for namespace in &queue.namespaces {
        let Some(route) = state.routes.get_mut(namespace) else {
            continue;
        };
        removed |= route.remove(queue.key);
        if route.queues.is_empty() {
            state.routes.remove(namespace);
        }
    }
    removed
}

fn encode_gap(gap: &Gap) -> Bytes {
    let event = Event::new(gap.to_json()).with_event(Gap::EVENT_TYPE);
    // The gap event has no id and a fixed, valid type, so encoding cannot fail; fall back
    // to a bare comment rather than panic if that ever changes.
    event
        .encode()
        .map(|e| e.into_bytes())
        .unwrap_or_else(|_| crate::event::encode_comment("sse-gap"))
}
