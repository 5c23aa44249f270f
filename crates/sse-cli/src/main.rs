//! `ssectl`: run, publish to, tail and load-test Server-Sent Events servers.
//!
//! Not implemented yet: the subcommands arrive with the server. Until then the binary
//! says so and exits non-zero, so no script mistakes it for a working tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "ssectl {}: no subcommands are implemented yet (serve, publish, tail and bench are planned)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::FAILURE
}
