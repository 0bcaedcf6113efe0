//! The graph's nodes, one module each, and what they share.
//!
//! - `intent`, `analyze`, `plan`, `story`, `prompts`, `storyboard`, `assets`, `continuity`,
//!   `critic`, `feedback`, `compose`: the nodes, in the order a run meets them, with the
//!   routers after critic and feedback.
//! - `budget`: what a round is expected to cost, and which scenes the budget lets paid models make.
//! - `cache`: the generation cache, and the seeds and keys that make a request repeatable.
//! - `cancel`: paid jobs stopped at their provider when a run is cancelled.

mod analyze;
mod assets;
mod budget;
mod cache;
mod cancel;
mod compose;
mod continuity;
mod critic;
mod feedback;
mod intent;
mod plan;
mod prompts;
mod story;
pub(super) mod storyboard;

pub use analyze::analyze;
pub use assets::asset;
pub use cache::scene_seed;
pub use compose::compose;
pub use continuity::continuity;
pub use critic::{after_critic, critic};
pub use feedback::{after_feedback, answer, feedback};
pub use intent::intent;
pub use plan::plan;
pub use prompts::{hygiene, prompts};
pub use story::{story, word_budget};

use super::error::PipelineError;
use super::state::{Plan, RunState, Update};
use super::templates::Templates;
use crate::objects::Objects;
use crate::providers::{ProviderError, Providers, Registry};
use crate::store::Database;
use cancel::StopOnCancel;
use montage_graph::{Command, NodeError};
use std::path::PathBuf;
use std::sync::Arc;

/// What the nodes use besides the state.
pub struct Services {
    /// The models: the server's, and those runs chose.
    pub models: Arc<Registry>,
    /// The media store.
    pub objects: Objects,
    /// The database (the generation cache).
    pub database: Database,
    /// The prompt templates.
    pub templates: Templates,
    /// The compositor's segment cache.
    pub segments: PathBuf,
    /// Scratch space for renders.
    pub scratch: PathBuf,
}

type NodeResult = Result<Command<Update>, NodeError>;

/// The models `state`'s run uses: its own choice of text and vision models, or the server's.
async fn run_models(services: &Services, state: &RunState) -> Result<Providers, NodeError> {
    services
        .models
        .of(&state.config.models)
        .await
        .map_err(|error| match &error {
            ProviderError::Remote { source, .. } if source.is_transient() => {
                NodeError::transient(format!("the run's models: {error}"))
            }
            _ => NodeError::permanent(format!("the run's models: {error}")),
        })
}

/// What the intent node read: every later node needs it, and a checkpoint without it is not
/// one this graph wrote.
fn intent_of(state: &RunState) -> Result<&montage_models::Intent, PipelineError> {
    state
        .intent
        .as_ref()
        .ok_or(PipelineError::Missing("intent"))
}

/// The plan, which every node after the planner needs.
fn plan_of(state: &RunState) -> Result<&Plan, PipelineError> {
    state.plan.as_ref().ok_or(PipelineError::Missing("plan"))
}
