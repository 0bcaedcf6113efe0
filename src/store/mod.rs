//! The database: SQLite (bundled, a file under the data folder) by default, Postgres when
//! `DATABASE_URL` is a `postgres://` URL. Migrations for each live in `migrations/sqlite` and
//! `migrations/postgres`, are embedded in the binary and applied on connecting.
//!
//! - [`checkpoints`]: the graph engine's [`Checkpointer`](montage_graph::Checkpointer) on
//!   either database.
//! - [`runs`]: runs (status, configuration, lineage) and their events.
//! - [`cache`]: the generation cache, with embeddings for similarity look-ups.
//! - [`chats`]: conversations and their messages.
//! - [`ledger`]: each run's objects (with lineage) and its cost ledger.
//! - [`uploads`]: files people uploaded for their runs.
//! - [`users`]: people and their API tokens; everything else belongs to one of them.

/// Runs `$body` with `$pool` bound to whichever pool the database has: the statement is
/// written once and compiled for both drivers.
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            Database::Sqlite($pool) => $body,
            Database::Postgres($pool) => $body,
        }
    };
}

pub mod cache;
pub mod chats;
pub mod checkpoints;
pub mod jobs;
pub mod ledger;
pub mod removal;
pub mod runs;
pub mod spending;
pub mod uploads;
pub mod usage;
pub mod users;

pub use cache::CacheEntry;
pub use chats::{Chat, ChatMessage};
pub use checkpoints::SqlCheckpointer;
pub use ledger::{AssetRow, LedgerRow};
pub use runs::{ClaimedRun, NewRun, RunStatus, StoredRun};
pub use uploads::StoredUpload;
pub use users::{LOCAL_USER, User, UserError};

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::time::Duration;

/// Migrations: (version, description, SQLite script, Postgres script).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "checkpoints",
        include_str!("../../migrations/sqlite/0001_checkpoints.sql"),
        include_str!("../../migrations/postgres/0001_checkpoints.sql"),
    ),
    (
        2,
        "runs and events",
        include_str!("../../migrations/sqlite/0002_runs_events.sql"),
        include_str!("../../migrations/postgres/0002_runs_events.sql"),
    ),
    (
        3,
        "generation cache",
        include_str!("../../migrations/sqlite/0003_generation_cache.sql"),
        include_str!("../../migrations/postgres/0003_generation_cache.sql"),
    ),
    (
        4,
        "assets and cost ledger",
        include_str!("../../migrations/sqlite/0004_assets_ledger.sql"),
        include_str!("../../migrations/postgres/0004_assets_ledger.sql"),
    ),
    (
        5,
        "run queue and uploads",
        include_str!("../../migrations/sqlite/0005_queue_uploads.sql"),
        include_str!("../../migrations/postgres/0005_queue_uploads.sql"),
    ),
    (
        6,
        "users and tokens",
        include_str!("../../migrations/sqlite/0006_users.sql"),
        include_str!("../../migrations/postgres/0006_users.sql"),
    ),
    (
        7,
        "chats",
        include_str!("../../migrations/sqlite/0007_chats.sql"),
        include_str!("../../migrations/postgres/0007_chats.sql"),
    ),
    (
        8,
        "version indexes",
        include_str!("../../migrations/sqlite/0008_version_indexes.sql"),
        include_str!("../../migrations/postgres/0008_version_indexes.sql"),
    ),
    (
        9,
        "answers bound to their question, admins",
        include_str!("../../migrations/sqlite/0009_hardening.sql"),
        include_str!("../../migrations/postgres/0009_hardening.sql"),
    ),
    (
        10,
        "embedding models",
        include_str!("../../migrations/sqlite/0010_embedding_models.sql"),
        include_str!("../../migrations/postgres/0010_embedding_models.sql"),
    ),
    (
        11,
        "paid jobs",
        include_str!("../../migrations/sqlite/0011_paid_jobs.sql"),
        include_str!("../../migrations/postgres/0011_paid_jobs.sql"),
    ),
    (
        12,
        "monthly budgets, word times",
        include_str!("../../migrations/sqlite/0012_monthly_budgets.sql"),
        include_str!("../../migrations/postgres/0012_monthly_budgets.sql"),
    ),
];

/// A stored record that cannot be read back (or written as given).
fn damaged(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database Montage supports.
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    /// Connecting or querying failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data folder could not be created.
    #[error("creating {path}: {source}")]
    Folder {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A connection pool to one of the two databases.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded default.
    Sqlite(SqlitePool),
    /// Postgres (with pgvector) for scale.
    Postgres(PgPool),
}

impl Database {
    /// The embedded database: `montage.db` in `data_dir`, created when missing.
    pub async fn open_default(data_dir: &Path) -> Result<Database, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Folder {
            path: data_dir.to_owned(),
            source,
        })?;
        Database::sqlite(SqliteConnectOptions::new().filename(data_dir.join("montage.db"))).await
    }

    /// A SQLite database from `options`: created when missing, write-ahead logged, waiting
    /// on a busy lock rather than failing at once.
    async fn sqlite(options: SqliteConnectOptions) -> Result<Database, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let database = Database::Sqlite(pool);
        database.migrate().await?;
        Ok(database)
    }

    /// Connects to `url` (`postgres://…` or `sqlite://…`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            let database = Database::Postgres(pool);
            database.migrate().await?;
            Ok(database)
        } else if url.starts_with("sqlite:") {
            Database::sqlite(url.parse()?).await
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let postgres = matches!(self, Database::Postgres(_));
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sqlite, pg)| {
                let sql = if postgres { *pg } else { *sqlite };
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        match self {
            Database::Sqlite(pool) => migrator.run(pool).await?,
            Database::Postgres(pool) => migrator.run(pool).await?,
        }
        Ok(())
    }

    /// The graph checkpointer on this database.
    pub fn checkpointer(&self) -> SqlCheckpointer {
        SqlCheckpointer::new(self.clone())
    }
}
