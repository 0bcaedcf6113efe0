//! Tempo: the onset envelope, its autocorrelation, the octave decision, and a tempo curve
//! tracked with Viterbi so the tempo may drift or change.

use crate::features::{BANDS, Features};

/// The onset-strength envelope: aubio's novelty, log-compressed, with its local mean removed
/// and normalised to unit deviation.
pub(crate) fn envelope(features: &Features) -> Vec<f32> {
    let novelty = &features.novelty;
    if novelty.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<f32> = novelty.iter().copied().filter(|v| *v > 0.0).collect();
    sorted.sort_by(f32::total_cmp);
    let scale = sorted
        .get(sorted.len() / 2)
        .copied()
        .unwrap_or(1.0)
        .max(1e-6);
    let compressed: Vec<f32> = novelty.iter().map(|v| (1.0 + v / scale).ln()).collect();
    // Remove a ~0.5 s moving average: what stands out locally is an onset.
    let half = 22;
    let mut prefix = vec![0.0f64; compressed.len() + 1];
    for (i, v) in compressed.iter().enumerate() {
        prefix[i + 1] = prefix[i] + f64::from(*v);
    }
    let mut out: Vec<f32> = (0..compressed.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(half), (i + half + 1).min(compressed.len()));
            let mean = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
            (f64::from(compressed[i]) - mean).max(0.0) as f32
        })
        .collect();
    scale_to_unit_deviation(&mut out);
    out
}

/// Divides by the root mean square, so envelopes of any loudness compare (silence stays 0).
fn scale_to_unit_deviation(values: &mut [f32]) {
    let deviation = (values.iter().map(|v| v * v).sum::<f32>() / values.len().max(1) as f32).sqrt();
    if deviation > 1e-9 {
        values.iter_mut().for_each(|v| *v /= deviation);
    }
}

/// The onset envelope of the low end only (kick, bass, snare body: 30–500 Hz): positive
/// changes of the low log-band energies, normalised like [`envelope`]. Beats carry these
/// accents; subdivisions are mostly high-frequency ticks.
pub(crate) fn low_envelope(features: &Features) -> Vec<f32> {
    band_envelope(features, 0..LOW_BANDS)
}

/// The onset envelope of the top bands (hi-hats, cymbals: 4–11 kHz).
pub(crate) fn high_envelope(features: &Features) -> Vec<f32> {
    band_envelope(features, BANDS - 2..BANDS)
}

/// The loudness of the top bands per frame (their mean log energy): hats as loud as each
/// other read alike whatever the attack's shape.
pub(crate) fn high_level(features: &Features) -> Vec<f32> {
    features
        .bands
        .iter()
        .map(|b| b[BANDS - 2..].iter().sum::<f32>() / 2.0)
        .collect()
}

fn band_envelope(features: &Features, bands: std::ops::Range<usize>) -> Vec<f32> {
    let mut out: Vec<f32> = std::iter::once(0.0)
        .chain(
            features
                .bands
                .windows(2)
                .map(|w| bands.clone().map(|b| (w[1][b] - w[0][b]).max(0.0)).sum()),
        )
        .collect();
    if features.bands.is_empty() {
        out.clear();
    }
    scale_to_unit_deviation(&mut out);
    out
}

/// Bands 30–500 Hz of [`crate::features::BANDS`].
const LOW_BANDS: usize = 3;

/// Normalised autocorrelation of `env` for lags `0..max_lag`.
pub(crate) fn autocorrelation(env: &[f32], max_lag: usize) -> Vec<f64> {
    let n = env.len();
    let mut acf = vec![0.0; max_lag.min(n)];
    for (lag, slot) in acf.iter_mut().enumerate() {
        let s: f32 = env[..n - lag]
            .iter()
            .zip(&env[lag..])
            .map(|(a, b)| a * b)
            .sum();
        *slot = f64::from(s) / (n - lag) as f64;
    }
    acf
}

/// Beat period bounds in frames: 40–240 BPM.
pub(crate) fn lag_bounds(frame_seconds: f64) -> (usize, usize) {
    (
        (60.0 / 240.0 / frame_seconds).floor() as usize,
        (60.0 / 40.0 / frame_seconds).ceil() as usize,
    )
}

