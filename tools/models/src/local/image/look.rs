//! What the local renderer reads from a prompt: palette, shot, mood, subject and textures.

use crate::local::palette::{NAMED_COLOURS, parse_hex};

/// The framing a prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shot {
    /// Far away, horizon low, small forms.
    Wide,
    /// Horizon in the middle, a few large forms.
    Medium,
    /// One form filling the frame.
    CloseUp,
    /// A dense pattern, as if very near.
    Detail,
    /// Seen from above: a grid.
    Aerial,
}

/// What the picture shows, from the prompt's nouns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subject {
    City,
    Water,
    Trees,
    Peaks,
    Abstract,
}

/// What the renderer read from a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Colours, most important first (at least two).
    pub palette: Vec<[u8; 3]>,
    /// Framing.
    pub shot: Shot,
    /// Target mean luma, 0–1.
    pub brightness: f64,
    /// Contrast, 0–1.
    pub contrast: f64,
    /// How busy the picture is, 0–1.
    pub energy: f64,
    pub(super) subject: Subject,
    pub(super) neon: bool,
    pub(super) grain: bool,
    pub(super) rain: bool,
    pub(super) haze: bool,
}

fn has(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

impl Look {
    /// Reads a prompt (negative prompt words are removed first).
    pub fn from_prompt(prompt: &str, negative: &str) -> Look {
        let mut text = format!(" {} ", prompt.to_lowercase().replace([',', '.', ';'], " "));
        for word in negative.to_lowercase().split([',', ';']) {
            let word = word.trim();
            if !word.is_empty() {
                text = text.replace(&format!(" {word} "), " ");
            }
        }
        let mut palette: Vec<[u8; 3]> = text.split_whitespace().filter_map(parse_hex).collect();
        if palette.is_empty() {
            // In the order the prompt names them: the first is the main colour.
            let mut named: Vec<(usize, [u8; 3])> = NAMED_COLOURS
                .iter()
                .filter_map(|(name, hex)| Some((text.find(&format!(" {name} "))?, parse_hex(hex)?)))
                .collect();
            named.sort_by_key(|(at, _)| *at);
            for (_, colour) in named {
                if !palette.contains(&colour) {
                    palette.push(colour);
                }
            }
        }
        while palette.len() < 2 {
            palette.push(if palette.is_empty() {
                [60, 80, 140]
            } else {
                [230, 190, 120]
            });
        }
        let shot = if has(&text, &["close-up", "close up", "closeup", "portrait shot"]) {
            Shot::CloseUp
        } else if has(&text, &["detail", "macro", "texture shot"]) {
            Shot::Detail
        } else if has(&text, &["aerial", "overhead", "top-down", "drone"]) {
            Shot::Aerial
        } else if has(&text, &["wide", "establishing", "panorama"]) {
            Shot::Wide
        } else {
            Shot::Medium
        };
        let mut brightness: f64 = if has(
            &text,
            &[" dark ", " night", "moody", "noir", "brooding", "ominous"],
        ) {
            0.32
        } else if has(
            &text,
            &[
                " bright ", "sunny", "sunlit", "upbeat", "airy", "pastel", "playful",
            ],
        ) {
            0.6
        } else {
            0.48
        };
        let brighter = text.matches(" brighter").count() as f64;
        let darker = text.matches(" darker").count() as f64;
        brightness = (brightness + 0.12 * (brighter - darker)).clamp(0.08, 0.85);
        let contrast = if has(
            &text,
            &["high contrast", "hard light", "punchy", "energetic", "epic"],
        ) {
            0.85
        } else if has(&text, &["soft", "dreamy", "calm", "hazy", "gentle"]) {
            0.4
        } else {
            0.6
        };
        let energy = if has(&text, &["high-energy", "high energy", "explosive", "drop"]) {
            0.95
        } else if has(
            &text,
            &["low-energy", "low energy", "still", "quiet", "breakdown"],
        ) {
            0.3
        } else {
            0.6
        };
        let subject = if has(
            &text,
            &[
                "city",
                "street",
                "skyline",
                "urban",
                "downtown",
                "neon sign",
            ],
        ) {
            Subject::City
        } else if has(
            &text,
            &[
                "ocean", " sea ", "beach", "wave", "lake", "river", "desert", "dune",
            ],
        ) {
            Subject::Water
        } else if has(
            &text,
            &["forest", "tree", "jungle", "woods", "garden", "park"],
        ) {
            Subject::Trees
        } else if has(&text, &["mountain", "peak", "alps", "hill", "volcano"]) {
            Subject::Peaks
        } else {
            Subject::Abstract
        };
        Look {
            palette,
            shot,
            brightness,
            contrast,
            energy,
            subject,
            neon: has(&text, &["neon", "cyberpunk", "synthwave", "glow"]),
            grain: has(&text, &["grain", "film", "vintage", "retro", "noir"]),
            rain: has(&text, &[" rain", "storm", "drizzle"]),
            haze: has(&text, &["haze", "hazy", "fog", "mist", "dreamy"]),
        }
    }
}
