//! Who is in the cluster: each node refreshes a heartbeat key with a time to live, and
//! lists the others by reading theirs.

use std::sync::{PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, Inner};
use crate::error::BrokerUnavailable;

/// How many heartbeats a node may miss before it counts as gone.
const MISSED_BEATS: u32 = 5;

/// What a node tells the cluster about itself, refreshed by the server it runs in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Open event streams.
    pub connections: u64,
    /// Subscriptions in the node's hub.
    pub subscribers: u64,
    /// Events delivered to the node's hub per second, recently.
    pub publish_per_second: f64,
    /// Deliveries to subscribers per second, recently.
    pub deliveries_per_second: f64,
}

/// One node of the cluster, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's name.
    pub node: String,
    /// What it reported.
    #[serde(flatten)]
    pub report: NodeReport,
    /// When it started, in seconds since the UNIX epoch.
    pub started_at: u64,
    /// When it last announced itself, in seconds since the UNIX epoch.
    pub last_seen: f64,
}

/// Refreshes this node's heartbeat until the cluster is dropped.
pub(crate) async fn heartbeat(inner: Weak<Inner>) {
    loop {
        let Some(node) = inner.upgrade() else {
            return;
        };
        let interval = node.config.heartbeat;
        if let Err(error) = beat(&node).await {
            tracing::debug!(%error, "heartbeat not sent");
        }
        drop(node);
        tokio::time::sleep(interval).await;
    }
}

async fn beat(inner: &Inner) -> Result<(), BrokerUnavailable> {
    let status = NodeStatus {
        node: inner.config.node.clone(),
        report: inner
            .report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        started_at: inner
            .started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        last_seen: unix_now(),
    };
    let json = serde_json::to_string(&status).expect("a node status always serialises");
    let ttl = inner.config.heartbeat * MISSED_BEATS;
    let mut connection = inner.commands.clone();
    let key = inner.keys.node(&inner.config.node);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&key)
        .arg(json)
        .arg("PX")
        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
        .ignore()
        .sadd(&inner.keys.nodes, &inner.config.node)
        .ignore();
    inner
        .within_timeout("heartbeat", pipe.query_async::<()>(&mut connection))
        .await
}

impl Cluster {
    /// The nodes whose heartbeat is current, sorted by name.
    ///
    /// # Errors
    ///
    /// [`BrokerUnavailable`] when Redis cannot be reached.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, BrokerUnavailable> {
        let inner = &self.inner();
        let mut connection = inner.commands.clone();
        let names: Vec<String> = inner
            .within_timeout("nodes", connection.smembers(&inner.keys.nodes))
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|name| inner.keys.node(name)).collect();
        let beats: Vec<Option<String>> = inner
            .within_timeout("nodes", connection.mget(&keys))
            .await?;
        let mut nodes = Vec::new();
        let mut gone = Vec::new();
        for (name, beat) in names.into_iter().zip(beats) {
            match beat.and_then(|json| serde_json::from_str::<NodeStatus>(&json).ok()) {
                Some(status) => nodes.push(status),
                None => gone.push(name),
            }
        }
        if !gone.is_empty() {
            // Best effort: the next reader tries again.
            let _ = inner
                .within_timeout(
                    "nodes",
                    connection.srem::<_, _, i64>(&inner.keys.nodes, &gone),
                )
                .await;
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// Leaves the membership at once (on shutdown), instead of after missed heartbeats.
    pub async fn leave(&self) {
        let inner = self.inner();
        let mut connection = inner.commands.clone();
        let mut pipe = redis::pipe();
        pipe.del(inner.keys.node(&inner.config.node))
            .ignore()
            .srem(&inner.keys.nodes, &inner.config.node)
            .ignore();
        let _ = inner
            .within_timeout("leave", pipe.query_async::<()>(&mut connection))
            .await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
