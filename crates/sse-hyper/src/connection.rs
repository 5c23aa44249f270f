//! One accepted connection, from the TLS handshake (when configured) to its close:
//! cleartext event streams over HTTP/1.1 are written straight to the socket; everything
//! else is served by hyper.
//!
//! # Why a direct path
//!
//! A hyper HTTP/1 connection keeps an 8–16 KiB read buffer and an 8 KiB header buffer for
//! its whole life. For a hub holding tens of thousands of mostly idle streams that is most
//! of the memory per connection, and hyper's per-write dispatch is a third of the CPU time
//! spent on each write. So the first request on a cleartext connection is read here: a
//! complete subscribe `GET` over HTTP/1.1 without a body goes to [`SseService::handle`]
//! like any other request, and when the answer is an event stream this module writes the
//! head and then each frame of the [`SseBody`] as one chunk, keeping only the
//! subscription, the socket and a small write buffer. A refusal (a bad namespace, the
//! connection limit) is written here too and the connection continues in hyper. Any other
//! request (another route, a `POST`, HTTP/2's preface, a head too large or not parseable
//! here) is given to hyper from its first byte, the bytes already read replayed in front.
//! The HTTP semantics therefore stay hyper's, apart from the head writing below.
//!
//! TLS connections are handshaken here, under the head timeout, and then served by hyper
//! throughout: the memory a direct path saves is small beside a TLS session's buffers.
//!
//! While a stream is open the socket is also watched for reads, so a client that goes away
//! ends its subscription at once; bytes a client sends during a stream are discarded.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::SseBody;
use crate::service::SseService;

/// What an HTTP/2 client with prior knowledge sends first.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest request head read here; a larger one is left to hyper.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Headers parsed here; a request with more is left to hyper.
const MAX_HEADERS: usize = 48;
/// The shared chunk buffer is freed when a burst grew it past this.
const KEEP_CHUNK_BUFFER_BYTES: usize = 1 << 20;
/// A batch vector that grew past this many events (a burst) is freed rather than kept.
const KEEP_BATCH_CAPACITY: usize = 256;

/// What every connection of one server shares.
#[derive(Clone)]
pub(crate) struct Serving {
    /// hyper's builder, for everything not served here.
    pub(crate) builder: auto::Builder<TokioExecutor>,
    /// How long the first request head (and a TLS handshake) may take.
    pub(crate) head_timeout: Duration,
    /// Becomes `true` when the listener has closed: connections that have not sent a
    /// request yet are closed instead of being waited for.
    pub(crate) closing: watch::Receiver<bool>,
    /// The certificate, when the server speaks HTTPS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
}

/// Serves one accepted connection until it closes. `watcher` keeps graceful shutdown
/// waiting for it.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Serving,
    watcher: Watcher,
) {
    // Events are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = serving.tls.clone() {
        return serve_tls(stream, peer, service, serving, tls, watcher).await;
    }
    serve_cleartext(stream, peer, service, serving, watcher).await;
}

/// Handshakes, then hands the connection to hyper.
#[cfg(feature = "tls")]
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    mut serving: Serving,
    tls: crate::tls::TlsConfig,
    watcher: Watcher,
) {
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(serving.head_timeout, tls.acceptor().accept(stream)) => handshake,
        _ = serving.closing.wait_for(|closing| *closing) => {
            return tracing::debug!(%peer, "closed during the TLS handshake: the server is shutting down");
        }
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    let connection = serving
        .builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Reads the first request head; serves a subscribe request directly, and hands anything
/// else to hyper.
async fn serve_cleartext(
    stream: TcpStream,
    peer: SocketAddr,
    service: SseService,
    serving: Serving,
    watcher: Watcher,
) {
    let Serving {
        builder,
        head_timeout,
        mut closing,
        ..
    } = serving;
    let is_subscribe = |path: &str| service.is_subscribe_path(path);
    let head = tokio::select! {
        head = tokio::time::timeout(head_timeout, read_head(&stream, is_subscribe)) => head,
        _ = closing.wait_for(|closing| *closing) => {
            return tracing::debug!(%peer, "closed before a request: the server is shutting down");
        }
    };
    drop(closing);
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => return tracing::debug!(%peer, %error, "reading the request failed"),
        Err(_) => return tracing::debug!(%peer, "no request head within the timeout"),
    };
    let (rest, builder) = match head {
        Head::Direct { request, rest } => match serve_direct(&stream, *request, &service).await {
            Ok(Next::Close) => return,
            // The connection speaks HTTP/1.1; skipping hyper-util's version detection
            // also puts the next request under hyper's head-read timeout at once.
            Ok(Next::Continue) => (rest, builder.http1_only()),
            Err(error) => return tracing::debug!(%peer, %error, "connection ended with an error"),
        },
        Head::ToHyper(read) => (read, builder),
    };
    let io = TokioIo::new(Replayed {
        prefix: rest,
        stream,
    });
    let connection = builder.serve_connection(io, service).into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// What the first read of a connection found.
enum Head {
    /// A request this module serves, and any bytes that followed its head.
    Direct {
        request: Box<Request<Empty<Bytes>>>,
        rest: Bytes,
    },
    /// Something for hyper: everything read so far, to be replayed.
    ToHyper(Bytes),
}

/// What to do with the connection after a request served here.
enum Next {
    Close,
    Continue,
}

/// Reads until a request head is complete, or until it is clear that hyper should have
/// the connection. Only requests whose path `is_subscribe` accepts are served here.
async fn read_head(stream: &TcpStream, is_subscribe: impl Fn(&str) -> bool) -> io::Result<Head> {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        stream.readable().await?;
        let start = buffer.len();
        buffer.resize(start + 1024.min(MAX_HEAD_BYTES - start), 0);
        match stream.try_read(&mut buffer[start..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before a request head",
                ))
            }
            Ok(read) => buffer.truncate(start + read),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                buffer.truncate(start);
                continue;
            }
            Err(error) => return Err(error),
        }
        if buffer.len() < HTTP2_PREFACE.len() && HTTP2_PREFACE.starts_with(&buffer) {
            // Read the whole preface here, under the head timeout: hyper-util's version
            // detection would wait for it without one.
            continue;
        }
        if !b"GET ".starts_with(&buffer[..buffer.len().min(4)]) {
            return Ok(Head::ToHyper(Bytes::from(buffer)));
        }
        match parse_direct(&buffer) {
            Parsed::Direct(request, length) if is_subscribe(request.uri().path()) => {
                let rest = Bytes::from(buffer).slice(length..);
                return Ok(Head::Direct { request, rest });
            }
            Parsed::Direct(..) => return Ok(Head::ToHyper(Bytes::from(buffer))),
            Parsed::Partial if buffer.len() < MAX_HEAD_BYTES => continue,
            Parsed::Partial | Parsed::ToHyper => return Ok(Head::ToHyper(Bytes::from(buffer))),
        }
    }
}

