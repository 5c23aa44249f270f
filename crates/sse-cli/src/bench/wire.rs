//! HTTP/1.1 as `ssectl bench` speaks it: one `GET` per connection, the response head
//! parsed with `httparse`, and the body's framing (chunked, a length, or until the
//! server closes) taken off by hand, so that the bytes of one `read` go straight into
//! the event decoder, in the same task, with no copy and no channel between tasks.

use std::fmt::Write as _;

/// The largest response head accepted; a server sending more is not an event stream.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Headers read from a response head at most.
const MAX_HEADERS: usize = 64;

/// The bytes of the subscribe request for `path` on `host`.
pub(super) fn request(path: &str, host: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut text = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(
        text,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\naccept: text/event-stream\r\ncache-control: no-cache\r\n"
    );
    if let Some(authorization) = authorization {
        let _ = write!(text, "authorization: {authorization}\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// What a complete response head says about the stream after it.
#[derive(Debug, PartialEq)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) framing: Framing,
    /// Bytes of `buffer` the head took; the body starts there.
    pub(super) length: usize,
}

/// Parses the response head at the start of `buffer`: `Ok(None)` while it is incomplete.
pub(super) fn parse_head(buffer: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD_BYTES => return Ok(None),
        Ok(httparse::Status::Partial) => {
            return Err(format!("response head over {MAX_HEAD_BYTES} bytes"))
        }
        Err(error) => return Err(format!("response head: {error}")),
    };
    let status = response.code.unwrap_or(0);
    let mut content_type = String::new();
    let mut chunked = false;
    let mut content_length = None;
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        if header.name.eq_ignore_ascii_case("content-type") {
            content_type = value.into_owned();
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked is the last coding when present (RFC 9112 §6.1).
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("content-length {value:?}"))?;
            content_length = Some(parsed);
        }
    }
    let framing = if chunked {
        Framing::Chunked(Chunked::Size { value: 0 })
    } else if let Some(remaining) = content_length {
        Framing::Length { remaining }
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        content_type,
        framing,
        length,
    }))
}

/// How the body of the response is delimited, and how far into it the reader is.
#[derive(Debug, PartialEq)]
pub(super) enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
    /// `Content-Length`: this many bytes are left.
    Length { remaining: u64 },
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

/// Where a chunked body's reader stands.
#[derive(Debug, PartialEq, Clone, Copy)]
pub(super) enum Chunked {
    /// Reading the hexadecimal size, `value` so far.
    Size { value: u64 },
    /// Past the size: a chunk extension up to the line end, ignored.
    Extension { value: u64 },
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// After a chunk's data: its line end.
    DataEnd,
    /// After the last (empty) chunk: trailer lines up to an empty one.
    Trailers { line_empty: bool },
    /// The body is complete.
    Done,
}

/// Whether the body goes on after the bytes given.
#[derive(Debug, PartialEq)]
pub(super) enum Body {
    Continues,
    Ended,
}

