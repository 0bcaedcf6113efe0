//! Each timeline feature, seen in the decoded output.

mod common;

use common::*;
use serde_json::json;

fn small_output() -> serde_json::Value {
    json!([{"size": {"width": 320, "height": 180}, "quality": {"preset": "ultrafast", "crf": 12}}])
}

#[test]
fn text_overlays_and_burnt_captions_appear_in_their_time_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = timeline(json!({
        "outputs": small_output(),
        "scenes": [{"start": 0, "end": 2, "source": {"type": "color", "color": "#000000"}}],
        "overlays": [{"type": "text", "text": "TITLE", "start": 0.5, "end": 1.5, "position": "top_center", "size": 0.15, "fade": 0}],
        "captions": {"cues": [{"start": 1.0, "end": 2.0, "text": "caption"}], "burn_in": true}
    }));
    let report = render(&timeline, dir.path());
    let frames = decode_rgb(&report.outputs[0].path, 320, 180);
    let bright = |frame: &[u8], rows: std::ops::Range<usize>| {
        rows.flat_map(|y| (0..320).map(move |x| (y * 320 + x) * 3))
            .filter(|&i| frame[i] > 200 && frame[i + 1] > 200)
            .count()
    };
    let (top, bottom) = (0..60, 120..180);
    assert_eq!(
        bright(&frames[6], top.clone()) + bright(&frames[6], bottom.clone()),
        0,
        "nothing before 0.5 s"
    );
    assert!(
        bright(&frames[20], top.clone()) > 100,
        "title at the top at 0.67 s"
    );
    assert_eq!(
        bright(&frames[20], bottom.clone()),
        0,
        "no caption yet at 0.67 s"
    );
    assert!(
        bright(&frames[40], top.clone()) > 100 && bright(&frames[40], bottom.clone()) > 50,
        "both at 1.33 s"
    );
    assert_eq!(bright(&frames[50], top), 0, "title gone at 1.67 s");
    assert!(bright(&frames[50], bottom) > 50, "caption still there");

    assert_eq!(
        report.sidecars,
        [dir.path().join("video.srt"), dir.path().join("video.vtt")]
    );
    assert_eq!(
        std::fs::read_to_string(&report.sidecars[0]).unwrap(),
        "1\n00:00:01,000 --> 00:00:02,000\ncaption\n\n"
    );
    assert!(
        std::fs::read_to_string(&report.sidecars[1])
            .unwrap()
            .starts_with("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ncaption")
    );
}

#[test]
fn a_watermark_sits_in_its_corner_at_its_opacity() {
    let dir = tempfile::tempdir().unwrap();
    let logo = solid_png(dir.path(), "logo.png", "white", "100x50");
    let timeline = timeline(json!({
        "outputs": small_output(),
        "scenes": [{"start": 0, "end": 0.5, "source": {"type": "color", "color": "#000000"}}],
        "overlays": [{"type": "watermark", "path": logo, "position": "bottom_right", "opacity": 0.5, "width": 0.25}]
    }));
    let report = render(&timeline, dir.path());
    let frame = &decode_rgb(&report.outputs[0].path, 320, 180)[5];
    let at = |x: usize, y: usize| frame[(y * 320 + x) * 3] as f64;
    // 80x40 px, inside the 5% margin of the bottom-right corner: about x 224..304, y 131..171.
    let grey = at(264, 150);
    assert!(
        (grey - 128.0).abs() < 20.0,
        "half-opaque white over black: {grey}"
    );
    assert!(
        at(160, 90) < 10.0 && at(315, 175) < 10.0,
        "nothing outside the logo or in the margin"
    );
}

