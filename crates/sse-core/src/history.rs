//! Replay history: the last N published events, kept so a reconnecting client resumes
//! where it left off.
//!
//! # Data structure
//!
//! A ring ([`VecDeque`]) of the last `capacity` events in publish order, each with its id,
//! namespace and the shared encoded bytes (a reference count, not a copy), plus a map from
//! id to *position*. Positions count every event the hub has published, so the ring holds
//! positions `first_position .. first_position + len` with no holes and an event's index in
//! the ring is `position - first_position`. Evicting the oldest event removes its id from
//! the map unless a later event reused that id.
//!
//! Memory is bounded twice: by `capacity` entries and by `max_bytes` of encoded events
//! (their bytes are shared with whatever subscriber queues still hold them). Recording an
//! event evicts the oldest ones until both bounds hold; an event larger than `max_bytes`
//! on its own is not retained at all (a resume across it reports a gap).
//!
//! # Replay
//!
//! Given the id a client last saw, replay yields the retained events *after* it that the
//! subscription matches, in order. When the id is not retained (evicted, from before a
//! restart, or never issued) the client may have missed events: replay says so with a
//! [`Gap`] and yields everything retained that matches.
//!
//! A replay is never copied out whole: a [`ReplayCursor`] remembers the next position to
//! read and the position live delivery starts at, and [`History::read_replay`] hands out
//! the next piece (at most [`REPLAY_PIECE_BYTES`] of events, unless one event alone is
//! larger) each time the subscriber's writer asks. If the history evicted the cursor's
//! next event meanwhile, the piece starts with the [`Gap`] the client must hear about.
//!
//! # Order keys
//!
//! Every entry also carries an *order key*, a number that grows with publish order. For
//! events published to this hub it is the position. For events ordered elsewhere (a
//! cluster's broker, see [`Hub::deliver`](crate::Hub::deliver)) it is that sequencer's
//! key, so that a replay fetched from the sequencer can be joined with what this hub
//! retained: [`History::after_order`] gives the retained events ordered after a key, or
//! says that the history no longer reaches back that far.
//!
//! # Ids are unique while retained
//!
//! A resuming client names the last id it saw, so two retained events with one id would
//! make replay start at the wrong one (after the newer, skipping what followed the older,
//! with no gap reported). The hub therefore refuses a publisher-chosen id that
//! [`History::is_retained`] (see [`PublishError`](crate::PublishError)).
//!
//! # Server-assigned ids
//!
//! An event published without an id gets the decimal number `base + offset`, where
//! `base` is the hub's start time in nanoseconds since the UNIX epoch and `offset` is at
//! least the event's position and above every offset assigned before; an offset whose id
//! is in use (a publisher chose it) is skipped. Ids are therefore unique and increasing
//! within a hub's life, and a restarted hub starts above every id the previous one issued
//! unless that one published more than one event per nanosecond of its life on average
//! (or the clock went backwards between the two).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::namespace::{contains_str, Namespace};

/// One retained event.
#[derive(Debug)]
struct Entry {
    id: Arc<str>,
    namespace: Namespace,
    bytes: Bytes,
    order: u128,
}

/// Replay hands out events in pieces of about this many bytes (a larger event goes alone).
pub(crate) const REPLAY_PIECE_BYTES: usize = 64 * 1024;
/// Entries one replay piece looks at, at most, so the hub lock is held briefly even when
/// few of them match.
const REPLAY_PIECE_SCAN: usize = 1024;

/// Where a subscriber's replay stands: the next position to read, the position live
/// delivery starts at, and the id of the last event replayed (or asked to resume after),
/// for the gap to report if the history evicts what is still to be read.
#[derive(Debug, Clone)]
pub(crate) struct ReplayCursor {
    next: u64,
    end: u64,
    last_id: Arc<str>,
}

impl ReplayCursor {
    /// Whether everything up to where live delivery starts was read.
    pub(crate) fn is_done(&self) -> bool {
        self.next >= self.end
    }
}

