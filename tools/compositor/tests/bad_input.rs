//! Bad timelines and bad files: a typed error naming the item, before anything is written.

mod common;

use std::path::Path;

use common::*;
use montage_compositor::{CancelToken, Compositor, CompositorError, Item, RenderTarget, Timeline};
use serde_json::{Value, json};

fn base(dir: &Path) -> Value {
    let picture = solid_png(dir, "ok.png", "red", "64x64");
    json!({
        "outputs": [{"size": {"width": 320, "height": 180}, "quality": {"preset": "ultrafast"}}],
        "scenes": [
            {"id": "opening", "start": 0, "end": 1, "source": {"type": "color", "color": "#102030"}},
            {"id": "photo", "start": 1, "end": 2, "source": {"type": "image", "path": picture}}
        ]
    })
}

/// Renders and expects a failure; the output folder must stay empty.
fn failure(dir: &Path, timeline: Value) -> CompositorError {
    let timeline: Timeline = serde_json::from_value(timeline).expect("parses");
    let out = dir.join("out");
    let error = Compositor::new()
        .render(
            &timeline,
            &RenderTarget::new(&out, "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .expect_err("the render must fail");
    assert_eq!(
        files_in(&out),
        Vec::<String>::new(),
        "nothing written for {error}"
    );
    error
}

/// A change to the base timeline.
type Edit = Box<dyn Fn(&mut Value)>;

fn photo() -> Item {
    Item::Scene(1, Some("photo".into()))
}

#[test]
fn missing_and_corrupt_media_name_the_item_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut timeline = base(dir.path());
    timeline["scenes"][1]["source"]["path"] = json!(dir.path().join("missing.png"));
    let error = failure(dir.path(), timeline);
    assert_eq!(error.item(), Some(&photo()));
    assert!(error.to_string().contains("missing.png"), "{error}");

    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nthis is not a picture").unwrap();
    let mut timeline = base(dir.path());
    timeline["scenes"][1]["source"]["path"] = json!(corrupt);
    let error = failure(dir.path(), timeline);
    assert!(
        matches!(&error, CompositorError::Media { item, .. } if *item == photo()),
        "{error}"
    );

    let text = dir.path().join("clip.mp4");
    std::fs::write(&text, "just text").unwrap();
    let mut timeline = base(dir.path());
    timeline["scenes"][1]["source"] = json!({"type": "video", "path": text});
    assert_eq!(failure(dir.path(), timeline).item(), Some(&photo()));

    let bad_audio = dir.path().join("music.mp3");
    std::fs::write(&bad_audio, vec![0x55u8; 4096]).unwrap();
    let mut timeline = base(dir.path());
    timeline["audio"] = json!({"tracks": [{"path": tone(dir.path(), "ok.wav", 440, 1.0, 0.5)}, {"path": bad_audio}]});
    let error = failure(dir.path(), timeline);
    assert_eq!(error.item(), Some(&Item::AudioTrack(1)), "{error}");
    assert!(
        error.to_string().starts_with("audio track 1: cannot use"),
        "{error}"
    );
}

#[test]
fn impossible_timelines_are_refused_before_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Edit, Item, &str)> = vec![
        (
            "zero duration",
            Box::new(|t| t["scenes"][1]["end"] = json!(1)),
            photo(),
            "not positive",
        ),
        (
            "negative duration",
            Box::new(|t| t["scenes"][1]["end"] = json!(0.5)),
            photo(),
            "not positive",
        ),
        (
            "overlap",
            Box::new(|t| t["scenes"][1]["start"] = json!(0.8)),
            photo(),
            "overlap",
        ),
        (
            "odd size",
            Box::new(|t| t["outputs"][0]["size"] = json!({"width": 321, "height": 180})),
            Item::Output(0, "321x180".into()),
            "unsupported size",
        ),
        (
            "huge size",
            Box::new(|t| t["outputs"][0]["size"] = json!({"width": 8192, "height": 8192})),
            Item::Output(0, "8192x8192".into()),
            "unsupported size",
        ),
        (
            "transition longer than the scene",
            Box::new(|t| {
                t["scenes"][0]["transition"] = json!({"kind": "crossfade", "duration": 3})
            }),
            Item::Scene(0, Some("opening".into())),
            "longer than the scene",
        ),
        (
            "transition off the last scene",
            Box::new(|t| {
                t["scenes"][1]["transition"] = json!({"kind": "crossfade", "duration": 0.5})
            }),
            photo(),
            "last scene",
        ),
        (
            "motion outside the source",
            Box::new(
                |t| t["scenes"][1]["motion"] = json!({"from": {"x": 0.5, "y": 0, "w": 0.8, "h": 1}, "to": {"x": 0, "y": 0, "w": 1, "h": 1}}),
            ),
            photo(),
            "motion start",
        ),
        (
            "text after nothing",
            Box::new(|t| {
                t["overlays"] = json!([{"type": "text", "text": "hi", "start": 2, "end": 1}])
            }),
            Item::Overlay(0),
            "forward span",
        ),
        (
            "empty caption",
            Box::new(|t| t["captions"] = json!({"cues": [{"start": 0, "end": 1, "text": " "}]})),
            Item::Cue(0),
            "empty",
        ),
    ];
    for (name, edit, item, words) in cases {
        let mut timeline = base(dir.path());
        edit(&mut timeline);
        let error = failure(dir.path(), timeline);
        assert_eq!(error.item(), Some(&item), "{name}: {error}");
        assert!(error.to_string().contains(words), "{name}: {error}");
    }
}

