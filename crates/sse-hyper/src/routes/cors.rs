//! Cross-origin reads: `Access-Control-Allow-Origin` on answers, and `OPTIONS` preflights.
//!
//! Which answers may carry it depends on the route ([`Exposure`]): event streams get
//! what `--cors-origin` says (`*` by default); publish answers only an origin listed by
//! name (a page may publish with a token, or anonymously from a listed origin, and read
//! the reply); the admin interface, metrics and health checks never, so no page can read
//! them through a visitor's browser.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::SseBody;
use crate::config::CorsOrigins;
use crate::response;

/// Headers a browser may send on a cross-origin request.
const ALLOWED_HEADERS: &str = "authorization, content-type, last-event-id, cache-control";
/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE: &str = "86400";

/// Which cross-origin readers a route's answers admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposure {
    /// Event streams: the configured origins, `*` included.
    Streams,
    /// Publish answers: only origins listed by name; `*` gives nothing.
    ListedOnly,
    /// Admin, metrics, health, unknown paths: no CORS headers at all.
    Never,
}

/// The CORS headers of one answer: `Vary: origin` and `Access-Control-Allow-Origin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AnswerHeaders<'a> {
    vary_origin: bool,
    /// `*`, or the request's origin echoed.
    allow_origin: Option<&'a [u8]>,
}

/// The CORS headers `origins` calls for, within `exposure`, on an answer to a request
/// from `origin` (the `Origin` header's value).
pub(crate) fn answer_headers<'a>(
    origins: &CorsOrigins,
    exposure: Exposure,
    origin: Option<&'a [u8]>,
) -> AnswerHeaders<'a> {
    match (origins, exposure) {
        (_, Exposure::Never)
        | (CorsOrigins::None, _)
        | (CorsOrigins::Any, Exposure::ListedOnly) => AnswerHeaders::default(),
        (CorsOrigins::Any, Exposure::Streams) => AnswerHeaders {
            vary_origin: false,
            allow_origin: Some(b"*"),
        },
        (CorsOrigins::List(allowed), _) => AnswerHeaders {
            vary_origin: true,
            // Compared as text, which an origin of other than ASCII is not.
            allow_origin: origin.filter(|origin| {
                origin.is_ascii() && allowed.iter().any(|a| a.as_bytes() == *origin)
            }),
        },
    }
}

impl<'a> AnswerHeaders<'a> {
    /// Adds the headers to an answer's header map.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        if self.vary_origin {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        if let Some(Ok(origin)) = self.allow_origin.map(HeaderValue::from_bytes) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }

    /// The headers' names and values, in the order [`apply`](AnswerHeaders::apply) adds
    /// them.
    pub(crate) fn pairs(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let vary = self.vary_origin.then_some((&b"vary"[..], &b"origin"[..]));
        let allow = self
            .allow_origin
            .map(|origin| (&b"access-control-allow-origin"[..], origin));
        vary.into_iter().chain(allow)
    }
}

/// The answer to an `OPTIONS` request for a route that allows `allowed`: a preflight
/// for routes a page may call, only `Allow` for the others. The origin is added by
/// [`AnswerHeaders::apply`].
pub(crate) fn preflight(allowed: &'static str, exposure: Exposure) -> Response<SseBody> {
    let mut response = response::empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
    if exposure == Exposure::Never {
        return response;
    }
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

    fn apply(
        origins: &CorsOrigins,
        exposure: Exposure,
        origin: Option<&HeaderValue>,
        headers: &mut HeaderMap,
    ) {
        let answer = answer_headers(origins, exposure, origin.map(HeaderValue::as_bytes));
        answer.apply(headers);
        let pairs: Vec<_> = answer.pairs().collect();
        let applied: Vec<_> = headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
            .collect();
        assert_eq!(pairs, applied, "written as applied, in the same order");
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_nothing() {
        let origins = CorsOrigins::List(vec!["https://a.example".to_owned()]);
        let listed = HeaderValue::from_static("https://a.example");
        for exposure in [Exposure::Streams, Exposure::ListedOnly] {
            let mut headers = HeaderMap::new();
            apply(&origins, exposure, Some(&listed), &mut headers);
            assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], listed);
            assert_eq!(headers[header::VARY], "origin");

            let mut headers = HeaderMap::new();
            let other = HeaderValue::from_static("https://b.example");
            apply(&origins, exposure, Some(&other), &mut headers);
            assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        }
    }

    #[test]
    fn star_is_for_streams_and_never_exposes_nothing() {
        let origin = HeaderValue::from_static("https://a.example");
        let listed = CorsOrigins::List(vec!["https://a.example".to_owned()]);
        for (origins, exposure) in [
            (&CorsOrigins::Any, Exposure::ListedOnly),
            (&CorsOrigins::Any, Exposure::Never),
            (&listed, Exposure::Never),
        ] {
            let mut headers = HeaderMap::new();
            apply(origins, exposure, Some(&origin), &mut headers);
            assert!(headers.is_empty(), "{origins:?} {exposure:?}");
        }
        let preflight = preflight("GET, OPTIONS", Exposure::Never);
        assert_eq!(preflight.headers().len(), 1, "only Allow");
    }

    #[test]
    fn any_and_none_need_no_origin() {
        let mut headers = HeaderMap::new();
        apply(&CorsOrigins::Any, Exposure::Streams, None, &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let mut headers = HeaderMap::new();
        apply(&CorsOrigins::None, Exposure::Streams, None, &mut headers);
        assert!(headers.is_empty());
    }
}
