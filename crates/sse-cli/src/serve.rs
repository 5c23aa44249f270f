//! `ssectl serve`: every server option as a flag and an environment variable.

use std::net::SocketAddr;

use clap::Args;
use humantime::Duration;
use sse_hyper::{CorsOrigins, Server};
use tracing_subscriber::EnvFilter;

use crate::size::ByteSize;

/// Options of `ssectl serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SSE_LISTEN", default_value = "127.0.0.1:8001")]
    listen: SocketAddr,

    /// Require `Authorization: Bearer TOKEN` to publish.
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true, value_parser = non_empty_token)]
    publish_token: Option<String>,

    /// Allow publishing without a token on a non-loopback address (and, with
    /// --jwt-secret or --jwt-key, anywhere).
    #[arg(long, env = "SSE_ALLOW_ANONYMOUS_PUBLISH")]
    allow_anonymous_publish: bool,

    /// Require signed tokens (JWT, HS256 with this secret) to subscribe and publish; see
    /// `ssectl token`.
    #[arg(long, env = "SSE_JWT_SECRET", hide_env_values = true, value_parser = non_empty_token, conflicts_with = "jwt_key")]
    jwt_secret: Option<String>,

    /// Require signed tokens (JWT) verified with this PEM public key: RS256, ES256
    /// (P-256) or EdDSA (Ed25519), as the key's kind says.
    #[arg(long, env = "SSE_JWT_KEY")]
    jwt_key: Option<std::path::PathBuf>,

    /// Clock skew tolerated on a token's exp, nbf and iat; a stream ends at its token's
    /// exp plus this.
    #[arg(long, env = "SSE_JWT_LEEWAY", default_value_t = sse_hyper::DEFAULT_JWT_LEEWAY.into())]
    jwt_leeway: Duration,

    /// Require this token (bearer or `?token=`) for /admin/ and /admin/status.json.
    #[arg(long, env = "SSE_ADMIN_TOKEN", hide_env_values = true, value_parser = non_empty_token)]
    admin_token: Option<String>,

    /// Do not serve /admin/ and /admin/status.json.
    #[arg(long, env = "SSE_NO_ADMIN")]
    no_admin: bool,

    /// Serve /admin/ and /admin/status.json (client addresses, user agents, namespaces)
    /// without a token on a non-loopback address.
    #[arg(long, env = "SSE_ALLOW_ANONYMOUS_ADMIN")]
    allow_anonymous_admin: bool,

    /// Do not serve /metrics.
    #[arg(long, env = "SSE_NO_METRICS")]
    no_metrics: bool,

    /// Send a keepalive comment on streams idle this long (e.g. 15s, 500ms).
    #[arg(long, env = "SSE_KEEPALIVE", default_value_t = sse_hyper::DEFAULT_KEEPALIVE.into())]
    keepalive: Duration,

    /// Tell clients to wait this long before reconnecting (sent as `retry:`).
    #[arg(long, env = "SSE_RETRY")]
    retry: Option<Duration>,

    /// Events kept for Last-Event-ID replay; 0 disables replay.
    #[arg(long, env = "SSE_HISTORY", default_value_t = sse_core::DEFAULT_HISTORY_CAPACITY)]
    history: usize,

    /// Encoded bytes kept for replay at most (e.g. 64MiB, 500MB, 1048576); the oldest
    /// events are dropped first.
    #[arg(long, env = "SSE_HISTORY_BYTES", default_value_t = ByteSize(sse_core::DEFAULT_HISTORY_BYTES))]
    history_bytes: ByteSize,

    /// Events a subscriber may fall behind before it is disconnected.
    #[arg(long, env = "SSE_QUEUE", default_value_t = sse_core::DEFAULT_QUEUE_CAPACITY)]
    queue: usize,

    /// Bytes a subscriber may fall behind (queued, not yet written) before it is
    /// disconnected; it resumes from the history.
    #[arg(long, env = "SSE_QUEUE_BYTES", default_value_t = ByteSize(sse_core::DEFAULT_QUEUE_BYTES))]
    queue_bytes: ByteSize,

    /// Largest event accepted, encoded as it goes on the wire (each line of data is its
    /// own `data: ` line); larger gets 413.
    #[arg(long, env = "SSE_MAX_EVENT_BYTES", default_value_t = ByteSize(sse_core::DEFAULT_MAX_EVENT_BYTES))]
    max_event_bytes: ByteSize,

    /// Close a stream whose client takes no bytes for this long while some wait to be
    /// written.
    #[arg(long, env = "SSE_WRITE_TIMEOUT", default_value_t = sse_hyper::DEFAULT_WRITE_TIMEOUT.into())]
    write_timeout: Duration,

    /// Open event streams beyond which subscribing gets 503.
    #[arg(long, env = "SSE_MAX_CONNECTIONS", default_value_t = sse_hyper::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Time a connection has from its acceptance to its first request head (TLS handshake
    /// included), and may stay without a request in progress afterwards (every protocol).
    #[arg(long, env = "SSE_HEADER_TIMEOUT", default_value_t = sse_hyper::DEFAULT_HEADER_READ_TIMEOUT.into())]
    header_timeout: Duration,

    /// Time a client has to send a whole request body once its head arrived; later: 408.
    #[arg(long, env = "SSE_BODY_TIMEOUT", default_value_t = sse_hyper::DEFAULT_BODY_TIMEOUT.into())]
    body_timeout: Duration,

    /// Interval of HTTP/2 pings on a connection from which nothing arrived (0s: none).
    #[arg(long, env = "SSE_HTTP2_KEEPALIVE", default_value_t = sse_hyper::DEFAULT_HTTP2_KEEPALIVE_INTERVAL.into())]
    http2_keepalive: Duration,

    /// Time an HTTP/2 peer has to answer a ping before its connection is closed.
    #[arg(long, env = "SSE_HTTP2_KEEPALIVE_TIMEOUT", default_value_t = sse_hyper::DEFAULT_HTTP2_KEEPALIVE_TIMEOUT.into())]
    http2_keepalive_timeout: Duration,

    /// Largest publish body accepted, in bytes.
    #[arg(long, env = "SSE_MAX_BODY", default_value_t = sse_hyper::DEFAULT_MAX_BODY_BYTES)]
    max_body: usize,

    /// Origins allowed to read responses cross-origin: `*` (any), `none`, or one or more
    /// exact origins (repeat the flag, or separate with commas).
    #[arg(
        long = "cors-origin",
        env = "SSE_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    cors_origins: Vec<String>,

    /// Node name reported by the admin status (default: the host name, else "sse").
    #[arg(long, env = "SSE_NODE_NAME")]
    node_name: Option<String>,

    /// After a shutdown signal, keep answering (health checks with 503) this long before
    /// closing the listener.
    #[arg(long, env = "SSE_DRAIN_DELAY", default_value_t = std::time::Duration::ZERO.into())]
    drain_delay: Duration,

    /// PEM certificate chain to serve HTTPS with (needs --tls-key).
    #[arg(long, env = "SSE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "SSE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// Join a cluster: every node given the same Redis (redis://HOST:PORT[/DB]) and
    /// --cluster name acts as one hub, with shared replay history.
    #[cfg(feature = "redis")]
    #[arg(long, env = "SSE_REDIS_URL")]
    redis: Option<String>,

    /// The cluster's name, which prefixes every Redis key and channel (with --redis).
    #[cfg(feature = "redis")]
    #[arg(long = "cluster", env = "SSE_CLUSTER", default_value = sse_redis::DEFAULT_CLUSTER_NAME)]
    cluster_name: String,

    /// How long shutdown waits for connections to close.
    #[arg(long, env = "SSE_SHUTDOWN_TIMEOUT", default_value_t = sse_hyper::DEFAULT_SHUTDOWN_TIMEOUT.into())]
    shutdown_timeout: Duration,
}

