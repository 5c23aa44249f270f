//! Serves an [`sse_core::Hub`] over HTTP with tokio and hyper: the HTTP API of the
//! project's design (`GET /subscribe/{namespace}`, `POST /publish/{namespace}`, batch
//! publishing, admin page and status, Prometheus metrics, health check), HTTP/1.1 and
//! HTTP/2 on one port (HTTPS with ALPN behind the `tls` feature), keepalives, `Last-Event-ID` replay, connection limits and
//! graceful shutdown.
//!
//! Use it three ways:
//!
//! - standalone: [`Server::serve`] or [`Server::serve_with_shutdown`];
//! - embedded: [`Server::service`] is a hyper and tower service that answers below a
//!   configurable path prefix, to mount beside an existing application's routes; or,
//!   one level finer, [`SseService::event_stream`] opens a hub stream from the
//!   application's own handler, behind its own authentication and at its own route;
//! - in-process: [`Server::hub`] publishes from the same program.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use sse_core::{Event, Namespace};
//! use sse_hyper::Server;
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = Server::builder().keepalive(Duration::from_secs(15)).build();
//!     let hub = server.hub().clone();
//!     tokio::spawn(async move {
//!         let dogs = Namespace::parse("/pets/dogs").unwrap();
//!         hub.publish(&dogs, Event::new("Corgi").with_event("new-dog")).unwrap();
//!     });
//!     // curl -N http://127.0.0.1:8001/subscribe/pets
//!     server.serve("127.0.0.1:8001").await
//! }
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![forbid(unsafe_code)]

mod auth;
mod body;
mod browser;
mod config;
mod connection;
mod direct_head;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod idle;
mod json_text;
mod jwt;
mod limits;
mod moving_deadline;
mod publish;
mod rates;
mod request_body;
mod response;
mod response_head;
mod routes;
mod server;
mod service;
mod state;
mod status;
mod streams;
mod sync;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_stream;
mod write_timeout;

pub use body::SseBody;
pub use config::DEFAULT_WRITE_TIMEOUT;
pub use config::{
    CorsOrigins, ServerBuilder, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_HTTP2_KEEPALIVE_INTERVAL, DEFAULT_HTTP2_KEEPALIVE_TIMEOUT, DEFAULT_KEEPALIVE,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_NODE_NAME, DEFAULT_SHUTDOWN_TIMEOUT,
    MIN_KEEPALIVE,
};
pub use error::{ApiError, ErrorCode};
pub use jwt::{JwtKey, JwtKeyError, SigningKey, DEFAULT_JWT_LEEWAY};
pub use limits::{MAX_HEAD_BYTES, MAX_LAST_EVENT_ID_BYTES, MAX_STORED_TEXT_BYTES};
pub use rates::{RatePoint, Rates};
pub use request_body::{BoxError, RequestBody};
pub use routes::subscribe::{last_event_id, MAX_NAMESPACES_PER_STREAM};
pub use server::Server;
pub use service::SseService;
pub use sse_core;
#[cfg(feature = "redis")]
pub use sse_redis;
pub use status::{ClusterNode, ClusterStatus, NamespaceStatus, Status};
pub use streams::ConnectionStatus;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
