//! The video pipeline: the state graph of DESIGN.md wired with the tools.
//!
//! ```text
//! START → intent → analyze → plan → story → prompts ─┬──────────────────────→ assets → continuity → critic ─┬─(nothing to fix)──→ compose → END
//!                                                   └─→ storyboard ─(accept)─┘                           └─→ feedback ─(skip / at the bound)─→ compose
//! storyboard ─ regenerate → prompts, edit → plan, budget → storyboard
//! feedback   ─ accept / regenerate → prompts, edit → plan
//! ```
//!
//! - `state`: [`RunState`], references and decisions only; media lives in the object store.
//! - `nodes`: the nodes and routers, one module each, with the generation cache and the budget.
//! - `events`: what the nodes announce while a run goes on ([`PipelineEvent`]).
//! - `error`: what goes wrong inside a node, and whether the graph retries it.
//! - `plan`: the beat-aligned planner.
//! - `templates`: the versioned prompt templates of `prompts/`.
//! - `timeline`: plan → compositor timeline.
//! - `record`: the run record (`run.json`).
//! - `request`: checking and storing what a person asks for before any work starts.

mod error;
pub mod events;
mod nodes;
pub mod plan;
pub mod record;
pub mod request;
pub mod state;
pub mod templates;
mod timeline;

pub use error::PipelineError;
pub use events::PipelineEvent;
pub use nodes::{Services, hygiene, scene_seed, word_budget};
pub use state::{FeedbackAnswer, IntentOverrides, RunRequest, RunState};

use montage_graph::{
    BuildError, Checkpointer, CompiledGraph, END, GraphError, RetryPolicy, RunConfig, RunOutcome,
    START, StateGraph, ThreadId,
};
use std::sync::Arc;

/// The compiled video graph and the services its nodes use.
pub struct Pipeline {
    graph: CompiledGraph<RunState>,
}

/// How far a pipeline goes: all the way to the video, or only to an earlier node (the eval
/// harness stops where a case's assertions need it to, so most cases never draw a picture).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The intent read from the request.
    Intent,
    /// Through the beat plan.
    Plan,
    /// Through the story and the scene prompts.
    Prompts,
    /// Through the pictures and the critic's first review, without rounds of fixes.
    Critic,
    /// The finished video.
    #[default]
    Video,
}

impl Pipeline {
    /// Wires the graph. `concurrency` scenes are generated at once, each model call tried up
    /// to `attempts` times.
    pub fn new(
        services: Services,
        concurrency: usize,
        attempts: u32,
    ) -> Result<Pipeline, BuildError> {
        Pipeline::reaching(services, concurrency, attempts, Reach::Video)
    }

