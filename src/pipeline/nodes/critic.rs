//! The critic node: the scenes' first and last frames and the contact sheet shown to the
//! vision model, and where the run goes after its review.

use super::{NodeResult, Services, run_models};
use super::{intent_of, plan_of};
use crate::pipeline::PipelineError;
use crate::pipeline::events::PipelineEvent;
use crate::pipeline::state::{CostEntry, CriticReport, Cut, RunState, SceneSource, Update};
use crate::pipeline::timeline;
use minijinja::context;
use montage_critic::frames;
use montage_graph::{Command, NodeContext, NodeError};
use montage_models::{
    FramePosition, Issue, SceneBrief, Severity, SuggestedFix, VisionFrame, VisionRequest,
};
use std::sync::Arc;

/// Whether an issue is put to the person (the rest are recorded only).
pub fn actionable(issue: &Issue) -> bool {
    issue.severity >= Severity::Medium && issue.fix != SuggestedFix::Keep
}

/// critic: the first and last frame of every scene, as the main format frames them, and the
/// contact sheet, shown to the vision model.
pub async fn critic(state: Arc<RunState>, ctx: NodeContext, services: Arc<Services>) -> NodeResult {
    let intent = intent_of(&state)?;
    let plan = plan_of(&state)?;
    let frame = intent
        .formats
        .first()
        .map_or((1920, 1080), |f| f.dimensions());
    // Each scene's frames on the blocking pool, all at once.
    let mut grabs = Vec::with_capacity(plan.scenes.len());
    for (k, scene) in plan.scenes.iter().enumerate() {
        let asset = state
            .assets
            .get(&k)
            .ok_or_else(|| NodeError::permanent(format!("scene {} has no picture", k + 1)))?;
        let bytes = services.objects.get(&asset.object).await?;
        let (from, to) = timeline::motion(scene);
        let region = |r: montage_compositor::Rect| [r.x, r.y, r.w, r.h];
        let (from, to) = (region(from), region(to));
        grabs.push(tokio::task::spawn_blocking(
            move || -> Result<_, NodeError> {
                let failed = |e: image::ImageError| {
                    NodeError::permanent(format!("scene {}'s picture: {e}", k + 1))
                };
                let (first, last) =
                    frames::first_and_last(&bytes, from, to, frame).map_err(failed)?;
                let encoded = [
                    VisionFrame {
                        scene: k,
                        position: FramePosition::First,
                        image: frames::png(&first).map_err(failed)?,
                    },
                    VisionFrame {
                        scene: k,
                        position: FramePosition::Last,
                        image: frames::png(&last).map_err(failed)?,
                    },
                ];
                Ok((encoded, first))
            },
        ));
    }
    let mut frames = Vec::with_capacity(2 * grabs.len());
    let mut thumbs = Vec::with_capacity(grabs.len());
    for grab in futures::future::join_all(grabs).await {
        let (encoded, first) =
            grab.map_err(|e| NodeError::permanent(format!("the frame grabber stopped: {e}")))??;
        frames.extend(encoded);
        thumbs.push(first);
    }
    let sheet = tokio::task::spawn_blocking(move || frames::png(&frames::contact_sheet(&thumbs)))
        .await
        .map_err(|e| NodeError::permanent(format!("the contact sheet stopped: {e}")))?
        .map_err(NodeError::permanent)?;
    let contact_sheet = services.objects.put("sheets", "image/png", sheet).await?;
    let (instruction, template) = services
        .templates
        .render(
            "critic.instruction",
            context! { scenes => plan.scenes.len(), mood => intent.mood.word(), subject => intent.subject.clone(), palette => intent.palette.clone() },
        )?;
    let briefs = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(k, s)| SceneBrief {
            prompt: state
                .prompts
                .get(&k)
                .map(|p| p.prompt.clone())
                .unwrap_or_default(),
            generated: s.source == SceneSource::Generated,
            soft_cut_after: s.cut_after == Cut::Crossfade,
        })
        .collect();
    let critique = run_models(&services, &state)
        .await?
        .vision
        .critique(VisionRequest {
            instruction,
            scenes: briefs,
            palette: intent.palette.clone(),
            frames,
        })
        .await
        .map_err(|e| PipelineError::model("the critic", e))?;
    PipelineEvent::CriticReport {
        round: state.round,
        issues: critique.issues.clone(),
        contact_sheet: contact_sheet.clone(),
    }
    .emit(&ctx);
    let mut cost: Vec<CostEntry> =
        CostEntry::wasted("critic", "vision", &critique.wasted).collect();
    cost.push(CostEntry {
        node: "critic".into(),
        scene: None,
        capability: "vision".into(),
        model: critique.model.clone(),
        usd: critique.cost_usd,
        tokens: critique.usage,
        cached: false,
    });
    Ok(Command::update(Update {
        notices: critique.notices.clone(),
        templates: vec![template],
        cost,
        review: Some(CriticReport {
            round: state.round,
            model: critique.model,
            issues: critique.issues,
            contact_sheet,
        }),
        ..Update::default()
    }))
}

/// Where the run goes after the critic: the question when something is worth fixing and
/// rounds are left, else the final video.
pub fn after_critic(state: &RunState) -> &'static str {
    let worth_fixing = state
        .reviews
        .last()
        .is_some_and(|r| r.issues.iter().any(actionable));
    let fix_rounds_done = state.round.saturating_sub(1);
    if worth_fixing && fix_rounds_done < state.config.pipeline.max_iterations {
        "feedback"
    } else {
        "compose"
    }
}
