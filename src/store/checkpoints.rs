//! Graph checkpoints in SQL. A checkpoint is one row (its step's updates, an occasional
//! snapshot, and its metadata as JSON); finished tasks of an unsaved step are rows of
//! `pending_writes`, folded away when the step's checkpoint is saved.

use super::Database;
use montage_graph::{
    Checkpoint, CheckpointError, CheckpointId, CheckpointMeta, Checkpointer, PendingWrite, ThreadId,
};
use sqlx::Row;

/// The graph engine's checkpointer on SQLite or Postgres.
#[derive(Debug, Clone)]
pub struct SqlCheckpointer {
    database: Database,
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> CheckpointError {
    CheckpointError::Backend(Box::new(error))
}

fn corrupt(what: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Corrupt(what.to_string())
}

/// A checkpoint row, read from either database.
struct Stored {
    thread: String,
    step: i64,
    id: String,
    parent: Option<String>,
    snapshot: Option<Vec<u8>>,
    writes: Vec<u8>,
    meta: String,
}

impl Stored {
    fn from_row<'r, R: Row>(row: &'r R) -> Result<Stored, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<String>: sqlx::Decode<'r, R::Database>,
        Option<Vec<u8>>: sqlx::Decode<'r, R::Database>,
    {
        Ok(Stored {
            thread: row.try_get(0)?,
            step: row.try_get(1)?,
            id: row.try_get(2)?,
            parent: row.try_get(3)?,
            snapshot: row.try_get(4)?,
            writes: row.try_get(5)?,
            meta: row.try_get(6)?,
        })
    }

    fn into_checkpoint(self) -> Result<Checkpoint, CheckpointError> {
        let id = |text: &str| {
            text.parse::<CheckpointId>()
                .map_err(|_| corrupt(format!("checkpoint id {text:?}")))
        };
        let meta: CheckpointMeta = serde_json::from_str(&self.meta).map_err(corrupt)?;
        Ok(Checkpoint {
            thread: ThreadId::new(self.thread),
            id: id(&self.id)?,
            parent: self.parent.as_deref().map(id).transpose()?,
            step: u64::try_from(self.step).map_err(corrupt)?,
            snapshot: self.snapshot,
            writes: self.writes,
            meta,
        })
    }
}

/// Columns of a checkpoint row; Postgres keeps `meta` as JSONB and hands it back as text.
macro_rules! select_sql {
    ($tail:literal) => {
        (
            concat!(
                "SELECT thread, step, id, parent, snapshot, writes, meta FROM checkpoints ",
                $tail
            ),
            concat!(
                "SELECT thread, step, id, parent, snapshot, writes, meta::text FROM checkpoints ",
                $tail
            ),
        )
    };
}

impl SqlCheckpointer {
    /// Checkpoints in `database`.
    pub fn new(database: Database) -> SqlCheckpointer {
        SqlCheckpointer { database }
    }

    /// The statement for this database: SQLite's or Postgres's spelling.
    fn pick(&self, (sqlite, postgres): (&'static str, &'static str)) -> &'static str {
        match self.database {
            Database::Sqlite(_) => sqlite,
            Database::Postgres(_) => postgres,
        }
    }

    async fn select(
        &self,
        sql: (&'static str, &'static str),
        thread: &str,
        id: Option<String>,
    ) -> Result<Vec<Checkpoint>, CheckpointError> {
        let sql = self.pick(sql);
        let stored: Vec<Stored> = on_pool!(&self.database, pool => {
            let mut query = sqlx::query(sql).bind(thread.to_owned());
            if let Some(id) = id {
                query = query.bind(id);
            }
            let rows = query.fetch_all(pool).await.map_err(backend)?;
            rows.iter().map(Stored::from_row).collect::<Result<_, _>>().map_err(backend)?
        });
        stored.into_iter().map(Stored::into_checkpoint).collect()
    }
}

