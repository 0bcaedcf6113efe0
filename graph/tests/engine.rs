//! Building, routing, loops, limits and merging.

mod common;

use common::{Up, Video, log, run_fresh};
use montage_graph::{
    BuildError, Command, END, GraphError, MergeError, NodeError, RunConfig, RunOutcome, START,
    StateGraph, ThreadId,
};
use std::sync::Arc;

fn logging_node(
    name: &'static str,
) -> impl Fn(
    Arc<Video>,
    montage_graph::NodeContext,
) -> futures::future::Ready<Result<Command<Up>, NodeError>> {
    move |_, _| futures::future::ready(Ok(Command::update(log(name))))
}

fn compile_err(graph: StateGraph<Video>) -> BuildError {
    match graph.compile() {
        Ok(_) => panic!("the graph should not compile"),
        Err(e) => e,
    }
}

#[test]
fn compile_rejects_broken_graphs() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a").add_edge("a", END);
    assert_eq!(compile_err(g), BuildError::DuplicateNode("a".into()));

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a").add_edge("a", "ghost");
    assert!(matches!(compile_err(g), BuildError::UnknownNode { name, .. } if name == "ghost"));

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge("a", END);
    assert_eq!(compile_err(g), BuildError::NoEntry);

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_node("b", logging_node("b"));
    g.add_edge(START, "a").add_edge("a", END);
    assert_eq!(compile_err(g), BuildError::MissingRoute("b".into()));

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_node("island", logging_node("island"));
    g.add_edge(START, "a")
        .add_edge("a", END)
        .add_edge("island", END);
    assert_eq!(compile_err(g), BuildError::Unreachable("island".into()));

    let mut g = StateGraph::<Video>::new();
    g.add_node(END, logging_node("x"));
    assert_eq!(compile_err(g), BuildError::InvalidName(END.into()));

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a").add_edge("a", START);
    assert!(matches!(compile_err(g), BuildError::InvalidEdge { .. }));

    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a");
    g.add_conditional_edges("a", |_, _| END, ["a", "nowhere"]);
    assert!(matches!(compile_err(g), BuildError::UnknownNode { name, .. } if name == "nowhere"));

    let mut g = StateGraph::<Video>::new();
    g.add_fan_out(
        "f",
        |_: &Video| vec![1],
        |_, _: i32, _| async { Ok(log("x")) },
    )
    .concurrency(0);
    g.add_edge(START, "f").add_edge("f", END);
    assert_eq!(compile_err(g), BuildError::ZeroConcurrency("f".into()));
}

#[tokio::test]
async fn a_linear_graph_runs_in_order() {
    let mut g = StateGraph::<Video>::new();
    for name in ["intent", "analyze", "plan"] {
        g.add_node(name, logging_node(name));
    }
    g.add_edge(START, "intent")
        .add_edge("intent", "analyze")
        .add_edge("analyze", "plan")
        .add_edge("plan", END);
    let graph = g.compile().unwrap();
    let out = graph
        .invoke(&"t".into(), Video::default(), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().log, ["intent", "analyze", "plan"]);
    assert!(matches!(out, RunOutcome::Completed(_)));
}

/// plan → critic → (feedback → plan)* → compose, at most `max` passes, counted by the engine.
fn feedback_loop(max: u64) -> StateGraph<Video> {
    let mut g = StateGraph::<Video>::new();
    g.add_node("plan", logging_node("plan"));
    g.add_node("critic", |_, _| async {
        Ok(Command::update(log("critic")).increment("iterations"))
    });
    g.add_node("compose", logging_node("compose"));
    g.add_edge(START, "plan").add_edge("plan", "critic");
    g.add_conditional_edges(
        "critic",
        move |_, counters| {
            if counters.get("iterations") < max {
                "plan"
            } else {
                "compose"
            }
        },
        ["plan", "compose"],
    );
    g.add_edge("compose", END);
    g
}

#[tokio::test]
async fn a_loop_stops_exactly_at_its_bound() {
    for max in [1, 3, 5] {
        let graph = feedback_loop(max).compile().unwrap();
        let thread = ThreadId::random();
        let out = graph
            .invoke(&thread, Video::default(), RunConfig::default())
            .await
            .unwrap();
        let critics = out.state().log.iter().filter(|l| *l == "critic").count();
        assert_eq!(critics as u64, max);
        assert_eq!(out.state().log.last().map(String::as_str), Some("compose"));
        let state = graph.state(&thread).await.unwrap();
        assert_eq!(state.counters.get("iterations"), max);
        assert_eq!(state.counters.visits("plan"), max);
    }
}

#[tokio::test]
async fn the_recursion_limit_stops_an_endless_loop() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("spin", logging_node("spin"));
    g.add_edge(START, "spin").add_edge("spin", "spin");
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let err = graph
        .invoke(
            &thread,
            Video::default(),
            RunConfig::default().recursion_limit(10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::RecursionLimit { limit: 10 }),
        "{err}"
    );
    let state = graph.state(&thread).await.unwrap();
    assert_eq!(state.state.log.len(), 10, "exactly `limit` steps ran");
    assert_eq!(state.status, montage_graph::RunStatus::Failed);
    assert!(state.error.unwrap().contains("recursion limit"));
}

