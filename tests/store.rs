//! The store's checkpointer passes the graph engine's conformance suite on both databases:
//! SQLite in a temporary folder, and a real Postgres 16 (with pgvector) that `scripts/test`
//! starts and names in `MONTAGE_TEST_POSTGRES_URL`; each test gets its own database.

use montage::store::{Database, StoreError};
use std::sync::Arc;

/// A fresh Postgres database on the test server.
async fn postgres() -> Database {
    let admin = std::env::var("MONTAGE_TEST_POSTGRES_URL").expect(
        "MONTAGE_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts Postgres",
    );
    let name = format!("montage_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Database::connect(&format!("{base}/{name}")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sqlite_checkpointer_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open_default(dir.path()).await.unwrap();
    montage_graph::checkpoint::conformance::run_suite(Arc::new(database.checkpointer())).await;
    // Opening again finds the migrations applied and the data kept.
    let again = Database::open_default(dir.path()).await.unwrap();
    let Database::Sqlite(pool) = again else {
        panic!("the default is SQLite")
    };
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(count > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_checkpointer_passes_the_conformance_suite() {
    let database = postgres().await;
    montage_graph::checkpoint::conformance::run_suite(Arc::new(database.checkpointer())).await;
    let Database::Postgres(pool) = database else {
        panic!("a postgres URL gives Postgres")
    };
    let (vector,): (String,) =
        sqlx::query_as("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!vector.is_empty(), "pgvector is available");
}

#[tokio::test]
async fn an_unknown_database_url_is_refused() {
    let error = Database::connect("mysql://somewhere/db").await.unwrap_err();
    assert!(matches!(error, StoreError::UnsupportedUrl(_)), "{error}");
}
