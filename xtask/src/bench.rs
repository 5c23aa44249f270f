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

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{cargo, run, workspace_root};

struct Plan {
    quick: bool,
    fanout_subscribers: Vec<u64>,
    fanout_runs: usize,
    latency_subscribers: u64,
    latency_rates: Vec<u64>,
    /// Deliveries per second, and the subscriber counts to spread them over.
    spread_deliveries: u64,
    spread_subscribers: Vec<u64>,
    idle_connections: u64,
    publish_rate: u64,
    warmup: &'static str,
    duration: &'static str,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                fanout_subscribers: vec![10, 100],
                fanout_runs: 2,
                latency_subscribers: 100,
                latency_rates: vec![100, 1000],
                spread_deliveries: 100_000,
                spread_subscribers: vec![10, 100],
                idle_connections: 500,
                publish_rate: 5_000,
                warmup: "1s",
                duration: "1s",
            }
        } else {
            Plan {
                quick,
                fanout_subscribers: vec![100, 1_000, 5_000, 10_000],
                fanout_runs: 7,
                latency_subscribers: 1_000,
                latency_rates: vec![100, 500, 1_000, 2_000, 5_000],
                spread_deliveries: 1_000_000,
                spread_subscribers: vec![10, 100, 1_000],
                idle_connections: 19_000,
                publish_rate: 100_000,
                warmup: "3s",
                duration: "10s",
            }
        }
    }
}

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
        "criterion": criterion_results(&root.join("target/criterion")),
    });
    report["fanout"] = Value::Array(
        plan.fanout_subscribers
            .iter()
            .map(|&n| fanout(&tools, &plan, n))
            .collect::<Result<_, _>>()?,
    );
    report["latency"] = Value::Array(
        plan.latency_rates
            .iter()
            .map(|&rate| latency(&tools, &plan, rate))
            .collect::<Result<_, _>>()?,
    );
    report["latency_spread"] = Value::Array(
        plan.spread_subscribers
            .iter()
            .map(|&subscribers| {
                let rate = (plan.spread_deliveries / subscribers).max(1);
                eprintln!("xtask: latency at {rate} events/s to {subscribers} subscribers");
                firehose_run(&tools, &plan, rate, subscribers)
            })
            .collect::<Result<_, _>>()?,
    );
    report["idle"] = idle(&tools, &plan)?;
    report["http_publish"] = http_publish(&tools, &plan)?;

    let out = root.join("target/bench-report");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    write(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&report).unwrap_or_default(),
    )?;
    write(&out.join("report.md"), &markdown(&report, &plan))?;
    write(&out.join("deliveries.svg"), &deliveries_chart(&report))?;
    write(&out.join("latency.svg"), &latency_chart(&report))?;
    println!("xtask: wrote {}", out.join("report.md").display());
    Ok(())
}

/// The built binaries and how to pin them.
struct Tools {
    ssectl: PathBuf,
    firehose: PathBuf,
    pinned: bool,
}

