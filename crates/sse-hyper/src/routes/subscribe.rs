//! `GET /subscribe/{namespace}` and `GET /subscribe?ns=...`: opening event streams.
//!
//! [`open`] is the one way a stream opens, for this route and for applications that put
//! the hub's stream behind their own route
//! ([`SseService::event_stream`](crate::SseService::event_stream)): connection limit,
//! draining, namespace reduction, replay after `Last-Event-ID`, and the response head.
//!
//! With signed tokens configured, this route (not [`open`], whose callers authenticate
//! in their own way) verifies the token once and checks that it covers every namespace
//! asked for; the stream then carries only the token's deadline. A token in the query
//! (`?token=`, for `EventSource`) is read here and goes nowhere else: the admin status
//! keeps the path without its query, and nothing logs it.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Request, Response};
use sse_core::{Namespace, Subscription};

use crate::auth;
use crate::body::SseBody;
use crate::error::{ApiError, ErrorCode};
use crate::jwt::{Action, TokenError};
use crate::limits::{truncated, MAX_LAST_EVENT_ID_BYTES, MAX_STORED_TEXT_BYTES};
use crate::state::State;
use crate::streams::StreamInfo;

/// The most namespaces one event stream may subscribe to.
pub const MAX_NAMESPACES_PER_STREAM: usize = 64;

/// What `GET /subscribe{path_namespace}` asks for: the path's namespace and those of
/// `?ns=`, the id to resume after, and what the admin status shows of the stream. Read
/// whole before anything is awaited, so the request body type need not be `Sync`.
pub(crate) struct StreamRequest {
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) last_event_id: Option<String>,
    pub(crate) info: StreamInfo,
    /// The bearer token, or else the `?token=` one.
    token: Option<String>,
}

impl StreamRequest {
    pub(crate) fn read<B>(
        request: &Request<B>,
        path_namespace: &str,
        remote_addr: Option<SocketAddr>,
    ) -> Result<StreamRequest, ApiError> {
        let query = SubscribeQuery::parse(request.uri().query())?;
        let mut namespaces = query.namespaces;
        if namespaces.is_empty() || path_namespace != "/" {
            namespaces.push(Namespace::parse(path_namespace)?);
        }
        let info = StreamInfo {
            request_path: truncated(request.uri().path().to_owned(), MAX_STORED_TEXT_BYTES),
            namespaces: Vec::new(),
            client_ip: remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            user_agent: truncated(
                header_text(request.headers(), header::USER_AGENT).unwrap_or_default(),
                MAX_STORED_TEXT_BYTES,
            ),
            expires_at: None,
        };
        let token = auth::bearer_token(auth::authorization(request.headers()))
            .map(|token| String::from_utf8_lossy(token).into_owned())
            .or(query.token);
        // The header wins: on reconnection a browser sends it with the newest id, while
        // the URL still carries the ?lastEventId= it was first opened with.
        let last_event_id = resume_id(request.headers()).or(query.last_event_id);
        Ok(StreamRequest {
            namespaces,
            last_event_id,
            info,
            token,
        })
    }

    /// Opens the stream asked for, once its token allows it.
    pub(crate) async fn open(mut self, state: &Arc<State>) -> Result<Response<SseBody>, ApiError> {
        self.info.expires_at = self.authorize(state)?;
        open(
            state,
            &self.namespaces,
            self.last_event_id.as_deref(),
            self.info,
        )
        .await
    }
}

impl StreamRequest {
    /// With signed tokens configured: verifies the token and checks that it covers
    /// every namespace asked for, giving the stream's deadline. Without: `None`.
    fn authorize(&self, state: &State) -> Result<Option<std::time::SystemTime>, ApiError> {
        let Some(verifier) = &state.config().jwt else {
            return Ok(None);
        };
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| TokenError::Missing.into_api_error("subscribing"))?;
        let grant = verifier
            .verify(token)
            .map_err(|e| e.into_api_error("subscribing"))?;
        grant.check(Action::Subscribe, &self.namespaces)?;
        Ok(Some(grant.expires_at))
    }
}

