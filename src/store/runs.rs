//! Runs and their events. A run is a graph thread with a status the outside world can read;
//! its events are kept in order so a client can replay what it missed.

use super::{Database, StoreError};
use montage_graph::{Event, EventKind};
use serde::{Deserialize, Serialize};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// Waiting for an answer to a question.
    Waiting,
    /// Finished.
    Completed,
    /// Stopped by an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// Its name, as stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over for good (completed, failed or cancelled).
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The status named `text`.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The run's id (its graph thread).
    pub id: String,
    /// Where it stands.
    pub status: RunStatus,
    /// What was asked.
    pub prompt: String,
    /// The resolved configuration, as JSON.
    pub config: serde_json::Value,
    /// The error, when failed (for the server's log: may hold internal detail).
    pub error: Option<String>,
    /// The run this one revises.
    pub parent: Option<String>,
    /// Its version among the revisions of the first run, from 1.
    pub version: u32,
    /// The user it belongs to.
    pub owner: Option<String>,
    /// It holds an answer a worker has yet to act on (and holds it while it executes with it).
    pub answered: bool,
    /// The checkpoint whose question that answer answers (none for answers queued before
    /// this was recorded).
    answer_to: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last change of status, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

impl StoredRun {
    /// Whether the answer it holds answers the question its thread stopped at `checkpoint`:
    /// false once the run, executing with that answer, has stopped at a new question.
    pub fn answered_at(&self, checkpoint: &str) -> bool {
        self.answered && answers(self.answer_to.as_deref(), checkpoint)
    }
}

/// Whether an answer to the question asked at `asked_at` answers the one at `checkpoint`
/// (an answer queued before questions were recorded answers whichever is open).
fn answers(asked_at: Option<&str>, checkpoint: &str) -> bool {
    asked_at.is_none_or(|asked_at| asked_at == checkpoint)
}

/// A run to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Its id (its graph thread).
    pub id: String,
    /// What was asked.
    pub prompt: String,
    /// The resolved configuration.
    pub config: serde_json::Value,
    /// The state a worker starts it from; `None` when its thread already has a checkpoint
    /// (a fork) or it runs in the caller.
    pub input: Option<serde_json::Value>,
    /// The run it revises.
    pub parent: Option<String>,
    /// The user it belongs to.
    pub owner: Option<String>,
}

/// A queued run a worker has taken.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    /// Its id.
    pub id: String,
    /// The state to start from, when its thread has not started.
    pub input: Option<serde_json::Value>,
    /// The answer to its open question, when it was waiting.
    pub answer: Option<serde_json::Value>,
    /// The checkpoint that question was asked at (none for answers queued before this was
    /// recorded).
    pub answer_to: Option<String>,
}

impl ClaimedRun {
    /// Whether its answer, if it has one, answers the question its thread stopped at
    /// `checkpoint` (a thread past that question took the answer before a crash).
    pub fn answers(&self, checkpoint: &str) -> bool {
        answers(self.answer_to.as_deref(), checkpoint)
    }
}

/// The first run of run `$1`'s family of revisions (itself when it revises nothing).
pub(super) const FAMILY_ROOT: &str = "SELECT COALESCE(root, id) FROM runs WHERE id = $1";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

use super::damaged;

/// Columns of `runs` read into a [`StoredRun`], with the JSON as text on both databases.
const RUN_COLUMNS_SQLITE: &str = "id, status, prompt, config, error, parent, version, created_at_ms, updated_at_ms, owner, \
     CASE WHEN answer IS NULL THEN 0 ELSE 1 END, answer_to";
const RUN_COLUMNS_POSTGRES: &str = "id, status, prompt, config::text, error, parent, version::bigint, created_at_ms, updated_at_ms, owner, \
     CASE WHEN answer IS NULL THEN 0::bigint ELSE 1::bigint END, answer_to";

type RunTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
    Option<String>,
);

fn stored_run(row: RunTuple) -> Result<StoredRun, StoreError> {
    let (
        id,
        status,
        prompt,
        config,
        error,
        parent,
        version,
        created_at_ms,
        updated_at_ms,
        owner,
        answered,
        answer_to,
    ) = row;
    Ok(StoredRun {
        status: RunStatus::parse(&status)
            .ok_or_else(|| damaged(format!("run {id} has status {status:?}")))?,
        config: serde_json::from_str(&config)
            .map_err(|e| damaged(format!("run {id}'s configuration: {e}")))?,
        version: u32::try_from(version).map_err(|e| damaged(e.to_string()))?,
        id,
        prompt,
        error,
        parent,
        created_at_ms,
        updated_at_ms,
        owner,
        answered: answered != 0,
        answer_to,
    })
}

