//! API errors and their JSON bodies: `{"error": "<code>", "detail": "<sentence>"}`.
//!
//! Every request the server refuses gets one of these, with a status code that says who
//! must act (4xx: the client; 503: retry later) and a body that names the rule broken.

use std::fmt;

use http::{header, HeaderValue, StatusCode};
use sse_core::{EventError, NamespaceError};

/// A refused request: the status, a stable machine-readable code, and a sentence for
/// people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after_secs: Option<u32>,
    allow: Option<&'static str>,
}

impl ApiError {
    /// An error with `status`, machine-readable `code` and human `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after_secs: None,
            allow: None,
        }
    }

    /// 400 for a malformed request field.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 405 with the methods the route does allow.
    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route allows {allow}"),
        );
        error.allow = Some(allow);
        error
    }

    /// 404 for a path no route serves.
    pub fn not_found(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route for {path:?}; see /subscribe/{{namespace}} and /publish/{{namespace}}"
            ),
        )
    }

    /// 401 for a missing or wrong bearer token.
    pub fn unauthorized(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("{what} requires 'Authorization: Bearer <token>' with the configured token"),
        )
    }

    /// 503 while the server drains for shutdown.
    pub fn draining() -> ApiError {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down; retry against another node",
        );
        error.retry_after_secs = Some(1);
        error
    }

    /// 503 with `Retry-After` when the connection limit is reached.
    pub fn too_many_connections(limit: usize) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!("the server holds its limit of {limit} event streams; retry later"),
        );
        error.retry_after_secs = Some(5);
        error
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code (the `error` member of the body).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human sentence (the `detail` member of the body).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.code, "detail": self.detail }).to_string()
    }

    /// Headers that belong with this error besides the content type.
    pub(crate) fn extra_headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        if let Some(secs) = self.retry_after_secs {
            headers.push((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if let Some(allow) = self.allow {
            headers.push((header::ALLOW, HeaderValue::from_static(allow)));
        }
        headers
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl From<NamespaceError> for ApiError {
    fn from(error: NamespaceError) -> ApiError {
        ApiError::bad_request("invalid_namespace", error.to_string())
    }
}

impl From<EventError> for ApiError {
    fn from(error: EventError) -> ApiError {
        ApiError::bad_request(
            "invalid_field",
            format!("field {:?}: {error}", error.field()),
        )
    }
}
