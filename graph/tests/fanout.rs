//! Fan-out: a node over a list of items, under a concurrency limit, merged in input order.

mod common;

use common::{Up, Video, run_fresh};
use montage_graph::{END, GraphError, MergeError, RunConfig, START, StateGraph, ThreadId};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Runs a fan-out over `items` with `limit`; each item sleeps a pseudo-random time so
/// completion order differs from input order. Returns the state and the peak concurrency.
async fn fan_out(items: Vec<u32>, limit: usize) -> (Video, usize) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut g = StateGraph::<Video>::new();
    let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
    g.add_fan_out(
        "assets",
        |s: &Video| s.items.clone(),
        move |_, item: u32, ctx| {
            let (f, p) = (Arc::clone(&f), Arc::clone(&p));
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(u64::from(item * 7919 % 13))).await;
                f.fetch_sub(1, Ordering::SeqCst);
                Ok(Up::Many(vec![
                    Up::Log(format!("item {item}")),
                    Up::Scene(ctx.item().unwrap(), item.to_string()),
                ]))
            }
        },
    )
    .concurrency(limit);
    g.add_edge(START, "assets").add_edge("assets", END);
    let graph = g.compile().unwrap();
    let input = Video {
        items,
        ..Video::default()
    };
    let out = graph
        .invoke(&ThreadId::random(), input, RunConfig::default())
        .await
        .unwrap();
    (out.into_state(), peak.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_never_exceeds_its_limit_and_uses_it() {
    let items: Vec<u32> = (0..24).collect();
    let (video, peak) = fan_out(items.clone(), 3).await;
    assert_eq!(peak, 3, "measured peak concurrency");
    let expected: Vec<String> = items.iter().map(|i| format!("item {i}")).collect();
    assert_eq!(video.log, expected, "merged in input order");
}

#[tokio::test]
async fn an_empty_fan_out_still_routes_to_what_follows_it() {
    let mut g = StateGraph::<Video>::new();
    g.add_fan_out(
        "assets",
        |s: &Video| s.items.clone(),
        |_, item: u32, _| async move { Ok(Up::Log(format!("item {item}"))) },
    );
    g.add_node("critic", |_, _| async {
        Ok(montage_graph::Command::update(Up::Log("critic".into())))
    });
    g.add_edge(START, "assets")
        .add_edge("assets", "critic")
        .add_edge("critic", END);
    let graph = g.compile().unwrap();
    let out = graph
        .invoke(&ThreadId::random(), Video::default(), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.into_state().log, ["critic"]);
}

#[tokio::test]
async fn an_empty_fan_out_is_a_no_op_step() {
    let (video, peak) = fan_out(Vec::new(), 2).await;
    assert!(video.log.is_empty());
    assert_eq!(peak, 0);
}

#[tokio::test]
async fn fan_out_items_writing_one_value_conflict() {
    let mut g = StateGraph::<Video>::new();
    g.add_fan_out(
        "assets",
        |_: &Video| vec![1, 2],
        |_, _: i32, _| async { Ok(Up::Plan("same".into())) },
    );
    g.add_edge(START, "assets").add_edge("assets", END);
    let err = run_fresh(g).await.unwrap_err();
    assert!(
        matches!(err, GraphError::Merge { source: MergeError::Conflict { ref first, ref second, .. }, .. } if first == "assets#0" && second == "assets#1"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn fan_out_keeps_order_and_limit_for_any_input(items in prop::collection::vec(0u32..1000, 0..20), limit in 1usize..6) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (video, peak) = rt.block_on(fan_out(items.clone(), limit));
        prop_assert!(peak <= limit);
        let expected: Vec<String> = items.iter().map(|i| format!("item {i}")).collect();
        prop_assert_eq!(video.log, expected);
        prop_assert_eq!(video.scenes.len(), items.len());
    }
}
