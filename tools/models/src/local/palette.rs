//! Colour words and the palettes styles and moods imply.

/// Colour names people write, with the colour they mean.
pub const NAMED_COLOURS: &[(&str, &str)] = &[
    ("magenta", "#ff1fb4"),
    ("pink", "#ff6fae"),
    ("hot pink", "#ff2e88"),
    ("red", "#e0262e"),
    ("crimson", "#b3122e"),
    ("orange", "#ff8a1f"),
    ("amber", "#ffb000"),
    ("gold", "#e8b923"),
    ("golden", "#e8b923"),
    ("yellow", "#ffd92e"),
    ("lime", "#9be22d"),
    ("green", "#2fb45a"),
    ("emerald", "#1f9d6b"),
    ("mint", "#8fe3c0"),
    // The CSS colour of that name, which is what a code people paste most often means.
    ("teal", "#008080"),
    ("turquoise", "#2ed3c6"),
    ("cyan", "#1fe0ff"),
    ("aqua", "#3ff0e6"),
    ("sky blue", "#76c7f2"),
    ("blue", "#2a63e8"),
    ("navy", "#14245c"),
    ("indigo", "#4b2bb3"),
    ("violet", "#8a3ffc"),
    ("purple", "#7a2fd0"),
    ("lavender", "#b9a7f0"),
    ("white", "#f4f4f0"),
    ("cream", "#f3e7c9"),
    ("beige", "#d9c7a3"),
    ("silver", "#c0c4cc"),
    ("grey", "#8a8f98"),
    ("gray", "#8a8f98"),
    ("black", "#101014"),
    ("brown", "#7a4a26"),
    ("rust", "#b5512a"),
    ("peach", "#ffb38a"),
    ("coral", "#ff6f61"),
];

/// Styles with the colours they bring when the person names none.
pub const STYLE_PALETTES: &[(&str, &[&str])] = &[
    ("neon", &["#ff1fb4", "#1fe0ff", "#8a3ffc", "#101430"]),
    ("cyberpunk", &["#ff2e88", "#00f0ff", "#fcee0a", "#0d0b1e"]),
    ("synthwave", &["#ff2e88", "#ff8a1f", "#5b2bb3", "#120a2a"]),
    ("vaporwave", &["#ff71ce", "#01cdfe", "#b967ff", "#fffb96"]),
    ("pastel", &["#ffd1dc", "#bde0fe", "#caffbf", "#fdffb6"]),
    ("retro", &["#e07a5f", "#f2cc8f", "#81b29a", "#3d405b"]),
    ("vintage", &["#c9a66b", "#8c6a4f", "#e8dcc2", "#4a4036"]),
    ("noir", &["#f0f0f0", "#8a8a8a", "#2a2a2a", "#0a0a0a"]),
    ("minimal", &["#f4f4f0", "#d6d6d0", "#2a2a2a", "#e04b3a"]),
    ("cinematic", &["#1f4e5f", "#e8a05a", "#0f1b24", "#f2d7b0"]),
    ("tropical", &["#00a896", "#ffd166", "#ef476f", "#06d6a0"]),
    ("sunset", &["#ff6f61", "#ffb38a", "#6b2d5c", "#f9d56e"]),
    ("forest", &["#2d6a4f", "#95d5b2", "#1b4332", "#d8b36a"]),
    ("ocean", &["#0077b6", "#00b4d8", "#90e0ef", "#03045e"]),
    ("autumn", &["#b5512a", "#e8b923", "#7a4a26", "#f3e7c9"]),
    ("winter", &["#dfe9f5", "#9fb8d8", "#3c5a80", "#f4f4f0"]),
];

/// The palette of a mood, when neither colours nor a style give one.
pub fn mood_palette(mood: crate::Mood) -> &'static [&'static str] {
    use crate::Mood;
    match mood {
        Mood::Upbeat | Mood::Playful => &["#ffb000", "#ff6f61", "#2ed3c6", "#2a63e8"],
        Mood::Energetic => &["#e0262e", "#ff8a1f", "#fcee0a", "#14141c"],
        Mood::Calm | Mood::Dreamy => &["#bde0fe", "#b9a7f0", "#8fe3c0", "#f3e7c9"],
        Mood::Dark | Mood::Mysterious => &["#14245c", "#4b2bb3", "#1f4e5f", "#0a0a12"],
        Mood::Melancholic => &["#3c5a80", "#8a8f98", "#9fb8d8", "#2a2a36"],
        Mood::Epic => &["#e8a05a", "#1f4e5f", "#b3122e", "#0f1b24"],
        Mood::Romantic => &["#ff6fae", "#ffb38a", "#b3122e", "#f3e7c9"],
    }
}

/// Reads `#rrggbb` into its channels.
pub fn parse_hex(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// The name people would give `#rrggbb`: the nearest of [`NAMED_COLOURS`] (image models
/// read colour words, not hex codes). `None` for text that is not a colour.
pub fn colour_name(hex: &str) -> Option<&'static str> {
    let [r, g, b] = parse_hex(hex)?;
    let distance = |named: &str| {
        parse_hex(named).map_or(u32::MAX, |[nr, ng, nb]| {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2) as u32;
            // Weighted as the eye weighs the channels.
            3 * d(r, nr) + 4 * d(g, ng) + 2 * d(b, nb)
        })
    };
    NAMED_COLOURS
        .iter()
        .min_by_key(|(_, named)| distance(named))
        .map(|(name, _)| *name)
}

/// The names of `palette`'s colours, in order, each once (codes that are no colour left out).
pub fn colour_names(palette: &[String]) -> Vec<&'static str> {
    let mut names = Vec::new();
    for name in palette.iter().filter_map(|c| colour_name(c)) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_get_the_nearest_name() {
        assert_eq!(colour_name("#ff1fb4"), Some("magenta"));
        assert_eq!(colour_name("#0a0a12"), Some("black"));
        assert_eq!(colour_name("#fcee0a"), Some("yellow"));
        assert_eq!(colour_name("#03045e"), Some("navy"));
        assert_eq!(colour_name("#008080"), Some("teal"));
        assert_eq!(colour_name("blue"), None);
        let palette = ["#ff1fb4", "#ff2bc0", "x", "#101014"].map(String::from);
        assert_eq!(colour_names(&palette), ["magenta", "black"]);
    }
}
