//! Validation and loading: every check that can fail runs here, before anything is encoded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ab_glyph::FontVec;
use sha2::{Digest, Sha256};

use crate::error::{CompositorError, Item};
use crate::grade::{CubeLut, FrameGrade};
use crate::media::{self, ClipReader, RgbaImage, StereoAudio};
use crate::text::{DEFAULT_FONT, load_font};
use crate::timeline::{Grade, Overlay, Rect, Source, TextStyle, Timeline};

/// Side lengths an output may have.
const SIZE_RANGE: std::ops::RangeInclusive<u32> = 64..=4096;
/// Tolerance when comparing timeline times, well under a frame at any rate.
pub(crate) const TIME_EPSILON: f64 = 1e-6;

/// Everything the render reads, loaded once and checked.
pub(crate) struct Assets {
    pub stills: HashMap<PathBuf, Arc<RgbaImage>>,
    pub fonts: HashMap<PathBuf, Arc<FontVec>>,
    pub watermarks: HashMap<PathBuf, Arc<RgbaImage>>,
    pub grade: Option<Arc<FrameGrade>>,
    pub audio: Vec<StereoAudio>,
    /// Content hashes of every file, so a cached segment is reused only for identical inputs.
    pub hashes: HashMap<PathBuf, String>,
}

impl Assets {
    pub fn font(&self, style: &TextStyle) -> &Arc<FontVec> {
        &self.fonts[&font_path(style)]
    }

    pub fn hash(&self, path: &Path) -> &str {
        self.hashes.get(path).map_or("", String::as_str)
    }
}

pub(crate) fn font_path(style: &TextStyle) -> PathBuf {
    style
        .font
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT))
}

