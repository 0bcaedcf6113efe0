//! Per-frame features, computed as the samples stream in: one windowed FFT per frame
//! (realfft), aubio's spectral-flux descriptor on its log-compressed magnitudes (the novelty
//! the tempo and beats are found in), loudness, and coarse log band energies. Onsets are
//! picked from the novelty once the track is in.

use crate::decode::ANALYSIS_RATE;
use crate::error::AudioError;
use aubio_rs::vec::CVec;
use aubio_rs::{OnsetMode, SpecDesc};
use realfft::RealToComplex;
use realfft::num_complex::Complex32;
use std::sync::Arc;
use wide::f32x8;

/// Samples between frames (11.6 ms at the analysis rate).
pub const HOP: usize = 256;
/// Analysis window.
pub const WIN: usize = 1024;
/// Coarse spectral bands (low to high), for harmonic change and section novelty.
pub const BANDS: usize = 8;
const BAND_EDGES_HZ: [f32; BANDS + 1] = [
    30.0, 120.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 11_025.0,
];
/// aubio's compression for spectral flux: magnitudes become ln(1 + 10·m).
const COMPRESSION: f32 = 10.0;
/// Frames quieter than about −70 dBFS hold no onset (aubio's silence gate).
const ONSET_SILENCE_RMS: f32 = 3.2e-4;
/// Onsets closer than this are one onset (aubio's minimum inter-onset interval).
const MIN_ONSET_GAP_SECONDS: f64 = 0.04;

/// The frame-rate features of a whole track: a few floats per 11.6 ms, so an hour is a few MB.
#[derive(Debug, Default, Clone)]
pub struct Features {
    /// aubio's spectral-flux onset detection function, per frame.
    pub novelty: Vec<f32>,
    /// RMS loudness per frame.
    pub rms: Vec<f32>,
    /// Log band energies per frame.
    pub bands: Vec<[f32; BANDS]>,
    /// Onset times in seconds, picked from the novelty.
    pub onsets: Vec<f64>,
    /// Samples analysed.
    pub samples: u64,
}

impl Features {
    /// Seconds per frame.
    pub fn frame_seconds() -> f64 {
        HOP as f64 / f64::from(ANALYSIS_RATE)
    }
}

/// Consumes mono samples at the analysis rate and accumulates [`Features`].
pub struct FeatureExtractor {
    fft: Arc<dyn RealToComplex<f32>>,
    flux: SpecDesc,
    window: Vec<f32>,
    /// The last [`WIN`] samples, oldest first.
    history: Vec<f32>,
    pending: Vec<f32>,
    frame_in: Vec<f32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
    norm: Vec<f32>,
    phase: Vec<f32>,
    band_bins: [(usize, usize); BANDS],
    features: Features,
    /// The first failure: the decoder's sink cannot return one, so it waits for `finish`.
    failure: Option<AudioError>,
}

impl FeatureExtractor {
    /// A fresh extractor.
    pub fn new() -> Result<Self, AudioError> {
        let flux = SpecDesc::new(OnsetMode::SpecFlux, WIN)
            .map_err(|e| AudioError::Analysis(format!("aubio: {e}")))?;
        let fft = realfft::RealFftPlanner::<f32>::new().plan_fft_forward(WIN);
        let bin_hz = ANALYSIS_RATE as f32 / WIN as f32;
        let mut band_bins = [(0, 0); BANDS];
        for (b, bins) in band_bins.iter_mut().enumerate() {
            let lo = (BAND_EDGES_HZ[b] / bin_hz).ceil() as usize;
            let hi = ((BAND_EDGES_HZ[b + 1] / bin_hz).floor() as usize).min(WIN / 2);
            *bins = (lo, hi.max(lo + 1));
        }
        // aubio's "hanningz" window, as its phase vocoder applies it.
        let window = (0..WIN)
            .map(|i| 0.5 * (1.0 - (std::f32::consts::TAU * i as f32 / WIN as f32).cos()))
            .collect();
        Ok(Self {
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            frame_in: fft.make_input_vec(),
            fft,
            flux,
            window,
            history: vec![0.0; WIN],
            pending: Vec::with_capacity(HOP * 4),
            norm: vec![0.0; WIN / 2 + 1],
            phase: vec![0.0; WIN / 2 + 1],
            band_bins,
            features: Features::default(),
            failure: None,
        })
    }

    /// Feeds samples. After a failure the rest is ignored and [`Self::finish`] reports it.
    pub fn push(&mut self, samples: &[f32]) {
        if self.failure.is_some() {
            return;
        }
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= HOP {
            let mut hop = [0.0f32; HOP];
            hop.copy_from_slice(&self.pending[start..start + HOP]);
            if let Err(e) = self.frame(&hop) {
                self.failure = Some(e);
                return;
            }
            start += HOP;
        }
        self.pending.drain(..start);
    }