    /// The graph up to `reach`, which ends there.
    pub fn reaching(
        services: Services,
        concurrency: usize,
        attempts: u32,
        reach: Reach,
    ) -> Result<Pipeline, BuildError> {
        let services = Arc::new(services);
        let mut graph = StateGraph::<RunState>::new();
        let s = Arc::clone(&services);
        graph
            .add_node("intent", move |state, _| {
                nodes::intent(state, Arc::clone(&s))
            })
            .retry(RetryPolicy::exponential(attempts));
        graph.add_edge(START, "intent");
        if reach == Reach::Intent {
            return Pipeline::ending(graph, "intent");
        }
        let s = Arc::clone(&services);
        graph
            .add_node("analyze", move |state, ctx| {
                nodes::analyze(state, ctx, Arc::clone(&s))
            })
            .retry(RetryPolicy::exponential(attempts));
        graph.add_node("plan", |state, _| nodes::plan(state));
        graph
            .add_edge("intent", "analyze")
            .add_edge("analyze", "plan");
        if reach == Reach::Plan {
            return Pipeline::ending(graph, "plan");
        }
        let s = Arc::clone(&services);
        graph.add_node("story", move |state, _| nodes::story(state, Arc::clone(&s)));
        let s = Arc::clone(&services);
        graph.add_node("prompts", move |state, ctx| {
            nodes::prompts(state, ctx, Arc::clone(&s))
        });
        graph.add_edge("plan", "story").add_edge("story", "prompts");
        if reach == Reach::Prompts {
            return Pipeline::ending(graph, "prompts");
        }
        let s = Arc::clone(&services);
        graph
            .add_node("storyboard", move |state, ctx| {
                nodes::storyboard::storyboard(state, ctx, Arc::clone(&s))
            })
            .on_answer(nodes::storyboard::answer);
        let s = Arc::clone(&services);
        graph
            .add_fan_out(
                "assets",
                |state: &RunState| state.pending.clone(),
                move |state, scene, ctx| nodes::asset(state, scene, ctx, Arc::clone(&s)),
            )
            .concurrency(concurrency.max(1))
            .retry(RetryPolicy::exponential(attempts));
        let s = Arc::clone(&services);
        graph
            .add_node("continuity", move |state, ctx| {
                nodes::continuity(state, ctx, Arc::clone(&s))
            })
            .retry(RetryPolicy::exponential(attempts));
        let s = Arc::clone(&services);
        graph
            .add_node("critic", move |state, ctx| {
                nodes::critic(state, ctx, Arc::clone(&s))
            })
            .retry(RetryPolicy::exponential(attempts));
        graph
            .add_conditional_edges(
                "prompts",
                |state, _| nodes::storyboard::after_prompts(state),
                ["storyboard", "assets"],
            )
            .add_conditional_edges(
                "storyboard",
                |state, _| nodes::storyboard::after_storyboard(state),
                ["assets", "prompts", "plan", "storyboard"],
            )
            .add_edge("assets", "continuity")
            .add_edge("continuity", "critic");
        if reach == Reach::Critic {
            return Pipeline::ending(graph, "critic");
        }
        let s = Arc::clone(&services);
        graph
            .add_node("feedback", move |state, _| {
                nodes::feedback(state, Arc::clone(&s))
            })
            .on_answer(nodes::answer);
        let s = Arc::clone(&services);
        graph.add_node("compose", move |state, ctx| {
            nodes::compose(state, ctx, Arc::clone(&s))
        });
        graph
            .add_conditional_edges(
                "critic",
                |state, _| nodes::after_critic(state),
                ["feedback", "compose"],
            )
            .add_conditional_edges(
                "feedback",
                |state, _| nodes::after_feedback(state),
                ["prompts", "plan", "compose"],
            )
            .add_edge("compose", END);
        Ok(Pipeline {
            graph: graph.compile()?,
        })
    }

    /// `graph`, ending after `last`.
    fn ending(mut graph: StateGraph<RunState>, last: &str) -> Result<Pipeline, BuildError> {
        graph.add_edge(last, END);
        Ok(Pipeline {
            graph: graph.compile()?,
        })
    }

    /// Saves the runs' checkpoints in `checkpointer` (in memory until this is called).
    pub fn with_checkpointer(mut self, checkpointer: Arc<dyn Checkpointer>) -> Pipeline {
        self.graph = self.graph.with_checkpointer(checkpointer);
        self
    }

    /// The compiled graph: subscribe to its events, inspect its threads.
    pub fn graph(&self) -> &CompiledGraph<RunState> {
        &self.graph
    }

    /// Runs a new thread until it finishes or asks a question.
    pub async fn start(
        &self,
        thread: &ThreadId,
        state: RunState,
        config: RunConfig,
    ) -> Result<RunOutcome<RunState>, GraphError> {
        self.graph.invoke(thread, state, config).await
    }

    /// Checks `answer` against the open question of a run in `state` without changing
    /// anything: the reason it does not answer it, if it does not.
    pub fn check_answer(state: &RunState, answer: serde_json::Value) -> Result<(), String> {
        let checked = match nodes::storyboard::under_review(state) {
            true => nodes::storyboard::answer(state, answer),
            false => nodes::answer(state, answer),
        };
        checked.map(|_| ()).map_err(|e| e.message)
    }

    /// Answers the open question (a [`FeedbackAnswer`] as JSON) and runs on. An answer the
    /// question does not accept is refused and the run keeps waiting.
    pub async fn answer(
        &self,
        thread: &ThreadId,
        answer: serde_json::Value,
        config: RunConfig,
    ) -> Result<RunOutcome<RunState>, GraphError> {
        self.graph.resume(thread, answer, config).await
    }
}
