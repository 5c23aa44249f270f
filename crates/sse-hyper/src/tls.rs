//! TLS for the standalone server (feature `tls`): rustls with the ring provider, and
//! ALPN offering HTTP/2 then HTTP/1.1.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and private key, ready to serve HTTPS.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let tls = sse_hyper::TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let server = sse_hyper::Server::builder().tls(tls).build();
/// # let _ = server; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ServerConfig>,
}

impl TlsConfig {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1
    /// or SEC1). Errors name the file and what was wrong with it.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> io::Result<TlsConfig> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let certs = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                invalid(format!(
                    "{}: cannot read certificates: {e}",
                    cert_path.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(invalid(format!(
                "{}: no PEM certificate found",
                cert_path.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            invalid(format!(
                "{}: cannot read a private key: {e}",
                key_path.display()
            ))
        })?;
        TlsConfig::from_der(certs, key)
    }

    /// Builds the configuration from DER certificates (leaf first) and key.
    pub fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<TlsConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                invalid(format!(
                    "certificate and key do not make a TLS identity: {e}"
                ))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration every connection's session is made from.
    pub(crate) fn server_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
