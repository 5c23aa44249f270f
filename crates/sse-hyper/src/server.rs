//! The standalone server: accepts TCP connections and serves HTTP/1.1 and HTTP/2
//! (cleartext with prior knowledge) on the same port, then shuts down gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use sse_core::Hub;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::config::ServerBuilder;
use crate::connection::{self, Serving};
use crate::service::SseService;

/// An SSE hub served over HTTP.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use sse_core::{Event, Namespace};
/// use sse_hyper::Server;
///
/// let server = Server::builder().build();
/// let hub = server.hub().clone(); // publish from this process too
/// tokio::spawn(async move {
///     let time = Namespace::parse("/time").unwrap();
///     loop {
///         let _ = hub.publish(&time, Event::new(format!("{:?}", std::time::SystemTime::now())));
///         tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///     }
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
/// server.serve_with_shutdown(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    service: SseService,
}

impl ServerBuilder {
    /// Builds the server (no socket is opened until it is served).
    ///
    /// # Panics
    ///
    /// If [`hub`](ServerBuilder::hub) was given together with
    /// [`queue_capacity`](ServerBuilder::queue_capacity),
    /// [`queue_bytes`](ServerBuilder::queue_bytes),
    /// [`history_capacity`](ServerBuilder::history_capacity),
    /// [`history_bytes`](ServerBuilder::history_bytes) or
    /// [`max_event_bytes`](ServerBuilder::max_event_bytes): those size a hub the builder
    /// creates, and would do nothing.
    pub fn build(self) -> Server {
        let (hub, config) = self.into_parts();
        Server {
            service: SseService::new(hub, config),
        }
    }
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The hub the server serves; publish to it from the same process.
    pub fn hub(&self) -> &Hub {
        self.service.hub()
    }

    /// The server as an HTTP service, to mount in another application.
    pub fn service(&self) -> SseService {
        self.service.clone()
    }

    /// Binds `addr` and serves until an I/O error stops the listener.
    pub async fn serve(self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves connections from `listener` until `shutdown` completes, then shuts down
    /// gracefully: `/healthz` answers 503, new streams and publishes are refused, every
    /// event stream ends cleanly, the listener closes, and the call returns once the open
    /// connections have finished (or the shutdown timeout passed).
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let state = self.service.state();
        let config = state.config();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper stops reading a head well past the limit; the service answers a head
        // between the two with a JSON 431.
        let head_limit = crate::limits::PROTOCOL_HEAD_LIMIT;
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(head_limit);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(
                (!config.http2_keepalive_interval.is_zero())
                    .then_some(config.http2_keepalive_interval),
            )
            .keep_alive_timeout(config.http2_keepalive_timeout)
            .max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX));
        let (closing, closing_receiver) = tokio::sync::watch::channel(false);
        // Shared: a connection's task holds a pointer, not its own copy of the builders.
        let serving = Arc::new(Serving {
            builder,
            head_timeout: config.header_read_timeout,
            write_timeout: config.write_timeout,
            write_timeouts: Arc::clone(&state.streams().write_timeouts),
            closing: closing_receiver,
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
        });
        let graceful = GracefulShutdown::new();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving server-sent events");
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.spawn_connection(stream, peer, &serving, &graceful),
                    Err(error) => accept_failed(error).await,
                },
                () = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down: draining event streams");
        state.start_draining();
        if !config.drain_delay.is_zero() {
            self.accept_while_draining(&listener, &serving, &graceful)
                .await;
        }
        drop(listener);
        // Connections that never sent a request are not waited for.
        let _ = closing.send(true);
        match tokio::time::timeout(config.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all connections closed"),
            Err(_) => tracing::warn!(
                timeout = ?config.shutdown_timeout,
                "connections still open after the shutdown timeout; closing anyway"
            ),
        }
        // Leave the cluster's membership now rather than after missed heartbeats.
        #[cfg(feature = "redis")]
        if let Some(cluster) = state.cluster() {
            cluster.leave().await;
        }
        Ok(())
    }

    fn spawn_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        serving: &Arc<Serving>,
        graceful: &GracefulShutdown,
    ) {
        connection::spawn(
            stream,
            peer,
            self.service.with_remote_addr(peer),
            Arc::clone(serving),
            graceful.watcher(),
        );
    }

    /// Keeps serving (every answer is now 503 or a health check saying so) for the
    /// configured drain delay.
    async fn accept_while_draining(
        &self,
        listener: &TcpListener,
        serving: &Arc<Serving>,
        graceful: &GracefulShutdown,
    ) {
        let delay = tokio::time::sleep(self.service.state().config().drain_delay);
        tokio::pin!(delay);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.spawn_connection(stream, peer, serving, graceful),
                    Err(error) => accept_failed(error).await,
                },
                () = &mut delay => return,
            }
        }
    }
}

async fn accept_failed(error: io::Error) {
    // Typically out of file descriptors: back off instead of spinning.
    tracing::warn!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
