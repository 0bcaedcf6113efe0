//! Running the queue: free slots take the next queued run, which executes until it
//! completes, asks, is cancelled or fails; where it stopped is then recorded.

use super::Pool;
use super::keeper::{Kept, keep_events};
use crate::app::keep_lineage;
use crate::config::FeedbackPolicy;
use crate::pipeline::{FeedbackAnswer, RunState};
use crate::store::{ClaimedRun, RunStatus, StoreError};
use montage_graph::{
    EventKind, GraphError, RunConfig, RunOutcome, RunStatus as ThreadStatus, ThreadId,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a worker waits for a run's last events to reach the database before it records
/// the run's new status.
const EVENT_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Publishes an event the graph did not emit (a cancel outside a running graph), after the
/// run's stored events, and keeps it.
pub(super) async fn announce(
    shared: &Pool,
    thread: &ThreadId,
    kind: EventKind,
) -> Result<(), StoreError> {
    let database = &shared.app.database;
    let hub = shared.app.pipeline.graph().event_hub();
    hub.advance_to(thread, database.last_event_seq(thread.as_str()).await?);
    let mut stream = hub.subscribe(thread, hub.last_seq(thread) + 1);
    hub.publish(thread, kind);
    if let Some(event) = stream.next().await {
        database.append_event(&event).await?;
        shared.broadcasts.send(&event);
    }
    Ok(())
}

/// The cancel token of run `id`, made on first use so a cancel that comes before the
/// worker starts is not lost.
pub(super) fn token(shared: &Pool, id: &str) -> CancellationToken {
    shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id.to_owned())
        .or_default()
        .clone()
}

