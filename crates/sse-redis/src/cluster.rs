//! [`Cluster`]: one node's membership in a cluster. It publishes through Redis, opens
//! streams whose replay comes from the shared history, and runs the node's two
//! background tasks (the receiver, see `receiver.rs`; the heartbeat, see
//! `membership.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use sse_core::{Event, Gap, HistoryTooShort, Hub, Namespace, Subscription};
use tokio::sync::oneshot;

use crate::channels::{ChannelLease, Channels};
use crate::config::ClusterConfig;
use crate::error::{BrokerUnavailable, ConfigError, PublishError};
use crate::keys::Keys;
use crate::membership::NodeReport;
use crate::message::{self, order_of};
use crate::stats::{BrokerStats, Counters};

const PUBLISH_SCRIPT: &str = include_str!("lua/publish.lua");
const REPLAY_SCRIPT: &str = include_str!("lua/replay.lua");
/// How often a resume is tried again when this node's history did not reach back to
/// the shared history's answer (the node received a burst meanwhile).
const RESUME_ATTEMPTS: usize = 3;

/// This node's place in a cluster. Cloning is cheap; every clone is the same node.
///
/// ```no_run
/// use sse_core::{Event, Hub, Namespace};
/// use sse_redis::{Cluster, ClusterConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new();
/// let cluster = Cluster::connect(hub, ClusterConfig::new("redis://127.0.0.1:6379").node("a")).await?;
/// let pets = Namespace::parse("/pets")?;
/// let stream = cluster.subscribe(&[pets.clone()], None).await?;
/// // Published on any node of the cluster, delivered by every node to its subscribers.
/// let accepted = cluster.publish(&[(pets, Event::new("Corgi"))]).await?;
/// println!("id {}", accepted[0].id);
/// # drop(stream); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ClusterConfig,
    pub(crate) keys: Keys,
    pub(crate) hub: Hub,
    pub(crate) client: redis::Client,
    pub(crate) commands: ConnectionManager,
    pub(crate) channels: Arc<Channels>,
    pub(crate) pending: Mutex<HashMap<String, PendingStream>>,
    pub(crate) counters: Counters,
    pub(crate) report: Mutex<NodeReport>,
    pub(crate) started_at: SystemTime,
    publish_script: Script,
    replay_script: Script,
    next_token: AtomicU64,
}

/// A stream waiting for its barrier: registered by the receiver when the barrier
/// arrives, so that it joins the message order at a known point.
pub(crate) struct PendingStream {
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) replay: Vec<Bytes>,
    pub(crate) answered_through: u128,
    pub(crate) reply: oneshot::Sender<Result<Subscription, HistoryTooShort>>,
}

/// An event Redis accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its SSE id: the publisher's, or the stream id Redis gave it.
    pub id: String,
    /// Its place in the cluster's order (a Redis stream id).
    pub stream_id: String,
    /// Channel subscriptions that received it: the nodes listening at or above its
    /// namespace, a node counted once per level it listens at.
    pub receivers: u64,
}

