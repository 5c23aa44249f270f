//! HTTPS for the client commands: which servers to trust, and what to say when a TLS
//! handshake fails.
//!
//! One rustls configuration (ring provider, TLS 1.2 and 1.3) serves every client command:
//! `tail`, `publish` and `status` hand it to reqwest, `bench` to its own connector
//! ([`crate::tls_stream`]). It trusts, in this order of precedence:
//! - `--insecure`: any certificate (the handshake signature is still checked, so the
//!   connection is encrypted, but to whoever answered); a warning says so on stderr;
//! - `--cacert FILE`: exactly the CA certificates in that PEM file, instead of the
//!   system's (as `curl --cacert` does), for a private CA or a self-signed server;
//! - otherwise the system's root certificates (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set).

use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// ALPN protocol ids, in the order a client offers them.
pub const ALPN_HTTP2: &[u8] = b"h2";
/// ALPN id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Options that say which HTTPS servers to trust.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Trust the CA certificates in this PEM file (one or more) instead of the system's
    /// root certificates: for a private CA or a self-signed server.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Accept any server certificate, unchecked: the traffic is encrypted, but to whoever
    /// answered. For tests against a throwaway certificate only.
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,
}

impl TlsArgs {
    /// A client configuration offering the ALPN protocols `alpn` (most preferred first).
    ///
    /// Fails with one readable line when `--cacert` cannot be read or holds no
    /// certificate. Warns on stderr when `--insecure` is given.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, String> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let mut config = if self.insecure {
            // Once per run, however many clients a command builds.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "ssectl: warning: --insecure: server certificates are not checked; \
                     anyone on the path can read and change this traffic"
                );
            });
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|id| id.to_vec()).collect();
        Ok(config)
    }

    /// The trusted roots: those of `--cacert`, or the system's.
    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        match &self.cacert {
            Some(path) => {
                let shown = path.display();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("--cacert {shown}: cannot read certificates: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("--cacert {shown}: no PEM certificate in the file"));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        format!("--cacert {shown}: not a usable CA certificate: {e}")
                    })?;
                }
            }
            None => {
                // Files that fail to load are skipped: one unreadable file in a
                // certificate directory should not stop every HTTPS request. With none
                // at all, every handshake fails as "unknown authority", whose message
                // points at --cacert.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        Ok(roots)
    }
}

/// The verifier behind `--insecure`: any certificate chain for any name is accepted, but
/// the handshake must still be signed by the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One line for a failed TLS handshake anywhere in `error`'s chain of causes, or `None`
/// when TLS is not what failed.
pub fn describe_tls_error(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = as_rustls_error(current) {
            return Some(describe_rustls_error(tls));
        }
        cause = current.source();
    }
    None
}

/// The rustls error `error` is, or wraps in I/O errors (perhaps nested, as reqwest's
/// connector does), whose `source` skips the wrapped error.
fn as_rustls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = error;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = current.downcast_ref::<std::io::Error>()?.get_ref()?;
        current = inner;
    }
}

/// What went wrong, in words a user can act on.
pub fn describe_rustls_error(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(certificate) => describe_certificate_error(certificate),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "TLS handshake failed: the server did not answer in TLS (is it serving plain \
             http://?)"
                .to_owned()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("TLS handshake failed: the server refused it (alert {alert:?})")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

fn describe_certificate_error(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => {
            "TLS: the server's certificate is not signed by a trusted authority (unknown CA); \
             give the CA with --cacert FILE, or skip the check with --insecure"
                .to_owned()
        }
        CertificateError::NotValidForName => {
            "TLS: the server's certificate is not valid for this host name".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "TLS: the server's certificate is not valid for the host name {} \
             (it is for {})",
            expected.to_str(),
            presented
                .iter()
                .map(|name| presented_name(name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "TLS: the server's certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "TLS: the server's certificate is not valid yet (check the clocks)".to_owned()
        }
        other => format!(
            "TLS: the server's certificate was refused ({}); give its CA with --cacert FILE, \
             or skip the check with --insecure",
            reason_name(other)
        ),
    }
}

/// A name from a certificate as people write it: `localhost` for `DnsName("localhost")`,
/// `127.0.0.1` for `IpAddress(127.0.0.1)`.
fn presented_name(name: &str) -> &str {
    match name.split_once('(') {
        Some((_, inner)) => inner.trim_end_matches(')').trim_matches('"'),
        None => name,
    }
}

/// The name of a certificate error without its details (byte dumps of algorithm ids).
fn reason_name(error: &CertificateError) -> String {
    let debug = format!("{error:?}");
    let end = debug.find([' ', '{', '(']).unwrap_or(debug.len());
    debug[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacert_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsArgs {
            cacert: Some(dir.path().join("missing.pem")),
            insecure: false,
        };
        let error = missing.client_config(&[ALPN_HTTP1]).unwrap_err();
        assert!(error.contains("missing.pem"), "{error}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = TlsArgs {
            cacert: Some(empty),
            insecure: false,
        }
        .client_config(&[ALPN_HTTP1])
        .unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn certificate_names_and_reasons_read_plainly() {
        assert_eq!(presented_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(reason_name(&CertificateError::BadSignature), "BadSignature");
        let line = describe_certificate_error(&CertificateError::Revoked);
        assert!(
            line.contains("(Revoked)") && line.contains("--cacert"),
            "{line}"
        );
    }

    #[test]
    fn alpn_is_offered_in_the_given_order() {
        let config = TlsArgs {
            cacert: None,
            insecure: true,
        }
        .client_config(&[ALPN_HTTP2, ALPN_HTTP1])
        .unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_rustls_error_inside_io_errors_is_found() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let io = std::io::Error::other(io);
        let line = describe_tls_error(&io).unwrap();
        assert!(
            line.contains("unknown CA") && line.contains("--cacert"),
            "{line}"
        );
        let plain = std::io::Error::other("connection refused");
        assert_eq!(describe_tls_error(&plain), None);
    }
}
