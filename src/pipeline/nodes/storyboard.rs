//! The storyboard: a stop after the prompts, before any picture is made, where the person
//! sees each scene's timing, prompt and a sketch drawn locally from it (free), with what
//! the pictures and clips will cost, and approves, has chosen prompts rewritten, changes
//! the plan or cancels. It is asked once per request (again after each revision), only of
//! runs that ask their questions, and by default only when the pictures would be paid for.

use super::assets::image_request;
use super::budget;
use super::{NodeResult, Services};
use super::{intent_of, plan_of};
use crate::config::{FeedbackPolicy, OverBudget, StoryboardPolicy};
use crate::pipeline::PipelineError;
use crate::pipeline::events::{PipelineEvent, Sketch};
use crate::pipeline::state::{FeedbackAnswer, RunState, ScenePrompt, SceneSource, Update};
use crate::server::protocol::asset_url;
use minijinja::context;
use montage_graph::{Command, NodeContext, NodeError};
use montage_models::ImageModel;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sketches are drawn at this fraction of the canvas: enough to judge a composition.
const SKETCH_SCALE: u32 = 4;

/// Whether the run stops for its storyboard after this prompts pass.
pub fn wanted(state: &RunState) -> bool {
    let pipeline = &state.config.pipeline;
    let paid = || {
        state.estimate.as_ref().is_some_and(|estimate| {
            estimate
                .items
                .iter()
                .any(|item| matches!(item.capability.as_str(), "image" | "clip"))
        })
    };
    let policy = match pipeline.storyboard {
        StoryboardPolicy::Never => false,
        StoryboardPolicy::Always => true,
        StoryboardPolicy::Paid => paid(),
    } || (pipeline.over_budget == OverBudget::Ask && degraded(state));
    let before_any_picture =
        state.storyboard.as_ref().is_none_or(|s| !s.approved) && state.assets.is_empty();
    policy && pipeline.feedback == FeedbackPolicy::Ask && before_any_picture
}

/// Whether the round's budget leaves anything out: a picture drawn locally or by a model
/// further down the chain, a clip not made.
fn degraded(state: &RunState) -> bool {
    !(state.over_budget.is_empty() && state.stills_only.is_empty() && state.image_tiers.is_empty())
}

/// Where the run goes after its prompts.
pub fn after_prompts(state: &RunState) -> &'static str {
    match wanted(state) {
        true => "storyboard",
        false => "assets",
    }
}

/// Whether the storyboard is shown and not yet approved: prompts rewritten for it belong
/// to the round it shows, not a new one.
pub fn under_review(state: &RunState) -> bool {
    state.storyboard.as_ref().is_some_and(|s| !s.approved)
}