/// Checks the timeline's shape: sizes, times, ranges. Reads no files.
pub(crate) fn check_structure(timeline: &Timeline) -> Result<(), CompositorError> {
    if timeline.outputs.is_empty() {
        return Err(invalid(Item::Timeline, "no output formats"));
    }
    let mut labels = Vec::new();
    for (index, output) in timeline.outputs.iter().enumerate() {
        let item = || Item::Output(index, output.label());
        let (width, height) = output.size.dimensions();
        if !SIZE_RANGE.contains(&width)
            || !SIZE_RANGE.contains(&height)
            || width % 2 == 1
            || height % 2 == 1
        {
            return Err(invalid(
                item(),
                format!("unsupported size {width}x{height}: sides must be even, 64 to 4096"),
            ));
        }
        if !(output.fps.is_finite() && output.fps >= 1.0 && output.fps <= 120.0) {
            return Err(invalid(
                item(),
                format!("frame rate {} is outside 1..120", output.fps),
            ));
        }
        if output.quality.crf > 51 {
            return Err(invalid(
                item(),
                format!("crf {} is outside 0..51", output.quality.crf),
            ));
        }
        let label = output.label();
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                item(),
                "names may use letters, digits, '-', '_' and '.'",
            ));
        }
        if labels.contains(&label) {
            return Err(invalid(item(), "two outputs share this name"));
        }
        labels.push(label);
    }
    if timeline.scenes.is_empty() {
        return Err(invalid(Item::Timeline, "no scenes"));
    }
    let scene_count = timeline.scenes.len();
    for (index, scene) in timeline.scenes.iter().enumerate() {
        let item = || Item::Scene(index, scene.id.clone());
        if !(scene.start.is_finite() && scene.end.is_finite()) || scene.start < 0.0 {
            return Err(invalid(
                item(),
                "start and end must be finite and not negative",
            ));
        }
        if scene.end - scene.start <= TIME_EPSILON {
            return Err(invalid(
                item(),
                format!("duration {:.3} s is not positive", scene.end - scene.start),
            ));
        }
        if index > 0 {
            let previous = &timeline.scenes[index - 1];
            if scene.start < previous.end - TIME_EPSILON {
                return Err(invalid(
                    item(),
                    format!(
                        "starts at {:.3} s, before scene {} ends at {:.3} s: scenes overlap",
                        scene.start,
                        index - 1,
                        previous.end
                    ),
                ));
            }
        }
        check_point(scene.focus.x, scene.focus.y)
            .map_err(|reason| invalid(item(), format!("focus {reason}")))?;
        if let Some(motion) = &scene.motion {
            check_rect(&motion.from)
                .map_err(|reason| invalid(item(), format!("motion start {reason}")))?;
            check_rect(&motion.to)
                .map_err(|reason| invalid(item(), format!("motion end {reason}")))?;
        }
        match &scene.source {
            Source::Video { trim_start, .. } if !(trim_start.is_finite() && *trim_start >= 0.0) => {
                return Err(invalid(
                    item(),
                    "trim_start must be finite and not negative",
                ));
            }
            Source::Color { color } if color.a != 255 => {
                return Err(invalid(item(), "scene colours must be opaque"));
            }
            _ => {}
        }
        let transition = scene.transition;
        if transition.blends() {
            if !(transition.duration.is_finite() && transition.duration > TIME_EPSILON) {
                return Err(invalid(item(), "a transition needs a positive duration"));
            }
            let Some(next) = timeline.scenes.get(index + 1) else {
                return Err(invalid(
                    item(),
                    "has a transition into the next scene, but it is the last scene",
                ));
            };
            if (next.start - scene.end).abs() > TIME_EPSILON {
                return Err(invalid(
                    item(),
                    "a transition needs the next scene to start where this one ends",
                ));
            }
        }
        let incoming = if index > 0 && timeline.scenes[index - 1].transition.blends() {
            timeline.scenes[index - 1].transition.duration
        } else {
            0.0
        };
        let outgoing = if transition.blends() && index + 1 < scene_count {
            transition.duration
        } else {
            0.0
        };
        if (incoming + outgoing) / 2.0 > scene.end - scene.start + TIME_EPSILON {
            return Err(invalid(
                item(),
                "its transitions are longer than the scene: halves of both must fit in it",
            ));
        }
    }
    let duration = timeline.duration();
    for (index, overlay) in timeline.overlays.iter().enumerate() {
        let item = || Item::Overlay(index);
        match overlay {
            Overlay::Text(text) => {
                if text.text.trim().is_empty() {
                    return Err(invalid(item(), "the text is empty"));
                }
                check_span(text.start, text.end).map_err(|reason| invalid(item(), reason))?;
                check_style(&text.style).map_err(|reason| invalid(item(), reason))?;
            }
            Overlay::Watermark(mark) => {
                if !(0.0..=1.0).contains(&mark.opacity) {
                    return Err(invalid(item(), "opacity must be within 0..1"));
                }
                if !(mark.width > 0.0 && mark.width <= 1.0) {
                    return Err(invalid(
                        item(),
                        "width must be a fraction of the frame, above 0 and at most 1",
                    ));
                }
            }
        }
    }
    for (index, track) in timeline.audio.tracks.iter().enumerate() {
        let item = || Item::AudioTrack(index);
        let times = [
            track.offset,
            track.trim_start,
            track.fade_in,
            track.fade_out,
        ];
        if times.iter().any(|t| !t.is_finite() || *t < 0.0) {
            return Err(invalid(
                item(),
                "offset, trim_start and fades must be finite and not negative",
            ));
        }
        if track.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return Err(invalid(item(), "duration must be positive"));
        }
        if !track.gain_db.is_finite() || track.gain_db > 24.0 {
            return Err(invalid(item(), "gain must be finite and at most +24 dB"));
        }
        if track.offset >= duration {
            return Err(invalid(
                item(),
                format!(
                    "starts at {:.3} s, after the timeline ends at {duration:.3} s",
                    track.offset
                ),
            ));
        }
    }
    let times_ok = |seconds: f64| seconds.is_finite() && seconds >= 0.0;
    if let Some(ducking) = timeline.audio.ducking
        && !(ducking.amount_db.is_finite()
            && ducking.amount_db <= 0.0
            && times_ok(ducking.attack)
            && times_ok(ducking.release))
    {
        return Err(invalid(
            Item::Timeline,
            "ducking needs amount_db ≤ 0 and non-negative attack and release",
        ));
    }
    if let Some(Grade::Eq {
        brightness,
        contrast,
        saturation,
    }) = &timeline.grade
        && (!(-1.0..=1.0).contains(brightness)
            || !(0.0..=4.0).contains(contrast)
            || !(0.0..=3.0).contains(saturation))
    {
        return Err(invalid(
            Item::Grade,
            "brightness must be within -1..1, contrast 0..4, saturation 0..3",
        ));
    }
    if let Some(captions) = &timeline.captions {
        check_style(&captions.style)
            .map_err(|reason| invalid(Item::Timeline, format!("caption style: {reason}")))?;
        for (index, cue) in captions.cues.iter().enumerate() {
            check_span(cue.start, cue.end).map_err(|reason| invalid(Item::Cue(index), reason))?;
            if cue.text.trim().is_empty() {
                return Err(invalid(Item::Cue(index), "the text is empty"));
            }
        }
    }
    Ok(())
}

