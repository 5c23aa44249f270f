//! Bounds on what a client sends that the server would otherwise keep: the size of a
//! request head, and the length of the strings a stream stores for its whole life.
//!
//! Every path that reads a head enforces [`MAX_HEAD_BYTES`]: the direct HTTP/1.1 path in
//! `connection.rs` while it reads, and [`SseService`](crate::SseService) for every
//! request, measured with [`head_bytes`] (single publishes the direct path answers from
//! their head, with [`measured_head_bytes`]: the same measure). hyper's own
//! buffers stop a few times higher, so that the service sees, and answers with a JSON
//! body, any head that is merely too large.

use http::{Method, Request, Uri};

use crate::error::{ApiError, ErrorCode};

/// The largest request head accepted, in bytes (request line and headers, as sent over
/// HTTP/1.1); a larger one is refused with `431`.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The longest user agent and request path a stream keeps for the admin status, in
/// bytes; longer ones are cut (on a character boundary).
pub const MAX_STORED_TEXT_BYTES: usize = 256;

/// The longest `Last-Event-ID` (header or `?lastEventId=`) honoured, in bytes; a longer
/// one is ignored, as if absent. Ids the server assigns are far shorter.
pub const MAX_LAST_EVENT_ID_BYTES: usize = 256;

/// Where hyper itself stops reading a head (HTTP/1.x read buffer, HTTP/2 header list):
/// high enough that a head just over [`MAX_HEAD_BYTES`] still reaches the service and
/// gets a JSON answer, low enough to bound what a connection buffers.
pub(crate) const PROTOCOL_HEAD_LIMIT: usize = 4 * MAX_HEAD_BYTES;

/// The size of `request`'s head as HTTP/1.1 would carry it: the request line, each
/// header line and the blank line.
pub(crate) fn head_bytes<B>(request: &Request<B>) -> usize {
    let headers = request.headers().iter();
    measured_head_bytes(
        request.method(),
        request.uri(),
        headers.map(|(name, value)| (name.as_str().len(), value.len())),
    )
}

/// [`head_bytes`] of a head of `method`, `uri` and headers of these name and value
/// lengths, wherever it was parsed: each header line counts as `name: value` and CRLF,
/// however it was spaced.
pub(crate) fn measured_head_bytes(
    method: &Method,
    uri: &Uri,
    headers: impl Iterator<Item = (usize, usize)>,
) -> usize {
    let target = uri
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    // Over HTTP/2 the authority travels as a pseudo-header, as `Host` would.
    let authority = uri
        .authority()
        .map_or(0, |authority| authority.as_str().len());
    let line = method.as_str().len() + 1 + target + authority + 11;
    let headers: usize = headers.map(|(name, value)| name + 2 + value + 2).sum();
    line + headers + 2
}

/// `431` for a head of `bytes` bytes.
pub(crate) fn head_too_large(bytes: usize) -> ApiError {
    ApiError::new(
        ErrorCode::HeadTooLarge,
        format!("the request head has {bytes} bytes or more; the limit is {MAX_HEAD_BYTES}"),
    )
}

/// Refuses a request whose head is over [`MAX_HEAD_BYTES`].
pub(crate) fn check_head<B>(request: &Request<B>) -> Result<(), ApiError> {
    check_head_bytes(head_bytes(request))
}

/// Refuses a head of `bytes` ([`head_bytes`]) over [`MAX_HEAD_BYTES`].
pub(crate) fn check_head_bytes(bytes: usize) -> Result<(), ApiError> {
    if bytes > MAX_HEAD_BYTES {
        return Err(head_too_large(bytes));
    }
    Ok(())
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.shrink_to_fit();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        assert_eq!(truncated("short".into(), 256), "short");
        assert_eq!(truncated("abcdef".into(), 4), "abcd");
        // 'é' is two bytes: a cut through it keeps the whole character out.
        assert_eq!(truncated("aé".into(), 2), "a");
        let long = "ü".repeat(300);
        let cut = truncated(long, MAX_STORED_TEXT_BYTES);
        assert_eq!(cut.len(), MAX_STORED_TEXT_BYTES);
        assert!(cut.capacity() < 600, "the long buffer is let go");
    }

    #[test]
    fn a_head_is_measured_as_http11_carries_it() {
        let request = Request::get("/subscribe/pets")
            .header("host", "t")
            .body(())
            .unwrap();
        let wire = "GET /subscribe/pets HTTP/1.1\r\nhost: t\r\n\r\n";
        assert_eq!(head_bytes(&request), wire.len());
        assert!(check_head(&request).is_ok());
        let big = Request::get("/")
            .header("x-filler", "f".repeat(MAX_HEAD_BYTES))
            .body(())
            .unwrap();
        assert_eq!(
            check_head(&big).unwrap_err().code(),
            ErrorCode::HeadTooLarge
        );
    }
}
