//! Composes one segment's frames: scene pictures fitted and moving, transitions, grade, overlays.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{CompositorError, Item};
use crate::media::{ClipReader, RgbaImage};
use crate::picture::{Area, Frame, RegionF, Sprite, Yuv};
use crate::plan::{Fps, Segment, SegmentKind, transition_frames};
use crate::prepare::Assets;
use crate::text::{place, render_text};
use crate::timeline::{
    Fit, Overlay, Point, Rect, Scene, Source, TextStyle, Timeline, TransitionKind,
};

/// The fraction of the frame size the blurred fill behind contained sources is computed at.
const FILL_DIVISOR: usize = 8;

/// Draws the frames of one segment of one output.
pub(crate) struct SegmentComposer<'a> {
    timeline: &'a Timeline,
    fps: Fps,
    width: usize,
    height: usize,
    kind: SegmentKind,
    sources: Vec<(usize, SceneSource)>,
    overlays: Vec<TimedSprite>,
    grade: Option<Arc<crate::grade::FrameGrade>>,
    scratch: Frame,
    stills: &'a StillCache,
    held: Vec<(usize, usize)>,
}

impl Drop for SegmentComposer<'_> {
    fn drop(&mut self) {
        for &key in &self.held {
            self.stills.release(key);
        }
    }
}

/// A still ready for one output: shrunk to the size the scene needs, converted to YUV, with
/// its blurred fill when contained.
pub(crate) struct PreparedStill {
    picture: Frame,
    fill: Option<Frame>,
}

fn prepare_still(
    scene: &Scene,
    image: &RgbaImage,
    width: usize,
    height: usize,
) -> Result<PreparedStill, String> {
    let scale = needed_scale(
        scene,
        image.width as f64,
        image.height as f64,
        width,
        height,
    );
    let (w, h) = if scale < 1.0 {
        (
            ((image.width as f64 * scale).ceil() as u32).max(2),
            ((image.height as f64 * scale).ceil() as u32).max(2),
        )
    } else {
        (image.width, image.height)
    };
    let resized = image.resized(w, h).map_err(crate::media::describe)?;
    let picture = Frame::from_rgba(w as usize, h as usize, &resized.data);
    let fill =
        (scene.fit == Fit::Contain).then(|| fill_frame(&picture, scene.focus, width, height));
    Ok(PreparedStill { picture, fill })
}

type StillSlot = Arc<OnceLock<Result<Arc<PreparedStill>, String>>>;

/// Prepared stills keyed by (output, scene), shared by the segments that show them and dropped
/// once the last of those segments is done, so memory follows the scenes in flight.
pub(crate) struct StillCache {
    entries: Mutex<HashMap<(usize, usize), (usize, StillSlot)>>,
}

impl StillCache {
    /// A cache expecting `users[key]` segments to ask for each still.
    pub fn new(users: HashMap<(usize, usize), usize>) -> StillCache {
        let entries = users
            .into_iter()
            .map(|(key, count)| (key, (count, StillSlot::default())))
            .collect();
        StillCache {
            entries: Mutex::new(entries),
        }
    }

    fn get(
        &self,
        key: (usize, usize),
        make: impl FnOnce() -> Result<PreparedStill, String>,
    ) -> Result<Arc<PreparedStill>, String> {
        let slot = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entries
                .entry(key)
                .or_insert_with(|| (1, StillSlot::default()))
                .1
                .clone()
        };
        slot.get_or_init(|| make().map(Arc::new)).clone()
    }

    fn release(&self, key: (usize, usize)) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((count, _)) = entries.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                entries.remove(&key);
            }
        }
    }
}

struct TimedSprite {
    sprite: Sprite,
    position: (i64, i64),
    span: Option<(f64, f64, f64)>,
    opacity: f64,
}

