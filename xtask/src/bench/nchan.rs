//! nginx + nchan as a peer for single-event publishing: the same `ssectl bench` client
//! publishing one event per request, back to back, to `ssectl serve` and to an nginx
//! with a `nchan_publisher` location, alternating, in the same run. When `wrk` is
//! installed, each server also takes `wrk -t1 -c32` (the load of issue 14's figures)
//! right after; the project's own client alone decides whether the target is met.
//! With `wrk`, each round ends with the publishing floor (`publish_floor.rs`, a server
//! that answers a fixed `202` and does nothing else) under the same load: the most the
//! client measures of any server on this machine, to read the ratios against.
//!
//! nginx runs from a configuration generated into a directory of its own (one worker,
//! pinned to the core our server gets, listening on 127.0.0.1 on a free port, pid and
//! error log in that directory, in the foreground). When nginx or the nchan module is
//! missing, a full run installs Debian's `nginx-light` and `libnginx-mod-nchan` if it
//! runs as root with `apt-get`; `--quick` never installs anything. Either way the row is
//! skipped, saying why, when nginx with nchan cannot be had.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::processes::{cpu_seconds, ssectl_bench, ServerProcess, Tools};
use super::report::{NchanComparison, NchanRound, NchanSection, WrkRun};
use super::scenarios::{strings, Plan, UNREACHABLE};

/// Where Debian's `libnginx-mod-nchan` puts the module.
const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";
/// The Debian packages that provide nginx and the module.
const PACKAGES: [&str; 2] = ["nginx-light", "libnginx-mod-nchan"];
/// The ratio of our published events/s over nchan's that issue 14 asks for.
pub(super) const TARGET_RATIO: f64 = 1.2;
/// The namespace (nchan: channel) both servers are published to.
const NAMESPACE: &str = "/bench";

/// The comparison, or why it was skipped.
pub(super) fn nchan_publish(tools: &Tools, plan: &Plan) -> NchanSection {
    let nginx = match find_or_install(plan.quick) {
        Ok(nginx) => nginx,
        Err(reason) => {
            eprintln!("xtask: HTTP publishing against nginx + nchan skipped: {reason}");
            return NchanSection::Skipped { reason };
        }
    };
    match compare(tools, plan, &nginx) {
        Ok(comparison) => NchanSection::Measured(Box::new(comparison)),
        Err(reason) => {
            eprintln!("xtask: HTTP publishing against nginx + nchan failed: {reason}");
            NchanSection::Skipped { reason }
        }
    }
}

/// An nginx binary that can load the nchan module.
struct Nginx {
    binary: PathBuf,
    version: String,
}

fn find_or_install(quick: bool) -> Result<Nginx, String> {
    if let Some(nginx) = installed() {
        return Ok(nginx);
    }
    if quick {
        return Err(format!(
            "nginx with the nchan module is not installed, and --quick installs nothing \
             (apt-get install {})",
            PACKAGES.join(" ")
        ));
    }
    install()?;
    installed().ok_or_else(|| {
        format!(
            "apt-get installed {} but no nginx with {NCHAN_MODULE} was found",
            PACKAGES.join(" ")
        )
    })
}

fn installed() -> Option<Nginx> {
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())?;
    if !Path::new(NCHAN_MODULE).exists() {
        return None;
    }
    let output = Command::new(&binary).arg("-v").output().ok()?;
    // nginx prints its version on stderr.
    let version = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Some(Nginx { binary, version })
}

/// `apt-get install` of the packages, as root only; an `apt-get update` first when the
/// package lists do not know them yet.
fn install() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Err(format!(
            "nginx with the nchan module is not installed, and installing it needs root \
             (apt-get install {})",
            PACKAGES.join(" ")
        ));
    }
    eprintln!(
        "xtask: installing {} for the nchan comparison",
        PACKAGES.join(" ")
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let mut install_args = vec!["install", "-y", "-q"];
    install_args.extend(PACKAGES);
    if apt(&install_args) || (apt(&["update", "-q"]) && apt(&install_args)) {
        Ok(())
    } else {
        Err(format!(
            "nginx with the nchan module is not installed and apt-get could not install {}",
            PACKAGES.join(" ")
        ))
    }
}

