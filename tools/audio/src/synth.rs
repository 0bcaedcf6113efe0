//! Synthesised music with known beats: drums, bass and chords at any tempo and meter.
//!
//! The tests score the beat tracker against these tracks, the bench compares it with other
//! trackers on them, and the pipeline uses them as a music bed when the person brings none.

use std::f64::consts::TAU;

/// What to synthesise.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpec {
    /// Tempo in beats per minute.
    pub bpm: f64,
    /// Length in bars.
    pub bars: u32,
    /// Beats per bar: 3 or 4.
    pub meter: u8,
    /// Delay of the off-beat eighth notes, as a fraction of an eighth (0 = straight, 0.33 ≈ triplet swing).
    pub swing: f64,
    /// Kick and bass also hit off the beat.
    pub syncopation: bool,
    /// Drums at half time: kick on 1, snare on 3.
    pub half_time: bool,
    /// Bars at the start with only soft chords (no drums, no bass).
    pub quiet_intro_bars: u32,
    /// From this bar on, this tempo.
    pub tempo_change: Option<(u32, f64)>,
    /// Sample rate of the output.
    pub sample_rate: u32,
    /// Seed for the noise in the drums and the chord choice.
    pub seed: u64,
}

impl TrackSpec {
    /// A plain 4/4 track at `bpm`, long enough for `seconds`.
    pub fn steady(bpm: f64, seconds: f64) -> Self {
        let bars = ((seconds * bpm / 60.0 / 4.0).ceil() as u32).max(1);
        Self {
            bpm,
            bars,
            meter: 4,
            swing: 0.0,
            syncopation: false,
            half_time: false,
            quiet_intro_bars: 0,
            tempo_change: None,
            sample_rate: 22_050,
            seed: 1,
        }
    }
}

/// A synthesised track and its ground truth.
#[derive(Debug, Clone)]
pub struct SynthTrack {
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
    /// Their rate.
    pub sample_rate: u32,
    /// Beat times in seconds.
    pub beats: Vec<f64>,
    /// Bar starts in seconds.
    pub downbeats: Vec<f64>,
}

struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Renders a track. Deterministic for a spec.
pub fn render(spec: &TrackSpec) -> SynthTrack {
    let meter = if spec.meter == 3 { 3 } else { 4 };
    let rate = f64::from(spec.sample_rate.max(8_000));
    // Beat times, integrating the tempo bar by bar.
    let mut beats = Vec::new();
    let mut downbeats = Vec::new();
    let mut t = 0.0;
    for bar in 0..spec.bars {
        let bpm = match spec.tempo_change {
            Some((from, bpm)) if bar >= from => bpm,
            _ => spec.bpm,
        };
        let period = 60.0 / bpm.clamp(20.0, 400.0);
        downbeats.push(t);
        for _ in 0..meter {
            beats.push(t);
            t += period;
        }
    }
    let total = t + 1.0;
    let mut out = vec![0.0f64; (total * rate) as usize];
    let mut noise = Noise(spec.seed);
    // Chord roots (Hz) cycling per bar; chosen by the seed.
    let progressions = [
        [110.0, 87.31, 130.81, 98.0],
        [130.81, 110.0, 87.31, 98.0],
        [98.0, 130.81, 110.0, 87.31],
    ];
    let roots = progressions[(spec.seed % 3) as usize];

    for (i, &beat) in beats.iter().enumerate() {
        let bar = i / meter;
        let pos = i % meter;
        let period = beats.get(i + 1).map_or(60.0 / spec.bpm, |next| next - beat);
        let intro = (bar as u32) < spec.quiet_intro_bars;
        let root = roots[bar % roots.len()];
        if pos == 0 {
            let bar_len = period * meter as f64;
            let gain = if intro { 0.08 } else { 0.12 };
            for ratio in [1.0, 1.26, 1.5] {
                tone(
                    &mut out,
                    rate,
                    beat,
                    bar_len,
                    root * 2.0 * ratio,
                    gain,
                    0.02,
                    0.6,
                );
            }
        }
        if intro {
            continue;
        }
        // Half time and 3/4 kick once a bar; 4/4 kicks on 1 and 3.
        let kick_here = if spec.half_time || meter == 3 {
            pos == 0
        } else {
            pos % 2 == 0
        };
        let snare_here = if spec.half_time {
            pos == 2
        } else if meter == 3 {
            pos > 0
        } else {
            pos % 2 == 1
        };
        if kick_here {
            kick(&mut out, rate, beat);
            tone(
                &mut out,
                rate,
                beat,
                period * 0.9,
                root / 2.0,
                0.25,
                0.005,
                0.5,
            );
        }
        if snare_here {
            if meter == 3 {
                hat(&mut out, rate, beat, 0.35, 0.08, &mut noise);
            } else {
                snare(&mut out, rate, beat, &mut noise);
            }
        }
        if spec.syncopation && meter == 4 && pos == 2 {
            let and = beat + period * 0.5;
            kick(&mut out, rate, and);
            tone(
                &mut out,
                rate,
                and,
                period * 0.4,
                root / 2.0,
                0.2,
                0.005,
                0.5,
            );
        }
        hat(&mut out, rate, beat, 0.25, 0.04, &mut noise);
        if !spec.half_time {
            let off = beat + period * 0.5 * (1.0 + spec.swing.clamp(0.0, 0.5));
            hat(&mut out, rate, off, 0.12, 0.03, &mut noise);
        }
    }
    let peak = out.iter().fold(0.0f64, |m, s| m.max(s.abs())).max(1e-9);
    let samples = out.iter().map(|s| (s / peak * 0.89) as f32).collect();
    SynthTrack {
        samples,
        sample_rate: rate as u32,
        beats,
        downbeats,
    }
}

