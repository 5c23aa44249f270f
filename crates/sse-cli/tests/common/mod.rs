//! Helpers for running the real `ssectl` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn ssectl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssectl"));
    command
        .env_remove("SSECTL_SERVER")
        .env_remove("SSE_PUBLISH_TOKEN");
    command
}

/// A running `ssectl serve` on an ephemeral port; killed when dropped.
pub struct Serving {
    pub child: Child,
    pub base: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ssectl serve` on an ephemeral port and reads the address it prints.
pub fn serve(extra: &[&str]) -> Serving {
    let mut child = ssectl()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ssectl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("ssectl printed where it listens");
    let base = line
        .split_whitespace()
        .find(|word| word.starts_with("http://") || word.starts_with("https://"))
        .expect("an http:// or https:// address")
        .to_owned();
    Serving { child, base }
}

/// Waits for `child` to exit, killing it and failing after [`DEADLINE`].
pub fn wait_with_deadline(mut child: Child) -> Output {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "ssectl did not exit in time; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `ssectl` to completion with a deadline.
pub fn run(args: &[&str]) -> Output {
    let child = ssectl()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ssectl");
    wait_with_deadline(child)
}

/// Runs `ssectl bench` with `connections` streams read from `read` while it publishes
/// 200 events/s to `publish_to` for one second; asserts it succeeded and returns its
/// JSON report.
pub fn bench_across(
    read: &str,
    publish_to: &str,
    connections: u64,
) -> sse_cli::bench_report::BenchReport {
    let connections = connections.to_string();
    let output = run(&[
        "bench",
        "--server",
        read,
        "--publish-server",
        publish_to,
        "--connections",
        &connections,
        "--publish-rate",
        "200",
        "--duration",
        "1s",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the JSON report")
}

/// The server's subscriber count, from its admin status.
pub fn subscribers(base: &str) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&http_get(base, "/admin/status.json")).unwrap_or_default();
    json["subscribers"].as_u64().unwrap_or(0)
}

/// A minimal blocking HTTP/1.1 GET, enough for the admin status.
pub fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Waits until the server has `n` subscribers.
pub fn wait_for_subscribers(base: &str, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    while subscribers(base) < n {
        assert!(Instant::now() < deadline, "never saw {n} subscribers");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `/healthz` answers with `body`.
pub fn wait_for_health(base: &str, body: &str) {
    let deadline = Instant::now() + DEADLINE;
    while http_get(base, "/healthz") != body {
        assert!(Instant::now() < deadline, "{base} never said {body:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
