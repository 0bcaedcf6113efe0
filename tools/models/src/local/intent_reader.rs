//! The local intent reader: a person's request read into an [`Intent`] by the words it uses
//! (the word tables are in [`super::intent_words`]).

use super::intent_words::{
    CATEGORY_CUES, CATEGORY_WORDS, CONSTRAINTS, FAST_WORDS, FORMAT_CUES, MOOD_CUES, NARRATION_OFF,
    NARRATION_ON, NUMBER_WORDS, PACE_AND_PLATFORM_WORDS, SLOW_WORDS, STOP_WORDS, STYLE_WORDS,
};
use super::palette::{NAMED_COLOURS, STYLE_PALETTES, mood_palette};
use crate::intent::{Category, DEFAULT_DURATION, Format, Intent, Mood, Pace};

pub(super) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '.' || c == '-' || c == '#'))
        .map(|w| {
            w.trim_matches(|c| c == '.' || c == '-' || c == ':')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn contains_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase} "))
}

/// Reads a person's request into an [`Intent`].
pub fn parse_intent(prompt: &str) -> Intent {
    let tokens = words(prompt);
    let text = tokens.join(" ");
    let mood = parse_mood(&text);
    let style = parse_style(&text);
    let mut palette = parse_colours(&text);
    if palette.is_empty() {
        palette = style
            .iter()
            .find_map(|s| STYLE_PALETTES.iter().find(|(name, _)| name == s))
            .map(|(_, colours)| colours.iter().map(|c| (*c).to_owned()).collect())
            .unwrap_or_else(|| mood_palette(mood).iter().map(|c| (*c).to_owned()).collect());
    }
    let category = parse_category(&text);
    let narration = parse_narration(&text, category);
    Intent {
        category,
        subject: parse_subject(&tokens),
        duration: parse_duration(&tokens).unwrap_or(DEFAULT_DURATION),
        formats: parse_formats(&text),
        mood,
        style,
        palette,
        pace: parse_pace(&text, mood),
        narration,
        constraints: parse_constraints(&text),
    }
}

/// The length a message names, in seconds ("make it 30 seconds"), if it names one.
pub(crate) fn duration_in(message: &str) -> Option<f64> {
    parse_duration(&words(message))
}

fn number(word: &str) -> Option<f64> {
    word.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .or_else(|| {
            NUMBER_WORDS
                .iter()
                .find(|(w, _)| *w == word)
                .map(|(_, n)| *n)
        })
}

fn unit_seconds(word: &str) -> Option<f64> {
    match word {
        "s" | "sec" | "secs" | "second" | "seconds" | "second-long" => Some(1.0),
        // Spanish, Portuguese, French, Italian, German.
        "segundo" | "segundos" | "seconde" | "secondes" | "secondo" | "secondi" | "sekunde"
        | "sekunden" => Some(1.0),
        "m" | "min" | "mins" | "minute" | "minutes" | "minute-long" => Some(60.0),
        "minuto" | "minutos" | "minuti" | "minuten" => Some(60.0),
        _ => None,
    }
}

/// `20 second`, `30s`, `half a minute`, `1.5 minutes`, `1:30`, `a minute and a half`.
fn parse_duration(tokens: &[String]) -> Option<f64> {
    let text = tokens.join(" ");
    if text.contains("half a minute") || text.contains("half-minute") {
        return Some(30.0);
    }
    if text.contains("minute and a half") {
        return Some(90.0);
    }
    for (i, token) in tokens.iter().enumerate() {
        // 1:30
        if let Some((m, s)) = token.split_once(':')
            && let (Ok(m), Ok(s)) = (m.parse::<u32>(), s.parse::<u32>())
            && s < 60
            && (m > 0 || s > 0)
            && !matches!(token.as_str(), "16:9" | "9:16" | "1:1" | "4:5")
        {
            return Some(f64::from(m * 60 + s));
        }
        // 30s, 20sec, 2min, 20-second
        let split = token.find(|c: char| c.is_alphabetic());
        if let Some(at) = split
            && at > 0
            && let (Some(n), Some(unit)) = (
                number(token[..at].trim_end_matches('-')),
                unit_seconds(&token[at..]),
            )
        {
            return Some(n * unit);
        }
        // 20 second, thirty seconds, a minute
        if let Some(n) = number(token)
            && let Some(unit) = tokens.get(i + 1).and_then(|u| unit_seconds(u))
        {
            return Some(n * unit);
        }
    }
    None
}

