//! [`SseService`]: the hub's HTTP API as a hyper and a tower service, and its building
//! blocks for applications that route requests themselves.
//!
//! A request goes to `routes::dispatch`, but for a single publish that the direct
//! HTTP/1.1 path answers from its head (`publish_from_head`, through the same route
//! code); a refusal becomes its JSON answer here, and the CORS headers are added to every
//! answer here.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response, StatusCode};
use sse_core::{Hub, Namespace};

use crate::body::SseBody;
use crate::config::Config;
use crate::direct_head::DirectHead;
use crate::error::ApiError;
use crate::limits;
use crate::request_body::{ReadBody, RequestBody};
use crate::response_head::{self, Encoded};
use crate::routes::publish::{self, Accepted, PublishHead};
use crate::routes::{self, cors, Route};
use crate::state::State;
use crate::status::{status, Status};
use crate::streams::StreamInfo;

/// The SSE hub as an HTTP service. Cloning is cheap; every clone serves the same hub.
///
/// Mount it beside other routes (it answers only below its configured path prefix), let
/// [`Server`](crate::Server) serve it, or open streams from your own handlers with
/// [`event_stream`](SseService::event_stream).
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
    state: Arc<State>,
    remote_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for SseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseService")
            .field("path_prefix", &self.state.config().path_prefix)
            .field("remote_addr", &self.remote_addr)
            .finish()
    }
}

