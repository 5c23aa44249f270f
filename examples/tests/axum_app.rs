//! The axum example as a user meets it: its own session check in front of a hub
//! stream, and the publish API under `/api`, over real loopback sockets.

#[allow(dead_code)]
#[path = "../axum.rs"]
mod axum_example;

use std::time::Duration;

use axum_example::{app, Sessions, PUBLISH_TOKEN};
use futures::StreamExt;
use sse_core::Decoder;

const DEADLINE: Duration = Duration::from_secs(30);

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(Sessions::demo())).await });
    base
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn publish(base: &str, namespace: &str, data: &str) -> reqwest::StatusCode {
    client()
        .post(format!("{base}/api/publish{namespace}"))
        .bearer_auth(PUBLISH_TOKEN)
        .body(data.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

/// Reads events' data from a stream until `count` have arrived.
async fn next_data(response: reqwest::Response, count: usize) -> Vec<String> {
    let mut body = response.bytes_stream();
    let mut decoder = Decoder::new();
    let mut data = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while data.len() < count {
            let chunk = body.next().await.expect("the stream stays open").unwrap();
            for event in decoder.decode(&chunk).unwrap() {
                data.push(event.data);
            }
        }
    })
    .await
    .expect("the events arrive");
    data
}

#[tokio::test]
async fn a_signed_in_user_gets_their_own_and_the_broadcast_events_only() {
    let base = serve().await;
    let stream = client()
        .get(format!("{base}/me/events"))
        .header("cookie", "theme=dark; session=alice-session")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // The stream is registered before the response head is sent, so nothing is missed.
    assert_eq!(publish(&base, "/users/bob", "for bob").await, 202);
    assert_eq!(publish(&base, "/users/alice", "for alice").await, 202);
    assert_eq!(publish(&base, "/broadcast", "for everyone").await, 202);
    assert_eq!(next_data(stream, 2).await, ["for alice", "for everyone"]);
}

#[tokio::test]
async fn a_reconnecting_user_resumes_after_last_event_id() {
    let base = serve().await;
    let first = client()
        .post(format!("{base}/api/publish/users/alice"))
        .bearer_auth(PUBLISH_TOKEN)
        .body("missed? no")
        .send()
        .await
        .unwrap();
    let first_id = first.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(publish(&base, "/users/alice", "while away").await, 202);
    let stream = client()
        .get(format!("{base}/me/events"))
        .header("cookie", "session=alice-session")
        .header("last-event-id", first_id)
        .send()
        .await
        .unwrap();
    assert_eq!(next_data(stream, 1).await, ["while away"]);
}

#[tokio::test]
async fn no_session_no_stream_and_the_hubs_own_subscribe_route_is_not_exposed() {
    let base = serve().await;
    let anonymous = client()
        .get(format!("{base}/me/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let stranger = client()
        .get(format!("{base}/me/events"))
        .header("cookie", "session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let around = client()
        .get(format!("{base}/api/subscribe/users/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        around.status(),
        404,
        "streams only through the session check"
    );
}

#[tokio::test]
async fn publishing_needs_the_back_ends_token() {
    let base = serve().await;
    let refused = client()
        .post(format!("{base}/api/publish/broadcast"))
        .body("spoofed")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], sse_hyper::ErrorCode::Unauthorized.as_str());
    let batch = client()
        .post(format!("{base}/api/publish"))
        .bearer_auth(PUBLISH_TOKEN)
        .header("content-type", "application/x-ndjson")
        .body("{\"namespace\": \"/broadcast\", \"data\": \"batched\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 202);
}

#[tokio::test]
async fn the_back_end_publishes_under_the_applications_own_host_name() {
    // Deployed, the application is reached as app.example, not localhost: the publish
    // token is what admits the back end, so the Host checks for anonymous publishing do
    // not apply.
    let base = serve().await;
    let response = client()
        .post(format!("{base}/api/publish/broadcast"))
        .header("host", "app.example")
        .header("origin", "https://app.example")
        .bearer_auth(PUBLISH_TOKEN)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}
