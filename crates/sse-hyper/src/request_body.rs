//! Request bodies: the one bound every handler puts on them, and reading one whole
//! within a limit.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::Request;
use http_body::Body;
use http_body_util::BodyExt;

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
/// when its known length says so: `Content-Length` as hyper read it, or what the direct
/// path holds; else as soon as the limit is passed), and one that has
/// not arrived whole within `timeout` with `408`.
///
/// A body that arrived with its head (the usual publish) is read at the first poll, with
/// no timer armed and, when it came in one piece, without copying it.
pub(crate) async fn read_limited(
    request: Request<impl RequestBody>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    // The length the body is known to have at least: its `Content-Length`, as hyper
    // read it, or what the connection already holds of it.
    if request.body().size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut reading = pin!(read_whole(request.into_body(), limit, timeout));
    if let Poll::Ready(read) = poll_fn(|cx| Poll::Ready(reading.as_mut().poll(cx))).await {
        return read;
    }
    let Ok(read) = tokio::time::timeout(timeout, reading).await else {
        return Err(timed_out(timeout));
    };
    read
}

/// The refusal of a body that did not arrive within `timeout`.
fn timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ),
    )
}

/// Reads `body` to its end, refusing it as soon as it passes `limit` bytes. Trailers are
/// ignored.
async fn read_whole(
    body: impl RequestBody,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let mut body = pin!(body);
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut length = 0usize;
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|error| {
            let error: BoxError = error.into();
            if error.is::<BodyTimedOut>() {
                return timed_out(timeout);
            }
            read_failed(error)
        })?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let chunk = data.copy_to_bytes(data.remaining());
        length = length.saturating_add(chunk.len());
        if length > limit {
            return Err(too_large(limit));
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let mut both = BytesMut::with_capacity(length);
                both.extend_from_slice(&first);
                both.extend_from_slice(&chunk);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// The refusal of a body whose reading failed with `error`.
fn read_failed(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::BodyReadFailed,
        format!("could not read the request body: {error}"),
    )
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than the {limit}-byte limit"),
    )
}

/// A request body the connection has read itself (the direct HTTP/1.1 path): whole, or
/// cut short by the body timeout or a failed read, which the routes then answer as they
/// would a body hyper failed to read.
#[derive(Debug, Default)]
pub(crate) struct ReadBody {
    data: Option<Bytes>,
    failure: Option<ReadFailure>,
}

/// Why a [`ReadBody`] is short.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The rest did not arrive within the body timeout.
    TimedOut,
    /// Reading the connection failed, or the client closed it.
    Failed(std::io::Error),
}

/// The error of a body that stopped arriving within the body timeout; [`read_limited`]
/// answers it as it answers its own timeout.
#[derive(Debug)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

impl ReadBody {
    /// A body of `data`, whole.
    pub(crate) fn whole(data: Bytes) -> ReadBody {
        ReadBody {
            data: (!data.is_empty()).then_some(data),
            failure: None,
        }
    }

    /// The `data` that arrived, then `failure`.
    pub(crate) fn short(data: Bytes, failure: ReadFailure) -> ReadBody {
        ReadBody {
            data: (!data.is_empty()).then_some(data),
            failure: Some(failure),
        }
    }
}

impl ReadBody {
    /// Whether the whole body arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.failure.is_none()
    }

    /// The body's bytes, or its refusal, as [`read_limited`] gives them for a request
    /// with this body, over `limit` bytes, within `timeout` — without a future to poll.
    pub(crate) fn into_bytes(self, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
        let data = self.data.unwrap_or_default();
        if data.len() > limit {
            return Err(too_large(limit));
        }
        match self.failure {
            None => Ok(data),
            Some(ReadFailure::TimedOut) => Err(timed_out(timeout)),
            Some(ReadFailure::Failed(error)) => Err(read_failed(error)),
        }
    }
}

