//! Nodes of one cluster against a real `redis-server`: delivery across nodes through the
//! hierarchy, one order everywhere, resuming on another node, and Redis lost and back.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use futures::StreamExt;
use redis_server::RedisServer;
use sse_core::{Decoder, Event, Hub, MessageEvent, Namespace, Subscription};
use sse_redis::{Cluster, ClusterConfig};

const DEADLINE: Duration = Duration::from_secs(20);

fn ns(text: &str) -> Namespace {
    Namespace::parse(text).unwrap()
}

async fn node(redis: &RedisServer, name: &str) -> Cluster {
    let config = ClusterConfig::new(redis.url())
        .name("test")
        .node(name)
        .history_capacity(100);
    let cluster = Cluster::connect(Hub::new(), config).await.unwrap();
    wait_until("the node to connect", || cluster.is_connected()).await;
    cluster
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads `count` events from a subscription, failing after the deadline.
async fn next_events(subscription: &mut Subscription, count: usize) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while events.len() < count {
            let bytes = subscription.next().await.expect("the stream stays open");
            events.extend(decoder.decode(&bytes).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} events arrived", events.len()));
    events
}

fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

async fn publish(node: &Cluster, namespace: &str, data: &str) -> String {
    let accepted = node
        .publish(&[(ns(namespace), Event::new(data))])
        .await
        .unwrap();
    accepted[0].id.clone()
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_matching_subscribers_on_every_node_once() {
    let redis = RedisServer::start();
    let (a, b, c) = (
        node(&redis, "a").await,
        node(&redis, "b").await,
        node(&redis, "c").await,
    );
    let mut pets_b = b.subscribe(&[ns("/pets")], None).await.unwrap();
    let mut root_b = b.subscribe(&[ns("/")], None).await.unwrap();
    let mut sitters_a = a.subscribe(&[ns("/petsitters")], None).await.unwrap();
    let mut dogs_c = c.subscribe(&[ns("/pets/dogs")], None).await.unwrap();

    publish(&c, "/pets/dogs/corgi", "Corgi").await;
    publish(&a, "/petsitters", "Sam").await;

    assert_eq!(
        data(&next_events(&mut pets_b.subscription, 1).await),
        ["Corgi"]
    );
    assert_eq!(
        data(&next_events(&mut dogs_c.subscription, 1).await),
        ["Corgi"]
    );
    assert_eq!(
        data(&next_events(&mut root_b.subscription, 2).await),
        ["Corgi", "Sam"]
    );
    assert_eq!(
        data(&next_events(&mut sitters_a.subscription, 1).await),
        ["Sam"]
    );
    // Node b listens on /pets and on /, and got the event on both channels: its hub
    // delivered it once.
    assert_eq!(b.hub().stats().events_published, 2);
    let mut out = Vec::new();
    assert_eq!(pets_b.subscription.try_recv_many(&mut out), Some(0));
}

#[tokio::test]
async fn a_stream_of_several_namespaces_gets_each_event_once_from_every_node() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let mut both = b
        .subscribe(&[ns("/time"), ns("/pets"), ns("/pets/cats")], None)
        .await
        .unwrap();
    publish(&a, "/pets/cats", "Tom").await;
    publish(&a, "/time", "noon").await;
    publish(&a, "/news", "not for it").await;
    publish(&b, "/pets", "Rex").await;
    assert_eq!(
        data(&next_events(&mut both.subscription, 3).await),
        ["Tom", "noon", "Rex"]
    );
}

#[tokio::test]
async fn every_node_sees_one_order_under_concurrent_publishers() {
    let redis = RedisServer::start();
    let nodes = [
        node(&redis, "a").await,
        node(&redis, "b").await,
        node(&redis, "c").await,
    ];
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(node.subscribe(&[ns("/")], None).await.unwrap());
    }
    const PER_NODE: usize = 200;
    let mut publishers = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let node = node.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_NODE {
                let event = Event::new(format!("{index}:{i}"));
                node.publish(&[(ns(&format!("/n{index}")), event)])
                    .await
                    .unwrap();
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut orders = Vec::new();
    for stream in &mut streams {
        let events = next_events(&mut stream.subscription, PER_NODE * nodes.len()).await;
        orders.push(
            events
                .iter()
                .map(|e| e.last_event_id.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        orders.windows(2).all(|pair| pair[0] == pair[1]),
        "one order on every node"
    );
    let mut sorted = orders[0].clone();
    sorted.sort_by_key(|id| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    });
    assert_eq!(orders[0], sorted, "the order is that of the stream ids");
}

#[tokio::test]
async fn last_event_id_from_one_node_resumes_on_another_without_loss_or_repeat() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let mut on_a = a.subscribe(&[ns("/feed")], None).await.unwrap();
    publish(&a, "/feed", "1").await;
    publish(&b, "/feed", "2").await;
    let seen = next_events(&mut on_a.subscription, 2).await;
    drop(on_a);
    // While the client is away: more events, some elsewhere.
    publish(&a, "/feed", "3").await;
    publish(&a, "/other", "x").await;
    publish(&b, "/feed/deep", "4").await;
    let mut on_b = b
        .subscribe(&[ns("/feed")], Some(&seen[1].last_event_id))
        .await
        .unwrap();
    publish(&a, "/feed", "5").await;
    assert_eq!(
        data(&next_events(&mut on_b.subscription, 3).await),
        ["3", "4", "5"]
    );
}

#[tokio::test]
async fn an_id_no_longer_retained_resumes_with_a_gap_and_what_is_retained() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let mut resumed = a.subscribe(&[ns("/feed")], Some("1-1")).await.unwrap();
    let events = next_events(&mut resumed.subscription, 1).await;
    assert_eq!(events[0].event_type, sse_core::Gap::EVENT_TYPE);
    assert!(events[0].data.contains("\"last_event_id\":\"1-1\""));
}

