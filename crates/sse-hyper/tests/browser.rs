//! A real browser against the server: headless Chromium (see `support/chromium.rs`).

#[path = "support/chromium.rs"]
mod chromium;
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chromium::chromium;
use common::{client, wait_until, within, TestServer};
use futures::StreamExt;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_core::{Decoder, Event, Namespace};
use sse_hyper::{CorsOrigins, Server};
use tokio::net::TcpListener;
use tokio::process::Child;

/// Serves a page origin on a port of its own: `answer` gives the HTML body of each
/// request.
async fn serve_origin<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let body = answer(request);
                    async move {
                        let mut response = hyper::Response::new(Full::new(Bytes::from(body.await)));
                        response
                            .headers_mut()
                            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Serves one HTML page on its own origin, so the page's EventSource is cross-origin
/// (exercising CORS) and keeps running while the SSE server restarts.
async fn serve_page(html: String) -> SocketAddr {
    serve_origin(move |_request| {
        let html = html.clone();
        async move { html }
    })
    .await
}

fn event_source_page(sse_origin: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>EventSource test</title>
<script>
const sse = "{sse_origin}";
const log = [];
let opens = 0;
const source = new EventSource(sse + "/subscribe/pets");
function report() {{
  fetch(sse + "/publish/browser-report", {{
    method: "POST",
    headers: {{ "Content-Type": "application/json" }},
    body: JSON.stringify({{ event: "report", data: {{ opens, log }} }}),
  }}).catch(() => {{}});
}}
source.addEventListener("open", () => {{ opens += 1; report(); }});
for (const type of ["new-dog", "new-cat", "message"]) {{
  source.addEventListener(type, (e) => {{
    log.push({{ type: e.type, data: e.data, id: e.lastEventId }});
    report();
  }});
}}
</script>"#
    )
}

/// The browser's reports, as they reach the hub.
struct Reports {
    subscription: sse_core::Subscription,
    decoder: Decoder,
}

impl Reports {
    /// Waits for a report that satisfies `accept` and returns it.
    async fn wait_for(
        &mut self,
        what: &str,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        within(what, async {
            while let Some(bytes) = self.subscription.next().await {
                for event in self.decoder.decode(&bytes).unwrap() {
                    let report: serde_json::Value = serde_json::from_str(&event.data).unwrap();
                    if accept(&report) {
                        return report;
                    }
                }
            }
            panic!("report stream ended");
        })
        .await
    }
}

