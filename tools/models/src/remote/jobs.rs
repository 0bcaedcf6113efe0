//! Providers that run a job (Replicate's predictions, fal's queue): submit, then poll until it
//! ends, then copy the outputs at once (Replicate deletes them after an hour).
//!
//! A job is paid for, so it is submitted once per request: the [`JobJournal`] is told before
//! the submission and the moment the provider names the job, and a request whose job was
//! submitted before (a run resumed after a crash, a scene tried again) polls that job instead
//! of submitting again. A submission is never retried unless the provider surely never took
//! it (429, 503, or no connection made); one whose answer was lost is not made again by
//! anyone until a new attempt at the scene, which says it may pay twice.

use super::policy::{CallError, Failure, Policy};
use crate::error::ModelError;
use crate::types::ModelId;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the journal knows of one request's job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The provider's id of the job, once it named one.
    pub job: Option<String>,
    /// How it ended, once it did: `succeeded`, `failed: …`, `canceled`, `refused: …` (never
    /// taken), `uncertain: …` (the answer to the submission was lost), `lost: …` (the
    /// provider no longer knows the job).
    pub ended: Option<String>,
}

/// Where job-based providers write down what they submit, so that no request is paid for
/// twice. Montage keeps it in its database; [`MemoryJournal`] forgets when the process ends.
#[async_trait]
pub trait JobJournal: Send + Sync {
    /// What was written down for `key`, if anything.
    async fn find(&self, key: &str) -> Result<Option<JobRecord>, ModelError>;
    /// `key` is about to be submitted to `model`, for about `estimate_usd`.
    async fn intend(&self, key: &str, model: &ModelId, estimate_usd: f64)
    -> Result<(), ModelError>;
    /// The provider took `key` as `job`.
    async fn submitted(&self, key: &str, job: &str) -> Result<(), ModelError>;
    /// `key`'s job ended: `outcome` is `succeeded` or what went wrong.
    async fn ended(&self, key: &str, outcome: &str) -> Result<(), ModelError>;
}

/// A journal in this process's memory (`montage models`, tests).
#[derive(Debug, Default)]
pub struct MemoryJournal(Mutex<HashMap<String, JobRecord>>);

#[async_trait]
impl JobJournal for MemoryJournal {
    async fn find(&self, key: &str) -> Result<Option<JobRecord>, ModelError> {
        Ok(self.records().get(key).cloned())
    }

    async fn intend(&self, key: &str, _: &ModelId, _: f64) -> Result<(), ModelError> {
        self.records().insert(
            key.to_owned(),
            JobRecord {
                job: None,
                ended: None,
            },
        );
        Ok(())
    }

    async fn submitted(&self, key: &str, job: &str) -> Result<(), ModelError> {
        if let Some(record) = self.records().get_mut(key) {
            record.job = Some(job.to_owned());
        }
        Ok(())
    }

    async fn ended(&self, key: &str, outcome: &str) -> Result<(), ModelError> {
        if let Some(record) = self.records().get_mut(key) {
            record.ended = Some(outcome.to_owned());
        }
        Ok(())
    }
}

impl MemoryJournal {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobRecord>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JobState {
    /// Queued or running.
    Waiting,
    /// Done: the provider's output (URLs, or an object holding them), and the compute
    /// seconds it billed, when it says.
    Succeeded {
        output: Value,
        billed_seconds: Option<f64>,
    },
    /// It failed, for this reason.
    Failed(String),
    /// Someone cancelled it.
    Canceled,
}

/// One job API, spoken over HTTP.
#[async_trait]
pub(crate) trait JobApi: Send + Sync {
    /// Submits `input` to `model`: the job's id, and where it stands (a short job may be
    /// done at once).
    async fn submit(&self, model: &str, input: &Value) -> Result<(String, JobState), CallError>;
    /// Where `job` of `model` stands now.
    async fn poll(&self, model: &str, job: &str) -> Result<JobState, CallError>;
    /// Asks the provider to stop `job` of `model` (one that already ended is no error).
    async fn cancel(&self, model: &str, job: &str) -> Result<(), CallError>;
    /// A file as an input of this API takes it: a URL it can fetch (Replicate's own file
    /// store) or a data URI (fal).
    async fn file_input(&self, bytes: Vec<u8>, media_type: &str) -> Result<String, CallError> {
        use base64::Engine;
        Ok(format!(
            "data:{media_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }
}

/// How long to wait for jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waiting {
    /// The first pause between polls; each next one is half as long again, up to 5 s.
    pub first_poll: Duration,
    /// The longest a job may take, queue included.
    pub deadline: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            first_poll: Duration::from_millis(500),
            deadline: Duration::from_secs(900),
        }
    }
}

/// A finished job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    /// What it made.
    pub output: Value,
    /// The compute seconds billed, when the provider says.
    pub billed_seconds: Option<f64>,
    /// What the person should know (a submission that may have been paid for twice).
    pub notices: Vec<String>,
}