#[tokio::test]
async fn publisher_chosen_ids_resume_too() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    a.publish(&[(ns("/orders"), Event::new("7").with_id("order-7"))])
        .await
        .unwrap();
    publish(&a, "/orders", "8").await;
    let mut resumed = a
        .subscribe(&[ns("/orders")], Some("order-7"))
        .await
        .unwrap();
    assert_eq!(
        data(&next_events(&mut resumed.subscription, 1).await),
        ["8"]
    );
}

#[tokio::test]
async fn a_publishers_id_trimmed_from_the_history_resumes_with_a_gap() {
    let redis = RedisServer::start();
    let config = ClusterConfig::new(redis.url())
        .name("test")
        .node("small")
        .history_capacity(2);
    let a = Cluster::connect(Hub::new(), config).await.unwrap();
    wait_until("the node to connect", || a.is_connected()).await;
    a.publish(&[(ns("/orders"), Event::new("7").with_id("order-7"))])
        .await
        .unwrap();
    for data in ["8", "9"] {
        publish(&a, "/orders", data).await;
    }
    let mut resumed = a
        .subscribe(&[ns("/orders")], Some("order-7"))
        .await
        .unwrap();
    let events = next_events(&mut resumed.subscription, 3).await;
    assert_eq!(
        events[0].event_type,
        sse_core::Gap::EVENT_TYPE,
        "order-7 was trimmed"
    );
    assert_eq!(data(&events[1..]), ["8", "9"]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ids: i64 = redis::cmd("HLEN")
        .arg("test:ids")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(ids, 0, "the trimmed publisher id was forgotten");
}

#[tokio::test]
async fn redis_lost_means_unavailable_then_streams_catch_up_when_it_is_back() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let mut stream = b.subscribe(&[ns("/feed")], None).await.unwrap();
    publish(&a, "/feed", "before").await;
    assert_eq!(
        data(&next_events(&mut stream.subscription, 1).await),
        ["before"]
    );

    redis.kill();
    wait_until("node b to notice", || !b.is_connected()).await;
    let started = std::time::Instant::now();
    let refused = a.publish(&[(ns("/feed"), Event::new("lost"))]).await;
    assert!(refused.is_err(), "nothing is accepted while Redis is away");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused within the bound"
    );

    // Restarted empty: the stream is still open, hears about the gap, then live events.
    redis.restart();
    wait_until("node b to reconnect", || b.is_connected()).await;
    wait_until("node a to reconnect", || a.is_connected()).await;
    publish(&a, "/feed", "after").await;
    let events = next_events(&mut stream.subscription, 2).await;
    assert_eq!(events[0].event_type, sse_core::Gap::EVENT_TYPE);
    assert_eq!(events[1].data, "after");
    assert_eq!(b.stats().reconnects, 1);
}

