//! montage-audio: decodes music and finds what a video can be cut on — tempo, beats,
//! downbeats, onsets, energy and sections — as a [`BeatGrid`].
//!
//! Decoding (symphonia) streams mono samples, resampled (rubato) to 22.05 kHz, into one FFT
//! per 11.6 ms frame (realfft) and aubio's spectral-flux novelty; only frame-rate features are
//! kept, so memory stays small for an hour of audio (about 7 MB of process memory for 3 minutes,
//! see docs/benchmarks.md). On the whole track, a tempo is chosen from the
//! onset envelope's autocorrelation, a tempo curve is tracked with Viterbi, and beats are
//! placed by dynamic programming (Ellis 2007) — an offline tracker, far steadier than aubio's
//! causal one. Bars and sections come from accents and changes at beat and bar level.
//!
//! # Layout
//! - `decode`: streaming decode and resampling.
//! - `features`: per-frame novelty, loudness, band energies and onsets.
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
/// Below this tempo confidence there is no pulse to cut on (noise, a drone, free time):
/// music with a beat scores above 0.8, noise and random hits below 0.15.
const MIN_TEMPO_CONFIDENCE: f64 = 0.25;
/// How far a beat may sit from an attack and still be heard on it (mir_eval's tolerance).
const ONSET_TOLERANCE: f64 = 0.07;
/// Rate of [`BeatGrid::energy`].
pub const ENERGY_RATE: f64 = 10.0;
/// Frames quieter than this (about −60 dBFS) count as silence.
const SILENCE_RMS: f32 = 1e-3;
/// The onset envelope peaks this many frames after the attack (measured on synthetic hits).
const ENVELOPE_LAG_FRAMES: f64 = 0.2;

/// Analyses an audio file of any supported format (WAV, MP3, FLAC, OGG/Vorbis, AAC in
/// MP4/M4A).
pub fn analyze_file(path: &Path) -> Result<BeatGrid, AudioError> {
    let file = std::fs::File::open(path)?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    analyze_source(Box::new(file), extension.as_deref())
}

/// Analyses encoded audio held in memory.
pub fn analyze_bytes(bytes: Vec<u8>) -> Result<BeatGrid, AudioError> {
    analyze_source(Box::new(std::io::Cursor::new(bytes)), None)
}

fn analyze_source(
    source: Box<dyn symphonia::core::io::MediaSource>,
    extension: Option<&str>,
) -> Result<BeatGrid, AudioError> {
    let mut extractor = FeatureExtractor::new()?;
    let info = decode::decode(source, extension, &mut |block| extractor.push(block))?;
    tracing::debug!(
        rate = info.sample_rate,
        channels = info.channels,
        seconds = info.duration,
        "decoded"
    );
    analyze_features(extractor.finish()?)
}

/// Analyses mono samples at any rate from 8 to 192 kHz.
pub fn analyze_samples(samples: &[f32], sample_rate: u32) -> Result<BeatGrid, AudioError> {
    let mut converter = ToAnalysisRate::new(sample_rate)?;
    let mut extractor = FeatureExtractor::new()?;
    let mut sink = |block: &[f32]| extractor.push(block);
    converter.push(samples, &mut sink)?;
    converter.finish(&mut sink)?;
    analyze_features(extractor.finish()?)
}

