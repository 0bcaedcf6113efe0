//! The superstep loop: plan the step's tasks from the scheduled nodes, run them
//! concurrently (with retries, timeouts and fan-out limits), merge their updates in a fixed
//! order, route, checkpoint. Nodes never see writes of their own step, so a replay takes the
//! same path.

use crate::checkpoint::{Checkpointer, Interrupt, PendingWrite, RunStatus};
use crate::compiled::{CompiledGraph, Cursor, RunConfig, RunOutcome, Save, push_unique};
use crate::error::{GraphError, NodeError};
use crate::event::{EventHub, EventKind};
use crate::node::{ItemFn, NodeContext, NodeFn, RetryPolicy};
use crate::state::{State, StepWrites};
use crate::topology::NodeBody;
use crate::{CheckpointId, Command, ThreadId};
use futures::FutureExt;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

enum Work<S: State> {
    Node(NodeFn<S>),
    Item(ItemFn<S>, Arc<Semaphore>),
}

/// One unit of work of a step: a node, or one item of a fan-out node.
struct Task<S: State> {
    node: Arc<str>,
    item: Option<usize>,
    work: Work<S>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
}

impl<S: State> Task<S> {
    fn key(&self) -> String {
        match self.item {
            Some(i) => format!("{}#{i}", self.node),
            None => self.node.to_string(),
        }
    }
}

/// Everything a task needs to run apart from the graph.
struct TaskEnv<S: State> {
    state: Arc<S>,
    thread: ThreadId,
    step: u64,
    hub: Arc<EventHub>,
    cancel: tokio_util::sync::CancellationToken,
    /// Where to keep finished outputs when the step has several tasks.
    pending: Option<(Arc<dyn Checkpointer>, CheckpointId)>,
    /// A lone task of a checkpointed step: its result is kept by the step's checkpoint, so
    /// its `NodeFinished` waits here until that is saved.
    deferred: Option<std::sync::Mutex<Vec<EventKind>>>,
}

type TaskResult<U> = Result<Command<U>, (NodeError, u32)>;

/// One finished task of a step: its node, its task key (node, or node#item) and its output.
struct Finished<U> {
    node: String,
    key: String,
    command: Command<U>,
}

enum StepEnd<U> {
    /// The finished tasks, and the events to publish once the step is checkpointed.
    Done(Vec<Finished<U>>, Vec<EventKind>),
    Failed {
        finished: Vec<Finished<U>>,
        failure: GraphError,
    },
    Cancelled,
}

impl<S: State> CompiledGraph<S> {
    /// Runs steps until the thread completes, asks, is cancelled or fails.
    pub(crate) async fn drive(
        &self,
        mut cursor: Cursor<S>,
        config: &RunConfig,
    ) -> Result<RunOutcome<S>, GraphError> {
        loop {
            if cursor.next.is_empty() {
                return Ok(RunOutcome::Completed(Arc::unwrap_or_clone(cursor.state)));
            }
            if config.cancel.is_cancelled() {
                return self.cancelled(cursor).await;
            }
            if cursor.step >= config.recursion_limit {
                let failure = GraphError::RecursionLimit {
                    limit: config.recursion_limit,
                };
                return self.fail(cursor, Vec::new(), failure).await;
            }
            let (outputs, announce) = match self.run_step(&cursor, config).await? {
                StepEnd::Done(outputs, announce) => (outputs, announce),
                StepEnd::Cancelled => return self.cancelled(cursor).await,
                StepEnd::Failed { finished, failure } => {
                    return self.fail(cursor, finished, failure).await;
                }
            };
            match self.apply(&mut cursor, outputs) {
                Ok((mut save, interrupt)) => {
                    save.finished = announce;
                    self.save(&mut cursor, save, None).await?;
                    if let Some(Interrupt { node, question }) = interrupt {
                        return Ok(RunOutcome::Interrupted {
                            node,
                            question,
                            state: Arc::unwrap_or_clone(cursor.state),
                        });
                    }
                }
                Err(failure) => {
                    // The cursor may be half-merged: the failure checkpoint must carry the
                    // last good state, which is what a continued run starts from.
                    if self.checkpointer.is_some() {
                        cursor = self.load(&cursor.thread, None).await?.0;
                    }
                    return self.fail(cursor, Vec::new(), failure).await;
                }
            }
        }
    }

