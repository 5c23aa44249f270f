//! What can go wrong between a node and its Redis.

use std::fmt;

/// Redis could not be reached, or did not answer in time: nothing was published (a
/// publish is one script, so it happened whole or not at all) and no stream opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUnavailable {
    reason: String,
}

impl BrokerUnavailable {
    pub(crate) fn new(reason: impl fmt::Display) -> BrokerUnavailable {
        BrokerUnavailable {
            reason: reason.to_string(),
        }
    }

    /// What happened, for people.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for BrokerUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the cluster's Redis is unavailable: {}", self.reason)
    }
}

impl std::error::Error for BrokerUnavailable {}

/// Why [`Cluster::publish`](crate::Cluster::publish) refused a batch; nothing of it was
/// published.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// Redis could not be reached or did not answer in time.
    Unavailable(BrokerUnavailable),
    /// The event at `index` has a publisher id that a retained event has (its publisher's
    /// id, or its stream id), or that an earlier event of the batch has: ids are unique
    /// while retained.
    DuplicateId {
        /// The event's position in the batch.
        index: usize,
        /// The id asked for.
        id: String,
    },
    /// The event at `index`, encoded for the wire, is larger than the node's hub accepts
    /// ([`Hub::max_event_bytes`](sse_core::Hub::max_event_bytes)); an id Redis is to
    /// assign counts as [`ASSIGNED_ID_BYTES`](crate::ASSIGNED_ID_BYTES) bytes.
    TooLarge {
        /// The event's position in the batch.
        index: usize,
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl From<BrokerUnavailable> for PublishError {
    fn from(error: BrokerUnavailable) -> PublishError {
        PublishError::Unavailable(error)
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Unavailable(error) => error.fmt(f),
            PublishError::DuplicateId { index, id } => write!(
                f,
                "event {index} of the batch: id {id:?} belongs to a retained event or an \
                 earlier event of the batch"
            ),
            PublishError::TooLarge {
                index,
                bytes,
                limit,
            } => write!(
                f,
                "event {index} of the batch is {bytes} bytes on the wire, more than the limit \
                 of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Unavailable(error) => Some(error),
            PublishError::DuplicateId { .. } | PublishError::TooLarge { .. } => None,
        }
    }
}

/// A cluster configuration that cannot work (such as a malformed Redis URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(reason: impl fmt::Display) -> ConfigError {
        ConfigError {
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}
