//! The hub as a library user sees it: fan-out through the hierarchy, bounded queues,
//! replay, and many threads publishing and subscribing at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use sse_core::{
    CloseReason, Decoder, Event, Hub, MessageEvent, Namespace, PublishError, Subscription,
};

fn ns(s: &str) -> Namespace {
    Namespace::parse(s).unwrap()
}

/// Everything the subscription holds right now, decoded.
/// Everything ready now: a replay comes in pieces, so take until nothing more comes.
fn drain(subscription: &mut Subscription) -> Vec<MessageEvent> {
    let mut bytes = Vec::new();
    while subscription
        .try_recv_many(&mut bytes)
        .is_some_and(|taken| taken > 0)
    {}
    decode(&bytes)
}

fn decode(chunks: &[Bytes]) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    chunks
        .iter()
        .flat_map(|b| decoder.decode(b).unwrap())
        .collect()
}

fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[test]
fn publish_to_child_reaches_parent_subscriber_but_not_sibling_prefix() {
    let hub = Hub::new();
    let mut pets = hub.subscribe(&[ns("/pets")]);
    let mut petsitters = hub.subscribe(&[ns("/petsitters")]);
    let mut root = hub.subscribe(&[Namespace::root()]);
    let mut dogs = hub.subscribe(&[ns("/pets/dogs")]);

    assert_eq!(
        hub.publish(&ns("/pets"), Event::new("p"))
            .unwrap()
            .subscribers,
        2
    );
    assert_eq!(
        hub.publish(&ns("/pets/dogs"), Event::new("d"))
            .unwrap()
            .subscribers,
        3
    );
    assert_eq!(
        hub.publish(&ns("/pets/cats/persian"), Event::new("c"))
            .unwrap()
            .subscribers,
        2
    );
    assert_eq!(
        hub.publish(&ns("/petsitters"), Event::new("s"))
            .unwrap()
            .subscribers,
        2
    );

    assert_eq!(data(&drain(&mut pets)), ["p", "d", "c"]);
    assert_eq!(data(&drain(&mut dogs)), ["d"]);
    assert_eq!(data(&drain(&mut petsitters)), ["s"]);
    assert_eq!(data(&drain(&mut root)), ["p", "d", "c", "s"]);
}

#[test]
fn publishing_where_nobody_listens_is_valid() {
    let hub = Hub::new();
    let published = hub.publish(&ns("/nobody/here"), Event::new("x")).unwrap();
    assert_eq!(published.subscribers, 0);
    assert_eq!(hub.stats().events_published, 1);
}

#[test]
fn overlapping_namespaces_deliver_each_event_once() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[ns("/a/b"), ns("/a"), ns("/a"), ns("/a/b/c"), ns("/x")]);
    assert_eq!(sub.namespaces(), [ns("/a"), ns("/x")]);
    hub.publish(&ns("/a/b/c"), Event::new("1")).unwrap();
    hub.publish(&ns("/x/y"), Event::new("2")).unwrap();
    hub.publish(&ns("/ab"), Event::new("never")).unwrap();
    assert_eq!(data(&drain(&mut sub)), ["1", "2"]);
}

#[test]
fn invalid_event_is_rejected_and_uses_no_id() {
    let hub = Hub::builder().id_base(100).build();
    let mut sub = hub.subscribe(&[Namespace::root()]);
    assert!(hub
        .publish(&ns("/a"), Event::new("x").with_event("bad\nname"))
        .is_err());
    assert!(hub
        .publish(&ns("/a"), Event::new("x").with_id("bad\r"))
        .is_err());
    let ok = hub.publish(&ns("/a"), Event::new("x")).unwrap();
    assert_eq!(&*ok.id, "100");
    assert_eq!(drain(&mut sub).len(), 1);
    assert_eq!(hub.stats().events_published, 1);
}

#[test]
fn assigned_ids_increase_and_publisher_ids_are_kept() {
    let hub = Hub::new();
    let a: u64 = hub
        .publish(&ns("/a"), Event::new("x"))
        .unwrap()
        .id
        .parse()
        .unwrap();
    let custom = hub
        .publish(&ns("/a"), Event::new("x").with_id("mine"))
        .unwrap();
    let b: u64 = hub
        .publish(&ns("/a"), Event::new("x"))
        .unwrap()
        .id
        .parse()
        .unwrap();
    assert!(b > a);
    assert_eq!(&*custom.id, "mine");
}