    /// Plans and runs the tasks of the next step.
    async fn run_step(
        &self,
        cursor: &Cursor<S>,
        config: &RunConfig,
    ) -> Result<StepEnd<S::Update>, GraphError> {
        let mut tasks = Vec::new();
        // Fan-outs with no items finish at once, with no update: they still route on.
        let mut empty = Vec::new();
        for name in &cursor.next {
            let spec = self
                .topology
                .nodes
                .get(name)
                .ok_or_else(|| GraphError::UnknownRoute {
                    from: "checkpoint".into(),
                    target: name.clone(),
                })?;
            let node: Arc<str> = Arc::from(name.as_str());
            match &spec.body {
                NodeBody::Single(f) => tasks.push(Task {
                    node,
                    item: None,
                    work: Work::Node(Arc::clone(f)),
                    retry: spec.retry.clone(),
                    timeout: spec.timeout,
                }),
                NodeBody::FanOut { items, concurrency } => {
                    let limit = Arc::new(Semaphore::new(*concurrency));
                    let items = items(&cursor.state);
                    if items.is_empty() {
                        empty.push(Finished {
                            node: name.clone(),
                            key: name.clone(),
                            command: Command::none(),
                        });
                    }
                    for (i, item) in items.into_iter().enumerate() {
                        tasks.push(Task {
                            node: Arc::clone(&node),
                            item: Some(i),
                            work: Work::Item(item, Arc::clone(&limit)),
                            retry: spec.retry.clone(),
                            timeout: spec.timeout,
                        });
                    }
                }
            }
        }

        let several = tasks.len() > 1;
        let mut done: HashMap<String, Command<S::Update>> = HashMap::new();
        if several && let (Some(store), Some(after)) = (&self.checkpointer, cursor.checkpoint) {
            for write in store.pending_writes(&cursor.thread, after).await? {
                done.insert(write.task, serde_json::from_slice(&write.output)?);
            }
        }
        let env = Arc::new(TaskEnv {
            state: Arc::clone(&cursor.state),
            thread: cursor.thread.clone(),
            step: cursor.step + 1,
            hub: Arc::clone(&self.hub),
            cancel: config.cancel.clone(),
            pending: match (several, &self.checkpointer, cursor.checkpoint) {
                (true, Some(store), Some(after)) => Some((Arc::clone(store), after)),
                _ => None,
            },
            deferred: (!several && self.checkpointer.is_some())
                .then(|| std::sync::Mutex::new(Vec::new())),
        });

        let keys: Vec<String> = tasks.iter().map(Task::key).collect();
        let nodes: Vec<(String, Option<usize>)> =
            tasks.iter().map(|t| (t.node.to_string(), t.item)).collect();
        let to_run: Vec<(usize, Task<S>)> = tasks
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !done.contains_key(&keys[*i]))
            .collect();
        let results = {
            let execute = async {
                let mut results: Vec<(usize, TaskResult<S::Update>)> = Vec::new();
                if to_run.len() == 1 {
                    // One task runs inline: spawning would only add overhead.
                    for (i, task) in to_run {
                        results.push((i, run_task(task, Arc::clone(&env)).await));
                    }
                } else {
                    let mut set = JoinSet::new();
                    for (i, task) in to_run {
                        let env = Arc::clone(&env);
                        set.spawn(async move { (i, run_task(task, env).await) });
                    }
                    while let Some(joined) = set.join_next().await {
                        // Tasks catch their own panics; a join error means the runtime is
                        // shutting down, which is the same as a cancellation here.
                        match joined {
                            Ok(result) => results.push(result),
                            Err(_) => return None,
                        }
                    }
                }
                Some(results)
            };
            tokio::select! {
                results = execute => results,
                () = config.cancel.cancelled() => None,
            }
        };
        let Some(mut results) = results else {
            return Ok(StepEnd::Cancelled);
        };
        results.sort_by_key(|(i, _)| *i);

