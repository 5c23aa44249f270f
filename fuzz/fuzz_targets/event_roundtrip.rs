//! Event encoding: a stream as a server writes it (preamble, then events), decoded.
//!
//! Laws checked for any field contents:
//! - `encode` refuses exactly what `validate` refuses: a type with CR or LF, an id with
//!   CR, LF or NUL;
//! - whatever it accepts decodes, on one stream after the preamble and the events
//!   before it, to the event's own fields: an event with data is dispatched once, with
//!   its data (line breaks CRLF and CR read as LF), its type (`message` when empty or
//!   unset), and as last event ID its own id or else the one before; an event without
//!   data dispatches nothing but still sets the id; the reconnection time is the last
//!   `retry` given;
//! - comments (and keepalives) never reach the client as data.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use sse_core::{encode_comment, encode_preamble, Decoder, Event, EventError, MessageEvent};

#[derive(Debug, Arbitrary)]
struct Fields {
    id: Option<String>,
    event: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
    comment: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Stream {
    preamble_comment: String,
    preamble_retry: Option<u64>,
    events: Vec<Fields>,
    keepalive: String,
}

fn build(fields: &Fields) -> Event {
    let mut event = Event::default();
    if let Some(id) = &fields.id {
        event = event.with_id(id.clone());
    }
    if let Some(kind) = &fields.event {
        event = event.with_event(kind.clone());
    }
    if let Some(retry) = fields.retry {
        event = event.with_retry(retry);
    }
    if let Some(data) = &fields.data {
        event = event.with_data(data.clone());
    }
    if let Some(comment) = &fields.comment {
        event = event.with_comment(comment.clone());
    }
    event
}

/// What a client reads as the data: every line break (CRLF, CR, LF) is a LF.
fn as_read(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

fn expected_refusal(fields: &Fields) -> Option<EventError> {
    if fields
        .event
        .as_deref()
        .is_some_and(|kind| kind.contains(['\r', '\n']))
    {
        return Some(EventError::InvalidEventType);
    }
    if fields
        .id
        .as_deref()
        .is_some_and(|id| id.contains(['\r', '\n', '\0']))
    {
        return Some(EventError::InvalidId);
    }
    None
}

fuzz_target!(|stream: Stream| {
    let mut wire = encode_preamble(&stream.preamble_comment, stream.preamble_retry).to_vec();
    let mut expected_events = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = stream.preamble_retry;
    for fields in &stream.events {
        let event = build(fields);
        let encoded = event.encode();
        assert_eq!(event.validate().err(), encoded.clone().err());
        assert_eq!(
            encoded.clone().err(),
            expected_refusal(fields),
            "{fields:?}"
        );
        let Ok(encoded) = encoded else { continue };
        wire.extend_from_slice(encoded.as_bytes());
        wire.extend_from_slice(&encode_comment(&stream.keepalive));
        if let Some(id) = &fields.id {
            last_event_id.clone_from(id);
        }
        if fields.retry.is_some() {
            retry = fields.retry;
        }
        if let Some(data) = &fields.data {
            expected_events.push(MessageEvent {
                event_type: match fields.event.as_deref() {
                    None | Some("") => "message".to_owned(),
                    Some(kind) => kind.to_owned(),
                },
                data: as_read(data),
                last_event_id: last_event_id.clone(),
            });
        }
    }
    let mut decoder = Decoder::new().with_max_event_size(usize::MAX);
    let events = decoder.decode(&wire).expect("no size bound");
    assert_eq!(
        events,
        expected_events,
        "wire: {:?}",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(decoder.last_event_id(), last_event_id);
    assert_eq!(decoder.retry(), retry);
});
