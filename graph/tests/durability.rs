//! Crash and continue, failures, forks and time travel, storage growth.

mod common;

use common::{Up, Video, log};
use montage_graph::checkpoint::conformance;
use montage_graph::{
    Checkpointer, Command, CompiledGraph, END, Fork, GraphError, MemoryCheckpointer, NodeError,
    RunConfig, RunOutcome, RunStatus, START, StateGraph, ThreadId,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[tokio::test]
async fn the_memory_checkpointer_passes_the_conformance_suite() {
    conformance::run_suite(Arc::new(MemoryCheckpointer::new())).await;
}

#[derive(Default)]
struct Calls(Mutex<HashMap<String, usize>>);

impl Calls {
    fn hit(&self, key: impl Into<String>) {
        *self.0.lock().unwrap().entry(key.into()).or_default() += 1;
    }
    fn get(&self, key: &str) -> usize {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

/// intent → plan → assets (fan-out over 4 scenes; scene 2 blocks while `block` is set) → compose.
fn pipeline(
    calls: Arc<Calls>,
    block: Arc<AtomicBool>,
    entered: Arc<Notify>,
    store: Arc<dyn Checkpointer>,
) -> CompiledGraph<Video> {
    let mut g = StateGraph::<Video>::new();
    for name in ["intent", "plan", "compose"] {
        let calls = Arc::clone(&calls);
        g.add_node(name, move |_, _| {
            calls.hit(name);
            async move { Ok(Command::update(log(name))) }
        });
    }
    g.add_fan_out(
        "assets",
        |_: &Video| (0..4).collect(),
        move |_, scene: usize, _| {
            calls.hit(format!("assets#{scene}"));
            let (block, entered) = (Arc::clone(&block), Arc::clone(&entered));
            async move {
                if scene == 2 && block.load(Ordering::SeqCst) {
                    entered.notify_one();
                    std::future::pending::<()>().await;
                }
                Ok(Up::Scene(scene, format!("image {scene}")))
            }
        },
    );
    g.add_edge(START, "intent")
        .add_edge("intent", "plan")
        .add_edge("plan", "assets");
    g.add_edge("assets", "compose").add_edge("compose", END);
    g.compile().unwrap().with_checkpointer(store)
}

/// Waits until the store holds the results of `tasks` after the thread's latest checkpoint.
async fn kept(store: &dyn Checkpointer, thread: &ThreadId, tasks: &[&str]) {
    let all_kept = async {
        loop {
            if let Some(latest) = store.latest(thread).await.unwrap() {
                let writes = store.pending_writes(thread, latest.id).await.unwrap();
                if tasks.iter().all(|t| writes.iter().any(|w| w.task == *t)) {
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all_kept)
        .await
        .expect("the finished scenes' results were never kept");
}

#[tokio::test]
async fn a_new_runner_continues_a_crashed_run_without_redoing_finished_work() {
    let store: Arc<dyn Checkpointer> = Arc::new(MemoryCheckpointer::new());
    let calls = Arc::new(Calls::default());
    let block = Arc::new(AtomicBool::new(true));
    let entered = Arc::new(Notify::new());
    let thread = ThreadId::random();

    let first = pipeline(
        Arc::clone(&calls),
        Arc::clone(&block),
        Arc::clone(&entered),
        Arc::clone(&store),
    );
    let running = {
        let thread = thread.clone();
        tokio::spawn(async move {
            first
                .invoke(&thread, Video::default(), RunConfig::default())
                .await
        })
    };
    entered.notified().await;
    // Once the other scenes' results are kept, kill the runner mid-step.
    kept(
        store.as_ref(),
        &thread,
        &["assets#0", "assets#1", "assets#3"],
    )
    .await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    block.store(false, Ordering::SeqCst);

    let second = pipeline(Arc::clone(&calls), block, entered, Arc::clone(&store));
    assert_eq!(
        second.state(&thread).await.unwrap().status,
        RunStatus::Running
    );
    let out = second
        .continue_thread(&thread, RunConfig::default())
        .await
        .unwrap();
    let RunOutcome::Completed(video) = out else {
        panic!("the run should complete")
    };

    let reference = pipeline(
        Arc::new(Calls::default()),
        Arc::new(AtomicBool::new(false)),
        Arc::new(Notify::new()),
        Arc::new(MemoryCheckpointer::new()),
    )
    .invoke(&ThreadId::random(), Video::default(), RunConfig::default())
    .await
    .unwrap();
    assert_eq!(
        &video,
        reference.state(),
        "same final state as an uninterrupted run"
    );
    for finished in [
        "intent", "plan", "assets#0", "assets#1", "assets#3", "compose",
    ] {
        assert_eq!(calls.get(finished), 1, "{finished} ran once");
    }
    assert_eq!(
        calls.get("assets#2"),
        2,
        "only the unfinished item ran again"
    );
}

#[tokio::test]
async fn a_failed_run_continues_from_its_failure_keeping_finished_items() {
    let calls = Arc::new(Calls::default());
    let healthy = Arc::new(AtomicBool::new(false));
    let mut g = StateGraph::<Video>::new();
    let (c, h) = (Arc::clone(&calls), Arc::clone(&healthy));
    g.add_fan_out(
        "assets",
        |_: &Video| (0..3).collect(),
        move |_, scene: usize, _| {
            c.hit(format!("assets#{scene}"));
            let ok = scene != 1 || h.load(Ordering::SeqCst);
            async move {
                if ok {
                    Ok(Up::Scene(scene, "img".into()))
                } else {
                    Err(NodeError::permanent("model refused"))
                }
            }
        },
    );
    g.add_edge(START, "assets").add_edge("assets", END);
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let err = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::NodeFailed { ref node, item: Some(1), .. } if node == "assets"),
        "{err}"
    );
    let failed = graph.state(&thread).await.unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.next, ["assets"]);

    healthy.store(true, Ordering::SeqCst);
    let out = graph
        .continue_thread(&thread, RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().scenes.len(), 3);
    assert_eq!(
        (
            calls.get("assets#0"),
            calls.get("assets#1"),
            calls.get("assets#2")
        ),
        (1, 2, 1)
    );
}

fn counting_loop(calls: Arc<AtomicUsize>) -> CompiledGraph<Video> {
    let mut g = StateGraph::<Video>::new();
    g.add_node("step", move |state: Arc<Video>, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        let n = state.log.len();
        async move { Ok(Command::update(log(format!("step {n}")))) }
    });
    g.add_edge(START, "step");
    g.add_conditional_edges(
        "step",
        |s: &Video, _| if s.log.len() < 6 { "step" } else { END },
        ["step", END],
    );
    g.compile().unwrap()
}

#[tokio::test]
async fn fork_copies_a_checkpoint_into_a_new_thread_and_leaves_the_original_alone() {
    let calls = Arc::new(AtomicUsize::new(0));
    let graph = counting_loop(Arc::clone(&calls));
    let thread = ThreadId::random();
    let original = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let history = graph.history(&thread).await.unwrap();
    assert_eq!(history.len(), 7, "input + 6 steps");
    assert_eq!(
        history.iter().map(|h| h.step).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );

    let at_two = history[2].id;
    let past = graph.state_at(&thread, at_two).await.unwrap();
    assert_eq!(past.state.log, ["step 0", "step 1"]);

    let fork = ThreadId::random();
    let edit = Fork {
        edit: Some(log("edited")),
        next: None,
    };
    graph.fork(&thread, at_two, &fork, edit).await.unwrap();
    let forked = graph
        .continue_thread(&fork, RunConfig::default())
        .await
        .unwrap();
    assert_eq!(
        forked.state().log,
        ["step 0", "step 1", "edited", "step 3", "step 4", "step 5"]
    );

    assert_eq!(
        graph.history(&thread).await.unwrap(),
        history,
        "the original history is intact"
    );
    assert_eq!(graph.state(&thread).await.unwrap().state, *original.state());
    let fork_history = graph.history(&fork).await.unwrap();
    assert_eq!(
        fork_history[0].meta.forked_from,
        Some((thread.clone(), at_two))
    );

    let err = graph
        .fork(&thread, at_two, &fork, Fork::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::ThreadExists(_)));
}

#[tokio::test]
async fn replaying_from_a_checkpoint_reaches_the_same_result() {
    let graph = counting_loop(Arc::new(AtomicUsize::new(0)));
    let thread = ThreadId::random();
    let original = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let history = graph.history(&thread).await.unwrap();
    for checkpoint in &history {
        let replay = ThreadId::random();
        graph
            .fork(&thread, checkpoint.id, &replay, Fork::default())
            .await
            .unwrap();
        let out = graph
            .continue_thread(&replay, RunConfig::default())
            .await
            .unwrap();
        assert_eq!(
            out.state(),
            original.state(),
            "replay from step {}",
            checkpoint.step
        );
    }
}

#[tokio::test]
async fn fork_can_reschedule_and_reopen_a_question() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("ask", |_, _| async {
        Ok(Command::update(log("asked")).interrupt(serde_json::json!("ok?")))
    })
    .on_answer(|_, a| Ok(Up::Answer(a.as_str().unwrap_or("").into())));
    g.add_node("done", |_, _| async { Ok(Command::update(log("done"))) });
    g.add_edge(START, "ask")
        .add_edge("ask", "done")
        .add_edge("done", END);
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let asked = graph.state(&thread).await.unwrap().checkpoint;
    graph
        .resume(&thread, serde_json::json!("yes"), RunConfig::default())
        .await
        .unwrap();

    let other_answer = ThreadId::random();
    graph
        .fork(&thread, asked, &other_answer, Fork::default())
        .await
        .unwrap();
    assert_eq!(
        graph.state(&other_answer).await.unwrap().status,
        RunStatus::Interrupted
    );
    let out = graph
        .resume(&other_answer, serde_json::json!("no"), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().answer.as_deref(), Some("no"));
    assert_eq!(
        graph.state(&thread).await.unwrap().state.answer.as_deref(),
        Some("yes")
    );

    let rerun = ThreadId::random();
    graph
        .fork(
            &thread,
            asked,
            &rerun,
            Fork {
                edit: None,
                next: Some(vec!["done".into()]),
            },
        )
        .await
        .unwrap();
    let out = graph
        .continue_thread(&rerun, RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().log, ["asked", "done"]);
    let err = graph
        .fork(
            &thread,
            asked,
            &ThreadId::random(),
            Fork {
                edit: None,
                next: Some(vec!["ghost".into()]),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::UnknownRoute { .. }));
}

