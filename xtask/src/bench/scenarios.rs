//! What runs: the plan of each mode and one function per scenario, each pairing a
//! server process with `ssectl bench` and returning what it measured.

use std::time::{Duration, Instant};

use super::processes::{
    cpu_seconds, firehose, open_streams, rss_kib, ssectl_bench, ServerProcess, Tools,
};
use super::report::{
    connections_per_gib, published_per_second, Attempt, Fanout, FirehoseRun, HttpPublish, Idle,
    IdleMemory,
};

/// The sizes and durations of every scenario in one mode.
pub(super) struct Plan {
    pub(super) quick: bool,
    /// The client self-check: the broadcaster's events per second to this many
    /// connections.
    pub(super) client_check_rate: u64,
    pub(super) client_check_connections: u64,
    pub(super) fanout_subscribers: Vec<u64>,
    pub(super) fanout_runs: usize,
    pub(super) latency_subscribers: u64,
    pub(super) latency_rates: Vec<u64>,
    /// Deliveries per second, and the subscriber counts to spread them over.
    pub(super) spread_deliveries: u64,
    pub(super) spread_subscribers: Vec<u64>,
    pub(super) idle_connections: u64,
    pub(super) publish_rate: u64,
    /// Cluster fan-out: events per second to this many subscribers, in memory and
    /// through Redis.
    pub(super) cluster_fanout_rate: u64,
    pub(super) cluster_fanout_subscribers: u64,
    /// Cross-node latency: events per second, to this many subscribers on another node.
    pub(super) cluster_latency_rate: u64,
    pub(super) cluster_latency_subscribers: u64,
    pub(super) warmup: &'static str,
    pub(super) duration: &'static str,
}

impl Plan {
    pub(super) fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                client_check_rate: 1_000,
                client_check_connections: 100,
                fanout_subscribers: vec![10, 100],
                fanout_runs: 2,
                latency_subscribers: 100,
                latency_rates: vec![100, 1000],
                spread_deliveries: 100_000,
                spread_subscribers: vec![10, 100],
                idle_connections: 500,
                publish_rate: 5_000,
                cluster_fanout_rate: 100,
                cluster_fanout_subscribers: 100,
                cluster_latency_rate: 1_000,
                cluster_latency_subscribers: 10,
                warmup: "1s",
                duration: "1s",
            }
        } else {
            Plan {
                quick,
                client_check_rate: 1_000,
                client_check_connections: 1_000,
                fanout_subscribers: vec![100, 1_000, 5_000, 10_000],
                fanout_runs: 7,
                latency_subscribers: 1_000,
                latency_rates: vec![100, 500, 1_000, 2_000, 5_000],
                spread_deliveries: 1_000_000,
                spread_subscribers: vec![10, 100, 1_000],
                idle_connections: 19_000,
                publish_rate: 100_000,
                cluster_fanout_rate: 1_000,
                cluster_fanout_subscribers: 1_000,
                cluster_latency_rate: 10_000,
                cluster_latency_subscribers: 10,
                warmup: "3s",
                duration: "10s",
            }
        }
    }
}

