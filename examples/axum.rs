//! The SSE hub inside an existing axum application: the app keeps its own routes and
//! mounts the hub's HTTP API under `/events`.
//!
//! Run `cargo run -p examples --example axum`, then open http://127.0.0.1:3000/ (a page
//! that subscribes to `/events/subscribe/news`) and publish with
//! `curl -d 'hello' http://127.0.0.1:3000/events/publish/news`.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use sse_hyper::Server;

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>news</title>
<ul id="news"></ul>
<script>
  new EventSource("/events/subscribe/news").onmessage = (e) => {
    const li = document.createElement("li");
    li.textContent = e.data;
    document.getElementById("news").append(li);
  };
</script>"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // axum strips the "/events" prefix before the hub's service sees the request.
    let sse = Server::builder().build();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .nest_service("/events", sse.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
