//! Running cases: each variant (a configuration and a template set) opens Montage once per
//! reach its cases need, in a scratch folder of its own, and runs each case's request to
//! that reach on the real pipeline.

use super::EvalError;
use super::assertion::Verdict;
use super::suite::{Case, Speaker, Stage, Suite};
use crate::app::{App, Opening};
use crate::config::{Config, FeedbackPolicy, StoryboardPolicy};
use crate::pipeline::Reach;
use crate::pipeline::record::{RunRecord, Timings};
use crate::pipeline::request::{self, Draft};
use crate::pipeline::state::TemplateRef;
use crate::pipeline::templates::Templates;
use crate::store::ChatMessage;
use futures::StreamExt;
use montage_graph::{RunConfig, RunOutcome, ThreadId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// One column of the matrix: the models and templates the cases run on.
#[derive(Debug, Clone)]
pub struct Variant {
    /// How tables and results name it.
    pub label: String,
    /// The configuration (its models above all).
    pub config: Config,
    /// A folder shaped like `prompts/`, over the embedded templates.
    pub prompts: Option<PathBuf>,
    /// The templates, read once (from `prompts`, or the embedded ones).
    pub templates: Templates,
}

/// How one case fared on one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The suite.
    pub suite: String,
    /// The case.
    pub case: String,
    /// The variant's label.
    pub variant: String,
    /// How far it ran.
    pub reach: Stage,
    /// Whether every assertion held.
    pub pass: bool,
    /// The mean of its assertions' scores.
    pub score: f64,
    /// Each assertion's verdict, in the suite's order.
    pub verdicts: Vec<Verdict>,
    /// Why the run itself failed, when it did (every assertion then fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What its model calls cost, US dollars.
    pub cost_usd: f64,
    /// How long it took, seconds.
    pub seconds: f64,
    /// The text model its run tried first (the ledger of a video says which answered).
    #[serde(default)]
    pub text_model: String,
    /// The scene prompts its run wrote, in order (for reading two template sets side by
    /// side; none before the prompts node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
}

/// What a variant is, as results record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInfo {
    /// Its label.
    pub label: String,
    /// The template folder, when not the embedded one.
    pub prompts: Option<PathBuf>,
    /// Its templates' versions and hashes.
    pub templates: Vec<TemplateRef>,
    /// The text model or chain its configuration names.
    pub text_model: String,
}

impl Variant {
    /// What results record of it.
    pub fn info(&self) -> VariantInfo {
        VariantInfo {
            label: self.label.clone(),
            prompts: self.prompts.clone(),
            templates: self.templates.refs().cloned().collect(),
            text_model: self.config.models.text.clone(),
        }
    }
}

