//! The receiver: the one task that reads this node's Redis messages, in Redis's order,
//! and hands them to the local hub.
//!
//! # Why one task, and the watermark
//!
//! Redis sends a connection's messages in the order it published them, whatever their
//! channels, so one reader sees the cluster's order. An event is published to the channel
//! of its namespace and of every ancestor; a node listening on several of them gets it
//! several times in a row. The receiver delivers the first copy (the hub fans it out to
//! every local subscriber at or above its namespace) and drops the others, and anything
//! else at or below the *watermark*, the newest order key delivered.
//!
//! # Barriers
//!
//! A stream that resumes after an id gets its replay from the shared history, read at
//! some instant. Events published after that instant reach the node as messages; some may
//! already be delivered before the stream is registered. So the opener publishes a token
//! on this process's barrier channel after reading the history, and the receiver
//! registers the stream when the token comes by, joining the replay with the hub's
//! retained events ordered after the history's answer (see
//! [`sse_core::Hub::subscribe_with_replay`]). Every event is in exactly one of the two.
//!
//! # Losing Redis
//!
//! When the connection drops, streams stay open (their keepalives are local). The
//! receiver reconnects with a growing pause, subscribes every needed channel again,
//! then catches up: it reads the shared history after the watermark and delivers what
//! its channels cover, before reading live messages again, so subscribers get what they
//! missed in order. If the history no longer holds the watermark (trimmed meanwhile, or
//! Redis restarted empty), every subscriber gets an `sse-gap` event first.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::PubSubStream;
use redis::Msg;
use sse_core::Gap;

use crate::cluster::Inner;
use crate::message::{self, stream_id_of};

/// The longest pause between two attempts to reach Redis.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// The receiver's own state.
struct Receiver {
    inner: Weak<Inner>,
    /// The newest order key delivered to the hub.
    watermark: u128,
    /// The SSE id of that event, for an `sse-gap` event's `last_event_id`.
    watermark_id: String,
    /// Whether a connection was ever made (the first needs no catching up).
    connected_before: bool,
}

/// Runs until the cluster is dropped.
pub(crate) async fn run(inner: Weak<Inner>) {
    let mut receiver = Receiver {
        inner,
        watermark: 0,
        watermark_id: String::new(),
        connected_before: false,
    };
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(inner) = receiver.inner.upgrade() else {
            return;
        };
        let connected = match receiver.start(&inner).await {
            Ok(()) => match connect(&inner).await {
                Ok(stream) => receiver.catch_up(&inner).await.map(|()| stream),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "Redis not reachable; trying again");
                inner.channels.lose().await;
                drop(inner);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                continue;
            }
        };
        if receiver.connected_before {
            inner.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("reconnected to Redis; caught up from the shared history");
        }
        receiver.connected_before = true;
        inner.counters.connected.store(true, Ordering::Relaxed);
        pause = Duration::from_millis(50);
        drop(inner);
        receiver.read(stream).await;
        let Some(inner) = receiver.inner.upgrade() else {
            return;
        };
        tracing::warn!("lost the connection to Redis; streams stay open while it is back");
        inner.counters.connected.store(false, Ordering::Relaxed);
        inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        inner.channels.lose().await;
    }
}

/// Opens a subscriber connection and subscribes it to everything the node needs.
async fn connect(inner: &Inner) -> Result<PubSubStream, crate::BrokerUnavailable> {
    let pubsub = tokio::time::timeout(inner.config.timeout, inner.client.get_async_pubsub())
        .await
        .map_err(|_| crate::BrokerUnavailable::new("no connection within the timeout"))?
        .map_err(crate::BrokerUnavailable::new)?;
    let (sink, stream) = pubsub.split();
    inner
        .channels
        .install(
            sink,
            std::slice::from_ref(&inner.keys.barrier),
            inner.config.timeout,
        )
        .await?;
    Ok(stream)
}

impl Receiver {
    /// Reads messages until the connection ends.
    async fn read(&mut self, stream: PubSubStream) {
        tokio::pin!(stream);
        while let Some(message) = stream.next().await {
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            self.handle(&inner, &message);
        }
    }

    fn handle(&mut self, inner: &Inner, message: &Msg) {
        if message.get_channel_name() == inner.keys.barrier {
            return register_pending(inner, message.get_payload_bytes());
        }
        match message::parse(message.get_payload_bytes()) {
            Ok(message) => self.deliver(inner, message),
            Err(error) => tracing::warn!(%error, channel = message.get_channel_name(), "skipped"),
        }
    }

    fn deliver(&mut self, inner: &Inner, message: message::Message) {
        if message.order <= self.watermark {
            return;
        }
        let id = message.event.id().unwrap_or_default().to_owned();
        match inner
            .hub
            .deliver(&message.namespace, message.event, message.order)
        {
            Ok(_) => {
                inner.counters.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => tracing::warn!(%error, "an event from Redis could not be encoded"),
        }
        self.watermark = message.order;
        self.watermark_id = id;
    }

    /// Before the first connection, starts the watermark at the history's newest event:
    /// no stream can open before the connection is in place, so nothing older is wanted.
    async fn start(&mut self, inner: &Arc<Inner>) -> Result<(), crate::BrokerUnavailable> {
        if !self.connected_before {
            // The script given no namespace answers nothing but the newest id.
            let newest = inner.replay("", &[]).await?;
            self.watermark = newest.answered_through;
            self.watermark_id = stream_id_of(self.watermark);
        }
        Ok(())
    }

    /// After a reconnection, delivers what the history holds after the watermark (what
    /// the node's channels cover), announcing a gap first if it no longer reaches back to
    /// it. The new connection is already subscribed, so nothing falls between the two.
    async fn catch_up(&mut self, inner: &Arc<Inner>) -> Result<(), crate::BrokerUnavailable> {
        if !self.connected_before {
            return Ok(());
        }
        let after = stream_id_of(self.watermark);
        let replay = inner.replay(&after, &["/"]).await?;
        // An empty history at the start (watermark 0) had nothing to lose.
        if !replay.found && self.watermark != 0 {
            inner.counters.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(after, "the shared history lost events while Redis was away");
            inner.hub.announce_gap(&Gap {
                last_event_id: self.watermark_id.clone(),
                first_retained_id: replay.first_retained.clone(),
            });
        }
        for payload in replay.messages {
            let Ok(message) = message::parse(&payload) else {
                continue;
            };
            let channel_of = |namespace: &str| inner.keys.channel(namespace);
            if inner.channels.covers(channel_of, &message.namespace).await {
                self.deliver(inner, message);
            } else {
                self.watermark = self.watermark.max(message.order);
            }
        }
        Ok(())
    }
}

/// Registers the stream waiting for the barrier token `payload`, if its opener still
/// waits.
fn register_pending(inner: &Inner, payload: &[u8]) {
    let token = String::from_utf8_lossy(payload);
    let pending = inner
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(token.as_ref());
    let Some(pending) = pending else {
        return;
    };
    let registered = inner.hub.subscribe_with_replay(
        &pending.namespaces,
        pending.replay,
        Some(pending.answered_through),
    );
    // The opener may have given up; the subscription then just drops.
    let _ = pending.reply.send(registered);
}
