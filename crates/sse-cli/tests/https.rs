//! The client commands over HTTPS, against `ssectl serve --tls-cert/--tls-key` with
//! certificates made here: a private CA given with `--cacert`, an unknown CA, a
//! certificate for another name, `--insecure`, and a server that does not speak TLS;
//! and the protocol `bench` reads with, over TLS and without.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{run, serve, ssectl, wait_with_deadline, Serving, DEADLINE};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A certificate authority of its own, and the files it writes.
struct TestCa {
    dir: tempfile::TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        TestCa { dir, issuer }
    }

    /// The CA's certificate, as a PEM file.
    fn cacert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names`, signed by this CA: (certificate, key) files.
    fn issue(&self, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let stem = format!(
            "leaf-{}",
            std::fs::read_dir(self.dir.path()).unwrap().count()
        );
        let cert_path = self.dir.path().join(format!("{stem}.pem"));
        let key_path = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// `ssectl serve` over HTTPS with the given certificate and key.
fn serve_tls(cert: &Path, key: &Path, extra: &[&str]) -> Serving {
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = serve(&args);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    server
}

/// The server's status JSON, read with `ssectl status --json` and `tls` options.
fn status_json(base: &str, tls: &[&str]) -> serde_json::Value {
    let mut args = vec!["status", "--server", base, "--json"];
    args.extend_from_slice(tls);
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

fn wait_for_subscribers(base: &str, tls: &[&str], n: u64) {
    let deadline = Instant::now() + DEADLINE;
    while status_json(base, tls)["subscribers"].as_u64().unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "never saw {n} subscribers");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An error that is one readable line: no panic, no backtrace, exit code 1.
fn assert_one_clear_line(output: &Output, expected: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text:?}");
    assert!(
        !text.contains("panicked") && !text.contains("backtrace"),
        "{text}"
    );
}

#[test]
fn tail_publish_and_status_trust_a_private_ca_given_with_cacert() {
    let ca = TestCa::new("ssectl test CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let server = serve_tls(&cert, &key, &["--node-name", "secure-node"]);
    let cacert = ca.cacert();
    let tls = ["--cacert", cacert.to_str().unwrap()];

    let tail = ssectl()
        .args(["tail", "--server", &server.base, "/pets", "--count", "1"])
        .args(["--format", "json", "--timeout", "30s"])
        .args(tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_subscribers(&server.base, &tls, 1);

    let mut publish = vec!["publish", "--server", &server.base];
    publish.extend_from_slice(&["/pets/dogs", "new-dog", "over TLS"]);
    publish.extend_from_slice(&tls);
    let published = run(&publish);
    assert!(published.status.success(), "{}", stderr(&published));
    let id = stdout(&published).trim().to_owned();

    let tailed = wait_with_deadline(tail);
    assert!(tailed.status.success(), "{}", stderr(&tailed));
    let event: serde_json::Value = serde_json::from_str(stdout(&tailed).trim()).unwrap();
    assert_eq!(event["type"], "new-dog");
    assert_eq!(event["data"], "over TLS");
    assert_eq!(event["id"], id.as_str());

    let mut status = vec!["status", "--server", &server.base];
    status.extend_from_slice(&tls);
    let table = run(&status);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("secure-node (OK)"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_with_one_clear_line() {
    let ca = TestCa::new("the server's CA");
    let other = TestCa::new("another CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let server = serve_tls(&cert, &key, &[]);
    let wrong = other.cacert();
    let wrong = wrong.to_str().unwrap();

    let published = run(&[
        "publish",
        "--server",
        &server.base,
        "--cacert",
        wrong,
        "/a",
        "x",
    ]);
    assert_one_clear_line(&published, "unknown CA");
    let status = run(&["status", "--server", &server.base, "--cacert", wrong]);
    assert_one_clear_line(&status, "unknown CA");
    // tail would reconnect after a network error; a refused certificate ends it.
    let tailed = run(&["tail", "--server", &server.base, "--cacert", wrong, "/a"]);
    assert_one_clear_line(&tailed, "unknown CA");
    // The system's roots do not know a private CA either.
    let system = run(&["publish", "--server", &server.base, "/a", "x"]);
    assert_one_clear_line(&system, "unknown CA");
}

#[test]
fn a_certificate_for_another_name_is_refused_with_one_clear_line() {
    let ca = TestCa::new("ssectl test CA");
    let (cert, key) = ca.issue(&["localhost"]);
    let server = serve_tls(&cert, &key, &[]);
    let cacert = ca.cacert();
    // Reached as 127.0.0.1, which the certificate does not name.
    let published = run(&[
        "publish",
        "--server",
        &server.base,
        "--cacert",
        cacert.to_str().unwrap(),
        "/a",
        "x",
    ]);
    assert_one_clear_line(&published, "not valid for the host name 127.0.0.1");
    assert!(
        stderr(&published).contains("(it is for localhost)"),
        "{}",
        stderr(&published)
    );
}

#[test]
fn insecure_accepts_a_self_signed_server_and_says_so() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = serve_tls(&cert, &key, &[]);

    let refused = run(&["publish", "--server", &server.base, "/a", "x"]);
    assert_one_clear_line(&refused, "unknown CA");

    let published = run(&["publish", "--server", &server.base, "--insecure", "/a", "x"]);
    assert!(published.status.success(), "{}", stderr(&published));
    assert!(!stdout(&published).trim().is_empty(), "prints the id");
    assert!(
        stderr(&published).contains("--insecure: server certificates are not checked"),
        "{}",
        stderr(&published)
    );
}

#[test]
fn https_to_a_server_without_tls_is_one_clear_line() {
    let server = serve(&[]);
    let https = server.base.replacen("http://", "https://", 1);
    let published = run(&["publish", "--server", &https, "--insecure", "/a", "x"]);
    let text = stderr(&published);
    assert_eq!(published.status.code(), Some(1), "{text}");
    assert!(text.contains("TLS"), "{text}");
    assert!(text.contains("http://"), "suggests plain HTTP: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn bench_reads_https_over_http1_and_http2_and_reports_the_protocol() {
    let ca = TestCa::new("ssectl test CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let server = serve_tls(&cert, &key, &[]);
    let cacert = ca.cacert();
    for (extra, protocol) in [(None, "HTTP/1.1"), (Some("--http2"), "HTTP/2")] {
        let mut args = vec!["bench", "--server", &server.base];
        args.extend(["--cacert", cacert.to_str().unwrap()]);
        args.extend(["--connections", "2", "--publish-rate", "200"]);
        args.extend(["--duration", "1s", "--json"]);
        args.extend(extra);
        let output = run(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let report: sse_cli::bench_report::BenchReport =
            serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report.protocol, protocol);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.connections_held, 2, "{report:?}");
        assert!(report.events_total > 0, "{report:?}");
    }
}

#[test]
fn bench_counts_a_refused_certificate_as_an_error_per_connection() {
    let ca = TestCa::new("the server's CA");
    let other = TestCa::new("another CA");
    let (cert, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let server = serve_tls(&cert, &key, &[]);
    let wrong = other.cacert();
    let output = run(&[
        "bench",
        "--server",
        &server.base,
        "--cacert",
        wrong.to_str().unwrap(),
        "--connections",
        "2",
        "--duration",
        "0s",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: sse_cli::bench_report::BenchReport =
        serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.connections_held, 0);
    let refused: u64 = report
        .errors
        .iter()
        .filter(|(reason, _)| reason.contains("unknown CA"))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(refused, 2, "{:?}", report.errors);
}

#[test]
fn bench_speaks_http2_with_prior_knowledge_over_plain_tcp() {
    let server = serve(&[]);
    let output = run(&[
        "bench",
        "--server",
        &server.base,
        "--http2",
        "--connections",
        "2",
        "--publish-rate",
        "200",
        "--duration",
        "1s",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: sse_cli::bench_report::BenchReport =
        serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.protocol, "HTTP/2");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.connections_held, 2, "{report:?}");
    assert!(report.events_total > 0, "{report:?}");
}
