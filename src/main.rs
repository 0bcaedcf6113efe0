//! The `montage` binary: sets up logging, parses the command line and hands over to the
//! library. The only place that uses `anyhow`.

use clap::Parser;
use montage::cli::Cli;

fn main() -> anyhow::Result<()> {
    montage::telemetry::init();
    let cli = Cli::parse();
    montage::cli::run(cli, &mut std::io::stdout().lock())?;
    Ok(())
}
