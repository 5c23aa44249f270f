//! The hub inside an existing axum application, which keeps its own routes and its own
//! login: each signed-in user gets a stream of their own namespace and the broadcast
//! namespace at `/me/events`, behind the app's session check; the hub's publish API is
//! mounted under `/api` for the app's back end, behind a publish token.
//!
//! Run `cargo run -p examples --example axum`, open http://127.0.0.1:3000/?session=alice-session
//! (the page keeps the session in a cookie), then publish:
//!
//! ```sh
//! curl -H 'Authorization: Bearer back-end-token' -d 'hello, everyone' \
//!     http://127.0.0.1:3000/api/publish/broadcast
//! curl -H 'Authorization: Bearer back-end-token' -d 'hello, alice' \
//!     http://127.0.0.1:3000/api/publish/users/alice
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sse_core::Namespace;
use sse_hyper::{Server, SseService};

/// The token the app's back end publishes with.
pub const PUBLISH_TOKEN: &str = "back-end-token";

/// Who a session cookie belongs to. A real app asks its session store.
#[derive(Clone)]
pub struct Sessions(Arc<HashMap<String, String>>);

impl Sessions {
    /// Sessions for the demo's two users.
    pub fn demo() -> Sessions {
        Sessions(Arc::new(HashMap::from([
            ("alice-session".to_owned(), "alice".to_owned()),
            ("bob-session".to_owned(), "bob".to_owned()),
        ])))
    }

    /// The user of the request's `session` cookie.
    fn user(&self, headers: &HeaderMap) -> Option<&str> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let session = cookies
            .split(';')
            .find_map(|cookie| cookie.trim().strip_prefix("session="))?;
        self.0.get(session).map(String::as_str)
    }
}

#[derive(Clone)]
struct AppState {
    hub: SseService,
    sessions: Sessions,
}

/// The application: its page, the user's event stream, and the publish API under `/api`.
pub fn app(sessions: Sessions) -> Router {
    let hub = Server::builder()
        .path_prefix("/api")
        .publish_token(PUBLISH_TOKEN)
        .build()
        .service();
    // Only the publish routes are mounted: streams go through the session check below.
    Router::new()
        .route("/", get(page))
        .route("/me/events", get(my_events))
        .route_service("/api/publish", hub.clone())
        .route_service("/api/publish/{*namespace}", hub.clone())
        .with_state(AppState { hub, sessions })
}

/// The user's stream: their own namespace and the broadcast one, resumed after
/// `Last-Event-ID` when the browser reconnects.
async fn my_events(State(app): State<AppState>, request: Request) -> Response {
    let Some(user) = app.sessions.user(request.headers()) else {
        return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response();
    };
    let namespaces = match (
        Namespace::parse(&format!("/users/{user}")),
        Namespace::parse("/broadcast"),
    ) {
        (Ok(own), Ok(broadcast)) => [own, broadcast],
        _ => return (StatusCode::BAD_REQUEST, "no namespace for this user\n").into_response(),
    };
    let last_event_id = sse_hyper::last_event_id(&request);
    match app
        .hub
        .event_stream(&namespaces, last_event_id.as_deref())
        .await
    {
        Ok(stream) => stream.map(Body::new),
        Err(refused) => refused.into_response().map(Body::new),
    }
}

async fn page(request: Request) -> Response {
    // The demo signs in through the URL; a real app has a login form.
    let session = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("session=")));
    let mut response = Html(PAGE).into_response();
    if let Some(session) =
        session.filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        let cookie = format!("session={session}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>my events</title>
<ul id="events"></ul>
<script>
  new EventSource("/me/events").onmessage = (e) => {
    const li = document.createElement("li");
    li.textContent = e.data;
    document.getElementById("events").append(li);
  };
</script>"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app(Sessions::demo())).await?;
    Ok(())
}