fn log_len(report: &serde_json::Value) -> usize {
    report["log"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_receives_named_events_reconnects_and_resumes_without_loss() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sse_addr = listener.local_addr().unwrap();
    let page = serve_page(event_source_page(&format!("http://{sse_addr}"))).await;
    // The page publishes its reports anonymously, so its origin must be listed by name.
    let builder = Server::builder()
        .retry(Some(Duration::from_millis(200)))
        .cors(CorsOrigins::List(vec![format!("http://{page}")]));
    let first = TestServer::start_on(listener, builder.clone());
    let hub = first.hub.clone();
    let mut reports = Reports {
        subscription: hub.subscribe(&[Namespace::parse("/browser-report").unwrap()]),
        decoder: Decoder::new(),
    };
    let profile = tempfile::tempdir().unwrap();
    let mut browser: Child = chromium(&profile)
        .arg(format!("http://{page}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    reports
        .wait_for("the page to connect", |r| r["opens"] == 1)
        .await;
    let mut expected = Vec::new();
    for (namespace, kind, data) in [
        ("/pets/dogs", "new-dog", "Corgi"),
        ("/petsitters", "hired", "never delivered to /pets"),
        ("/pets/cats/persian", "new-cat", "Snowball"),
        ("/pets/dogs", "new-dog", "Beagle"),
    ] {
        let reply = first
            .publish(&format!("/publish{namespace}?event={kind}"), data)
            .await;
        if namespace.starts_with("/pets/") {
            expected.push((
                kind.to_owned(),
                data.to_owned(),
                reply["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    reports.wait_for("three events", |r| log_len(r) == 3).await;

    // The server goes away: the stream ends and the browser starts reconnecting. Events
    // published meanwhile must reach it through Last-Event-ID replay.
    first.shutdown().await.unwrap();
    for (kind, data) in [("new-cat", "Sphynx"), ("new-dog", "Husky")] {
        let published = hub
            .publish(
                &Namespace::parse("/pets/x").unwrap(),
                Event::new(data).with_event(kind),
            )
            .unwrap();
        expected.push((kind.to_owned(), data.to_owned(), published.id.to_string()));
    }
    let listener = TcpListener::bind(sse_addr)
        .await
        .expect("rebind the same port");
    let second = TestServer::start_on(listener, builder.hub(hub.clone()));
    reports
        .wait_for("the page to reconnect and replay", |r| {
            r["opens"] == 2 && log_len(r) == 5
        })
        .await;
    let reply = second
        .publish("/publish/pets?event=new-dog", "Live again")
        .await;
    expected.push((
        "new-dog".into(),
        "Live again".into(),
        reply["id"].as_str().unwrap().to_owned(),
    ));
    let report = reports
        .wait_for("the live event after reconnecting", |r| log_len(r) == 6)
        .await;

    let log: Vec<(String, String, String)> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_owned();
            (text("type"), text("data"), text("id"))
        })
        .collect();
    assert_eq!(log, expected, "every event once, in order, with its id");
    browser.kill().await.ok();
}

const ADMIN_TOKEN: &str = "let-me-in";

/// The admin status's `rate_history`, one point per sampled second, oldest first.
async fn rate_history(server: &TestServer) -> Vec<serde_json::Value> {
    let status: serde_json::Value = within(
        "status.json",
        client()
            .get(server.url("/admin/status.json"))
            .bearer_auth(ADMIN_TOKEN)
            .send(),
    )
    .await
    .expect("status request")
    .json()
    .await
    .expect("status JSON");
    status["rate_history"]
        .as_array()
        .expect("rate_history is an array")
        .clone()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Publishes a few bursts over HTTP, each in its own sampled second, and returns the
/// history once it holds them all.
async fn publish_bursts(server: &TestServer, sizes: &[usize]) -> Vec<serde_json::Value> {
    for &size in sizes {
        for n in 0..size {
            server
                .publish("/publish/pets/dogs?event=new-dog", &format!("dog {n}"))
                .await;
        }
        // A sample taken after the burst counts all of it, and the next burst falls into
        // a later second.
        let published_by = unix_now();
        wait_until("a rate sample after the burst", || async move {
            rate_history(server)
                .await
                .last()
                .and_then(|point| point["at"].as_f64())
                .is_some_and(|at| at >= published_by)
        })
        .await;
    }
    rate_history(server).await
}

/// The start tag of the element `id="{id}"` in a DOM dumped by Chromium.
fn start_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let start = dom[..at].rfind('<').expect("a start tag");
    let end = at + dom[at..].find('>').expect("end of the start tag");
    &dom[start..=end]
}

/// One chart as the browser left it: the `<svg>` start tag and the polyline's points.
struct RenderedChart {
    tag: String,
    points: Vec<(f64, f64)>,
}

impl RenderedChart {
    /// Reads the chart `<svg id="{id}">` out of a DOM dumped by Chromium.
    fn find(dom: &str, id: &str) -> RenderedChart {
        let at = dom
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
        let tag_start = dom[..at].rfind("<svg").expect("the chart is an <svg>");
        let tag_end = at + dom[at..].find('>').expect("end of the start tag");
        let svg_end = at + dom[at..].find("</svg>").expect("end of the chart");
        let svg = &dom[tag_start..svg_end];
        let points = svg
            .split_once("<polyline")
            .and_then(|(_, rest)| rest.split_once(r#"points=""#))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(points, _)| points)
            .unwrap_or_else(|| panic!("#{id} has no polyline with points:\n{svg}"));
        let points = points
            .split_whitespace()
            .map(|pair| {
                let (x, y) = pair.split_once(',').expect("an x,y pair");
                let coordinate = |text: &str| -> f64 {
                    text.parse()
                        .unwrap_or_else(|_| panic!("#{id}: {pair:?} is not two numbers"))
                };
                (coordinate(x), coordinate(y))
            })
            .collect();
        RenderedChart {
            tag: dom[tag_start..=tag_end].to_owned(),
            points,
        }
    }

    /// Checks that the chart draws at least `min_points` finite points, not all at one
    /// height, and describes itself to assistive technology.
    fn assert_drawn(&self, min_points: usize, summary_start: &str) {
        let tag = &self.tag;
        assert!(
            self.points.len() >= min_points,
            "{} points, want at least {min_points}: {tag}",
            self.points.len()
        );
        assert!(
            self.points
                .iter()
                .all(|(x, y)| x.is_finite() && y.is_finite()),
            "finite coordinates: {:?}",
            self.points
        );
        let (low, high) = self
            .points
            .iter()
            .fold((f64::MAX, f64::MIN), |(low, high), &(_, y)| {
                (low.min(y), high.max(y))
            });
        assert!(
            high - low > 10.0,
            "the line rises and falls: {:?}",
            self.points
        );
        assert!(
            tag.contains(r#"role="img""#),
            "an image to assistive technology: {tag}"
        );
        assert!(
            tag.contains(&format!(r#"aria-label="{summary_start}"#)),
            "a summary starting {summary_start:?}: {tag}"
        );
        assert!(!tag.contains("peak 0/s"), "a non-zero peak: {tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_renders_and_shows_a_live_connection() {
    let server = TestServer::start(Server::builder().admin_token(ADMIN_TOKEN)).await;
    let stream = client()
        .get(server.url("/subscribe/pets/dogs"))
        .header("user-agent", "admin-page-test")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    server.wait_for_subscribers(1).await;
    let history = publish_bursts(&server, &[3, 12, 6]).await;
    let busy_seconds = history
        .iter()
        .filter(|point| point["publish_per_second"].as_f64() > Some(0.0))
        .count();
    assert!(busy_seconds >= 3, "one busy second per burst: {history:?}");

    let url = server.url(&format!("/admin/?token={ADMIN_TOKEN}"));
    let profile = tempfile::tempdir().unwrap();
    let dom = within(
        "chromium --dump-dom",
        chromium(&profile)
            .args(["--virtual-time-budget=5000", "--dump-dom", &url])
            .stderr(Stdio::null())
            .output(),
    )
    .await
    .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("/pets/dogs"),
        "the connection's namespace is listed:\n{dom}"
    );
    assert!(
        dom.contains("admin-page-test"),
        "its user agent is listed:\n{dom}"
    );
    assert!(dom.contains(">live<"), "the page says it is live:\n{dom}");
    assert!(!dom.contains("NaN"), "no NaN anywhere:\n{dom}");
    let cluster = start_tag(&dom, "cluster");
    assert!(
        cluster.contains(" hidden"),
        "a single server shows no cluster section: {cluster}"
    );
    // The page loaded after the bursts, so it has every point we saw and maybe more.
    RenderedChart::find(&dom, "publish-chart")
        .assert_drawn(history.len(), "Publish rate over the last 5 minutes, peak ");
    RenderedChart::find(&dom, "delivery-chart").assert_drawn(
        history.len(),
        "Delivery rate over the last 5 minutes, peak ",
    );

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let profile = tempfile::tempdir().unwrap();
    let status = within(
        "chromium --screenshot",
        chromium(&profile)
            .args(["--virtual-time-budget=5000", "--window-size=1200,900"])
            .arg(format!("--screenshot={}", screenshot.display()))
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await
    .expect("run chromium");
    assert!(status.success());
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a rendered page, not a blank one ({} bytes)",
        png.len()
    );
    drop(stream);
}

/// A page origin for the signed-token test: `/` is the page, `/token` hands out a fresh
/// token once the test allows it, and `POST /report` passes the page's reports to the
/// test (so reporting needs no token of its own).
async fn serve_token_page(
    page: impl Fn() -> String + Clone + Send + Sync + 'static,
    fresh_token: String,
    hand_out: tokio::sync::watch::Receiver<bool>,
    reports: tokio::sync::mpsc::UnboundedSender<serde_json::Value>,
) -> SocketAddr {
    use http_body_util::BodyExt;
    serve_origin(move |request: hyper::Request<hyper::body::Incoming>| {
        let (page, fresh_token) = (page.clone(), fresh_token.clone());
        let (mut hand_out, reports) = (hand_out.clone(), reports.clone());
        async move {
            match request.uri().path() {
                "/token" => {
                    let _ = hand_out.wait_for(|allowed| *allowed).await;
                    fresh_token
                }
                "/report" => {
                    let bytes = request.into_body().collect().await.unwrap().to_bytes();
                    let _ = reports.send(serde_json::from_slice(&bytes).unwrap());
                    String::new()
                }
                _ => page(),
            }
        }
    })
    .await
}

/// Waits for a report of the page that satisfies `accept`.
async fn wait_for_report(
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    what: &str,
    accept: fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    within(what, async {
        loop {
            let report = reports.recv().await.expect("the page reports");
            if accept(&report) {
                return report;
            }
        }
    })
    .await
}

/// Opens `EventSource` with `?token=`; when the stream is refused for good (its token
/// expired, so the browser's own reconnection gets 401), fetches a fresh token and opens
/// a new `EventSource` that resumes after the last event seen.
fn token_page(sse_origin: &str, first_token: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>EventSource with a token</title>
<script>
const sse = "{sse_origin}";
const log = [];
let opens = 0, refusals = 0, lastId = "";
function report() {{
  fetch("/report", {{ method: "POST", body: JSON.stringify({{ opens, refusals, log }}) }});
}}
function connect(token) {{
  let url = sse + "/subscribe/feed?token=" + encodeURIComponent(token);
  if (lastId) url += "&lastEventId=" + encodeURIComponent(lastId);
  const source = new EventSource(url);
  source.onopen = () => {{ opens += 1; report(); }};
  source.onmessage = (e) => {{ lastId = e.lastEventId; log.push({{ data: e.data, id: e.lastEventId }}); report(); }};
  source.onerror = async () => {{
    if (source.readyState !== EventSource.CLOSED) return;
    refusals += 1; report();
    const fresh = await (await fetch("/token")).text();
    connect(fresh);
  }};
}}
connect("{first_token}");
</script>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_with_a_query_token_is_cut_off_at_expiry_and_resumes_with_a_fresh_one() {
    const SECRET: &str = "browser secret";
    const PUBLISHER: &str = "browser-test-publisher";
    let signer = sse_hyper::SigningKey::hs256_secret(SECRET).unwrap();
    let feed = [Namespace::parse("/feed").unwrap()];
    let server = TestServer::start(
        Server::builder()
            .jwt(sse_hyper::JwtKey::hs256_secret(SECRET).unwrap())
            .jwt_leeway(Duration::ZERO)
            .publish_token(PUBLISHER)
            .retry(Some(Duration::from_millis(200))),
    )
    .await;
    let publish = |data: &'static str| {
        let url = server.url("/publish/feed");
        async move {
            let response = client()
                .post(url)
                .bearer_auth(PUBLISHER)
                .body(data)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            let reply: serde_json::Value = response.json().await.unwrap();
            (data.to_owned(), reply["id"].as_str().unwrap().to_owned())
        }
    };
    let fresh = signer.sign(&feed, &[], Duration::from_secs(600)).unwrap();
    // The short token is signed when the page is loaded, not before Chromium starts: a
    // slow start on a loaded machine must not use up its lifetime before the first event.
    let sse_origin = format!("http://{}", server.addr);
    let first_page = move || {
        let short = signer.sign(&feed, &[], Duration::from_secs(4)).unwrap();
        token_page(&sse_origin, &short)
    };
    let (allow, hand_out) = tokio::sync::watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let page = serve_token_page(first_page, fresh, hand_out, report_tx).await;
    let profile = tempfile::tempdir().unwrap();
    let mut browser: Child = chromium(&profile)
        .arg(format!("http://{page}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");

    wait_for_report(&mut report_rx, "the page to connect", |r| r["opens"] == 1).await;
    let mut expected = vec![publish("before 1").await, publish("before 2").await];
    wait_for_report(&mut report_rx, "two events", |r| log_len(r) == 2).await;
    // The token expires: the stream ends, the browser's reconnection with the same URL is
    // refused, and the page asks for a fresh token, which it gets only after these two
    // events are published, so they can only reach it by replay.
    wait_for_report(&mut report_rx, "the stream to end and be refused", |r| {
        r["refusals"] == 1
    })
    .await;
    assert_eq!(server.hub.stats().subscribers, 0);
    expected.push(publish("while away 1").await);
    expected.push(publish("while away 2").await);
    allow.send(true).unwrap();
    wait_for_report(&mut report_rx, "the page to resume", |r| {
        r["opens"] == 2 && log_len(r) == 4
    })
    .await;
    expected.push(publish("live again").await);
    let report = wait_for_report(&mut report_rx, "the live event", |r| log_len(r) == 5).await;
    let log: Vec<(String, String)> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(log, expected, "every event once, in order, with its id");
    assert_eq!(report["refusals"], 1);
    browser.kill().await.ok();
}
