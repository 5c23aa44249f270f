//! Response bodies: a fixed body, or a live event stream.
//!
//! The event stream decides what a subscriber is written and when. Each time it is polled
//! it takes **every** event queued for the subscriber since the last poll, so a burst costs
//! one chunk and one write rather than one per event. When nothing is queued it writes a
//! keepalive comment if the keepalive sweep marked it due, ends cleanly at shutdown, and
//! otherwise waits for a wake-up.
//!
//! Hyper (HTTP/2, TLS, a service mounted in another application) polls it as an
//! [`http_body::Body`]: a large event's shared bytes go out as they are, small ones are
//! concatenated into frames of at most [`FRAME_BYTES`], so a frame copies a bounded amount
//! whatever the batch (hyper polls for the next frame only when it has room for it). The
//! server's direct HTTP/1.1 path (`connection.rs`) takes the batch of shared buffers
//! instead and frames it itself.
//!
//! A batch is bounded too: a replay arrives in pieces of bounded size, and the events
//! queued for a subscriber are bounded by the hub's queue bytes.

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

/// Small events are concatenated into frames of at most this many bytes for hyper.
const FRAME_BYTES: usize = 64 * 1024;

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
    /// The events taken for hyper; those from `framed` on are still to be framed.
    batch: Vec<Bytes>,
    framed: usize,
    keepalive: Bytes,
    guard: StreamGuard,
    streams: Arc<Streams>,
    ended: bool,
    /// Whatever must live as long as the stream (a cluster's channel lease).
    _held: Option<Box<dyn std::any::Any + Send>>,
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

    /// Ready once the stream's subscription has ended (cut off for lagging, or the hub
    /// closed), whatever is still to be written; never for a fixed body. A writer stuck
    /// on a socket polls this to give up at once on a subscriber that was cut off.
    pub(crate) fn poll_cut_off(&mut self, cx: &mut Context<'_>) -> Poll<sse_core::CloseReason> {
        match &self.kind {
            Kind::Stream(stream) => stream.subscription.poll_closed(cx),
            Kind::Full(_) => Poll::Pending,
        }
    }

    /// For an event stream, a handle telling whether its subscription ended.
    pub(crate) fn subscription_watch(&self) -> Option<sse_core::SubscriptionWatch> {
        match &self.kind {
            Kind::Stream(stream) => Some(stream.subscription.watch()),
            Kind::Full(_) => None,
        }
    }

    pub(crate) fn event_stream(
        preamble: Bytes,
        subscription: Subscription,
        keepalive: Bytes,
        guard: StreamGuard,
        streams: Arc<Streams>,
        held: Option<Box<dyn std::any::Any + Send>>,
    ) -> SseBody {
        SseBody {
            kind: Kind::Stream(Box::new(EventStream {
                preamble: Some(preamble),
                subscription,
                batch: Vec::new(),
                framed: 0,
                keepalive,
                guard,
                streams,
                ended: false,
                _held: held,
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
        if self.framed == self.batch.len() {
            let mut batch = std::mem::take(&mut self.batch);
            batch.clear();
            self.framed = 0;
            let polled = self.poll_next_into(cx, &mut batch);
            self.batch = batch;
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(false) => return Poll::Ready(None),
                Poll::Ready(true) => {}
            }
        }
        let (frame, taken) = next_frame(&self.batch[self.framed..]);
        self.framed += taken;
        Poll::Ready(Some(Frame::data(frame)))
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
        if self.guard.entry.is_expired() {
            return self.end("its token expired");
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

/// The next frame of a batch and how many events it holds: the first event's own bytes
/// when it comes alone (one event, or one too large to join others), else as many events
/// as fit in [`FRAME_BYTES`] copied together.
fn next_frame(rest: &[Bytes]) -> (Bytes, usize) {
    let mut taken = 0;
    let mut total = 0;
    for event in rest {
        if taken > 0 && total + event.len() > FRAME_BYTES {
            break;
        }
        taken += 1;
        total += event.len();
    }
    if taken <= 1 {
        return (rest.first().cloned().unwrap_or_default(), 1);
    }
    let mut buffer = BytesMut::with_capacity(total);
    for event in &rest[..taken] {
        buffer.extend_from_slice(event);
    }
    (buffer.freeze(), taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::StreamInfo;
    use sse_core::{Event, Hub, Namespace};
    use std::task::{Wake, Waker};

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct Fixture {
        hub: Hub,
        streams: Arc<Streams>,
        body: SseBody,
        wakes: Arc<CountingWaker>,
        waker: Waker,
    }

    const PREAMBLE: &[u8] = b": ok\n\n";
    const KEEPALIVE: &[u8] = b": keepalive\n\n";

    fn fixture(queue_capacity: usize) -> Fixture {
        let hub = Hub::builder().queue_capacity(queue_capacity).build();
        let streams = Arc::new(Streams::default());
        let info = StreamInfo {
            request_path: "/subscribe/a".into(),
            namespaces: vec!["/a".into()],
            client_ip: String::new(),
            user_agent: String::new(),
            expires_at: Some(std::time::SystemTime::UNIX_EPOCH),
        };
        let guard = streams.open(10, info).unwrap();
        let body = SseBody::event_stream(
            Bytes::from_static(PREAMBLE),
            hub.subscribe(&[ns()]),
            Bytes::from_static(KEEPALIVE),
            guard,
            Arc::clone(&streams),
            None,
        );
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&wakes));
        Fixture {
            hub,
            streams,
            body,
            wakes,
            waker,
        }
    }

    fn ns() -> Namespace {
        Namespace::parse("/a").unwrap()
    }

    impl Fixture {
        fn poll(&mut self) -> Poll<Option<Vec<Bytes>>> {
            let mut out = Vec::new();
            let mut cx = Context::from_waker(&self.waker);
            self.body
                .poll_stream_into(&mut cx, &mut out)
                .map(|more| more.then_some(out))
        }

        fn publish(&self, data: &str) {
            self.hub.publish(&ns(), Event::new(data)).unwrap();
        }

        fn wakes(&self) -> usize {
            self.wakes.0.load(Ordering::SeqCst)
        }

        /// Drains the preamble, then leaves the stream waiting.
        fn opened(mut self) -> Fixture {
            assert_eq!(
                self.poll(),
                Poll::Ready(Some(vec![Bytes::from_static(PREAMBLE)]))
            );
            assert_eq!(self.poll(), Poll::Pending);
            self
        }
    }

    #[test]
    fn the_preamble_comes_first_even_when_events_are_queued() {
        let mut stream = fixture(8);
        stream.publish("early");
        assert_eq!(
            stream.poll(),
            Poll::Ready(Some(vec![Bytes::from_static(PREAMBLE)]))
        );
        let Poll::Ready(Some(batch)) = stream.poll() else {
            panic!("the queued event follows the preamble")
        };
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn every_queued_event_goes_out_in_one_batch_after_one_wake_up() {
        let mut stream = fixture(8).opened();
        for data in ["1", "2", "3"] {
            stream.publish(data);
        }
        assert_eq!(
            stream.wakes(),
            1,
            "the first event wakes the stream, the rest queue"
        );
        let Poll::Ready(Some(batch)) = stream.poll() else {
            panic!("events were queued")
        };
        assert_eq!(batch.len(), 3);
        assert_eq!(stream.poll(), Poll::Pending);
    }

    #[test]
    fn an_idle_stream_writes_a_keepalive_only_when_the_sweep_marks_it() {
        let mut stream = fixture(8).opened();
        // Writing the preamble counts as activity: the first sweep passes the stream by.
        stream.streams.sweep_keepalives();
        assert_eq!(stream.wakes(), 0, "a stream that just opened is not idle");
        stream.streams.sweep_keepalives();
        assert_eq!(stream.wakes(), 1, "the next sweep wakes the idle stream");
        assert_eq!(
            stream.poll(),
            Poll::Ready(Some(vec![Bytes::from_static(KEEPALIVE)]))
        );
        assert_eq!(stream.streams.keepalives_sent.load(Ordering::Relaxed), 1);
        assert_eq!(stream.poll(), Poll::Pending, "one keepalive per mark");
    }

    #[test]
    fn a_stream_that_wrote_since_the_last_sweep_gets_no_keepalive() {
        let mut stream = fixture(8).opened();
        stream.publish("busy");
        assert!(matches!(stream.poll(), Poll::Ready(Some(_))));
        stream.streams.sweep_keepalives();
        assert_eq!(stream.poll(), Poll::Pending);
    }

    #[test]
    fn shutdown_wakes_the_stream_and_ends_it() {
        let mut stream = fixture(8).opened();
        stream.streams.end_all();
        assert_eq!(stream.wakes(), 1);
        assert_eq!(stream.poll(), Poll::Ready(None));
        assert!(stream.body.is_end_stream());
        assert_eq!(
            stream.poll(),
            Poll::Ready(None),
            "an ended stream stays ended"
        );
    }

    #[test]
    fn the_expiry_sweep_wakes_the_stream_and_ends_it() {
        let mut stream = fixture(8).opened();
        stream.publish("queued before the end");
        let wakes = stream.wakes();
        stream.streams.sweep_expired(std::time::SystemTime::now());
        assert_eq!(stream.wakes(), wakes + 1, "the sweep wakes the stream");
        assert_eq!(stream.poll(), Poll::Ready(None));
        assert!(stream.body.is_end_stream());
    }

    #[test]
    fn a_subscriber_cut_off_for_lagging_ends_after_what_it_was_sent() {
        let mut stream = fixture(2).opened();
        for data in ["1", "2", "3"] {
            stream.publish(data);
        }
        assert_eq!(stream.hub.stats().lagged_cutoffs, 1);
        assert_eq!(stream.poll(), Poll::Ready(None));
    }

    #[test]
    fn hyper_gets_one_event_as_is_and_several_as_one_frame() {
        let mut stream = fixture(8).opened();
        stream.publish("one");
        let mut cx = Context::from_waker(&stream.waker);
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut stream.body).poll_frame(&mut cx) else {
            panic!("a frame")
        };
        let one = frame.into_data().unwrap();
        assert!(one.ends_with(b"data: one\n\n"), "{one:?}");
        stream.publish("two");
        stream.publish("three");
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut stream.body).poll_frame(&mut cx) else {
            panic!("a frame")
        };
        let both = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
        let two = both.find("data: two\n\n").expect("the first event");
        let three = both.find("data: three\n\n").expect("the second event");
        assert!(two < three && both.ends_with("data: three\n\n"), "{both:?}");
    }

    #[test]
    fn hyper_frames_copy_at_most_a_bounded_amount_and_large_events_go_as_they_are() {
        let small = Bytes::from(vec![b's'; FRAME_BYTES / 4]);
        let large = Bytes::from(vec![b'l'; FRAME_BYTES * 2]);
        let batch = vec![small.clone(); 6]
            .into_iter()
            .chain([large.clone(), small.clone()])
            .collect::<Vec<_>>();
        let mut framed = 0;
        let mut frames = Vec::new();
        while framed < batch.len() {
            let (frame, taken) = next_frame(&batch[framed..]);
            framed += taken;
            frames.push((frame, taken));
        }
        let sizes: Vec<usize> = frames.iter().map(|(frame, _)| frame.len()).collect();
        assert_eq!(
            sizes,
            [
                FRAME_BYTES,
                FRAME_BYTES / 2,
                FRAME_BYTES * 2,
                FRAME_BYTES / 4
            ]
        );
        assert_eq!(
            frames[2].0.as_ptr(),
            large.as_ptr(),
            "the large event is shared, not copied"
        );
    }

    #[test]
    fn a_fixed_body_is_one_frame_of_known_size() {
        let mut body = SseBody::full("ok\n");
        assert_eq!(body.size_hint().exact(), Some(3));
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("a frame")
        };
        assert_eq!(frame.into_data().unwrap(), "ok\n");
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }
}
