//! Cluster mode as operators run it: several `ssectl serve --redis` processes and a real
//! `redis-server`, driven over HTTP from outside.

mod common;
#[path = "../../sse-redis/tests/support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::{serve, wait_for_health, Serving, DEADLINE};
use futures_core::Stream;
use redis_server::RedisServer;
use sse_core::{Decoder, MessageEvent};

fn node(redis: &RedisServer, extra: &[&str]) -> Serving {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str(), "--cluster", "it"];
    args.extend_from_slice(extra);
    let node = serve(&args);
    wait_for_health(&node.base, "ok\n");
    node
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An open event stream and what was decoded from it so far.
struct EventStream {
    body: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    decoder: Decoder,
    comments: usize,
}

impl EventStream {
    async fn open(base: &str, path: &str, last_event_id: Option<&str>) -> EventStream {
        let mut request = client().get(format!("{base}{path}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} on {base}");
        EventStream {
            body: Box::pin(response.bytes_stream()),
            decoder: Decoder::new(),
            comments: 0,
        }
    }

    /// The next `count` events, failing after the deadline.
    async fn take(&mut self, count: usize) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while events.len() < count {
                let chunk = std::future::poll_fn(|cx| self.body.as_mut().poll_next(cx))
                    .await
                    .expect("the stream stays open")
                    .unwrap();
                self.comments += chunk.windows(2).filter(|w| w == b"\n:").count();
                events.extend(self.decoder.decode(&chunk).unwrap());
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {count} events arrived", events.len()));
        events
    }

    /// Reads until `count` more comment lines (keepalives) arrived.
    async fn keepalives(&mut self, count: usize) {
        let goal = self.comments + count;
        tokio::time::timeout(DEADLINE, async {
            while self.comments < goal {
                let chunk = std::future::poll_fn(|cx| self.body.as_mut().poll_next(cx))
                    .await
                    .expect("the stream stays open")
                    .unwrap();
                self.comments += chunk.windows(2).filter(|w| w == b"\n:").count()
                    + usize::from(chunk.starts_with(b":"));
                assert!(
                    self.decoder.decode(&chunk).unwrap().is_empty(),
                    "no events expected"
                );
            }
        })
        .await
        .expect("keepalives keep coming");
    }
}

async fn publish(base: &str, namespace: &str, data: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/publish{namespace}"))
        .body(data.to_owned())
        .send()
        .await
        .unwrap()
}

async fn published_id(base: &str, namespace: &str, data: &str) -> String {
    let response = publish(base, namespace, data).await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[tokio::test]
async fn three_nodes_are_one_hub_through_the_hierarchy() {
    let redis = RedisServer::start();
    let (a, b, c) = (node(&redis, &[]), node(&redis, &[]), node(&redis, &[]));
    let mut pets_on_b = EventStream::open(&b.base, "/subscribe/pets", None).await;
    let mut sitters_on_a = EventStream::open(&a.base, "/subscribe/petsitters", None).await;
    let mut both_on_c = EventStream::open(&c.base, "/subscribe?ns=/pets&ns=/time", None).await;

    published_id(&c.base, "/pets/dogs", "Corgi").await;
    published_id(&a.base, "/time", "noon").await;
    published_id(&b.base, "/petsitters", "Sam").await;

    assert_eq!(data(&pets_on_b.take(1).await), ["Corgi"]);
    assert_eq!(data(&both_on_c.take(2).await), ["Corgi", "noon"]);
    // /petsitters got nothing of /pets: its first event is its own.
    assert_eq!(data(&sitters_on_a.take(1).await), ["Sam"]);
}

/// The node's `sse_broker_received_total`.
fn received(base: &str) -> u64 {
    let metrics = common::http_get(base, "/metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("sse_broker_received_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sse_broker_received_total in {metrics}"))
}

#[tokio::test]
async fn a_node_receives_one_message_per_event_it_needs_and_none_it_does_not() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, &[]), node(&redis, &[]));
    // Ten subscribers of /pets on node B; node A has one of /petsitters only.
    let mut on_b = Vec::new();
    for _ in 0..10 {
        on_b.push(EventStream::open(&b.base, "/subscribe/pets", None).await);
    }
    let mut sitters_on_a = EventStream::open(&a.base, "/subscribe/petsitters", None).await;
    for i in 0..5 {
        published_id(&a.base, "/pets/dogs", &i.to_string()).await;
    }
    published_id(&b.base, "/petsitters", "Sam").await;
    for stream in &mut on_b {
        assert_eq!(stream.take(5).await.len(), 5);
    }
    assert_eq!(data(&sitters_on_a.take(1).await), ["Sam"]);
    assert_eq!(
        received(&b.base),
        5,
        "one message per event, not one per subscriber"
    );
    assert_eq!(received(&a.base), 1, "nothing of /pets reached node A");
}

