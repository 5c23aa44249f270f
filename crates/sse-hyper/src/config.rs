//! Server configuration and its builder.

use std::time::Duration;

use sse_core::{Hub, DEFAULT_HISTORY_CAPACITY, DEFAULT_QUEUE_CAPACITY};

use crate::server::Server;

/// The default keepalive interval: 15 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
/// The default limit on open event streams.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// The default time a client has to send a complete request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default limit on a publish request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default time graceful shutdown waits for connections to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Everything a [`Server`] can be configured with; see [`ServerBuilder`] for what each
/// setting means and its default.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) keepalive: Duration,
    pub(crate) retry: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) cors: CorsOrigins,
    pub(crate) publish_token: Option<String>,
    pub(crate) admin_token: Option<String>,
    pub(crate) admin_enabled: bool,
    pub(crate) metrics_enabled: bool,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) path_prefix: String,
    pub(crate) node_name: String,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) drain_delay: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConfig>,
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
            admin_enabled: true,
            metrics_enabled: true,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            path_prefix: String::new(),
            node_name: default_node_name(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            drain_delay: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Config {
    /// Whether publishing needs a bearer token.
    pub fn requires_publish_token(&self) -> bool {
        self.publish_token.is_some()
    }
}

fn default_node_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sse".to_owned())
}

/// Configures and builds a [`Server`].
///
/// ```
/// use std::time::Duration;
/// use sse_hyper::Server;
///
/// let server = Server::builder()
///     .keepalive(Duration::from_secs(30))
///     .history_capacity(50_000)
///     .publish_token("s3cret")
///     .build();
/// # let _ = server;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    config: Config,
    hub: Option<Hub>,
    queue_capacity: Option<usize>,
    history_capacity: Option<usize>,
}

impl ServerBuilder {
    /// Serves an existing hub instead of a new one (for example one shared with other
    /// parts of the program). Queue and history sizes are then the hub's own.
    pub fn hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// How long a stream may stay silent before a keepalive comment is sent on it
    /// (default 15 s).
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.config.keepalive = interval.max(Duration::from_millis(10));
        self
    }

    /// Sends `retry: <ms>` at the start of every stream, setting how long clients wait
    /// before reconnecting (default: not sent, clients use their own default).
    pub fn retry(mut self, retry: Option<Duration>) -> Self {
        self.config.retry = retry;
        self
    }

    /// Events kept for `Last-Event-ID` replay; 0 disables replay (default 10 000).
    pub fn history_capacity(mut self, events: usize) -> Self {
        self.history_capacity = Some(events);
        self
    }

    /// Events a subscriber may fall behind before it is disconnected (default 4096).
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = Some(events);
        self
    }

    /// Open event streams beyond which subscribe gets `503` (default 100 000).
    pub fn max_connections(mut self, streams: usize) -> Self {
        self.config.max_connections = streams;
        self
    }

    /// Which origins get CORS headers (default: any, `*`).
    pub fn cors(mut self, origins: CorsOrigins) -> Self {
        self.config.cors = origins;
        self
    }

    /// Requires `Authorization: Bearer <token>` on publish requests.
    pub fn publish_token(mut self, token: impl Into<String>) -> Self {
        self.config.publish_token = Some(token.into()).filter(|t: &String| !t.is_empty());
        self
    }

    /// Requires the token (as a bearer token or `?token=`) on the admin page and its JSON.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.config.admin_token = Some(token.into()).filter(|t: &String| !t.is_empty());
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

    /// How long a client has to send a complete HTTP/1 request head (default 10 s).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// The largest publish body accepted, in bytes (default 1 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Serves every route below this path (such as `/events`), for mounting inside a
    /// larger application (default: the root).
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        self.config.path_prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// The node name reported by the admin status (default: the host name).
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.config.node_name = name.into();
        self
    }

    /// How long graceful shutdown waits for connections to close (default 10 s).
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

    /// Serves HTTPS with this certificate (ALPN offers HTTP/2 and HTTP/1.1).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Builds the server (no socket is opened until it is served).
    pub fn build(self) -> Server {
        let hub = self.hub.unwrap_or_else(|| {
            Hub::builder()
                .queue_capacity(self.queue_capacity.unwrap_or(DEFAULT_QUEUE_CAPACITY))
                .history_capacity(self.history_capacity.unwrap_or(DEFAULT_HISTORY_CAPACITY))
                .build()
        });
        Server::new(hub, self.config)
    }
}