/// Rounds of (ours, nchan), each a fresh server and one `ssectl bench` run.
fn compare(tools: &Tools, plan: &Plan, nginx: &Nginx) -> Result<NchanComparison, String> {
    let rounds = if plan.quick { 1 } else { 3 };
    let args = |base: &str| {
        let mut args = strings(&[
            "--server",
            base,
            "--namespace",
            NAMESPACE,
            "--duration",
            plan.duration,
            "--connections",
            "1",
        ]);
        args.extend(["--publish-rate".into(), UNREACHABLE.to_string()]);
        args.extend(["--publish-batch".into(), "1".into()]);
        args
    };
    let wrk = Wrk::find(plan)?;
    let mut measured = Vec::new();
    let mut client_command = String::new();
    let mut wrk_command = None;
    let mut nginx_config = String::new();
    for round in 1..=rounds {
        eprintln!("xtask: HTTP publishing, single events: ours then nginx + nchan, round {round} of {rounds}");
        let (ours, ours_wrk) = {
            let mut command = tools.command(&tools.ssectl, 0);
            command.args(["serve", "--listen", "127.0.0.1:0"]);
            let server = ServerProcess::start(command)?;
            let report = ssectl_bench(tools, &args(&server.base))?;
            let wrk_run = wrk
                .as_ref()
                .map(|w| w.run(tools, &server.base, server.pid()))
                .transpose()?;
            (report, wrk_run)
        };
        let (nchan, nchan_wrk) = {
            let server = NginxProcess::start(tools, nginx)?;
            nginx_config.clone_from(&server.config);
            let base = format!("http://{}", server.addr);
            client_command = format!("ssectl bench {}", args(&base).join(" "));
            wrk_command = wrk.as_ref().map(|w| w.command(&base));
            let measured = ssectl_bench(tools, &args(&base)).and_then(|report| {
                let worker = server.worker_pid()?;
                let wrk_run = wrk
                    .as_ref()
                    .map(|w| w.run(tools, &base, worker))
                    .transpose()?;
                Ok((report, wrk_run))
            });
            let error_log = server.error_log();
            measured.map_err(|e| format!("{e}; nginx's error log: {error_log}"))?
        };
        let floor_wrk = match &wrk {
            Some(wrk) => {
                let mut command = tools.command(&tools.xtask, 0);
                command.args(["publish-floor", "--listen", "127.0.0.1:0"]);
                let floor = ServerProcess::start(command)?;
                Some(wrk.run(tools, &floor.base, floor.pid())?)
            }
            None => None,
        };
        let mut round = NchanRound::new(ours, nchan);
        round.ours_wrk = ours_wrk;
        round.nchan_wrk = nchan_wrk;
        round.floor_wrk = floor_wrk;
        measured.push(round);
    }
    Ok(NchanComparison::new(
        nginx.version.clone(),
        nginx_config,
        client_command,
        wrk_command,
        measured,
    ))
}

/// `wrk` (Debian's package), when installed: the load generator of issue 14's figures,
/// 32 connections from one thread pinned to the client's core, each `POST` a 64-byte
/// `text/plain` event. Its Lua script lives in a file of its own, removed when dropped.
struct Wrk {
    binary: PathBuf,
    script: PathBuf,
    duration: &'static str,
}

