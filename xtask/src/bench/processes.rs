//! The processes of a scenario: finding the built binaries, starting and stopping
//! servers, running `ssectl bench`, pinning each to its core, and sampling a server's
//! memory, CPU time and open streams.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sse_cli::bench_report::BenchReport;

/// The built binaries and how to pin them.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) ssectl: PathBuf,
    pub(crate) firehose: PathBuf,
    /// This program, built in release mode: the self-check's broadcaster.
    pub(crate) xtask: PathBuf,
    pub(crate) pinned: bool,
}

impl Tools {
    /// The release builds under cargo's `target` directory.
    pub(crate) fn find(target: &Path) -> Result<Tools, String> {
        let ssectl = target.join("release/ssectl");
        let firehose = target.join("release/examples/firehose");
        let xtask = target.join("release/xtask");
        for path in [&ssectl, &firehose, &xtask] {
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
            xtask,
            pinned: cores >= 2 && taskset,
        })
    }

    /// A command for `program`, pinned to `core` when pinning is possible.
    pub(crate) fn command(&self, program: &Path, core: u8) -> Command {
        if self.pinned {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// A server process that prints `... listening on http://ADDR ...` (or `https://`) first; stopped with
/// SIGINT (then killed) when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) base: String,
}

impl ServerProcess {
    pub(crate) fn start(mut command: Command) -> Result<ServerProcess, String> {
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
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .ok_or_else(|| format!("the server did not say where it listens: {line:?}"))?
            .to_owned();
        Ok(ServerProcess { child, base })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the process exits by itself, up to `timeout`; whether it did.
    pub(super) fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        stop(&mut self.child, "-INT");
    }
}

/// Stops `child` with `signal` (its graceful stop), waiting up to 10 s before killing it;
/// nothing when it has already ended.
pub(super) fn stop(child: &mut Child, signal: &str) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The arguments [`ssectl_bench`] adds to every run.
pub(super) const BENCH_FIXED_ARGS: [&str; 3] = ["--threads", "1", "--json"];

/// Runs `ssectl bench ... --json` pinned to core 1 and returns its report.
pub(super) fn ssectl_bench(tools: &Tools, args: &[String]) -> Result<BenchReport, String> {
    let output = tools
        .command(&tools.ssectl, 1)
        .arg("bench")
        .args(args)
        .args(BENCH_FIXED_ARGS)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run ssectl bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("ssectl bench failed ({})", output.status));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("ssectl bench printed no valid JSON report: {e}"))
}

pub(super) fn firehose(tools: &Tools, rate: u64, delay_secs: u64) -> Result<ServerProcess, String> {
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

/// Resident set size of a process, from /proc (Linux only).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of a process in seconds, from /proc (Linux only).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Open streams according to the server's metrics.
pub(super) fn open_streams(base: &str) -> u64 {
    http_get(base, "/metrics")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("sse_streams_open "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the server answers `/healthz` with `ok` (in cluster mode: connected to Redis).
pub(super) fn healthy(base: &str) -> bool {
    http_get(base, "/healthz").is_some_and(|body| body.lines().any(|line| line == "ok"))
}

/// The body of a plain HTTP/1.1 `GET`, or `None` when the server cannot be reached.
pub(crate) fn http_get(base: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_owned())
}
