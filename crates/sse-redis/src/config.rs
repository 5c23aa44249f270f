//! How a node joins a cluster: the Redis URL, the cluster's name, this node's name, and
//! the bounds on waiting for Redis.

use std::time::Duration;

/// The default cluster name, which prefixes every Redis key and channel.
pub const DEFAULT_CLUSTER_NAME: &str = "sse";
/// How long publishing and opening a stream wait for Redis before answering that the
/// broker is unavailable.
pub const DEFAULT_BROKER_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a node refreshes its heartbeat; it counts as gone after five missed beats.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// A node's cluster settings.
///
/// ```
/// use sse_redis::ClusterConfig;
///
/// let config = ClusterConfig::new("redis://127.0.0.1:6379/0")
///     .name("shop")
///     .node("edge-1:8001")
///     .history_capacity(50_000);
/// assert_eq!(config.cluster_name(), "shop");
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) history_capacity: usize,
    pub(crate) timeout: Duration,
    pub(crate) heartbeat: Duration,
}

impl ClusterConfig {
    /// Joins the cluster of the Redis at `url` (`redis://HOST:PORT[/DB]`), with the
    /// defaults: cluster [`DEFAULT_CLUSTER_NAME`], node name `node`, the single-node
    /// history size ([`sse_core::DEFAULT_HISTORY_CAPACITY`]), broker timeout
    /// [`DEFAULT_BROKER_TIMEOUT`], heartbeat [`DEFAULT_HEARTBEAT`].
    pub fn new(url: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            url: url.into(),
            name: DEFAULT_CLUSTER_NAME.to_owned(),
            node: "node".to_owned(),
            history_capacity: sse_core::DEFAULT_HISTORY_CAPACITY,
            timeout: DEFAULT_BROKER_TIMEOUT,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }

    /// The cluster's name: nodes with the same Redis and name are one hub.
    pub fn name(mut self, name: impl Into<String>) -> ClusterConfig {
        self.name = name.into();
        self
    }

    /// This node's name in the cluster's membership; unique per node.
    pub fn node(mut self, node: impl Into<String>) -> ClusterConfig {
        self.node = node.into();
        self
    }

    /// Events the shared history keeps for replay (the cluster's last N).
    pub fn history_capacity(mut self, events: usize) -> ClusterConfig {
        self.history_capacity = events;
        self
    }

    /// How long a publish or a stream's opening waits for Redis.
    pub fn timeout(mut self, timeout: Duration) -> ClusterConfig {
        self.timeout = timeout;
        self
    }

    /// How often the node announces itself.
    pub fn heartbeat(mut self, interval: Duration) -> ClusterConfig {
        self.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.name
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.node
    }
}
