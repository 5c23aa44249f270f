//! Refused requests: [`ErrorCode`] names every way a request can be refused, and
//! [`ApiError`] carries one with a sentence for people.
//!
//! The JSON body is `{"error": "<code>", "detail": "<sentence>"}`. The code is stable and
//! for machines; its HTTP status says who must act (4xx: the client; 503: retry later).
//! How an error becomes a response is in `response.rs`.

use std::fmt;

use http::StatusCode;
use sse_core::{EventError, NamespaceError, PublishError};

/// Every machine-readable error code the HTTP API answers with, and its status.
///
/// ```
/// use sse_hyper::ErrorCode;
///
/// assert_eq!(ErrorCode::InvalidNamespace.as_str(), "invalid_namespace");
/// assert_eq!(ErrorCode::InvalidNamespace.status().as_u16(), 400);
/// assert!(ErrorCode::ALL.contains(&ErrorCode::Draining));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: a namespace breaks a rule of the namespace syntax.
    InvalidNamespace,
    /// 400: an event field (`event`, `id`, `retry`) is not allowed on the wire.
    InvalidField,
    /// 400: the body is not the JSON it should be.
    InvalidJson,
    /// 400: the event data is not UTF-8 text.
    InvalidData,
    /// 400: a JSON member the request needs is missing.
    MissingField,
    /// 400: a JSON member is not one the API knows.
    UnknownField,
    /// 400: a stream names more namespaces than one stream may hold.
    TooManyNamespaces,
    /// 400: an NDJSON batch holds no event.
    EmptyBatch,
    /// 400: the request body could not be read.
    BodyReadFailed,
    /// 401: the bearer token is missing or wrong; with signed tokens (JWT), also
    /// malformed, badly signed, signed with another algorithm than the key's, expired
    /// or not valid yet.
    Unauthorized,
    /// 403: a valid signed token (JWT) that does not cover the namespace asked for.
    Forbidden,
    /// 403: an anonymous publish from a web page whose origin the CORS origins do not
    /// list by name.
    ForbiddenOrigin,
    /// 403: anonymous publishing or the token-less admin interface asked for under a
    /// `Host` that is not a loopback name (`localhost`, `127.0.0.1`, `[::1]`); the detail
    /// names the token to set.
    ForbiddenHost,
    /// 404: no route serves the path.
    NotFound,
    /// 405: the route exists but not for this method (the answer carries `Allow`).
    MethodNotAllowed,
    /// 408: the request body did not arrive within the body timeout (the connection is
    /// closed after the answer).
    RequestTimeout,
    /// 409: the publisher chose an id that a retained event already has, or that an
    /// earlier line of the same batch has; nothing was published.
    DuplicateId,
    /// 413: the body is larger than the limit.
    PayloadTooLarge,
    /// 415: the `Content-Type` is not one the route reads.
    UnsupportedMediaType,
    /// 431: the request head (request line and headers) is larger than
    /// [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES).
    HeadTooLarge,
    /// 503: the server is shutting down (the answer carries `Retry-After`).
    Draining,
    /// 503: the server holds its limit of event streams (the answer carries
    /// `Retry-After`).
    TooManyConnections,
    /// 503: in cluster mode, Redis cannot be reached or did not answer in time; nothing
    /// was published (the answer carries `Retry-After`).
    BrokerUnavailable,
}

impl ErrorCode {
    /// Every code, in the order of their status.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidNamespace,
        ErrorCode::InvalidField,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidData,
        ErrorCode::MissingField,
        ErrorCode::UnknownField,
        ErrorCode::TooManyNamespaces,
        ErrorCode::EmptyBatch,
        ErrorCode::BodyReadFailed,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::ForbiddenHost,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::DuplicateId,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::HeadTooLarge,
        ErrorCode::Draining,
        ErrorCode::TooManyConnections,
        ErrorCode::BrokerUnavailable,
    ];

    /// The code as the `error` member of the JSON body spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidNamespace => "invalid_namespace",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidData => "invalid_data",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::TooManyNamespaces => "too_many_namespaces",
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::BodyReadFailed => "body_read_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
            ErrorCode::ForbiddenHost => "forbidden_host",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::DuplicateId => "duplicate_id",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::HeadTooLarge => "head_too_large",
            ErrorCode::Draining => "draining",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::BrokerUnavailable => "broker_unavailable",
        }
    }

    /// The HTTP status a refusal with this code carries.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidNamespace
            | ErrorCode::InvalidField
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidData
            | ErrorCode::MissingField
            | ErrorCode::UnknownField
            | ErrorCode::TooManyNamespaces
            | ErrorCode::EmptyBatch
            | ErrorCode::BodyReadFailed => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::ForbiddenOrigin | ErrorCode::ForbiddenHost => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::DuplicateId => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::Draining | ErrorCode::TooManyConnections | ErrorCode::BrokerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: an [`ErrorCode`] and a sentence for people that names the rule
