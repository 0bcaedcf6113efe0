//! What a node returns: an update and, optionally, where to go next or a question to ask.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A node's result. Build it with [`Command::update`] or [`Command::none`] and the chained
/// methods.
///
/// A question ([`Command::interrupt`]) is the node's *result*: the node has finished, its
/// update is merged and checkpointed, and the run stops. The answer goes to the node's answer
/// handler ([`NodeSpec::on_answer`](crate::NodeSpec::on_answer)) and then on along its edges,
/// so nothing the node did before asking is ever run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "U: Serialize",
    deserialize = "U: serde::de::DeserializeOwned"
))]
pub struct Command<U> {
    pub(crate) update: Option<U>,
    pub(crate) goto: Vec<String>,
    pub(crate) interrupt: Option<Value>,
    pub(crate) increments: Vec<String>,
}

impl<U> Command<U> {
    /// Changes nothing; the run follows the node's edges.
    pub fn none() -> Self {
        Self {
            update: None,
            goto: Vec::new(),
            interrupt: None,
            increments: Vec::new(),
        }
    }

    /// Merges `update` into the state.
    pub fn update(update: U) -> Self {
        Self {
            update: Some(update),
            ..Self::none()
        }
    }

    /// Goes to `node` next instead of following the node's edges. Several calls go to
    /// several nodes in parallel. The target must be declared with
    /// [`NodeSpec::may_goto`](crate::NodeSpec::may_goto).
    pub fn goto(mut self, node: impl Into<String>) -> Self {
        self.goto.push(node.into());
        self
    }

    /// Stops the run after this node and asks `question`.
    pub fn interrupt(mut self, question: Value) -> Self {
        self.interrupt = Some(question);
        self
    }

    /// Adds one to the named counter (see [`Counters`](crate::Counters)).
    pub fn increment(mut self, counter: impl Into<String>) -> Self {
        self.increments.push(counter.into());
        self
    }
}

impl<U> From<U> for Command<U> {
    fn from(update: U) -> Self {
        Self::update(update)
    }
}
