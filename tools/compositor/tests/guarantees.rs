//! The render guarantees, checked by decoding the outputs.

mod common;

use common::*;
use montage_compositor::{CancelToken, Compositor, RenderTarget};
use serde_json::json;

const COLOURS: [(&str, [f64; 3]); 6] = [
    ("#ff0000", [255.0, 0.0, 0.0]),
    ("#00ff00", [0.0, 255.0, 0.0]),
    ("#0000ff", [0.0, 0.0, 255.0]),
    ("#ffffff", [255.0, 255.0, 255.0]),
    ("#ffff00", [255.0, 255.0, 0.0]),
    ("#00ffff", [0.0, 255.0, 255.0]),
];

fn nearest_colour(rgb: [f64; 3]) -> usize {
    let distance = |c: [f64; 3]| (0..3).map(|i| (rgb[i] - c[i]).powi(2)).sum::<f64>();
    (0..COLOURS.len())
        .min_by(|&a, &b| distance(COLOURS[a].1).total_cmp(&distance(COLOURS[b].1)))
        .unwrap()
}

#[test]
fn hard_cuts_land_on_their_times_within_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let cuts = [0.0, 0.37, 1.13, 1.52, 2.71, 3.3, 4.05];
    for fps in [30.0f64, 29.97, 25.0] {
        let scenes: Vec<_> = cuts
            .windows(2)
            .enumerate()
            .map(|(i, w)| json!({"start": w[0], "end": w[1], "source": {"type": "color", "color": COLOURS[i].0}}))
            .collect();
        let timeline = timeline(json!({
            "outputs": [{"size": {"width": 320, "height": 180}, "fps": fps, "quality": {"preset": "ultrafast"}}],
            "scenes": scenes,
        }));
        let report = render(&timeline, dir.path());
        let frames = decode_rgb(&report.outputs[0].path, 16, 9);
        let expected_frames = (4.05 * fps).round() as usize;
        assert_eq!(frames.len(), expected_frames, "{fps} fps: frame count");
        let labels: Vec<usize> = frames
            .iter()
            .map(|frame| nearest_colour(mean_rgb(frame)))
            .collect();
        let changes: Vec<usize> = (1..labels.len())
            .filter(|&i| labels[i] != labels[i - 1])
            .collect();
        assert_eq!(
            changes.len(),
            cuts.len() - 2,
            "{fps} fps: one change per cut, got {changes:?}"
        );
        for (change, cut) in changes.iter().zip(&cuts[1..]) {
            let frame_time = *change as f64 / fps;
            assert!(
                (frame_time - cut).abs() <= 1.0 / fps,
                "{fps} fps: cut at {cut} s landed at {frame_time} s"
            );
        }
    }
}

#[test]
fn crossfades_are_centred_on_their_cut_times() {
    let dir = tempfile::tempdir().unwrap();
    let cuts = [0.0, 0.83, 1.91, 2.6, 3.77];
    let fps = 30.0;
    let scenes: Vec<_> = cuts
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            json!({"start": w[0], "end": w[1],
                   "source": {"type": "color", "color": if i % 2 == 0 { "#ff0000" } else { "#0000ff" }},
                   "transition": if i + 2 < cuts.len() { json!({"kind": "crossfade", "duration": 0.4 + 0.1 * i as f64}) } else { json!({"kind": "cut"}) }})
        })
        .collect();
    let timeline = timeline(json!({
        "outputs": [{"size": {"width": 320, "height": 180}, "fps": fps, "quality": {"preset": "ultrafast"}}],
        "scenes": scenes,
    }));
    let report = render(&timeline, dir.path());
    let frames = decode_rgb(&report.outputs[0].path, 16, 9);
    // Share of red in each frame: 1 in red scenes, 0 in blue ones, in between while fading.
    let red: Vec<f64> = frames
        .iter()
        .map(|f| {
            let [r, _, b] = mean_rgb(f);
            r / (r + b)
        })
        .collect();
    for (index, cut) in cuts[1..cuts.len() - 1].iter().enumerate() {
        let from_red = index % 2 == 0;
        let around = (cut * fps) as usize;
        let window = around.saturating_sub(12)..(around + 12).min(red.len() - 1);
        let crossing = window
            .clone()
            .find(|&i| {
                if from_red {
                    red[i] >= 0.5 && red[i + 1] < 0.5
                } else {
                    red[i] <= 0.5 && red[i + 1] > 0.5
                }
            })
            .unwrap_or_else(|| {
                panic!("no half-way point near {cut} s: {:?}", &red[window.clone()])
            });
        // Interpolate where the mix passes one half, in frame-centre time.
        let fraction = (red[crossing] - 0.5) / (red[crossing] - red[crossing + 1]);
        let centre = (crossing as f64 + fraction + 0.5) / fps;
        assert!(
            (centre - cut).abs() <= 1.0 / fps,
            "crossfade at {cut} s is centred at {centre} s"
        );
        let duration = 0.4 + 0.1 * index as f64;
        // The first and last blended frames are only 1/36 to 1/24 of the way, close to pure.
        let blended = window.filter(|&i| red[i] > 0.02 && red[i] < 0.98).count();
        assert!(
            (blended as f64 - duration * fps).abs() <= 3.0,
            "crossfade of {duration} s blends {blended} frames"
        );
    }
}

