//! The run worker of `montage serve`: a queue in the database and a bounded number of runs
//! executing at once, each persisting its checkpoints and events as it goes.
//!
//! A worker claims the next queued run and looks at its graph thread to know what to do:
//! no thread yet → start it from the stored input; an answer waiting → resume with it; a
//! thread that stopped mid-way (the server died) → continue from its last checkpoint, so
//! no finished node runs again. A run that asks a question frees its slot and waits in the
//! database, across restarts, until someone answers.

use crate::app::{App, keep_lineage};
use crate::config::FeedbackPolicy;
use crate::metrics::Metrics;
use crate::pipeline::{FeedbackAnswer, Pipeline, RunState};
use crate::store::{ClaimedRun, NewRun, RunStatus, StoreError, StoredRun};
use montage_graph::{
    Event, EventKind, Fork, GraphError, RunConfig, RunOutcome, RunStatus as ThreadStatus, ThreadId,
    ThreadState,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

/// How long a worker waits for a run's last events to reach the database before it records
/// the run's new status.
const EVENT_FLUSH_LIMIT: Duration = Duration::from_secs(10);
/// How long a request waits for a worker to record that its run stopped to ask.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Why a request about a run cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// No run has that id.
    #[error("no run {0}")]
    NotFound(String),
    /// No upload of the person's has that id.
    #[error("there is no upload {0:?} of yours")]
    NoUpload(String),
    /// The run is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (an answer that does not answer the question, …).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The graph's store failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The person (or the server) is at a limit.
    #[error(transparent)]
    Quota(#[from] crate::quota::QuotaError),
    /// Deleting what a run left failed.
    #[error("deleting: {0}")]
    Retention(String),
}

/// Whether `thread` stands at a question nobody has answered yet: `run` holds its answer to
/// an earlier question while it executes with it, and may meanwhile stop at a new one.
pub fn asks_now(run: &StoredRun, thread: &ThreadState<RunState>) -> bool {
    thread.status == ThreadStatus::Interrupted && !run.answered_at(&thread.checkpoint.to_string())
}

/// Where `run` stands now: its stored status, or what its `thread` already knows in the
/// moment before the worker records it — finished, or stopped to ask (but a question already
/// answered is not asked again while the worker takes the answer up).
pub fn status_now(run: &StoredRun, thread: &ThreadState<RunState>) -> RunStatus {
    match (run.status, thread.status) {
        (RunStatus::Running, ThreadStatus::Completed) if !run.answered => RunStatus::Completed,
        (RunStatus::Running, ThreadStatus::Interrupted) if asks_now(run, thread) => {
            RunStatus::Waiting
        }
        (status, _) => status,
    }
}

/// What a revision changes; at least one of them.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Words added to the prompt ("slower cuts, warmer colours").
    pub instruction: Option<String>,
    /// New formats.
    pub formats: Option<Vec<montage_models::Format>>,
    /// A new length, seconds.
    pub duration: Option<f64>,
    /// New music.
    pub audio: Option<crate::pipeline::state::Upload>,
    /// Parts of the intent chosen outright (category, mood, pace, style).
    pub overrides: crate::pipeline::IntentOverrides,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.instruction
            .as_deref()
            .is_none_or(|i| i.trim().is_empty())
            && self.formats.is_none()
            && self.duration.is_none()
            && self.audio.is_none()
            && self.overrides.is_empty()
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The run had not started, or was waiting: it is cancelled now.
    Now,
    /// The run is executing: it stops at its next safe point.
    Requested,
}

/// Each run's stored events, for live listeners: an event is sent here only once it is in
/// the database, so what a client has seen survives any crash with the same seq.
#[derive(Default)]
struct Broadcasts {
    runs: Mutex<HashMap<String, broadcast::Sender<Event>>>,
}

/// Events a slow listener may fall behind by before it catches up from the database.
const BROADCAST_CAPACITY: usize = 256;

