//! The timeline: everything a render needs, as plain serde data.
//!
//! Times are seconds on the timeline, which starts at 0. Source rectangles and focus points are
//! fractions of the source picture (0..1), so one timeline serves every output shape. Sizes of
//! text and watermarks are fractions of the output frame for the same reason.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A video to render: its output formats, scenes, overlays, audio, grade and captions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// The formats to render; each becomes its own MP4.
    pub outputs: Vec<OutputFormat>,
    /// Scenes in time order. Gaps between scenes render black.
    pub scenes: Vec<Scene>,
    /// Timed text and watermarks drawn over the scenes.
    #[serde(default)]
    pub overlays: Vec<Overlay>,
    /// Music, narration and effects.
    #[serde(default)]
    pub audio: Audio,
    /// Colour grade applied to every frame before overlays.
    #[serde(default)]
    pub grade: Option<Grade>,
    /// Caption cues written as SRT and WebVTT sidecars and optionally burnt in.
    #[serde(default)]
    pub captions: Option<Captions>,
}

impl Timeline {
    /// The timeline's length: the end of its last scene.
    pub fn duration(&self) -> f64 {
        self.scenes
            .iter()
            .map(|scene| scene.end)
            .fold(0.0, f64::max)
    }
}

/// One rendered format: frame size, frame rate and encoder quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFormat {
    /// Names the output file (`<stem>-<name>.mp4`); defaults to the size's name (`16x9`, …).
    #[serde(default)]
    pub name: Option<String>,
    /// Frame size.
    pub size: FrameSize,
    /// Frames per second; 23.976, 29.97 and 59.94 are kept as exact NTSC rates.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// Encoder quality.
    #[serde(default)]
    pub quality: Quality,
}

fn default_fps() -> f64 {
    30.0
}

impl OutputFormat {
    /// The name used in file names and reports.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.size.label())
    }
}

/// An output frame size: one of the platform shapes or a custom size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FrameSize {
    /// A platform shape by its aspect ratio.
    Named(NamedSize),
    /// Any even size from 64 to 4096 pixels a side.
    Custom {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// The platform shapes Montage renders by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamedSize {
    /// 16:9, 1920×1080 (YouTube, landscape).
    #[serde(rename = "16:9")]
    Landscape,
    /// 9:16, 1080×1920 (Shorts, Reels, TikTok).
    #[serde(rename = "9:16")]
    Portrait,
    /// 1:1, 1080×1080 (feeds).
    #[serde(rename = "1:1")]
    Square,
}

impl FrameSize {
    /// Width and height in pixels.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            FrameSize::Named(NamedSize::Landscape) => (1920, 1080),
            FrameSize::Named(NamedSize::Portrait) => (1080, 1920),
            FrameSize::Named(NamedSize::Square) => (1080, 1080),
            FrameSize::Custom { width, height } => (width, height),
        }
    }

    /// A file-name-safe label: `16x9`, `9x16`, `1x1` or `<w>x<h>`.
    pub fn label(self) -> String {
        match self {
            FrameSize::Named(NamedSize::Landscape) => "16x9".into(),
            FrameSize::Named(NamedSize::Portrait) => "9x16".into(),
            FrameSize::Named(NamedSize::Square) => "1x1".into(),
            FrameSize::Custom { width, height } => format!("{width}x{height}"),
        }
    }
}

/// H.264 quality: constant rate factor and x264 preset. The fast presets (ultrafast to
/// veryfast) also pick the AAC encoder's fast coder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// Constant rate factor, 0 (lossless) to 51; 18–23 is visually good.
    #[serde(default = "default_crf")]
    pub crf: u8,
    /// Speed against compression.
    #[serde(default)]
    pub preset: Preset,
}

fn default_crf() -> u8 {
    20
}

impl Default for Quality {
    fn default() -> Self {
        Quality {
            crf: default_crf(),
            preset: Preset::default(),
        }
    }
}

