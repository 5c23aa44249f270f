//! Server configuration: [`ServerBuilder`] and the [`Config`] it fills in, with every
//! default.
//!
//! `ServerBuilder::build` sits in `server.rs`, beside the server it makes, so that this
//! module stays below everything that reads the configuration.

use std::time::Duration;

use sse_core::{Hub, HubBuilder};

use crate::jwt::{JwtKey, Verifier, DEFAULT_JWT_LEEWAY};

/// The default keepalive interval: 15 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// The default limit on open event streams.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// The default time a client has to send a complete request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a client has to send a request body once its head arrived: 10 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The default interval between HTTP/2 pings on a connection that sent nothing: 20 s.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// The default time an HTTP/2 peer has to answer a ping before its connection is closed:
/// 20 s.
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// The default limit on a publish request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default time graceful shutdown waits for connections to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default node name in the admin status and metrics.
pub const DEFAULT_NODE_NAME: &str = "sse";
/// The default time a stream's socket may take no bytes before the stream is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The shortest keepalive interval; a shorter one is raised to it.
pub const MIN_KEEPALIVE: Duration = Duration::from_millis(10);

/// Which origins may read responses cross-origin (`Access-Control-Allow-Origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`*`), the default.
    Any,
    /// Only these exact origins (such as `https://example.com`); the header echoes the
    /// request's `Origin` when it is one of them.
    List(Vec<String>),
    /// No CORS headers at all.
    None,
}

/// Everything a server is configured with; [`ServerBuilder`] says what each setting
/// means and its default.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keepalive: Duration,
    pub(crate) retry: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) cors: CorsOrigins,
    pub(crate) publish_token: Option<String>,
    pub(crate) admin_token: Option<String>,
    pub(crate) jwt: Option<Verifier>,
    pub(crate) jwt_leeway: Duration,
    pub(crate) allow_anonymous_publish: bool,
    pub(crate) admin_enabled: bool,
    pub(crate) metrics_enabled: bool,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) http2_keepalive_interval: Duration,
    pub(crate) http2_keepalive_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) path_prefix: String,
    pub(crate) node_name: String,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) drain_delay: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
    #[cfg(feature = "redis")]
    pub(crate) cluster: Option<sse_redis::Cluster>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keepalive: DEFAULT_KEEPALIVE,
            retry: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cors: CorsOrigins::Any,
            publish_token: None,
            admin_token: None,
            jwt: None,
            jwt_leeway: DEFAULT_JWT_LEEWAY,
            allow_anonymous_publish: false,
            admin_enabled: true,
            metrics_enabled: true,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            path_prefix: String::new(),
            node_name: DEFAULT_NODE_NAME.to_owned(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            drain_delay: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "redis")]
            cluster: None,
        }
    }
}

/// Configures and builds a [`Server`](crate::Server).
///
/// ```
/// use std::time::Duration;
/// use sse_hyper::Server;
///
/// let server = Server::builder()
///     .keepalive(Duration::from_secs(30))
///     .history_capacity(50_000)
///     .header_read_timeout(Duration::from_secs(5))
///     .body_timeout(Duration::from_secs(5))
///     .publish_token("s3cret")
///     .build();
/// # let _ = server;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    config: Config,
    hub: Option<Hub>,
    hub_settings: HubSettings,
}

/// What the builder passes on to the hub it creates; each `None` keeps the hub's default.
#[derive(Debug, Clone, Default)]
struct HubSettings {
    queue_capacity: Option<usize>,
    queue_bytes: Option<usize>,
    history_capacity: Option<usize>,
    history_bytes: Option<usize>,
    max_event_bytes: Option<usize>,
}

impl HubSettings {
    fn any(&self) -> bool {
        self.queue_capacity.is_some()
            || self.queue_bytes.is_some()
            || self.history_capacity.is_some()
            || self.history_bytes.is_some()
            || self.max_event_bytes.is_some()
    }

    fn build(&self) -> Hub {
        let mut hub = HubBuilder::default();
        if let Some(events) = self.queue_capacity {
            hub = hub.queue_capacity(events);
        }
        if let Some(bytes) = self.queue_bytes {
            hub = hub.queue_bytes(bytes);
        }
        if let Some(events) = self.history_capacity {
            hub = hub.history_capacity(events);
        }
        if let Some(bytes) = self.history_bytes {
            hub = hub.history_bytes(bytes);
        }
        if let Some(bytes) = self.max_event_bytes {
            hub = hub.max_event_bytes(bytes);
        }
        hub.build()
    }
}

