//! Which channels this node listens on, counted by the streams that need them.
//!
//! A stream of `/pets` needs the channel of `/pets`; the first such stream subscribes
//! the node, the last to go unsubscribes it, so a node receives only what its own
//! subscribers need. Subscribing and unsubscribing happen under one lock, in turn, and a
//! stream's channels are confirmed by Redis before the stream opens: from then on, every
//! event published at or below its namespaces reaches this node.
//!
//! After a reconnection every counted channel is subscribed again on the new connection
//! ([`Channels::install`]) before messages are read from it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::PubSubSink;
use sse_core::Namespace;

use crate::error::BrokerUnavailable;

/// The counted channels and the connection they are subscribed on.
#[derive(Default)]
pub(crate) struct Channels {
    table: tokio::sync::Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// The subscribing half of the current connection; `None` while Redis is lost.
    sink: Option<PubSubSink>,
    /// Channel name → streams that need it.
    counts: HashMap<String, usize>,
}

impl Channels {
    /// Counts `names` as needed by one more stream, subscribing those that are new.
    /// Returns once Redis confirmed them.
    pub(crate) async fn acquire(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), BrokerUnavailable> {
        let mut table = self.table.lock().await;
        let Some(sink) = table.sink.clone() else {
            return Err(BrokerUnavailable::new("not connected"));
        };
        let new: Vec<&String> = names
            .iter()
            .filter(|name| !table.counts.contains_key(*name))
            .collect();
        if !new.is_empty() {
            let mut sink = sink;
            match tokio::time::timeout(timeout, sink.subscribe(&new)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(BrokerUnavailable::new(error)),
                Err(_) => {
                    return Err(BrokerUnavailable::new(
                        "SUBSCRIBE was not confirmed in time",
                    ))
                }
            }
        }
        for name in names {
            *table.counts.entry(name.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Counts one stream fewer for `names`, unsubscribing those no stream needs.
    pub(crate) async fn release(&self, names: &[String]) {
        let mut table = self.table.lock().await;
        let mut unused = Vec::new();
        for name in names {
            if let Some(count) = table.counts.get_mut(name) {
                *count -= 1;
                if *count == 0 {
                    table.counts.remove(name);
                    unused.push(name.clone());
                }
            }
        }
        if let (false, Some(mut sink)) = (unused.is_empty(), table.sink.clone()) {
            // Failing is harmless: a later reconnection subscribes only counted channels.
            if let Err(error) = sink.unsubscribe(&unused).await {
                tracing::debug!(%error, "UNSUBSCRIBE failed");
            }
        }
    }

    /// Puts a new connection in place: subscribes it to `own` (the node's private
    /// channels) and to every counted channel, and only then uses it.
    pub(crate) async fn install(
        &self,
        mut sink: PubSubSink,
        own: &[String],
        timeout: Duration,
    ) -> Result<(), BrokerUnavailable> {
        let mut table = self.table.lock().await;
        let names: Vec<&String> = own.iter().chain(table.counts.keys()).collect();
        match tokio::time::timeout(timeout, sink.subscribe(&names)).await {
            Ok(Ok(())) => {
                table.sink = Some(sink);
                Ok(())
            }
            Ok(Err(error)) => Err(BrokerUnavailable::new(error)),
            Err(_) => Err(BrokerUnavailable::new(
                "SUBSCRIBE was not confirmed in time",
            )),
        }
    }

    /// Forgets the connection (it was lost); streams keep their counts.
    pub(crate) async fn lose(&self) {
        self.table.lock().await.sink = None;
    }

    /// Whether an event published to `namespace` reaches a channel that is counted.
    pub(crate) async fn covers(
        &self,
        channel_of: impl Fn(&str) -> String,
        namespace: &Namespace,
    ) -> bool {
        let table = self.table.lock().await;
        namespace
            .self_and_ancestors()
            .any(|name| table.counts.contains_key(&channel_of(name)))
    }
}

/// Keeps a stream's channels counted; dropping it releases them (in a task, since
/// unsubscribing waits for Redis).
pub struct ChannelLease {
    channels: Arc<Channels>,
    names: Vec<String>,
}

impl ChannelLease {
    pub(crate) fn new(channels: Arc<Channels>, names: Vec<String>) -> ChannelLease {
        ChannelLease { channels, names }
    }
}

impl std::fmt::Debug for ChannelLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChannelLease").field(&self.names).finish()
    }
}

impl Drop for ChannelLease {
    fn drop(&mut self) {
        let (channels, names) = (Arc::clone(&self.channels), std::mem::take(&mut self.names));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { channels.release(&names).await });
            }
            // Without a runtime the channels stay counted: the node receives a little
            // more than it needs, and loses nothing.
            Err(_) => tracing::debug!(?names, "channels not released: no runtime"),
        }
    }
}