fn parse_formats(text: &str) -> Vec<Format> {
    let mut found: Vec<(usize, Format)> = Vec::new();
    if [
        "all formats",
        "every format",
        "all three formats",
        "every platform",
    ]
    .iter()
    .any(|p| text.contains(p))
    {
        return Format::ALL.to_vec();
    }
    // "YouTube Shorts" are vertical: the platform's name does not also ask for 16:9.
    let text = text.replace("youtube shorts", "shorts");
    let text = text.as_str();
    for (cue, format) in FORMAT_CUES {
        let padded = format!(" {text} ");
        if let Some(at) = padded.find(&format!(" {cue} ")) {
            found.push((at, *format));
        }
    }
    found.sort_by_key(|(at, _)| *at);
    let mut formats = Vec::new();
    for (_, format) in found {
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    if formats.is_empty() {
        formats.push(Format::Landscape);
    }
    formats
}

fn parse_mood(text: &str) -> Mood {
    // The earliest mood word wins: people lead with the feeling they care about.
    MOOD_CUES
        .iter()
        .filter_map(|(words, mood)| {
            words
                .iter()
                .filter_map(|w| format!(" {text} ").find(&format!(" {w} ")))
                .min()
                .map(|at| (at, *mood))
        })
        .min_by_key(|(at, _)| *at)
        .map_or(Mood::Upbeat, |(_, mood)| mood)
}

fn parse_style(text: &str) -> Vec<String> {
    let mut style: Vec<String> = STYLE_WORDS
        .iter()
        .filter(|w| contains_phrase(text, w))
        .map(|w| {
            if *w == "minimalist" {
                "minimal".to_owned()
            } else {
                (*w).to_owned()
            }
        })
        .collect();
    style.dedup();
    style
}

fn parse_colours(text: &str) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    let padded = format!(" {text} ");
    for word in text.split(' ') {
        if super::palette::parse_hex(word).is_some()
            && let Some(at) = padded.find(word)
        {
            found.push((at, word.to_owned()));
        }
    }
    // Longer names first, so "hot pink" is not also read as "pink".
    let mut names: Vec<&(&str, &str)> = NAMED_COLOURS.iter().collect();
    names.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut taken = padded.clone();
    for (name, hex) in names {
        let needle = format!(" {name} ");
        if let Some(at) = taken.find(&needle) {
            found.push((at, (*hex).to_owned()));
            taken.replace_range(at + 1..at + needle.len() - 1, &"_".repeat(name.len()));
        }
    }
    found.sort_by_key(|(at, _)| *at);
    let mut palette: Vec<String> = Vec::new();
    for (_, hex) in found {
        if !palette.contains(&hex) {
            palette.push(hex);
        }
    }
    palette
}

fn parse_category(text: &str) -> Category {
    CATEGORY_CUES
        .iter()
        .find(|(words, _)| words.iter().any(|w| contains_phrase(text, w)))
        .map_or(Category::MusicVideo, |(_, category)| *category)
}

fn parse_pace(text: &str, mood: Mood) -> Pace {
    if FAST_WORDS.iter().any(|w| contains_phrase(text, w)) {
        Pace::Fast
    } else if SLOW_WORDS.iter().any(|w| contains_phrase(text, w)) {
        Pace::Slow
    } else {
        match mood {
            Mood::Energetic => Pace::Fast,
            Mood::Upbeat | Mood::Playful => Pace::Medium,
            Mood::Calm | Mood::Dreamy | Mood::Melancholic | Mood::Romantic => Pace::Slow,
            Mood::Epic | Mood::Dark | Mood::Mysterious => Pace::Medium,
        }
    }
}

fn parse_narration(text: &str, category: Category) -> bool {
    if NARRATION_OFF.iter().any(|p| text.contains(p)) {
        return false;
    }
    NARRATION_ON.iter().any(|w| contains_phrase(text, w)) || category == Category::Explainer
}

fn parse_constraints(text: &str) -> Vec<String> {
    CONSTRAINTS
        .iter()
        .filter(|p| contains_phrase(text, p))
        .map(|p| (*p).to_owned())
        .collect()
}

fn parse_subject(tokens: &[String]) -> String {
    let mut skip = std::collections::HashSet::new();
    for (i, token) in tokens.iter().enumerate() {
        if unit_seconds(token).is_some() && i > 0 && number(&tokens[i - 1]).is_some() {
            skip.insert(i - 1);
            skip.insert(i);
        }
        // "half a minute": the "a minute" goes above.
        if token == "half" && tokens.get(i + 1).is_some_and(|t| t == "a") {
            skip.insert(i);
        }
    }
    let subject: Vec<&str> = tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            let t = t.as_str();
            !skip.contains(i)
                && !STOP_WORDS.contains(&t)
                && number(t).is_none()
                && t.chars().any(char::is_alphabetic)
                // What an apostrophe leaves ("d'une", "l'eau").
                && t.chars().count() > 1
                && !t.starts_with('#')
                && Format::parse(t).is_none()
                && !STYLE_WORDS.contains(&t)
                && !NAMED_COLOURS.iter().any(|(name, _)| *name == t)
                && !t.chars().next().is_some_and(|c| c.is_ascii_digit())
                && unit_seconds(t).is_none()
                && !is_mood_or_pace_word(t)
                && !is_category_word(t)
        })
        .map(|(_, t)| t.as_str())
        .collect();
    if subject.is_empty() {
        "abstract shapes".to_owned()
    } else {
        subject.join(" ")
    }
}

fn is_mood_or_pace_word(word: &str) -> bool {
    PACE_AND_PLATFORM_WORDS.contains(&word)
        || MOOD_CUES.iter().any(|(words, _)| words.contains(&word))
}

