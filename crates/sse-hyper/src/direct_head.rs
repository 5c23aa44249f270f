//! The request heads the direct HTTP/1.1 path serves (see `connection.rs`), parsed from
//! the bytes read so far.
//!
//! A head is parsed once, with `httparse`, into the positions of its parts; only then is
//! the buffer frozen into [`Bytes`], and the request's URI and header values are slices
//! of it rather than copies: one allocation for the head, not one per header.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

/// Headers parsed here; a request with more is left to hyper.
const MAX_HEADERS: usize = 48;

/// What [`parse`] made of the bytes read so far (public, as
/// `sse_hyper::fuzzing::ParsedHead`, with the `fuzzing` feature).
#[derive(Debug)]
pub enum Parsed {
    /// A request the direct path may serve: an HTTP/1.1 `GET` without a body or `POST`
    /// with a plain length (served when its path is a subscribe or single-publish route).
    Direct {
        /// The request's head, as read.
        head: DirectHead,
        /// Every byte read, the head first.
        read: Bytes,
        /// How many of the bytes the head took.
        head_len: usize,
        /// How many bytes the body takes after the head.
        body_len: usize,
    },
    /// The head is not complete yet: the bytes, given back to read more into.
    Partial(Vec<u8>),
    /// Anything else, with every byte read: hyper's.
    ToHyper(Bytes),
}

/// A request head the direct path may serve, kept as read: its method, its target as a
/// [`Uri`] (a slice of the bytes read), and where each header lies in them. Headers are
/// looked up where they lie; an [`http::Request`] is built only for a service that
/// takes one ([`request`](DirectHead::request)).
#[derive(Debug)]
pub struct DirectHead {
    method: Method,
    uri: Uri,
    /// The head's bytes, which `headers` point into.
    bytes: Bytes,
    headers: Box<[HeaderSpan]>,
}

impl DirectHead {
    /// `GET` or `POST`.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The value of the first header called by each of `names` (in lower case), as
    /// [`HeaderMap::get`] would give it for each, found in one pass.
    pub fn first_values<const N: usize>(&self, names: [&str; N]) -> [Option<&[u8]>; N] {
        let mut values = [None; N];
        for (header, value) in self.headers() {
            for (found, name) in values.iter_mut().zip(names) {
                if found.is_none() && is_named(header, name) {
                    *found = Some(value);
                }
            }
        }
        values
    }

    /// The size of the head as [`SseService`](crate::SseService) measures a request's
    /// against [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES).
    pub fn measured_bytes(&self) -> usize {
        let headers = self
            .headers()
            .map(|(name, value)| (name.len(), value.len()));
        crate::limits::measured_head_bytes(&self.method, &self.uri, headers)
    }

    /// The values of every header called `name` (in lower case), in order.
    pub fn headers_named<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers()
            .filter_map(move |(header, value)| is_named(header, name).then_some(value))
    }

    /// Every header's name (as sent) and value, in order.
    fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .filter_map(|&[name_start, name_end, value_start, value_end]| {
                let name = self.bytes.get(index(name_start)?..index(name_end)?)?;
                let value = self.bytes.get(index(value_start)?..index(value_end)?)?;
                Some((name, value))
            })
    }

    /// The request as hyper would hand it to a service, without its body, its header
    /// values slices of the bytes read. `None` if `http` refuses a header name or value
    /// (httparse accepts none that it refuses).
    pub fn request(&self) -> Option<Request<()>> {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for &[name_start, name_end, value_start, value_end] in &self.headers {
            let name = self.bytes.get(index(name_start)?..index(name_end)?)?;
            let value = self.bytes.get(index(value_start)?..index(value_end)?)?;
            let name = HeaderName::from_bytes(name).ok()?;
            let value = HeaderValue::from_maybe_shared(self.bytes.slice_ref(value)).ok()?;
            map.append(name, value);
        }
        let mut request = Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = map;
        Some(request)
    }
}

/// Whether a header's name (as sent) is `name` (in lower case).
fn is_named(header: &[u8], name: &str) -> bool {
    header.len() == name.len() && header.eq_ignore_ascii_case(name.as_bytes())
}

/// A [`HeaderSpan`] bound as an index.
fn index(bound: u32) -> Option<usize> {
    usize::try_from(bound).ok()
}