#[test]
fn a_restarted_hub_issues_ids_above_the_previous_ones() {
    let first = Hub::new();
    let mut last = 0u64;
    for _ in 0..1000 {
        last = first
            .publish(&ns("/a"), Event::new("x"))
            .unwrap()
            .id
            .parse()
            .unwrap();
    }
    drop(first);
    let second = Hub::new();
    let next: u64 = second
        .publish(&ns("/a"), Event::new("x"))
        .unwrap()
        .id
        .parse()
        .unwrap();
    assert!(next > last, "{next} <= {last}");
}

#[test]
fn slow_subscriber_is_cut_off_while_fast_one_keeps_every_event() {
    let hub = Hub::builder().queue_capacity(8).build();
    let mut slow = hub.subscribe(&[ns("/feed")]);
    let mut fast = hub.subscribe(&[ns("/feed")]);
    let mut fast_seen = Vec::new();
    for i in 0..20 {
        hub.publish(&ns("/feed"), Event::new(i.to_string()))
            .unwrap();
        fast_seen.extend(drain(&mut fast));
    }
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(
        data(&fast_seen),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );

    let mut leftover = Vec::new();
    assert_eq!(
        slow.try_recv_many(&mut leftover),
        None,
        "a cut-off subscriber ends"
    );
    assert_eq!(slow.close_reason(), Some(CloseReason::Lagged));
    let stats = hub.stats();
    assert_eq!(stats.lagged_cutoffs, 1);
    assert_eq!(stats.subscribers, 1);
    drop(slow);
    assert_eq!(
        hub.stats().subscribers,
        1,
        "dropping a cut-off subscriber counts it once"
    );
}

#[test]
fn cut_off_subscriber_resumes_from_history_without_loss() {
    let hub = Hub::builder()
        .queue_capacity(4)
        .history_capacity(100)
        .build();
    let mut slow = hub.subscribe(&[ns("/feed")]);
    let mut received = Vec::new();
    for i in 0..3 {
        hub.publish(&ns("/feed"), Event::new(i.to_string()))
            .unwrap();
    }
    received.extend(drain(&mut slow));
    for i in 3..10 {
        hub.publish(&ns("/feed"), Event::new(i.to_string()))
            .unwrap();
    }
    assert_eq!(slow.close_reason(), Some(CloseReason::Lagged));
    let last_id = received.last().unwrap().last_event_id.clone();
    let mut resumed = hub.subscribe_after(&[ns("/feed")], &last_id);
    received.extend(drain(&mut resumed));
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(
        data(&received),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn dropping_a_subscription_unregisters_it() {
    let hub = Hub::new();
    let subs: Vec<_> = (0..10)
        .map(|_| hub.subscribe(&[ns("/a"), ns("/b/c")]))
        .collect();
    assert_eq!(hub.stats().subscribers, 10);
    assert_eq!(
        hub.subscribers_by_namespace(),
        [(ns("/a"), 10), (ns("/b/c"), 10)]
    );
    drop(subs);
    assert_eq!(hub.stats().subscribers, 0);
    assert!(hub.subscribers_by_namespace().is_empty());
    assert_eq!(
        hub.publish(&ns("/a"), Event::new("x")).unwrap().subscribers,
        0
    );
}

#[test]
fn replay_after_id_returns_only_later_matching_events() {
    let hub = Hub::new();
    let first = hub.publish(&ns("/pets/dogs"), Event::new("1")).unwrap();
    hub.publish(&ns("/pets/cats"), Event::new("2")).unwrap();
    hub.publish(&ns("/petsitters"), Event::new("nope")).unwrap();
    hub.publish(&ns("/pets"), Event::new("3")).unwrap();
    let mut sub = hub.subscribe_after(&[ns("/pets")], &first.id);
    assert_eq!(data(&drain(&mut sub)), ["2", "3"]);
}

#[test]
fn replay_of_unretained_id_starts_with_a_gap_event() {
    let hub = Hub::builder().history_capacity(2).build();
    let first = hub.publish(&ns("/a"), Event::new("1")).unwrap();
    for i in 2..=4 {
        hub.publish(&ns("/a"), Event::new(i.to_string())).unwrap();
    }
    let mut sub = hub.subscribe_after(&[ns("/a")], &first.id);
    let events = drain(&mut sub);
    assert_eq!(events[0].event_type, "sse-gap");
    let gap: serde_json::Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(gap["last_event_id"], &*first.id);
    assert!(gap["first_retained_id"].is_string());
    assert_eq!(data(&events[1..]), ["3", "4"]);
}

#[test]
fn closing_the_hub_ends_every_subscription() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[ns("/a")]);
    hub.publish(&ns("/a"), Event::new("before close")).unwrap();
    hub.close();
    assert_eq!(data(&drain(&mut sub)), ["before close"]);
    assert_eq!(sub.try_recv_many(&mut Vec::new()), None);
    assert_eq!(sub.close_reason(), Some(CloseReason::HubClosed));
    assert_eq!(hub.stats().subscribers, 0);
    let mut late = hub.subscribe(&[ns("/a")]);
    assert_eq!(late.try_recv_many(&mut Vec::new()), None);
    assert_eq!(late.close_reason(), Some(CloseReason::HubClosed));
}

