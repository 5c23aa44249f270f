//! HTTPS (feature `tls`): ALPN negotiates HTTP/2 or HTTP/1.1, and events stream over both.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{within, TestServer};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_hyper::{Server, TlsConfig};
use tokio_rustls::rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

struct Identity {
    _dir: tempfile::TempDir,
    tls: TlsConfig,
    cert_der: Vec<u8>,
}

fn self_signed() -> Identity {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    Identity {
        tls: TlsConfig::from_pem_files(&cert_path, &key_path).unwrap(),
        cert_der: certified.cert.der().to_vec(),
        _dir: dir,
    }
}

async fn connect(
    server: &TestServer,
    cert_der: &[u8],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    connect_receiving(server, cert_der, alpn, None).await
}

/// [`connect`], the client's socket receiving into `receive_buffer` bytes when given.
async fn connect_receiving(
    server: &TestServer,
    cert_der: &[u8],
    alpn: &[&[u8]],
    receive_buffer: Option<u32>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(cert_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let tcp = socket.connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    within(
        "TLS handshake",
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap()
}

fn get(path: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn https_negotiates_http2_and_streams_events() {
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let tls = connect(&server, &identity.cert_der, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = within("response", sender.send_request(get("/subscribe/secure")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let mut body = response.into_body();
    let first = within("preamble", body.frame())
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(first.starts_with(b":"));
    server.wait_for_subscribers(1).await;
    server
        .hub
        .publish(
            &sse_core::Namespace::parse("/secure").unwrap(),
            sse_core::Event::new("over tls"),
        )
        .unwrap();
    let event = within("event", body.frame())
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(String::from_utf8_lossy(&event).contains("data: over tls\n\n"));
}

#[tokio::test]
async fn https_falls_back_to_http1_without_h2_in_alpn() {
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = within("response", sender.send_request(get("/healthz")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok\n");
}

#[tokio::test]
async fn https_http1_publishes_share_one_connection_then_hyper_takes_over() {
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for name in ["Corgi", "Pug"] {
        let request = hyper::Request::post("https://localhost/publish/pets")
            .header("host", "127.0.0.1")
            .header("content-type", "text/plain")
            .body(http_body_util::Full::new(Bytes::from(name)))
            .unwrap();
        let response = within("publish", sender.send_request(request))
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.into_body().collect().await.unwrap();
    }
    // A request the direct path does not read goes to hyper on the same connection.
    let health = get("/healthz").map(|_| http_body_util::Full::new(Bytes::new()));
    let response = within("health", sender.send_request(health)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!connection.is_finished(), "one connection served all three");
    assert_eq!(server.hub.stats().events_published, 2);
}

/// Reads until the server closes the connection (an error counts), failing the test if it
/// stays open past the suite's deadline.
async fn read_until_closed(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    use tokio::io::AsyncReadExt;
    within("the server to close the connection", async {
        let mut buffer = [0u8; 4096];
        while let Ok(1..) = tls.read(&mut buffer).await {}
    })
    .await;
}

/// A TLS server whose head timeout is short and whose other waits are long.
async fn impatient_server(identity: &Identity) -> TestServer {
    TestServer::start(
        Server::builder()
            .tls(identity.tls.clone())
            .header_read_timeout(std::time::Duration::from_secs(1))
            .shutdown_timeout(std::time::Duration::from_secs(600)),
    )
    .await
}

#[tokio::test]
async fn a_connection_silent_after_the_handshake_is_closed_after_the_head_timeout() {
    let identity = self_signed();
    let server = impatient_server(&identity).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let mut tls = connect(&server, &identity.cert_der, &[alpn]).await;
        read_until_closed(&mut tls).await;
    }
}

#[tokio::test]
async fn a_partial_http2_preface_is_closed_after_the_head_timeout() {
    use tokio::io::AsyncWriteExt;
    let identity = self_signed();
    let server = impatient_server(&identity).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let mut tls = connect(&server, &identity.cert_der, &[alpn]).await;
        tls.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        tls.flush().await.unwrap();
        read_until_closed(&mut tls).await;
    }
}

#[tokio::test]
async fn alpn_decides_the_protocol() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    // HTTP/2's preface and SETTINGS on a connection that negotiated HTTP/1.1.
    let mut tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut received = Vec::new();
    within("the server to answer or close", async {
        let mut buffer = [0u8; 4096];
        while let Ok(read @ 1..) = tls.read(&mut buffer).await {
            received.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    const SETTINGS: u8 = 0x4;
    assert!(
        received.get(3) != Some(&SETTINGS),
        "the server spoke HTTP/2 on an HTTP/1.1 connection: {received:?}"
    );
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_431_over_both_protocols() {
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let filler = "f".repeat(sse_hyper::MAX_HEAD_BYTES + 1024);
    let request = || {
        hyper::Request::get("https://localhost/subscribe/secure")
            .header("x-filler", filler.as_str())
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let tls = connect(&server, &identity.cert_der, &[b"h2"]).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let h2 = within("h2 response", sender.send_request(request()))
        .await
        .unwrap();
    let tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let h1 = within("h1 response", sender.send_request(request()))
        .await
        .unwrap();
    for response in [h2, h1] {
        assert_eq!(response.status(), 431);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "head_too_large");
    }
    assert_eq!(server.hub.stats().subscribers, 0);
}

#[test]
fn unreadable_pem_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let error = TlsConfig::from_pem_files(&missing, &missing).unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let error = TlsConfig::from_pem_files(&empty, &empty).unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}

/// A TLS client that subscribes over HTTP/1.1 and then reads nothing: the server's
/// writes under TLS stall, and the write timeout closes the connection and frees the
/// stream.
#[tokio::test]
async fn https_stream_whose_client_stops_reading_is_closed_after_the_write_timeout() {
    use tokio::io::AsyncWriteExt;
    let identity = self_signed();
    let server = TestServer::start(
        Server::builder()
            .tls(identity.tls.clone())
            .max_event_bytes(16 << 20)
            .write_timeout(std::time::Duration::from_millis(500)),
    )
    .await;
    let mut roots = RootCertStore::empty();
    roots.add(identity.cert_der.clone().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = within(
        "TLS handshake",
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap();
    tls.write_all(b"GET /subscribe/big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    server.wait_for_subscribers(1).await;
    server
        .hub
        .publish(
            &sse_core::Namespace::parse("/big").unwrap(),
            sse_core::Event::new("x".repeat(8 << 20)),
        )
        .unwrap();
    let hub = server.hub.clone();
    common::wait_until("the stream to be freed", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
    let status = status_over_tls(&server, &identity.cert_der).await;
    assert_eq!(status["write_timeouts"], 1, "{status}");
    assert!(status["connections"].as_array().unwrap().is_empty());
    drop(tls);
}

/// `/admin/status.json` fetched over HTTPS.
async fn status_over_tls(server: &TestServer, cert_der: &[u8]) -> serde_json::Value {
    let tls = connect(server, cert_der, &[b"http/1.1"]).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = within("status", sender.send_request(get("/admin/status.json")))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Reads from `tls` into `seen` until it holds `needle`, failing past the suite's
/// deadline or at the end of the stream.
async fn read_until(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    seen: &mut Vec<u8>,
    needle: &str,
) {
    use tokio::io::AsyncReadExt;
    let what = format!("{needle:?} over TLS");
    within(&what, async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(needle) {
            let read = tls.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the stream ended before {needle:?}: {seen:?}");
            seen.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
}

/// Over TLS with ALPN `http/1.1`, an event stream is written by the direct path, as over
/// cleartext: its head says the connection closes with the stream (hyper's would not),
/// events arrive, the server notices the client leaving, and a client that resumes with
/// `Last-Event-ID` gets what it missed.
#[tokio::test]
async fn https_http1_event_streams_are_written_directly_and_resume() {
    use tokio::io::AsyncWriteExt;
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let secure = sse_core::Namespace::parse("/secure").unwrap();
    let mut tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    tls.write_all(b"GET /subscribe/secure HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut tls, &mut seen, "\r\n\r\n").await;
    let head = String::from_utf8_lossy(&seen).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    server.wait_for_subscribers(1).await;
    let first = server
        .hub
        .publish(&secure, sse_core::Event::new("first over tls"))
        .unwrap();
    read_until(&mut tls, &mut seen, "data: first over tls\n\n").await;
    drop(tls);
    let hub = server.hub.clone();
    common::wait_until("the stream to end with its client", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
    server
        .hub
        .publish(&secure, sse_core::Event::new("missed over tls"))
        .unwrap();
    let mut tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    let resume = format!(
        "GET /subscribe/secure HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: {}\r\n\r\n",
        first.id
    );
    tls.write_all(resume.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut tls, &mut seen, "data: missed over tls\n\n").await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(!text.contains("first over tls"), "{text}");
}

/// An event larger than a TLS record (16 KiB of plaintext) arrives whole over HTTP/1.1,
/// written directly, and over HTTP/2 through hyper.
#[tokio::test]
async fn an_event_larger_than_a_tls_record_arrives_whole_over_both_protocols() {
    use tokio::io::AsyncWriteExt;
    let identity = self_signed();
    let server = TestServer::start(
        Server::builder()
            .tls(identity.tls.clone())
            .max_event_bytes(1 << 20),
    )
    .await;
    let mut http1 = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    http1
        .write_all(b"GET /subscribe/large HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let http2 = connect(&server, &identity.cert_der, &[b"h2"]).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(http2))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = within(
        "the HTTP/2 stream",
        sender.send_request(get("/subscribe/large")),
    )
    .await
    .unwrap();
    server.wait_for_subscribers(2).await;
    let data: String = (0..100_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    server
        .hub
        .publish(
            &sse_core::Namespace::parse("/large").unwrap(),
            sse_core::Event::new(format!("{data}.")),
        )
        .unwrap();
    let whole = format!("data: {data}.\n\n");

    let mut seen = Vec::new();
    read_until(&mut http1, &mut seen, &whole).await;

    let mut body = response.into_body();
    let mut seen = Vec::new();
    within("the event over HTTP/2", async {
        while !String::from_utf8_lossy(&seen).contains(&whole) {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                seen.extend_from_slice(&data);
            }
        }
    })
    .await;
}

/// A client's close_notify alone (its TCP connection still open) ends its event stream
/// and frees the subscription.
#[tokio::test]
async fn a_client_close_notify_ends_its_event_stream() {
    use tokio::io::AsyncWriteExt;
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let mut tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    tls.write_all(b"GET /subscribe/leaving HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut tls, &mut seen, "\r\n\r\n").await;
    server.wait_for_subscribers(1).await;
    tls.get_mut().1.send_close_notify();
    tls.flush().await.unwrap();
    let hub = server.hub.clone();
    common::wait_until("the stream to end with the close_notify", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
    drop(tls);
}

/// A publish that asks to close the connection gets its answer, then the server's
/// close_notify: the client reads a clean end, not a truncation.
#[tokio::test]
async fn an_answer_that_closes_the_connection_ends_with_a_close_notify() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let identity = self_signed();
    let server = TestServer::start(Server::builder().tls(identity.tls.clone())).await;
    let mut tls = connect(&server, &identity.cert_der, &[b"http/1.1"]).await;
    tls.write_all(
        b"POST /publish/closing HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
          Connection: close\r\n\r\nCorgi",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = within("the answer and the end", tls.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    read.unwrap_or_else(|error| panic!("{error} after {text:?}"));
    assert!(text.starts_with("HTTP/1.1 202 "), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert_eq!(server.hub.stats().events_published, 1);
}

/// A subscriber that does not read while many large events are published (more than the
/// sockets hold, so the server's writes wait) gets every one of them, whole and in order,
/// once it reads again.
#[tokio::test]
async fn a_stalled_reader_gets_every_event_once_it_reads_again() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const EVENTS: usize = 96;
    const FILLER: usize = 64 * 1024;
    let identity = self_signed();
    let server = TestServer::start(
        Server::builder()
            .tls(identity.tls.clone())
            .max_event_bytes(1 << 20)
            .queue_bytes(64 << 20)
            .queue_capacity(4 * EVENTS),
    )
    .await;
    let mut tls = connect_receiving(&server, &identity.cert_der, &[b"http/1.1"], Some(4096)).await;
    tls.write_all(b"GET /subscribe/stalled HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut tls, &mut seen, "\r\n\r\n").await;
    server.wait_for_subscribers(1).await;
    let stalled = sse_core::Namespace::parse("/stalled").unwrap();
    let filler = "x".repeat(FILLER);
    let data = |i: usize| format!("{i:04}:{filler}:end-{i:04}");
    for i in 0..EVENTS {
        server
            .hub
            .publish(&stalled, sse_core::Event::new(data(i)))
            .unwrap();
    }
    let last = format!("end-{:04}\n\n", EVENTS - 1);
    within("every event after the stall", async {
        let mut buffer = vec![0u8; 64 * 1024];
        // Only the tail can hold the end: searching all each time would be quadratic.
        while !seen[seen.len().saturating_sub(buffer.len() + last.len())..]
            .windows(last.len())
            .any(|window| window == last.as_bytes())
        {
            let read = tls.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the stream ended before the last event");
            seen.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    let mut cursor = 0;
    for i in 0..EVENTS {
        let line = format!("data: {}\n\n", data(i));
        let start = seen[cursor..]
            .windows(11)
            .position(|window| window == &line.as_bytes()[..11])
            .unwrap_or_else(|| panic!("event {i} is missing"));
        let start = cursor + start;
        assert!(
            seen[start..].starts_with(line.as_bytes()),
            "event {i} did not arrive whole"
        );
        cursor = start + line.len();
    }
    let status = status_over_tls(&server, &identity.cert_der).await;
    assert_eq!(status["write_timeouts"], 0, "{status}");
}