#[tokio::test]
async fn last_event_id_from_one_node_resumes_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, &[]), node(&redis, &[]));
    let mut on_a = EventStream::open(&a.base, "/subscribe/feed", None).await;
    published_id(&a.base, "/feed", "1").await;
    published_id(&b.base, "/feed", "2").await;
    let seen = on_a.take(2).await;
    drop(on_a);
    published_id(&b.base, "/feed", "3").await;
    published_id(&a.base, "/feed/deeper", "4").await;
    let mut on_b =
        EventStream::open(&b.base, "/subscribe/feed", Some(&seen[1].last_event_id)).await;
    published_id(&a.base, "/feed", "5").await;
    assert_eq!(data(&on_b.take(3).await), ["3", "4", "5"]);
}

#[tokio::test]
async fn a_killed_node_loses_its_clients_to_another_without_loss() {
    let redis = RedisServer::start();
    let (mut a, b, c) = (node(&redis, &[]), node(&redis, &[]), node(&redis, &[]));
    let mut on_a = EventStream::open(&a.base, "/subscribe/feed", None).await;
    published_id(&c.base, "/feed", "before").await;
    let last = on_a.take(1).await.remove(0).last_event_id;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    for data in ["while moving 1", "while moving 2"] {
        published_id(&c.base, "/feed", data).await;
    }
    let mut on_b = EventStream::open(&b.base, "/subscribe/feed", Some(&last)).await;
    published_id(&c.base, "/feed", "after").await;
    assert_eq!(
        data(&on_b.take(3).await),
        ["while moving 1", "while moving 2", "after"]
    );
}

#[tokio::test]
async fn redis_lost_refuses_publishing_keeps_streams_and_recovers() {
    let mut redis = RedisServer::start();
    let (a, b) = (
        node(&redis, &["--keepalive", "100ms"]),
        node(&redis, &["--keepalive", "100ms"]),
    );
    let mut stream = EventStream::open(&b.base, "/subscribe/feed", None).await;
    published_id(&a.base, "/feed", "before").await;
    assert_eq!(data(&stream.take(1).await), ["before"]);

    redis.kill();
    wait_for_health(
        &b.base,
        "degraded: the cluster's Redis is unreachable; publishing answers 503\n",
    );
    let started = std::time::Instant::now();
    let refused = publish(&a.base, "/feed", "lost").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused within the bound"
    );
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        sse_hyper::ErrorCode::BrokerUnavailable.as_str()
    );
    stream.keepalives(2).await;

    redis.restart();
    wait_for_health(&a.base, "ok\n");
    wait_for_health(&b.base, "ok\n");
    published_id(&a.base, "/feed", "after").await;
    let events = stream.take(2).await;
    assert_eq!(events[0].event_type, "sse-gap", "Redis came back empty");
    assert_eq!(events[1].data, "after");
}

