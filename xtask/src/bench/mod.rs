//! `cargo xtask bench`: the project's benchmark report.
//!
//! Builds in release mode, runs the criterion micro-benchmarks, then end-to-end scenarios
//! that pair a server process with `ssectl bench` (server pinned to core 0 and client to
//! core 1 where `taskset` exists and the machine has two cores or more):
//!
//! - fan-out: the `firehose` example publishing to N subscribers → the highest delivery
//!   rate with no subscriber cut off, against subscriber count. It first publishes as fast
//!   as the hub accepts; when that outruns the reader and subscribers are cut off for lag,
//!   it searches for the highest event rate that keeps them all (doubling or halving from
//!   1 M deliveries/s, then bisecting; a few runs);
//! - latency: the firehose at fixed rates to one set of subscribers → publish-to-receive
//!   percentiles against load; and the same load (deliveries per second) spread over
//!   fewer or more subscribers, since each subscriber costs the server one write;
//! - idle connections: `ssectl serve` holding N idle streams with a 1 s keepalive →
//!   server RSS per connection and CPU;
//! - HTTP publishing: `ssectl bench --publish-rate` through the batch API at the target
//!   rate, then at a rate no server takes (the ceiling of batches, and of single-event
//!   requests, one at a time from one client).
//!
//! Writes `target/bench-report/report.md`, `report.json`, `deliveries.svg` and
//! `latency.svg`. `--quick` runs every scenario briefly and small: it keeps the harness
//! working, its numbers are not worth quoting.

mod charts;
mod criterion;
mod markdown;
mod processes;
mod scenarios;

use std::path::Path;

use serde_json::{json, Value};

use crate::{cargo, run, workspace_root};
use processes::Tools;
use scenarios::Plan;

/// Runs the whole report.
pub fn bench(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let criterion = !args.iter().any(|a| a == "--no-criterion");
    let plan = Plan::new(quick);
    let root = workspace_root();
    let mut build = cargo();
    // Name both targets: `--example` alone would narrow the build to the example.
    build.args(["build", "--release", "-p", "sse-cli", "--bin", "ssectl"]);
    build.args(["-p", "examples", "--example", "firehose"]);
    run(build, "cargo build --release")?;
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
    let tools = Tools::find(&root)?;
    let mut report = json!({
        "mode": if quick { "quick" } else { "full" },
        "pinned": tools.pinned,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "criterion": criterion::criterion_results(&root.join("target/criterion")),
    });
    report["fanout"] = Value::Array(
        plan.fanout_subscribers
            .iter()
            .map(|&n| scenarios::fanout(&tools, &plan, n))
            .collect::<Result<_, _>>()?,
    );
    report["latency"] = Value::Array(
        plan.latency_rates
            .iter()
            .map(|&rate| scenarios::latency(&tools, &plan, rate))
            .collect::<Result<_, _>>()?,
    );
    report["latency_spread"] = Value::Array(
        plan.spread_subscribers
            .iter()
            .map(|&subscribers| {
                let rate = (plan.spread_deliveries / subscribers).max(1);
                eprintln!("xtask: latency at {rate} events/s to {subscribers} subscribers");
                scenarios::firehose_run(&tools, &plan, rate, subscribers)
            })
            .collect::<Result<_, _>>()?,
    );
    report["idle"] = scenarios::idle(&tools, &plan)?;
    report["http_publish"] = scenarios::http_publish(&tools, &plan)?;

    let out = root.join("target/bench-report");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    write(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&report).unwrap_or_default(),
    )?;
    write(&out.join("report.md"), &markdown::markdown(&report, &plan))?;
    write(
        &out.join("deliveries.svg"),
        &charts::deliveries_chart(&report),
    )?;
    write(&out.join("latency.svg"), &charts::latency_chart(&report))?;
    println!("xtask: wrote {}", out.join("report.md").display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