impl ServeArgs {
    fn cors(&self) -> Result<CorsOrigins, String> {
        let origins: Vec<String> = self
            .cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        match origins.as_slice() {
            [] => Ok(CorsOrigins::None),
            [one] if one == "*" => Ok(CorsOrigins::Any),
            [one] if one.eq_ignore_ascii_case("none") => Ok(CorsOrigins::None),
            list if list
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case("none")) =>
            {
                Err("--cors-origin: '*' and 'none' cannot be combined with other origins".into())
            }
            list => Ok(CorsOrigins::List(list.to_vec())),
        }
    }

    /// The server, listening at `addr` (whose port names the node in a cluster).
    async fn server(&self, addr: SocketAddr) -> Result<Server, String> {
        let mut builder = Server::builder()
            .keepalive(*self.keepalive)
            .retry(self.retry.map(|retry| *retry))
            .max_connections(self.max_connections)
            .header_read_timeout(*self.header_timeout)
            .body_timeout(*self.body_timeout)
            .http2_keepalive_interval(*self.http2_keepalive)
            .http2_keepalive_timeout(*self.http2_keepalive_timeout)
            .write_timeout(*self.write_timeout)
            .max_body_bytes(self.max_body)
            .cors(self.cors()?)
            .admin(!self.no_admin)
            .metrics(!self.no_metrics)
            .drain_delay(*self.drain_delay)
            .shutdown_timeout(*self.shutdown_timeout);
        builder = match self.cluster(addr).await? {
            #[cfg(feature = "redis")]
            Some(cluster) => {
                let node = cluster.config().node_name().to_owned();
                builder.cluster(cluster).node_name(node)
            }
            #[cfg(not(feature = "redis"))]
            Some(never) => match never {},
            None => builder
                .history_capacity(self.history)
                .history_bytes(self.history_bytes.0)
                .queue_capacity(self.queue)
                .queue_bytes(self.queue_bytes.0)
                .max_event_bytes(self.max_event_bytes.0)
                .node_name(self.node_name.clone().unwrap_or_else(host_name)),
        };
        if let Some(token) = &self.publish_token {
            builder = builder.publish_token(token.clone());
        }
        if let Some(token) = &self.admin_token {
            builder = builder.admin_token(token.clone());
        }
        if let Some(key) = self.jwt_key()? {
            tracing::info!(
                algorithm = key.algorithm(),
                "signed tokens required to subscribe and publish"
            );
            builder = builder
                .jwt_leeway(*self.jwt_leeway)
                .jwt(key)
                .allow_anonymous_publish(self.allow_anonymous_publish);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let tls = sse_hyper::TlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
            builder = builder.tls(tls);
        }
        Ok(builder.build())
    }

    /// With `--redis`, joins the cluster; nodes on one host are told apart by port.
    #[cfg(feature = "redis")]
    async fn cluster(&self, addr: SocketAddr) -> Result<Option<sse_redis::Cluster>, String> {
        let Some(url) = &self.redis else {
            return Ok(None);
        };
        let hub = sse_core::Hub::builder()
            .history_capacity(self.history)
            .history_bytes(self.history_bytes.0)
            .queue_capacity(self.queue)
            .queue_bytes(self.queue_bytes.0)
            .max_event_bytes(self.max_event_bytes.0)
            .build();
        let node = self
            .node_name
            .clone()
            .unwrap_or_else(|| format!("{}:{}", host_name(), addr.port()));
        let config = sse_redis::ClusterConfig::new(url)
            .name(&self.cluster_name)
            .node(node)
            .history_capacity(self.history);
        let cluster = sse_redis::Cluster::connect(hub, config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(cluster = %self.cluster_name, node = cluster.config().node_name(), "joining the cluster through Redis");
        Ok(Some(cluster))
    }

    #[cfg(not(feature = "redis"))]
    async fn cluster(&self, _addr: SocketAddr) -> Result<Option<std::convert::Infallible>, String> {
        Ok(None)
    }

    /// The key of --jwt-secret or --jwt-key, if one is given.
    fn jwt_key(&self) -> Result<Option<sse_hyper::JwtKey>, String> {
        let key = match (&self.jwt_secret, &self.jwt_key) {
            (Some(secret), _) => sse_hyper::JwtKey::hs256_secret(secret),
            (None, Some(path)) => sse_hyper::JwtKey::from_public_pem_file(path),
            (None, None) => return Ok(None),
        };
        key.map(Some)
            .map_err(|e| format!("--jwt-secret/--jwt-key: {e}"))
    }

    /// Refuses anonymous publishing on an address other machines can reach.
    fn check_publish_security(&self) -> Result<(), String> {
        let has_token =
            self.publish_token.is_some() || self.jwt_secret.is_some() || self.jwt_key.is_some();
        if self.listen.ip().is_loopback() || has_token || self.allow_anonymous_publish {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {} without a publish token: anyone who can reach it could publish. \
             Set --publish-token (or SSE_PUBLISH_TOKEN), or pass --allow-anonymous-publish",
            self.listen
        ))
    }

    /// Refuses a token-less admin status on an address other machines can reach.
    fn check_admin_security(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback()
            || self.admin_token.is_some()
            || self.no_admin
            || self.allow_anonymous_admin
        {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {} without an admin token: anyone who can reach it could read \
             the admin status (client addresses, user agents, namespaces). Set --admin-token \
             (or SSE_ADMIN_TOKEN), pass --no-admin, or pass --allow-anonymous-admin",
            self.listen
        ))
    }
}

