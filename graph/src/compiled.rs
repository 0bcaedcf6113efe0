//! The compiled graph: the public API for starting, resuming, inspecting and forking threads.

use crate::checkpoint::{
    Checkpoint, CheckpointMeta, Checkpointer, Interrupt, MemoryCheckpointer, RunStatus,
};
use crate::error::{CheckpointError, GraphError, MergeError};
use crate::event::{EventHub, EventKind, EventStream};
use crate::state::{Counters, State, StepWrites};
use crate::topology::{END, NodeSpec, Router, START};
use crate::{CheckpointId, ThreadId};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

pub(crate) struct Topology<S: State> {
    pub(crate) nodes: HashMap<String, NodeSpec<S>>,
    pub(crate) edges: HashMap<String, Vec<String>>,
    pub(crate) routers: HashMap<String, Vec<Router<S>>>,
}

impl<S: State> Topology<S> {
    /// Where the run goes after `from`, reading the state after the step was merged.
    pub(crate) fn route(
        &self,
        from: &str,
        state: &S,
        counters: &Counters,
        next: &mut Vec<String>,
    ) -> Result<(), GraphError> {
        for target in self.edges.get(from).into_iter().flatten() {
            push_unique(next, target);
        }
        for router in self.routers.get(from).into_iter().flatten() {
            let target = (router.route)(state, counters);
            if !router.targets.contains(&target) {
                return Err(GraphError::UnknownRoute {
                    from: from.to_owned(),
                    target,
                });
            }
            push_unique(next, &target);
        }
        Ok(())
    }
}

pub(crate) fn push_unique(next: &mut Vec<String>, target: &str) {
    if target != END && !next.iter().any(|n| n == target) {
        next.push(target.to_owned());
    }
}

/// Options of one invocation.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Maximum number of checkpointed steps of the thread, counted from its first step
    /// (across resumes), before the run fails with [`GraphError::RecursionLimit`].
    pub recursion_limit: u64,
    /// Cancels the run cooperatively: nodes see it in their context; the engine stops at
    /// the next step boundary, or abandons the current step, and leaves a consistent
    /// checkpoint with status cancelled.
    pub cancel: CancellationToken,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            recursion_limit: 100,
            cancel: CancellationToken::new(),
        }
    }
}

impl RunConfig {
    /// Sets the recursion limit.
    pub fn recursion_limit(mut self, limit: u64) -> Self {
        self.recursion_limit = limit;
        self
    }

    /// Uses `token` for cancellation.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }
}

/// How a run stopped, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome<S> {
    /// The run reached END.
    Completed(S),
    /// A node asked a question; answer it with [`CompiledGraph::resume`].
    Interrupted {
        /// The node that asked.
        node: String,
        /// The question.
        question: Value,
        /// The state so far.
        state: S,
    },
    /// The run was cancelled.
    Cancelled(S),
}

impl<S> RunOutcome<S> {
    /// The state at the stop.
    pub fn state(&self) -> &S {
        match self {
            Self::Completed(state) | Self::Cancelled(state) => state,
            Self::Interrupted { state, .. } => state,
        }
    }

    /// The state at the stop, by value.
    pub fn into_state(self) -> S {
        match self {
            Self::Completed(state) | Self::Cancelled(state) => state,
            Self::Interrupted { state, .. } => state,
        }
    }
}

/// A thread's state at one checkpoint, with where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadState<S> {
    /// The state.
    pub state: S,
    /// The checkpoint it was read from.
    pub checkpoint: CheckpointId,
    /// That checkpoint's step.
    pub step: u64,
    /// The thread's status there.
    pub status: RunStatus,
    /// The nodes that run next.
    pub next: Vec<String>,
    /// The engine's counters.
    pub counters: Counters,
    /// The open question, if interrupted.
    pub interrupt: Option<Interrupt>,
    /// The error, if failed.
    pub error: Option<String>,
}

/// One entry of a thread's history.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// The checkpoint.
    pub id: CheckpointId,
    /// Its step.
    pub step: u64,
    /// Bytes of state data it stores.
    pub stored_bytes: usize,
    /// Status, routing and bookkeeping.
    pub meta: CheckpointMeta,
}

