//! The WebSocket protocol, version 1 (docs/protocol.md): JSON envelopes
//! `{"v":1,"type":…,"run_id":…,"seq":…,"data":…}`, made from the graph's events.
//!
//! Events keep the run's `seq`, which increases with each event (a kill can skip the seqs
//! of events that were never stored, so never sent), so a client that reconnects with the
//! last seq it saw gets exactly what it missed. Failure text from
//! inside the server is never sent: a failed node or run says where, not why.

use crate::objects::ObjectRef;
use crate::pipeline::PipelineEvent;
use montage_graph::{Event, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The protocol's version.
pub const VERSION: u32 = 1;

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The protocol's version.
    pub v: u32,
    /// What it is (`node.started`, `feedback.needed`, `error`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The run it is about.
    pub run_id: Option<String>,
    /// The chat it is about (chat messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Its place in the run's events; absent for replies that are not run events.
    pub seq: Option<u64>,
    /// The payload.
    pub data: Value,
}

impl Envelope {
    /// A reply that is not a run event.
    pub fn reply(kind: &str, run_id: Option<&str>, data: Value) -> Envelope {
        Envelope {
            v: VERSION,
            kind: kind.to_owned(),
            run_id: run_id.map(str::to_owned),
            chat_id: None,
            seq: None,
            data,
        }
    }

    /// A message about a chat.
    pub fn chat(kind: &str, chat_id: &str, data: Value) -> Envelope {
        Envelope {
            v: VERSION,
            kind: kind.to_owned(),
            run_id: None,
            chat_id: Some(chat_id.to_owned()),
            seq: None,
            data,
        }
    }

    /// An error reply.
    pub fn error(run_id: Option<&str>, code: &str, message: &str) -> Envelope {
        Envelope::reply("error", run_id, json!({ "code": code, "message": message }))
    }
}

/// The URL a client downloads an object from.
pub fn asset_url(sha256: &str) -> String {
    format!("/api/assets/{sha256}")
}

/// An object announced in an event, as clients see it.
fn asset(object: &ObjectRef) -> Value {
    json!({
        "id": object.sha256,
        "url": asset_url(&object.sha256),
        "media_type": object.media_type,
        "size": object.size,
    })
}

/// The envelope of a run event.
pub fn event_envelope(event: &Event) -> Envelope {
    let (kind, data) = match &event.kind {
        EventKind::RunStarted => ("run.started", json!({})),
        EventKind::RunResumed => ("run.resumed", json!({})),
        EventKind::NodeStarted {
            node,
            item,
            attempt,
        } => (
            "node.started",
            json!({ "node": node, "scene": item, "attempt": attempt }),
        ),
        EventKind::NodeFinished {
            node,
            item,
            duration_ms,
        } => (
            "node.finished",
            json!({ "node": node, "scene": item, "duration_ms": duration_ms }),
        ),
        EventKind::NodeRetrying {
            node,
            item,
            attempt,
            backoff_ms,
            ..
        } => (
            "node.retrying",
            json!({ "node": node, "scene": item, "attempt": attempt, "backoff_ms": backoff_ms }),
        ),
        EventKind::NodeFailed { node, item, .. } => {
            ("node.failed", json!({ "node": node, "scene": item }))
        }
        EventKind::Progress {
            node,
            item,
            fraction,
            message,
        } => (
            "progress",
            json!({
                "node": node,
                "scene": item,
                // Three decimals: the f32 carries noise past them.
                "fraction": (f64::from(*fraction) * 1000.0).round() / 1000.0,
                "message": message,
            }),
        ),
        EventKind::Custom { name, .. } => match PipelineEvent::of(event) {
            Some(announced) => announcement(&announced),
            None => ("node.event", json!({ "name": name })),
        },
        EventKind::Checkpoint { step, .. } => ("checkpoint", json!({ "step": step })),
        EventKind::Interrupted { question, .. } => ("feedback.needed", question.clone()),
        EventKind::RunCompleted => ("run.completed", json!({})),
        EventKind::RunFailed { .. } => (
            "run.failed",
            json!({ "message": "the run stopped on an error; the server's log has the details" }),
        ),
        EventKind::RunCancelled => ("run.cancelled", json!({})),
    };
    Envelope {
        v: VERSION,
        kind: kind.to_owned(),
        run_id: Some(event.thread.to_string()),
        chat_id: None,
        seq: Some(event.seq),
        data,
    }
}