/// Hands queued runs to workers while slots are free; wakes on submissions, answers,
/// finished runs, and every few seconds (another process may have queued work).
pub(super) async fn dispatch(shared: Arc<Pool>) {
    loop {
        while shared.active.load(Ordering::SeqCst) < shared.slots {
            match shared.app.database.claim_next_run().await {
                Ok(Some(run)) => {
                    shared.active.fetch_add(1, Ordering::SeqCst);
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let id = run.id.clone();
                        execute(&shared, run).await;
                        shared
                            .tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                        shared.active.fetch_sub(1, Ordering::SeqCst);
                        shared.wake.notify_one();
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "cannot take runs from the queue");
                    break;
                }
            }
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Records what run `id` spent in the end (its last checkpoint's ledger) in place of the
/// estimate it held against its owner's monthly budget. A completed run's lineage does it.
pub(super) async fn settle_spending(shared: &Pool, id: &str) {
    let spent = match shared.app.pipeline.graph().state(&ThreadId::new(id)).await {
        Ok(thread) => thread.state.cost.iter().map(|c| c.usd).sum(),
        Err(GraphError::ThreadNotFound(_)) => 0.0,
        Err(error) => {
            tracing::warn!(%error, run = id, "cannot read what the run spent");
            return;
        }
    };
    if let Err(error) = shared.app.database.commit_spending(id, spent).await {
        tracing::warn!(%error, run = id, "cannot record what the run spent");
    }
}

/// Executes one claimed run until it completes, asks, is cancelled or fails, and records
/// where it stopped.
async fn execute(shared: &Arc<Pool>, claimed: ClaimedRun) {
    let id = claimed.id.clone();
    let thread = ThreadId::new(&claimed.id);
    let database = &shared.app.database;
    let graph = shared.app.pipeline.graph();
    // Seqs go on after what is stored: a killed server may have kept events past its
    // last checkpoint.
    let stored = match database.last_event_seq(&id).await {
        Ok(seq) => seq,
        Err(error) => {
            tracing::error!(%error, run = id, "cannot read the run's events; it stays queued");
            let _ = database
                .move_run(&id, RunStatus::Running, RunStatus::Queued)
                .await;
            return;
        }
    };
    graph.event_hub().advance_to(&thread, stored);
    let (kept, keeper) = keep_events(shared, &thread, stored + 1);
    let config = || RunConfig::default().cancel_token(token(shared, &id));
    let existing = graph.state(&thread).await;
    // The answer is taken in the same checkpoint that moves the thread past its question:
    // a thread no longer at that question took it before the server died.
    let still_asked = existing.as_ref().is_ok_and(|t| {
        t.status == ThreadStatus::Interrupted && claimed.answers(&t.checkpoint.to_string())
    });
    let answer = claimed.answer.filter(|_| still_asked);
    let mut outcome = match (answer, existing) {
        (Some(answer), _) => shared.app.pipeline.answer(&thread, answer, config()).await,
        (None, Ok(existing)) if existing.status == ThreadStatus::Interrupted => {
            Err(GraphError::AwaitingAnswer(id.clone()))
        }
        (None, Ok(_)) => graph.continue_thread(&thread, config()).await,
        (None, Err(GraphError::ThreadNotFound(_))) => {
            match claimed.input.map(serde_json::from_value::<RunState>) {
                Some(Ok(state)) => shared.app.pipeline.start(&thread, state, config()).await,
                Some(Err(error)) => Err(GraphError::Serde(error)),
                None => Err(GraphError::ThreadNotFound(id.clone())),
            }
        }
        (None, Err(error)) => Err(error),
    };
    // Runs that take the critic's fixes without asking answer their own questions.
    while let Ok(RunOutcome::Interrupted { state, .. }) = &outcome {
        if state.config.pipeline.feedback != FeedbackPolicy::Accept {
            break;
        }
        let accept = serde_json::to_value(FeedbackAnswer::Accept {}).unwrap_or_default();
        outcome = shared.app.pipeline.answer(&thread, accept, config()).await;
    }
    let (status, error) = match &outcome {
        Ok(RunOutcome::Completed(state)) => match keep_lineage(database, &id, state).await {
            Ok(()) => (RunStatus::Completed, None),
            Err(error) => (RunStatus::Failed, Some(error.to_string())),
        },
        Ok(RunOutcome::Interrupted { .. }) => (RunStatus::Waiting, None),
        Ok(RunOutcome::Cancelled(_)) => (RunStatus::Cancelled, None),
        Err(GraphError::AwaitingAnswer(_)) => (RunStatus::Waiting, None),
        Err(GraphError::InvalidAnswer(reason)) => {
            tracing::warn!(
                run = id,
                reason,
                "a queued answer no longer fits; the run waits"
            );
            (RunStatus::Waiting, None)
        }
        Err(error) => (RunStatus::Failed, Some(error.to_string())),
    };
    flush_events(shared, &thread, kept, status).await;
    keeper.abort();
    // A cancel that came as the run stopped to ask still cancels it.
    let status = if status == RunStatus::Waiting && token(shared, &id).is_cancelled() {
        if let Err(error) = announce(shared, &thread, EventKind::RunCancelled).await {
            tracing::warn!(%error, run = id, "could not announce the cancel");
        }
        RunStatus::Cancelled
    } else {
        status
    };
    if let Some(error) = &error {
        tracing::error!(run = id, error, "the run failed");
    }
    if matches!(status, RunStatus::Cancelled | RunStatus::Failed) {
        settle_spending(shared, &id).await;
    }
    if let Err(store_error) = database.set_run_status(&id, status, error.as_deref()).await {
        tracing::error!(%store_error, run = id, "cannot record the run's status");
    }
    if status.has_ended() {
        graph.event_hub().forget(&thread);
        shared.broadcasts.close(&id);
    }
}

/// Waits until the run's events up to the last published are stored. A stop the stored
/// events do not announce gets its event here: a failure before the graph ran, or a run
/// that reached its end (or its question) in a server killed before announcing it, so that
/// clients following the run learn where it stands.
async fn flush_events(
    shared: &Pool,
    thread: &ThreadId,
    mut kept: watch::Receiver<Kept>,
    status: RunStatus,
) {
    let hub = shared.app.pipeline.graph().event_hub();
    let published = hub.last_seq(thread);
    let _ = tokio::time::timeout(
        EVENT_FLUSH_LIMIT,
        kept.wait_for(|(seq, _)| *seq >= published),
    )
    .await;
    let database = &shared.app.database;
    let last_stored = match database.last_event_seq(thread.as_str()).await {
        Ok(0) => None,
        Ok(seq) => database
            .events_since(thread.as_str(), seq - 1)
            .await
            .ok()
            .and_then(|events| events.into_iter().next()),
        Err(error) => {
            tracing::warn!(%error, run = %thread, "cannot read the run's last event");
            return;
        }
    };
    if last_stored.is_some_and(|event| event.kind.is_terminal()) {
        return;
    }
    let ending = match status {
        RunStatus::Completed => Some(EventKind::RunCompleted),
        RunStatus::Cancelled => Some(EventKind::RunCancelled),
        RunStatus::Failed => Some(EventKind::RunFailed {
            error: "the run could not start".into(),
        }),
        RunStatus::Waiting => shared
            .app
            .pipeline
            .graph()
            .state(thread)
            .await
            .ok()
            .and_then(|t| t.interrupt)
            .map(|asked| EventKind::Interrupted {
                node: asked.node,
                question: asked.question,
            }),
        RunStatus::Queued | RunStatus::Running => None,
    };
    if let Some(ending) = ending {
        hub.advance_to(
            thread,
            database.last_event_seq(thread.as_str()).await.unwrap_or(0),
        );
        hub.publish(thread, ending);
        let _ = tokio::time::timeout(EVENT_FLUSH_LIMIT, kept.wait_for(|(_, t)| *t)).await;
    }
}