#[test]
fn unreadable_luts_fonts_and_watermarks_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let lut = dir.path().join("look.cube");
    std::fs::write(&lut, "LUT_3D_SIZE 3\n0 0 0\n").unwrap();
    let mut timeline = base(dir.path());
    timeline["grade"] = json!({"type": "lut", "path": lut});
    let error = failure(dir.path(), timeline);
    assert_eq!(error.item(), Some(&Item::Grade));
    assert!(error.to_string().contains("needs 27 entries"), "{error}");

    let mut timeline = base(dir.path());
    timeline["grade"] = json!({"type": "lut", "path": dir.path().join("nowhere.cube")});
    assert_eq!(failure(dir.path(), timeline).item(), Some(&Item::Grade));

    let font = dir.path().join("font.ttf");
    std::fs::write(&font, "not a font").unwrap();
    let mut timeline = base(dir.path());
    timeline["overlays"] =
        json!([{"type": "text", "text": "hi", "start": 0, "end": 1, "font": font}]);
    let error = failure(dir.path(), timeline);
    assert_eq!(error.item(), Some(&Item::Overlay(0)));
    assert!(error.to_string().contains("font"), "{error}");

    let mut timeline = base(dir.path());
    timeline["overlays"] = json!([{"type": "text", "text": "hi", "start": 0, "end": 1}, {"type": "watermark", "path": dir.path().join("logo.png")}]);
    assert_eq!(
        failure(dir.path(), timeline).item(),
        Some(&Item::Overlay(1))
    );
}

#[test]
fn a_stem_that_is_not_a_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let timeline: Timeline = serde_json::from_value(base(dir.path())).unwrap();
    for stem in ["", "../escape", ".hidden", "a/b"] {
        let error = Compositor::new()
            .render(
                &timeline,
                &RenderTarget::new(dir.path(), stem),
                &|_| {},
                &CancelToken::new(),
            )
            .expect_err("refused");
        assert_eq!(error.item(), Some(&Item::Target), "{stem}: {error}");
    }
}

#[test]
fn malformed_json_is_refused_by_the_schema() {
    let bad = [
        r#"{"outputs": [{"size": "4:3"}], "scenes": []}"#,
        r##"{"outputs": [{"size": "16:9"}], "scenes": [{"start": 0, "end": 1, "source": {"type": "color", "color": "#12"}}]}"##,
        r#"{"outputs": [{"size": "16:9"}], "scenes": [], "surprise": 1}"#,
        r#"{"outputs": [{"size": "16:9"}], "scenes": [{"start": 0, "end": 1, "source": {"type": "hologram"}}]}"#,
    ];
    for text in bad {
        assert!(serde_json::from_str::<Timeline>(text).is_err(), "{text}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Random bytes under any media name are refused with an error naming the item, never a panic.
    #[test]
    fn random_bytes_as_media_are_refused(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
        extension in proptest::sample::select(vec!["png", "jpg", "mp4", "wav", "mp3", "m4a"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("random.{extension}"));
        std::fs::write(&path, &bytes).unwrap();
        let mut timeline = base(dir.path());
        if ["wav", "mp3", "m4a"].contains(&extension) {
            timeline["audio"] = json!({"tracks": [{"path": path}]});
        } else {
            timeline["scenes"][1]["source"] = json!({"type": if extension == "mp4" { "video" } else { "image" }, "path": path});
        }
        let timeline: Timeline = serde_json::from_value(timeline).unwrap();
        let error = Compositor::new().validate(&timeline).expect_err("random bytes are not media");
        proptest::prop_assert!(error.item().is_some(), "{}", error);
    }
}