fn at(acf: &[f64], lag: f64) -> f64 {
    let i = lag.floor() as usize;
    match (acf.get(i), acf.get(i + 1)) {
        (Some(a), Some(b)) => a + (b - a) * (lag - i as f64),
        (Some(a), None) => *a,
        _ => 0.0,
    }
}

/// How strongly a beat period of `lag` frames is supported: the autocorrelation there and at
/// its multiples (a bar is a multiple of the beat), taking the best nearby value.
fn periodicity(acf: &[f64], lag: f64) -> f64 {
    let peak = |l: f64| {
        (-1..=1)
            .map(|d| at(acf, l + f64::from(d)))
            .fold(f64::MIN, f64::max)
    };
    peak(lag) + 0.5 * peak(2.0 * lag) + 0.25 * peak(4.0 * lag)
}

/// Candidate beat periods in frames, best-supported first: the strongest autocorrelation
/// peaks and their double and half. `None` when the envelope has no periodicity at all.
pub(crate) fn candidate_periods(env: &[f32], frame_seconds: f64) -> Option<Vec<f64>> {
    let (lo, hi) = lag_bounds(frame_seconds);
    let acf = autocorrelation(env, hi * 4 + 4);
    if acf.len() <= hi + 1 || acf[0] <= 1e-9 {
        return None;
    }
    let scores: Vec<f64> = (0..=hi + 1)
        .map(|lag| {
            if lag < lo {
                f64::MIN
            } else {
                periodicity(&acf, lag as f64)
            }
        })
        .collect();
    let mut peaks: Vec<(f64, f64)> = (lo.max(1)..=hi)
        .filter(|&l| scores[l] >= scores[l - 1] && scores[l] >= scores[l + 1] && acf[l] > 0.0)
        .map(|l| (refine(&acf, l), scores[l]))
        .collect();
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut candidates: Vec<f64> = Vec::new();
    for &(lag, _) in peaks.iter().take(4) {
        for c in [lag, lag * 2.0, lag / 2.0] {
            let in_range = c >= lo as f64 && c <= hi as f64;
            if in_range && !candidates.iter().any(|k| (k / c - 1.0).abs() < 0.03) {
                candidates.push(c);
            }
        }
    }
    (!candidates.is_empty()).then_some(candidates)
}

/// How much of the envelope's energy repeats at `lag`: the confidence of a tempo.
pub(crate) fn confidence(env: &[f32], lag: f64) -> f64 {
    repeating(&autocorrelation(env, lag as usize + 2), lag)
}

/// The share of an autocorrelation's energy at `lag` (0 for silence).
fn repeating(acf: &[f64], lag: f64) -> f64 {
    match acf.first() {
        Some(&energy) if energy > 1e-9 => (at(acf, lag) / energy).clamp(0.0, 1.0),
        _ => 0.0,
    }
}

