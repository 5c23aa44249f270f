//! `ssectl`: run and operate a Server-Sent Events hub.
//!
//! A thin layer: argument parsing and wiring of `sse-hyper` (for `serve`) and
//! `sse-core`'s decoder (for `tail` and `bench`); no logic a library user would want
//! lives here. The JSON contract of `ssectl bench` is in the library target
//! ([`sse_cli::bench_report`]), where the tools that read it find it too.

mod bench;
mod client;
mod publish;
mod serve;
mod size;
mod tail;
mod token;

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
    // Boxed: its many options would make every other command as large.
    Serve(Box<serve::ServeArgs>),
    /// Publish one event: ssectl publish /pets/dogs new-dog Corgi
    Publish(publish::PublishArgs),
    /// Follow an event stream (a namespace, or any SSE URL) and print its events.
    Tail(tail::TailArgs),
    /// Load-test any SSE server: open many streams and measure what arrives.
    Bench(bench::BenchArgs),
    /// Print a signed token (JWT) for a server started with --jwt-secret or --jwt-key.
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Publish(args) => publish::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Token(args) => token::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ssectl: {message}");
            ExitCode::FAILURE
        }
    }
}
