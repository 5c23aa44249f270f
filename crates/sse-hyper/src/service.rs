//! The HTTP service: routing, CORS, authorisation, and the subscribe and publish
//! handlers. It is a plain hyper [`Service`](hyper::service::Service) and a tower
//! [`Service`](tower_service::Service), so it can be served by [`Server`](crate::Server)
//! or mounted in an existing hyper, tower or axum application.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use sse_core::{encode_comment, encode_preamble, Hub, Namespace};
use subtle::ConstantTimeEq;

use crate::admin;
use crate::body::SseBody;
use crate::config::{Config, CorsOrigins};
use crate::error::ApiError;
use crate::metrics;
use crate::publish::{batch_events, body_kind, single_event, BodyKind, QueryFields};
use crate::streams::{StreamInfo, Streams};

/// The most namespaces one `GET /subscribe?ns=...` may name.
pub const MAX_NAMESPACES_PER_STREAM: usize = 64;

/// The SSE hub as an HTTP service. Cloning is cheap; every clone serves the same hub.
///
/// Mount it beside other routes (it answers only below its configured path prefix), or
/// let [`Server`](crate::Server) serve it.
///
/// ```
/// use sse_hyper::Server;
///
/// let server = Server::builder().path_prefix("/events").build();
/// let service = server.service(); // answers /events/subscribe/..., /events/publish/...
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct SseService {
    shared: Arc<Shared>,
    remote_addr: Option<SocketAddr>,
}

/// State shared by every clone of the service and by the server.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) config: Config,
    pub(crate) streams: Arc<Streams>,
    pub(crate) started_at: SystemTime,
    pub(crate) started: Instant,
    pub(crate) draining: AtomicBool,
    pub(crate) rates: Mutex<admin::RateWindow>,
    pub(crate) publish_requests: AtomicU64,
    pub(crate) rejected_requests: AtomicU64,
    preamble: Bytes,
    keepalive: Bytes,
    maintenance: Once,
}

impl std::fmt::Debug for SseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseService")
            .field("path_prefix", &self.shared.config.path_prefix)
            .field("remote_addr", &self.remote_addr)
            .finish()
    }
}

impl SseService {
    pub(crate) fn new(hub: Hub, config: Config) -> SseService {
        let retry_ms = config
            .retry
            .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
        SseService {
            shared: Arc::new(Shared {
                hub,
                preamble: encode_preamble("ok", retry_ms),
                keepalive: encode_comment("keepalive"),
                config,
                streams: Arc::new(Streams::default()),
                started_at: SystemTime::now(),
                started: Instant::now(),
                draining: AtomicBool::new(false),
                rates: Mutex::new(admin::RateWindow::default()),
                publish_requests: AtomicU64::new(0),
                rejected_requests: AtomicU64::new(0),
                maintenance: Once::new(),
            }),
            remote_addr: None,
        }
    }

    /// The same service, reporting `addr` as the client's address (the admin status lists
    /// it). [`Server`](crate::Server) does this for every connection it accepts.
    pub fn with_remote_addr(&self, addr: SocketAddr) -> SseService {
        SseService {
            shared: Arc::clone(&self.shared),
            remote_addr: Some(addr),
        }
    }

    /// The hub this service serves.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// Starts draining, as a server does on shutdown: `/healthz` answers 503, new streams
    /// and publishes are refused with 503, and every open stream ends cleanly. For an
    /// application that embeds the service and runs its own shutdown.
    pub fn drain(&self) {
        self.shared.start_draining();
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Handles one request. Never fails: every refusal is a response with a JSON error.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<SseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.shared.ensure_maintenance();
        let origin = request.headers().get(header::ORIGIN).cloned();
        let mut response = match self.route(request).await {
            Ok(response) => response,
            Err(error) => {
                self.shared
                    .rejected_requests
                    .fetch_add(1, Ordering::Relaxed);
                error_response(&error)
            }
        };
        self.shared
            .apply_cors(origin.as_ref(), response.headers_mut());
        response
    }

