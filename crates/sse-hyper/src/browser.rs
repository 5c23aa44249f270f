//! What a web page may do to a hub through a visitor's browser, judged from the `Host`
//! and `Origin` headers, which a page cannot forge.
//!
//! Two attacks need nothing but a hub that answers without a token:
//!
//! - **Cross-site publishing.** Any page may `POST` a "simple" request (a `text/plain`
//!   body, no custom header) to any address without a CORS preflight; it cannot read the
//!   answer, but the event is published. So an anonymous publish that carries an `Origin`
//!   is refused unless that origin is listed explicitly in the CORS origins; a `*`
//!   default lets pages *read streams*, never publish.
//! - **DNS rebinding.** A page of `evil.example` whose name is made to resolve to
//!   `127.0.0.1` talks to a local hub as its own origin: no CORS check applies, and it can
//!   read `/admin/status.json`. Its requests still say `Host: evil.example`, so anything
//!   that no token protects (anonymous publishing, the admin interface without a token)
//!   answers only requests whose `Host` is a loopback name.
//!
//! Requests that carry a configured token are judged by the token alone.

use http::uri::Authority;
use http::{header, HeaderValue, Request};

use crate::config::CorsOrigins;
use crate::error::{ApiError, ErrorCode};

/// The host names that can only mean this machine, compared without regard to case.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Where a request says it is addressed: its URI's authority (HTTP/2's `:authority`, or
/// an absolute-form HTTP/1.1 target, which overrides `Host`), and its `Host` header.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Addressed<'a> {
    /// The URI's authority, if it has one.
    pub(crate) authority: Option<&'a Authority>,
    /// The value of the (first) `Host` header.
    pub(crate) host: Option<&'a [u8]>,
}

impl<'a> Addressed<'a> {
    /// Where `request` is addressed.
    pub(crate) fn of<B>(request: &'a Request<B>) -> Addressed<'a> {
        Addressed {
            authority: request.uri().authority(),
            host: request
                .headers()
                .get(header::HOST)
                .map(HeaderValue::as_bytes),
        }
    }
}

/// Refuses an anonymous publish from a foreign `Host` (403 `forbidden_host`) or from a
/// web page whose origin (the `Origin` header's value) `cors` does not list by name (403
/// `forbidden_origin`).
pub(crate) fn check_anonymous_publish(
    cors: &CorsOrigins,
    addressed: Addressed<'_>,
    origin: Option<&[u8]>,
) -> Result<(), ApiError> {
    require_loopback_host(
        addressed,
        "anonymous publishing",
        "a publish token (--publish-token)",
    )?;
    let Some(origin) = origin else {
        return Ok(());
    };
    let listed = match cors {
        CorsOrigins::List(allowed) => allowed.iter().any(|a| a.as_bytes() == origin),
        CorsOrigins::Any | CorsOrigins::None => false,
    };
    if listed {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ForbiddenOrigin,
        format!(
            "anonymous publishing is refused to web pages of origin {:?}, which the CORS \
             origins (--cors-origin) do not list by name; list it, or publish with a token",
            String::from_utf8_lossy(origin)
        ),
    ))
}

/// Refuses the token-less admin interface to a request for a foreign `Host` (403
/// `forbidden_host`).
pub(crate) fn check_tokenless_admin<B>(request: &Request<B>) -> Result<(), ApiError> {
    require_loopback_host(
        Addressed::of(request),
        "the admin interface without a token",
        "an admin token (--admin-token)",
    )
}

fn require_loopback_host(
    addressed: Addressed<'_>,
    what: &str,
    token: &str,
) -> Result<(), ApiError> {
    if addressed_to_loopback(addressed) {
        return Ok(());
    }
    let host = request_host(addressed);
    if host.as_deref().is_some_and(is_loopback_name) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ForbiddenHost,
        format!(
            "{what} answers only requests for localhost, 127.0.0.1 or [::1], not {:?}; \
             set {token} to serve it under other names",
            host.unwrap_or_default()
        ),
    ))
}

/// The host the request is addressed to, without port: the URI's authority, else the
/// `Host` header. `None` when neither is there or readable.
fn request_host(addressed: Addressed<'_>) -> Option<String> {
    if let Some(authority) = addressed.authority {
        return Some(authority.host().to_owned());
    }
    host_header(addressed.host?)
}