/// Refuses an empty token: it would otherwise read as "no token", and a variable that
/// expanded to nothing would open publishing to anyone.
fn non_empty_token(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(
            "the token is empty; leave the option (and its variable) unset for none".into(),
        );
    }
    Ok(text.to_owned())
}

/// This machine's host name, for the admin status: `$HOSTNAME`, else `/etc/hostname`,
/// else the library's default.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| sse_hyper::DEFAULT_NODE_NAME.to_owned())
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(args: ServeArgs) -> Result<(), String> {
    init_logging();
    args.check_publish_security()?;
    args.check_admin_security()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let listener =
            listen(args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let server = args.server(addr).await?;
        let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
        println!("ssectl: listening on {scheme}://{addr} (subscribe: GET /subscribe/{{namespace}}, publish: POST /publish/{{namespace}})");
        server
            .serve_with_shutdown(listener, shutdown_signal())
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}

/// The accept queue's length (the kernel caps it at `net.core.somaxconn`). When a server
/// restarts, every client reconnects within moments; with the usual 1 024 the overflow's
/// SYNs are dropped and those clients wait for retransmissions, 1 s and more.
const ACCEPT_BACKLOG: u32 = 8192;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let args = std::iter::once("serve").chain(args.iter().copied());
        Command::try_parse_from(args).map(|command| command.serve)
    }

    /// The flags' defaults are the library's, so the two cannot drift apart. Environment
    /// variables of the same names would change what is parsed, so none may be set.
    #[test]
    fn defaults_are_the_librarys() {
        if std::env::vars().any(|(name, _)| name.starts_with("SSE_")) {
            panic!("unset the SSE_* variables to run this test");
        }
        let args = parse(&[]).unwrap();
        assert_eq!(*args.keepalive, sse_hyper::DEFAULT_KEEPALIVE);
        assert_eq!(*args.header_timeout, sse_hyper::DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(*args.body_timeout, sse_hyper::DEFAULT_BODY_TIMEOUT);
        assert_eq!(
            *args.http2_keepalive,
            sse_hyper::DEFAULT_HTTP2_KEEPALIVE_INTERVAL
        );
        assert_eq!(
            *args.http2_keepalive_timeout,
            sse_hyper::DEFAULT_HTTP2_KEEPALIVE_TIMEOUT
        );
        assert_eq!(*args.shutdown_timeout, sse_hyper::DEFAULT_SHUTDOWN_TIMEOUT);
        assert_eq!(*args.drain_delay, std::time::Duration::ZERO);
        assert_eq!(args.history, sse_core::DEFAULT_HISTORY_CAPACITY);
        assert_eq!(args.queue, sse_core::DEFAULT_QUEUE_CAPACITY);
        assert_eq!(args.history_bytes.0, sse_core::DEFAULT_HISTORY_BYTES);
        assert_eq!(args.queue_bytes.0, sse_core::DEFAULT_QUEUE_BYTES);
        assert_eq!(args.max_event_bytes.0, sse_core::DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(*args.write_timeout, sse_hyper::DEFAULT_WRITE_TIMEOUT);
        assert_eq!(args.max_connections, sse_hyper::DEFAULT_MAX_CONNECTIONS);
        assert_eq!(args.max_body, sse_hyper::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(*args.jwt_leeway, sse_hyper::DEFAULT_JWT_LEEWAY);
        assert_eq!(args.retry, None);
        assert_eq!(args.cors().unwrap(), CorsOrigins::Any);
    }

    #[test]
    fn sizes_take_units_and_refuse_nonsense() {
        let args = parse(&["--history-bytes", "8MiB", "--max-event-bytes", "65536"]).unwrap();
        assert_eq!(args.history_bytes.0, 8 << 20);
        assert_eq!(args.max_event_bytes.0, 65536);
        let error = parse(&["--queue-bytes", "lots"]).unwrap_err().to_string();
        assert!(error.contains("--queue-bytes"), "{error}");
    }

    #[test]
    fn an_empty_token_is_refused_with_a_reason() {
        let error = parse(&["--publish-token", ""]).unwrap_err().to_string();
        assert!(error.contains("the token is empty"), "{error}");
        let error = parse(&["--admin-token="]).unwrap_err().to_string();
        assert!(error.contains("the token is empty"), "{error}");
        let error = parse(&["--jwt-secret="]).unwrap_err().to_string();
        assert!(error.contains("the token is empty"), "{error}");
    }
}
