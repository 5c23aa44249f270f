//! Serves an [`sse_core::Hub`] over HTTP with tokio and hyper.
//!
//! Not implemented yet: this crate currently only re-exports `sse-core` so the workspace
//! layout is in place. The HTTP server (routes, admin page, metrics, graceful shutdown)
//! comes next.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use sse_core;
