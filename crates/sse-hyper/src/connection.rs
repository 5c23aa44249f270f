//! One accepted connection, from the TLS handshake (when configured) to its close: event
//! streams over HTTP/1.1 (cleartext, or TLS with ALPN `http/1.1`) are written straight to
//! the connection; everything else is served by hyper.
//!
//! # Why a direct path
//!
//! A hyper HTTP/1 connection keeps an 8–16 KiB read buffer and an 8 KiB header buffer for
//! its whole life. For a hub holding tens of thousands of mostly idle streams that is most
//! of the memory per connection, and hyper's per-write dispatch is a third of the CPU time
//! spent on each write. So HTTP/1.x requests are read here: a complete subscribe `GET`
//! over HTTP/1.1 without a body goes to [`SseService::handle`] like any other request,
//! and when the answer is an event stream this module writes the head and then each
//! frame of the [`SseBody`] as one chunk, keeping only the subscription, the connection
//! and its state.
//!
//! Single-event publishes (`POST /publish/{namespace}` over HTTP/1.1 with one plain
//! `Content-Length` within the body limit) are served here too, for their cost: hyper's
//! body channel, header map and response encoding were most of a publish's instructions.
//! The body is read here under the body timeout (what came with the head first, then
//! the socket, never past its end); one cut short reaches the route as a body that
//! failed, so its answer (`408`, or a refusal made before the body is read) is the
//! route's, and the connection then closes. Every whole answer (a `202`, a refusal) is
//! written here, and the connection stays here for its next request (the bytes read past
//! the last one first), unless either side asked for `Connection: close`.
//!
//! Any other request (another route or method, a body delimited otherwise, `Expect`,
//! `Upgrade`, HTTP/2's preface, a head with more headers than parsed here, or one not
//! parseable) is given to hyper from its first byte, with everything read and not yet
//! served replayed in front, and hyper serves the connection from then on. The HTTP
//! semantics therefore stay hyper's, apart from the head writing below.
//!
//! TLS connections are handshaken here; ALPN decides the rest. `h2` goes to hyper; any
//! other (`http/1.1`, or none) is read and served like a cleartext connection, through
//! the `TlsStream` of `tls_stream.rs` (rustls's unbuffered API), whose buffers exist only
//! while bytes wait: the start of a record not yet whole, ciphertext the socket has not
//! taken, plaintext not yet read. An idle TLS stream holds none.
//!
//! # One deadline for the first request
//!
//! A connection gets one deadline when it is accepted: the head timeout. The TLS
//! handshake, the HTTP/2 preface, the first head read here, and a first request that
//! hyper reads (HTTP/2, or a head handed over) must all be done by then; nothing restarts
//! it. Past the first request, a connection on the direct path must send its next head
//! within the head timeout of the previous answer, and one served by hyper is closed
//! when no request has been in progress for the head timeout (`idle.rs`), which bounds
//! idle HTTP/2 connections as hyper bounds idle HTTP/1.1 ones. A connection waiting for a
//! head on the direct path is closed at once when the server starts shutting down.
//!
//! # Heads too large
//!
//! A head on the direct path is read here up to [`MAX_HEAD_BYTES`], whatever its method;
//! one still incomplete then is answered `431` with the JSON error, and the connection
//! closed. Complete heads are measured again by the service (`limits.rs`), which counts
//! each header line as `name: value`, however it was spaced.
//!
//! While a stream is open the connection is also watched for reads, so a client that goes
//! away ends its subscription at once; bytes a client sends during a stream are discarded.
//!
//! # Writing with bounded memory
//!
//! A batch is written as one chunk, but assembled in pieces of at most
//! [`CHUNK_PIECE_BYTES`] in a buffer shared per thread. Only what the connection takes
//! counts as written: when it stops taking bytes, the connection keeps its place in the
//! batch (whose events it holds anyway) and assembles the rest again when it can write,
//! so no copy of a stalled piece is kept (over TLS, the TLS stream keeps the ciphertext of
//! the one record it took and the socket did not, and takes nothing more until it has
//! gone). While a write waits, the connection gives up when no bytes go out for the
//! write timeout, or at once when the subscription is cut off for lagging. Every
//! connection that hyper serves, and every TLS connection under its TLS stream, gets the
//! same write timeout through [`WriteTimeout`] around its socket.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::body::SseBody;
use crate::direct_head::{self, DirectHead, Parsed};
use crate::idle;
use crate::limits::{self, MAX_HEAD_BYTES};
use crate::moving_deadline::MovingDeadline;
use crate::request_body::{ReadBody, ReadFailure};
use crate::response_head::{self, Encoded};
use crate::service::SseService;
#[cfg(feature = "tls")]
use crate::tls_stream;
use crate::write_timeout::{CutOffs, WriteTimeout};

/// What an HTTP/2 client with prior knowledge sends first.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a connection is read from (and the bytes dropped) after an answer that
/// closes it (a refusal of its head, `Connection: close`), so that the client reads the
/// answer instead of a reset.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// A chunk is assembled and written in pieces of at most this many bytes.
const CHUNK_PIECE_BYTES: usize = 64 * 1024;
/// A request body is read from the connection in pieces of at most this many bytes.
const BODY_PIECE_BYTES: usize = 64 * 1024;
/// A batch vector that grew past this many events (a burst) is freed rather than kept.
const KEEP_BATCH_CAPACITY: usize = 256;

/// What every connection of one server shares (each connection holds it by [`Arc`]).
pub(crate) struct Serving {
    /// hyper's builder, for everything not served here.
    pub(crate) builder: auto::Builder<TokioExecutor>,
    /// How long a connection may take from its acceptance to its first request head (TLS
    /// handshake included), and stay without a request in progress afterwards.
    pub(crate) head_timeout: Duration,
    /// How long a socket may take no bytes while a write waits.
    pub(crate) write_timeout: Duration,
    /// Counts the connections closed for that.
    pub(crate) write_timeouts: Arc<AtomicU64>,
    /// Becomes `true` when the listener has closed: connections that have not sent a
    /// request yet are closed instead of being waited for.
    pub(crate) closing: watch::Receiver<bool>,
    /// The certificate, when the server speaks HTTPS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
}