/// Parses a head served here: over HTTP/1.1, a `GET` with no body, or a `POST` with
/// exactly one `Content-Length` of plain digits; neither with `Transfer-Encoding`,
/// `Expect` or `Upgrade`. Anything else, well-formed or not, is for hyper (which also
/// writes the `400`s), as is a target that [`Uri`] refuses.
pub(crate) fn parse(read: Vec<u8>) -> Parsed {
    let mut headers = [HEADER_UNSEEN; MAX_HEADERS];
    match locate(&read, &mut headers) {
        Located::Partial => Parsed::Partial(read),
        Located::ToHyper => Parsed::ToHyper(Bytes::from(read)),
        Located::Head(layout) => {
            let read = Bytes::from(read);
            let Ok(uri) = Uri::from_maybe_shared(read.slice(layout.target.clone())) else {
                return Parsed::ToHyper(read);
            };
            let headers = &headers[..layout.header_count];
            // httparse finds headers inside the head; checked, not assumed.
            if headers
                .iter()
                .any(|span| index(span[3]).is_none_or(|end| end > layout.head_len))
            {
                return Parsed::ToHyper(read);
            }
            let head = DirectHead {
                method: layout.method,
                uri,
                bytes: read.slice(..layout.head_len),
                headers: headers.into(),
            };
            Parsed::Direct {
                head,
                read,
                head_len: layout.head_len,
                body_len: layout.body_len,
            }
        }
    }
}

/// What [`locate`] found.
enum Located {
    /// A complete head the direct path may serve.
    Head(Layout),
    /// The head is not complete yet.
    Partial,
    /// Anything else: hyper's.
    ToHyper,
}

/// Where a header's name and value lie in the bytes read: start and end of each
/// (a head is far shorter than 4 GiB).
type HeaderSpan = [u32; 4];

/// A header slot not yet filled.
const HEADER_UNSEEN: HeaderSpan = [0; 4];

/// Where the parts of a complete head lie in the bytes read (its headers' in the slots
/// [`locate`] was given, the first `header_count` of them).
struct Layout {
    method: Method,
    /// The request target (path and query, or an absolute URI).
    target: Range<usize>,
    /// How many header slots are filled.
    header_count: usize,
    /// The head's length, its blank line included.
    head_len: usize,
    /// The body's length, from `Content-Length` (0 without one).
    body_len: usize,
}

/// Finds a head's parts in `bytes`, judging from the raw headers whether the direct path
/// may serve it; where its headers lie goes into `spans`.
fn locate(bytes: &[u8], spans: &mut [HeaderSpan; MAX_HEADERS]) -> Located {
    // Left for the parser to fill: zeroing 48 headers cost more than parsing a few.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let head_len = match parsed.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Located::Partial,
        Err(_) => return Located::ToHyper,
    };
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        _ => return Located::ToHyper,
    };
    let Some(target) = parsed.path else {
        return Located::ToHyper;
    };
    if parsed.version != Some(1) {
        return Located::ToHyper;
    }
    let Some(target) = within(bytes, target.as_bytes()) else {
        return Located::ToHyper;
    };
    let mut layout = Layout {
        method,
        target,
        header_count: parsed.headers.len(),
        head_len,
        body_len: 0,
    };
    let mut declared = None;
    for (header, span) in parsed.headers.iter().zip(spans) {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
        {
            return Located::ToHyper;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            // A length hyper would read another way (several, a list, signs or spaces)
            // is hyper's to judge: it refuses differing duplicates, which a proxy might
            // read otherwise.
            match (declared, plain_length(header.value)) {
                (None, Some(length)) => declared = Some(length),
                _ => return Located::ToHyper,
            }
        }
        let (Some(name), Some(value)) = (span_of(bytes, name), span_of(bytes, header.value)) else {
            return Located::ToHyper;
        };
        *span = [name.0, name.1, value.0, value.1];
    }
    layout.body_len = match (layout.method == Method::POST, declared) {
        (false, None | Some(0)) => 0,
        (true, Some(length)) => length,
        // A GET with a body, or a POST without a length.
        _ => return Located::ToHyper,
    };
    Located::Head(layout)
}