#[test]
fn grades_change_the_colours() {
    let dir = tempfile::tempdir().unwrap();
    let invert = dir.path().join("invert.cube");
    std::fs::write(
        &invert,
        "TITLE \"invert\"\nLUT_3D_SIZE 2\n1 1 1\n0 1 1\n1 0 1\n0 0 1\n1 1 0\n0 1 0\n1 0 0\n0 0 0\n",
    )
    .unwrap();
    let scene = json!([{"start": 0, "end": 0.5, "source": {"type": "color", "color": "#c83c28"}}]);
    let cases = [
        (json!({"type": "lut", "path": invert}), [55.0, 195.0, 215.0]),
        // BT.709 luma of (200, 60, 40) is 88.
        (json!({"type": "eq", "saturation": 0.0}), [88.0, 88.0, 88.0]),
    ];
    for (grade, expected) in cases {
        let timeline =
            timeline(json!({"outputs": small_output(), "scenes": scene, "grade": grade}));
        let report = render(&timeline, dir.path());
        let mean = mean_rgb(&decode_rgb(&report.outputs[0].path, 32, 18)[3]);
        for c in 0..3 {
            assert!(
                (mean[c] - expected[c]).abs() < 12.0,
                "{grade}: {mean:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn video_clips_play_from_their_trim_point_and_hold_their_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x120:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=160x120:r=25:d=1",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let timeline = timeline(json!({
        "outputs": small_output(),
        "scenes": [
            {"start": 0, "end": 1, "source": {"type": "video", "path": clip, "trim_start": 0.5}},
            {"start": 1, "end": 2.5, "source": {"type": "video", "path": clip, "trim_start": 1.2}, "fit": "contain"}
        ]
    }));
    let report = render(&timeline, dir.path());
    let frames = decode_rgb(&report.outputs[0].path, 32, 18);
    let colour = |index: usize| mean_rgb(&frames[index]);
    assert!(
        colour(3)[0] > 200.0,
        "0.1 s in: clip time 0.6 s is red {:?}",
        colour(3)
    );
    assert!(
        colour(24)[2] > 200.0,
        "0.8 s in: clip time 1.3 s is blue {:?}",
        colour(24)
    );
    let late = colour(70);
    assert!(
        late[2] > 100.0 && late[0] < 60.0,
        "past the clip's end the last (blue) frame holds {late:?}"
    );
}

#[test]
fn music_ducks_under_narration_in_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let music = tone(dir.path(), "music.wav", 220, 4.0, 0.4);
    let voice = tone(dir.path(), "voice.wav", 1000, 1.0, 0.2);
    let timeline = timeline(json!({
        "outputs": small_output(),
        "scenes": [{"start": 0, "end": 4, "source": {"type": "color", "color": "#000000"}}],
        "audio": {"tracks": [
            {"path": music, "role": "music"},
            {"path": voice, "role": "narration", "offset": 1.5}
        ]}
    }));
    let report = render(&timeline, dir.path());
    let samples = decode_audio(&report.outputs[0].path);
    // The 220 Hz music alone, by correlating with its own frequency over a window.
    let music_level = |from: f64| {
        let start = (from * 48000.0) as usize;
        let window = 4800;
        let (mut sine, mut cosine) = (0.0, 0.0);
        for i in 0..window {
            let phase = 2.0 * std::f64::consts::PI * 220.0 * (start + i) as f64 / 48000.0;
            let value = samples[2 * (start + i)] as f64;
            sine += value * phase.sin();
            cosine += value * phase.cos();
        }
        2.0 * (sine * sine + cosine * cosine).sqrt() / window as f64
    };
    let (before, during, after) = (music_level(0.5), music_level(2.0), music_level(3.5));
    // lavfi's sine is at 1/8 scale and its stereo upmix at -3 dB: 0.4 × 0.125 × 0.707.
    assert!(
        (before - 0.035).abs() < 0.005,
        "music before narration: {before}"
    );
    let drop_db = 20.0 * (during / before).log10();
    assert!(
        (drop_db + 12.0).abs() < 2.0,
        "ducked by about 12 dB: {drop_db:.1} dB"
    );
    assert!(
        (after - before).abs() < 0.005,
        "back after narration: {after}"
    );
}

#[test]
fn dips_and_wipes_move_the_way_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = |kind: &str| {
        json!([
            {"start": 0, "end": 1, "source": {"type": "color", "color": "#ffffff"}, "transition": {"kind": kind, "duration": 1.0}},
            {"start": 1, "end": 2, "source": {"type": "color", "color": "#ff0000"}}
        ])
    };
    let dip = render(
        &timeline(json!({"outputs": small_output(), "scenes": scenes("dip_to_black")})),
        dir.path(),
    );
    let frames = decode_rgb(&dip.outputs[0].path, 32, 18);
    assert!(
        mean_rgb(&frames[30]).iter().all(|&c| c < 20.0),
        "black at the cut: {:?}",
        mean_rgb(&frames[30])
    );
    assert!(
        mean_rgb(&frames[22])[1] > 60.0,
        "white fading out before it"
    );
    assert!(
        mean_rgb(&frames[38])[0] > 60.0 && mean_rgb(&frames[38])[1] < 20.0,
        "red fading in after it"
    );

    for (kind, new_side) in [
        ("wipe_left", "right"),
        ("wipe_right", "left"),
        ("wipe_up", "bottom"),
        ("wipe_down", "top"),
    ] {
        let report = render(
            &timeline(json!({"outputs": small_output(), "scenes": scenes(kind)})),
            dir.path(),
        );
        let frame = &decode_rgb(&report.outputs[0].path, 32, 18)[27];
        let is_red = |x: usize, y: usize| frame[(y * 32 + x) * 3 + 1] < 80;
        let (near, far) = match new_side {
            "right" => (is_red(30, 9), is_red(1, 9)),
            "left" => (is_red(1, 9), is_red(30, 9)),
            "bottom" => (is_red(16, 16), is_red(16, 1)),
            _ => (is_red(16, 1), is_red(16, 16)),
        };
        assert!(
            near && !far,
            "{kind}: the next scene comes in from the {new_side}"
        );
    }
}

#[test]
fn a_probe_reads_a_clip_to_its_end_and_refuses_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=320x568:r=24:d=5",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let probe = montage_compositor::probe_clip(&clip).unwrap();
    assert_eq!((probe.width, probe.height), (320, 568));
    assert!(
        (probe.last_picture - (5.0 - 1.0 / 24.0)).abs() < 0.01,
        "{probe:?}"
    );
    let bytes = std::fs::read(&clip).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    assert!(montage_compositor::probe_clip(&cut).is_err());
    let still = solid_png(dir.path(), "still.png", "red", "64x64");
    let picture = montage_compositor::probe_clip(&still).unwrap();
    assert_eq!(
        picture.last_picture, 0.0,
        "a picture is no clip: {picture:?}"
    );
}

#[test]
fn a_clips_last_picture_is_the_one_it_ends_on() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("red-then-blue.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x96:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=160x96:r=25:d=1",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1[v]",
        "-map",
        "[v]",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let last = montage_compositor::last_picture(&clip).unwrap();
    assert_eq!((last.width, last.height), (160, 96));
    let pixels = last.rgba.len() / 4;
    let mean = |c: usize| {
        last.rgba
            .iter()
            .skip(c)
            .step_by(4)
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / pixels as f64
    };
    assert!(
        mean(2) > 200.0 && mean(0) < 60.0,
        "blue, not red: {} {}",
        mean(0),
        mean(2)
    );
}