/// A chat-like state that grows every step: with full snapshots per step, storage would be
/// quadratic in the run length.
#[tokio::test]
async fn checkpoint_storage_grows_linearly_with_the_run() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("turn", |state: Arc<Video>, _| {
        let n = state.log.len();
        async move {
            Ok(Command::update(log(format!(
                "turn {n:04}: {}",
                "x".repeat(80)
            ))))
        }
    });
    g.add_edge(START, "turn");
    g.add_conditional_edges(
        "turn",
        |s: &Video, _| if s.log.len() < 200 { "turn" } else { END },
        ["turn", END],
    );
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let out = graph
        .invoke(
            &thread,
            Video::default(),
            RunConfig::default().recursion_limit(1000),
        )
        .await
        .unwrap();
    let final_size = serde_json::to_vec(out.state()).unwrap().len();
    let stored: usize = graph
        .history(&thread)
        .await
        .unwrap()
        .iter()
        .map(|c| c.stored_bytes)
        .sum();
    // Full snapshots every step would store ~100× the final state here.
    assert!(
        stored < 5 * final_size,
        "stored {stored} bytes for a {final_size}-byte final state"
    );
    assert_eq!(
        graph.state(&thread).await.unwrap().state,
        *out.state(),
        "state rebuilds from deltas"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    /// Whatever the sizes of the updates (and so wherever snapshots fall), the state rebuilt
    /// at every checkpoint equals the state the run had there.
    #[test]
    fn rebuilt_states_match_the_run_at_every_checkpoint(sizes in prop::collection::vec(0usize..600, 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let sizes = Arc::new(sizes);
            let seen: Arc<Mutex<Vec<Video>>> = Arc::default();
            let mut g = StateGraph::<Video>::new();
            let (o, s) = (Arc::clone(&sizes), Arc::clone(&seen));
            g.add_node("op", move |state: Arc<Video>, _| {
                s.lock().unwrap().push((*state).clone());
                let i = state.scenes.len();
                let update = Up::Many(vec![log("y".repeat(o[i])), Up::Scene(i, i.to_string())]);
                async move { Ok(Command::update(update)) }
            });
            g.add_edge(START, "op");
            let n = sizes.len();
            g.add_conditional_edges("op", move |s: &Video, _| if s.scenes.len() < n { "op" } else { END }, ["op", END]);
            let graph = g.compile().unwrap();
            let thread = ThreadId::random();
            let out = graph.invoke(&thread, Video::default(), RunConfig::default().recursion_limit(1000)).await.unwrap();
            seen.lock().unwrap().push(out.into_state());
            let history = graph.history(&thread).await.unwrap();
            let seen = seen.lock().unwrap().clone();
            prop_assert_eq!(history.len(), seen.len());
            for (checkpoint, expected) in history.iter().zip(&seen) {
                let rebuilt = graph.state_at(&thread, checkpoint.id).await.unwrap().state;
                prop_assert_eq!(&rebuilt, expected);
            }
            Ok(())
        })?;
    }
}

