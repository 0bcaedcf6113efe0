//! montage-audio: decodes music and finds what a video can be cut on — tempo, beats,
//! downbeats, onsets, energy and sections — as a [`BeatGrid`].
//!
//! Decoding (symphonia) streams mono samples, resampled (rubato) to 22.05 kHz, into aubio's
//! spectral-flux onset detector and a phase vocoder; only frame-rate features are kept, so
//! memory stays small for an hour of audio. On the whole track, a tempo is chosen from the
//! onset envelope's autocorrelation, a tempo curve is tracked with Viterbi, and beats are
//! placed by dynamic programming (Ellis 2007) — an offline tracker, far steadier than aubio's
//! causal one. Bars and sections come from accents and changes at beat and bar level.
//!
//! # Layout
//! - `decode`: streaming decode and resampling.
//! - `features`: per-frame aubio features.
//! - `tempo`: onset envelope, global tempo and the tempo curve.
//! - `beats`: the dynamic-programming beat tracker.
//! - `structure`: meter, downbeats and sections.
//! - [`grid`](BeatGrid): the output types.
//! - [`synth`]: music with known beats (tests, benchmarks, a default music bed).
//! - [`eval`]: beat-tracking F-measure as mir_eval defines it.
//! - `error`: [`AudioError`].

mod beats;
mod decode;
mod error;
pub mod eval;
mod features;
mod grid;
mod structure;
pub mod synth;
mod tempo;

pub use decode::{ANALYSIS_RATE, SourceInfo};
pub use error::AudioError;
pub use grid::{BeatGrid, EnergyCurve, Section, SectionKind, TempoPoint};

use decode::ToAnalysisRate;
use features::{FeatureExtractor, Features};
use std::path::Path;

/// Less audio than this cannot hold a beat worth cutting on.
pub const MIN_SECONDS: f64 = 2.0;
/// Rate of [`BeatGrid::energy`].
pub const ENERGY_RATE: f64 = 10.0;
/// Frames quieter than this (about −60 dBFS) count as silence.
const SILENCE_RMS: f32 = 1e-3;
/// The onset envelope peaks this many frames after the attack (aubio's window lag).
const ENVELOPE_LAG_FRAMES: f64 = 1.5;

/// Analyses an audio file of any supported format (WAV, MP3, FLAC, OGG/Vorbis, AAC in
/// MP4/M4A).
pub fn analyze_file(path: &Path) -> Result<BeatGrid, AudioError> {
    let file = std::fs::File::open(path)?;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    analyze_source(Box::new(file), extension.as_deref())
}

/// Analyses encoded audio held in memory.
pub fn analyze_bytes(bytes: Vec<u8>) -> Result<BeatGrid, AudioError> {
    analyze_source(Box::new(std::io::Cursor::new(bytes)), None)
}

