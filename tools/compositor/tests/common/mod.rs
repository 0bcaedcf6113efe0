//! Fixtures made with the ffmpeg CLI, and outputs checked with ffprobe and by decoding them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use montage_compositor::{CancelToken, Compositor, RenderReport, RenderTarget, Timeline};

/// Runs the ffmpeg CLI quietly; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A still made from an ffmpeg lavfi source expression.
pub fn still(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        "1",
        path.to_str().unwrap(),
    ]);
    path
}

/// A solid-colour PNG.
pub fn solid_png(dir: &Path, name: &str, color: &str, size: &str) -> PathBuf {
    still(dir, name, &format!("color=c={color}:s={size}"))
}

/// A sine tone as a stereo WAV.
pub fn tone(dir: &Path, name: &str, frequency: u32, seconds: f64, volume: f64) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency={frequency}:duration={seconds}:sample_rate=48000"),
        "-af",
        &format!("volume={volume}"),
        "-ac",
        "2",
        path.to_str().unwrap(),
    ]);
    path
}

/// ffprobe's JSON of streams and format.
pub fn probe(path: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe failed on {}",
        path.display()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Decodes every frame scaled to `width`×`height` RGB.
pub fn decode_rgb(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            &format!("scale={width}:{height}:flags=area"),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(output.status.success());
    output
        .stdout
        .chunks_exact((width * height * 3) as usize)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The mean colour of a decoded frame.
pub fn mean_rgb(frame: &[u8]) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for pixel in frame.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += pixel[c] as f64;
        }
    }
    let n = (frame.len() / 3) as f64;
    [sum[0] / n, sum[1] / n, sum[2] / n]
}

/// An MD5 per decoded frame, from ffmpeg's framemd5 muxer.
pub fn frame_hashes(path: &Path) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit(',').next().map(|hash| hash.trim().to_string()))
        .collect()
}

/// Decodes the soundtrack as 48 kHz stereo float.
pub fn decode_audio(path: &Path) -> Vec<f32> {
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a", "-f", "f32le", "-ac", "2", "-ar", "48000", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    output
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The top-level MP4 boxes in file order.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let mut size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).to_string();
        if size == 1 {
            size = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        } else if size == 0 {
            size = bytes.len() - at;
        }
        boxes.push(kind);
        at += size.max(8);
    }
    boxes
}

/// Parses a timeline from JSON written with `serde_json::json!`.
pub fn timeline(value: serde_json::Value) -> Timeline {
    serde_json::from_value(value).expect("a valid timeline")
}

/// Renders without a cache, with no progress reporting.
pub fn render(timeline: &Timeline, dir: &Path) -> RenderReport {
    Compositor::new()
        .render(
            timeline,
            &RenderTarget::new(dir, "video"),
            &|_| {},
            &CancelToken::new(),
        )
        .expect("render succeeds")
}

/// The files a folder holds, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
