//! Answers as the direct HTTP/1.1 path writes them (see `connection.rs`): the status
//! line, the headers, `Date`, how the body is delimited, and whether the connection
//! closes after it.
//!
//! A head is written in one pass over the answer's headers, from a [`Response`]'s header
//! map or, for the single publish's answer, from a short list of names and values
//! (`SseService::publish_from_head`), so that the hottest answer builds no header map.

use std::cell::RefCell;
use std::time::SystemTime;

use http::header::HeaderMap;
use http::{Response, StatusCode};

use crate::body::SseBody;
use crate::json_text;

/// A response as the direct path writes it.
pub(crate) enum Encoded {
    /// An event stream: its head, then the body chunk by chunk until it ends.
    EventStream { head: Vec<u8>, body: SseBody },
    /// Any other answer, head and body; `close` ends the connection after it.
    Whole { bytes: Vec<u8>, close: bool },
}

/// Encodes the head of `response` (and the body, unless it is an event stream), dropping
/// the response's header map.
pub(crate) fn encode(response: Response<SseBody>, client_closes: bool) -> Encoded {
    let (parts, body) = response.into_parts();
    let mut out = Vec::with_capacity(256);
    if body.is_event_stream() {
        // The connection ends with the stream, so the client must not pool it.
        write_head(
            &mut out,
            parts.status,
            pairs(&parts.headers),
            Length::Chunked,
            true,
        );
        return Encoded::EventStream { head: out, body };
    }
    let bytes = body.into_full();
    let length = if parts.status == StatusCode::NO_CONTENT || parts.status.is_informational() {
        Length::None
    } else {
        Length::Exact(bytes.len())
    };
    let close = write_head(
        &mut out,
        parts.status,
        pairs(&parts.headers),
        length,
        client_closes,
    );
    if let Length::Exact(_) = length {
        out.extend_from_slice(&bytes);
    }
    Encoded::Whole { bytes: out, close }
}

/// A whole answer of `status` with `headers` and `body` (which `status` must allow), as
/// [`encode`] writes it: gives whether the connection closes after it.
pub(crate) fn encode_whole<'h>(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
    body: &[u8],
    client_closes: bool,
) -> bool {
    let close = write_head(
        out,
        status,
        headers,
        Length::Exact(body.len()),
        client_closes,
    );
    out.extend_from_slice(body);
    close
}

/// A header map's names and values, as [`write_head`] takes them.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
}

/// Whether one of the `Connection` values lists the `close` option.
pub(crate) fn wants_close<'v>(mut values: impl Iterator<Item = &'v [u8]>) -> bool {
    values.any(lists_close)
}

/// Whether one `Connection` value lists the `close` option.
fn lists_close(value: &[u8]) -> bool {
    value
        .split(|&byte| byte == b',')
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Length {
    Chunked,
    Exact(usize),
    None,
}

/// Writes a response head, in one pass over `headers` (names in lower case): the
/// connection closes after the body when `close` says so or the headers ask for it, and
/// the head then says so too. Gives whether it closes.
fn write_head<'h>(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
    length: Length,
    close: bool,
) -> bool {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut dated, mut asks_close) = (false, false);
    for (name, value) in headers {
        if name == b"content-length" || name == b"transfer-encoding" {
            continue;
        }
        dated |= name == b"date";
        asks_close |= name == b"connection" && lists_close(value);
        write_header(out, name, value);
    }
    if !dated {
        write_date(out, SystemTime::now());
    }
    if close && !asks_close {
        write_header(out, b"connection", b"close");
    }
    match length {
        Length::Chunked => write_header(out, b"transfer-encoding", b"chunked"),
        Length::Exact(bytes) => {
            out.extend_from_slice(b"content-length: ");
            json_text::push_unsigned(out, u64::try_from(bytes).unwrap_or(u64::MAX));
            out.extend_from_slice(b"\r\n");
        }
        Length::None => {}
    }
    out.extend_from_slice(b"\r\n");
    close || asks_close
}