/// Where `part`, a slice httparse took from `whole`, lies in it (`None` if it were not
/// inside, which httparse never does).
fn within(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// [`within`], as the start and end a [`HeaderSpan`] keeps (`None` past 4 GiB).
fn span_of(whole: &[u8], part: &[u8]) -> Option<(u32, u32)> {
    let range = within(whole, part)?;
    Some((
        u32::try_from(range.start).ok()?,
        u32::try_from(range.end).ok()?,
    ))
}

/// A `Content-Length` of one to 15 ASCII digits (no sign, no spaces), as a number.
fn plain_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 15 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |length, digit| {
        length
            .checked_mul(10)?
            .checked_add(usize::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn parse_bytes(bytes: &[u8]) -> Parsed {
        parse(bytes.to_vec())
    }

    #[test]
    fn only_bodiless_http11_gets_are_served_directly() {
        let direct = |head: &[u8]| matches!(parse_bytes(head), Parsed::Direct { .. });
        assert!(direct(b"GET /subscribe/pets HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(direct(
            b"GET /subscribe HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!direct(b"GET /subscribe HTTP/1.0\r\n\r\n"));
        assert!(!direct(b"POST /publish/pets HTTP/1.1\r\n\r\n"));
        assert!(!direct(
            b"PUT /publish/pets HTTP/1.1\r\nContent-Length: 1\r\n\r\n"
        ));
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
            parse_bytes(b"GET /subscribe HTTP/1.1\r\nHost"),
            Parsed::Partial(_)
        ));
    }

    #[test]
    fn http11_posts_with_one_plain_length_are_served_directly() {
        let body_len = |bytes: &[u8]| match parse_bytes(bytes) {
            Parsed::Direct {
                head,
                read,
                head_len,
                body_len,
            } => {
                assert_eq!(head.method(), Method::POST);
                assert_eq!(read, bytes);
                assert!(bytes[..head_len].ends_with(b"\r\n\r\n"));
                Some(body_len)
            }
            _ => None,
        };
        let post = |headers: &str| format!("POST /publish/a HTTP/1.1\r\n{headers}\r\nbody");
        assert_eq!(body_len(post("Content-Length: 4\r\n").as_bytes()), Some(4));
        assert_eq!(body_len(post("content-length: 0\r\n").as_bytes()), Some(0));
        assert_eq!(
            body_len(post("Content-Length: 007\r\n").as_bytes()),
            Some(7)
        );
        for hyper_s in [
            "",
            "Content-Length: 4\r\nContent-Length: 4\r\n",
            "Content-Length: 4, 4\r\n",
            "Content-Length: +4\r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 4\r\nExpect: 100-continue\r\n",
            "Content-Length: 4\r\nUpgrade: h2c\r\n",
            "Content-Length: 4\r\nTRANSFER-encoding: identity\r\n",
        ] {
            assert_eq!(body_len(post(hyper_s).as_bytes()), None, "{hyper_s:?}");
        }
        assert!(matches!(
            parse_bytes(b"POST /publish/a HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody"),
            Parsed::ToHyper(_)
        ));
    }

    #[test]
    fn the_request_holds_every_header_in_order_and_the_target() {
        let head = b"POST /publish/a?id=7 HTTP/1.1\r\nHost: localhost:8080\r\n\
            X-Trace: one\r\nContent-Length: 2\r\nx-trace: two\r\n\r\nhi";
        let Parsed::Direct {
            head: direct,
            head_len,
            ..
        } = parse_bytes(head)
        else {
            panic!("not direct");
        };
        assert_eq!(head_len, head.len() - 2);
        assert_eq!(
            direct.first_values(["content-length", "x-trace", "accept", "host", "x-trac"]),
            [
                Some(&b"2"[..]),
                Some(b"one"),
                None,
                Some(b"localhost:8080"),
                None
            ],
            "the first of each, none for an absent name or a prefix"
        );
        assert_eq!(
            direct.first_values(["host", "host"]),
            [Some(&b"localhost:8080"[..]), Some(b"localhost:8080")]
        );
        let traces: Vec<_> = direct.headers_named("x-trace").collect();
        assert_eq!(traces, [&b"one"[..], b"two"]);
        let request = direct.request().expect("http takes what httparse took");
        assert_eq!(direct.measured_bytes(), crate::limits::head_bytes(&request));
        let unspaced = b"POST /p HTTP/1.1\r\nA:b\r\nContent-Length:0\r\n\r\n";
        let Parsed::Direct { head, head_len, .. } = parse_bytes(unspaced) else {
            panic!("not direct");
        };
        assert_eq!(
            head.measured_bytes(),
            head_len + 2,
            "a header line is measured spaced"
        );
        assert_eq!(request.uri(), "/publish/a?id=7");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers().len(), 4);
        assert_eq!(request.headers()[header::HOST], "localhost:8080");
        assert_eq!(request.headers()[header::CONTENT_LENGTH], "2");
        let traces: Vec<_> = request.headers().get_all("x-trace").iter().collect();
        assert_eq!(traces, ["one", "two"]);
    }

    #[test]
    fn a_target_httparse_takes_and_uri_refuses_goes_to_hyper_with_every_byte() {
        for head in [
            &b"GET /sub<scribe HTTP/1.1\r\n\r\n"[..],
            b"GET /sub`scribe HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let mut spans = [HEADER_UNSEEN; MAX_HEADERS];
            assert!(
                matches!(locate(head, &mut spans), Located::Head(_)),
                "{head:?}"
            );
            match parse_bytes(head) {
                Parsed::ToHyper(read) => assert_eq!(read, head),
                other => panic!("{head:?}: {other:?}"),
            }
        }
    }
}
