//! The run record, `run.json`: everything a run decided and produced, in a form that is the
//! same for the same prompt, files and seed (timings aside).

use super::events::PipelineEvent;
use super::state::{
    CostEntry, CriticReport, FeedbackAnswer, Music, Plan, RunState, SceneAsset, ScenePrompt,
    ScriptLine, Story, TemplateRef,
};
use crate::config::Config;
use crate::providers::ResolvedModels;
use montage_audio::BeatGrid;
use montage_graph::{Event, EventKind};
use montage_models::{Intent, Issue};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How long one pass of a node took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTiming {
    /// The node.
    pub node: String,
    /// Wall-clock seconds from its first start to its last finish (fan-out items overlap).
    pub seconds: f64,
}

/// Collects node timings, and when the preview and the final videos were ready, from a
/// run's events.
#[derive(Debug, Default)]
pub struct Timings {
    open: HashMap<String, (u64, u64, usize)>,
    done: Vec<NodeTiming>,
    started_ms: Option<u64>,
    milestones: BTreeMap<String, f64>,
}

impl Timings {
    /// Takes one event into account.
    pub fn observe(&mut self, event: &Event) {
        let started = *self.started_ms.get_or_insert(event.at_ms);
        match &event.kind {
            EventKind::Custom { .. } => {
                // Each scene's picture is not a milestone of the run, nor is the critic's report.
                let milestone = PipelineEvent::of(event).filter(|announced| {
                    !matches!(
                        announced,
                        PipelineEvent::AssetReady { .. } | PipelineEvent::CriticReport { .. }
                    )
                });
                if let Some(announced) = milestone {
                    let seconds = event.at_ms.saturating_sub(started) as f64 / 1000.0;
                    self.milestones.insert(
                        announced.name().trim_end_matches(".ready").to_owned(),
                        seconds,
                    );
                }
            }
            EventKind::RunCompleted => {
                let seconds = event.at_ms.saturating_sub(started) as f64 / 1000.0;
                self.milestones.insert("completed".to_owned(), seconds);
            }
            EventKind::NodeStarted { node, .. } => {
                let entry = self
                    .open
                    .entry(node.clone())
                    .or_insert((event.at_ms, event.at_ms, 0));
                entry.2 += 1;
            }
            EventKind::NodeFinished { node, .. }
            | EventKind::NodeRetrying { node, .. }
            | EventKind::NodeFailed { node, .. } => {
                if let Some(entry) = self.open.get_mut(node) {
                    entry.1 = event.at_ms;
                    entry.2 = entry.2.saturating_sub(1);
                    if entry.2 == 0 && !matches!(event.kind, EventKind::NodeRetrying { .. }) {
                        let (start, end, _) = self.open.remove(node).unwrap_or_default();
                        self.done.push(NodeTiming {
                            node: node.clone(),
                            seconds: (end.saturating_sub(start)) as f64 / 1000.0,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// The passes so far, in the order they finished.
    pub fn passes(&self) -> &[NodeTiming] {
        &self.done
    }

    /// Seconds from the run's start to `preview`, `final` and `completed`.
    pub fn milestones(&self) -> &BTreeMap<String, f64> {
        &self.milestones
    }
}

/// A file a run wrote to its output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    /// What it is (`video 9:16`, `captions`, …).
    pub kind: String,
    /// Its name in the folder.
    pub file: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// A scene's prompt and picture, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    /// 1-based scene number.
    pub scene: usize,
    /// Its prompt (none for the person's image).
    pub prompt: Option<ScenePrompt>,
    /// Its picture.
    pub asset: Option<SceneAsset>,
}

/// The cost ledger with its total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Total in US dollars.
    pub total_usd: f64,
    /// Model calls made.
    pub calls: usize,
    /// Requests served from the generation cache.
    pub cached: usize,
    /// Tokens sent to text and vision models, over every call.
    pub input_tokens: u64,
    /// Tokens they answered with.
    pub output_tokens: u64,
    /// Every entry.
    pub entries: Vec<CostEntry>,
    /// What the last round of pictures, clips and narration was expected to cost before it was
    /// made (none: nothing paid was expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<super::state::Estimate>,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Montage's version.
    pub montage: String,
    /// The prompt.
    pub prompt: String,
    /// The seed.
    pub seed: u64,
    /// The configuration in force.
    pub config: Config,
    /// The models in force.
    pub models: ResolvedModels,
    /// Templates used, with versions and hashes.
    pub templates: Vec<TemplateRef>,
    /// The structured request.
    pub intent: Option<Intent>,
    /// The soundtrack.
    pub music: Option<Music>,
    /// Its beats.
    pub beat_grid: Option<BeatGrid>,
    /// Scenes on the beats.
    pub plan: Option<Plan>,
    /// What happens in each scene, with the title, description and hashtags.
    pub story: Option<Story>,
    /// Captions and narration.
    pub script: Vec<ScriptLine>,
    /// Prompts and pictures per scene.
    pub scenes: Vec<SceneRecord>,
    /// The critic's reports, one per round.
    pub reviews: Vec<CriticReport>,
    /// Answers to its questions.
    pub answers: Vec<FeedbackAnswer>,
    /// Issues left at the end.
    pub open_issues: Vec<Issue>,
    /// The cost ledger.
    pub cost: Ledger,
    /// Things to know.
    pub notices: Vec<String>,
    /// Files written.
    pub outputs: Vec<OutputFile>,
    /// Seconds per node pass, in order.
    pub timings: Vec<NodeTiming>,
    /// Seconds per node, summed over passes.
    pub node_totals: BTreeMap<String, f64>,
    /// Seconds from the start (waiting for answers included) until the preview was ready
    /// (`preview`), the final videos were encoded (`final`) and the run completed (`completed`).
    pub milestones: BTreeMap<String, f64>,
}

impl RunRecord {
    /// The record of a finished run.
    pub fn new(state: &RunState, outputs: Vec<OutputFile>, timings: &Timings) -> RunRecord {
        let scene_count = state.plan.as_ref().map_or(0, |p| p.scenes.len());
        let scenes = (0..scene_count)
            .map(|k| SceneRecord {
                scene: k + 1,
                prompt: state.prompts.get(&k).cloned(),
                asset: state.assets.get(&k).cloned(),
            })
            .collect();
        let mut node_totals = BTreeMap::new();
        for pass in timings.passes() {
            *node_totals.entry(pass.node.clone()).or_insert(0.0) += pass.seconds;
        }
        RunRecord {
            montage: env!("CARGO_PKG_VERSION").to_owned(),
            prompt: state.request.prompt.clone(),
            seed: state.request.seed,
            config: state.config.clone(),
            models: state.models.clone(),
            templates: state.templates.values().cloned().collect(),
            intent: state.intent.clone(),
            music: state.music.clone(),
            beat_grid: state.grid.clone(),
            plan: state.plan.clone(),
            story: state.story.clone(),
            script: state.script.clone(),
            scenes,
            reviews: state.reviews.clone(),
            answers: state.answers.clone(),
            open_issues: state.open_issues.clone(),
            cost: Ledger {
                total_usd: state.cost.iter().map(|c| c.usd).sum(),
                calls: state.cost.iter().filter(|c| !c.cached).count(),
                cached: state.cost.iter().filter(|c| c.cached).count(),
                input_tokens: state.cost.iter().map(|c| c.tokens.input_tokens).sum(),
                output_tokens: state.cost.iter().map(|c| c.tokens.output_tokens).sum(),
                entries: state.cost.clone(),
                estimate: state.estimate.clone().filter(|e| e.usd > 0.0),
            },
            notices: state.all_notices(),
            outputs,
            timings: timings.passes().to_vec(),
            node_totals,
            milestones: timings.milestones().clone(),
        }
    }
}
