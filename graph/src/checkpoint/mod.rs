//! Checkpoints: what is saved after every step, and the storage interface.
//!
//! A checkpoint stores the *updates* its step applied, not the whole state; every so often it
//! also stores a full snapshot. The state at a checkpoint is the latest snapshot at or before
//! it with the later updates merged in. Snapshots are written when the updates since the last
//! one add up to that snapshot's size, so storage grows linearly with the run, never
//! quadratically, and rebuilding a state replays a bounded amount of updates.

mod memory;
pub use memory::MemoryCheckpointer;

#[cfg(feature = "test-util")]
pub mod conformance;

use crate::error::CheckpointError;
use crate::state::Counters;
use crate::{CheckpointId, ThreadId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a thread stands after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// More steps to run (or the runner died and the thread can be continued).
    Running,
    /// Waiting for an answer.
    Interrupted,
    /// Reached END.
    Completed,
    /// Stopped by an error; the thread can be continued from here.
    Failed,
    /// Cancelled; ended.
    Cancelled,
}

/// An open question: which node asked and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interrupt {
    /// The node that asked.
    pub node: String,
    /// The question, as the node wrote it.
    pub question: Value,
}

/// The small, always-present part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The thread's status at this checkpoint.
    pub status: RunStatus,
    /// The nodes that run in the next step.
    pub next: Vec<String>,
    /// The engine's counters.
    pub counters: Counters,
    /// The open question, when interrupted.
    pub interrupt: Option<Interrupt>,
    /// The answer this step merged, when it was a resume.
    pub answer: Option<Value>,
    /// The error, when failed.
    pub error: Option<String>,
    /// The seq of the thread's last event when this was saved.
    pub event_seq: u64,
    /// The thread and checkpoint this thread was forked from (on a fork's first checkpoint).
    pub forked_from: Option<(ThreadId, CheckpointId)>,
    /// Wall-clock time of saving, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// One saved step of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The thread.
    pub thread: ThreadId,
    /// This checkpoint.
    pub id: CheckpointId,
    /// The previous checkpoint of the thread.
    pub parent: Option<CheckpointId>,
    /// Step number; strictly increasing within a thread.
    pub step: u64,
    /// The whole state after this step (JSON), on snapshot checkpoints only.
    pub snapshot: Option<Vec<u8>>,
    /// The updates this step merged, as a JSON array, in merge order.
    pub writes: Vec<u8>,
    /// Status, routing and bookkeeping.
    pub meta: CheckpointMeta,
}

impl Checkpoint {
    /// Bytes of state data this checkpoint stores (snapshot plus writes).
    pub fn stored_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len) + self.writes.len()
    }
}

/// The result of one finished task of a step that has not been checkpointed yet (a fan-out
/// item, or one of several parallel nodes), kept so that a crash mid-step does not redo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// Which task: the node name, and `#index` for a fan-out item.
    pub task: String,
    /// The task's output (JSON).
    pub output: Vec<u8>,
}

/// Storage for checkpoints. Every implementation must pass
/// [`conformance::run_suite`] (feature `test-util`).
#[async_trait::async_trait]
pub trait Checkpointer: Send + Sync + 'static {
    /// Stores a checkpoint. Fails with [`CheckpointError::Conflict`] if the thread already
    /// has a checkpoint at this step or later, or one with this id.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;

    /// One checkpoint of a thread by id.
    async fn get(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Option<Checkpoint>, CheckpointError>;

    /// The thread's newest checkpoint.
    async fn latest(&self, thread: &ThreadId) -> Result<Option<Checkpoint>, CheckpointError>;

    /// All checkpoints of a thread, oldest first.
    async fn history(&self, thread: &ThreadId) -> Result<Vec<Checkpoint>, CheckpointError>;

    /// What rebuilds the state at `id`: the newest snapshot checkpoint at or before it, then
    /// every checkpoint after that up to and including `id`, oldest first. Empty if `id` is
    /// not on the thread.
    async fn replay_chain(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Vec<Checkpoint>, CheckpointError>;

    /// Stores (or replaces) the output of one finished task of the step that follows
    /// checkpoint `after`.
    async fn put_write(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
        write: &PendingWrite,
    ) -> Result<(), CheckpointError>;

    /// The task outputs stored for the step that follows checkpoint `after`, in the order
    /// they were first stored.
    async fn pending_writes(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
    ) -> Result<Vec<PendingWrite>, CheckpointError>;
}

#[async_trait::async_trait]
impl<C: Checkpointer + ?Sized> Checkpointer for std::sync::Arc<C> {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        (**self).put(checkpoint).await
    }
    async fn get(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        (**self).get(thread, id).await
    }
    async fn latest(&self, thread: &ThreadId) -> Result<Option<Checkpoint>, CheckpointError> {
        (**self).latest(thread).await
    }
    async fn history(&self, thread: &ThreadId) -> Result<Vec<Checkpoint>, CheckpointError> {
        (**self).history(thread).await
    }
    async fn replay_chain(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Vec<Checkpoint>, CheckpointError> {
        (**self).replay_chain(thread, id).await
    }
    async fn put_write(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
        write: &PendingWrite,
    ) -> Result<(), CheckpointError> {
        (**self).put_write(thread, after, write).await
    }
    async fn pending_writes(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
    ) -> Result<Vec<PendingWrite>, CheckpointError> {
        (**self).pending_writes(thread, after).await
    }
}
