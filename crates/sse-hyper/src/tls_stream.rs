//! [`TlsStream`]: the server side of a TLS connection, over rustls's unbuffered API, whose
//! buffers exist only while bytes wait.
//!
//! rustls's buffered `ServerConnection` keeps a read buffer of at least 4 KiB for the
//! connection's whole life. For a hub holding tens of thousands of idle event streams that
//! was the largest part of what TLS added to each, so this stream owns no buffer while
//! nothing waits:
//!
//! - Bytes are read from the socket into a buffer shared per thread, behind what is kept
//!   of an incomplete record from the read before; the complete records are decrypted
//!   there, and only the start of the next one (none, most of the time) is kept.
//! - Plaintext is encrypted into another buffer shared per thread and written to the
//!   socket at once; only the ciphertext the socket did not take is kept, until it does.
//! - Decrypted plaintext the reader had no room for is kept until it is read.
//! - What rustls has to send by itself (the handshake, session tickets, a key update's
//!   answer, alerts) is queued with the ciphertext and goes out with the next write or
//!   flush, or at once when the socket takes it.
//!
//! A write takes at most [`MAX_PLAINTEXT_PER_WRITE`] bytes (one record), and none while
//! ciphertext of an earlier one still waits for the socket: a client that stops reading
//! costs at most one record here, and the write timeout of the socket below
//! ([`WriteTimeout`](crate::write_timeout::WriteTimeout)) applies as to any write.
//!
//! The client's close_notify reads as the end of the stream; shutting the stream down
//! sends ours. A socket closed without close_notify between records also reads as the
//! end (HTTP delimits its messages itself); one closed inside a record is an error. When
//! rustls fails the connection, the alert it chose is written if the socket takes it at
//! once, and every later read and write fails.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    ReadTraffic, UnbufferedStatus,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most plaintext one write takes: the largest TLS record's payload.
pub(crate) const MAX_PLAINTEXT_PER_WRITE: usize = 16 * 1024;
/// How many bytes one read asks the socket for, after the incomplete record kept: room
/// for the largest record TLS 1.2 allows on the wire (18 437 bytes), and a few small ones.
const READ_BYTES: usize = 32 * 1024;
/// Room for one record's ciphertext: its payload, header, tag and padding, and something
/// rustls queued in front (a key update). A record that needs more grows the buffer.
const SEAL_BYTES: usize = MAX_PLAINTEXT_PER_WRITE + 1024;
/// Room for a close_notify alert (one small record); more grows it.
const CLOSE_NOTIFY_BYTES: usize = 64;
/// How many alerts and other messages rustls may queue when it fails a connection.
const MAX_ALERT_MESSAGES: usize = 8;

thread_local! {
    /// Where socket bytes are read and decrypted: shared per thread, so that an idle
    /// connection holds no read buffer.
    static READ_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Where plaintext is encrypted before the socket takes it.
    static SEAL_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A TLS server connection over `io`, after its handshake ([`accept`]).
pub(crate) struct TlsStream<IO> {
    io: IO,
    session: UnbufferedServerConnection,
    /// Bytes read and not processed: the start of a record not complete yet (during the
    /// handshake, maybe more: rustls keeps a handshake message spanning records here
    /// until it is whole). Empty, with no allocation, between records.
    incoming: Vec<u8>,
    /// Ciphertext the socket has not taken yet; freed once it has.
    outgoing: Vec<u8>,
    /// Decrypted plaintext not read yet, from `plaintext_read` on; freed once read.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// The client sent close_notify (or the socket ended between records): reads end.
    read_closed: bool,
    /// Our close_notify was queued: writes fail.
    write_closed: bool,
    /// rustls failed the connection: every read and write fails.
    failed: bool,
}

/// Handshakes a TLS server connection over `io` with `config`: `Ready` once the client's
/// Finished is in and everything the server had to send (session tickets included) was
/// taken by the socket. The caller bounds it in time.
pub(crate) async fn accept<IO>(config: &Arc<ServerConfig>, io: IO) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let session = UnbufferedServerConnection::new(Arc::clone(config)).map_err(tls_error)?;
    let mut stream = TlsStream {
        io,
        session,
        incoming: Vec::new(),
        outgoing: Vec::new(),
        plaintext: Vec::new(),
        plaintext_read: 0,
        read_closed: false,
        write_closed: false,
        failed: false,
    };
    std::future::poll_fn(|cx| stream.poll_handshake(cx)).await?;
    Ok(stream)
}

