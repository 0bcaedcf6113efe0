//! `montage eval`: suites of cases in `evals/`, each a request run on the real pipeline as
//! far as its assertions need (the intent, the plan, the prompts, the critic or the video),
//! or a chat message put to the agent's text model (its tool calls),
//! over a matrix of template sets and configurations, compared with a baseline so that a
//! prompt or model change that makes videos worse fails CI.
//!
//! - `suite`: the suite files (promptfoo's `tests = [{ vars, assert }]`, in TOML).
//! - `assertion`: what a case asserts about its run record, and the verdicts.
//! - `runner`: the variants and the cases run on them.
//! - `media`: what the finished videos hold, measured by decoding them.
//! - `results`: the results file and the comparison with a baseline.
//! - `report`: the side-by-side HTML report.

mod assertion;
mod media;
mod report;
mod results;
mod runner;
mod suite;

pub use assertion::{Assertion, Verdict};
pub use results::{Change, Comparison, EvalResults};
pub use runner::{CaseResult, Variant, VariantInfo};
pub use suite::{Case, Speaker, Stage, Suite, Turn, Vars};

use crate::config::Config;
use crate::pipeline::templates::Templates;
use std::path::{Path, PathBuf};

/// Why an evaluation could not be made (a case that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A suite file is wrong.
    #[error("suite {path}: {reason}")]
    Suite {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A template folder is wrong.
    #[error(transparent)]
    Templates(crate::pipeline::templates::TemplateLoadError),
    /// Montage could not be opened for the cases.
    #[error(transparent)]
    Open(crate::app::OpenError),
    /// The scratch folder could not be made.
    #[error("a scratch folder: {0}")]
    Scratch(String),
    /// A results file could not be read or written.
    #[error("{path}: {reason}")]
    Results {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No case is left to run.
    #[error("no case matches {0:?}")]
    NothingToRun(String),
}

/// What `montage eval` was asked.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Suite files; none means every `*.toml` in `evals/`.
    pub suites: Vec<PathBuf>,
    /// Template folders to try beside each other (none: the embedded templates).
    pub prompts: Vec<PathBuf>,
    /// Configurations to try beside each other (none: `./montage.toml` or the defaults).
    pub configs: Vec<PathBuf>,
    /// Only cases whose `suite/description` contains this.
    pub only: Option<String>,
    /// Cases run at once.
    pub jobs: usize,
}

/// The suites of `options` (every `evals/*.toml` when it names none), cut to `--only`.
pub fn load_suites(options: &EvalOptions) -> Result<Vec<Suite>, EvalError> {
    let mut paths = options.suites.clone();
    if paths.is_empty() {
        let folder = Path::new("evals");
        let listing = std::fs::read_dir(folder).map_err(|e| EvalError::Suite {
            path: folder.to_owned(),
            reason: format!("no suites given and none found: {e}"),
        })?;
        paths = listing
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
    }
    let mut suites = Vec::new();
    for path in paths {
        let mut suite = Suite::load(&path)?;
        if let Some(only) = &options.only {
            let name = suite.name.clone();
            suite
                .tests
                .retain(|case| format!("{name}/{}", case.description).contains(only.as_str()));
        }
        if !suite.tests.is_empty() {
            suites.push(suite);
        }
    }
    if suites.is_empty() {
        return Err(EvalError::NothingToRun(
            options.only.clone().unwrap_or_default(),
        ));
    }
    Ok(suites)
}

/// The matrix's columns: each configuration with each template set.
pub fn variants(options: &EvalOptions) -> Result<Vec<Variant>, EvalError> {
    let configs: Vec<Option<&Path>> = match options.configs.is_empty() {
        true => vec![None],
        false => options.configs.iter().map(|p| Some(p.as_path())).collect(),
    };
    let prompts: Vec<Option<&PathBuf>> = match options.prompts.is_empty() {
        true => vec![None],
        false => options.prompts.iter().map(Some).collect(),
    };
    let mut variants = Vec::new();
    for config_file in &configs {
        let config = Config::load(*config_file)?;
        config.check()?;
        for prompt_dir in &prompts {
            let templates = match prompt_dir {
                Some(dir) => Templates::from_dir(dir).map_err(EvalError::Templates)?,
                None => Templates::embedded(),
            };
            let mut label = vec![match config_file {
                Some(file) => file.display().to_string(),
                None => config.models.text.clone(),
            }];
            if let Some(dir) = prompt_dir {
                label.push(dir.display().to_string());
            }
            variants.push(Variant {
                label: label.join(" + "),
                config: config.clone(),
                prompts: prompt_dir.cloned(),
                templates,
            });
        }
    }
    Ok(variants)
}

