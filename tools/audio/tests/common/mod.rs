//! Fixtures for the integration tests: synthesised music encoded by the ffmpeg command line
//! (installed by scripts/install-deps) into every container and codec the crate reads.

#![allow(dead_code)]

use montage_audio::synth::{SynthTrack, TrackSpec, render};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A 120 BPM 4/4 track of about `seconds`, rendered at `rate`.
pub fn track_at(rate: u32, seconds: f64) -> SynthTrack {
    render(&TrackSpec {
        sample_rate: rate,
        ..TrackSpec::steady(120.0, seconds)
    })
}

/// Encodes mono `samples` at `rate` with ffmpeg into `dir/name`, with `args` choosing
/// channels, codec and rate. Panics with ffmpeg's message if it fails: a fixture problem.
pub fn encode(samples: &[f32], rate: u32, dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "f32le",
            "-ar",
            &rate.to_string(),
            "-ac",
            "1",
            "-i",
            "-",
        ])
        .args(args)
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed (scripts/install-deps)");
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("feed ffmpeg");
    let result = child.wait_with_output().expect("ffmpeg runs");
    assert!(
        result.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}