impl ServerBuilder {
    /// Serves an existing hub instead of a new one (for example one shared with other
    /// parts of the program). Its queue and history sizes are the hub's own: configure
    /// them on its [`HubBuilder`], not here.
    pub fn hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// How long a stream may stay silent before a keepalive comment is sent on it
    /// (default 15 s, at least [`MIN_KEEPALIVE`]: a shorter interval is raised to it).
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.config.keepalive = interval.max(MIN_KEEPALIVE);
        self
    }

    /// Sends `retry: <ms>` at the start of every stream, setting how long clients wait
    /// before reconnecting. Default, and `None`: not sent, so clients use their own
    /// default (a few seconds in browsers).
    pub fn retry(mut self, retry: impl Into<Option<Duration>>) -> Self {
        self.config.retry = retry.into();
        self
    }

    /// Events kept for `Last-Event-ID` replay; 0 disables replay (default
    /// [`sse_core::DEFAULT_HISTORY_CAPACITY`]). Configures the hub this builder creates;
    /// see [`build`](ServerBuilder::build) for a hub passed in.
    pub fn history_capacity(mut self, events: usize) -> Self {
        self.hub_settings.history_capacity = Some(events);
        self
    }

    /// Encoded bytes kept for `Last-Event-ID` replay, at most; the oldest events are
    /// dropped first (default [`sse_core::DEFAULT_HISTORY_BYTES`]). Configures the hub
    /// this builder creates.
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.hub_settings.history_bytes = Some(bytes);
        self
    }

    /// The largest event accepted, measured encoded as it goes on the wire (each line of
    /// data gets its own `data: ` prefix); a larger one gets `413`, and a batch with one
    /// is refused whole (default [`sse_core::DEFAULT_MAX_EVENT_BYTES`]). Configures the
    /// hub this builder creates.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.hub_settings.max_event_bytes = Some(bytes);
        self
    }

    /// Encoded bytes a subscriber may fall behind (events queued for it and not yet
    /// taken by its writer) before it is disconnected as lagging (default
    /// [`sse_core::DEFAULT_QUEUE_BYTES`]). Configures the hub this builder creates.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.hub_settings.queue_bytes = Some(bytes);
        self
    }

    /// How long a stream's socket may take no bytes while some are waiting to be written
    /// before the stream is closed, freeing its slot (default [`DEFAULT_WRITE_TIMEOUT`]).
    /// Applies to every protocol; on HTTP/2 it closes the connection whose socket stalls.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Events a subscriber may fall behind before it is disconnected (default
    /// [`sse_core::DEFAULT_QUEUE_CAPACITY`]). Configures the hub this builder creates; see
    /// [`build`](ServerBuilder::build) for a hub passed in.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.hub_settings.queue_capacity = Some(events);
        self
    }

    /// Open event streams beyond which subscribe gets `503` with `Retry-After` (default
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    pub fn max_connections(mut self, streams: usize) -> Self {
        self.config.max_connections = streams;
        self
    }

    /// Which origins get CORS headers on event streams (default [`CorsOrigins::Any`]).
    pub fn cors(mut self, origins: CorsOrigins) -> Self {
        self.config.cors = origins;
        self
    }

    /// Requires `Authorization: Bearer <token>` on publish requests (default: none
    /// needed).
    ///
    /// # Panics
    ///
    /// If `token` is empty: an empty token would make publishing anonymous without
    /// saying so.
    pub fn publish_token(mut self, token: impl Into<String>) -> Self {
        self.config.publish_token = Some(non_empty_token(token.into(), "publish_token"));
        self
    }

    /// Requires the token (as a bearer token or `?token=`) on the admin page and its JSON
    /// (default: none needed).
    ///
    /// # Panics
    ///
    /// If `token` is empty, as [`publish_token`](ServerBuilder::publish_token) does.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.config.admin_token = Some(non_empty_token(token.into(), "admin_token"));
        self
    }

    /// Requires a signed token (JWT) verified with `key` to subscribe, and to publish
    /// (where the static [`publish_token`](ServerBuilder::publish_token) is accepted
    /// too): its `sse.subscribe` and `sse.publish` claims name the namespaces it covers,
    /// each with everything below it. Only the key's algorithm is accepted, `exp` is
    /// required, and a stream ends when its token expires. Default: no tokens.
    ///
    /// With a key set, publishing without any token is refused, even from loopback,
    /// unless [`allow_anonymous_publish`](ServerBuilder::allow_anonymous_publish).
    ///
    /// ```
    /// use sse_hyper::{JwtKey, Server};
    ///
    /// let server = Server::builder()
    ///     .jwt(JwtKey::hs256_secret("a long random secret").unwrap())
    ///     .publish_token("backend-publisher")
    ///     .build();
    /// # let _ = server;
    /// ```
    pub fn jwt(mut self, key: JwtKey) -> Self {
        self.config.jwt = Some(Verifier::new(key, self.config.jwt_leeway));
        self
    }

    /// The clock skew tolerated on a token's `exp`, `nbf` and `iat` (default
    /// [`DEFAULT_JWT_LEEWAY`], rounded up to whole seconds). A stream ends at its token's
    /// `exp` plus this leeway.
    pub fn jwt_leeway(mut self, leeway: Duration) -> Self {
        self.config.jwt_leeway = leeway;
        if let Some(verifier) = self.config.jwt.take() {
            self.config.jwt = Some(Verifier::new(verifier.key().clone(), leeway));
        }
        self
    }

    /// With a [`jwt`](ServerBuilder::jwt) key and no publish token, still accepts
    /// publishing without any token (default off: configuring signed tokens closes
    /// anonymous publishing). Without a JWT key it changes nothing: publishing is then
    /// anonymous unless a publish token is set.
    pub fn allow_anonymous_publish(mut self, allow: bool) -> Self {
        self.config.allow_anonymous_publish = allow;
        self
    }

    /// Serves `/admin/` and `/admin/status.json` (default on).
    pub fn admin(mut self, enabled: bool) -> Self {
        self.config.admin_enabled = enabled;
        self
    }

    /// Serves `/metrics` (default on).
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.config.metrics_enabled = enabled;
        self
    }

    /// How long a connection may go without a request in progress before it is closed,
    /// on every protocol (default [`DEFAULT_HEADER_READ_TIMEOUT`]): a new connection must
    /// complete its TLS handshake (when configured) and its first request head within
    /// this time from its acceptance, an HTTP/1.1 keep-alive connection its next head,
    /// and an HTTP/2 connection with no open stream its next request.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// How long a client has to send a whole request body once its head has arrived; a
    /// body still incomplete then is refused with `408` and, over HTTP/1.x, the
    /// connection closed (default [`DEFAULT_BODY_TIMEOUT`]). The time counts from the
    /// start of the body, so with the default 1 MiB limit and 10 s a client must send
    /// at least about 100 KiB/s.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.config.body_timeout = timeout;
        self
    }

    /// How often an HTTP/2 connection from which nothing arrived is pinged (default
    /// [`DEFAULT_HTTP2_KEEPALIVE_INTERVAL`]). A peer that does not answer within
    /// [`http2_keepalive_timeout`](ServerBuilder::http2_keepalive_timeout) is closed, so
    /// a vanished client does not hold its streams forever. Zero sends no pings.
    pub fn http2_keepalive_interval(mut self, interval: Duration) -> Self {
        self.config.http2_keepalive_interval = interval;
        self
    }

    /// How long an HTTP/2 peer has to acknowledge a keepalive ping before its connection
    /// is closed (default [`DEFAULT_HTTP2_KEEPALIVE_TIMEOUT`]).
    pub fn http2_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.config.http2_keepalive_timeout = timeout;
        self
    }

    /// The largest publish body accepted, in bytes; a larger one gets `413` (default
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Serves every route below this path (such as `/events`), for mounting inside a
    /// larger application (default: the root). A trailing `/` is ignored.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        self.config.path_prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// The node name reported by the admin status (default [`DEFAULT_NODE_NAME`]; `ssectl
    /// serve` uses the host name).
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.config.node_name = name.into();
        self
    }

    /// How long graceful shutdown waits for connections to close (default
    /// [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How long the server keeps accepting connections after shutdown starts, answering
    /// `/healthz` with 503 so a load balancer can take it out of rotation (default 0).
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.config.drain_delay = delay;
        self
    }

    /// Serves HTTPS with this certificate (ALPN offers HTTP/2 and HTTP/1.1; default:
    /// cleartext).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Makes this server a node of a cluster (feature `redis`): publishing goes through
    /// the cluster's Redis, streams receive from every node, and resuming uses the
    /// shared history. The hub served is the cluster's own (so neither
    /// [`hub`](ServerBuilder::hub) nor the capacities may be set as well; size the
    /// cluster's hub when you build it).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use sse_redis::{Cluster, ClusterConfig};
    ///
    /// let config = ClusterConfig::new("redis://127.0.0.1:6379").node("edge-1");
    /// let cluster = Cluster::connect(sse_core::Hub::new(), config).await?;
    /// let server = sse_hyper::Server::builder().cluster(cluster).build();
    /// server.serve("127.0.0.1:8001").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    pub fn cluster(mut self, cluster: sse_redis::Cluster) -> Self {
        self.config.cluster = Some(cluster);
        self
    }

    /// The hub to serve and the configuration, as `build` needs them.
    ///
    /// # Panics
    ///
    /// If a hub was passed in together with a queue or history capacity: those configure
    /// a hub this builder creates, and would silently do nothing.
    pub(crate) fn into_parts(self) -> (Hub, Config) {
        #[cfg(feature = "redis")]
        let passed_in = match &self.config.cluster {
            Some(cluster) => {
                assert!(
                    self.hub.is_none(),
                    "ServerBuilder: a cluster brings its own hub; do not pass one with hub()"
                );
                Some(cluster.hub().clone())
            }
            None => self.hub,
        };
        #[cfg(not(feature = "redis"))]
        let passed_in = self.hub;
        let hub = match passed_in {
            Some(hub) => {
                assert!(
                    !self.hub_settings.any(),
                    "ServerBuilder: the queue, history and event sizes configure a new hub; \
                     configure the hub passed to ServerBuilder::hub on its own HubBuilder"
                );
                hub
            }
            None => self.hub_settings.build(),
        };
        (hub, self.config)
    }
}

