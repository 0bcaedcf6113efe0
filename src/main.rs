//! The `montage` binary: sets up logging, parses the command line and hands over to the
//! library. The only place that uses `anyhow`.

use clap::Parser;
use montage::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    montage::telemetry::init();
    let cli = Cli::parse();
    match montage::cli::run(cli, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("montage: {}", explain(&anyhow::Error::from(error)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes in one line, for people: each cause once (wrappers often repeat
/// their cause's words), no backtrace.
fn explain(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
    }
    said.join(": ")
}