/// A waker that counts its wake-ups, so a test sees whether one happened without threads
/// or timing.
#[derive(Default)]
struct WakeCounter(AtomicUsize);

impl WakeCounter {
    fn new() -> (Arc<WakeCounter>, Waker) {
        let counter = Arc::new(WakeCounter::default());
        (Arc::clone(&counter), Waker::from(counter))
    }

    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn publish_wakes_a_pending_reader() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[ns("/a")]);
    let (counter, waker) = WakeCounter::new();
    let mut cx = Context::from_waker(&waker);
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    assert_eq!(counter.wakes(), 0);

    hub.publish(&ns("/a"), Event::new("wake")).unwrap();
    assert_eq!(counter.wakes(), 1);
    let Poll::Ready(Some(bytes)) = sub.poll_next_unpin(&mut cx) else {
        panic!("a woken reader finds the event");
    };
    assert_eq!(data(&decode(&[bytes])), ["wake"]);
}

#[test]
fn a_pending_reader_cut_off_for_lagging_is_woken_and_sees_the_end() {
    let hub = Hub::builder().queue_capacity(1).build();
    let mut sub = hub.subscribe(&[ns("/a")]);
    let (counter, waker) = WakeCounter::new();
    let mut cx = Context::from_waker(&waker);
    assert!(sub.poll_next_unpin(&mut cx).is_pending());

    hub.publish(&ns("/a"), Event::new("fills the queue"))
        .unwrap();
    hub.publish(&ns("/a"), Event::new("overflows it")).unwrap();
    assert_eq!(counter.wakes(), 1);
    assert_eq!(sub.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert_eq!(sub.close_reason(), Some(CloseReason::Lagged));
}

#[test]
fn closing_the_hub_wakes_a_pending_reader_and_it_sees_the_end() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[ns("/a")]);
    let (counter, waker) = WakeCounter::new();
    let mut cx = Context::from_waker(&waker);
    assert!(sub.poll_next_unpin(&mut cx).is_pending());
    assert_eq!(counter.wakes(), 0);

    hub.close();
    assert_eq!(counter.wakes(), 1);
    assert_eq!(sub.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert_eq!(sub.close_reason(), Some(CloseReason::HubClosed));
}

#[test]
fn recv_many_takes_everything_queued_in_one_call() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[ns("/a")]);
    for i in 0..100 {
        hub.publish(&ns("/a"), Event::new(i.to_string())).unwrap();
    }
    let mut out = Vec::new();
    let poll = sub.poll_recv_many(&mut Context::from_waker(Waker::noop()), &mut out);
    assert_eq!(poll, Poll::Ready(100));
    assert_eq!(out.len(), 100);
}

