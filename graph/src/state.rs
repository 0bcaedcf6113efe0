//! The state a graph carries, and how updates are merged into it.

use crate::error::MergeError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, HashMap};

/// The state of a graph run. Nodes read a snapshot of it and return an [`State::Update`];
/// the engine merges the updates of one step in a fixed order with [`State::merge`].
///
/// Merge rules are code, not annotations: a value that may be written by several nodes in
/// one step (an append-only list, a map keyed by scene) merges them; any other value calls
/// [`StepWrites::claim`] first, so that two writes in one step are an error rather than a
/// silent overwrite.
///
/// Keep large data out of the state: hold references (object keys, hashes). The state is
/// serialized into checkpoints.
pub trait State: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// What a node returns to change the state.
    type Update: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    /// Applies one update. `writes` records what this step has already written.
    fn merge(&mut self, update: Self::Update, writes: &mut StepWrites) -> Result<(), MergeError>;
}

/// The values written so far in one step, for detecting conflicting parallel writes.
#[derive(Debug, Default)]
pub struct StepWrites {
    writer: String,
    claimed: HashMap<String, String>,
}

impl StepWrites {
    /// Records a write of `key` by the current writer. Fails if another writer of this step
    /// already wrote it. The same writer may write a key more than once.
    pub fn claim(&mut self, key: impl Into<String>) -> Result<(), MergeError> {
        let key = key.into();
        match self.claimed.get(&key) {
            Some(first) if *first != self.writer => Err(MergeError::Conflict {
                key,
                first: first.clone(),
                second: self.writer.clone(),
            }),
            Some(_) => Ok(()),
            None => {
                self.claimed.insert(key, self.writer.clone());
                Ok(())
            }
        }
    }

    /// The node (and fan-out item) whose update is being merged.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    pub(crate) fn set_writer(&mut self, writer: impl Into<String>) {
        self.writer = writer.into();
    }
}

/// Counters kept by the engine beside the state: how often each node ran, and named counters
/// that nodes increment through [`Command::increment`](crate::Command::increment). Routers
/// read them to bound loops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    named: BTreeMap<String, u64>,
    visits: BTreeMap<String, u64>,
}

impl Counters {
    /// The value of a named counter (0 if never incremented).
    pub fn get(&self, name: &str) -> u64 {
        self.named.get(name).copied().unwrap_or(0)
    }

    /// How many steps ran `node` so far on this thread (a fan-out counts once per step).
    pub fn visits(&self, node: &str) -> u64 {
        self.visits.get(node).copied().unwrap_or(0)
    }

    pub(crate) fn increment(&mut self, name: &str) {
        *self.named.entry(name.to_owned()).or_default() += 1;
    }

    pub(crate) fn visit(&mut self, node: &str) {
        *self.visits.entry(node.to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_of_a_claimed_key_conflicts() {
        let mut writes = StepWrites::default();
        writes.set_writer("a");
        writes.claim("plan").unwrap();
        writes.claim("plan").unwrap();
        writes.set_writer("b");
        let err = writes.claim("plan").unwrap_err();
        assert_eq!(
            err,
            MergeError::Conflict {
                key: "plan".into(),
                first: "a".into(),
                second: "b".into()
            }
        );
        writes.claim("other").unwrap();
    }

    #[test]
    fn counters_start_at_zero_and_count() {
        let mut counters = Counters::default();
        assert_eq!(counters.get("iterations"), 0);
        counters.increment("iterations");
        counters.increment("iterations");
        counters.visit("plan");
        assert_eq!(counters.get("iterations"), 2);
        assert_eq!(counters.visits("plan"), 1);
        assert_eq!(counters.visits("critic"), 0);
    }
}