/// An events/s rate no server takes: requests then go back to back, which measures the
/// ceiling.
pub(super) const UNREACHABLE: u64 = 100_000_000;

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// `ssectl bench` arguments that read `connections` streams from `base` for the plan's
/// warm-up and duration.
pub(super) fn listen_args(plan: &Plan, base: &str, connections: u64) -> Vec<String> {
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
pub(super) fn firehose_run(
    tools: &Tools,
    plan: &Plan,
    rate: u64,
    subscribers: u64,
) -> Result<FirehoseRun, String> {
    let server = firehose(tools, rate, 1)?;
    let bench = ssectl_bench(tools, &listen_args(plan, &server.base, subscribers))?;
    Ok(FirehoseRun {
        rate,
        subscribers,
        bench,
    })
}

/// The highest delivery rate to `subscribers` with none of them cut off. First as fast
/// as the hub accepts; if that cuts subscribers off, from 1 M deliveries/s the event rate
/// is doubled while clean and halved while not, then bisected between the best clean run
/// and the lowest that lost subscribers.
pub(super) fn fanout(tools: &Tools, plan: &Plan, subscribers: u64) -> Result<Fanout, String> {
    eprintln!("xtask: fan-out to {subscribers} subscribers");
    let mut attempts = Vec::new();
    let mut best: Option<FirehoseRun> = None;
    let mut clean_rate: Option<u64> = None;
    let mut lost_rate: Option<u64> = None;
    let mut rate = 0u64;
    for _ in 0..plan.fanout_runs {
        let run = firehose_run(tools, plan, rate, subscribers)?;
        let clean = run.bench.disconnects == 0 && run.bench.connections_held == subscribers;
        attempts.push(Attempt {
            rate,
            deliveries_per_second: run.bench.deliveries_per_second,
            disconnects: run.bench.disconnects,
        });
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
    Ok(match best {
        Some(run) => Fanout {
            rate: run.rate,
            subscribers,
            bench: Some(run.bench),
            attempts,
        },
        None => Fanout {
            rate,
            subscribers,
            bench: None,
            attempts,
        },
    })
}

/// Publish-to-receive latency at `rate` events per second to the plan's subscribers.
pub(super) fn latency(tools: &Tools, plan: &Plan, rate: u64) -> Result<FirehoseRun, String> {
    eprintln!(
        "xtask: latency at {rate} events/s to {} subscribers",
        plan.latency_subscribers
    );
    firehose_run(tools, plan, rate, plan.latency_subscribers)
}

/// Latency at the plan's deliveries per second, spread over `subscribers` streams.
pub(super) fn latency_spread(
    tools: &Tools,
    plan: &Plan,
    subscribers: u64,
) -> Result<FirehoseRun, String> {
    let rate = (plan.spread_deliveries / subscribers).max(1);
    eprintln!("xtask: latency at {rate} events/s to {subscribers} subscribers");
    firehose_run(tools, plan, rate, subscribers)
}

/// The plan's idle streams on `ssectl serve` with a 1 s keepalive: server memory per
/// stream and CPU while they are held.
pub(super) fn idle(tools: &Tools, plan: &Plan) -> Result<Idle, String> {
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
        let tools = tools.clone();
        move || ssectl_bench(&tools, &args)
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
            "idle: only {held} of {} streams were open while measuring; client report: {}",
            plan.idle_connections,
            serde_json::to_string(&report).map_err(|e| e.to_string())?
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
    Ok(Idle {
        connections: plan.idle_connections,
        held,
        rss_before_kib: before,
        rss_during_kib: during,
        rss_per_connection_kib: per_connection,
        cpu_percent_of_one_core: cpu,
        cpu_before_seconds: cpu_before,
        keepalive: "1s",
    })
}

/// The protocols whose idle streams [`idle_memory`] measures: name, `https`, and the
/// client's extra arguments.
const IDLE_PROTOCOLS: [(&str, bool, &[&str]); 3] = [
    ("HTTP/1.1", false, &[]),
    ("HTTP/1.1 over TLS", true, &["--insecure"]),
    ("HTTP/2", false, &["--http2"]),
];

/// The plan's idle streams on `ssectl serve`, once per protocol: the server's RSS before
/// the client starts, and its peak while the client holds the streams (sampled every
/// 100 ms), per stream held. TLS uses a self-signed certificate made with `openssl`
/// (the row says so when it is missing). HTTP/2 here is one stream per connection.
pub(super) fn idle_memory(tools: &Tools, plan: &Plan) -> Result<Vec<IdleMemory>, String> {
    let mut rows = Vec::new();
    for (protocol, tls, client_args) in IDLE_PROTOCOLS {
        eprintln!(
            "xtask: idle memory, {protocol}, {} streams",
            plan.idle_connections
        );
        let certificate = if tls {
            match SelfSigned::make() {
                Ok(certificate) => Some(certificate),
                Err(why) => {
                    rows.push(IdleMemory::skipped(protocol, plan.idle_connections, why));
                    continue;
                }
            }
        } else {
            None
        };
        let mut command = tools.command(&tools.ssectl, 0);
        command.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "200000",
        ]);
        if let Some(certificate) = &certificate {
            command.arg("--tls-cert").arg(&certificate.cert);
            command.arg("--tls-key").arg(&certificate.key);
        }
        let server = ServerProcess::start(command)?;
        let before = rss_kib(server.pid());
        let mut args = strings(&["--server", &server.base, "--duration", plan.duration]);
        args.extend(["--connections".into(), plan.idle_connections.to_string()]);
        args.extend(strings(client_args));
        let client = std::thread::spawn({
            let tools = tools.clone();
            move || ssectl_bench(&tools, &args)
        });
        let mut peak = before;
        while !client.is_finished() {
            peak = peak.max(rss_kib(server.pid()));
            std::thread::sleep(Duration::from_millis(100));
        }
        let report = client.join().map_err(|_| "the bench thread panicked")??;
        let held = report.connections_held;
        let per_connection = match (before, peak) {
            (Some(b), Some(p)) if held > 0 => Some(p.saturating_sub(b) as f64 / held as f64),
            _ => None,
        };
        rows.push(IdleMemory {
            protocol,
            connections: plan.idle_connections,
            held,
            rss_before_kib: before,
            rss_peak_kib: peak,
            rss_per_connection_kib: per_connection,
            connections_per_gib: per_connection.and_then(connections_per_gib),
            skipped: None,
        });
    }
    Ok(rows)
}

/// A self-signed certificate and its key in a directory of their own, removed on drop.
struct SelfSigned {
    dir: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl SelfSigned {
    /// Makes one with `openssl req`; the error says why it could not.
    fn make() -> Result<SelfSigned, String> {
        let dir = std::env::temp_dir().join(format!("sse-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let certificate = SelfSigned {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&certificate.key)
            .arg("-out")
            .arg(&certificate.cert)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        match made {
            Ok(status) if status.success() => Ok(certificate),
            Ok(status) => Err(format!("openssl could not make a certificate ({status})")),
            Err(error) => Err(format!("no openssl to make a certificate: {error}")),
        }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ssectl bench` publishing through `ssectl serve`'s HTTP API: batches at the plan's
/// rate, then batches and single events back to back.
pub(super) fn http_publish(tools: &Tools, plan: &Plan) -> Result<Vec<HttpPublish>, String> {
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
        let bench = ssectl_bench(tools, &args)?;
        results.push(HttpPublish {
            name,
            offered_rate: (rate != UNREACHABLE).then_some(rate),
            events_per_request: batch,
            published_per_second: published_per_second(&bench),
            bench,
        });
    }
    Ok(results)
}