impl SynthTrack {
    /// Writes the track as a 16-bit mono WAV file (the music bed's file format).
    pub fn write_wav(&self, path: &std::path::Path) -> Result<(), hound::Error> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: self.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec)?;
        for &s in &self.samples {
            writer.write_sample((s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)?;
        }
        writer.finalize()
    }
}

#[allow(clippy::too_many_arguments)]
fn tone(
    out: &mut [f64],
    rate: f64,
    start: f64,
    len: f64,
    freq: f64,
    gain: f64,
    attack: f64,
    decay: f64,
) {
    let first = (start * rate) as usize;
    let n = (len * rate) as usize;
    for k in 0..n {
        let Some(slot) = out.get_mut(first + k) else {
            break;
        };
        let t = k as f64 / rate;
        let env = (t / attack).min(1.0) * (-t / decay).exp();
        // A few harmonics make the tone register in a spectrum as a pitched note.
        let wave = (TAU * freq * t).sin()
            + 0.5 * (TAU * 2.0 * freq * t).sin()
            + 0.25 * (TAU * 3.0 * freq * t).sin();
        *slot += gain * env * wave;
    }
}

fn kick(out: &mut [f64], rate: f64, start: f64) {
    let first = (start * rate) as usize;
    let mut phase = 0.0;
    for k in 0..(0.3 * rate) as usize {
        let Some(slot) = out.get_mut(first + k) else {
            break;
        };
        let t = k as f64 / rate;
        let freq = 50.0 + 90.0 * (-t / 0.03).exp();
        phase += TAU * freq / rate;
        *slot += 0.9 * (-t / 0.12).exp() * phase.sin();
    }
}

fn snare(out: &mut [f64], rate: f64, start: f64, noise: &mut Noise) {
    let first = (start * rate) as usize;
    for k in 0..(0.2 * rate) as usize {
        let Some(slot) = out.get_mut(first + k) else {
            break;
        };
        let t = k as f64 / rate;
        *slot += 0.5 * (-t / 0.06).exp() * noise.next()
            + 0.3 * (-t / 0.05).exp() * (TAU * 190.0 * t).sin();
    }
}

fn hat(out: &mut [f64], rate: f64, start: f64, gain: f64, decay: f64, noise: &mut Noise) {
    let first = (start * rate) as usize;
    let mut last = 0.0;
    for k in 0..(decay * 4.0 * rate) as usize {
        let Some(slot) = out.get_mut(first + k) else {
            break;
        };
        let t = k as f64 / rate;
        let n = noise.next();
        // A first difference keeps the highs: a crude high-pass.
        *slot += gain * (-t / decay).exp() * (n - last);
        last = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ground_truth_follows_the_spec() {
        let track = render(&TrackSpec::steady(120.0, 10.0));
        assert_eq!(track.beats.len(), 20);
        assert_eq!(track.downbeats.len(), 5);
        assert!((track.beats[1] - 0.5).abs() < 1e-9);
        assert!(track.samples.len() as f64 / 22_050.0 > 10.0);
        assert!(track.samples.iter().all(|s| s.abs() <= 0.9));

        let change = TrackSpec {
            tempo_change: Some((2, 60.0)),
            ..TrackSpec::steady(120.0, 8.0)
        };
        let track = render(&change);
        assert!((track.beats[8] - 4.0).abs() < 1e-9);
        assert!((track.beats[9] - 5.0).abs() < 1e-9);

        let waltz = TrackSpec {
            meter: 3,
            bars: 4,
            ..TrackSpec::steady(90.0, 8.0)
        };
        assert_eq!(render(&waltz).beats.len(), 12);
    }

    #[test]
    fn rendering_is_deterministic() {
        let spec = TrackSpec {
            swing: 0.3,
            syncopation: true,
            ..TrackSpec::steady(100.0, 6.0)
        };
        assert_eq!(render(&spec).samples, render(&spec).samples);
    }
}
