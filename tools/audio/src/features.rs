//! Per-frame features from aubio: the spectral-flux novelty, onsets, loudness and a coarse
//! spectrum, computed as the samples stream in.

use crate::decode::ANALYSIS_RATE;
use crate::error::AudioError;
use aubio_rs::vec::CVecMut;
use aubio_rs::{Onset, OnsetMode, PVoc};

/// Samples between frames (11.6 ms at the analysis rate).
pub const HOP: usize = 256;
/// Analysis window.
pub const WIN: usize = 1024;
/// Coarse spectral bands (low to high), for harmonic change and section novelty.
pub const BANDS: usize = 8;
const BAND_EDGES_HZ: [f32; BANDS + 1] = [
    30.0, 120.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 11_025.0,
];

/// The frame-rate features of a whole track: a few floats per 11.6 ms, so an hour is a few MB.
#[derive(Debug, Default, Clone)]
pub struct Features {
    /// aubio's spectral-flux onset detection function, per frame.
    pub novelty: Vec<f32>,
    /// RMS loudness per frame.
    pub rms: Vec<f32>,
    /// Log band energies per frame.
    pub bands: Vec<[f32; BANDS]>,
    /// aubio's onset times in seconds.
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
    onset: Onset,
    pvoc: PVoc,
    pending: Vec<f32>,
    norm: Vec<f32>,
    phase: Vec<f32>,
    band_bins: [(usize, usize); BANDS],
    features: Features,
}

impl FeatureExtractor {
    /// A fresh extractor.
    pub fn new() -> Result<Self, AudioError> {
        let fail = |e: aubio_rs::Error| AudioError::Analysis(format!("aubio: {e}"));
        let onset = Onset::new(OnsetMode::SpecFlux, WIN, HOP, ANALYSIS_RATE)
            .map_err(fail)?
            .with_silence(-70.0)
            .with_minioi_ms(40.0);
        let pvoc = PVoc::new(WIN, HOP).map_err(fail)?;
        let bin_hz = ANALYSIS_RATE as f32 / WIN as f32;
        let mut band_bins = [(0, 0); BANDS];
        for (b, bins) in band_bins.iter_mut().enumerate() {
            let lo = (BAND_EDGES_HZ[b] / bin_hz).ceil() as usize;
            let hi = ((BAND_EDGES_HZ[b + 1] / bin_hz).floor() as usize).min(WIN / 2);
            *bins = (lo, hi.max(lo + 1));
        }
        Ok(Self {
            onset,
            pvoc,
            pending: Vec::with_capacity(HOP * 4),
            norm: vec![0.0; WIN / 2 + 1],
            phase: vec![0.0; WIN / 2 + 1],
            band_bins,
            features: Features::default(),
        })
    }

    /// Feeds samples.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= HOP {
            let mut hop = [0.0f32; HOP];
            hop.copy_from_slice(&self.pending[start..start + HOP]);
            self.frame(&hop)?;
            start += HOP;
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn frame(&mut self, hop: &[f32; HOP]) -> Result<(), AudioError> {
        let fail = |e: aubio_rs::Error| AudioError::Analysis(format!("aubio: {e}"));
        // Clipped or non-finite input must not poison the analysis.
        let mut clean = [0.0f32; HOP];
        for (c, s) in clean.iter_mut().zip(hop) {
            *c = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        let detected = self.onset.do_result(clean.as_slice()).map_err(fail)?;
        if detected > 0.0 {
            self.features
                .onsets
                .push(f64::from(self.onset.get_last_s()));
        }
        self.features
            .novelty
            .push(self.onset.get_descriptor().max(0.0));
        let energy: f32 = clean.iter().map(|s| s * s).sum::<f32>() / HOP as f32;
        self.features.rms.push(energy.sqrt());
        let spectrum = CVecMut::from_parts(self.norm.as_mut_slice(), self.phase.as_mut_slice())
            .map_err(fail)?;
        self.pvoc.do_(clean.as_slice(), spectrum).map_err(fail)?;
        let mut bands = [0.0f32; BANDS];
        for (band, &(lo, hi)) in bands.iter_mut().zip(&self.band_bins) {
            let e: f32 = self.norm[lo..hi].iter().map(|m| m * m).sum();
            *band = (1.0 + 100.0 * e).ln();
        }
        self.features.bands.push(bands);
        self.features.samples += HOP as u64;
        Ok(())
    }

    /// The features of everything pushed (a final partial frame is zero-padded).
    pub fn finish(mut self) -> Result<Features, AudioError> {
        let rest = self.pending.len();
        if rest > 0 {
            let mut hop = [0.0f32; HOP];
            hop[..rest].copy_from_slice(&self.pending);
            self.frame(&hop)?;
            self.features.samples -= (HOP - rest) as u64;
        }
        Ok(self.features)
    }
}
