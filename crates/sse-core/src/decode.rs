//! An incremental event-stream decoder: bytes in, events out.
//!
//! It implements the WHATWG HTML "interpreting an event stream" algorithm exactly: one
//! leading UTF-8 BOM is stripped; lines end at CRLF, LF or a lone CR (a CR is acted on at
//! once, so a stream that ends in CR loses nothing); bytes are decoded as UTF-8 with
//! U+FFFD for invalid sequences; `data`, `event`, `id` (ignored when it contains NUL) and
//! `retry` (ASCII digits only) fields; a blank line dispatches. The last event ID persists
//! across events and, through [`Decoder::with_last_event_id`], across reconnections; the
//! reconnection time belongs to the connection, not to an event.
//!
//! Cost is linear in the input: each byte is scanned once (with `memchr`), and a line is
//! copied only when it spans two chunks. Memory is bounded: a pending line plus the data of
//! the event being built may not exceed [`Decoder::with_max_event_size`] bytes.
//!
//! ```
//! use sse_core::Decoder;
//!
//! let mut decoder = Decoder::new();
//! let mut seen = Vec::new();
//! for chunk in [&b"event: add\nda"[..], b"ta: 7\n", b"\n"] {
//!     decoder.feed(chunk, |event| seen.push(event.to_owned())).unwrap();
//! }
//! assert_eq!(seen.len(), 1);
//! assert_eq!(seen[0].event_type, "add");
//! assert_eq!(seen[0].data, "7");
//! ```

use std::borrow::Cow;
use std::fmt;

/// The default bound on one event: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental event-stream decoder for one stream (and, across reconnections, one
/// event source).
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Bytes of a line whose end has not arrived yet.
    pending_line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF in the next one belongs to it.
    skip_next_lf: bool,
    /// No line has been processed yet, so a BOM may still need stripping.
    at_stream_start: bool,
    /// Raw bytes of the data lines so far, each followed by LF. Kept as bytes and decoded
    /// once per event: an invalid UTF-8 sequence cannot span a line break, so decoding the
    /// joined lines equals decoding each line.
    data: Vec<u8>,
    event_type: Vec<u8>,
    last_event_id_buffer: Vec<u8>,
    /// The bytes `last_event_id` was decoded from, to decode only when the id changes.
    last_event_id_raw: Vec<u8>,
    /// Whether an `id` field was read since the last dispatch (only then can the last
    /// event ID have changed, so only then are the buffers compared).
    id_field_read: bool,
    last_event_id: String,
    retry: Option<u64>,
    max_event_size: usize,
}

/// A dispatched event, borrowed from the decoder's buffers (no allocation per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type: the `event:` field, or `message` when there was none.
    pub event_type: &'a str,
    /// The data lines joined with LF.
    pub data: &'a str,
    /// The last event ID at dispatch time, as a browser's `MessageEvent.lastEventId`.
    pub last_event_id: &'a str,
}

/// An owned dispatched event; see [`EventRef`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageEvent {
    /// The event type: the `event:` field, or `message` when there was none.
    pub event_type: String,
    /// The data lines joined with LF.
    pub data: String,
    /// The last event ID at dispatch time.
    pub last_event_id: String,
}

