//! Building responses: JSON, text, empty answers and redirects, and refusals
//! ([`ApiError::into_response`]). Every answer the service makes that is not an event
//! stream is built here.

use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::body::SseBody;
use crate::error::{ApiError, ErrorCode};

/// `status` with `value` as its JSON body.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<SseBody> {
    let body = serde_json::to_vec(value)
        .expect("the API's answers are plain structs and maps, which always serialise");
    with_type(status, body, "application/json")
}

/// `status` with a plain-text body.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<SseBody> {
    with_type(status, body, "text/plain; charset=utf-8")
}

/// `status` with `body` of `content_type`.
pub(crate) fn with_type(
    status: StatusCode,
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> Response<SseBody> {
    let mut response = Response::new(SseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `status` with no body.
pub(crate) fn empty(status: StatusCode) -> Response<SseBody> {
    let mut response = Response::new(SseBody::empty());
    *response.status_mut() = status;
    response
}

/// A permanent redirect to `location`, which is relative so that it stays right behind
/// a router that strips a prefix.
pub(crate) fn redirect(location: &'static str) -> Response<SseBody> {
    let mut response = empty(StatusCode::PERMANENT_REDIRECT);
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    response
}

impl ApiError {
    /// The refusal as a response: its status, `Content-Type: application/json`, the JSON
    /// body, and `Retry-After` or `Allow` where the code calls for them. A `408` also
    /// carries `Connection: close`: the rest of its body may still be on its way, so
    /// the connection cannot carry another request.
    ///
    /// ```
    /// use sse_hyper::{ApiError, ErrorCode};
    ///
    /// let response = ApiError::new(ErrorCode::Draining, "shutting down").into_response();
    /// assert_eq!(response.status(), 503);
    /// assert_eq!(response.headers()["retry-after"], "1");
    /// ```
    pub fn into_response(self) -> Response<SseBody> {
        tracing::debug!(
            status = self.status().as_u16(),
            code = self.code().as_str(),
            detail = self.detail(),
            "request refused"
        );
        let mut response = with_type(self.status(), self.body(), "application/json");
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow() {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.code() == ErrorCode::RequestTimeout {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_json_and_its_headers() {
        let response = ApiError::method_not_allowed("POST, OPTIONS").into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST, OPTIONS");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().into_full()).unwrap();
        assert_eq!(body["error"], "method_not_allowed");

        let response = ApiError::new(ErrorCode::TooManyConnections, "full").into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