/// Several publisher threads and subscribers at several levels at once: each subscriber
/// receives exactly the events that match it, in each publisher's order.
#[test]
fn concurrent_publishers_and_subscribers_each_get_exactly_their_events_in_order() {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 2_000;
    let hub = Hub::builder()
        .queue_capacity(PUBLISHERS * PER_PUBLISHER)
        .build();
    let targets = ["/t/a", "/t/a/x", "/t/b", "/u"];
    let subscriptions = ["/", "/t", "/t/a", "/t/a/x", "/t/b", "/u", "/v"];

    let start = Arc::new(Barrier::new(PUBLISHERS + subscriptions.len()));
    let readers: Vec<_> = subscriptions
        .iter()
        .map(|&sub_ns| {
            let hub = hub.clone();
            let start = Arc::clone(&start);
            let sub_ns = ns(sub_ns);
            let expected = (0..PUBLISHERS)
                .filter(|p| sub_ns.contains(&ns(targets[*p])))
                .count()
                * PER_PUBLISHER;
            thread::spawn(move || {
                let mut sub = hub.subscribe(std::slice::from_ref(&sub_ns));
                start.wait();
                let mut decoder = Decoder::new();
                let mut events = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while events.len() < expected {
                    assert!(Instant::now() < deadline, "{sub_ns}: timed out");
                    let mut batch = Vec::new();
                    match sub.try_recv_many(&mut batch) {
                        Some(0) => thread::yield_now(),
                        Some(_) => {
                            events.extend(batch.iter().flat_map(|b| decoder.decode(b).unwrap()))
                        }
                        None => panic!("{sub_ns}: closed early: {:?}", sub.close_reason()),
                    }
                }
                (sub_ns, events)
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = hub.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..PER_PUBLISHER {
                    hub.publish(&ns(targets[p]), Event::new(format!("{p}:{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().unwrap();
    }
    for reader in readers {
        let (sub_ns, events) = reader.join().unwrap();
        let mut next_per_publisher: HashMap<usize, usize> = HashMap::new();
        for event in &events {
            let (p, i) = event.data.split_once(':').unwrap();
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            assert!(
                sub_ns.contains(&ns(targets[p])),
                "{sub_ns} got an event for {}",
                targets[p]
            );
            let next = next_per_publisher.entry(p).or_default();
            assert_eq!(
                i, *next,
                "{sub_ns}: publisher {p} out of order or duplicated"
            );
            *next += 1;
        }
        for (p, next) in next_per_publisher {
            assert_eq!(
                next, PER_PUBLISHER,
                "{sub_ns}: missing events from publisher {p}"
            );
        }
    }
    assert_eq!(hub.stats().lagged_cutoffs, 0);
}

/// Clients subscribe with replay while publishers run: every client sees every event
/// after its resume point exactly once, whether it arrived by replay or live.
#[test]
fn replay_concurrent_with_publishing_loses_and_repeats_nothing() {
    const EVENTS: usize = 5_000;
    let hub = Hub::builder()
        .history_capacity(EVENTS * 2)
        .queue_capacity(EVENTS * 2)
        .build();
    let resume_from = hub.publish(&ns("/r"), Event::new("start")).unwrap().id;
    let publisher = {
        let hub = hub.clone();
        thread::spawn(move || {
            for i in 0..EVENTS {
                hub.publish(&ns("/r/x"), Event::new(i.to_string())).unwrap();
            }
        })
    };
    let mut subscribers = Vec::new();
    while !publisher.is_finished() || subscribers.len() < 3 {
        subscribers.push(hub.subscribe_after(&[ns("/r")], &resume_from));
        thread::yield_now();
        if subscribers.len() > 200 {
            break;
        }
    }
    publisher.join().unwrap();
    let expected: Vec<String> = (0..EVENTS).map(|i| i.to_string()).collect();
    for mut sub in subscribers {
        let received = drain(&mut sub);
        assert_eq!(
            data(&received),
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}

/// An event as a cluster's broker hands it to a node: already ordered and with its id.
fn broker_event(order: u128, data: &str) -> Event {
    Event::new(data).with_id(format!("{order}-0"))
}

#[test]
fn delivered_events_fan_out_through_the_hierarchy_with_the_brokers_id() {
    let hub = Hub::new();
    let mut pets = hub.subscribe(&[ns("/pets")]);
    let mut sitters = hub.subscribe(&[ns("/petsitters")]);
    let published = hub
        .deliver(&ns("/pets/dogs"), broker_event(7, "Corgi"), 7)
        .unwrap();
    assert_eq!((&*published.id, published.subscribers), ("7-0", 1));
    let events = drain(&mut pets);
    assert_eq!(data(&events), ["Corgi"]);
    assert_eq!(events[0].last_event_id, "7-0");
    assert!(drain(&mut sitters).is_empty());
}

#[test]
fn a_replay_from_the_broker_is_joined_with_what_arrived_after_it_without_loss_or_repeat() {
    let hub = Hub::new();
    // The node received 10 and 20 live; the broker answered a replay through 10.
    hub.deliver(&ns("/a"), broker_event(10, "ten"), 10).unwrap();
    hub.deliver(&ns("/b"), broker_event(15, "other namespace"), 15)
        .unwrap();
    hub.deliver(&ns("/a"), broker_event(20, "twenty"), 20)
        .unwrap();
    let from_broker = vec![
        Bytes::from("id: 5-0\ndata: five\n\n"),
        Bytes::from("id: 10-0\ndata: ten\n\n"),
    ];
    let mut subscription = hub
        .subscribe_with_replay(&[ns("/a")], from_broker, Some(10))
        .unwrap();
    hub.deliver(&ns("/a"), broker_event(30, "thirty"), 30)
        .unwrap();
    assert_eq!(
        data(&drain(&mut subscription)),
        ["five", "ten", "twenty", "thirty"]
    );
}

#[test]
fn a_replay_answered_further_back_than_the_history_reaches_is_refused() {
    let hub = Hub::builder().history_capacity(2).build();
    for order in [10, 20, 30] {
        hub.deliver(&ns("/a"), broker_event(order, "x"), order)
            .unwrap();
    }
    let refused = hub.subscribe_with_replay(&[ns("/a")], Vec::new(), Some(5));
    assert_eq!(refused.err(), Some(sse_core::HistoryTooShort));
    assert_eq!(hub.stats().subscribers, 0, "nothing was registered");
    assert!(hub
        .subscribe_with_replay(&[ns("/a")], Vec::new(), Some(20))
        .is_ok());
}

#[test]
fn announcing_a_gap_tells_every_subscriber_once() {
    let hub = Hub::new();
    let mut both = hub.subscribe(&[ns("/a"), ns("/b")]);
    let mut root = hub.subscribe(&[ns("/")]);
    hub.announce_gap(&sse_core::Gap {
        last_event_id: "10-0".into(),
        first_retained_id: None,
    });
    for subscription in [&mut both, &mut root] {
        let events = drain(subscription);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, sse_core::Gap::EVENT_TYPE);
        assert!(events[0].data.contains("\"last_event_id\":\"10-0\""));
    }
}

#[test]
fn a_retained_id_is_refused_so_a_resume_after_it_loses_nothing() {
    let hub = Hub::new();
    for id in ["7", "8", "9"] {
        hub.publish(&ns("/orders"), Event::new(id).with_id(id))
            .unwrap();
    }
    let refused = hub
        .publish(&ns("/chat"), Event::new("hi").with_id("7"))
        .unwrap_err();
    assert_eq!(
        refused,
        PublishError::DuplicateId {
            index: 0,
            id: "7".to_owned()
        }
    );
    assert_eq!(hub.stats().events_published, 3);
    let mut resumed = hub.subscribe_after(&[ns("/orders")], "7");
    let replayed = drain(&mut resumed);
    assert_eq!(data(&replayed), ["8", "9"], "no gap, nothing lost");
}

#[test]
fn an_evicted_id_may_be_used_again() {
    let hub = Hub::builder().history_capacity(1).build();
    hub.publish(&ns("/a"), Event::new("1").with_id("x"))
        .unwrap();
    hub.publish(&ns("/a"), Event::new("2")).unwrap();
    hub.publish(&ns("/a"), Event::new("3").with_id("x"))
        .unwrap();
}

#[test]
fn a_batch_is_refused_whole_for_a_retained_or_repeated_id() {
    let hub = Hub::new();
    hub.publish(&ns("/a"), Event::new("0").with_id("taken"))
        .unwrap();
    let mut sub = hub.subscribe(&[Namespace::root()]);
    let retained = vec![
        (ns("/a"), Event::new("1").with_id("fresh")),
        (ns("/a"), Event::new("2")),
        (ns("/b"), Event::new("3").with_id("taken")),
    ];
    let refused = hub.publish_batch(retained).unwrap_err();
    assert_eq!(refused.index(), 2);
    let repeated = vec![
        (ns("/a"), Event::new("1").with_id("twice")),
        (ns("/b"), Event::new("2").with_id("twice")),
    ];
    assert!(matches!(
        hub.publish_batch(repeated),
        Err(PublishError::DuplicateId { index: 1, .. })
    ));
    let invalid = vec![
        (ns("/a"), Event::new("1")),
        (ns("/a"), Event::new("2").with_event("bad\nname")),
    ];
    assert!(matches!(
        hub.publish_batch(invalid),
        Err(PublishError::Invalid { index: 1, .. })
    ));
    assert!(drain(&mut sub).is_empty(), "nothing of any refused batch");
    assert_eq!(hub.stats().events_published, 1);
    // The refused batches used up no id: "fresh" is still free.
    hub.publish(&ns("/a"), Event::new("4").with_id("fresh"))
        .unwrap();
}

#[test]
fn a_batch_is_published_in_order_with_assigned_ids_skipping_chosen_ones() {
    let hub = Hub::builder().id_base(100).build();
    let mut sub = hub.subscribe(&[Namespace::root()]);
    let batch = vec![
        (ns("/a"), Event::new("1")),
        (ns("/a"), Event::new("2").with_id("102")),
        (ns("/b"), Event::new("3")),
    ];
    let published = hub.publish_batch(batch).unwrap();
    let ids: Vec<&str> = published.iter().map(|p| &*p.id).collect();
    assert_eq!(ids, ["100", "102", "103"]);
    assert_eq!(drain(&mut sub).len(), 3);
    let next = hub.publish(&ns("/a"), Event::new("4")).unwrap();
    assert_eq!(&*next.id, "104", "assigned ids never go back");
}

#[test]
fn an_assigned_id_skips_the_number_a_publisher_chose_ahead_of_it() {
    let hub = Hub::builder().id_base(1000).build();
    let chosen = hub
        .publish(&ns("/a"), Event::new("chosen").with_id("1001"))
        .unwrap();
    let assigned = hub.publish(&ns("/a"), Event::new("assigned")).unwrap();
    assert_eq!((&*chosen.id, &*assigned.id), ("1001", "1002"));
}

#[test]
fn an_event_over_the_encoded_size_limit_is_refused_counting_its_data_lines() {
    let hub = Hub::builder().max_event_bytes(64).build();
    let newlines = "\n".repeat(10);
    let refused = hub
        .publish(&ns("/a"), Event::new(newlines).with_id("x"))
        .unwrap_err();
    let PublishError::TooLarge {
        index,
        bytes,
        limit,
    } = refused
    else {
        panic!("{refused:?}")
    };
    assert_eq!((index, limit), (0, 64));
    assert!(bytes > 64, "ten bytes of data are {bytes} on the wire");
    let batch = vec![
        (ns("/a"), Event::new("small")),
        (ns("/a"), Event::new("y".repeat(100))),
    ];
    let refused = hub.publish_batch(batch).unwrap_err();
    assert!(matches!(refused, PublishError::TooLarge { index: 1, .. }));
    assert_eq!(hub.stats().events_published, 0, "nothing of the batch");
    hub.publish(&ns("/a"), Event::new("z".repeat(20))).unwrap();
}

#[test]
fn a_subscription_resuming_over_a_long_history_gets_it_all_in_pieces() {
    let hub = Hub::new();
    let first = hub.publish(&ns("/a"), Event::new("first")).unwrap().id;
    let data = "d".repeat(10_000);
    for _ in 0..100 {
        hub.publish(&ns("/a"), Event::new(data.clone())).unwrap();
    }
    let mut sub = hub.subscribe_after(&[ns("/a")], &first);
    hub.publish(&ns("/a"), Event::new("live")).unwrap();
    let mut calls = 0;
    let mut all = Vec::new();
    loop {
        let mut piece = Vec::new();
        match sub.try_recv_many(&mut piece) {
            Some(0) | None => break,
            Some(_) => {
                assert!(piece.iter().map(Bytes::len).sum::<usize>() <= 128 * 1024);
                calls += 1;
                all.extend(piece);
            }
        }
    }
    let received = decode(&all);
    assert_eq!(received.len(), 101);
    assert_eq!(received[100].data, "live");
    assert!(calls > 5, "a megabyte of replay in {calls} pieces");
}
