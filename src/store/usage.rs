//! What each person has asked of the server lately, read from the records themselves (runs,
//! chat messages, uploads), so limits hold across restarts and processes alike.

use super::{Database, StoreError, damaged};

/// How much of something a person used in a window, and when the oldest of it happened
/// (the window frees room then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// How many (runs, messages) or how much (bytes).
    pub amount: u64,
    /// When the oldest counted one happened, milliseconds since the Unix epoch.
    pub oldest_ms: Option<i64>,
}

fn used((amount, oldest_ms): (i64, Option<i64>)) -> Result<Used, StoreError> {
    Ok(Used {
        amount: u64::try_from(amount).map_err(|e| damaged(e.to_string()))?,
        oldest_ms,
    })
}

impl Database {
    /// Runs of `owner` created since `since_ms`.
    pub async fn runs_started_since(&self, owner: &str, since_ms: i64) -> Result<Used, StoreError> {
        let row: (i64, Option<i64>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at_ms) FROM runs WHERE owner = $1 AND created_at_ms >= $2",
        )
        .bind(owner)
        .bind(since_ms)
        .fetch_one(pool)
        .await)?;
        used(row)
    }

    /// Runs waiting in the queue: `owner`'s, and everyone's.
    pub async fn queued_runs(&self, owner: &str) -> Result<(u64, u64), StoreError> {
        let (mine, all): (i64, i64) = on_pool!(self, pool => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN owner = $1 THEN 1 ELSE 0 END), 0) AS BIGINT), COUNT(*) \
             FROM runs WHERE status = 'queued'",
        )
        .bind(owner)
        .fetch_one(pool)
        .await)?;
        let count = |n: i64| u64::try_from(n).map_err(|e| damaged(e.to_string()));
        Ok((count(mine)?, count(all)?))
    }

    /// Messages `owner` wrote in their chats since `since_ms`.
    pub async fn messages_written_since(
        &self,
        owner: &str,
        since_ms: i64,
    ) -> Result<Used, StoreError> {
        let row: (i64, Option<i64>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*), MIN(m.created_at_ms) FROM chat_messages m JOIN chats c ON c.id = m.chat \
             WHERE c.owner = $1 AND m.role = 'user' AND m.created_at_ms >= $2",
        )
        .bind(owner)
        .bind(since_ms)
        .fetch_one(pool)
        .await)?;
        used(row)
    }

    /// Bytes `owner` uploaded since `since_ms`.
    pub async fn bytes_uploaded_since(
        &self,
        owner: &str,
        since_ms: i64,
    ) -> Result<Used, StoreError> {
        let row: (i64, Option<i64>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), MIN(created_at_ms) FROM uploads \
             WHERE owner = $1 AND created_at_ms >= $2",
        )
        .bind(owner)
        .bind(since_ms)
        .fetch_one(pool)
        .await)?;
        used(row)
    }
}