#[async_trait::async_trait]
impl Checkpointer for SqlCheckpointer {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let conflict = || CheckpointError::Conflict {
            thread: checkpoint.thread.to_string(),
            step: checkpoint.step,
        };
        let step = i64::try_from(checkpoint.step).map_err(corrupt)?;
        let meta = serde_json::to_string(&checkpoint.meta).map_err(corrupt)?;
        let thread = checkpoint.thread.as_str().to_owned();
        let id = checkpoint.id.to_string();
        let parent = checkpoint.parent.map(|p| p.to_string());
        // One statement, so the check and the insert are atomic: no checkpoint may exist at
        // this step or later, nor with this id.
        let sql = self.pick((
            "INSERT INTO checkpoints (thread, step, id, parent, snapshot, writes, meta) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS \
             (SELECT 1 FROM checkpoints WHERE thread = $1 AND (step >= $2 OR id = $3))",
            "INSERT INTO checkpoints (thread, step, id, parent, snapshot, writes, meta) \
             SELECT $1, $2, $3, $4, $5, $6, $7::jsonb WHERE NOT EXISTS \
             (SELECT 1 FROM checkpoints WHERE thread = $1 AND (step >= $2 OR id = $3))",
        ));
        let inserted = on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(&thread)
            .bind(step)
            .bind(&id)
            .bind(&parent)
            .bind(&checkpoint.snapshot)
            .bind(&checkpoint.writes)
            .bind(&meta)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        match inserted {
            Ok(0) => return Err(conflict()),
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(conflict()),
            Err(e) => return Err(backend(e)),
        }
        // The parent step's pending writes are now part of this checkpoint.
        if let Some(parent) = parent {
            on_pool!(&self.database, pool => sqlx::query("DELETE FROM pending_writes WHERE thread = $1 AND after = $2")
                .bind(&thread)
                .bind(&parent)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(backend)?);
        }
        Ok(())
    }

    async fn get(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let sql = select_sql!("WHERE thread = $1 AND id = $2");
        Ok(self
            .select(sql, thread.as_str(), Some(id.to_string()))
            .await?
            .pop())
    }

    async fn latest(&self, thread: &ThreadId) -> Result<Option<Checkpoint>, CheckpointError> {
        let sql = select_sql!("WHERE thread = $1 ORDER BY step DESC LIMIT 1");
        Ok(self.select(sql, thread.as_str(), None).await?.pop())
    }

    async fn history(&self, thread: &ThreadId) -> Result<Vec<Checkpoint>, CheckpointError> {
        self.select(
            select_sql!("WHERE thread = $1 ORDER BY step"),
            thread.as_str(),
            None,
        )
        .await
    }

    async fn replay_chain(
        &self,
        thread: &ThreadId,
        id: CheckpointId,
    ) -> Result<Vec<Checkpoint>, CheckpointError> {
        // From the newest snapshot at or before the checkpoint, up to the checkpoint.
        let sql = select_sql!(
            "WHERE thread = $1 \
               AND step <= (SELECT step FROM checkpoints WHERE thread = $1 AND id = $2) \
               AND step >= COALESCE((SELECT MAX(step) FROM checkpoints WHERE thread = $1 AND snapshot IS NOT NULL \
                     AND step <= (SELECT step FROM checkpoints WHERE thread = $1 AND id = $2)), 0) \
             ORDER BY step"
        );
        self.select(sql, thread.as_str(), Some(id.to_string()))
            .await
    }

    async fn put_write(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
        write: &PendingWrite,
    ) -> Result<(), CheckpointError> {
        // Replacing keeps the first-stored position (the row's seq).
        let (thread, after) = (thread.as_str().to_owned(), after.to_string());
        on_pool!(&self.database, pool => sqlx::query(
            "INSERT INTO pending_writes (thread, after, task, output) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (thread, after, task) DO UPDATE SET output = excluded.output",
        )
        .bind(&thread)
        .bind(&after)
        .bind(&write.task)
        .bind(&write.output)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(backend))
    }

    async fn pending_writes(
        &self,
        thread: &ThreadId,
        after: CheckpointId,
    ) -> Result<Vec<PendingWrite>, CheckpointError> {
        let (thread, after) = (thread.as_str().to_owned(), after.to_string());
        let rows: Vec<(String, Vec<u8>)> = on_pool!(&self.database, pool => sqlx::query_as(
            "SELECT task, output FROM pending_writes WHERE thread = $1 AND after = $2 ORDER BY seq",
        )
        .bind(&thread)
        .bind(&after)
        .fetch_all(pool)
        .await
        .map_err(backend)?);
        Ok(rows
            .into_iter()
            .map(|(task, output)| PendingWrite { task, output })
            .collect())
    }
}