/// Spawns the task that serves one accepted connection until it closes. `watcher` keeps
/// graceful shutdown waiting for it.
///
/// A spawned future is as large as its largest state, for the connection's whole life:
/// so cleartext and TLS connections are spawned as different futures, a cleartext task
/// holding no room for TLS, and each keeps only what its stream needs (see the boxed
/// states below).
pub(crate) fn spawn(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Arc<Serving>,
    watcher: Watcher,
) {
    // Events are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + serving.head_timeout;
    #[cfg(feature = "tls")]
    if serving.tls.is_some() {
        tokio::spawn(serve_tls(stream, peer, service, serving, watcher, deadline));
        return;
    }
    tokio::spawn(serve_cleartext(
        stream, peer, service, serving, watcher, deadline,
    ));
}

/// Serves a TLS connection: the handshake's future is boxed and freed once done, and the
/// session it gives is boxed and used in place, so a stream's task holds it once.
#[cfg(feature = "tls")]
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Arc<Serving>,
    watcher: Watcher,
    deadline: Instant,
) {
    let handshake = handshake(stream, peer, service, serving, watcher, deadline);
    if let Some(session) = Box::pin(handshake).await {
        session.serve().await;
    }
}

/// Serves `io` with hyper until it closes, or until no request has been in progress by
/// `first_deadline` (then for the head timeout after each request). With `cut_offs`
/// (HTTP/1.x), the subscription of every event stream answered is watched by the
/// connection's [`WriteTimeout`].
async fn serve_with_hyper<I>(
    io: I,
    peer: SocketAddr,
    service: SseService,
    cut_offs: Option<Arc<CutOffs>>,
    builder: auto::Builder<TokioExecutor>,
    (first_deadline, idle_limit): (Instant, Duration),
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (service, idle) = idle::track(service);
    let service = Watched::new(service, cut_offs);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    tokio::select! {
        served = watcher.watch(connection) => if let Err(error) = served {
            tracing::debug!(%peer, %error, "connection ended with an error");
        },
        () = idle.expired(first_deadline, idle_limit) => {
            tracing::debug!(%peer, "closed: no request in progress within the head timeout");
        }
    }
}

/// Handshakes by `deadline` (or until the server closes), giving the session to serve.
#[cfg(feature = "tls")]
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Arc<Serving>,
    watcher: Watcher,
    deadline: Instant,
) -> Option<Box<TlsSession>> {
    let tls = serving.tls.as_ref()?;
    let cut_offs = Arc::new(CutOffs::default());
    let stream = WriteTimeout::new(
        stream,
        serving.write_timeout,
        Arc::clone(&serving.write_timeouts),
    )
    .with_cut_offs(Arc::clone(&cut_offs));
    let mut closing = serving.closing.clone();
    let handshake = tokio::select! {
        handshake = tokio::time::timeout_at(deadline, tls_stream::accept(tls.server_config(), stream)) => handshake,
        _ = closing.wait_for(|closing| *closing) => {
            tracing::debug!(%peer, "closed during the TLS handshake: the server is shutting down");
            return None;
        }
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    Some(Box::new(TlsSession {
        stream,
        cut_offs,
        peer,
        service,
        serving,
        watcher,
        deadline,
    }))
}

/// A TLS connection after its handshake, and what serving it takes.
#[cfg(feature = "tls")]
struct TlsSession {
    stream: tls_stream::TlsStream<WriteTimeout<TcpStream>>,
    /// The subscriptions the socket's [`WriteTimeout`] watches (HTTP/1.x with hyper).
    cut_offs: Arc<CutOffs>,
    peer: SocketAddr,
    service: SseService,
    serving: Arc<Serving>,
    watcher: Watcher,
    /// When the first request must be in.
    deadline: Instant,
}

#[cfg(feature = "tls")]
impl TlsSession {
    /// Over HTTP/2 hands the connection to hyper; over HTTP/1.x reads the first request
    /// here like a cleartext one. The fields are used in place: moved out into locals,
    /// the session would take room in this future too.
    async fn serve(mut self: Box<Self>) {
        // ALPN settled the protocol: no detection, which would wait for bytes unbounded.
        let http2 = self.stream.alpn_protocol() == Some(b"h2");
        let first = if http2 {
            First::ToHyper {
                read: Bytes::new(),
                http2,
                deadline: self.deadline,
            }
        } else {
            // The socket under the TLS stream has the write timeout already: the direct writer
            // adds none.
            let session = &mut *self;
            let (io, service, serving) = (&mut session.stream, &session.service, &session.serving);
            serve_direct_requests(io, session.peer, service, serving, None, session.deadline).await
        };
        // HTTP/1.x past the first request, whatever the bytes, unless ALPN chose HTTP/2.
        if let First::ToHyper { read, deadline, .. } = first {
            self.into_hyper(read, http2, deadline).await;
        }
    }

    /// The session served by hyper from here on (see [`hand_over`]).
    fn into_hyper(
        self: Box<Self>,
        read: Bytes,
        http2: bool,
        deadline: Instant,
    ) -> Pin<Box<impl Future<Output = ()>>> {
        let TlsSession {
            stream,
            cut_offs,
            peer,
            service,
            serving,
            watcher,
            ..
        } = *self;
        hand_over(
            stream, read, http2, deadline, cut_offs, serving, peer, service, watcher,
        )
    }
}

/// Serves a cleartext connection: its first request here, then hyper for the rest.
async fn serve_cleartext(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Arc<Serving>,
    watcher: Watcher,
    deadline: Instant,
) {
    let timeout = Some(serving.write_timeout);
    let first =
        serve_direct_requests(&mut stream, peer, &service, &serving, timeout, deadline).await;
    if let First::ToHyper {
        read,
        http2,
        deadline,
    } = first
    {
        let cut_offs = Arc::new(CutOffs::default());
        let io = WriteTimeout::new(
            stream,
            serving.write_timeout,
            Arc::clone(&serving.write_timeouts),
        )
        .with_cut_offs(Arc::clone(&cut_offs));
        let hyper = hand_over(
            io, read, http2, deadline, cut_offs, serving, peer, service, watcher,
        );
        hyper.await;
    }
}

/// The connection served by hyper from here on, `read` replayed in front, as HTTP/2 or
/// HTTP/1 (then with `cut_offs` watched by the socket's [`WriteTimeout`]). Built here and
/// boxed, so that none of it takes room in the task of a stream served directly.
#[allow(clippy::too_many_arguments)]
fn hand_over<T>(
    io: T,
    read: Bytes,
    http2: bool,
    first_deadline: Instant,
    cut_offs: Arc<CutOffs>,
    serving: Arc<Serving>,
    peer: SocketAddr,
    service: SseService,
    watcher: Watcher,
) -> Pin<Box<impl Future<Output = ()>>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The protocol is known from the first bytes (or ALPN): no detection by hyper-util,
    // which also puts the next request under hyper's head-read timeout at once.
    let builder = if http2 {
        serving.builder.clone().http2_only()
    } else {
        serving.builder.clone().http1_only()
    };
    let io = Replayed {
        prefix: read,
        stream: io,
    };
    let limits = (first_deadline, serving.head_timeout);
    let cut_offs = (!http2).then_some(cut_offs);
    Box::pin(serve_with_hyper(
        io, peer, service, cut_offs, builder, limits, watcher,
    ))
}

