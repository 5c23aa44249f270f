//! The report of `ssectl bench --json`, shared by `ssectl` (which prints it) and the tools
//! that read it (`cargo xtask bench`).
//!
//! Every field is required when reading, `latency_ms` and `client_cpu` included: they
//! may be `null`, but they must be there. The field names are part of the contract; other tools read them, so
//! renaming one is a breaking change. Unknown fields are accepted, so a reader built
//! before a field was added still reads newer reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one `ssectl bench` run measured.
///
/// `events` and `bytes` count the measurement window only (after the warm-up);
/// `events_total` counts everything received from the first connection until the streams
/// were closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The event-stream URL every connection read.
    pub url: String,
    /// The HTTP version the streams were read over: `HTTP/1.1` or `HTTP/2` (over TLS
    /// when `url` is `https://`).
    pub protocol: String,
    /// Connections the run was asked to open.
    pub connections_requested: u64,
    /// Connections holding an open event stream at the end of the measurement window.
    pub connections_held: u64,
    /// Length of the measurement window in seconds.
    pub measured_seconds: f64,
    /// Events received over all connections during the measurement window.
    pub events: u64,
    /// Events received over all connections during the whole run.
    pub events_total: u64,
    /// Events this run published itself (`--publish-rate`); 0 when it only listened.
    pub events_published: u64,
    /// `events / measured_seconds`: deliveries summed over all connections.
    pub deliveries_per_second: f64,
    /// Response-body bytes received during the measurement window.
    pub bytes: u64,
    /// `bytes / measured_seconds`.
    pub bytes_per_second: f64,
    /// Publish-to-receive latency, or `None` (`null`) when no event carried a send time.
    // A plain `Option` field would be read as `None` when the key is missing; going
    // through `deserialize_with` makes the key required while still allowing `null`.
    #[serde(deserialize_with = "Option::deserialize")]
    pub latency_ms: Option<Latency>,
    /// Failed connections and publishing errors: how many times each reason occurred.
    pub errors: BTreeMap<String, u64>,
    /// Streams the server ended or broke while they were being read.
    pub disconnects: u64,
    /// The client's own CPU use over the measurement window, or `None` (`null`) where it
    /// cannot be read. When `near_limit` is true, the client may have fallen behind the
    /// server (and with [`ReceiveClock::User`], its own queueing is part of the latency).
    #[serde(deserialize_with = "Option::deserialize")]
    pub client_cpu: Option<ClientCpu>,
}

/// What the client itself spent over the measurement window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// User plus system CPU time of the client process, in seconds.
    pub seconds: f64,
    /// `seconds` over the window's wall time, in percent of one core (above 100 on
    /// several cores).
    pub percent_of_one_core: f64,
    /// The cores the client could use: those it may run on, capped by its threads.
    pub cores: u64,
    /// Whether it used more than 80% of those cores.
    pub near_limit: bool,
    /// Time its threads were ready to run but waited for a core (other processes had
    /// it), in percent of the window; `None` where the kernel does not say
    /// (`/proc/self/task/*/schedstat`). High on a busy machine: other processes then
    /// shared it with the server too, and shaped the latency, whatever the server did.
    #[serde(deserialize_with = "Option::deserialize")]
    pub run_queue_wait_percent: Option<f64>,
}

/// Publish-to-receive latency percentiles in milliseconds, over the sampled connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Events whose latency was recorded.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The highest latency recorded.
    pub max: f64,
    /// Which clock gave the receive times the latencies end at.
    pub receive_clock: ReceiveClock,
}

/// Where a latency sample's receive time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiveClock {
    /// The kernel's arrival time of the bytes read (Linux `SO_TIMESTAMPNS`): the
    /// client's own scheduling and decoding stay out of the latency.
    Kernel,
    /// The client's clock, read right after each read: a busy client adds its own
    /// queueing to the latency.
    User,
    /// Some samples of each kind (a kernel time was missing for some reads).
    Mixed,
}

