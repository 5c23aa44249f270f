//! Single-event publishes over HTTP/1.1 keep-alive connections, byte by byte on raw
//! loopback sockets: the server reads them itself, one after another on a connection,
//! and hands a connection to hyper at the first request it does not read itself. A client
//! must not be able to tell which requests hyper served.

mod common;

use std::time::Duration;

use common::{client, within, EventReader, TestServer};
use sse_hyper::{CorsOrigins, ServerBuilder, MAX_HEAD_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server that waits long for anything but what `configure` shortens.
async fn server(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
    TestServer::patient(configure).await
}

/// One answer as it came off the wire.
struct Answer {
    /// The status line and headers, the header names lowercased.
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn status(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (found, value) = line.split_once(':')?;
            (found == name).then(|| value.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A raw client connection that reads answers delimited by their `Content-Length`.
struct Wire {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Wire {
    async fn connect(server: &TestServer) -> Wire {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Wire {
            stream,
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; `false` once the server closed the connection.
    async fn fill(&mut self) -> bool {
        let mut buffer = [0u8; 4096];
        match self.stream.read(&mut buffer).await {
            Ok(0) | Err(_) => false,
            Ok(read) => {
                self.read.extend_from_slice(&buffer[..read]);
                true
            }
        }
    }

    /// The next whole answer (informational ones included).
    async fn answer(&mut self) -> Answer {
        within("an answer", async {
            loop {
                if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.read[..end]).into_owned();
                    let head = lowercase_names(&head);
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .map_or(0, |length| length.trim().parse().unwrap());
                    if self.read.len() >= end + 4 + length {
                        let body = self.read[end + 4..end + 4 + length].to_vec();
                        self.read.drain(..end + 4 + length);
                        return Answer { head, body };
                    }
                }
                assert!(
                    self.fill().await,
                    "closed before a whole answer; got {:?}",
                    String::from_utf8_lossy(&self.read)
                );
            }
        })
        .await
    }

    /// Waits until the server closes the connection, giving what arrived before.
    async fn closed(&mut self) -> Vec<u8> {
        within("the server to close the connection", async {
            while self.fill().await {}
        })
        .await;
        std::mem::take(&mut self.read)
    }
}

fn lowercase_names(head: &str) -> String {
    head.lines()
        .enumerate()
        .map(|(index, line)| match line.split_once(':') {
            Some((name, value)) if index > 0 => format!("{}:{value}", name.to_ascii_lowercase()),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A single publish of `body` to `/publish/{namespace}`, with `headers` (each ending
/// in CRLF) added.
fn publish(namespace: &str, body: &str, headers: &str) -> Vec<u8> {
    format!(
        "POST /publish/{namespace} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn subscriber(server: &TestServer, namespace: &str) -> EventReader {
    let reader =
        EventReader::open(client().get(server.url(&format!("/subscribe/{namespace}")))).await;
    server.wait_for_subscribers(1).await;
    reader
}

#[tokio::test]
async fn publishes_on_one_keep_alive_connection_all_reach_the_subscriber() {
    let server = server(|b| b).await;
    let mut reader = subscriber(&server, "pets").await;
    let mut wire = Wire::connect(&server).await;
    for name in ["Corgi", "Beagle", "Pug"] {
        wire.send(&publish("pets", name, "")).await;
        let answer = wire.answer().await;
        assert_eq!(answer.status(), "202", "{}", answer.head);
        assert_eq!(answer.header("connection"), None, "{}", answer.head);
        assert_eq!(answer.json()["subscribers"], 1);
        assert_eq!(answer.json()["namespace"], "/pets");
    }
    let events = reader.take(3).await;
    let data: Vec<&str> = events.iter().map(|event| event.data.as_str()).collect();
    assert_eq!(data, ["Corgi", "Beagle", "Pug"]);
}

#[tokio::test]
async fn a_publish_and_a_health_check_written_at_once_are_answered_in_order() {
    let server = server(|b| b).await;
    let mut wire = Wire::connect(&server).await;
    let mut both = publish("pets", "Corgi", "");
    both.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    both.extend_from_slice(&publish("pets", "Pug", ""));
    wire.send(&both).await;
    let first = wire.answer().await;
    assert_eq!(first.status(), "202", "{}", first.head);
    let health = wire.answer().await;
    assert_eq!(health.status(), "200", "{}", health.head);
    assert_eq!(health.body, b"ok\n");
    let last = wire.answer().await;
    assert_eq!(last.status(), "202", "{}", last.head);
    assert_eq!(server.hub.stats().events_published, 2);
}

#[tokio::test]
async fn a_body_split_across_writes_is_read_whole() {
    let server = server(|b| b).await;
    let mut reader = subscriber(&server, "pets").await;
    let mut wire = Wire::connect(&server).await;
    let request = publish("pets", "Corgi and Beagle", "");
    let (head_and_some, rest) = request.split_at(request.len() - 10);
    wire.send(head_and_some).await;
    // Nothing is answered while the body is incomplete.
    let early = tokio::time::timeout(Duration::from_millis(300), wire.fill()).await;
    assert!(early.is_err(), "answered before the body was whole");
    wire.send(rest).await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "202", "{}", answer.head);
    let event = within("the event", reader.next_event()).await.unwrap();
    assert_eq!(event.data, "Corgi and Beagle");
    // The connection is still in step.
    wire.send(&publish("pets", "Pug", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_as_hyper_answers_it_and_the_connection_closed() {
    let server = server(|b| b.body_timeout(Duration::from_secs(1))).await;
    let mut wire = Wire::connect(&server).await;
    wire.send(&publish("pets", "Corgi", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    let request = publish("pets", "Beagle", "");
    wire.send(&request[..request.len() - 2]).await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "408", "{}", answer.head);
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "{}",
        answer.head
    );
    assert_eq!(answer.json()["error"], "request_timeout");
    assert!(wire.closed().await.is_empty(), "nothing follows the 408");
    assert_eq!(server.hub.stats().events_published, 1);

    // hyper's answer to the same stall (a chunked body, which only hyper reads).
    let mut wire = Wire::connect(&server).await;
    wire.send(
        b"POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
          Transfer-Encoding: chunked\r\n\r\n4\r\nBeag",
    )
    .await;
    let hyper = wire.answer().await;
    assert_eq!(hyper.status(), "408", "{}", hyper.head);
    assert_eq!(
        hyper.body, answer.body,
        "the same JSON error, byte for byte"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_answered_413_without_waiting_for_the_body() {
    let server = server(|b| b.max_body_bytes(100)).await;
    let mut wire = Wire::connect(&server).await;
    let at_limit = "x".repeat(100);
    wire.send(&publish("pets", &at_limit, "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    // Only the head: the answer must not wait for the body.
    wire.send(b"POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 101\r\n\r\n")
        .await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "413", "{}", answer.head);
    assert_eq!(answer.json()["error"], "payload_too_large");
    assert_eq!(
        answer.json()["detail"],
        "the body is larger than the 100-byte limit"
    );
    assert_eq!(server.hub.stats().events_published, 1);
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = server(|b| b).await;
    let mut reader = subscriber(&server, "pets").await;
    let mut wire = Wire::connect(&server).await;
    wire.send(&publish("pets", "Corgi", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    let request = publish("pets", "Beagle", "Expect: 100-continue\r\n");
    let (head, body) = request.split_at(request.len() - "Beagle".len());
    wire.send(head).await;
    let interim = wire.answer().await;
    assert_eq!(interim.status(), "100", "{}", interim.head);
    wire.send(body).await;
    assert_eq!(wire.answer().await.status(), "202");
    let events = reader.take(2).await;
    assert_eq!(events[1].data, "Beagle");
}

#[tokio::test]
async fn a_chunked_publish_after_a_direct_one_is_read_by_hyper() {
    let server = server(|b| b).await;
    let mut reader = subscriber(&server, "pets").await;
    let mut wire = Wire::connect(&server).await;
    wire.send(&publish("pets", "Corgi", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    wire.send(
        b"POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
          Transfer-Encoding: chunked\r\n\r\n3\r\nPug\r\n4\r\ngles\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(wire.answer().await.status(), "202");
    // hyper keeps the connection: a next single publish is answered too.
    wire.send(&publish("pets", "Beagle", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    let events = reader.take(3).await;
    let data: Vec<&str> = events.iter().map(|event| event.data.as_str()).collect();
    assert_eq!(data, ["Corgi", "Puggles", "Beagle"]);
}

#[tokio::test]
async fn connection_close_from_the_client_closes_after_the_answer() {
    let server = server(|b| b).await;
    let mut wire = Wire::connect(&server).await;
    let mut both = publish("pets", "Corgi", "Connection: close\r\n");
    // A request after the close is never read.
    both.extend_from_slice(&publish("pets", "Pug", ""));
    wire.send(&both).await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "202", "{}", answer.head);
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "{}",
        answer.head
    );
    assert!(wire.closed().await.is_empty(), "nothing follows the answer");
    assert_eq!(server.hub.stats().events_published, 1);
}

#[tokio::test]
async fn requests_the_server_does_not_read_itself_go_to_hyper_after_a_publish() {
    let server = server(|b| b).await;
    let mut reader = subscriber(&server, "pets").await;
    let mut wire = Wire::connect(&server).await;
    wire.send(&publish("pets", "Corgi", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    let batch = "{\"namespace\":\"/pets\",\"data\":\"Pug\"}\n";
    wire.send(
        format!(
            "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n\
             Content-Length: {}\r\n\r\n{batch}",
            batch.len()
        )
        .as_bytes(),
    )
    .await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "202", "{}", answer.head);
    assert_eq!(answer.json()["count"], 1);
    wire.send(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let answer = wire.answer().await;
    assert_eq!(answer.status(), "404", "{}", answer.head);
    assert_eq!(answer.json()["error"], "not_found");
    let events = reader.take(2).await;
    let data: Vec<&str> = events.iter().map(|event| event.data.as_str()).collect();
    assert_eq!(data, ["Corgi", "Pug"]);
}

#[tokio::test]
async fn each_answer_gives_the_next_head_the_head_timeout_and_silence_then_closes() {
    let timeout = Duration::from_secs(3);
    let server = server(|b| b.header_read_timeout(timeout)).await;
    let mut wire = Wire::connect(&server).await;
    // The publishes span more than one head timeout, each within one of the answer
    // before: each answer moves the deadline (a wait, not a synchronisation).
    for (index, name) in ["Corgi", "Beagle", "Pug"].into_iter().enumerate() {
        if index > 0 {
            tokio::time::sleep(timeout * 8 / 15).await;
        }
        wire.send(&publish("pets", name, "")).await;
        assert_eq!(wire.answer().await.status(), "202");
    }
    assert!(
        wire.closed().await.is_empty(),
        "nothing follows the answers"
    );
    assert_eq!(server.hub.stats().events_published, 3);
}

#[tokio::test]
async fn a_connection_waiting_for_its_next_head_is_closed_when_shutdown_begins() {
    let mut server = server(|b| b).await;
    let mut wire = Wire::connect(&server).await;
    wire.send(&publish("pets", "Corgi", "")).await;
    assert_eq!(wire.answer().await.status(), "202");
    // Heads may take 600 s here: the close comes from the shutdown, not a timeout.
    server.begin_shutdown();
    assert!(wire.closed().await.is_empty(), "nothing follows the answer");
}

/// `POST {target}` with `headers` (each ending in CRLF, `Host` among them) and `body`,
/// framed by its length (which the server reads itself) or chunked (which hyper reads).
fn post(target: &str, headers: &str, body: &str, chunked: bool) -> Vec<u8> {
    let framed = if chunked {
        let chunk = if body.is_empty() {
            String::new()
        } else {
            format!("{:x}\r\n{body}\r\n", body.len())
        };
        format!("Transfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n")
    } else {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    };
    format!("POST {target} HTTP/1.1\r\n{headers}{framed}").into_bytes()
}

/// The server's counts of publish requests and of refused requests (`/metrics`).
async fn counts(server: &TestServer) -> [u64; 2] {
    let text = server.get_text("/metrics").await;
    [
        "sse_publish_requests_total ",
        "sse_requests_rejected_total ",
    ]
    .map(|name| {
        let count = text.lines().find_map(|line| line.strip_prefix(name));
        let count = count.unwrap_or_else(|| panic!("no {name}in {text}"));
        count.parse().unwrap()
    })
}

/// What a client can tell of an answer to a publish, but for the id it was given, and
/// how much the server's counts of publish requests and of refused requests grew.
async fn seen(server: &TestServer, request: &[u8]) -> Vec<Option<String>> {
    let before = counts(server).await;
    let mut wire = Wire::connect(server).await;
    wire.send(request).await;
    let answer = wire.answer().await;
    let after = counts(server).await;
    let grew = before
        .iter()
        .zip(after)
        .map(|(before, after)| Some(format!("+{}", after - before)));
    let mut json = answer.json();
    if let Some(id) = json.as_object_mut().and_then(|object| object.remove("id")) {
        assert!(id.is_string(), "{id}");
    }
    let mut seen = vec![Some(answer.status().to_owned()), Some(json.to_string())];
    for name in [
        "content-type",
        "vary",
        "access-control-allow-origin",
        "connection",
    ] {
        seen.push(answer.header(name).map(str::to_owned));
    }
    seen.extend(grew);
    seen
}

#[tokio::test]
async fn a_single_publish_is_answered_alike_whether_the_server_or_hyper_reads_it() {
    let listed = || CorsOrigins::List(vec!["https://app.example".to_owned()]);
    let anonymous = server(|b| b.cors(listed())).await;
    let tokens = server(|b| b.cors(listed()).publish_token("t0k")).await;
    let local = "Host: 127.0.0.1\r\n";
    let text = "Content-Type: text/plain\r\n";
    let cases: [(&TestServer, &str, String, &str); 15] = [
        (
            &anonymous,
            "/publish/pets",
            format!("{local}{text}"),
            "Corgi",
        ),
        (
            &anonymous,
            "/publish/pets?event=new",
            local.to_owned(),
            "Corgi",
        ),
        (
            &anonymous,
            "/publish/pets",
            format!("{local}{text}Origin: https://app.example\r\n"),
            "Corgi",
        ),
        (
            &anonymous,
            "/publish/pets",
            format!("{local}{text}Origin: https://evil.example\r\n"),
            "Corgi",
        ),
        (
            &anonymous,
            "/publish/pets",
            format!("Host: evil.example\r\n{text}"),
            "x",
        ),
        (
            &anonymous,
            "http://evil.example/publish/pets",
            format!("{local}{text}"),
            "x",
        ),
        (
            &anonymous,
            "/publish/pets",
            format!("{local}Content-Type: image/png\r\n"),
            "x",
        ),
        (&anonymous, "/publish/a%00b", format!("{local}{text}"), "x"),
        (
            &anonymous,
            "/publish/pets",
            format!("{local}Content-Type: application/json\r\n"),
            "{",
        ),
        (
            &anonymous,
            "/publish/pets?retry=soon",
            format!("{local}{text}"),
            "x",
        ),
        (
            &anonymous,
            "/publish/pets",
            format!("{local}{text}Connection: close\r\n"),
            "x",
        ),
        (
            &tokens,
            "/publish/pets",
            format!("Host: hub.example\r\n{text}"),
            "x",
        ),
        (
            &tokens,
            "/publish/a%00b",
            format!("Host: hub.example\r\n{text}"),
            "x",
        ),
        (
            &tokens,
            "/publish/pets",
            format!("Host: hub.example\r\n{text}Authorization: Bearer t0k\r\n"),
            "x",
        ),
        (
            &tokens,
            "/publish/pets",
            format!("Host: hub.example\r\n{text}Authorization: Bearer nope\r\n"),
            "x",
        ),
    ];
    let mut statuses = Vec::new();
    for (server, target, headers, body) in cases {
        let direct = seen(server, &post(target, &headers, body, false)).await;
        let hyper = seen(server, &post(target, &headers, body, true)).await;
        assert_eq!(direct, hyper, "{target} {headers:?} {body:?}");
        statuses.extend(direct[0].clone());
    }
    // The cases cover acceptance and each kind of refusal.
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses, ["202", "400", "401", "403", "415"]);
}

/// A head within what the server reads, but over the limit as the service measures it
/// (each header line counted as `name: value`, and these have no space), is refused
/// alike on both paths.
#[tokio::test]
async fn a_head_over_the_limit_as_measured_is_refused_alike_on_both_paths() {
    let server = server(|b| b).await;
    // Forty header lines without the space after the colon: the measure is 40 bytes
    // more than the bytes sent. The line padding the length-framed request makes both
    // framings the same size, sent and measured.
    let headers = |filler: usize, padded: bool| {
        let mut headers = "Host: 127.0.0.1\r\nContent-Type: text/plain\r\n".to_owned();
        for line in 0..40 {
            let value = if line == 0 {
                "f".repeat(filler)
            } else {
                String::new()
            };
            headers.push_str(&format!("x-filler-{line:02}:{value}\r\n"));
        }
        if padded {
            headers.push_str("X-Pad: \r\n");
        }
        headers
    };
    let head_len = |request: &[u8]| {
        let blank = request.windows(4).position(|w| w == b"\r\n\r\n");
        blank.expect("a whole head") + 4
    };
    let unfilled = head_len(&post("/publish/pets", &headers(0, true), "x", false));
    let filler = MAX_HEAD_BYTES - 20 - unfilled;
    let by_length = post("/publish/pets", &headers(filler, true), "x", false);
    let chunked = post("/publish/pets", &headers(filler, false), "x", true);
    assert_eq!(head_len(&by_length), head_len(&chunked));
    assert!(
        head_len(&by_length) <= MAX_HEAD_BYTES,
        "the server reads it whole"
    );
    assert!(
        head_len(&by_length) + 40 > MAX_HEAD_BYTES,
        "measured over the limit"
    );
    let direct = seen(&server, &by_length).await;
    let hyper = seen(&server, &chunked).await;
    assert_eq!(direct, hyper);
    assert_eq!(direct[0].as_deref(), Some("431"));
    assert_eq!(server.hub.stats().events_published, 0);
}
