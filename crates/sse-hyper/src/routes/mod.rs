//! The HTTP API, one route per file: which request goes where ([`Route`], [`dispatch`]),
//! and the handlers.
//!
//! Adding a route: a variant in [`Route`] with its path in [`Route::of`] and its methods
//! in [`Route::allowed_methods`], an arm in [`dispatch`], and the handler in a file of its
//! own here.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};

use crate::body::SseBody;
use crate::error::ApiError;
use crate::request_body::RequestBody;
use crate::state::State;

pub(crate) mod admin;
pub(crate) mod cors;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod publish;
pub(crate) mod subscribe;

/// The routes, with the namespace text taken from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Subscribe(&'a str),
    Publish(&'a str),
    PublishBatch,
    Healthz,
    Metrics,
    AdminRedirect,
    AdminPage,
    AdminStatus,
}

impl<'a> Route<'a> {
    /// The route of a request path, after the service's path prefix; `None` for a path
    /// no route serves (or a disabled one).
    pub(crate) fn of(full_path: &'a str, state: &State) -> Option<Route<'a>> {
        let config = state.config();
        let path = strip_prefix(full_path, &config.path_prefix)?;
        if let Some(rest) = path.strip_prefix("/subscribe") {
            return match rest {
                "" => Some(Route::Subscribe("/")),
                r if r.starts_with('/') => Some(Route::Subscribe(r)),
                _ => None,
            };
        }
        if let Some(rest) = path.strip_prefix("/publish") {
            return match rest {
                "" | "/" => Some(Route::PublishBatch),
                r if r.starts_with('/') => Some(Route::Publish(r)),
                _ => None,
            };
        }
        match path {
            "/healthz" => Some(Route::Healthz),
            "/metrics" if config.metrics_enabled => Some(Route::Metrics),
            "/admin" if config.admin_enabled => Some(Route::AdminRedirect),
            "/admin/" if config.admin_enabled => Some(Route::AdminPage),
            "/admin/status.json" if config.admin_enabled => Some(Route::AdminStatus),
            _ => None,
        }
    }

    /// Which CORS headers the route's answers may carry.
    pub(crate) fn cors_exposure(self) -> cors::Exposure {
        match self {
            Route::Subscribe(_) => cors::Exposure::Streams,
            Route::Publish(_) | Route::PublishBatch => cors::Exposure::ListedOnly,
            _ => cors::Exposure::Never,
        }
    }

    /// The `Allow` header of the route.
    pub(crate) fn allowed_methods(self) -> &'static str {
        match self {
            Route::Publish(_) | Route::PublishBatch => "POST, OPTIONS",
            _ => "GET, OPTIONS",
        }
    }
}

/// Answers `request`: the route's handler, a preflight, or a refusal.
pub(crate) async fn dispatch(
    state: &Arc<State>,
    request: Request<impl RequestBody>,
    remote_addr: Option<SocketAddr>,
) -> Result<Response<SseBody>, ApiError> {
    let full_path = request.uri().path();
    let route = Route::of(full_path, state).ok_or_else(|| ApiError::not_found(full_path))?;
    if request.method() == Method::OPTIONS {
        return Ok(cors::preflight(
            route.allowed_methods(),
            route.cors_exposure(),
        ));
    }
    match (route, request.method()) {
        (Route::Subscribe(namespace), &Method::GET) => {
            let asked = subscribe::StreamRequest::read(&request, namespace, remote_addr)?;
            asked.open(state).await
        }
        (Route::Publish(namespace), &Method::POST) => {
            let admitted = publish::admit_single(
                state,
                &publish::PublishHead::of_request(&request, namespace),
            )?;
            publish::handle_single(state, request, admitted).await
        }
        (Route::PublishBatch, &Method::POST) => publish::handle_batch(state, request).await,
        (Route::Healthz, &Method::GET) => Ok(health::handle(state)),
        (Route::Metrics, &Method::GET) => Ok(metrics::handle(state)),
        (Route::AdminRedirect, &Method::GET) => Ok(admin::redirect()),
        (Route::AdminPage, &Method::GET) => admin::page(state, &request),
        (Route::AdminStatus, &Method::GET) => {
            admin::authorize(state, &request)?;
            Ok(admin::status(state).await)
        }
        (route, _) => Err(ApiError::method_not_allowed(route.allowed_methods())),
    }
}

/// The path below `prefix`, if the path is on a segment boundary under it.
fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use sse_core::Hub;

    fn state(config: Config) -> State {
        State::new(Hub::new(), config)
    }

    #[test]
    fn routes_are_recognised_and_prefix_lookalikes_are_not() {
        let state = state(Config::default());
        let of = |path| Route::of(path, &state);
        assert_eq!(of("/subscribe"), Some(Route::Subscribe("/")));
        assert_eq!(of("/subscribe/"), Some(Route::Subscribe("/")));
        assert_eq!(of("/subscribe/pets"), Some(Route::Subscribe("/pets")));
        assert_eq!(of("/subscribers"), None);
        assert_eq!(of("/publish"), Some(Route::PublishBatch));
        assert_eq!(of("/publish/a/b"), Some(Route::Publish("/a/b")));
        assert_eq!(of("/admin/"), Some(Route::AdminPage));
        assert_eq!(of("/nope"), None);
    }

    #[test]
    fn disabled_admin_and_metrics_routes_do_not_exist() {
        let state = state(Config {
            admin_enabled: false,
            metrics_enabled: false,
            ..Config::default()
        });
        assert_eq!(Route::of("/admin/", &state), None);
        assert_eq!(Route::of("/admin/status.json", &state), None);
        assert_eq!(Route::of("/metrics", &state), None);
    }

    #[test]
    fn routes_live_below_the_prefix_on_a_segment_boundary() {
        let state = state(Config {
            path_prefix: "/events".to_owned(),
            ..Config::default()
        });
        assert_eq!(
            Route::of("/events/subscribe/a", &state),
            Some(Route::Subscribe("/a"))
        );
        assert_eq!(Route::of("/eventsx/subscribe", &state), None);
        assert_eq!(Route::of("/subscribe", &state), None);
        assert_eq!(strip_prefix("/subscribe", ""), Some("/subscribe"));
    }
}
