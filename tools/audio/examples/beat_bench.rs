//! The Rust half of `scripts/bench-audio` (see docs/benchmarks.md):
//!
//! - `beat_bench suite DIR`: writes the benchmark's synthetic tracks to DIR as 44.1 kHz WAV
//!   files, with `truth.json` (category and beat times per file). Seeds differ from the
//!   accuracy tests', so the bench scores tracks the tracker was not tuned on.
//! - `beat_bench long SECONDS FILE`: writes one long track (a WAV) for the speed and memory runs.
//! - `beat_bench ours FILE...` / `beat_bench aubio FILE...`: prints `{"file": [beat times]}` from
//!   Montage's tracker or from aubio's own causal tracker (`aubio beat`'s defaults).

use aubio_rs::{OnsetMode, Tempo};
use montage_audio::synth::{TrackSpec, render};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RATE: u32 = 44_100;

fn suite() -> Vec<(&'static str, String, TrackSpec)> {
    let base = |bpm: f64, seed: u64| TrackSpec {
        sample_rate: RATE,
        seed,
        ..TrackSpec::steady(bpm, 30.0)
    };
    let mut cases = Vec::new();
    for (i, bpm) in [
        72.0, 80.0, 90.0, 100.0, 105.0, 116.0, 124.0, 132.0, 145.0, 160.0, 170.0, 178.0,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(("steady", format!("steady-{bpm}"), base(bpm, 40 + i as u64)));
    }
    for (i, (bpm, swing)) in [(88.0, 0.33), (104.0, 0.2), (126.0, 0.25), (150.0, 0.15)]
        .into_iter()
        .enumerate()
    {
        cases.push((
            "swing",
            format!("swing-{bpm}"),
            TrackSpec {
                swing,
                ..base(bpm, 60 + i as u64)
            },
        ));
    }
    for (i, bpm) in [78.0, 98.0, 122.0, 140.0].into_iter().enumerate() {
        cases.push((
            "syncopation",
            format!("syncopation-{bpm}"),
            TrackSpec {
                syncopation: true,
                ..base(bpm, 70 + i as u64)
            },
        ));
    }
    for (i, (from, to)) in [
        (96.0, 120.0),
        (128.0, 100.0),
        (110.0, 140.0),
        (170.0, 130.0),
    ]
    .into_iter()
    .enumerate()
    {
        let bars = (30.0 * (from + to) / 2.0 / 60.0 / 4.0) as u32;
        let spec = TrackSpec {
            tempo_change: Some((bars / 2, to)),
            bars,
            ..base(from, 80 + i as u64)
        };
        cases.push(("tempo change", format!("change-{from}-{to}"), spec));
    }
    for (i, bpm) in [92.0, 118.0, 136.0].into_iter().enumerate() {
        cases.push((
            "quiet intro",
            format!("intro-{bpm}"),
            TrackSpec {
                quiet_intro_bars: 4,
                ..base(bpm, 90 + i as u64)
            },
        ));
    }
    for (i, bpm) in [120.0, 140.0, 160.0, 174.0].into_iter().enumerate() {
        cases.push((
            "half-time",
            format!("halftime-{bpm}"),
            TrackSpec {
                half_time: true,
                ..base(bpm, 100 + i as u64)
            },
        ));
    }
    for (i, bpm) in [84.0, 108.0, 144.0].into_iter().enumerate() {
        let bars = (30.0 * bpm / 60.0 / 3.0) as u32;
        cases.push((
            "3/4",
            format!("waltz-{bpm}"),
            TrackSpec {
                meter: 3,
                bars,
                ..base(bpm, 110 + i as u64)
            },
        ));
    }
    cases
}

fn write_suite(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut truth = BTreeMap::new();
    for (category, name, spec) in suite() {
        let track = render(&spec);
        let file = format!("{name}.wav");
        track.write_wav(&dir.join(&file))?;
        truth.insert(
            file,
            serde_json::json!({ "category": category, "beats": track.beats }),
        );
    }
    std::fs::write(
        dir.join("truth.json"),
        serde_json::to_string_pretty(&truth)?,
    )?;
    Ok(())
}

fn write_long(seconds: f64, file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let spec = TrackSpec {
        sample_rate: RATE,
        syncopation: true,
        quiet_intro_bars: 4,
        ..TrackSpec::steady(126.0, seconds)
    };
    Ok(render(&spec).write_wav(file)?)
}

/// aubio's causal tracker as `aubio beat` runs it: window 1024, hop 512, its default method.
fn aubio_beats(file: &Path) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut reader = hound::WavReader::open(file)?;
    let rate = reader.spec().sample_rate;
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<_, _>>()?;
    let (win, hop) = (1024, 512);
    let mut tempo = Tempo::new(OnsetMode::SpecFlux, win, hop, rate)?;
    let mut beats = Vec::new();
    for chunk in samples.chunks_exact(hop) {
        if tempo.do_result(chunk)? > 0.0 {
            beats.push(f64::from(tempo.get_last_s()));
        }
    }
    Ok(beats)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: beat_bench suite DIR | long SECONDS FILE | ours FILE... | aubio FILE...";
    let (command, rest) = args.split_first().ok_or(usage)?;
    let files = || rest.iter().map(PathBuf::from);
    let mut out = BTreeMap::new();
    match command.as_str() {
        "suite" => return write_suite(Path::new(rest.first().ok_or(usage)?)),
        "long" => {
            let [seconds, file] = rest else {
                return Err(usage.into());
            };
            return write_long(seconds.parse()?, Path::new(file));
        }
        "ours" => {
            for file in files() {
                out.insert(
                    file.display().to_string(),
                    montage_audio::analyze_file(&file)?.beats,
                );
            }
        }
        "aubio" => {
            for file in files() {
                out.insert(file.display().to_string(), aubio_beats(&file)?);
            }
        }
        _ => return Err(usage.into()),
    }
    // The bench script reads this from stdout; an example is not library code.
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string(&out)?);
    }
    Ok(())
}
