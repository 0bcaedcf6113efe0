//! Removing runs and finding what still refers to an object, for deletion and retention.

use super::{Database, StoreError};
use crate::store::RunStatus;
use std::collections::BTreeSet;

/// A run to delete: what it was, and the objects it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    /// Object keys its asset rows named: candidates for deletion once nothing else uses them.
    pub objects: Vec<String>,
}

impl Database {
    /// Deletes run `id` and everything recorded about it: checkpoints, pending writes,
    /// events, asset rows, ledger rows. Its revisions now revise its parent; chats that
    /// followed it follow `successor` (another version of the video, or none).
    pub async fn remove_run(
        &self,
        id: &str,
        successor: Option<&str>,
    ) -> Result<Removed, StoreError> {
        let objects: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT object_key FROM assets WHERE run = $1",
        )
        .bind(id)
        .fetch_all(pool)
        .await)?;
        let statements = [
            "DELETE FROM pending_writes WHERE thread = $1",
            "DELETE FROM checkpoints WHERE thread = $1",
            "DELETE FROM events WHERE run = $1",
            "DELETE FROM assets WHERE run = $1",
            "DELETE FROM cost_ledger WHERE run = $1",
        ];
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for sql in statements {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE chats SET run = $1 WHERE run = $2")
                .bind(successor)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE runs SET parent = (SELECT parent FROM runs WHERE id = $1) WHERE parent = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM runs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(Removed {
            objects: objects.into_iter().map(|(key,)| key).collect(),
        })
    }

    /// Runs that ended (completed, failed, cancelled) before `before_ms`, oldest first.
    pub async fn runs_ended_before(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM runs WHERE status IN ('completed', 'failed', 'cancelled') \
             AND updated_at_ms < $1 ORDER BY updated_at_ms",
        )
        .bind(before_ms)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Runs whose objects are not all in asset rows yet: every run that has not completed.
    pub async fn runs_not_completed(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM runs WHERE status <> $1",
        )
        .bind(RunStatus::Completed.as_str())
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Object keys the records hold on to: runs' asset rows and people's uploads.
    pub async fn recorded_objects(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT object_key FROM assets UNION SELECT object_key FROM uploads",
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(key,)| key).collect())
    }

    /// Forgets cached generations that made the object `key` (it is being deleted).
    pub async fn forget_cached(&self, key: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM generation_cache WHERE object_key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
