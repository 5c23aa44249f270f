//! `ssectl tail` against a small foreign SSE server written here, which serves each
//! shared conformance vector byte for byte: tail must print exactly the vector's events,
//! send the request headers a browser sends, follow redirects, reconnect with
//! Last-Event-ID, and refuse (non-zero, one line, no events) what a browser refuses.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::run;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../sse-core/tests/conformance/vectors.json"
);

#[derive(Clone)]
struct Canned {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    location: Option<String>,
}

/// Serves `responses` in order, one per connection (the last one repeats), closing each
/// connection after its body; records every request head.
struct ForeignServer {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ForeignServer {
    fn start(responses: Vec<Canned>) -> ForeignServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for (index, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let head = read_head(&mut stream);
                recorded.lock().unwrap().push(head);
                let canned = &responses[index.min(responses.len() - 1)];
                let mut reply =
                    format!("HTTP/1.1 {} Canned\r\nconnection: close\r\n", canned.status);
                if !canned.content_type.is_empty() {
                    reply.push_str(&format!("content-type: {}\r\n", canned.content_type));
                }
                if let Some(location) = &canned.location {
                    reply.push_str(&format!("location: {location}\r\ncontent-length: 0\r\n"));
                }
                reply.push_str("\r\n");
                let _ = stream.write_all(reply.as_bytes());
                if canned.location.is_none() && canned.status != 204 {
                    let _ = stream.write_all(&canned.body);
                }
            }
        });
        ForeignServer { base, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_head(stream: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn canned(vector: &Value) -> Canned {
    let http = &vector["http"];
    Canned {
        status: http["status"].as_u64().unwrap_or(200) as u16,
        content_type: http["content_type"]
            .as_str()
            .unwrap_or("text/event-stream")
            .to_owned(),
        body: hex(vector["stream_hex"].as_str().unwrap()),
        location: None,
    }
}

fn expected_events(vector: &Value) -> Vec<Value> {
    vector["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::json!({
                "type": e.get("type").and_then(Value::as_str).unwrap_or("message"),
                "data": e["data"],
                "id": e["id"],
            })
        })
        .collect()
}

fn printed_events(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

fn check_request_headers(name: &str, head: &str, expected: &Value) {
    let Some(expected) = expected.as_object() else {
        return;
    };
    for (key, value) in expected {
        match value.as_str() {
            Some(value) => assert_eq!(
                header(head, key),
                Some(value),
                "{name}: request header {key}\n{head}"
            ),
            None => assert_eq!(
                header(head, key),
                None,
                "{name}: request header {key} must be absent\n{head}"
            ),
        }
    }
}

fn vectors() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap()
}

fn tail_json(url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["tail", url, "--format", "json"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn tail_prints_exactly_each_vectors_events_in_one_connection() {
    let all = vectors();
    let mut checked = 0;
    for vector in all
        .iter()
        .filter(|v| v["kind"] == "parse" || v["expect"] == "open")
    {
        let name = vector["name"].as_str().unwrap();
        let mut responses = vec![canned(vector)];
        if let Some(status) = vector["http"]["redirected_from_status"].as_u64() {
            responses.insert(
                0,
                Canned {
                    status: status as u16,
                    content_type: String::new(),
                    body: Vec::new(),
                    location: Some("/final".into()),
                },
            );
        }
        let server = ForeignServer::start(responses);
        let url = format!("{}/stream", server.base);
        let initial = vector["initial_last_event_id"].as_str().unwrap_or_default();
        let mut extra = vec!["--once"];
        if !initial.is_empty() {
            extra.extend(["--last-event-id", initial]);
        }
        let output = tail_json(&url, &extra);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(printed_events(&output), expected_events(vector), "{name}");
        let requests = server.requests();
        let last = requests.last().unwrap();
        assert_eq!(header(last, "accept"), Some("text/event-stream"), "{name}");
        assert_eq!(header(last, "cache-control"), Some("no-cache"), "{name}");
        let expected_id = (!initial.is_empty()).then_some(initial);
        assert_eq!(header(last, "last-event-id"), expected_id, "{name}");
        check_request_headers(name, last, &vector["request_headers_expected"]);
        if vector["http"]["redirected_from_status"].is_u64() {
            assert_eq!(requests.len(), 2, "{name}: the redirect was followed");
            assert!(last.starts_with("GET /final "), "{name}: {last}");
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} vectors");
}

#[test]
fn tail_refuses_what_a_browser_refuses_without_events_or_reconnecting() {
    let mut checked = 0;
    for vector in vectors().iter().filter(|v| v["expect"] == "fail") {
        let name = vector["name"].as_str().unwrap();
        let server = ForeignServer::start(vec![canned(vector)]);
        // No --once: a failed connection must not be retried.
        let output = tail_json(&format!("{}/stream", server.base), &["--timeout", "20s"]);
        assert!(!output.status.success(), "{name}: exit status");
        assert!(
            output.stdout.is_empty(),
            "{name}: printed {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            message.trim_end().lines().count(),
            1,
            "{name}: one line: {message}"
        );
        assert_eq!(server.requests().len(), 1, "{name}: no reconnection");
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} vectors");
}

#[test]
fn tail_reconnects_like_a_browser_between_paired_connections() {
    let all = vectors();
    let mut checked = 0;
    for first in all
        .iter()
        .filter(|v| v["name"].as_str().unwrap().ends_with("connection-1"))
    {
        let name = first["name"].as_str().unwrap();
        let second_name = name.replace("connection-1", "connection-2");
        let Some(second) = all.iter().find(|v| v["name"] == second_name.as_str()) else {
            continue;
        };
        let server = ForeignServer::start(vec![canned(first), canned(second)]);
        let mut expected = expected_events(first);
        expected.extend(expected_events(second));
        let count = expected.len().to_string();
        let output = tail_json(
            &format!("{}/stream", server.base),
            &["--count", &count, "--timeout", "20s"],
        );
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(printed_events(&output), expected, "{name}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{name}");
        let carried = first["final_last_event_id"].as_str().unwrap_or_default();
        let expected_header = (!carried.is_empty()).then_some(carried);
        assert_eq!(
            header(&requests[1], "last-event-id"),
            expected_header,
            "{name}: reconnection header"
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} pairs");
}
