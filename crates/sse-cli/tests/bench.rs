//! `ssectl bench` against a live `ssectl serve`: its JSON report must add up.

mod common;

use std::time::{Duration, Instant};

use common::{serve, ssectl};
use sse_cli::bench_report::{BenchReport, ReceiveClock};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_every_delivery_and_reports_json() {
    const CONNECTIONS: u64 = 5;
    const EVENTS: u64 = 40;
    let server = serve(&[]);
    let base = server.base.clone();
    let bench = ssectl()
        .args([
            "bench",
            "--server",
            &base,
            "--namespace",
            "/load",
            "--duration",
            "4s",
            "--json",
        ])
        .args(["--connections", &CONNECTIONS.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Publish once every bench connection is subscribed, in one batch request.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + DEADLINE;
    while common::subscribers(&base) < CONNECTIONS {
        assert!(Instant::now() < deadline, "bench never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let send_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let batch: String = (0..EVENTS)
        .map(|_| format!("{{\"namespace\":\"/load/x\",\"data\":\"{send_ns} padding\"}}\n"))
        .collect();
    let reply = client
        .post(format!("{base}/publish"))
        .header("content-type", "application/x-ndjson")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);

    let output = tokio::task::spawn_blocking(move || common::wait_with_deadline(bench))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: BenchReport = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report.connections_requested, CONNECTIONS);
    assert_eq!(report.connections_held, CONNECTIONS);
    assert_eq!(report.events_total, CONNECTIONS * EVENTS, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.disconnects, 0);
    let latency = report.latency_ms.expect("the events carry send times");
    assert_eq!(latency.samples, CONNECTIONS * EVENTS);
    assert!(latency.p50 <= latency.max);
    // The events were published after every stream was open, long after the kernel
    // turned receive stamping on: each one is timed by its arrival.
    if cfg!(target_os = "linux") {
        assert_eq!(latency.receive_clock, ReceiveClock::Kernel, "{latency:?}");
    }
}

/// Runs `ssectl bench` publishing with `batch` events per request against a fresh server
/// and checks that all three connections received every published event.
fn publishing_delivers_every_event(batch: &str) {
    let server = serve(&[]);
    let output = common::run(&[
        "bench",
        "--server",
        &server.base,
        "--connections",
        "3",
        "--publish-rate",
        "200",
        "--publish-batch",
        batch,
        "--size",
        "100",
        "--duration",
        "2s",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: BenchReport = serde_json::from_slice(&output.stdout).unwrap();
    let published = report.events_published;
    assert!(published > 0, "{report:?}");
    assert_eq!(report.events_total, published * 3, "{report:?}");
    let latency = report
        .latency_ms
        .as_ref()
        .expect("published events are timed");
    assert_eq!(latency.samples, published * 3);
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.bytes > 0);
}

#[test]
fn bench_publishing_in_batches_reaches_every_connection() {
    publishing_delivers_every_event("1000");
}

#[test]
fn bench_publishing_single_events_reaches_every_connection() {
    publishing_delivers_every_event("1");
}

#[test]
fn bench_refuses_an_empty_publish_batch() {
    let output = common::run(&["bench", "--publish-rate", "10", "--publish-batch", "0"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--publish-batch"));
}

#[test]
fn bench_against_a_non_sse_url_reports_the_reason() {
    let output = common::run(&[
        "bench",
        "--url",
        "http://127.0.0.1:1/nothing",
        "--connections",
        "2",
        "--duration",
        "0s",
        "--json",
    ]);
    assert!(output.status.success());
    let report: BenchReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.connections_held, 0);
    assert!(
        report.errors.keys().any(|k| k.starts_with("connect")),
        "{report:?}"
    );
}

#[test]
fn bench_publishes_to_the_publish_server_and_reads_the_other() {
    let (read, published_to) = (serve(&[]), serve(&[]));
    let report = common::bench_across(&read.base, &published_to.base, 2);
    assert!(report.events_published > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    // Two servers that share nothing: what went to one never reaches the other's streams.
    assert_eq!(report.events_total, 0, "{report:?}");
    let status: serde_json::Value =
        serde_json::from_str(&common::http_get(&published_to.base, "/admin/status.json")).unwrap();
    assert_eq!(
        status["msgs_broadcast"].as_u64(),
        Some(report.events_published),
        "{status}"
    );
}

/// A foreign server on a raw socket: answers every connection with `head`, then `body`,
/// then closes. Returns its base URL; the thread ends after `connections` connections.
fn foreign_server(connections: usize, head: &'static str, body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut socket, _)) = listener.accept() else {
                return;
            };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = socket.write_all(head.as_bytes());
            let _ = socket.write_all(body.as_bytes());
        }
    });
    base
}

/// Runs bench for `connections` streams of `base` and returns its report.
fn bench_url(base: &str, connections: usize) -> BenchReport {
    let output = common::run(&[
        "bench",
        "--url",
        &format!("{base}/stream"),
        "--connections",
        &connections.to_string(),
        "--duration",
        "2s",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn bench_reads_streams_delimited_by_close_length_or_chunks() {
    let send_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let events: String = (0..3)
        .map(|i| format!("id: {i}\ndata: {send_ns} x\n\n"))
        .collect();
    let chunked = format!(
        "{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        10,
        &events[..10],
        events.len() - 10,
        &events[10..]
    );
    let length_head: &'static str = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
        events.len()
    )
    .leak();
    for (name, head, body) in [
        (
            "until close",
            "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n",
            events.clone(),
        ),
        ("length", length_head, events.clone()),
        (
            "chunked",
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n",
            chunked,
        ),
    ] {
        let base = foreign_server(2, head, body);
        let report = bench_url(&base, 2);
        assert_eq!(report.events_total, 6, "{name}: {report:?}");
        assert_eq!(report.disconnects, 2, "{name}: the server ended both");
        assert!(report.errors.is_empty(), "{name}: {report:?}");
        let latency = report.latency_ms.expect("send times in the data");
        assert_eq!(latency.samples, 6, "{name}");
    }
}

#[test]
fn bench_reports_a_refused_status_and_a_foreign_content_type() {
    let base = foreign_server(
        1,
        "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
        String::new(),
    );
    let report = bench_url(&base, 1);
    assert_eq!(report.errors.get("status 403"), Some(&1), "{report:?}");
    let base = foreign_server(
        1,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\n\r\n",
        "hi".to_owned(),
    );
    let report = bench_url(&base, 1);
    assert_eq!(
        report.errors.get("content type \"text/html\""),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(report.connections_held, 0);
}

#[test]
fn bench_reports_its_own_cpu() {
    let base = foreign_server(
        1,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 0\r\n\r\n",
        String::new(),
    );
    let report = bench_url(&base, 1);
    if cfg!(target_os = "linux") {
        let cpu = report.client_cpu.expect("read from /proc on Linux");
        assert!(cpu.cores >= 1, "{cpu:?}");
        assert!(
            cpu.seconds >= 0.0 && cpu.percent_of_one_core >= 0.0,
            "{cpu:?}"
        );
    }
}