fn analyze_features(features: Features) -> Result<BeatGrid, AudioError> {
    let frame = Features::frame_seconds();
    let duration = features.samples as f64 / f64::from(ANALYSIS_RATE);
    if duration < MIN_SECONDS {
        return Err(AudioError::TooShort {
            seconds: duration,
            minimum: MIN_SECONDS,
        });
    }
    let peak_rms = features.rms.iter().copied().fold(0.0f32, f32::max);
    let energy = energy_curve(&features.rms, frame, peak_rms);
    let onsets = features.onsets.clone();
    if peak_rms < SILENCE_RMS {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    }
    let env = tempo::envelope(&features);
    let low = tempo::low_envelope(&features);
    let high = tempo::high_envelope(&features);
    let high_level = tempo::high_level(&features);
    let (_, longest) = tempo::lag_bounds(frame);
    let local = tempo::LocalPeriodicity::new(&env, frame, 4 * longest + 4);
    let Some((global, periods)) = tempo::candidate_periods(&env, frame).and_then(|c| {
        let measures = Measures {
            env: &env,
            low: &low,
            high: &high,
            high_level: &high_level,
            frame,
        };
        choose_period(&measures, &local, &c)
    }) else {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    };
    let confidence = local
        .confidence(&periods)
        .unwrap_or_else(|| tempo::confidence(&env, global));
    if confidence < MIN_TEMPO_CONFIDENCE {
        tracing::debug!(confidence, "no steady pulse");
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    }
    // Kick, bass and snare mark the beat more than hi-hat subdivisions do, but the linear
    // spectrum's flux hears mostly the hats: the low end is added back for the beat phase.
    let accents: Vec<f32> = env.iter().zip(&low).map(|(e, l)| e + l).collect();
    let to_time = |f: f64| ((f - ENVELOPE_LAG_FRAMES) * frame).max(0.0);
    // The tracker carries the pulse on through silence and ringing tails; a beat before the
    // first attack or after the last one is invented.
    let (first_onset, last_onset) = (
        onsets.first().copied().unwrap_or(0.0),
        onsets.last().copied().unwrap_or(duration),
    );
    let beat_frames: Vec<usize> = beats::track(&accents, &periods)
        .into_iter()
        .filter(|&b| !silent_around(&features.rms, b, (periods[b] / 2.0) as usize))
        .filter(|&b| {
            (first_onset - ONSET_TOLERANCE..=last_onset + ONSET_TOLERANCE)
                .contains(&to_time(b as f64))
        })
        .collect();
    if beat_frames.len() < 2 {
        return Ok(BeatGrid::without_beats(duration, onsets, energy));
    }
    let beats: Vec<f64> = beat_frames.iter().map(|&b| to_time(b as f64)).collect();

    let (meter, phase) = structure::meter_and_phase(&features, &beat_frames);
    let bar_frames: Vec<usize> = beat_frames
        .iter()
        .skip(phase)
        .step_by(usize::from(meter))
        .copied()
        .collect();
    let downbeats: Vec<f64> = bar_frames.iter().map(|&b| to_time(b as f64)).collect();

    let beat_energy = beat_frames
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let end = beat_frames
                .get(i + 1)
                .copied()
                .unwrap_or(features.rms.len())
                .max(b + 1);
            let slice = &features.rms[b..end.min(features.rms.len()).max(b)];
            let mean = slice.iter().map(|v| f64::from(*v)).sum::<f64>() / slice.len().max(1) as f64;
            (mean / f64::from(peak_rms)).min(1.0)
        })
        .collect();
    let tempo_curve = tempo_curve(&periods, frame);
    let bpm = 60.0 / (global * frame);
    let sections = structure::sections(
        &features,
        &bar_frames,
        |f| to_time(f as f64),
        duration,
        peak_rms,
    );
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

/// How one candidate beat period fits the envelope, from the beats tracked along the tempo
/// curve that starts there (so a tempo change does not blur the measures).
#[derive(Debug, Clone)]
struct Candidate {
    /// The level: the median of its curve.
    period: f64,
    /// The beat period per frame when the tempo is tracked from `period`.
    curve: Vec<f64>,
    /// Mean onset strength on the beats, weighted by the tempo prior.
    score: f64,
    /// Strength halfway between beats over strength on them.
    between: f64,
    /// The same ratio in the low end (kick, bass, snare body); infinite when the beats carry no
    /// low accents, so the low end has no say.
    low_between: f64,
    /// How much louder the top bands (hi-hats) are halfway between beats than on the softer
    /// of the even and odd beats, in log energy: near 0 or above when the hats between are a
    /// pulse of their own, about −1.4 for off-beat eighths at half the on-beat loudness.
    high_level_gap: f64,
    /// The weaker of the even and odd beats over the stronger.
    alternation: f64,
    /// The same in the low end (1 when the beats carry no low accents).
    low_alternation: f64,
    /// The same in the top bands (hi-hats).
    high_alternation: f64,
}

/// What the candidates are measured on.
struct Measures<'a> {
    /// The onset envelope.
    env: &'a [f32],
    /// The low end's onset envelope.
    low: &'a [f32],
    /// The top bands' onset envelope.
    high: &'a [f32],
    /// The top bands' loudness.
    high_level: &'a [f32],
    /// Seconds per frame.
    frame: f64,
}