#[tokio::test]
async fn status_and_metrics_show_the_cluster() {
    let redis = RedisServer::start();
    let (a, _b) = (node(&redis, &[]), node(&redis, &[]));
    published_id(&a.base, "/x", "counted").await;
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&common::http_get(&a.base, "/admin/status.json")).unwrap();
        let nodes = status["cluster"]["nodes"].as_array().map_or(0, Vec::len);
        if nodes == 2 {
            assert_eq!(status["cluster"]["name"], "it");
            assert_eq!(status["cluster"]["connected"], true);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = common::http_get(&a.base, "/metrics");
    assert!(
        metrics.contains("sse_broker_published_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sse_broker_connected 1"), "{metrics}");
    assert!(
        metrics.contains("sse_broker_publish_seconds_count 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn ssectl_publish_and_tail_work_unchanged_against_any_node() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, &[]), node(&redis, &[]));
    let tail = common::ssectl()
        .args([
            "tail", "--server", &a.base, "/pets", "--count", "1", "--format", "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_subscribers(&a.base, 1);
    let published = common::run(&[
        "publish",
        "--server",
        &b.base,
        "/pets/dogs",
        "new-dog",
        "Corgi",
    ]);
    assert!(published.status.success(), "{published:?}");
    let id = String::from_utf8(published.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let output = common::wait_with_deadline(tail);
    assert!(output.status.success(), "{output:?}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["type"], "new-dog");
    assert_eq!(line["data"], "Corgi");
    assert_eq!(
        line["id"],
        id.as_str(),
        "the id ssectl publish printed is the cluster's"
    );
}

#[test]
fn bench_publishing_on_one_node_is_read_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, &[]), node(&redis, &[]));
    let report = common::bench_across(&b.base, &a.base, 3);
    assert!(report.events_published > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(
        report.events_total,
        report.events_published * 3,
        "{report:?}"
    );
    let latency = report.latency_ms.expect("published events are timed");
    assert_eq!(latency.samples, report.events_published * 3);
}

#[tokio::test]
async fn signed_tokens_work_across_nodes() {
    const SECRET: &str = "cluster secret";
    let redis = RedisServer::start();
    let (a, b) = (
        node(&redis, &["--jwt-secret", SECRET]),
        node(&redis, &["--jwt-secret", SECRET]),
    );
    let minted = common::run(&[
        "token",
        "--secret",
        SECRET,
        "--subscribe",
        "/users/42",
        "--publish",
        "/users/42",
    ]);
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    let tail = common::ssectl()
        .args(["tail", "--server", &a.base, "/users/42", "--token", &token])
        .args(["--count", "1", "--format", "json", "--timeout", "30s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_subscribers(&a.base, 1);
    let denied = common::run(&[
        "publish",
        "--server",
        &b.base,
        "--token",
        &token,
        "/users/420",
        "x",
    ]);
    assert!(!denied.status.success(), "{denied:?}");
    let published = common::run(&[
        "publish",
        "--server",
        &b.base,
        "--token",
        &token,
        "/users/42/inbox",
        "hello",
    ]);
    assert!(published.status.success(), "{published:?}");
    let output = common::wait_with_deadline(tail);
    assert!(output.status.success(), "{output:?}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        line["data"], "hello",
        "published on b with a token, received on a"
    );
}

#[tokio::test]
async fn a_retained_id_is_refused_on_every_node_and_resuming_loses_nothing() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, &[]), node(&redis, &[]));
    for id in ["7", "8", "9"] {
        published_id(&a.base, &format!("/orders?id={id}"), id).await;
    }
    let refused = publish(&b.base, "/chat?id=7", "hi").await;
    assert_eq!(refused.status(), 409);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "duplicate_id", "{body}");

    let batch = |lines: &'static str| {
        client()
            .post(format!("{}/publish", b.base))
            .header("content-type", "application/x-ndjson")
            .body(lines)
            .send()
    };
    for lines in [
        "{\"namespace\":\"/orders\",\"data\":\"10\",\"id\":\"10\"}\n\
         {\"namespace\":\"/orders\",\"data\":\"dup\",\"id\":\"8\"}\n",
        "{\"namespace\":\"/orders\",\"data\":\"11\",\"id\":\"11\"}\n\
         {\"namespace\":\"/orders\",\"data\":\"again\",\"id\":\"11\"}\n",
    ] {
        let refused = batch(lines).await.unwrap();
        assert_eq!(refused.status(), 409);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "duplicate_id", "{body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with("line 2"),
            "{body}"
        );
    }

    let mut resumed = EventStream::open(&b.base, "/subscribe/orders", Some("7")).await;
    published_id(&a.base, "/orders?id=12", "12").await;
    assert_eq!(
        data(&resumed.take(3).await),
        ["8", "9", "12"],
        "no gap, and nothing of the refused batches"
    );
}
