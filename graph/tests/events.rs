//! The event stream: order, seq, replay for late subscribers, events from inside nodes.

mod common;

use common::{Video, log};
use futures::StreamExt;
use montage_graph::{
    Command, END, Event, EventHub, EventKind, RunConfig, START, StateGraph, ThreadId,
};
use serde_json::json;
use std::sync::Arc;

fn graph() -> montage_graph::CompiledGraph<Video> {
    let mut g = StateGraph::<Video>::new();
    g.add_node("analyze", |_, ctx| async move {
        ctx.progress(0.5, "onsets");
        ctx.emit("beats", json!({"bpm": 128}));
        ctx.progress(2.0, "done");
        Ok(Command::update(log("analyze")))
    });
    g.add_node("ask", |_, _| async {
        Ok(Command::update(log("ask")).interrupt(json!({"q": 1})))
    })
    .on_answer(|_, _| Ok(log("answered")));
    g.add_edge(START, "analyze")
        .add_edge("analyze", "ask")
        .add_edge("ask", END);
    g.compile().unwrap()
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::NodeStarted { node, .. } => format!("start {node}"),
            EventKind::NodeFinished { node, .. } => format!("finish {node}"),
            EventKind::Progress {
                fraction, message, ..
            } => format!("progress {fraction} {message}"),
            EventKind::Custom { name, payload, .. } => format!("custom {name} {payload}"),
            EventKind::Checkpoint { step, .. } => format!("checkpoint {step}"),
            EventKind::Interrupted { node, .. } => format!("interrupted {node}"),
            other => serde_json::to_value(other).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned(),
        })
        .collect()
}

async fn collect_until_terminal(stream: &mut montage_graph::EventStream) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(event) = stream.next().await {
        let end = event.kind.is_terminal();
        out.push(event);
        if end {
            break;
        }
    }
    out
}

#[tokio::test]
async fn events_stream_in_order_with_consecutive_seqs_across_a_resume() {
    let graph = graph();
    let thread = ThreadId::random();
    let mut live = graph.subscribe(&thread, 1);
    graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let first = collect_until_terminal(&mut live).await;
    assert_eq!(
        kinds(&first),
        [
            "run_started",
            "checkpoint 0",
            "start analyze",
            "progress 0.5 onsets",
            "custom beats {\"bpm\":128}",
            "progress 1 done",
            "finish analyze",
            "checkpoint 1",
            "start ask",
            "finish ask",
            "checkpoint 2",
            "interrupted ask",
        ]
    );
    graph
        .resume(&thread, json!("go"), RunConfig::default())
        .await
        .unwrap();
    let second = collect_until_terminal(&mut live).await;
    assert_eq!(
        kinds(&second),
        ["run_resumed", "checkpoint 3", "run_completed"]
    );
    let seqs: Vec<u64> = first.iter().chain(&second).map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(first.iter().all(|e| e.thread == thread));
}

#[tokio::test]
async fn a_late_subscriber_replays_from_any_seq() {
    let graph = graph();
    let thread = ThreadId::random();
    graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let all = collect_until_terminal(&mut graph.subscribe(&thread, 1)).await;
    assert_eq!(all.len(), 12);
    let tail = collect_until_terminal(&mut graph.subscribe(&thread, 9)).await;
    assert_eq!(tail, all[8..].to_vec());
    // Replay then live, without gaps or repeats, through the Stream adapter.
    let stream = graph.subscribe(&thread, 11).into_stream();
    let g2 = graph.clone();
    let t2 = thread.clone();
    let resumed =
        tokio::spawn(async move { g2.resume(&t2, json!("go"), RunConfig::default()).await });
    let got: Vec<Event> = stream.take(5).collect().await;
    resumed.await.unwrap().unwrap();
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );
}

#[tokio::test]
async fn a_continued_thread_in_a_new_process_keeps_counting_seqs() {
    let store: Arc<dyn montage_graph::Checkpointer> =
        Arc::new(montage_graph::MemoryCheckpointer::new());
    let thread = ThreadId::random();
    let first = graph().with_checkpointer(Arc::clone(&store));
    first
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    let last_seq = first.event_hub().last_seq(&thread);
    // Another process: fresh hub, same store.
    let second = graph()
        .with_checkpointer(store)
        .with_event_hub(Arc::new(EventHub::default()));
    let mut live = second.subscribe(&thread, 1);
    second
        .resume(&thread, json!("go"), RunConfig::default())
        .await
        .unwrap();
    let events = collect_until_terminal(&mut live).await;
    assert_eq!(
        events[0].seq,
        last_seq + 1,
        "seq continues from the checkpoint"
    );
}

#[tokio::test]
async fn a_slow_subscriber_that_lags_catches_up_from_the_log() {
    let hub = Arc::new(EventHub::new(10_000));
    let thread = ThreadId::random();
    let mut slow = hub.subscribe(&thread, 1);
    for _ in 0..3000 {
        hub.publish(&thread, EventKind::RunStarted);
    }
    let mut seqs = Vec::new();
    for _ in 0..3000 {
        seqs.push(slow.next().await.unwrap().seq);
    }
    assert_eq!(seqs, (1..=3000).collect::<Vec<_>>());
}

#[test]
fn events_serialize_as_tagged_json() {
    let event = Event {
        seq: 7,
        thread: "run-1".into(),
        at_ms: 5,
        kind: EventKind::NodeFinished {
            node: "plan".into(),
            item: None,
            duration_ms: 12,
        },
    };
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(
        value,
        json!({"seq": 7, "thread": "run-1", "at_ms": 5, "type": "node_finished", "node": "plan", "item": null, "duration_ms": 12})
    );
    assert_eq!(serde_json::from_value::<Event>(value).unwrap(), event);
}