impl TimedSprite {
    /// Timed text, rendered and placed for a frame size.
    fn text(
        assets: &Assets,
        text: &str,
        style: &TextStyle,
        (start, end): (f64, f64),
        width: usize,
        height: usize,
    ) -> TimedSprite {
        let sprite = render_text(assets.font(style), text, style, width, height);
        let position = place(&sprite, style.position, width, height);
        TimedSprite {
            sprite,
            position,
            span: Some((start, end, style.fade)),
            opacity: 1.0,
        }
    }
}

enum SceneSource {
    Solid(Yuv),
    Still(Arc<PreparedStill>),
    Clip {
        reader: Box<ClipReader>,
        trim_start: f64,
        path: PathBuf,
    },
}

impl<'a> SegmentComposer<'a> {
    /// Loads what the segment's scenes and overlays need.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        timeline: &'a Timeline,
        assets: &Assets,
        stills: &'a StillCache,
        output: usize,
        width: usize,
        height: usize,
        fps: Fps,
        segment: &Segment,
    ) -> Result<Self, CompositorError> {
        let scenes = segment.kind.scenes();
        let mut sources = Vec::new();
        let mut held = Vec::new();
        for index in scenes {
            let scene = &timeline.scenes[index];
            let source = match &scene.source {
                Source::Color { color } => SceneSource::Solid(Yuv::from_color(*color)),
                Source::Image { path } => {
                    let prepared = stills
                        .get((output, index), || {
                            prepare_still(scene, &assets.stills[path], width, height)
                        })
                        .map_err(|reason| {
                            CompositorError::media(
                                Item::Scene(index, scene.id.clone()),
                                path,
                                reason,
                            )
                        })?;
                    held.push((output, index));
                    SceneSource::Still(prepared)
                }
                Source::Video { path, trim_start } => {
                    let item = || Item::Scene(index, scene.id.clone());
                    let mut reader = ClipReader::open(path)
                        .map_err(|reason| CompositorError::media(item(), path, reason))?;
                    let first = trim_start + fps.time(segment.start) - scene.start;
                    reader
                        .seek(first.max(0.0))
                        .map_err(|reason| CompositorError::media(item(), path, reason))?;
                    SceneSource::Clip {
                        reader: Box::new(reader),
                        trim_start: *trim_start,
                        path: path.clone(),
                    }
                }
            };
            sources.push((index, source));
        }
        let (t0, t1) = (fps.time(segment.start), fps.time(segment.end));
        let mut overlays = Vec::new();
        for (index, overlay) in timeline.overlays.iter().enumerate() {
            match overlay {
                Overlay::Text(text) if text.start < t1 && text.end > t0 => {
                    overlays.push(TimedSprite::text(
                        assets,
                        &text.text,
                        &text.style,
                        (text.start, text.end),
                        width,
                        height,
                    ));
                }
                Overlay::Text(_) => {}
                Overlay::Watermark(mark) => {
                    let image = &assets.watermarks[&mark.path];
                    let target_width = ((mark.width * width as f64).round() as u32).max(2);
                    let target_height = ((target_width as f64 * image.height as f64
                        / image.width as f64)
                        .round() as u32)
                        .max(2);
                    let resized = image
                        .resized(target_width, target_height)
                        .map_err(|error| {
                            CompositorError::media(Item::Overlay(index), &mark.path, error)
                        })?;
                    let sprite = Sprite::from_rgba(
                        target_width as usize,
                        target_height as usize,
                        &resized.data,
                    );
                    let position = place(&sprite, mark.position, width, height);
                    overlays.push(TimedSprite {
                        sprite,
                        position,
                        span: None,
                        opacity: mark.opacity,
                    });
                }
            }
        }
        if let Some(captions) = timeline
            .captions
            .as_ref()
            .filter(|captions| captions.burn_in)
        {
            for cue in captions
                .cues
                .iter()
                .filter(|cue| cue.start < t1 && cue.end > t0)
            {
                overlays.push(TimedSprite::text(
                    assets,
                    &cue.text,
                    &captions.style,
                    (cue.start, cue.end),
                    width,
                    height,
                ));
            }
        }
        Ok(SegmentComposer {
            timeline,
            fps,
            width,
            height,
            kind: segment.kind,
            sources,
            overlays,
            grade: assets.grade.clone(),
            scratch: Frame::new(width, height, Yuv::BLACK),
            stills,
            held,
        })
    }

    /// Draws frame `index` (an absolute frame number of the output) into `frame`.
    pub fn draw(&mut self, index: u64, frame: &mut Frame) -> Result<(), CompositorError> {
        let time = self.fps.time(index);
        match self.kind {
            SegmentKind::Gap => frame.fill(Yuv::BLACK),
            SegmentKind::Body { .. } => self.draw_scene(0, time, frame)?,
            SegmentKind::Transition { scene } => {
                let transition = self.timeline.scenes[scene].transition;
                let (start, end) =
                    transition_frames(self.fps, self.timeline.scenes[scene].end, &transition);
                let progress =
                    (index - start) as f64 / (end - start) as f64 + 0.5 / (end - start) as f64;
                let mut scratch =
                    std::mem::replace(&mut self.scratch, Frame::new(0, 0, Yuv::BLACK));
                let result =
                    self.draw_transition(transition.kind, progress, time, frame, &mut scratch);
                self.scratch = scratch;
                result?;
            }
        }
        if let Some(grade) = &self.grade {
            grade.apply(frame);
        }
        for overlay in &self.overlays {
            let opacity = match overlay.span {
                None => overlay.opacity,
                Some((start, end, fade)) if time >= start && time < end => {
                    let fade_in = if fade > 0.0 {
                        (time - start) / fade
                    } else {
                        1.0
                    };
                    let fade_out = if fade > 0.0 { (end - time) / fade } else { 1.0 };
                    overlay.opacity * fade_in.min(fade_out).min(1.0)
                }
                Some(_) => 0.0,
            };
            frame.blend_sprite(
                &overlay.sprite,
                overlay.position.0,
                overlay.position.1,
                opacity,
            );
        }
        Ok(())
    }

    fn draw_transition(
        &mut self,
        kind: TransitionKind,
        progress: f64,
        time: f64,
        frame: &mut Frame,
        scratch: &mut Frame,
    ) -> Result<(), CompositorError> {
        let (width, height) = (self.width, self.height);
        match kind {
            TransitionKind::Cut => self.draw_scene(usize::from(progress >= 0.5), time, frame)?,
            TransitionKind::Crossfade => {
                self.draw_scene(0, time, frame)?;
                self.draw_scene(1, time, scratch)?;
                frame.mix(scratch, progress);
            }
            TransitionKind::DipToBlack => {
                if progress < 0.5 {
                    self.draw_scene(0, time, frame)?;
                    frame.fade_to(Yuv::BLACK, progress * 2.0);
                } else {
                    self.draw_scene(1, time, frame)?;
                    frame.fade_to(Yuv::BLACK, (1.0 - progress) * 2.0);
                }
            }
            TransitionKind::WipeLeft
            | TransitionKind::WipeRight
            | TransitionKind::WipeUp
            | TransitionKind::WipeDown => {
                self.draw_scene(0, time, frame)?;
                self.draw_scene(1, time, scratch)?;
                let even = |value: f64| {
                    ((value / 2.0).round() as usize * 2).min(
                        if matches!(kind, TransitionKind::WipeUp | TransitionKind::WipeDown) {
                            height
                        } else {
                            width
                        },
                    )
                };
                let area = match kind {
                    TransitionKind::WipeLeft => {
                        let x = even(width as f64 * (1.0 - progress));
                        Area {
                            x,
                            y: 0,
                            width: width - x,
                            height,
                        }
                    }
                    TransitionKind::WipeRight => Area {
                        x: 0,
                        y: 0,
                        width: even(width as f64 * progress),
                        height,
                    },
                    TransitionKind::WipeUp => {
                        let y = even(height as f64 * (1.0 - progress));
                        Area {
                            x: 0,
                            y,
                            width,
                            height: height - y,
                        }
                    }
                    _ => Area {
                        x: 0,
                        y: 0,
                        width,
                        height: even(height as f64 * progress),
                    },
                };
                frame.replace_area(scratch, area);
            }
        }
        Ok(())
    }

    /// Draws the `slot`th scene of the segment at `time`.
    fn draw_scene(
        &mut self,
        slot: usize,
        time: f64,
        frame: &mut Frame,
    ) -> Result<(), CompositorError> {
        let (width, height) = (self.width, self.height);
        let (index, source) = &mut self.sources[slot];
        let scene = &self.timeline.scenes[*index];
        let picture = match source {
            SceneSource::Solid(colour) => {
                frame.fill(*colour);
                return Ok(());
            }
            SceneSource::Still(prepared) => {
                if let Some(fill) = &prepared.fill {
                    frame.clone_from(fill);
                }
                &prepared.picture
            }
            SceneSource::Clip {
                reader,
                trim_start,
                path,
            } => {
                let at = *trim_start + time - scene.start;
                let picture = reader.picture_at(at).map_err(|reason| {
                    CompositorError::media(Item::Scene(*index, scene.id.clone()), &*path, reason)
                })?;
                if scene.fit == Fit::Contain {
                    frame.clone_from(&fill_frame(picture, scene.focus, width, height));
                }
                picture
            }
        };
        let progress = (time - scene.start) / (scene.end - scene.start);
        let region = to_pixels(region_at(scene, progress), picture.width, picture.height);
        match scene.fit {
            Fit::Cover => {
                let crop = cover_crop(
                    region,
                    centre_for(scene, region, picture),
                    width as f64 / height as f64,
                );
                frame.draw(picture, crop, Area::full(width, height));
            }
            Fit::Contain => frame.draw(picture, region, contain_area(region, width, height)),
        }
        Ok(())
    }
}