/// A stream opened through the cluster: the hub subscription, and the lease that keeps
/// this node listening on its channels while the stream lives.
#[derive(Debug)]
pub struct ClusterSubscription {
    /// Read events from this.
    pub subscription: Subscription,
    /// Keep this as long as the subscription.
    pub lease: ChannelLease,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.inner.config.name)
            .field("node", &self.inner.config.node)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Cluster {
    /// Joins the cluster with `hub` as this node's local hub, and starts the node's
    /// background tasks. Redis need not be up: the node keeps trying, and publishing and
    /// opening streams answer [`BrokerUnavailable`] until it is.
    ///
    /// # Errors
    ///
    /// A malformed Redis URL.
    pub async fn connect(hub: Hub, config: ClusterConfig) -> Result<Cluster, ConfigError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| ConfigError::new(format!("--redis {:?}: {e}", config.url)))?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(std::time::Duration::from_millis(500));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| ConfigError::new(format!("--redis {:?}: {e}", config.url)))?;
        let instance = format!("{}-{:x}", config.node, random_u64());
        let inner = Arc::new(Inner {
            keys: Keys::new(&config.name, &instance),
            config,
            hub,
            client,
            commands,
            channels: Arc::new(Channels::default()),
            pending: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            report: Mutex::new(NodeReport::default()),
            started_at: SystemTime::now(),
            publish_script: Script::new(PUBLISH_SCRIPT),
            replay_script: Script::new(REPLAY_SCRIPT),
            next_token: AtomicU64::new(0),
        });
        tokio::spawn(crate::receiver::run(Arc::downgrade(&inner)));
        tokio::spawn(crate::membership::heartbeat(Arc::downgrade(&inner)));
        Ok(Cluster { inner })
    }

    /// This node's hub: its local subscribers. Publish through [`Cluster::publish`], not
    /// to the hub, or other nodes will not see the event.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The cluster's settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The node's traffic with Redis so far.
    pub fn stats(&self) -> BrokerStats {
        self.inner.counters.snapshot()
    }

    /// Whether the node is connected to Redis and receiving.
    pub fn is_connected(&self) -> bool {
        self.inner.counters.connected.load(Ordering::Relaxed)
    }

    /// Sets what this node's heartbeat announces next.
    pub fn report(&self, report: NodeReport) {
        *self
            .inner
            .report
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = report;
    }

    /// Publishes `events` in order, as one contiguous run of the cluster's order. Each
    /// event must be valid (see [`Event::validate`]). Returns once Redis accepted them.
    ///
    /// # Errors
    ///
    /// Nothing of the batch is published when Redis cannot be reached or does not answer
    /// within the configured timeout ([`PublishError::Unavailable`]), or when a
    /// publisher's id is that of an event the shared history retains, or of an earlier
    /// event of the batch ([`PublishError::DuplicateId`], checked by the script before it
    /// writes anything).
    pub async fn publish(
        &self,
        events: &[(Namespace, Event)],
    ) -> Result<Vec<Accepted>, PublishError> {
        let inner = &self.inner;
        check_sizes(events, inner.hub.max_event_bytes())?;
        let mut invocation = inner.publish_script.prepare_invoke();
        invocation
            .key(&inner.keys.history)
            .key(&inner.keys.ids)
            .key(&inner.keys.seq)
            .arg(inner.config.history_capacity)
            .arg(&inner.keys.channel_prefix)
            .arg(events.len());
        for (namespace, event) in events {
            invocation
                .arg(namespace.as_str())
                .arg(event.id().unwrap_or_default())
                .arg(event.event().unwrap_or_default())
                .arg(event.retry().map(|r| r.to_string()).unwrap_or_default())
                .arg(event.data().unwrap_or_default());
        }
        let started = Instant::now();
        let mut connection = inner.commands.clone();
        let invoked = async {
            match invocation.invoke_async::<Vec<Value>>(&mut connection).await {
                Err(error) if error.code() == Some(DUPLICATE_ID) => Ok(Err(error)),
                answer => answer.map(Ok),
            }
        };
        let reply = match inner.within_timeout("publish", invoked).await? {
            Ok(reply) => reply,
            Err(refusal) => return Err(duplicate_id(events, &refusal)),
        };
        inner.counters.observe_publish(started.elapsed());
        let accepted = accepted(events, &reply).ok_or_else(|| {
            inner.counters.errors.fetch_add(1, Ordering::Relaxed);
            BrokerUnavailable::new("the publish script answered in an unexpected form")
        })?;
        inner
            .counters
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(accepted)
    }

    /// Opens a stream of `namespaces` on this node: once this returns, every event
    /// published anywhere in the cluster at or below them reaches it. With
    /// `last_event_id`, the stream first replays from the shared history what followed
    /// that id (or an `sse-gap` event and everything retained, when the id is no longer
    /// retained), with nothing lost or repeated between the replay and live events.
    ///
    /// # Errors
    ///
    /// [`BrokerUnavailable`] when Redis cannot be reached or does not answer in time.
    pub async fn subscribe(
        &self,
        namespaces: &[Namespace],
        last_event_id: Option<&str>,
    ) -> Result<ClusterSubscription, BrokerUnavailable> {
        let inner = &self.inner;
        let namespaces = Namespace::outermost(namespaces);
        let names: Vec<String> = namespaces
            .iter()
            .map(|namespace| inner.keys.channel(namespace.as_str()))
            .collect();
        inner
            .channels
            .acquire(&names, inner.config.timeout)
            .await
            .inspect_err(|_| {
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
            })?;
        let lease = ChannelLease::new(Arc::clone(&inner.channels), names);
        let subscription = match last_event_id {
            None => inner.hub.subscribe(&namespaces),
            Some(id) => inner.resume(namespaces, id).await?,
        };
        Ok(ClusterSubscription {
            subscription,
            lease,
        })
    }
}

