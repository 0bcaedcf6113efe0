//! `montage analyze` as a user runs it, on real encoded files.

use assert_cmd::Command;
use montage_audio::synth::{TrackSpec, render};
use std::path::{Path, PathBuf};

/// A 120 BPM track as a WAV file, and an MP3 of it made by the ffmpeg command line.
fn fixtures(dir: &Path) -> (PathBuf, PathBuf) {
    let wav = dir.join("song.wav");
    render(&TrackSpec::steady(120.0, 12.0))
        .write_wav(&wav)
        .unwrap();
    let mp3 = dir.join("song.mp3");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-ac", "2", "-ar", "44100", "-c:a", "libmp3lame"])
        .arg(&mp3)
        .status()
        .expect("ffmpeg is installed (scripts/install-deps)");
    assert!(status.success());
    (wav, mp3)
}

fn montage() -> Command {
    Command::cargo_bin("montage").unwrap()
}

#[test]
fn json_output_has_bpm_beats_and_downbeats_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mp3) = fixtures(dir.path());
    let out = montage()
        .arg("analyze")
        .arg(&mp3)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grid: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let bpm = grid["bpm"].as_f64().unwrap();
    assert!((bpm - 120.0).abs() < 1.0, "{bpm}");
    let beats: Vec<f64> = grid["beats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_f64().unwrap())
        .collect();
    let downbeats: Vec<f64> = grid["downbeats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_f64().unwrap())
        .collect();
    assert!(beats.len() >= 20, "{beats:?}");
    assert!(
        beats.windows(2).all(|w| (w[1] - w[0] - 0.5).abs() < 0.03),
        "beats half a second apart: {beats:?}"
    );
    // Bars of four: each downbeat is a beat, four beats after the previous one.
    let bar_starts: Vec<usize> = downbeats
        .iter()
        .map(|d| {
            beats
                .iter()
                .position(|b| b == d)
                .expect("a downbeat is a beat")
        })
        .collect();
    assert!(
        bar_starts.len() >= 4 && bar_starts.windows(2).all(|w| w[1] - w[0] == 4),
        "{bar_starts:?}"
    );
    assert_eq!(grid["meter"], 4);
    for key in [
        "tempo_confidence",
        "tempo_curve",
        "meter",
        "onsets",
        "beat_energy",
        "energy",
        "sections",
        "duration",
    ] {
        assert!(grid.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn the_summary_is_short_and_human() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = fixtures(dir.path());
    let out = montage().arg("analyze").arg(&wav).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let tempo: f64 = text
        .split("tempo ")
        .nth(1)
        .and_then(|rest| rest.split(" BPM").next())
        .and_then(|t| t.parse().ok())
        .expect("a tempo line");
    assert!((tempo - 120.0).abs() < 1.0, "{text}");
    assert!(text.contains("4/4"), "{text}");
    assert!(text.lines().count() < 20, "{text}");
}

#[test]
fn a_bad_file_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.mp3");
    std::fs::write(&bogus, "not audio at all").unwrap();
    for (path, expected) in [
        (bogus.clone(), "unsupported"),
        (dir.path().join("missing.wav"), "cannot read"),
    ] {
        let out = montage().arg("analyze").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot analyse") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn silence_says_no_beat_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    let silent = montage_audio::synth::SynthTrack {
        samples: vec![0.0; 22_050 * 5],
        sample_rate: 22_050,
        beats: vec![],
        downbeats: vec![],
    };
    silent.write_wav(&path).unwrap();
    let out = montage().arg("analyze").arg(&path).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no beat found"));
}
