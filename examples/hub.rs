//! The hub on its own, without HTTP: one thread publishes into a small namespace tree while
//! subscribers at different levels receive what lies below them.
//!
//! Run with `cargo run -p examples --example hub`.

use futures::StreamExt;
use sse_core::{Decoder, Event, Hub, Namespace};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = Hub::new();
    let all = hub.subscribe(&[Namespace::root()]);
    let pets = hub.subscribe(&[Namespace::parse("/pets")?]);
    let cats = hub.subscribe(&[Namespace::parse("/pets/cats")?]);

    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let events = [
                ("/time", "tick", "12:00:00"),
                ("/pets/dogs", "new-dog", "Corgi"),
                ("/pets/cats/persian", "new-cat", "Snowball"),
                ("/petsitters", "hired", "Alex"),
            ];
            for (namespace, kind, data) in events {
                let namespace = Namespace::parse(namespace).map_err(|e| e.to_string())?;
                hub.publish(&namespace, Event::new(data).with_event(kind))
                    .map_err(|e| e.to_string())?;
            }
            // Closing ends every subscription, so the readers below finish.
            hub.close();
            Ok(())
        })
    };

    for (name, subscription) in [("/", all), ("/pets", pets), ("/pets/cats", cats)] {
        let mut decoder = Decoder::new();
        let received: Vec<String> = futures::executor::block_on(subscription.collect::<Vec<_>>())
            .iter()
            .flat_map(|bytes| decoder.decode(bytes).unwrap_or_default())
            .map(|event| format!("{}={}", event.event_type, event.data))
            .collect();
        println!("{name:>11} received {received:?}");
    }
    publisher.join().map_err(|_| "publisher panicked")??;
    println!("{:?}", hub.stats());
    Ok(())
}