#[test]
fn outputs_meet_the_container_contract() {
    let dir = tempfile::tempdir().unwrap();
    let music = tone(dir.path(), "music.wav", 440, 10.0, 0.3);
    let timeline = timeline(json!({
        "outputs": [{"size": {"width": 640, "height": 360}, "fps": 29.97, "quality": {"preset": "veryfast", "crf": 23}}],
        "scenes": [
            {"start": 0, "end": 1.3, "source": {"type": "color", "color": "#336699"}, "transition": {"kind": "dip_to_black", "duration": 0.5}},
            {"start": 1.3, "end": 3.1, "source": {"type": "color", "color": "#996633"}}
        ],
        "audio": {"tracks": [{"path": music, "fade_out": 0.5}]}
    }));
    let report = render(&timeline, dir.path());
    let path = &report.outputs[0].path;
    let info = probe(path);
    let streams = info["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["profile"], "High");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(video["r_frame_rate"], "30000/1001");
    assert_eq!(video["color_space"], "bt709");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);
    let seconds = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let frame = 1001.0 / 30000.0;
    let (video_duration, audio_duration) =
        (seconds(&video["duration"]), seconds(&audio["duration"]));
    assert!(
        (seconds(&info["format"]["duration"]) - 3.1).abs() <= frame,
        "format lasts {}",
        info["format"]["duration"]
    );
    assert!(
        (video_duration - 3.1).abs() <= frame,
        "video lasts {video_duration}"
    );
    assert!(
        (audio_duration - video_duration).abs() <= 0.040,
        "audio {audio_duration} vs video {video_duration}"
    );
    let boxes = top_level_boxes(path);
    let moov = boxes.iter().position(|b| b == "moov").unwrap();
    let mdat = boxes.iter().position(|b| b == "mdat").unwrap();
    assert!(moov < mdat, "faststart puts moov before mdat: {boxes:?}");
    assert_eq!(
        files_in(dir.path()),
        ["music.wav", "video-640x360.mp4"],
        "no scratch or partial files are left"
    );
}

#[test]
fn one_timeline_renders_every_format_with_the_focus_in_frame() {
    let dir = tempfile::tempdir().unwrap();
    // A wide grey picture with a red square near its right edge: the subject.
    let picture = still(
        dir.path(),
        "wide.png",
        "color=c=gray:s=1920x1080,drawbox=x=1580:y=280:w=120:h=120:color=red:t=fill",
    );
    let timeline = timeline(json!({
        "outputs": [
            {"size": "16:9", "quality": {"preset": "ultrafast"}},
            {"size": "9:16", "quality": {"preset": "ultrafast"}},
            {"size": "1:1", "quality": {"preset": "ultrafast"}}
        ],
        "scenes": [{"start": 0, "end": 0.5, "source": {"type": "image", "path": picture}, "focus": {"x": 0.85, "y": 0.3}}]
    }));
    let report = render(&timeline, dir.path());
    let expected = [
        ("16x9", 1920, 1080),
        ("9x16", 1080, 1920),
        ("1x1", 1080, 1080),
    ];
    assert_eq!(report.outputs.len(), 3);
    for (output, (name, width, height)) in report.outputs.iter().zip(expected) {
        assert_eq!(output.name, name);
        let info = probe(&output.path);
        assert_eq!(info["streams"][0]["width"].as_u64(), Some(width));
        assert_eq!(info["streams"][0]["height"].as_u64(), Some(height));
        let (w, h) = (width as u32 / 8, height as u32 / 8);
        let frame = &decode_rgb(&output.path, w, h)[0];
        let red = frame
            .chunks_exact(3)
            .filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80)
            .count();
        // The square is 120 px of a 1080-px-high source; scaled by 8 it covers about 200 cells.
        assert!(
            red > 120,
            "{name}: the subject is in frame ({red} red cells)"
        );
    }
}

#[test]
fn a_fast_preview_renders_at_480p_from_the_same_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let picture = still(dir.path(), "bars.png", "testsrc2=s=1280x720");
    let timeline = timeline(json!({
        "outputs": [{"size": "16:9"}, {"size": "9:16"}],
        "scenes": [
            {"start": 0, "end": 1, "source": {"type": "image", "path": picture},
             "motion": {"from": {"x": 0, "y": 0, "w": 1, "h": 1}, "to": {"x": 0.2, "y": 0.2, "w": 0.6, "h": 0.6}}}
        ]
    }));
    let output = Compositor::new()
        .render_preview(
            &timeline,
            &RenderTarget::new(dir.path(), "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(output.path, dir.path().join("video-preview.mp4"));
    let info = probe(&output.path);
    assert_eq!(info["streams"][0]["width"].as_u64(), Some(854));
    assert_eq!(info["streams"][0]["height"].as_u64(), Some(480));
    assert_eq!(info["streams"][0]["profile"], "High");
    assert_eq!(output.frames, 30);
}