/// The source region shown at `progress` (0..1) through the scene.
fn region_at(scene: &Scene, progress: f64) -> Rect {
    match &scene.motion {
        None => Rect::FULL,
        Some(motion) => {
            let t = motion.easing.apply(progress);
            let lerp = |a: f64, b: f64| a + (b - a) * t;
            Rect {
                x: lerp(motion.from.x, motion.to.x),
                y: lerp(motion.from.y, motion.to.y),
                w: lerp(motion.from.w, motion.to.w),
                h: lerp(motion.from.h, motion.to.h),
            }
        }
    }
}

fn to_pixels(rect: Rect, width: usize, height: usize) -> RegionF {
    let (w, h) = (width as f64, height as f64);
    RegionF {
        x: rect.x * w,
        y: rect.y * h,
        width: rect.w * w,
        height: rect.h * h,
    }
}

/// Where a cover crop centres: the focus point when the scene is still, the moving region's
/// centre when it moves.
fn centre_for(scene: &Scene, region: RegionF, picture: &Frame) -> (f64, f64) {
    match scene.motion {
        Some(_) => (
            region.x + region.width / 2.0,
            region.y + region.height / 2.0,
        ),
        None => (
            scene.focus.x * picture.width as f64,
            scene.focus.y * picture.height as f64,
        ),
    }
}

