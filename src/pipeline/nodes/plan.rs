//! The plan node: scenes on the beat grid, by the planner of `pipeline::plan`.

use super::NodeResult;
use super::intent_of;
use crate::pipeline::PipelineError;
use crate::pipeline::plan as planner;
use crate::pipeline::state::{RunState, Update};
use montage_graph::{Command, NodeError};
use std::sync::Arc;

/// plan: scenes on the beat grid.
pub async fn plan(state: Arc<RunState>) -> NodeResult {
    let intent = intent_of(&state)?;
    let grid = state
        .grid
        .as_ref()
        .ok_or(PipelineError::Missing("beat grid"))?;
    let (plan, notices) =
        planner::plan(intent, grid, state.request.images.len(), state.request.seed)
            .map_err(NodeError::permanent)?;
    let pending = (0..plan.scenes.len()).collect();
    Ok(Command::update(Update {
        plan: Some(plan),
        reset_scenes: true,
        pending: Some(pending),
        notices,
        ..Update::default()
    }))
}