pub(crate) enum Parsed {
    Direct(Box<Request<Empty<Bytes>>>, usize),
    Partial,
    ToHyper,
}

/// Parses a head served here: a `GET` over HTTP/1.1 with no body and no upgrade. Anything
/// else, well-formed or not, is for hyper (which also writes the `400`s).
pub(crate) fn parse_direct(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let length = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::ToHyper,
    };
    if parsed.method != Some("GET") || parsed.version != Some(1) {
        return Parsed::ToHyper;
    }
    let Some(Ok(uri)) = parsed.path.map(Uri::try_from) else {
        return Parsed::ToHyper;
    };
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    let map = request.headers_mut();
    for header in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) else {
            return Parsed::ToHyper;
        };
        map.append(name, value);
    }
    // Any length but a single "0" is hyper's to judge (it refuses differing duplicates,
    // which a proxy might read otherwise).
    let has_body = map.contains_key(header::TRANSFER_ENCODING)
        || map
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .enumerate()
            .any(|(index, length)| index > 0 || length.as_bytes() != b"0");
    if has_body || map.contains_key(header::UPGRADE) || map.contains_key(header::EXPECT) {
        return Parsed::ToHyper;
    }
    Parsed::Direct(Box::new(request), length)
}

/// Answers one request: an event stream is written until it ends; any other answer is
/// written whole.
async fn serve_direct(
    stream: &TcpStream,
    request: Request<Empty<Bytes>>,
    service: &SseService,
) -> io::Result<Next> {
    let client_closes = wants_close(request.headers());
    let response = service.handle(request).await;
    let (parts, body) = response.into_parts();
    let mut out = Vec::with_capacity(256);
    if body.is_event_stream() {
        // The connection ends with the stream, so the client must not pool it.
        write_head(
            &mut out,
            parts.status,
            &parts.headers,
            Length::Chunked,
            true,
        );
        write_all(stream, &out).await?;
        drop(out);
        stream_body(stream, body).await?;
        return Ok(Next::Close);
    }
    let bytes = body.into_full();
    let length = if parts.status == StatusCode::NO_CONTENT || parts.status.is_informational() {
        Length::None
    } else {
        Length::Exact(bytes.len())
    };
    let close = client_closes || wants_close(&parts.headers);
    write_head(&mut out, parts.status, &parts.headers, length, close);
    if let Length::Exact(_) = length {
        out.extend_from_slice(&bytes);
    }
    write_all(stream, &out).await?;
    Ok(if close { Next::Close } else { Next::Continue })
}

/// Whether a `Connection` header lists the `close` option.
fn wants_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|&byte| byte == b',')
            .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy)]
enum Length {
    Chunked,
    Exact(usize),
    None,
}