fn analyze_source(source: Box<dyn symphonia::core::io::MediaSource>, extension: Option<&str>) -> Result<BeatGrid, AudioError> {
    let mut extractor = FeatureExtractor::new()?;
    let mut failure = None;
    let info = decode::decode(source, extension, &mut |block| {
        if failure.is_none()
            && let Err(e) = extractor.push(block)
        {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    tracing::debug!(rate = info.sample_rate, channels = info.channels, seconds = info.duration, "decoded");
    analyze_features(extractor.finish()?)
}

/// Analyses mono samples at any rate from 8 to 192 kHz.
pub fn analyze_samples(samples: &[f32], sample_rate: u32) -> Result<BeatGrid, AudioError> {
    let mut converter = ToAnalysisRate::new(sample_rate)?;
    let mut extractor = FeatureExtractor::new()?;
    let mut failure = None;
    let mut sink = |block: &[f32]| {
        if failure.is_none()
            && let Err(e) = extractor.push(block)
        {
            failure = Some(e);
        }
    };
    converter.push(samples, &mut sink)?;
    converter.finish(&mut sink)?;
    if let Some(e) = failure {
        return Err(e);
    }
    analyze_features(extractor.finish()?)
}

fn analyze_features(features: Features) -> Result<BeatGrid, AudioError> {
    let frame = Features::frame_seconds();
    let duration = features.samples as f64 / f64::from(ANALYSIS_RATE);
    if duration < MIN_SECONDS {
        return Err(AudioError::TooShort { seconds: duration, minimum: MIN_SECONDS });
    }
    let peak_rms = features.rms.iter().copied().fold(0.0f32, f32::max);
    let energy = energy_curve(&features.rms, frame, peak_rms);
    let onsets = features.onsets.clone();
    if peak_rms < SILENCE_RMS {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    }
    let env = tempo::envelope(&features);
    let Some(global) = tempo::candidate_periods(&env, frame).and_then(|c| choose_period(&env, &c, frame)) else {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    };
    let confidence = tempo::confidence(&env, global);
    let periods = tempo::period_curve(&env, global, frame);
    let beat_frames: Vec<usize> = beats::track(&env, &periods)
        .into_iter()
        .filter(|&b| !silent_around(&features.rms, b, (periods[b] / 2.0) as usize))
        .collect();
    if beat_frames.len() < 2 {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    }
    let to_time = |f: f64| ((f - ENVELOPE_LAG_FRAMES) * frame).max(0.0);
    let beats: Vec<f64> = beat_frames.iter().map(|&b| to_time(b as f64)).collect();

    let (meter, phase) = structure::meter_and_phase(&features, &beat_frames);
    let bar_frames: Vec<usize> = beat_frames.iter().skip(phase).step_by(usize::from(meter)).copied().collect();
    let downbeats: Vec<f64> = bar_frames.iter().map(|&b| to_time(b as f64)).collect();

    let beat_energy = beat_frames
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let end = beat_frames.get(i + 1).copied().unwrap_or(features.rms.len()).max(b + 1);
            let slice = &features.rms[b..end.min(features.rms.len()).max(b)];
            let mean = slice.iter().map(|v| f64::from(*v)).sum::<f64>() / slice.len().max(1) as f64;
            (mean / f64::from(peak_rms)).min(1.0)
        })
        .collect();
    let tempo_curve = tempo_curve(&periods, frame);
    let bpm = 60.0 / (global * frame);
    let sections = structure::sections(&features, &bar_frames, frame, duration, peak_rms);
    Ok(BeatGrid {
        duration,
        bpm,
        tempo_confidence: confidence,
        tempo_curve,
        meter,
        beats,
        downbeats,
        onsets,
        beat_energy,
        energy,
        sections,
    })
}

/// Picks the beat level among candidate periods: the one whose tracked beats land on the
/// strongest onsets, moving to a faster level when the points halfway between its beats are
/// nearly as strong as the beats (a missed level, as when half-time is chosen).
fn choose_period(env: &[f32], candidates: &[f64], frame: f64) -> Option<f64> {
    let strength = |period: f64| {
        let beats = beats::track(env, &vec![period; env.len()]);
        let at = |f: usize| f64::from(env.get(f).copied().unwrap_or(0.0));
        let on = beats.iter().map(|&b| peak_near(env, b)).sum::<f64>() / beats.len().max(1) as f64;
        let between = beats.windows(2).map(|w| at((w[0] + w[1]) / 2).max(peak_near(env, (w[0] + w[1]) / 2))).sum::<f64>()
            / beats.len().saturating_sub(1).max(1) as f64;
        (on, between)
    };
    let bpm = |p: f64| 60.0 / (p * frame);
    // A mild preference for the tempi music is usually felt at.
    let prior = |p: f64| (-0.5 * ((bpm(p) / 120.0).log2() / 1.5).powi(2)).exp();
    let scored: Vec<(f64, f64, f64)> = candidates.iter().map(|&p| {
        let (on, between) = strength(p);
        (p, on * prior(p), between / on.max(1e-9))
    }).collect();
    let mut best = *scored.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    // Every other beat much weaker than its neighbours: the beat is the slower level.
    let alternation = |period: f64| {
        let beats = beats::track(env, &vec![period; env.len()]);
        let (mut even, mut odd) = (0.0, 0.0);
        for (i, &b) in beats.iter().enumerate() {
            if i % 2 == 0 { even += peak_near(env, b) } else { odd += peak_near(env, b) }
        }
        even.min(odd) / even.max(odd).max(1e-9)
    };
    if alternation(best.0) < 0.5
        && let Some(slower) = scored.iter().find(|c| (c.0 / (best.0 * 2.0) - 1.0).abs() < 0.04)
    {
        best = *slower;
    }
    while best.2 > 0.85 {
        let Some(faster) = scored.iter().find(|c| (c.0 * 2.0 / best.0 - 1.0).abs() < 0.04) else { break };
        best = *faster;
    }
    (best.1 > 0.0).then_some(best.0)
}

/// The envelope's peak within a frame either side (beats are placed to the frame).
fn peak_near(env: &[f32], frame: usize) -> f64 {
    let lo = frame.saturating_sub(1);
    let hi = (frame + 2).min(env.len());
    env[lo.min(hi)..hi].iter().copied().fold(0.0f32, f32::max).into()
}

fn silent_around(rms: &[f32], frame: usize, radius: usize) -> bool {
    let lo = frame.saturating_sub(radius);
    let hi = (frame + radius + 1).min(rms.len());
    rms[lo..hi].iter().all(|v| *v < SILENCE_RMS)
}

fn energy_curve(rms: &[f32], frame: f64, peak: f32) -> EnergyCurve {
    let per_value = ((1.0 / ENERGY_RATE) / frame).round().max(1.0) as usize;
    let values = rms
        .chunks(per_value)
        .map(|c| {
            let mean = c.iter().map(|v| f64::from(*v)).sum::<f64>() / c.len() as f64;
            if peak > 0.0 { (mean / f64::from(peak)).min(1.0) } else { 0.0 }
        })
        .collect();
    EnergyCurve { rate: ENERGY_RATE, values }
}

/// Collapses the per-frame periods into points where the tempo moves by more than 3 %.
fn tempo_curve(periods: &[f64], frame: f64) -> Vec<TempoPoint> {
    let mut points: Vec<TempoPoint> = Vec::new();
    for (i, p) in periods.iter().enumerate().step_by(((1.0 / frame) as usize).max(1)) {
        let bpm = 60.0 / (p * frame);
        if points.last().is_none_or(|last| (bpm / last.bpm - 1.0).abs() > 0.03) {
            points.push(TempoPoint { time: i as f64 * frame, bpm });
        }
    }
    points
}
