//! `GET /metrics`: the counters in the Prometheus/OpenMetrics text format.
//!
//! Values are read at scrape time from the hub's and the stream registry's atomic
//! counters (a snapshot taken into a collector), so scraping costs nothing between scrapes
//! and never holds a lock the publish path needs.

use std::sync::atomic::Ordering::Relaxed;

use http::{Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::body::SseBody;
use crate::response;
use crate::state::State;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(i64),
    GaugeF64(f64),
    #[cfg(feature = "redis")]
    Histogram(Histogram),
}

#[cfg(feature = "redis")]
/// A histogram read at scrape time: per-bucket counts (upper bound in seconds), their
/// sum and count.
#[derive(Debug, Clone)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
}

#[cfg(feature = "redis")]
impl EncodeMetric for Histogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let count = self.buckets.iter().map(|(_, count)| count).sum();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// One scrape's worth of values.
#[derive(Debug)]
struct Snapshot {
    metrics: Vec<(&'static str, &'static str, Value)>,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, help, value) in &self.metrics {
            match value {
                Value::Counter(v) => encode_one(&mut encoder, name, help, &ConstCounter::new(*v))?,
                Value::Gauge(v) => encode_one(&mut encoder, name, help, &ConstGauge::new(*v))?,
                Value::GaugeF64(v) => encode_one(&mut encoder, name, help, &ConstGauge::new(*v))?,
                #[cfg(feature = "redis")]
                Value::Histogram(h) => encode_one(&mut encoder, name, help, h)?,
            }
        }
        Ok(())
    }
}

fn encode_one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn snapshot(state: &State) -> Snapshot {
    let hub = state.hub().stats();
    let streams = state.streams();
    let requests = state.request_counts();
    let gauge = |v: usize| Value::Gauge(i64::try_from(v).unwrap_or(i64::MAX));
    let gauge_u64 = |v: u64| Value::Gauge(i64::try_from(v).unwrap_or(i64::MAX));
    #[allow(unused_mut)]
    let mut snapshot = Snapshot {
        metrics: vec![
            (
                "sse_streams_open",
                "Event streams currently open.",
                gauge(streams.open_count()),
            ),
            (
                "sse_subscribers",
                "Subscriptions registered in the hub.",
                gauge_u64(hub.subscribers),
            ),
            (
                "sse_streams_opened",
                "Event streams opened since start.",
                Value::Counter(streams.opened_total.load(Relaxed)),
            ),
            (
                "sse_streams_refused",
                "Event streams refused at the connection limit since start.",
                Value::Counter(streams.refused_total.load(Relaxed)),
            ),
            (
                "sse_events_published",
                "Events published since start.",
                Value::Counter(hub.events_published),
            ),
            (
                "sse_deliveries",
                "Events queued to subscribers since start, summed over subscribers.",
                Value::Counter(hub.deliveries),
            ),
            (
                "sse_subscribers_lagged",
                "Subscribers cut off for falling too far behind, since start.",
                Value::Counter(hub.lagged_cutoffs),
            ),
            (
                "sse_write_timeouts",
                "Connections closed because their socket took no bytes for the write timeout, \
                 since start.",
                Value::Counter(streams.write_timeouts.load(Relaxed)),
            ),
            (
                "sse_history_bytes",
                "Encoded bytes the replay history retains.",
                gauge(state.hub().history_bytes()),
            ),
            (
                "sse_sent_bytes",
                "Bytes written to event streams since start.",
                Value::Counter(streams.bytes_sent.load(Relaxed)),
            ),
            (
                "sse_keepalives_sent",
                "Keepalive comments written since start.",
                Value::Counter(streams.keepalives_sent.load(Relaxed)),
            ),
            (
                "sse_publish_requests",
                "Publish requests received since start.",
                Value::Counter(requests.publish_requests),
            ),
            (
                "sse_requests_rejected",
                "Requests answered with an error since start.",
                Value::Counter(requests.rejected_requests),
            ),
            (
                "sse_uptime_seconds",
                "Seconds since the server started.",
                Value::GaugeF64(state.uptime().as_secs_f64()),
            ),
            (
                "sse_draining",
                "1 while the server drains for shutdown.",
                Value::Gauge(i64::from(state.is_draining())),
            ),
        ],
    };
    #[cfg(feature = "redis")]
    if let Some(cluster) = state.cluster() {
        snapshot.metrics.extend(broker_metrics(&cluster.stats()));
    }
    snapshot
}

/// `sse_broker_*`: the node's traffic with its cluster's Redis.
#[cfg(feature = "redis")]
fn broker_metrics(stats: &sse_redis::BrokerStats) -> Vec<(&'static str, &'static str, Value)> {
    let latency = &stats.publish_latency;
    let bounds = sse_redis::LATENCY_BUCKETS_MS
        .iter()
        .map(|ms| ms / 1000.0)
        .chain([f64::INFINITY]);
    vec![
        (
            "sse_broker_connected",
            "1 while the node is connected to the cluster's Redis.",
            Value::Gauge(i64::from(stats.connected)),
        ),
        (
            "sse_broker_published",
            "Events this node published through Redis.",
            Value::Counter(stats.published),
        ),
        (
            "sse_broker_received",
            "Events this node received from Redis.",
            Value::Counter(stats.received),
        ),
        (
            "sse_broker_reconnects",
            "Reconnections to Redis after losing it.",
            Value::Counter(stats.reconnects),
        ),
        (
            "sse_broker_errors",
            "Redis commands that failed or timed out.",
            Value::Counter(stats.errors),
        ),
        (
            "sse_broker_gaps",
            "Times events were found missing from the shared history after an outage.",
            Value::Counter(stats.gaps),
        ),
        (
            "sse_broker_publish_seconds",
            "Round trips of publish requests to Redis.",
            Value::Histogram(Histogram {
                buckets: bounds.zip(latency.counts.iter().copied()).collect(),
                sum: latency.sum_seconds,
            }),
        ),
    ]
}

/// `GET /metrics`.
pub(crate) fn handle(state: &State) -> Response<SseBody> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot(state)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("encoding into a String cannot fail, and every name and help text is valid");
    response::with_type(StatusCode::OK, text, CONTENT_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use sse_core::Hub;

    #[test]
    fn a_scrape_names_every_counter_with_its_type() {
        let state = State::new(Hub::new(), Config::default());
        state.count_publish_request();
        let response = handle(&state);
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(response.into_body().into_full().to_vec()).unwrap();
        assert!(
            text.contains("# TYPE sse_publish_requests counter"),
            "{text}"
        );
        assert!(text.contains("sse_publish_requests_total 1"), "{text}");
        assert!(text.contains("# TYPE sse_streams_open gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
