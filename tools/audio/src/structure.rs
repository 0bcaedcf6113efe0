//! Bars and sections: meter and downbeats from beat-level accents, sections from changes in
//! bar-level loudness and timbre.

use crate::features::{BANDS, Features};
use crate::grid::{Section, SectionKind};

/// Meter (3 or 4) and the index of the first downbeat among `beats` (frames).
pub(crate) fn meter_and_phase(features: &Features, beats: &[usize]) -> (u8, usize) {
    if beats.len() < 8 {
        return (4, 0);
    }
    let frames = features.bands.len();
    let mean =
        |v: &[f32; BANDS], lo: usize, hi: usize| v[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
    // Per beat: the rise of bass energy (kick, bass note) and of mid energy (a new chord)
    // from just before the beat to just after it.
    let accents: Vec<(f64, f64)> = beats
        .iter()
        .map(|&b| {
            let before = b.saturating_sub(2).min(frames - 1);
            let after = (b..(b + 4).min(frames)).collect::<Vec<_>>();
            let rise = |lo, hi| {
                let base = mean(&features.bands[before], lo, hi);
                after
                    .iter()
                    .map(|&f| mean(&features.bands[f], lo, hi) - base)
                    .fold(0.0f32, f32::max)
            };
            (f64::from(rise(0, 2)), f64::from(rise(2, 5)))
        })
        .collect();
    let zscore = |values: Vec<f64>| {
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let sd = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64)
            .sqrt()
            .max(1e-9);
        values.into_iter().map(|v| (v - m) / sd).collect::<Vec<_>>()
    };
    let bass = zscore(accents.iter().map(|a| a.0).collect());
    let chord = zscore(accents.iter().map(|a| a.1).collect());
    let accent: Vec<f64> = bass.iter().zip(&chord).map(|(b, c)| b + 1.5 * c).collect();
    let mut best = (4u8, 0usize, f64::MIN);
    for meter in [4u8, 3] {
        let m = usize::from(meter);
        for phase in 0..m {
            let (mut on, mut on_n, mut off, mut off_n) = (0.0, 0, 0.0, 0);
            for (i, a) in accent.iter().enumerate() {
                if i % m == phase {
                    on += a;
                    on_n += 1;
                } else {
                    off += a;
                    off_n += 1;
                }
            }
            let contrast = on / on_n.max(1) as f64 - off / off_n.max(1) as f64;
            if contrast > best.2 {
                best = (meter, phase, contrast);
            }
        }
    }
    (best.0, best.1)
}

/// Sections over bars: boundaries where the loudness and spectrum of the four bars after a
/// bar line differ most from the four before it; each labelled from its energy.
pub(crate) fn sections(
    features: &Features,
    bar_frames: &[usize],
    to_time: impl Fn(usize) -> f64,
    duration: f64,
    peak_rms: f32,
) -> Vec<Section> {
    let frames = features.rms.len();
    let bars: Vec<(usize, usize)> = bar_frames
        .iter()
        .enumerate()
        .map(|(i, &start)| (start, bar_frames.get(i + 1).copied().unwrap_or(frames)))
        .filter(|(s, e)| e > s)
        .collect();
    let whole = |kind| Section {
        start: 0.0,
        end: duration,
        kind,
        energy: 0.0,
    };
    if bars.len() < 2 || peak_rms <= 0.0 {
        return vec![whole(SectionKind::Main)];
    }
    let bar_vectors: Vec<Vec<f64>> = bars
        .iter()
        .map(|&(s, e)| {
            let n = (e - s) as f64;
            let rms = features.rms[s..e]
                .iter()
                .map(|v| f64::from(*v))
                .sum::<f64>()
                / n
                / f64::from(peak_rms);
            let mut v = vec![rms * 8.0];
            for b in 0..BANDS {
                v.push(
                    features.bands[s..e]
                        .iter()
                        .map(|x| f64::from(x[b]))
                        .sum::<f64>()
                        / n,
                );
            }
            v
        })
        .collect();
    let bar_energy: Vec<f64> = bar_vectors.iter().map(|v| v[0] / 8.0).collect();
    let span = 4.min(bars.len() / 2).max(1);
    let novelty: Vec<f64> = (0..bars.len())
        .map(|k| {
            if k < span || k + span > bars.len() {
                return 0.0;
            }
            let avg = |range: std::ops::Range<usize>| {
                let mut acc = vec![0.0; BANDS + 1];
                for v in &bar_vectors[range.clone()] {
                    acc.iter_mut()
                        .zip(v)
                        .for_each(|(a, x)| *a += x / range.len() as f64);
                }
                acc
            };
            let (before, after) = (avg(k - span..k), avg(k..k + span));
            before
                .iter()
                .zip(&after)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let nonzero: Vec<f64> = novelty.iter().copied().filter(|v| *v > 0.0).collect();
    let mut cuts = vec![0usize];
    if !nonzero.is_empty() {
        let mean = nonzero.iter().sum::<f64>() / nonzero.len() as f64;
        let sd =
            (nonzero.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nonzero.len() as f64).sqrt();
        let threshold = (mean + sd).max(0.5);
        for k in 1..bars.len() {
            let local_peak =
                novelty[k] >= novelty[k - 1] && novelty.get(k + 1).is_none_or(|n| novelty[k] >= *n);
            if novelty[k] > threshold && local_peak && k - cuts[cuts.len() - 1] >= 4 {
                cuts.push(k);
            }
        }
    }
    let spans: Vec<(usize, usize)> = cuts
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, cuts.get(i + 1).copied().unwrap_or(bars.len())))
        .collect();
    let energies: Vec<f64> = spans
        .iter()
        .map(|&(a, b)| bar_energy[a..b].iter().sum::<f64>() / (b - a) as f64)
        .collect();
    let loudest = energies.iter().copied().fold(0.0, f64::max).max(1e-9);
    let last = spans.len() - 1;
    spans
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| {
            let relative = energies[i] / loudest;
            let quarter = ((b - a) / 4).max(1);
            let rising = b - a >= 4
                && bar_energy[b - quarter..b].iter().sum::<f64>()
                    > 1.3 * bar_energy[a..a + quarter].iter().sum::<f64>();
            let previous = i.checked_sub(1).map(|p| energies[p] / loudest);
            let kind = if spans.len() > 1 && i == 0 && relative < 0.6 {
                SectionKind::Intro
            } else if spans.len() > 1 && i == last && relative < 0.6 {
                SectionKind::Outro
            } else if rising {
                SectionKind::Build
            } else if relative >= 0.85 && previous.is_some_and(|p| p < relative * 0.85) {
                SectionKind::Drop
            } else if previous.is_some_and(|p| relative < 0.7 * p) {
                SectionKind::Breakdown
            } else {
                SectionKind::Main
            };
            Section {
                start: if i == 0 { 0.0 } else { to_time(bars[a].0) },
                end: if i == last {
                    duration
                } else {
                    to_time(bars[b].0)
                },
                kind,
                energy: energies[i].min(1.0),
            }
        })
        .collect()
}
