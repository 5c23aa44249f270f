//! The HTTP API of design.md §3–§5 over real loopback sockets, with reqwest, the
//! project's decoder, and `eventsource-stream` as an independent client.

mod common;

use std::time::Duration;

use common::{client, error_body, refused, wait_until, within, EventReader, TestServer};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use sse_core::{Event, Namespace};
use sse_hyper::{CorsOrigins, ErrorCode, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ns(s: &str) -> Namespace {
    Namespace::parse(s).unwrap()
}

/// Sends `request` as is over a fresh connection and returns the whole response.
async fn raw_request(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within("raw response", stream.read_to_end(&mut response))
        .await
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn subscribe_response_has_the_contract_headers_and_flushes_a_comment_at_once() {
    let server = TestServer::start(Server::builder()).await;
    let mut reader = EventReader::open(client().get(server.url("/subscribe/pets"))).await;
    let headers = &reader.response_headers;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["access-control-allow-origin"], "*");
    reader.read_until_raw(b": ok\n").await;
    assert!(reader.raw.starts_with(b":"), "stream starts with a comment");
}

#[tokio::test]
async fn configured_retry_is_sent_first() {
    let server =
        TestServer::start(Server::builder().retry(Some(Duration::from_millis(1500)))).await;
    let mut reader = EventReader::open(client().get(server.url("/subscribe"))).await;
    reader.read_until_raw(b"retry: 1500\n").await;
}

#[tokio::test]
async fn publish_to_child_reaches_parent_subscriber_and_never_a_sibling_prefix() {
    let server = TestServer::start(Server::builder()).await;
    let mut pets = EventReader::open(client().get(server.url("/subscribe/pets"))).await;
    let mut root = EventReader::open(client().get(server.url("/subscribe"))).await;
    let mut sitters = EventReader::open(client().get(server.url("/subscribe/petsitters/"))).await;
    server.wait_for_subscribers(3).await;

    let reply = server
        .publish("/publish/petsitters?event=hired", "Alex")
        .await;
    assert_eq!(reply["subscribers"], 2);
    let reply = server
        .publish("/publish/pets/dogs?event=new-dog", "Corgi")
        .await;
    assert_eq!(reply["namespace"], "/pets/dogs");
    assert_eq!(reply["subscribers"], 2);
    server
        .publish("/publish/pets/cats/persian?event=new-cat", "Snowball")
        .await;

    let got = pets.take(2).await;
    assert_eq!(
        (got[0].event_type.as_str(), got[0].data.as_str()),
        ("new-dog", "Corgi")
    );
    assert_eq!(
        (got[1].event_type.as_str(), got[1].data.as_str()),
        ("new-cat", "Snowball")
    );
    assert_eq!(root.take(3).await.len(), 3);
    let got = sitters.take(1).await;
    assert_eq!(got[0].data, "Alex");
    // /petsitters sees nothing more: the next event it gets is the one published now.
    server.publish("/publish/petsitters", "second").await;
    assert_eq!(sitters.take(1).await[0].data, "second");
}

#[tokio::test]
async fn publish_reply_carries_the_assigned_id_and_ids_increase() {
    let server = TestServer::start(Server::builder()).await;
    let first = server.publish("/publish/a", "1").await;
    let second = server.publish("/publish/a", "2").await;
    let first: u64 = first["id"].as_str().unwrap().parse().unwrap();
    let second: u64 = second["id"].as_str().unwrap().parse().unwrap();
    assert!(second > first);
    let custom = server.publish("/publish/a?id=order-17", "3").await;
    assert_eq!(custom["id"], "order-17");
    assert_eq!(custom["subscribers"], 0);
}

/// The encoder's edge cases, read back by an independent client.
#[tokio::test]
async fn tricky_data_round_trips_through_an_independent_client() {
    let server = TestServer::start(Server::builder()).await;
    let response = client()
        .get(server.url("/subscribe/t"))
        .send()
        .await
        .unwrap();
    let mut events = response.bytes_stream().eventsource();
    server.wait_for_subscribers(1).await;
    let cases = [
        ("line\nfeed", "line\nfeed"),
        ("carriage\rreturn", "carriage\nreturn"),
        ("cr\r\nlf", "cr\nlf"),
        (" leading space", " leading space"),
        ("  two leading spaces", "  two leading spaces"),
        ("trailing newline\n", "trailing newline\n"),
        ("", ""),
        ("unicode ✓ 🐕", "unicode ✓ 🐕"),
        (": looks like a comment", ": looks like a comment"),
        ("data: looks like a field", "data: looks like a field"),
    ];
    for (sent, _) in &cases {
        let response = client()
            .post(server.url("/publish/t"))
            .json(&serde_json::json!({ "data": sent, "event": "case" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    for (sent, expected) in &cases {
        let event = within("independent client event", events.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.event, "case");
        assert_eq!(&event.data, expected, "sent {sent:?}");
    }
}

#[tokio::test]
async fn json_publish_sends_non_string_data_as_compact_json() {
    let server = TestServer::start(Server::builder()).await;
    let mut reader = EventReader::open(client().get(server.url("/subscribe/j"))).await;
    server.wait_for_subscribers(1).await;
    let response = client()
        .post(server.url("/publish/j"))
        .json(&serde_json::json!({"event": "obj", "data": {"name": "Corgi", "legs": 4}, "id": "x1", "retry": 2000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let event = reader.take(1).await.remove(0);
    assert_eq!(event.event_type, "obj");
    assert_eq!(event.last_event_id, "x1");
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data, serde_json::json!({"name": "Corgi", "legs": 4}));
    assert!(!event.data.contains(' '), "compact JSON: {}", event.data);
    assert!(reader.raw.windows(12).any(|w| w == b"retry: 2000\n"));
}

#[tokio::test]
async fn injection_attempts_are_refused_and_nothing_is_published() {
    let server = TestServer::start(Server::builder()).await;
    let attempts = [
        "/publish/x?event=a%0Adata:%20injected",
        "/publish/x?event=a%0D",
        "/publish/x?id=1%0A%0Adata:%20evil",
        "/publish/x?id=a%00b",
        "/publish/x?retry=1%0Adata:x",
    ];
    for path in attempts {
        let response = client()
            .post(server.url(path))
            .body("payload")
            .send()
            .await
            .unwrap();
        let (status, body) = error_body(response).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"], ErrorCode::InvalidField.as_str(), "{path}");
    }
    let response = client()
        .post(server.url("/publish/x"))
        .json(&serde_json::json!({"data": "x", "event": "ok\r\nid: 666"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response).await.0, 400);
    assert_eq!(server.hub.stats().events_published, 0);
}

#[tokio::test]
async fn bad_namespaces_get_400_naming_the_rule() {
    let server = TestServer::start(Server::builder()).await;
    let cases = [
        ("/subscribe/a//b", "empty segment"),
        ("/subscribe/a/%2F/b", "A-Z a-z 0-9"),
        ("/subscribe/a%2Fb", "A-Z a-z 0-9"),
        ("/subscribe/caf%C3%A9", "A-Z a-z 0-9"),
        ("/subscribe/a%0Ab", "A-Z a-z 0-9"),
        ("/subscribe/%zz", "hexadecimal"),
    ];
    for (path, rule) in cases {
        let response = client().get(server.url(path)).send().await.unwrap();
        let (status, body) = error_body(response).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            body["error"],
            ErrorCode::InvalidNamespace.as_str(),
            "{path}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains(rule),
            "{path}: {body}"
        );
    }
    let too_long = format!("/publish/{}", "a".repeat(129));
    let response = client()
        .post(server.url(&too_long))
        .body("x")
        .send()
        .await
        .unwrap();
    let (_, body) = error_body(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("128 bytes"),
        "{body}"
    );
    let too_deep = format!("/subscribe{}", "/a".repeat(33));
    let response = client().get(server.url(&too_deep)).send().await.unwrap();
    let (_, body) = error_body(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("32 segments"),
        "{body}"
    );
    // URL libraries resolve "%2E%2E" before sending, so send that one raw.
    let raw = raw_request(
        server.addr,
        "GET /subscribe/a/%2E%2E HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("'.' or '..'"), "{raw}");
    let at_limit = format!("/subscribe{}", "/a".repeat(32));
    let response = client().get(server.url(&at_limit)).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn publish_token_is_required_when_configured() {
    let server = TestServer::start(Server::builder().publish_token("s3cret")).await;
    let url = server.url("/publish/a");
    let (status, body) = error_body(client().post(&url).body("x").send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some(ErrorCode::Unauthorized.as_str()))
    );
    let wrong = client()
        .post(&url)
        .bearer_auth("s3cre")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(wrong).await.0, 401);
    let right = client()
        .post(&url)
        .bearer_auth("s3cret")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 202);
    // Subscribing needs no token.
    let stream = client()
        .get(server.url("/subscribe/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
}

#[tokio::test]
async fn body_over_the_limit_gets_413_declared_or_streamed() {
    let server = TestServer::start(Server::builder().max_body_bytes(1024)).await;
    let url = server.url("/publish/big");
    let at_limit = client()
        .post(&url)
        .body("x".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(at_limit.status(), 202);
    let declared = client()
        .post(&url)
        .body("x".repeat(1025))
        .send()
        .await
        .unwrap();
    refused(declared, 413, ErrorCode::PayloadTooLarge).await;
    // Chunked, so the size is only known while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..5).map(|_| Ok(vec![b'y'; 300])).collect();
    let streamed = client()
        .post(&url)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(streamed).await.0, 413);
    assert_eq!(server.hub.stats().events_published, 1);
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    // Encoded, a 1 MiB body is a little over the default event limit of the same size.
    let server = TestServer::start(Server::builder().max_event_bytes(2 << 20)).await;
    let url = server.url("/publish/big");
    let response = client()
        .post(&url)
        .body("x".repeat(1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = client()
        .post(&url)
        .body("x".repeat(1024 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response).await.0, 413);
}

#[tokio::test]
async fn unsupported_content_type_gets_415() {
    let server = TestServer::start(Server::builder()).await;
    let response = client()
        .post(server.url("/publish/a"))
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    refused(response, 415, ErrorCode::UnsupportedMediaType).await;
    let batch_as_text = client()
        .post(server.url("/publish"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(batch_as_text).await.0, 415);
}

#[tokio::test]
async fn wrong_method_gets_405_with_allow_and_unknown_path_404() {
    let server = TestServer::start(Server::builder()).await;
    let response = client().get(server.url("/publish/a")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    assert_eq!(error_body(response).await.0, 405);
    let response = client()
        .post(server.url("/subscribe/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, OPTIONS");
    assert_eq!(error_body(response).await.0, 405);
    let response = client()
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response).await.0, 405);
    let response = client()
        .get(server.url("/nothing/here"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_body(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some(ErrorCode::NotFound.as_str()))
    );
}

#[tokio::test]
async fn invalid_utf8_data_is_refused() {
    let server = TestServer::start(Server::builder()).await;
    let response = client()
        .post(server.url("/publish/a"))
        .body(vec![0x66, 0xff])
        .send()
        .await
        .unwrap();
    refused(response, 400, ErrorCode::InvalidData).await;
}

#[tokio::test]
async fn options_preflight_allows_the_browser_headers() {
    let server = TestServer::start(Server::builder()).await;
    let response = client()
        .request(reqwest::Method::OPTIONS, server.url("/subscribe/pets"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("last-event-id"));
    let response = client()
        .request(reqwest::Method::OPTIONS, server.url("/publish/pets"))
        .send()
        .await
        .unwrap();
    assert!(response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
}

#[tokio::test]
async fn cors_origin_list_echoes_only_listed_origins() {
    let server = TestServer::start(
        Server::builder().cors(CorsOrigins::List(vec!["https://good.example".into()])),
    )
    .await;
    let good = client()
        .get(server.url("/subscribe/a"))
        .header("origin", "https://good.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        good.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert_eq!(good.headers()["vary"], "origin");
    let bad = client()
        .get(server.url("/subscribe/a"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn one_stream_for_several_namespaces_gets_each_event_once() {
    let server = TestServer::start(Server::builder()).await;
    let url = server.url("/subscribe?ns=/a&ns=/a/b&ns=/c/d");
    let mut reader = EventReader::open(client().get(url)).await;
    server.wait_for_subscribers(1).await;
    server.publish("/publish/a/b/x", "1").await;
    server.publish("/publish/c", "not subscribed").await;
    server.publish("/publish/c/d/e", "2").await;
    server.publish("/publish/a", "3").await;
    let data: Vec<String> = reader.take(3).await.into_iter().map(|e| e.data).collect();
    assert_eq!(data, ["1", "2", "3"]);
    let status: serde_json::Value = client()
        .get(server.url("/admin/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["connections"][0]["namespace"], "/a,/c/d");
}

#[tokio::test]
async fn more_than_64_namespaces_in_one_stream_is_refused() {
    let server = TestServer::start(Server::builder()).await;
    let query = |n: usize| {
        (0..n)
            .map(|i| format!("ns=/n{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let ok = client()
        .get(server.url(&format!("/subscribe?{}", query(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let response = client()
        .get(server.url(&format!("/subscribe?{}", query(65))))
        .send()
        .await
        .unwrap();
    refused(response, 400, ErrorCode::TooManyNamespaces).await;
}

#[tokio::test]
async fn batch_publish_reports_count_and_ids_and_delivers_in_order() {
    let server = TestServer::start(Server::builder()).await;
    let mut reader = EventReader::open(client().get(server.url("/subscribe/b"))).await;
    server.wait_for_subscribers(1).await;
    let body = "{\"namespace\":\"/b/1\",\"data\":\"one\",\"event\":\"e\"}\n\
                {\"namespace\":\"/other\",\"data\":\"elsewhere\"}\n\
                {\"namespace\":\"/b\",\"data\":{\"n\":2},\"id\":\"custom\"}\n";
    let response = client()
        .post(server.url("/publish"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["count"], 3);
    assert_eq!(reply["ids"].as_array().unwrap().len(), 3);
    assert_eq!(reply["ids"][2], "custom");
    let events = reader.take(2).await;
    assert_eq!(
        (events[0].event_type.as_str(), events[0].data.as_str()),
        ("e", "one")
    );
    assert_eq!(
        (events[1].data.as_str(), events[1].last_event_id.as_str()),
        ("{\"n\":2}", "custom")
    );
}

#[tokio::test]
async fn a_bad_line_rejects_the_whole_batch() {
    let server = TestServer::start(Server::builder()).await;
    let body = "{\"namespace\":\"/b\",\"data\":\"ok\"}\n{\"namespace\":\"/b\",\"data\":\"x\",\"event\":\"a\\nb\"}\n";
    let response = client()
        .post(server.url("/publish"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, body) = error_body(response).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().starts_with("line 2:"),
        "{body}"
    );
    assert_eq!(server.hub.stats().events_published, 0);
}

#[tokio::test]
async fn last_event_id_header_replays_what_was_missed_then_goes_live() {
    let server = TestServer::start(Server::builder()).await;
    let first = server.publish("/publish/r", "1").await;
    server.publish("/publish/r/x", "2").await;
    server.publish("/publish/elsewhere", "no").await;
    server.publish("/publish/r", "3").await;
    let request = client()
        .get(server.url("/subscribe/r"))
        .header("last-event-id", first["id"].as_str().unwrap());
    let mut reader = EventReader::open(request).await;
    let replayed: Vec<String> = reader.take(2).await.into_iter().map(|e| e.data).collect();
    assert_eq!(replayed, ["2", "3"]);
    server.publish("/publish/r", "4").await;
    assert_eq!(reader.take(1).await[0].data, "4");
}

#[tokio::test]
async fn last_event_id_query_works_for_a_first_connection_and_the_header_wins() {
    let server = TestServer::start(Server::builder()).await;
    let first = server.publish("/publish/q", "1").await;
    let second = server.publish("/publish/q", "2").await;
    server.publish("/publish/q", "3").await;
    let url = server.url(&format!(
        "/subscribe/q?lastEventId={}",
        first["id"].as_str().unwrap()
    ));
    let mut reader = EventReader::open(client().get(&url)).await;
    let data: Vec<String> = reader.take(2).await.into_iter().map(|e| e.data).collect();
    assert_eq!(data, ["2", "3"]);
    let request = client()
        .get(&url)
        .header("last-event-id", second["id"].as_str().unwrap());
    let mut reader = EventReader::open(request).await;
    assert_eq!(reader.take(1).await[0].data, "3");
}

#[tokio::test]
async fn an_id_older_than_the_history_gets_an_sse_gap_event_first() {
    let server = TestServer::start(Server::builder().history_capacity(2)).await;
    let first = server.publish("/publish/g", "1").await;
    for data in ["2", "3", "4"] {
        server.publish("/publish/g", data).await;
    }
    let request = client()
        .get(server.url("/subscribe/g"))
        .header("last-event-id", first["id"].as_str().unwrap());
    let response = request.send().await.unwrap();
    let mut events = response.bytes_stream().eventsource();
    let gap = within("gap event", events.next()).await.unwrap().unwrap();
    assert_eq!(gap.event, "sse-gap");
    let detail: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(detail["last_event_id"], first["id"]);
    for expected in ["3", "4"] {
        let event = within("replayed event", events.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.data, expected);
    }
}

/// A client reads part of a stream, drops it, and resumes with Last-Event-ID while a
/// publisher keeps publishing: the events it ends up with are exactly all of them, once
/// each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_during_publishing_loses_and_repeats_nothing() {
    const TOTAL: usize = 300;
    let server = TestServer::start(Server::builder()).await;
    let start = server.publish("/publish/live", "start").await;
    let publisher = {
        let url = server.url("/publish/live/feed");
        tokio::spawn(async move {
            let client = client();
            for i in 0..TOTAL {
                let response = client.post(&url).body(i.to_string()).send().await.unwrap();
                assert_eq!(response.status(), 202);
            }
        })
    };
    let mut received: Vec<String> = Vec::new();
    let mut last_id = start["id"].as_str().unwrap().to_owned();
    while received.len() < TOTAL {
        let request = client()
            .get(server.url("/subscribe/live"))
            .header("last-event-id", &last_id);
        let mut reader = EventReader::open(request).await;
        // Take a few events on each connection, then drop it mid-stream.
        for event in reader.take(7.min(TOTAL - received.len())).await {
            // The id a browser would resume from: that of the last event it dispatched.
            last_id = event.last_event_id;
            received.push(event.data);
        }
    }
    within("publisher", publisher).await.unwrap();
    let expected: Vec<String> = (0..TOTAL).map(|i| i.to_string()).collect();
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_cut_off_while_a_fast_one_keeps_every_event() {
    let server = TestServer::start(Server::builder().queue_capacity(8)).await;
    // The slow client: a raw socket with a small receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(server.addr).await.unwrap();
    slow.write_all(b"GET /subscribe/feed HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut fast = EventReader::open(client().get(server.url("/subscribe/feed"))).await;
    server.wait_for_subscribers(2).await;

    // Publish large events, keeping the fast reader within a few events of the publisher,
    // until the slow one has been cut off.
    let data = "z".repeat(64 * 1024);
    let mut published = 0usize;
    let mut fast_received = Vec::new();
    while server.hub.stats().lagged_cutoffs == 0 {
        assert!(published < 2_000, "the slow subscriber was never cut off");
        server
            .hub
            .publish(&ns("/feed"), Event::new(format!("{published}:{data}")))
            .unwrap();
        published += 1;
        if published > fast_received.len() + 4 {
            fast_received.push(fast.take(1).await.remove(0));
        }
    }
    for _ in 0..10 {
        server
            .hub
            .publish(&ns("/feed"), Event::new(format!("{published}:{data}")))
            .unwrap();
        published += 1;
    }
    while fast_received.len() < published {
        fast_received.push(fast.take(1).await.remove(0));
    }
    for (i, event) in fast_received.iter().enumerate() {
        assert!(
            event.data.starts_with(&format!("{i}:")),
            "fast subscriber lost or reordered event {i}"
        );
    }
    assert_eq!(server.hub.stats().lagged_cutoffs, 1);
    // The slow client's stream is freed without waiting for it to read what is pending
    // (its connection is closed with the write unfinished): only the fast one is left.
    let hub = server.hub.clone();
    wait_until("the slow stream to be freed", || {
        let server = &server;
        async move {
            let status: serde_json::Value = client()
                .get(server.url("/admin/status.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            status["connections"].as_array().map(Vec::len) == Some(1)
        }
    })
    .await;
    assert_eq!(hub.stats().subscribers, 1);
    // What the kernel had buffered can still be read, then the connection ends.
    let mut buffer = Vec::new();
    let _ = within("slow stream end", slow.read_to_end(&mut buffer)).await;
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sse_subscribers_lagged_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_get_503_with_retry_after() {
    let server = TestServer::start(Server::builder().max_connections(2)).await;
    let first = EventReader::open(client().get(server.url("/subscribe/a"))).await;
    let _second = EventReader::open(client().get(server.url("/subscribe/b"))).await;
    let response = client()
        .get(server.url("/subscribe/c"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = error_body(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some(ErrorCode::TooManyConnections.as_str()))
    );
    // Other routes still answer.
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    drop(first);
    let url = server.url("/subscribe/c");
    wait_until("a freed connection slot", || {
        let url = url.clone();
        async move { client().get(&url).send().await.unwrap().status() == 200 }
    })
    .await;
}

#[tokio::test]
async fn a_client_that_sends_no_complete_head_is_disconnected() {
    let server =
        TestServer::start(Server::builder().header_read_timeout(Duration::from_millis(300))).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    // The server closes the connection; read_to_end returns instead of hanging.
    let _ = within(
        "server to close a stalled connection",
        stream.read_to_end(&mut buffer),
    )
    .await;
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
}

#[tokio::test]
async fn idle_streams_get_keepalive_comments() {
    let server = TestServer::start(Server::builder().keepalive(Duration::from_millis(100))).await;
    let mut reader = EventReader::open(client().get(server.url("/subscribe/quiet"))).await;
    reader.read_until_raw(b": keepalive\n").await;
    let status: serde_json::Value = client()
        .get(server.url("/admin/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["keepalives_sent"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn http2_with_prior_knowledge_streams_events() {
    let server = TestServer::start(Server::builder()).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let mut reader = EventReader::open(h2.get(server.url("/subscribe/h2"))).await;
    assert_eq!(reader.version, reqwest::Version::HTTP_2);
    server.wait_for_subscribers(1).await;
    let response = h2
        .post(server.url("/publish/h2/x?event=over-h2"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let event = reader.take(1).await.remove(0);
    assert_eq!(
        (event.event_type.as_str(), event.data.as_str()),
        ("over-h2", "hello")
    );
}

#[tokio::test]
async fn graceful_shutdown_fails_health_checks_ends_streams_and_returns() {
    let mut server = TestServer::start(Server::builder().drain_delay(Duration::from_secs(5))).await;
    assert_eq!(server.get_text("/healthz").await, "ok\n");
    let mut reader = EventReader::open(client().get(server.url("/subscribe/s"))).await;
    server.wait_for_subscribers(1).await;
    server.hub.publish(&ns("/s"), Event::new("before")).unwrap();
    assert_eq!(reader.take(1).await[0].data, "before");

    server.begin_shutdown();
    // The stream ends cleanly (no error), after everything published before it.
    assert!(reader.read_to_end().await.is_empty());
    let response = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let response = client()
        .post(server.url("/publish/s"))
        .body("late")
        .send()
        .await
        .unwrap();
    let (status, body) = error_body(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some(ErrorCode::Draining.as_str()))
    );
    let response = client()
        .get(server.url("/subscribe/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response).await.0, 503);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_status_keeps_the_classic_field_names() {
    let server = TestServer::start(Server::builder().node_name("node-7")).await;
    let _reader = EventReader::open(
        client()
            .get(server.url("/subscribe/pets/dogs"))
            .header("user-agent", "status-test/1.0"),
    )
    .await;
    server.wait_for_subscribers(1).await;
    server.publish("/publish/pets/dogs", "Corgi").await;
    let status: serde_json::Value = client()
        .get(server.url("/admin/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["node"], "node-7");
    assert_eq!(status["status"], "OK");
    for field in [
        "reported_at",
        "startup_time",
        "msgs_broadcast",
        "uptime_seconds",
        "deliveries",
        "lagged_cutoffs",
    ] {
        assert!(status[field].is_number(), "{field}: {status}");
    }
    assert_eq!(status["msgs_broadcast"], 1);
    let connection = &status["connections"][0];
    assert_eq!(connection["request_path"], "/subscribe/pets/dogs");
    assert_eq!(connection["namespace"], "/pets/dogs");
    assert_eq!(connection["user_agent"], "status-test/1.0");
    assert!(connection["client_ip"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(connection["created_at"].is_number());
    assert!(connection["msgs_sent"].is_number());
    assert_eq!(status["namespaces"][0]["namespace"], "/pets/dogs");
    assert_eq!(status["namespaces"][0]["subscribers"], 1);
    assert!(status["rates"]["deliveries_per_second"].is_number());
}

#[tokio::test]
async fn admin_token_protects_the_admin_routes() {
    let server = TestServer::start(Server::builder().admin_token("adm")).await;
    for path in ["/admin/", "/admin/status.json"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(error_body(response).await.0, 401, "{path}");
        let response = client()
            .get(server.url(path))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let response = client()
            .get(server.url(&format!("{path}?token=adm")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = redirect.get(server.url("/admin")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "admin/");
}

#[tokio::test]
async fn admin_and_metrics_can_be_switched_off() {
    let server = TestServer::start(Server::builder().admin(false).metrics(false)).await;
    for path in ["/admin/", "/admin/status.json", "/metrics"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(error_body(response).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_units_in_names() {
    let server = TestServer::start(Server::builder()).await;
    let _reader = EventReader::open(client().get(server.url("/subscribe/m"))).await;
    server.wait_for_subscribers(1).await;
    server.publish("/publish/m", "x").await;
    let response = client().get(server.url("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("text"));
    let text = response.text().await.unwrap();
    for line in [
        "sse_events_published_total 1",
        "sse_deliveries_total 1",
        "sse_streams_open 1",
        "sse_subscribers 1",
        "# TYPE sse_sent_bytes counter",
        "# TYPE sse_uptime_seconds gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn service_mounts_under_a_path_prefix() {
    let server = TestServer::start(Server::builder().path_prefix("/events/")).await;
    let response = client()
        .get(server.url("/subscribe/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response).await.0, 404);
    let mut reader = EventReader::open(client().get(server.url("/events/subscribe/a"))).await;
    server.wait_for_subscribers(1).await;
    let response = client()
        .post(server.url("/events/publish/a"))
        .body("prefixed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(reader.take(1).await[0].data, "prefixed");
    assert_eq!(
        client()
            .get(server.url("/events/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The `error` member and the `access-control-allow-origin` header of an answer.
async fn error_and_cors(response: reqwest::Response) -> (u16, String, Option<String>) {
    let cors = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"].as_str().unwrap_or_default().to_owned();
    (status, code, cors)
}

/// An anonymous `POST /publish/x` as a page of `origin` sends it.
async fn publish_from(server: &TestServer, origin: &str) -> reqwest::Response {
    client()
        .post(server.url("/publish/x"))
        .header("origin", origin)
        .body("hello")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cross_site_page_cannot_publish_anonymously() {
    let server = TestServer::start(Server::builder()).await;
    // What a form or `fetch` with a "simple" content type sends, without a preflight.
    let single = client()
        .post(server.url("/publish/x"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body("pwned")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_and_cors(single).await,
        (403, "forbidden_origin".to_owned(), None)
    );
    let batch = client()
        .post(server.url("/publish"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-ndjson")
        .body("{\"namespace\": \"/x\", \"data\": \"pwned\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(error_and_cors(batch).await.1, "forbidden_origin");
    assert_eq!(server.hub.stats().events_published, 0);
    // Without an Origin (curl, ssectl, a backend) anonymous publishing still works.
    server.publish("/publish/x", "from a program").await;
}

#[tokio::test]
async fn a_listed_origin_may_publish_and_read_the_answer() {
    let server = TestServer::start(
        Server::builder().cors(CorsOrigins::List(vec!["https://app.example".into()])),
    )
    .await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/publish/x"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let listed = publish_from(&server, "https://app.example").await;
    assert_eq!(listed.status(), 202);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = publish_from(&server, "https://evil.example").await;
    assert_eq!(
        error_and_cors(other).await,
        (403, "forbidden_origin".to_owned(), None)
    );
}

#[tokio::test]
async fn with_a_publish_token_the_token_decides_and_star_grants_no_cors() {
    let server = TestServer::start(Server::builder().publish_token("s3cret")).await;
    let response = client()
        .post(server.url("/publish/x"))
        .header("origin", "https://elsewhere.example")
        .bearer_auth("s3cret")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "the `*` default is for event streams only"
    );
}

#[tokio::test]
async fn admin_metrics_and_health_answers_carry_no_cors_headers() {
    let server = TestServer::start(Server::builder()).await;
    for path in ["/admin/", "/admin/status.json", "/metrics", "/healthz"] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = client()
                .request(method.clone(), server.url(path))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "GET")
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{method} {path}");
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{method} {path}"
            );
        }
    }
    let stream = client()
        .get(server.url("/subscribe/x"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn a_foreign_host_gets_no_anonymous_publishing_or_tokenless_admin() {
    let server = TestServer::start(Server::builder()).await;
    let port = server.addr.port();
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    let foreign = format!("evil.example:{port}");
    let response = client()
        .post(server.url("/publish/x"))
        .header("host", &foreign)
        .body("pwned")
        .send()
        .await
        .unwrap();
    let body = refused_by_code(response, "forbidden_host").await;
    assert!(body["detail"].as_str().unwrap().contains("publish token"));
    let response = client()
        .get(server.url("/admin/status.json"))
        .header("host", &foreign)
        .send()
        .await
        .unwrap();
    let body = refused_by_code(response, "forbidden_host").await;
    assert!(body["detail"].as_str().unwrap().contains("admin token"));
    assert_eq!(server.hub.stats().events_published, 0);

    for host in [
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = client()
            .post(server.url("/publish/x"))
            .header("host", &host)
            .body("ok")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{host}");
        let response = client()
            .get(server.url("/admin/status.json"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    // Streams are public: any Host may subscribe.
    let stream = client()
        .get(server.url("/subscribe/x"))
        .header("host", &foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
}

#[tokio::test]
async fn with_tokens_a_foreign_host_is_served() {
    let server = TestServer::start(Server::builder().publish_token("pub").admin_token("adm")).await;
    let foreign = format!("hub.example:{}", server.addr.port());
    let response = client()
        .post(server.url("/publish/x"))
        .header("host", &foreign)
        .bearer_auth("pub")
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = client()
        .get(server.url("/admin/status.json"))
        .header("host", &foreign)
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Asserts a 403 with the JSON error `code` and returns the body.
async fn refused_by_code(response: reqwest::Response, code: &str) -> serde_json::Value {
    let (status, body) = error_body(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some(code)),
        "{body}"
    );
    body
}

/// Publishes `data` to `namespace` with the publisher's `id`; the answer's status and
/// `error` member (empty on success).
async fn publish_with_id(server: &TestServer, namespace: &str, id: &str) -> (u16, String) {
    let response = client()
        .post(server.url(&format!("/publish{namespace}?id={id}")))
        .body(format!("{namespace} {id}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_retained_id_cannot_be_reused_so_resuming_loses_nothing() {
    let server = TestServer::start(Server::builder()).await;
    for id in ["7", "8", "9"] {
        assert_eq!(publish_with_id(&server, "/orders", id).await.0, 202);
    }
    assert_eq!(
        publish_with_id(&server, "/chat", "7").await,
        (409, "duplicate_id".to_owned())
    );
    assert_eq!(server.hub.stats().events_published, 3);

    let request = client()
        .get(server.url("/subscribe/orders"))
        .header("last-event-id", "7");
    let mut reader = EventReader::open(request).await;
    server.wait_for_subscribers(1).await;
    server.publish("/publish/orders?id=10", "live").await;
    let first = reader.take(1).await.remove(0);
    assert_eq!(
        (first.event_type.as_str(), first.data.as_str()),
        ("message", "/orders 8"),
        "resuming after 7 continues with 8, without a gap"
    );
    let rest: Vec<String> = reader.take(2).await.into_iter().map(|e| e.data).collect();
    assert_eq!(rest, ["/orders 9", "live"]);
}

#[tokio::test]
async fn a_batch_with_a_retained_or_repeated_id_is_refused_whole() {
    let server = TestServer::start(Server::builder()).await;
    assert_eq!(publish_with_id(&server, "/a", "taken").await.0, 202);
    for body in [
        "{\"namespace\":\"/a\",\"data\":\"1\",\"id\":\"fresh\"}\n\
         {\"namespace\":\"/b\",\"data\":\"2\",\"id\":\"taken\"}\n",
        "{\"namespace\":\"/a\",\"data\":\"1\",\"id\":\"twice\"}\n\
         {\"namespace\":\"/b\",\"data\":\"2\"}\n\
         {\"namespace\":\"/b\",\"data\":\"3\",\"id\":\"twice\"}\n",
    ] {
        let response = client()
            .post(server.url("/publish"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("duplicate_id"))
        );
        assert!(
            body["detail"].as_str().unwrap().starts_with("line "),
            "{body}"
        );
    }
    assert_eq!(
        server.hub.stats().events_published,
        1,
        "nothing of either batch"
    );
}

#[tokio::test]
async fn server_assigned_ids_skip_an_id_a_publisher_chose() {
    let server = TestServer::start(Server::builder()).await;
    let assigned: u64 = server.publish("/publish/a", "x").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The id the server would assign after the next event, taken by a publisher first.
    let chosen = (assigned + 2).to_string();
    assert_eq!(publish_with_id(&server, "/a", &chosen).await.0, 202);
    let next = server.publish("/publish/a", "y").await;
    let next = next["id"].as_str().unwrap();
    assert_ne!(next, chosen);
    assert!(
        next.parse::<u64>().unwrap() > assigned,
        "ids still increase"
    );
}
