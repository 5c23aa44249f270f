//! Criterion benchmarks for `sse-core`: encoding, decoding, namespaces and publish fan-out.
//!
//! Run with `cargo bench -p benches` or `cargo xtask bench`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sse_core::{Decoder, Event, Hub, Namespace, Subscription};

fn payload(len: usize) -> String {
    "abcdefghijklmnopqrstuvwxyz0123456789"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [64, 4096] {
        let event = Event::new(payload(size))
            .with_event("bench")
            .with_id("1764078205000000001");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| black_box(&event).encode())
        });
    }
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in [64, 4096] {
        let one = Event::new(payload(size))
            .with_id("1764078205000000001")
            .encode()
            .unwrap();
        let stream: Vec<u8> = one
            .as_bytes()
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 1000)
            .collect();
        group.throughput(Throughput::Elements(1000));
        group.bench_function(BenchmarkId::new("1000 events", size), |b| {
            b.iter(|| {
                let mut decoder = Decoder::new();
                let mut count = 0usize;
                for chunk in stream.chunks(16 * 1024) {
                    decoder.feed(chunk, |_| count += 1).unwrap();
                }
                assert_eq!(count, 1000);
            })
        });
    }
    group.finish();
}

fn namespaces(c: &mut Criterion) {
    let mut group = c.benchmark_group("namespace");
    group.bench_function("parse /pets/cats/persian", |b| {
        b.iter(|| Namespace::parse(black_box("/pets/cats/persian")))
    });
    let deep = "/seg".repeat(32);
    group.bench_function("parse 32 segments", |b| {
        b.iter(|| Namespace::parse(black_box(&deep)))
    });
    let outer = Namespace::parse("/pets").unwrap();
    let inner = Namespace::parse("/pets/cats/persian").unwrap();
    let sibling = Namespace::parse("/petsitters").unwrap();
    group.bench_function("contains (match)", |b| {
        b.iter(|| black_box(&outer).contains(black_box(&inner)))
    });
    group.bench_function("contains (sibling prefix)", |b| {
        b.iter(|| black_box(&outer).contains(black_box(&sibling)))
    });
    group.finish();
}

/// Publishes to `target` with `subscriptions` registered, draining every queue after each
/// batch so nobody is cut off; measures publish (fan-out) cost only.
fn bench_publish(
    c: &mut Criterion,
    group_name: &str,
    label: usize,
    hub: &Hub,
    subscriptions: &mut [Subscription],
    target: &Namespace,
) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    let data = payload(64);
    let mut drained: Vec<Bytes> = Vec::new();
    group.bench_function(BenchmarkId::from_parameter(label), |b| {
        b.iter_custom(|iterations| {
            let mut total = std::time::Duration::ZERO;
            let mut done = 0;
            while done < iterations {
                let batch = (iterations - done).min(1024);
                let start = std::time::Instant::now();
                for _ in 0..batch {
                    hub.publish(target, Event::new(data.as_str())).unwrap();
                }
                total += start.elapsed();
                for subscription in subscriptions.iter_mut() {
                    drained.clear();
                    subscription.try_recv_many(&mut drained);
                }
                done += batch;
            }
            total
        })
    });
    group.finish();
    assert_eq!(
        hub.stats().lagged_cutoffs,
        0,
        "a subscriber was cut off during the bench"
    );
}

fn publish_flat(c: &mut Criterion) {
    for subscribers in [1, 1_000, 10_000] {
        let hub = Hub::builder().history_capacity(1024).build();
        let ns = Namespace::parse("/bench").unwrap();
        let mut subs: Vec<_> = (0..subscribers)
            .map(|_| hub.subscribe(std::slice::from_ref(&ns)))
            .collect();
        bench_publish(
            c,
            "publish/one namespace",
            subscribers,
            &hub,
            &mut subs,
            &ns,
        );
    }
}

/// Subscribers spread over a tree of fan-out 10 and depth 4 (10 000 leaves); every event
/// goes to one leaf, reaching the leaf's subscriber and the one at each ancestor.
fn publish_deep(c: &mut Criterion) {
    for subscribers in [1_000, 10_000] {
        let hub = Hub::builder().history_capacity(1024).build();
        let mut subs = Vec::new();
        for i in 0..subscribers {
            let path = format!(
                "/t/{}/{}/{}/{}",
                i % 10,
                i / 10 % 10,
                i / 100 % 10,
                i / 1000 % 10
            );
            subs.push(hub.subscribe(&[Namespace::parse(&path).unwrap()]));
        }
        for ancestor in ["/t", "/t/3", "/t/3/4", "/t/3/4/5"] {
            subs.push(hub.subscribe(&[Namespace::parse(ancestor).unwrap()]));
        }
        let target = Namespace::parse("/t/3/4/5/6").unwrap();
        bench_publish(
            c,
            "publish/deep hierarchy",
            subscribers,
            &hub,
            &mut subs,
            &target,
        );
    }
}

criterion_group!(
    benches,
    encoding,
    decoding,
    namespaces,
    publish_flat,
    publish_deep
);
criterion_main!(benches);
