//! The BeatGrid: everything the planner needs to cut on the music.

use serde::{Deserialize, Serialize};

/// The rhythmic map of a piece of music. All times are in seconds from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeatGrid {
    /// Length of the audio.
    pub duration: f64,
    /// The main tempo in beats per minute (0 when no beat was found).
    pub bpm: f64,
    /// How sure the tempo is, 0 to 1 (0: no pulse found).
    pub tempo_confidence: f64,
    /// The tempo over time where it changes: `(time, bpm)` points, the first at 0.
    pub tempo_curve: Vec<TempoPoint>,
    /// Beats per bar: 4 or 3 (0 when no beat was found).
    pub meter: u8,
    /// Beat times.
    pub beats: Vec<f64>,
    /// Bar starts (a subset of `beats`).
    pub downbeats: Vec<f64>,
    /// Note onsets (any attack, not only beats).
    pub onsets: Vec<f64>,
    /// Loudness of each beat (from that beat to the next), 0 to 1.
    pub beat_energy: Vec<f64>,
    /// Loudness at a fixed rate, 0 to 1.
    pub energy: EnergyCurve,
    /// Where the music changes, covering the whole duration.
    pub sections: Vec<Section>,
}

/// One point of the tempo curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TempoPoint {
    /// When this tempo starts.
    pub time: f64,
    /// Beats per minute from here on.
    pub bpm: f64,
}

/// Loudness sampled at a fixed rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyCurve {
    /// Values per second.
    pub rate: f64,
    /// Normalised RMS loudness, 0 to 1.
    pub values: Vec<f64>,
}

/// A stretch of music with one character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Start (a downbeat, or 0).
    pub start: f64,
    /// End (the next section's start, or the duration).
    pub end: f64,
    /// What the stretch does.
    pub kind: SectionKind,
    /// Mean loudness, 0 to 1.
    pub energy: f64,
}

/// The character of a section, from its energy and how it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// The quiet opening.
    Intro,
    /// Energy rising towards a peak.
    Build,
    /// A high-energy peak.
    Drop,
    /// A quieter stretch after a louder one.
    Breakdown,
    /// The body of the piece.
    Main,
    /// The quiet ending.
    Outro,
}

impl BeatGrid {
    /// A grid for audio with no pulse (silence, a drone): no beats, one section.
    pub fn without_beats(duration: f64, onsets: Vec<f64>, energy: EnergyCurve) -> Self {
        let mean = if energy.values.is_empty() {
            0.0
        } else {
            energy.values.iter().sum::<f64>() / energy.values.len() as f64
        };
        Self {
            duration,
            bpm: 0.0,
            tempo_confidence: 0.0,
            tempo_curve: Vec::new(),
            meter: 0,
            beats: Vec::new(),
            downbeats: Vec::new(),
            onsets,
            beat_energy: Vec::new(),
            energy,
            sections: vec![Section {
                start: 0.0,
                end: duration,
                kind: SectionKind::Main,
                energy: mean,
            }],
        }
    }
}