#[tokio::test]
async fn a_node_that_loses_its_connection_catches_up_from_the_history_without_a_gap() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let mut stream = b.subscribe(&[ns("/feed")], None).await.unwrap();
    publish(&a, "/feed", "1").await;
    // Cut every subscriber connection, as a network fault would; publishing goes on.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 2, "both nodes' subscriber connections were cut");
    for data in ["2", "3", "4"] {
        publish(&a, "/feed", data).await;
    }
    let events = next_events(&mut stream.subscription, 4).await;
    assert_eq!(
        data(&events),
        ["1", "2", "3", "4"],
        "in order, once, no gap"
    );
    wait_until("node b to count the reconnection", || {
        b.stats().reconnects == 1
    })
    .await;
}

#[tokio::test]
async fn nodes_announce_themselves() {
    let redis = RedisServer::start();
    let (a, _b) = (node(&redis, "a").await, node(&redis, "b").await);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let names: Vec<String> = a
            .nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.node)
            .collect();
        if names == ["a", "b"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes seen: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_retained_or_repeated_publisher_id_refuses_the_whole_batch() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    a.publish(&[(ns("/orders"), Event::new("7").with_id("order-7"))])
        .await
        .unwrap();
    let stream_id = publish(&a, "/orders", "8").await;
    for (batch, at) in [
        (
            vec![
                (ns("/chat"), Event::new("fresh").with_id("fresh")),
                (ns("/chat"), Event::new("dup").with_id("order-7")),
            ],
            1,
        ),
        (
            vec![
                (ns("/chat"), Event::new("1").with_id("twice")),
                (ns("/chat"), Event::new("2")),
                (ns("/chat"), Event::new("3").with_id("twice")),
            ],
            2,
        ),
        (
            // A retained server-assigned id cannot be taken by a publisher either.
            vec![(ns("/chat"), Event::new("x").with_id(stream_id.clone()))],
            0,
        ),
    ] {
        match a.publish(&batch).await {
            Err(sse_redis::PublishError::DuplicateId { index, .. }) => assert_eq!(index, at),
            other => panic!("expected a duplicate at {at}: {other:?}"),
        }
    }
    let mut resumed = a.subscribe(&[ns("/")], Some("order-7")).await.unwrap();
    publish(&a, "/orders", "9").await;
    assert_eq!(
        data(&next_events(&mut resumed.subscription, 2).await),
        ["8", "9"],
        "nothing of the refused batches was published"
    );
    a.publish(&[(ns("/chat"), Event::new("now").with_id("fresh"))])
        .await
        .expect("a refused batch takes no id");
}

#[tokio::test]
async fn an_event_too_large_once_encoded_refuses_the_whole_batch_before_redis() {
    let redis = RedisServer::start();
    let config = ClusterConfig::new(redis.url()).name("test").node("small");
    let hub = Hub::builder().max_event_bytes(1024).build();
    let a = Cluster::connect(hub, config).await.unwrap();
    wait_until("the node to connect", || a.is_connected()).await;
    let mut all = a.subscribe(&[ns("/")], None).await.unwrap();
    // 300 line breaks are 300 bytes of data but about 1 800 on the wire.
    let batch = vec![
        (ns("/a"), Event::new("fits")),
        (ns("/a"), Event::new("\n".repeat(300))),
    ];
    match a.publish(&batch).await {
        Err(sse_redis::PublishError::TooLarge {
            index,
            bytes,
            limit,
        }) => {
            assert_eq!((index, limit), (1, 1024));
            assert!(bytes > 1024, "{bytes}");
        }
        other => panic!("expected the second event to be too large: {other:?}"),
    }
    publish(&a, "/a", "after").await;
    assert_eq!(
        data(&next_events(&mut all.subscription, 1).await),
        ["after"],
        "nothing of the refused batch reached Redis"
    );
}