/// x264's speed presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Preset {
    Ultrafast,
    Superfast,
    Veryfast,
    Faster,
    Fast,
    #[default]
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl Preset {
    /// The name x264 knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Ultrafast => "ultrafast",
            Preset::Superfast => "superfast",
            Preset::Veryfast => "veryfast",
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
            Preset::Slower => "slower",
            Preset::Veryslow => "veryslow",
        }
    }
}

/// One shot on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// A name for errors and reports.
    #[serde(default)]
    pub id: Option<String>,
    /// Where the scene starts on the timeline (its cut-in time).
    pub start: f64,
    /// Where it ends (its cut-out time).
    pub end: f64,
    /// What the scene shows.
    pub source: Source,
    /// How the source fills the frame.
    #[serde(default)]
    pub fit: Fit,
    /// The point of the source to keep in frame when cropping (fractions of the source).
    #[serde(default)]
    pub focus: Point,
    /// Ken Burns motion over the scene; the rectangles are regions of the source.
    #[serde(default)]
    pub motion: Option<Motion>,
    /// The transition into the next scene, centred on this scene's end.
    #[serde(default)]
    pub transition: Transition,
}

/// What a scene shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A solid colour.
    Color {
        /// The colour.
        color: Color,
    },
    /// A still image (PNG, JPEG, WebP, … anything FFmpeg decodes).
    Image {
        /// The image file.
        path: PathBuf,
    },
    /// A video clip, played from `trim_start` at normal speed; its last frame holds if it ends
    /// before the scene does.
    Video {
        /// The clip file.
        path: PathBuf,
        /// Seconds into the clip where the scene starts.
        #[serde(default)]
        trim_start: f64,
    },
}

/// How a source fills a frame of another shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Fill the frame, cropping around the focus point.
    #[default]
    Cover,
    /// Show the whole source, over a blurred, zoomed copy of itself.
    Contain,
}

/// A point as fractions of the source's width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// 0 is the left edge, 1 the right.
    pub x: f64,
    /// 0 is the top edge, 1 the bottom.
    pub y: f64,
}

impl Default for Point {
    fn default() -> Self {
        Point { x: 0.5, y: 0.5 }
    }
}

/// A rectangle as fractions of the source's width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Rect {
    /// The whole source.
    pub const FULL: Rect = Rect {
        x: 0.0,
        y: 0.0,
        w: 1.0,
        h: 1.0,
    };
}

/// Ken Burns motion: the shown region moves from one rectangle to another.
///
/// Each output crops the region to its own shape around the region's centre, so a 16:9
/// rectangle still frames its subject in 9:16.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Motion {
    /// The region at the scene's start.
    pub from: Rect,
    /// The region at the scene's end.
    pub to: Rect,
    /// How the motion accelerates.
    #[serde(default)]
    pub easing: Easing,
}

/// Easing curves for motion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Easing {
    /// Constant speed.
    Linear,
    /// Starts slow.
    EaseIn,
    /// Ends slow.
    EaseOut,
    /// Starts and ends slow.
    #[default]
    EaseInOut,
}

impl Easing {
    /// Maps linear progress 0..1 to eased progress 0..1.
    pub fn apply(self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Easing::Linear => t,
            Easing::EaseIn => t * t,
            Easing::EaseOut => 1.0 - (1.0 - t) * (1.0 - t),
            Easing::EaseInOut => t * t * (3.0 - 2.0 * t),
        }
    }
}

/// The transition from one scene into the next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Its kind.
    pub kind: TransitionKind,
    /// Seconds, centred on the cut; ignored for cuts.
    #[serde(default)]
    pub duration: f64,
}

impl Default for Transition {
    fn default() -> Self {
        Transition {
            kind: TransitionKind::Cut,
            duration: 0.0,
        }
    }
}

impl Transition {
    /// Whether the two scenes overlap in time (anything but a hard cut).
    pub fn blends(&self) -> bool {
        self.kind != TransitionKind::Cut
    }
}

