//! Timeouts and size limits on what clients send, over real sockets and every cleartext
//! protocol: stalled bodies, silent or idle HTTP/2 connections, peers that stop answering
//! pings, heads too large on every path, and the strings a stream keeps.
//!
//! Timeouts are short (about a second) and every wait for the server to act has the
//! suite's generous deadline; no test asserts how fast anything happens.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client, wait_until, within, EventReader, TestServer};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_hyper::{ServerBuilder, MAX_HEAD_BYTES, MAX_STORED_TEXT_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_secs(1);

/// What an HTTP/2 client with prior knowledge sends first, and an empty SETTINGS frame.
const PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// A server that waits long for anything but what `configure` shortens.
async fn server(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
    TestServer::patient(configure).await
}

async fn connect(server: &TestServer, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Reads until the server closes the connection (a reset counts), failing the test if it
/// stays open past the suite's deadline; gives back what arrived.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    within("the server to close the connection", async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    received
}

/// Asserts that an HTTP/1.1 answer is `status` with the JSON error `code`.
fn assert_refusal(answer: &[u8], status: &str, code: &str) {
    let text = String::from_utf8_lossy(answer);
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let server = server(|b| b.body_timeout(SHORT)).await;
    let mut head = b"POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Content-Length: 1048576\r\n\r\n"
        .to_vec();
    head.extend_from_slice(&[b'x'; 40_000]);
    let mut stream = connect(&server, &head).await;
    let answer = read_until_closed(&mut stream).await;
    assert_refusal(&answer, "408", "request_timeout");
    assert!(
        String::from_utf8_lossy(&answer)
            .to_ascii_lowercase()
            .contains("connection: close"),
        "the answer says that the connection closes"
    );
    assert_eq!(server.hub.stats().events_published, 0);
}

#[tokio::test]
async fn a_stalled_body_over_http2_is_answered_408() {
    let server = server(|b| b.body_timeout(SHORT)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    // Some bytes of a body that never ends.
    let (more, chunks) = tokio::sync::mpsc::channel::<Bytes>(1);
    more.send(Bytes::from_static(b"Cor")).await.unwrap();
    let body = http_body_util::StreamBody::new(
        stream_of(chunks)
            .map(|chunk| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk))),
    );
    let request = hyper::Request::post("http://127.0.0.1/publish/pets")
        .body(body)
        .unwrap();
    let response = within("response", sender.send_request(request))
        .await
        .unwrap();
    assert_eq!(
        status_and_code(response).await,
        (408, "request_timeout".into())
    );
    assert_eq!(server.hub.stats().events_published, 0);
    drop(more);
}

/// An HTTP/2 answer's status and the code of its JSON error body.
async fn status_and_code(response: hyper::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The chunks sent on `receiver`, as a stream.
fn stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn a_body_that_arrives_in_time_is_published() {
    let server = server(|b| b.body_timeout(SHORT * 30)).await;
    let mut stream = connect(
        &server,
        b"POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\
          Connection: close\r\n\r\nCorgi",
    )
    .await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with(b"HTTP/1.1 202 "));
}

#[tokio::test]
async fn an_http2_connection_that_sends_only_the_preface_is_closed() {
    let server = server(|b| b.header_read_timeout(SHORT)).await;
    let mut stream = connect(&server, PREFACE_AND_SETTINGS).await;
    read_until_closed(&mut stream).await;
}

