//! [`WriteTimeout`]: a socket wrapper that fails a write the peer has not taken for too
//! long, so that hyper (HTTP/1.x, HTTP/2, TLS) closes a connection whose client stopped
//! reading instead of holding it, its streams and their buffers forever.
//!
//! The timer exists only while a write is pending: the first `Pending` from the socket
//! arms it (`now + timeout`), any write that takes bytes disarms it. An idle connection,
//! or one whose writes go through, never touches it. Once the deadline passes, the
//! pending write and every later one fail with [`io::ErrorKind::TimedOut`]; hyper then
//! drops the connection, and with it the response bodies, which frees each stream's slot,
//! subscription and status entry.
//!
//! On an HTTP/1.x connection hyper stops polling the response body while its write
//! buffer is full, so a subscription cut off for lagging would wait for the write to
//! finish or time out. [`CutOffs`] lists the subscriptions of the connection's streams;
//! while a write is pending the wrapper watches them too and fails the write as soon as
//! one ended. (On HTTP/2 each stream is polled by its own task, and one stream's lag must
//! not close the others: there the write timeout alone applies.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use sse_core::SubscriptionWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::sync::Mutex;

/// The subscriptions of the event streams an HTTP/1.x connection served; dropped ones
/// are forgotten as new ones come.
#[derive(Debug, Default)]
pub(crate) struct CutOffs {
    watches: Mutex<Vec<SubscriptionWatch>>,
}

impl CutOffs {
    /// Watches the subscription of a stream the connection now serves.
    pub(crate) fn add(&self, watch: SubscriptionWatch) {
        let mut watches = self.watches.lock();
        watches.retain(|watch| !watch.is_dropped());
        watches.push(watch);
    }

    /// Whether a watched subscription has ended; registers `cx` with the live ones. Call
    /// only from the task that polls their streams (hyper's HTTP/1 connection task).
    fn poll_any_ended(&self, cx: &mut Context<'_>) -> bool {
        self.watches
            .lock()
            .iter()
            .any(|watch| matches!(watch.poll_closed(cx), Poll::Ready(Some(_))))
    }
}

/// A socket whose writes fail once one has been pending for `timeout`.
pub(crate) struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    /// The deadline of the pending write; allocated on the first stall and reused.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Set once a write failed for the timeout or a cut-off: every later one fails too.
    timed_out: bool,
    /// Counts the connections closed for the timeout.
    timeouts: Arc<AtomicU64>,
    /// The subscriptions whose end fails a pending write (HTTP/1.x only).
    cut_offs: Option<Arc<CutOffs>>,
}

impl<T> WriteTimeout<T> {
    pub(crate) fn new(io: T, timeout: Duration, timeouts: Arc<AtomicU64>) -> WriteTimeout<T> {
        WriteTimeout {
            io,
            timeout,
            deadline: None,
            armed: false,
            timed_out: false,
            timeouts,
            cut_offs: None,
        }
    }

    /// Also fails a pending write as soon as one of `cut_offs` has ended.
    pub(crate) fn with_cut_offs(mut self, cut_offs: Arc<CutOffs>) -> WriteTimeout<T> {
        self.cut_offs = Some(cut_offs);
        self
    }

    /// What to answer after the socket said `Pending`: still `Pending` (with the timer
    /// armed and polled, so the task wakes at the deadline), or the timeout error.
    fn stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if self
            .cut_offs
            .as_ref()
            .is_some_and(|cut_offs| cut_offs.poll_any_ended(cx))
        {
            self.timed_out = true;
            return Poll::Ready(Err(io::Error::other(
                "a subscriber was cut off while a write to it was pending",
            )));
        }
        let at = Instant::now() + self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if !self.armed {
            deadline.as_mut().reset(at);
            self.armed = true;
        }
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timed_out = true;
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Err(timed_out(self.timeout)))
    }

    /// Passes on what a write gave, arming or disarming the timer.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => self.stalled(cx),
            done => {
                self.armed = false;
                done
            }
        }
    }
}

fn timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the peer took no bytes for {timeout:?}"),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.timed_out {
            return Poll::Ready(Err(timed_out(self.timeout)));
        }
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.timed_out {
            return Poll::Ready(Err(timed_out(self.timeout)));
        }
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.timed_out {
            return Poll::Ready(Err(timed_out(self.timeout)));
        }
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_pending_past_the_timeout_fails_and_is_counted_once() {
        let (near, _far) = tokio::io::duplex(16);
        let timeouts = Arc::new(AtomicU64::new(0));
        let mut io = WriteTimeout::new(near, Duration::from_secs(5), Arc::clone(&timeouts));
        let error = io.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            io.write(&[0]).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert_eq!(timeouts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_keeps_reading_is_never_timed_out() {
        let (near, mut far) = tokio::io::duplex(16);
        let timeouts = Arc::new(AtomicU64::new(0));
        let mut io = WriteTimeout::new(near, Duration::from_secs(5), Arc::clone(&timeouts));
        let reader = tokio::spawn(async move {
            let mut piece = [0; 16];
            let mut total = 0;
            while total < 1024 {
                // Slower than the writer, but each read well within the timeout.
                tokio::time::sleep(Duration::from_secs(4)).await;
                total += far.read(&mut piece).await.unwrap();
            }
        });
        io.write_all(&[0; 1024]).await.unwrap();
        reader.await.unwrap();
        assert_eq!(timeouts.load(Ordering::Relaxed), 0);
    }
}
