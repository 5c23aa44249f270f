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

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::body::SseBody;
use crate::request_body::RequestBody;
use crate::service::SseService;

/// `service`, counting its requests in progress, and the watch that reads the count.
pub(crate) fn track(service: SseService) -> (Tracked, IdleWatch) {
    let (sender, receiver) = watch::channel(0);
    let tracked = Tracked {
        service,
        in_progress: Arc::new(sender),
    };
    (
        tracked,
        IdleWatch {
            in_progress: receiver,
        },
    )
}

/// The service of one connection, counting its requests in progress.
#[derive(Clone)]
pub(crate) struct Tracked {
    service: SseService,
    in_progress: Arc<watch::Sender<usize>>,
}

pub(crate) type TrackedFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl<B: RequestBody> hyper::service::Service<Request<B>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, request: Request<B>) -> Self::Future {
        let in_progress = InProgress::start(&self.in_progress);
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
struct InProgress(Arc<watch::Sender<usize>>);

impl InProgress {
    fn start(count: &Arc<watch::Sender<usize>>) -> InProgress {
        count.send_modify(|count| *count += 1);
        InProgress(Arc::clone(count))
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count -= 1);
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
    in_progress: watch::Receiver<usize>,
}

impl IdleWatch {
    /// Completes when no request was in progress at `first_deadline`, or, after a
    /// request, for `limit` since the last one ended. Never completes once the service is
    /// gone (the connection has ended anyway).
    pub(crate) async fn expired(mut self, first_deadline: Instant, limit: Duration) {
        let mut deadline = first_deadline;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                changed = self.in_progress.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
            // A request started or ended: wait until none is in progress.
            if self
                .in_progress
                .wait_for(|count| *count == 0)
                .await
                .is_err()
            {
                return std::future::pending().await;
            }
            deadline = Instant::now() + limit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Server;

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
        let (tracked, idle) = track(Server::builder().build().service());
        let start = Instant::now();
        let expiry =
            tokio::spawn(idle.expired(start + Duration::from_secs(1), Duration::from_secs(5)));
        let request = Request::get("/healthz")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = tracked.call(request).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !expiry.is_finished(),
            "a response still being sent is not idle"
        );
        drop(response);
        expiry.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }
}
