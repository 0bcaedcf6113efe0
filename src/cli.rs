//! The `montage` command line.

use clap::Parser;

/// Montage turns a chat into a finished video whose every cut lands on a beat.
///
/// The state-graph engine (crate montage-graph) is built; the commands that make, serve and
/// analyse videos arrive with the pipeline, the server and the audio crate.
#[derive(Debug, Parser)]
#[command(name = "montage", version, about, long_about = None)]
pub struct Cli {}

/// Runs a parsed command line. With no command yet, there is nothing to do but describe
/// Montage, which clap already did for `--help`; a bare `montage` prints the same help.
pub fn run(_cli: Cli) -> std::io::Result<()> {
    use clap::CommandFactory;
    Cli::command().print_help()
}
