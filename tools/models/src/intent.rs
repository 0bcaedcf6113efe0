//! What a person asked for, as the text model extracts it from their words.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The shortest and longest video Montage makes, in seconds.
pub const DURATION_RANGE: std::ops::RangeInclusive<f64> = 3.0..=600.0;
/// The length when the person names none.
pub const DEFAULT_DURATION: f64 = 30.0;

/// A person's request, structured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// What kind of video.
    pub category: Category,
    /// What it shows, in a few words (`city at night`).
    #[schemars(length(max = bounds::SUBJECT))]
    pub subject: String,
    /// Length in seconds.
    pub duration: f64,
    /// The frame shapes to render, first is the main one.
    #[schemars(length(max = bounds::FORMATS))]
    pub formats: Vec<Format>,
    /// The feeling.
    pub mood: Mood,
    /// Style words (`neon`, `cinematic`, …).
    #[schemars(length(max = bounds::STYLES), inner(length(min = 1, max = bounds::STYLE_WORD)))]
    pub style: Vec<String>,
    /// Colours as `#rrggbb`, most important first.
    #[schemars(length(max = bounds::COLOURS), inner(length(min = 7, max = 7)))]
    pub palette: Vec<String>,
    /// How fast the cuts come.
    pub pace: Pace,
    /// Whether a voice narrates.
    pub narration: bool,
    /// Things the person asked for or against that fit no other field (`no text`).
    #[schemars(length(max = bounds::CONSTRAINTS), inner(length(min = 1, max = bounds::CONSTRAINT)))]
    pub constraints: Vec<String>,
}

/// The lengths [`Intent`]'s schema allows (so that a model under a grammar stops, and
/// every answer is bounded).
pub(crate) mod bounds {
    /// Longest subject, in characters.
    pub const SUBJECT: usize = 80;
    /// Most formats.
    pub const FORMATS: usize = 3;
    /// Most style words, each at most [`STYLE_WORD`] characters.
    pub const STYLES: usize = 6;
    /// Longest style word.
    pub const STYLE_WORD: usize = 24;
    /// Most colours.
    pub const COLOURS: usize = 6;
    /// Most constraints, each at most [`CONSTRAINT`] characters.
    pub const CONSTRAINTS: usize = 6;
    /// Longest constraint.
    pub const CONSTRAINT: usize = 60;
}

impl Intent {
    /// This intent cut to the lengths its schema allows: the local reader's words can run
    /// longer than a model's bounded answer.
    pub fn bounded(mut self) -> Intent {
        fn cut(text: &mut String, most: usize) {
            if text.chars().count() > most {
                *text = text
                    .chars()
                    .take(most)
                    .collect::<String>()
                    .trim_end()
                    .to_owned();
            }
        }
        cut(&mut self.subject, bounds::SUBJECT);
        self.formats.truncate(bounds::FORMATS);
        self.style.retain(|s| !s.is_empty());
        self.style.truncate(bounds::STYLES);
        for word in &mut self.style {
            cut(word, bounds::STYLE_WORD);
        }
        self.palette.retain(|c| c.chars().count() == 7);
        self.palette.truncate(bounds::COLOURS);
        self.constraints.retain(|c| !c.is_empty());
        self.constraints.truncate(bounds::CONSTRAINTS);
        for constraint in &mut self.constraints {
            cut(constraint, bounds::CONSTRAINT);
        }
        self
    }
}

/// What kind of video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Pictures cut to music.
    MusicVideo,
    /// An advert for a product or an event.
    Promo,
    /// A teaser for a film, a game, a launch.
    Trailer,
    /// Photos shown one after another.
    Slideshow,
    /// Something explained, usually narrated.
    Explainer,
    /// A trip or a place.
    Travel,
    /// A short for social feeds.
    Social,
}

/// A frame shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Format {
    /// 16:9 landscape, 1920×1080.
    #[serde(rename = "16:9")]
    Landscape,
    /// 9:16 vertical, 1080×1920.
    #[serde(rename = "9:16")]
    Portrait,
    /// 1:1 square, 1080×1080.
    #[serde(rename = "1:1")]
    Square,
}

impl Format {
    /// Every shape, landscape first.
    pub const ALL: [Format; 3] = [Format::Landscape, Format::Portrait, Format::Square];

    /// Width and height in pixels.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Format::Landscape => (1920, 1080),
            Format::Portrait => (1080, 1920),
            Format::Square => (1080, 1080),
        }
    }

    /// `16:9`, `9:16` or `1:1`.
    pub fn ratio(self) -> &'static str {
        match self {
            Format::Landscape => "16:9",
            Format::Portrait => "9:16",
            Format::Square => "1:1",
        }
    }

    /// Reads `16:9`, `9:16`, `1:1` and the words people use for them.
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim().to_ascii_lowercase().as_str() {
            "16:9" | "16x9" | "landscape" | "horizontal" | "widescreen" => Some(Format::Landscape),
            "9:16" | "9x16" | "vertical" | "portrait" => Some(Format::Portrait),
            "1:1" | "1x1" | "square" => Some(Format::Square),
            _ => None,
        }
    }
}

/// The feeling of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mood {
    /// Happy, driving.
    Upbeat,
    /// Intense, high energy.
    Energetic,
    /// Quiet, relaxed.
    Calm,
    /// Soft, floating.
    Dreamy,
    /// Dark, brooding.
    Dark,
    /// Sad, wistful.
    Melancholic,
    /// Big, grand.
    Epic,
    /// Light, fun.
    Playful,
    /// Warm, tender.
    Romantic,
    /// Strange, suspenseful.
    Mysterious,
}

impl Mood {
    /// How bright pictures of this mood are, 0 (night) to 1 (sunlit).
    pub fn brightness(self) -> f64 {
        match self {
            Mood::Upbeat | Mood::Playful => 0.7,
            Mood::Energetic | Mood::Epic => 0.6,
            Mood::Calm | Mood::Dreamy | Mood::Romantic => 0.65,
            Mood::Melancholic => 0.45,
            Mood::Dark | Mood::Mysterious => 0.35,
        }
    }

    /// How much contrast, 0 (flat) to 1 (hard).
    pub fn contrast(self) -> f64 {
        match self {
            Mood::Energetic | Mood::Epic | Mood::Dark => 0.8,
            Mood::Upbeat | Mood::Playful | Mood::Mysterious => 0.65,
            Mood::Melancholic | Mood::Romantic => 0.5,
            Mood::Calm | Mood::Dreamy => 0.4,
        }
    }

    /// A tempo that suits the mood, for music made to order.
    pub fn tempo(self) -> f64 {
        match self {
            Mood::Energetic => 128.0,
            Mood::Upbeat | Mood::Playful => 120.0,
            Mood::Epic => 100.0,
            Mood::Mysterious | Mood::Dark => 96.0,
            Mood::Romantic | Mood::Melancholic => 84.0,
            Mood::Calm | Mood::Dreamy => 80.0,
        }
    }

    /// The mood as a word.
    pub fn word(self) -> &'static str {
        match self {
            Mood::Upbeat => "upbeat",
            Mood::Energetic => "energetic",
            Mood::Calm => "calm",
            Mood::Dreamy => "dreamy",
            Mood::Dark => "dark",
            Mood::Melancholic => "melancholic",
            Mood::Epic => "epic",
            Mood::Playful => "playful",
            Mood::Romantic => "romantic",
            Mood::Mysterious => "mysterious",
        }
    }
}

/// How fast the cuts come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// Long, lingering scenes.
    Slow,
    /// A scene a bar or so.
    Medium,
    /// Quick cuts.
    Fast,
}
