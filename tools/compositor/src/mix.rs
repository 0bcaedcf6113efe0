//! The soundtrack mix: tracks placed, faded and gained, music ducked under narration.

use crate::media::{SAMPLE_RATE, StereoAudio};
use crate::timeline::{AudioRole, AudioTrack, Ducking};

/// Narration louder than this (RMS over a 10 ms window) counts as speaking.
const SPEECH_THRESHOLD: f32 = 0.01;
/// Samples per analysis window of the ducking side chain.
const WINDOW: usize = SAMPLE_RATE as usize / 100;

/// A track decoded and ready to mix.
pub(crate) struct PreparedTrack<'a> {
    pub spec: &'a AudioTrack,
    pub audio: &'a StereoAudio,
}

/// Mixes the tracks into `frames` stereo sample frames of interleaved float.
pub(crate) fn mix(
    tracks: &[PreparedTrack<'_>],
    ducking: Option<Ducking>,
    frames: usize,
) -> Vec<f32> {
    let mut music = vec![0.0f32; frames * 2];
    let mut rest = vec![0.0f32; frames * 2];
    let mut narration = vec![0.0f32; frames * 2];
    for track in tracks {
        let target = match track.spec.role {
            AudioRole::Music => &mut music,
            AudioRole::Narration => &mut narration,
            AudioRole::Effect => &mut rest,
        };
        place(track, target, frames);
    }
    if let Some(ducking) = ducking {
        let gains = duck_gains(&narration, ducking, frames);
        for (frame, gain) in gains.iter().enumerate() {
            music[2 * frame] *= gain;
            music[2 * frame + 1] *= gain;
        }
    }
    music
        .iter()
        .zip(&rest)
        .zip(&narration)
        .map(|((a, b), c)| (a + b + c).clamp(-1.0, 1.0))
        .collect()
}

fn place(track: &PreparedTrack<'_>, target: &mut [f32], frames: usize) {
    let spec = track.spec;
    let gain = 10f64.powf(spec.gain_db / 20.0) as f32;
    let offset = (spec.offset * SAMPLE_RATE as f64).round() as usize;
    let length = track.audio.frames().min(frames.saturating_sub(offset));
    let fade_in = (spec.fade_in * SAMPLE_RATE as f64) as usize;
    let fade_out = (spec.fade_out * SAMPLE_RATE as f64) as usize;
    for index in 0..length {
        let mut envelope = gain;
        if index < fade_in {
            envelope *= index as f32 / fade_in as f32;
        }
        let remaining = length - index;
        if remaining < fade_out {
            envelope *= remaining as f32 / fade_out as f32;
        }
        let out = offset + index;
        target[2 * out] += track.audio.samples[2 * index] * envelope;
        target[2 * out + 1] += track.audio.samples[2 * index + 1] * envelope;
    }
}

/// Per-sample music gain: `amount_db` while narration speaks, eased in and out over the attack
/// and release times.
fn duck_gains(narration: &[f32], ducking: Ducking, frames: usize) -> Vec<f32> {
    let ducked = 10f64.powf(ducking.amount_db / 20.0) as f32;
    let window_seconds = WINDOW as f32 / SAMPLE_RATE as f32;
    let coefficient = |seconds: f64| {
        if seconds <= 0.0 {
            1.0
        } else {
            (window_seconds / seconds as f32).min(1.0)
        }
    };
    let (attack, release) = (coefficient(ducking.attack), coefficient(ducking.release));
    let mut gains = Vec::with_capacity(frames);
    let mut gain = 1.0f32;
    for start in (0..frames).step_by(WINDOW) {
        let end = (start + WINDOW).min(frames);
        let energy: f32 = narration[2 * start..2 * end]
            .iter()
            .map(|s| s * s)
            .sum::<f32>()
            / (2 * (end - start)) as f32;
        let speaking = energy.sqrt() > SPEECH_THRESHOLD;
        let target = if speaking { ducked } else { 1.0 };
        let step = if target < gain { attack } else { release };
        let next = gain + (target - gain) * step;
        for index in start..end {
            let t = (index - start) as f32 / (end - start) as f32;
            gains.push(gain + (next - gain) * t);
        }
        gain = next;
    }
    gains
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn track(role: AudioRole, offset: f64) -> AudioTrack {
        AudioTrack {
            path: PathBuf::from("x.wav"),
            role,
            offset,
            trim_start: 0.0,
            duration: None,
            gain_db: 0.0,
            fade_in: 0.0,
            fade_out: 0.0,
        }
    }

    fn constant(value: f32, seconds: f64) -> StereoAudio {
        StereoAudio {
            samples: vec![value; (seconds * SAMPLE_RATE as f64) as usize * 2],
        }
    }

    #[test]
    fn music_ducks_under_narration_and_comes_back() {
        let music = constant(0.5, 4.0);
        let voice = constant(0.1, 1.0);
        let (music_spec, voice_spec) = (
            track(AudioRole::Music, 0.0),
            track(AudioRole::Narration, 1.0),
        );
        let tracks = [
            PreparedTrack {
                spec: &music_spec,
                audio: &music,
            },
            PreparedTrack {
                spec: &voice_spec,
                audio: &voice,
            },
        ];
        let out = mix(&tracks, Some(Ducking::default()), 4 * SAMPLE_RATE as usize);
        let at = |seconds: f64| out[2 * (seconds * SAMPLE_RATE as f64) as usize];
        assert!(
            (at(0.5) - 0.5).abs() < 1e-3,
            "before narration: {}",
            at(0.5)
        );
        let ducked = 0.5 * 10f32.powf(-12.0 / 20.0) + 0.1;
        assert!(
            (at(1.8) - ducked).abs() < 0.01,
            "under narration: {} vs {ducked}",
            at(1.8)
        );
        assert!((at(3.9) - 0.5).abs() < 0.01, "after release: {}", at(3.9));
    }

    #[test]
    fn offsets_gains_and_fades_shape_the_track() {
        let audio = constant(0.5, 2.0);
        let mut spec = track(AudioRole::Effect, 1.0);
        spec.gain_db = -6.0206;
        spec.fade_in = 1.0;
        let out = mix(
            &[PreparedTrack {
                spec: &spec,
                audio: &audio,
            }],
            None,
            2 * SAMPLE_RATE as usize,
        );
        let at = |seconds: f64| out[2 * (seconds * SAMPLE_RATE as f64) as usize];
        assert_eq!(at(0.9), 0.0);
        assert!(
            (at(1.5) - 0.125).abs() < 1e-3,
            "half-way through the fade at half gain: {}",
            at(1.5)
        );
        assert_eq!(
            out.len(),
            4 * SAMPLE_RATE as usize,
            "cut at the timeline's end"
        );
    }
}
