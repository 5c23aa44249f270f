//! Outgoing events and their wire encoding: the one place that writes the event-stream
//! format.
//!
//! An [`Event`] is validated and encoded **once** into an immutable [`EncodedEvent`]
//! (a reference-counted [`Bytes`]) that every subscriber shares; nothing is re-encoded or
//! copied per subscriber.
//!
//! The encoding follows the WHATWG HTML "Server-sent events" format:
//!
//! - fields in the order `id:`, `event:`, `retry:`, then one `data:` line per line of data,
//!   then a blank line;
//! - data is split on CRLF, CR and LF, all three being line breaks to a client, so any
//!   text round-trips through a conforming client exactly;
//! - every value is written after `: `, so a value that itself begins with a space keeps
//!   it (a client strips exactly one space after the colon);
//! - `event` and `id` may not contain CR or LF and `id` may not contain NUL: such values
//!   are an [`EventError`], never a panic, and never reach the wire, so a crafted name or
//!   id cannot inject a field or an event.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// An event to publish: optional `id`, `event` type, `retry` and comment, and its data.
///
/// Build it with [`Event::new`] and the `with_*` methods, then [`encode`](Event::encode)
/// it (a [`Hub`](crate::Hub) does that for you when you publish).
///
/// ```
/// use sse_core::Event;
///
/// let encoded = Event::new("Corgi\nPembroke")
///     .with_event("new-dog")
///     .with_id("42")
///     .encode()
///     .unwrap();
/// assert_eq!(
///     encoded.as_bytes(),
///     &b"id: 42\nevent: new-dog\ndata: Corgi\ndata: Pembroke\n\n"[..]
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
    comment: Option<String>,
}

impl Event {
    /// An event carrying `data`, of the default type (`message` to a client).
    pub fn new(data: impl Into<String>) -> Event {
        Event {
            data: Some(data.into()),
            ..Event::default()
        }
    }

    /// Sets the data. An event without data only updates the client's last event ID or
    /// reconnection time; it is not dispatched to listeners.
    pub fn with_data(mut self, data: impl Into<String>) -> Event {
        self.data = Some(data.into());
        self
    }

    /// Sets the event type (`addEventListener(type, ...)` in a browser). An empty type is
    /// the same as none.
    pub fn with_event(mut self, event: impl Into<String>) -> Event {
        self.event = Some(event.into());
        self
    }

    /// Sets the event ID, which a reconnecting client sends back as `Last-Event-ID`.
    pub fn with_id(mut self, id: impl Into<String>) -> Event {
        self.id = Some(id.into());
        self
    }

    /// Sets the client's reconnection time, in milliseconds.
    pub fn with_retry(mut self, millis: u64) -> Event {
        self.retry = Some(millis);
        self
    }

    /// Adds a comment, written before the fields; clients ignore it.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Event {
        self.comment = Some(comment.into());
        self
    }

    /// The event ID, if set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event type, if set.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The reconnection time in milliseconds, if set.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The data, if set.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The comment, if set.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Checks every field without encoding.
    ///
    /// Fails when the event type contains CR or LF, or the id contains CR, LF or NUL.
    pub fn validate(&self) -> Result<(), EventError> {
        if let Some(event) = &self.event {
            if event.contains(['\r', '\n']) {
                return Err(EventError::InvalidEventType);
            }
        }
        if let Some(id) = &self.id {
            if id.contains(['\r', '\n', '\0']) {
                return Err(EventError::InvalidId);
            }
        }
        Ok(())
    }

    /// Validates the event and encodes it into immutable bytes, ready to be shared by
    /// every subscriber.
    pub fn encode(&self) -> Result<EncodedEvent, EventError> {
        self.validate()?;
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        if let Some(comment) = &self.comment {
            put_comment_lines(&mut buf, comment);
        }
        if let Some(id) = &self.id {
            put_field(&mut buf, b"id", id.as_bytes());
        }
        if let Some(event) = self.event.as_deref().filter(|e| !e.is_empty()) {
            put_field(&mut buf, b"event", event.as_bytes());
        }
        if let Some(retry) = self.retry {
            put_field(&mut buf, b"retry", retry.to_string().as_bytes());
        }
        if let Some(data) = &self.data {
            for line in split_lines(data.as_bytes()) {
                put_field(&mut buf, b"data", line);
            }
        }
        buf.put_u8(b'\n');
        Ok(EncodedEvent(buf.freeze()))
    }

    /// An upper bound on the encoded size, so encoding allocates once.
    fn encoded_len(&self) -> usize {
        const FIELD_OVERHEAD: usize = "retry: \n".len();
        let data = self.data.as_deref().unwrap_or("");
        let data_lines = 1 + memchr::memchr2_iter(b'\r', b'\n', data.as_bytes()).count();
        let comment = self.comment.as_deref().unwrap_or("");
        let comment_lines = 1 + memchr::memchr2_iter(b'\r', b'\n', comment.as_bytes()).count();
        self.id.as_deref().map_or(0, |v| v.len() + FIELD_OVERHEAD)
            + self
                .event
                .as_deref()
                .map_or(0, |v| v.len() + FIELD_OVERHEAD)
            + self.retry.map_or(0, |_| 20 + FIELD_OVERHEAD)
            + data.len()
            + data_lines * FIELD_OVERHEAD
            + comment.len()
            + comment_lines * FIELD_OVERHEAD
            + 1
    }
}

/// An event encoded for the wire: immutable, cheap to clone (a reference count), and
/// shared by every subscriber it is sent to.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedEvent(Bytes);

