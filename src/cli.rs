//! The `montage` command line.

use crate::make::{MakeError, MakeOptions, MakeReport};
use crate::pipeline::request::{self, Draft, RequestError};
use clap::{Parser, Subcommand};
use montage_audio::{AudioError, BeatGrid};
use std::io::{IsTerminal, Write};
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
    /// Makes a video from a prompt, offline: intent, beats, plan, pictures, critic, render.
    Make {
        /// What the video should be ("a 20 second upbeat neon city music video, vertical").
        prompt: String,
        /// Music to cut to (WAV, MP3, FLAC, OGG, M4A); without it, a bed is made to the mood.
        #[arg(long)]
        audio: Option<PathBuf>,
        /// An image to use as a scene (PNG or JPEG); repeat for more.
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// Formats, comma-separated: 16:9, 9:16, 1:1 (overrides the prompt).
        #[arg(long)]
        format: Option<String>,
        /// Length in seconds (overrides the prompt).
        #[arg(long)]
        duration: Option<f64>,
        /// Seed: the same prompt, files and seed make the same video.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rounds of fixes after the critic's first review (default from montage.toml, 3).
        #[arg(long)]
        max_iterations: Option<u32>,
        /// Ask the critic's questions here instead of accepting its fixes.
        #[arg(long)]
        interactive: bool,
        /// The text model or chain for this video ("openai:gpt-4.1-mini,local"), instead of
        /// montage.toml's.
        #[arg(long)]
        text_model: Option<String>,
        /// The critic's model for this video ("anthropic:claude-sonnet-4-5"), instead of
        /// montage.toml's.
        #[arg(long)]
        vision_model: Option<String>,
        /// The most this video may spend on models, US dollars; pictures it leaves no room
        /// for are drawn locally.
        #[arg(long)]
        budget: Option<f64>,
        /// Folder for the videos, captions, contact sheet and run.json.
        #[arg(long, default_value = "montage-out")]
        out: PathBuf,
        /// Configuration file (default ./montage.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Serves the REST API, the WebSocket and the run workers (see docs/protocol.md).
    Serve {
        /// HOST:PORT to listen on (default from montage.toml's [server], 127.0.0.1:8080;
        /// port 0 picks a free one).
        #[arg(long)]
        addr: Option<String>,
        /// Configuration file (default ./montage.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop when standard input closes (for a parent process that owns the server).
        #[arg(long, hide = true)]
        exit_with_stdin: bool,
    },
    /// Lists what each capability resolves to and checks each remote model (the key is set,
    /// the endpoint answers, it serves the model); exits non-zero when one cannot be used.
    Models {
        /// Configuration file (default ./montage.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Deletes runs and every object only they use (other versions keep theirs).
    Delete {
        /// Run ids.
        #[arg(required = true)]
        runs: Vec<String>,
        /// Configuration file (default ./montage.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Applies retention now: runs past storage.retention_days, objects nothing uses, the
    /// segment cache beyond storage.segment_cache_mb, old temporaries (the server does this
    /// every hour).
    Sweep {
        /// Configuration file (default ./montage.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Runs the eval suites (evals/*.toml) on the pipeline, prints what passed per suite and
    /// variant, and with --compare exits non-zero when an assertion that held in the
    /// baseline fails now.
    Eval {
        /// Suite files (default: every evals/*.toml).
        suites: Vec<PathBuf>,
        /// A template folder shaped like prompts/ to try; repeat to compare several.
        #[arg(long)]
        prompts: Vec<PathBuf>,
        /// A configuration to try (its models); repeat to compare several.
        #[arg(long)]
        config: Vec<PathBuf>,
        /// Only cases whose "suite/description" contains this.
        #[arg(long)]
        only: Option<String>,
        /// Cases run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Write the results to this JSON file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the results to this file as the new baseline.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Hold the results to this baseline.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Write a side-by-side HTML report (cases × variants, reasons, scene prompts).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Manages the people who may use `montage serve`.
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserCommand,
    },
}

/// `montage user` commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user and prints their API token, once.
    Add {
        /// A unique name: letters, digits, '.', '-' or '_'.
        name: String,
        /// May read the server-wide figures of /metrics.
        #[arg(long)]
        admin: bool,
        /// Configuration file (default ./montage.toml when present): which database.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Sets what a user may spend on paid models in a calendar month (UTC), in US dollars,
    /// over the server's `pipeline.monthly_budget_usd`; `none` gives back the server's.
    Budget {
        /// The user's name (`local` for the person at this machine).
        name: String,
        /// US dollars a month, or `none`.
        #[arg(value_parser = monthly_limit)]
        usd: MonthlyLimit,
        /// Configuration file (default ./montage.toml when present): which database.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// A monthly budget as `montage user budget` takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MonthlyLimit {
    /// This many US dollars a month.
    Usd(f64),
    /// The server's, whatever it is.
    ServerDefault,
}

fn monthly_limit(text: &str) -> Result<MonthlyLimit, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(MonthlyLimit::ServerDefault);
    }
    match text.trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(MonthlyLimit::Usd(usd)),
        _ => Err(format!(
            "{text:?} is no amount: give US dollars (5, 12.50) or none"
        )),
    }
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
    /// The request was wrong before any work started.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// Making the video failed.
    #[error("{0}")]
    Make(#[from] MakeError),
    /// The configuration is wrong.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The server failed.
    #[error("{0}")]
    Serve(#[from] crate::server::ServeError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// A user could not be added.
    #[error("{0}")]
    User(#[from] crate::store::UserError),
    /// The services could not be opened.
    #[error("{0}")]
    Open(#[from] crate::app::OpenError),
    /// A deletion or a sweep failed.
    #[error("{0}")]
    Retention(#[from] crate::retention::RetentionError),
    /// A configured model cannot be used.
    #[error("{0}")]
    Unusable(String),
    /// An evaluation could not be made.
    #[error("{0}")]
    Eval(#[from] crate::eval::EvalError),
    /// An evaluation found regressions against its baseline.
    #[error("{0} assertion(s) that held in the baseline fail now")]
    Regressed(usize),
    /// No user has the name given.
    #[error("there is no user named {0:?} (add one with `montage user add`)")]
    UnknownUser(String),
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
        Some(Command::Make {
            prompt,
            audio,
            images,
            format,
            duration,
            seed,
            max_iterations,
            interactive,
            text_model,
            vision_model,
            budget,
            out: folder,
            config,
        }) => {
            let formats = format.as_deref().map(request::parse_formats).transpose()?;
            let options = MakeOptions {
                draft: Draft {
                    prompt,
                    audio,
                    images,
                    formats,
                    duration,
                    seed,
                },
                max_iterations,
                interactive,
                out: folder,
                config,
                progress: std::io::stderr().is_terminal(),
                models: crate::config::ModelChoice {
                    text: text_model,
                    vision: vision_model,
                },
                budget_usd: budget,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let stdin = std::io::stdin();
            let report = runtime.block_on(crate::make::make(
                options,
                &mut stdin.lock(),
                &mut std::io::stderr(),
            ))?;
            write_make_summary(out, &report)?;
        }
        Some(Command::Serve {
            addr,
            config,
            exit_with_stdin,
        }) => {
            let mut config = crate::config::Config::load(config.as_deref())?;
            if let Some(addr) = addr {
                config.server.addr = addr;
                config.check()?;
            }
            let addr = config.server.addr.parse().map_err(|_| {
                crate::config::ConfigError(format!("{:?} is not HOST:PORT", config.server.addr))
            })?;
            let runtime = tokio::runtime::Runtime::new()?;
            let mut announced = Ok(());
            runtime.block_on(crate::server::serve(
                config,
                addr,
                |bound| {
                    announced = writeln!(out, "montage listening on http://{bound}")
                        .and_then(|()| out.flush());
                },
                stop_signal(exit_with_stdin),
            ))?;
            announced?;
        }
        Some(Command::Models { config }) => {
            let config = crate::config::Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let reports = runtime.block_on(async {
                // Checks pay for nothing, so nothing is written down.
                let jobs = crate::providers::JobServices {
                    journal: std::sync::Arc::new(
                        montage_models::remote::jobs::MemoryJournal::default(),
                    ),
                    wakeups: Default::default(),
                };
                let (providers, _) = crate::providers::Providers::resolve(&config.models, &jobs)
                    .await
                    .map_err(crate::app::OpenError::from)?;
                Ok::<_, CliError>(providers.report().await)
            })?;
            for report in &reports {
                writeln!(out, "{}", describe(report))?;
            }
            if let Some(broken) = reports.iter().find(|r| !r.ok) {
                return Err(CliError::Unusable(format!(
                    "{} cannot be used: {}",
                    broken.model.as_deref().unwrap_or(&broken.capability),
                    broken.verdict
                )));
            }
        }
        Some(Command::Eval {
            suites,
            prompts,
            config,
            only,
            jobs,
            out: results,
            baseline,
            compare,
            report,
        }) => {
            let command = crate::eval::EvalCommand {
                options: crate::eval::EvalOptions {
                    suites,
                    prompts,
                    configs: config,
                    only,
                    jobs,
                },
                out: results,
                baseline,
                compare,
                report,
                progress: std::io::stderr().is_terminal(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let (_, comparison) = runtime.block_on(crate::eval::execute(&command, out))?;
            if let Some(comparison) = comparison.filter(|c| c.regressed()) {
                return Err(CliError::Regressed(comparison.regressions.len()));
            }
        }
        Some(Command::Delete { runs, config }) => {
            let config = crate::config::Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let app = runtime.block_on(crate::app::App::open(config))?;
            for run in runs {
                let swept = runtime.block_on(crate::retention::delete_run(&app, &run))?;
                writeln!(
                    out,
                    "deleted run {run}: {} objects, {} MB{}",
                    swept.objects,
                    swept.bytes >> 20,
                    kept_note(swept.kept_recent)
                )?;
            }
        }
        Some(Command::Sweep { config }) => {
            let config = crate::config::Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let app = runtime.block_on(crate::app::App::open(config))?;
            let swept = runtime.block_on(crate::retention::sweep(&app))?;
            writeln!(
                out,
                "deleted {} runs and {} objects ({} MB); {} cached segments and {} temporaries removed{}",
                swept.runs,
                swept.objects,
                swept.bytes >> 20,
                swept.segments,
                swept.temporaries,
                kept_note(swept.kept_recent)
            )?;
        }
        Some(Command::User {
            action:
                UserCommand::Add {
                    name,
                    admin,
                    config,
                },
        }) => {
            let config = crate::config::Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let (user, token) = runtime.block_on(async {
                let database = crate::app::open_database(&config).await?;
                Ok::<_, CliError>(database.add_user(&name, admin).await?)
            })?;
            writeln!(out, "added user {} ({})", user.name, user.id)?;
            writeln!(out, "token: {token}")?;
            writeln!(
                out,
                "keep it: it is shown only now (send it as `Authorization: Bearer <token>`)"
            )?;
        }
        Some(Command::User {
            action: UserCommand::Budget { name, usd, config },
        }) => {
            let config = crate::config::Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let usd = match usd {
                MonthlyLimit::Usd(usd) => Some(usd),
                MonthlyLimit::ServerDefault => None,
            };
            let known = runtime.block_on(async {
                let database = crate::app::open_database(&config).await?;
                if name == crate::store::LOCAL_USER {
                    database.local_user().await?;
                }
                Ok::<_, CliError>(database.set_monthly_budget(&name, usd).await?)
            })?;
            if !known {
                return Err(CliError::UnknownUser(name));
            }
            match (usd, config.pipeline.monthly_budget_usd) {
                (Some(usd), _) => {
                    writeln!(out, "{name} may spend ${usd:.2} a month on paid models")?
                }
                (None, Some(server)) => writeln!(
                    out,
                    "{name} may spend the server's ${server:.2} a month on paid models"
                )?,
                (None, None) => writeln!(out, "{name} has no monthly limit")?,
            }
        }
    }
    Ok(())
}

/// One line of `montage models`.
fn describe(report: &crate::providers::ModelReport) -> String {
    let model = report.model.as_deref().unwrap_or("none");
    let place = if report.place > 1 {
        format!("then {model}")
    } else {
        model.to_owned()
    };
    let mut line = format!("{:<11} {place:<32}", report.capability);
    if let Some(url) = &report.base_url {
        line.push_str(&format!(" at {url}"));
    }
    if let (Some(variable), Some(present)) = (&report.key_variable, report.key_present) {
        line.push_str(&format!(
            ", key in {variable}: {}",
            if present { "set" } else { "not set" }
        ));
    }
    let verdict = if report.ok { "ok" } else { "NOT USABLE" };
    format!("{line}  {verdict}: {}", report.verdict)
}

/// What a deletion kept for later, if anything.
fn kept_note(kept: usize) -> String {
    match kept {
        0 => String::new(),
        n => format!(
            "; {n} unused objects were written or reused within storage.object_grace_secs and \
             are deleted by a later sweep"
        ),
    }
}

/// Resolves on Ctrl-C, SIGTERM, or (when asked) the end of standard input.
async fn stop_signal(exit_with_stdin: bool) {
    let stdin_closed = async move {
        if exit_with_stdin {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = stdin_closed => {}
    }
    tracing::info!("stopping: runs in progress resume when the server starts again");
}

fn write_make_summary(out: &mut dyn Write, report: &MakeReport) -> std::io::Result<()> {
    let record = &report.record;
    if let Some(plan) = &record.plan {
        writeln!(
            out,
            "{} scenes on a {:.0} BPM grid, {:.1} s, {} round{} of review",
            plan.scenes.len(),
            plan.bpm,
            plan.duration,
            record.reviews.len(),
            if record.reviews.len() == 1 { "" } else { "s" }
        )?;
    }
    for file in &record.outputs {
        writeln!(
            out,
            "  {:<14} {}",
            file.kind,
            report.out.join(&file.file).display()
        )?;
    }
    writeln!(
        out,
        "  {:<14} {}",
        "run record",
        report.out.join("run.json").display()
    )?;
    writeln!(out, "  {:<14} {}", "run id", report.run)?;
    if record.cost.total_usd > 0.0 || record.cost.estimate.is_some() {
        let estimated = record
            .cost
            .estimate
            .as_ref()
            .map(|e| format!(" (estimated ${:.4} before the pictures were made)", e.usd))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<14} ${:.4}{estimated}",
            "cost", record.cost.total_usd
        )?;
    }
    for notice in &record.notices {
        writeln!(out, "note: {notice}")?;
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