/// storyboard: draws a sketch of each pending scene, then asks for approval and waits.
pub async fn storyboard(
    state: Arc<RunState>,
    ctx: NodeContext,
    services: Arc<Services>,
) -> NodeResult {
    let intent = intent_of(&state)?;
    let plan = plan_of(&state)?;
    let mut board = state.storyboard.clone().unwrap_or_default();
    board.approved = false;
    board.sketches.retain(|k, _| state.prompts.contains_key(k));
    // The prompts node reckoned the round; only a new budget needs it reckoned again.
    let reckoned = match board.answered {
        Some(FeedbackAnswer::Budget { .. }) => {
            let round: BTreeMap<usize, ScenePrompt> = state
                .pending
                .iter()
                .filter_map(|k| state.prompts.get(k).map(|p| (*k, p.clone())))
                .collect();
            Some(budget::reckon(&state, &services, &ctx, &round, 0.0).await?)
        }
        _ => None,
    };
    let (estimate, budget_notices) = match &reckoned {
        Some(allocation) => (allocation.estimate.clone(), allocation.notices.clone()),
        None => (
            state.estimate.clone().unwrap_or_default(),
            state.budget_notices.clone(),
        ),
    };
    for &k in &state.pending {
        let Some(prompt) = state.prompts.get(&k) else {
            continue;
        };
        let mut request = image_request(intent, prompt);
        request.width = (request.width / SKETCH_SCALE).max(64);
        request.height = (request.height / SKETCH_SCALE).max(64);
        let drawn = montage_models::local::LocalImage
            .generate(request)
            .await
            .map_err(|e| PipelineError::model("a sketch", e))?;
        let object = services
            .objects
            .put("sketches", &drawn.media_type, drawn.bytes)
            .await?;
        board.sketches.insert(k, object);
    }
    PipelineEvent::StoryboardReady {
        round: state.round,
        sketches: board
            .sketches
            .iter()
            .map(|(&scene, object)| Sketch {
                scene,
                object: object.clone(),
            })
            .collect(),
    }
    .emit(&ctx);
    let providers = services.models.configured();
    let mut makers = format!("{} makes the pictures", providers.image.id());
    if let Some(clip) = &providers.clip {
        makers.push_str(&format!(" and {} the clips", clip.id()));
    }
    let mut by_capability = BTreeMap::<&str, (usize, f64)>::new();
    for item in &estimate.items {
        let entry = by_capability.entry(item.capability.as_str()).or_default();
        entry.0 += 1;
        entry.1 += item.usd;
    }
    let breakdown: Vec<String> = by_capability
        .iter()
        .map(|(capability, (count, usd))| format!("{count} {capability} ${usd:.2}"))
        .collect();
    let (text, template) = services.templates.render(
        "storyboard.question",
        context! {
            scenes => plan.scenes.len(),
            seconds => format!("{:.1}", plan.duration),
            revisions => board.revisions,
            makers => makers,
            usd => (estimate.usd > 0.0).then(|| format!("{:.2}", estimate.usd)),
            budget => estimate.budget.map(|b| format!("{b:.2}")),
            breakdown => breakdown.join(", "),
            budget_notices => budget_notices,
        },
    )?;
    let link = |object: &crate::objects::ObjectRef| json!({ "id": object.sha256, "url": asset_url(&object.sha256), "media_type": object.media_type });
    let scenes: Vec<Value> = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(k, scene)| {
            let upload = match scene.source {
                SceneSource::Upload { index } => state.request.images.get(index),
                SceneSource::Generated => None,
            };
            json!({
                "scene": k,
                "start": scene.start,
                "end": scene.end,
                "section": scene.section,
                "prompt": state.prompts.get(&k).map(|p| &p.prompt),
                "upload": upload.is_some(),
                "sketch": upload.map(|u| &u.object).or(board.sketches.get(&k)).map(link),
            })
        })
        .collect();
    let question = json!({
        "kind": "storyboard",
        "text": text,
        "round": state.round,
        "revision": board.revisions,
        "scenes": scenes,
        "estimate": estimate,
        "issues": [],
        "choices": ["accept", "regenerate", "edit", "cancel"],
    });
    Ok(Command::update(Update {
        templates: vec![template],
        storyboard: Some(board),
        estimate: reckoned,
        ..Update::default()
    })
    .interrupt(question))
}

/// Turns an answer to the storyboard into what it asks for: approval, chosen prompts
/// rewritten (with the instruction, as a new take), or a new plan. Anything else is
/// refused and the run keeps waiting.
pub fn answer(state: &RunState, answer: Value) -> Result<Update, NodeError> {
    let answer: FeedbackAnswer = serde_json::from_value(answer)
        .map_err(|e| NodeError::permanent(format!("not an answer to the storyboard: {e}")))?;
    let plan = plan_of(state)?;
    let mut board = state.storyboard.clone().unwrap_or_default();
    let mut update = Update::default();
    match &answer {
        FeedbackAnswer::Accept {} => board.approved = true,
        FeedbackAnswer::Regenerate {
            scenes,
            instruction,
        } => {
            let chosen = super::feedback::retaken(plan, scenes, instruction, &mut update)?;
            update.rewrite = Some(chosen);
            board.revisions += 1;
        }
        FeedbackAnswer::Edit { .. } => {
            update.intent = Some(super::feedback::edited_intent(state, &answer)?);
            board.revisions += 1;
        }
        FeedbackAnswer::Skip {} => {
            return Err(NodeError::permanent(
                "the storyboard is approved (accept), revised (regenerate, edit) or cancelled: there is no video yet to skip to",
            ));
        }
        FeedbackAnswer::Cancel {} => {
            return Err(NodeError::permanent(
                "a cancel stops the run: it is not an answer the run goes on from",
            ));
        }
        FeedbackAnswer::Budget { usd } => {
            if !usd.is_finite() || *usd < 0.0 {
                return Err(NodeError::permanent("a budget is an amount of US dollars"));
            }
            if let Some(ceiling) = state.budget_ceiling
                && *usd > ceiling + 1e-9
            {
                return Err(NodeError::permanent(format!(
                    "this server lets a run spend at most ${ceiling:.2}"
                )));
            }
            update.budget = Some(Some(*usd));
            board.revisions += 1;
        }
    }
    board.answered = Some(answer);
    update.storyboard = Some(board);
    Ok(update)
}

/// Where the run goes after the storyboard's answer.
pub fn after_storyboard(state: &RunState) -> &'static str {
    match state.storyboard.as_ref().and_then(|s| s.answered.as_ref()) {
        Some(FeedbackAnswer::Accept {}) => "assets",
        Some(FeedbackAnswer::Regenerate { .. }) => "prompts",
        Some(FeedbackAnswer::Budget { .. }) => "storyboard",
        _ => "plan",
    }
}
