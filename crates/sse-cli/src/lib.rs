//! The library side of `ssectl`: what other programs need to read its output.
//!
//! `ssectl` itself is a binary; this crate exposes only the contracts of its
//! machine-readable output, so that the program printing a report and the program reading
//! it share one definition. A field one side drops or renames then fails to deserialise
//! on the other instead of being read as a zero.
//!
//! - [`bench_report`]: the JSON that `ssectl bench --json` prints.
//!
//! # Example
//!
//! Reading a report that `ssectl bench --json` printed:
//!
//! ```
//! use sse_cli::bench_report::BenchReport;
//!
//! let printed = r#"{
//!   "url": "http://127.0.0.1:8001/subscribe/bench",
//!   "protocol": "HTTP/1.1",
//!   "connections_requested": 2,
//!   "connections_held": 2,
//!   "measured_seconds": 1.0,
//!   "events": 10,
//!   "events_total": 12,
//!   "events_published": 6,
//!   "deliveries_per_second": 10.0,
//!   "bytes": 960,
//!   "bytes_per_second": 960.0,
//!   "latency_ms": null,
//!   "errors": {},
//!   "disconnects": 0,
//!   "client_cpu": {
//!     "seconds": 0.25,
//!     "percent_of_one_core": 25.0,
//!     "cores": 1,
//!     "near_limit": false,
//!     "run_queue_wait_percent": 1.5
//!   }
//! }"#;
//! let report: BenchReport = serde_json::from_str(printed)?;
//! assert_eq!(report.connections_held, report.connections_requested);
//! assert!(report.latency_ms.is_none(), "the events carried no send times");
//! assert!(report.client_cpu.is_some_and(|cpu| !cpu.near_limit));
//!
//! // Without a field the report is refused rather than read as zero.
//! let truncated = printed.replace("\"disconnects\": 0", "\"ignored\": 0");
//! assert!(serde_json::from_str::<BenchReport>(&truncated).is_err());
//! # Ok::<(), serde_json::Error>(())
//! ```

#![warn(missing_docs)]

pub mod bench_report;
