//! A run's event keeper: every event the graph publishes is stored, then sent to live
//! listeners, and the objects it announces are recorded as they appear.

use super::Pool;
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
                EventKind::Custom { name, payload, .. } => {
                    record_announced(&shared, &run, name, payload).await;
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
async fn record_announced(shared: &Pool, run: &str, name: &str, payload: &serde_json::Value) {
    use crate::objects::ObjectRef;
    use crate::store::AssetRow;
    let object = |value: Option<&serde_json::Value>| {
        value.and_then(|v| serde_json::from_value::<ObjectRef>(v.clone()).ok())
    };
    let small = |key: &str| {
        payload
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let mut rows = Vec::new();
    match name {
        "asset.ready" => {
            for (key, kind) in [("object", "scene"), ("clip", "clip")] {
                rows.extend(object(payload.get(key)).map(|object| AssetRow {
                    object,
                    kind: kind.into(),
                    scene: small("scene"),
                    round: small("round"),
                }));
            }
        }
        "preview.ready" => rows.extend(object(payload.get("object")).map(|object| AssetRow {
            object,
            kind: "preview".into(),
            scene: None,
            round: None,
        })),
        "music.ready" => rows.extend(object(payload.get("object")).map(|object| AssetRow {
            object,
            kind: "music".into(),
            scene: None,
            round: None,
        })),
        "final.ready" => {
            let outputs = payload.get("outputs");
            let field = |key: &str| outputs.and_then(|o| o.get(key));
            let videos = field("videos").and_then(serde_json::Value::as_array);
            for video in videos.into_iter().flatten() {
                rows.extend(object(video.get("object")).map(|object| AssetRow {
                    object,
                    kind: "video".into(),
                    scene: None,
                    round: None,
                }));
            }
            for captions in ["srt", "vtt"] {
                rows.extend(object(field(captions)).map(|object| AssetRow {
                    object,
                    kind: "captions".into(),
                    scene: None,
                    round: None,
                }));
            }
        }
        "storyboard.ready" => {
            let sketches = payload
                .get("sketches")
                .and_then(serde_json::Value::as_array);
            for sketch in sketches.into_iter().flatten() {
                rows.extend(object(sketch.get("object")).map(|object| {
                    AssetRow {
                        object,
                        kind: "sketch".into(),
                        scene: sketch
                            .get("scene")
                            .and_then(serde_json::Value::as_u64)
                            .and_then(|v| u32::try_from(v).ok()),
                        round: small("round"),
                    }
                }));
            }
        }
        "critic.report" => {
            rows.extend(object(payload.get("contact_sheet")).map(|object| AssetRow {
                object,
                kind: "contact_sheet".into(),
                scene: None,
                round: small("round"),
            }))
        }
        _ => {}
    }
    for row in rows {
        if let Err(error) = shared.app.database.record_asset(run, &row).await {
            tracing::warn!(%error, run, "could not record an object");
        }
    }
}