/// Runs every case of `suites` on `variant`, `jobs` at a time, calling `done` after each.
pub async fn run_variant(
    variant: &Variant,
    suites: &[Suite],
    jobs: usize,
    done: &(dyn Fn(&CaseResult) + Sync),
) -> Result<Vec<CaseResult>, EvalError> {
    let scratch = tempfile::tempdir().map_err(|e| EvalError::Scratch(e.to_string()))?;
    let mut apps: BTreeMap<Reach, App> = BTreeMap::new();
    for suite in suites {
        for case in &suite.tests {
            // Agent cases need only the text model, which every reach's app has.
            let reach = app_reach(case.reach(suite));
            if apps.contains_key(&reach) {
                continue;
            }
            let mut config = variant.config.clone();
            config.storage.data_dir = scratch.path().join(format!("{reach:?}").to_lowercase());
            config.storage.database_url = None;
            // Nobody is there to answer: fixes are taken, no storyboard is shown.
            config.pipeline.feedback = FeedbackPolicy::Accept;
            config.pipeline.storyboard = StoryboardPolicy::Never;
            let opening = Opening {
                templates: variant.templates.clone(),
                reach,
            };
            let app = App::open_with(config, opening)
                .await
                .map_err(EvalError::Open)?;
            apps.insert(reach, app);
        }
    }
    let work = suites
        .iter()
        .flat_map(|suite| suite.tests.iter().map(move |case| (suite, case)));
    let results = futures::stream::iter(work)
        .map(|(suite, case)| {
            let app = &apps[&app_reach(case.reach(suite))];
            async move {
                let result = run_case(app, &variant.label, suite, case).await;
                done(&result);
                result
            }
        })
        .buffered(jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    Ok(results)
}

async fn run_case(app: &App, variant: &str, suite: &Suite, case: &Case) -> CaseResult {
    let started = Instant::now();
    let reach = case.reach(suite);
    let record = match reach {
        Stage::Agent => agent_record_of(app, case).await,
        _ => record_of(app, case).await,
    };
    let (verdicts, error): (Vec<Verdict>, _) = match &record {
        Ok(record) => (
            case.assertions.iter().map(|a| a.judge(record)).collect(),
            None,
        ),
        Err(error) => (
            case.assertions
                .iter()
                .map(|assertion| Verdict {
                    assertion: assertion.clone(),
                    pass: false,
                    score: 0.0,
                    reason: format!("the case did not run: {error}"),
                })
                .collect(),
            Some(error.clone()),
        ),
    };
    let score = verdicts.iter().map(|v| v.score).sum::<f64>() / verdicts.len().max(1) as f64;
    let field = |path: &[&str]| {
        record
            .as_ref()
            .ok()
            .map(|r| path.iter().fold(r, |v, key| &v[*key]).clone())
            .unwrap_or(Value::Null)
    };
    CaseResult {
        suite: suite.name.clone(),
        case: case.description.clone(),
        variant: variant.to_owned(),
        reach,
        pass: error.is_none() && verdicts.iter().all(|v| v.pass),
        score,
        verdicts,
        error,
        cost_usd: field(&["cost", "total_usd"]).as_f64().unwrap_or(0.0),
        seconds: started.elapsed().as_secs_f64(),
        text_model: serde_json::from_value::<montage_models::ModelId>(field(&["models", "text"]))
            .map(|id| id.to_string())
            .unwrap_or_default(),
        prompts: record
            .as_ref()
            .map(|r| {
                super::assertion::select(r, "scenes.*.prompt.prompt")
                    .into_iter()
                    .filter_map(|(_, prompt)| prompt.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The app a case of `stage` runs in.
fn app_reach(stage: Stage) -> Reach {
    stage.pipeline().unwrap_or(Reach::Intent)
}

/// What the text model does with an agent case's message: given exactly what the chat
/// agent would send it (its rules, the stated run as context, the earlier turns, its tools),
/// the tools it calls with their arguments, and what it says. Nothing is carried out.
async fn agent_record_of(app: &App, case: &Case) -> Result<Value, String> {
    let vars = &case.vars;
    let context = serde_json::json!({
        "run": vars.run.clone().unwrap_or(Value::Null),
        "audio_uploads": vars.uploaded_audio,
        "image_uploads": vars.uploaded_images,
    });
    let history: Vec<ChatMessage> = vars
        .turns
        .iter()
        .zip(1..)
        .map(|(turn, seq)| ChatMessage {
            seq,
            role: match turn.role {
                Speaker::User => "user",
                Speaker::Assistant => "assistant",
            }
            .to_owned(),
            content: turn.content.clone(),
            actions: Value::Array(Vec::new()),
            uploads: Vec::new(),
            created_at_ms: 0,
        })
        .collect();
    let said = vars.prompt.clone().unwrap_or_default();
    let request = montage_models::TextRequest {
        messages: crate::agent::conversation(&context, &history, &said),
        tools: crate::agent::tools::specs(),
        temperature: Some(0.0),
        seed: Some(1),
        ..montage_models::TextRequest::default()
    };
    let response = app
        .text
        .complete(request)
        .await
        .map_err(|e| e.to_string())?;
    let calls: Vec<Value> = response
        .tool_calls
        .iter()
        .map(|call| serde_json::json!({ "tool": call.name, "arguments": call.arguments }))
        .collect();
    Ok(serde_json::json!({
        "calls": calls,
        "reply": response.content.unwrap_or_default(),
        "models": { "text": response.model },
        "cost": { "total_usd": response.cost_usd },
    }))
}

/// The run record of `case`'s request run to its reach, or why there is none.
async fn record_of(app: &App, case: &Case) -> Result<Value, String> {
    let vars = &case.vars;
    let draft = Draft {
        prompt: vars.prompt.clone().unwrap_or_default(),
        audio: vars.audio.clone(),
        images: vars.images.clone(),
        formats: vars.formats.clone(),
        duration: vars.duration,
        seed: vars.seed.unwrap_or(1),
    };
    let request = request::prepare(draft, &app.objects)
        .await
        .map_err(|e| e.to_string())?;
    let state = app
        .new_state(request, app.config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let outcome = app
        .pipeline
        .start(&ThreadId::random(), state, RunConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    match outcome {
        RunOutcome::Completed(state) => {
            let record = RunRecord::new(&state, Vec::new(), &Timings::default());
            let mut record = serde_json::to_value(record).map_err(|e| e.to_string())?;
            let videos = state.outputs.as_ref().map(|o| o.videos.clone());
            if let Some(videos) = videos {
                let files: Vec<(std::path::PathBuf, String)> = videos
                    .iter()
                    .map(|v| {
                        (
                            app.objects.local_path(&v.object),
                            v.format.ratio().to_owned(),
                        )
                    })
                    .collect();
                let measured = tokio::task::spawn_blocking(move || {
                    files
                        .iter()
                        .map(|(path, format)| super::media::measure(path, format))
                        .collect::<Result<Vec<_>, String>>()
                })
                .await
                .map_err(|e| e.to_string())??;
                record["videos"] = serde_json::to_value(measured).map_err(|e| e.to_string())?;
            }
            Ok(record)
        }
        RunOutcome::Interrupted { node, .. } => Err(format!("the run stopped to ask at {node}")),
        RunOutcome::Cancelled(_) => Err("the run was cancelled".into()),
    }
}
