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
//! ([`WriteTimeout`](crate::write_timeout::WriteTimeout)) applies as to any write. A
//! vectored write is gathered into one record, so that a frame's head and its data do not
//! become a record and a socket write each.
//!
//! The client's close_notify reads as the end of the stream; shutting the stream down
//! sends ours. A socket closed without close_notify between records also reads as the
//! end (HTTP delimits its messages itself); one closed inside a record is an error. When
//! rustls fails the connection, the alert it chose is written if the socket takes it at
//! once, and every later read and write fails.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, ReadTraffic,
    UnbufferedStatus,
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
    /// Where the slices of a vectored write are gathered into one record's plaintext.
    static GATHER_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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
            let UnbufferedStatus { mut discard, state } =
                self.session.process_tls_records(&mut bytes[start..]);
            let stop = match state {
                Ok(ConnectionState::ReadTraffic(traffic)) => {
                    take_plaintext(traffic, &mut self.plaintext, out.as_deref_mut()).map(
                        |records| {
                            // rustls asks for each record's own discard to be added.
                            discard += records;
                            false
                        },
                    )
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
                Ok(ConnectionState::ReadEarlyData(_)) => Err(invalid(
                    "early data arrived, which the server does not accept",
                )),
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
                    // Records from an empty buffer: nothing to discard.
                    take_plaintext(traffic, &mut self.plaintext, None)?;
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
                    // Records from an empty buffer: nothing to discard.
                    take_plaintext(traffic, &mut self.plaintext, None)?;
                }
                Ok(ConnectionState::PeerClosed) => self.read_closed = true,
                // Both sides closed already, or no session to close.
                Ok(_) => return Ok(()),
                Err(error) => return Err(self.fail(error)),
            }
        }
    }

    /// Encrypts up to one record of `buf` and writes it as far as the socket takes it,
    /// once earlier ciphertext has gone; gives how much of `buf` was taken.
    fn poll_write_plaintext(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(failed_before()));
        }
        if self.write_closed {
            return Poll::Ready(Err(shut_down()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Nothing more is taken while earlier ciphertext waits for the socket.
        ready!(self.poll_flush_outgoing(cx))?;
        let plaintext = &buf[..buf.len().min(MAX_PLAINTEXT_PER_WRITE)];
        SEAL_SCRATCH.with_borrow_mut(|sealed| {
            let length = match self.seal(plaintext, sealed) {
                Ok(length) => length,
                Err(error) => {
                    // Whatever alert rustls queued goes out if the socket takes it now.
                    let _ = self.poll_flush_outgoing(cx);
                    return Poll::Ready(Err(error));
                }
            };
            let ciphertext = &sealed[..length];
            if !self.outgoing.is_empty() {
                // Behind what rustls queued to send first.
                self.outgoing.extend_from_slice(ciphertext);
                let _ = self.poll_flush_outgoing(cx)?;
                return Poll::Ready(Ok(plaintext.len()));
            }
            let mut written = 0;
            while written < length {
                match Pin::new(&mut self.io).poll_write(cx, &ciphertext[written..]) {
                    // A record cut short leaves the stream out of step for good.
                    Poll::Ready(Ok(0)) => {
                        self.failed = true;
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(count)) => written += count,
                    Poll::Ready(Err(error)) => {
                        self.failed = true;
                        return Poll::Ready(Err(error));
                    }
                    // The record is sealed: the plaintext counts as taken, and the rest
                    // of its ciphertext waits here for the socket.
                    Poll::Pending => {
                        self.outgoing = ciphertext[written..].to_vec();
                        break;
                    }
                }
            }
            Poll::Ready(Ok(plaintext.len()))
        })
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
        self.get_mut().poll_write_plaintext(cx, buf)
    }

    /// Gathers the slices (one record's worth at most) into one record: hyper and h2
    /// write a frame's head and its data as separate slices, which would otherwise be a
    /// record and a socket write each.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        let (Some(first), None) = (filled.next(), filled.clone().next()) else {
            return GATHER_SCRATCH.with_borrow_mut(|gathered| {
                gathered.clear();
                for buf in bufs {
                    let room = MAX_PLAINTEXT_PER_WRITE - gathered.len();
                    if room == 0 {
                        break;
                    }
                    gathered.extend_from_slice(&buf[..buf.len().min(room)]);
                }
                this.poll_write_plaintext(cx, gathered)
            });
        };
        this.poll_write_plaintext(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed && !this.failed {
            if let Err(error) = this.queue_close_notify() {
                // Whatever alert rustls queued goes out if the socket takes it now.
                let _ = this.poll_flush_outgoing(cx);
                return Poll::Ready(Err(error));
            }
        }
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Takes every decrypted record out of rustls: into `out` as far as it has room, the rest
/// kept in `kept`. Gives the bytes the records ask to discard beyond the status's own.
fn take_plaintext<Data>(
    mut traffic: ReadTraffic<'_, '_, Data>,
    kept: &mut Vec<u8>,
    mut out: Option<&mut ReadBuf<'_>>,
) -> io::Result<usize> {
    let mut discard = 0;
    while let Some(record) = traffic.next_record() {
        let record = record.map_err(tls_error)?;
        discard += record.discard;
        let payload = record.payload;
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
    Ok(discard)
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};
    use tokio_rustls::client::TlsStream as ClientStream;
    use tokio_rustls::TlsConnector;

    use super::*;

    /// Fails the test when `future` takes longer than a loaded machine could need.
    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), future)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// A self-signed certificate for `localhost`, and the server's configuration with it.
    fn identity() -> (CertificateDer<'static>, crate::tls::TlsConfig) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
        let config = crate::tls::TlsConfig::from_der(vec![cert.clone()], key).unwrap();
        (cert, config)
    }

    /// A connected pair over loopback: our server stream (handshaken) and a rustls
    /// client speaking `versions`, whose socket receives into `client_receive_buffer`
    /// bytes when given.
    async fn pair(
        versions: &[&'static SupportedProtocolVersion],
        client_receive_buffer: Option<u32>,
    ) -> (TlsStream<TcpStream>, ClientStream<TcpStream>) {
        let (cert, server_config) = identity();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = client_receive_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let connecting = async {
            let tcp = socket.connect(address).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            TlsConnector::from(Arc::new(client_config))
                .connect(name, tcp)
                .await
                .unwrap()
        };
        let accepting = async {
            let (tcp, _) = listener.accept().await.unwrap();
            accept(server_config.server_config(), tcp).await.unwrap()
        };
        within("the handshake", async {
            tokio::join!(accepting, connecting)
        })
        .await
    }

    /// Bytes that tell their own position, so that a byte lost or repeated shows.
    fn pattern(length: usize) -> Vec<u8> {
        (0..length).map(|i| (i % 251) as u8).collect()
    }

    async fn exchange_both_ways(versions: &[&'static SupportedProtocolVersion]) {
        let (mut server, mut client) = pair(versions, None).await;
        assert_eq!(server.buffer_capacities(), [0, 0, 0], "after the handshake");

        // Several records' worth, in one write call from the caller's side.
        let sent = pattern(40 * 1024 + 7);
        within("the server's write", async {
            server.write_all(&sent).await.unwrap();
            server.flush().await.unwrap();
        })
        .await;
        assert_eq!(
            server.buffer_capacities(),
            [0, 0, 0],
            "after a flushed write"
        );
        let mut received = vec![0; sent.len()];
        within("the client's read", client.read_exact(&mut received))
            .await
            .unwrap();
        assert!(received == sent, "the client read other bytes than sent");

        let request = pattern(3000);
        client.write_all(&request).await.unwrap();
        client.flush().await.unwrap();
        let mut read = vec![0; request.len()];
        within("the server's read", server.read_exact(&mut read))
            .await
            .unwrap();
        assert!(read == request, "the server read other bytes than sent");
        assert_eq!(server.buffer_capacities(), [0, 0, 0], "after a whole read");
    }

    #[tokio::test]
    async fn tls13_buffers_exist_only_while_bytes_wait() {
        exchange_both_ways(&[&rustls::version::TLS13]).await;
    }

    #[tokio::test]
    async fn tls12_buffers_exist_only_while_bytes_wait() {
        exchange_both_ways(&[&rustls::version::TLS12]).await;
    }

    /// A small read keeps the rest of the record's plaintext, and only until it is read.
    #[tokio::test]
    async fn plaintext_the_reader_had_no_room_for_is_kept_until_read() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13], None).await;
        client.write_all(b"0123456789").await.unwrap();
        client.flush().await.unwrap();
        let mut first = [0; 4];
        within("the first read", server.read_exact(&mut first))
            .await
            .unwrap();
        assert_eq!(&first, b"0123");
        assert_ne!(server.buffer_capacities()[2], 0, "the rest is kept");
        let mut rest = [0; 6];
        within("the second read", server.read_exact(&mut rest))
            .await
            .unwrap();
        assert_eq!(&rest, b"456789");
        assert_eq!(server.buffer_capacities(), [0, 0, 0]);
    }

    /// While the socket takes nothing, a write is `Pending` with at most one record's
    /// ciphertext kept; once the client reads again every byte arrives, in order.
    #[tokio::test]
    async fn a_write_the_socket_does_not_take_is_pending_with_one_record_at_most() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13], Some(4096)).await;
        let piece = pattern(MAX_PLAINTEXT_PER_WRITE * 2);
        let mut taken = 0usize;
        let mut stalled = false;
        // The socket buffers hold a few MiB at most: far fewer writes than this.
        for _ in 0..100_000 {
            let offset = taken % 251;
            let write = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut server).poll_write(cx, &piece[offset..]))
            });
            match write.await {
                Poll::Ready(written) => {
                    let written = written.unwrap();
                    assert!(
                        written <= MAX_PLAINTEXT_PER_WRITE,
                        "{written} bytes in one write"
                    );
                    taken += written;
                }
                Poll::Pending => {
                    stalled = true;
                    break;
                }
            }
        }
        assert!(stalled, "the writes never waited for the socket");
        let waiting = server.ciphertext_waiting();
        assert!(
            waiting > 0,
            "a stalled write keeps what the socket did not take"
        );
        assert!(
            waiting <= MAX_PLAINTEXT_PER_WRITE + 256,
            "{waiting} bytes of ciphertext kept: more than one record"
        );
        // Still stalled: nothing more is taken.
        let again = std::future::poll_fn(|cx| {
            Poll::Ready(Pin::new(&mut server).poll_write(cx, &piece[..16]))
        })
        .await;
        assert!(
            again.is_pending(),
            "a write was taken while ciphertext waited"
        );
        assert_eq!(server.ciphertext_waiting(), waiting);

        let reading = async {
            let mut received = vec![0; taken];
            client.read_exact(&mut received).await.unwrap();
            received
        };
        let flushing = async {
            server.flush().await.unwrap();
        };
        let (received, ()) = within("the stalled bytes", async {
            tokio::join!(reading, flushing)
        })
        .await;
        assert!(
            received == pattern(taken),
            "the client read other bytes than sent"
        );
        assert_eq!(server.buffer_capacities(), [0, 0, 0], "after the flush");
    }

    /// A vectored write (a frame's head and data, as hyper and h2 write them) goes out
    /// as one record of up to 16 KiB, every slice in order.
    #[tokio::test]
    async fn a_vectored_write_gathers_its_slices_into_one_record() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13], None).await;
        let data = pattern(40 * 1024);
        let small = [
            IoSlice::new(b"head:"),
            IoSlice::new(&[]),
            IoSlice::new(&data[..100]),
        ];
        let taken = within("a small vectored write", server.write_vectored(&small))
            .await
            .unwrap();
        assert_eq!(taken, 105, "every slice is taken when they fit one record");
        let large = [IoSlice::new(b"head:"), IoSlice::new(&data)];
        let taken = within("a large vectored write", server.write_vectored(&large))
            .await
            .unwrap();
        assert_eq!(
            taken, MAX_PLAINTEXT_PER_WRITE,
            "one record's worth is taken"
        );
        within("the flush", server.flush()).await.unwrap();
        let mut expected = b"head:".to_vec();
        expected.extend_from_slice(&data[..100]);
        expected.extend_from_slice(b"head:");
        expected.extend_from_slice(&data[..MAX_PLAINTEXT_PER_WRITE - 5]);
        let mut received = vec![0; expected.len()];
        within("the client's read", client.read_exact(&mut received))
            .await
            .unwrap();
        assert!(
            received == expected,
            "the client read other bytes than written"
        );
        assert_eq!(server.buffer_capacities(), [0, 0, 0]);
    }

    /// The client's close_notify reads as the end of the stream, though its socket stays
    /// open; shutting the server's side down sends a close_notify back.
    #[tokio::test]
    async fn close_notify_ends_reads_and_is_sent_on_shutdown() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13], None).await;
        client.get_mut().1.send_close_notify();
        client.flush().await.unwrap();
        let mut buffer = [0; 64];
        let read = within("the end of the stream", server.read(&mut buffer))
            .await
            .unwrap();
        assert_eq!(read, 0, "the client's close_notify did not end the stream");

        within("the shutdown", server.shutdown()).await.unwrap();
        // tokio-rustls reads a close_notify as the end; a bare TCP close as an error.
        let read = within("the server's close_notify", client.read(&mut buffer)).await;
        assert_eq!(read.unwrap(), 0);
    }

    /// A TLS 1.3 key update from the client (asking for ours) keeps both directions
    /// working: the server's own update goes out before its next record.
    #[tokio::test]
    async fn key_updates_keep_both_directions_working() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13], None).await;
        client.get_mut().1.refresh_traffic_keys().unwrap();
        client.write_all(b"after the update").await.unwrap();
        client.flush().await.unwrap();
        let mut read = [0; 16];
        within("the server's read", server.read_exact(&mut read))
            .await
            .unwrap();
        assert_eq!(&read, b"after the update");
        server.write_all(b"answer").await.unwrap();
        server.flush().await.unwrap();
        let mut answer = [0; 6];
        within("the client's read", client.read_exact(&mut answer))
            .await
            .unwrap();
        assert_eq!(&answer, b"answer");
        assert_eq!(server.buffer_capacities(), [0, 0, 0]);
    }

    /// Bytes that are not TLS fail the handshake with an alert, not a hang.
    #[tokio::test]
    async fn garbage_fails_the_handshake_with_an_alert() {
        let (_, config) = identity();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let accepted = within("the failed handshake", accept(config.server_config(), tcp)).await;
        assert!(accepted.is_err(), "bytes that are not TLS were accepted");
        let mut alert = Vec::new();
        within("the alert", client.read_to_end(&mut alert))
            .await
            .unwrap();
        // An alert record: content type 21.
        assert_eq!(alert.first(), Some(&21), "{alert:?}");
    }
}