impl Broadcasts {
    fn subscribe(&self, run: &str) -> broadcast::Receiver<Event> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.entry(run.to_owned())
            .or_insert_with(|| broadcast::channel(BROADCAST_CAPACITY).0)
            .subscribe()
    }

    fn send(&self, event: &Event) {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = runs.get(event.thread.as_str()) {
            let _ = sender.send(event.clone());
        }
    }

    /// The run has ended: its listeners get what was sent, then the end of the stream.
    fn close(&self, run: &str) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run);
    }
}

struct Shared {
    broadcasts: Broadcasts,
    app: App,
    metrics: Arc<Metrics>,
    slots: usize,
    active: AtomicUsize,
    wake: Notify,
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

/// The queue and its workers. Cheap to clone.
#[derive(Clone)]
pub struct Workers {
    shared: Arc<Shared>,
}

impl Workers {
    /// Puts runs a previous server left running back in the queue and starts dispatching,
    /// `app.config.server.runs_at_once` runs at a time.
    pub async fn start(app: App, metrics: Arc<Metrics>) -> Result<Workers, StoreError> {
        let resumed = app.database.requeue_running().await?;
        if resumed > 0 {
            tracing::info!(
                runs = resumed,
                "resuming runs a previous server left running"
            );
        }
        // Before any run can be writing one.
        match crate::retention::clean_leftovers(&app) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed what a previous server left half-made"),
            Err(error) => tracing::warn!(%error, "could not remove what a previous server left"),
        }
        let slots = app.config.server.runs_at_once.max(1);
        let workers = Workers {
            shared: Arc::new(Shared {
                broadcasts: Broadcasts::default(),
                app,
                metrics,
                slots,
                active: AtomicUsize::new(0),
                wake: Notify::new(),
                tokens: Mutex::new(HashMap::new()),
            }),
        };
        tokio::spawn(dispatch(Arc::clone(&workers.shared)));
        tokio::spawn(keep_tidy(Arc::clone(&workers.shared)));
        Ok(workers)
    }