    async fn route<B>(&self, request: Request<B>) -> Result<Response<SseBody>, ApiError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let shared = &self.shared;
        let full_path = request.uri().path().to_owned();
        let Some(path) = strip_prefix(&full_path, &shared.config.path_prefix) else {
            return Err(ApiError::not_found(&full_path));
        };
        let route =
            Route::of(path, &shared.config).ok_or_else(|| ApiError::not_found(&full_path))?;
        let method = request.method().clone();
        if method == Method::OPTIONS {
            return Ok(preflight(route.allowed_methods()));
        }
        match (route, &method) {
            (Route::Subscribe(namespace), &Method::GET) => {
                self.subscribe(&request, namespace, &full_path)
            }
            (Route::Publish(namespace), &Method::POST) => self.publish(request, namespace).await,
            (Route::PublishBatch, &Method::POST) => self.publish_batch(request).await,
            (Route::Healthz, &Method::GET) => Ok(shared.healthz()),
            (Route::Metrics, &Method::GET) => Ok(metrics::response(shared)),
            // Relative, so it stays right when a router in front strips a prefix.
            (Route::AdminRedirect, &Method::GET) => Ok(redirect("admin/")),
            (Route::AdminPage, &Method::GET) => {
                shared.authorize_admin(&request)?;
                Ok(admin::page_response())
            }
            (Route::AdminStatus, &Method::GET) => {
                shared.authorize_admin(&request)?;
                Ok(admin::status_response(shared))
            }
            (route, _) => Err(ApiError::method_not_allowed(route.allowed_methods())),
        }
    }

    fn subscribe<B>(
        &self,
        request: &Request<B>,
        path_namespace: &str,
        full_path: &str,
    ) -> Result<Response<SseBody>, ApiError> {
        let shared = &self.shared;
        if shared.is_draining() {
            return Err(ApiError::draining());
        }
        let query = SubscribeQuery::parse(request.uri().query())?;
        let mut namespaces = query.namespaces;
        if namespaces.is_empty() || path_namespace != "/" {
            namespaces.push(Namespace::parse(path_namespace)?);
        }
        let namespaces = Namespace::outermost(&namespaces);
        if namespaces.len() > MAX_NAMESPACES_PER_STREAM {
            return Err(ApiError::bad_request(
                "too_many_namespaces",
                format!(
                    "one stream may subscribe to at most {MAX_NAMESPACES_PER_STREAM} namespaces"
                ),
            ));
        }
        // The header wins: on reconnection a browser sends it with the newest id, while the
        // URL still carries the ?lastEventId= it was first opened with.
        let last_event_id = header_text(request.headers(), "last-event-id").or(query.last_event_id);
        let info = StreamInfo {
            request_path: full_path.to_owned(),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            client_ip: self.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            user_agent: header_text(request.headers(), "user-agent").unwrap_or_default(),
        };
        let guard = shared.streams.open(shared.config.max_connections, info)?;
        let subscription = match last_event_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => shared.hub.subscribe_after(&namespaces, id),
            None => shared.hub.subscribe(&namespaces),
        };
        tracing::debug!(?namespaces, last_event_id, client = ?self.remote_addr, "event stream opened");
        let body = SseBody::event_stream(
            shared.preamble.clone(),
            subscription,
            shared.keepalive.clone(),
            guard,
            Arc::clone(&shared.streams),
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

    async fn publish<B>(
        &self,
        request: Request<B>,
        path_namespace: &str,
    ) -> Result<Response<SseBody>, ApiError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let shared = &self.shared;
        shared.admit_publish(request.headers())?;
        let namespace = Namespace::parse(path_namespace)?;
        let kind = content_kind(request.headers())?;
        let query = QueryFields::parse(request.uri().query())?;
        let body = read_body(request, shared.config.max_body_bytes).await?;
        let event = single_event(kind, &body, &query)?;
        let published = shared.hub.publish(&namespace, event)?;
        Ok(json_response(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "id": &*published.id,
                "namespace": namespace.as_str(),
                "subscribers": published.subscribers,
            }),
        ))
    }

    async fn publish_batch<B>(&self, request: Request<B>) -> Result<Response<SseBody>, ApiError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let shared = &self.shared;
        shared.admit_publish(request.headers())?;
        if content_kind(request.headers())? != BodyKind::NdJson {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "POST /publish takes a batch as 'Content-Type: application/x-ndjson'; \
                 to publish one event, POST /publish/{namespace}",
            ));
        }
        let body = read_body(request, shared.config.max_body_bytes).await?;
        let events = batch_events(&body)?;
        let mut ids = Vec::with_capacity(events.len());
        let mut subscribers = 0;
        for (namespace, event) in events {
            let published = shared.hub.publish(&namespace, event)?;
            subscribers += published.subscribers;
            ids.push(published.id);
        }
        Ok(json_response(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "count": ids.len(),
                "ids": ids.iter().map(|id| &**id).collect::<Vec<_>>(),
                "subscribers": subscribers,
            }),
        ))
    }
}

