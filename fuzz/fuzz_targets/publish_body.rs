//! Publish bodies, parsed as `POST /publish/{namespace}` and `POST /publish` do. The first
//! byte chooses the form: `0` a JSON event, `1` an NDJSON batch, anything else a
//! `text/plain` body; the rest is the body.
//!
//! Laws checked for any bytes:
//! - an accepted JSON event is the object's members, read independently here with
//!   `serde_json` (`data` a string as is, any other value as compact JSON), and an
//!   accepted event encodes and decodes back to its data, type and id;
//! - an accepted batch has one event per non-blank line, each with a canonical namespace;
//! - a plain body is accepted exactly when it is UTF-8, and is the data verbatim;
//! - a refusal has a code the route documents for bodies, a JSON body naming it, and for
//!   a batch names a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sse_core::{Decoder, Event, Namespace};
use sse_hyper::fuzzing::{publish_batch, publish_single};
use sse_hyper::{ApiError, ErrorCode};

const BODY_CODES: &[ErrorCode] = &[
    ErrorCode::InvalidJson,
    ErrorCode::InvalidData,
    ErrorCode::InvalidField,
    ErrorCode::InvalidNamespace,
    ErrorCode::MissingField,
    ErrorCode::UnknownField,
    ErrorCode::EmptyBatch,
];

fn check_refusal(error: &ApiError) {
    assert!(
        BODY_CODES.contains(&error.code()),
        "unexpected code {:?}",
        error.code()
    );
    let body: Value = serde_json::from_str(&error.body()).expect("the error body is JSON");
    assert_eq!(body["error"], error.code().as_str());
    assert!(!error.detail().is_empty());
}

/// The event's fields survive the wire.
fn check_round_trip(event: &Event) {
    let encoded = event.encode().expect("an accepted event encodes");
    let mut decoder = Decoder::new().with_max_event_size(usize::MAX);
    let decoded = decoder.decode(encoded.as_bytes()).expect("no size bound");
    let data = event.data().expect("a published event has data");
    assert_eq!(decoded.len(), 1);
    assert_eq!(
        decoded[0].data,
        data.replace("\r\n", "\n").replace('\r', "\n")
    );
    let kind = event.event().filter(|kind| !kind.is_empty());
    assert_eq!(decoded[0].event_type, kind.unwrap_or("message"));
    assert_eq!(decoded[0].last_event_id, event.id().unwrap_or(""));
    assert_eq!(decoder.retry(), event.retry());
}

/// The member `name` as an optional string; `null` is absent.
fn member<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => panic!("accepted a non-string {name:?}: {other}"),
    }
}

/// An accepted JSON event holds exactly the members of its object.
fn check_members(object: &serde_json::Map<String, Value>, event: &Event, batch: bool) {
    let known: &[&str] = if batch {
        &["namespace", "event", "data", "id", "retry"]
    } else {
        &["event", "data", "id", "retry"]
    };
    assert!(object.keys().all(|key| known.contains(&key.as_str())));
    let data = match &object["data"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    assert_eq!(event.data(), Some(&*data));
    assert_eq!(event.event(), member(object, "event"));
    assert_eq!(event.id(), member(object, "id"));
    let retry = match object.get("retry") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().expect("an accepted retry is a u64")),
    };
    assert_eq!(event.retry(), retry);
}

fn single_json(body: &[u8]) {
    match publish_single(Some("application/json"), None, body) {
        Ok(event) => {
            let value: Value = serde_json::from_slice(body).expect("accepted JSON parses");
            let object = value.as_object().expect("accepted JSON is an object");
            check_members(object, &event, false);
            check_round_trip(&event);
        }
        Err(error) => {
            check_refusal(&error);
            if serde_json::from_slice::<Value>(body).is_err() {
                assert_eq!(error.code(), ErrorCode::InvalidJson);
            }
        }
    }
}

fn batch(body: &[u8]) {
    let lines: Vec<&str> = std::str::from_utf8(body)
        .map(|text| text.lines().collect())
        .unwrap_or_default();
    match publish_batch(body) {
        Ok(events) => {
            let filled: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|line| !line.trim().is_empty())
                .collect();
            assert_eq!(events.len(), filled.len(), "one event per non-blank line");
            for ((namespace, event), line) in events.iter().zip(filled) {
                assert_eq!(Namespace::parse(namespace.as_str()).as_ref(), Ok(namespace));
                let value: Value = serde_json::from_str(line).expect("accepted line parses");
                let object = value.as_object().expect("an accepted line is an object");
                let given = member(object, "namespace").expect("a line names its namespace");
                assert_eq!(Namespace::parse(given).as_ref(), Ok(namespace));
                check_members(object, event, true);
                check_round_trip(event);
            }
        }
        Err(error) => {
            check_refusal(&error);
            if let Some(rest) = error.detail().strip_prefix("line ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let line: usize = digits.parse().expect("a line number");
                assert!(
                    (1..=lines.len()).contains(&line),
                    "line {line} of {}",
                    lines.len()
                );
            }
        }
    }
}

fn plain(body: &[u8]) {
    match publish_single(Some("text/plain; charset=utf-8"), None, body) {
        Ok(event) => {
            assert_eq!(event.data().map(str::as_bytes), Some(body));
            check_round_trip(&event);
        }
        Err(error) => {
            check_refusal(&error);
            assert_eq!(error.code(), ErrorCode::InvalidData);
            assert!(std::str::from_utf8(body).is_err());
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&form, body)) = input.split_first() else {
        return;
    };
    match form {
        0 => single_json(body),
        1 => batch(body),
        _ => plain(body),
    }
});
