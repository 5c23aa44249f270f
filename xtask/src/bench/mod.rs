//! `cargo xtask bench`: the project's benchmark report.
//!
//! Builds in release mode, runs the criterion micro-benchmarks, then end-to-end scenarios
//! that pair a server process with `ssectl bench` (server pinned to core 0 and client to
//! core 1 where `taskset` exists and the machine has two cores or more):
//!
//! - client self-check: `ssectl bench` reading a minimal broadcaster of the harness's own
//!   (`broadcaster.rs`: pre-encoded events written to raw sockets, no hub) → what the
//!   client adds to the latency beyond the broadcaster's own timing (`client_check.rs`);
//! - fan-out: the `firehose` example publishing to N subscribers → the highest delivery
//!   rate with no subscriber cut off, against subscriber count. It first publishes as fast
//!   as the hub accepts; when that outruns the reader and subscribers are cut off for lag,
//!   it searches for the highest event rate that keeps them all (doubling or halving from
//!   1 M deliveries/s, then bisecting; a few runs);
//! - latency: the firehose at fixed rates to one set of subscribers → publish-to-receive
//!   percentiles against load; and the same load (deliveries per second) spread over
//!   fewer or more subscribers, since each subscriber costs the server one write;
//! - idle connections: `ssectl serve` holding N idle streams with a 1 s keepalive →
//!   server RSS per connection and CPU; then N idle streams per protocol (HTTP/1.1,
//!   HTTP/1.1 over TLS, HTTP/2 one stream per connection) → peak RSS per connection and
//!   connections per GiB;
//! - HTTP publishing: `ssectl bench --publish-rate` through the batch API at the target
//!   rate, then at a rate no server takes (the ceiling of batches, and of single-event
//!   requests, one at a time from one client); and single events from the same client
//!   to `ssectl serve` and to nginx + nchan, alternating (`nchan.rs`: installed from
//!   Debian when missing in a full run as root; skipped, saying why, otherwise and in
//!   `--quick` when not installed);
//! - cluster (Redis): a `redis-server` of the run's own and `ssectl serve --redis` nodes:
//!   publishing through Redis, fan-out fed from Redis beside in memory, cross-node
//!   latency, Redis CPU per event (see `cluster.rs`). Skipped, saying why, when no
//!   `redis-server` is installed.
//!
//! `--only NAME[,NAME...]` runs some sections (criterion, client, fanout, latency, spread,
//! idle, http-publish, cluster); the report then holds only those.
//!
//! Writes `target/bench-report/report.md`, `report.json`, `deliveries.svg` and
//! `latency.svg` (in cargo's target directory, wherever `CARGO_TARGET_DIR` puts it). `--quick` runs every scenario briefly and small: it keeps the harness
//! working, its numbers are not worth quoting.

pub(crate) mod broadcaster;
pub(crate) mod charts;
mod client_check;
mod cluster;
mod criterion;
mod markdown;
mod nchan;
pub(crate) mod processes;
pub(crate) mod publish_floor;
mod redis;
mod report;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;

use crate::{cargo, run};
use processes::Tools;
use report::Report;
use scenarios::Plan;

/// The report's sections, as `--only` names them, in the order they run.
const SECTIONS: [&str; 8] = [
    "criterion",
    "client",
    "fanout",
    "latency",
    "spread",
    "idle",
    "http-publish",
    "cluster",
];

