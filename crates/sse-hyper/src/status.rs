//! The admin status: what `/admin/status.json` answers and
//! [`SseService::status`](crate::SseService::status) returns.
//!
//! The JSON keeps the field names of the classic Go `sseserver` status API (`node`,
//! `status`, `reported_at`, `startup_time`, `msgs_broadcast`, `connections` with
//! `request_path`, `namespace`, `created_at`, `client_ip`, `user_agent`, `msgs_sent`) and
//! adds uptime, deliveries, cut-off subscribers, per-namespace subscriber counts and
//! rates. Every number comes from atomic counters or a short lock on the registry, so
//! reading the status never holds up publishing.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use serde::Serialize;

use crate::rates::{RatePoint, Rates};
use crate::state::State;
use crate::streams::{unix_seconds, ConnectionStatus};

/// A report on one server: its streams, counters and rates.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = sse_hyper::Server::builder().node_name("edge-1").build();
/// let status = server.service().status().await;
/// assert_eq!(status.node, "edge-1");
/// assert_eq!(status.status, "OK");
/// assert!(status.connections.is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The node name.
    pub node: String,
    /// `OK`, or `draining` during shutdown.
    pub status: &'static str,
    /// When this report was made, in seconds since the UNIX epoch.
    pub reported_at: u64,
    /// When the server started, in seconds since the UNIX epoch.
    pub startup_time: u64,
    /// Events published since start.
    pub msgs_broadcast: u64,
    /// Open event streams, oldest first.
    pub connections: Vec<ConnectionStatus>,
    /// How many of the open streams were opened with a signed token (JWT); who holds
    /// them is not reported.
    pub authenticated_streams: u64,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Events queued to subscribers since start, summed over subscribers.
    pub deliveries: u64,
    /// Subscribers cut off for falling too far behind, since start.
    pub lagged_cutoffs: u64,
    /// Connections closed because their socket took no bytes for the write timeout,
    /// since start.
    pub write_timeouts: u64,
    /// Encoded bytes the replay history retains.
    pub history_bytes: u64,
    /// Registered subscriptions.
    pub subscribers: u64,
    /// Subscriptions per exact namespace.
    pub namespaces: Vec<NamespaceStatus>,
    /// Rates over the last few seconds.
    pub rates: Rates,
    /// The rates of each second of the last minutes, oldest first (the admin page's
    /// chart).
    pub rate_history: Vec<RatePoint>,
    /// Keepalive comments written since start.
    pub keepalives_sent: u64,
    /// Bytes written to event streams since start.
    pub bytes_sent: u64,
    /// In cluster mode, the cluster and its nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// A cluster as one of its nodes sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: String,
    /// This node's name.
    pub node: String,
    /// Whether this node is connected to the cluster's Redis.
    pub connected: bool,
    /// The nodes whose heartbeat is current (empty when Redis cannot be reached).
    pub nodes: Vec<ClusterNode>,
    /// Why the nodes could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One node of a cluster, from its last heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterNode {
    /// Its name.
    pub node: String,
    /// Its open event streams.
    pub connections: u64,
    /// Its subscriptions.
    pub subscribers: u64,
    /// Events it delivered per second, recently.
    pub publish_per_second: f64,
    /// Deliveries to its subscribers per second, recently.
    pub deliveries_per_second: f64,
    /// When it started, in seconds since the UNIX epoch.
    pub started_at: u64,
    /// When it last announced itself, in seconds since the UNIX epoch.
    pub last_seen: f64,
}

/// Subscribers of one exact namespace.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceStatus {
    /// The namespace.
    pub namespace: String,
    /// Subscriptions registered under exactly this namespace.
    pub subscribers: usize,
}

/// The status of the server behind `state`, now.
pub(crate) async fn status(state: &State) -> Status {
    let stats = state.hub().stats();
    let streams = state.streams();
    Status {
        node: state.config().node_name.clone(),
        status: if state.is_draining() {
            "draining"
        } else {
            "OK"
        },
        reported_at: unix_seconds(SystemTime::now()),
        startup_time: unix_seconds(state.started_at()),
        msgs_broadcast: stats.events_published,
        connections: streams.snapshot(),
        authenticated_streams: streams.authenticated_count() as u64,
        uptime_seconds: state.uptime().as_secs_f64(),
        deliveries: stats.deliveries,
        lagged_cutoffs: stats.lagged_cutoffs,
        write_timeouts: streams.write_timeouts.load(Relaxed),
        history_bytes: state.hub().history_bytes() as u64,
        subscribers: stats.subscribers,
        namespaces: state
            .hub()
            .subscribers_by_namespace()
            .into_iter()
            .map(|(namespace, subscribers)| NamespaceStatus {
                namespace: namespace.to_string(),
                subscribers,
            })
            .collect(),
        rates: state.rates(),
        rate_history: state.rate_series(),
        keepalives_sent: streams.keepalives_sent.load(Relaxed),
        bytes_sent: streams.bytes_sent.load(Relaxed),
        cluster: cluster_status(state).await,
    }
}

#[cfg(not(feature = "redis"))]
async fn cluster_status(_state: &State) -> Option<ClusterStatus> {
    None
}

#[cfg(feature = "redis")]
async fn cluster_status(state: &State) -> Option<ClusterStatus> {
    let cluster = state.cluster()?;
    let (nodes, error) = match cluster.nodes().await {
        Ok(nodes) => (nodes, None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    Some(ClusterStatus {
        name: cluster.config().cluster_name().to_owned(),
        node: cluster.config().node_name().to_owned(),
        connected: cluster.is_connected(),
        nodes: nodes
            .into_iter()
            .map(|n| ClusterNode {
                node: n.node,
                connections: n.report.connections,
                subscribers: n.report.subscribers,
                publish_per_second: n.report.publish_per_second,
                deliveries_per_second: n.report.deliveries_per_second,
                started_at: n.started_at,
                last_seen: n.last_seen,
            })
            .collect(),
        error,
    })
}