/// The bounded replay history. All access happens under the hub's lock.
#[derive(Debug)]
pub(crate) struct History {
    capacity: usize,
    max_bytes: usize,
    /// Encoded bytes of the retained entries.
    bytes: usize,
    entries: VecDeque<Entry>,
    /// Position of `entries[0]` (or of the next event, when empty).
    first_position: u64,
    /// Position the next published event gets.
    next_position: u64,
    /// Each retained id's position. Hashed with foldhash (seeded per process): every
    /// publish inserts and, once the history is full, evicts, and SipHash made this map
    /// a twentieth of a single publish's instructions.
    positions: HashMap<Arc<str>, u64, foldhash::fast::RandomState>,
    id_base: u64,
    /// Every offset below this one was assigned or skipped.
    next_id_offset: u64,
    /// Offsets at or past this one were never the number of a publisher-chosen id, so
    /// an id assigned there cannot be in use: the common case needs no look-up.
    chosen_below: u64,
    /// The order key of the newest event evicted (or not kept, with capacity 0).
    evicted_through: Option<u128>,
}

/// How far server-assigned ids went during one publish, before it is committed.
#[derive(Debug)]
pub(crate) struct IdCursor {
    next_offset: u64,
    chosen_below: u64,
}

/// The requested id was not retained, so events may have been missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The id the client asked to resume after.
    pub last_event_id: String,
    /// The oldest id still retained, if any.
    pub first_retained_id: Option<String>,
}

/// What a subscription replays before live events, read whole (for tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) gap: Option<Gap>,
    pub(crate) events: Vec<Bytes>,
}

impl History {
    pub(crate) fn new(capacity: usize, max_bytes: usize, id_base: u64) -> History {
        History {
            capacity,
            max_bytes,
            bytes: 0,
            entries: VecDeque::with_capacity(capacity.min(64 * 1024)),
            first_position: 0,
            next_position: 0,
            positions: HashMap::default(),
            id_base,
            next_id_offset: 0,
            chosen_below: 0,
            evicted_through: None,
        }
    }

    /// Whether a retained event has `id`: a resume after it would be ambiguous.
    pub(crate) fn is_retained(&self, id: &str) -> bool {
        self.positions.contains_key(id)
    }

    /// Where server-assigned ids continue; hand it to [`assign_id`](History::assign_id)
    /// for each event of one publish, then to [`commit_ids`](History::commit_ids) once
    /// the publish is accepted.
    pub(crate) fn id_cursor(&self) -> IdCursor {
        IdCursor {
            next_offset: self.next_id_offset,
            chosen_below: self.chosen_below,
        }
    }

    /// Notes a publisher-chosen id: if it is the number an assigned id could take, ids
    /// assigned up to there must be looked up before use. Every chosen id must be noted
    /// (the hub's `prepare` does) before its event is recorded.
    pub(crate) fn note_chosen_id(&self, cursor: &mut IdCursor, id: &str) {
        if let Some(offset) = id
            .parse::<u64>()
            .ok()
            .and_then(|number| number.checked_sub(self.id_base))
        {
            cursor.chosen_below = cursor.chosen_below.max(offset.saturating_add(1));
        }
    }

    /// The id for the event `index` events after the next one to be recorded, whose
    /// publisher gave none: `base + offset` with the offset at least the event's position
    /// and past the cursor, skipping ids retained or `taken` (by earlier events of the
    /// same publish). The loop ends: the ids in use are finitely many.
    pub(crate) fn assign_id(
        &self,
        cursor: &mut IdCursor,
        index: usize,
        taken: impl Fn(&str) -> bool,
    ) -> String {
        let position = self.next_position + index as u64;
        let mut offset = cursor.next_offset.max(position);
        let mut digits = itoa::Buffer::new();
        loop {
            let id = digits.format(self.id_base.wrapping_add(offset));
            let maybe_chosen = offset < cursor.chosen_below;
            offset += 1;
            if !(taken(id) || maybe_chosen && self.is_retained(id)) {
                cursor.next_offset = offset;
                return id.to_owned();
            }
        }
    }

    /// Records that the ids `cursor` went past are used.
    pub(crate) fn commit_ids(&mut self, cursor: IdCursor) {
        self.next_id_offset = self.next_id_offset.max(cursor.next_offset);
        self.chosen_below = self.chosen_below.max(cursor.chosen_below);
    }

    /// Records a published event under its position as order key (or, with capacity 0,
    /// only counts it).
    pub(crate) fn push(&mut self, id: Arc<str>, namespace: Namespace, bytes: Bytes) {
        let order = u128::from(self.next_position);
        self.push_ordered(id, namespace, bytes, order);
    }