thread_local! {
    /// The `Date` value of one second (seconds since the epoch, and the text), formatted
    /// once per second per thread rather than for every answer.
    static DATE: RefCell<(u64, [u8; HTTP_DATE_BYTES])> =
        const { RefCell::new((u64::MAX, [0; HTTP_DATE_BYTES])) };
}

/// The length of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
const HTTP_DATE_BYTES: usize = 29;

/// Writes the `Date` header for `now`, which names whole seconds only.
fn write_date(out: &mut Vec<u8>, now: SystemTime) {
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            let formatted = httpdate::fmt_http_date(now);
            let Ok(fixed) = <[u8; HTTP_DATE_BYTES]>::try_from(formatted.as_bytes()) else {
                // Past the year 9999: not cached.
                write_header(out, b"date", formatted.as_bytes());
                return;
            };
            *text = fixed;
            *cached = second;
        }
        write_header(out, b"date", text);
    });
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{self, HeaderValue};
    use std::time::Duration;

    fn values(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes)
    }

    /// The head [`write_head`] writes for these arguments (headers as names and values),
    /// and whether it closes.
    fn head(
        status: StatusCode,
        headers: &[(&str, &str)],
        length: Length,
        close: bool,
    ) -> (String, bool) {
        let mut out = Vec::new();
        let pairs = headers
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_bytes()));
        let closes = write_head(&mut out, status, pairs, length, close);
        (String::from_utf8(out).unwrap(), closes)
    }

    #[test]
    fn close_is_found_among_connection_options() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Close"),
        );
        assert!(wants_close(values(&headers)));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, closed"),
        );
        assert!(!wants_close(values(&headers)));
    }

    #[test]
    fn an_answer_asking_to_close_closes_and_says_so_once() {
        let headers = [
            ("connection", "close"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ];
        for told in [false, true] {
            let (text, closes) = head(StatusCode::OK, &headers, Length::Exact(0), told);
            assert!(closes, "{text}");
            assert_eq!(text.matches("connection: close").count(), 1, "{text}");
            assert_eq!(text.matches("date: ").count(), 1, "{text}");
        }
        assert!(!head(StatusCode::OK, &[], Length::Exact(0), false).1);
    }

    #[test]
    fn heads_name_the_length_and_the_date() {
        let event_stream = [("content-type", "text/event-stream")];
        let (text, _) = head(StatusCode::OK, &event_stream, Length::Chunked, false);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(text.contains("\r\ndate: "));
        assert!(text.ends_with("transfer-encoding: chunked\r\n\r\n"));

        let (text, _) = head(StatusCode::NOT_FOUND, &[], Length::Exact(12), true);
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.ends_with("connection: close\r\ncontent-length: 12\r\n\r\n"));
    }

    #[test]
    fn a_response_s_header_map_is_written_as_its_names_and_values() {
        let mut response = Response::new(SseBody::full(b"{}".to_vec()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let Encoded::Whole { bytes, close } = encode(response, false) else {
            panic!("a whole answer");
        };
        let text = String::from_utf8(bytes).unwrap();
        assert!(!close, "{text}");
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"),
            "{text}"
        );
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
    }

    #[test]
    fn the_date_is_formatted_once_per_second_and_stays_right() {
        let at = |seconds: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let written = |now: SystemTime| {
            let mut out = Vec::new();
            write_date(&mut out, now);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(at(784_111_777)),
            "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
        // Within the same second the cached text is right; the next second is new.
        let later = at(784_111_777) + Duration::from_millis(999);
        assert_eq!(written(later), "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        assert_eq!(
            written(at(784_111_778)),
            "date: Sun, 06 Nov 1994 08:49:38 GMT\r\n"
        );
        assert_eq!(
            written(at(784_111_777)),
            "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
    }
}