impl EncodedEvent {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The encoded bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the encoding is empty (never true for an encoded [`Event`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodedEvent({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl From<EncodedEvent> for Bytes {
    fn from(event: EncodedEvent) -> Bytes {
        event.0
    }
}

/// Encodes a comment: one `: ...` line per line of `text`. Clients ignore comments; a
/// server sends them as keepalives and to flush a stream's first bytes through proxies.
///
/// ```
/// assert_eq!(&sse_core::encode_comment("keepalive")[..], b": keepalive\n");
/// ```
pub fn encode_comment(text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + 8);
    put_comment_lines(&mut buf, text);
    buf.freeze()
}

/// Encodes what a stream sends first: a comment, so headers and first bytes flush at once,
/// then, when given, the client's reconnection time in milliseconds.
///
/// ```
/// let preamble = sse_core::encode_preamble("ok", Some(3000));
/// assert_eq!(&preamble[..], b": ok\nretry: 3000\n\n");
/// ```
pub fn encode_preamble(comment: &str, retry_millis: Option<u64>) -> Bytes {
    let mut buf = BytesMut::with_capacity(comment.len() + 32);
    put_comment_lines(&mut buf, comment);
    if let Some(retry) = retry_millis {
        put_field(&mut buf, b"retry", retry.to_string().as_bytes());
        buf.put_u8(b'\n');
    }
    buf.freeze()
}

fn put_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    if value.is_empty() {
        buf.put_slice(b":\n");
        return;
    }
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_u8(b'\n');
}

fn put_comment_lines(buf: &mut BytesMut, text: &str) {
    for line in split_lines(text.as_bytes()) {
        put_field(buf, b"", line);
    }
}

/// Splits text into lines on CRLF, CR and LF, as a client does. `"a\n"` is two lines,
/// `"a"` and `""`; `""` is one empty line.
fn split_lines(text: &[u8]) -> SplitLines<'_> {
    SplitLines { rest: Some(text) }
}

struct SplitLines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr2(b'\r', b'\n', rest) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(at) => {
                let crlf = rest[at] == b'\r' && rest.get(at + 1) == Some(&b'\n');
                let skip = if crlf { 2 } else { 1 };
                self.rest = Some(&rest[at + skip..]);
                Some(&rest[..at])
            }
        }
    }
}

/// Why an event could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventError {
    /// The event type contains CR or LF.
    InvalidEventType,
    /// The id contains CR, LF or NUL.
    InvalidId,
}

impl EventError {
    /// The name of the offending field as the API spells it (`event` or `id`).
    pub fn field(self) -> &'static str {
        match self {
            EventError::InvalidEventType => "event",
            EventError::InvalidId => "id",
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidEventType => {
                f.write_str("the event type may not contain a carriage return or line feed")
            }
            EventError::InvalidId => {
                f.write_str("the event id may not contain a carriage return, line feed or NUL")
            }
        }
    }
}

impl std::error::Error for EventError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(event: &Event) -> String {
        String::from_utf8(event.encode().unwrap().into_bytes().to_vec()).unwrap()
    }

    #[test]
    fn fields_come_in_spec_order() {
        let event = Event::new("x")
            .with_retry(10)
            .with_event("e")
            .with_id("1")
            .with_comment("c");
        assert_eq!(wire(&event), ": c\nid: 1\nevent: e\nretry: 10\ndata: x\n\n");
    }

    #[test]
    fn data_splits_on_cr_lf_and_crlf() {
        let event = Event::new("a\rb\nc\r\nd");
        assert_eq!(wire(&event), "data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn trailing_newline_becomes_an_empty_data_line() {
        assert_eq!(wire(&Event::new("a\n")), "data: a\ndata:\n\n");
        assert_eq!(wire(&Event::new("a\r\n")), "data: a\ndata:\n\n");
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(wire(&Event::new("")), "data:\n\n");
    }

    #[test]
    fn leading_space_survives_the_clients_strip() {
        assert_eq!(wire(&Event::new(" x")), "data:  x\n\n");
        assert_eq!(wire(&Event::new("x").with_id(" 7")), "id:  7\ndata: x\n\n");
    }

    #[test]
    fn event_without_data_has_no_data_line() {
        assert_eq!(wire(&Event::default().with_id("9")), "id: 9\n\n");
    }

    #[test]
    fn empty_event_type_is_omitted() {
        assert_eq!(wire(&Event::new("x").with_event("")), "data: x\n\n");
    }

    #[test]
    fn injection_through_event_type_is_refused() {
        let event = Event::new("x").with_event("a\ndata: injected");
        assert_eq!(event.encode(), Err(EventError::InvalidEventType));
        let event = Event::new("x").with_event("a\rb");
        assert_eq!(event.encode(), Err(EventError::InvalidEventType));
    }

    #[test]
    fn injection_through_id_is_refused() {
        for bad in ["1\n\ndata: evil", "1\r", "a\0b"] {
            let event = Event::new("x").with_id(bad);
            assert_eq!(event.encode(), Err(EventError::InvalidId), "{bad:?}");
        }
    }

    #[test]
    fn comments_split_into_comment_lines() {
        assert_eq!(&encode_comment("a\nb")[..], b": a\n: b\n");
        assert_eq!(&encode_comment("")[..], b":\n");
        assert_eq!(
            wire(&Event::new("x").with_comment("a\r\ndata: no")),
            ": a\n: data: no\ndata: x\n\n"
        );
    }

    #[test]
    fn preamble_without_retry_is_one_comment() {
        assert_eq!(&encode_preamble("hi", None)[..], b": hi\n");
    }

    #[test]
    fn capacity_estimate_is_never_short() {
        let event = Event::new("\n\n\r\r\n")
            .with_id("")
            .with_event("e")
            .with_retry(u64::MAX)
            .with_comment("\n");
        let encoded = event.encode().unwrap();
        assert!(encoded.len() <= event.encoded_len());
    }
}
