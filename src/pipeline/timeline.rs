//! From the plan to the compositor's timeline: clips, or stills with camera motion matched
//! to the tempo, transitions centred on the beat cuts, the music, narration ducking it, captions.

use super::state::{CameraMove, Cut, Plan, PlannedScene, RunState, ScriptLine, SpokenLine};
use crate::objects::Objects;
use montage_compositor::{Rect, Timeline};
use montage_models::Format;
use montage_models::SpokenWord;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
                "offset": line.start + NARRATION_LEAD,
                "duration": spoken.seconds.min(plan.duration - line.start - NARRATION_LEAD).max(0.1),
            }));
        }
    }
    let narrated = tracks.len() > 1;
    let captions = caption_cues(&state.script, &state.speech, plan.duration);
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

/// Where a narration line's audio starts: just after its scene does.
const NARRATION_LEAD: f64 = 0.1;

/// The most words one word-timed caption shows.
const WORDS_PER_CUE: usize = 4;

/// The captions: each line over its span, or, where its speech says when each word is
/// spoken, a few words at a time as the voice says them.
fn caption_cues(
    script: &[ScriptLine],
    speech: &BTreeMap<usize, SpokenLine>,
    duration: f64,
) -> Vec<Value> {
    let mut cues = Vec::new();
    for (index, line) in script.iter().enumerate() {
        if line.start >= duration || line.text.trim().is_empty() {
            continue;
        }
        let words = speech.get(&index).map_or(&[][..], |s| s.words.as_slice());
        if words.is_empty() {
            cues.push(
                json!({ "start": line.start, "end": line.end.min(duration), "text": line.text }),
            );
            continue;
        }
        let offset = line.start + NARRATION_LEAD;
        for group in word_groups(words) {
            let (first, last) = (&group[0], &group[group.len() - 1]);
            let start = offset + first.start;
            if start >= duration {
                break;
            }
            let text: Vec<&str> = group.iter().map(|w| w.text.as_str()).collect();
            cues.push(json!({
                "start": start,
                "end": (offset + last.end).min(duration).max(start + 0.05),
                "text": text.join(" "),
            }));
        }
    }
    cues
}

/// Words grouped into captions: at most [`WORDS_PER_CUE`], and a sentence's end or a pause
/// ends one early.
fn word_groups(words: &[SpokenWord]) -> Vec<&[SpokenWord]> {
    let mut groups = Vec::new();
    let mut from = 0;
    for (k, word) in words.iter().enumerate() {
        let full = k + 1 - from == WORDS_PER_CUE;
        let sentence_ends = word.text.ends_with(['.', '!', '?', ';', ':']);
        let pause = words
            .get(k + 1)
            .is_some_and(|next| next.start - word.end > 0.35);
        if full || sentence_ends || pause || k + 1 == words.len() {
            groups.push(&words[from..=k]);
            from = k + 1;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start: f64, end: f64) -> SpokenWord {
        SpokenWord {
            text: text.into(),
            start,
            end,
        }
    }

    #[test]
    fn captions_follow_the_spoken_words_where_the_voice_says_when() {
        let script = vec![
            ScriptLine {
                scene: 0,
                start: 2.0,
                end: 6.0,
                text: "The tide comes in slowly. Gulls wheel overhead.".into(),
            },
            ScriptLine {
                scene: 1,
                start: 6.0,
                end: 9.0,
                text: "Night falls.".into(),
            },
        ];
        let words = vec![
            word("The", 0.0, 0.2),
            word("tide", 0.25, 0.5),
            word("comes", 0.55, 0.8),
            word("in", 0.85, 0.95),
            word("slowly.", 1.0, 1.5),
            word("Gulls", 1.9, 2.2),
            word("wheel", 2.25, 2.5),
            word("overhead.", 2.55, 3.1),
        ];
        let object = crate::objects::ObjectRef {
            key: "speech/a.wav".into(),
            sha256: "a".into(),
            size: 1,
            media_type: "audio/wav".into(),
        };
        let speech = BTreeMap::from([(
            0,
            SpokenLine {
                line: 0,
                object,
                seconds: 3.2,
                words,
            },
        )]);
        let cues = caption_cues(&script, &speech, 8.0);
        let texts: Vec<&str> = cues.iter().map(|c| c["text"].as_str().unwrap()).collect();
        assert_eq!(
            texts,
            [
                "The tide comes in",
                "slowly.",
                "Gulls wheel overhead.",
                "Night falls."
            ],
            "four words at most, a sentence's end ends a caption; a line without word times is one"
        );
        let at = |k: usize, key: &str| cues[k][key].as_f64().unwrap();
        assert!((at(0, "start") - 2.1).abs() < 1e-9 && (at(0, "end") - 3.05).abs() < 1e-9);
        assert!((at(2, "start") - 4.0).abs() < 1e-9, "as the voice says it");
        assert_eq!(
            (at(3, "start"), at(3, "end")),
            (6.0, 8.0),
            "cut at the video's end"
        );
    }
}
