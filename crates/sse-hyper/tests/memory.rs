//! Memory is bounded in bytes, whatever clients send or fail to read: each limit crossed
//! over real loopback sockets, and checked through what the server reports
//! (`/admin/status.json`, `/metrics`), never through its memory use.
//!
//! A client that "stops reading" is a raw socket with a 4 KiB receive buffer that never
//! reads. An event larger than any socket buffer (the kernel's send buffer is at most a
//! few MiB) guarantees that the server's write to it stays pending.

mod common;

use std::time::Duration;

use common::{client, wait_until, within, TestServer};
use sse_core::{Event, Namespace};
use sse_hyper::Server;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Larger than loopback's largest send buffer plus a 4 KiB receive buffer.
const UNWRITABLE: usize = 8 * 1024 * 1024;

/// A client that sends `request` and never reads a byte of the answer.
async fn stalled_client(server: &TestServer, request: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = within("connect", socket.connect(server.addr))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

async fn status(server: &TestServer) -> serde_json::Value {
    let response = within(
        "status",
        client().get(server.url("/admin/status.json")).send(),
    )
    .await
    .unwrap();
    response.json().await.unwrap()
}

/// The value of one metric line such as `sse_write_timeouts_total 1`.
async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.get_text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Waits until no stream is open, listed or registered.
async fn wait_until_freed(server: &TestServer) {
    wait_until("the stream to be freed", || async {
        let status = status(server).await;
        status["connections"].as_array().is_some_and(Vec::is_empty)
            && status["subscribers"] == 0
            && metric(server, "sse_streams_open").await == 0
    })
    .await;
}

fn ns(text: &str) -> Namespace {
    Namespace::parse(text).unwrap()
}

/// A subscriber of `/big` that stops reading, with one event it cannot take published.
async fn stall_on_one_large_event(server: &TestServer, request: &str) -> TcpStream {
    let stalled = stalled_client(server, request).await;
    server.wait_for_subscribers(1).await;
    server
        .hub
        .publish(&ns("/big"), Event::new("x".repeat(UNWRITABLE)))
        .unwrap();
    stalled
}

fn large_events() -> sse_hyper::ServerBuilder {
    Server::builder().max_event_bytes(2 * UNWRITABLE)
}

#[tokio::test]
async fn a_direct_stream_whose_client_stops_reading_is_closed_after_the_write_timeout() {
    let server = TestServer::start(large_events().write_timeout(Duration::from_millis(500))).await;
    let _stalled = stall_on_one_large_event(
        &server,
        "GET /subscribe/big HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    wait_until_freed(&server).await;
    assert_eq!(metric(&server, "sse_write_timeouts_total").await, 1);
    assert_eq!(status(&server).await["write_timeouts"], 1);
}

#[tokio::test]
async fn an_http10_stream_served_by_hyper_is_closed_after_the_write_timeout() {
    let server = TestServer::start(large_events().write_timeout(Duration::from_millis(500))).await;
    let _stalled = stall_on_one_large_event(&server, "GET /subscribe/big HTTP/1.0\r\n\r\n").await;
    wait_until_freed(&server).await;
    assert_eq!(metric(&server, "sse_write_timeouts_total").await, 1);
}

#[tokio::test]
async fn a_subscriber_cut_off_for_lagging_ends_even_with_a_write_pending() {
    lagging_with_a_write_pending("GET /subscribe/big HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
}

#[tokio::test]
async fn an_http10_subscriber_cut_off_for_lagging_ends_even_with_a_write_pending() {
    lagging_with_a_write_pending("GET /subscribe/big HTTP/1.0\r\n\r\n").await;
}

/// A subscriber whose write is pending for good falls behind past its queue bytes: it is
/// cut off, and its stream ends long before the write timeout.
async fn lagging_with_a_write_pending(request: &str) {
    // The write timeout is far away: only the cut-off can end the stream in time.
    let server = TestServer::start(
        large_events()
            .queue_bytes(1024 * 1024)
            .write_timeout(Duration::from_secs(600)),
    )
    .await;
    let _stalled = stall_on_one_large_event(&server, request).await;
    // The writer took the large event: its write is now pending for good.
    wait_until("the writer to take the event", || async {
        metric(&server, "sse_sent_bytes_total").await >= UNWRITABLE as u64
    })
    .await;
    for _ in 0..20 {
        server
            .hub
            .publish(&ns("/big"), Event::new("y".repeat(100 * 1024)))
            .unwrap();
    }
    assert_eq!(
        server.hub.stats().lagged_cutoffs,
        1,
        "2 MB queued past 1 MiB"
    );
    wait_until_freed(&server).await;
    assert_eq!(metric(&server, "sse_write_timeouts_total").await, 0);
}

/// 200 retained events of 100 KiB, replayed to clients that resume after an unknown id
/// and read nothing: the replay is taken a bounded piece at a time, so what the server
/// took from the history for them stays far below the 20 MB each would be owed, and the
/// write timeout frees them.
#[tokio::test]
async fn a_replay_to_clients_that_stop_reading_is_taken_in_pieces_and_freed() {
    const EVENTS: usize = 200;
    const SIZE: usize = 100 * 1024;
    const CLIENTS: usize = 3;
    let server = TestServer::start(Server::builder().write_timeout(Duration::from_secs(1))).await;
    for _ in 0..EVENTS {
        server
            .hub
            .publish(&ns("/big"), Event::new("r".repeat(SIZE)))
            .unwrap();
    }
    let request =
        "GET /subscribe/big HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: unknown\r\n\r\n";
    let mut stalled = Vec::new();
    for _ in 0..CLIENTS {
        stalled.push(stalled_client(&server, request).await);
    }
    wait_until("the replays to start", || async {
        metric(&server, "sse_streams_opened_total").await == CLIENTS as u64
    })
    .await;
    wait_until_freed(&server).await;
    assert_eq!(
        metric(&server, "sse_write_timeouts_total").await,
        CLIENTS as u64
    );
    let sent = metric(&server, "sse_sent_bytes_total").await;
    let owed = (CLIENTS * EVENTS * SIZE) as u64;
    assert!(
        sent < owed / 2,
        "{sent} bytes taken for clients that read nothing, of {owed}"
    );
}

#[tokio::test]
async fn an_event_too_large_on_the_wire_is_refused_with_413_single_or_in_a_batch() {
    let server = TestServer::start(Server::builder()).await;
    // 1 MiB of line breaks is within the body limit but six times that on the wire.
    let newlines = "\n".repeat(1024 * 1024 - 1);
    let response = within(
        "publish",
        client()
            .post(server.url("/publish/a"))
            .body(newlines.clone())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert!(
        body["detail"].as_str().unwrap().contains("on the wire"),
        "{body}"
    );

    let small = serde_json::json!({"namespace": "/a", "data": "fine"});
    let large = serde_json::json!({"namespace": "/a", "data": "\n".repeat(200 * 1024)});
    let batch = format!("{small}\n{large}\n");
    let response = within(
        "publish",
        client()
            .post(server.url("/publish"))
            .header("content-type", "application/x-ndjson")
            .body(batch)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().starts_with("line 2"),
        "{body}"
    );
    assert_eq!(
        server.hub.stats().events_published,
        0,
        "the batch is refused whole"
    );
}

#[tokio::test]
async fn the_history_keeps_at_most_its_bytes_and_a_resume_past_them_reports_a_gap() {
    let server = TestServer::start(Server::builder().history_bytes(1024 * 1024)).await;
    let data = "h".repeat(100 * 1024);
    let first = server.publish("/publish/h", &data).await;
    for _ in 0..19 {
        server.publish("/publish/h", &data).await;
    }
    let retained = status(&server).await["history_bytes"].as_u64().unwrap();
    assert!(
        retained <= 1024 * 1024 && retained > 900 * 1024,
        "{retained}"
    );
    assert_eq!(metric(&server, "sse_history_bytes").await, retained);
    let mut reader = common::EventReader::open(
        client()
            .get(server.url("/subscribe/h"))
            .header("last-event-id", first["id"].as_str().unwrap()),
    )
    .await;
    let gap = reader.next_event().await.unwrap();
    assert_eq!(gap.event_type, "sse-gap");
    let replayed = reader.take(9).await;
    assert!(replayed.iter().all(|event| event.data == data));
}

/// A socket whose reads stop for good once `paused` is set, as a client that stops
/// reading while its HTTP/2 connection stays open.
struct Pausable {
    stream: TcpStream,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for Pausable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.paused.load(std::sync::atomic::Ordering::SeqCst) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Pausable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn an_http2_connection_whose_client_stops_reading_is_closed_after_the_write_timeout() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let server = TestServer::start(large_events().write_timeout(Duration::from_millis(500))).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = within("connect", socket.connect(server.addr))
        .await
        .unwrap();
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let io = Pausable {
        stream,
        paused: std::sync::Arc::clone(&paused),
    };
    // Windows wide enough that flow control never stops the server first: the socket
    // must be what stalls.
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1 << 30)
        .initial_connection_window_size(1 << 30)
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(server.url("/subscribe/big"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = within("response", sender.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    paused.store(true, std::sync::atomic::Ordering::SeqCst);
    server.wait_for_subscribers(1).await;
    server
        .hub
        .publish(&ns("/big"), Event::new("x".repeat(UNWRITABLE)))
        .unwrap();
    wait_until_freed(&server).await;
    assert_eq!(metric(&server, "sse_write_timeouts_total").await, 1);
    connection.abort();
    drop(response);
}