/// Opens an event stream of `namespaces`, replaying what followed `last_event_id`.
pub(crate) async fn open(
    state: &Arc<State>,
    namespaces: &[Namespace],
    last_event_id: Option<&str>,
    mut info: StreamInfo,
) -> Result<Response<SseBody>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::draining());
    }
    let namespaces = Namespace::outermost(namespaces);
    if namespaces.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidNamespace,
            "a stream needs at least one namespace ('/' for everything)",
        ));
    }
    if namespaces.len() > MAX_NAMESPACES_PER_STREAM {
        return Err(too_many_namespaces());
    }
    state.ensure_maintenance();
    info.namespaces = namespaces.iter().map(Namespace::to_string).collect();
    let config = state.config();
    let guard = state
        .streams()
        .open(config.max_connections, info)
        .map_err(|at| ApiError::too_many_connections(at.limit))?;
    let last_event_id = last_event_id.filter(|id| !id.is_empty());
    let (subscription, held) = subscribe(state, &namespaces, last_event_id).await?;
    tracing::debug!(?namespaces, last_event_id, "event stream opened");
    let body = SseBody::event_stream(
        state.preamble().clone(),
        subscription,
        state.keepalive_comment().clone(),
        guard,
        Arc::clone(state.streams()),
        held,
    );
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What a stream reads from: the local hub, or in cluster mode the cluster (with the
/// lease that keeps the node listening on the stream's channels).
async fn subscribe(
    state: &State,
    namespaces: &[Namespace],
    last_event_id: Option<&str>,
) -> Result<(Subscription, Option<Box<dyn std::any::Any + Send>>), ApiError> {
    #[cfg(feature = "redis")]
    if let Some(cluster) = state.cluster() {
        let opened = cluster.subscribe(namespaces, last_event_id).await?;
        return Ok((opened.subscription, Some(Box::new(opened.lease))));
    }
    let subscription = match last_event_id {
        Some(id) => state.hub().subscribe_after(namespaces, id),
        None => state.hub().subscribe(namespaces),
    };
    Ok((subscription, None))
}

/// The id a client resumes after: its `Last-Event-ID` header, or else the `lastEventId`
/// query parameter a browser's first connection can carry (the last one, when repeated,
/// as the subscribe route reads it). `None` when neither is there. An id longer than
/// [`MAX_LAST_EVENT_ID_BYTES`] is ignored, as if absent.
///
/// ```
/// let request = http::Request::get("/news?lastEventId=41").body(()).unwrap();
/// assert_eq!(sse_hyper::last_event_id(&request).as_deref(), Some("41"));
///
/// let request = http::Request::get("/news?lastEventId=41")
///     .header("last-event-id", "42")
///     .body(())
///     .unwrap();
/// assert_eq!(sse_hyper::last_event_id(&request).as_deref(), Some("42"));
/// ```
pub fn last_event_id<B>(request: &Request<B>) -> Option<String> {
    resume_id(request.headers()).or_else(|| {
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .filter(|(key, value)| key == "lastEventId" && honoured_id(value))
            .last()
            .map(|(_, value)| value.into_owned())
    })
}

/// The `Last-Event-ID` header, unless it is too long to be honoured.
fn resume_id(headers: &HeaderMap) -> Option<String> {
    header_text(headers, "last-event-id").filter(|id| honoured_id(id))
}

/// Whether a resume id is short enough to be looked up.
fn honoured_id(id: &str) -> bool {
    id.len() <= MAX_LAST_EVENT_ID_BYTES
}

/// `GET /subscribe` query parameters.
#[derive(Debug)]
struct SubscribeQuery {
    namespaces: Vec<Namespace>,
    last_event_id: Option<String>,
    token: Option<String>,
}

impl SubscribeQuery {
    fn parse(query: Option<&str>) -> Result<SubscribeQuery, ApiError> {
        let mut parsed = SubscribeQuery {
            namespaces: Vec::new(),
            last_event_id: None,
            token: None,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "ns" => {
                    // Checked while parsing, so a query of a million `ns` costs no more.
                    if parsed.namespaces.len() == MAX_NAMESPACES_PER_STREAM {
                        return Err(too_many_namespaces());
                    }
                    parsed.namespaces.push(Namespace::parse(&value)?);
                }
                "lastEventId" if honoured_id(&value) => {
                    parsed.last_event_id = Some(value.into_owned());
                }
                "token" => parsed.token = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

fn too_many_namespaces() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyNamespaces,
        format!("one stream may subscribe to at most {MAX_NAMESPACES_PER_STREAM} namespaces"),
    )
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_namespaces_and_a_resume_id() {
        let query = SubscribeQuery::parse(Some("ns=/a&ns=%2Fb%2Fc&lastEventId=7&x=1")).unwrap();
        let names: Vec<&str> = query.namespaces.iter().map(Namespace::as_str).collect();
        assert_eq!(names, ["/a", "/b/c"]);
        assert_eq!(query.last_event_id.as_deref(), Some("7"));
    }

    #[test]
    fn a_resume_id_past_the_limit_is_ignored() {
        let long = "7".repeat(MAX_LAST_EVENT_ID_BYTES + 1);
        let query = SubscribeQuery::parse(Some(&format!("lastEventId={long}"))).unwrap();
        assert_eq!(query.last_event_id, None);
        let request = Request::get(format!("/s?lastEventId={long}"))
            .header("last-event-id", &long)
            .body(())
            .unwrap();
        assert_eq!(last_event_id(&request), None);
        let request = Request::get("/s?lastEventId=5")
            .header("last-event-id", &long)
            .body(())
            .unwrap();
        assert_eq!(
            last_event_id(&request).as_deref(),
            Some("5"),
            "a header too long counts as absent"
        );
    }

    #[test]
    fn the_query_refuses_a_bad_namespace_and_too_many() {
        let bad = SubscribeQuery::parse(Some("ns=/a//b")).unwrap_err();
        assert_eq!(bad.code(), ErrorCode::InvalidNamespace);
        let many = (0..=MAX_NAMESPACES_PER_STREAM)
            .map(|i| format!("ns=/n{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let error = SubscribeQuery::parse(Some(&many)).unwrap_err();
        assert_eq!(error.code(), ErrorCode::TooManyNamespaces);
    }

    /// Found by the `request_query` fuzz target: the public helper took the first of
    /// repeated `lastEventId` parameters, the route the last.
    #[test]
    fn the_public_helper_finds_the_resume_id_the_route_resumes_after() {
        let request = Request::get("/subscribe?lastEventId=1&x=0&lastEventId=2")
            .body(())
            .unwrap();
        let route = StreamRequest::read(&request, "/", None)
            .unwrap()
            .last_event_id;
        assert_eq!(route.as_deref(), Some("2"));
        assert_eq!(last_event_id(&request), route);
    }
}
