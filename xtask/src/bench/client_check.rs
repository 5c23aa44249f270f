//! The client self-check: `ssectl bench` reading the in-harness broadcaster
//! (`broadcaster.rs`, no hub), so the latency it reports beyond the broadcaster's own
//! timing is what the client adds. The goal: bench's p99 within
//! [`GOAL_ADDED_P99_MS`] of the broadcaster's p99 round time.

use std::time::Duration;

use super::broadcaster::BroadcasterTiming;
use super::processes::{ssectl_bench, ServerProcess, Tools};
use super::report::ClientCheck;
use super::scenarios::{listen_args, Plan};

/// How much the client may add to the broadcaster's p99 round time, in ms.
pub(super) const GOAL_ADDED_P99_MS: f64 = 1.0;

/// Runs the broadcaster (core 0) at the plan's rate to the plan's connections and
/// `ssectl bench` (core 1) reading it.
pub(super) fn client_check(tools: &Tools, plan: &Plan) -> Result<ClientCheck, String> {
    let (connections, rate) = (plan.client_check_connections, plan.client_check_rate);
    eprintln!("xtask: client self-check, {rate} events/s to {connections} connections");
    let stats = scratch_path("broadcaster-timing.json");
    let warmup = humantime_seconds(plan.warmup)?;
    let mut command = tools.command(&tools.xtask, 0);
    command.args(["broadcaster", "--listen", "127.0.0.1:0", "--size", "64"]);
    command.args(["--connections", &connections.to_string()]);
    command.args(["--rate", &rate.to_string()]);
    command.args(["--warmup-ms", &(warmup * 1000).to_string()]);
    command.args(["--max-seconds", "300"]);
    command.arg("--stats").arg(&stats);
    let mut broadcaster = ServerProcess::start(command)?;
    let bench = ssectl_bench(tools, &listen_args(plan, &broadcaster.base, connections))?;
    // The broadcaster ends once the client's connections are gone.
    if !broadcaster.wait_for_exit(Duration::from_secs(30)) {
        return Err("the broadcaster did not end after the client closed".to_owned());
    }
    let text = std::fs::read_to_string(&stats)
        .map_err(|e| format!("the broadcaster left no timing ({}): {e}", stats.display()))?;
    let _ = std::fs::remove_file(&stats);
    let broadcaster: BroadcasterTiming =
        serde_json::from_str(&text).map_err(|e| format!("broadcaster timing: {e}"))?;
    let (added_p50_ms, added_p99_ms) = match &bench.latency_ms {
        Some(latency) => (
            Some(latency.p50 - broadcaster.round_p50_ms),
            Some(latency.p99 - broadcaster.round_p99_ms),
        ),
        None => (None, None),
    };
    Ok(ClientCheck {
        connections,
        rate,
        goal_added_p99_ms: GOAL_ADDED_P99_MS,
        met: added_p99_ms.is_some_and(|added| added <= GOAL_ADDED_P99_MS),
        added_p50_ms,
        added_p99_ms,
        broadcaster,
        bench,
    })
}

/// A path for a scratch file of this run in the system's temporary directory.
fn scratch_path(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("xtask-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Whole seconds of a plan duration such as `"3s"`.
fn humantime_seconds(text: &str) -> Result<u64, String> {
    text.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("plan duration {text:?} is not whole seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_durations_are_whole_seconds() {
        assert_eq!(humantime_seconds("3s"), Ok(3));
        assert!(humantime_seconds("3ms").is_err());
        assert!(humantime_seconds("soon").is_err());
    }
}
