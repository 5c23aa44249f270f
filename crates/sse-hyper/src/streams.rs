//! The registry of open event streams: the connection limit, keepalives, shutdown, and
//! what the admin status lists.
//!
//! # Keepalives without a timer per connection
//!
//! One background task (see `state.rs`) calls [`Streams::sweep_keepalives`] once
//! per keepalive interval. The sweep visits every open stream: a stream that wrote
//! something since the previous sweep is left alone; an idle one is marked due and woken,
//! and writes one comment line. So the cost per interval is one pass over the registry
//! plus one wake-up per *idle* stream, whatever the number of streams; no per-connection
//! timers exist.
//!
//! # Shutdown
//!
//! [`Streams::end_all`] raises a flag and wakes every stream; each ends its response
//! cleanly (the final chunk, or END_STREAM on HTTP/2) at its next poll.
//!
//! # Token expiry, without a timer either
//!
//! A stream opened with a signed token carries a deadline (the token's `exp` plus the
//! leeway). [`Streams::sweep_expired`], run by the same background task once a second,
//! marks the streams past their deadline and wakes them; each then ends cleanly like at
//! shutdown, and its client reconnects with a fresh token and `Last-Event-ID`. A stream
//! thus ends within a second after its deadline. The sweep returns at once while no open
//! stream has a deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard};
use std::task::Waker;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::sync::Mutex;

/// What is known about a stream when it opens.
#[derive(Debug, Clone)]
pub(crate) struct StreamInfo {
    pub(crate) request_path: String,
    pub(crate) namespaces: Vec<String>,
    pub(crate) client_ip: String,
    pub(crate) user_agent: String,
    /// When the stream's token stops being accepted; `None` for a stream opened without
    /// one.
    pub(crate) expires_at: Option<SystemTime>,
}

/// One open stream as the registry sees it.
#[derive(Debug)]
pub(crate) struct StreamEntry {
    key: u64,
    info: StreamInfo,
    created_at: u64,
    pub(crate) msgs_sent: AtomicU64,
    wrote_since_sweep: AtomicBool,
    keepalive_due: AtomicBool,
    expired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StreamEntry {
    /// Remembers who to wake for a keepalive or shutdown.
    pub(crate) fn register_waker(&self, waker: &Waker) {
        let mut slot = self.waker.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().take() {
            waker.wake();
        }
    }

    /// Records that events went out, so the next sweep skips this stream.
    pub(crate) fn mark_wrote(&self, events: usize) {
        self.msgs_sent.fetch_add(events as u64, Ordering::Relaxed);
        self.wrote_since_sweep.store(true, Ordering::Relaxed);
    }

    /// Whether the stream's token expired, so the stream must end.
    pub(crate) fn is_expired(&self) -> bool {
        self.expired.load(Ordering::Acquire)
    }

    /// Whether a keepalive is due (and clears the flag).
    pub(crate) fn take_keepalive_due(&self) -> bool {
        self.keepalive_due.swap(false, Ordering::AcqRel)
    }
}

/// The registry; shared by the service and the server's background task.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    entries: Mutex<HashMap<u64, Arc<StreamEntry>>>,
    next_key: AtomicU64,
    open: AtomicUsize,
    /// Open streams with a token deadline (the admin status's authenticated streams).
    with_deadline: AtomicUsize,
    ending: AtomicBool,
    pub(crate) opened_total: AtomicU64,
    pub(crate) refused_total: AtomicU64,
    pub(crate) keepalives_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    /// Connections closed because their socket took no bytes for the write timeout
    /// (shared with the connections' write watchers).
    pub(crate) write_timeouts: Arc<AtomicU64>,
}

/// Keeps a stream registered; dropping it unregisters the stream.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    streams: Arc<Streams>,
    pub(crate) entry: Arc<StreamEntry>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.entry.key);
        if self.entry.info.expires_at.is_some() {
            self.streams.with_deadline.fetch_sub(1, Ordering::AcqRel);
        }
        self.streams.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refusal of a stream because `limit` streams are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtLimit {
    pub(crate) limit: usize,
}

/// One stream in the admin status; field names match the classic Go `sseserver` API.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionStatus {
    /// The request path, such as `/subscribe/pets`.
    pub request_path: String,
    /// The subscribed namespaces, comma-separated when several.
    pub namespace: String,
    /// When the stream opened, in seconds since the UNIX epoch.
    pub created_at: u64,
    /// The client's address (`ip:port`), or empty when unknown.
    pub client_ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// Events written to the stream so far.
    pub msgs_sent: u64,
}

impl Streams {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<StreamEntry>>> {
        self.entries.lock()
    }