    /// Records an event ordered elsewhere, under that order key.
    pub(crate) fn push_ordered(
        &mut self,
        id: Arc<str>,
        namespace: Namespace,
        bytes: Bytes,
        order: u128,
    ) {
        let position = self.next_position;
        self.next_position += 1;
        if self.capacity == 0 {
            self.first_position = self.next_position;
            self.evicted_through = Some(order);
            return;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.capacity || self.bytes + bytes.len() > self.max_bytes)
        {
            self.evict_oldest();
        }
        if bytes.len() > self.max_bytes {
            // Too large to keep at all: as if retained and evicted at once.
            self.first_position = self.next_position;
            self.evicted_through = Some(order);
            return;
        }
        self.bytes += bytes.len();
        self.positions.insert(Arc::clone(&id), position);
        self.entries.push_back(Entry {
            id,
            namespace,
            bytes,
            order,
        });
    }

    fn evict_oldest(&mut self) {
        let Some(oldest) = self.entries.pop_front() else {
            return;
        };
        if self.positions.get(&oldest.id) == Some(&self.first_position) {
            self.positions.remove(&oldest.id);
        }
        self.bytes -= oldest.bytes.len();
        self.first_position += 1;
        self.evicted_through = Some(oldest.order);
    }

    /// The retained events ordered after `after` that one of `subscribed` matches, in
    /// order; `None` when an event that may have been ordered after `after` was already
    /// evicted, so the answer could be incomplete. A history of capacity 0 (replay
    /// disabled) promises nothing and answers an empty tail.
    pub(crate) fn after_order(&self, after: u128, subscribed: &[Namespace]) -> Option<Vec<Bytes>> {
        if self.capacity == 0 {
            return Some(Vec::new());
        }
        if self.evicted_through.is_some_and(|evicted| evicted > after) {
            return None;
        }
        // Newest first, stopping at `after`: what follows a key is usually a short tail.
        let mut events: Vec<Bytes> = self
            .entries
            .iter()
            .rev()
            .take_while(|entry| entry.order > after)
            .filter(|entry| matches(subscribed, &entry.namespace))
            .map(|entry| entry.bytes.clone())
            .collect();
        events.reverse();
        Some(events)
    }

    /// Where a replay after `last_event_id` starts (up to the next event to be
    /// recorded, where live delivery takes over), and, when that id is not retained, the
    /// gap to report first: the replay then covers everything retained.
    pub(crate) fn replay_cursor(&self, last_event_id: &str) -> (ReplayCursor, Option<Gap>) {
        let (next, gap) = match self.positions.get(last_event_id) {
            Some(&position) => (position + 1, None),
            None => (
                self.first_position,
                Some(Gap {
                    last_event_id: last_event_id.to_owned(),
                    first_retained_id: self.entries.front().map(|e| e.id.to_string()),
                }),
            ),
        };
        let cursor = ReplayCursor {
            next,
            end: self.next_position,
            last_id: Arc::from(last_event_id),
        };
        (cursor, gap)
    }

    /// Appends the next piece of a replay to `out`: matching events from the cursor on,
    /// about [`REPLAY_PIECE_BYTES`] of them (at least one when any is left), looking at
    /// no more than a bounded number of entries. Gives the gap to report before them when
    /// the history evicted events the cursor had not read yet; the replay then goes on
    /// from the oldest retained event. The cursor may be done without anything appended.
    pub(crate) fn read_replay(
        &self,
        cursor: &mut ReplayCursor,
        subscribed: &[Namespace],
        out: &mut Vec<Bytes>,
    ) -> Option<Gap> {
        if cursor.is_done() {
            return None;
        }
        let mut gap = None;
        if cursor.next < self.first_position {
            gap = Some(Gap {
                last_event_id: cursor.last_id.to_string(),
                first_retained_id: self.entries.front().map(|e| e.id.to_string()),
            });
            cursor.next = self.first_position;
        }
        let start = (cursor.next - self.first_position) as usize;
        let stop =
            (cursor.end.saturating_sub(self.first_position) as usize).min(self.entries.len());
        let mut taken = 0;
        for entry in self
            .entries
            .range(start.min(stop)..stop)
            .take(REPLAY_PIECE_SCAN)
        {
            if taken > 0 && taken + entry.bytes.len() > REPLAY_PIECE_BYTES {
                break;
            }
            cursor.next += 1;
            if matches(subscribed, &entry.namespace) {
                taken += entry.bytes.len();
                out.push(entry.bytes.clone());
                cursor.last_id = Arc::clone(&entry.id);
            }
        }
        if stop <= start {
            // Everything up to the end was evicted, or the history keeps nothing.
            cursor.next = cursor.end;
        }
        gap
    }

