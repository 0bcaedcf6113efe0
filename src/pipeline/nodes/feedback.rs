//! The feedback node: the critic's issues put to the person, and what an answer changes.

use super::critic::actionable;
use super::{NodeResult, Services, intent_of, plan_of};
use crate::pipeline::PipelineError;
use crate::pipeline::state::{
    Cut, FeedbackAnswer, MAX_INSTRUCTION_CHARS, Plan, RunState, SceneIndex, SceneSource, Update,
};
use minijinja::context;
use montage_graph::{Command, NodeError};
use montage_models::{DURATION_RANGE, Intent, Issue, SuggestedFix};
use serde_json::json;
use std::sync::Arc;

/// feedback: asks the person about the critic's issues and waits.
pub async fn feedback(state: Arc<RunState>, services: Arc<Services>) -> NodeResult {
    let review = state
        .reviews
        .last()
        .ok_or(PipelineError::Missing("critic report"))?;
    let issues: Vec<&Issue> = review.issues.iter().filter(|i| actionable(i)).collect();
    let (text, template) = services
        .templates
        .render(
            "feedback.question",
            context! { issues => minijinja::value::Serde(&issues), round => state.round, max_rounds => state.config.pipeline.max_iterations + 1 },
        )?;
    let question = json!({
        "text": text,
        "round": state.round,
        "issues": issues,
        "choices": ["accept", "regenerate", "edit", "skip"],
    });
    Ok(Command::update(Update {
        templates: vec![template],
        ..Update::default()
    })
    .interrupt(question))
}

/// Turns an answer to the critic's question into the changes it asks for; a malformed
/// answer or one naming scenes that cannot be regenerated is refused and the run keeps waiting.
pub fn answer(state: &RunState, answer: serde_json::Value) -> Result<Update, NodeError> {
    let answer: FeedbackAnswer = serde_json::from_value(answer)
        .map_err(|e| NodeError::permanent(format!("not an answer to the question: {e}")))?;
    let plan = plan_of(state)?;
    let mut update = Update::default();
    match &answer {
        FeedbackAnswer::Accept {} => {
            let review = state
                .reviews
                .last()
                .ok_or(PipelineError::Missing("critic report"))?;
            let mut new_plan = plan.clone();
            let mut pending = Vec::new();
            // One instruction per scene, from its most severe issue: two fixes saying
            // "brighter" must not make it twice as bright.
            let mut chosen: std::collections::BTreeMap<usize, &Issue> =
                std::collections::BTreeMap::new();
            for issue in review.issues.iter().filter(|i| actionable(i)) {
                match &issue.fix {
                    SuggestedFix::Regenerate { .. } => {
                        let keep = chosen
                            .get(&issue.scene)
                            .is_some_and(|c| c.severity >= issue.severity);
                        if !keep {
                            chosen.insert(issue.scene, issue);
                        }
                    }
                    SuggestedFix::Crossfade => {
                        let last = new_plan.scenes.len().saturating_sub(1);
                        if let Some(before) = issue.scene.checked_sub(1) {
                            new_plan.scenes[before].cut_after = Cut::Crossfade;
                        }
                        if issue.scene < last {
                            new_plan.scenes[issue.scene].cut_after = Cut::Crossfade;
                        }
                    }
                    SuggestedFix::Keep => {}
                }
            }
            for (scene, issue) in chosen {
                if let SuggestedFix::Regenerate { instruction } = &issue.fix {
                    pending.push(scene);
                    update.new_takes.push(scene);
                    update
                        .instructions
                        .entry(scene)
                        .or_default()
                        .push(instruction.clone());
                }
            }
            pending.sort_unstable();
            update.pending = Some(pending);
            if new_plan != *plan {
                update.plan = Some(new_plan);
            }
        }
        FeedbackAnswer::Regenerate {
            scenes,
            instruction,
        } => {
            let pending = retaken(plan, scenes, instruction, &mut update)?;
            update.pending = Some(pending);
        }
        FeedbackAnswer::Edit { .. } => update.intent = Some(edited_intent(state, &answer)?),
        FeedbackAnswer::Skip {} => {}
        FeedbackAnswer::Cancel {} => {
            return Err(NodeError::permanent(
                "a cancel stops the run: it is not an answer the run goes on from",
            ));
        }
        FeedbackAnswer::Budget { .. } => {
            return Err(NodeError::permanent(
                "a budget is changed at the storyboard, before the pictures are made",
            ));
        }
    }
    update.answer = Some(answer);
    Ok(update)
}

/// The scenes a `Regenerate` answer names, each a new take with `instruction` added to its
/// prompt's instructions, in order; refused when it names none, a scene the video does not
/// have, or one of the person's own pictures (which has no prompt).
pub(super) fn retaken(
    plan: &Plan,
    scenes: &[SceneIndex],
    instruction: &str,
    update: &mut Update,
) -> Result<Vec<usize>, NodeError> {
    if scenes.is_empty() {
        return Err(NodeError::permanent(
            "name at least one scene to make again",
        ));
    }
    if instruction.chars().count() > MAX_INSTRUCTION_CHARS {
        return Err(NodeError::permanent(format!(
            "the instruction is longer than {MAX_INSTRUCTION_CHARS} characters"
        )));
    }
    for scene in scenes {
        match plan.scenes.get(scene.get()).map(|s| &s.source) {
            None => {
                return Err(NodeError::permanent(format!(
                    "there is no scene {} (the video has {})",
                    scene.number(),
                    plan.scenes.len()
                )));
            }
            Some(SceneSource::Upload { .. }) => {
                return Err(NodeError::permanent(format!(
                    "scene {} is your own image: it has no prompt to make again",
                    scene.number()
                )));
            }
            Some(SceneSource::Generated) => {}
        }
    }
    let mut chosen: Vec<usize> = scenes.iter().map(|s| s.get()).collect();
    chosen.sort_unstable();
    chosen.dedup();
    for &scene in &chosen {
        update.new_takes.push(scene);
        if !instruction.trim().is_empty() {
            update
                .instructions
                .entry(scene)
                .or_default()
                .push(instruction.trim().to_owned());
        }
    }
    Ok(chosen)
}

/// The run's intent with an `Edit` answer's pace, mood and duration; refused when it
/// changes nothing or names a length out of range.
pub(super) fn edited_intent(
    state: &RunState,
    answer: &FeedbackAnswer,
) -> Result<Intent, NodeError> {
    let mut intent = intent_of(state)?.clone();
    let FeedbackAnswer::Edit {
        pace,
        mood,
        duration,
    } = answer
    else {
        return Ok(intent);
    };
    if let Some(duration) = duration {
        if !DURATION_RANGE.contains(duration) {
            return Err(NodeError::permanent(format!(
                "{duration} s is outside {:.0}–{:.0} s",
                DURATION_RANGE.start(),
                DURATION_RANGE.end()
            )));
        }
        intent.duration = *duration;
    }
    if pace.is_none() && mood.is_none() && duration.is_none() {
        return Err(NodeError::permanent(
            "an edit needs a new pace, mood or duration",
        ));
    }
    intent.pace = pace.unwrap_or(intent.pace);
    intent.mood = mood.unwrap_or(intent.mood);
    Ok(intent)
}

/// Where the run goes after an answer.
pub fn after_feedback(state: &RunState) -> &'static str {
    match state.answers.last() {
        Some(
            FeedbackAnswer::Skip {} | FeedbackAnswer::Cancel {} | FeedbackAnswer::Budget { .. },
        )
        | None => "compose",
        Some(FeedbackAnswer::Edit { .. }) => "plan",
        Some(_) => "prompts",
    }
}
