//! Damaged, hostile and degenerate input: a typed error or an honest grid without beats,
//! never a panic and never invented beats.

mod common;

use common::{encode, track_at};
use montage_audio::{AudioError, analyze_bytes, analyze_file, analyze_samples};
use proptest::prelude::*;

fn wav(dir: &std::path::Path, name: &str, samples: &[f32], rate: u32) -> std::path::PathBuf {
    encode(samples, rate, dir, name, &["-c:a", "pcm_s16le"])
}

#[test]
fn an_empty_file_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp3");
    std::fs::write(&path, b"").unwrap();
    assert!(
        matches!(analyze_file(&path), Err(AudioError::Unsupported(_))),
        "{:?}",
        analyze_file(&path)
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = analyze_file(std::path::Path::new("/nonexistent/song.mp3")).unwrap_err();
    assert!(matches!(err, AudioError::Io(_)), "{err:?}");
}

#[test]
fn text_and_images_are_not_audio() {
    let png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    for bytes in [b"just some text, not a song\n".repeat(100), png] {
        let err = analyze_bytes(bytes).unwrap_err();
        assert!(matches!(err, AudioError::Unsupported(_)), "{err:?}");
    }
}

#[test]
fn an_unsupported_codec_is_named_as_such() {
    // Opus in Ogg: a real format the decoder does not carry.
    let dir = tempfile::tempdir().unwrap();
    let track = track_at(48_000, 4.0);
    let path = encode(
        &track.samples,
        48_000,
        dir.path(),
        "song.opus",
        &["-c:a", "libopus"],
    );
    let err = analyze_file(&path).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("unsupported"), "{err}");
}

#[test]
fn a_truncated_file_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let track = track_at(44_100, 20.0);
    let path = encode(
        &track.samples,
        44_100,
        dir.path(),
        "song.mp3",
        &["-c:a", "libmp3lame"],
    );
    let bytes = std::fs::read(&path).unwrap();
    let grid = analyze_bytes(bytes[..bytes.len() / 2].to_vec()).unwrap();
    assert!(
        (grid.duration - 10.5).abs() < 1.0,
        "half the file: {} s",
        grid.duration
    );
    assert!((grid.bpm - 120.0).abs() < 1.0);
    assert!(grid.beats.iter().all(|b| *b <= grid.duration));

    // A few hundred bytes hold no second of audio.
    let err = analyze_bytes(bytes[..600].to_vec()).unwrap_err();
    assert!(
        matches!(err, AudioError::TooShort { .. } | AudioError::Corrupt(_)),
        "{err:?}"
    );
}

#[test]
fn corrupt_packets_in_the_middle_do_not_stop_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let track = track_at(44_100, 16.0);
    let path = encode(
        &track.samples,
        44_100,
        dir.path(),
        "song.mp3",
        &["-c:a", "libmp3lame"],
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    let mut state = 7u32;
    for b in &mut bytes[n / 3..n / 3 + 2000] {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (state >> 16) as u8;
    }
    match analyze_bytes(bytes) {
        Ok(grid) => assert!(grid.beats.iter().all(|b| (0.0..=grid.duration).contains(b))),
        Err(e) => assert!(matches!(e, AudioError::Corrupt(_)), "{e:?}"),
    }
}

#[test]
fn silence_has_no_beats() {
    let dir = tempfile::tempdir().unwrap();
    let path = wav(dir.path(), "silence.wav", &vec![0.0; 44_100 * 10], 44_100);
    let grid = analyze_file(&path).unwrap();
    assert!(grid.beats.is_empty() && grid.downbeats.is_empty());
    assert_eq!(grid.bpm, 0.0);
    assert!((grid.duration - 10.0).abs() < 0.01);
    assert_eq!(grid.sections.len(), 1);
}