    /// The encoded bytes retained.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.bytes
    }

    /// Everything a replay after `last_event_id` would hand out, read piece by piece.
    #[cfg(test)]
    fn replay_after(&self, last_event_id: &str, subscribed: &[Namespace]) -> Replay {
        let (mut cursor, gap) = self.replay_cursor(last_event_id);
        let mut events = Vec::new();
        while !cursor.is_done() {
            assert!(self
                .read_replay(&mut cursor, subscribed, &mut events)
                .is_none());
        }
        Replay { gap, events }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Whether an event published to `namespace` belongs to a subscription of `subscribed`.
fn matches(subscribed: &[Namespace], namespace: &Namespace) -> bool {
    subscribed
        .iter()
        .any(|s| contains_str(s.as_str(), namespace.as_str()))
}

/// The default id base: now, in nanoseconds since the UNIX epoch.
pub(crate) fn id_base_from_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2))
}

/// Writes `text` as a JSON string literal (quotes included) into `out`.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Gap {
    /// The event type of the event that tells a client about a gap.
    pub const EVENT_TYPE: &'static str = "sse-gap";

    /// The gap as JSON: `{"last_event_id": "...", "first_retained_id": "..." | null}`.
    pub fn to_json(&self) -> String {
        let mut json = String::from("{\"last_event_id\":");
        push_json_string(&mut json, &self.last_event_id);
        json.push_str(",\"first_retained_id\":");
        match &self.first_retained_id {
            Some(id) => push_json_string(&mut json, id),
            None => json.push_str("null"),
        }
        json.push('}');
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).unwrap()
    }

    /// Assigns and commits the id of the next event, alone in its publish.
    fn next_assigned_id(history: &mut History) -> String {
        let mut cursor = history.id_cursor();
        let id = history.assign_id(&mut cursor, 0, |_| false);
        history.commit_ids(cursor);
        id
    }

    fn filled(capacity: usize, count: u64) -> History {
        let mut history = History::new(capacity, usize::MAX, 1000);
        for i in 0..count {
            let id: Arc<str> = next_assigned_id(&mut history).into();
            let namespace = if i % 2 == 0 { ns("/even") } else { ns("/odd") };
            history.push(id, namespace, Bytes::from(format!("event {i}")));
        }
        history
    }

    #[test]
    fn assigned_ids_count_up_from_base() {
        let mut history = filled(4, 3);
        assert_eq!(next_assigned_id(&mut history), "1003");
    }

    #[test]
    fn assigned_ids_skip_ids_in_use_and_keep_increasing() {
        let mut history = History::new(10, usize::MAX, 1000);
        // A publisher chose 1001, as the hub records it: noted, committed, pushed.
        let mut cursor = history.id_cursor();
        history.note_chosen_id(&mut cursor, "1001");
        history.commit_ids(cursor);
        history.push("1001".into(), ns("/a"), Bytes::from("chosen"));
        // Position 1 would give 1001, which a publisher chose.
        assert_eq!(next_assigned_id(&mut history), "1002");
        history.push("1002".into(), ns("/a"), Bytes::from("assigned"));
        // Position 2 would give 1002 again: assigned ids never go back.
        assert_eq!(next_assigned_id(&mut history), "1003");
    }

    #[test]
    fn ids_assigned_within_one_publish_skip_each_other_and_the_taken() {
        let history = History::new(10, usize::MAX, 1000);
        let mut cursor = history.id_cursor();
        let first = history.assign_id(&mut cursor, 0, |_| false);
        let second = history.assign_id(&mut cursor, 1, |id| id == "1001");
        assert_eq!((first.as_str(), second.as_str()), ("1000", "1002"));
        let mut history = history;
        history.commit_ids(cursor);
        history.push(first.into(), ns("/a"), Bytes::from("1"));
        history.push(second.into(), ns("/a"), Bytes::from("2"));
        assert_eq!(next_assigned_id(&mut history), "1003");
    }

    #[test]
    fn an_id_is_retained_until_its_event_is_evicted() {
        let mut history = History::new(2, usize::MAX, 0);
        history.push("7".into(), ns("/orders"), Bytes::from("7"));
        assert!(history.is_retained("7"));
        assert!(!history.is_retained("8"));
        history.push("8".into(), ns("/orders"), Bytes::from("8"));
        history.push("9".into(), ns("/orders"), Bytes::from("9"));
        assert!(!history.is_retained("7"), "evicted, so free again");
    }

    #[test]
    fn keeps_only_the_last_capacity_events() {
        let history = filled(4, 10);
        assert_eq!(history.len(), 4);
        let replay = history.replay_after("1007", &[Namespace::root()]);
        assert!(replay.gap.is_none());
        assert_eq!(
            replay.events,
            [Bytes::from("event 8"), Bytes::from("event 9")]
        );
    }

    #[test]
    fn replay_filters_by_subscribed_namespace() {
        let history = filled(10, 6);
        let replay = history.replay_after("1000", &[ns("/odd")]);
        assert_eq!(
            replay.events,
            [
                Bytes::from("event 1"),
                Bytes::from("event 3"),
                Bytes::from("event 5")
            ]
        );
    }

    #[test]
    fn evicted_id_reports_gap_and_replays_everything_retained() {
        let history = filled(3, 10);
        let replay = history.replay_after("1002", &[Namespace::root()]);
        let gap = replay.gap.unwrap();
        assert_eq!(gap.last_event_id, "1002");
        assert_eq!(gap.first_retained_id.as_deref(), Some("1007"));
        assert_eq!(replay.events.len(), 3);
    }

    #[test]
    fn unknown_id_reports_gap() {
        let history = filled(3, 2);
        let replay = history.replay_after("no-such-id", &[Namespace::root()]);
        assert!(replay.gap.is_some());
        assert_eq!(replay.events.len(), 2);
    }

    #[test]
    fn disabled_history_always_reports_gap_and_replays_nothing() {
        let history = filled(0, 5);
        let replay = history.replay_after("1004", &[Namespace::root()]);
        assert_eq!(replay.gap.unwrap().first_retained_id, None);
        assert!(replay.events.is_empty());
    }

    #[test]
    fn reused_id_resolves_to_latest_and_survives_eviction_of_earlier() {
        let mut history = History::new(2, usize::MAX, 0);
        history.push("same".into(), ns("/a"), Bytes::from("1"));
        history.push("same".into(), ns("/a"), Bytes::from("2"));
        history.push("other".into(), ns("/a"), Bytes::from("3"));
        // "1" is evicted; "same" must still resolve to the retained "2".
        let replay = history.replay_after("same", &[Namespace::root()]);
        assert!(replay.gap.is_none());
        assert_eq!(replay.events, [Bytes::from("3")]);
    }

    #[test]
    fn gap_json_escapes_text() {
        let gap = Gap {
            last_event_id: "a\"b\\c\u{1}".into(),
            first_retained_id: None,
        };
        assert_eq!(
            gap.to_json(),
            r#"{"last_event_id":"a\"b\\c\u0001","first_retained_id":null}"#
        );
    }

    fn ordered(capacity: usize, orders: &[u128]) -> History {
        let mut history = History::new(capacity, usize::MAX, 0);
        for &order in orders {
            let namespace = if order % 2 == 0 {
                ns("/even")
            } else {
                ns("/odd")
            };
            history.push_ordered(
                order.to_string().into(),
                namespace,
                Bytes::from(format!("event {order}")),
                order,
            );
        }
        history
    }

    #[test]
    fn after_order_gives_the_matching_tail_in_order() {
        let history = ordered(10, &[10, 11, 20, 21, 30]);
        assert_eq!(
            history.after_order(11, &[Namespace::root()]),
            Some(vec![
                Bytes::from("event 20"),
                Bytes::from("event 21"),
                Bytes::from("event 30")
            ])
        );
        assert_eq!(
            history.after_order(11, &[ns("/odd")]),
            Some(vec![Bytes::from("event 21")])
        );
        assert_eq!(history.after_order(30, &[Namespace::root()]), Some(vec![]));
        assert_eq!(
            history
                .after_order(0, &[Namespace::root()])
                .map(|e| e.len()),
            Some(5),
            "nothing was evicted, so the history reaches back to the start"
        );
    }

    #[test]
    fn after_order_refuses_when_the_history_no_longer_reaches_back() {
        let history = ordered(2, &[10, 20, 30]);
        assert_eq!(history.after_order(5, &[Namespace::root()]), None);
        assert_eq!(
            history.after_order(10, &[Namespace::root()]),
            Some(vec![Bytes::from("event 20"), Bytes::from("event 30")])
        );
        assert_eq!(
            ordered(0, &[10]).after_order(5, &[Namespace::root()]),
            Some(vec![]),
            "with replay disabled there is nothing to be short of"
        );
    }

    fn sized(capacity: usize, max_bytes: usize, sizes: &[usize]) -> History {
        let mut history = History::new(capacity, max_bytes, 0);
        for (i, &size) in sizes.iter().enumerate() {
            history.push(
                i.to_string().into(),
                ns("/a"),
                Bytes::from(vec![b'x'; size]),
            );
        }
        history
    }

    #[test]
    fn the_history_drops_the_oldest_events_to_stay_within_its_bytes() {
        let history = sized(100, 250, &[100, 100, 100]);
        assert_eq!(history.len(), 2, "three of 100 bytes do not fit in 250");
        assert_eq!(history.retained_bytes(), 200);
        assert!(!history.is_retained("0") && history.is_retained("1"));
        let replay = history.replay_after("1", &[Namespace::root()]);
        assert!(replay.gap.is_none());
        assert_eq!(replay.events.len(), 1);
        let replay = history.replay_after("0", &[Namespace::root()]);
        assert!(replay.gap.is_some(), "0 was dropped for its bytes");
    }

    #[test]
    fn an_event_larger_than_the_history_bytes_is_not_retained_and_leaves_a_gap() {
        let history = sized(100, 250, &[100, 300]);
        assert_eq!((history.len(), history.retained_bytes()), (0, 0));
        let replay = history.replay_after("0", &[Namespace::root()]);
        assert!(replay.gap.is_some(), "event 1 was never retained");
    }

    #[test]
    fn a_replay_comes_in_pieces_of_bounded_bytes() {
        let size = REPLAY_PIECE_BYTES / 4;
        let history = sized(100, usize::MAX, &[size; 10]);
        let (mut cursor, gap) = history.replay_cursor("0");
        assert!(gap.is_none());
        let mut pieces = Vec::new();
        while !cursor.is_done() {
            let mut piece = Vec::new();
            assert!(history
                .read_replay(&mut cursor, &[Namespace::root()], &mut piece)
                .is_none());
            pieces.push(piece.len());
        }
        assert_eq!(pieces, [4, 4, 1], "nine events after 0, four per piece");
        let history = sized(100, usize::MAX, &[1, REPLAY_PIECE_BYTES * 2, 1]);
        let (mut cursor, _) = history.replay_cursor("0");
        let mut piece = Vec::new();
        history.read_replay(&mut cursor, &[Namespace::root()], &mut piece);
        assert_eq!(piece.len(), 1, "an event larger than a piece goes alone");
    }

    #[test]
    fn a_replay_overtaken_by_eviction_reports_the_gap_from_its_last_event() {
        let mut history = sized(4, usize::MAX, &[10; 4]);
        let (mut cursor, _) = history.replay_cursor("0");
        for i in 4..8 {
            history.push(i.to_string().into(), ns("/a"), Bytes::from("y"));
        }
        let mut out = Vec::new();
        let gap = history
            .read_replay(&mut cursor, &[Namespace::root()], &mut out)
            .expect("events 1 to 3 were evicted before they were read");
        assert_eq!(gap.last_event_id, "0");
        assert_eq!(gap.first_retained_id.as_deref(), Some("4"));
        assert!(
            out.is_empty(),
            "live delivery took over at event 4: {out:?}"
        );
        assert!(cursor.is_done());
    }
}
