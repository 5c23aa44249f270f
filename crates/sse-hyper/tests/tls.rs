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
    let mut roots = RootCertStore::empty();
    roots.add(cert_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
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