/// The largest part of `region` with the output's aspect ratio, as centred on `centre` as the
/// region allows.
fn cover_crop(region: RegionF, centre: (f64, f64), aspect: f64) -> RegionF {
    let (width, height) = if region.width / region.height > aspect {
        (region.height * aspect, region.height)
    } else {
        (region.width, region.width / aspect)
    };
    // max-then-min rather than clamp: rounding can leave the upper bound a hair below the lower.
    let x = (centre.0 - width / 2.0)
        .min(region.x + region.width - width)
        .max(region.x);
    let y = (centre.1 - height / 2.0)
        .min(region.y + region.height - height)
        .max(region.y);
    RegionF {
        x,
        y,
        width,
        height,
    }
}

/// The largest even-aligned area of the frame with the region's aspect ratio, centred.
fn contain_area(region: RegionF, width: usize, height: usize) -> Area {
    let scale = (width as f64 / region.width).min(height as f64 / region.height);
    let even = |value: f64| ((value / 2.0).round() as usize * 2).max(2);
    let (w, h) = (
        even(region.width * scale).min(width),
        even(region.height * scale).min(height),
    );
    Area {
        x: ((width - w) / 4) * 2,
        y: ((height - h) / 4) * 2,
        width: w,
        height: h,
    }
}

/// Output pixels per source pixel the scene needs at its closest, so stills can be shrunk
/// once instead of being minified every frame.
fn needed_scale(
    scene: &Scene,
    source_width: f64,
    source_height: f64,
    width: usize,
    height: usize,
) -> f64 {
    let rects = match &scene.motion {
        None => vec![Rect::FULL],
        Some(motion) => vec![motion.from, motion.to],
    };
    rects
        .into_iter()
        .map(|rect| {
            let region = RegionF {
                x: 0.0,
                y: 0.0,
                width: rect.w * source_width,
                height: rect.h * source_height,
            };
            match scene.fit {
                Fit::Cover => {
                    width as f64
                        / cover_crop(region, (0.0, 0.0), width as f64 / height as f64).width
                }
                Fit::Contain => contain_area(region, width, height).width as f64 / region.width,
            }
        })
        .fold(0.0, f64::max)
}