    /// Registers a stream unless `limit` streams are already open.
    pub(crate) fn open(
        self: &Arc<Self>,
        limit: usize,
        info: StreamInfo,
    ) -> Result<StreamGuard, AtLimit> {
        let reserved = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            });
        if reserved.is_err() {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(AtLimit { limit });
        }
        let entry = Arc::new(StreamEntry {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            info,
            created_at: unix_seconds(SystemTime::now()),
            msgs_sent: AtomicU64::new(0),
            wrote_since_sweep: AtomicBool::new(false),
            keepalive_due: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        if entry.info.expires_at.is_some() {
            self.with_deadline.fetch_add(1, Ordering::AcqRel);
        }
        self.lock().insert(entry.key, Arc::clone(&entry));
        self.opened_total.fetch_add(1, Ordering::Relaxed);
        Ok(StreamGuard {
            streams: Arc::clone(self),
            entry,
        })
    }

    /// How many streams are open.
    pub(crate) fn open_count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Marks every stream that wrote nothing since the last sweep as due for a keepalive
    /// and wakes it.
    pub(crate) fn sweep_keepalives(&self) {
        let idle: Vec<Arc<StreamEntry>> = self
            .lock()
            .values()
            .filter(|entry| !entry.wrote_since_sweep.swap(false, Ordering::AcqRel))
            .cloned()
            .collect();
        for entry in idle {
            entry.keepalive_due.store(true, Ordering::Release);
            entry.wake();
        }
    }

    /// How many open streams were opened with a token.
    pub(crate) fn authenticated_count(&self) -> usize {
        self.with_deadline.load(Ordering::Acquire)
    }

    /// Marks every stream whose token deadline is not after `now` as expired and wakes
    /// it, so it ends cleanly at its next poll.
    pub(crate) fn sweep_expired(&self, now: SystemTime) {
        if self.authenticated_count() == 0 {
            return;
        }
        let expired: Vec<Arc<StreamEntry>> = self
            .lock()
            .values()
            .filter(|entry| {
                entry
                    .info
                    .expires_at
                    .is_some_and(|deadline| deadline <= now)
            })
            .filter(|entry| !entry.expired.swap(true, Ordering::AcqRel))
            .cloned()
            .collect();
        for entry in expired {
            entry.wake();
        }
    }

    /// Ends every open stream (and any opened later) cleanly.
    pub(crate) fn end_all(&self) {
        self.ending.store(true, Ordering::Release);
        let entries: Vec<Arc<StreamEntry>> = self.lock().values().cloned().collect();
        for entry in entries {
            entry.wake();
        }
    }

    /// Whether streams are being ended for shutdown.
    pub(crate) fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// The open streams, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<ConnectionStatus> {
        let entries: Vec<Arc<StreamEntry>> = self.lock().values().cloned().collect();
        let mut list: Vec<(u64, ConnectionStatus)> = entries
            .iter()
            .map(|entry| {
                (
                    entry.key,
                    ConnectionStatus {
                        request_path: entry.info.request_path.clone(),
                        namespace: entry.info.namespaces.join(","),
                        created_at: entry.created_at,
                        client_ip: entry.info.client_ip.clone(),
                        user_agent: entry.info.user_agent.clone(),
                        msgs_sent: entry.msgs_sent.load(Ordering::Relaxed),
                    },
                )
            })
            .collect();
        list.sort_by_key(|(key, _)| *key);
        list.into_iter().map(|(_, status)| status).collect()
    }
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StreamInfo {
        StreamInfo {
            request_path: "/subscribe/a".into(),
            namespaces: vec!["/a".into()],
            client_ip: "127.0.0.1:1".into(),
            user_agent: "test".into(),
            expires_at: None,
        }
    }

    #[test]
    fn the_expiry_sweep_marks_only_streams_past_their_deadline() {
        let streams = Arc::new(Streams::default());
        let now = SystemTime::now();
        let deadline = |at| StreamInfo {
            expires_at: Some(at),
            ..info()
        };
        let anonymous = streams.open(10, info()).unwrap();
        let due = streams.open(10, deadline(now)).unwrap();
        let later = streams
            .open(10, deadline(now + std::time::Duration::from_secs(60)))
            .unwrap();
        assert_eq!(streams.authenticated_count(), 2);
        streams.sweep_expired(now);
        assert!(due.entry.is_expired());
        assert!(!later.entry.is_expired() && !anonymous.entry.is_expired());
        drop(due);
        assert_eq!(streams.authenticated_count(), 1, "freed with the stream");
    }

    #[test]
    fn limit_refuses_the_stream_past_it_and_frees_on_drop() {
        let streams = Arc::new(Streams::default());
        let a = streams.open(2, info()).unwrap();
        let _b = streams.open(2, info()).unwrap();
        let refused = streams.open(2, info()).unwrap_err();
        assert_eq!(refused, AtLimit { limit: 2 });
        drop(a);
        assert!(streams.open(2, info()).is_ok());
        assert_eq!(streams.refused_total.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn sweep_marks_only_idle_streams_due() {
        let streams = Arc::new(Streams::default());
        let busy = streams.open(10, info()).unwrap();
        let idle = streams.open(10, info()).unwrap();
        busy.entry.mark_wrote(3);
        streams.sweep_keepalives();
        assert!(!busy.entry.take_keepalive_due());
        assert!(idle.entry.take_keepalive_due());
        assert!(!idle.entry.take_keepalive_due(), "taking clears the flag");
        // A stream that wrote is idle again by the following sweep.
        streams.sweep_keepalives();
        assert!(busy.entry.take_keepalive_due());
    }

    #[test]
    fn snapshot_lists_streams_oldest_first() {
        let streams = Arc::new(Streams::default());
        let _a = streams.open(10, info()).unwrap();
        let b = streams.open(10, info()).unwrap();
        b.entry.mark_wrote(5);
        let list = streams.snapshot();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].msgs_sent, 5);
        assert_eq!(list[0].namespace, "/a");
    }
}
