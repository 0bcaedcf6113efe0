//! The render plan: the timeline cut into independent segments (gaps, scene bodies, transition
//! regions), each with a key that hashes everything that shapes its pixels.

use serde::Serialize;

use crate::error::{CompositorError, Item};
use crate::media::SAMPLE_RATE;
use crate::prepare::{Assets, digest};
use crate::timeline::{
    Grade, OutputFormat, Overlay, Preset, Quality, Scene, Source, Timeline, Transition,
};

/// Bodies longer than this many seconds are split, so long scenes still encode in parallel.
const MAX_SEGMENT_SECONDS: f64 = 2.0;
/// Bumped whenever rendering changes the pixels a key describes.
const RENDERER_VERSION: u32 = 1;

/// A frame rate as an exact fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    /// Keeps NTSC rates (23.976, 29.97, 59.94) exact.
    pub fn from_rate(rate: f64) -> Fps {
        let ntsc = rate * 1.001;
        if (ntsc - ntsc.round()).abs() < 0.01 && (rate - rate.round()).abs() > 0.01 {
            Fps {
                num: ntsc.round() as u32 * 1000,
                den: 1001,
            }
        } else if (rate - rate.round()).abs() < 1e-9 {
            Fps {
                num: rate.round() as u32,
                den: 1,
            }
        } else {
            Fps {
                num: (rate * 1000.0).round() as u32,
                den: 1000,
            }
        }
    }

    /// The time at which frame `index` starts.
    pub fn time(self, index: u64) -> f64 {
        index as f64 * self.den as f64 / self.num as f64
    }

    /// The frame nearest to `seconds`: cuts land within half a frame of their time.
    pub fn frame(self, seconds: f64) -> u64 {
        (seconds * self.num as f64 / self.den as f64)
            .round()
            .max(0.0) as u64
    }
}

/// What a segment shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum SegmentKind {
    /// Black: no scene covers these frames.
    Gap,
    /// One scene alone.
    Body { scene: usize },
    /// The transition from `scene` into the next one.
    Transition { scene: usize },
}

impl SegmentKind {
    /// The scenes whose pictures the segment shows.
    pub fn scenes(self) -> Vec<usize> {
        match self {
            SegmentKind::Gap => vec![],
            SegmentKind::Body { scene } => vec![scene],
            SegmentKind::Transition { scene } => vec![scene, scene + 1],
        }
    }
}

/// A run of frames that encodes on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub start: u64,
    pub end: u64,
    pub kind: SegmentKind,
    pub key: String,
}

impl Segment {
    pub fn frames(&self) -> u64 {
        self.end - self.start
    }
}

/// Every segment of one output, in order, covering its frames exactly, and its soundtrack.
pub(crate) struct Plan {
    pub fps: Fps,
    pub frames: u64,
    pub segments: Vec<Segment>,
    /// Sample frames of the soundtrack, as long as the video.
    pub samples: usize,
    /// Hash of everything that shapes the encoded soundtrack.
    pub soundtrack_key: String,
    /// Whether the soundtrack uses AAC's fast coder (for the fast x264 presets).
    pub fast_audio: bool,
}

/// The frame range a transition blends over, centred on its cut.
pub(crate) fn transition_frames(fps: Fps, cut: f64, transition: &Transition) -> (u64, u64) {
    let start = fps.frame(cut - transition.duration / 2.0);
    let end = fps.frame(cut + transition.duration / 2.0);
    (start, end.max(start + 1))
}