/// Runs every case of `suites` on every variant; `done` hears of each case as it ends.
pub async fn run(
    suites: &[Suite],
    variants: &[Variant],
    jobs: usize,
    done: &(dyn Fn(&CaseResult) + Sync),
) -> Result<EvalResults, EvalError> {
    let mut results = EvalResults {
        montage: env!("CARGO_PKG_VERSION").to_owned(),
        variants: Vec::new(),
        cases: Vec::new(),
    };
    for variant in variants {
        results.variants.push(variant.info());
        results
            .cases
            .extend(runner::run_variant(variant, suites, jobs, done).await?);
    }
    Ok(results)
}

/// Reads a results file (a baseline).
pub fn read_results(path: &Path) -> Result<EvalResults, EvalError> {
    let failed = |reason: String| EvalError::Results {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| failed(format!("not a results file: {e}")))
}

/// Writes `results` to `path`, readable by [`read_results`].
pub fn write_results(results: &EvalResults, path: &Path) -> Result<(), EvalError> {
    let failed = |reason: String| EvalError::Results {
        path: path.to_owned(),
        reason,
    };
    let mut json = serde_json::to_string_pretty(results).map_err(|e| failed(e.to_string()))?;
    json.push('\n');
    std::fs::write(path, json).map_err(|e| failed(e.to_string()))
}

/// `montage eval` with where its results go and what they are held to.
#[derive(Debug, Clone, Default)]
pub struct EvalCommand {
    /// The cases and variants.
    pub options: EvalOptions,
    /// Write the results here.
    pub out: Option<PathBuf>,
    /// Write the results here as the new baseline (without timings, which differ each run).
    pub baseline: Option<PathBuf>,
    /// Hold the results to this baseline.
    pub compare: Option<PathBuf>,
    /// Write the side-by-side HTML report here.
    pub report: Option<PathBuf>,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Runs `command`, writing the tables to `out`; the comparison, when one was asked for.
pub async fn execute(
    command: &EvalCommand,
    out: &mut dyn std::io::Write,
) -> Result<(EvalResults, Option<Comparison>), EvalError> {
    let suites = load_suites(&command.options)?;
    let variants = variants(&command.options)?;
    let baseline = command.compare.as_deref().map(read_results).transpose()?;
    let total: usize = suites.iter().map(|s| s.tests.len()).sum::<usize>() * variants.len();
    let bar = match command.progress {
        true => indicatif::ProgressBar::new(total as u64),
        false => indicatif::ProgressBar::hidden(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cases {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = |case: &CaseResult| {
        bar.set_message(format!("{}/{}", case.suite, case.case));
        bar.inc(1);
    };
    let results = run(&suites, &variants, command.options.jobs, &done).await?;
    bar.finish_and_clear();
    let io = |e: std::io::Error| EvalError::Results {
        path: PathBuf::from("(standard output)"),
        reason: e.to_string(),
    };
    write!(out, "{}", results.summary()).map_err(io)?;
    write!(out, "{}", results.failures()).map_err(io)?;
    if let Some(path) = &command.out {
        write_results(&results, path)?;
    }
    if let Some(path) = &command.report {
        let failed = |reason: String| EvalError::Results {
            path: path.clone(),
            reason,
        };
        let page = report::html(&results).map_err(|e| failed(e.to_string()))?;
        std::fs::write(path, page).map_err(|e| failed(e.to_string()))?;
    }
    if let Some(path) = &command.baseline {
        let mut timeless = results.clone();
        for case in &mut timeless.cases {
            case.seconds = 0.0;
        }
        write_results(&timeless, path)?;
    }
    let comparison = baseline.map(|baseline| results.compare(&baseline));
    if let Some(comparison) = &comparison {
        writeln!(out, "{comparison}").map_err(io)?;
    }
    Ok((results, comparison))
}
