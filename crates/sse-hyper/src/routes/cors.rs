//! Cross-origin reads: `Access-Control-Allow-Origin` on answers, and `OPTIONS` preflights.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::SseBody;
use crate::config::CorsOrigins;
use crate::response;

/// Headers a browser may send on a cross-origin request.
const ALLOWED_HEADERS: &str = "authorization, content-type, last-event-id, cache-control";
/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE: &str = "86400";

/// Adds the CORS headers `origins` calls for to an answer to a request from `origin`.
pub(crate) fn apply(origins: &CorsOrigins, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    match origins {
        CorsOrigins::None => {}
        CorsOrigins::Any => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        CorsOrigins::List(allowed) => {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
            let listed = origin
                .and_then(|o| o.to_str().ok())
                .is_some_and(|o| allowed.iter().any(|a| a == o));
            if let (true, Some(origin)) = (listed, origin) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            }
        }
    }
}

/// The answer to an `OPTIONS` request for a route that allows `allowed`.
pub(crate) fn preflight(allowed: &'static str) -> Response<SseBody> {
    let mut response = response::empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(allowed),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_nothing() {
        let origins = CorsOrigins::List(vec!["https://a.example".to_owned()]);
        let mut headers = HeaderMap::new();
        let listed = HeaderValue::from_static("https://a.example");
        apply(&origins, Some(&listed), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], listed);
        assert_eq!(headers[header::VARY], "origin");

        let mut headers = HeaderMap::new();
        let other = HeaderValue::from_static("https://b.example");
        apply(&origins, Some(&other), &mut headers);
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn any_and_none_need_no_origin() {
        let mut headers = HeaderMap::new();
        apply(&CorsOrigins::Any, None, &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let mut headers = HeaderMap::new();
        apply(&CorsOrigins::None, None, &mut headers);
        assert!(headers.is_empty());
    }
}