/// Kinds of transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// A hard cut.
    Cut,
    /// The next scene fades in over this one.
    Crossfade,
    /// This scene fades to black, the next fades up from it.
    DipToBlack,
    /// The next scene is revealed from the right edge towards the left.
    WipeLeft,
    /// The next scene is revealed from the left edge towards the right.
    WipeRight,
    /// The next scene is revealed from the bottom edge upwards.
    WipeUp,
    /// The next scene is revealed from the top edge downwards.
    WipeDown,
}

/// Something drawn over the scenes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Overlay {
    /// Timed text: a caption or a title.
    Text(TextOverlay),
    /// An image over the whole video.
    Watermark(Watermark),
}

/// Timed text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextOverlay {
    /// The text; `\n` breaks lines, long lines wrap inside the safe area.
    pub text: String,
    /// When it appears.
    pub start: f64,
    /// When it is gone.
    pub end: f64,
    /// Style and placement.
    #[serde(flatten)]
    pub style: TextStyle,
}

/// How text looks and where it sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextStyle {
    /// A TrueType or OpenType font file; DejaVu Sans Bold when absent.
    #[serde(default)]
    pub font: Option<PathBuf>,
    /// Line height as a fraction of the frame height.
    #[serde(default = "default_text_size")]
    pub size: f64,
    /// Fill colour.
    #[serde(default = "Color::white")]
    pub color: Color,
    /// An outline around the glyphs, for legibility on any picture.
    #[serde(default = "default_outline")]
    pub outline: Option<Outline>,
    /// Where in the safe area the text block sits.
    #[serde(default = "default_text_position")]
    pub position: Position,
    /// Seconds of fade in and fade out.
    #[serde(default = "default_text_fade")]
    pub fade: f64,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            font: None,
            size: default_text_size(),
            color: Color::white(),
            outline: default_outline(),
            position: default_text_position(),
            fade: default_text_fade(),
        }
    }
}

fn default_text_size() -> f64 {
    0.055
}

fn default_outline() -> Option<Outline> {
    Some(Outline {
        color: Color::black(),
        width: 0.08,
    })
}

fn default_text_position() -> Position {
    Position::BottomCenter
}

fn default_text_fade() -> f64 {
    0.15
}

/// An outline around text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outline {
    /// Its colour.
    pub color: Color,
    /// Its width as a fraction of the text size.
    pub width: f64,
}

/// Nine anchor positions inside the output's safe area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Position {
    TopLeft,
    TopCenter,
    TopRight,
    CenterLeft,
    Center,
    CenterRight,
    BottomLeft,
    BottomCenter,
    BottomRight,
}

impl Position {
    /// Horizontal and vertical alignment: 0 start, 0.5 centre, 1 end.
    pub fn alignment(self) -> (f64, f64) {
        use Position::*;
        let horizontal = match self {
            TopLeft | CenterLeft | BottomLeft => 0.0,
            TopCenter | Center | BottomCenter => 0.5,
            TopRight | CenterRight | BottomRight => 1.0,
        };
        let vertical = match self {
            TopLeft | TopCenter | TopRight => 0.0,
            CenterLeft | Center | CenterRight => 0.5,
            BottomLeft | BottomCenter | BottomRight => 1.0,
        };
        (horizontal, vertical)
    }
}

/// An image over the whole video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// The image file; its alpha channel is kept.
    pub path: PathBuf,
    /// Where in the safe area it sits.
    #[serde(default = "default_watermark_position")]
    pub position: Position,
    /// 0 invisible to 1 opaque.
    #[serde(default = "default_watermark_opacity")]
    pub opacity: f64,
    /// Its width as a fraction of the frame width.
    #[serde(default = "default_watermark_width")]
    pub width: f64,
}

fn default_watermark_position() -> Position {
    Position::TopRight
}

fn default_watermark_opacity() -> f64 {
    0.8
}

fn default_watermark_width() -> f64 {
    0.15
}

/// The soundtrack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audio {
    /// The tracks, mixed together.
    #[serde(default)]
    pub tracks: Vec<AudioTrack>,
    /// How far music drops while narration speaks; `None` turns ducking off.
    #[serde(default = "default_ducking")]
    pub ducking: Option<Ducking>,
}