/// A checkpointer that takes its time to write, as a database does under load: the gap
/// between a task finishing and its result being kept is wide.
struct SlowStore(Arc<MemoryCheckpointer>);

#[async_trait::async_trait]
impl Checkpointer for SlowStore {
    async fn put(
        &self,
        checkpoint: &montage_graph::Checkpoint,
    ) -> Result<(), montage_graph::CheckpointError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.put(checkpoint).await
    }
    async fn get(
        &self,
        thread: &ThreadId,
        id: montage_graph::CheckpointId,
    ) -> Result<Option<montage_graph::Checkpoint>, montage_graph::CheckpointError> {
        self.0.get(thread, id).await
    }
    async fn latest(
        &self,
        thread: &ThreadId,
    ) -> Result<Option<montage_graph::Checkpoint>, montage_graph::CheckpointError> {
        self.0.latest(thread).await
    }
    async fn history(
        &self,
        thread: &ThreadId,
    ) -> Result<Vec<montage_graph::Checkpoint>, montage_graph::CheckpointError> {
        self.0.history(thread).await
    }
    async fn replay_chain(
        &self,
        thread: &ThreadId,
        id: montage_graph::CheckpointId,
    ) -> Result<Vec<montage_graph::Checkpoint>, montage_graph::CheckpointError> {
        self.0.replay_chain(thread, id).await
    }
    async fn put_write(
        &self,
        thread: &ThreadId,
        after: montage_graph::CheckpointId,
        write: &montage_graph::PendingWrite,
    ) -> Result<(), montage_graph::CheckpointError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.put_write(thread, after, write).await
    }
    async fn pending_writes(
        &self,
        thread: &ThreadId,
        after: montage_graph::CheckpointId,
    ) -> Result<Vec<montage_graph::PendingWrite>, montage_graph::CheckpointError> {
        self.0.pending_writes(thread, after).await
    }
}

