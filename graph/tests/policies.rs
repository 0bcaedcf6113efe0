//! Retries with backoff, timeouts and cancellation, on tokio's paused clock.

mod common;

use common::{Up, Video, log, run_fresh};
use montage_graph::{
    CancellationToken, Command, END, EventKind, GraphError, NodeError, NodeErrorKind, RetryPolicy,
    RunConfig, RunOutcome, RunStatus, START, StateGraph, ThreadId,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

fn flaky(
    fail_times: u32,
    error: NodeError,
    policy: RetryPolicy,
) -> (montage_graph::CompiledGraph<Video>, Arc<AtomicU32>) {
    let attempts = Arc::new(AtomicU32::new(0));
    let mut g = StateGraph::<Video>::new();
    let a = Arc::clone(&attempts);
    g.add_node("render", move |_, _| {
        let n = a.fetch_add(1, Ordering::SeqCst) + 1;
        let error = error.clone();
        async move {
            if n <= fail_times {
                Err(error)
            } else {
                Ok(Command::update(log(format!("ok on {n}"))))
            }
        }
    })
    .retry(policy);
    g.add_edge(START, "render").add_edge("render", END);
    (g.compile().unwrap(), attempts)
}

#[tokio::test(start_paused = true)]
async fn transient_failures_retry_with_exponential_backoff() {
    let policy = RetryPolicy::exponential(4)
        .backoff(Duration::from_secs(1), Duration::from_secs(60))
        .jitter(0.0);
    let (graph, attempts) = flaky(2, NodeError::transient("503"), policy);
    let thread = ThreadId::random();
    let mut events = graph.subscribe(&thread, 1);
    let started = Instant::now();
    let out = graph
        .invoke(&thread, Video::default(), RunConfig::default())
        .await
        .unwrap();
    assert_eq!(out.state().log, ["ok on 3"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "waited 1 s then 2 s"
    );
    let mut backoffs = Vec::new();
    while let Some(event) = events.next().await {
        if let EventKind::NodeRetrying {
            backoff_ms,
            attempt,
            ..
        } = event.kind
        {
            backoffs.push((attempt, backoff_ms));
        }
        if event.kind.is_terminal() {
            break;
        }
    }
    assert_eq!(backoffs, [(1, 1000), (2, 2000)]);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_attempt_limit() {
    let (graph, attempts) = flaky(10, NodeError::transient("503"), RetryPolicy::exponential(3));
    let err = graph
        .invoke(&ThreadId::random(), Video::default(), RunConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::NodeFailed { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_do_not_retry_unless_the_policy_says_so() {
    let (graph, attempts) = flaky(
        1,
        NodeError::permanent("bad prompt"),
        RetryPolicy::exponential(5),
    );
    assert!(
        graph
            .invoke(&ThreadId::random(), Video::default(), RunConfig::default())
            .await
            .is_err()
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let (graph, attempts) = flaky(
        1,
        NodeError::permanent("bad prompt"),
        RetryPolicy::exponential(5).retry_if(|_| true),
    );
    assert!(
        graph
            .invoke(&ThreadId::random(), Video::default(), RunConfig::default())
            .await
            .is_ok()
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_times_out_and_the_retry_succeeds() {
    let attempts = Arc::new(AtomicU32::new(0));
    let mut g = StateGraph::<Video>::new();
    let a = Arc::clone(&attempts);
    g.add_node("clip", move |_, _| {
        let first = a.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(Command::update(log("clip")))
        }
    })
    .timeout(Duration::from_secs(30))
    .retry(
        RetryPolicy::exponential(2)
            .backoff(Duration::from_secs(1), Duration::from_secs(1))
            .jitter(0.0),
    );
    g.add_edge(START, "clip").add_edge("clip", END);
    let started = Instant::now();
    let out = run_fresh(g).await.unwrap();
    assert_eq!(out.state().log, ["clip"]);
    assert_eq!(started.elapsed(), Duration::from_secs(31));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_without_retries_fails_with_a_timeout_error() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("clip", |_, _| async {
        tokio::time::sleep(Duration::from_secs(100)).await;
        Ok(Command::<Up>::none())
    })
    .timeout(Duration::from_secs(5));
    g.add_edge(START, "clip").add_edge("clip", END);
    let err = run_fresh(g).await.unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::NodeFailed {
                source: NodeError {
                    kind: NodeErrorKind::Timeout,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_mid_step_leaves_a_consistent_checkpoint() {
    let mut g = StateGraph::<Video>::new();
    g.add_node("plan", |_, _| async { Ok(Command::update(log("plan"))) });
    g.add_node("render", |_, ctx| async move {
        // A cooperative node: stops when the run is cancelled.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(600)) => Ok(Command::update(log("render"))),
            () = ctx.cancelled() => Err(NodeError::cancelled()),
        }
    });
    g.add_edge(START, "plan")
        .add_edge("plan", "render")
        .add_edge("render", END);
    let graph = g.compile().unwrap();
    let thread = ThreadId::random();
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        stopper.cancel();
    });
    let out = graph
        .invoke(
            &thread,
            Video::default(),
            RunConfig::default().cancel_token(cancel),
        )
        .await
        .unwrap();
    assert!(matches!(out, RunOutcome::Cancelled(ref v) if v.log == ["plan"]));
    let state = graph.state(&thread).await.unwrap();
    assert_eq!(state.status, RunStatus::Cancelled);
    assert_eq!(
        state.state.log,
        ["plan"],
        "the half-done step left nothing behind"
    );
    assert_eq!(state.next, ["render"]);
    assert!(matches!(
        graph.continue_thread(&thread, RunConfig::default()).await,
        Err(GraphError::ThreadEnded(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn cancellation_interrupts_a_backoff() {
    let (graph, attempts) = flaky(
        10,
        NodeError::transient("503"),
        RetryPolicy::exponential(5).backoff(Duration::from_secs(60), Duration::from_secs(60)),
    );
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        stopper.cancel();
    });
    let started = Instant::now();
    let out = graph
        .invoke(
            &ThreadId::random(),
            Video::default(),
            RunConfig::default().cancel_token(cancel),
        )
        .await
        .unwrap();
    assert!(matches!(out, RunOutcome::Cancelled(_)));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn a_run_cancelled_before_it_starts_runs_nothing() {
    let (graph, attempts) = flaky(0, NodeError::transient("-"), RetryPolicy::default());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let out = graph
        .invoke(
            &ThreadId::random(),
            Video::default(),
            RunConfig::default().cancel_token(cancel),
        )
        .await
        .unwrap();
    assert!(matches!(out, RunOutcome::Cancelled(_)));
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
}
