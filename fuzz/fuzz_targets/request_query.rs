//! Query strings and `Last-Event-ID`, read as `GET /subscribe...` and
//! `POST /publish/{namespace}` read them. The input holds up to three lines: the query
//! string, the `Last-Event-ID` header's value (absent without a second line), and the
//! path after `/subscribe`.
//!
//! Laws checked, for any request a client can send (a valid URI and header value):
//! - a stream asks for the namespaces of its `ns` parameters, in order, then its path's
//!   (unless the path is `/` and `ns` named some); each one canonical; at most 64 from
//!   the query, and more is `too_many_namespaces`; a bad one is `invalid_namespace`;
//! - it resumes after the `Last-Event-ID` header (its bytes read as UTF-8, U+FFFD for
//!   the rest), or else the last `lastEventId` parameter, an id longer than
//!   `MAX_LAST_EVENT_ID_BYTES` counting as absent; and the public
//!   `sse_hyper::last_event_id` finds the same id as the route;
//! - a publish takes the last `event`, `id` and `retry` parameters as the event's fields;
//!   it refuses (`invalid_field`) a `retry` that is not all ASCII digits or too large,
//!   and an `event` or `id` that cannot go on the wire.
#![no_main]

use http::{HeaderValue, Request, Uri};
use libfuzzer_sys::fuzz_target;
use sse_core::{Event, Namespace};
use sse_hyper::fuzzing::{publish_single, subscribe_request};
use sse_hyper::{ErrorCode, MAX_LAST_EVENT_ID_BYTES, MAX_NAMESPACES_PER_STREAM};

fn parameters(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn last<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn subscribe(uri: &Uri, header: Option<&HeaderValue>, parameters: &[(String, String)]) {
    let mut request = Request::get(uri.clone()).body(()).expect("a valid request");
    if let Some(value) = header {
        request.headers_mut().insert("last-event-id", value.clone());
    }
    let path_namespace = match uri.path().strip_prefix("/subscribe") {
        Some(rest) if rest.starts_with('/') => rest,
        Some("") => "/",
        _ => return,
    };
    let named: Vec<&str> = parameters
        .iter()
        .filter(|(key, _)| key == "ns")
        .map(|(_, value)| value.as_str())
        .collect();
    match subscribe_request(&request, path_namespace) {
        Ok((namespaces, last_event_id)) => {
            let mut expected: Vec<Namespace> = named
                .iter()
                .map(|text| Namespace::parse(text).expect("an accepted ns parses"))
                .collect();
            assert!(expected.len() <= MAX_NAMESPACES_PER_STREAM);
            if expected.is_empty() || path_namespace != "/" {
                expected.push(Namespace::parse(path_namespace).expect("the path parses"));
            }
            assert_eq!(namespaces, expected);
            for namespace in &namespaces {
                assert_eq!(Namespace::parse(namespace.as_str()).as_ref(), Ok(namespace));
            }
            let honoured = |id: &str| id.len() <= MAX_LAST_EVENT_ID_BYTES;
            let resume = header
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .filter(|id| honoured(id))
                .or_else(|| {
                    parameters
                        .iter()
                        .rev()
                        .find(|(key, value)| key == "lastEventId" && honoured(value))
                        .map(|(_, value)| value.clone())
                });
            assert_eq!(last_event_id, resume);
            assert_eq!(
                sse_hyper::last_event_id(&request),
                last_event_id,
                "the public helper and the route disagree on {uri}"
            );
        }
        Err(error) => match error.code() {
            ErrorCode::TooManyNamespaces => assert!(named.len() > MAX_NAMESPACES_PER_STREAM),
            ErrorCode::InvalidNamespace => {
                let bad_named = named
                    .iter()
                    .take(MAX_NAMESPACES_PER_STREAM)
                    .any(|text| Namespace::parse(text).is_err());
                assert!(bad_named || Namespace::parse(path_namespace).is_err());
            }
            other => panic!("unexpected refusal {other:?}"),
        },
    }
}

fn retry_is_valid(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u64>().is_ok()
}

fn publish(query: &str, parameters: &[(String, String)]) {
    let retries_valid = parameters
        .iter()
        .filter(|(key, _)| key == "retry")
        .all(|(_, value)| retry_is_valid(value));
    let event_type = last(parameters, "event");
    let id = last(parameters, "id");
    match publish_single(Some("text/plain"), Some(query), b"data") {
        Ok(event) => {
            assert!(retries_valid);
            assert_eq!(event.event(), event_type);
            assert_eq!(event.id(), id);
            let retry = last(parameters, "retry").map(|text| text.parse::<u64>().expect("valid"));
            assert_eq!(event.retry(), retry);
            assert_eq!(event.data(), Some("data"));
        }
        Err(error) => {
            assert_eq!(error.code(), ErrorCode::InvalidField);
            let mut fields = Event::new("data");
            if let Some(kind) = event_type {
                fields = fields.with_event(kind);
            }
            if let Some(id) = id {
                fields = fields.with_id(id);
            }
            assert!(!retries_valid || fields.validate().is_err());
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let query = lines.next().unwrap_or_default();
    let header = lines.next();
    let path = lines.next().unwrap_or_default();
    let parameters = parameters(query);
    publish(query, &parameters);

    let Ok(uri) = format!("/subscribe{path}?{query}").parse::<Uri>() else {
        return;
    };
    let header = match header.map(|value| HeaderValue::from_bytes(value.as_bytes())) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return,
        None => None,
    };
    // The route reads the URI's own query, which must be the one parsed above.
    if uri.query() != Some(query) {
        return;
    }
    subscribe(&uri, header.as_ref(), &parameters);
});