/// Jobs waiting for their provider's webhook, by job id: a delivery wakes the one waiting
/// so it polls at once instead of at its next pause. Deliveries for jobs nobody here waits
/// for (another process's, a repeat) change nothing.
#[derive(Debug, Default)]
pub struct Wakeups {
    waiting: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

impl Wakeups {
    /// Wakes whoever waits for `job`: whether someone did.
    pub fn wake(&self, job: &str) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get(job) {
            Some(waiter) => {
                waiter.notify_one();
                true
            }
            None => false,
        }
    }

    fn waiter(&self, job: &str) -> Arc<tokio::sync::Notify> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(waiting.entry(job.to_owned()).or_default())
    }

    fn forget(&self, job: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job);
    }
}

/// Where the provider sends word that a job finished, and who is told.
#[derive(Debug, Clone)]
pub struct JobWebhook {
    /// The URL the provider calls (Montage's `/api/webhooks/replicate`, as the world sees it).
    pub url: String,
    /// The jobs waiting for it.
    pub wakeups: Arc<Wakeups>,
}

/// Runs jobs on one API, each submitted once per key.
pub(crate) struct Jobs {
    pub api: Arc<dyn JobApi>,
    pub journal: Arc<dyn JobJournal>,
    pub waiting: Waiting,
    pub model: ModelId,
    /// Set when the provider calls back: polls are then a fallback, rarer.
    pub wakeups: Option<Arc<Wakeups>>,
}

/// Forgets a job's waiter when its wait ends, however it ends.
struct Waiter<'a> {
    wakeups: &'a Wakeups,
    job: String,
    notify: Arc<tokio::sync::Notify>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.wakeups.forget(&self.job);
    }
}

