//! Response bodies: a fixed body, or a live event stream.
//!
//! The event stream decides what a subscriber is written and when. Each time it is polled
//! it takes **every** event queued for the subscriber since the last poll, so a burst costs
//! one chunk and one write rather than one per event. When nothing is queued it writes a
//! keepalive comment if the keepalive sweep marked it due, ends cleanly at shutdown, and
//! otherwise waits for a wake-up.
//!
//! Hyper (HTTP/2, TLS, a service mounted in another application) polls it as an
//! [`http_body::Body`]: a single event's shared bytes go out as they are, several are
//! concatenated into one frame. The server's direct HTTP/1.1 path (`connection.rs`) takes
//! the batch of shared buffers instead and frames it itself.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use sse_core::Subscription;

use crate::streams::{StreamGuard, Streams};

/// The body of every response the service produces.
pub struct SseBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(Box<EventStream>),
}

struct EventStream {
    preamble: Option<Bytes>,
    subscription: Subscription,
    batch: Vec<Bytes>,
    keepalive: Bytes,
    guard: StreamGuard,
    streams: Arc<Streams>,
    ended: bool,
}

impl SseBody {
    /// A body of fixed bytes.
    pub fn full(bytes: impl Into<Bytes>) -> SseBody {
        SseBody {
            kind: Kind::Full(Some(bytes.into())),
        }
    }

    /// An empty body.
    pub fn empty() -> SseBody {
        SseBody {
            kind: Kind::Full(None),
        }
    }

    /// Whether this is a live event stream (rather than fixed bytes).
    pub(crate) fn is_event_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream(_))
    }

    /// The bytes of a fixed body; empty for an event stream.
    pub(crate) fn into_full(self) -> Bytes {
        match self.kind {
            Kind::Full(bytes) => bytes.unwrap_or_default(),
            Kind::Stream(_) => Bytes::new(),
        }
    }

    /// For an event stream, appends the bytes to write next to `out` (without copying
    /// them) and gives `true`, or gives `false` once the stream ended; a fixed body gives
    /// `false` at once.
    pub(crate) fn poll_stream_into(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
    ) -> Poll<bool> {
        match &mut self.kind {
            Kind::Stream(stream) => stream.poll_next_into(cx, out),
            Kind::Full(_) => Poll::Ready(false),
        }
    }

    pub(crate) fn event_stream(
        preamble: Bytes,
        subscription: Subscription,
        keepalive: Bytes,
        guard: StreamGuard,
        streams: Arc<Streams>,
    ) -> SseBody {
        SseBody {
            kind: Kind::Stream(Box::new(EventStream {
                preamble: Some(preamble),
                subscription,
                batch: Vec::new(),
                keepalive,
                guard,
                streams,
                ended: false,
            })),
        }
    }
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => f.debug_tuple("SseBody::Full").field(bytes).finish(),
            Kind::Stream(stream) => f
                .debug_tuple("SseBody::Stream")
                .field(&stream.subscription)
                .finish(),
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(stream) => stream.poll_next_frame(cx).map(|f| f.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(stream) => stream.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

impl EventStream {
    fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let polled = self.poll_next_into(cx, &mut batch);
        let frame = polled.map(|more| more.then(|| Frame::data(concat(&mut batch))));
        self.batch = batch;
        frame
    }

    /// Appends what to write next to `out` (the preamble, every queued event, or a
    /// keepalive) and gives `true`; gives `false` once the stream has ended.
    fn poll_next_into(&mut self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<bool> {
        if self.ended {
            return Poll::Ready(false);
        }
        if let Some(preamble) = self.preamble.take() {
            self.guard.entry.mark_wrote(0);
            self.count_sent(preamble.len());
            out.push(preamble);
            return Poll::Ready(true);
        }
        // Register for keepalive and shutdown wake-ups before looking at the flags, so a
        // wake-up between the look and the registration cannot be lost.
        self.guard.entry.register_waker(cx.waker());
        if self.streams.is_ending() {
            return self.end("the server is shutting down");
        }
        let before = out.len();
        match self.subscription.poll_recv_many(cx, out) {
            Poll::Ready(0) => {
                let reason = self
                    .subscription
                    .close_reason()
                    .map_or_else(|| "closed".to_owned(), |r| r.to_string());
                self.end(&reason)
            }
            Poll::Ready(count) => {
                self.guard.entry.mark_wrote(count);
                self.count_sent(out[before..].iter().map(Bytes::len).sum());
                Poll::Ready(true)
            }
            Poll::Pending => {
                if self.guard.entry.take_keepalive_due() {
                    self.streams.keepalives_sent.fetch_add(1, Ordering::Relaxed);
                    self.count_sent(self.keepalive.len());
                    out.push(self.keepalive.clone());
                    return Poll::Ready(true);
                }
                Poll::Pending
            }
        }
    }

    fn count_sent(&self, bytes: usize) {
        self.streams
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn end(&mut self, reason: &str) -> Poll<bool> {
        tracing::debug!(namespaces = ?self.subscription.namespaces(), reason, "event stream ended");
        self.ended = true;
        Poll::Ready(false)
    }
}

/// One buffer for a batch: the single event's own bytes, or all of them copied together.
fn concat(batch: &mut Vec<Bytes>) -> Bytes {
    if let [_single] = batch.as_slice() {
        return batch.pop().expect("a batch of one has an event to pop");
    }
    let total = batch.iter().map(Bytes::len).sum();
    let mut buffer = BytesMut::with_capacity(total);
    for event in batch.drain(..) {
        buffer.extend_from_slice(&event);
    }
    buffer.freeze()
}
