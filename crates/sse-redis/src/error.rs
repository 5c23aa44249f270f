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
