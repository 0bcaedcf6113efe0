//! The store's checkpointer passes the graph engine's conformance suite on both databases:
//! SQLite in a temporary folder, and a real Postgres 16 (with pgvector) that `scripts/test`
//! starts and names in `MONTAGE_TEST_POSTGRES_URL`; each test gets its own database.

use montage::store::{Database, StoreError};
use std::sync::Arc;

mod common;

/// A run with nothing but an id.
fn plain_run(id: &str) -> montage::store::NewRun {
    montage::store::NewRun {
        id: id.into(),
        prompt: "p".into(),
        config: serde_json::json!({}),
        input: None,
        parent: None,
        owner: None,
    }
}

/// A fresh Postgres database on the test server.
async fn postgres() -> Database {
    Database::connect(&common::fresh_postgres_url().await)
        .await
        .unwrap()
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

/// A run's record and events round-trip, events replay from any seq, and a second copy of an
/// event changes nothing.
async fn runs_and_events(database: &Database) {
    use montage::store::RunStatus;
    use montage_graph::{Event, EventKind, ThreadId};
    let run = ThreadId::random();
    let config = serde_json::json!({ "render": { "crf": 20 } });
    let new_run = |prompt: &str| montage::store::NewRun {
        id: run.to_string(),
        prompt: prompt.into(),
        config: config.clone(),
        input: None,
        parent: None,
        owner: None,
    };
    database
        .create_run(&new_run("a calm beach"), RunStatus::Queued)
        .await
        .unwrap();
    assert!(
        database
            .create_run(&new_run("again"), RunStatus::Queued)
            .await
            .is_err(),
        "ids are unique"
    );
    let stored = database.run(run.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.prompt.as_str(), &stored.config),
        (RunStatus::Queued, "a calm beach", &config)
    );
    database
        .set_run_status(run.as_str(), RunStatus::Failed, Some("boom"))
        .await
        .unwrap();
    let failed = database.run(run.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (RunStatus::Failed, Some("boom"))
    );
    assert!(database.run("no-such-run").await.unwrap().is_none());

    let kinds = [
        EventKind::RunStarted,
        EventKind::NodeStarted {
            node: "intent".into(),
            item: None,
            attempt: 1,
        },
        EventKind::Progress {
            node: "compose".into(),
            item: None,
            fraction: 0.5,
            message: "preview".into(),
        },
        EventKind::Interrupted {
            node: "feedback".into(),
            question: serde_json::json!({ "text": "darker?" }),
        },
    ];
    let events: Vec<Event> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            seq: i as u64 + 1,
            thread: run.clone(),
            at_ms: 1_000 + i as u64,
            kind,
        })
        .collect();
    for event in &events {
        database.append_event(event).await.unwrap();
    }
    database.append_event(&events[1]).await.unwrap();
    assert_eq!(
        database.events_since(run.as_str(), 0).await.unwrap(),
        events
    );
    assert_eq!(
        database.events_since(run.as_str(), 2).await.unwrap(),
        events[2..]
    );
    assert!(
        database
            .events_since(run.as_str(), 4)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_and_events_are_kept_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    runs_and_events(&Database::open_default(dir.path()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_and_events_are_kept_on_postgres() {
    runs_and_events(&postgres().await).await;
}

/// A cached generation comes back by its request hash, a second put changes nothing, and
/// similar prompts are found nearest first.
async fn generation_cache(database: &Database) {
    use montage::objects::ObjectRef;
    use montage::store::CacheEntry;
    use montage_models::local::embed_text;
    let entry = |hash: &str, prompt: &str| CacheEntry {
        request_hash: hash.to_owned(),
        object: ObjectRef {
            key: format!("images/{hash}.png"),
            sha256: hash.to_owned(),
            size: 1234,
            media_type: "image/png".into(),
        },
        model: "local/procedural-1".into(),
        seconds: None,
        words: Vec::new(),
        embedding: embed_text(prompt),
        embedding_model: "local/hashing-256".into(),
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let city = entry(
        &format!("city-{suffix}"),
        "wide shot of a neon city at night, rain",
    );
    let beach = entry(
        &format!("beach-{suffix}"),
        "a calm beach in the morning sun",
    );
    database.cache_put(&city).await.unwrap();
    database.cache_put(&beach).await.unwrap();
    database
        .cache_put(&CacheEntry {
            model: "other".into(),
            ..city.clone()
        })
        .await
        .unwrap();
    let got = database
        .cache_get(&city.request_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.object, city.object);
    assert_eq!(got.model, "local/procedural-1", "the first entry stays");
    assert!(got.words.is_empty());
    let said = CacheEntry {
        seconds: Some(1.2),
        words: vec![
            montage_models::SpokenWord {
                text: "Hello".into(),
                start: 0.0,
                end: 0.43,
            },
            montage_models::SpokenWord {
                text: "there.".into(),
                start: 0.51,
                end: 1.14,
            },
        ],
        ..entry(&format!("speech-{suffix}"), "Hello there.")
    };
    database.cache_put(&said).await.unwrap();
    let heard = database
        .cache_get(&said.request_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        heard.words, said.words,
        "a line's word times come back with it"
    );
    assert!(
        got.embedding
            .iter()
            .zip(&city.embedding)
            .all(|(a, b)| (a - b).abs() < 1e-5)
    );
    assert!(
        database
            .cache_get("no-such-request")
            .await
            .unwrap()
            .is_none()
    );

    let similar = database
        .cache_similar(
            "local/hashing-256",
            &embed_text("neon city at night, close-up"),
            2,
        )
        .await
        .unwrap();
    assert_eq!(similar[0].0.request_hash, city.request_hash, "{similar:?}");
    assert!(similar[0].1 > similar[1].1);

    // Another model's vectors, of another length, live beside them and never meet them.
    let model = format!("openai/embed-{suffix}@3");
    let other = CacheEntry {
        embedding: vec![0.6, 0.8, 0.0],
        embedding_model: model.clone(),
        ..entry(&format!("other-{suffix}"), "x")
    };
    database.cache_put(&other).await.unwrap();
    let local = database
        .cache_similar("local/hashing-256", &embed_text("x"), 1000)
        .await
        .unwrap();
    assert!(
        local
            .iter()
            .all(|(e, _)| e.embedding_model == "local/hashing-256")
    );
    assert!(
        local
            .iter()
            .all(|(e, _)| e.request_hash != other.request_hash)
    );
    let theirs = database
        .cache_similar(&model, &[0.0, 1.0, 0.0], 10)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0].0.request_hash, other.request_hash);
    assert!((theirs[0].1 - 0.8).abs() < 1e-4, "{}", theirs[0].1);
    let long = CacheEntry {
        embedding: (0..1536).map(|i| (i as f32).sin()).collect(),
        embedding_model: format!("openai/large-{suffix}"),
        ..entry(&format!("long-{suffix}"), "x")
    };
    database.cache_put(&long).await.unwrap();
    let found = database
        .cache_similar(&long.embedding_model, &long.embedding, 1)
        .await
        .unwrap();
    assert_eq!(found[0].0.embedding.len(), 1536);
    assert!(found[0].1 > 0.999);
    let empty = CacheEntry {
        embedding: Vec::new(),
        ..entry(&format!("empty-{suffix}"), "x")
    };
    assert!(
        database.cache_put(&empty).await.is_err(),
        "an embedding has at least one dimension"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generation_cache_works_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    generation_cache(&Database::open_default(dir.path()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generation_cache_works_on_postgres() {
    generation_cache(&postgres().await).await;
}

/// A run's objects and ledger round-trip, and recording them again changes nothing.
async fn assets_and_ledger(database: &Database) {
    use montage::objects::ObjectRef;
    use montage::store::{AssetRow, LedgerRow, RunStatus};
    let run = uuid::Uuid::new_v4().to_string();
    database
        .create_run(&plain_run(&run), RunStatus::Running)
        .await
        .unwrap();
    let object = |key: &str| ObjectRef {
        key: key.into(),
        sha256: "ab".into(),
        size: 10,
        media_type: "image/png".into(),
    };
    let assets = vec![
        AssetRow {
            object: object("images/a.png"),
            kind: "scene".into(),
            scene: Some(0),
            round: Some(1),
        },
        AssetRow {
            object: object("images/b.png"),
            kind: "scene".into(),
            scene: Some(1),
            round: Some(2),
        },
        AssetRow {
            object: object("videos/v.mp4"),
            kind: "video".into(),
            scene: None,
            round: None,
        },
    ];
    for asset in assets.iter().chain(&assets) {
        database.record_asset(&run, asset).await.unwrap();
    }
    assert_eq!(database.assets_of(&run).await.unwrap(), assets);
    let ledger = vec![
        LedgerRow {
            node: "intent".into(),
            scene: None,
            capability: "text".into(),
            model: "local/heuristic-1".into(),
            usd: 0.0,
            cached: false,
        },
        LedgerRow {
            node: "assets".into(),
            scene: Some(1),
            capability: "image".into(),
            model: "remote/x".into(),
            usd: 0.04,
            cached: true,
        },
    ];
    database.record_costs(&run, &ledger).await.unwrap();
    database.record_costs(&run, &ledger).await.unwrap();
    assert_eq!(database.ledger_of(&run).await.unwrap(), ledger);
    assert!(database.assets_of("other").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_and_the_ledger_are_kept_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    assets_and_ledger(&Database::open_default(dir.path()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_and_the_ledger_are_kept_on_postgres() {
    assets_and_ledger(&postgres().await).await;
}

/// The queue hands out answered runs first, then the oldest; a stopped server's running runs
/// go back in the queue; revisions count up within their family; uploads and run objects are
/// found by checksum.
async fn queue_revisions_and_uploads(database: &Database) {
    use montage::objects::ObjectRef;
    use montage::store::{AssetRow, NewRun, RunStatus, StoredUpload};
    let local = database.local_user().await.unwrap();
    assert_eq!(database.local_user().await.unwrap(), local, "made once");
    let (alice, token) = database.add_user("alice", false).await.unwrap();
    assert_eq!(
        database.user_by_token(&token).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(database.user_by_token("mtg_guess").await.unwrap(), None);
    assert!(
        database.add_user("alice", false).await.is_err(),
        "names are unique"
    );
    assert!(database.add_user("a b", false).await.is_err());
    assert!(database.add_user("local", false).await.is_err());
    let ids: Vec<String> = (0..4).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for id in &ids {
        let run = NewRun {
            input: Some(serde_json::json!({ "id": id })),
            owner: Some(local.id.clone()),
            ..plain_run(id)
        };
        database.create_run(&run, RunStatus::Queued).await.unwrap();
    }
    // The third waits for an answer, then gets one: it goes first.
    assert!(
        database
            .move_run(&ids[2], RunStatus::Queued, RunStatus::Waiting)
            .await
            .unwrap()
    );
    assert!(
        !database
            .move_run(&ids[2], RunStatus::Queued, RunStatus::Running)
            .await
            .unwrap()
    );
    let answer = serde_json::json!({ "action": "skip" });
    assert!(
        database
            .queue_answer(&ids[2], &answer, "asked-at")
            .await
            .unwrap()
    );
    assert!(
        !database
            .queue_answer(&ids[2], &answer, "asked-at")
            .await
            .unwrap(),
        "only a waiting run takes an answer"
    );
    let first = database.claim_next_run().await.unwrap().unwrap();
    assert_eq!(
        (
            first.id.as_str(),
            first.answer.as_ref(),
            first.answer_to.as_deref()
        ),
        (ids[2].as_str(), Some(&answer), Some("asked-at"))
    );
    // While it executes with that answer, a question it stops at next is a new one.
    let executing = database.run(&ids[2]).await.unwrap().unwrap();
    assert_eq!(executing.status, RunStatus::Running);
    assert!(executing.answered_at("asked-at"));
    assert!(!executing.answered_at("asked-later"));
    let second = database.claim_next_run().await.unwrap().unwrap();
    assert_eq!(second.id, ids[0]);
    assert_eq!(second.input, Some(serde_json::json!({ "id": ids[0] })));
    assert_eq!(second.answer, None);
    // A restart puts both back, in their order, ahead of the rest.
    assert_eq!(database.requeue_running().await.unwrap(), 2);
    let mut claimed = Vec::new();
    while let Some(run) = database.claim_next_run().await.unwrap() {
        claimed.push(run.id);
    }
    assert_eq!(
        claimed,
        [
            ids[2].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[3].clone()
        ]
    );
    database
        .set_run_status(&ids[2], RunStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(database.claim_next_run().await.unwrap(), None);
    let counts = database.count_runs().await.unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect::<std::collections::BTreeMap<_, _>>(),
        [("completed", 1), ("running", 3)].into_iter().collect()
    );

    // Revisions: v2 of the first run, and v3 when its revision is revised.
    let v2 = uuid::Uuid::new_v4().to_string();
    let v3 = uuid::Uuid::new_v4().to_string();
    database
        .create_run(
            &NewRun {
                parent: Some(ids[2].clone()),
                ..plain_run(&v2)
            },
            RunStatus::Queued,
        )
        .await
        .unwrap();
    database
        .create_run(
            &NewRun {
                parent: Some(v2.clone()),
                ..plain_run(&v3)
            },
            RunStatus::Queued,
        )
        .await
        .unwrap();
    let stored = database.run(&v3).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.parent.as_deref()),
        (3, Some(v2.as_str()))
    );
    assert_eq!(database.run(&ids[2]).await.unwrap().unwrap().version, 1);
    assert!(
        database
            .create_run(
                &NewRun {
                    parent: Some("nope".into()),
                    ..plain_run("orphan")
                },
                RunStatus::Queued
            )
            .await
            .is_err(),
        "a revision of nothing is refused"
    );
    let listed = database.list_runs(&local.id, 2, None).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].created_at_ms >= listed[1].created_at_ms);
    assert!(
        database
            .list_runs(&alice.id, 10, None)
            .await
            .unwrap()
            .is_empty()
    );

    // Uploads and run objects by checksum.
    let object = |sha: &str| ObjectRef {
        key: format!("uploads/{sha}.png"),
        sha256: sha.into(),
        size: 7,
        media_type: "image/png".into(),
    };
    let upload = StoredUpload {
        id: uuid::Uuid::new_v4().to_string(),
        name: "my <script> photo.png".into(),
        kind: "image".into(),
        object: object("aa11"),
        created_at_ms: 5,
        owner: local.id.clone(),
    };
    database.record_upload(&upload).await.unwrap();
    assert_eq!(
        database.upload(&upload.id).await.unwrap(),
        Some(upload.clone())
    );
    assert_eq!(database.upload("missing").await.unwrap(), None);
    assert_eq!(
        database.object_by_sha(&local.id, "aa11").await.unwrap(),
        Some(object("aa11"))
    );
    assert_eq!(
        database.object_by_sha(&alice.id, "aa11").await.unwrap(),
        None
    );
    database
        .record_asset(
            &ids[0],
            &AssetRow {
                object: object("bb22"),
                kind: "scene".into(),
                scene: Some(0),
                round: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        database.object_by_sha(&local.id, "bb22").await.unwrap(),
        Some(object("bb22"))
    );
    assert_eq!(
        database.object_by_sha(&alice.id, "bb22").await.unwrap(),
        None
    );
    assert_eq!(
        database.object_by_sha(&local.id, "cc33").await.unwrap(),
        None
    );
    assert_eq!(database.last_event_seq(&ids[0]).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_revisions_and_uploads_work_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    queue_revisions_and_uploads(&Database::open_default(dir.path()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_revisions_and_uploads_work_on_postgres() {
    queue_revisions_and_uploads(&postgres().await).await;
}
