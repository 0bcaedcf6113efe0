//! `montage make`: one command from a prompt to finished videos, with progress bars and,
//! with `--interactive`, the critic's questions asked in the terminal.

use crate::app::{App, OpenError, keep_lineage};
use crate::config::{Config, ConfigError};
use crate::objects::{ObjectRef, Objects};
use crate::pipeline::record::{OutputFile, RunRecord, Timings};
use crate::pipeline::request::{self, Draft, RequestError};
use crate::pipeline::state::SceneIndex;
use crate::pipeline::{FeedbackAnswer, PipelineEvent, RunState};
use crate::store::{Database, NewRun, RunStatus, StoreError};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use montage_graph::{EventKind, GraphError, RunConfig, RunOutcome, ThreadId};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What `montage make` was asked.
#[derive(Debug, Clone)]
pub struct MakeOptions {
    /// The prompt and files.
    pub draft: Draft,
    /// Overrides the configured bound on rounds of fixes.
    pub max_iterations: Option<u32>,
    /// Ask the critic's questions in the terminal.
    pub interactive: bool,
    /// The folder the videos go to.
    pub out: PathBuf,
    /// A configuration file other than `./montage.toml`.
    pub config: Option<PathBuf>,
    /// Draw progress bars (off when stderr is not a terminal).
    pub progress: bool,
    /// Text and vision models other than the configuration's (any it can reach: the person
    /// at the terminal holds the keys).
    pub models: crate::config::ModelChoice,
    /// The most the run may spend on models, US dollars, over the configuration's.
    pub budget_usd: Option<f64>,
}

