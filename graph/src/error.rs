//! Errors of the engine. Control flow (an interrupt) is never an error: it is a
//! [`RunOutcome`](crate::RunOutcome). These are failures.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a [`StateGraph`](crate::StateGraph) did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two nodes share a name.
    #[error("node `{0}` is defined twice")]
    DuplicateNode(String),
    /// A node used a reserved or empty name.
    #[error("`{0}` is not a valid node name (empty, or reserved for START/END)")]
    InvalidName(String),
    /// An edge, router target or goto target names a node that does not exist.
    #[error("{context} names unknown node `{name}`")]
    UnknownNode {
        /// The missing node.
        name: String,
        /// Where it was named.
        context: String,
    },
    /// Nothing leaves START.
    #[error("the graph has no entry: add an edge from START")]
    NoEntry,
    /// An edge leads into START or out of END.
    #[error("edge {from} -> {to} is invalid: START has no incoming and END no outgoing edges")]
    InvalidEdge {
        /// Source of the edge.
        from: String,
        /// Target of the edge.
        to: String,
    },
    /// A node has no way onward: no edge, router or declared goto target.
    #[error("node `{0}` has no outgoing edge (add one, possibly to END)")]
    MissingRoute(String),
    /// No path from START reaches this node.
    #[error("node `{0}` is unreachable from START")]
    Unreachable(String),
    /// A fan-out node was given a concurrency limit of zero.
    #[error("fan-out node `{0}` needs a concurrency limit of at least 1")]
    ZeroConcurrency(String),
}

/// Two writes in one step to a value that has no merge rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MergeError {
    /// `key` was written by both `first` and `second` in the same step.
    #[error(
        "`{key}` written twice in one step (by `{first}` and `{second}`) and has no merge rule"
    )]
    Conflict {
        /// The value written twice.
        key: String,
        /// The writer whose update was merged first.
        first: String,
        /// The writer whose update collided with it.
        second: String,
    },
    /// The update is not valid for the current state.
    #[error("invalid update: {0}")]
    Invalid(String),
}

/// What kind of failure a node reported; retry policies decide by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeErrorKind {
    /// Worth retrying: a timeout of a remote call, a rate limit, a dropped connection.
    Transient,
    /// Retrying will not help: bad input, a bug, a refused request.
    Permanent,
    /// The node ran past its timeout.
    Timeout,
    /// The node stopped because the run was cancelled.
    Cancelled,
}

/// A node's failure, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct NodeError {
    /// The kind of failure.
    pub kind: NodeErrorKind,
    /// A human-readable description.
    pub message: String,
}

impl NodeError {
    /// A failure that a retry may fix.
    pub fn transient(message: impl std::fmt::Display) -> Self {
        Self {
            kind: NodeErrorKind::Transient,
            message: message.to_string(),
        }
    }

    /// A failure that a retry will not fix.
    pub fn permanent(message: impl std::fmt::Display) -> Self {
        Self {
            kind: NodeErrorKind::Permanent,
            message: message.to_string(),
        }
    }

    /// The node exceeded `limit`.
    pub fn timeout(limit: Duration) -> Self {
        Self {
            kind: NodeErrorKind::Timeout,
            message: format!("timed out after {} ms", limit.as_millis()),
        }
    }

    /// The node gave up because the run was cancelled.
    pub fn cancelled() -> Self {
        Self {
            kind: NodeErrorKind::Cancelled,
            message: "cancelled".into(),
        }
    }
}

/// A checkpointer could not store or load.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Another writer already stored this step or id for the thread (two runners on one thread).
    #[error("checkpoint conflict on thread `{thread}` at step {step}")]
    Conflict {
        /// The thread.
        thread: String,
        /// The step that was already stored.
        step: u64,
    },
    /// Stored data could not be encoded or decoded.
    #[error("checkpoint data is corrupt: {0}")]
    Corrupt(String),
    /// The storage backend failed.
    #[error("checkpoint storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a run failed or a request on a thread was refused.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The run took more steps than its recursion limit allows.
    #[error("recursion limit of {limit} steps reached without finishing")]
    RecursionLimit {
        /// The limit in force.
        limit: u64,
    },
    /// A node failed after its retries.
    #[error("node `{node}` failed after {attempts} attempt(s): {source}")]
    NodeFailed {
        /// The failing node.
        node: String,
        /// The fan-out item, if the node fans out.
        item: Option<usize>,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        #[source]
        source: NodeError,
    },
    /// Updates of one step could not be merged.
    #[error("merging the updates of step {step} failed: {source}")]
    Merge {
        /// The step.
        step: u64,
        /// The merge failure.
        #[source]
        source: MergeError,
    },
    /// A router or a goto named a node that is not in the graph.
    #[error("`{from}` routed to unknown node `{target}`")]
    UnknownRoute {
        /// The node routed from.
        from: String,
        /// The unknown target.
        target: String,
    },
    /// More than one node asked a question in the same step.
    #[error("nodes {0:?} interrupted in the same step; only one question can be open at a time")]
    MultipleInterrupts(Vec<String>),
    /// A node interrupted but has no answer handler to take the reply.
    #[error("node `{0}` interrupted but has no answer handler (NodeSpec::on_answer)")]
    NoAnswerHandler(String),
    /// The answer was rejected by the node's answer handler; the run stays interrupted.
    #[error("the answer was rejected: {0}")]
    InvalidAnswer(String),
    /// The thread is not waiting for an answer.
    #[error("thread `{0}` is not waiting for an answer")]
    NotInterrupted(String),
    /// The thread is waiting for an answer and cannot just continue.
    #[error("thread `{0}` is waiting for an answer; use resume")]
    AwaitingAnswer(String),
    /// The thread has ended (completed or cancelled) and cannot continue.
    #[error("thread `{0}` has already ended")]
    ThreadEnded(String),
    /// No thread with that id.
    #[error("thread `{0}` not found")]
    ThreadNotFound(String),
    /// A thread with that id already exists.
    #[error("thread `{0}` already exists")]
    ThreadExists(String),
    /// No checkpoint with that id on the thread.
    #[error("checkpoint `{checkpoint}` not found on thread `{thread}`")]
    CheckpointNotFound {
        /// The thread.
        thread: String,
        /// The missing checkpoint.
        checkpoint: String,
    },
    /// The graph was compiled without a checkpointer, so it cannot do this.
    #[error("this graph has no checkpointer")]
    NoCheckpointer,
    /// The checkpointer failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// State or an update could not be (de)serialized.
    #[error("state serialization failed: {0}")]
    Serde(#[from] serde_json::Error),
}
