//! Time per step of the pipeline-shaped bench graph (montage-graph's `testing` module, 23
//! steps a run) with the store's checkpointer on SQLite and on Postgres, checkpoint saved after
//! every step. `scripts/bench-graph` runs it with a throwaway Postgres and prints it beside
//! LangGraph's SQLite and Postgres savers on the same graph.
//!
//! `MONTAGE_BENCH_POSTGRES_URL` names the Postgres server (each run makes its own database);
//! without it only SQLite is measured.

#![allow(clippy::print_stdout, reason = "a bench prints its figures")]

use montage::store::Database;
use montage_graph::testing::{PIPELINE_STEPS, PipelineState, pipeline_graph};
use montage_graph::{RunConfig, ThreadId};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn per_step(database: &Database, runs: u32) -> Duration {
    let graph = pipeline_graph().with_checkpointer(Arc::new(database.checkpointer()));
    let once = || async {
        let thread = ThreadId::random();
        let out = graph
            .invoke(&thread, PipelineState::default(), RunConfig::default())
            .await
            .expect("bench run");
        assert_eq!(u64::from(out.state().steps), PIPELINE_STEPS);
        graph.event_hub().forget(&thread);
    };
    for _ in 0..10 {
        once().await;
    }
    let start = Instant::now();
    for _ in 0..runs {
        once().await;
    }
    start.elapsed() / (runs * PIPELINE_STEPS as u32)
}

async fn postgres(admin: &str) -> Database {
    let name = format!("montage_bench_{}", std::process::id());
    let pool = sqlx::PgPool::connect(admin).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&pool)
    .await
    .expect("drop");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create");
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    Database::connect(&format!("{base}/{name}"))
        .await
        .expect("connect")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = Database::open_default(dir.path()).await.expect("sqlite");
        let sqlite_step = per_step(&sqlite, 200).await;
        println!(
            "montage store checkpointers per step, pipeline graph ({PIPELINE_STEPS} steps a run):"
        );
        println!(
            "  sqlite checkpointer:   {:>8.1} µs",
            sqlite_step.as_secs_f64() * 1e6
        );
        if let Ok(url) = std::env::var("MONTAGE_BENCH_POSTGRES_URL") {
            let pg = postgres(&url).await;
            let pg_step = per_step(&pg, 200).await;
            println!(
                "  postgres checkpointer: {:>8.1} µs",
                pg_step.as_secs_f64() * 1e6
            );
        }
    });
}