impl Cluster {
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Inner {
    /// Runs a Redis command within the configured timeout, counting failures.
    pub(crate) async fn within_timeout<T>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BrokerUnavailable> {
        match tokio::time::timeout(self.config.timeout, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(BrokerUnavailable::new(format!("{what}: {error}")))
            }
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(BrokerUnavailable::new(format!(
                    "{what}: no answer within {:?}",
                    self.config.timeout
                )))
            }
        }
    }

    /// The shared history's answer for a stream resuming after `last_event_id`.
    pub(crate) async fn replay(
        &self,
        last_event_id: &str,
        namespaces: &[&str],
    ) -> Result<Replay, BrokerUnavailable> {
        let mut invocation = self.replay_script.prepare_invoke();
        invocation
            .key(&self.keys.history)
            .key(&self.keys.ids)
            .arg(last_event_id);
        for namespace in namespaces {
            invocation.arg(*namespace);
        }
        let mut connection = self.commands.clone();
        let reply: Vec<Vec<u8>> = self
            .within_timeout("replay", invocation.invoke_async(&mut connection))
            .await?;
        Replay::parse(reply).ok_or_else(|| {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            BrokerUnavailable::new("the replay script answered in an unexpected form")
        })
    }

    /// Opens a resumed stream: the shared history's replay, then, at a barrier in this
    /// node's message order, the registration that joins it with what arrived meanwhile.
    async fn resume(
        &self,
        namespaces: Vec<Namespace>,
        last_event_id: &str,
    ) -> Result<Subscription, BrokerUnavailable> {
        let texts: Vec<&str> = namespaces.iter().map(Namespace::as_str).collect();
        for _ in 0..RESUME_ATTEMPTS {
            let replay = self.replay(last_event_id, &texts).await?;
            let mut events = Vec::with_capacity(replay.messages.len() + 1);
            if !replay.found {
                events.push(gap_event(&Gap {
                    last_event_id: last_event_id.to_owned(),
                    first_retained_id: replay.first_retained.clone(),
                }));
            }
            for message in &replay.messages {
                match message::parse(message).map(|m| m.event.encode()) {
                    Ok(Ok(encoded)) => events.push(encoded.into_bytes()),
                    _ => tracing::warn!("a history entry not of the cluster's form was skipped"),
                }
            }
            let (reply, registered) = oneshot::channel();
            let token = format!("{}", self.next_token.fetch_add(1, Ordering::Relaxed));
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    token.clone(),
                    PendingStream {
                        namespaces: namespaces.clone(),
                        replay: events,
                        answered_through: replay.answered_through,
                        reply,
                    },
                );
            let registered = self.barrier(&token, registered).await;
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&token);
            match registered? {
                Ok(subscription) => return Ok(subscription),
                Err(HistoryTooShort) => continue,
            }
        }
        Err(BrokerUnavailable::new(
            "events arrived faster than this node's history could hold while resuming",
        ))
    }

    /// Publishes `token` on this node's barrier channel and waits until the receiver
    /// reached it and registered the pending stream.
    async fn barrier(
        &self,
        token: &str,
        registered: oneshot::Receiver<Result<Subscription, HistoryTooShort>>,
    ) -> Result<Result<Subscription, HistoryTooShort>, BrokerUnavailable> {
        let mut connection = self.commands.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(&self.keys.barrier).arg(token);
        let publish = command.query_async::<i64>(&mut connection);
        self.within_timeout("barrier", publish).await?;
        match tokio::time::timeout(self.config.timeout, registered).await {
            Ok(Ok(result)) => Ok(result),
            // Lost with the connection, or not seen in time.
            _ => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(BrokerUnavailable::new(
                    "the stream's barrier did not come back",
                ))
            }
        }
    }
}

/// The replay script's answer (see `lua/replay.lua`).
pub(crate) struct Replay {
    pub(crate) found: bool,
    pub(crate) first_retained: Option<String>,
    pub(crate) answered_through: u128,
    pub(crate) messages: Vec<Vec<u8>>,
}