    fn frame(&mut self, hop: &[f32; HOP]) -> Result<(), AudioError> {
        // Clipped or non-finite input must not poison the analysis.
        let mut clean = [0.0f32; HOP];
        for (c, s) in clean.iter_mut().zip(hop) {
            *c = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        self.history.copy_within(HOP.., 0);
        self.history[WIN - HOP..].copy_from_slice(&clean);
        for ((x, h), w) in self
            .frame_in
            .iter_mut()
            .zip(&self.history)
            .zip(&self.window)
        {
            *x = h * w;
        }
        self.fft
            .process_with_scratch(&mut self.frame_in, &mut self.spectrum, &mut self.scratch)
            .map_err(|e| AudioError::Analysis(format!("fft: {e}")))?;
        let mut bands = [0.0f32; BANDS];
        for (band, &(lo, hi)) in bands.iter_mut().zip(&self.band_bins) {
            let e: f32 = self.spectrum[lo..hi].iter().map(Complex32::norm_sqr).sum();
            *band = (1.0 + 100.0 * e).ln();
        }
        for (n, c) in self.norm.iter_mut().zip(&self.spectrum) {
            *n = c.norm_sqr();
        }
        compress_magnitudes(&mut self.norm);
        let spectrum = CVec::from_parts(self.norm.as_slice(), self.phase.as_slice())
            .map_err(|e| AudioError::Analysis(format!("aubio: {e}")))?;
        let novelty = self
            .flux
            .do_result(spectrum)
            .map_err(|e| AudioError::Analysis(format!("aubio: {e}")))?;
        self.features.novelty.push(novelty.max(0.0));
        let energy: f32 = clean.iter().map(|s| s * s).sum::<f32>() / HOP as f32;
        self.features.rms.push(energy.sqrt());
        self.features.bands.push(bands);
        self.features.samples += HOP as u64;
        Ok(())
    }

    /// The features of everything pushed (a final partial frame is zero-padded), or the first
    /// failure.
    pub fn finish(mut self) -> Result<Features, AudioError> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        let rest = self.pending.len();
        if rest > 0 {
            let mut hop = [0.0f32; HOP];
            hop[..rest].copy_from_slice(&self.pending);
            self.frame(&hop)?;
            self.features.samples -= (HOP - rest) as u64;
        }
        self.features.onsets = pick_onsets(&self.features.novelty, &self.features.rms);
        Ok(self.features)
    }
}

/// aubio's log compression of the magnitudes, from their squares, in place: ln(1 + λ·m).
/// Eight bins at a time: done one by one with libm, the logarithm was an eighth of the whole
/// analysis.
fn compress_magnitudes(squares: &mut [f32]) {
    let compress = |v: f32x8| (v.sqrt() * f32x8::splat(COMPRESSION) + f32x8::ONE).ln();
    let mut chunks = squares.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let lanes = f32x8::new(std::array::from_fn(|i| chunk[i]));
        chunk.copy_from_slice(&compress(lanes).to_array());
    }
    for v in chunks.into_remainder() {
        *v = (1.0 + COMPRESSION * v.sqrt()).ln();
    }
}

/// Onsets as aubio's peak picker finds them, offline: local maxima of the novelty above a
/// moving median plus a share of the moving mean, outside silence, at least 40 ms apart.
/// Times are those of the frame's newest samples, where the attack entered the window.
fn pick_onsets(novelty: &[f32], rms: &[f32]) -> Vec<f64> {
    const HALF: usize = 8;
    const THRESHOLD: f32 = 0.18;
    let frame = Features::frame_seconds();
    let mut onsets: Vec<f64> = Vec::new();
    let mut window = Vec::with_capacity(2 * HALF + 1);
    for t in 1..novelty.len().saturating_sub(1) {
        let v = novelty[t];
        if v <= novelty[t - 1] || v < novelty[t + 1] || rms[t] < ONSET_SILENCE_RMS {
            continue;
        }
        window.clear();
        window
            .extend_from_slice(&novelty[t.saturating_sub(HALF)..(t + HALF + 1).min(novelty.len())]);
        let mean = window.iter().sum::<f32>() / window.len() as f32;
        window.sort_by(f32::total_cmp);
        let median = window[window.len() / 2];
        if v <= median + THRESHOLD * mean || v <= 1e-6 {
            continue;
        }
        let time = t as f64 * frame;
        if onsets
            .last()
            .is_none_or(|last| time - last >= MIN_ONSET_GAP_SECONDS)
        {
            onsets.push(time);
        }
    }
    onsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_matches_the_scalar_formula() {
        // Bins of a real spectrum: silence, the smallest normal floats, and loud peaks; 37
        // values so that the lanes and the remainder are both used.
        let magnitudes: Vec<f32> = (0..37)
            .map(|i| match i {
                0 => 0.0,
                1 => f32::MIN_POSITIVE,
                _ => 1e-6 * 1.7f32.powi(i),
            })
            .collect();
        let mut values: Vec<f32> = magnitudes.iter().map(|m| m * m).collect();
        compress_magnitudes(&mut values);
        for (m, v) in magnitudes.iter().zip(&values) {
            let expected = (1.0 + COMPRESSION * m).ln();
            assert!(
                (v - expected).abs() <= 1e-6 * expected.max(1.0),
                "ln(1 + 10·{m}) = {expected}, got {v}"
            );
        }
    }
}