        let mut failure = None;
        for (i, result) in results {
            match result {
                Ok(command) => {
                    done.insert(keys[i].clone(), command);
                }
                Err((error, attempts)) if failure.is_none() => {
                    if error.kind == crate::NodeErrorKind::Cancelled && config.cancel.is_cancelled()
                    {
                        return Ok(StepEnd::Cancelled);
                    }
                    let (node, item) = nodes[i].clone();
                    failure = Some(GraphError::NodeFailed {
                        node,
                        item,
                        attempts,
                        source: error,
                    });
                }
                Err(_) => {}
            }
        }
        let ordered = keys
            .into_iter()
            .zip(nodes)
            .filter_map(|(key, (node, _))| {
                done.remove(&key)
                    .map(|command| Finished { node, key, command })
            })
            .chain(empty)
            .collect();
        Ok(match failure {
            None => StepEnd::Done(
                ordered,
                env.deferred
                    .as_ref()
                    .map(|d| std::mem::take(&mut *d.lock().unwrap_or_else(|e| e.into_inner())))
                    .unwrap_or_default(),
            ),
            Some(failure) => StepEnd::Failed {
                finished: ordered,
                failure,
            },
        })
    }

    /// Merges a finished step into the cursor and routes; returns what to save.
    fn apply(
        &self,
        cursor: &mut Cursor<S>,
        outputs: Vec<Finished<S::Update>>,
    ) -> Result<(Save, Option<Interrupt>), GraphError> {
        cursor.step += 1;
        let step = cursor.step;
        let mut interrupts = Vec::new();
        let mut updates = Vec::new();
        let mut routes: Vec<(String, Vec<String>)> = Vec::new();
        for Finished { node, key, command } in outputs {
            if let Some(question) = command.interrupt {
                interrupts.push(Interrupt {
                    node: node.clone(),
                    question,
                });
            }
            for counter in &command.increments {
                cursor.counters.increment(counter);
            }
            if let Some(update) = command.update {
                updates.push((key, update));
            }
            if !routes.iter().any(|(n, _)| *n == node) {
                routes.push((node, command.goto));
            }
        }
        for (node, _) in &routes {
            cursor.counters.visit(node);
        }
        let interrupt = match interrupts.len() {
            0 => None,
            1 => interrupts.pop(),
            _ => {
                return Err(GraphError::MultipleInterrupts(
                    interrupts.into_iter().map(|i| i.node).collect(),
                ));
            }
        };
        if let Some(asked) = &interrupt
            && self
                .topology
                .nodes
                .get(&asked.node)
                .is_none_or(|n| n.on_answer.is_none())
        {
            return Err(GraphError::NoAnswerHandler(asked.node.clone()));
        }

        let writes = if self.checkpointer.is_some() {
            serde_json::to_vec(&updates)?
        } else {
            Vec::new()
        };
        let state = Arc::make_mut(&mut cursor.state);
        let mut step_writes = StepWrites::default();
        for (writer, update) in updates {
            step_writes.set_writer(writer);
            state
                .merge(update, &mut step_writes)
                .map_err(|source| GraphError::Merge { step, source })?;
        }

        let mut next = Vec::new();
        for (node, goto) in routes {
            if interrupt.as_ref().is_some_and(|i| i.node == node) {
                continue;
            }
            if goto.is_empty() {
                self.topology
                    .route(&node, &cursor.state, &cursor.counters, &mut next)?;
                continue;
            }
            let allowed = &self.topology.nodes[&node].goto_targets;
            for target in goto {
                if !allowed.contains(&target) {
                    return Err(GraphError::UnknownRoute { from: node, target });
                }
                push_unique(&mut next, &target);
            }
        }
        cursor.next = next;
        let status = match (&interrupt, cursor.next.is_empty()) {
            (Some(_), _) => RunStatus::Interrupted,
            (None, true) => RunStatus::Completed,
            (None, false) => RunStatus::Running,
        };
        Ok((
            Save {
                writes,
                interrupt: interrupt.clone(),
                ..Save::status(status)
            },
            interrupt,
        ))
    }

    async fn cancelled(&self, mut cursor: Cursor<S>) -> Result<RunOutcome<S>, GraphError> {
        cursor.step += 1;
        self.save(&mut cursor, Save::status(RunStatus::Cancelled), None)
            .await?;
        Ok(RunOutcome::Cancelled(Arc::unwrap_or_clone(cursor.state)))
    }

    /// Records a failure checkpoint (same state, same next step) and keeps the step's
    /// finished tasks as pending writes of it, so continuing does not redo them.
    async fn fail(
        &self,
        mut cursor: Cursor<S>,
        finished: Vec<Finished<S::Update>>,
        failure: GraphError,
    ) -> Result<RunOutcome<S>, GraphError> {
        cursor.step += 1;
        let save = Save {
            error: Some(failure.to_string()),
            ..Save::status(RunStatus::Failed)
        };
        let id = self.save(&mut cursor, save, None).await?;
        if let Some(store) = &self.checkpointer {
            for Finished { key, command, .. } in finished {
                let write = PendingWrite {
                    task: key,
                    output: serde_json::to_vec(&command)?,
                };
                store.put_write(&cursor.thread, id, &write).await?;
            }
        }
        Err(failure)
    }
}

