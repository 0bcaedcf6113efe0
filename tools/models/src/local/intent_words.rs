//! The words the local intent reader knows: numbers, units, formats, moods, styles,
//! categories, and the words that are never a subject.

use crate::intent::{Category, Format, Mood};

/// Numbers people spell out, and the articles that mean one ("a minute", "un minuto").
pub(super) const NUMBER_WORDS: &[(&str, f64)] = &[
    ("a", 1.0),
    ("an", 1.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("ten", 10.0),
    ("fifteen", 15.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("forty-five", 45.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("ninety", 90.0),
    // The indefinite articles of the other languages people write in ("un minuto",
    // "une minute", "eine Minute").
    ("un", 1.0),
    ("una", 1.0),
    ("uno", 1.0),
    ("une", 1.0),
    ("ein", 1.0),
    ("eine", 1.0),
    ("einer", 1.0),
];

/// Words that set the mood.
pub(super) const MOOD_CUES: &[(&[&str], Mood)] = &[
    (
        &[
            "energetic",
            "high energy",
            "intense",
            "hype",
            "high-energy",
            "aggressive",
            "powerful",
        ],
        Mood::Energetic,
    ),
    (
        &[
            "upbeat",
            "happy",
            "cheerful",
            "joyful",
            "fun",
            "uplifting",
            "bright",
        ],
        Mood::Upbeat,
    ),
    (
        &["epic", "grand", "heroic", "majestic", "cinematic"],
        Mood::Epic,
    ),
    (
        &[
            "calm", "relaxing", "peaceful", "chill", "serene", "gentle", "slow",
        ],
        Mood::Calm,
    ),
    (
        &["dreamy", "ethereal", "floating", "soft", "lofi", "lo-fi"],
        Mood::Dreamy,
    ),
    (
        &["dark", "moody", "brooding", "gritty", "ominous", "noir"],
        Mood::Dark,
    ),
    (
        &[
            "sad",
            "melancholic",
            "melancholy",
            "nostalgic",
            "wistful",
            "lonely",
        ],
        Mood::Melancholic,
    ),
    (
        &["playful", "quirky", "silly", "cute", "whimsical"],
        Mood::Playful,
    ),
    (&["romantic", "love", "tender", "wedding"], Mood::Romantic),
    (
        &["mysterious", "eerie", "suspenseful", "spooky", "haunting"],
        Mood::Mysterious,
    ),
];

/// Looks that become the style (and pick a palette when no colour is named).
pub(super) const STYLE_WORDS: &[&str] = &[
    "neon",
    "cyberpunk",
    "synthwave",
    "vaporwave",
    "pastel",
    "retro",
    "vintage",
    "noir",
    "minimal",
    "minimalist",
    "cinematic",
    "watercolor",
    "watercolour",
    "anime",
    "glitch",
    "grainy",
    "film",
    "geometric",
    "abstract",
    "tropical",
    "sunset",
    "forest",
    "ocean",
    "autumn",
    "winter",
    "futuristic",
    "documentary",
    "handheld",
];

/// The words around a request that are never its subject.
pub(super) const STOP_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "for",
    "to",
    "and",
    "with",
    "in",
    "on",
    "at",
    "my",
    "our",
    "me",
    "make",
    "create",
    "please",
    "video",
    "clip",
    "film",
    "music",
    "song",
    "track",
    "this",
    "that",
    "some",
    "about",
    "i",
    "want",
    "need",
    "like",
    "it",
    "its",
    "is",
    "be",
    "by",
    "from",
    "into",
    "set",
    "long",
    "format",
    "formats",
    "cuts",
    "cut",
    "paced",
    "style",
    "mood",
    "feel",
    "vibe",
    "vibes",
    "using",
    "use",
    "no",
    "without",
    "all",
    "every",
    "three",
    "text",
    "people",
    "faces",
    "logos",
    "family",
    "friendly",
    "family-friendly",
    // The politeness around a request ("… can you", "instagram version: …").
    "can",
    "you",
    "could",
    "would",
    "version",
    "half-minute",
];

/// The words and ratios that name a format (a platform names its shape).
pub(super) const FORMAT_CUES: &[(&str, Format)] = &[
    ("16:9", Format::Landscape),
    ("16x9", Format::Landscape),
    ("landscape", Format::Landscape),
    ("horizontal", Format::Landscape),
    ("widescreen", Format::Landscape),
    ("youtube", Format::Landscape),
    ("9:16", Format::Portrait),
    ("9x16", Format::Portrait),
    ("vertical", Format::Portrait),
    ("portrait", Format::Portrait),
    ("tiktok", Format::Portrait),
    ("reels", Format::Portrait),
    ("reel", Format::Portrait),
    ("shorts", Format::Portrait),
    ("story", Format::Portrait),
    ("stories", Format::Portrait),
    ("1:1", Format::Square),
    ("1x1", Format::Square),
    ("square", Format::Square),
];

/// The words that name a category, the first category matched winning.
pub(super) const CATEGORY_CUES: &[(&[&str], Category)] = &[
    (
        &["music video", "lyric video", "visualizer", "visualiser"],
        Category::MusicVideo,
    ),
    (&["trailer", "teaser"], Category::Trailer),
    (
        &[
            "ad",
            "advert",
            "commercial",
            "promo",
            "promotion",
            "product",
        ],
        Category::Promo,
    ),
    (
        &["slideshow", "photo", "photos", "memories", "album"],
        Category::Slideshow,
    ),
    (
        &["explainer", "tutorial", "how to", "explains", "explain"],
        Category::Explainer,
    ),
    (
        &["travel", "trip", "journey", "vacation", "holiday"],
        Category::Travel,
    ),
    (
        &["tiktok", "reel", "reels", "shorts", "story"],
        Category::Social,
    ),
];

/// Words asking for quick cuts.
pub(super) const FAST_WORDS: &[&str] = &[
    "fast",
    "quick",
    "rapid",
    "snappy",
    "fast-paced",
    "frantic",
    "punchy",
];

/// Words asking for long takes.
pub(super) const SLOW_WORDS: &[&str] = &[
    "slow",
    "slower",
    "lingering",
    "long takes",
    "unhurried",
    "slow-paced",
];

/// Phrases refusing a narrator.
pub(super) const NARRATION_OFF: &[&str] = &[
    "no narration",
    "no voiceover",
    "no voice-over",
    "without narration",
    "no voice",
];

/// Words asking for a narrator.
pub(super) const NARRATION_ON: &[&str] = &[
    "narrated",
    "narration",
    "narrator",
    "voiceover",
    "voice-over",
    "voice over",
    "voiced",
];

/// Words about pace, narration and platforms, which are never the subject.
pub(super) const PACE_AND_PLATFORM_WORDS: &[&str] = &[
    "fast",
    "quick",
    "slow",
    "slower",
    "snappy",
    "narrated",
    "narration",
    "voiceover",
    "fast-paced",
    "slow-paced",
    "punchy",
    "vertical",
    "horizontal",
    "widescreen",
    "tiktok",
    "reels",
    "shorts",
    "youtube",
    "instagram",
    "insta",
];

/// Category words, which are never the subject.
pub(super) const CATEGORY_WORDS: &[&str] = &[
    "trailer",
    "teaser",
    "ad",
    "advert",
    "commercial",
    "promo",
    "slideshow",
    "explainer",
    "tutorial",
    "visualizer",
    "visualiser",
    "lyric",
    "reel",
    "travel",
    "trip",
    "journey",
];

/// The constraints people state that the planner and prompts honour.
pub(super) const CONSTRAINTS: &[&str] = &[
    "no text",
    "no people",
    "no faces",
    "no logos",
    "family friendly",
    "family-friendly",
];
