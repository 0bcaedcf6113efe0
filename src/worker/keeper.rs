//! A run's event keeper: every event the graph publishes is stored, then sent to live
//! listeners, and the objects it announces are recorded as they appear.

use super::Pool;
use crate::objects::ObjectRef;
use crate::pipeline::PipelineEvent;
use crate::store::AssetRow;
use montage_graph::{EventKind, ThreadId};
use std::sync::Arc;
use tokio::sync::watch;

/// Where a run's event keeper has got to: the last seq it stored, and whether that event
/// ended the run's stretch of work.
pub(super) type Kept = (u64, bool);

/// Stores a run's events as they come, records the objects they announce, and times nodes.
pub(super) fn keep_events(
    shared: &Arc<Pool>,
    thread: &ThreadId,
    from_seq: u64,
) -> (watch::Receiver<Kept>, tokio::task::JoinHandle<()>) {
    let (kept, receiver) = watch::channel((from_seq.saturating_sub(1), false));
    let mut events = shared.app.pipeline.graph().subscribe(thread, from_seq);
    let shared = Arc::clone(shared);
    let run = thread.to_string();
    let keeper = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match shared.app.database.append_event(&event).await {
                Ok(()) => shared.broadcasts.send(&event),
                Err(error) => {
                    tracing::warn!(%error, run, seq = event.seq, "could not keep an event")
                }
            }
            match &event.kind {
                EventKind::NodeFinished {
                    node, duration_ms, ..
                } => shared
                    .metrics
                    .node_finished(node, *duration_ms as f64 / 1000.0),
                EventKind::Custom { .. } => {
                    if let Some(announced) = PipelineEvent::of(&event) {
                        record_announced(&shared, &run, announced).await;
                    }
                }
                _ => {}
            }
            // Runs on past a question answered by policy; the worker stops it when done.
            kept.send_replace((event.seq, event.kind.is_terminal()));
        }
    });
    (receiver, keeper)
}

/// Records the objects a node announces as soon as they exist, so they can be downloaded
/// while the run goes on.
async fn record_announced(shared: &Pool, run: &str, announced: PipelineEvent) {
    let row = |object: ObjectRef, kind: &str, scene: Option<usize>, round: Option<u32>| AssetRow {
        object,
        kind: kind.into(),
        scene: scene.and_then(|s| u32::try_from(s).ok()),
        round,
    };
    let rows: Vec<AssetRow> = match announced {
        PipelineEvent::AssetReady {
            scene,
            round,
            object,
            clip,
        } => std::iter::once(row(object, "scene", Some(scene), Some(round)))
            .chain(clip.map(|clip| row(clip, "clip", Some(scene), Some(round))))
            .collect(),
        PipelineEvent::PreviewReady { object } => vec![row(object, "preview", None, None)],
        PipelineEvent::MusicReady { object, .. } => vec![row(object, "music", None, None)],
        PipelineEvent::FinalReady { outputs } => outputs
            .videos
            .into_iter()
            .map(|video| row(video.object, "video", None, None))
            .chain([outputs.srt, outputs.vtt].map(|c| row(c, "captions", None, None)))
            .collect(),
        PipelineEvent::StoryboardReady { round, sketches } => sketches
            .into_iter()
            .map(|sketch| row(sketch.object, "sketch", Some(sketch.scene), Some(round)))
            .collect(),
        PipelineEvent::CriticReport {
            round,
            contact_sheet,
            ..
        } => vec![row(contact_sheet, "contact_sheet", None, Some(round))],
        PipelineEvent::EstimateReady { .. } => Vec::new(),
    };
    for row in rows {
        if let Err(error) = shared.app.database.record_asset(run, &row).await {
            tracing::warn!(%error, run, "could not record an object");
        }
    }
}