impl Body for ReadBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        Poll::Ready(self.failure.take().map(|failure| {
            Err(match failure {
                ReadFailure::TimedOut => BoxError::from(BodyTimedOut),
                ReadFailure::Failed(error) => BoxError::from(error),
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.failure.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let length = self.data.as_ref().map_or(0, |data| data.len() as u64);
        match self.failure {
            None => http_body::SizeHint::with_exact(length),
            Some(_) => {
                let mut hint = http_body::SizeHint::new();
                hint.set_lower(length);
                hint
            }
        }
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

    fn in_pieces(pieces: &[&'static str]) -> Request<impl RequestBody> {
        let frames = pieces
            .iter()
            .map(|piece| {
                Ok::<_, BoxError>(http_body::Frame::data(Bytes::from_static(piece.as_bytes())))
            })
            .collect::<Vec<_>>();
        Request::new(StreamBody::new(futures::stream::iter(frames)))
    }

    #[tokio::test]
    async fn a_body_in_pieces_is_joined_in_order() {
        let body = read_limited(in_pieces(&["Co", "r", "", "gi"]), 5, A_WHILE)
            .await
            .unwrap();
        assert_eq!(body, "Corgi");
        let error = read_limited(in_pieces(&["Co", "r", "gis"]), 5, A_WHILE)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::PayloadTooLarge);
    }

    #[tokio::test]
    async fn a_body_that_fails_is_refused_naming_the_failure() {
        let frames = futures::stream::iter([
            Ok(http_body::Frame::data(Bytes::from_static(b"Cor"))),
            Err(BoxError::from("connection reset")),
        ]);
        let error = read_limited(Request::new(StreamBody::new(frames)), 5, A_WHILE)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::BodyReadFailed);
        assert!(
            error.detail().contains("connection reset"),
            "{}",
            error.detail()
        );
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_even_without_a_length() {
        let error = read_limited(request("Corgis"), 5, A_WHILE)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::PayloadTooLarge);
    }

    /// A body that declares its length (as hyper's does from `Content-Length`) and never
    /// sends a byte of it.
    struct Declared(u64);

    impl Body for Declared {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
            Poll::Pending
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.0)
        }
    }

    #[tokio::test]
    async fn a_declared_length_past_the_limit_is_refused_before_reading() {
        let error = read_limited(Request::new(Declared(6)), 5, A_WHILE)
            .await
            .unwrap_err();
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

    #[tokio::test]
    async fn a_body_read_by_the_connection_is_answered_like_one_read_by_hyper() {
        let whole = Request::new(ReadBody::whole(Bytes::from_static(b"Corgi")));
        assert_eq!(read_limited(whole, 5, A_WHILE).await.unwrap(), "Corgi");
        let late = ReadBody::short(Bytes::from_static(b"Co"), ReadFailure::TimedOut);
        let error = read_limited(Request::new(late), 5, Duration::from_secs(7))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::RequestTimeout);
        assert!(error.detail().contains("7000 ms"), "{}", error.detail());
        let closed = ReadFailure::Failed(std::io::ErrorKind::UnexpectedEof.into());
        let error = read_limited(
            Request::new(ReadBody::short(Bytes::new(), closed)),
            5,
            A_WHILE,
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), ErrorCode::BodyReadFailed);
    }

    #[tokio::test]
    async fn a_body_taken_without_polling_is_answered_as_read_limited_answers_it() {
        let bodies: [fn() -> ReadBody; 5] = [
            || ReadBody::whole(Bytes::from_static(b"Corgi")),
            || ReadBody::whole(Bytes::new()),
            || ReadBody::whole(Bytes::from_static(b"Corgis")),
            || ReadBody::short(Bytes::from_static(b"Co"), ReadFailure::TimedOut),
            || {
                let closed = ReadFailure::Failed(std::io::ErrorKind::UnexpectedEof.into());
                ReadBody::short(Bytes::from_static(b"C"), closed)
            },
        ];
        let timeout = Duration::from_secs(7);
        let outcome = |read: Result<Bytes, ApiError>| {
            read.map_err(|error| (error.code(), error.detail().to_owned()))
        };
        for body in bodies {
            let polled = outcome(read_limited(Request::new(body()), 5, timeout).await);
            let taken = outcome(body().into_bytes(5, timeout));
            assert_eq!(taken, polled);
        }
    }
}
