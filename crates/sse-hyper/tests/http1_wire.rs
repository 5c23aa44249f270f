//! HTTP/1.1 on the wire, byte for byte, over raw loopback sockets: the server writes event
//! streams itself and gives every other request to hyper, and a client must not be able to
//! tell where one ends and the other begins.

mod common;

use std::time::Duration;

use common::{wait_until, within, TestServer};
use sse_hyper::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads from `stream` into `seen` until `needle` has arrived.
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    within(&format!("{:?}", String::from_utf8_lossy(needle)), async {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let mut buffer = [0u8; 4096];
            let read = stream.read(&mut buffer).await.unwrap();
            assert!(
                read > 0,
                "closed before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
}

async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    within("the server to close", stream.read_to_end(&mut response))
        .await
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

async fn connect(server: &TestServer, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

#[tokio::test]
async fn a_stream_is_chunked_with_a_date_and_ends_with_the_last_chunk() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(
        &server,
        b"GET /subscribe/pets HTTP/1.1\r\nHost: test\r\nOrigin: http://a.test\r\n\r\n",
    )
    .await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b": ok\n").await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let head = head.to_ascii_lowercase();
    for expected in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "transfer-encoding: chunked",
        "access-control-allow-origin: *",
        "connection: close",
        "date: ",
    ] {
        assert!(head.contains(expected), "{expected:?} missing from {head}");
    }
    assert!(!head.contains("content-length"), "{head}");
    // The first chunk is the opening comment, framed with its length in hex.
    let (size, rest) = body.split_once("\r\n").unwrap();
    let size = usize::from_str_radix(size, 16).unwrap();
    assert!(rest.as_bytes()[..size].ends_with(b": ok\n"), "{body:?}");

    server.wait_for_subscribers(1).await;
    server
        .publish("/publish/pets/dogs?event=new", "Corgi")
        .await;
    read_until(&mut stream, &mut seen, b"event: new\ndata: Corgi\n\n\r\n").await;

    server.shutdown().await.unwrap();
    let rest = read_to_end(&mut stream).await;
    assert!(
        rest.ends_with("0\r\n\r\n"),
        "the stream ends with the last chunk: {rest:?}"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_is_unsubscribed_at_once() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(&server, b"GET /subscribe/pets HTTP/1.1\r\nHost: t\r\n\r\n").await;
    read_until(&mut stream, &mut Vec::new(), b": ok\n").await;
    server.wait_for_subscribers(1).await;
    drop(stream);
    let hub = server.hub.clone();
    wait_until("the subscription to go", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
}

#[tokio::test]
async fn bytes_a_client_sends_during_a_stream_change_nothing() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(&server, b"GET /subscribe/pets HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b": ok\n").await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nnoise")
        .await
        .unwrap();
    server.wait_for_subscribers(1).await;
    server.publish("/publish/pets", "still here").await;
    read_until(&mut stream, &mut seen, b"data: still here\n\n").await;
    // Only the stream's own head: the request sent mid-stream got no answer.
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert!(!text.contains("\r\n\r\nok\n"), "{text}");
}

#[tokio::test]
async fn requests_after_a_plain_answer_are_served_on_the_same_connection() {
    let server = TestServer::start(Server::builder()).await;
    // Three requests in one write: a GET answered before hyper takes over, a POST with a
    // body, and a GET that asks to close.
    let mut stream = connect(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /publish/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello\
          GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = read_to_end(&mut stream).await;
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "202", "404"], "{text}");
    assert_eq!(server.hub.stats().events_published, 1);
}

#[tokio::test]
async fn connection_close_on_a_plain_answer_closes_after_it() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = read_to_end(&mut stream).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), length);
    assert_eq!(body.trim_end(), "ok");
}

#[tokio::test]
async fn a_large_head_within_the_limit_is_still_served() {
    let server = TestServer::start(Server::builder()).await;
    let filler = "f".repeat(12 * 1024);
    let request = format!("GET /subscribe/pets HTTP/1.1\r\nHost: t\r\nX-Filler: {filler}\r\n\r\n");
    let mut stream = connect(&server, request.as_bytes()).await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b": ok\n").await;
    assert!(seen.starts_with(b"HTTP/1.1 200 OK\r\n"));
    server.wait_for_subscribers(1).await;
    server.publish("/publish/pets", "big head").await;
    read_until(&mut stream, &mut seen, b"data: big head\n\n").await;
}

#[tokio::test]
async fn an_http10_client_gets_a_stream_delimited_by_the_close() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(&server, b"GET /subscribe/pets HTTP/1.0\r\n\r\n").await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, b": ok\n").await;
    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(text.contains(" 200 ok\r\n"), "{text}");
    assert!(
        !text.contains("transfer-encoding"),
        "HTTP/1.0 has no chunks: {text}"
    );
    server.wait_for_subscribers(1).await;
    server.publish("/publish/pets", "old client").await;
    read_until(&mut stream, &mut seen, b"data: old client\n\n").await;
}

#[tokio::test]
async fn a_malformed_request_gets_400_from_hyper() {
    let server = TestServer::start(Server::builder()).await;
    let mut stream = connect(&server, b"GET /subscribe HTTP/1.1\r\nBad Header\r\n\r\n").await;
    let text = read_to_end(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
}

#[tokio::test]
async fn differing_content_lengths_are_refused_not_smuggled() {
    let server = TestServer::start(Server::builder()).await;
    let smuggled = "GET /admin/status.json HTTP/1.1\r\nHost: t\r\n\r\n";
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let mut stream = connect(&server, request.as_bytes()).await;
    let text = read_to_end(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        !text.contains("msgs_broadcast"),
        "the body ran as a request: {text}"
    );
}

/// A server whose head-read timeout is short and whose shutdown would wait long.
async fn impatient_server() -> TestServer {
    TestServer::start(
        Server::builder()
            .header_read_timeout(Duration::from_millis(300))
            .shutdown_timeout(Duration::from_secs(600)),
    )
    .await
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_head_timeout() {
    let server = impatient_server().await;
    let mut stream = connect(&server, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let text = read_to_end(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
}

#[tokio::test]
async fn a_stalled_http2_preface_is_closed_after_the_head_timeout() {
    let server = impatient_server().await;
    let mut stream = connect(&server, b"PRI * HTTP/2.0\r\n").await;
    assert_eq!(read_to_end(&mut stream).await, "");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_connections_that_sent_nothing() {
    let server = TestServer::start(
        Server::builder()
            .header_read_timeout(Duration::from_secs(600))
            .shutdown_timeout(Duration::from_secs(600)),
    )
    .await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // The server has accepted it once it answers a request on another connection.
    let mut probe = connect(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    read_to_end(&mut probe).await;
    server.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut silent).await, "");
}