impl Shared {
    fn ensure_maintenance(self: &Arc<Self>) {
        self.maintenance.call_once(|| {
            // Inside a tokio runtime (hyper on tokio always is); without one there are no
            // connections to keep alive either.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(maintenance(Arc::downgrade(self)));
            }
        });
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining: health checks fail, new streams and publishes are refused, and
    /// every open stream ends cleanly.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.streams.end_all();
    }

    fn healthz(&self) -> Response<SseBody> {
        let (status, text) = if self.is_draining() {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        } else {
            (StatusCode::OK, "ok\n")
        };
        let mut response = Response::new(SseBody::full(text));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// Counts a publish request and refuses it while draining or without the token.
    fn admit_publish(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.publish_requests.fetch_add(1, Ordering::Relaxed);
        if self.is_draining() {
            return Err(ApiError::draining());
        }
        if let Some(token) = &self.config.publish_token {
            if !bearer_matches(headers, token) {
                return Err(ApiError::unauthorized("publishing"));
            }
        }
        Ok(())
    }

    fn authorize_admin<B>(&self, request: &Request<B>) -> Result<(), ApiError> {
        let Some(token) = &self.config.admin_token else {
            return Ok(());
        };
        let query_token =
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .find(|(key, _)| key == "token")
                .map(|(_, value)| value.into_owned());
        let query_ok = query_token.is_some_and(|given| constant_time_eq(&given, token));
        if query_ok || bearer_matches(request.headers(), token) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("the admin interface"))
        }
    }

    fn apply_cors(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        match &self.config.cors {
            CorsOrigins::None => {}
            CorsOrigins::Any => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            CorsOrigins::List(allowed) => {
                headers.append(header::VARY, HeaderValue::from_static("origin"));
                let matched = origin
                    .and_then(|o| o.to_str().ok())
                    .is_some_and(|o| allowed.iter().any(|a| a == o));
                if let (true, Some(origin)) = (matched, origin) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                }
            }
        }
    }
}

/// The background work of one service: keepalive sweeps, and rate samples for the admin
/// status. Ends when the service is dropped.
async fn maintenance(shared: Weak<Shared>) {
    let Some(interval) = shared.upgrade().map(|s| s.config.keepalive) else {
        return;
    };
    // The first sweep comes one interval from now: a stream that just opened is not idle.
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                shared.streams.sweep_keepalives();
            }
            _ = sample.tick() => {
                let Some(shared) = shared.upgrade() else { return };
                let stats = shared.hub.stats();
                shared.rates.lock().unwrap_or_else(|p| p.into_inner()).record(Instant::now(), &stats);
            }
        }
    }
}

/// The routes, with the namespace text taken from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
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
    fn of(path: &'a str, config: &Config) -> Option<Route<'a>> {
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

    fn allowed_methods(self) -> &'static str {
        match self {
            Route::Publish(_) | Route::PublishBatch => "POST, OPTIONS",
            _ => "GET, OPTIONS",
        }
    }
}

