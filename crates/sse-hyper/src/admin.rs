//! The admin status (`/admin/status.json`) and page (`/admin/`).
//!
//! The JSON keeps the field names of the classic Go `sseserver` status API (`node`,
//! `status`, `reported_at`, `startup_time`, `msgs_broadcast`, `connections` with
//! `request_path`, `namespace`, `created_at`, `client_ip`, `user_agent`, `msgs_sent`) and
//! adds uptime, deliveries, cut-off subscribers, per-namespace subscriber counts and
//! rates. Every number comes from atomic counters or a short lock on the registry, so
//! reading the status never holds up publishing.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;
use sse_core::HubStats;

use crate::body::SseBody;
use crate::service::{json_response, Shared};
use crate::streams::{unix_seconds, ConnectionStatus};

const PAGE: &str = include_str!("admin.html");

/// How many one-second samples the rates average over.
const RATE_WINDOW_SAMPLES: usize = 10;

/// Recent counter samples, from which publish and delivery rates are computed.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    samples: VecDeque<(Instant, HubStats)>,
}

impl RateWindow {
    pub(crate) fn record(&mut self, at: Instant, stats: &HubStats) {
        if self.samples.len() == RATE_WINDOW_SAMPLES + 1 {
            self.samples.pop_front();
        }
        self.samples.push_back((at, *stats));
    }

    /// Events published and deliveries per second over the window (zero until two
    /// samples exist).
    fn rates(&self) -> Rates {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return Rates::default();
        };
        let seconds = t1.duration_since(*t0).as_secs_f64();
        if seconds <= 0.0 {
            return Rates::default();
        }
        Rates {
            publish_per_second: (last.events_published - first.events_published) as f64 / seconds,
            deliveries_per_second: (last.deliveries - first.deliveries) as f64 / seconds,
            window_seconds: seconds,
        }
    }
}

/// Publish and delivery rates.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Rates {
    /// Events published per second.
    pub publish_per_second: f64,
    /// Events queued to subscribers per second.
    pub deliveries_per_second: f64,
    /// The span the rates are measured over, in seconds.
    pub window_seconds: f64,
}

/// Subscribers of one exact namespace.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceStatus {
    /// The namespace.
    pub namespace: String,
    /// Subscriptions registered under exactly this namespace.
    pub subscribers: usize,
}

/// The body of `/admin/status.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The node name.
    pub node: String,
    /// `OK`, or `draining` during shutdown.
    pub status: &'static str,
    /// When this report was made, in seconds since the UNIX epoch.
    pub reported_at: u64,
    /// When the server started, in seconds since the UNIX epoch.
    pub startup_time: u64,
    /// Events published since start.
    pub msgs_broadcast: u64,
    /// Open event streams, oldest first.
    pub connections: Vec<ConnectionStatus>,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Events queued to subscribers since start, summed over subscribers.
    pub deliveries: u64,
    /// Subscribers cut off for falling too far behind, since start.
    pub lagged_cutoffs: u64,
    /// Registered subscriptions.
    pub subscribers: u64,
    /// Subscriptions per exact namespace.
    pub namespaces: Vec<NamespaceStatus>,
    /// Recent rates.
    pub rates: Rates,
    /// Keepalive comments written since start.
    pub keepalives_sent: u64,
    /// Bytes written to event streams since start.
    pub bytes_sent: u64,
}

pub(crate) fn status(shared: &Shared) -> Status {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = shared.hub.stats();
    let rates = shared
        .rates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rates();
    Status {
        node: shared.config.node_name.clone(),
        status: if shared.is_draining() {
            "draining"
        } else {
            "OK"
        },
        reported_at: unix_seconds(SystemTime::now()),
        startup_time: unix_seconds(shared.started_at),
        msgs_broadcast: stats.events_published,
        connections: shared.streams.snapshot(),
        uptime_seconds: shared.started.elapsed().as_secs_f64(),
        deliveries: stats.deliveries,
        lagged_cutoffs: stats.lagged_cutoffs,
        subscribers: stats.subscribers,
        namespaces: shared
            .hub
            .subscribers_by_namespace()
            .into_iter()
            .map(|(namespace, subscribers)| NamespaceStatus {
                namespace: namespace.to_string(),
                subscribers,
            })
            .collect(),
        rates,
        keepalives_sent: shared.streams.keepalives_sent.load(Relaxed),
        bytes_sent: shared.streams.bytes_sent.load(Relaxed),
    }
}

pub(crate) fn status_response(shared: &Shared) -> Response<SseBody> {
    let value = serde_json::to_value(status(shared)).unwrap_or_default();
    let mut response = json_response(StatusCode::OK, &value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn page_response() -> Response<SseBody> {
    let mut response = Response::new(SseBody::full(PAGE));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_are_deltas_over_the_window() {
        let mut window = RateWindow::default();
        let t0 = Instant::now();
        window.record(
            t0,
            &HubStats {
                events_published: 10,
                deliveries: 100,
                ..HubStats::default()
            },
        );
        window.record(
            t0 + Duration::from_secs(2),
            &HubStats {
                events_published: 30,
                deliveries: 500,
                ..HubStats::default()
            },
        );
        let rates = window.rates();
        assert_eq!(rates.publish_per_second, 10.0);
        assert_eq!(rates.deliveries_per_second, 200.0);
    }

    #[test]
    fn window_keeps_a_bounded_number_of_samples() {
        let mut window = RateWindow::default();
        let t0 = Instant::now();
        for i in 0..100 {
            window.record(t0 + Duration::from_secs(i), &HubStats::default());
        }
        assert_eq!(window.samples.len(), RATE_WINDOW_SAMPLES + 1);
    }

    #[test]
    fn page_is_self_contained() {
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no external assets"
        );
        assert!(PAGE.contains("status.json"));
    }
}
