//! Shared test helpers: a real server on an ephemeral loopback port, and clients.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sse_core::{Decoder, Hub, MessageEvent};
use sse_hyper::{Server, ServerBuilder};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before the test fails. Generous, so a
/// loaded machine is slow rather than flaky; a passing run never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A server running on 127.0.0.1 on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Hub,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    pub async fn start(builder: ServerBuilder) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        TestServer::start_on(listener, builder)
    }

    /// A server that waits long (600 s) for heads, bodies and shutdown, except what
    /// `configure` shortens: tests of one limit are not cut short by another.
    pub async fn patient(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        let long = Duration::from_secs(600);
        let builder = Server::builder()
            .header_read_timeout(long)
            .body_timeout(long)
            .shutdown_timeout(long);
        TestServer::start(configure(builder)).await
    }

    pub fn start_on(listener: TcpListener, builder: ServerBuilder) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let server: Server = builder.build();
        let hub = server.hub().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            hub,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The body of `GET {path}` as text, whatever its status.
    pub async fn get_text(&self, path: &str) -> String {
        let response = within("GET", client().get(self.url(path)).send())
            .await
            .expect("GET request");
        response.text().await.expect("a text body")
    }

    /// Publishes `body` with `POST {path}` (a path such as `/publish/pets?event=x`),
    /// asserts 202, and returns the JSON reply.
    pub async fn publish(&self, path: &str, body: &str) -> serde_json::Value {
        let response = within(
            "publish",
            client().post(self.url(path)).body(body.to_owned()).send(),
        )
        .await
        .expect("publish request");
        assert_eq!(response.status(), 202, "publish to {path}");
        response.json().await.expect("JSON reply")
    }

    /// Waits until the hub has at least `n` subscribers, so a following publish reaches
    /// them.
    pub async fn wait_for_subscribers(&self, n: u64) {
        let hub = self.hub.clone();
        wait_until("subscribers", || {
            let hub = hub.clone();
            async move { hub.stats().subscribers >= n }
        })
        .await;
    }

    /// Starts graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down and waits until the server has returned.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.begin_shutdown();
        let task = self.task.take().expect("running");
        within("server shutdown", task)
            .await
            .expect("server task panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Re-checks `condition` until it holds, failing the test after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Reads an event stream with the project's own decoder, keeping the raw bytes too.
pub struct EventReader {
    pub response_headers: reqwest::header::HeaderMap,
    pub version: reqwest::Version,
    body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    decoder: Decoder,
    ready: VecDeque<MessageEvent>,
    pub raw: Vec<u8>,
}

impl EventReader {
    pub async fn open(request: reqwest::RequestBuilder) -> EventReader {
        let response = within("stream response", request.send())
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "subscribe status");
        EventReader {
            response_headers: response.headers().clone(),
            version: response.version(),
            body: Box::pin(response.bytes_stream()),
            decoder: Decoder::new(),
            ready: VecDeque::new(),
            raw: Vec::new(),
        }
    }

    /// Reads one more chunk; false at the end of the stream.
    async fn read_chunk(&mut self) -> bool {
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.raw.extend_from_slice(&chunk);
                let ready = &mut self.ready;
                self.decoder
                    .feed(&chunk, |event| ready.push_back(event.to_owned()))
                    .expect("decodable stream");
                true
            }
            Some(Err(error)) => panic!("stream failed: {error}"),
            None => false,
        }
    }

    /// The next event, or `None` when the stream ends first. The deadline covers the
    /// whole wait, so keepalives cannot stretch it.
    pub async fn next_event(&mut self) -> Option<MessageEvent> {
        within("the next event", async {
            loop {
                if let Some(event) = self.ready.pop_front() {
                    return Some(event);
                }
                if !self.read_chunk().await {
                    return None;
                }
            }
        })
        .await
    }

    pub async fn take(&mut self, count: usize) -> Vec<MessageEvent> {
        let mut events = Vec::with_capacity(count);
        while events.len() < count {
            match self.next_event().await {
                Some(event) => events.push(event),
                None => panic!("stream ended after {} of {count} events", events.len()),
            }
        }
        events
    }

    /// Reads until the raw bytes contain `needle`.
    pub async fn read_until_raw(&mut self, needle: &[u8]) {
        within("expected bytes", async {
            while !self.raw.windows(needle.len()).any(|w| w == needle) {
                assert!(
                    self.read_chunk().await,
                    "stream ended before {:?}",
                    String::from_utf8_lossy(needle)
                );
            }
        })
        .await;
    }

    /// Reads to the end of the stream and returns the events not yet taken.
    pub async fn read_to_end(&mut self) -> Vec<MessageEvent> {
        within("the end of the stream", async {
            while self.read_chunk().await {}
        })
        .await;
        self.ready.drain(..).collect()
    }
}

/// The JSON error body of a refused request, checked for shape.
pub async fn error_body(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert_eq!(
        content_type, "application/json",
        "error content type (status {status})"
    );
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert!(body["error"].is_string(), "error member: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail member: {body}"
    );
    (status, body)
}

/// Asserts that `response` refuses with `status` and the machine-readable `error` code,
/// in the JSON shape every error has; returns the body for further checks.
pub async fn refused(
    response: reqwest::Response,
    status: u16,
    error: sse_hyper::ErrorCode,
) -> serde_json::Value {
    assert_eq!(error.status().as_u16(), status, "{error}'s own status");
    let (actual, body) = error_body(response).await;
    assert_eq!(
        (actual, body["error"].as_str()),
        (status, Some(error.as_str())),
        "{body}"
    );
    body
}