fn json_column(text: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| damaged(e.to_string())))
        .transpose()
}

impl Database {
    fn run_columns(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => RUN_COLUMNS_SQLITE,
            Database::Postgres(_) => RUN_COLUMNS_POSTGRES,
        }
    }

    /// Records a new run in `status`. A revision gets the next version of its family.
    pub async fn create_run(&self, run: &NewRun, status: RunStatus) -> Result<(), StoreError> {
        let now = now_ms();
        let (root, version) = match &run.parent {
            Some(parent) => {
                let root: Option<(Option<String>,)> = on_pool!(self, pool => sqlx::query_as(
                    "SELECT root FROM runs WHERE id = $1",
                )
                .bind(parent)
                .fetch_optional(pool)
                .await)?;
                let root = match root {
                    Some((root,)) => root.unwrap_or_else(|| parent.clone()),
                    None => return Err(damaged(format!("run {parent} does not exist"))),
                };
                let (latest,): (i64,) = on_pool!(self, pool => sqlx::query_as(
                    "SELECT CAST(COALESCE(MAX(version), 1) AS BIGINT) FROM runs WHERE id = $1 OR root = $1",
                )
                .bind(&root)
                .fetch_one(pool)
                .await)?;
                (Some(root), latest + 1)
            }
            None => (None, 1),
        };
        let sql = match self {
            Database::Sqlite(_) => {
                "INSERT INTO runs (id, status, prompt, config, input, parent, root, version, created_at_ms, updated_at_ms, owner, submitted) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, (SELECT COALESCE(MAX(submitted), 0) + 1 FROM runs))"
            }
            Database::Postgres(_) => {
                "INSERT INTO runs (id, status, prompt, config, input, parent, root, version, created_at_ms, updated_at_ms, owner) \
                 VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $9, $10)"
            }
        };
        let config = run.config.to_string();
        let input = run.input.as_ref().map(serde_json::Value::to_string);
        on_pool!(self, pool => sqlx::query(sql)
            .bind(&run.id)
            .bind(status.as_str())
            .bind(&run.prompt)
            .bind(&config)
            .bind(&input)
            .bind(&run.parent)
            .bind(&root)
            .bind(version)
            .bind(now)
            .bind(&run.owner)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Moves a run to `status` (with the error when it failed), dropping any answer it held.
    pub async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE runs SET status = $1, error = $2, answer = NULL, answer_to = NULL, updated_at_ms = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Moves a run from `from` to `to`; false when it was not in `from` (someone else moved
    /// it first, or it does not exist).
    pub async fn move_run(
        &self,
        id: &str,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("UPDATE runs SET status = $1, updated_at_ms = $2 WHERE id = $3 AND status = $4")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id)
            .bind(from.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Queues a waiting run with the answer to the question it asked at checkpoint
    /// `answer_to`; false when it was not waiting.
    pub async fn queue_answer(
        &self,
        id: &str,
        answer: &serde_json::Value,
        answer_to: &str,
    ) -> Result<bool, StoreError> {
        let sql = match self {
            Database::Sqlite(_) => {
                "UPDATE runs SET status = 'queued', answer = $1, answer_to = $2, updated_at_ms = $3 WHERE id = $4 AND status = 'waiting'"
            }
            Database::Postgres(_) => {
                "UPDATE runs SET status = 'queued', answer = $1::jsonb, answer_to = $2, updated_at_ms = $3 WHERE id = $4 AND status = 'waiting'"
            }
        };
        let answer = answer.to_string();
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(&answer)
            .bind(answer_to)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Takes the next queued run and marks it running: answered runs first (someone is
    /// waiting on them), then in the order they were submitted.
    pub async fn claim_next_run(&self) -> Result<Option<ClaimedRun>, StoreError> {
        let sql = match self {
            Database::Sqlite(_) => {
                "UPDATE runs SET status = 'running', updated_at_ms = $1 WHERE id = \
                 (SELECT id FROM runs WHERE status = 'queued' ORDER BY (answer IS NULL), submitted LIMIT 1) \
                 RETURNING id, input, answer, answer_to"
            }
            Database::Postgres(_) => {
                "UPDATE runs SET status = 'running', updated_at_ms = $1 WHERE id = \
                 (SELECT id FROM runs WHERE status = 'queued' ORDER BY (answer IS NULL), submitted LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, input::text, answer::text, answer_to"
            }
        };
        // id, input, answer, and the checkpoint the answer answers.
        type Claimed = (String, Option<String>, Option<String>, Option<String>);
        let row: Option<Claimed> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(now_ms())
            .fetch_optional(pool)
            .await)?;
        row.map(|(id, input, answer, answer_to)| {
            Ok(ClaimedRun {
                id,
                input: json_column(input)?,
                answer: json_column(answer)?,
                answer_to,
            })
        })
        .transpose()
    }

    /// Puts runs a stopped server left running back in the queue, ahead of newer ones;
    /// returns how many.
    pub async fn requeue_running(&self) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("UPDATE runs SET status = 'queued', updated_at_ms = $1 WHERE status = 'running'")
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// One run, if it exists.
    pub async fn run(&self, id: &str) -> Result<Option<StoredRun>, StoreError> {
        let sql = format!("SELECT {} FROM runs WHERE id = $1", self.run_columns());
        let row: Option<RunTuple> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)?;
        row.map(stored_run).transpose()
    }

    /// `owner`'s runs, newest first: at most `limit`, created before `before_ms` when given.
    pub async fn list_runs(
        &self,
        owner: &str,
        limit: u32,
        before_ms: Option<i64>,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let sql = format!(
            "SELECT {} FROM runs WHERE owner = $1 AND created_at_ms < $2 ORDER BY created_at_ms DESC, id DESC LIMIT $3",
            self.run_columns()
        );
        let rows: Vec<RunTuple> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(before_ms.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(stored_run).collect()
    }

    /// Every version of run `id`'s video (the first run and its revisions), by version.
    pub async fn run_versions(&self, id: &str) -> Result<Vec<StoredRun>, StoreError> {
        let sql = format!(
            "SELECT {} FROM runs WHERE id = ({FAMILY_ROOT}) OR root = ({FAMILY_ROOT}) ORDER BY version",
            self.run_columns()
        );
        let rows: Vec<RunTuple> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(stored_run).collect()
    }

    /// How many runs stand in each status.
    pub async fn count_runs(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status")
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok((
                    RunStatus::parse(&status)
                        .ok_or_else(|| damaged(format!("a run has status {status:?}")))?,
                    u64::try_from(count).map_err(|e| damaged(e.to_string()))?,
                ))
            })
            .collect()
    }

    /// The seq of a run's last kept event (0 when none).
    pub async fn last_event_seq(&self, run: &str) -> Result<u64, StoreError> {
        let (seq,): (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run = $1")
            .bind(run)
            .fetch_one(pool)
            .await)?;
        u64::try_from(seq).map_err(|e| damaged(e.to_string()))
    }

    /// Keeps one event of a run (its seq is its place; storing it twice is harmless).
    pub async fn append_event(&self, event: &Event) -> Result<(), StoreError> {
        let body = serde_json::to_value(&event.kind).map_err(|e| damaged(e.to_string()))?;
        let kind = body
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("unknown")
            .to_owned();
        let sql = match self {
            Database::Sqlite(_) => {
                "INSERT INTO events (run, seq, at_ms, kind, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run, seq) DO NOTHING"
            }
            Database::Postgres(_) => {
                "INSERT INTO events (run, seq, at_ms, kind, body) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (run, seq) DO NOTHING"
            }
        };
        let seq = i64::try_from(event.seq).map_err(|e| damaged(e.to_string()))?;
        let at_ms = i64::try_from(event.at_ms).map_err(|e| damaged(e.to_string()))?;
        let body = body.to_string();
        on_pool!(self, pool => sqlx::query(sql)
            .bind(event.thread.as_str())
            .bind(seq)
            .bind(at_ms)
            .bind(&kind)
            .bind(&body)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A run's events after `after_seq`, in order.
    pub async fn events_since(&self, run: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        let sql = match self {
            Database::Sqlite(_) => {
                "SELECT seq, at_ms, body FROM events WHERE run = $1 AND seq > $2 ORDER BY seq"
            }
            Database::Postgres(_) => {
                "SELECT seq, at_ms, body::text FROM events WHERE run = $1 AND seq > $2 ORDER BY seq"
            }
        };
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String)> = on_pool!(self, pool => sqlx::query_as(sql).bind(run).bind(after).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(seq, at_ms, body)| {
                let kind: EventKind = serde_json::from_str(&body)
                    .map_err(|e| damaged(format!("event {seq} of {run}: {e}")))?;
                Ok(Event {
                    seq: u64::try_from(seq).map_err(|e| damaged(e.to_string()))?,
                    thread: run.into(),
                    at_ms: u64::try_from(at_ms).map_err(|e| damaged(e.to_string()))?,
                    kind,
                })
            })
            .collect()
    }
}