    /// The services the runs use.
    pub fn app(&self) -> &App {
        &self.shared.app
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Queues a new run of `owner` starting from `state`; returns it as stored.
    pub async fn submit(&self, owner: &str, mut state: RunState) -> Result<StoredRun, WorkerError> {
        state.owner = Some(owner.to_owned());
        let id = ThreadId::random();
        let input = serde_json::to_value(&state)
            .map_err(|e| WorkerError::Invalid(format!("the run cannot be stored: {e}")))?;
        let run = NewRun {
            id: id.to_string(),
            prompt: state.request.prompt.clone(),
            config: serde_json::to_value(&state.config).unwrap_or_default(),
            input: Some(input),
            parent: None,
            owner: Some(owner.to_owned()),
        };
        self.record_and_wake(run).await
    }

    async fn record_and_wake(&self, run: NewRun) -> Result<StoredRun, WorkerError> {
        let database = &self.shared.app.database;
        if let Some(owner) = &run.owner {
            crate::quota::check_new_run(database, &self.shared.app.config.server.limits, owner)
                .await?;
        }
        database.create_run(&run, RunStatus::Queued).await?;
        self.shared.wake.notify_one();
        database
            .run(&run.id)
            .await?
            .ok_or(WorkerError::NotFound(run.id))
    }

    /// `owner`'s run `id`; [`WorkerError::NotFound`] when it does not exist or is someone
    /// else's.
    pub async fn run(&self, owner: &str, id: &str) -> Result<StoredRun, WorkerError> {
        self.shared
            .app
            .database
            .run(id)
            .await?
            .filter(|run| run.owner.as_deref() == Some(owner))
            .ok_or_else(|| WorkerError::NotFound(id.to_owned()))
    }

    /// Which question `owner`'s run `id` has open, if any.
    pub async fn question_kind(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<QuestionKind>, WorkerError> {
        self.run(owner, id).await?;
        let thread = match self.thread(id).await {
            Ok(thread) => thread,
            Err(GraphError::ThreadNotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        Ok(thread.interrupt.map(
            |open| match open.question.get("kind").and_then(|k| k.as_str()) {
                Some("storyboard") => QuestionKind::Storyboard,
                _ => QuestionKind::Critic,
            },
        ))
    }

    /// `owner`'s upload `id` (of `kind`, `audio` or `image`, when given), as a run's input;
    /// [`WorkerError::Invalid`] when it does not exist, is someone else's or of another kind.
    pub async fn upload(
        &self,
        owner: &str,
        id: &str,
        kind: Option<&str>,
    ) -> Result<crate::pipeline::state::Upload, WorkerError> {
        let upload = self
            .shared
            .app
            .database
            .upload(id)
            .await?
            .filter(|u| u.owner == owner)
            .ok_or_else(|| WorkerError::NoUpload(id.to_owned()))?;
        if let Some(kind) = kind.filter(|k| *k != upload.kind) {
            return Err(WorkerError::Invalid(format!(
                "upload {id:?} is {} {}, not {kind}",
                if upload.kind == "image" { "an" } else { "" },
                upload.kind
            )));
        }
        Ok(crate::pipeline::state::Upload {
            name: upload.name,
            object: upload.object,
        })
    }

    /// Answers the question a waiting run asked. An answer that does not answer it is
    /// refused and nothing changes; a good one queues the run to go on.
    pub async fn answer(
        &self,
        owner: &str,
        id: &str,
        answer: serde_json::Value,
    ) -> Result<(), WorkerError> {
        let run = self.settled(owner, id).await?;
        if run.status != RunStatus::Waiting {
            return Err(WorkerError::Conflict(format!(
                "the run is {}, not waiting for an answer",
                run.status.as_str()
            )));
        }
        let thread = self.thread(id).await?;
        if thread.interrupt.is_none() {
            return Err(WorkerError::Conflict("the run has no open question".into()));
        }
        if let Ok(FeedbackAnswer::Cancel {}) = serde_json::from_value(answer.clone()) {
            return self.cancel(owner, id).await.map(|_| ());
        }
        Pipeline::check_answer(&thread.state, answer.clone()).map_err(WorkerError::Invalid)?;
        let asked_at = thread.checkpoint.to_string();
        if !self
            .shared
            .app
            .database
            .queue_answer(id, &answer, &asked_at)
            .await?
        {
            return Err(WorkerError::Conflict(
                "the run was answered or cancelled meanwhile".into(),
            ));
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Cancels a queued, waiting or executing run.
    pub async fn cancel(&self, owner: &str, id: &str) -> Result<Cancelled, WorkerError> {
        let database = &self.shared.app.database;
        let run = self.settled(owner, id).await?;
        match run.status {
            RunStatus::Queued | RunStatus::Waiting => {
                if !database
                    .move_run(id, run.status, RunStatus::Cancelled)
                    .await?
                {
                    // A worker took it meanwhile: stop it there.
                    return Box::pin(self.cancel(owner, id)).await;
                }
                let thread = ThreadId::new(id);
                settle_spending(&self.shared, id).await;
                announce(&self.shared, &thread, EventKind::RunCancelled).await?;
                self.shared.app.pipeline.graph().event_hub().forget(&thread);
                self.shared.broadcasts.close(id);
                Ok(Cancelled::Now)
            }
            RunStatus::Running => {
                token(&self.shared, id).cancel();
                Ok(Cancelled::Requested)
            }
            status => Err(WorkerError::Conflict(format!(
                "the run is already {}",
                status.as_str()
            ))),
        }
    }

    /// Deletes `owner`'s run `id` and every object only it used; refused while a version
    /// of its video is still being made.
    pub async fn delete(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<crate::retention::Swept, WorkerError> {
        use crate::retention::RetentionError;
        self.run(owner, id).await?;
        let mut outcome = crate::retention::delete_run(&self.shared.app, id).await;
        // A run whose graph has finished is recorded as such a moment later (its lineage
        // first): a deletion that comes in between waits for that rather than refusing.
        for _ in 0..100 {
            if !matches!(outcome, Err(RetentionError::Busy(_))) || !self.finishing(id).await? {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            outcome = crate::retention::delete_run(&self.shared.app, id).await;
        }
        outcome.map_err(|error| match error {
            RetentionError::NotFound(id) => WorkerError::NotFound(id),
            RetentionError::Busy(message) => WorkerError::Conflict(message),
            RetentionError::Store(error) => WorkerError::Store(error),
            RetentionError::Graph(error) => WorkerError::Graph(error),
            other => WorkerError::Retention(other.to_string()),
        })
    }

    /// Whether a version of `id`'s video is recorded as running though its graph has
    /// finished (the worker is recording its end).
    async fn finishing(&self, id: &str) -> Result<bool, WorkerError> {
        for run in self.shared.app.database.run_versions(id).await? {
            if run.status == RunStatus::Running && self.status(&run).await == RunStatus::Completed {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Where `run` stands as clients see it in its view ([`status_now`]): finished or asking
    /// as soon as its graph is, a moment before the worker records it.
    pub async fn status(&self, run: &StoredRun) -> RunStatus {
        match self.thread(&run.id).await {
            Ok(thread) => status_now(run, &thread),
            Err(_) => run.status,
        }
    }

    /// Makes a new version of a finished (or waiting, failed, cancelled) run with
    /// `changes`: its latest checkpoint is forked with the changed request and runs again
    /// from the intent. What did not change comes from the generation and segment caches.
    pub async fn revise(
        &self,
        owner: &str,
        id: &str,
        changes: Changes,
    ) -> Result<StoredRun, WorkerError> {
        if changes.is_empty() {
            return Err(WorkerError::Invalid(
                "say what to change: an instruction, formats, a duration or music".into(),
            ));
        }
        let (run, latest) = self.stopped(owner, id).await?;
        let mut request = latest.state.request.clone();
        if let Some(instruction) = changes.instruction.as_deref().map(str::trim) {
            request.prompt = format!("{}. {instruction}", request.prompt.trim_end_matches('.'));
        }
        if let Some(formats) = changes.formats {
            request.formats = Some(formats);
        }
        request.overrides = request.overrides.merged(&changes.overrides);
        if changes.duration.is_some() {
            request.duration = changes.duration;
        }
        if changes.audio.is_some() {
            request.audio = changes.audio;
        }
        request.prompt = crate::pipeline::request::check_prompt(&request.prompt, request.duration)
            .map_err(|e| WorkerError::Invalid(e.to_string()))?;
        let edit = crate::pipeline::state::Update {
            revision: Some(request),
            ..Default::default()
        };
        self.fork(run, latest, edit, "intent").await
    }

    /// Makes a new version of a stopped run in which only `scenes` (0-based) are made
    /// again, with `instruction` added to their prompts; every other scene, and every
    /// segment of the video that does not show them, is reused.
    pub async fn regenerate(
        &self,
        owner: &str,
        id: &str,
        scenes: &[usize],
        instruction: &str,
    ) -> Result<StoredRun, WorkerError> {
        let (run, latest) = self.stopped(owner, id).await?;
        let planned = latest.state.plan.as_ref().map_or(0, |p| p.scenes.len());
        let generated = |k: &usize| {
            latest.state.plan.as_ref().is_some_and(|p| {
                p.scenes
                    .get(*k)
                    .is_some_and(|s| s.source == crate::pipeline::state::SceneSource::Generated)
            })
        };
        if scenes.is_empty() {
            return Err(WorkerError::Invalid(
                "say which scenes to make again".into(),
            ));
        }
        if let Some(k) = scenes.iter().find(|k| !generated(k)) {
            return Err(WorkerError::Invalid(if *k >= planned {
                format!("there is no scene {} (the video has {planned})", k + 1)
            } else {
                format!("scene {} is your own picture: it is not generated", k + 1)
            }));
        }
        let mut edit = crate::pipeline::state::Update {
            revision: Some(latest.state.request.clone()),
            pending: Some(scenes.to_vec()),
            new_takes: scenes.to_vec(),
            ..Default::default()
        };
        let instruction = instruction.trim();
        if !instruction.is_empty() {
            edit.instructions = scenes
                .iter()
                .map(|k| (*k, vec![instruction.to_owned()]))
                .collect();
        }
        self.fork(run, latest, edit, "prompts").await
    }

    /// `owner`'s run `id` and its latest state, when it has stopped (revisions start from a
    /// run at rest).
    async fn stopped(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<(StoredRun, montage_graph::ThreadState<RunState>), WorkerError> {
        let run = self.run(owner, id).await?;
        let busy = |status: RunStatus| {
            WorkerError::Conflict(format!(
                "the run is {}: change it when it stops",
                status.as_str()
            ))
        };
        if run.status == RunStatus::Queued {
            return Err(busy(run.status));
        }
        let latest = match self.thread(id).await {
            Ok(latest) => latest,
            Err(GraphError::ThreadNotFound(_)) => {
                return Err(WorkerError::Conflict(
                    "the run never started: there is nothing to change".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        // As clients see it in the run's view.
        let status = status_now(&run, &latest);
        if status == RunStatus::Running {
            return Err(busy(status));
        }
        Ok((run, latest))
    }

    /// Forks `latest` with `edit` into a new version of `run` that goes on at `next`.
    async fn fork(
        &self,
        run: StoredRun,
        latest: montage_graph::ThreadState<RunState>,
        edit: crate::pipeline::state::Update,
        next: &str,
    ) -> Result<StoredRun, WorkerError> {
        let new_thread = ThreadId::random();
        let prompt = edit
            .revision
            .as_ref()
            .map_or_else(|| run.prompt.clone(), |r| r.prompt.clone());
        self.shared
            .app
            .pipeline
            .graph()
            .fork(
                &ThreadId::new(&run.id),
                latest.checkpoint,
                &new_thread,
                Fork {
                    edit: Some(edit),
                    next: Some(vec![next.to_owned()]),
                },
            )
            .await?;
        self.record_and_wake(NewRun {
            id: new_thread.to_string(),
            prompt,
            config: run.config,
            input: None,
            parent: Some(run.id),
            owner: run.owner,
        })
        .await
    }

    /// The latest state of run `id`'s graph thread (ownership is the caller's to check).
    pub async fn thread(
        &self,
        id: &str,
    ) -> Result<montage_graph::ThreadState<RunState>, GraphError> {
        self.shared
            .app
            .pipeline
            .graph()
            .state(&ThreadId::new(id))
            .await
    }

    /// Live events of run `id`, each sent once it is stored. Subscribe before reading the
    /// stored events, then skip what was already read. The stream ends when the run does.
    pub fn listen(&self, id: &str) -> broadcast::Receiver<Event> {
        self.shared.broadcasts.subscribe(id)
    }

    /// Waits (briefly) while a worker is still recording where a run stopped: a client may
    /// act on a question the moment it is announced, before the run is marked waiting.
    async fn settled(&self, owner: &str, id: &str) -> Result<StoredRun, WorkerError> {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            let run = self.run(owner, id).await?;
            let asking = || async { self.thread(id).await.is_ok_and(|t| asks_now(&run, &t)) };
            if run.status != RunStatus::Running
                || tokio::time::Instant::now() >= deadline
                || !asking().await
            {
                return Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs executing now.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }
}

/// Publishes an event the graph did not emit (a cancel outside a running graph), after the
/// run's stored events, and keeps it.
async fn announce(shared: &Shared, thread: &ThreadId, kind: EventKind) -> Result<(), StoreError> {
    let database = &shared.app.database;
    let hub = shared.app.pipeline.graph().event_hub();
    hub.advance_to(thread, database.last_event_seq(thread.as_str()).await?);
    let mut stream = hub.subscribe(thread, hub.last_seq(thread) + 1);
    hub.publish(thread, kind);
    if let Some(event) = stream.next().await {
        database.append_event(&event).await?;
        shared.broadcasts.send(&event);
    }
    Ok(())
}

/// The cancel token of run `id`, made on first use so a cancel that comes before the
/// worker starts is not lost.
fn token(shared: &Shared, id: &str) -> CancellationToken {
    shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id.to_owned())
        .or_default()
        .clone()
}

/// How often retention runs while the server is up.
const SWEEP_EVERY: Duration = Duration::from_secs(3_600);

/// Retention now and every [`SWEEP_EVERY`].
async fn keep_tidy(shared: Arc<Shared>) {
    loop {
        match crate::retention::sweep(&shared.app).await {
            Ok(swept) => tracing::info!(?swept, "retention"),
            Err(error) => tracing::warn!(%error, "retention stopped; it runs again later"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// Hands queued runs to workers while slots are free; wakes on submissions, answers,
/// finished runs, and every few seconds (another process may have queued work).
async fn dispatch(shared: Arc<Shared>) {
    loop {
        while shared.active.load(Ordering::SeqCst) < shared.slots {
            match shared.app.database.claim_next_run().await {
                Ok(Some(run)) => {
                    shared.active.fetch_add(1, Ordering::SeqCst);
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let id = run.id.clone();
                        execute(&shared, run).await;
                        shared
                            .tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                        shared.active.fetch_sub(1, Ordering::SeqCst);
                        shared.wake.notify_one();
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "cannot take runs from the queue");
                    break;
                }
            }
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Where a run's event keeper has got to: the last seq it stored, and whether that event
/// ended the run's stretch of work.
type Kept = (u64, bool);

/// Stores a run's events as they come, records the objects they announce, and times nodes.
fn keep_events(
    shared: &Arc<Shared>,
    thread: &ThreadId,
    from_seq: u64,
) -> (watch::Receiver<Kept>, tokio::task::JoinHandle<()>) {
    let (kept, receiver) = watch::channel((from_seq.saturating_sub(1), false));
    let mut events = shared.app.pipeline.graph().subscribe(thread, from_seq);
    let shared = Arc::clone(shared);
    let run = thread.to_string();
    let keeper = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match shared.app.database.append_event(&event).await {
                Ok(()) => shared.broadcasts.send(&event),
                Err(error) => {
                    tracing::warn!(%error, run, seq = event.seq, "could not keep an event")
                }
            }
            match &event.kind {
                EventKind::NodeFinished {
                    node, duration_ms, ..
                } => shared
                    .metrics
                    .node_finished(node, *duration_ms as f64 / 1000.0),
                EventKind::Custom { name, payload, .. } => {
                    record_announced(&shared, &run, name, payload).await;
                }
                _ => {}
            }
            // Runs on past a question answered by policy; the worker stops it when done.
            kept.send_replace((event.seq, event.kind.is_terminal()));
        }
    });
    (receiver, keeper)
}

/// Records the objects a node announces as soon as they exist, so they can be downloaded
/// while the run goes on.
async fn record_announced(shared: &Shared, run: &str, name: &str, payload: &serde_json::Value) {
    use crate::objects::ObjectRef;
    use crate::store::AssetRow;
    let object = |value: Option<&serde_json::Value>| {
        value.and_then(|v| serde_json::from_value::<ObjectRef>(v.clone()).ok())
    };
    let small = |key: &str| {
        payload
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let mut rows = Vec::new();
    match name {
        "asset.ready" => {
            for (key, kind) in [("object", "scene"), ("clip", "clip")] {
                rows.extend(object(payload.get(key)).map(|object| AssetRow {
                    object,
                    kind: kind.into(),
                    scene: small("scene"),
                    round: small("round"),
                }));
            }
        }
        "preview.ready" => rows.extend(object(payload.get("object")).map(|object| AssetRow {
            object,
            kind: "preview".into(),
            scene: None,
            round: None,
        })),
        "music.ready" => rows.extend(object(payload.get("object")).map(|object| AssetRow {
            object,
            kind: "music".into(),
            scene: None,
            round: None,
        })),
        "final.ready" => {
            let outputs = payload.get("outputs");
            let field = |key: &str| outputs.and_then(|o| o.get(key));
            let videos = field("videos").and_then(serde_json::Value::as_array);
            for video in videos.into_iter().flatten() {
                rows.extend(object(video.get("object")).map(|object| AssetRow {
                    object,
                    kind: "video".into(),
                    scene: None,
                    round: None,
                }));
            }
            for captions in ["srt", "vtt"] {
                rows.extend(object(field(captions)).map(|object| AssetRow {
                    object,
                    kind: "captions".into(),
                    scene: None,
                    round: None,
                }));
            }
        }
        "storyboard.ready" => {
            let sketches = payload
                .get("sketches")
                .and_then(serde_json::Value::as_array);
            for sketch in sketches.into_iter().flatten() {
                rows.extend(object(sketch.get("object")).map(|object| {
                    AssetRow {
                        object,
                        kind: "sketch".into(),
                        scene: sketch
                            .get("scene")
                            .and_then(serde_json::Value::as_u64)
                            .and_then(|v| u32::try_from(v).ok()),
                        round: small("round"),
                    }
                }));
            }
        }
        "critic.report" => {
            rows.extend(object(payload.get("contact_sheet")).map(|object| AssetRow {
                object,
                kind: "contact_sheet".into(),
                scene: None,
                round: small("round"),
            }))
        }
        _ => {}
    }
    for row in rows {
        if let Err(error) = shared.app.database.record_asset(run, &row).await {
            tracing::warn!(%error, run, "could not record an object");
        }
    }
}

/// Records what run `id` spent in the end (its last checkpoint's ledger) in place of the
/// estimate it held against its owner's monthly budget. A completed run's lineage does it.
async fn settle_spending(shared: &Shared, id: &str) {
    let spent = match shared.app.pipeline.graph().state(&ThreadId::new(id)).await {
        Ok(thread) => thread.state.cost.iter().map(|c| c.usd).sum(),
        Err(GraphError::ThreadNotFound(_)) => 0.0,
        Err(error) => {
            tracing::warn!(%error, run = id, "cannot read what the run spent");
            return;
        }
    };
    if let Err(error) = shared.app.database.commit_spending(id, spent).await {
        tracing::warn!(%error, run = id, "cannot record what the run spent");
    }
}

/// The questions a run asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionKind {
    /// The critic's, about the finished scenes.
    Critic,
    /// The storyboard's, before any picture is made.
    Storyboard,
}

/// Executes one claimed run until it completes, asks, is cancelled or fails, and records
/// where it stopped.
async fn execute(shared: &Arc<Shared>, claimed: ClaimedRun) {
    let id = claimed.id.clone();
    let thread = ThreadId::new(&claimed.id);
    let database = &shared.app.database;
    let graph = shared.app.pipeline.graph();
    // Seqs go on after what is stored: a killed server may have kept events past its
    // last checkpoint.
    let stored = match database.last_event_seq(&id).await {
        Ok(seq) => seq,
        Err(error) => {
            tracing::error!(%error, run = id, "cannot read the run's events; it stays queued");
            let _ = database
                .move_run(&id, RunStatus::Running, RunStatus::Queued)
                .await;
            return;
        }
    };
    graph.event_hub().advance_to(&thread, stored);
    let (kept, keeper) = keep_events(shared, &thread, stored + 1);
    let config = || RunConfig::default().cancel_token(token(shared, &id));
    let existing = graph.state(&thread).await;
    // The answer is taken in the same checkpoint that moves the thread past its question:
    // a thread no longer at that question took it before the server died.
    let still_asked = existing.as_ref().is_ok_and(|t| {
        t.status == ThreadStatus::Interrupted && claimed.answers(&t.checkpoint.to_string())
    });
    let answer = claimed.answer.filter(|_| still_asked);
    let mut outcome = match (answer, existing) {
        (Some(answer), _) => shared.app.pipeline.answer(&thread, answer, config()).await,
        (None, Ok(existing)) if existing.status == ThreadStatus::Interrupted => {
            Err(GraphError::AwaitingAnswer(id.clone()))
        }
        (None, Ok(_)) => graph.continue_thread(&thread, config()).await,
        (None, Err(GraphError::ThreadNotFound(_))) => {
            match claimed.input.map(serde_json::from_value::<RunState>) {
                Some(Ok(state)) => shared.app.pipeline.start(&thread, state, config()).await,
                Some(Err(error)) => Err(GraphError::Serde(error)),
                None => Err(GraphError::ThreadNotFound(id.clone())),
            }
        }
        (None, Err(error)) => Err(error),
    };
    // Runs that take the critic's fixes without asking answer their own questions.
    while let Ok(RunOutcome::Interrupted { state, .. }) = &outcome {
        if state.config.pipeline.feedback != FeedbackPolicy::Accept {
            break;
        }
        let accept = serde_json::to_value(FeedbackAnswer::Accept {}).unwrap_or_default();
        outcome = shared.app.pipeline.answer(&thread, accept, config()).await;
    }
    let (status, error) = match &outcome {
        Ok(RunOutcome::Completed(state)) => match keep_lineage(database, &id, state).await {
            Ok(()) => (RunStatus::Completed, None),
            Err(error) => (RunStatus::Failed, Some(error.to_string())),
        },
        Ok(RunOutcome::Interrupted { .. }) => (RunStatus::Waiting, None),
        Ok(RunOutcome::Cancelled(_)) => (RunStatus::Cancelled, None),
        Err(GraphError::AwaitingAnswer(_)) => (RunStatus::Waiting, None),
        Err(GraphError::InvalidAnswer(reason)) => {
            tracing::warn!(
                run = id,
                reason,
                "a queued answer no longer fits; the run waits"
            );
            (RunStatus::Waiting, None)
        }
        Err(error) => (RunStatus::Failed, Some(error.to_string())),
    };
    flush_events(shared, &thread, kept, status).await;
    keeper.abort();
    // A cancel that came as the run stopped to ask still cancels it.
    let status = if status == RunStatus::Waiting && token(shared, &id).is_cancelled() {
        if let Err(error) = announce(shared, &thread, EventKind::RunCancelled).await {
            tracing::warn!(%error, run = id, "could not announce the cancel");
        }
        RunStatus::Cancelled
    } else {
        status
    };
    if let Some(error) = &error {
        tracing::error!(run = id, error, "the run failed");
    }
    if matches!(status, RunStatus::Cancelled | RunStatus::Failed) {
        settle_spending(shared, &id).await;
    }
    if let Err(store_error) = database.set_run_status(&id, status, error.as_deref()).await {
        tracing::error!(%store_error, run = id, "cannot record the run's status");
    }
    if status.has_ended() {
        graph.event_hub().forget(&thread);
        shared.broadcasts.close(&id);
    }
}

/// Waits until the run's events up to the last published are stored. A stop the stored
/// events do not announce gets its event here: a failure before the graph ran, or a run
/// that reached its end (or its question) in a server killed before announcing it, so that
/// clients following the run learn where it stands.
async fn flush_events(
    shared: &Shared,
    thread: &ThreadId,
    mut kept: watch::Receiver<Kept>,
    status: RunStatus,
) {
    let hub = shared.app.pipeline.graph().event_hub();
    let published = hub.last_seq(thread);
    let _ = tokio::time::timeout(
        EVENT_FLUSH_LIMIT,
        kept.wait_for(|(seq, _)| *seq >= published),
    )
    .await;
    let database = &shared.app.database;
    let last_stored = match database.last_event_seq(thread.as_str()).await {
        Ok(0) => None,
        Ok(seq) => database
            .events_since(thread.as_str(), seq - 1)
            .await
            .ok()
            .and_then(|events| events.into_iter().next()),
        Err(error) => {
            tracing::warn!(%error, run = %thread, "cannot read the run's last event");
            return;
        }
    };
    if last_stored.is_some_and(|event| event.kind.is_terminal()) {
        return;
    }
    let ending = match status {
        RunStatus::Completed => Some(EventKind::RunCompleted),
        RunStatus::Cancelled => Some(EventKind::RunCancelled),
        RunStatus::Failed => Some(EventKind::RunFailed {
            error: "the run could not start".into(),
        }),
        RunStatus::Waiting => shared
            .app
            .pipeline
            .graph()
            .state(thread)
            .await
            .ok()
            .and_then(|t| t.interrupt)
            .map(|asked| EventKind::Interrupted {
                node: asked.node,
                question: asked.question,
            }),
        RunStatus::Queued | RunStatus::Running => None,
    };
    if let Some(ending) = ending {
        hub.advance_to(
            thread,
            database.last_event_seq(thread.as_str()).await.unwrap_or(0),
        );
        hub.publish(thread, ending);
        let _ = tokio::time::timeout(EVENT_FLUSH_LIMIT, kept.wait_for(|(_, t)| *t)).await;
    }
}
