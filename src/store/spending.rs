//! What each person may spend on paid models in a calendar month, and what their runs have
//! committed: a run's estimate while it makes its pictures (so that two runs at once cannot
//! both take the same room), what it spent once it ended.

use super::{Database, StoreError};
use chrono::{Datelike, TimeZone, Utc};

/// The start of the calendar month (UTC) that `now_ms` falls in, in milliseconds.
pub fn month_start_ms(now_ms: i64) -> i64 {
    let now = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now);
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |start| start.timestamp_millis())
}

impl Database {
    /// `user`'s own monthly budget, in US dollars, when one is set.
    pub async fn monthly_budget(&self, user: &str) -> Result<Option<f64>, StoreError> {
        let row: Option<(Option<f64>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT monthly_budget_usd FROM users WHERE id = $1",
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|(usd,)| usd))
    }

    /// Sets (or, with none, clears) the monthly budget of the user named `name`: whether
    /// there is such a user.
    pub async fn set_monthly_budget(
        &self,
        name: &str,
        usd: Option<f64>,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET monthly_budget_usd = $2 WHERE name = $1",
        )
        .bind(name)
        .bind(usd)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(changed > 0)
    }

    /// What `owner`'s runs created since `since_ms` have committed, leaving out `except`.
    pub async fn committed_since(
        &self,
        owner: &str,
        since_ms: i64,
        except: &str,
    ) -> Result<f64, StoreError> {
        let (usd,): (Option<f64>,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT SUM(committed_usd) FROM runs WHERE owner = $1 AND created_at_ms >= $2 AND id <> $3",
        )
        .bind(owner)
        .bind(since_ms)
        .bind(except)
        .fetch_one(pool)
        .await)?;
        Ok(usd.unwrap_or(0.0))
    }

    /// Records what run `id` has committed to spending.
    pub async fn commit_spending(&self, id: &str, usd: f64) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE runs SET committed_usd = $2 WHERE id = $1")
            .bind(id)
            .bind(usd)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_at_midnight_on_its_first_day() {
        // 2026-12-02T06:52:03Z
        assert_eq!(month_start_ms(1_796_194_323_000), 1_796_083_200_000);
        // 2027-01-01T00:00:00Z is its own month's start.
        assert_eq!(month_start_ms(1_798_761_600_000), 1_798_761_600_000);
    }
}
