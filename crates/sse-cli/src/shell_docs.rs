//! `ssectl completions SHELL` and `ssectl man`: shell completion scripts and man pages,
//! generated from the same clap definitions that parse the arguments, so they never
//! drift from what `ssectl` accepts.

use std::io::Write;

use clap::{Args, Command};
use clap_complete::Shell;

/// Options of `ssectl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Options of `ssectl man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's page (such as `tail`, the page `ssectl-tail(1)`) instead of the
    /// main one.
    subcommand: Option<String>,
}

/// Writes the completion script for `args.shell` to standard output.
pub fn completions(args: CompletionsArgs, mut command: Command) -> Result<(), String> {
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut out);
    write_stdout(&out)
}

/// Writes the man page (roff) to standard output: `ssectl man | man -l -`.
pub fn man(args: ManArgs, mut command: Command) -> Result<(), String> {
    // Built, so that subcommands carry the version and their full names.
    command.build();
    let page = match &args.subcommand {
        None => command,
        Some(name) => {
            let parent = command.get_name().to_owned();
            let sub = command
                .find_subcommand(name)
                .ok_or_else(|| format!("no subcommand {name:?}; see ssectl --help"))?
                .clone();
            // Titled `ssectl-tail`; the synopsis reads `ssectl tail`.
            let page_name = format!("{parent}-{}", sub.get_name());
            let usage_name = format!("{parent} {}", sub.get_name());
            sub.display_name(page_name).bin_name(usage_name)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| format!("cannot render the man page: {e}"))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))
}
