//! What a case's finished videos hold, found by reading the MP4s themselves rather than the
//! run's own account of them: ffprobe's streams (codec, size, frame rate, duration, audio)
//! and, decoding every frame small and grey, where the picture cuts and how bright it is.

use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// Frames are decoded to this many pixels a side to find cuts and luma: enough to see a
/// scene change, small enough to decode a minute of 1080p quickly.
const SIDE: usize = 48;

/// One finished video, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredVideo {
    /// The format the run says it is (`9:16`).
    pub format: String,
    /// The video stream's codec, as ffprobe names it (`h264`).
    pub codec: String,
    /// Pixels.
    pub width: u64,
    /// Pixels.
    pub height: u64,
    /// Frames per second.
    pub fps: f64,
    /// The container's duration, seconds.
    pub duration: f64,
    /// The audio stream's codec, when there is one.
    pub audio_codec: Option<String>,
    /// Times where the picture changes abruptly, seconds: the cuts as a viewer sees them.
    pub cuts: Vec<f64>,
    /// Mean brightness over every frame, 0 (black) to 1 (white).
    pub mean_luma: f64,
}

/// Measures the MP4 at `path`, rendered as `format`.
pub fn measure(path: &Path, format: &str) -> Result<MeasuredVideo, String> {
    let probe = run(Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .args(["-show_format"])
        .arg(path))?;
    let probe: serde_json::Value =
        serde_json::from_slice(&probe).map_err(|e| format!("ffprobe's answer: {e}"))?;
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    let of_kind = |kind: &str| streams.iter().find(|s| s["codec_type"] == kind).cloned();
    let video = of_kind("video").ok_or_else(|| format!("{} has no video", path.display()))?;
    let fps = frame_rate(video["avg_frame_rate"].as_str().unwrap_or(""))
        .ok_or_else(|| format!("{} has no frame rate", path.display()))?;
    let duration = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or(0.0);
    let scale = format!("scale={SIDE}:{SIDE},format=gray");
    let pixels = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &scale, "-f", "rawvideo", "-"]))?;
    let frames: Vec<&[u8]> = pixels.chunks_exact(SIDE * SIDE).collect();
    Ok(MeasuredVideo {
        format: format.to_owned(),
        codec: video["codec_name"].as_str().unwrap_or("").to_owned(),
        width: video["width"].as_u64().unwrap_or(0),
        height: video["height"].as_u64().unwrap_or(0),
        fps,
        duration,
        audio_codec: of_kind("audio").and_then(|a| a["codec_name"].as_str().map(str::to_owned)),
        cuts: cuts(&frames, fps),
        mean_luma: mean_luma(&frames),
    })
}

fn run(command: &mut Command) -> Result<Vec<u8>, String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    match output.status.success() {
        true => Ok(output.stdout),
        false => Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
    }
}

/// `30/1` or `30000/1001` as frames per second.
fn frame_rate(ratio: &str) -> Option<f64> {
    let (numerator, denominator) = ratio.split_once('/')?;
    let rate = numerator.parse::<f64>().ok()? / denominator.parse::<f64>().ok()?;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// The times of frames that differ from the one before far more than frames usually do
/// (motion on a still moves pixels a little; a cut changes most of them).
fn cuts(frames: &[&[u8]], fps: f64) -> Vec<f64> {
    let differences: Vec<f64> = frames
        .windows(2)
        .map(|pair| {
            let total: u64 = pair[0]
                .iter()
                .zip(pair[1])
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            total as f64 / (SIDE * SIDE) as f64
        })
        .collect();
    if differences.is_empty() {
        return Vec::new();
    }
    let mut sorted = differences.clone();
    sorted.sort_by(f64::total_cmp);
    let typical = sorted[sorted.len() / 2];
    differences
        .iter()
        .enumerate()
        .filter(|(_, d)| **d > (6.0 * typical).max(6.0))
        .map(|(k, _)| (k + 1) as f64 / fps)
        .collect()
}

fn mean_luma(frames: &[&[u8]]) -> f64 {
    let count = frames.len() * SIDE * SIDE;
    if count == 0 {
        return 0.0;
    }
    let total: u64 = frames
        .iter()
        .flat_map(|f| f.iter())
        .map(|&p| u64::from(p))
        .sum();
    total as f64 / count as f64 / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_where_most_pixels_change_and_motion_is_not() {
        let dark = vec![20u8; SIDE * SIDE];
        let drifting = vec![24u8; SIDE * SIDE];
        let bright = vec![220u8; SIDE * SIDE];
        let frames = [&dark[..], &drifting, &dark, &drifting, &bright, &bright];
        assert_eq!(cuts(&frames, 2.0), vec![2.0]);
        let luma = mean_luma(&frames);
        assert!((luma - (20.0 * 2.0 + 24.0 * 2.0 + 440.0) / 6.0 / 255.0).abs() < 1e-9);
        assert_eq!(
            frame_rate("30000/1001").map(|r| (r * 1000.0).round()),
            Some(29970.0)
        );
        assert_eq!(frame_rate("0/0"), None);
    }
}
