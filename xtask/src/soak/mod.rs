//! `cargo xtask soak`: churn and soak tests of a release `ssectl serve`, bounded in count
//! and time, with a report beside the benchmark report.
//!
//! Two phases, each against a fresh server pinned to core 0 while this process, the
//! load, runs on core 1 (when `taskset` exists and there are two cores or more):
//!
//! - churn (`churn.rs`): `--cycles` short connections ended every way a client ends one
//!   (clean close, reset, half close, never reading, mid-head), then checks that the
//!   server is back at rest: no open stream or subscriber, its file descriptors as at
//!   start, its RSS within 10% of the baseline taken after a warm-up round;
//! - delivery soak (`delivery.rs`): numbered events at a fixed rate for `--duration` to
//!   healthy, churning (resuming with `Last-Event-ID`) and stalled subscribers; checks
//!   that healthy and churning subscribers lose nothing and that the server's RSS, sampled
//!   every second, stays flat.
//!
//! The load clients are tokio tasks on raw sockets (`wire.rs`), on one thread. Every
//! wait has a deadline; every server process is stopped when its phase ends, on every
//! path. Writes `soak.md`, `soak.json` and `soak-rss.svg` to `bench-report/` in cargo's
//! target directory; exits non-zero naming every check that failed.

mod check;
mod churn;
mod delivery;
mod feed;
mod probes;
mod report;
mod subscribers;
mod tally;
mod wire;

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::bench::processes::Tools;
use crate::bench::{build_release, target_dir, write};
use crate::run;
use churn::ChurnPlan;
use delivery::DeliveryPlan;
use report::SoakReport;

/// The options of `cargo xtask soak`.
#[derive(Debug, Default, PartialEq)]
struct Options {
    quick: bool,
    cycles: Option<u64>,
    duration: Option<Duration>,
}

/// The shortest `--duration`: room for the warm-up and a few samples after it.
const MIN_DURATION: Duration = Duration::from_secs(10);

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .or_else(|| args.next().map(String::as_str))
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "--quick" if inline.is_none() => options.quick = true,
                "--cycles" => {
                    let text = value()?;
                    let cycles = text
                        .parse()
                        .map_err(|_| format!("--cycles {text:?}: a whole number"))?;
                    options.cycles = Some(cycles);
                }
                "--duration" => {
                    let text = value()?;
                    let duration = humantime::parse_duration(text)
                        .map_err(|e| format!("--duration {text:?}: {e} (e.g. 45s, 3m)"))?;
                    if duration < MIN_DURATION {
                        return Err(format!("--duration {text}: at least {MIN_DURATION:?}"));
                    }
                    options.duration = Some(duration);
                }
                other => {
                    return Err(format!(
                        "cargo xtask soak: unknown option {other:?} (--quick, --cycles N, --duration D)"
                    ))
                }
            }
        }
        Ok(options)
    }

    fn churn_plan(&self) -> ChurnPlan {
        let cycles = self
            .cycles
            .unwrap_or(if self.quick { 10_000 } else { 100_000 });
        ChurnPlan {
            cycles,
            warmup_cycles: (cycles / 20).clamp(500, 5_000),
            concurrency: 64,
            feed_rate: 1_000,
            history: 1_000,
        }
    }

    fn delivery_plan(&self) -> DeliveryPlan {
        // Full: 500 events/s × 1 000 subscribers = 500 000 deliveries/s. Quick: a tenth.
        let (subscribers, duration, warmup) = if self.quick {
            (100, Duration::from_secs(40), Duration::from_secs(15))
        } else {
            (1_000, Duration::from_secs(180), Duration::from_secs(20))
        };
        let duration = self.duration.unwrap_or(duration);
        DeliveryPlan {
            subscribers,
            rate: 500,
            duration,
            warmup: warmup.min(duration / 3),
        }
    }
}

/// Runs both phases, writes the report, and fails when a check failed.
pub fn soak(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let target = target_dir()?;
    if cfg!(debug_assertions) {
        // The load must cost its core little: run it from an optimised build of this
        // program (its dependencies are mostly those of the release `ssectl`).
        return run_optimised(&target, args);
    }
    build_release()?;
    let mut tools = Tools::find(&target)?;
    // Counted before pinning: a pinned process sees one core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if tools.pinned && !pin_this_process_to_core_1() {
        eprintln!("xtask: could not pin the load to core 1; running unpinned");
        tools.pinned = false;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let (churn, churn_checks) = runtime.block_on(churn::churn(&tools, &options.churn_plan()))?;
    let (delivery, delivery_checks) =
        runtime.block_on(delivery::delivery(&tools, &options.delivery_plan()))?;
    drop(runtime);

    let report = SoakReport {
        mode: if options.quick { "quick" } else { "full" },
        options: args.iter().map(|a| format!(" {a}")).collect(),
        pinned: tools.pinned,
        cores,
        checks: churn_checks.into_iter().chain(delivery_checks).collect(),
        churn,
        delivery,
    };
    let out = target.join("bench-report");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    write(
        &out.join("soak.json"),
        &serde_json::to_string_pretty(&report).map_err(|e| format!("soak.json: {e}"))?,
    )?;
    write(&out.join("soak.md"), &report::markdown(&report))?;
    write(
        &out.join("soak-rss.svg"),
        &report::rss_chart(&report.delivery),
    )?;
    println!("xtask: wrote {}", out.join("soak.md").display());
    for check in &report.checks {
        println!(
            "xtask: {} {}: {}",
            if check.passed { "pass" } else { "FAIL" },
            check.name,
            check.detail
        );
    }
    let failures = report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = failures.iter().map(|c| c.name.as_str()).collect();
        Err(format!("soak checks failed: {}", names.join("; ")))
    }
}

/// Builds the release binaries, this program among them, and runs its `soak` with the
/// same arguments.
fn run_optimised(target: &std::path::Path, args: &[String]) -> Result<(), String> {
    build_release()?;
    let mut soak = Command::new(target.join("release/xtask"));
    soak.arg("soak").args(args);
    run(soak, "the optimised soak")
}

/// Moves every thread of this process (the load) to core 1; the server processes are
/// started on core 0 by `taskset` themselves.
fn pin_this_process_to_core_1() -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
        Options::parse(&args)
    }

    #[test]
    fn options_in_either_form() {
        let options = parse(&["--quick", "--cycles", "500", "--duration=45s"]).unwrap();
        assert_eq!(
            options,
            Options {
                quick: true,
                cycles: Some(500),
                duration: Some(Duration::from_secs(45)),
            }
        );
        assert_eq!(parse(&["--cycles=7"]).unwrap().cycles, Some(7));
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        assert!(parse(&["--cycles"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--cycles", "many"]).is_err());
        assert!(parse(&["--duration", "soon"]).is_err());
        assert!(parse(&["--duration", "2s"])
            .unwrap_err()
            .contains("at least"));
        assert!(parse(&["--quick=yes"]).is_err());
        assert!(parse(&["--only", "churn"]).is_err());
    }

    #[test]
    fn the_full_soak_reaches_half_a_million_deliveries_per_second() {
        let plan = parse(&[]).unwrap().delivery_plan();
        assert_eq!(plan.subscribers * plan.rate, 500_000);
        assert_eq!(parse(&[]).unwrap().churn_plan().cycles, 100_000);
    }

    #[test]
    fn a_short_duration_keeps_most_of_it_measured() {
        let plan = parse(&["--duration", "12s"]).unwrap().delivery_plan();
        assert_eq!(plan.warmup, Duration::from_secs(4));
    }
}
