//! The classic demo: the time every second on `/time`, and dogs and cats arriving on
//! `/pets/dogs` and `/pets/cats`.
//!
//! Run `cargo run -p examples --example pets`, then open `examples/pets.html` in a
//! browser, or watch with `curl -N http://127.0.0.1:8001/subscribe/pets`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sse_core::{Event, Namespace};
use sse_hyper::Server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().build();
    let hub = server.hub().clone();
    let (time, dogs, cats) = (
        Namespace::parse("/time")?,
        Namespace::parse("/pets/dogs")?,
        Namespace::parse("/pets/cats")?,
    );

    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for n in 0u64.. {
            tick.tick().await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let _ = hub.publish(&time, Event::new(now.to_string()).with_event("time"));
            if n % 3 == 0 {
                let dog = ["Corgi", "Beagle", "Husky", "Poodle"][(n / 3 % 4) as usize];
                let _ = hub.publish(&dogs, Event::new(dog).with_event("new-dog"));
            }
            if n % 5 == 0 {
                let cat = ["Persian", "Siamese", "Sphynx"][(n / 5 % 3) as usize];
                let _ = hub.publish(&cats, Event::new(cat).with_event("new-cat"));
            }
        }
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
    println!(
        "serving on http://{}; open examples/pets.html",
        listener.local_addr()?
    );
    server
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
