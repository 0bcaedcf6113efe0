//! Every supported container, codec, channel count and sample rate decodes to the same beats.

mod common;

use common::{encode, track_at};
use montage_audio::analyze_file;
use montage_audio::eval::f_measure;

struct Format {
    name: &'static str,
    rate: u32,
    args: &'static [&'static str],
}

const FORMATS: &[Format] = &[
    Format {
        name: "stereo.wav",
        rate: 44_100,
        args: &["-ac", "2", "-c:a", "pcm_s16le"],
    },
    Format {
        name: "stereo.mp3",
        rate: 44_100,
        args: &["-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k"],
    },
    Format {
        name: "mono.flac",
        rate: 48_000,
        args: &["-c:a", "flac"],
    },
    Format {
        name: "stereo.ogg",
        rate: 44_100,
        args: &["-ac", "2", "-c:a", "libvorbis", "-q:a", "5"],
    },
    Format {
        name: "stereo.m4a",
        rate: 48_000,
        args: &["-ac", "2", "-c:a", "aac", "-b:a", "160k"],
    },
    Format {
        name: "aac.mp4",
        rate: 44_100,
        args: &["-ac", "2", "-c:a", "aac", "-f", "mp4"],
    },
    // Only the right channel carries the music: the downmix must read every channel.
    Format {
        name: "right-only.mp3",
        rate: 44_100,
        args: &[
            "-af",
            "pan=stereo|c1=c0",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "192k",
        ],
    },
    Format {
        name: "narrowband.wav",
        rate: 8_000,
        args: &["-c:a", "pcm_s16le"],
    },
    Format {
        name: "surround-96k.wav",
        rate: 96_000,
        args: &["-ac", "6", "-c:a", "pcm_s24le"],
    },
    Format {
        name: "float-192k.wav",
        rate: 192_000,
        args: &["-ac", "2", "-c:a", "pcm_f32le"],
    },
];

#[test]
fn every_format_gives_the_tempo_beats_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    for format in FORMATS {
        let track = track_at(format.rate, 14.0);
        let path = encode(
            &track.samples,
            format.rate,
            dir.path(),
            format.name,
            format.args,
        );
        let grid = analyze_file(&path).unwrap_or_else(|e| panic!("{}: {e}", format.name));
        let seconds = track.samples.len() as f64 / f64::from(format.rate);
        let f = f_measure(&track.beats, &grid.beats);
        eprintln!(
            "{:<18} {:.1} BPM  F {f:.3}  {:.3} s of {seconds:.3} s",
            format.name, grid.bpm, grid.duration
        );
        assert!(
            (grid.bpm - 120.0).abs() < 1.0,
            "{}: {} BPM",
            format.name,
            grid.bpm
        );
        assert!(f >= 0.95, "{}: F {f:.3}", format.name);
        // Lossy codecs pad to whole frames; nothing else may change the length.
        assert!(
            (grid.duration - seconds).abs() < 0.06,
            "{}: {} s of {seconds} s",
            format.name,
            grid.duration
        );
        assert_eq!(grid.meter, 4, "{}", format.name);
    }
}

#[test]
fn beat_times_agree_across_formats_to_a_few_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let track = track_at(44_100, 12.0);
    let wav = analyze_file(&encode(
        &track.samples,
        44_100,
        dir.path(),
        "a.wav",
        &["-c:a", "pcm_s16le"],
    ))
    .unwrap();
    let flac = analyze_file(&encode(
        &track.samples,
        44_100,
        dir.path(),
        "a.flac",
        &["-c:a", "flac"],
    ))
    .unwrap();
    assert_eq!(wav.beats.len(), flac.beats.len());
    for (a, b) in wav.beats.iter().zip(&flac.beats) {
        assert!(
            (a - b).abs() < 0.002,
            "lossless copies disagree: {a} vs {b}"
        );
    }
}