impl ReceiveClock {
    /// The clock that `kernel` kernel-timed and `user` user-timed samples amount to
    /// (`Kernel` when there were none at all).
    ///
    /// ```
    /// use sse_cli::bench_report::ReceiveClock;
    ///
    /// assert_eq!(ReceiveClock::from_counts(10, 0), ReceiveClock::Kernel);
    /// assert_eq!(ReceiveClock::from_counts(0, 10), ReceiveClock::User);
    /// assert_eq!(ReceiveClock::from_counts(9, 1), ReceiveClock::Mixed);
    /// ```
    pub fn from_counts(kernel: u64, user: u64) -> ReceiveClock {
        match (kernel, user) {
            (_, 0) => ReceiveClock::Kernel,
            (0, _) => ReceiveClock::User,
            _ => ReceiveClock::Mixed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> BenchReport {
        BenchReport {
            url: "http://127.0.0.1:8001/subscribe/bench".to_owned(),
            protocol: "HTTP/1.1".to_owned(),
            connections_requested: 3,
            connections_held: 2,
            measured_seconds: 1.5,
            events: 300,
            events_total: 360,
            events_published: 120,
            deliveries_per_second: 200.0,
            bytes: 28_800,
            bytes_per_second: 19_200.0,
            latency_ms: Some(Latency {
                samples: 300,
                p50: 0.5,
                p90: 0.75,
                p99: 1.25,
                p999: 2.0,
                max: 2.5,
                receive_clock: ReceiveClock::Kernel,
            }),
            errors: BTreeMap::from([("connect: ConnectionRefused".to_owned(), 1)]),
            disconnects: 1,
            client_cpu: Some(ClientCpu {
                seconds: 0.75,
                percent_of_one_core: 50.0,
                cores: 1,
                near_limit: false,
                run_queue_wait_percent: Some(12.5),
            }),
        }
    }

    /// Every key of `value` and of the objects inside it, as paths from the root, except
    /// inside `errors`, whose keys are data rather than fields.
    fn field_paths(value: &serde_json::Value, prefix: &[String], paths: &mut Vec<Vec<String>>) {
        let Some(object) = value.as_object() else {
            return;
        };
        for (key, inner) in object {
            let mut path = prefix.to_vec();
            path.push(key.clone());
            if key != "errors" {
                field_paths(inner, &path, paths);
            }
            paths.push(path);
        }
    }

    fn remove(value: &mut serde_json::Value, path: &[String]) {
        let (last, parents) = path.split_last().expect("paths are never empty");
        let mut object = value;
        for key in parents {
            object = &mut object[key.as_str()];
        }
        object
            .as_object_mut()
            .expect("a path's parents are objects")
            .remove(last);
    }

    #[test]
    fn report_round_trips_through_json() {
        for report in [
            report(),
            BenchReport {
                latency_ms: None,
                errors: BTreeMap::new(),
                client_cpu: None,
                ..report()
            },
        ] {
            let json = serde_json::to_string_pretty(&report).unwrap();
            let read: BenchReport = serde_json::from_str(&json).unwrap();
            assert_eq!(read, report);
        }
    }

    #[test]
    fn report_without_any_one_field_is_refused() {
        let full = serde_json::to_value(report()).unwrap();
        let mut paths = Vec::new();
        field_paths(&full, &[], &mut paths);
        assert_eq!(
            paths.len(),
            15 + 7 + 5,
            "every field, latency figure and CPU figure"
        );
        for path in paths {
            let mut partial = full.clone();
            remove(&mut partial, &path);
            let read = serde_json::from_value::<BenchReport>(partial);
            assert!(read.is_err(), "read without {path:?}: {read:?}");
        }
    }

    #[test]
    fn latency_and_cpu_may_be_null_but_not_missing() {
        for key in ["latency_ms", "client_cpu"] {
            let mut json = serde_json::to_value(report()).unwrap();
            json[key] = serde_json::Value::Null;
            let read: BenchReport = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(read.latency_ms.is_none(), key == "latency_ms");
            assert_eq!(read.client_cpu.is_none(), key == "client_cpu");
            json.as_object_mut().unwrap().remove(key);
            let refused = serde_json::from_value::<BenchReport>(json).unwrap_err();
            assert!(refused.to_string().contains(key), "{refused}");
        }
    }

    #[test]
    fn field_names_are_the_printed_ones() {
        fn sorted_keys(value: &serde_json::Value) -> Vec<&str> {
            let mut keys: Vec<&str> = value
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            keys
        }
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(
            sorted_keys(&json),
            [
                "bytes",
                "bytes_per_second",
                "client_cpu",
                "connections_held",
                "connections_requested",
                "deliveries_per_second",
                "disconnects",
                "errors",
                "events",
                "events_published",
                "events_total",
                "latency_ms",
                "measured_seconds",
                "protocol",
                "url",
            ]
        );
        assert_eq!(
            sorted_keys(&json["latency_ms"]),
            [
                "max",
                "p50",
                "p90",
                "p99",
                "p999",
                "receive_clock",
                "samples"
            ]
        );
        assert_eq!(json["latency_ms"]["receive_clock"], "kernel");
        for (clock, printed) in [
            (ReceiveClock::User, "\"user\""),
            (ReceiveClock::Mixed, "\"mixed\""),
        ] {
            assert_eq!(serde_json::to_string(&clock).unwrap(), printed);
        }
        assert_eq!(
            sorted_keys(&json["client_cpu"]),
            [
                "cores",
                "near_limit",
                "percent_of_one_core",
                "run_queue_wait_percent",
                "seconds"
            ]
        );
    }
}
