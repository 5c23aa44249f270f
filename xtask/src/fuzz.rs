//! `cargo xtask fuzz [--time S] [TARGET...]`: runs the fuzz targets of `fuzz/` with
//! cargo-fuzz (libFuzzer), each for `S` seconds on its corpus.
//!
//! cargo-fuzz is installed from crates.io when missing, at the version below. Targets
//! are built on the stable toolchain with the sanitizer off (`-s none`): the project's
//! crates forbid unsafe code, so what a run can find is a panic or a broken law, and
//! AddressSanitizer would need a nightly compiler. Builds keep debug assertions and
//! overflow checks (cargo-fuzz's default).
//!
//! Each run reads the committed seeds in `fuzz/corpus/<target>/` and writes what it
//! learns to `<target dir>/fuzz/corpus/<target>/`, so the committed corpora stay small;
//! a failing input is saved in `<target dir>/fuzz/artifacts/<target>/`, and the task
//! fails naming it. At the end it prints each target's executions.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{cargo, run, workspace_root};

/// The cargo-fuzz release this task installs when `cargo fuzz` is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Seconds per target when `--time` is not given.
const DEFAULT_SECONDS: u64 = 60;
/// Every fuzz target, as named in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: &[&str] = &[
    "decoder",
    "namespace",
    "event_roundtrip",
    "publish_body",
    "request_query",
    "http_head",
];

/// What one target's run did.
struct RunSummary {
    target: String,
    executions: Option<u64>,
    corpus: usize,
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let (seconds, targets) = parse_args(args)?;
    install_cargo_fuzz()?;
    let root = workspace_root();
    // cargo-fuzz builds for an explicit `--target`, so its artifacts live apart from the
    // workspace's own builds in the same target directory.
    let target_dir = crate::bench::target_dir()?;
    let work = target_dir.join("fuzz");
    build(&root, &target_dir)?;
    let mut summaries = Vec::new();
    for target in &targets {
        summaries.push(run_target(&root, &target_dir, &work, target, seconds)?);
    }
    println!("\nfuzz: {seconds} s per target");
    for summary in &summaries {
        let executions = summary
            .executions
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!(
            "  {:<18} {:>12} executions, {} inputs in the working corpus",
            summary.target, executions, summary.corpus
        );
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<String>), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                let value = args.next().ok_or("--time needs a number of seconds")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--time {value:?}: not a positive number"))?;
            }
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => {
                return Err(format!(
                    "unknown fuzz argument {other:?}; targets: {}",
                    TARGETS.join(", ")
                ))
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|&t| t.to_owned()).collect();
    }
    Ok((seconds, targets))
}

fn install_cargo_fuzz() -> Result<(), String> {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} from crates.io");
    let mut install = cargo();
    // A debug build: it only starts cargo and the fuzzer, and compiles in half the CPU
    // time of a release build.
    install.args([
        "install",
        "--locked",
        "--debug",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
    ]);
    run(install, "cargo install cargo-fuzz")
}

/// `cargo fuzz` with the settings every use here shares.
fn cargo_fuzz(root: &Path, target_dir: &Path, subcommand: &str) -> Command {
    let mut command = cargo();
    command
        .current_dir(root.join("fuzz"))
        .args(["fuzz", subcommand, "--sanitizer", "none", "--target-dir"])
        .arg(target_dir);
    command
}

fn build(root: &Path, target_dir: &Path) -> Result<(), String> {
    run(cargo_fuzz(root, target_dir, "build"), "cargo fuzz build")
}

fn run_target(
    root: &Path,
    target_dir: &Path,
    work: &Path,
    target: &str,
    seconds: u64,
) -> Result<RunSummary, String> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let seeds = root.join("fuzz").join("corpus").join(target);
    eprintln!("\nxtask: fuzzing {target} for {seconds} s");
    let mut command = cargo_fuzz(root, target_dir, "run");
    command
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    let output = command
        .output()
        .map_err(|e| format!("could not run cargo fuzz run {target}: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    eprint!("{}", tail(&log, 30));
    if !output.status.success() {
        return Err(format!(
            "fuzz target {target} failed ({}); the input is in {}",
            output.status,
            artifacts.display()
        ));
    }
    Ok(RunSummary {
        target: target.to_owned(),
        executions: executions(&log),
        corpus: count_files(&corpus),
    })
}

/// libFuzzer's `stat::number_of_executed_units`, from its final statistics.
fn executions(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .find_map(|n| n.trim().parse().ok())
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn arguments_choose_the_time_and_the_targets() {
        let (seconds, targets) = parse_args(&strings(&["--time", "5", "decoder"])).unwrap();
        assert_eq!(seconds, 5);
        assert_eq!(targets, ["decoder"]);
        let (seconds, targets) = parse_args(&[]).unwrap();
        assert_eq!(seconds, DEFAULT_SECONDS);
        assert_eq!(targets, TARGETS);
        assert!(parse_args(&strings(&["nonesuch"])).is_err());
        assert!(parse_args(&strings(&["--time", "0"])).is_err());
        assert!(parse_args(&strings(&["--time"])).is_err());
    }

    #[test]
    fn every_target_has_a_seed_corpus_and_a_source() {
        let fuzz = workspace_root().join("fuzz");
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(
                count_files(&fuzz.join("corpus").join(target)) > 0,
                "{target}"
            );
            assert!(fuzz.join(format!("fuzz_targets/{target}.rs")).is_file());
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target}"
            );
        }
    }

    #[test]
    fn executions_come_from_the_final_statistics() {
        let log = "#1024\tpulse\nDone 5 runs\nstat::number_of_executed_units: 123456\n";
        assert_eq!(executions(log), Some(123456));
        assert_eq!(executions("no statistics"), None);
    }
}
