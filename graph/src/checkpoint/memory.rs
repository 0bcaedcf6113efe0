//! The in-memory checkpointer: for tests, benchmarks and single-process use.

use super::{Checkpoint, Checkpointer, PendingWrite};
use crate::error::CheckpointError;
use crate::{CheckpointId, ThreadId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Keeps checkpoints in memory. Lost when the process ends; share one `Arc` between
/// compiled graphs to simulate another runner taking over a thread.
#[derive(Default)]
pub struct MemoryCheckpointer {
    // A std Mutex: never held across an await, and every operation is short.
    threads: Mutex<HashMap<ThreadId, ThreadRecord>>,
}

#[derive(Default)]
struct ThreadRecord {
    checkpoints: Vec<Checkpoint>,
    pending: HashMap<CheckpointId, Vec<PendingWrite>>,
}

impl MemoryCheckpointer {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_threads<T>(&self, f: impl FnOnce(&mut HashMap<ThreadId, ThreadRecord>) -> T) -> T {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut threads)
    }
}

#[async_trait::async_trait]
impl Checkpointer for MemoryCheckpointer {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        self.with_threads(|threads| {
            let record = threads.entry(checkpoint.thread.clone()).or_default();
            let clashes = record
                .checkpoints
                .last()
                .is_some_and(|last| last.step >= checkpoint.step)
                || record.checkpoints.iter().any(|c| c.id == checkpoint.id);
            if clashes {
                return Err(CheckpointError::Conflict {
                    thread: checkpoint.thread.to_string(),
                    step: checkpoint.step,
                });
            }
            // The parent's pending writes are folded into this checkpoint now.
            if let Some(parent) = checkpoint.parent {
                record.pending.remove(&parent);
            }
            record.checkpoints.push(checkpoint.clone());
            Ok(())
        })
    }

    async fn get(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.with_threads(|threads| {
            threads
                .get(thread)
                .and_then(|r| r.checkpoints.iter().find(|c| c.id == id).cloned())
        }))
    }

    async fn latest(&self, thread: &ThreadId) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.with_threads(|threads| {
            threads
                .get(thread)
                .and_then(|r| r.checkpoints.last().cloned())
        }))
    }

    async fn history(&self, thread: &ThreadId) -> Result<Vec<Checkpoint>, CheckpointError> {
        Ok(self.with_threads(|threads| {
            threads
                .get(thread)
                .map(|r| r.checkpoints.clone())
                .unwrap_or_default()
        }))
    }

    async fn replay_chain(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Vec<Checkpoint>, CheckpointError> {
        Ok(self.with_threads(|threads| {
            let Some(record) = threads.get(thread) else {
                return Vec::new();
            };
            let Some(end) = record.checkpoints.iter().position(|c| c.id == id) else {
                return Vec::new();
            };
            let start = record.checkpoints[..=end]
                .iter()
                .rposition(|c| c.snapshot.is_some())
                .unwrap_or(0);
            record.checkpoints[start..=end].to_vec()
        }))
    }

    async fn put_write(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
        write: &PendingWrite,
    ) -> Result<(), CheckpointError> {
        self.with_threads(|threads| {
            let writes = threads
                .entry(thread.clone())
                .or_default()
                .pending
                .entry(after)
                .or_default();
            match writes.iter_mut().find(|w| w.task == write.task) {
                Some(existing) => existing.output.clone_from(&write.output),
                None => writes.push(write.clone()),
            }
        });
        Ok(())
    }

    async fn pending_writes(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
    ) -> Result<Vec<PendingWrite>, CheckpointError> {
        Ok(self.with_threads(|threads| {
            threads
                .get(thread)
                .and_then(|r| r.pending.get(&after).cloned())
                .unwrap_or_default()
        }))
    }
}
