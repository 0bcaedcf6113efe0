//! Interrupts: the question is the node's result, the answer goes to its handler.

mod common;

use common::{Up, Video, log, run_fresh};
use montage_graph::{
    Command, CompiledGraph, END, GraphError, NodeError, RunConfig, RunOutcome, RunStatus, START,
    StateGraph, ThreadId,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// critic → feedback (asks unless the answer was given up front) → regenerate | compose.
fn review_graph(feedback_runs: Arc<AtomicUsize>) -> CompiledGraph<Video> {
    let mut g = StateGraph::<Video>::new();
    g.add_node("critic", |_, _| async {
        Ok(Command::update(log("critic: scene 3 dark")))
    });
    g.add_node("feedback", move |state: Arc<Video>, _| {
        feedback_runs.fetch_add(1, Ordering::SeqCst);
        async move {
            let asked = Command::update(log("feedback: asked"));
            Ok(match &state.preset_answer {
                Some(answer) => Command::update(Up::Many(vec![
                    log("feedback: asked"),
                    Up::Answer(answer.clone()),
                ])),
                None => asked.interrupt(
                    json!({"issue": "scene 3 darker", "choices": ["regenerate", "keep"]}),
                ),
            })
        }
    })
    .on_answer(|_, answer: Value| match answer.as_str() {
        Some(choice @ ("regenerate" | "keep")) => Ok(Up::Answer(choice.into())),
        _ => Err(NodeError::permanent("choose regenerate or keep")),
    });
    g.add_node("regenerate", |_, _| async {
        Ok(Command::update(log("regenerate scene 3")))
    });
    g.add_node("compose", |_, _| async {
        Ok(Command::update(log("compose")))
    });
    g.add_edge(START, "critic").add_edge("critic", "feedback");
    g.add_conditional_edges(
        "feedback",
        |s: &Video, _| {
            if s.answer.as_deref() == Some("regenerate") {
                "regenerate"
            } else {
                "compose"
            }
        },
        ["regenerate", "compose"],
    );
    g.add_edge("regenerate", "compose").add_edge("compose", END);
    g.compile().unwrap()
}

#[tokio::test]
async fn interrupt_then_resume_equals_the_run_answered_up_front() {
    let runs = Arc::new(AtomicUsize::new(0));
    let graph = review_graph(Arc::clone(&runs));
    let thread = ThreadId::random();
    let out = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let RunOutcome::Interrupted {
        node,
        question,
        state,
    } = out
    else {
        panic!("expected a question")
    };
    assert_eq!(node, "feedback");
    assert_eq!(question["issue"], "scene 3 darker");
    assert_eq!(state.log, ["critic: scene 3 dark", "feedback: asked"]);
    let waiting = graph.state(&thread).await.unwrap();
    assert_eq!(waiting.status, RunStatus::Interrupted);
    assert_eq!(waiting.interrupt.unwrap().node, "feedback");

    let resumed = graph
        .resume(&thread, json!("regenerate"), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the asking node does not run again"
    );

    let upfront = graph
        .invoke(
            &ThreadId::random(),
            Video {
                preset_answer: Some("regenerate".into()),
                ..Video::default()
            },
            RunConfig::default(),
        )
        .await
        .unwrap();
    let RunOutcome::Completed(resumed) = resumed else {
        panic!("resume should complete")
    };
    let RunOutcome::Completed(upfront) = upfront else {
        panic!("up-front run should complete")
    };
    assert_eq!(resumed.log, upfront.log);
    assert_eq!(resumed.answer, upfront.answer);
    assert_eq!(
        resumed.log,
        [
            "critic: scene 3 dark",
            "feedback: asked",
            "regenerate scene 3",
            "compose"
        ]
    );
}

#[tokio::test]
async fn a_rejected_answer_leaves_the_thread_waiting_unchanged() {
    let graph = review_graph(Arc::new(AtomicUsize::new(0)));
    let thread = ThreadId::random();
    graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let before = graph.history(&thread).await.unwrap();
    let err = graph
        .resume(&thread, json!(42), RunConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::InvalidAnswer(ref m) if m.contains("regenerate or keep")),
        "{err}"
    );
    assert_eq!(
        graph.history(&thread).await.unwrap(),
        before,
        "nothing was stored"
    );
    let out = graph
        .resume(&thread, json!("keep"), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().log.last().map(String::as_str), Some("compose"));
}

#[tokio::test]
async fn resume_and_continue_refuse_the_wrong_thread_state() {
    let graph = review_graph(Arc::new(AtomicUsize::new(0)));
    let thread = ThreadId::random();
    graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let err = graph
        .continue_thread(&thread, RunConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::AwaitingAnswer(_)));
    graph
        .resume(&thread, json!("keep"), RunConfig::default())
        .await
        .unwrap();
    let err = graph
        .resume(&thread, json!("keep"), RunConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::NotInterrupted(_)));
    let err = graph
        .resume(&ThreadId::random(), json!("keep"), RunConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::ThreadNotFound(_)));
}

#[tokio::test]
async fn an_interrupt_without_an_answer_handler_is_a_failure_not_a_hang() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("ask", |_, _| async {
        Ok(Command::<Up>::none().interrupt(json!("?")))
    });
    g.add_edge(START, "ask").add_edge("ask", END);
    let err = run_fresh(g).await.unwrap_err();
    assert!(matches!(err, GraphError::NoAnswerHandler(ref n) if n == "ask"));
}

#[tokio::test]
async fn two_questions_in_one_step_are_refused() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("start", |_, _| async { Ok(Command::<Up>::none()) });
    for name in ["a", "b"] {
        g.add_node(name, |_, _| async {
            Ok(Command::<Up>::none().interrupt(json!("?")))
        })
        .on_answer(|_, _| Ok(log("answered")));
        g.add_edge("start", name).add_edge(name, END);
    }
    g.add_edge(START, "start");
    let err = run_fresh(g).await.unwrap_err();
    assert!(matches!(err, GraphError::MultipleInterrupts(ref nodes) if nodes.len() == 2));
}
