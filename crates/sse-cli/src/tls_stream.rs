//! The connect step of `ssectl bench`: a TCP stream, wrapped in TLS for `https://`.
//!
//! bench drives hyper's connection API over its own sockets (to choose source addresses
//! and bound buffers), so it does its own TLS handshake rather than reqwest's. The
//! configuration is the one every client command uses ([`crate::tls_client`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::arrival::{ArrivalClock, StampedTcp};
use crate::tls_client::{describe_rustls_error, ALPN_HTTP2};

/// Makes connections plain or TLS, as the URL's scheme says.
#[derive(Clone)]
pub enum Connector {
    /// `http://`: the TCP stream as it is.
    Plain,
    /// `https://`: a TLS handshake for `name` on every connection.
    Tls {
        /// The connector with the client configuration (roots, ALPN).
        connector: TlsConnector,
        /// The name the certificate must be valid for (and sent as SNI).
        name: ServerName<'static>,
    },
}

impl Connector {
    /// A TLS connector for `host` (a DNS name or an IP address, brackets allowed).
    pub fn tls(config: tokio_rustls::rustls::ClientConfig, host: &str) -> Result<Self, String> {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| format!("{host}: not a name a certificate can be checked for: {e}"))?;
        Ok(Connector::Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// Wraps `tcp` as this connector says; a failed handshake is one readable line.
    /// Reads record the kernel's arrival time (see [`Stream::arrival_clock`]).
    pub async fn connect(&self, tcp: TcpStream) -> Result<Stream, String> {
        let tcp = StampedTcp::new(tcp);
        match self {
            Connector::Plain => Ok(Stream::Plain(tcp)),
            Connector::Tls { connector, name } => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|error| describe_handshake_error(&error))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

fn describe_handshake_error(error: &io::Error) -> String {
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
    {
        return describe_rustls_error(tls);
    }
    match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            "TLS handshake failed: the server closed the connection (is it serving plain \
             http://?)"
                .to_owned()
        }
        _ => format!("TLS handshake failed: {error}"),
    }
}

/// A connection, plain or TLS. The TLS state is boxed so that plain connections, of
/// which bench holds many, stay small.
pub enum Stream {
    /// Plain TCP.
    Plain(StampedTcp),
    /// TLS over TCP.
    Tls(Box<TlsStream<StampedTcp>>),
}

impl Stream {
    /// The arrival time of the newest bytes read from the socket (under TLS: the
    /// newest record bytes, so never earlier than the plaintext a read returns).
    pub fn arrival_clock(&self) -> ArrivalClock {
        match self {
            Stream::Plain(tcp) => tcp.clock(),
            Stream::Tls(tls) => tls.get_ref().0.clock(),
        }
    }

    /// Whether TLS negotiated HTTP/2 through ALPN.
    pub fn negotiated_http2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(ALPN_HTTP2),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
