//! The event-stream decoder: the input is a stream, fed whole and in several chunkings.
//!
//! Laws checked for any bytes:
//! - however the stream is cut into chunks (one byte at a time, at pseudo-random points,
//!   right after every CR and before every LF), the decoder hands out the same events,
//!   ends with the same last event ID and reconnection time, and fails (event too large)
//!   at the same point, both with the default size bound and with a small one;
//! - a dispatched event's data holds no CR, its type is never empty and holds no line
//!   break, and its last event ID holds no line break or NUL;
//! - the events decode again to themselves after encoding (decode ∘ encode is the
//!   identity on what the decoder produces).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_core::{Decoder, Event, MessageEvent};

/// Everything a client can observe after feeding a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<MessageEvent>,
    failed: bool,
    last_event_id: String,
    retry: Option<u64>,
}

fn decode<'a>(max_event_size: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::new().with_max_event_size(max_event_size);
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        if decoder
            .feed(chunk, |event| events.push(event.to_owned()))
            .is_err()
        {
            failed = true;
            break;
        }
    }
    Outcome {
        events,
        failed,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

/// Cuts `input` at `points` (increasing, within bounds).
fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for &point in points {
        chunks.push(&input[start..point]);
        start = point;
    }
    chunks.push(&input[start..]);
    chunks
}

/// Cut points from a small deterministic generator seeded by the input, so the same
/// input always gets the same chunking and a new input a new one.
fn pseudo_random_points(input: &[u8]) -> Vec<usize> {
    let mut state = input.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut points = Vec::new();
    let mut at = 0;
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        at += 1 + (state % 9) as usize;
        if at >= input.len() {
            return points;
        }
        points.push(at);
    }
}

/// Cut points right after every CR and right before every LF: the places where a line
/// break may be split in two.
fn line_break_points(input: &[u8]) -> Vec<usize> {
    let mut points = Vec::new();
    for (index, &byte) in input.iter().enumerate() {
        if byte == b'\r' && index + 1 < input.len() {
            points.push(index + 1);
        }
        if byte == b'\n' && index > 0 && points.last() != Some(&index) {
            points.push(index);
        }
    }
    points
}

fn check_chunkings(input: &[u8], max_event_size: usize) -> Outcome {
    let whole = decode(max_event_size, [input]);
    let byte_by_byte = decode(max_event_size, input.chunks(1));
    assert_eq!(whole, byte_by_byte, "fed one byte at a time");
    let random = decode(
        max_event_size,
        split_at_points(input, &pseudo_random_points(input)),
    );
    assert_eq!(whole, random, "fed in pseudo-random chunks");
    let at_breaks = decode(
        max_event_size,
        split_at_points(input, &line_break_points(input)),
    );
    assert_eq!(whole, at_breaks, "fed in chunks cut inside line breaks");
    whole
}

fn check_event_shape(event: &MessageEvent) {
    assert!(!event.data.contains('\r'), "data holds a CR: {event:?}");
    assert!(!event.event_type.is_empty(), "empty type: {event:?}");
    assert!(
        !event.event_type.contains(['\r', '\n']),
        "type holds a line break: {event:?}"
    );
    assert!(
        !event.last_event_id.contains(['\r', '\n', '\0']),
        "id holds a line break or NUL: {event:?}"
    );
}

/// Encodes the decoded events back onto one stream and decodes that again.
fn check_reencoding(events: &[MessageEvent]) {
    let mut stream = Vec::new();
    for event in events {
        let encoded = Event::new(event.data.clone())
            .with_event(event.event_type.clone())
            .with_id(event.last_event_id.clone())
            .encode()
            .expect("a decoded event is always encodable");
        stream.extend_from_slice(encoded.as_bytes());
    }
    let again = decode(usize::MAX, [&stream[..]]);
    assert!(!again.failed);
    assert_eq!(again.events, events, "decode(encode(events)) != events");
}

fn fuzz(input: &[u8]) {
    let outcome = check_chunkings(input, sse_core::DEFAULT_MAX_EVENT_SIZE);
    for event in &outcome.events {
        check_event_shape(event);
    }
    check_reencoding(&outcome.events);
    // A small bound, so the "event too large" failure is reached and must not depend on
    // the chunking either.
    let bounded = check_chunkings(input, 24);
    assert!(bounded.events.len() <= outcome.events.len());
    assert_eq!(bounded.events, outcome.events[..bounded.events.len()]);
    if !bounded.failed {
        assert_eq!(
            bounded, outcome,
            "the bound was never reached, so nothing differs"
        );
    }
}

fuzz_target!(|input: &[u8]| fuzz(input));