/// Writes a response head; `close` announces that the connection closes after the body.
fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    length: Length,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        write_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !headers.contains_key(header::DATE) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        write_header(out, b"date", date.as_bytes());
    }
    if close && !wants_close(headers) {
        write_header(out, b"connection", b"close");
    }
    match length {
        Length::Chunked => write_header(out, b"transfer-encoding", b"chunked"),
        Length::Exact(bytes) => write_header(out, b"content-length", bytes.to_string().as_bytes()),
        Length::None => {}
    }
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes an event stream until it ends (then the last chunk is written) or the client
/// goes away. Everything queued since the last write goes out as one chunk.
async fn stream_body(stream: &TcpStream, mut body: SseBody) -> io::Result<()> {
    let mut events = Vec::new();
    loop {
        let more = tokio::select! {
            more = std::future::poll_fn(|cx| body.poll_stream_into(cx, &mut events)) => more,
            closed = client_gone(stream) => return closed,
        };
        if !more {
            return write_all(stream, b"0\r\n\r\n").await;
        }
        if let Some(unwritten) = try_write_chunk(stream, &events)? {
            write_all(stream, &unwritten).await?;
        }
        events.clear();
        if events.capacity() > KEEP_BATCH_CAPACITY {
            events = Vec::new();
        }
    }
}

thread_local! {
    /// Where chunks are assembled. Copying a batch of small events into one buffer costs
    /// less than handing the kernel one slice per event, and sharing the buffer per
    /// thread keeps idle connections from each holding one.
    static CHUNK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `events` as one chunk as far as the socket takes it without waiting; gives back
/// what it did not take.
fn try_write_chunk(stream: &TcpStream, events: &[Bytes]) -> io::Result<Option<Vec<u8>>> {
    let length: usize = events.iter().map(Bytes::len).sum();
    if length == 0 {
        return Ok(None);
    }
    CHUNK.with_borrow_mut(|chunk| {
        chunk.clear();
        encode_chunk(chunk, length, events);
        let mut written = 0;
        let result = loop {
            match stream.try_write(&chunk[written..]) {
                Ok(count) => {
                    written += count;
                    if written == chunk.len() {
                        break Ok(None);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    break Ok(Some(chunk[written..].to_vec()))
                }
                Err(error) => break Err(error),
            }
        };
        if chunk.capacity() > KEEP_CHUNK_BUFFER_BYTES {
            *chunk = Vec::new();
        }
        result
    })
}

/// Appends the `events`, `length` bytes in all, as one chunk of the chunked coding.
fn encode_chunk(out: &mut Vec<u8>, length: usize, events: &[Bytes]) {
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    let mut rest = length;
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.reserve(digits.len() - start + length + 4);
    out.extend_from_slice(&digits[start..]);
    out.extend_from_slice(b"\r\n");
    for event in events {
        out.extend_from_slice(event);
    }
    out.extend_from_slice(b"\r\n");
}

/// Completes when the client closes its side or the connection fails; anything it sends
/// meanwhile is read and dropped.
async fn client_gone(stream: &TcpStream) -> io::Result<()> {
    loop {
        stream.readable().await?;
        let mut discard = [0u8; 256];
        match stream.try_read(&mut discard) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.try_write(bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                stream.writable().await?;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The socket with bytes already read from it put back in front, for hyper.
struct Replayed {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Replayed {
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

impl AsyncWrite for Replayed {
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

    #[test]
    fn only_bodiless_http11_gets_are_served_directly() {
        let direct = |head: &[u8]| matches!(parse_direct(head), Parsed::Direct(..));
        assert!(direct(b"GET /subscribe/pets HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(direct(
            b"GET /subscribe HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!direct(b"GET /subscribe HTTP/1.0\r\n\r\n"));
        assert!(!direct(b"POST /publish/pets HTTP/1.1\r\n\r\n"));
        assert!(!direct(
            b"GET /subscribe HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(!direct(
            b"GET /subscribe HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ));
        assert!(!direct(b"GET /subscribe HTTP/1.1\r\nBad Header\r\n\r\n"));
        assert!(!direct(
            b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n"
        ));
        assert!(matches!(
            parse_direct(b"GET /subscribe HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }

    #[test]
    fn close_is_found_among_connection_options() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Close"),
        );
        assert!(wants_close(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, closed"),
        );
        assert!(!wants_close(&headers));
    }

    #[test]
    fn heads_name_the_length_and_the_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let mut out = Vec::new();
        write_head(&mut out, StatusCode::OK, &headers, Length::Chunked, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(text.contains("\r\ndate: "));
        assert!(text.ends_with("transfer-encoding: chunked\r\n\r\n"));

        let mut out = Vec::new();
        write_head(
            &mut out,
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            Length::Exact(12),
            true,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.ends_with("connection: close\r\ncontent-length: 12\r\n\r\n"));
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
            let (mut peer, stream) = socket_pair().await;
            peer.write_all(head).await.unwrap();
            match read_head(&stream, |path| subscribe && path == "/somewhere").await {
                Ok(Head::Direct { .. }) => assert!(direct),
                Ok(Head::ToHyper(read)) => {
                    assert!(!direct);
                    assert_eq!(&read[..], head, "hyper gets every byte from the first");
                }
                Err(error) => panic!("{error}"),
            }
        }
    }
}
