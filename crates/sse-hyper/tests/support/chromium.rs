//! Headless Chromium for tests (Debian's `chromium` package; set `CHROMIUM` to use another
//! binary). `.ci/run` and `cargo xtask test` install it. Shared by the browser tests of
//! `sse-hyper` and `sse-cli`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

/// The Chromium binary, failing the test with how to install it when it is missing.
pub fn chromium_binary() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Chromium (`apt-get install -y chromium`, or run `cargo xtask test`) \
         or point CHROMIUM at a Chromium binary",
        path.display()
    );
    path
}

/// The flags every run uses: headless, no sandbox (tests run as root), and nothing that
/// reaches beyond loopback. The profile lives in `profile`, one per run.
pub fn chromium(profile: &tempfile::TempDir) -> Command {
    let mut command = Command::new(chromium_binary());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}
