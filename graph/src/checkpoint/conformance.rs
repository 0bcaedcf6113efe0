//! The conformance suite every [`Checkpointer`] must pass (feature `test-util`).
//!
//! Call [`run_suite`] from a test with a fresh or shared checkpointer: each check uses its
//! own random thread ids, so one database can serve every check. Failures panic with a
//! message naming the broken promise.

use super::{Checkpoint, CheckpointMeta, Checkpointer, Interrupt, PendingWrite, RunStatus};
use crate::error::{CheckpointError, MergeError, NodeError};
use crate::state::{Counters, State, StepWrites};
use crate::{CheckpointId, Command, END, RunConfig, RunOutcome, START, StateGraph, ThreadId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs every check against `checkpointer`.
pub async fn run_suite(checkpointer: Arc<dyn Checkpointer>) {
    unknown_threads_are_empty(&*checkpointer).await;
    put_then_read_back(&*checkpointer).await;
    conflicting_puts_are_rejected(&*checkpointer).await;
    replay_chain_starts_at_the_last_snapshot(&*checkpointer).await;
    threads_are_isolated(&*checkpointer).await;
    pending_writes_round_trip(&*checkpointer).await;
    large_blobs_round_trip(&*checkpointer).await;
    a_graph_resumes_on_another_runner(Arc::clone(&checkpointer)).await;
}

fn checkpoint(
    thread: &ThreadId,
    step: u64,
    parent: Option<CheckpointId>,
    snapshot: bool,
) -> Checkpoint {
    Checkpoint {
        thread: thread.clone(),
        id: CheckpointId::new(),
        parent,
        step,
        snapshot: snapshot.then(|| format!("{{\"step\":{step}}}").into_bytes()),
        writes: format!("[[\"node\",{step}]]").into_bytes(),
        meta: CheckpointMeta {
            status: RunStatus::Running,
            next: vec![format!("n{step}")],
            counters: Counters::default(),
            interrupt: None,
            answer: None,
            error: None,
            event_seq: step * 3,
            forked_from: None,
            created_at_ms: 1_700_000_000_000 + step,
        },
    }
}

async fn put_chain(
    store: &dyn Checkpointer,
    thread: &ThreadId,
    snapshots: &[u64],
    len: u64,
) -> Vec<Checkpoint> {
    let mut chain: Vec<Checkpoint> = Vec::new();
    for step in 0..len {
        let parent = chain.last().map(|c| c.id);
        let c = checkpoint(thread, step, parent, snapshots.contains(&step));
        store.put(&c).await.expect("put a new checkpoint");
        chain.push(c);
    }
    chain
}

async fn unknown_threads_are_empty(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    assert!(
        store.latest(&thread).await.unwrap().is_none(),
        "latest of an unknown thread"
    );
    assert!(
        store.history(&thread).await.unwrap().is_empty(),
        "history of an unknown thread"
    );
    assert!(
        store
            .get(&thread, CheckpointId::new())
            .await
            .unwrap()
            .is_none(),
        "get of an unknown checkpoint"
    );
    assert!(
        store
            .replay_chain(&thread, CheckpointId::new())
            .await
            .unwrap()
            .is_empty(),
        "replay chain of an unknown checkpoint"
    );
    assert!(
        store
            .pending_writes(&thread, CheckpointId::new())
            .await
            .unwrap()
            .is_empty(),
        "pending writes of an unknown checkpoint"
    );
}

async fn put_then_read_back(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    let mut chain = put_chain(store, &thread, &[0], 3).await;
    let mut last = chain.last().unwrap().clone();
    last.parent = Some(last.id);
    last.meta.status = RunStatus::Interrupted;
    last.meta.interrupt = Some(Interrupt {
        node: "feedback".into(),
        question: json!({"scenes": [3], "text": "darker than scene 2 — keep?"}),
    });
    last.meta.answer = Some(json!("ok"));
    last.meta.error = Some("boom".into());
    last.meta.forked_from = Some((ThreadId::random(), CheckpointId::new()));
    let mut counters = Counters::default();
    counters.increment("iterations");
    counters.visit("plan");
    last.meta.counters = counters;
    last.id = CheckpointId::new();
    last.step = 5;
    store.put(&last).await.expect("put with every meta field");
    chain.push(last.clone());

    assert_eq!(
        store.latest(&thread).await.unwrap().as_ref(),
        Some(&last),
        "latest is the highest step, intact"
    );
    assert_eq!(
        store.get(&thread, chain[0].id).await.unwrap().as_ref(),
        Some(&chain[0]),
        "get by id"
    );
    assert_eq!(
        store.history(&thread).await.unwrap(),
        chain,
        "history, oldest first"
    );
}

async fn conflicting_puts_are_rejected(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    let chain = put_chain(store, &thread, &[0], 2).await;
    let same_step = checkpoint(&thread, 1, Some(chain[0].id), false);
    assert!(
        matches!(
            store.put(&same_step).await,
            Err(CheckpointError::Conflict { .. })
        ),
        "a second checkpoint at the same step must conflict (two runners on one thread)"
    );
    let older_step = checkpoint(&thread, 0, None, true);
    assert!(
        matches!(
            store.put(&older_step).await,
            Err(CheckpointError::Conflict { .. })
        ),
        "a checkpoint behind the latest step must conflict"
    );
    assert_eq!(
        store.history(&thread).await.unwrap(),
        chain,
        "a rejected put changes nothing"
    );
}

async fn replay_chain_starts_at_the_last_snapshot(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    let chain = put_chain(store, &thread, &[0, 3], 6).await;
    let steps = |cs: Vec<Checkpoint>| cs.into_iter().map(|c| c.step).collect::<Vec<_>>();
    assert_eq!(
        steps(store.replay_chain(&thread, chain[2].id).await.unwrap()),
        [0, 1, 2]
    );
    assert_eq!(
        steps(store.replay_chain(&thread, chain[3].id).await.unwrap()),
        [3]
    );
    assert_eq!(
        steps(store.replay_chain(&thread, chain[5].id).await.unwrap()),
        [3, 4, 5]
    );
    let full = store.replay_chain(&thread, chain[4].id).await.unwrap();
    assert_eq!(
        full,
        chain[3..=4].to_vec(),
        "replay chain entries are whole checkpoints"
    );
}

async fn threads_are_isolated(store: &dyn Checkpointer) {
    let (a, b) = (ThreadId::random(), ThreadId::random());
    let chain_a = put_chain(store, &a, &[0], 2).await;
    let chain_b = put_chain(store, &b, &[0], 3).await;
    assert_eq!(store.history(&a).await.unwrap(), chain_a);
    assert_eq!(store.history(&b).await.unwrap(), chain_b);
    assert!(
        store.get(&a, chain_b[0].id).await.unwrap().is_none(),
        "a checkpoint is only found on its own thread"
    );
    assert!(
        store
            .replay_chain(&a, chain_b[2].id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn pending_writes_round_trip(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    let chain = put_chain(store, &thread, &[0], 2).await;
    let write = |task: &str, output: &str| PendingWrite {
        task: task.into(),
        output: output.as_bytes().to_vec(),
    };
    store
        .put_write(&thread, chain[1].id, &write("assets#2", "\"two\""))
        .await
        .unwrap();
    store
        .put_write(&thread, chain[1].id, &write("assets#0", "\"zero\""))
        .await
        .unwrap();
    store
        .put_write(&thread, chain[1].id, &write("assets#2", "\"two again\""))
        .await
        .unwrap();
    store
        .put_write(&thread, chain[0].id, &write("other", "1"))
        .await
        .unwrap();
    assert_eq!(
        store.pending_writes(&thread, chain[1].id).await.unwrap(),
        vec![
            write("assets#2", "\"two again\""),
            write("assets#0", "\"zero\"")
        ],
        "pending writes: replaced in place, in first-stored order, only for that checkpoint"
    );
    let other = ThreadId::random();
    assert!(
        store
            .pending_writes(&other, chain[1].id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn large_blobs_round_trip(store: &dyn Checkpointer) {
    let thread = ThreadId::random();
    let mut big = checkpoint(&thread, 0, None, true);
    let payload: String = (0..1 << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    big.snapshot = Some(format!("\"{payload}\"").into_bytes());
    big.writes = format!("[[\"n\",\"{payload}\"]]").into_bytes();
    store.put(&big).await.unwrap();
    assert_eq!(
        store.latest(&thread).await.unwrap(),
        Some(big),
        "a 1 MiB snapshot round-trips"
    );
}

/// A tiny state for the engine-level check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    log: Vec<String>,
}

impl State for Tally {
    type Update = String;
    fn merge(&mut self, update: String, _: &mut StepWrites) -> Result<(), MergeError> {
        self.log.push(update);
        Ok(())
    }
}

fn tally_graph(
    runs: Arc<AtomicUsize>,
    store: Arc<dyn Checkpointer>,
) -> crate::CompiledGraph<Tally> {
    let mut graph = StateGraph::<Tally>::new();
    let counted = Arc::clone(&runs);
    graph.add_node("draft", move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(Command::update("drafted".to_string())) }
    });
    graph
        .add_node("ask", |_, _| async {
            Ok(Command::update("asked".to_string()).interrupt(json!({"question": "ship it?"})))
        })
        .on_answer(|_, answer| {
            answer
                .as_str()
                .map(|a| format!("answer:{a}"))
                .ok_or_else(|| NodeError::permanent("answer must be a string"))
        });
    graph.add_fan_out(
        "render",
        |_: &Tally| vec![1, 2, 3],
        |_, i: i32, _| async move { Ok(format!("rendered {i}")) },
    );
    graph.add_edge(START, "draft");
    graph.add_edge("draft", "ask");
    graph.add_edge("ask", "render");
    graph.add_edge("render", END);
    graph
        .compile()
        .expect("valid graph")
        .with_checkpointer(store)
}

async fn a_graph_resumes_on_another_runner(store: Arc<dyn Checkpointer>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let thread = ThreadId::random();
    let first = tally_graph(Arc::clone(&runs), Arc::clone(&store));
    let outcome = first
        .invoke(&thread, Tally::default(), RunConfig::default())
        .await
        .unwrap();
    assert!(matches!(outcome, RunOutcome::Interrupted { ref node, .. } if node == "ask"));

    let second = tally_graph(Arc::clone(&runs), Arc::clone(&store));
    let done = second
        .resume(&thread, json!("yes"), RunConfig::default())
        .await
        .unwrap();
    let expected = [
        "drafted",
        "asked",
        "answer:yes",
        "rendered 1",
        "rendered 2",
        "rendered 3",
    ];
    assert_eq!(
        done,
        RunOutcome::Completed(Tally {
            log: expected.map(String::from).to_vec()
        })
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "resuming never re-runs a finished node"
    );
    let state = second.state(&thread).await.unwrap();
    assert_eq!(state.status, RunStatus::Completed);
    assert_eq!(
        state.state.log, expected,
        "the state rebuilt from the store matches"
    );
}