fn invalid(item: Item, reason: impl Into<String>) -> CompositorError {
    CompositorError::invalid(item, reason)
}

fn check_point(x: f64, y: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y) {
        Ok(())
    } else {
        Err(format!("({x}, {y}) is outside the source (0..1)"))
    }
}

fn check_rect(rect: &Rect) -> Result<(), String> {
    let inside = rect.x >= 0.0 && rect.y >= 0.0 && rect.w > 0.0 && rect.h > 0.0;
    if inside && rect.x + rect.w <= 1.0 + TIME_EPSILON && rect.y + rect.h <= 1.0 + TIME_EPSILON {
        Ok(())
    } else {
        Err(format!(
            "rectangle {rect:?} is not a non-empty part of the source (0..1)"
        ))
    }
}

fn check_span(start: f64, end: f64) -> Result<(), String> {
    if start.is_finite() && end.is_finite() && start >= 0.0 && end > start {
        Ok(())
    } else {
        Err(format!("times {start}..{end} are not a forward span"))
    }
}

fn check_style(style: &TextStyle) -> Result<(), String> {
    if !(style.size > 0.0 && style.size <= 0.5) {
        return Err(
            "text size must be a fraction of the frame height, above 0 and at most 0.5".into(),
        );
    }
    if !(style.fade.is_finite() && style.fade >= 0.0) {
        return Err("fade must not be negative".into());
    }
    if style
        .outline
        .is_some_and(|outline| !(0.0..=0.5).contains(&outline.width))
    {
        return Err("outline width must be within 0..0.5 of the text size".into());
    }
    Ok(())
}

/// Opens, decodes and hashes every file the timeline names.
pub(crate) fn load(timeline: &Timeline) -> Result<Assets, CompositorError> {
    let mut assets = Assets {
        stills: HashMap::new(),
        fonts: HashMap::new(),
        watermarks: HashMap::new(),
        grade: None,
        audio: Vec::new(),
        hashes: HashMap::new(),
    };
    for (index, scene) in timeline.scenes.iter().enumerate() {
        let item = || Item::Scene(index, scene.id.clone());
        match &scene.source {
            Source::Color { .. } => {}
            Source::Image { path } => hash_file(&mut assets, item(), path)?,
            Source::Video { path, trim_start } => {
                hash_file(&mut assets, item(), path)?;
                let mut clip = ClipReader::open(path)
                    .map_err(|reason| CompositorError::media(item(), path, reason))?;
                clip.seek(*trim_start)
                    .map_err(|reason| CompositorError::media(item(), path, reason))?;
                clip.picture_at(*trim_start)
                    .map_err(|reason| CompositorError::media(item(), path, reason))?;
            }
        }
    }
    // Audio decodes beside the stills: the two are the slow part of loading.
    let (stills, audio) = std::thread::scope(|scope| {
        let audio = scope.spawn(|| decode_tracks(timeline));
        let stills = decode_stills(timeline);
        (stills, audio.join())
    });
    assets.stills = stills?;
    assets.audio = audio.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let mut styles: Vec<(Item, &TextStyle)> = Vec::new();
    for (index, overlay) in timeline.overlays.iter().enumerate() {
        match overlay {
            Overlay::Text(text) => styles.push((Item::Overlay(index), &text.style)),
            Overlay::Watermark(mark) => {
                hash_file(&mut assets, Item::Overlay(index), &mark.path)?;
                let image = media::decode_image(&mark.path).map_err(|reason| {
                    CompositorError::media(Item::Overlay(index), &mark.path, reason)
                })?;
                assets.watermarks.insert(mark.path.clone(), Arc::new(image));
            }
        }
    }
    if let Some(captions) = timeline
        .captions
        .as_ref()
        .filter(|captions| captions.burn_in)
    {
        styles.push((Item::Timeline, &captions.style));
    }
    for (item, style) in styles {
        let path = font_path(style);
        if assets.fonts.contains_key(&path) {
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|error| CompositorError::media(item.clone(), &path, error))?;
        assets.hashes.insert(path.clone(), digest(&bytes));
        let font =
            load_font(bytes).map_err(|reason| CompositorError::media(item, &path, reason))?;
        assets.fonts.insert(path, Arc::new(font));
    }
    match &timeline.grade {
        Some(Grade::Lut { path }) => {
            let bytes = std::fs::read(path)
                .map_err(|error| CompositorError::media(Item::Grade, path, error))?;
            assets.hashes.insert(path.clone(), digest(&bytes));
            let text = String::from_utf8(bytes)
                .map_err(|_| CompositorError::media(Item::Grade, path, "not a text .cube file"))?;
            let cube = CubeLut::parse(&text)
                .map_err(|reason| CompositorError::media(Item::Grade, path, reason))?;
            assets.grade = Some(Arc::new(FrameGrade::lut(&cube)));
        }
        Some(Grade::Eq {
            brightness,
            contrast,
            saturation,
        }) => {
            assets.grade = Some(Arc::new(FrameGrade::eq(
                *brightness,
                *contrast,
                *saturation,
            )));
        }
        None => {}
    }
    for (index, track) in timeline.audio.tracks.iter().enumerate() {
        hash_file(&mut assets, Item::AudioTrack(index), &track.path)?;
    }
    Ok(assets)
}