impl Framing {
    /// Takes the framing off `bytes`, handing each piece of body data to `data` in
    /// order. Bytes after the end of the body are ignored (the stream is over).
    pub(super) fn feed(
        &mut self,
        bytes: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<Body, String> {
        match self {
            Framing::UntilClose => {
                data(bytes);
                Ok(Body::Continues)
            }
            Framing::Length { remaining } => {
                let take = bytes
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                data(&bytes[..take]);
                *remaining -= take as u64;
                Ok(if *remaining == 0 {
                    Body::Ended
                } else {
                    Body::Continues
                })
            }
            Framing::Chunked(state) => feed_chunked(state, bytes, data),
        }
    }
}

fn feed_chunked(
    state: &mut Chunked,
    mut bytes: &[u8],
    mut data: impl FnMut(&[u8]),
) -> Result<Body, String> {
    while !bytes.is_empty() {
        match *state {
            Chunked::Data { remaining } => {
                let take = bytes
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                data(&bytes[..take]);
                bytes = &bytes[take..];
                let remaining = remaining - take as u64;
                *state = if remaining == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data { remaining }
                };
                continue;
            }
            Chunked::Done => return Ok(Body::Ended),
            _ => {}
        }
        let byte = bytes[0];
        bytes = &bytes[1..];
        *state = match (*state, byte) {
            (Chunked::Size { value }, b'\r' | b' ' | b'\t' | b';') => Chunked::Extension { value },
            (Chunked::Size { value }, b'\n') | (Chunked::Extension { value }, b'\n') => {
                if value == 0 {
                    Chunked::Trailers { line_empty: true }
                } else {
                    Chunked::Data { remaining: value }
                }
            }
            (Chunked::Size { value }, digit) => {
                let digit = char::from(digit)
                    .to_digit(16)
                    .ok_or_else(|| format!("chunk size: unexpected byte {digit:#04x}"))?;
                let value = value
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(u64::from(digit)))
                    .ok_or("chunk size overflows")?;
                Chunked::Size { value }
            }
            (state @ Chunked::Extension { .. }, _) => state,
            (Chunked::DataEnd, b'\r') => Chunked::DataEnd,
            (Chunked::DataEnd, b'\n') => Chunked::Size { value: 0 },
            (Chunked::DataEnd, other) => {
                return Err(format!("chunk data overruns its size (byte {other:#04x})"))
            }
            (Chunked::Trailers { line_empty }, b'\n') => {
                if line_empty {
                    Chunked::Done
                } else {
                    Chunked::Trailers { line_empty: true }
                }
            }
            (Chunked::Trailers { line_empty }, b'\r') => Chunked::Trailers { line_empty },
            (Chunked::Trailers { .. }, _) => Chunked::Trailers { line_empty: false },
            (Chunked::Data { .. } | Chunked::Done, _) => unreachable!("handled above"),
        };
    }
    Ok(if *state == Chunked::Done {
        Body::Ended
    } else {
        Body::Continues
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked() -> Framing {
        Framing::Chunked(Chunked::Size { value: 0 })
    }

    /// Feeds `wire` split at every `step` bytes and returns the data and the last answer.
    fn feed_in_steps(framing: &mut Framing, wire: &[u8], step: usize) -> (Vec<u8>, Body) {
        let mut out = Vec::new();
        let mut last = Body::Continues;
        for piece in wire.chunks(step) {
            last = framing
                .feed(piece, |data| out.extend_from_slice(data))
                .unwrap();
        }
        (out, last)
    }

    #[test]
    fn chunked_bodies_read_the_same_in_any_split() {
        let wire = b"5\r\nhello\r\n19;name=value\r\n data: abcdefghijklmnop\n\n\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let mut framing = chunked();
            let (data, last) = feed_in_steps(&mut framing, wire, step);
            assert_eq!(
                String::from_utf8(data).unwrap(),
                "hello data: abcdefghijklmnop\n\n",
                "step {step}"
            );
            assert_eq!(last, Body::Ended, "step {step}");
        }
    }

    #[test]
    fn chunked_body_without_trailers_ends_at_the_empty_line() {
        let mut framing = chunked();
        let (data, last) = feed_in_steps(&mut framing, b"2\r\nok\r\n0\r\n\r\n", 64);
        assert_eq!(data, b"ok");
        assert_eq!(last, Body::Ended);
    }

    #[test]
    fn chunked_body_refuses_bad_sizes_and_overruns() {
        assert!(chunked().feed(b"zz\r\n", |_| {}).is_err());
        assert!(chunked().feed(b"2\r\nabc\r\n", |_| {}).is_err());
        assert!(chunked().feed(b"fffffffffffffffffff\r\n", |_| {}).is_err());
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut framing = Framing::Length { remaining: 4 };
        let (data, last) = feed_in_steps(&mut framing, b"abcdef", 3);
        assert_eq!(data, b"abcd");
        assert_eq!(last, Body::Ended);
    }

    #[test]
    fn heads_give_status_type_framing_and_length() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        assert_eq!(parse_head(&wire[..20]).unwrap(), None);
        let head = parse_head(wire).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_type, "text/event-stream");
        assert_eq!(head.framing, chunked());
        assert_eq!(&wire[head.length..], b"5\r\n");

        let close = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(close.framing, Framing::UntilClose);
        let sized = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (sized.status, sized.framing),
            (404, Framing::Length { remaining: 9 })
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse_head(b"SMTP ready\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD_BYTES]).is_err());
    }

    #[test]
    fn the_request_names_path_host_and_token() {
        let text = String::from_utf8(request("/subscribe/a?x=1", "h:1", Some("Bearer t"))).unwrap();
        assert!(text.starts_with("GET /subscribe/a?x=1 HTTP/1.1\r\nhost: h:1\r\n"));
        assert!(text.contains("\r\naccept: text/event-stream\r\n"));
        assert!(text.ends_with("authorization: Bearer t\r\n\r\n"));
        assert!(!String::from_utf8(request("/", "h", None))
            .unwrap()
            .contains("authorization"));
    }
}
