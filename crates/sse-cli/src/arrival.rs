//! TCP reads that say when their bytes arrived: `ssectl bench` times events from the
//! moment the kernel received them, not from the moment its own thread got round to
//! reading them, so that a busy client does not add its queueing to the latency it
//! reports about the server.
//!
//! On Linux a [`StampedTcp`] turns on `SO_TIMESTAMPNS` and reads with `recvmsg`: with
//! each read the kernel returns the receive time of the newest bytes it copied (TCP
//! keeps the latest time when it merges segments). That time is an upper bound for
//! every byte of the read: events that arrived earlier in the same read are reported
//! at most that much late, never early. Elsewhere, or if the kernel refuses the option,
//! no time is recorded and bench falls back to reading the clock after each read.
//!
//! The time is shared through an [`ArrivalClock`] so that readers above the socket
//! (TLS, hyper's HTTP/2 connection task) can use it: there it is the arrival of the
//! newest bytes read from the socket, again never earlier than the data handed up.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The kernel's arrival time of the newest bytes a [`StampedTcp`] read.
#[derive(Clone, Debug, Default)]
pub struct ArrivalClock(Arc<AtomicU64>);

impl ArrivalClock {
    /// Nanoseconds since the UNIX epoch at which the bytes of the latest read arrived,
    /// or `None` when the latest read carried no kernel time.
    pub fn last_ns(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(ns),
        }
    }

    fn set(&self, ns: Option<u64>) {
        self.0.store(ns.unwrap_or(0), Ordering::Relaxed);
    }
}

/// A TCP stream whose reads record the kernel's arrival time in an [`ArrivalClock`].
#[derive(Debug)]
pub struct StampedTcp {
    tcp: TcpStream,
    clock: ArrivalClock,
    /// Room for the timestamp control message; `None` when the kernel does not stamp
    /// this socket (plain reads then).
    #[cfg(target_os = "linux")]
    control: Option<Box<[u8]>>,
}

impl StampedTcp {
    /// Asks the kernel to stamp what `tcp` receives. If it cannot, reads still work and
    /// [`ArrivalClock::last_ns`] stays `None`.
    pub fn new(tcp: TcpStream) -> StampedTcp {
        #[cfg(target_os = "linux")]
        let control = linux::enable(&tcp).then(linux::control_buffer);
        StampedTcp {
            tcp,
            clock: ArrivalClock::default(),
            #[cfg(target_os = "linux")]
            control,
        }
    }

    /// The clock this stream's reads set (shared: clones see the same time).
    pub fn clock(&self) -> ArrivalClock {
        self.clock.clone()
    }
}

impl AsyncRead for StampedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        #[cfg(target_os = "linux")]
        if let Some(control) = this.control.as_deref_mut() {
            return linux::poll_read(&this.tcp, &this.clock, control, cx, buf);
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSliceMut};
    use std::os::fd::AsRawFd;
    use std::task::{ready, Context, Poll};

    use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
    use nix::sys::time::TimeSpec;
    use tokio::io::{Interest, ReadBuf};
    use tokio::net::TcpStream;

    use super::ArrivalClock;

    /// Turns on `SO_TIMESTAMPNS` for `tcp`; whether the kernel agreed.
    pub(super) fn enable(tcp: &TcpStream) -> bool {
        setsockopt(tcp, sockopt::ReceiveTimestampns, &true).is_ok()
    }

    /// Room for one `SCM_TIMESTAMPNS` control message.
    pub(super) fn control_buffer() -> Box<[u8]> {
        nix::cmsg_space!(TimeSpec).into_boxed_slice()
    }

    /// One read of what `tcp` has, recording its arrival time in `clock`.
    pub(super) fn poll_read(
        tcp: &TcpStream,
        clock: &ArrivalClock,
        control: &mut [u8],
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let fd = tcp.as_raw_fd();
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let room = unfilled.len();
            let mut outcome = None;
            // A read that leaves room in the buffer emptied the socket. Saying
            // "would block" then (the bytes already taken are kept in `outcome`) lets
            // tokio forget the readiness, as its own reads do, instead of costing a
            // second system call that finds nothing. Readiness that came after this
            // read is newer than what is forgotten, so no wake-up is lost.
            let _ = tcp.try_io(Interest::READABLE, || {
                let read = receive(fd, unfilled, control);
                let emptied = matches!(read, Ok((n, _)) if n > 0 && n < room);
                outcome = Some(read);
                if emptied {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            match outcome {
                // Not ready after all (the closure did not run), or nothing to read.
                None => continue,
                Some(Err(error)) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Some(Err(error)) => return Poll::Ready(Err(error)),
                Some(Ok((n, arrived_ns))) => {
                    clock.set(arrived_ns);
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }

    /// `recvmsg` into `into`: the bytes read and their arrival time, if stamped.
    fn receive(
        fd: std::os::fd::RawFd,
        into: &mut [u8],
        control: &mut [u8],
    ) -> io::Result<(usize, Option<u64>)> {
        let mut slices = [IoSliceMut::new(into)];
        let message = recvmsg::<()>(fd, &mut slices, Some(control), MsgFlags::MSG_DONTWAIT)?;
        let mut arrived_ns = None;
        if let Ok(messages) = message.cmsgs() {
            for message in messages {
                if let ControlMessageOwned::ScmTimestampns(time) = message {
                    let seconds = u64::try_from(time.tv_sec()).unwrap_or(0);
                    let nanos = u64::try_from(time.tv_nsec()).unwrap_or(0);
                    arrived_ns = Some(seconds * 1_000_000_000 + nanos);
                }
            }
        }
        Ok((message.bytes, arrived_ns))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn now_ns() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// The time a read reports lies between the write and the read, and bytes are read
    /// whole and in order, across reads larger and smaller than what is waiting.
    #[tokio::test]
    async fn reads_carry_the_kernel_arrival_time_of_their_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut stamped = StampedTcp::new(client);
        let clock = stamped.clock();
        assert_eq!(clock.last_ns(), None);

        // The kernel turns stamping on for the whole system a moment after the first
        // socket asks (deferred work), so the first bytes may arrive unstamped.
        if cfg!(target_os = "linux") {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while clock.last_ns().is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no read was stamped within 10 s"
                );
                server.write_all(b".").await.unwrap();
                let mut byte = [0u8; 1];
                assert_eq!(stamped.read(&mut byte).await.unwrap(), 1);
            }
        }

        let wire: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let mut received = Vec::new();
        for round in wire.chunks(100) {
            let before_write = now_ns();
            server.write_all(round).await.unwrap();
            let mut piece = [0u8; 64];
            let mut got = 0;
            while got < round.len() {
                let n = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    stamped.read(&mut piece),
                )
                .await
                .expect("bytes written were not read within 10 s")
                .unwrap();
                assert!(n > 0, "the stream ended early");
                received.extend_from_slice(&piece[..n]);
                got += n;
                if cfg!(target_os = "linux") {
                    let arrived = clock.last_ns().expect("Linux stamps TCP reads");
                    assert!(
                        arrived >= before_write && arrived <= now_ns(),
                        "arrival {arrived} outside write {before_write}..now"
                    );
                }
            }
        }
        assert_eq!(received, wire);

        drop(server);
        let mut rest = Vec::new();
        stamped.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