fn default_ducking() -> Option<Ducking> {
    Some(Ducking::default())
}

/// One audio file placed on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioTrack {
    /// Any file FFmpeg decodes (its best audio stream is used).
    pub path: PathBuf,
    /// What the track is, which decides ducking.
    #[serde(default)]
    pub role: AudioRole,
    /// Where on the timeline the track starts.
    #[serde(default)]
    pub offset: f64,
    /// Seconds into the file where playing starts.
    #[serde(default)]
    pub trim_start: f64,
    /// How long it plays; to the file's end (or the timeline's) when absent.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Gain in decibels.
    #[serde(default)]
    pub gain_db: f64,
    /// Seconds of fade in.
    #[serde(default)]
    pub fade_in: f64,
    /// Seconds of fade out.
    #[serde(default)]
    pub fade_out: f64,
}

/// The part a track plays in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioRole {
    /// Music: ducked under narration.
    #[default]
    Music,
    /// Voice: music ducks under it.
    Narration,
    /// Sound effects: never ducked.
    Effect,
}

/// Music ducking under narration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ducking {
    /// Gain change of the music while narration speaks, in decibels (negative).
    pub amount_db: f64,
    /// Seconds the music takes to drop.
    pub attack: f64,
    /// Seconds it takes to come back.
    pub release: f64,
}

impl Default for Ducking {
    fn default() -> Self {
        Ducking {
            amount_db: -12.0,
            attack: 0.08,
            release: 0.4,
        }
    }
}

/// A colour grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grade {
    /// A 3D LUT in the .cube format.
    Lut {
        /// The .cube file.
        path: PathBuf,
    },
    /// Brightness, contrast and saturation, as FFmpeg's eq filter defines them.
    Eq {
        /// Added to luma, -1..1 (0 keeps it).
        #[serde(default)]
        brightness: f64,
        /// Luma contrast around mid-grey, 0..4 (1 keeps it).
        #[serde(default = "one")]
        contrast: f64,
        /// Chroma gain, 0..3 (1 keeps it).
        #[serde(default = "one")]
        saturation: f64,
    },
}

fn one() -> f64 {
    1.0
}

/// Caption cues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Captions {
    /// The cues in time order.
    pub cues: Vec<Cue>,
    /// Whether to draw them into the picture as well as writing sidecars.
    #[serde(default)]
    pub burn_in: bool,
    /// How burnt-in captions look.
    #[serde(default)]
    pub style: TextStyle,
}

/// One caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cue {
    /// When it appears.
    pub start: f64,
    /// When it is gone.
    pub end: f64,
    /// What it says.
    pub text: String,
}

/// An sRGB colour with alpha, written `#rrggbb` or `#rrggbbaa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Alpha, 255 opaque.
    pub a: u8,
}

impl Color {
    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { r, g, b, a: 255 }
    }

    /// Opaque white.
    pub const fn white() -> Color {
        Color::rgb(255, 255, 255)
    }

    /// Opaque black.
    pub const fn black() -> Color {
        Color::rgb(0, 0, 0)
    }
}

impl TryFrom<String> for Color {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let hex = text.strip_prefix('#').unwrap_or(&text);
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16);
        let parsed = match hex.len() {
            6 if hex.is_ascii() => (byte(0), byte(2), byte(4), Ok(255)),
            8 if hex.is_ascii() => (byte(0), byte(2), byte(4), byte(6)),
            _ => return Err(format!("colour {text:?} is not #rrggbb or #rrggbbaa")),
        };
        match parsed {
            (Ok(r), Ok(g), Ok(b), Ok(a)) => Ok(Color { r, g, b, a }),
            _ => Err(format!("colour {text:?} is not #rrggbb or #rrggbbaa")),
        }
    }
}

impl From<Color> for String {
    fn from(color: Color) -> String {
        color.to_string()
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02x}", self.a)?;
        }
        Ok(())
    }
}
