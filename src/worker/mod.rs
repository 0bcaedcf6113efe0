//! The run worker of `montage serve`: a queue in the database and a bounded number of runs
//! executing at once, each persisting its checkpoints and events as it goes.
//!
//! A worker claims the next queued run and looks at its graph thread to know what to do:
//! no thread yet → start it from the stored input; an answer waiting → resume with it; a
//! thread that stopped mid-way (the server died) → continue from its last checkpoint, so
//! no finished node runs again. A run that asks a question frees its slot and waits in the
//! database, across restarts, until someone answers.
//!
//! # Layout
//! - this module: the queue's face ([`Workers`]: submit, answer, revise, cancel, delete) and
//!   where a run stands ([`status_now`]).
//! - `run`: handing queued runs to free slots, executing one, and recording where it stopped.
//! - `keeper`: storing a run's events as they come and the objects they announce.
//! - `broadcasts`: stored events fanned out to live listeners.

mod broadcasts;
mod keeper;
mod run;

use crate::app::App;
use crate::metrics::Metrics;
use crate::pipeline::{FeedbackAnswer, Pipeline, RunState};
use crate::store::{NewRun, RunStatus, StoreError, StoredRun};
use broadcasts::Broadcasts;
use montage_graph::{
    Event, EventKind, Fork, GraphError, RunStatus as ThreadStatus, ThreadId, ThreadState,
};
use run::{announce, dispatch, settle_spending, token};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

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

/// What the workers share: the app, the slots and who holds them, and each run's listeners
/// and cancel token.
struct Pool {
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
    shared: Arc<Pool>,
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
            shared: Arc::new(Pool {
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

/// How often retention runs while the server is up.
const SWEEP_EVERY: Duration = Duration::from_secs(3_600);

/// Retention now and every [`SWEEP_EVERY`].
async fn keep_tidy(shared: Arc<Pool>) {
    loop {
        match crate::retention::sweep(&shared.app).await {
            Ok(swept) => tracing::info!(?swept, "retention"),
            Err(error) => tracing::warn!(%error, "retention stopped; it runs again later"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
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