/// How to fork a thread: an optional edit merged into the copied state, and optionally
/// which nodes run next instead of those the checkpoint had scheduled.
#[derive(Debug, Clone)]
pub struct Fork<U> {
    /// An update merged into the copied state.
    pub edit: Option<U>,
    /// Overrides the nodes that run next (and drops an open question).
    pub next: Option<Vec<String>>,
}

impl<U> Default for Fork<U> {
    fn default() -> Self {
        Self {
            edit: None,
            next: None,
        }
    }
}

/// A validated graph, ready to run threads. Cheap to clone; clones share the topology,
/// checkpointer and event hub.
pub struct CompiledGraph<S: State> {
    pub(crate) topology: Arc<Topology<S>>,
    pub(crate) checkpointer: Option<Arc<dyn Checkpointer>>,
    pub(crate) hub: Arc<EventHub>,
}

impl<S: State> Clone for CompiledGraph<S> {
    fn clone(&self) -> Self {
        Self {
            topology: Arc::clone(&self.topology),
            checkpointer: self.checkpointer.clone(),
            hub: Arc::clone(&self.hub),
        }
    }
}

/// Where a thread stands in memory while it runs.
pub(crate) struct Cursor<S> {
    pub(crate) thread: ThreadId,
    pub(crate) state: Arc<S>,
    pub(crate) step: u64,
    pub(crate) checkpoint: Option<CheckpointId>,
    pub(crate) counters: Counters,
    pub(crate) next: Vec<String>,
    snapshot_bytes: usize,
    since_snapshot: usize,
}

/// The smallest gap between snapshots, so tiny states are not snapshotted every step.
const MIN_SNAPSHOT_INTERVAL: usize = 1024;

pub(crate) struct Save {
    pub(crate) writes: Vec<u8>,
    pub(crate) status: RunStatus,
    pub(crate) interrupt: Option<Interrupt>,
    pub(crate) answer: Option<Value>,
    pub(crate) error: Option<String>,
    /// `NodeFinished` events of tasks this checkpoint keeps, published once it is saved.
    pub(crate) finished: Vec<EventKind>,
}

