//! A pipeline-shaped graph for benchmarks of the engine and of checkpointers (feature
//! `test-util`): 8 nodes, intent → analyze → plan → prompts → assets → critic → feedback →
//! compose, feedback routing back to plan three times (23 steps a run), trivial node bodies.

use crate::{Command, CompiledGraph, END, MergeError, START, State, StateGraph, StepWrites};
use serde::{Deserialize, Serialize};

/// Steps one run of [`pipeline_graph`] takes.
pub const PIPELINE_STEPS: u64 = 23;

const NODES: [&str; 8] = [
    "intent", "analyze", "plan", "prompts", "assets", "critic", "feedback", "compose",
];

/// The bench graph's state: the last node that ran and how many steps did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipelineState {
    /// The node of the last step.
    pub last_node: String,
    /// Steps so far.
    pub steps: u32,
}

impl State for PipelineState {
    type Update = String;

    fn merge(&mut self, node: String, writes: &mut StepWrites) -> Result<(), MergeError> {
        writes.claim("last_node")?;
        self.last_node = node;
        self.steps += 1;
        Ok(())
    }
}

/// The bench graph, compiled with the in-memory checkpointer (replace it to measure another).
pub fn pipeline_graph() -> CompiledGraph<PipelineState> {
    let mut g = StateGraph::<PipelineState>::new();
    for name in NODES {
        g.add_node(name, move |_, _| async move {
            let command = Command::update(name.to_owned());
            Ok(if name == "feedback" {
                command.increment("iterations")
            } else {
                command
            })
        });
    }
    g.add_edge(START, "intent");
    for pair in NODES[..7].windows(2) {
        g.add_edge(pair[0], pair[1]);
    }
    g.add_conditional_edges(
        "feedback",
        |_, counters| {
            if counters.get("iterations") <= 3 {
                "plan"
            } else {
                "compose"
            }
        },
        ["plan", "compose"],
    );
    g.add_edge("compose", END);
    g.compile().expect("the bench graph is valid")
}