impl EventRef<'_> {
    /// Copies the event out of the decoder's buffers.
    pub fn to_owned(&self) -> MessageEvent {
        MessageEvent {
            event_type: self.event_type.to_owned(),
            data: self.data.to_owned(),
            last_event_id: self.last_event_id.to_owned(),
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder for a new event source: empty last event ID, no reconnection time, and
    /// events bounded by [`DEFAULT_MAX_EVENT_SIZE`].
    pub fn new() -> Decoder {
        Decoder {
            pending_line: Vec::new(),
            skip_next_lf: false,
            at_stream_start: true,
            data: Vec::new(),
            event_type: Vec::new(),
            last_event_id_buffer: Vec::new(),
            last_event_id_raw: Vec::new(),
            id_field_read: false,
            last_event_id: String::new(),
            retry: None,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
        }
    }

    /// Bounds the bytes of one event (its pending line plus the data gathered so far).
    pub fn with_max_event_size(mut self, bytes: usize) -> Decoder {
        self.max_event_size = bytes;
        self
    }

    /// Starts with the last event ID carried over from an earlier connection.
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Decoder {
        let id = id.into();
        self.last_event_id_buffer = id.clone().into_bytes();
        self.last_event_id_raw = id.clone().into_bytes();
        self.last_event_id = id;
        self
    }

    /// The last event ID: what a reconnection sends as `Last-Event-ID` (when non-empty).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds from the last valid `retry:` field, if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Prepares for the next connection of the same event source: discards the partial
    /// line and event (the spec drops an event that was not completed by a blank line),
    /// and expects a BOM again. Keeps the last event ID and the reconnection time.
    pub fn start_new_stream(&mut self) {
        self.pending_line.clear();
        self.skip_next_lf = false;
        self.at_stream_start = true;
        self.data.clear();
        self.event_type.clear();
        self.last_event_id_buffer
            .clone_from(&self.last_event_id_raw);
        self.id_field_read = false;
    }

    /// Feeds the next bytes of the stream, calling `on_event` for each dispatched event.
    ///
    /// Fails when an event grows past the size bound; the stream should then be
    /// abandoned.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Result<(), DecodeError> {
        let mut rest = chunk;
        if self.skip_next_lf {
            self.skip_next_lf = false;
            if let Some(after_lf) = rest.strip_prefix(b"\n") {
                rest = after_lf;
            }
        }
        while let Some(end) = memchr::memchr2(b'\r', b'\n', rest) {
            let line_bytes = &rest[..end];
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => rest = &rest[end + 2..],
                    Some(_) => rest = &rest[end + 1..],
                    None => {
                        rest = &[];
                        self.skip_next_lf = true;
                    }
                }
            } else {
                rest = &rest[end + 1..];
            }
            if self.pending_line.is_empty() {
                self.check_size(line_bytes.len())?;
                self.process_line(line_bytes, &mut on_event);
            } else {
                self.check_size(self.pending_line.len() + line_bytes.len())?;
                let mut line = std::mem::take(&mut self.pending_line);
                line.extend_from_slice(line_bytes);
                self.process_line(&line, &mut on_event);
                line.clear();
                self.pending_line = line;
            }
        }
        if !rest.is_empty() {
            self.check_size(self.pending_line.len() + rest.len())?;
            self.pending_line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Convenience: feeds `chunk` and returns the dispatched events as owned values.
    pub fn decode(&mut self, chunk: &[u8]) -> Result<Vec<MessageEvent>, DecodeError> {
        let mut events = Vec::new();
        self.feed(chunk, |event| events.push(event.to_owned()))?;
        Ok(events)
    }

    fn check_size(&self, line_len: usize) -> Result<(), DecodeError> {
        if line_len + self.data.len() > self.max_event_size {
            return Err(DecodeError::EventTooLarge {
                limit: self.max_event_size,
            });
        }
        Ok(())
    }

    fn process_line(&mut self, mut line: &[u8], on_event: &mut impl FnMut(EventRef<'_>)) {
        if self.at_stream_start {
            self.at_stream_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        // Slice patterns of byte literals compile to a length check and byte compares;
        // byte-string constants would call `memcmp` for every line.
        match field {
            [b'd', b'a', b't', b'a'] => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            [b'e', b'v', b'e', b'n', b't'] => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            [b'i', b'd'] if !value.contains(&0) => {
                self.last_event_id_buffer.clear();
                self.last_event_id_buffer.extend_from_slice(value);
                self.id_field_read = true;
            }
            [b'r', b'e', b't', b'r', b'y']
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) =>
            {
                // All ASCII digits, so the text is valid; only overflow can fail, and a
                // reconnection time beyond u64 milliseconds is ignored as unusable.
                if let Some(millis) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                    self.retry = Some(millis);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(EventRef<'_>)) {
        if std::mem::take(&mut self.id_field_read)
            && self.last_event_id_raw != self.last_event_id_buffer
        {
            self.last_event_id_raw
                .clone_from(&self.last_event_id_buffer);
            self.last_event_id.clear();
            self.last_event_id
                .push_str(&utf8_lossy(&self.last_event_id_raw));
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let data = self.data.strip_suffix(b"\n").unwrap_or(&self.data);
        let data = utf8_lossy(data);
        let event_type = if self.event_type.is_empty() {
            Cow::Borrowed("message")
        } else {
            utf8_lossy(&self.event_type)
        };
        on_event(EventRef {
            event_type: &event_type,
            data: &data,
            last_event_id: &self.last_event_id,
        });
        self.data.clear();
        self.event_type.clear();
    }
}

/// `bytes` decoded as UTF-8, with U+FFFD for invalid sequences: borrowed in the common
/// case of valid input (fast validation, no copy), owned only when something was replaced.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// One event (or one line) grew past the configured bound.
    EventTooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::EventTooLarge { limit } => {
                write!(
                    f,
                    "an event in the stream is larger than the {limit}-byte limit"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Vec<MessageEvent> {
        Decoder::new().decode(input).unwrap()
    }

    #[test]
    fn stream_ending_in_lone_cr_dispatches_last_event() {
        let events = decode_all(b"data: a\r\r");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a");
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_break() {
        let mut decoder = Decoder::new();
        let mut events = decoder.decode(b"data: a\r").unwrap();
        events.extend(decoder.decode(b"\ndata: b\r").unwrap());
        events.extend(decoder.decode(b"\n\r\n").unwrap());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        let events = decode_all(b"data: a\xFFb\xE2\x82\n\n");
        assert_eq!(events[0].data, "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn retry_only_preamble_sets_reconnection_time() {
        let mut decoder = Decoder::new();
        assert!(decoder.decode(b"retry: 2500\n\n").unwrap().is_empty());
        assert_eq!(decoder.retry(), Some(2500));
    }

    #[test]
    fn retry_with_sign_or_overflow_is_ignored() {
        let mut decoder = Decoder::new();
        decoder
            .decode(b"retry: +5\nretry: -1\nretry: 99999999999999999999999\n\n")
            .unwrap();
        assert_eq!(decoder.retry(), None);
    }

    #[test]
    fn id_only_block_updates_last_event_id() {
        let mut decoder = Decoder::new();
        decoder.decode(b"id: 7\n\n").unwrap();
        assert_eq!(decoder.last_event_id(), "7");
    }

    #[test]
    fn last_event_id_carries_into_next_connection() {
        let mut decoder = Decoder::new().with_last_event_id("41");
        let events = decoder.decode(b"data: x\n\n").unwrap();
        assert_eq!(events[0].last_event_id, "41");
    }

    #[test]
    fn new_stream_drops_partial_event_and_strips_bom_again() {
        let mut decoder = Decoder::new();
        decoder.decode(b"id: 1\n\ndata: partial\n").unwrap();
        decoder.start_new_stream();
        let events = decoder.decode(b"\xEF\xBB\xBFdata: next\n\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "next");
        assert_eq!(events[0].last_event_id, "1");
    }

    #[test]
    fn oversized_event_is_an_error_not_unbounded_memory() {
        let mut decoder = Decoder::new().with_max_event_size(16);
        assert!(decoder.decode(b"data: 0123456789\n").is_ok());
        let err = decoder.decode(b"data: 0123456789\n").unwrap_err();
        assert_eq!(err, DecodeError::EventTooLarge { limit: 16 });
        assert!(err.to_string().contains("16-byte"));
        let mut decoder = Decoder::new().with_max_event_size(16);
        assert!(decoder.decode(&[b'x'; 17]).is_err());
    }
}