fn is_category_word(word: &str) -> bool {
    CATEGORY_WORDS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_acceptance_prompt() {
        let intent = parse_intent("a 20 second upbeat neon city music video, vertical");
        assert_eq!(intent.duration, 20.0);
        assert_eq!(intent.formats, [Format::Portrait]);
        assert_eq!(intent.mood, Mood::Upbeat);
        assert_eq!(intent.style, ["neon"]);
        assert_eq!(intent.palette[0], "#ff1fb4");
        assert_eq!(intent.category, Category::MusicVideo);
        assert_eq!(intent.subject, "city");
        assert_eq!(intent.pace, Pace::Medium);
        assert_eq!(parse_intent("an energetic promo").pace, Pace::Fast);
        assert!(!intent.narration);
    }

    #[test]
    fn reads_durations_as_people_write_them() {
        let cases = [
            ("30s clip", 30.0),
            ("half a minute of waves", 30.0),
            ("a minute long", 60.0),
            ("1.5 minutes of rain", 90.0),
            ("1:30 trailer", 90.0),
            ("thirty seconds of sun", 30.0),
            ("a 45-second promo", 45.0),
            ("a minute and a half", 90.0),
            ("2 min montage", 120.0),
            ("un video de 20 segundos", 20.0),
            ("une vidéo d'une minute", 60.0),
            ("ein 15 Sekunden Video", 15.0),
            ("un minuto de lluvia", 60.0),
        ];
        for (prompt, seconds) in cases {
            assert_eq!(parse_intent(prompt).duration, seconds, "{prompt}");
        }
        assert_eq!(parse_intent("a 9:16 clip").duration, DEFAULT_DURATION);
    }

    #[test]
    fn the_talk_around_a_request_stays_out_of_its_subject() {
        for (prompt, subject) in [
            ("half a minute of lisbon trams", "lisbon trams"),
            ("half-minute sunrise over the sea", "sunrise over sea"),
            ("instagram version: coffee shop", "coffee shop"),
            ("city night can you", "city night"),
            ("une vidéo d'une minute sur Paris", "vidéo sur paris"),
        ] {
            assert_eq!(parse_intent(prompt).subject, subject, "{prompt}");
        }
    }

    #[test]
    fn platform_names_mean_their_shape_and_energy_is_energetic() {
        assert_eq!(
            parse_intent("youtube shorts clip of skateboards").formats,
            [Format::Portrait]
        );
        assert_eq!(
            parse_intent("a youtube video of skateboards").formats,
            [Format::Landscape]
        );
        assert_eq!(
            parse_intent("high energy gym workout").mood,
            Mood::Energetic
        );
    }

    #[test]
    fn reads_formats_in_the_order_given() {
        let intent = parse_intent("square and 16:9 please");
        assert_eq!(intent.formats, [Format::Square, Format::Landscape]);
        assert_eq!(parse_intent("for tiktok").formats, [Format::Portrait]);
        assert_eq!(parse_intent("in all formats").formats, Format::ALL);
        assert_eq!(parse_intent("a clip").formats, [Format::Landscape]);
    }

    #[test]
    fn named_colours_and_hex_codes_make_the_palette() {
        let intent = parse_intent("hot pink and teal waves with #123456");
        assert_eq!(intent.palette, ["#ff2e88", "#008080", "#123456"]);
        let calm = parse_intent("a calm beach");
        assert_eq!(calm.palette, mood_palette(Mood::Calm));
        assert_eq!(calm.pace, Pace::Slow);
    }

    #[test]
    fn narration_constraints_and_categories() {
        let intent = parse_intent("a narrated travel video of Lisbon, no text, slow cuts");
        assert!(intent.narration);
        assert_eq!(intent.category, Category::Travel);
        assert_eq!(intent.constraints, ["no text"]);
        assert_eq!(intent.pace, Pace::Slow);
        assert_eq!(intent.subject, "lisbon");
        assert!(!parse_intent("an explainer, no narration").narration);
        assert!(parse_intent("an explainer about tides").narration);
    }

    proptest::proptest! {
        /// Whatever a person types, the parser answers with a usable intent and never panics.
        #[test]
        fn any_text_reads_into_a_usable_intent(prompt in "\\PC{0,200}") {
            let intent = parse_intent(&prompt);
            proptest::prop_assert!(intent.duration.is_finite() && intent.duration > 0.0);
            proptest::prop_assert!(!intent.formats.is_empty());
            proptest::prop_assert!(!intent.palette.is_empty());
            proptest::prop_assert!(!intent.subject.is_empty());
        }

        /// Numbers, units and format words in any order.
        #[test]
        fn durations_and_formats_in_any_mix(words in proptest::collection::vec(
            proptest::sample::select(vec!["30", "1:30", "s", "seconds", "minute", "half", "a", "9:16", "square", "0", "-5", "1e309", "vertical", "—", "ünïcode"]),
            0..12,
        )) {
            let intent = parse_intent(&words.join(" "));
            proptest::prop_assert!(intent.duration.is_finite() && intent.duration > 0.0);
        }
    }
}