#[tokio::test]
async fn a_task_announced_as_finished_never_runs_again_whenever_the_runner_dies() {
    // The runner dies right after the k-th `NodeFinished` it announced, for every k.
    for k in 1..=7 {
        let memory = Arc::new(MemoryCheckpointer::new());
        let calls = Arc::new(Calls::default());
        let quiet = || (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
        let (block, entered) = quiet();
        let first = pipeline(
            Arc::clone(&calls),
            block,
            entered,
            Arc::new(SlowStore(Arc::clone(&memory))),
        );
        let thread = ThreadId::random();
        let mut events = first.subscribe(&thread, 1);
        let running = {
            let thread = thread.clone();
            tokio::spawn(async move {
                first
                    .invoke(&thread, Video::default(), RunConfig::default())
                    .await
            })
        };
        let mut announced = Vec::new();
        while announced.len() < k {
            let event = events.next().await.unwrap();
            if let montage_graph::EventKind::NodeFinished { node, item, .. } = event.kind {
                announced.push(match item {
                    Some(i) => format!("{node}#{i}"),
                    None => node,
                });
            }
        }
        running.abort();
        let _ = running.await;

        let (block, entered) = quiet();
        let second = pipeline(Arc::clone(&calls), block, entered, memory);
        let outcome = second
            .continue_thread(&thread, RunConfig::default())
            .await
            .unwrap();
        assert!(matches!(outcome, RunOutcome::Completed(_)), "k = {k}");
        for task in &announced {
            assert_eq!(
                calls.get(task),
                1,
                "k = {k}: {task} was announced, then ran again"
            );
        }
    }
}
