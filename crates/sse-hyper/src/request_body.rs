//! Request bodies: the one bound every handler puts on them, and reading one whole
//! within a limit.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use crate::error::{ApiError, ErrorCode};

/// Any error a request body may fail with: what hyper, tower and axum stacks use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request bodies [`SseService`](crate::SseService) accepts: any [`http_body::Body`]
/// that can be sent to another task and whose errors convert into a [`BoxError`]. hyper's
/// `Incoming`, `axum::body::Body`, `http_body_util::Full` and `BoxBody<Bytes, BoxError>`
/// all qualify; the trait is implemented for every such type.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{combinators::BoxBody, BodyExt, Full};
/// use sse_hyper::{BoxError, RequestBody};
///
/// fn accepted(_: impl RequestBody) {}
/// accepted(Full::new(Bytes::from("Corgi")));
/// let boxed: BoxBody<Bytes, BoxError> = Full::new(Bytes::new()).map_err(|e| match e {}).boxed();
/// accepted(boxed);
/// ```
pub trait RequestBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

impl<B> RequestBody for B
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
}

/// Reads the whole body of `request`, refusing one over `limit` bytes with `413` (at once
/// when `Content-Length` says so, else as soon as the limit is passed), and one that has
/// not arrived whole within `timeout` with `408`.
pub(crate) async fn read_limited(
    request: Request<impl RequestBody>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the {limit}-byte limit"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let collecting = Limited::new(request.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(timeout, collecting).await else {
        return Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::new(
            ErrorCode::BodyReadFailed,
            format!("could not read the request body: {error}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::{Full, StreamBody};

    const A_WHILE: Duration = Duration::from_secs(60);

    fn request(body: &'static str) -> Request<Full<Bytes>> {
        Request::new(Full::new(Bytes::from_static(body.as_bytes())))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = read_limited(request("Corgi"), 5, A_WHILE).await.unwrap();
        assert_eq!(body, "Corgi");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_even_without_a_length() {
        let error = read_limited(request("Corgis"), 5, A_WHILE)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::PayloadTooLarge);
    }

    #[tokio::test]
    async fn a_declared_length_past_the_limit_is_refused_before_reading() {
        let mut request = request("");
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("6"));
        let error = read_limited(request, 5, A_WHILE).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::PayloadTooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_refused_after_the_timeout() {
        // One chunk, then nothing: the stream never ends.
        let chunks = futures::stream::iter([Ok::<_, BoxError>(http_body::Frame::data(
            Bytes::from_static(b"Cor"),
        ))])
        .chain(futures::stream::pending());
        let request = Request::new(StreamBody::new(chunks));
        let error = read_limited(request, 5, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::RequestTimeout);
        assert_eq!(error.status(), 408);
    }
}