/// The message of a pipeline announcement.
fn announcement(announced: &PipelineEvent) -> (&'static str, Value) {
    match announced {
        PipelineEvent::AssetReady {
            scene,
            round,
            object,
            clip,
        } => {
            let mut data = json!({ "scene": scene, "round": round, "asset": asset(object) });
            if let Some(clip) = clip {
                data["clip"] = asset(clip);
            }
            ("asset.ready", data)
        }
        PipelineEvent::CriticReport {
            round,
            issues,
            contact_sheet,
        } => (
            "critic.report",
            json!({ "round": round, "issues": issues, "contact_sheet": asset(contact_sheet) }),
        ),
        PipelineEvent::PreviewReady { object } => {
            ("preview.ready", json!({ "asset": asset(object) }))
        }
        PipelineEvent::EstimateReady {
            round,
            usd,
            budget,
            items,
        } => (
            "cost.estimate",
            json!({ "round": round, "usd": usd, "budget": budget, "items": items }),
        ),
        PipelineEvent::MusicReady {
            object,
            source,
            bpm,
        } => (
            "music.ready",
            json!({ "asset": asset(object), "source": source, "bpm": bpm }),
        ),
        PipelineEvent::FinalReady { outputs } => {
            let videos: Vec<Value> = outputs
                .videos
                .iter()
                .map(|v| json!({ "format": v.format, "asset": asset(&v.object) }))
                .collect();
            (
                "video.ready",
                json!({
                    "videos": videos,
                    "captions": { "srt": asset(&outputs.srt), "vtt": asset(&outputs.vtt) },
                }),
            )
        }
        PipelineEvent::StoryboardReady { .. } => {
            ("node.event", json!({ "name": announced.name() }))
        }
    }
}

/// Whether the run is over for good after this event (a question is not the end).
pub fn ends_run(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::RunCompleted | EventKind::RunFailed { .. } | EventKind::RunCancelled
    )
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientMessage {
    /// Follow a run's events after `seq` (0 or absent: from the start), or a chat's
    /// messages and the events of the runs it starts.
    #[serde(rename = "subscribe")]
    Subscribe {
        /// The protocol's version (1 when absent).
        #[serde(default)]
        v: Option<u32>,
        /// The run.
        #[serde(default)]
        run_id: Option<String>,
        /// The chat.
        #[serde(default)]
        chat_id: Option<String>,
        /// The last seq the client has.
        #[serde(default)]
        seq: u64,
    },
    /// Say something in a chat: `data` is `{"content", "uploads"?}`.
    #[serde(rename = "chat.message")]
    ChatMessage {
        /// The protocol's version.
        #[serde(default)]
        v: Option<u32>,
        /// The chat.
        chat_id: String,
        /// The message.
        data: Value,
    },
    /// Stop following a run.
    #[serde(rename = "unsubscribe")]
    Unsubscribe {
        /// The protocol's version.
        #[serde(default)]
        v: Option<u32>,
        /// The run.
        run_id: String,
    },
    /// Answer a run's open question (`data` as in `POST /api/runs/{id}/feedback`).
    #[serde(rename = "feedback")]
    Feedback {
        /// The protocol's version.
        #[serde(default)]
        v: Option<u32>,
        /// The run.
        run_id: String,
        /// The answer.
        data: Value,
    },
    /// Cancel a run.
    #[serde(rename = "cancel")]
    Cancel {
        /// The protocol's version.
        #[serde(default)]
        v: Option<u32>,
        /// The run.
        run_id: String,
    },
}

