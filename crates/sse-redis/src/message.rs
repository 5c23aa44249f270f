//! Events as the cluster's Redis carries them: one string per event, the same on the
//! channels and in the history stream (see `lua/publish.lua`):
//!
//! `<stream id> \n <counter> \n <namespace> \n <publisher id> \n <type> \n <retry> \n <data>`
//!
//! The stream id (`<ms>-<seq>`) is the cluster's order for the event, and its SSE id
//! unless the publisher chose one.

use std::fmt;

use sse_core::{Event, Namespace};

/// One event received from Redis.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The stream id as an order key (see [`order_of`]).
    pub(crate) order: u128,
    pub(crate) namespace: Namespace,
    /// The event, with its SSE id.
    pub(crate) event: Event,
}

/// A message that is not of the cluster's form (written by something else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(&'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a message not of the cluster's form: {}", self.0)
    }
}

/// The order key of a stream id `<ms>-<seq>`: milliseconds in the high 64 bits, the
/// sequence in the low ones, so keys compare as the ids do.
pub(crate) fn order_of(stream_id: &str) -> Option<u128> {
    let (ms, seq) = stream_id.split_once('-')?;
    let (ms, seq) = (ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?);
    Some(u128::from(ms) << 64 | u128::from(seq))
}

/// The stream id of an order key.
pub(crate) fn stream_id_of(order: u128) -> String {
    format!("{}-{}", order >> 64, order & u128::from(u64::MAX))
}

/// Parses one message.
pub(crate) fn parse(payload: &[u8]) -> Result<Message, Malformed> {
    let text = std::str::from_utf8(payload).map_err(|_| Malformed("not UTF-8"))?;
    let mut fields = text.splitn(7, '\n');
    let mut next = |what: &'static str| fields.next().ok_or(Malformed(what));
    let stream_id = next("no stream id")?;
    let counter = next("no counter")?;
    let namespace = next("no namespace")?;
    let publisher_id = next("no publisher id")?;
    let kind = next("no event type")?;
    let retry = next("no retry")?;
    let data = next("no data")?;
    let order = order_of(stream_id).ok_or(Malformed("a stream id that is not <ms>-<seq>"))?;
    counter
        .parse::<u64>()
        .map_err(|_| Malformed("a counter that is not a number"))?;
    let namespace = Namespace::parse(namespace).map_err(|_| Malformed("an invalid namespace"))?;
    let id = if publisher_id.is_empty() {
        stream_id
    } else {
        publisher_id
    };
    let mut event = Event::new(data).with_id(id);
    if !kind.is_empty() {
        event = event.with_event(kind);
    }
    if !retry.is_empty() {
        let retry = retry
            .parse()
            .map_err(|_| Malformed("a retry that is not a number"))?;
        event = event.with_retry(retry);
    }
    Ok(Message {
        order,
        namespace,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_compare_as_stream_ids_do() {
        let keys: Vec<u128> = ["1-5", "2-0", "2-1", "10-0"]
            .iter()
            .map(|id| order_of(id).unwrap())
            .collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(
            stream_id_of(order_of("1732800000000-7").unwrap()),
            "1732800000000-7"
        );
        assert_eq!(order_of("7"), None);
        assert_eq!(order_of("a-1"), None);
    }

    #[test]
    fn a_message_carries_every_field_and_data_keeps_its_line_breaks() {
        let message =
            parse(b"1700-3\n42\n/pets/dogs\n\nnew-dog\n3000\nline one\nline two").unwrap();
        assert_eq!(message.order, order_of("1700-3").unwrap());
        assert_eq!(message.namespace.as_str(), "/pets/dogs");
        assert_eq!(
            message.event.id(),
            Some("1700-3"),
            "the stream id is the SSE id"
        );
        assert_eq!(message.event.event(), Some("new-dog"));
        assert_eq!(message.event.retry(), Some(3000));
        assert_eq!(message.event.data(), Some("line one\nline two"));
    }

    #[test]
    fn a_publishers_id_is_kept_and_empty_fields_are_absent() {
        let message = parse(b"1700-3\n1\n/a\norder-7\n\n\nx").unwrap();
        assert_eq!(message.event.id(), Some("order-7"));
        assert_eq!(message.event.event(), None);
        assert_eq!(message.event.retry(), None);
    }

    #[test]
    fn foreign_messages_are_refused_not_panicked_on() {
        for payload in [
            &b""[..],
            b"1-1\n1\n/a",
            b"x\n1\n/a\n\n\n\nd",
            b"1-1\nx\n/a\n\n\n\nd",
            b"1-1\n1\nrel\n\n\n\nd",
            b"\xff",
        ] {
            assert!(parse(payload).is_err(), "{payload:?}");
        }
    }
}