impl Jobs {
    /// The job for `key` (none: not journalled) run to its end: the one submitted before
    /// when there is one (still running, or finished but perhaps not yet fetched), else a
    /// new one of `input`, written down first. Each model of a chain has its own record.
    /// `input` is only awaited when a job is submitted (it may upload a file).
    pub async fn run(
        &self,
        key: Option<&str>,
        estimate_usd: f64,
        input: impl Future<Output = Result<Value, ModelError>>,
        explain: impl Fn(CallError) -> ModelError,
    ) -> Result<Finished, ModelError> {
        let key = key.map(|key| format!("{key}|{}", self.model));
        let key = key.as_deref();
        let mut notices = Vec::new();
        let before = match key {
            Some(key) => self.journal.find(key).await?,
            None => None,
        };
        let resumable = |record: &JobRecord| {
            record.job.is_some() && matches!(record.ended.as_deref(), None | Some("succeeded"))
        };
        let (job, mut state) = match before {
            Some(record) if resumable(&record) => {
                let job = record.job.unwrap_or_default();
                tracing::info!(%job, "resuming a job submitted before");
                match self.api.poll(&self.model.model, &job).await {
                    Ok(state) => (job, state),
                    Err(error) => {
                        let error = explain(error);
                        if !error.is_transient() {
                            // The provider no longer knows it: a later attempt submits anew.
                            self.end(key, &format!("lost: {error}")).await?;
                        }
                        return Err(error);
                    }
                }
            }
            earlier => {
                let unanswered = earlier.as_ref().is_some_and(|record| {
                    record.job.is_none()
                        && record
                            .ended
                            .as_deref()
                            .is_none_or(|ended| ended.starts_with("uncertain"))
                });
                if unanswered {
                    // A submission whose answer never came or was never written down.
                    notices.push(format!(
                        "an earlier submission to {} may have been made and charged without its answer arriving; submitted again",
                        self.model
                    ));
                }
                let input = input.await?;
                if let Some(key) = key {
                    self.journal.intend(key, &self.model, estimate_usd).await?;
                }
                let (job, state) = match self.api.submit(&self.model.model, &input).await {
                    Ok(submitted) => submitted,
                    Err(error) => return Err(self.submission_failed(key, error, &explain).await),
                };
                if let Some(key) = key
                    && let Err(error) = self.journal.submitted(key, &job).await
                {
                    // The job runs and is paid for: see it through, unwritten.
                    tracing::warn!(%error, %job, "could not write a submitted job down");
                }
                (job, state)
            }
        };
        let started = tokio::time::Instant::now();
        let mut pause = self.waiting.first_poll;
        let waiter = self.wakeups.as_deref().map(|wakeups| Waiter {
            wakeups,
            notify: wakeups.waiter(&job),
            job: job.clone(),
        });
        // A webhook says when the job is done; polls only cover a delivery that never comes.
        let longest_pause = match waiter {
            Some(_) => Duration::from_secs(30),
            None => Duration::from_secs(5),
        };
        loop {
            match state {
                JobState::Waiting => {}
                JobState::Succeeded {
                    output,
                    billed_seconds,
                } => {
                    self.end(key, "succeeded").await?;
                    return Ok(Finished {
                        output,
                        billed_seconds,
                        notices,
                    });
                }
                JobState::Failed(why) => {
                    self.end(key, &format!("failed: {why}")).await?;
                    return Err(ModelError::Rejected(format!(
                        "{}'s job {job} failed: {why}",
                        self.model
                    )));
                }
                JobState::Canceled => {
                    self.end(key, "canceled").await?;
                    return Err(ModelError::Rejected(format!(
                        "{}'s job {job} was cancelled at the provider",
                        self.model
                    )));
                }
            }
            if started.elapsed() >= self.waiting.deadline {
                // Left as it is: a later attempt at this request polls the same job again.
                return Err(ModelError::Timeout {
                    seconds: self.waiting.deadline.as_secs_f64(),
                });
            }
            match &waiter {
                Some(waiter) => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = waiter.notify.notified() => {}
                    }
                }
                None => tokio::time::sleep(pause).await,
            }
            pause = (pause * 3 / 2).min(longest_pause);
            state = self
                .api
                .poll(&self.model.model, &job)
                .await
                .map_err(&explain)?;
        }
    }

    /// Stops the job submitted for `key` at the provider, when one is running, and writes
    /// it down as cancelled: whether there was one.
    pub async fn cancel(
        &self,
        key: &str,
        explain: impl Fn(CallError) -> ModelError,
    ) -> Result<bool, ModelError> {
        let key = format!("{key}|{}", self.model);
        let Some(record) = self.journal.find(&key).await? else {
            return Ok(false);
        };
        let (Some(job), None) = (record.job, record.ended) else {
            return Ok(false);
        };
        self.api
            .cancel(&self.model.model, &job)
            .await
            .map_err(explain)?;
        tracing::info!(%job, model = %self.model, "cancelled a job at the provider");
        self.journal
            .ended(&key, "canceled: the run was cancelled")
            .await?;
        Ok(true)
    }

    /// What a failed submission means. A refusal (4xx) took nothing; an answer that was
    /// lost (a timeout, a broken connection, a 5xx) may have been taken, so it is not tried
    /// again by anyone (the failure is not transient) and the journal says why.
    async fn submission_failed(
        &self,
        key: Option<&str>,
        error: CallError,
        explain: &impl Fn(CallError) -> ModelError,
    ) -> ModelError {
        let lost = answer_lost(&error);
        let said = explain(error);
        let (outcome, error) = match lost {
            true => (
                format!("uncertain: {said}"),
                ModelError::Rejected(format!(
                    "{said}; the submission may have been taken, so it is not made again (a new attempt at this scene submits it anew)"
                )),
            ),
            false => (format!("refused: {said}"), said),
        };
        if let Err(unwritten) = self.end(key, &outcome).await {
            tracing::warn!(%unwritten, "could not write a failed submission down");
        }
        error
    }

    async fn end(&self, key: Option<&str>, outcome: &str) -> Result<(), ModelError> {
        match key {
            Some(key) => self.journal.ended(key, outcome).await,
            None => Ok(()),
        }
    }
}