impl ClientMessage {
    /// The protocol version the client spoke.
    pub fn version(&self) -> u32 {
        match self {
            ClientMessage::Subscribe { v, .. }
            | ClientMessage::Unsubscribe { v, .. }
            | ClientMessage::Feedback { v, .. }
            | ClientMessage::Cancel { v, .. }
            | ClientMessage::ChatMessage { v, .. } => v.unwrap_or(VERSION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use montage_graph::ThreadId;

    fn event(kind: EventKind) -> Event {
        Event {
            seq: 7,
            thread: ThreadId::new("r1"),
            at_ms: 0,
            kind,
        }
    }

    #[test]
    fn failures_say_where_but_not_why() {
        let failed = event_envelope(&event(EventKind::NodeFailed {
            node: "compose".into(),
            item: None,
            error: "/srv/montage-data/renders/x: permission denied".into(),
        }));
        assert_eq!(failed.kind, "node.failed");
        assert!(!failed.data.to_string().contains("/srv"));
        let run = event_envelope(&event(EventKind::RunFailed {
            error: "database: connection refused at 10.0.0.3".into(),
        }));
        assert_eq!((run.kind.as_str(), run.seq), ("run.failed", Some(7)));
        assert!(!run.data.to_string().contains("10.0.0.3"));
    }

    #[test]
    fn objects_become_download_links() {
        let ready = event_envelope(&event(EventKind::Custom {
            node: "assets".into(),
            item: Some(2),
            name: "asset.ready".into(),
            payload: json!({ "scene": 2, "round": 1, "object": {
                "key": "images/ab.png", "sha256": "ab", "size": 10, "media_type": "image/png" } }),
        }));
        assert_eq!(ready.kind, "asset.ready");
        assert_eq!(ready.data["asset"]["url"], "/api/assets/ab");
        assert_eq!(ready.data["scene"], 2);
        assert!(
            !ready.data.to_string().contains("images/ab.png"),
            "keys stay inside"
        );
    }

    #[test]
    fn announcements_keep_their_wire_shape() {
        let object =
            |sha: &str| json!({ "key": "k", "sha256": sha, "size": 3, "media_type": "video/mp4" });
        let custom = |name: &str, payload| {
            event_envelope(&event(EventKind::Custom {
                node: "compose".into(),
                item: None,
                name: name.into(),
                payload,
            }))
        };
        let link = |sha: &str| json!({ "id": sha, "url": asset_url(sha), "media_type": "video/mp4", "size": 3 });
        let done = custom(
            "final.ready",
            json!({ "outputs": {
                "preview": object("p"), "srt": object("s"), "vtt": object("v"), "contact_sheet": object("c"),
                "videos": [{ "format": "9:16", "object": object("a") }, { "format": "1:1", "object": object("b") }],
            } }),
        );
        assert_eq!(done.kind, "video.ready");
        assert_eq!(
            done.data,
            json!({
                "videos": [{ "format": "9:16", "asset": link("a") }, { "format": "1:1", "asset": link("b") }],
                "captions": { "srt": link("s"), "vtt": link("v") },
            })
        );
        let estimate = custom(
            "estimate.ready",
            json!({ "round": 1, "usd": 0.25, "budget": null, "items": [] }),
        );
        assert_eq!(estimate.kind, "cost.estimate");
        assert_eq!(
            estimate.data,
            json!({ "round": 1, "usd": 0.25, "budget": null, "items": [] })
        );
        let music = custom(
            "music.ready",
            json!({ "object": object("m"), "source": "uploaded", "bpm": 120.0 }),
        );
        assert_eq!(
            (music.kind.as_str(), &music.data),
            (
                "music.ready",
                &json!({ "asset": link("m"), "source": "uploaded", "bpm": 120.0 })
            )
        );
        let unknown = custom("asset.ready", json!({ "scene": "first" }));
        assert_eq!(
            (unknown.kind.as_str(), &unknown.data),
            ("node.event", &json!({ "name": "asset.ready" }))
        );
    }

    #[test]
    fn client_messages_parse_strictly() {
        let subscribe: ClientMessage =
            serde_json::from_str(r#"{"v":1,"type":"subscribe","run_id":"r","seq":4}"#).unwrap();
        assert_eq!(
            subscribe,
            ClientMessage::Subscribe {
                v: Some(1),
                run_id: Some("r".into()),
                chat_id: None,
                seq: 4
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"r"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance","run_id":"r"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"cancel","run_id":"r","x":1}"#)
                .is_err()
        );
    }
}