/// Whether the request is plainly addressed to a loopback name, judged without
/// allocating: the URI's authority, else a `Host` header of exactly a loopback name with
/// an optional numeric port. Every request this accepts [`request_host`] would accept
/// too; anything unusual (user info, odd ports) is left to it.
fn addressed_to_loopback(addressed: Addressed<'_>) -> bool {
    if let Some(authority) = addressed.authority {
        return is_loopback_name(authority.host());
    }
    let Some(value) = addressed.host else {
        return false;
    };
    let name = match value.iter().rposition(|&b| b == b':') {
        Some(colon) if is_port(&value[colon + 1..]) => &value[..colon],
        _ => value,
    };
    LOOPBACK_NAMES
        .iter()
        .any(|loopback| loopback.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether `text` is a port number that any authority parser takes.
fn is_port(text: &[u8]) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.iter().all(u8::is_ascii_digit)
        && text
            .iter()
            .fold(0u32, |port, digit| port * 10 + u32::from(digit - b'0'))
            <= u32::from(u16::MAX)
}

/// The host of a `Host` header's value (ASCII only, as [`HeaderValue::to_str`] reads
/// it), without port.
fn host_header(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok().filter(|v| v.is_ascii())?;
    let authority: Authority = value.parse().ok()?;
    Some(authority.host().to_owned())
}

fn is_loopback_name(host: &str) -> bool {
    LOOPBACK_NAMES
        .iter()
        .any(|name| name.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>) -> Request<()> {
        let mut builder = Request::post("/publish/x");
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(()).unwrap()
    }

    fn code(result: Result<(), ApiError>) -> Option<ErrorCode> {
        result.err().map(|e| e.code())
    }

    #[test]
    fn loopback_names_pass_with_any_port_and_case() {
        for host in [
            "localhost",
            "LOCALHOST:8001",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8001",
        ] {
            assert_eq!(
                code(check_tokenless_admin(&request(Some(host)))),
                None,
                "{host}"
            );
        }
    }

    #[test]
    fn the_quick_loopback_check_never_accepts_what_the_full_parse_refuses() {
        for host in [
            "localhost",
            "LocalHost:8001",
            "127.0.0.1:65535",
            "127.0.0.1:65536",
            "127.0.0.1:99999",
            "localhost:00080",
            "127.0.0.1:",
            "127.0.0.1:80x",
            "[::1]:1",
            "[::1]",
            "::1",
            "x@localhost",
            "localhost:8001@evil.example",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example:80",
            "",
        ] {
            let request = request(Some(host));
            let full = request_host(Addressed::of(&request))
                .as_deref()
                .is_some_and(is_loopback_name);
            if addressed_to_loopback(Addressed::of(&request)) {
                assert!(full, "{host:?} passed the quick check only");
            }
        }
        for plain in [
            "localhost",
            "LOCALHOST:8001",
            "127.0.0.1:1",
            "127.0.0.1:65535",
            "[::1]:8001",
        ] {
            assert!(
                addressed_to_loopback(Addressed::of(&request(Some(plain)))),
                "{plain}"
            );
        }
    }

    #[test]
    fn other_hosts_and_no_host_are_foreign() {
        for host in [
            Some("evil.example"),
            Some("localhost.evil.example:8001"),
            Some("127.0.0.2"),
            Some("10.0.0.1:8001"),
            Some("[::2]"),
            None,
        ] {
            assert_eq!(
                code(check_tokenless_admin(&request(host))),
                Some(ErrorCode::ForbiddenHost),
                "{host:?}"
            );
        }
    }

    #[test]
    fn the_uri_authority_overrides_the_host_header() {
        let request = Request::post("http://evil.example/publish/x")
            .header(header::HOST, "localhost")
            .body(())
            .unwrap();
        assert_eq!(
            code(check_tokenless_admin(&request)),
            Some(ErrorCode::ForbiddenHost)
        );
        let http2 = Request::post("http://[::1]:8001/publish/x")
            .body(())
            .unwrap();
        assert_eq!(code(check_tokenless_admin(&http2)), None);
    }

    #[test]
    fn only_an_origin_listed_by_name_may_publish_anonymously() {
        let listed = CorsOrigins::List(vec!["https://app.example".to_owned()]);
        let check = |cors: &CorsOrigins, origin: Option<&str>| {
            let request = request(Some("localhost"));
            code(check_anonymous_publish(
                cors,
                Addressed::of(&request),
                origin.map(str::as_bytes),
            ))
        };
        assert_eq!(check(&listed, Some("https://app.example")), None);
        assert_eq!(check(&listed, None), None, "programs send no Origin");
        for cors in [&listed, &CorsOrigins::Any, &CorsOrigins::None] {
            assert_eq!(
                check(cors, Some("https://evil.example")),
                Some(ErrorCode::ForbiddenOrigin)
            );
            assert_eq!(check(cors, Some("null")), Some(ErrorCode::ForbiddenOrigin));
        }
    }

    #[test]
    fn a_foreign_host_is_refused_before_the_origin_is_looked_at() {
        let request = request(Some("evil.example"));
        let result = check_anonymous_publish(
            &CorsOrigins::Any,
            Addressed::of(&request),
            Some(b"http://evil.example"),
        );
        let error = result.unwrap_err();
        assert_eq!(error.code(), ErrorCode::ForbiddenHost);
        assert!(
            error.detail().contains("--publish-token"),
            "{}",
            error.detail()
        );
    }
}
