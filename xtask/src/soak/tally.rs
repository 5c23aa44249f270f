//! What one subscriber received, judged against the publisher's sequence numbers.
//!
//! The publisher numbers its events 0, 1, 2, … in their data, in one order; the server
//! assigns each an id, and its ids increase. A subscriber that loses nothing sees every
//! number once, in order, with increasing ids, across reconnections too.

use serde::Serialize;

/// The counts of one subscriber (or, summed, of a group of them).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(super) struct Tally {
    /// Events received in order, each a number not seen before.
    pub(super) received: u64,
    /// Numbers skipped over: events lost between two received ones.
    pub(super) missing: u64,
    /// Events whose number had been received already (or an earlier one).
    pub(super) duplicates: u64,
    /// Events whose id was not above the previous event's.
    pub(super) ids_out_of_order: u64,
    /// Events that were not the publisher's: no sequence number or no numeric id (an
    /// `sse-gap` event, for one).
    pub(super) foreign: u64,
    /// The number expected next: one past the highest received.
    #[serde(skip)]
    pub(super) next: u64,
    /// The id of the last event received, to resume after.
    #[serde(skip)]
    pub(super) last_id: Option<u64>,
}

impl Tally {
    /// Counts one event, given its data and id.
    pub(super) fn record(&mut self, data: &str, id: &str) {
        let number = data.split(' ').next().and_then(|n| n.parse::<u64>().ok());
        let (Some(number), Ok(id)) = (number, id.parse::<u64>()) else {
            self.foreign += 1;
            return;
        };
        if self.last_id.is_some_and(|last| id <= last) {
            self.ids_out_of_order += 1;
        }
        self.last_id = Some(self.last_id.map_or(id, |last| last.max(id)));
        if number < self.next {
            self.duplicates += 1;
            return;
        }
        self.missing += number - self.next;
        self.next = number + 1;
        self.received += 1;
    }

    /// Events lost by a subscriber that should have received numbers `0..published`:
    /// those skipped, and those after the last it received.
    pub(super) fn lost(&self, published: u64) -> u64 {
        self.missing + published.saturating_sub(self.next)
    }

    /// Whether every number below `published` has been received.
    pub(super) fn caught_up(&self, published: u64) -> bool {
        self.next >= published
    }

    /// Adds another subscriber's counts (for a group's totals).
    pub(super) fn add(&mut self, other: &Tally) {
        self.received += other.received;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.ids_out_of_order += other.ids_out_of_order;
        self.foreign += other.foreign;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(events: &[(&str, &str)]) -> Tally {
        let mut tally = Tally::default();
        for (data, id) in events {
            tally.record(data, id);
        }
        tally
    }

    #[test]
    fn an_unbroken_sequence_loses_nothing() {
        let tally = tally(&[("0 pad", "10"), ("1 pad", "11"), ("2 pad", "15")]);
        assert_eq!(tally.received, 3);
        assert_eq!(tally.lost(3), 0);
        assert!(tally.caught_up(3));
        assert_eq!(
            (tally.duplicates, tally.ids_out_of_order, tally.foreign),
            (0, 0, 0)
        );
        assert_eq!(tally.last_id, Some(15));
    }

    #[test]
    fn skipped_numbers_and_a_short_tail_are_lost() {
        let tally = tally(&[("0", "1"), ("3", "4"), ("4", "5")]);
        assert_eq!(tally.missing, 2);
        assert_eq!(tally.lost(5), 2);
        assert_eq!(tally.lost(8), 5, "5, 6 and 7 never came");
        assert!(!tally.caught_up(8));
    }

    #[test]
    fn repeats_are_duplicates_and_falling_ids_are_out_of_order() {
        let tally = tally(&[("0", "1"), ("1", "2"), ("1", "2"), ("2", "1")]);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.ids_out_of_order, 2);
        assert_eq!(tally.lost(3), 0);
    }

    #[test]
    fn events_without_a_number_or_numeric_id_are_foreign() {
        let tally = tally(&[("{\"last_event_id\":\"9\"}", "12"), ("0", "")]);
        assert_eq!(tally.foreign, 2);
        assert_eq!(tally.received, 0);
    }
}