/// Decodes every audio track, checking each has sound after its trim point.
fn decode_tracks(timeline: &Timeline) -> Result<Vec<StereoAudio>, CompositorError> {
    let mut decoded = Vec::with_capacity(timeline.audio.tracks.len());
    for (index, track) in timeline.audio.tracks.iter().enumerate() {
        let item = || Item::AudioTrack(index);
        let audio = media::decode_audio(&track.path, track.trim_start, track.duration)
            .map_err(|reason| CompositorError::media(item(), &track.path, reason))?;
        if audio.frames() == 0 {
            return Err(CompositorError::media(
                item(),
                &track.path,
                "no audio after trim_start",
            ));
        }
        decoded.push(audio);
    }
    Ok(decoded)
}

/// Decodes every distinct still on all cores; the first failing scene in timeline order is
/// the one reported.
fn decode_stills(timeline: &Timeline) -> Result<HashMap<PathBuf, Arc<RgbaImage>>, CompositorError> {
    let mut wanted: Vec<(Item, &PathBuf)> = Vec::new();
    for (index, scene) in timeline.scenes.iter().enumerate() {
        if let Source::Image { path } = &scene.source
            && !wanted.iter().any(|(_, seen)| *seen == path)
        {
            wanted.push((Item::Scene(index, scene.id.clone()), path));
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let decoded: Vec<std::sync::Mutex<Option<Result<RgbaImage, String>>>> =
        wanted.iter().map(|_| Default::default()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(wanted.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let job = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((_, path)) = wanted.get(job) else {
                        break;
                    };
                    let result = media::decode_image(path);
                    *decoded[job]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut stills = HashMap::new();
    for ((item, path), slot) in wanted.into_iter().zip(decoded) {
        let result = slot
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let image = result
            .unwrap_or_else(|| Err("not decoded".into()))
            .map_err(|reason| CompositorError::media(item, path, reason))?;
        stills.insert(path.clone(), Arc::new(image));
    }
    Ok(stills)
}

fn hash_file(assets: &mut Assets, item: Item, path: &Path) -> Result<(), CompositorError> {
    if assets.hashes.contains_key(path) {
        return Ok(());
    }
    let mut file = std::fs::File::open(path)
        .map_err(|error| CompositorError::media(item.clone(), path, error))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|error| CompositorError::media(item, path, error))?;
    assets
        .hashes
        .insert(path.to_path_buf(), hex(&hasher.finalize()));
    Ok(())
}

pub(crate) fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