/// Whether a failed paid request may have been taken by the provider all the same.
pub(crate) fn answer_lost(error: &CallError) -> bool {
    match error {
        CallError::Open { .. } => false,
        CallError::Failed { failure, .. } => match failure {
            // Overloaded: turned away before any work.
            Failure::Status {
                status: 503 | 529, ..
            } => false,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Timeout | Failure::Garbled(_) => true,
            Failure::Connection(_) => false,
        },
    }
}

/// What a failed paid request that is not journalled tells the person: `explain`'s words,
/// and when the answer was lost, that it is not made again (it may have been taken and
/// charged, and nobody can know), so the failure is not transient.
pub(crate) fn unrepeated_failure(
    error: CallError,
    explain: impl FnOnce(CallError) -> ModelError,
) -> ModelError {
    let lost = answer_lost(&error);
    let said = explain(error);
    match lost {
        true => ModelError::Rejected(format!(
            "{said}; the request may have been taken, so it is not made again"
        )),
        false => said,
    }
}

/// Whether a request may be made again when its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// It changes nothing (a poll, a download).
    Safe,
    /// It is paid for (a submission): only a connection never made is a failure to retry.
    Never,
}

/// How a request that got no answer failed.
pub(crate) fn transport(error: reqwest::Error, repeat: Repeat) -> Failure {
    let (connect, timeout) = (error.is_connect(), error.is_timeout());
    let reason = super::openai::cause(error);
    match (repeat, connect, timeout) {
        (_, true, _) => Failure::Connection(reason),
        (_, _, true) => Failure::Timeout,
        (Repeat::Safe, ..) => Failure::Connection(reason),
        // The request may have been taken: a failure that is not tried again.
        (Repeat::Never, ..) => Failure::Garbled(format!("the answer was lost ({reason})")),
    }
}

/// The provider's answer to `request` as JSON, or its status and words (`detail`, `title`,
/// `error.message`, `error`, `message`: whichever it uses).
pub(crate) async fn json_answer(
    request: reqwest::RequestBuilder,
    repeat: Repeat,
) -> Result<Value, Failure> {
    let response = request.send().await.map_err(|e| transport(e, repeat))?;
    let status = response.status();
    let after = super::policy::retry_after(response.headers());
    let text = response.text().await.map_err(|e| transport(e, repeat))?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| Failure::Garbled(e.to_string()));
    }
    // Replicate says when to come back in the body of a 429 as well.
    let said_after = || {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["retry_after"].as_f64())
            .map(|seconds| Duration::from_secs_f64(seconds.clamp(0.0, 3_600.0)))
    };
    Err(Failure::Status {
        status: status.as_u16(),
        message: words_of(&text),
        retry_after: after.or_else(said_after),
    })
}

/// What an error body says, in the words of whichever shape the provider uses.
pub(crate) fn words_of(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let candidates = [
        value["detail"]["message"].as_str(),
        value["detail"].as_str(),
        value["error"]["message"].as_str(),
        value["error"].as_str(),
        value["message"].as_str(),
        value["title"].as_str(),
    ];
    match candidates.into_iter().flatten().next() {
        Some(words) => words.chars().take(300).collect(),
        None => match &value["detail"] {
            Value::Array(problems) => problems
                .iter()
                .filter_map(|p| p["msg"].as_str())
                .collect::<Vec<_>>()
                .join("; "),
            _ => body.chars().take(200).collect(),
        },
    }
}

/// The most an output may weigh: a clip of a few seconds is megabytes, not gigabytes.
const MAX_OUTPUT_BYTES: usize = 512 << 20;

