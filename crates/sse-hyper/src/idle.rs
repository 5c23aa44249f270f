//! The idle limit of a connection served by hyper: closed when no request has been in
//! progress for a while, whatever the protocol.
//!
//! hyper bounds the wait for an HTTP/1.x request head itself, but its timer starts only
//! when hyper starts reading, and HTTP/2 has no such bound at all: a client could open a
//! connection, send the preface and nothing else, and hold it forever. So the connection
//! module wraps the service in [`Tracked`], which counts the requests in progress (from
//! the call until the response body is dropped), and races the connection against
//! [`IdleWatch::expired`]: the first deadline is the one the connection was given when
//! it was accepted (so a TLS handshake, protocol detection and the first head share one
//! bound), and every time the last request in progress ends, a new one starts at `now +
//! limit`.
//!
//! The count and the time the last request ended are kept under a lock and read only
//! when the deadline's timer fires, which it does at most once per `limit` while
//! requests come and go: a request costs two uncontended locks, and wakes nothing.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use crate::body::SseBody;
use crate::moving_deadline::MovingDeadline;
use crate::request_body::RequestBody;
use crate::service::SseService;
use crate::sync::Mutex;

/// A connection's requests: how many are in progress, and when the last one ended.
#[derive(Debug, Default)]
struct Activity {
    in_progress: usize,
    last_end: Option<Instant>,
}

type SharedActivity = Arc<Mutex<Activity>>;

/// `service`, counting its requests in progress, and the watch that reads the count.
pub(crate) fn track(service: SseService) -> (Tracked, IdleWatch) {
    let activity = SharedActivity::default();
    let tracked = Tracked {
        service,
        activity: Arc::clone(&activity),
    };
    (tracked, IdleWatch { activity })
}

/// The service of one connection, counting its requests in progress.
#[derive(Clone)]
pub(crate) struct Tracked {
    service: SseService,
    activity: SharedActivity,
}

pub(crate) type TrackedFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl<B: RequestBody> hyper::service::Service<Request<B>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, request: Request<B>) -> Self::Future {
        let in_progress = InProgress::start(&self.activity);
        let service = self.service.clone();
        Box::pin(async move {
            let response = service.handle(request).await;
            Ok(response.map(|body| TrackedBody {
                body,
                _in_progress: in_progress,
            }))
        })
    }
}

/// One request in progress; counted until dropped with the response body.
struct InProgress(SharedActivity);

impl InProgress {
    fn start(activity: &SharedActivity) -> InProgress {
        activity.lock().in_progress += 1;
        InProgress(Arc::clone(activity))
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut activity = self.0.lock();
        activity.in_progress -= 1;
        if activity.in_progress == 0 {
            activity.last_end = Some(Instant::now());
        }
    }
}

/// A response body that keeps its request counted as in progress.
pub(crate) struct TrackedBody {
    body: SseBody,
    _in_progress: InProgress,
}

impl TrackedBody {
    /// For an event stream, a handle telling whether its subscription ended.
    pub(crate) fn subscription_watch(&self) -> Option<sse_core::SubscriptionWatch> {
        self.body.subscription_watch()
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Reads how many requests of a connection are in progress.
pub(crate) struct IdleWatch {
    activity: SharedActivity,
}

impl IdleWatch {
    /// Completes when no request was in progress at `first_deadline`, or, after a
    /// request, for `limit` since the last one ended. Never completes once the service is
    /// gone (the connection has ended anyway).
    pub(crate) async fn expired(self, first_deadline: Instant, limit: Duration) {
        let mut deadline = MovingDeadline::new(first_deadline);
        loop {
            deadline.reached().await;
            if Arc::strong_count(&self.activity) == 1 {
                return std::future::pending().await;
            }
            let now = Instant::now();
            let next = {
                let activity = self.activity.lock();
                if activity.in_progress > 0 {
                    // Looked at again once a whole limit has passed.
                    Some(now + limit)
                } else {
                    activity
                        .last_end
                        .map(|end| end + limit)
                        .filter(|&idle_until| idle_until > now)
                }
            };
            match next {
                Some(next) => deadline.set(next),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Server;

    /// A tracked service and its idle watch, the watch expiring from 1 s after `start`,
    /// or 5 s after the last request ended.
    fn watched(start: Instant) -> (Tracked, tokio::task::JoinHandle<()>) {
        let (tracked, idle) = track(Server::builder().build().service());
        let limit = Duration::from_secs(5);
        let expiry = tokio::spawn(idle.expired(start + Duration::from_secs(1), limit));
        (tracked, expiry)
    }

    fn healthz() -> Request<http_body_util::Empty<Bytes>> {
        Request::get("/healthz")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_deadline_holds_until_a_request_starts() {
        let (_tracked, idle) = track(Server::builder().build().service());
        let start = Instant::now();
        idle.expired(start + Duration::from_secs(3), Duration::from_secs(60))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_holds_the_deadline_off_and_its_end_restarts_it() {
        use hyper::service::Service as _;
        let start = Instant::now();
        let (tracked, expiry) = watched(start);
        let response = tracked.call(healthz()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !expiry.is_finished(),
            "a response still being sent is not idle"
        );
        drop(response);
        expiry.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_come_and_go_hold_it_off_until_a_limit_after_the_last() {
        use hyper::service::Service as _;
        let start = Instant::now();
        let (tracked, expiry) = watched(start);
        for at in [500, 4_000] {
            tokio::time::sleep_until(start + Duration::from_millis(at)).await;
            drop(tracked.call(healthz()).await.unwrap());
        }
        tokio::time::timeout(Duration::from_secs(60), expiry)
            .await
            .expect("expired within a minute")
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn it_never_expires_once_the_service_is_gone() {
        let (tracked, expiry) = watched(Instant::now());
        drop(tracked);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!expiry.is_finished());
        expiry.abort();
    }
}
