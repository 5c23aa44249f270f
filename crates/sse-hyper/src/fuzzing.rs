//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`): thin wrappers around
//! crate-private parsers, so that the targets run exactly the code the server runs.
//! Hidden from the documentation and not part of the API: it may change at any time.

use http::Request;
use sse_core::{Event, Namespace};

use crate::direct_head;
use crate::error::{ApiError, ErrorCode};
use crate::publish::{self, QueryFields};
use crate::routes::subscribe::StreamRequest;

/// The event `POST /publish/{namespace}` builds from its `Content-Type`, query string and
/// body, with the steps and order of the route (media type, query, body).
pub fn publish_single(
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Event, ApiError> {
    let kind = publish::body_kind(content_type).ok_or_else(|| {
        ApiError::new(ErrorCode::UnsupportedMediaType, "unsupported content type")
    })?;
    let query = QueryFields::parse(query)?;
    publish::single_event(kind, body, &query)
}

/// The events of an NDJSON batch body (`POST /publish`), each with its namespace.
pub fn publish_batch(body: &[u8]) -> Result<Vec<(Namespace, Event)>, ApiError> {
    publish::batch_events(body)
}

/// What `GET /subscribe{path_namespace}` asks for: its namespaces (the path's and those
/// of `?ns=`, not yet reduced) and the id it resumes after.
pub fn subscribe_request<B>(
    request: &Request<B>,
    path_namespace: &str,
) -> Result<(Vec<Namespace>, Option<String>), ApiError> {
    let stream = StreamRequest::read(request, path_namespace, None)?;
    Ok((stream.namespaces, stream.last_event_id))
}

/// What the direct HTTP/1.1 path makes of the bytes read so far on a connection.
pub use crate::direct_head::Parsed as ParsedHead;

/// A head the direct path may serve, as read.
pub use crate::direct_head::DirectHead;

/// Runs the direct path's head parser (`direct_head.rs`) on `bytes`.
pub fn parse_direct_head(bytes: &[u8]) -> ParsedHead {
    direct_head::parse(bytes.to_vec())
}

/// The size of `request`'s head as the service measures it against
/// [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES).
pub fn measured_head_bytes<B>(request: &Request<B>) -> usize {
    crate::limits::head_bytes(request)
}