impl Candidate {
    /// Measures the beats tracked along `curve`, whose level is `period`.
    fn measure(m: &Measures, curve: Vec<f64>, period: f64) -> Self {
        let Measures {
            env,
            low,
            high,
            high_level,
            frame,
        } = *m;
        let beats = beats::track(env, &curve);
        let mean = |values: &mut dyn Iterator<Item = f64>| {
            let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            sum / n.max(1) as f64
        };
        let midpoints = || beats.windows(2).map(|w| (w[0] + w[1]) / 2);
        let on = mean(&mut beats.iter().map(|&b| peak_near(env, b)));
        let between = mean(&mut midpoints().map(|m| peak_near(env, m)));
        let low_on = mean(&mut beats.iter().map(|&b| peak_near(low, b)));
        let low_between = mean(&mut midpoints().map(|m| peak_near(low, m)));
        // Mean values on the even and on the odd beats.
        let even_odd = |value: &dyn Fn(usize) -> f64| {
            let on =
                |parity: usize| mean(&mut beats.iter().skip(parity).step_by(2).map(|&b| value(b)));
            (on(0), on(1))
        };
        let alternation_in = |e: &[f32]| {
            let (even, odd) = even_odd(&|b| peak_near(e, b));
            even.min(odd) / f64::max(even, odd).max(1e-9)
        };
        // A hat's energy peaks once the attack is well inside the analysis window.
        let level_after = |f: usize| -> f64 {
            let lo = f.saturating_sub(1).min(high_level.len());
            let hi = (f + 5).min(high_level.len());
            high_level[lo..hi]
                .iter()
                .copied()
                .fold(0.0f32, f32::max)
                .into()
        };
        let (even_level, odd_level) = even_odd(&level_after);
        let high_level_gap =
            mean(&mut midpoints().map(level_after)) - f64::min(even_level, odd_level);
        let bpm = 60.0 / (period * frame);
        // A mild preference for the tempi music is usually felt at.
        let prior = (-0.5 * ((bpm / 120.0).log2() / 1.5).powi(2)).exp();
        Self {
            period,
            curve,
            score: on * prior,
            between: between / on.max(1e-9),
            // Normalised to unit deviation, a real accent peaks well above 1.
            low_between: if low_on < 1.0 {
                f64::INFINITY
            } else {
                low_between / low_on
            },
            high_level_gap,
            alternation: alternation_in(env),
            low_alternation: if low_on < 1.0 {
                1.0
            } else {
                alternation_in(low)
            },
            high_alternation: alternation_in(high),
        }
    }
}

/// Picks the beat level among candidate periods: the one whose tracked beats land on the
/// strongest onsets; then a slower level when every other beat is much weaker, or carries no
/// low accent and a softer hat (the faster level is a subdivision); and a faster level when
/// the points halfway between beats are nearly as strong as the beats and carry a low accent
/// or an equally loud hat (a skipped level, as in a half-time feel). Softer hi-hat eighths
/// alone are a subdivision, not the beat.
fn choose_period(
    measures: &Measures,
    local: &tempo::LocalPeriodicity,
    candidates: &[f64],
) -> Option<(f64, Vec<f64>)> {
    let mut scored: Vec<Candidate> = Vec::new();
    for &start in candidates {
        let curve = tempo::period_curve(local, start);
        // Tracked from a candidate, the tempo may settle elsewhere: the level is where it
        // spends most of its time. Candidates that settle on the same level are one.
        let mut sorted = curve.clone();
        sorted.sort_by(f64::total_cmp);
        let level = sorted[sorted.len() / 2];
        if !scored.iter().any(|c| (c.period / level - 1.0).abs() < 0.04) {
            scored.push(Candidate::measure(measures, curve, level));
        }
    }
    let near = |period: f64| {
        scored
            .iter()
            .find(|c| (c.period / period - 1.0).abs() < 0.04)
    };
    let mut best = scored.iter().max_by(|a, b| a.score.total_cmp(&b.score))?;
    // Kick and snare on every other beat and the hats accenting the same beats: the others
    // are off-beat eighths. (With even hats, as in a half-time feel, the level stands.)
    let subdivided = |c: &Candidate| {
        c.alternation < 0.5 || (c.low_alternation < 0.25 && c.high_alternation < 0.9)
    };
    if subdivided(best)
        && let Some(slower) = near(best.period * 2.0)
    {
        best = slower;
    }
    while let Some(faster) = near(best.period / 2.0).filter(|faster| skipped_level(best, faster)) {
        best = faster;
    }
    (best.score > 0.0).then(|| (best.period, best.curve.clone()))
}

/// How strong the beats of a skipped level must be against the level that skipped it.
const SKIPPED_LEVEL_SCORE: f64 = 0.85;

/// Halfway points this strong against the beats, neither faint subdivisions nor a second
/// pulse, mark a skipped level by themselves when the faster beats are nearly as strong.
const HALFWAY_MIDDLING: std::ops::RangeInclusive<f64> = 0.45..=0.7;