/// Plans one output's segments.
pub(crate) fn plan(
    timeline: &Timeline,
    output_index: usize,
    output: &OutputFormat,
    assets: &Assets,
) -> Result<Plan, CompositorError> {
    let fps = Fps::from_rate(output.fps);
    let frames = fps.frame(timeline.duration());
    if frames == 0 {
        return Err(CompositorError::invalid(
            Item::Output(output_index, output.label()),
            "the timeline is shorter than one frame",
        ));
    }
    let mut spans: Vec<(u64, u64, SegmentKind)> = Vec::new();
    let mut cursor = 0;
    for (index, scene) in timeline.scenes.iter().enumerate() {
        let item = || Item::Scene(index, scene.id.clone());
        let start = fps.frame(scene.start);
        let incoming = index
            .checked_sub(1)
            .map(|previous| &timeline.scenes[previous])
            .filter(|previous| previous.transition.blends());
        if incoming.is_none() && start > cursor {
            spans.push((cursor, start, SegmentKind::Gap));
            cursor = start;
        }
        let body_end = if scene.transition.blends() {
            transition_frames(fps, scene.end, &scene.transition).0
        } else {
            fps.frame(scene.end)
        };
        if body_end < cursor {
            return Err(CompositorError::invalid(
                item(),
                "its transitions overlap once rounded to frames",
            ));
        }
        split_body(&mut spans, cursor, body_end, index, fps);
        cursor = body_end;
        if scene.transition.blends() {
            let (_, end) = transition_frames(fps, scene.end, &scene.transition);
            spans.push((cursor, end, SegmentKind::Transition { scene: index }));
            cursor = end;
        }
    }
    if cursor != frames {
        return Err(CompositorError::invalid(
            Item::Timeline,
            "the scenes do not end on the timeline's last frame",
        ));
    }
    let segments = spans
        .into_iter()
        .map(|(start, end, kind)| {
            let key = segment_key(timeline, output, fps, start, end, kind, assets);
            Segment {
                start,
                end,
                kind,
                key,
            }
        })
        .collect();
    let samples = (fps.time(frames) * SAMPLE_RATE as f64).round() as usize;
    let fast_audio = matches!(
        output.quality.preset,
        Preset::Ultrafast | Preset::Superfast | Preset::Veryfast
    );
    Ok(Plan {
        fps,
        frames,
        segments,
        samples,
        soundtrack_key: soundtrack_key(timeline, samples, fast_audio, assets),
        fast_audio,
    })
}

fn split_body(
    spans: &mut Vec<(u64, u64, SegmentKind)>,
    start: u64,
    end: u64,
    scene: usize,
    fps: Fps,
) {
    if end <= start {
        return;
    }
    let limit = fps.frame(MAX_SEGMENT_SECONDS).max(1);
    let pieces = (end - start).div_ceil(limit);
    let length = (end - start).div_ceil(pieces);
    let mut at = start;
    while at < end {
        let next = (at + length).min(end);
        spans.push((at, next, SegmentKind::Body { scene }));
        at = next;
    }
}

/// Hashes the tracks, their files, the ducking and the length: all the soundtrack depends on.
fn soundtrack_key(timeline: &Timeline, samples: usize, fast: bool, assets: &Assets) -> String {
    let files: Vec<&str> = timeline
        .audio
        .tracks
        .iter()
        .map(|track| assets.hash(&track.path))
        .collect();
    let key = (RENDERER_VERSION, &timeline.audio, files, samples, fast);
    digest(&serde_json::to_vec(&key).expect("soundtrack keys are plain data"))
}

#[derive(Serialize)]
struct SegmentKey<'a> {
    version: u32,
    width: u32,
    height: u32,
    fps: Fps,
    quality: Quality,
    start: u64,
    end: u64,
    scenes: Vec<SceneKey<'a>>,
    transition: Option<Transition>,
    grade: Option<(&'a Grade, &'a str)>,
    overlays: Vec<(&'a Overlay, &'a str)>,
    captions: Vec<(&'a str, f64, f64)>,
    caption_style: Option<(&'a crate::timeline::TextStyle, &'a str)>,
}

#[derive(Serialize)]
struct SceneKey<'a> {
    scene: &'a Scene,
    content: &'a str,
}