impl Tools {
    fn find(root: &Path) -> Result<Tools, String> {
        let ssectl = root.join("target/release/ssectl");
        let firehose = root.join("target/release/examples/firehose");
        for path in [&ssectl, &firehose] {
            if !path.exists() {
                return Err(format!("{} was not built", path.display()));
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        Ok(Tools {
            ssectl,
            firehose,
            pinned: cores >= 2 && taskset,
        })
    }

    /// A command for `program`, pinned to `core` when pinning is possible.
    fn command(&self, program: &Path, core: u8) -> Command {
        if self.pinned {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// A server process that prints `... listening on http://ADDR ...` first; stopped with
/// SIGINT (then killed) when dropped.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(mut command: Command) -> Result<ServerProcess, String> {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| format!("the server did not say where it listens: {line:?}"))?
            .to_owned();
        Ok(ServerProcess { child, base })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ssectl bench ... --json` pinned to core 1 and returns its report.
fn ssectl_bench(tools: &Tools, args: &[String]) -> Result<Value, String> {
    let output = tools
        .command(&tools.ssectl, 1)
        .arg("bench")
        .args(args)
        .args(["--threads", "1", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run ssectl bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("ssectl bench failed ({})", output.status));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("ssectl bench printed no JSON report: {e}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn firehose(tools: &Tools, rate: u64, delay_secs: u64) -> Result<ServerProcess, String> {
    let mut command = tools.command(&tools.firehose, 0);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--size",
        "64",
        "--count",
        "4000000000",
    ]);
    command.args([
        "--rate",
        &rate.to_string(),
        "--delay",
        &delay_secs.to_string(),
    ]);
    ServerProcess::start(command)
}

/// `ssectl bench` arguments that read `connections` streams from `base` for the plan's
/// warm-up and duration.
fn listen_args(plan: &Plan, base: &str, connections: u64) -> Vec<String> {
    let mut args = strings(&[
        "--server",
        base,
        "--warmup",
        plan.warmup,
        "--duration",
        plan.duration,
    ]);
    args.extend(["--connections".into(), connections.to_string()]);
    args
}

/// The firehose at `rate` (0: as fast as the hub accepts) to `subscribers` streams, read by
/// `ssectl bench`.
fn firehose_run(tools: &Tools, plan: &Plan, rate: u64, subscribers: u64) -> Result<Value, String> {
    let server = firehose(tools, rate, 1)?;
    let report = ssectl_bench(tools, &listen_args(plan, &server.base, subscribers))?;
    Ok(json!({ "rate": rate, "subscribers": subscribers, "bench": report }))
}

/// The highest delivery rate to `subscribers` with none of them cut off. First as fast
/// as the hub accepts; if that cuts subscribers off, from 1 M deliveries/s the event rate
/// is doubled while clean and halved while not, then bisected between the best clean run
/// and the lowest that lost subscribers.
fn fanout(tools: &Tools, plan: &Plan, subscribers: u64) -> Result<Value, String> {
    eprintln!("xtask: fan-out to {subscribers} subscribers");
    let mut attempts = Vec::new();
    let mut best: Option<Value> = None;
    let mut clean_rate: Option<u64> = None;
    let mut lost_rate: Option<u64> = None;
    let mut rate = 0u64;
    for _ in 0..plan.fanout_runs {
        let run = firehose_run(tools, plan, rate, subscribers)?;
        let bench = &run["bench"];
        let clean = bench["disconnects"] == 0 && bench["connections_held"] == subscribers;
        attempts.push(json!({
            "rate": rate,
            "deliveries_per_second": bench["deliveries_per_second"],
            "disconnects": bench["disconnects"],
        }));
        if clean {
            best = Some(run);
            if rate == 0 {
                break;
            }
            clean_rate = Some(rate);
        } else if rate > 0 {
            lost_rate = Some(rate);
        }
        let next = match (clean_rate, lost_rate) {
            // Only the unthrottled run so far, and it lost subscribers.
            (None, None) => (1_000_000 / subscribers).max(1),
            (Some(clean), None) => clean * 2,
            (None, Some(lost)) => lost / 2,
            (Some(clean), Some(lost)) => (clean + lost) / 2,
        };
        // Stop when the bisection is within 5%.
        let close = matches!((clean_rate, lost_rate), (Some(c), Some(l)) if l - c <= c / 20);
        if next == 0 || next == rate || close {
            break;
        }
        rate = next;
    }
    let mut result = match best {
        Some(run) => run,
        None => json!({ "rate": rate, "subscribers": subscribers, "bench": Value::Null }),
    };
    result["attempts"] = Value::Array(attempts);
    Ok(result)
}

fn latency(tools: &Tools, plan: &Plan, rate: u64) -> Result<Value, String> {
    eprintln!(
        "xtask: latency at {rate} events/s to {} subscribers",
        plan.latency_subscribers
    );
    firehose_run(tools, plan, rate, plan.latency_subscribers)
}

fn idle(tools: &Tools, plan: &Plan) -> Result<Value, String> {
    eprintln!("xtask: {} idle connections", plan.idle_connections);
    let mut command = tools.command(&tools.ssectl, 0);
    command.args(["serve", "--listen", "127.0.0.1:0", "--keepalive", "1s"]);
    let server = ServerProcess::start(command)?;
    let before = rss_kib(server.pid());
    let cpu_before = cpu_seconds(server.pid());
    let args = listen_args(plan, &server.base, plan.idle_connections);
    // Sample RSS and CPU while the streams are held: start the client, wait until the
    // server reports them all, then measure over the client's measurement window.
    let client = std::thread::spawn({
        let args = args.clone();
        let ssectl = tools.ssectl.clone();
        let pinned = tools.pinned;
        move || {
            ssectl_bench(
                &Tools {
                    ssectl: ssectl.clone(),
                    firehose: ssectl,
                    pinned,
                },
                &args,
            )
        }
    });
    // The client holds the streams for its warm-up and measurement time once they are
    // all open; measure inside that window, never after the client let go.
    let deadline = Instant::now() + Duration::from_secs(120);
    while open_streams(&server.base) < plan.idle_connections
        && Instant::now() < deadline
        && !client.is_finished()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let held_at = Instant::now();
    let cpu_held = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(if plan.quick { 1 } else { 5 }));
    let during = rss_kib(server.pid());
    let cpu_after = cpu_seconds(server.pid());
    let held = open_streams(&server.base);
    let window = held_at.elapsed().as_secs_f64();
    let report = client.join().map_err(|_| "the bench thread panicked")??;
    if held < plan.idle_connections {
        return Err(format!(
            "idle: only {held} of {} streams were open while measuring; client report: {report}",
            plan.idle_connections
        ));
    }
    let per_connection = match (before, during) {
        (Some(b), Some(d)) if held > 0 => Some((d.saturating_sub(b)) as f64 / held as f64),
        _ => None,
    };
    let cpu = match (cpu_held, cpu_after) {
        (Some(a), Some(b)) if window > 0.0 => Some((b - a) / window * 100.0),
        _ => None,
    };
    Ok(json!({
        "connections": plan.idle_connections,
        "held": held,
        "rss_before_kib": before,
        "rss_during_kib": during,
        "rss_per_connection_kib": per_connection,
        "cpu_percent_of_one_core": cpu,
        "cpu_before_seconds": cpu_before,
        "keepalive": "1s",
    }))
}

fn http_publish(tools: &Tools, plan: &Plan) -> Result<Value, String> {
    // A rate no server takes: requests then go back to back, which measures the ceiling.
    const UNREACHABLE: u64 = 100_000_000;
    let runs = [
        ("batches at the target rate", plan.publish_rate, 1000),
        ("batches, back to back", UNREACHABLE, 1000),
        ("single events, back to back", UNREACHABLE, 1),
    ];
    let mut results = Vec::new();
    for (name, rate, batch) in runs {
        eprintln!("xtask: HTTP publishing: {name}");
        let mut command = tools.command(&tools.ssectl, 0);
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        let server = ServerProcess::start(command)?;
        let mut args = strings(&[
            "--server",
            &server.base,
            "--duration",
            plan.duration,
            "--connections",
            "1",
        ]);
        args.extend(["--publish-rate".into(), rate.to_string()]);
        args.extend(["--publish-batch".into(), batch.to_string()]);
        let report = ssectl_bench(tools, &args)?;
        let seconds = report["measured_seconds"].as_f64().unwrap_or(0.0);
        let published = report["events_published"].as_u64().unwrap_or(0);
        results.push(json!({
            "name": name,
            "offered_rate": if rate == UNREACHABLE { Value::Null } else { rate.into() },
            "events_per_request": batch,
            "published_per_second": if seconds > 0.0 { published as f64 / seconds } else { 0.0 },
            "bench": report,
        }));
    }
    Ok(Value::Array(results))
}

/// Resident set size of a process, from /proc (Linux only).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of a process in seconds, from /proc (Linux only).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Open streams according to the server's metrics.
fn open_streams(base: &str) -> u64 {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return 0;
    };
    let _ = write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("sse_streams_open "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Mean times of every criterion benchmark found under `dir`, in nanoseconds.
fn criterion_results(dir: &Path) -> Value {
    let mut results = Vec::new();
    collect_criterion(dir, &mut results);
    results.sort_by(|a: &Value, b: &Value| a["id"].as_str().cmp(&b["id"].as_str()));
    Value::Array(results)
}

fn collect_criterion(dir: &Path, results: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let read = |name: &str| -> Option<Value> {
                serde_json::from_str(&std::fs::read_to_string(path.join(name)).ok()?).ok()
            };
            if let (Some(benchmark), Some(estimates)) =
                (read("benchmark.json"), read("estimates.json"))
            {
                results.push(json!({
                    "id": benchmark["full_id"],
                    "mean_ns": estimates["mean"]["point_estimate"],
                }));
            }
        } else if path.is_dir() {
            collect_criterion(&path, results);
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// The cells "deliveries/s | p50 | p90 | p99 | p99.9 | max | disconnects" of one run.
fn latency_cells(bench: &Value) -> String {
    let l = &bench["latency_ms"];
    format!(
        "{:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {}",
        number(&bench["deliveries_per_second"]),
        number(&l["p50"]),
        number(&l["p90"]),
        number(&l["p99"]),
        number(&l["p999"]),
        number(&l["max"]),
        bench["disconnects"]
    )
}

/// An offered rate for the report: "max" when unthrottled or unbounded.
fn rate_name(rate: &Value) -> String {
    match rate.as_u64() {
        Some(0) | None => "max".to_owned(),
        Some(rate) => rate.to_string(),
    }
}

fn markdown(report: &Value, plan: &Plan) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmark report ({} mode)\n",
        report["mode"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        md,
        "{} cores; server and client {}. Produced by `cargo xtask bench{}`.\n",
        report["cores"],
        if report["pinned"] == true {
            "pinned to cores 0 and 1"
        } else {
            "not pinned"
        },
        if plan.quick { " --quick" } else { "" }
    );
    if plan.quick {
        let _ = writeln!(md, "Quick mode: brief and small runs that check the harness; do not quote these numbers.\n");
    }
    let _ = writeln!(
        md,
        "## Fan-out (firehose, 64-byte events): the most with no subscriber cut off\n"
    );
    let _ = writeln!(
        md,
        "Events/s \"max\" means as fast as the hub accepts; a number is the highest rate found \
         that kept every subscriber (the unthrottled run outran the reader and lagging \
         subscribers were cut off). Runs lists every try as events/s → deliveries/s (disconnects).\n"
    );
    let _ = writeln!(
        md,
        "| subscribers | events/s | held | deliveries/s | MiB/s | disconnects | runs |\n|---:|---:|---:|---:|---:|---:|---|"
    );
    for row in report["fanout"].as_array().into_iter().flatten() {
        let b = &row["bench"];
        let runs: Vec<String> = row["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{} → {} ({})",
                    rate_name(&a["rate"]),
                    compact(number(&a["deliveries_per_second"])),
                    a["disconnects"]
                )
            })
            .collect();
        if b.is_null() {
            let _ = writeln!(
                md,
                "| {} | none clean | | | | | {} |",
                row["subscribers"],
                runs.join("; ")
            );
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.1} | {} | {} |",
            row["subscribers"],
            rate_name(&row["rate"]),
            b["connections_held"],
            number(&b["deliveries_per_second"]),
            number(&b["bytes_per_second"]) / 1048576.0,
            b["disconnects"],
            runs.join("; ")
        );
    }
    let _ = writeln!(
        md,
        "\n## Latency against load ({} subscribers)\n",
        plan.latency_subscribers
    );
    let _ = writeln!(md, "| events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in report["latency"].as_array().into_iter().flatten() {
        let _ = writeln!(md, "| {} | {} |", row["rate"], latency_cells(&row["bench"]));
    }
    let _ = writeln!(
        md,
        "\n## The same load over fewer or more subscribers ({} deliveries/s)\n",
        plan.spread_deliveries
    );
    let _ = writeln!(md, "| subscribers | events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in report["latency_spread"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            row["subscribers"],
            row["rate"],
            latency_cells(&row["bench"])
        );
    }
    let idle = &report["idle"];
    let _ = writeln!(md, "\n## Idle connections (keepalive 1 s)\n");
    let _ = writeln!(
        md,
        "{} of {} streams held; server RSS {} → {} KiB = **{:.1} KiB per connection**; server CPU {:.1}% of one core.",
        idle["held"],
        idle["connections"],
        idle["rss_before_kib"],
        idle["rss_during_kib"],
        number(&idle["rss_per_connection_kib"]),
        number(&idle["cpu_percent_of_one_core"])
    );
    let _ = writeln!(
        md,
        "\n## HTTP publishing (one client, one request at a time)\n\n| run | offered events/s | events per request | published events/s | errors |\n|---|---:|---:|---:|---|"
    );
    for row in report["http_publish"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | **{:.0}** | {} |",
            row["name"].as_str().unwrap_or("?"),
            rate_name(&row["offered_rate"]),
            row["events_per_request"],
            number(&row["published_per_second"]),
            row["bench"]["errors"]
        );
    }
    let _ = writeln!(
        md,
        "\n## Criterion (mean)\n\n| benchmark | mean |\n|---|---:|"
    );
    for row in report["criterion"].as_array().into_iter().flatten() {
        let ns = number(&row["mean_ns"]);
        let shown = if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.2} µs", ns / 1e3)
        } else {
            format!("{ns:.1} ns")
        };
        let _ = writeln!(md, "| {} | {shown} |", row["id"].as_str().unwrap_or("?"));
    }
    let _ = writeln!(
        md,
        "\nCharts: `deliveries.svg`, `latency.svg`. Raw data: `report.json`."
    );
    md
}

/// A line chart: one series per (name, points) on shared axes.
/// Chart size and margins, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> String {
    let colors = ["#2e6fdb", "#d9822b", "#0f9960", "#c23030"];
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let x = |v: f64| LEFT + v / x_max * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / y_max * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#333\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{y_label}</text>\n",
        WIDTH / 2.0, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM, HEIGHT - BOTTOM, (LEFT + WIDTH - RIGHT) / 2.0, HEIGHT - 12.0, (TOP + HEIGHT - BOTTOM) / 2.0, (TOP + HEIGHT - BOTTOM) / 2.0
    );
    for i in 0..=4 {
        let value = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y(value) + 4.0,
            compact(value)
        );
    }
    for &(vx, _) in series.first().map(|s| s.1.as_slice()).unwrap_or(&[]) {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(vx),
            HEIGHT - BOTTOM + 16.0,
            compact(vx)
        );
    }
    for (index, (name, points)) in series.iter().enumerate() {
        let color = colors[index % colors.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(px, py) in points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                x(px),
                y(py)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
            LEFT + 10.0,
            TOP + 14.0 * (index as f64 + 1.0)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn compact(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn deliveries_chart(report: &Value) -> String {
    let points: Vec<(f64, f64)> = report["fanout"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                number(&r["subscribers"]),
                number(&r["bench"]["deliveries_per_second"]),
            )
        })
        .collect();
    line_chart(
        "Deliveries per second against subscribers",
        "subscribers",
        "deliveries/s",
        &[("deliveries/s", points)],
    )
}

fn latency_chart(report: &Value) -> String {
    let rows: Vec<&Value> = report["latency"].as_array().into_iter().flatten().collect();
    let series: Vec<(&str, Vec<(f64, f64)>)> = ["p50", "p90", "p99"]
        .iter()
        .map(|&p| {
            (
                p,
                rows.iter()
                    .map(|r| {
                        (
                            number(&r["bench"]["deliveries_per_second"]),
                            number(&r["bench"]["latency_ms"][p]),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    line_chart(
        "Publish-to-receive latency against load",
        "deliveries/s",
        "latency (ms)",
        &series,
    )
}
