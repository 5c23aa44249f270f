//! The decoder against the shared conformance vectors (web-platform-tests `eventsource/`
//! and the WHATWG examples): every vector a client must decode is fed whole, in its given
//! chunks, and one byte at a time.

use serde_json::Value;
use sse_core::{Decoder, MessageEvent};

const VENDORED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/vectors.json"
);

struct Vector {
    name: String,
    body: Vec<u8>,
    chunks: Option<Vec<Vec<u8>>>,
    initial_last_event_id: String,
    events: Vec<MessageEvent>,
    retry: Option<u64>,
    final_last_event_id: String,
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn string_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The vectors whose body a client decodes: all `parse` ones and the `http` ones that
/// open the connection (a failed connection dispatches nothing, whatever the body).
fn decodable_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VENDORED).expect("read vectors.json");
    let all: Vec<Value> = serde_json::from_str(&text).expect("vectors.json is JSON");
    all.iter()
        .filter(|v| v["kind"] == "parse" || v["expect"] == "open")
        .map(|v| Vector {
            name: string_field(v, "name"),
            body: hex(v["stream_hex"].as_str().expect("stream_hex")),
            chunks: v.get("chunks_hex").and_then(Value::as_array).map(|chunks| {
                chunks
                    .iter()
                    .map(|c| hex(c.as_str().expect("chunk")))
                    .collect()
            }),
            initial_last_event_id: string_field(v, "initial_last_event_id"),
            events: v["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| MessageEvent {
                    event_type: e
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("message")
                        .to_owned(),
                    data: string_field(e, "data"),
                    last_event_id: string_field(e, "id"),
                })
                .collect(),
            retry: v["retry"].as_u64(),
            final_last_event_id: string_field(v, "final_last_event_id"),
        })
        .collect()
}

fn run<'a>(vector: &Vector, chunks: impl Iterator<Item = &'a [u8]>, how: &str) {
    let mut decoder = Decoder::new().with_last_event_id(vector.initial_last_event_id.clone());
    let mut events = Vec::new();
    for chunk in chunks {
        decoder
            .feed(chunk, |event| events.push(event.to_owned()))
            .unwrap_or_else(|e| panic!("{} ({how}): {e}", vector.name));
    }
    assert_eq!(events, vector.events, "{} ({how}): events", vector.name);
    assert_eq!(
        decoder.retry(),
        vector.retry,
        "{} ({how}): retry",
        vector.name
    );
    assert_eq!(
        decoder.last_event_id(),
        vector.final_last_event_id,
        "{} ({how}): final last event ID",
        vector.name
    );
}

#[test]
fn every_vector_decodes_fed_whole() {
    let vectors = decodable_vectors();
    assert!(vectors.len() >= 40, "only {} vectors found", vectors.len());
    for vector in &vectors {
        run(vector, std::iter::once(vector.body.as_slice()), "whole");
    }
}

#[test]
fn every_vector_decodes_fed_one_byte_at_a_time() {
    for vector in &decodable_vectors() {
        run(vector, vector.body.chunks(1), "byte at a time");
    }
}

#[test]
fn every_vector_decodes_fed_in_its_given_chunks_or_halves() {
    for vector in &decodable_vectors() {
        match &vector.chunks {
            Some(chunks) => run(vector, chunks.iter().map(Vec::as_slice), "given chunks"),
            None => {
                // No chunking given: split at every position into two reads instead.
                for cut in 0..=vector.body.len() {
                    let (a, b) = vector.body.split_at(cut);
                    run(vector, [a, b].into_iter(), &format!("split at {cut}"));
                }
            }
        }
    }
}

#[test]
fn vendored_vectors_match_the_shared_copy_when_present() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/vectors.json"
    );
    match std::fs::read(shared) {
        Ok(shared) => assert_eq!(
            std::fs::read(VENDORED).expect("vendored vectors"),
            shared,
            "tests/conformance/vectors.json is out of date: copy ../shared/conformance/vectors.json"
        ),
        Err(_) => eprintln!("note: {shared} not found; using the vendored copy only"),
    }
}