impl<IO> TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// The protocol the client and server agreed on through ALPN, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_flush_outgoing(cx))?;
            if !self.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.read_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed during the TLS handshake",
                )));
            }
            ready!(self.poll_read_records(cx, None))?;
        }
    }

    /// Reads from the socket once and processes what came, with plaintext going to `out`
    /// as far as it has room (the rest to `plaintext`). `Pending` when the socket had
    /// nothing.
    fn poll_read_records(
        &mut self,
        cx: &mut Context<'_>,
        out: Option<&mut ReadBuf<'_>>,
    ) -> Poll<io::Result<()>> {
        let processed = READ_SCRATCH.with_borrow_mut(|scratch| {
            let kept = self.incoming.len();
            let end = kept + READ_BYTES;
            if scratch.len() < end {
                scratch.resize(end, 0);
            }
            scratch[..kept].copy_from_slice(&self.incoming);
            let mut read = ReadBuf::new(&mut scratch[kept..end]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let read = read.filled().len();
            if read == 0 {
                return Poll::Ready(self.socket_ended());
            }
            Poll::Ready(self.process(&mut scratch[..kept + read], out))
        });
        if let Poll::Ready(Err(_)) = processed {
            // Whatever alert rustls queued goes out if the socket takes it now.
            let _ = self.poll_flush_outgoing(cx);
        }
        processed
    }

    /// The socket gave its end: the stream's end, unless a record was cut short.
    fn socket_ended(&mut self) -> io::Result<()> {
        self.read_closed = true;
        if self.incoming.is_empty() {
            Ok(())
        } else {
            self.incoming = Vec::new();
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection inside a TLS record",
            ))
        }
    }

    /// Processes the complete records at the front of `bytes`: plaintext to `out` as far
    /// as it has room and the rest to `plaintext`, what rustls sends to `outgoing`. Keeps
    /// the bytes not processed (an incomplete record) in `incoming`.
    fn process(&mut self, bytes: &mut [u8], mut out: Option<&mut ReadBuf<'_>>) -> io::Result<()> {
        let mut start = 0;
        let processed = loop {
            let UnbufferedStatus { discard, state } =
                self.session.process_tls_records(&mut bytes[start..]);
            let stop = match state {
                Ok(ConnectionState::ReadTraffic(traffic)) => {
                    let plaintext = (&mut self.plaintext, out.as_deref_mut());
                    take_plaintext(traffic, plaintext).map(|()| false)
                }
                Ok(ConnectionState::EncodeTlsData(data)) => {
                    encode(data, &mut self.outgoing).map(|()| false)
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // Queued in `outgoing`, which goes out before any later ciphertext.
                    transmit.done();
                    Ok(false)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.read_closed = true;
                    Ok(false)
                }
                Ok(ConnectionState::Closed) => {
                    self.read_closed = true;
                    Ok(true)
                }
                // More bytes are needed: the rest is an incomplete record.
                Ok(ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_)) => {
                    Ok(true)
                }
                Ok(ConnectionState::ReadEarlyData(_)) => {
                    Err(invalid("early data arrived, which the server does not accept"))
                }
                Ok(other) => Err(invalid(format!("unexpected TLS state {other:?}"))),
                Err(error) => Err(self.fail(error)),
            };
            start += discard;
            match stop {
                Ok(false) => {}
                Ok(true) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        let rest = &bytes[start..];
        if processed.is_err() || self.read_closed || rest.is_empty() {
            // Bytes after the client's close_notify are not for anyone.
            self.incoming = Vec::new();
        } else if rest.len() != self.incoming.len() || rest != self.incoming {
            self.incoming = rest.to_vec();
        }
        if processed.is_err() {
            self.failed = true;
        }
        processed
    }

    /// rustls failed the connection: queues the alerts it chose, and gives the error.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        self.failed = true;
        for _ in 0..MAX_ALERT_MESSAGES {
            let UnbufferedStatus { state, .. } = self.session.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(data)) => {
                    if encode(data, &mut self.outgoing).is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    break;
                }
                _ => break,
            }
        }
        tls_error(error)
    }

    /// Writes the ciphertext waiting in `outgoing`: `Ready` once the socket took all of
    /// it (and the buffer is freed).
    fn poll_flush_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut written = 0;
        let flushed = loop {
            if written == self.outgoing.len() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.outgoing[written..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(count)) => written += count,
                Poll::Ready(Err(error)) => break Poll::Ready(Err(error)),
                Poll::Pending => break Poll::Pending,
            }
        };
        if written == self.outgoing.len() {
            self.outgoing = Vec::new();
        } else if written > 0 {
            self.outgoing = self.outgoing[written..].to_vec();
        }
        flushed
    }

    /// Encrypts `plaintext` (one record at most) into `sealed`, giving its length; what
    /// rustls had queued to send first goes to `outgoing`.
    fn seal(&mut self, plaintext: &[u8], sealed: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let UnbufferedStatus { state, .. } = self.session.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    if sealed.len() < SEAL_BYTES {
                        sealed.resize(SEAL_BYTES, 0);
                    }
                    return match traffic.encrypt(plaintext, sealed) {
                        Err(EncryptError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => {
                            sealed.resize(required_size, 0);
                            traffic.encrypt(plaintext, sealed)
                        }
                        encrypted => encrypted,
                    }
                    .map_err(io::Error::other);
                }
                Ok(ConnectionState::EncodeTlsData(data)) => encode(data, &mut self.outgoing)?,
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::ReadTraffic(traffic)) => {
                    take_plaintext(traffic, (&mut self.plaintext, None))?;
                }
                Ok(ConnectionState::PeerClosed) => self.read_closed = true,
                Ok(ConnectionState::Closed) => return Err(shut_down()),
                Ok(other) => return Err(invalid(format!("cannot write in TLS state {other:?}"))),
                Err(error) => return Err(self.fail(error)),
            }
        }
    }

    /// Queues our close_notify in `outgoing` (once).
    fn queue_close_notify(&mut self) -> io::Result<()> {
        self.write_closed = true;
        loop {
            let UnbufferedStatus { state, .. } = self.session.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let start = self.outgoing.len();
                    self.outgoing.resize(start + CLOSE_NOTIFY_BYTES, 0);
                    let written = match traffic.queue_close_notify(&mut self.outgoing[start..]) {
                        Err(EncryptError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => {
                            self.outgoing.resize(start + required_size, 0);
                            traffic.queue_close_notify(&mut self.outgoing[start..])
                        }
                        written => written,
                    };
                    return match written {
                        Ok(written) => {
                            self.outgoing.truncate(start + written);
                            Ok(())
                        }
                        Err(error) => {
                            self.outgoing.truncate(start);
                            Err(io::Error::other(error))
                        }
                    };
                }
                Ok(ConnectionState::EncodeTlsData(data)) => encode(data, &mut self.outgoing)?,
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::ReadTraffic(traffic)) => {
                    take_plaintext(traffic, (&mut self.plaintext, None))?;
                }
                Ok(ConnectionState::PeerClosed) => self.read_closed = true,
                // Both sides closed already, or no session to close.
                Ok(_) => return Ok(()),
                Err(error) => return Err(self.fail(error)),
            }
        }
    }

    /// Copies plaintext kept from an earlier read into `out`; whether there was any.
    fn read_kept_plaintext(&mut self, out: &mut ReadBuf<'_>) -> bool {
        let kept = &self.plaintext[self.plaintext_read..];
        if kept.is_empty() {
            return false;
        }
        let count = kept.len().min(out.remaining());
        out.put_slice(&kept[..count]);
        self.plaintext_read += count;
        if self.plaintext_read == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plaintext_read = 0;
        }
        true
    }

    /// How many bytes each buffer holds room for: the read remainder, the ciphertext
    /// waiting, and the plaintext waiting.
    #[cfg(test)]
    pub(crate) fn buffer_capacities(&self) -> [usize; 3] {
        [
            self.incoming.capacity(),
            self.outgoing.capacity(),
            self.plaintext.capacity(),
        ]
    }

    /// How many ciphertext bytes wait for the socket.
    #[cfg(test)]
    pub(crate) fn ciphertext_waiting(&self) -> usize {
        self.outgoing.len()
    }
}

