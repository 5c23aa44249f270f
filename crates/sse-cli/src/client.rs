//! What the client commands share: the server URL option and the HTTP client.

use std::time::Duration;

use clap::Args;

use crate::tls_client::{describe_tls_error, TlsArgs, ALPN_HTTP1, ALPN_HTTP2};

/// Where the server is.
#[derive(Debug, Clone, Args)]
pub struct ServerArg {
    /// The server's base URL.
    #[arg(long, env = "SSECTL_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
}

impl ServerArg {
    /// `path` on the server, such as `/publish/pets`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }
}

/// An HTTP client for talking to SSE servers: no proxies (loopback tools should not
/// detour), a connect timeout, redirects followed as a browser does, and HTTPS trusting
/// what `tls` says, with HTTP/2 when the server offers it through ALPN.
pub fn http_client(tls: &TlsArgs) -> Result<reqwest::Client, String> {
    let tls = tls.client_config(&[ALPN_HTTP2, ALPN_HTTP1])?;
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot create an HTTP client: {e}"))
}

/// One line for a failed request: what could not be reached, and why.
pub fn describe_request_error(url: &str, error: &reqwest::Error) -> String {
    if let Some(tls) = describe_tls_error(error) {
        return format!("{url}: {tls}");
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if error.is_connect() {
        format!("cannot reach {url}: {cause}")
    } else if error.is_timeout() {
        format!("{url}: timed out")
    } else {
        format!("{url}: {cause}")
    }
}

/// A runtime for one client command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Sends `request` to `url` on `runtime` and reads the answer whole: its status and its
/// body as text. A failure to connect or to read is described in one line.
pub(crate) fn send_for_text(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, String), String> {
    runtime.block_on(async {
        let response = request
            .send()
            .await
            .map_err(|e| describe_request_error(url, &e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| describe_request_error(url, &e))?;
        Ok((status, body))
    })
}

/// One line for a refused request, from the server's JSON error when it sent one.
pub(crate) fn refusal(status: u16, body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) if json["error"].is_string() => format!(
            "the server refused the event ({status} {}): {}",
            json["error"].as_str().unwrap_or_default(),
            json["detail"].as_str().unwrap_or_default()
        ),
        _ => format!("the server refused the event ({status}): {}", excerpt(body)),
    }
}

/// The start of `text`'s first line, for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS `sse-hyper` server on an ephemeral loopback port, with a self-signed
    /// certificate for 127.0.0.1 written to `dir/cert.pem`.
    async fn tls_server(dir: &std::path::Path) -> std::net::SocketAddr {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("a certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("write");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
        let tls = sse_hyper::TlsConfig::from_pem_files(&cert, &key).expect("TLS identity");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = sse_hyper::Server::builder().tls(tls).build();
        tokio::spawn(server.serve_with_shutdown(listener, std::future::pending::<()>()));
        addr
    }

    #[tokio::test]
    async fn requests_use_http2_when_the_server_offers_it_by_alpn() {
        let dir = tempfile::tempdir().expect("a directory");
        let addr = tls_server(dir.path()).await;
        let tls = TlsArgs {
            cacert: Some(dir.path().join("cert.pem")),
            insecure: false,
        };
        let response = http_client(&tls)
            .expect("a client")
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
    }
}
