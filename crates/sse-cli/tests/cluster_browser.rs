//! A real browser against a cluster: headless Chromium (see sse-hyper's
//! `tests/support/chromium.rs`), a real `redis-server` and `ssectl serve --redis`
//! processes. An `EventSource` page follows its stream from a killed node to a surviving
//! one without missing or repeating an event, and the admin page shows the cluster.

#[path = "../../sse-hyper/tests/support/chromium.rs"]
mod chromium;
mod common;
#[path = "../../sse-redis/tests/support/redis_server.rs"]
mod redis_server;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chromium::chromium;
use common::{serve, wait_for_health, Serving, DEADLINE};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use redis_server::RedisServer;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

const CLUSTER: &str = "browsers";

/// A node of the test's cluster, named `name`, once it answers health checks.
fn node(redis: &RedisServer, name: &str) -> Serving {
    let url = redis.url();
    let node = serve(&["--redis", &url, "--cluster", CLUSTER, "--node-name", name]);
    wait_for_health(&node.base, "ok\n");
    node
}

async fn published_id(base: &str, namespace: &str, data: &str) -> String {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/publish{namespace}"))
        .body(data.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "publish {data:?} on {base}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// The page under test. Which node to stream from comes from the page's own origin
/// (`GET /node`, as a load balancer would decide), empty while there is none. An
/// `EventSource` cannot change its URL and a new one sends no `Last-Event-ID` header, so
/// moving to another node means a new `EventSource` whose URL carries the last id seen as
/// `?lastEventId=`. Every change is posted back to the origin as a report.
const MOVING_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>EventSource moving between nodes</title>
<script>
"use strict";
const log = [], opened = [];
let seq = 0, errors = 0, lastId = "";
function report() {
  seq += 1;
  fetch("/report", { method: "POST", headers: { "Content-Type": "application/json" },
                     body: JSON.stringify({ seq, errors, opened, log }) }).catch(() => {});
}
async function connect() {
  const node = await fetch("/node", { cache: "no-store" }).then((r) => r.text(), () => "");
  if (!node) { setTimeout(connect, 50); return; }
  const url = node + "/subscribe/feed" + (lastId ? "?lastEventId=" + encodeURIComponent(lastId) : "");
  const source = new EventSource(url);
  source.onopen = () => { opened.push(url); report(); };
  source.onmessage = (e) => {
    lastId = e.lastEventId;
    log.push({ data: e.data, id: e.lastEventId });
    report();
  };
  source.onerror = () => { source.close(); errors += 1; report(); setTimeout(connect, 50); };
}
connect();
</script>"#;

/// What the page last reported.
#[derive(Debug, Clone, Default, Deserialize)]
struct Report {
    /// Reports are posted concurrently and may arrive out of order; the highest wins.
    seq: u64,
    errors: u64,
    opened: Vec<String>,
    log: Vec<Received>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Received {
    data: String,
    id: String,
}

/// The page's own origin (so its `EventSource` is cross-origin, as in production): serves
/// the page, says which node to use, and keeps the page's latest report.
struct PageOrigin {
    addr: SocketAddr,
    node: Arc<watch::Sender<String>>,
    reports: watch::Receiver<Report>,
}

impl PageOrigin {
    async fn start(html: &'static str) -> PageOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = Arc::new(watch::Sender::new(String::new()));
        let (report_tx, reports) = watch::channel(Report::default());
        let report_tx = Arc::new(report_tx);
        let shared_node = node.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (node, reports) = (shared_node.clone(), report_tx.clone());
                let service =
                    service_fn(move |request| answer(request, html, node.clone(), reports.clone()));
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        PageOrigin {
            addr,
            node,
            reports,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Tells the page which node to connect to next (`""`: none yet).
    fn stream_from(&self, base: &str) {
        self.node.send_replace(base.to_owned());
    }

    /// Waits for a report that satisfies `accept` and returns it.
    async fn wait_for(&mut self, what: &str, accept: impl Fn(&Report) -> bool) -> Report {
        let latest = self.reports.clone();
        match tokio::time::timeout(DEADLINE, self.reports.wait_for(|r| accept(r))).await {
            Ok(report) => report.expect("the page origin runs").clone(),
            Err(_) => panic!(
                "timed out waiting for {what}; the page's last report: {:?}",
                *latest.borrow()
            ),
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    html: &'static str,
    node: Arc<watch::Sender<String>>,
    reports: Arc<watch::Sender<Report>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        response
            .headers_mut()
            .insert("cache-control", "no-store".parse().unwrap());
        Ok(response)
    };
    match (request.method().clone(), request.uri().path()) {
        (Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", html.into()),
        (Method::GET, "/node") => {
            let base = node.borrow().clone();
            reply(StatusCode::OK, "text/plain", base.into())
        }
        (Method::POST, "/report") => {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let report: Report = serde_json::from_slice(&body).expect("a report from the page");
            reports.send_if_modified(|latest| {
                let newer = report.seq > latest.seq;
                if newer {
                    *latest = report;
                }
                newer
            });
            reply(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", Bytes::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_source_moves_to_another_node_and_misses_nothing() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "node-a");
    let b = node(&redis, "node-b");
    let mut origin = PageOrigin::start(MOVING_PAGE).await;
    origin.stream_from(&a.base);
    let profile = tempfile::tempdir().unwrap();
    let mut browser = chromium(&profile)
        .arg(origin.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    origin
        .wait_for("the page to connect to node A", |r| r.opened.len() == 1)
        .await;

    let mut expected = Vec::new();
    for (base, data) in [(&a.base, "1 on A"), (&b.base, "2 on B")] {
        let id = published_id(base, "/feed", data).await;
        expected.push(Received {
            data: data.into(),
            id,
        });
    }
    origin
        .wait_for("both events through node A", |r| r.log.len() == 2)
        .await;

    admin_page_shows_both_nodes(&b.base).await;

    // Node A crashes. Until the origin names another node the page has nowhere to go, so
    // what is published now is missed, and must come back from the shared history.
    origin.stream_from("");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    origin
        .wait_for("the page to notice node A is gone", |r| r.errors >= 1)
        .await;
    for data in ["3 while away", "4 while away"] {
        let id = published_id(&b.base, "/feed", data).await;
        expected.push(Received {
            data: data.into(),
            id,
        });
    }
    origin.stream_from(&b.base);
    let moved = origin
        .wait_for("the page to connect to node B", |r| r.opened.len() == 2)
        .await;
    assert_eq!(
        moved.opened[1],
        // Cluster ids are Redis stream ids (`<ms>-<n>`), which need no escaping.
        format!("{}/subscribe/feed?lastEventId={}", b.base, expected[1].id),
        "the new EventSource resumes after the last id seen"
    );
    let live = published_id(&b.base, "/feed", "5 live on B").await;
    expected.push(Received {
        data: "5 live on B".into(),
        id: live.clone(),
    });
    let report = origin
        .wait_for("the live event on node B", |r| {
            r.log.iter().any(|received| received.id == live)
        })
        .await;
    assert_eq!(
        report.log, expected,
        "every event once, in order: the missed ones, then live"
    );
    assert_eq!(report.errors, 1, "node B's stream stayed up");
    browser.kill().await.ok();
}

/// Waits until `base`'s status lists both nodes with the browser's stream counted on node
/// A, then checks what Chromium renders of its admin page and takes a screenshot.
async fn admin_page_shows_both_nodes(base: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&common::http_get(base, "/admin/status.json")).unwrap();
        let nodes = status["cluster"]["nodes"].as_array().cloned();
        let a_streams = nodes
            .iter()
            .flatten()
            .find(|n| n["node"] == "node-a")
            .map(|n| n["connections"].clone());
        if nodes.map_or(0, |n| n.len()) == 2 && a_streams == Some(1.into()) {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let url = format!("{base}/admin/");
    let dom = dump_dom(&url).await;
    let section = start_tag(&dom, "cluster");
    assert!(
        !section.contains("hidden"),
        "the cluster is shown: {section}"
    );
    assert!(
        dom.contains(&format!(
            r#"<span id="cluster-name" class="name">{CLUSTER}</span>"#
        )),
        "the cluster's name:\n{dom}"
    );
    assert!(
        start_tag(&dom, "cluster-redis").contains(r#"class="redis ok""#)
            && dom.contains(">connected to Redis<"),
        "connected, in green:\n{dom}"
    );
    assert!(
        dom.contains(r#"<div id="cluster-error" role="alert"></div>"#),
        "no error:\n{dom}"
    );
    let rows = table_rows(&dom, "cluster-nodes");
    assert_eq!(rows.len(), 2, "one row per node: {rows:?}");
    let (a_tag, a_cells) = &rows[0];
    let (b_tag, b_cells) = &rows[1];
    assert_eq!(a_tag, "<tr>", "{rows:?}");
    assert_eq!(a_cells[0], "node-a");
    assert_eq!(a_cells[1], "1", "the browser's stream on node A: {rows:?}");
    assert_eq!(
        b_tag, r#"<tr class="self">"#,
        "this node is marked: {rows:?}"
    );
    assert_eq!(b_cells[0], r#"node-b<span class="tag">this node</span>"#);
    for cells in [a_cells, b_cells] {
        assert_eq!(cells.len(), 7, "{cells:?}");
        assert!(
            cells[3].ends_with("/s") && cells[4].ends_with("/s"),
            "{cells:?}"
        );
        let seen = cells[6]
            .strip_suffix("s ago")
            .expect("last seen, in seconds");
        assert!(
            seen.parse::<u64>().is_ok_and(|s| s < 10),
            "a current heartbeat: {cells:?}"
        );
    }
    assert!(!dom.contains("NaN"), "no NaN anywhere:\n{dom}");
    screenshot(&url, "cluster-admin-page.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_shows_a_node_cut_off_from_redis() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "node-a");
    redis.kill();
    wait_for_health(
        &a.base,
        "degraded: the cluster's Redis is unreachable; publishing answers 503\n",
    );
    let url = format!("{}/admin/", a.base);
    let dom = dump_dom(&url).await;
    let section = start_tag(&dom, "cluster");
    assert!(
        !section.contains("hidden"),
        "the cluster is shown: {section}"
    );
    assert!(
        start_tag(&dom, "cluster-redis").contains(r#"class="redis bad""#)
            && dom.contains(">Redis unreachable<"),
        "cut off, in red:\n{dom}"
    );
    let error = dom
        .split_once(r#"<div id="cluster-error" role="alert">"#)
        .and_then(|(_, rest)| rest.split_once("</div>"))
        .map(|(error, _)| error)
        .expect("the error element");
    assert!(
        error.starts_with("Cannot list the nodes: ") && error.len() > 30,
        "why the nodes are unknown: {error:?}"
    );
    let rows = table_rows(&dom, "cluster-nodes");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].1[0].contains("Nodes unknown while Redis cannot be reached."),
        "{rows:?}"
    );
    screenshot(&url, "cluster-admin-page-cut-off.png").await;
}

/// The DOM Chromium has built after running the page's scripts for a while.
async fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        DEADLINE,
        chromium(&profile)
            .args(["--virtual-time-budget=5000", "--dump-dom", url])
            .stderr(Stdio::null())
            .output(),
    )
    .await
    .expect("chromium --dump-dom in time")
    .expect("run chromium");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Saves a screenshot of `url` in the test's scratch directory, for people to look at.
async fn screenshot(url: &str, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    let profile = tempfile::tempdir().unwrap();
    let status = tokio::time::timeout(
        DEADLINE,
        chromium(&profile)
            .args(["--virtual-time-budget=5000", "--window-size=1200,900"])
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await
    .expect("chromium --screenshot in time")
    .expect("run chromium");
    assert!(status.success());
    let png = std::fs::read(&path).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
}

/// The start tag of the element `id="{id}"` in a dumped DOM.
fn start_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let start = dom[..at].rfind('<').expect("a start tag");
    let end = at + dom[at..].find('>').expect("end of the start tag");
    &dom[start..=end]
}

/// The rows of `<tbody id="{id}">`: each row's start tag and its cells' inner HTML.
fn table_rows(dom: &str, id: &str) -> Vec<(String, Vec<String>)> {
    let tag = start_tag(dom, id);
    let body = dom.split_once(tag).expect("the table body").1;
    let body = body
        .split_once("</tbody>")
        .expect("end of the table body")
        .0;
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let (attributes, rest) = row.split_once('>').expect("a row");
            let cells = rest
                .split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = cell.split_once('>').expect("a cell").1;
                    inner
                        .split_once("</td>")
                        .expect("end of a cell")
                        .0
                        .to_owned()
                })
                .collect();
            (format!("<tr{attributes}>"), cells)
        })
        .collect()
}
