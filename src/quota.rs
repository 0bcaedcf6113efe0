//! What one person may ask of the server (`server.limits`): runs waiting and started, chat
//! messages, upload bytes; and how many runs the queue holds for everyone. Counted from
//! the database, so they hold across restarts.

use crate::config::LimitsConfig;
use crate::store::usage::Used;
use crate::store::{Database, StoreError, runs::now_ms};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// When a queue is full, about how long until it has room again, in seconds.
const QUEUE_RETRY_SECS: u64 = 60;

/// A request beyond a limit.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The person has used their share; room comes back after `retry_after_secs`.
    #[error("{message}")]
    Exceeded {
        /// What was exceeded, for people.
        message: String,
        /// Seconds until the request can succeed.
        retry_after_secs: u64,
    },
    /// The queue holds as many runs as the server takes.
    #[error("the server has {0} videos waiting, as many as it takes: try again in a minute")]
    QueueFull(u64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QuotaError {
    /// Seconds until trying again can succeed.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            QuotaError::Exceeded {
                retry_after_secs, ..
            } => *retry_after_secs,
            QuotaError::QueueFull(_) => QUEUE_RETRY_SECS,
            QuotaError::Store(_) => 0,
        }
    }
}

/// Seconds until the oldest of `used` leaves a window of `window_ms`.
fn until_room(used: &Used, window_ms: i64) -> u64 {
    let frees_at = used.oldest_ms.unwrap_or_else(now_ms) + window_ms;
    u64::try_from(frees_at - now_ms())
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// Whether `owner` may start another run (a new video or a version).
pub async fn check_new_run(
    database: &Database,
    limits: &LimitsConfig,
    owner: &str,
) -> Result<(), QuotaError> {
    let (mine, all) = database.queued_runs(owner).await?;
    if all >= u64::from(limits.queue_capacity) {
        return Err(QuotaError::QueueFull(all));
    }
    if mine >= u64::from(limits.runs_queued_per_user) {
        return Err(QuotaError::Exceeded {
            message: format!(
                "you have {mine} videos waiting to be made, the most at once: wait for one to start"
            ),
            retry_after_secs: QUEUE_RETRY_SECS,
        });
    }
    let started = database
        .runs_started_since(owner, now_ms() - HOUR_MS)
        .await?;
    if started.amount >= u64::from(limits.runs_per_hour) {
        return Err(QuotaError::Exceeded {
            message: format!(
                "you started {} videos or versions in the last hour, the most allowed",
                started.amount
            ),
            retry_after_secs: until_room(&started, HOUR_MS),
        });
    }
    Ok(())
}

/// Whether `owner` may send another chat message.
pub async fn check_message(
    database: &Database,
    limits: &LimitsConfig,
    owner: &str,
) -> Result<(), QuotaError> {
    let written = database
        .messages_written_since(owner, now_ms() - MINUTE_MS)
        .await?;
    if written.amount >= u64::from(limits.chat_messages_per_minute) {
        return Err(QuotaError::Exceeded {
            message: format!(
                "you sent {} messages in the last minute, the most allowed",
                written.amount
            ),
            retry_after_secs: until_room(&written, MINUTE_MS),
        });
    }
    Ok(())
}

/// Whether `owner` may upload `incoming` more bytes today (0: whether any room is left).
pub async fn check_upload(
    database: &Database,
    limits: &LimitsConfig,
    owner: &str,
    incoming: u64,
) -> Result<(), QuotaError> {
    let allowed = limits.upload_mb_per_day << 20;
    let uploaded = database
        .bytes_uploaded_since(owner, now_ms() - DAY_MS)
        .await?;
    if uploaded.amount.saturating_add(incoming.max(1)) > allowed {
        return Err(QuotaError::Exceeded {
            message: format!(
                "that is more than the {} MB a day you may upload ({} MB so far today)",
                limits.upload_mb_per_day,
                uploaded.amount >> 20
            ),
            retry_after_secs: until_room(&uploaded, DAY_MS),
        });
    }
    Ok(())
}