/// Why `montage make` failed.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Montage's services could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The request is wrong.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] StoreError),
    /// The run failed.
    #[error("the run failed: {0}")]
    Run(#[from] GraphError),
    /// The run was cancelled.
    #[error("the run was cancelled")]
    Cancelled,
    /// Writing the output folder failed.
    #[error("writing {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a finished `make` wrote.
#[derive(Debug, Clone)]
pub struct MakeReport {
    /// The run's id: its checkpoints in the database are kept under it.
    pub run: ThreadId,
    /// The run record, as written to `run.json`.
    pub record: RunRecord,
    /// The folder.
    pub out: PathBuf,
}

/// Runs the pipeline for `options`. Answers the critic from `answers` when interactive
/// (end of input accepts the fixes), and writes questions to `prompt_out`.
pub async fn make(
    options: MakeOptions,
    answers: &mut dyn BufRead,
    prompt_out: &mut dyn Write,
) -> Result<MakeReport, MakeError> {
    let mut config = Config::load(options.config.as_deref())?;
    if let Some(max) = options.max_iterations {
        config.pipeline.max_iterations = max;
    }
    if let Some(budget) = options.budget_usd {
        config.pipeline.budget_usd = Some(budget);
    }
    // Nobody is there to approve a storyboard unless the terminal is asked.
    if !options.interactive {
        config.pipeline.storyboard = crate::config::StoryboardPolicy::Never;
    }
    config.check()?;
    config.models = config
        .models
        .chosen(&options.models, false)
        .map_err(ConfigError)?;
    // The request is checked before the database is opened, so bad input leaves nothing.
    let objects = crate::app::open_objects(&config).map_err(OpenError::from)?;
    let run_request = request::prepare(options.draft.clone(), &objects).await?;
    let app = App::open(config).await?;
    let mut state = app
        .new_state(run_request, app.config.clone())
        .await
        .map_err(OpenError::from)?;
    let owner = app.database.local_user().await?.id;
    state.owner = Some(owner.clone());
    let (pipeline, database, objects) = (&app.pipeline, &app.database, &app.objects);
    let thread = ThreadId::random();

    let bars = MultiProgress::with_draw_target(if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let timings = Arc::new(Mutex::new(Timings::default()));
    let config_json = serde_json::to_value(&state.config).unwrap_or_default();
    database
        .create_run(
            &NewRun {
                id: thread.to_string(),
                prompt: state.request.prompt.clone(),
                config: config_json,
                input: None,
                parent: None,
                owner: Some(owner),
            },
            RunStatus::Running,
        )
        .await?;
    let watcher = tokio::spawn(watch(
        pipeline.graph().subscribe(&thread, 1),
        bars.clone(),
        Arc::clone(&timings),
        database.clone(),
    ));

    let mut outcome = pipeline.start(&thread, state, RunConfig::default()).await;
    let finished = loop {
        match outcome {
            Ok(RunOutcome::Completed(state)) => break state,
            Ok(RunOutcome::Cancelled(_)) => {
                watcher.abort();
                database
                    .set_run_status(thread.as_str(), RunStatus::Cancelled, None)
                    .await?;
                return Err(MakeError::Cancelled);
            }
            Ok(RunOutcome::Interrupted { question, .. }) => {
                database
                    .set_run_status(thread.as_str(), RunStatus::Waiting, None)
                    .await?;
                let answer = if options.interactive {
                    bars.suspend(|| ask(&question, answers, prompt_out))
                } else {
                    FeedbackAnswer::Accept {}
                };
                if answer == (FeedbackAnswer::Cancel {}) {
                    watcher.abort();
                    database
                        .set_run_status(thread.as_str(), RunStatus::Cancelled, None)
                        .await?;
                    return Err(MakeError::Cancelled);
                }
                let value = serde_json::to_value(&answer).unwrap_or(serde_json::Value::Null);
                outcome = match pipeline.answer(&thread, value, RunConfig::default()).await {
                    Err(GraphError::InvalidAnswer(reason)) if options.interactive => {
                        let _ = writeln!(prompt_out, "That answer does not work: {reason}");
                        Ok(RunOutcome::Interrupted {
                            node: "feedback".into(),
                            question,
                            state: pipeline.graph().state(&thread).await?.state,
                        })
                    }
                    other => other,
                };
                database
                    .set_run_status(thread.as_str(), RunStatus::Running, None)
                    .await?;
            }
            Err(error) => {
                watcher.abort();
                let message = error.to_string();
                database
                    .set_run_status(thread.as_str(), RunStatus::Failed, Some(&message))
                    .await?;
                return Err(error.into());
            }
        }
    };
    let _ = watcher.await;
    keep_lineage(database, thread.as_str(), &finished).await?;
    database
        .set_run_status(thread.as_str(), RunStatus::Completed, None)
        .await?;
    let outputs = export(&finished, objects, &options.out).await?;
    let record = RunRecord::new(
        &finished,
        outputs,
        &timings.lock().unwrap_or_else(|e| e.into_inner()),
    );
    let path = options.out.join("run.json");
    let json = serde_json::to_vec_pretty(&record).map_err(|e| MakeError::Output {
        path: path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&path, json).map_err(|source| MakeError::Output { path, source })?;
    Ok(MakeReport {
        run: thread,
        record,
        out: options.out,
    })
}

/// Draws a bar per node and per scene from the run's events, times the nodes, and keeps
/// every event in the database.
async fn watch(
    mut events: montage_graph::EventStream,
    bars: MultiProgress,
    timings: Arc<Mutex<Timings>>,
    database: Database,
) {
    let node_style =
        ProgressStyle::with_template("{spinner} {prefix:>9} {wide_bar} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut nodes: HashMap<String, ProgressBar> = HashMap::new();
    let mut scenes: HashMap<usize, ProgressBar> = HashMap::new();
    // Fan-out items (scenes) started and finished in the current pass of each node.
    let mut items: HashMap<String, (u64, u64)> = HashMap::new();
    while let Some(event) = events.next().await {
        if let Err(error) = database.append_event(&event).await {
            tracing::warn!(%error, seq = event.seq, "could not keep an event");
        }
        timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(&event);
        match &event.kind {
            EventKind::NodeStarted { node, item, .. } => {
                let bar = nodes.entry(node.clone()).or_insert_with(|| {
                    let bar = bars.add(
                        ProgressBar::new(100)
                            .with_style(node_style.clone())
                            .with_prefix(node.clone()),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                let counts = items.entry(node.clone()).or_default();
                if item.is_none() || counts.0 == counts.1 {
                    // A new pass of the node.
                    bar.reset();
                    *counts = (0, 0);
                }
                if item.is_some() {
                    counts.0 += 1;
                }
                if let Some(scene) = item {
                    let bar = scenes.entry(*scene).or_insert_with(|| {
                        bars.add(
                            ProgressBar::new(1)
                                .with_style(node_style.clone())
                                .with_prefix(format!("scene {}", scene + 1)),
                        )
                    });
                    bar.reset();
                    bar.set_message("generating");
                }
            }
            EventKind::Progress {
                node,
                fraction,
                message,
                ..
            } => {
                if let Some(bar) = nodes.get(node) {
                    bar.set_position((f64::from(*fraction) * 100.0) as u64);
                    bar.set_message(message.clone());
                }
            }
            EventKind::NodeFinished { node, item, .. } => {
                if let Some(scene) = item.and_then(|i| scenes.get(&i)) {
                    scene.set_position(1);
                    scene.set_message("ready");
                    let counts = items.entry(node.clone()).or_default();
                    counts.1 += 1;
                    if let Some(bar) = nodes.get(node) {
                        bar.set_position(counts.1 * 100 / counts.0.max(1));
                        bar.set_message(format!("{} of {} scenes", counts.1, counts.0));
                    }
                } else if let Some(bar) = nodes.get(node) {
                    bar.set_position(100);
                    bar.set_message("done");
                }
            }
            EventKind::Interrupted { .. } => {
                if let Some(bar) = nodes.get("feedback") {
                    bar.set_message("waiting for an answer");
                }
            }
            // Said before any paid picture is asked for (the summary says it again).
            EventKind::Custom { .. } => {
                let Some(PipelineEvent::EstimateReady { usd, budget, .. }) =
                    PipelineEvent::of(&event)
                else {
                    continue;
                };
                let line = match budget {
                    Some(budget) => format!(
                        "estimated cost of the pictures, clips and narration: ${usd:.4} (budget ${budget:.2})"
                    ),
                    None => {
                        format!("estimated cost of the pictures, clips and narration: ${usd:.4}")
                    }
                };
                let _ = bars.println(line);
            }
            kind if kind.is_terminal() => break,
            _ => {}
        }
    }
    for bar in nodes.values().chain(scenes.values()) {
        bar.finish();
    }
}

/// Asks the critic's question until the answer parses; end of input accepts the fixes.
fn ask(
    question: &serde_json::Value,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> FeedbackAnswer {
    let text = question
        .get("text")
        .and_then(|t| t.as_str())
        .unwrap_or("The critic has a question.");
    loop {
        let _ = writeln!(out, "\n{text}");
        let choices = match question.get("kind").and_then(|k| k.as_str()) {
            Some("storyboard") => {
                "[a]pprove, [r]ewrite N[,M] [instruction], [b]udget USD, [c]ancel > "
            }
            _ => "[a]ccept fixes, [r]egenerate N[,M] [instruction], [s]kip to final, [c]ancel > ",
        };
        let _ = write!(out, "{choices}");
        let _ = out.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = writeln!(out, "\n(no answer: accepting the critic's fixes)");
                return FeedbackAnswer::Accept {};
            }
            Ok(_) => {}
        }
        match parse_answer(&line) {
            Some(answer) => return answer,
            None => {
                let _ = writeln!(
                    out,
                    "Please answer a, s, c, or r followed by scene numbers (r 3 brighter)."
                );
            }
        }
    }
}

/// Reads `a`, `s`, `c`, `b 0.50`, `r 3 brighter`, `regenerate 2,4 warmer colours`.
pub fn parse_answer(line: &str) -> Option<FeedbackAnswer> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match word.to_ascii_lowercase().as_str() {
        "a" | "accept" | "approve" | "y" | "yes" => Some(FeedbackAnswer::Accept {}),
        "s" | "skip" => Some(FeedbackAnswer::Skip {}),
        "c" | "cancel" => Some(FeedbackAnswer::Cancel {}),
        "b" | "budget" => rest
            .trim()
            .trim_start_matches('$')
            .parse::<f64>()
            .ok()
            .filter(|usd| usd.is_finite() && *usd >= 0.0)
            .map(|usd| FeedbackAnswer::Budget { usd }),
        "r" | "regenerate" => {
            let rest = rest.trim();
            let (numbers, instruction) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let scenes: Option<Vec<SceneIndex>> = numbers
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| {
                    n.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n >= 1)
                        .and_then(|n| SceneIndex::new(n - 1))
                })
                .collect();
            let scenes = scenes.filter(|s| !s.is_empty())?;
            Some(FeedbackAnswer::Regenerate {
                scenes,
                instruction: instruction.trim().to_owned(),
            })
        }
        _ => None,
    }
}

async fn copy_out(
    objects: &Objects,
    object: &ObjectRef,
    out: &Path,
    file: &str,
    kind: &str,
) -> Result<OutputFile, MakeError> {
    let path = out.join(file);
    tokio::fs::copy(objects.local_path(object), &path)
        .await
        .map_err(|source| MakeError::Output { path, source })?;
    Ok(OutputFile {
        kind: kind.to_owned(),
        file: file.to_owned(),
        sha256: object.sha256.clone(),
    })
}

/// Writes the videos, captions and contact sheet of a finished run into `out`.
async fn export(
    state: &RunState,
    objects: &Objects,
    out: &Path,
) -> Result<Vec<OutputFile>, MakeError> {
    std::fs::create_dir_all(out).map_err(|source| MakeError::Output {
        path: out.to_owned(),
        source,
    })?;
    let Some(outputs) = &state.outputs else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for video in &outputs.videos {
        let name = format!("video-{}.mp4", video.format.ratio().replace(':', "x"));
        files.push(
            copy_out(
                objects,
                &video.object,
                out,
                &name,
                &format!("video {}", video.format.ratio()),
            )
            .await?,
        );
    }
    files.push(copy_out(objects, &outputs.srt, out, "captions.srt", "captions").await?);
    files.push(copy_out(objects, &outputs.vtt, out, "captions.vtt", "captions").await?);
    files.push(
        copy_out(
            objects,
            &outputs.contact_sheet,
            out,
            "contact-sheet.png",
            "contact sheet",
        )
        .await?,
    );
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene_indexes(indexes: &[usize]) -> Vec<SceneIndex> {
        indexes.iter().filter_map(|&k| SceneIndex::new(k)).collect()
    }

    #[test]
    fn reads_terminal_answers() {
        assert_eq!(parse_answer("a\n"), Some(FeedbackAnswer::Accept {}));
        assert_eq!(parse_answer("skip"), Some(FeedbackAnswer::Skip {}));
        assert_eq!(
            parse_answer("r 3,5 warmer light please"),
            Some(FeedbackAnswer::Regenerate {
                scenes: scene_indexes(&[2, 4]),
                instruction: "warmer light please".into()
            })
        );
        assert_eq!(parse_answer("r 0"), None);
        assert_eq!(parse_answer("r"), None);
        assert_eq!(parse_answer("what?"), None);
    }

    #[test]
    fn asks_again_until_the_answer_parses_and_accepts_at_the_end_of_input() {
        let question = serde_json::json!({ "text": "Scene 3 is dark." });
        let mut shown = Vec::new();
        let answer = ask(
            &question,
            &mut std::io::Cursor::new("hmm\nr 3 warmer\n"),
            &mut shown,
        );
        assert_eq!(
            answer,
            FeedbackAnswer::Regenerate {
                scenes: scene_indexes(&[2]),
                instruction: "warmer".into()
            }
        );
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(shown.matches("Scene 3 is dark.").count(), 2);
        assert!(shown.contains("Please answer"));
        let mut quiet = Vec::new();
        assert_eq!(
            ask(&question, &mut std::io::Cursor::new(""), &mut quiet),
            FeedbackAnswer::Accept {}
        );
    }
}
