//! `ssectl bench` against a live `ssectl serve`: its JSON report must add up.

mod common;

use std::time::{Duration, Instant};

use common::{serve, ssectl};
use sse_cli::bench_report::BenchReport;

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