/// The blurred, zoomed copy of a source that fills the frame behind it.
fn fill_frame(picture: &Frame, focus: Point, width: usize, height: usize) -> Frame {
    let full = RegionF {
        x: 0.0,
        y: 0.0,
        width: picture.width as f64,
        height: picture.height as f64,
    };
    let crop = cover_crop(
        full,
        (focus.x * full.width, focus.y * full.height),
        width as f64 / height as f64,
    );
    let small = picture.blurred(
        crop,
        (width / FILL_DIVISOR).max(2),
        (height / FILL_DIVISOR).max(2),
    );
    let mut frame = Frame::new(width, height, Yuv::BLACK);
    let whole = RegionF {
        x: 0.0,
        y: 0.0,
        width: small.width as f64,
        height: small.height as f64,
    };
    frame.draw(&small, whole, Area::full(width, height));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_crops_keep_the_focus_in_frame() {
        let source = RegionF {
            x: 0.0,
            y: 0.0,
            width: 1920.0,
            height: 1080.0,
        };
        let crop = cover_crop(source, (1700.0, 300.0), 9.0 / 16.0);
        assert!((crop.height - 1080.0).abs() < 1e-9 && (crop.width - 607.5).abs() < 1e-9);
        assert!(crop.x <= 1700.0 && crop.x + crop.width >= 1700.0);
        assert!(
            (crop.x + crop.width - 1920.0).abs() < 1e-9,
            "clamped to the right edge"
        );
        let square = cover_crop(source, (960.0, 540.0), 1.0);
        assert!((square.x - 420.0).abs() < 1e-9);
    }

    #[test]
    fn fills_for_tall_frames_have_odd_sized_planes_and_still_draw() {
        // 1080 / 8 = 135: the blurred fill of a 9:16 frame is odd-sized.
        let source = Frame::new(64, 48, Yuv::from_rgb(200, 40, 40));
        let fill = fill_frame(&source, Point::default(), 1080, 1920);
        assert_eq!((fill.width, fill.height), (1080, 1920));
        assert!(
            fill.u.iter().all(|&u| u == fill.u[0]),
            "a flat source gives a flat fill"
        );
        assert_eq!(fill.u[0], Yuv::from_rgb(200, 40, 40).u);
    }

    #[test]
    fn contained_areas_are_centred_and_even() {
        let area = contain_area(
            RegionF {
                x: 0.0,
                y: 0.0,
                width: 1920.0,
                height: 1080.0,
            },
            1080,
            1920,
        );
        assert_eq!((area.width, area.height % 2, area.x), (1080, 0, 0));
        assert!(area.y > 600 && area.y.is_multiple_of(2));
    }
}
