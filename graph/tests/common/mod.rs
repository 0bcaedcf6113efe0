//! A small video-shaped state shared by the engine's tests.
#![allow(dead_code)]

use montage_graph::{MergeError, State, StepWrites};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Video {
    pub log: Vec<String>,
    pub plan: Option<String>,
    pub scenes: BTreeMap<usize, String>,
    pub answer: Option<String>,
    pub preset_answer: Option<String>,
    pub items: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Up {
    Log(String),
    Plan(String),
    Scene(usize, String),
    Answer(String),
    Many(Vec<Up>),
}

impl State for Video {
    type Update = Up;

    fn merge(&mut self, update: Up, writes: &mut StepWrites) -> Result<(), MergeError> {
        match update {
            Up::Log(line) => self.log.push(line),
            Up::Plan(plan) => {
                writes.claim("plan")?;
                self.plan = Some(plan);
            }
            Up::Scene(i, scene) => {
                writes.claim(format!("scene/{i}"))?;
                self.scenes.insert(i, scene);
            }
            Up::Answer(answer) => {
                writes.claim("answer")?;
                self.answer = Some(answer);
            }
            Up::Many(updates) => {
                for update in updates {
                    self.merge(update, writes)?;
                }
            }
        }
        Ok(())
    }
}

pub fn log(line: impl Into<String>) -> Up {
    Up::Log(line.into())
}

/// Compiles `graph` and runs it once on a fresh thread with the default configuration.
pub async fn run_fresh(
    graph: montage_graph::StateGraph<Video>,
) -> Result<montage_graph::RunOutcome<Video>, montage_graph::GraphError> {
    let graph = graph.compile().expect("the test graph is valid");
    graph
        .invoke(
            &montage_graph::ThreadId::random(),
            Video::default(),
            montage_graph::RunConfig::default(),
        )
        .await
}