/// What became of a connection on the direct path.
enum First {
    /// Answered here and closed, or failed: nothing is left to do.
    Done,
    /// For hyper: the bytes read from the connection and not served (to replay),
    /// whether they begin with the HTTP/2 preface, and when the request they begin must
    /// be in.
    ToHyper {
        read: Bytes,
        http2: bool,
        deadline: Instant,
    },
}

/// Reads request heads on the direct path: the first by `deadline`, each next one within
/// the head timeout of the answer before it (and none once the server is closing).
/// Serves subscribe and single-publish requests here, refuses a head too large, and gives
/// anything else back for hyper with every byte read so far. `write_timeout` bounds the
/// direct writer's waits, when `io` has no timeout of its own.
async fn serve_direct_requests<T>(
    io: &mut T,
    peer: SocketAddr,
    service: &SseService,
    serving: &Serving,
    write_timeout: Option<Duration>,
    deadline: Instant,
) -> First
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (max_body, _) = service.body_limits();
    let from_head = if service.publishes_from_head() {
        Served::FromHead
    } else {
        Served::Built
    };
    let serves = |method: &Method, path: &str, body_len: usize| match *method {
        Method::GET => service.is_subscribe_path(path).then_some(Served::Built),
        Method::POST => {
            (body_len <= max_body && service.is_single_publish_path(path)).then_some(from_head)
        }
        _ => None,
    };
    let mut carried = Bytes::new();
    let mut first = true;
    let mut deadline = MovingDeadline::new(deadline);
    // Waited for across requests, so registered once, not once per request; boxed, so
    // that an event stream frees it (a stream ends at shutdown by itself).
    let mut closed = None;
    loop {
        let read = if *serving.closing.borrow() {
            None
        } else {
            let reading = read_head(io, std::mem::take(&mut carried), first, serves);
            // The head first: a connection woken by its bytes polls nothing else.
            tokio::select! {
                biased;
                head = reading => Some(head),
                () = closed.get_or_insert_with(|| Box::pin(shutdown_begins(&serving.closing))) => None,
                () = deadline.reached() => {
                    tracing::debug!(%peer, "no request head within the timeout");
                    return First::Done;
                }
            }
        };
        let Some(read) = read else {
            tracing::debug!(%peer, "closed before a request: the server is shutting down");
            return First::Done;
        };
        let head = match read {
            Ok(head) => head,
            Err(error) => {
                tracing::debug!(%peer, %error, "reading the request failed");
                return First::Done;
            }
        };
        let (request, rest, body_len) = match head {
            Head::Direct {
                request,
                rest,
                body_len,
            } => (request, rest, body_len),
            Head::Http1(read) => {
                return First::ToHyper {
                    read,
                    http2: false,
                    deadline: deadline.at(),
                }
            }
            Head::Http2(read) => {
                return First::ToHyper {
                    read,
                    http2: true,
                    deadline: deadline.at(),
                }
            }
            Head::TooLarge(read) => {
                let refusal = service.refuse(limits::head_too_large(read));
                if let Err(error) = refuse(io, refusal).await {
                    tracing::debug!(%peer, %error, "answering a head too large failed");
                }
                return First::Done;
            }
        };
        if request.is_stream() {
            // An event stream may last for hours: it holds no head timer meanwhile, and
            // no wait for the shutdown.
            deadline.disarm();
            closed = None;
        }
        let writing = Writing {
            timeout: write_timeout,
            timeouts: &serving.write_timeouts,
        };
        match serve_direct(io, request, rest, body_len, service, writing).await {
            Ok(Next::Close) => return First::Done,
            Ok(Next::Continue(rest)) => {
                carried = rest;
                first = false;
                deadline.set(Instant::now() + serving.head_timeout);
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "connection ended with an error");
                return First::Done;
            }
        }
    }
}

/// Completes when the server starts shutting down (or is gone).
fn shutdown_begins(closing: &watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let mut closing = closing.clone();
    async move {
        let _ = closing.wait_for(|closing| *closing).await;
    }
}

/// Writes `refusal` and closes the connection, reading (and dropping) what the client
/// still sends for a moment, so that it reads the answer rather than a reset.
async fn refuse<T>(io: &mut T, refusal: Response<SseBody>) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (Encoded::Whole { bytes, .. } | Encoded::EventStream { head: bytes, .. }) =
        response_head::encode(refusal, true);
    io.write_all(&bytes).await?;
    shut_down_lingering(io).await
}

