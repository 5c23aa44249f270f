//! Project automation, run as `cargo xtask <task>`.
//!
//! - `cargo xtask test`: installs what the tests need when it is missing (Chromium, from
//!   Debian's packages, for the browser tests) and runs the whole test suite.
//! - `cargo xtask bench [--quick] [--no-criterion] [--only SECTION,...]`: the benchmark
//!   report (criterion benches and end-to-end scenarios, cluster mode on Redis included)
//!   in `target/bench-report/`; see `bench/mod.rs`.
//! - `cargo xtask soak [--quick] [--cycles N] [--duration D]`: churn and soak tests of a
//!   release server, with checks and a report section beside the benchmark report; see
//!   `soak/mod.rs`.
//! - `cargo xtask fuzz [--time S] [TARGET...]`: runs each fuzz target of `fuzz/` for `S`
//!   seconds (default 60) with cargo-fuzz, installing it when missing; see `fuzz.rs`.

mod bench;
mod fuzz;
mod soak;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        // Started by `bench` for its client self-check; see bench/broadcaster.rs.
        Some("broadcaster") => bench::broadcaster::run(&args[1..]),
        // Started by `bench` beside nginx + nchan; see bench/publish_floor.rs.
        Some("publish-floor") => bench::publish_floor::run(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         test [ARGS]                install test prerequisites if missing, then cargo test --workspace [ARGS]\n  \
         bench [--quick] [--no-criterion] [--only SECTION,...]\n    \
                                    benchmark report in target/bench-report/; sections:\n    \
                                    criterion, client, fanout, latency, spread, idle, http-publish, cluster\n  \
         soak [--quick] [--cycles N] [--duration D]\n    \
                                    connection churn and a delivery soak against a release server;\n    \
                                    fails when a check fails; soak.md in target/bench-report/\n  \
         fuzz [--time S] [TARGET...]  run fuzz targets S seconds each (default 60; installs cargo-fuzz);\n    \
                                    targets: {}\n  \
         broadcaster --stats PATH [...]\n    \
                                    the self-check's minimal SSE broadcaster (bench starts it)\n  \
         publish-floor [--listen ADDR] [--max-seconds N]\n    \
                                    a server answering a fixed 202 to each request (bench starts it)\n",
        fuzz::TARGETS.join(", ")
    );
}

/// Debian packages the tests use, with a file each package installs.
/// Chromium for the browser tests; `redis-server` for cluster mode (each test starts
/// its own on a free port, never the system service).
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    ("redis-server", "/usr/bin/redis-server"),
];

fn test(args: &[String]) -> Result<(), String> {
    install_missing_packages()?;
    let mut command = cargo();
    command.args(["test", "--workspace"]).args(args);
    run(command, "cargo test")
}

fn install_missing_packages() -> Result<(), String> {
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} with apt-get", missing.join(", "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    run(
        update,
        "apt-get update (installing test prerequisites needs root)",
    )?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install, "apt-get install")
}

pub(crate) fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

pub(crate) fn run(mut command: Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("could not run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