/// Hashes everything that decides a segment's encoded bytes.
fn segment_key(
    timeline: &Timeline,
    output: &OutputFormat,
    fps: Fps,
    start: u64,
    end: u64,
    kind: SegmentKind,
    assets: &Assets,
) -> String {
    let scene_key = |index: usize| {
        let scene = &timeline.scenes[index];
        let content = match &scene.source {
            Source::Color { .. } => "",
            Source::Image { path } | Source::Video { path, .. } => assets.hash(path),
        };
        SceneKey { scene, content }
    };
    let (scenes, transition) = match kind {
        SegmentKind::Gap => (vec![], None),
        SegmentKind::Body { scene } => (vec![scene_key(scene)], None),
        SegmentKind::Transition { scene } => (
            vec![scene_key(scene), scene_key(scene + 1)],
            Some(timeline.scenes[scene].transition),
        ),
    };
    let (t0, t1) = (fps.time(start), fps.time(end));
    let overlays = timeline
        .overlays
        .iter()
        .filter(|overlay| match overlay {
            Overlay::Text(text) => text.start < t1 && text.end > t0,
            Overlay::Watermark(_) => true,
        })
        .map(|overlay| {
            let file = match overlay {
                Overlay::Text(text) => assets.hash(&crate::prepare::font_path(&text.style)),
                Overlay::Watermark(mark) => assets.hash(&mark.path),
            };
            (overlay, file)
        })
        .collect();
    let burnt = timeline
        .captions
        .as_ref()
        .filter(|captions| captions.burn_in);
    let captions = burnt
        .map(|captions| {
            captions
                .cues
                .iter()
                .filter(|cue| cue.start < t1 && cue.end > t0)
                .map(|cue| (cue.text.as_str(), cue.start, cue.end))
                .collect()
        })
        .unwrap_or_default();
    let caption_style = burnt.map(|captions| {
        (
            &captions.style,
            assets.hash(&crate::prepare::font_path(&captions.style)),
        )
    });
    let grade = timeline.grade.as_ref().map(|grade| {
        let file = match grade {
            Grade::Lut { path } => assets.hash(path),
            Grade::Eq { .. } => "",
        };
        (grade, file)
    });
    let (width, height) = output.size.dimensions();
    let key = SegmentKey {
        version: RENDERER_VERSION,
        width,
        height,
        fps,
        quality: output.quality,
        start,
        end,
        scenes,
        transition,
        grade,
        overlays,
        captions,
        caption_style,
    };
    let json = serde_json::to_vec(&key).expect("segment keys are plain data");
    digest(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntsc_rates_stay_exact() {
        assert_eq!(
            Fps::from_rate(29.97),
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(
            Fps::from_rate(23.976),
            Fps {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(Fps::from_rate(30.0), Fps { num: 30, den: 1 });
        assert_eq!(
            Fps::from_rate(12.5),
            Fps {
                num: 12500,
                den: 1000
            }
        );
        let fps = Fps::from_rate(30.0);
        assert_eq!(fps.frame(1.0166), 30);
        assert_eq!(fps.frame(1.0167), 31);
    }

    use crate::prepare::{check_structure, load};
    use crate::timeline::{
        Color, FrameSize, OutputFormat, Quality, Scene, Source, Transition, TransitionKind,
    };
    use proptest::prelude::*;

    fn scene((start, length, kind, fade): (f64, f64, u8, f64)) -> Scene {
        let kind = match kind % 4 {
            0 => TransitionKind::Cut,
            1 => TransitionKind::Crossfade,
            2 => TransitionKind::DipToBlack,
            _ => TransitionKind::WipeUp,
        };
        Scene {
            id: None,
            start,
            end: start + length,
            source: Source::Color {
                color: Color::rgb(1, 2, 3),
            },
            fit: Default::default(),
            focus: Default::default(),
            motion: None,
            transition: Transition {
                kind,
                duration: fade,
            },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the times, a timeline is refused with an error or planned into non-empty
        /// segments that cover every frame once, in order.
        #[test]
        fn valid_timelines_plan_into_contiguous_segments(
            raw in proptest::collection::vec((0.0f64..0.5, -0.05f64..2.0, 0u8..8, -0.05f64..0.8), 1..8),
            fps in prop_oneof![Just(24.0), Just(25.0), Just(29.97), Just(30.0), Just(60.0), 1.0f64..120.0],
            chained in any::<bool>(),
        ) {
            let mut cursor = 0.0;
            let count = raw.len();
            let mut scenes: Vec<Scene> = raw
                .into_iter()
                .map(|(gap, length, kind, fade)| {
                    let start = if chained { cursor } else { cursor + gap };
                    let built = scene((start, length, kind, fade));
                    cursor = built.end;
                    built
                })
                .collect();
            // A transition off the last scene is always refused; keep most cases plannable.
            scenes[count - 1].transition = Transition::default();
            let timeline = Timeline {
                outputs: vec![OutputFormat {
                    name: None,
                    size: FrameSize::Custom { width: 64, height: 64 },
                    fps,
                    quality: Quality::default(),
                }],
                scenes,
                overlays: vec![],
                audio: Default::default(),
                grade: None,
                captions: None,
            };
            if check_structure(&timeline).is_err() {
                return Ok(());
            }
            let assets = load(&timeline).expect("colour scenes need no files");
            if let Ok(plan) = plan(&timeline, 0, &timeline.outputs[0], &assets) {
                let mut next = 0;
                for segment in &plan.segments {
                    prop_assert_eq!(segment.start, next);
                    prop_assert!(segment.end > segment.start, "empty segment {:?}", segment);
                    next = segment.end;
                }
                prop_assert_eq!(next, plan.frames);
            }
        }
    }
}