/// The file at `url` (a job's output), read at once, up to the size allowed.
pub(crate) async fn download(
    http: &reqwest::Client,
    policy: &Policy,
    url: &str,
) -> Result<Vec<u8>, CallError> {
    policy
        .call(|| async {
            let response = http
                .get(url)
                .send()
                .await
                .map_err(|e| transport(e, Repeat::Safe))?;
            let status = response.status();
            if !status.is_success() {
                return Err(Failure::Status {
                    status: status.as_u16(),
                    message: format!("its output could not be fetched ({status})"),
                    retry_after: super::policy::retry_after(response.headers()),
                });
            }
            if response
                .content_length()
                .is_some_and(|n| n > MAX_OUTPUT_BYTES as u64)
            {
                return Err(Failure::Garbled("its output is larger than 512 MB".into()));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport(e, Repeat::Safe))?;
            if bytes.len() > MAX_OUTPUT_BYTES {
                return Err(Failure::Garbled("its output is larger than 512 MB".into()));
            }
            Ok(bytes.to_vec())
        })
        .await
}

/// What a failed fetch of an output tells the person: the output, not the model or the key,
/// is what could not be had.
pub(crate) fn output_unavailable(error: CallError) -> ModelError {
    match error {
        CallError::Open { retry_in } => ModelError::Unavailable(format!(
            "the provider failed several times in a row; its output is not fetched for another {} s",
            retry_in.as_secs().max(1)
        )),
        CallError::Failed { failure, attempts } => match failure {
            Failure::Status { status, .. } if status == 429 || status >= 500 => {
                ModelError::Unavailable(format!(
                    "its output could not be fetched ({status}, {})",
                    super::policy::tries(attempts)
                ))
            }
            Failure::Status { status, .. } => {
                ModelError::InvalidOutput(format!("its output could not be fetched ({status})"))
            }
            Failure::Timeout => ModelError::Unavailable("its output took too long to fetch".into()),
            Failure::Connection(reason) | Failure::Garbled(reason) => {
                ModelError::Unavailable(format!("its output could not be fetched: {reason}"))
            }
        },
    }
}