#[test]
fn noise_and_a_drone_have_no_beats() {
    let rate = 22_050;
    let mut seed: u64 = 1;
    let noise: Vec<f32> = (0..rate * 15)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 1.6 - 0.8
        })
        .collect();
    let drone: Vec<f32> = (0..rate * 15)
        .map(|i| 0.5 * (i as f32 * 220.0 * std::f32::consts::TAU / rate as f32).sin())
        .collect();
    for (name, samples) in [("noise", noise), ("drone", drone)] {
        let grid = analyze_samples(&samples, rate as u32).unwrap();
        assert!(
            grid.beats.is_empty(),
            "{name}: {} invented beats at {} BPM",
            grid.beats.len(),
            grid.bpm
        );
        assert_eq!(grid.tempo_confidence, 0.0, "{name}");
    }
}

#[test]
fn under_two_seconds_is_too_short() {
    let track = track_at(44_100, 1.0);
    let err = analyze_samples(&track.samples[..44_100 * 3 / 2], 44_100).unwrap_err();
    assert!(
        matches!(err, AudioError::TooShort { seconds, .. } if (seconds - 1.5).abs() < 0.01),
        "{err:?}"
    );
}

#[test]
fn clipped_music_still_has_its_beats() {
    let track = track_at(44_100, 16.0);
    let clipped: Vec<f32> = track
        .samples
        .iter()
        .map(|s| (s * 8.0).clamp(-1.0, 1.0))
        .collect();
    let grid = analyze_samples(&clipped, 44_100).unwrap();
    assert!((grid.bpm - 120.0).abs() < 1.0);
    assert!(montage_audio::eval::f_measure(&track.beats, &grid.beats) >= 0.95);
}

#[test]
fn non_finite_samples_are_treated_as_silence() {
    let mut track = track_at(22_050, 12.0);
    for s in track.samples.iter_mut().step_by(97) {
        *s = f32::NAN;
    }
    track.samples[1000] = f32::INFINITY;
    let grid = analyze_samples(&track.samples, 22_050).unwrap();
    assert!((grid.bpm - 120.0).abs() < 1.0);
}

#[test]
fn sample_rates_outside_8_to_192_khz_are_refused() {
    for rate in [4_000, 384_000] {
        let err = analyze_samples(&[0.0; 1000], rate).unwrap_err();
        assert!(
            matches!(err, AudioError::SampleRate(r) if r == rate),
            "{err:?}"
        );
    }
}

/// Real files of every format, cut short at random points and with random bytes flipped.
fn fixtures() -> &'static [Vec<u8>] {
    static FIXTURES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let track = track_at(44_100, 3.0);
        let formats: [(&str, &[&str]); 5] = [
            ("a.wav", &["-c:a", "pcm_s16le"]),
            ("a.mp3", &["-c:a", "libmp3lame"]),
            ("a.flac", &["-c:a", "flac"]),
            ("a.ogg", &["-c:a", "libvorbis"]),
            ("a.m4a", &["-c:a", "aac"]),
        ];
        formats
            .iter()
            .map(|(name, args)| {
                std::fs::read(encode(&track.samples, 44_100, dir.path(), name, args)).unwrap()
            })
            .collect()
    })
}

fn check(bytes: Vec<u8>) {
    match analyze_bytes(bytes) {
        Ok(grid) => {
            assert!(grid.duration >= montage_audio::MIN_SECONDS);
            assert!(
                grid.beats.windows(2).all(|w| w[0] < w[1]),
                "beats out of order"
            );
            assert!(
                grid.beats
                    .iter()
                    .all(|b| (0.0..=grid.duration + 0.05).contains(b))
            );
            assert!(grid.bpm.is_finite() && grid.tempo_confidence.is_finite());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    // Bounded: a few dozen cases each, seconds in all, every run of the test script.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(bytes);
    }

    #[test]
    fn random_truncations_and_flips_of_real_files_never_panic(
        which in 0usize..5,
        cut in 0.0f64..1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..16),
    ) {
        let mut bytes = fixtures()[which].clone();
        let len = ((bytes.len() as f64) * cut) as usize;
        bytes.truncate(len.max(1));
        let n = bytes.len();
        for (at, value) in flips {
            bytes[((n as f64 * at) as usize).min(n - 1)] = value;
        }
        check(bytes);
    }
}