/// Runs the report: every section, or those `--only` names.
pub fn bench(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let selection = Selection::parse(args)?;
    let criterion = selection.runs("criterion") && !args.iter().any(|a| a == "--no-criterion");
    let plan = Plan::new(quick);
    let target = target_dir()?;
    build_release()?;
    if criterion {
        let mut bench = cargo();
        bench.args(["bench", "--package", "benches", "--"]);
        if quick {
            bench.args([
                "--warm-up-time",
                "0.1",
                "--measurement-time",
                "0.3",
                "--sample-size",
                "10",
            ]);
        }
        run(bench, "cargo bench")?;
    }
    let tools = Tools::find(&target)?;
    let section = |name: &str| selection.runs(name);
    let report = Report {
        mode: if quick { "quick" } else { "full" },
        pinned: tools.pinned,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        only: selection.only.clone(),
        // Criterion's saved means, from this run or (with --no-criterion) an earlier one.
        criterion: section("criterion")
            .then(|| criterion::criterion_results(&target.join("criterion"))),
        client_check: section("client")
            .then(|| client_check::client_check(&tools, &plan))
            .transpose()?,
        fanout: section("fanout")
            .then(|| {
                each(&plan.fanout_subscribers, |n| {
                    scenarios::fanout(&tools, &plan, n)
                })
            })
            .transpose()?,
        latency: section("latency")
            .then(|| {
                each(&plan.latency_rates, |rate| {
                    scenarios::latency(&tools, &plan, rate)
                })
            })
            .transpose()?,
        latency_spread: section("spread")
            .then(|| {
                each(&plan.spread_subscribers, |n| {
                    scenarios::latency_spread(&tools, &plan, n)
                })
            })
            .transpose()?,
        idle: section("idle")
            .then(|| scenarios::idle(&tools, &plan))
            .transpose()?,
        idle_memory: section("idle")
            .then(|| scenarios::idle_memory(&tools, &plan))
            .transpose()?,
        http_publish: section("http-publish")
            .then(|| scenarios::http_publish(&tools, &plan))
            .transpose()?,
        http_publish_nchan: section("http-publish").then(|| nchan::nchan_publish(&tools, &plan)),
        cluster: section("cluster")
            .then(|| cluster::cluster(&tools, &plan))
            .transpose()?,
    };

    let out = target.join("bench-report");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    write(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&report).map_err(|e| format!("report.json: {e}"))?,
    )?;
    write(&out.join("report.md"), &markdown::markdown(&report, &plan))?;
    if let Some(fanout) = &report.fanout {
        write(
            &out.join("deliveries.svg"),
            &charts::deliveries_chart(fanout),
        )?;
    }
    if let Some(latency) = &report.latency {
        write(&out.join("latency.svg"), &charts::latency_chart(latency))?;
    }
    println!("xtask: wrote {}", out.join("report.md").display());
    Ok(())
}

/// Builds the binaries [`Tools::find`] looks for in release mode, and this program too
/// (`cargo xtask soak` runs its load from it). One build for all three: built apart,
/// their shared dependencies would be resolved with different features and compiled
/// twice.
pub(crate) fn build_release() -> Result<(), String> {
    let mut build = cargo();
    // Name every target: `--example` alone would narrow the build to the example.
    build.args(["build", "--release", "-p", "sse-cli", "--bin", "ssectl"]);
    build.args(["-p", "examples", "--example", "firehose"]);
    build.args(["-p", "xtask", "--bin", "xtask"]);
    run(build, "cargo build --release")
}

/// Which sections run: all, or those named by `--only NAME[,NAME...]` (also
/// `--only=...`, and repeatable).
#[derive(Debug, PartialEq)]
struct Selection {
    /// `None`: every section.
    only: Option<Vec<&'static str>>,
}

impl Selection {
    fn parse(args: &[String]) -> Result<Selection, String> {
        let mut lists = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--only" {
                lists.push(args.next().ok_or("--only needs a section name")?.as_str());
            } else if let Some(list) = arg.strip_prefix("--only=") {
                lists.push(list);
            }
        }
        if lists.is_empty() {
            return Ok(Selection { only: None });
        }
        let mut only = Vec::new();
        for name in lists.iter().flat_map(|list| list.split(',')) {
            let known = SECTIONS.iter().find(|s| **s == name).ok_or_else(|| {
                format!("--only {name:?}: the sections are {}", SECTIONS.join(", "))
            })?;
            only.push(*known);
        }
        Ok(Selection { only: Some(only) })
    }

    fn runs(&self, section: &str) -> bool {
        debug_assert!(SECTIONS.contains(&section), "{section} is not a section");
        self.only
            .as_ref()
            .is_none_or(|only| only.contains(&section))
    }
}

/// Cargo's target directory for this workspace, wherever `CARGO_TARGET_DIR` or a
/// config file puts it: the builds above went there, so their binaries and criterion's
/// results are found there, and the report is written beside them.
pub(crate) fn target_dir() -> Result<PathBuf, String> {
    /// The one field of `cargo metadata` this needs.
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no target directory: {e}"))?;
    Ok(metadata.target_directory)
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `scenario` once per value, in order, stopping at the first failure.
fn each<T>(
    values: &[u64],
    scenario: impl FnMut(u64) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    values.iter().copied().map(scenario).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn without_only_every_section_runs() {
        let selection = Selection::parse(&args(&["--quick"])).unwrap();
        assert!(SECTIONS.iter().all(|s| selection.runs(s)));
    }

    #[test]
    fn only_names_sections_in_either_form_and_lists() {
        let selection =
            Selection::parse(&args(&["--only", "cluster", "--only=idle,fanout"])).unwrap();
        assert_eq!(selection.only, Some(vec!["cluster", "idle", "fanout"]));
        assert!(selection.runs("idle"));
        assert!(!selection.runs("criterion"));
    }

    #[test]
    fn only_refuses_unknown_sections_and_a_missing_name() {
        let error = Selection::parse(&args(&["--only", "clusters"])).unwrap_err();
        assert!(error.contains("http-publish"), "{error}");
        assert!(Selection::parse(&args(&["--only"])).is_err());
    }
}
