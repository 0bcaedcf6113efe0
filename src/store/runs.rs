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
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Waiting,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
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
    /// The error, when failed.
    pub error: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

use super::damaged;

impl Database {
    /// Records a new run.
    pub async fn create_run(
        &self,
        id: &str,
        prompt: &str,
        config: &serde_json::Value,
        status: RunStatus,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = match self {
            Database::Sqlite(_) => {
                "INSERT INTO runs (id, status, prompt, config, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5)"
            }
            Database::Postgres(_) => {
                "INSERT INTO runs (id, status, prompt, config, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4::jsonb, $5, $5)"
            }
        };
        let config = config.to_string();
        on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(status.as_str())
            .bind(prompt)
            .bind(&config)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Moves a run to `status` (with the error when it failed).
    pub async fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE runs SET status = $1, error = $2, updated_at_ms = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// One run, if it exists.
    pub async fn run(&self, id: &str) -> Result<Option<StoredRun>, StoreError> {
        let sql = match self {
            Database::Sqlite(_) => {
                "SELECT id, status, prompt, config, error, created_at_ms FROM runs WHERE id = $1"
            }
            Database::Postgres(_) => {
                "SELECT id, status, prompt, config::text, error, created_at_ms FROM runs WHERE id = $1"
            }
        };
        let row: Option<(String, String, String, String, Option<String>, i64)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.map(|(id, status, prompt, config, error, created_at_ms)| {
            Ok(StoredRun {
                status: RunStatus::parse(&status)
                    .ok_or_else(|| damaged(format!("run {id} has status {status:?}")))?,
                config: serde_json::from_str(&config)
                    .map_err(|e| damaged(format!("run {id}'s configuration: {e}")))?,
                id,
                prompt,
                error,
                created_at_ms,
            })
        })
        .transpose()
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