/// broken.
///
/// [`SseService::event_stream`](crate::SseService::event_stream) returns one; an
/// application answers it with [`ApiError::into_response`], or with its own response.
///
/// ```
/// use sse_hyper::{ApiError, ErrorCode};
///
/// let error = ApiError::new(ErrorCode::Unauthorized, "log in first");
/// assert_eq!(error.status().as_u16(), 401);
/// assert!(error.body().contains(r#""error":"unauthorized""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
    allow: Option<&'static str>,
}

impl ApiError {
    /// A refusal with `code` and a human `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            allow: None,
        }
    }

    /// 405 with the methods the route does allow.
    pub(crate) fn method_not_allowed(allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("this route allows {allow}"),
            )
        }
    }

    /// 404 for a path no route serves.
    pub(crate) fn not_found(path: &str) -> ApiError {
        ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no route for {path:?}; see /subscribe/{{namespace}} and /publish/{{namespace}}"
            ),
        )
    }

    /// 401 for a missing or wrong bearer token.
    pub(crate) fn unauthorized(what: &str) -> ApiError {
        ApiError::new(
            ErrorCode::Unauthorized,
            format!("{what} requires 'Authorization: Bearer <token>' with the configured token"),
        )
    }

    /// 503 while the server drains for shutdown.
    pub(crate) fn draining() -> ApiError {
        ApiError::new(
            ErrorCode::Draining,
            "the server is shutting down; retry against another node",
        )
    }

    /// 503 when the connection limit is reached.
    pub(crate) fn too_many_connections(limit: usize) -> ApiError {
        ApiError::new(
            ErrorCode::TooManyConnections,
            format!("the server holds its limit of {limit} event streams; retry later"),
        )
    }

    /// The same refusal with `prefix` put before its detail (such as the line of a batch).
    pub(crate) fn prefixed(self, prefix: impl fmt::Display) -> ApiError {
        ApiError {
            detail: format!("{prefix}: {}", self.detail),
            ..self
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status (the code's).
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The human sentence (the `detail` member of the body).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.code.as_str(), "detail": self.detail }).to_string()
    }

    /// Seconds a client should wait before retrying, sent as `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self.code {
            ErrorCode::Draining | ErrorCode::BrokerUnavailable => Some(1),
            ErrorCode::TooManyConnections => Some(5),
            _ => None,
        }
    }

    /// The `Allow` header value of a 405.
    pub(crate) fn allow(&self) -> Option<&'static str> {
        self.allow
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status().as_u16(),
            self.code,
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(feature = "redis")]
impl From<sse_redis::BrokerUnavailable> for ApiError {
    fn from(error: sse_redis::BrokerUnavailable) -> ApiError {
        ApiError::new(
            ErrorCode::BrokerUnavailable,
            format!("{error}; nothing was published, retry shortly"),
        )
    }
}

#[cfg(feature = "redis")]
impl From<sse_redis::PublishError> for ApiError {
    fn from(error: sse_redis::PublishError) -> ApiError {
        match error {
            sse_redis::PublishError::Unavailable(error) => error.into(),
            sse_redis::PublishError::DuplicateId { index, id } => {
                PublishError::DuplicateId { index, id }.into()
            }
            // Non-exhaustive: a refusal the cluster learns later is the request's fault.
            other => ApiError::new(ErrorCode::InvalidField, other.to_string()),
        }
    }
}

impl From<NamespaceError> for ApiError {
    fn from(error: NamespaceError) -> ApiError {
        ApiError::new(ErrorCode::InvalidNamespace, error.to_string())
    }
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> ApiError {
        match error {
            PublishError::Invalid { error, .. } => error.into(),
            PublishError::DuplicateId { .. } => ApiError::new(
                ErrorCode::DuplicateId,
                format!("{error}; choose another id, or send none and the server assigns one"),
            ),
            PublishError::TooLarge { .. } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("{error}; nothing was published"),
            ),
            // `PublishError` is non-exhaustive: a refusal it learns later is still the
            // request's fault, whatever it is.
            _ => ApiError::new(ErrorCode::InvalidField, error.to_string()),
        }
    }
}

impl From<EventError> for ApiError {
    fn from(error: EventError) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("field {:?}: {error}", error.field()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} listed twice");
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn only_503s_ask_for_a_retry() {
        for code in ErrorCode::ALL {
            let error = ApiError::new(*code, "x");
            assert_eq!(
                error.retry_after_secs().is_some(),
                code.status() == StatusCode::SERVICE_UNAVAILABLE,
                "{code}"
            );
        }
    }

    #[test]
    fn a_prefix_keeps_the_code() {
        let error = ApiError::new(ErrorCode::MissingField, "needs data").prefixed("line 3");
        assert_eq!(error.code(), ErrorCode::MissingField);
        assert_eq!(error.detail(), "line 3: needs data");
    }
}
