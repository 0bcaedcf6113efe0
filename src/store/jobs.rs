//! The journal of paid jobs: what was submitted for which request, so that a run resumed
//! after a crash polls its job instead of paying for another.

use super::Database;
use super::runs::now_ms;
use async_trait::async_trait;
use montage_models::remote::jobs::{JobJournal, JobRecord};
use montage_models::{ModelError, ModelId};

/// The database as the job providers' journal.
pub struct DatabaseJournal(pub Database);

fn unavailable(error: sqlx::Error) -> ModelError {
    ModelError::Unavailable(format!("the job journal: {error}"))
}

#[async_trait]
impl JobJournal for DatabaseJournal {
    async fn find(&self, key: &str) -> Result<Option<JobRecord>, ModelError> {
        let row: Option<(Option<String>, Option<String>)> = on_pool!(&self.0, pool => {
            sqlx::query_as("SELECT job, ended FROM paid_jobs WHERE request_hash = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })
        .map_err(unavailable)?;
        Ok(row.map(|(job, ended)| JobRecord { job, ended }))
    }

    async fn intend(
        &self,
        key: &str,
        model: &ModelId,
        estimate_usd: f64,
    ) -> Result<(), ModelError> {
        on_pool!(&self.0, pool => {
            sqlx::query(
                "INSERT INTO paid_jobs (request_hash, model, estimate_usd, job, ended, written_at_ms) \
                 VALUES ($1, $2, $3, NULL, NULL, $4) \
                 ON CONFLICT (request_hash) DO UPDATE SET model = excluded.model, \
                 estimate_usd = excluded.estimate_usd, job = NULL, ended = NULL, \
                 written_at_ms = excluded.written_at_ms",
            )
            .bind(key)
            .bind(model.to_string())
            .bind(estimate_usd)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(unavailable)?;
        Ok(())
    }

    async fn submitted(&self, key: &str, job: &str) -> Result<(), ModelError> {
        self.write(
            key,
            "UPDATE paid_jobs SET job = $2, written_at_ms = $3 WHERE request_hash = $1",
            job,
        )
        .await
    }

    async fn ended(&self, key: &str, outcome: &str) -> Result<(), ModelError> {
        self.write(
            key,
            "UPDATE paid_jobs SET ended = $2, written_at_ms = $3 WHERE request_hash = $1",
            outcome,
        )
        .await
    }
}

impl DatabaseJournal {
    /// Runs `update` (`$1` the key, `$2` the value, `$3` the time) on `key`'s row.
    async fn write(&self, key: &str, update: &'static str, value: &str) -> Result<(), ModelError> {
        on_pool!(&self.0, pool => {
            sqlx::query(update)
                .bind(key)
                .bind(value)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(unavailable)
    }
}