impl Wrk {
    /// `wrk` from `PATH` with its script written, or `None` when it is not installed.
    fn find(plan: &Plan) -> Result<Option<Wrk>, String> {
        let Some(binary) = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("wrk"))
                .find(|candidate| candidate.is_file())
        }) else {
            return Ok(None);
        };
        let script = std::env::temp_dir().join(format!("xtask-wrk-{}.lua", std::process::id()));
        let body = "x".repeat(64);
        std::fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.body = \"{body}\"\n\
                 wrk.headers[\"Content-Type\"] = \"text/plain\"\n"
            ),
        )
        .map_err(|e| format!("{}: {e}", script.display()))?;
        Ok(Some(Wrk {
            binary,
            script,
            duration: plan.duration,
        }))
    }

    fn args(&self, base: &str) -> Vec<String> {
        vec![
            "-t1".to_owned(),
            "-c32".to_owned(),
            format!("-d{}", self.duration),
            "-s".to_owned(),
            self.script.display().to_string(),
            format!("{base}/publish{NAMESPACE}"),
        ]
    }

    fn command(&self, base: &str) -> String {
        format!("wrk {}", self.args(base).join(" "))
    }

    /// Requests per second against `base`, and the CPU time per request of the server
    /// process `server` meanwhile; an error when any answer was not a success.
    fn run(&self, tools: &Tools, base: &str, server: u32) -> Result<WrkRun, String> {
        let cpu_before = cpu_seconds(server);
        let output = tools
            .command(&self.binary, 1)
            .args(self.args(base))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run wrk: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || text.contains("Non-2xx") {
            return Err(format!("{} failed: {}", self.command(base), text.trim()));
        }
        let cpu = cpu_seconds(server)
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let per_second = requests_per_second(&text)
            .ok_or_else(|| format!("wrk printed no Requests/sec: {}", text.trim()))?;
        let server_us = cpu
            .zip(requests(&text))
            .filter(|&(_, requests)| requests > 0)
            .map(|(seconds, requests)| seconds * 1e6 / requests as f64);
        Ok(WrkRun {
            per_second,
            server_us,
        })
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// The request count of wrk's summary (`N requests in 10.00s, ...`).
fn requests(summary: &str) -> Option<u64> {
    summary
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
}

/// The `Requests/sec:` figure of wrk's summary.
fn requests_per_second(summary: &str) -> Option<f64> {
    summary
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
}

/// The configuration of an nginx serving nchan alone, from `dir`, on `addr`.
pub(super) fn nginx_config(dir: &Path, addr: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        "# Generated by cargo xtask bench: nchan as a single-event publishing peer.
load_module {NCHAN_MODULE};
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {addr};
        location ~ ^/publish/(.+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
        }}
        location ~ ^/subscribe/(.+)$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
        }}
    }}
}}
"
    )
}

/// An nginx in the foreground with a generated configuration in a directory of its own;
/// stopped, and its directory removed, when dropped.
struct NginxProcess {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
    config: String,
}

impl NginxProcess {
    fn start(tools: &Tools, nginx: &Nginx) -> Result<NginxProcess, String> {
        let dir = std::env::temp_dir().join(format!("xtask-nchan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let addr = free_port()?;
        let config = nginx_config(&dir, addr);
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, &config)
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let child = tools
            .command(&nginx.binary, 0)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", nginx.binary.display()))?;
        let mut server = NginxProcess {
            child,
            dir,
            addr,
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "nginx exited at start ({status}): {}",
                    server.error_log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nginx did not listen on {addr} within 10 s: {}",
                    server.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The worker process (nginx runs one, as the master's only child), whose CPU time
    /// is nchan's.
    fn worker_pid(&self) -> Result<u32, String> {
        let master = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .map_err(|e| format!("nginx's worker: /proc/{master}: {e}"))?;
        let mut workers = children.split_whitespace();
        match (workers.next().map(str::parse), workers.next()) {
            (Some(Ok(worker)), None) => Ok(worker),
            _ => Err(format!("nginx has not one worker but {children:?}")),
        }
    }

    /// The last lines of the error log, for a refusal.
    fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" / ")
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop; the master stops its worker.
        super::processes::stop(&mut self.child, "-QUIT");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback address with a port no one listens on now (nginx cannot be told to pick
/// one itself and say which).
fn free_port() -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listener.local_addr().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_and_count_are_read_from_wrks_summary() {
        let summary = "Running 5s test @ http://127.0.0.1:1/publish/bench\n  1 threads and 32 \
                       connections\n  612345 requests in 5.00s, 98.12MB read\n\
                       Requests/sec: 122469.01\nTransfer/sec:     19.62MB\n";
        assert_eq!(requests_per_second(summary), Some(122_469.01));
        assert_eq!(requests(summary), Some(612_345));
        assert_eq!(requests_per_second("unable to connect"), None);
        assert_eq!(requests("unable to connect"), None);
    }

    #[test]
    fn the_config_is_one_pinned_foreground_worker_with_everything_in_its_directory() {
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let config = nginx_config(Path::new("/tmp/run-7"), addr);
        for line in [
            "daemon off;",
            "worker_processes 1;",
            "pid /tmp/run-7/nginx.pid;",
            "error_log /tmp/run-7/error.log warn;",
            "client_body_temp_path /tmp/run-7/body;",
            "listen 127.0.0.1:4321;",
            "nchan_publisher;",
            &format!("load_module {NCHAN_MODULE};"),
        ] {
            assert!(
                config.lines().any(|l| l.trim() == line),
                "{line:?} missing from:\n{config}"
            );
        }
        assert_eq!(config.matches('{').count(), config.matches('}').count());
    }
}