/// `GET /subscribe` query parameters.
struct SubscribeQuery {
    namespaces: Vec<Namespace>,
    last_event_id: Option<String>,
}

impl SubscribeQuery {
    fn parse(query: Option<&str>) -> Result<SubscribeQuery, ApiError> {
        let mut parsed = SubscribeQuery {
            namespaces: Vec::new(),
            last_event_id: None,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "ns" => {
                    if parsed.namespaces.len() == MAX_NAMESPACES_PER_STREAM {
                        return Err(ApiError::bad_request(
                            "too_many_namespaces",
                            format!("one stream may subscribe to at most {MAX_NAMESPACES_PER_STREAM} namespaces"),
                        ));
                    }
                    parsed.namespaces.push(Namespace::parse(&value)?);
                }
                "lastEventId" => parsed.last_event_id = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

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

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

fn content_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    body_kind(content_type.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not accepted; send text (the body is the data), \
                 application/json, or application/x-ndjson to POST /publish",
                content_type.unwrap_or_default()
            ),
        )
    })
}

async fn read_body<B>(request: Request<B>, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the {limit}-byte limit"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::bad_request(
            "body_read_failed",
            format!("could not read the request body: {error}"),
        )),
    }
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some(given) = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))
    else {
        return false;
    };
    bool::from(given.ct_eq(token.as_bytes()))
}

fn constant_time_eq(given: &str, token: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<SseBody> {
    let mut response = Response::new(SseBody::full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<SseBody> {
    tracing::debug!(
        status = error.status().as_u16(),
        code = error.code(),
        detail = error.detail(),
        "request refused"
    );
    let mut response = Response::new(SseBody::full(error.body()));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in error.extra_headers() {
        headers.insert(name, value);
    }
    response
}

fn preflight(allowed: &'static str) -> Response<SseBody> {
    let mut response = Response::new(SseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(allowed),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, last-event-id, cache-control"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn redirect(location: &str) -> Response<SseBody> {
    let mut response = Response::new(SseBody::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<SseBody>, Infallible>> + Send>>;

impl<B> hyper::service::Service<Request<B>> for SseService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<SseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<B> tower_service::Service<Request<B>> for SseService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<SseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        hyper::service::Service::call(self, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_recognised_and_prefix_lookalikes_are_not() {
        let config = Config::default();
        assert_eq!(
            Route::of("/subscribe", &config),
            Some(Route::Subscribe("/"))
        );
        assert_eq!(
            Route::of("/subscribe/", &config),
            Some(Route::Subscribe("/"))
        );
        assert_eq!(
            Route::of("/subscribe/pets", &config),
            Some(Route::Subscribe("/pets"))
        );
        assert_eq!(Route::of("/subscribers", &config), None);
        assert_eq!(Route::of("/publish", &config), Some(Route::PublishBatch));
        assert_eq!(
            Route::of("/publish/a/b", &config),
            Some(Route::Publish("/a/b"))
        );
        assert_eq!(Route::of("/admin/", &config), Some(Route::AdminPage));
        assert_eq!(Route::of("/nope", &config), None);
    }

    #[test]
    fn disabled_admin_and_metrics_routes_do_not_exist() {
        let config = Config {
            admin_enabled: false,
            metrics_enabled: false,
            ..Config::default()
        };
        assert_eq!(Route::of("/admin/", &config), None);
        assert_eq!(Route::of("/admin/status.json", &config), None);
        assert_eq!(Route::of("/metrics", &config), None);
    }

    #[test]
    fn prefix_is_stripped_on_a_segment_boundary() {
        assert_eq!(
            strip_prefix("/events/subscribe", "/events"),
            Some("/subscribe")
        );
        assert_eq!(strip_prefix("/eventsx/subscribe", "/events"), None);
        assert_eq!(strip_prefix("/subscribe", ""), Some("/subscribe"));
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "t0k"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert!(bearer_matches(&headers, "t0k"));
        assert!(!bearer_matches(&headers, "t0"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic t0k"));
        assert!(!bearer_matches(&headers, "t0k"));
    }
}