impl SseService {
    pub(crate) fn new(hub: Hub, config: Config) -> SseService {
        SseService {
            state: Arc::new(State::new(hub, config)),
            remote_addr: None,
        }
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The same service, reporting `addr` as the client's address (the admin status lists
    /// it). [`Server`](crate::Server) does this for every connection it accepts.
    pub fn with_remote_addr(&self, addr: SocketAddr) -> SseService {
        SseService {
            state: Arc::clone(&self.state),
            remote_addr: Some(addr),
        }
    }

    /// The hub this service serves.
    pub fn hub(&self) -> &Hub {
        self.state.hub()
    }

    /// Starts draining, as a server does on shutdown: `/healthz` answers 503, new streams
    /// and publishes are refused with 503, and every open stream ends cleanly. For an
    /// application that embeds the service and runs its own shutdown.
    pub fn drain(&self) {
        self.state.start_draining();
    }

    /// The status report that `/admin/status.json` serves: streams, counters, rates,
    /// and in cluster mode the cluster's nodes (read from Redis, hence async).
    pub async fn status(&self) -> Status {
        status(&self.state).await
    }

    /// Opens an event stream of `namespaces` for a route of the application's own, as
    /// `GET /subscribe` does: the same connection limit, keepalives, replay of what
    /// followed `last_event_id` (see [`last_event_id`](crate::last_event_id)), and end
    /// at shutdown. Namespaces that lie below another one given are dropped, so each
    /// event is sent once.
    ///
    /// The answer has no CORS headers: the application decides who may read it.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::InvalidNamespace`](crate::ErrorCode::InvalidNamespace) for no
    /// namespace, `TooManyNamespaces` past [`MAX_NAMESPACES_PER_STREAM`](crate::MAX_NAMESPACES_PER_STREAM),
    /// `TooManyConnections` at the limit, `Draining` during shutdown, `BrokerUnavailable`
    /// in cluster mode when Redis cannot be reached;
    /// [`ApiError::into_response`] answers each.
    ///
    /// ```
    /// use sse_core::Namespace;
    /// use sse_hyper::{ErrorCode, Server};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let service = Server::builder().build().service();
    /// let user = Namespace::parse("/users/42").unwrap();
    /// let response = service.event_stream(&[user], None).await.unwrap();
    /// assert_eq!(response.headers()["content-type"], "text/event-stream");
    ///
    /// let refused = service.event_stream(&[], None).await.unwrap_err();
    /// assert_eq!(refused.code(), ErrorCode::InvalidNamespace);
    /// # }
    /// ```
    pub async fn event_stream(
        &self,
        namespaces: &[Namespace],
        last_event_id: Option<&str>,
    ) -> Result<Response<SseBody>, ApiError> {
        let info = StreamInfo {
            request_path: String::new(),
            namespaces: Vec::new(),
            client_ip: self.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            user_agent: String::new(),
            expires_at: None,
        };
        routes::subscribe::open(&self.state, namespaces, last_event_id, info).await
    }

    /// Whether a request for `path` opens an event stream: the direct HTTP/1.1 path takes
    /// only these.
    pub(crate) fn is_subscribe_path(&self, path: &str) -> bool {
        matches!(Route::of(path, &self.state), Some(Route::Subscribe(_)))
    }

    /// Whether `path` is the route that publishes a single event (`/publish/{namespace}`).
    pub(crate) fn is_single_publish_path(&self, path: &str) -> bool {
        matches!(Route::of(path, &self.state), Some(Route::Publish(_)))
    }

    /// Whether single publishes may be answered from the head as read
    /// ([`publish_from_head`](SseService::publish_from_head)): with the local hub, not in
    /// cluster mode.
    pub(crate) fn publishes_from_head(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.state.cluster().is_some() {
            return false;
        }
        true
    }

    /// Answers a single publish read on the direct HTTP/1.1 path, from its head as read
    /// and its body, as [`handle`](SseService::handle) answers the request built from
    /// them, without building one: the same checks (the head's size measured alike),
    /// refusals, counters and CORS headers, and an answer written without a header map.
    /// Only when [`publishes_from_head`](SseService::publishes_from_head).
    pub(crate) fn publish_from_head(
        &self,
        head: &DirectHead,
        body: ReadBody,
        client_closes: bool,
    ) -> Encoded {
        self.state.ensure_maintenance();
        let path = head.uri().path();
        let Some(Route::Publish(namespace)) = Route::of(path, &self.state) else {
            // The direct path takes only this route's requests.
            let error = ApiError::not_found(path);
            return response_head::encode(self.refuse(error), client_closes);
        };
        let measured = head.measured_bytes();
        let head = PublishHead::of_direct(head, namespace);
        let config = self.state.config();
        let cors = cors::answer_headers(&config.cors, cors::Exposure::ListedOnly, head.origin());
        let body = body.into_bytes(config.max_body_bytes, config.body_timeout);
        let answer = limits::check_head_bytes(measured)
            .and_then(|()| publish::publish_from_head(&self.state, &head, body));
        match answer {
            Ok(accepted) => {
                let json = accepted.json();
                let mut bytes = Vec::with_capacity(256 + json.len());
                let content_type = (&b"content-type"[..], Accepted::CONTENT_TYPE.as_bytes());
                let headers = std::iter::once(content_type).chain(cors.pairs());
                let close = response_head::encode_whole(
                    &mut bytes,
                    StatusCode::ACCEPTED,
                    headers,
                    &json,
                    client_closes,
                );
                Encoded::Whole { bytes, close }
            }
            Err(error) => {
                let mut response = self.refuse(error);
                cors.apply(response.headers_mut());
                response_head::encode(response, client_closes)
            }
        }
    }

    /// The largest request body read, and how long its arrival may take.
    pub(crate) fn body_limits(&self) -> (usize, std::time::Duration) {
        let config = self.state.config();
        (config.max_body_bytes, config.body_timeout)
    }

    /// `error` as an answer, counted as a refused request, for refusals made outside
    /// [`handle`](SseService::handle): a head too large on the direct path, and single
    /// publishes answered from their head.
    pub(crate) fn refuse(&self, error: ApiError) -> Response<SseBody> {
        self.state.count_rejected_request();
        error.into_response()
    }

    /// Handles one request. Never fails: every refusal is a response with a JSON error,
    /// including a head over [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES) (`431`).
    pub async fn handle(&self, request: Request<impl RequestBody>) -> Response<SseBody> {
        self.state.ensure_maintenance();
        // Kept past the request, which the route takes.
        let origin = request.headers().get(header::ORIGIN).cloned();
        let exposure = Route::of(request.uri().path(), &self.state)
            .map_or(cors::Exposure::Never, Route::cors_exposure);
        let answer = match limits::check_head(&request) {
            Ok(()) => routes::dispatch(&self.state, request, self.remote_addr).await,
            Err(error) => Err(error),
        };
        let mut response = match answer {
            Ok(response) => response,
            Err(error) => {
                self.state.count_rejected_request();
                error.into_response()
            }
        };
        let origin = origin.as_ref().map(HeaderValue::as_bytes);
        cors::answer_headers(&self.state.config().cors, exposure, origin)
            .apply(response.headers_mut());
        response
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<SseBody>, Infallible>> + Send>>;

impl<B: RequestBody> hyper::service::Service<Request<B>> for SseService {
    type Response = Response<SseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<B: RequestBody> tower_service::Service<Request<B>> for SseService {
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