/// Shuts the connection down, then reads (and drops) what the client still sends for a
/// moment, so that it reads the answer just written rather than a reset.
async fn shut_down_lingering<T>(io: &mut T) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    io.shutdown().await?;
    let _ = tokio::time::timeout(
        REFUSAL_LINGER,
        std::future::poll_fn(|cx| poll_client_gone(io, cx)),
    )
    .await;
    Ok(())
}

/// What the first read of a connection found.
enum Head {
    /// A request this module serves, any bytes that followed its head (the start of its
    /// body, and maybe of the next request), and the length of its body.
    Direct {
        request: DirectRequest,
        rest: Bytes,
        body_len: usize,
    },
    /// HTTP/1.x for hyper (another request, or one not parseable here): everything read
    /// so far, to be replayed.
    Http1(Bytes),
    /// The HTTP/2 preface, and anything read after it, for hyper.
    Http2(Bytes),
    /// A head still incomplete after this many bytes, more than [`MAX_HEAD_BYTES`].
    TooLarge(usize),
}

/// How a request served on the direct path reaches the service (boxed, so that a
/// connection's task keeps no room for it while its stream lasts).
enum DirectRequest {
    /// As a request, for [`SseService::handle`]: event streams, and single publishes in
    /// cluster mode.
    Built(Box<Request<()>>),
    /// As its head, for [`SseService::publish_from_head`]: single publishes to the local
    /// hub, the most frequent request, answered without building one.
    PublishFromHead(Box<DirectHead>),
}

impl DirectRequest {
    fn method(&self) -> &Method {
        match self {
            DirectRequest::Built(request) => request.method(),
            DirectRequest::PublishFromHead(head) => head.method(),
        }
    }

    /// Whether the answer is an event stream: a `GET` (only subscribe requests come here).
    fn is_stream(&self) -> bool {
        self.method() == Method::GET
    }

    /// Whether a `Connection` header asks to close the connection after the answer.
    fn wants_close(&self) -> bool {
        match self {
            DirectRequest::Built(request) => response_head::wants_close(
                request
                    .headers()
                    .get_all(header::CONNECTION)
                    .iter()
                    .map(HeaderValue::as_bytes),
            ),
            DirectRequest::PublishFromHead(head) => {
                response_head::wants_close(head.headers_named("connection"))
            }
        }
    }
}

/// How [`read_head`] hands a request the direct path serves over to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// As an `http::Request`.
    Built,
    /// As its head ([`DirectRequest::PublishFromHead`]).
    FromHead,
}

/// What to do with the connection after a request served here.
enum Next {
    Close,
    /// Read the next request, these bytes (already read past the request) first.
    Continue(Bytes),
}

/// Reads until a request head is complete, or until it is clear that hyper should have
/// the connection; `carried` (bytes already read past the previous request) comes first.
/// Only requests that `serves` accepts (by method, path and body length) are served
/// here, as it says. The HTTP/2 preface is recognised on the `first` request only.
async fn read_head<T>(
    io: &mut T,
    carried: Bytes,
    first: bool,
    serves: impl Fn(&Method, &str, usize) -> Option<Served>,
) -> io::Result<Head>
where
    T: AsyncRead + Unpin,
{
    let mut buffer = Vec::with_capacity(1024.max(carried.len()));
    buffer.extend_from_slice(&carried);
    drop(carried);
    let mut parse_first = !buffer.is_empty();
    loop {
        if !parse_first {
            // One byte past the limit tells a head that is too large from one that fits.
            let room = 1024.min(MAX_HEAD_BYTES + 1 - buffer.len());
            read_more(io, &mut buffer, room, "closed before a request head").await?;
        }
        parse_first = false;
        if first && buffer.len() < HTTP2_PREFACE.len() && HTTP2_PREFACE.starts_with(&buffer) {
            // Read the whole preface here, under the head timeout: hyper-util's version
            // detection would wait for it without one.
            continue;
        }
        if first && buffer.starts_with(HTTP2_PREFACE) {
            return Ok(Head::Http2(Bytes::from(buffer)));
        }
        // Every HTTP/1.x head is read whole here, so that one deadline and one size limit
        // cover it, whoever serves it.
        match direct_head::parse(buffer) {
            Parsed::Direct {
                head,
                read,
                head_len,
                body_len,
            } => {
                let request = match serves(head.method(), head.uri().path(), body_len) {
                    None => return Ok(Head::Http1(read)),
                    Some(Served::FromHead) => DirectRequest::PublishFromHead(Box::new(head)),
                    Some(Served::Built) => match head.request() {
                        Some(request) => DirectRequest::Built(Box::new(request)),
                        None => return Ok(Head::Http1(read)),
                    },
                };
                return Ok(Head::Direct {
                    request,
                    rest: read.slice(head_len..),
                    body_len,
                });
            }
            Parsed::ToHyper(read) => return Ok(Head::Http1(read)),
            Parsed::Partial(read) if read.len() <= MAX_HEAD_BYTES => buffer = read,
            Parsed::Partial(read) => return Ok(Head::TooLarge(read.len())),
        }
    }
}

/// How the direct writer bounds its waits: with `timeout`, it gives up when the
/// connection takes no bytes for that long and counts it in `timeouts`; without, the
/// connection's socket has a [`WriteTimeout`] of its own (under TLS).
#[derive(Clone, Copy)]
struct Writing<'a> {
    timeout: Option<Duration>,
    timeouts: &'a AtomicU64,
}