fn non_empty_token(token: String, setting: &str) -> String {
    assert!(
        !token.is_empty(),
        "ServerBuilder::{setting}: the token is empty; leave the setting out for none"
    );
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "the token is empty")]
    fn an_empty_publish_token_is_refused() {
        let _ = ServerBuilder::default().publish_token("");
    }

    #[test]
    #[should_panic(expected = "the token is empty")]
    fn an_empty_admin_token_is_refused() {
        let _ = ServerBuilder::default().admin_token("");
    }

    #[test]
    #[should_panic(expected = "configure a new hub")]
    fn capacities_beside_a_passed_in_hub_are_refused() {
        let _ = ServerBuilder::default()
            .hub(Hub::new())
            .queue_capacity(8)
            .into_parts();
    }

    #[test]
    #[should_panic(expected = "configure a new hub")]
    fn byte_bounds_beside_a_passed_in_hub_are_refused() {
        let _ = ServerBuilder::default()
            .hub(Hub::new())
            .max_event_bytes(8)
            .into_parts();
    }

    #[test]
    fn byte_bounds_configure_the_new_hub() {
        let (hub, _) = ServerBuilder::default()
            .max_event_bytes(100)
            .history_bytes(1000)
            .into_parts();
        assert_eq!(hub.max_event_bytes(), 100);
        let ns = sse_core::Namespace::parse("/a").unwrap();
        for _ in 0..20 {
            hub.publish(&ns, sse_core::Event::new("x".repeat(60)))
                .unwrap();
        }
        assert!(hub.history_bytes() <= 1000, "{}", hub.history_bytes());
    }

    #[test]
    fn capacities_configure_the_new_hub() {
        let (hub, _) = ServerBuilder::default().queue_capacity(1).into_parts();
        let ns = sse_core::Namespace::parse("/a").unwrap();
        let _slow = hub.subscribe(std::slice::from_ref(&ns));
        hub.publish(&ns, sse_core::Event::new("1")).unwrap();
        assert_eq!(hub.stats().lagged_cutoffs, 0);
        hub.publish(&ns, sse_core::Event::new("2")).unwrap();
        assert_eq!(
            hub.stats().lagged_cutoffs,
            1,
            "a queue of one holds one event"
        );
    }

    #[test]
    fn the_default_node_name_reads_nothing_from_the_machine() {
        assert_eq!(Config::default().node_name, DEFAULT_NODE_NAME);
    }

    #[test]
    fn keepalive_is_raised_to_the_minimum() {
        let builder = ServerBuilder::default().keepalive(Duration::ZERO);
        assert_eq!(builder.config.keepalive, MIN_KEEPALIVE);
    }
}
