//! The names of the cluster's Redis keys and channels, all below the cluster's name.
//!
//! | name | what |
//! |---|---|
//! | `{c}:history` | stream: the shared history; entry ids are the cluster's order |
//! | `{c}:ids` | hash: publisher-chosen id → stream id, for the ids still retained |
//! | `{c}:seq` | counter: events published, so a lost stretch can be noticed |
//! | `{c}:nodes`, `{c}:node:{name}` | set of node names; each node's heartbeat (with a TTL) |
//! | `{c}:ns:{namespace}` | channel: events published at or below the namespace |
//! | `{c}:barrier:{instance}` | channel: one node process's own marks in its message order |

/// Key and channel names of one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) history: String,
    pub(crate) ids: String,
    pub(crate) seq: String,
    pub(crate) nodes: String,
    pub(crate) channel_prefix: String,
    pub(crate) barrier: String,
    node_prefix: String,
}

impl Keys {
    /// The names for cluster `cluster`, seen from the node process `instance`.
    pub(crate) fn new(cluster: &str, instance: &str) -> Keys {
        Keys {
            history: format!("{cluster}:history"),
            ids: format!("{cluster}:ids"),
            seq: format!("{cluster}:seq"),
            nodes: format!("{cluster}:nodes"),
            channel_prefix: format!("{cluster}:ns:"),
            barrier: format!("{cluster}:barrier:{instance}"),
            node_prefix: format!("{cluster}:node:"),
        }
    }

    /// The channel of events at or below `namespace`.
    pub(crate) fn channel(&self, namespace: &str) -> String {
        format!("{}{namespace}", self.channel_prefix)
    }

    /// The heartbeat key of node `name`.
    pub(crate) fn node(&self, name: &str) -> String {
        format!("{}{name}", self.node_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_lives_below_the_cluster() {
        let keys = Keys::new("shop", "a1");
        assert_eq!(keys.channel("/pets/dogs"), "shop:ns:/pets/dogs");
        assert_eq!(keys.node("edge-1"), "shop:node:edge-1");
        assert_eq!(keys.barrier, "shop:barrier:a1");
        assert_eq!(keys.history, "shop:history");
    }
}