/// Answers one request: a `POST`'s body is read first (`rest` holds its start, maybe all
/// of it), then an event stream is written until it ends, and any other answer whole.
///
/// Only what a stream needs lives across its writes: the request, the service's future
/// (boxed: its room would otherwise be in every connection's task for the stream's whole
/// life) and the response head are gone once the head is encoded. Reading a body that
/// did not come with its head, and writing what the socket did not take of a whole answer
/// at once, are boxed for the same reason.
async fn serve_direct<T>(
    io: &mut T,
    request: DirectRequest,
    mut rest: Bytes,
    body_len: usize,
    service: &SseService,
    writing: Writing<'_>,
) -> io::Result<Next>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let body = if request.method() != Method::POST {
        ReadBody::default()
    } else if rest.len() >= body_len {
        ReadBody::whole(rest.split_to(body_len))
    } else {
        let (_, timeout) = service.body_limits();
        let started = std::mem::take(&mut rest);
        Box::pin(read_body(io, started, body_len, timeout)).await
    };
    // A body cut short leaves the connection out of step: it closes after the answer.
    let complete = body.is_complete();
    let client_closes = request.wants_close() || !complete;
    let encoded = match request {
        DirectRequest::Built(request) => {
            let request = unboxed(request).map(|()| body);
            let response = Box::pin(service.handle(request)).await;
            response_head::encode(response, client_closes)
        }
        DirectRequest::PublishFromHead(head) => {
            service.publish_from_head(&head, body, client_closes)
        }
    };
    let (head, body) = match encoded {
        Encoded::EventStream { head, body } => (head, body),
        Encoded::Whole { bytes, close } => {
            // Nearly always the socket takes a small answer at once: no timer, no box. An
            // answer that closes the connection is followed by a shutdown (a close_notify
            // over TLS) and a linger, so that nothing the client still sends resets the
            // connection before it has read the answer.
            let written = if close {
                0
            } else {
                write_at_once(io, &bytes).await?
            };
            if written < bytes.len() || !flush_at_once(io).await? {
                Box::pin(write_whole(io, &bytes[written..], writing, close)).await?;
            }
            return Ok(if close {
                Next::Close
            } else {
                Next::Continue(rest)
            });
        }
    };
    drop(rest);
    let mut writer = StreamWriter { io, body, writing };
    writer.write_all(&head).await?;
    drop(head);
    writer.stream_body().await?;
    Ok(Next::Close)
}

/// Appends at most `room` more bytes from `io` to `buffer`, read into its spare capacity
/// (not zeroed first); the connection's end there is an `UnexpectedEof` saying `ended`.
async fn read_more<T>(io: &mut T, buffer: &mut Vec<u8>, room: usize, ended: &str) -> io::Result<()>
where
    T: AsyncRead + Unpin,
{
    buffer.reserve(room);
    match io.read_buf(&mut buffer.limit(room)).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            ended.to_owned(),
        )),
        _ => Ok(()),
    }
}

/// Reads the rest of a body of `length` bytes (`started` holds its first bytes) within
/// `timeout`, in pieces of at most [`BODY_PIECE_BYTES`] so that a length announced but
/// not sent takes no memory. Reads nothing past the body.
async fn read_body<T>(io: &mut T, started: Bytes, length: usize, timeout: Duration) -> ReadBody
where
    T: AsyncRead + Unpin,
{
    let mut body = Vec::with_capacity(length.min(BODY_PIECE_BYTES).max(started.len()));
    body.extend_from_slice(&started);
    drop(started);
    let reading = async {
        while body.len() < length {
            let room = (length - body.len()).min(BODY_PIECE_BYTES);
            let ended = "the client closed the connection before the end of the body";
            read_more(io, &mut body, room, ended).await?;
        }
        Ok(())
    };
    let read = tokio::time::timeout(timeout, reading).await;
    let data = Bytes::from(body);
    match read {
        Ok(Ok(())) => ReadBody::whole(data),
        Ok(Err(error)) => ReadBody::short(data, ReadFailure::Failed(error)),
        Err(_) => ReadBody::short(data, ReadFailure::TimedOut),
    }
}

/// Writes what the connection takes of `bytes` without waiting: how many bytes it took.
async fn write_at_once<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<usize> {
    poll_once(|cx| Pin::new(&mut *io).poll_write(cx, bytes))
        .await
        .unwrap_or(Ok(0))
}

/// Flushes the connection if it can be done without waiting: whether it was.
async fn flush_at_once<T: AsyncWrite + Unpin>(io: &mut T) -> io::Result<bool> {
    match poll_once(|cx| Pin::new(&mut *io).poll_flush(cx)).await {
        Some(flushed) => flushed.map(|()| true),
        None => Ok(false),
    }
}

/// Polls `poll` once: its output, or `None` when it would wait.
async fn poll_once<R>(mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> Option<R> {
    std::future::poll_fn(|cx| match poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Writes a whole answer, giving up when the connection has not taken it within the
/// write timeout (when `io` has none of its own). With `linger`, the connection is then
/// shut down and read from for a moment ([`shut_down_lingering`]).
async fn write_whole<T>(
    io: &mut T,
    bytes: &[u8],
    writing: Writing<'_>,
    linger: bool,
) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let write = async {
        io.write_all(bytes).await?;
        io.flush().await
    };
    match writing.timeout {
        None => write.await?,
        Some(timeout) => match tokio::time::timeout(timeout, write).await {
            Ok(written) => written?,
            Err(_) => {
                writing.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took no answer for {timeout:?}"),
                ));
            }
        },
    }
    if linger {
        shut_down_lingering(io).await?;
    }
    Ok(())
}

/// The request out of its box, the box freed here rather than when the caller's scope
/// ends (which for a stream is when the stream ends).
// The box is the point: taken by value, it is freed when this returns.
#[allow(clippy::boxed_local)]
fn unboxed<T>(boxed: Box<T>) -> T {
    *boxed
}

/// An event stream being written straight to its connection.
struct StreamWriter<'a, T> {
    io: &'a mut T,
    body: SseBody,
    writing: Writing<'a>,
}