impl Save {
    pub(crate) fn status(status: RunStatus) -> Self {
        Self {
            writes: b"[]".to_vec(),
            status,
            interrupt: None,
            answer: None,
            error: None,
            finished: Vec::new(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<S: State> CompiledGraph<S> {
    pub(crate) fn new(topology: Topology<S>) -> Self {
        Self {
            topology: Arc::new(topology),
            checkpointer: Some(Arc::new(MemoryCheckpointer::new())),
            hub: Arc::new(EventHub::default()),
        }
    }

    /// Saves checkpoints to `checkpointer`.
    pub fn with_checkpointer(mut self, checkpointer: Arc<dyn Checkpointer>) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }

    /// Saves no checkpoints: fastest, but nothing can be resumed, inspected or forked.
    pub fn without_checkpointer(mut self) -> Self {
        self.checkpointer = None;
        self
    }

    /// Publishes events to `hub` (share one hub between graphs and the application).
    pub fn with_event_hub(mut self, hub: Arc<EventHub>) -> Self {
        self.hub = hub;
        self
    }

    /// The event hub this graph publishes to.
    pub fn event_hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    /// Follows a thread's events from `from_seq` on (1 for everything still retained).
    pub fn subscribe(&self, thread: &ThreadId, from_seq: u64) -> EventStream {
        self.hub.subscribe(thread, from_seq)
    }

    fn store(&self) -> Result<&Arc<dyn Checkpointer>, GraphError> {
        self.checkpointer.as_ref().ok_or(GraphError::NoCheckpointer)
    }

    /// Starts a new thread with `input` and runs it until it completes, asks a question,
    /// is cancelled or fails.
    pub async fn invoke(
        &self,
        thread: &ThreadId,
        input: S,
        config: RunConfig,
    ) -> Result<RunOutcome<S>, GraphError> {
        if let Some(store) = &self.checkpointer
            && store.latest(thread).await?.is_some()
        {
            return Err(GraphError::ThreadExists(thread.to_string()));
        }
        self.hub.publish(thread, EventKind::RunStarted);
        let counters = Counters::default();
        let mut next = Vec::new();
        self.topology.route(START, &input, &counters, &mut next)?;
        let status = if next.is_empty() {
            RunStatus::Completed
        } else {
            RunStatus::Running
        };
        let mut cursor = Cursor {
            thread: thread.clone(),
            state: Arc::new(input),
            step: 0,
            checkpoint: None,
            counters,
            next,
            snapshot_bytes: 0,
            since_snapshot: 0,
        };
        self.save(&mut cursor, Save::status(status), None).await?;
        self.drive(cursor, &config).await
    }

    /// Answers the open question of an interrupted thread and runs on. The answer goes to
    /// the asking node's answer handler; the node itself does not run again. A rejected
    /// answer leaves the thread waiting, unchanged.
    pub async fn resume(
        &self,
        thread: &ThreadId,
        answer: Value,
        config: RunConfig,
    ) -> Result<RunOutcome<S>, GraphError> {
        let (mut cursor, checkpoint) = self.load(thread, None).await?;
        let Some(interrupt) = checkpoint
            .meta
            .interrupt
            .filter(|_| checkpoint.meta.status == RunStatus::Interrupted)
        else {
            return Err(GraphError::NotInterrupted(thread.to_string()));
        };
        let handler = self
            .topology
            .nodes
            .get(&interrupt.node)
            .and_then(|n| n.on_answer.clone())
            .ok_or_else(|| GraphError::NoAnswerHandler(interrupt.node.clone()))?;
        let update = handler(&cursor.state, answer.clone())
            .map_err(|e| GraphError::InvalidAnswer(e.message))?;
        let writes = serde_json::to_vec(&[(&interrupt.node, &update)])?;
        let mut step_writes = StepWrites::default();
        step_writes.set_writer(interrupt.node.clone());
        Arc::make_mut(&mut cursor.state)
            .merge(update, &mut step_writes)
            .map_err(|e| GraphError::InvalidAnswer(e.to_string()))?;
        let mut next = cursor.next.clone();
        self.topology
            .route(&interrupt.node, &cursor.state, &cursor.counters, &mut next)?;
        cursor.next = next;
        self.hub.advance_to(thread, checkpoint.meta.event_seq);
        self.hub.publish(thread, EventKind::RunResumed);
        let status = if cursor.next.is_empty() {
            RunStatus::Completed
        } else {
            RunStatus::Running
        };
        let save = Save {
            writes,
            answer: Some(answer),
            ..Save::status(status)
        };
        cursor.step += 1;
        self.save(&mut cursor, save, None).await?;
        self.drive(cursor, &config).await
    }

    /// Continues a thread from its latest checkpoint: after its runner died, or after a
    /// failure. Finished nodes, and finished items of an unfinished step, are not run again.
    /// A completed thread just returns its final state.
    pub async fn continue_thread(
        &self,
        thread: &ThreadId,
        config: RunConfig,
    ) -> Result<RunOutcome<S>, GraphError> {
        let (cursor, checkpoint) = self.load(thread, None).await?;
        match checkpoint.meta.status {
            RunStatus::Completed => {
                return Ok(RunOutcome::Completed(Arc::unwrap_or_clone(cursor.state)));
            }
            RunStatus::Interrupted => return Err(GraphError::AwaitingAnswer(thread.to_string())),
            RunStatus::Cancelled => return Err(GraphError::ThreadEnded(thread.to_string())),
            RunStatus::Running | RunStatus::Failed => {}
        }
        self.hub.advance_to(thread, checkpoint.meta.event_seq);
        self.hub.publish(thread, EventKind::RunResumed);
        self.drive(cursor, &config).await
    }

    /// The thread's latest state and status.
    pub async fn state(&self, thread: &ThreadId) -> Result<ThreadState<S>, GraphError> {
        let (cursor, checkpoint) = self.load(thread, None).await?;
        Ok(thread_state(cursor, checkpoint))
    }

    /// The thread's state as it was at `checkpoint`.
    pub async fn state_at(
        &self,
        thread: &ThreadId,
        checkpoint: CheckpointId,
    ) -> Result<ThreadState<S>, GraphError> {
        let (cursor, checkpoint) = self.load(thread, Some(checkpoint)).await?;
        Ok(thread_state(cursor, checkpoint))
    }

    /// The thread's checkpoints, oldest first.
    pub async fn history(&self, thread: &ThreadId) -> Result<Vec<CheckpointInfo>, GraphError> {
        let history = self.store()?.history(thread).await?;
        if history.is_empty() {
            return Err(GraphError::ThreadNotFound(thread.to_string()));
        }
        Ok(history
            .into_iter()
            .map(|c| CheckpointInfo {
                id: c.id,
                step: c.step,
                stored_bytes: c.stored_bytes(),
                meta: c.meta,
            })
            .collect())
    }

    /// Copies `thread` as it was at `checkpoint` into the new thread `new_thread`, applying
    /// `fork.edit`; the original is left untouched. Run the fork with
    /// [`continue_thread`](Self::continue_thread) (or [`resume`](Self::resume) if it copied
    /// an open question).
    pub async fn fork(
        &self,
        thread: &ThreadId,
        checkpoint: CheckpointId,
        new_thread: &ThreadId,
        fork: Fork<S::Update>,
    ) -> Result<CheckpointId, GraphError> {
        let store = self.store()?;
        if store.latest(new_thread).await?.is_some() {
            return Err(GraphError::ThreadExists(new_thread.to_string()));
        }
        let (mut cursor, source) = self.load(thread, Some(checkpoint)).await?;
        if let Some(edit) = fork.edit {
            let mut writes = StepWrites::default();
            writes.set_writer("fork");
            Arc::make_mut(&mut cursor.state)
                .merge(edit, &mut writes)
                .map_err(|source| GraphError::Merge {
                    step: cursor.step,
                    source,
                })?;
        }
        let (next, interrupt) = match fork.next {
            Some(next) => {
                for node in &next {
                    if !self.topology.nodes.contains_key(node) {
                        return Err(GraphError::UnknownRoute {
                            from: "fork".into(),
                            target: node.clone(),
                        });
                    }
                }
                (next, None)
            }
            None => (source.meta.next.clone(), source.meta.interrupt.clone()),
        };
        let status = match (&interrupt, next.is_empty()) {
            (Some(_), _) if source.meta.status == RunStatus::Interrupted => RunStatus::Interrupted,
            (_, true) => RunStatus::Completed,
            (_, false) => RunStatus::Running,
        };
        cursor.thread = new_thread.clone();
        cursor.next = next;
        cursor.checkpoint = None;
        let save = Save {
            interrupt: interrupt.filter(|_| status == RunStatus::Interrupted),
            ..Save::status(status)
        };
        self.save(&mut cursor, save, Some((thread.clone(), checkpoint)))
            .await
    }

    /// Rebuilds the cursor at a checkpoint (the latest when `id` is `None`).
    pub(crate) async fn load(
        &self,
        thread: &ThreadId,
        id: Option<CheckpointId>,
    ) -> Result<(Cursor<S>, Checkpoint), GraphError> {
        let store = self.store()?;
        let target = match id {
            None => store
                .latest(thread)
                .await?
                .ok_or_else(|| GraphError::ThreadNotFound(thread.to_string()))?,
            Some(id) => {
                store
                    .get(thread, id)
                    .await?
                    .ok_or_else(|| GraphError::CheckpointNotFound {
                        thread: thread.to_string(),
                        checkpoint: id.to_string(),
                    })?
            }
        };
        let chain = store.replay_chain(thread, target.id).await?;
        let Some((base, rest)) = chain.split_first() else {
            return Err(
                CheckpointError::Corrupt(format!("no replay chain for {}", target.id)).into(),
            );
        };
        let snapshot = base.snapshot.as_ref().ok_or_else(|| {
            CheckpointError::Corrupt(format!("checkpoint {} has no snapshot", base.id))
        })?;
        let mut state: S = serde_json::from_slice(snapshot)?;
        let mut since_snapshot = 0;
        for checkpoint in rest {
            let updates: Vec<(String, S::Update)> = serde_json::from_slice(&checkpoint.writes)?;
            let mut writes = StepWrites::default();
            for (writer, update) in updates {
                writes.set_writer(writer);
                state
                    .merge(update, &mut writes)
                    .map_err(|e: MergeError| CheckpointError::Corrupt(e.to_string()))?;
            }
            since_snapshot += checkpoint.writes.len();
        }
        let cursor = Cursor {
            thread: thread.clone(),
            state: Arc::new(state),
            step: target.step,
            checkpoint: Some(target.id),
            counters: target.meta.counters.clone(),
            next: target.meta.next.clone(),
            snapshot_bytes: snapshot.len(),
            since_snapshot,
        };
        Ok((cursor, target))
    }

    /// Saves the cursor as a checkpoint (a snapshot when the writes since the last one add up
    /// to its size) and publishes the checkpoint event, then the ending event of the status
    /// (completed, interrupted, failed, cancelled) if it has one.
    pub(crate) async fn save(
        &self,
        cursor: &mut Cursor<S>,
        save: Save,
        forked_from: Option<(ThreadId, CheckpointId)>,
    ) -> Result<CheckpointId, GraphError> {
        let id = CheckpointId::new();
        let ending = match save.status {
            RunStatus::Running => None,
            RunStatus::Completed => Some(EventKind::RunCompleted),
            RunStatus::Cancelled => Some(EventKind::RunCancelled),
            RunStatus::Failed => Some(EventKind::RunFailed {
                error: save.error.clone().unwrap_or_default(),
            }),
            RunStatus::Interrupted => save.interrupt.clone().map(|i| EventKind::Interrupted {
                node: i.node,
                question: i.question,
            }),
        };
        if let Some(store) = &self.checkpointer {
            let interval = cursor.snapshot_bytes.max(MIN_SNAPSHOT_INTERVAL);
            let snapshot = if cursor.checkpoint.is_none()
                || cursor.since_snapshot + save.writes.len() >= interval
            {
                Some(serde_json::to_vec(&*cursor.state)?)
            } else {
                None
            };
            match &snapshot {
                Some(bytes) => {
                    cursor.snapshot_bytes = bytes.len();
                    cursor.since_snapshot = 0;
                }
                None => cursor.since_snapshot += save.writes.len(),
            }
            let checkpoint = Checkpoint {
                thread: cursor.thread.clone(),
                id,
                parent: cursor.checkpoint,
                step: cursor.step,
                snapshot,
                writes: save.writes,
                meta: CheckpointMeta {
                    status: save.status,
                    next: cursor.next.clone(),
                    counters: cursor.counters.clone(),
                    interrupt: save.interrupt,
                    answer: save.answer,
                    error: save.error,
                    // Reserves the seqs of the events published below, so a runner that
                    // continues this thread elsewhere never reuses them.
                    event_seq: self.hub.last_seq(&cursor.thread)
                        + save.finished.len() as u64
                        + 1
                        + u64::from(ending.is_some()),
                    forked_from,
                    created_at_ms: now_ms(),
                },
            };
            store.put(&checkpoint).await?;
            for finished in save.finished {
                self.hub.publish(&cursor.thread, finished);
            }
            self.hub.publish(
                &cursor.thread,
                EventKind::Checkpoint {
                    step: cursor.step,
                    id: id.to_string(),
                },
            );
        }
        if let Some(ending) = ending {
            self.hub.publish(&cursor.thread, ending);
        }
        cursor.checkpoint = Some(id);
        Ok(id)
    }
}

fn thread_state<S>(cursor: Cursor<S>, checkpoint: Checkpoint) -> ThreadState<S>
where
    S: Clone,
{
    ThreadState {
        state: Arc::unwrap_or_clone(cursor.state),
        checkpoint: checkpoint.id,
        step: checkpoint.step,
        status: checkpoint.meta.status,
        next: checkpoint.meta.next,
        counters: checkpoint.meta.counters,
        interrupt: checkpoint.meta.interrupt,
        error: checkpoint.meta.error,
    }
}