#[tokio::test]
async fn goto_overrides_edges_and_must_be_declared() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("route", |_, _| async {
        Ok(Command::update(log("route")).goto("b"))
    })
    .may_goto(["b"]);
    g.add_node("a", logging_node("a"));
    g.add_node("b", logging_node("b"));
    g.add_edge(START, "route").add_edge("route", "a");
    g.add_edge("a", END).add_edge("b", END);
    let out = run_fresh(g).await.unwrap();
    assert_eq!(out.state().log, ["route", "b"]);

    let mut g = StateGraph::<Video>::new();
    g.add_node("route", |_, _| async {
        Ok(Command::<Up>::none().goto("a"))
    })
    .may_goto(["b"]);
    g.add_node("a", logging_node("a"));
    g.add_node("b", logging_node("b"));
    g.add_edge(START, "route")
        .add_edge("route", "a")
        .add_edge("a", END)
        .add_edge("b", END);
    let err = run_fresh(g).await.unwrap_err();
    assert!(matches!(err, GraphError::UnknownRoute { target, .. } if target == "a"));
}

#[tokio::test]
async fn a_router_naming_an_undeclared_target_fails_the_run() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a");
    g.add_conditional_edges("a", |_, _| "elsewhere", [END]);
    let err = run_fresh(g).await.unwrap_err();
    assert!(
        matches!(err, GraphError::UnknownRoute { ref target, .. } if target == "elsewhere"),
        "{err}"
    );
}

#[tokio::test]
async fn parallel_branches_run_in_one_step_and_merge_in_order() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("intent", logging_node("intent"));
    g.add_node("music", |_, _| async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Ok(Command::update(log("music")))
    });
    g.add_node("images", logging_node("images"));
    g.add_node("compose", logging_node("compose"));
    g.add_edge(START, "intent");
    g.add_edge("intent", "music").add_edge("intent", "images");
    g.add_edge("music", "compose").add_edge("images", "compose");
    g.add_edge("compose", END);
    let out = run_fresh(g).await.unwrap();
    // music finishes last but was scheduled first: merge order is schedule order.
    assert_eq!(out.state().log, ["intent", "music", "images", "compose"]);
}

#[tokio::test]
async fn two_parallel_writes_without_a_merge_rule_are_an_error() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("fork", logging_node("fork"));
    g.add_node("left", |_, _| async {
        Ok(Command::update(Up::Plan("left".into())))
    });
    g.add_node("right", |_, _| async {
        Ok(Command::update(Up::Plan("right".into())))
    });
    g.add_edge(START, "fork")
        .add_edge("fork", "left")
        .add_edge("fork", "right");
    g.add_edge("left", END).add_edge("right", END);
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let err = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap_err();
    match err {
        GraphError::Merge {
            source: MergeError::Conflict { key, first, second },
            ..
        } => {
            assert_eq!(
                (key.as_str(), first.as_str(), second.as_str()),
                ("plan", "left", "right")
            );
        }
        other => panic!("expected a merge conflict, got {other}"),
    }
    let state = graph.state(&thread).await.unwrap();
    assert_eq!(
        state.state.plan, None,
        "nothing of the conflicting step was kept"
    );
    assert_eq!(state.state.log, ["fork"]);
}

#[tokio::test]
async fn a_new_thread_id_must_be_new() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("a", logging_node("a"));
    g.add_edge(START, "a").add_edge("a", END);
    let graph = g.compile().unwrap();
    graph
        .invoke(&"same".into(), Video::default(), RunConfig::default())
        .await
        .unwrap();
    let err = graph
        .invoke(&"same".into(), Video::default(), RunConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::ThreadExists(_)));
    assert!(matches!(
        graph.state(&"missing".into()).await,
        Err(GraphError::ThreadNotFound(_))
    ));
}

#[tokio::test]
async fn without_a_checkpointer_runs_work_but_cannot_be_inspected() {
    let graph = feedback_loop(2).compile().unwrap().without_checkpointer();
    let out = graph
        .invoke(&"t".into(), Video::default(), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(
        out.state().log,
        ["plan", "critic", "plan", "critic", "compose"]
    );
    assert!(matches!(
        graph.state(&"t".into()).await,
        Err(GraphError::NoCheckpointer)
    ));
}

#[tokio::test]
async fn a_panicking_node_fails_the_run_instead_of_the_process() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("bad", |_, _| async {
        let scenes: Vec<u32> = Vec::new();
        let _ = scenes[3];
        Ok(Command::<Up>::none())
    });
    g.add_edge(START, "bad").add_edge("bad", END);
    let err = run_fresh(g).await.unwrap_err();
    assert!(
        matches!(err, GraphError::NodeFailed { ref node, .. } if node == "bad"),
        "{err}"
    );
    assert!(err.to_string().contains("panicked"));
}

#[tokio::test]
async fn node_names_may_contain_a_hash_and_digits() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("scene#2", logging_node("scene#2"));
    g.add_node("after", logging_node("after"));
    g.add_edge(START, "scene#2")
        .add_edge("scene#2", "after")
        .add_edge("after", END);
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let out = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().log, ["scene#2", "after"]);
    assert_eq!(
        graph
            .state(&thread)
            .await
            .unwrap()
            .counters
            .visits("scene#2"),
        1
    );
}