/// Runs one task's attempts: timeout per attempt, backoff between them, panics caught.
async fn run_task<S: State>(task: Task<S>, env: Arc<TaskEnv<S>>) -> TaskResult<S::Update> {
    let _permit = match &task.work {
        Work::Item(_, limit) => Some(
            Arc::clone(limit)
                .acquire_owned()
                .await
                .map_err(|_| (NodeError::cancelled(), 0))?,
        ),
        Work::Node(_) => None,
    };
    let mut hasher = DefaultHasher::new();
    (env.thread.as_str(), &*task.node, task.item, env.step).hash(&mut hasher);
    let seed = hasher.finish();
    let mut attempt = 1;
    loop {
        let ctx = NodeContext {
            thread: env.thread.clone(),
            node: Arc::clone(&task.node),
            item: task.item,
            attempt,
            step: env.step,
            hub: Arc::clone(&env.hub),
            cancel: env.cancel.clone(),
        };
        env.hub.publish(
            &env.thread,
            EventKind::NodeStarted {
                node: task.node.to_string(),
                item: task.item,
                attempt,
            },
        );
        let started = Instant::now();
        let future = match &task.work {
            Work::Node(f) => f(Arc::clone(&env.state), ctx),
            Work::Item(f, _) => {
                let item = f(ctx);
                Box::pin(async move { item.await.map(Command::update) })
            }
        };
        let guarded = AssertUnwindSafe(future).catch_unwind().map(|r| {
            r.unwrap_or_else(|panic| {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(NodeError::permanent(format!("node panicked: {text}")))
            })
        });
        let result = match task.timeout {
            Some(limit) => tokio::time::timeout(limit, guarded)
                .await
                .unwrap_or_else(|_| Err(NodeError::timeout(limit))),
            None => guarded.await,
        };
        match result {
            Ok(command) => {
                let finished = EventKind::NodeFinished {
                    node: task.node.to_string(),
                    item: task.item,
                    duration_ms: started.elapsed().as_millis() as u64,
                };
                // Kept before it is announced: whoever sees a task finish can rely on it
                // never running again, whatever happens to this process next.
                if let Some(deferred) = &env.deferred {
                    deferred
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(finished);
                    return Ok(command);
                }
                if let Some((store, after)) = &env.pending {
                    let write = PendingWrite {
                        task: task.key(),
                        output: serde_json::to_vec(&command)
                            .map_err(|e| (NodeError::permanent(e), attempt))?,
                    };
                    // Losing a pending write only costs a re-run after a crash.
                    if let Err(error) = store.put_write(&env.thread, *after, &write).await {
                        tracing::warn!(%error, task = %write.task, "could not keep a finished task");
                    }
                }
                env.hub.publish(&env.thread, finished);
                return Ok(command);
            }
            Err(error) if task.retry.should_retry(attempt, &error) => {
                let backoff = task.retry.delay(attempt, seed);
                env.hub.publish(
                    &env.thread,
                    EventKind::NodeRetrying {
                        node: task.node.to_string(),
                        item: task.item,
                        attempt,
                        error: error.message.clone(),
                        backoff_ms: backoff.as_millis() as u64,
                    },
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = env.cancel.cancelled() => return Err((NodeError::cancelled(), attempt)),
                }
                attempt += 1;
            }
            Err(error) => {
                env.hub.publish(
                    &env.thread,
                    EventKind::NodeFailed {
                        node: task.node.to_string(),
                        item: task.item,
                        error: error.message.clone(),
                    },
                );
                return Err((error, attempt));
            }
        }
    }
}