impl<T> StreamWriter<'_, T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// Writes the stream until it ends (then the last chunk is written and the connection
    /// shut down) or the client goes away. Everything taken from the stream at once goes
    /// out as one chunk.
    async fn stream_body(&mut self) -> io::Result<()> {
        let mut events = Vec::new();
        loop {
            let StreamWriter { io, body, .. } = self;
            let more = std::future::poll_fn(|cx| {
                if let Poll::Ready(gone) = poll_client_gone(&mut **io, cx) {
                    return Poll::Ready(gone.map(|()| None));
                }
                body.poll_stream_into(cx, &mut events)
                    .map(|more| Ok(Some(more)))
            })
            .await?;
            match more {
                // The client closed its side.
                None => return Ok(()),
                Some(false) => {
                    self.write_all(b"0\r\n\r\n").await?;
                    return self
                        .wait_for(|io, cx, _| Pin::new(io).poll_shutdown(cx))
                        .await;
                }
                Some(true) => {}
            }
            self.write_chunk(&events).await?;
            events.clear();
            if events.capacity() > KEEP_BATCH_CAPACITY {
                events = Vec::new();
            }
        }
    }

    /// Writes `events` as one chunk, assembled a bounded piece at a time.
    async fn write_chunk(&mut self, events: &[Bytes]) -> io::Result<()> {
        let length: usize = events.iter().map(Bytes::len).sum();
        if length == 0 {
            return Ok(());
        }
        let mut chunk = ChunkParts::new(length, events);
        self.wait_for(|io, cx, progressed| {
            std::task::ready!(poll_write_pieces(io, cx, &mut chunk, progressed))?;
            Pin::new(io).poll_flush(cx)
        })
        .await
    }

    /// Writes all of `bytes`.
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        self.wait_for(|io, cx, progressed| {
            while !rest.is_empty() {
                let written = std::task::ready!(Pin::new(&mut *io).poll_write(cx, rest))?;
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                rest = &rest[written..];
                *progressed = true;
            }
            Pin::new(io).poll_flush(cx)
        })
        .await
    }

    /// Drives `write` (which writes what the connection takes without waiting, sets its
    /// flag when any byte went out, and is `Ready` once done) to its end. Fails when the
    /// connection takes no bytes for the write timeout ([`io::ErrorKind::TimedOut`],
    /// counted) or as soon as the subscription is cut off. The timer exists only while a
    /// write waits.
    async fn wait_for<W>(&mut self, mut write: W) -> io::Result<()>
    where
        W: FnMut(&mut T, &mut Context<'_>, &mut bool) -> Poll<io::Result<()>>,
    {
        let StreamWriter { io, body, writing } = self;
        let mut deadline: Option<Pin<Box<Sleep>>> = None;
        std::future::poll_fn(|cx| {
            let mut progressed = false;
            if let Poll::Ready(written) = write(&mut **io, cx, &mut progressed) {
                return Poll::Ready(written);
            }
            if let Poll::Ready(reason) = body.poll_cut_off(cx) {
                return Poll::Ready(Err(io::Error::other(format!(
                    "given up with a write pending: {reason}"
                ))));
            }
            let Some(timeout) = writing.timeout else {
                return Poll::Pending;
            };
            let sleep = match &mut deadline {
                Some(sleep) => {
                    if progressed {
                        sleep.as_mut().reset(Instant::now() + timeout);
                    }
                    sleep
                }
                None => deadline.insert(Box::pin(tokio::time::sleep(timeout))),
            };
            if sleep.as_mut().poll(cx).is_ready() {
                writing.timeouts.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took no bytes for {timeout:?}"),
                )));
            }
            Poll::Pending
        })
        .await
    }
}

thread_local! {
    /// Where chunk pieces are assembled. Copying a batch of small events into one buffer
    /// costs less than handing the kernel one slice per event, and sharing the buffer per
    /// thread keeps idle connections from each holding one.
    static CHUNK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes the chunk's pieces as far as `io` takes them without waiting; `Ready` once the
/// whole chunk is written. When `io` stops taking bytes, `chunk` is left just past the
/// last byte taken, and the rest of the piece is dropped (to be assembled again).
fn poll_write_pieces<T>(
    io: &mut T,
    cx: &mut Context<'_>,
    chunk: &mut ChunkParts<'_>,
    progressed: &mut bool,
) -> Poll<io::Result<()>>
where
    T: AsyncWrite + Unpin,
{
    CHUNK.with_borrow_mut(|piece| loop {
        piece.clear();
        let start = chunk.clone();
        if !chunk.fill(piece, CHUNK_PIECE_BYTES) {
            return Poll::Ready(Ok(()));
        }
        let mut written = 0;
        while written < piece.len() {
            match Pin::new(&mut *io).poll_write(cx, &piece[written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(count)) => {
                    written += count;
                    *progressed = true;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    *chunk = start;
                    chunk.advance(written);
                    return Poll::Pending;
                }
            }
        }
    })
}

/// The bytes of one chunk of the chunked coding, as parts (the size line, each event, the
/// closing CRLF), and how far writing got.
#[derive(Clone)]
struct ChunkParts<'a> {
    size_line: ([u8; 18], usize),
    events: &'a [Bytes],
    /// The part being copied: 0 is the size line, then the events, then the CRLF.
    part: usize,
    /// How much of that part was copied.
    offset: usize,
}

