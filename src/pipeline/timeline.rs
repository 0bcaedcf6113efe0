//! From the plan to the compositor's timeline: clips, or stills with camera motion matched
//! to the tempo, transitions centred on the beat cuts, the music, narration ducking it, captions.

use super::state::{CameraMove, Cut, Plan, PlannedScene, RunState, ScriptLine};
use crate::objects::Objects;
use montage_compositor::{Rect, Timeline};
use montage_models::Format;
use serde_json::{Value, json};

/// The region shown at a scene's start and end, as fractions of the picture.
pub fn motion(scene: &PlannedScene) -> (Rect, Rect) {
    let seconds = scene.end - scene.start;
    // How far the camera travels: faster with the tempo and energy, never a lurch.
    let travel = (0.035 * seconds * scene.camera_speed).clamp(0.02, 0.18);
    let centred = |inset: f64| Rect {
        x: inset / 2.0,
        y: inset / 2.0,
        w: 1.0 - inset,
        h: 1.0 - inset,
    };
    match scene.camera {
        CameraMove::PushIn => (Rect::FULL, centred(travel)),
        CameraMove::PullOut => (centred(travel), Rect::FULL),
        CameraMove::Still => (Rect::FULL, centred(0.02)),
        CameraMove::PanLeft | CameraMove::PanRight => {
            let size = 1.0 - travel;
            let left = Rect {
                x: 0.0,
                y: travel / 2.0,
                w: size,
                h: size,
            };
            let right = Rect {
                x: travel,
                y: travel / 2.0,
                w: size,
                h: size,
            };
            if scene.camera == CameraMove::PanRight {
                (left, right)
            } else {
                (right, left)
            }
        }
    }
}

/// Length of the crossfade out of scene `index`, on the beat and short enough to fit.
pub(super) fn crossfade_seconds(plan: &Plan, index: usize) -> f64 {
    let beat = 60.0 / plan.bpm.max(1.0);
    let this = plan.scenes[index].end - plan.scenes[index].start;
    let next = plan.scenes.get(index + 1).map_or(this, |s| s.end - s.start);
    beat.min(0.8).min(0.5 * this.min(next))
}

fn format_json(format: Format, state: &RunState) -> Value {
    let render = &state.config.render;
    json!({
        "size": format.ratio(),
        "fps": render.fps,
        "quality": { "crf": render.crf, "preset": render.preset },
    })
}

/// Builds the timeline of a run whose scenes all have pictures.
pub fn build(state: &RunState, objects: &Objects) -> Result<Timeline, String> {
    let plan = state.plan.as_ref().ok_or("no plan")?;
    let intent = state.intent.as_ref().ok_or("no intent")?;
    let music = state.music.as_ref().ok_or("no music")?;
    let mut scenes = Vec::with_capacity(plan.scenes.len());
    for (index, scene) in plan.scenes.iter().enumerate() {
        let asset = state
            .assets
            .get(&index)
            .ok_or_else(|| format!("scene {} has no picture", index + 1))?;
        let (from, to) = motion(scene);
        let is_last = index + 1 == plan.scenes.len();
        let transition = if scene.cut_after == Cut::Crossfade && !is_last {
            json!({ "kind": "crossfade", "duration": crossfade_seconds(plan, index) })
        } else {
            json!({ "kind": "cut" })
        };
        // A clip moves by itself; a still moves by the camera.
        let shown = asset
            .clip
            .as_ref()
            .map_or(&asset.object, |clip| &clip.object);
        let path = objects.local_path(shown);
        let mut placed = json!({
            "id": format!("scene-{}", index + 1),
            "start": scene.start,
            "end": scene.end,
            "source": { "type": "image", "path": path },
            "fit": "cover",
            "transition": transition,
        });
        if shown.media_type.starts_with("video/") {
            placed["source"] = json!({ "type": "video", "path": path });
        } else {
            placed["motion"] = json!({ "from": from, "to": to, "easing": "ease_in_out" });
        }
        scenes.push(placed);
    }
    let mut tracks = vec![json!({
        "path": objects.local_path(&music.object),
        "role": "music",
        "duration": plan.duration,
        "fade_out": (60.0 / plan.bpm.max(1.0)).min(1.0),
    })];
    for spoken in state.speech.values() {
        if let Some(line) = state.script.get(spoken.line) {
            tracks.push(json!({
                "path": objects.local_path(&spoken.object),
                "role": "narration",
                "offset": line.start + 0.1,
                "duration": spoken.seconds.min(plan.duration - line.start - 0.1).max(0.1),
            }));
        }
    }
    let narrated = tracks.len() > 1;
    let captions = caption_cues(&state.script, plan.duration);
    let mut timeline = json!({
        "outputs": intent.formats.iter().map(|f| format_json(*f, state)).collect::<Vec<_>>(),
        "scenes": scenes,
        "audio": { "tracks": tracks },
    });
    if narrated {
        timeline["audio"]["ducking"] = serde_json::to_value(montage_compositor::Ducking::default())
            .map_err(|e| e.to_string())?;
    }
    if !captions.is_empty() {
        timeline["captions"] =
            json!({ "cues": captions, "burn_in": state.config.render.burn_captions });
    }
    serde_json::from_value(timeline)
        .map_err(|e| format!("the timeline does not fit the compositor: {e}"))
}

fn caption_cues(script: &[ScriptLine], duration: f64) -> Vec<Value> {
    script
        .iter()
        .filter(|line| line.start < duration && !line.text.trim().is_empty())
        .map(
            |line| json!({ "start": line.start, "end": line.end.min(duration), "text": line.text }),
        )
        .collect()
}