/// A peak's position to a fraction of a frame, from a parabola through it.
fn refine(acf: &[f64], i: usize) -> f64 {
    if i == 0 || i + 1 >= acf.len() {
        return i as f64;
    }
    let (a, b, c) = (acf[i - 1], acf[i], acf[i + 1]);
    let denom = a - 2.0 * b + c;
    if denom.abs() < 1e-12 {
        return i as f64;
    }
    i as f64 + (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
}

/// How periodic the envelope is in overlapping windows: each window's autocorrelation,
/// computed once and shared by every candidate tempo's [`period_curve`].
pub(crate) struct LocalPeriodicity {
    /// The envelope's length in frames.
    frames: usize,
    /// Each window's centre frame.
    centres: Vec<usize>,
    /// Each window's autocorrelation, lags `0..`.
    acfs: Vec<Vec<f64>>,
}

impl LocalPeriodicity {
    /// 8-second windows every 2 seconds, with lags up to `max_lag`; none when the envelope is
    /// shorter than two windows (the tempo is then taken as constant).
    pub(crate) fn new(env: &[f32], frame_seconds: f64, max_lag: usize) -> Self {
        let window = (8.0 / frame_seconds) as usize;
        let step = (2.0 / frame_seconds) as usize;
        let mut local = Self {
            frames: env.len(),
            centres: Vec::new(),
            acfs: Vec::new(),
        };
        if env.len() < window * 2 {
            return local;
        }
        let lags = max_lag.min(window);
        // Through the spectrum: zero-padded so that no lag wraps around.
        let size = (window + lags).next_power_of_two();
        let mut planner = realfft::RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(size);
        let inverse = planner.plan_fft_inverse(size);
        let mut signal = forward.make_input_vec();
        let mut spectrum = forward.make_output_vec();
        let mut start = 0;
        while start + window <= env.len() {
            signal.fill(0.0);
            for (s, e) in signal.iter_mut().zip(&env[start..start + window]) {
                *s = f64::from(*e);
            }
            // Sizes come from the plans, so the transforms cannot fail.
            let _ = forward.process(&mut signal, &mut spectrum);
            for bin in spectrum.iter_mut() {
                *bin = realfft::num_complex::Complex64::new(bin.norm_sqr(), 0.0);
            }
            let _ = inverse.process(&mut spectrum, &mut signal);
            local.acfs.push(
                signal[..lags]
                    .iter()
                    .enumerate()
                    .map(|(lag, v)| v / size as f64 / (window - lag) as f64)
                    .collect(),
            );
            local.centres.push(start + window / 2);
            start += step;
        }
        local
    }

    /// How much of the envelope's energy repeats at the beat period `curve` gives each window
    /// (the confidence of a tempo that may change); `None` when there are no windows.
    pub(crate) fn confidence(&self, curve: &[f64]) -> Option<f64> {
        if self.acfs.is_empty() {
            return None;
        }
        let sum: f64 = self
            .acfs
            .iter()
            .zip(&self.centres)
            .map(|(acf, &centre)| repeating(acf, curve[centre.min(curve.len() - 1)]))
            .sum();
        Some(sum / self.acfs.len() as f64)
    }
}

/// The beat period per frame around `global`: the local periodicity tracked with Viterbi
/// (states: periods from half to twice `global`; transitions penalise tempo jumps),
/// interpolated between window centres.
pub(crate) fn period_curve(local: &LocalPeriodicity, global: f64) -> Vec<f64> {
    if local.acfs.is_empty() {
        return vec![global; local.frames];
    }
    let states: Vec<f64> = (0..=60)
        .map(|k| global * 0.5 * 4f64.powf(f64::from(k) / 60.0))
        .collect();
    let emissions: Vec<Vec<f64>> = local
        .acfs
        .iter()
        .map(|acf| {
            // The emissions read lags up to four global periods, as they were tuned to.
            let acf = &acf[..acf.len().min((4.0 * global) as usize + 4)];
            let norm = acf[0].max(1e-9);
            states.iter().map(|&l| periodicity(acf, l) / norm).collect()
        })
        .collect();
    let centres = &local.centres;
    let jump_cost = 2.5;
    // The states are evenly spaced in log-period: a jump's cost depends only on its length.
    let step = (states[1] / states[0]).ln();
    let cost: Vec<f64> = (0..states.len())
        .map(|d| jump_cost * step * d as f64)
        .collect();
    let mut score: Vec<f64> = emissions[0].clone();
    let mut back: Vec<Vec<usize>> = Vec::new();
    for emission in &emissions[1..] {
        let mut next = vec![f64::MIN; states.len()];
        let mut from = vec![0; states.len()];
        for j in 0..states.len() {
            for i in 0..states.len() {
                let s = score[i] - cost[i.abs_diff(j)];
                if s > next[j] {
                    next[j] = s;
                    from[j] = i;
                }
            }
            next[j] += emission[j];
        }
        back.push(from);
        score = next;
    }
    let mut state = score
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let mut path = vec![state; emissions.len()];
    for (w, from) in back.iter().enumerate().rev() {
        state = from[state];
        path[w] = state;
    }
    let periods: Vec<f64> = path.iter().map(|&s| states[s]).collect();
    (0..local.frames)
        .map(|t| match centres.iter().position(|&c| c > t) {
            Some(0) => periods[0],
            None => periods[periods.len() - 1],
            Some(k) => {
                let (c0, c1) = (centres[k - 1] as f64, centres[k] as f64);
                let w = (t as f64 - c0) / (c1 - c0);
                periods[k - 1] * (1.0 - w) + periods[k] * w
            }
        })
        .collect()
}