impl<'a> ChunkParts<'a> {
    fn new(length: usize, events: &'a [Bytes]) -> ChunkParts<'a> {
        ChunkParts {
            size_line: size_line(length),
            events,
            part: 0,
            offset: 0,
        }
    }

    fn part(&self, index: usize) -> Option<&[u8]> {
        match index {
            0 => Some(&self.size_line.0[self.size_line.1..]),
            i if i <= self.events.len() => Some(&self.events[i - 1]),
            i if i == self.events.len() + 1 => Some(b"\r\n"),
            _ => None,
        }
    }

    /// Copies the next bytes, up to `limit` in `out` in all; gives whether any were left.
    fn fill(&mut self, out: &mut Vec<u8>, limit: usize) -> bool {
        let mut copied_any = false;
        while out.len() < limit {
            let Some(part) = self.part(self.part) else {
                break;
            };
            let part_len = part.len();
            let take = (part_len - self.offset).min(limit - out.len());
            out.extend_from_slice(&part[self.offset..self.offset + take]);
            copied_any |= take > 0 || part_len == 0;
            self.offset += take;
            if self.offset == part_len {
                self.part += 1;
                self.offset = 0;
            }
        }
        copied_any
    }

    /// Moves past the next `count` bytes without copying them.
    fn advance(&mut self, mut count: usize) {
        while count > 0 {
            let Some(part) = self.part(self.part) else {
                return;
            };
            let part_len = part.len();
            let take = (part_len - self.offset).min(count);
            count -= take;
            self.offset += take;
            if self.offset == part_len {
                self.part += 1;
                self.offset = 0;
            }
        }
    }
}

/// The chunk size line: `length` in hex and CRLF, right-aligned in the array, with where
/// it starts.
fn size_line(length: usize) -> ([u8; 18], usize) {
    let mut line = [0u8; 18];
    line[16] = b'\r';
    line[17] = b'\n';
    let mut start = 16;
    let mut rest = length;
    loop {
        start -= 1;
        line[start] = b"0123456789abcdef"[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    (line, start)
}

/// Appends the `events`, `length` bytes in all, as one chunk of the chunked coding.
#[cfg(test)]
fn encode_chunk(out: &mut Vec<u8>, length: usize, events: &[Bytes]) {
    let mut chunk = ChunkParts::new(length, events);
    while chunk.fill(out, usize::MAX) {}
}

/// Ready once the client closed its side (`Ok`) or the connection failed; anything it
/// sends meanwhile is read and dropped.
fn poll_client_gone<T>(io: &mut T, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    T: AsyncRead + Unpin,
{
    let mut discard = [0u8; 256];
    loop {
        let mut read = ReadBuf::new(&mut discard);
        match Pin::new(&mut *io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The service as hyper serves it on one connection: on HTTP/1.x, the subscription of
/// every event stream it answers with is watched by the connection's [`WriteTimeout`], so
/// a subscriber cut off for lagging ends its connection even while a write is pending.
#[derive(Clone)]
struct Watched {
    service: idle::Tracked,
    cut_offs: Option<Arc<CutOffs>>,
}

impl Watched {
    fn new(service: idle::Tracked, cut_offs: Option<Arc<CutOffs>>) -> Watched {
        Watched { service, cut_offs }
    }
}

impl<B: crate::RequestBody> hyper::service::Service<Request<B>> for Watched {
    type Response = http::Response<idle::TrackedBody>;
    type Error = std::convert::Infallible;
    type Future = WatchedResponse<idle::TrackedFuture>;

    fn call(&self, request: Request<B>) -> Self::Future {
        WatchedResponse {
            response: hyper::service::Service::call(&self.service, request),
            cut_offs: self.cut_offs.clone(),
        }
    }
}

/// The answer of [`Watched`]: registers an event stream's subscription as it comes out.
struct WatchedResponse<F> {
    response: F,
    cut_offs: Option<Arc<CutOffs>>,
}

impl<F> std::future::Future for WatchedResponse<F>
where
    F: std::future::Future<
            Output = Result<http::Response<idle::TrackedBody>, std::convert::Infallible>,
        > + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let answered = std::task::ready!(Pin::new(&mut self.response).poll(cx));
        if let (Ok(response), Some(cut_offs)) = (&answered, &self.cut_offs) {
            if let Some(watch) = response.body().subscription_watch() {
                cut_offs.add(watch);
            }
        }
        Poll::Ready(answered)
    }
}

/// A connection with bytes already read from it put back in front, for hyper.
struct Replayed<T> {
    prefix: Bytes,
    stream: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Replayed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let take = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..take]);
            self.prefix.advance(take);
            if self.prefix.is_empty() {
                // Free the read buffer the prefix was cut from.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replayed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_their_length_in_hex() {
        let events = [
            Bytes::from_static(b"data: a\n\n"),
            Bytes::new(),
            Bytes::from_static(b"data: bcd\n\n"),
            Bytes::from_static(b"data: e\n\n"),
        ];
        let mut out = Vec::new();
        encode_chunk(&mut out, 29, &events);
        assert_eq!(out, b"1d\r\ndata: a\n\ndata: bcd\n\ndata: e\n\n\r\n");
        out.clear();
        encode_chunk(&mut out, 4096, &[Bytes::from(vec![b'x'; 4096])]);
        assert!(out.starts_with(b"1000\r\nxx"));
    }

    /// A connection that takes at most `step` bytes per write, and is full at every other
    /// write.
    struct Trickle {
        taken: Vec<u8>,
        step: usize,
        full: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.full = !self.full;
            if self.full {
                return Poll::Pending;
            }
            let count = buf.len().min(self.step);
            self.taken.extend_from_slice(&buf[..count]);
            Poll::Ready(Ok(count))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_chunk_resumes_after_the_bytes_the_connection_took() {
        let mut events: Vec<Bytes> = (0..300)
            .map(|i| Bytes::from(format!("id: {i}\ndata: event {i}\n\n")))
            .collect();
        events.insert(7, Bytes::from(vec![b'x'; CHUNK_PIECE_BYTES + 100]));
        events.insert(9, Bytes::new());
        let length = events.iter().map(Bytes::len).sum();
        let mut expected = Vec::new();
        encode_chunk(&mut expected, length, &events);
        let mut connection = Trickle {
            taken: Vec::new(),
            step: 1000,
            full: false,
        };
        let mut chunk = ChunkParts::new(length, &events);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut progressed = false;
        let mut stalls = 0;
        while poll_write_pieces(&mut connection, &mut cx, &mut chunk, &mut progressed).is_pending()
        {
            stalls += 1;
            assert!(stalls < 1_000_000, "the chunk never completes");
        }
        assert!(stalls > 1 && progressed);
        assert_eq!(connection.taken.len(), expected.len());
        assert!(
            connection.taken == expected,
            "the bytes went out in order, once each"
        );
    }

    /// A connected pair of loopback sockets.
    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn replayed_bytes_come_first_then_the_socket_in_order() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut peer, stream) = socket_pair().await;
        let mut replayed = Replayed {
            prefix: Bytes::from_static(b"GET / HTTP/1.1\r\n"),
            stream,
        };
        peer.write_all(b"Host: t\r\n\r\n").await.unwrap();
        drop(peer);
        // A small buffer takes the prefix in pieces, as hyper's reads may.
        let mut received = Vec::new();
        let mut piece = [0u8; 5];
        loop {
            let read = replayed.read(&mut piece).await.unwrap();
            if read == 0 {
                break;
            }
            received.extend_from_slice(&piece[..read]);
        }
        assert_eq!(received, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    }

    #[tokio::test]
    async fn a_consumed_prefix_lets_go_of_its_buffer() {
        use tokio::io::AsyncReadExt;
        let (_peer, stream) = socket_pair().await;
        let read_buffer = Bytes::from(vec![b'x'; 4096]);
        let mut replayed = Replayed {
            prefix: read_buffer.slice(4090..),
            stream,
        };
        let mut all = [0u8; 64];
        assert_eq!(replayed.read(&mut all).await.unwrap(), 6);
        assert!(replayed.prefix.is_empty());
        assert!(
            read_buffer.is_unique(),
            "the 4 KiB read buffer is no longer held by the connection"
        );
    }

    #[tokio::test]
    async fn writes_go_straight_to_the_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut peer, stream) = socket_pair().await;
        let mut replayed = Replayed {
            prefix: Bytes::from_static(b"unread"),
            stream,
        };
        replayed.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        replayed.shutdown().await.unwrap();
        let mut received = Vec::new();
        peer.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn only_subscribe_requests_stay_on_the_direct_path() {
        use tokio::io::AsyncWriteExt;
        let head = b"GET /somewhere HTTP/1.1\r\nHost: t\r\n\r\n";
        for (subscribe, direct) in [(true, true), (false, false)] {
            let (mut peer, mut stream) = socket_pair().await;
            peer.write_all(head).await.unwrap();
            let serves = |_: &Method, path: &str, _| {
                (subscribe && path == "/somewhere").then_some(Served::Built)
            };
            match read_head(&mut stream, Bytes::new(), true, serves).await {
                Ok(Head::Direct { .. }) => assert!(direct),
                Ok(Head::Http1(read)) => {
                    assert!(!direct);
                    assert_eq!(&read[..], head, "hyper gets every byte from the first");
                }
                Ok(_) => panic!("a plain GET is HTTP/1.1"),
                Err(error) => panic!("{error}"),
            }
        }
    }

    #[tokio::test]
    async fn a_head_is_read_whole_up_to_the_limit_then_refused() {
        use tokio::io::AsyncWriteExt;
        let filler = "f".repeat(MAX_HEAD_BYTES - 100);
        let fits = format!("POST /publish/a HTTP/1.1\r\nX-Filler: {filler}\r\n\r\nbody");
        let (mut peer, mut stream) = socket_pair().await;
        peer.write_all(fits.as_bytes()).await.unwrap();
        let is_get = |method: &Method, _: &str, _| (method == Method::GET).then_some(Served::Built);
        match read_head(&mut stream, Bytes::new(), true, is_get)
            .await
            .unwrap()
        {
            Head::Http1(read) => assert!(read.ends_with(b"\r\n\r\nbody")),
            _ => panic!("a POST whose head fits is hyper's"),
        }
        let (mut peer, mut stream) = socket_pair().await;
        let too_large = format!("POST /publish/a HTTP/1.1\r\nX-Filler: {filler}{filler}\r\n");
        peer.write_all(too_large.as_bytes()).await.unwrap();
        match read_head(&mut stream, Bytes::new(), true, |_, _, _| {
            Some(Served::Built)
        })
        .await
        .unwrap()
        {
            Head::TooLarge(read) => assert_eq!(read, MAX_HEAD_BYTES + 1),
            _ => panic!("a head past the limit is refused"),
        }
    }

    #[tokio::test]
    async fn the_http2_preface_goes_to_hyper_as_http2() {
        use tokio::io::AsyncWriteExt;
        let (mut peer, mut stream) = socket_pair().await;
        peer.write_all(HTTP2_PREFACE).await.unwrap();
        match read_head(&mut stream, Bytes::new(), true, |_, _, _| {
            Some(Served::Built)
        })
        .await
        .unwrap()
        {
            Head::Http2(read) => assert_eq!(&read[..], HTTP2_PREFACE),
            _ => panic!("the preface is HTTP/2"),
        }
    }

    #[tokio::test]
    async fn carried_bytes_are_parsed_before_the_socket_is_read() {
        // The peer sends nothing: a head complete in the carried bytes needs no read.
        let (_peer, mut stream) = socket_pair().await;
        let carried = Bytes::from_static(b"GET /a HTTP/1.1\r\n\r\nPOST /b");
        let reading = read_head(&mut stream, carried, false, |_, _, _| Some(Served::Built));
        let head = tokio::time::timeout(Duration::from_secs(30), reading).await;
        match head.expect("no read is needed").unwrap() {
            Head::Direct {
                request: DirectRequest::Built(request),
                rest,
                ..
            } => {
                assert_eq!(request.uri().path(), "/a");
                assert_eq!(&rest[..], b"POST /b", "the next request's start is kept");
            }
            _ => panic!("a complete carried head is served"),
        }
        // Past the first request, the HTTP/2 preface is just a bad HTTP/1 head.
        let (_peer, mut stream) = socket_pair().await;
        let carried = Bytes::from_static(HTTP2_PREFACE);
        match read_head(&mut stream, carried, false, |_, _, _| Some(Served::Built))
            .await
            .unwrap()
        {
            Head::Http1(read) => assert_eq!(&read[..], HTTP2_PREFACE),
            _ => panic!("only a first request may switch to HTTP/2"),
        }
    }
}
