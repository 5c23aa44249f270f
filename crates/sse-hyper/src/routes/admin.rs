//! `GET /admin/` (the status page) and `GET /admin/status.json` (the JSON behind it),
//! with their token check.

use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::auth;
use crate::body::SseBody;
use crate::browser;
use crate::error::ApiError;
use crate::response;
use crate::state::State;
use crate::status::status as current_status;

/// The self-contained page: no external assets, it only fetches `status.json`.
const PAGE: &str = include_str!("admin.html");

/// `GET /admin` without the slash: the page lives at `/admin/`.
pub(crate) fn redirect() -> Response<SseBody> {
    response::redirect("admin/")
}

/// `GET /admin/`.
pub(crate) fn page<B>(state: &State, request: &Request<B>) -> Result<Response<SseBody>, ApiError> {
    authorize(state, request)?;
    let mut response = response::with_type(StatusCode::OK, PAGE, "text/html; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        ),
    );
    Ok(response)
}

/// `GET /admin/status.json`, once [`authorize`]d.
pub(crate) async fn status(state: &State) -> Response<SseBody> {
    let mut response = response::json(StatusCode::OK, &current_status(state).await);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lets the request through when it carries the admin token as a bearer token or as
/// `?token=` (what a browser opening the page can send), or, when no admin token is
/// configured, when it is addressed to a loopback name (`browser.rs`: DNS rebinding).
pub(crate) fn authorize<B>(state: &State, request: &Request<B>) -> Result<(), ApiError> {
    let Some(token) = &state.config().admin_token else {
        return browser::check_tokenless_admin(request);
    };
    let query_token = form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned());
    let query_ok =
        query_token.is_some_and(|given| auth::token_matches(given.as_bytes(), token.as_bytes()));
    if query_ok || auth::bearer_matches(auth::authorization(request.headers()), token) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("the admin interface"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::error::ErrorCode;
    use sse_core::Hub;

    #[test]
    fn the_page_is_self_contained() {
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no external assets"
        );
        assert!(PAGE.contains("status.json"));
    }

    #[test]
    fn the_chart_spans_the_rate_history() {
        let window = format!("const CHART_SECONDS = {};", crate::rates::HISTORY_SECONDS);
        assert!(
            PAGE.contains(&window),
            "the page's time axis matches the samples kept"
        );
    }

    #[test]
    fn a_configured_token_is_needed_in_the_query_or_the_header() {
        let state = State::new(
            Hub::new(),
            Config {
                admin_token: Some("adm1n".to_owned()),
                ..Config::default()
            },
        );
        let get = |uri: &str, bearer: Option<&str>| {
            let mut request = Request::get(uri);
            if let Some(token) = bearer {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            authorize(&state, &request.body(()).unwrap())
        };
        assert!(get("/admin/?token=adm1n", None).is_ok());
        assert!(get("/admin/", Some("adm1n")).is_ok());
        let refused = get("/admin/?token=nope", Some("nope")).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Unauthorized);
        assert!(get("/admin/", None).is_err());
    }
}
