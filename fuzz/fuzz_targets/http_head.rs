//! The direct HTTP/1.1 path's head parser (`parse` in sse-hyper's `direct_head.rs`),
//! differentially against hyper. The input is the first bytes a client sends.
//!
//! The direct path may only take a request that hyper would have served the same way.
//! So whenever it takes one, hyper's own HTTP/1 server, given the same bytes over an
//! in-memory pipe, must see a first request with the same method (`GET` or `POST`),
//! target, version (HTTP/1.1) and headers (same names, values and order), and a body of
//! the length the direct path reads: the bytes after the head when they are all there
//! (a `GET`'s is empty), or none when the input ends first (hyper's read then fails).
//! The head length must also end on the blank line that closes the head, and every byte
//! read is kept for whoever serves the request (hyper gets them replayed). A head taken
//! must build an `http::Request`, its headers looked up where they lie (as single
//! publishes read them) must be those of the request's header map, and its size must
//! measure as the request's does against the head limit.
#![no_main]

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use sse_hyper::fuzzing::{measured_head_bytes, parse_direct_head, DirectHead, ParsedHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a server sees of a request.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    method: Method,
    uri: Uri,
    version: Version,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, or `None` when reading it failed.
    body: Option<Bytes>,
}

impl Seen {
    fn of<B>(request: &Request<B>, body: Option<Bytes>) -> Seen {
        Seen {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            body,
        }
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

/// The first request hyper's HTTP/1 server reads from `bytes` (the client then closes
/// its sending side), or `None` when it reads none.
fn hyper_first_request(bytes: &[u8]) -> Option<Seen> {
    let first: Rc<RefCell<Option<Seen>>> = Rc::default();
    let recorder = Rc::clone(&first);
    let service = service_fn(move |request: Request<Incoming>| {
        let recorder = Rc::clone(&recorder);
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .ok()
                .map(|collected| collected.to_bytes());
            let seen = Seen::of(&Request::from_parts(parts, ()), body);
            recorder.borrow_mut().get_or_insert(seen);
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }
    });
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut client_reads, mut client_writes) = tokio::io::split(client);
    RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let connection = http1::Builder::new()
                .half_close(true)
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(server), service);
            // The client writes and reads at once, so no answer can fill the pipe and
            // stall the server; it closes its sending side after the bytes.
            let write = async {
                let _ = client_writes.write_all(bytes).await;
                let _ = client_writes.shutdown().await;
            };
            let read = async {
                let mut answers = Vec::new();
                let _ = client_reads.read_to_end(&mut answers).await;
            };
            let _ = tokio::join!(connection, write, read);
        });
    });
    first.take()
}

/// Headers looked up where they lie in the head are those the request's header map
/// gives, by any name it has and by one it lacks, one name or two different ones at a
/// time.
fn looks_up_as_the_header_map(head: &DirectHead, request: &Request<()>) {
    let headers = request.headers();
    assert_eq!(head.measured_bytes(), measured_head_bytes(request));
    let get = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
    let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    for pair in names.windows(2) {
        let [first, second] = [pair[0], pair[1]];
        assert_eq!(
            head.first_values([first, second]),
            [get(first), get(second)]
        );
    }
    for name in headers.keys().map(HeaderName::as_str).chain(["x-absent"]) {
        let found = get(name);
        let all: Vec<_> = headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(head.headers_named(name).collect::<Vec<_>>(), all, "{name}");
        assert_eq!(head.first_values([name]), [found], "{name}");
    }
}

fuzz_target!(|input: &[u8]| {
    let (taken, read, head_len, body_len) = match parse_direct_head(input) {
        ParsedHead::Direct {
            head,
            read,
            head_len,
            body_len,
        } => (head, read, head_len, body_len),
        ParsedHead::ToHyper(read) => {
            assert_eq!(read, input, "bytes read were lost");
            return;
        }
        ParsedHead::Partial(read) => {
            assert_eq!(read, input, "bytes read were lost");
            return;
        }
    };
    assert_eq!(read, input, "bytes read were lost");
    assert!(head_len <= input.len());
    let head = &input[..head_len];
    assert!(
        head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
        "the head does not end on a blank line: {:?}",
        String::from_utf8_lossy(head)
    );
    let body = input
        .get(head_len..)
        .and_then(|rest| rest.get(..body_len))
        .map(Bytes::copy_from_slice);
    let request = taken
        .request()
        .expect("http takes every header httparse took");
    looks_up_as_the_header_map(&taken, &request);
    let direct = Seen::of(&request, body);
    assert!(direct.method == Method::GET || direct.method == Method::POST);
    if direct.method == Method::GET {
        assert_eq!(body_len, 0, "a GET is read without a body");
    }
    assert_eq!(direct.version, Version::HTTP_11);
    let hyper = hyper_first_request(input);
    assert_eq!(
        hyper.as_ref(),
        Some(&direct),
        "the direct path and hyper read {:?} differently",
        String::from_utf8_lossy(input)
    );
});
