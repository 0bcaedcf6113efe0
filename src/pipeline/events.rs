//! What the video graph's nodes announce while a run goes on, as one type: the nodes emit
//! it, and the worker (which records the objects), the WebSocket protocol, the run record's
//! timings, `montage make`'s progress and the chat agent match on it.
//!
//! On the graph's event stream (and so in the database) an announcement is a custom event:
//! its name (`asset.ready`, …) and its payload, the variant's fields. Events stored by earlier
//! versions read back the same way.

use super::state::{EstimateItem, Outputs};
use crate::objects::ObjectRef;
use montage_graph::{Event, EventKind, NodeContext};
use montage_models::Issue;
use serde::{Deserialize, Serialize};

/// Something a node made or learned that the run's watchers may act on before the run ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", content = "payload")]
pub enum PipelineEvent {
    /// The music the video is cut to, playable while the run goes on.
    #[serde(rename = "music.ready")]
    MusicReady {
        /// The audio.
        object: ObjectRef,
        /// Whether the person uploaded it or a model made it.
        source: MusicOrigin,
        /// The tempo the cuts follow.
        bpm: f64,
    },
    /// A scene's picture (and clip, when it has one) exists and can be fetched.
    #[serde(rename = "asset.ready")]
    AssetReady {
        /// Which scene (0-based).
        scene: usize,
        /// The generation round it comes from (1 = first).
        round: u32,
        /// The still.
        object: ObjectRef,
        /// The scene's clip, when a video model animated the still.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clip: Option<ObjectRef>,
    },
    /// Sketches of the scenes, for approval before any paid picture.
    #[serde(rename = "storyboard.ready")]
    StoryboardReady {
        /// The round the sketches are for.
        round: u32,
        /// One per scene sketched.
        sketches: Vec<Sketch>,
    },
    /// What the round's paid pictures, clips and narration are expected to cost.
    #[serde(rename = "estimate.ready")]
    EstimateReady {
        /// The round estimated.
        round: u32,
        /// US dollars.
        usd: f64,
        /// The most the run may spend, if it has a limit.
        budget: Option<f64>,
        /// Each expected paid call.
        items: Vec<EstimateItem>,
    },
    /// What the critic found in the round's scenes.
    #[serde(rename = "critic.report")]
    CriticReport {
        /// The round judged.
        round: u32,
        /// Its findings.
        issues: Vec<Issue>,
        /// The thumbnails it looked at.
        contact_sheet: ObjectRef,
    },
    /// The 480p preview, before the full-size videos.
    #[serde(rename = "preview.ready")]
    PreviewReady {
        /// The MP4.
        object: ObjectRef,
    },
    /// The finished videos and captions.
    #[serde(rename = "final.ready")]
    FinalReady {
        /// Everything the run produced.
        outputs: Outputs,
    },
}

/// Where a run's music came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MusicOrigin {
    /// The person's upload.
    Uploaded,
    /// A music model's.
    Generated,
}

/// One scene's storyboard sketch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Which scene (0-based).
    pub scene: usize,
    /// The picture.
    pub object: ObjectRef,
}

impl PipelineEvent {
    /// Publishes the announcement on the run's event stream.
    pub(crate) fn emit(&self, ctx: &NodeContext) {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                let name = tagged
                    .remove("name")
                    .and_then(|n| n.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let payload = tagged.remove("payload").unwrap_or_default();
                ctx.emit(name, payload);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "an announcement could not be written"),
        }
    }

    /// The announcement a graph event carries, if it is one (`None` for the graph's own
    /// events, and for custom events of another shape).
    pub fn of(event: &Event) -> Option<Self> {
        match &event.kind {
            EventKind::Custom { name, payload, .. } => {
                let tagged = serde_json::json!({ "name": name, "payload": payload });
                serde_json::from_value(tagged)
                    .inspect_err(|error| {
                        tracing::debug!(%error, name, seq = event.seq, "not an announcement");
                    })
                    .ok()
            }
            _ => None,
        }
    }

    /// The event's name on the graph's stream (`asset.ready`, `final.ready`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MusicReady { .. } => "music.ready",
            Self::AssetReady { .. } => "asset.ready",
            Self::StoryboardReady { .. } => "storyboard.ready",
            Self::EstimateReady { .. } => "estimate.ready",
            Self::CriticReport { .. } => "critic.report",
            Self::PreviewReady { .. } => "preview.ready",
            Self::FinalReady { .. } => "final.ready",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(sha: char) -> ObjectRef {
        serde_json::from_value(serde_json::json!({
            "key": "scenes/a.png",
            "sha256": sha.to_string().repeat(64),
            "media_type": "image/png",
            "size": 10,
        }))
        .unwrap()
    }

    #[test]
    fn an_announcement_reads_back_from_the_name_and_payload_it_is_stored_as() {
        let ready = PipelineEvent::AssetReady {
            scene: 2,
            round: 1,
            object: object('a'),
            clip: None,
        };
        let tagged = serde_json::to_value(&ready).unwrap();
        assert_eq!(tagged["name"], "asset.ready");
        assert_eq!(tagged["name"], ready.name());
        assert_eq!(tagged["payload"]["scene"], 2);
        assert!(tagged["payload"].get("clip").is_none(), "no clip, no key");
        let event = Event {
            thread: montage_graph::ThreadId::new("run"),
            seq: 4,
            at_ms: 0,
            kind: EventKind::Custom {
                node: "assets".into(),
                item: Some(2),
                name: "asset.ready".into(),
                payload: tagged["payload"].clone(),
            },
        };
        assert_eq!(PipelineEvent::of(&event), Some(ready));
    }

    #[test]
    fn custom_events_of_another_shape_and_graph_events_are_not_announcements() {
        let custom = |name: &str, payload| Event {
            thread: montage_graph::ThreadId::new("run"),
            seq: 1,
            at_ms: 0,
            kind: EventKind::Custom {
                node: "n".into(),
                item: None,
                name: name.into(),
                payload,
            },
        };
        assert_eq!(
            PipelineEvent::of(&custom("asset.ready", serde_json::json!({"scene": "x"}))),
            None
        );
        assert_eq!(
            PipelineEvent::of(&custom("something.else", serde_json::json!({}))),
            None
        );
        let started = Event {
            kind: EventKind::RunStarted,
            ..custom("x", serde_json::json!({}))
        };
        assert_eq!(PipelineEvent::of(&started), None);
    }
}