/// The output URLs in a job's output: a URL, a list of them, or objects holding one under
/// `url` (fal's `images: [{url}]`, `video: {url}`, `audio: {url}`).
pub(crate) fn output_urls(output: &Value) -> Vec<String> {
    match output {
        Value::String(url) if url.starts_with("http") || url.starts_with("data:") => {
            vec![url.clone()]
        }
        Value::Array(items) => items.iter().flat_map(output_urls).collect(),
        Value::Object(fields) => match fields.get("url") {
            Some(Value::String(url)) => vec![url.clone()],
            _ => ["images", "image", "video", "audio", "audio_file", "output"]
                .iter()
                .filter_map(|name| fields.get(*name))
                .flat_map(output_urls)
                .collect(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A job API whose jobs are done at the `polls`-th poll, counting submissions.
    struct Slow {
        polls: u32,
        submitted: AtomicU32,
        polled: AtomicU32,
    }

    #[async_trait]
    impl JobApi for Slow {
        async fn submit(&self, _: &str, _: &Value) -> Result<(String, JobState), CallError> {
            let n = self.submitted.fetch_add(1, Ordering::SeqCst);
            Ok((format!("job-{n}"), JobState::Waiting))
        }

        async fn cancel(&self, _: &str, _: &str) -> Result<(), CallError> {
            Ok(())
        }

        async fn poll(&self, _: &str, job: &str) -> Result<JobState, CallError> {
            let n = self.polled.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(match n >= self.polls {
                true => JobState::Succeeded {
                    output: json!([format!("https://files.example/{job}.png")]),
                    billed_seconds: Some(1.5),
                },
                false => JobState::Waiting,
            })
        }
    }

    fn jobs(api: Arc<Slow>, journal: Arc<MemoryJournal>, deadline_ms: u64) -> Jobs {
        Jobs {
            api,
            journal,
            wakeups: None,
            waiting: Waiting {
                first_poll: Duration::from_millis(1),
                deadline: Duration::from_millis(deadline_ms),
            },
            model: ModelId::new("replicate", "black-forest-labs/flux-schnell"),
        }
    }

    /// Where the journal keeps `hash-1` for the model of [`jobs`].
    const FLUX_1: &str = "hash-1|replicate/black-forest-labs/flux-schnell";

    fn unexplained(error: CallError) -> ModelError {
        ModelError::Unavailable(format!("{error:?}"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_left_running_is_polled_again_never_submitted_again() {
        let api = Arc::new(Slow {
            polls: 1_000,
            submitted: AtomicU32::new(0),
            polled: AtomicU32::new(0),
        });
        let journal = Arc::new(MemoryJournal::default());
        let first = jobs(api.clone(), journal.clone(), 50)
            .run(Some("hash-1"), 0.003, async { Ok(json!({})) }, unexplained)
            .await;
        assert!(
            matches!(first, Err(ModelError::Timeout { .. })),
            "{first:?}"
        );
        let written = journal.find(FLUX_1).await.unwrap().unwrap();
        assert_eq!(written.job.as_deref(), Some("job-0"));
        assert_eq!(written.ended, None);

        let patient = Arc::new(Slow {
            polls: 3,
            submitted: AtomicU32::new(api.submitted.load(Ordering::SeqCst)),
            polled: AtomicU32::new(0),
        });
        let done = jobs(patient.clone(), journal.clone(), 60_000)
            .run(Some("hash-1"), 0.003, async { Ok(json!({})) }, unexplained)
            .await
            .unwrap();
        assert_eq!(
            patient.submitted.load(Ordering::SeqCst),
            1,
            "one submission in all"
        );
        assert_eq!(
            output_urls(&done.output),
            ["https://files.example/job-0.png"]
        );
        assert_eq!(done.billed_seconds, Some(1.5));
        assert!(done.notices.is_empty());
        let ended = journal.find(FLUX_1).await.unwrap().unwrap();
        assert_eq!(ended.ended.as_deref(), Some("succeeded"));
        // Asked again (its output was never stored: a failed download, a crash): the
        // finished job is polled for its output, not paid for again.
        jobs(patient.clone(), journal.clone(), 60_000)
            .run(Some("hash-1"), 0.003, async { Ok(json!({})) }, unexplained)
            .await
            .unwrap();
        assert_eq!(patient.submitted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_submission_whose_answer_never_came_is_made_again_and_said() {
        let api = Arc::new(Slow {
            polls: 1,
            submitted: AtomicU32::new(0),
            polled: AtomicU32::new(0),
        });
        let journal = Arc::new(MemoryJournal::default());
        journal
            .intend(
                "hash-2|replicate/black-forest-labs/flux-schnell",
                &ModelId::new("replicate", "black-forest-labs/flux-schnell"),
                0.003,
            )
            .await
            .unwrap();
        let done = jobs(api.clone(), journal, 60_000)
            .run(Some("hash-2"), 0.003, async { Ok(json!({})) }, unexplained)
            .await
            .unwrap();
        assert_eq!(api.submitted.load(Ordering::SeqCst), 1);
        assert!(
            done.notices[0].contains("may have been made and charged"),
            "{:?}",
            done.notices
        );
    }

    #[test]
    fn output_urls_are_found_in_every_shape_providers_answer() {
        assert_eq!(output_urls(&json!("https://a/1.png")), ["https://a/1.png"]);
        assert_eq!(
            output_urls(&json!(["https://a/1.webp", "https://a/2.webp"])).len(),
            2
        );
        assert_eq!(
            output_urls(
                &json!({ "images": [{ "url": "https://fal/1.jpg", "width": 1 }], "seed": 4 })
            ),
            ["https://fal/1.jpg"]
        );
        assert_eq!(
            output_urls(&json!({ "video": { "url": "https://fal/c.mp4" } })),
            ["https://fal/c.mp4"]
        );
        assert!(output_urls(&json!({ "seed": 4 })).is_empty());
    }

    #[test]
    fn error_bodies_are_read_in_each_providers_shape() {
        assert_eq!(
            words_of(
                r#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#
            ),
            "You did not pass a valid authentication token"
        );
        assert_eq!(
            words_of(
                r#"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota."}}"#
            ),
            "This request exceeds your quota."
        );
        assert_eq!(
            words_of(
                r#"{"detail":[{"loc":["body","prompt"],"msg":"field required","type":"value_error.missing"}]}"#
            ),
            "field required"
        );
        assert_eq!(
            words_of(r#"{"error":{"message":"Invalid size","type":"invalid_request_error"}}"#),
            "Invalid size"
        );
    }
}