/// Whether `faster`, at half `slower`'s period, is a beat level that `slower` skipped.
/// Halfway points as strong as the beats, with a kick or snare there too or hats as loud as on
/// the softer beats, say so. (Loudness, not the onset envelope: the flux of log energies hears
/// a hat at half the loudness nearly as strongly, up to 0.85 of the hats on the beats, against
/// 0.88 for equal hats under a snare.) So do middling halfway points: real compositions read at
/// half tempo (fast swing, a menuetto, a march-like rock track) have them at 0.49–0.65, where
/// the synthetic suite's quiet eighths sit above 0.7 or below 0.1.
///
/// Either way, the faster level must land on onsets nearly as strong as the slower one's: busy
/// real music has strong halfway points on every level. The faster beats score 0.85–0.99 of
/// the slower ones for the half-time and fast synthetic tracks and for the compositions read
/// at half tempo, 0.74–0.84 for those that the halfway points alone made read at double tempo.
/// (Fitted on the tuning half of the beat corpus and on the synthetic suite; see
/// tools/audio/benches/corpus/README.md.)
fn skipped_level(slower: &Candidate, faster: &Candidate) -> bool {
    let strong_halfway =
        slower.between > 0.85 && (slower.low_between > 0.5 || slower.high_level_gap > -0.7);
    let middling_halfway = HALFWAY_MIDDLING.contains(&slower.between);
    (strong_halfway || middling_halfway) && faster.score >= SKIPPED_LEVEL_SCORE * slower.score
}

/// The envelope's peak within a frame either side (beats are placed to the frame).
fn peak_near(env: &[f32], frame: usize) -> f64 {
    let lo = frame.saturating_sub(1);
    let hi = (frame + 2).min(env.len());
    env[lo.min(hi)..hi]
        .iter()
        .copied()
        .fold(0.0f32, f32::max)
        .into()
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
            if peak > 0.0 {
                (mean / f64::from(peak)).min(1.0)
            } else {
                0.0
            }
        })
        .collect();
    EnergyCurve {
        rate: ENERGY_RATE,
        values,
    }
}

/// Collapses the per-frame periods into points where the tempo moves by more than 3 %.
fn tempo_curve(periods: &[f64], frame: f64) -> Vec<TempoPoint> {
    let mut points: Vec<TempoPoint> = Vec::new();
    for (i, p) in periods
        .iter()
        .enumerate()
        .step_by(((1.0 / frame) as usize).max(1))
    {
        let bpm = 60.0 / (p * frame);
        if points
            .last()
            .is_none_or(|last| (bpm / last.bpm - 1.0).abs() > 0.03)
        {
            points.push(TempoPoint {
                time: i as f64 * frame,
                bpm,
            });
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate with the measures that decide whether a level was skipped.
    fn candidate(period: f64, score: f64, between: f64, low_between: f64, gap: f64) -> Candidate {
        Candidate {
            period,
            curve: Vec::new(),
            score,
            between,
            low_between,
            high_level_gap: gap,
            alternation: 1.0,
            low_alternation: 1.0,
            high_alternation: 1.0,
        }
    }

    #[test]
    fn a_skipped_level_needs_strong_halfway_points_and_beats_nearly_as_strong() {
        // Measured on the synthetic half-time track at 174 BPM, read at 87 before the rule.
        let half_time = candidate(59.4, 3.363, 0.891, 0.014, 0.173);
        assert!(skipped_level(
            &half_time,
            &candidate(30.1, 3.145, 0.027, 0.057, -5.9)
        ));
        // Measured on a house track of the beat corpus (125 BPM): its eighths are busy, but
        // the beats at 250 BPM land on far weaker onsets.
        let house = candidate(41.4, 3.490, 0.955, 0.566, 0.019);
        assert!(!skipped_level(
            &house,
            &candidate(20.9, 2.691, 0.360, 0.751, -1.1)
        ));
        // A fast swing track of the corpus (181 BPM), read at 90.5: middling halfway points.
        let swing = candidate(57.1, 3.238, 0.648, 0.808, -0.769);
        assert!(skipped_level(
            &swing,
            &candidate(28.5, 2.972, 0.0, 0.178, -1.6)
        ));
        // Faint halfway points: no level was skipped, however strong the faster beats (a lied
        // at 84 BPM, whose accompaniment's eighths score 0.89 of its beats).
        let lied = candidate(85.0, 3.0, 0.42, 0.9, -1.0);
        assert!(!skipped_level(
            &lied,
            &candidate(42.5, 2.67, 0.11, 0.9, -1.0)
        ));
    }
}
