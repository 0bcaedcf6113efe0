//! The `montage` command line.

use clap::{Parser, Subcommand};
use montage_audio::{AudioError, BeatGrid};
use std::io::Write;
use std::path::PathBuf;

/// Montage turns a chat into a finished video whose every cut lands on a beat.
#[derive(Debug, Parser)]
#[command(name = "montage", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a command, Montage describes itself.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The `montage` commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Finds the tempo, beats, bars, energy and sections of a piece of music.
    Analyze {
        /// An audio file: WAV, MP3, FLAC, OGG/Vorbis, or AAC in MP4/M4A.
        file: PathBuf,
        /// Print the whole BeatGrid as JSON (`bpm`, `beats`, `downbeats`, … in seconds).
        #[arg(long)]
        json: bool,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The audio could not be analysed.
    #[error("cannot analyse {file}: {source}")]
    Analyze {
        /// The file given.
        file: PathBuf,
        /// What went wrong.
        source: AudioError,
    },
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs a parsed command line, writing what the user asked for to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        None => {
            use clap::CommandFactory;
            write!(out, "{}", Cli::command().render_help())?;
        }
        Some(Command::Analyze { file, json }) => {
            let grid = montage_audio::analyze_file(&file).map_err(|source| CliError::Analyze {
                file: file.clone(),
                source,
            })?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &grid).map_err(std::io::Error::from)?;
                writeln!(out)?;
            } else {
                write_summary(out, &file, &grid)?;
            }
        }
    }
    Ok(())
}

fn write_summary(
    out: &mut dyn Write,
    file: &std::path::Path,
    grid: &BeatGrid,
) -> std::io::Result<()> {
    writeln!(out, "{}: {}", file.display(), clock(grid.duration))?;
    if grid.beats.is_empty() {
        writeln!(
            out,
            "no beat found (silence, or music without a steady pulse)"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "tempo {:.1} BPM (confidence {:.2}), {}/4, {} beats, {} bars",
        grid.bpm,
        grid.tempo_confidence,
        grid.meter,
        grid.beats.len(),
        grid.downbeats.len()
    )?;
    if grid.tempo_curve.len() > 1 {
        let changes: Vec<String> = grid
            .tempo_curve
            .iter()
            .map(|p| format!("{:.0} BPM at {}", p.bpm, clock(p.time)))
            .collect();
        writeln!(out, "tempo changes: {}", changes.join(", "))?;
    }
    writeln!(out, "sections:")?;
    for section in &grid.sections {
        let kind = serde_json::to_value(section.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<10} {}–{}  energy {:.2}",
            kind,
            clock(section.start),
            clock(section.end),
            section.energy
        )?;
    }
    Ok(())
}

/// `m:ss.s`, the way editors show times.
fn clock(seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor();
    format!("{}:{:04.1}", minutes as u64, seconds - minutes * 60.0)
}
