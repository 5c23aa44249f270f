//! `ssectl`: run and operate a Server-Sent Events hub.
//!
//! A thin layer: argument parsing and wiring of `sse-hyper` (for `serve`) and
//! `sse-core`'s decoder (for `tail` and `bench`); no logic a library user would want
//! lives here. The JSON contract of `ssectl bench` is in the library target
//! ([`sse_cli::bench_report`]), where the tools that read it find it too.

mod arrival;
mod bench;
mod client;
mod publish;
mod publish_batch;
mod serve;
mod shell_docs;
mod size;
mod status;
mod tail;
mod tls_client;
mod tls_stream;
mod token;

/// mimalloc instead of the system allocator: a publish on the direct path makes about ten
/// small allocations, and takes 8% fewer instructions than with glibc's malloc and free
/// (11 929 against 12 946, callgrind). The price is memory: about 0.9 KiB more per
/// multiplexed HTTP/2 stream and 0.2 to 0.5 KiB more per TLS stream (ARCHITECTURE.md,
/// "Capacity of one machine").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Run and operate a Server-Sent Events hub with hierarchical namespaces.
// The version names the commit it was built from (see build.rs).
#[derive(Debug, Parser)]
#[command(
    name = "ssectl",
    version = env!("SSECTL_VERSION"),
    about,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SSE server (in memory).
    // Boxed: its many options would make every other command as large.
    Serve(Box<serve::ServeArgs>),
    /// Publish one event (ssectl publish /pets/dogs new-dog Corgi), or NDJSON from
    /// standard input with --batch.
    Publish(publish::PublishArgs),
    /// Follow an event stream (one or more namespaces, or any SSE URL) and print its
    /// events.
    Tail(tail::TailArgs),
    /// Load-test any SSE server: open many streams and measure what arrives.
    Bench(bench::BenchArgs),
    /// Print a signed token (JWT) for a server started with --jwt-secret or --jwt-key.
    Token(token::TokenArgs),
    /// Show a server's status (and its cluster's nodes) from /admin/status.json.
    Status(status::StatusArgs),
    /// Print a shell completion script: ssectl completions bash > /etc/bash_completion.d/ssectl
    Completions(shell_docs::CompletionsArgs),
    /// Print the man page (roff): ssectl man | man -l -
    Man(shell_docs::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Publish(args) => publish::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Token(args) => token::run(args),
        Command::Status(args) => status::run(args),
        Command::Completions(args) => shell_docs::completions(args, Cli::command()),
        Command::Man(args) => shell_docs::man(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ssectl: {message}");
            ExitCode::FAILURE
        }
    }
}