impl<IO> AsyncRead for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.read_kept_plaintext(buf) {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.failed {
                return Poll::Ready(Err(failed_before()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            // Anything rustls queued while reading (a key update's answer) goes out as
            // the socket takes it, without holding up the read.
            if let Poll::Ready(Err(error)) = this.poll_flush_outgoing(cx) {
                return Poll::Ready(Err(error));
            }
            let before = buf.filled().len();
            ready!(this.poll_read_records(cx, Some(buf)))?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO> AsyncWrite for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(failed_before()));
        }
        if this.write_closed {
            return Poll::Ready(Err(shut_down()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Nothing more is taken while earlier ciphertext waits for the socket.
        ready!(this.poll_flush_outgoing(cx))?;
        let plaintext = &buf[..buf.len().min(MAX_PLAINTEXT_PER_WRITE)];
        SEAL_SCRATCH.with_borrow_mut(|sealed| {
            let length = this.seal(plaintext, sealed)?;
            let ciphertext = &sealed[..length];
            if !this.outgoing.is_empty() {
                // Behind what rustls queued to send first.
                this.outgoing.extend_from_slice(ciphertext);
                let _ = this.poll_flush_outgoing(cx)?;
                return Poll::Ready(Ok(plaintext.len()));
            }
            let mut written = 0;
            while written < length {
                match Pin::new(&mut this.io).poll_write(cx, &ciphertext[written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(count)) => written += count,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    // The record is sealed: the plaintext counts as taken, and the rest
                    // of its ciphertext waits here for the socket.
                    Poll::Pending => {
                        this.outgoing = ciphertext[written..].to_vec();
                        break;
                    }
                }
            }
            Poll::Ready(Ok(plaintext.len()))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed && !this.failed {
            this.queue_close_notify()?;
        }
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Takes every decrypted record out of rustls: into `out` as far as it has room, the rest
/// kept in `kept`.
fn take_plaintext<Data>(
    mut traffic: ReadTraffic<'_, '_, Data>,
    (kept, mut out): (&mut Vec<u8>, Option<&mut ReadBuf<'_>>),
) -> io::Result<()> {
    while let Some(record) = traffic.next_record() {
        let payload = record.map_err(tls_error)?.payload;
        let taken = match out.as_deref_mut() {
            Some(out) if kept.is_empty() => {
                let taken = payload.len().min(out.remaining());
                out.put_slice(&payload[..taken]);
                taken
            }
            _ => 0,
        };
        kept.extend_from_slice(&payload[taken..]);
    }
    Ok(())
}

/// Appends a message rustls has to send to `outgoing`.
fn encode<Data>(mut data: EncodeTlsData<'_, Data>, outgoing: &mut Vec<u8>) -> io::Result<()> {
    let start = outgoing.len();
    let required = match data.encode(&mut []) {
        Ok(_) => return Ok(()),
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            required_size
        }
        Err(error) => return Err(io::Error::other(error)),
    };
    outgoing.resize(start + required, 0);
    match data.encode(&mut outgoing[start..]) {
        Ok(written) => {
            outgoing.truncate(start + written);
            Ok(())
        }
        Err(error) => {
            outgoing.truncate(start);
            Err(io::Error::other(error))
        }
    }
}

fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn failed_before() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the TLS connection failed")
}

fn shut_down() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the TLS stream was shut down")
}