impl Replay {
    fn parse(mut reply: Vec<Vec<u8>>) -> Option<Replay> {
        if reply.len() < 3 {
            return None;
        }
        let messages = reply.split_off(3);
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
        let first = text(&reply[1])?;
        Some(Replay {
            found: reply[0] == b"1",
            first_retained: (!first.is_empty()).then_some(first),
            answered_through: order_of(&text(&reply[2])?)?,
            messages,
        })
    }
}

/// The `sse-gap` event that tells a client it may have missed events.
pub(crate) fn gap_event(gap: &Gap) -> Bytes {
    Event::new(gap.to_json())
        .with_event(Gap::EVENT_TYPE)
        .encode()
        .expect("a gap event has a fixed valid type and no id")
        .into_bytes()
}

/// The code of the publish script's error reply for a publisher id in use.
const DUPLICATE_ID: &str = "DUPLICATE_ID";

/// The refusal the publish script's `DUPLICATE_ID <index>` reply stands for.
fn duplicate_id(events: &[(Namespace, Event)], refusal: &redis::RedisError) -> PublishError {
    let index = refusal
        .detail()
        .and_then(|detail| detail.split_whitespace().next()?.parse::<usize>().ok());
    match index.and_then(|index| Some((index, events.get(index)?.1.id()?))) {
        Some((index, id)) => PublishError::DuplicateId {
            index,
            id: id.to_owned(),
        },
        None => PublishError::Unavailable(BrokerUnavailable::new(format!(
            "the publish script refused with an unexpected reply: {refusal}"
        ))),
    }
}

/// Pairs the publish script's flat answer (stream id, receivers, ...) with the events.
fn accepted(events: &[(Namespace, Event)], reply: &[Value]) -> Option<Vec<Accepted>> {
    if reply.len() != events.len() * 2 {
        return None;
    }
    events
        .iter()
        .zip(reply.chunks(2))
        .map(|((_, event), pair)| {
            let stream_id: String = redis::from_redis_value_ref(&pair[0]).ok()?;
            let receivers: u64 = redis::from_redis_value_ref(&pair[1]).ok()?;
            Some(Accepted {
                id: event.id().map_or_else(|| stream_id.clone(), str::to_owned),
                stream_id,
                receivers,
            })
        })
        .collect()
}

/// A number to tell this node process apart from a previous one with the same name.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The bytes an id that Redis assigns (a stream id, `<milliseconds>-<sequence>`) counts
/// for when an event's encoded size is checked before Redis sees it.
pub const ASSIGNED_ID_BYTES: usize = 20;

/// Refuses the batch when an event, encoded as nodes will send it, is larger than
/// `limit`: the same bound a single node applies, checked before anything reaches Redis.
fn check_sizes(events: &[(Namespace, Event)], limit: usize) -> Result<(), PublishError> {
    for (index, (_, event)) in events.iter().enumerate() {
        // An invalid field is the publish script's and the hub's to refuse, as before.
        let Ok(encoded) = event.encode() else {
            continue;
        };
        // The id Redis assigns goes on the wire as one more `id: ...` line.
        let assigned = match event.id() {
            Some(_) => 0,
            None => "id: \n".len() + ASSIGNED_ID_BYTES,
        };
        let bytes = encoded.len() + assigned;
        if bytes > limit {
            return Err(PublishError::TooLarge {
                index,
                bytes,
                limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event without an id is measured with the id Redis will give it, exactly as if
    /// it were encoded with one of `ASSIGNED_ID_BYTES` bytes.
    #[test]
    fn an_assigned_id_counts_as_its_line_on_the_wire() {
        let namespace = Namespace::parse("/a").unwrap();
        let anonymous = Event::new("payload");
        let placeholder = "0".repeat(ASSIGNED_ID_BYTES);
        let on_the_wire = anonymous
            .clone()
            .with_id(placeholder)
            .encode()
            .unwrap()
            .len();
        let batch = [(namespace, anonymous)];
        assert!(check_sizes(&batch, on_the_wire).is_ok());
        match check_sizes(&batch, on_the_wire - 1) {
            Err(PublishError::TooLarge {
                index: 0, bytes, ..
            }) => assert_eq!(bytes, on_the_wire),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