#[tokio::test]
async fn an_http2_connection_without_a_request_in_progress_is_closed() {
    let server = server(|b| b.header_read_timeout(SHORT)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(server.url("/healthz"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within("response", sender.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok\n");
    // The connection ends from the server's side while the client keeps it.
    within("the server to close the idle connection", connection)
        .await
        .unwrap()
        .ok();
    assert!(sender.is_closed() || sender.ready().await.is_err());
}

/// One HTTP/2 frame header: its payload length, type, flags and stream id.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = length[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The HPACK block of `GET {path}` over `http` to `localhost`, with literal fields only.
fn get_headers(path: &str) -> Vec<u8> {
    // :method GET and :scheme http are in the static table (indexes 2 and 6).
    let mut block = vec![0x82, 0x86];
    // :path (name index 4) and :authority (name index 1), literal without indexing.
    for (index, value) in [(4u8, path), (1, "localhost")] {
        block.push(index);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_closed() {
    let server = server(|b| {
        b.http2_keepalive_interval(Duration::from_millis(200))
            .http2_keepalive_timeout(Duration::from_millis(200))
    })
    .await;
    // A stream opens; then this client reads but never acknowledges anything.
    let mut request = PREFACE_AND_SETTINGS.to_vec();
    const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
    request.extend(frame(
        0x1,
        END_STREAM_AND_HEADERS,
        1,
        &get_headers("/subscribe/pets"),
    ));
    let mut stream = connect(&server, &request).await;
    server.wait_for_subscribers(1).await;
    let received = read_until_closed(&mut stream).await;
    let mut frames = Vec::new();
    let mut rest = &received[..];
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        frames.push(rest[3]);
        rest = &rest[(9 + length).min(rest.len())..];
    }
    const PING: u8 = 0x6;
    assert!(frames.contains(&PING), "the server pinged: {frames:?}");
    let hub = server.hub.clone();
    wait_until("the stream to end", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
}

#[tokio::test]
async fn a_head_handed_to_hyper_does_not_restart_the_head_timeout() {
    // A head with more headers than the direct path parses goes to hyper while still
    // incomplete. Connection `a` must close on the deadline it got when accepted, so
    // before `b`, accepted later and silent throughout, whose close is the yardstick.
    let server = server(|b| b.header_read_timeout(SHORT * 2)).await;
    let mut a = connect(&server, b"GET /subscribe/pets HTTP/1.1\r\nHost: t\r\n").await;
    // A slow client: the rest of its head comes later, but well within the timeout.
    tokio::time::sleep(SHORT).await;
    let b = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(SHORT / 5).await;
    let many_headers: String = (0..70)
        .map(|i| format!("X-Header-{i}: {}\r\n", "v".repeat(120)))
        .collect();
    assert!(many_headers.len() > 8 * 1024);
    a.write_all(many_headers.as_bytes()).await.unwrap();
    let (closed, mut order) = tokio::sync::mpsc::unbounded_channel();
    for (name, mut stream) in [("a", a), ("b", b)] {
        let closed = closed.clone();
        tokio::spawn(async move {
            read_until_closed(&mut stream).await;
            let _ = closed.send(name);
        });
    }
    assert_eq!(within("a close", order.recv()).await, Some("a"));
    assert_eq!(within("b close", order.recv()).await, Some("b"));
}

/// A header line that makes any head larger than the limit.
fn oversized_header() -> String {
    format!("X-Filler: {}\r\n", "f".repeat(MAX_HEAD_BYTES + 1024))
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_431_on_every_http1_path() {
    let server = server(|b| b).await;
    let filler = oversized_header();
    for first in [
        // Read by the direct path: a subscribe request over HTTP/1.1.
        format!("GET /subscribe/pets HTTP/1.1\r\nHost: t\r\n{filler}\r\n"),
        // Requests hyper serves: HTTP/1.0, another route, a POST with a body.
        format!("GET /subscribe/pets HTTP/1.0\r\n{filler}\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{filler}\r\n"),
        format!("POST /publish/pets HTTP/1.1\r\nHost: t\r\n{filler}Content-Length: 1\r\n\r\nx"),
        // Larger than hyper itself would read: still the JSON answer.
        format!("GET /healthz HTTP/1.1\r\n{}\r\n", filler.repeat(6)),
    ] {
        let mut stream = connect(&server, first.as_bytes()).await;
        let answer = read_until_closed(&mut stream).await;
        assert_refusal(&answer, "431", "head_too_large");
    }
    // A later request of a keep-alive connection, read by hyper.
    let requests = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{filler}\r\n"
    );
    let mut stream = connect(&server, requests.as_bytes()).await;
    let answers = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&answers);
    let second = text.rfind("HTTP/1.1 ").unwrap();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert_refusal(&answers[second..], "431", "head_too_large");
    assert_eq!(server.hub.stats().events_published, 0);
    assert_eq!(server.hub.stats().subscribers, 0);
}

#[tokio::test]
async fn a_head_within_the_limit_is_served_on_the_direct_path() {
    let server = server(|b| b).await;
    let filler = "f".repeat(MAX_HEAD_BYTES - 200);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: {filler}\r\nConnection: close\r\n\r\n"
    );
    let mut stream = connect(&server, request.as_bytes()).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_431_over_http2() {
    let server = server(|b| b).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(server.url("/subscribe/pets"))
        .header("x-filler", "f".repeat(MAX_HEAD_BYTES + 1024))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within("response", sender.send_request(request))
        .await
        .unwrap();
    assert_eq!(
        status_and_code(response).await,
        (431, "head_too_large".into())
    );
    assert_eq!(server.hub.stats().subscribers, 0);
}

#[tokio::test]
async fn a_last_event_id_too_long_is_ignored() {
    let server = server(|b| b).await;
    server.publish("/publish/pets", "before").await;
    let too_long = "1".repeat(300);
    let mut reader = EventReader::open(
        client()
            .get(server.url("/subscribe/pets"))
            .header("last-event-id", &too_long),
    )
    .await;
    server.wait_for_subscribers(1).await;
    server.publish("/publish/pets", "after").await;
    // As if absent: no gap, no replay; the stream begins with live events.
    let event = reader.next_event().await.unwrap();
    assert_eq!(event.event_type, "message");
    assert_eq!(event.data, "after");
}

#[tokio::test]
async fn a_stream_keeps_at_most_256_bytes_of_its_user_agent_and_path() {
    let server = server(|b| b).await;
    // Two-byte characters, so that a cut at 256 bytes must find a character boundary.
    let user_agent = "é".repeat(500);
    let namespace: String = (0..7).map(|i| format!("/{i}{}", "n".repeat(120))).collect();
    let request = format!(
        "GET /subscribe{namespace} HTTP/1.1\r\nHost: t\r\nUser-Agent: {user_agent}\r\n\r\n"
    );
    let _stream = connect(&server, request.as_bytes()).await;
    server.wait_for_subscribers(1).await;
    let status: serde_json::Value = within(
        "status",
        client().get(server.url("/admin/status.json")).send(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let connection = &status["connections"][0];
    let kept = connection["user_agent"].as_str().unwrap();
    assert!(kept.len() <= MAX_STORED_TEXT_BYTES && kept.len() > MAX_STORED_TEXT_BYTES - 4);
    assert!(user_agent.starts_with(kept));
    let path = connection["request_path"].as_str().unwrap();
    assert_eq!(path.len(), MAX_STORED_TEXT_BYTES);
    assert!(format!("/subscribe{namespace}").starts_with(path));
}
