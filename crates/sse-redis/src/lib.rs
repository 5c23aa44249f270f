//! Cluster mode for the SSE hub: many nodes, one hub, through Redis.
//!
//! Each node keeps its own [`sse_core::Hub`] for its own subscribers; Redis is the
//! engine between them. Nodes never talk to each other directly.
//!
//! - **Publishing** runs one Lua script per request (`lua/publish.lua`): each event is
//!   appended to the shared history stream, whose entry id is its place in the cluster's
//!   one order (and its SSE id, unless the publisher chose one), then published to the
//!   channel of its namespace and of every ancestor. A batch is one script, so it is one
//!   contiguous run of the order, all or nothing.
//! - **Receiving**: a node listens on the channels of the namespaces its subscribers
//!   registered (see `channels.rs`) and one task hands each event once to the local hub
//!   (see `receiver.rs`), which fans it out in memory as on a single node. So an event
//!   costs one Redis message per interested node and level, never one per subscriber.
//! - **Resuming**: `Last-Event-ID` from any node resumes on any other, from the shared
//!   history (`lua/replay.lua`), joined exactly with live events.
//! - **Outages**: publishing answers [`BrokerUnavailable`] within the timeout; streams
//!   stay open; on reconnection the node catches up from the shared history, or tells
//!   subscribers about a gap.
//! - **Membership**: heartbeats with a time to live ([`Cluster::nodes`]).
//!
//! # Example
//!
//! ```no_run
//! use sse_core::{Event, Hub, Namespace};
//! use sse_redis::{Cluster, ClusterConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClusterConfig::new("redis://127.0.0.1:6379").node("edge-1");
//! let cluster = Cluster::connect(Hub::new(), config).await?;
//! let news = Namespace::parse("/news")?;
//! let mut stream = cluster.subscribe(&[news.clone()], None).await?;
//! cluster.publish(&[(news, Event::new("hello"))]).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![forbid(unsafe_code)]

mod channels;
mod cluster;
mod config;
mod error;
mod keys;
mod membership;
mod message;
mod receiver;
mod stats;

pub use channels::ChannelLease;
pub use cluster::{Accepted, Cluster, ClusterSubscription, ASSIGNED_ID_BYTES};
pub use config::{ClusterConfig, DEFAULT_BROKER_TIMEOUT, DEFAULT_CLUSTER_NAME, DEFAULT_HEARTBEAT};
pub use error::{BrokerUnavailable, ConfigError, PublishError};
pub use membership::{NodeReport, NodeStatus};
pub use stats::{BrokerStats, Histogram, LATENCY_BUCKETS_MS};
