//! `ssectl`: run and operate a Server-Sent Events hub.
//!
//! A thin layer: argument parsing and wiring of `sse-hyper` (and, for the client
//! commands to come, `sse-core`); no logic a library user would want lives here.

mod bench;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run and operate a Server-Sent Events hub with hierarchical namespaces.
#[derive(Debug, Parser)]
#[command(name = "ssectl", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SSE server (in memory).
    Serve(serve::ServeArgs),
    /// Load-test any SSE server: open many streams and measure what arrives.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ssectl: {message}");
            ExitCode::FAILURE
        }
    }
}
