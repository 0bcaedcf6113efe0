//! Streaming decode: any supported file → mono samples at the analysis rate, in chunks, so
//! memory stays bounded however long the file is.

use crate::error::AudioError;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// The rate the analysis runs at.
pub const ANALYSIS_RATE: u32 = 22_050;
const RESAMPLER_CHUNK: usize = 4096;

/// What the decoder learned about the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceInfo {
    /// The source's sample rate.
    pub sample_rate: u32,
    /// The source's channel count (downmixed for analysis).
    pub channels: usize,
    /// Decoded length in seconds.
    pub duration: f64,
}

/// Converts a stream of mono blocks at any rate into blocks at [`ANALYSIS_RATE`], with the
/// resampler's delay removed so that times stay exact.
pub struct ToAnalysisRate {
    resampler: Option<Fft<f32>>,
    pending: Vec<f32>,
    output: Vec<f32>,
    skip: usize,
    received: u64,
    emitted: u64,
}

impl ToAnalysisRate {
    /// A converter from `rate`.
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        if !(8_000..=192_000).contains(&rate) {
            return Err(AudioError::SampleRate(rate));
        }
        let resampler = if rate == ANALYSIS_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    rate as usize,
                    ANALYSIS_RATE as usize,
                    RESAMPLER_CHUNK,
                    1,
                    FixedSync::Input,
                )
                .map_err(|e| AudioError::Analysis(format!("resampler: {e}")))?,
            )
        };
        let output = vec![0.0; resampler.as_ref().map_or(0, |r| r.output_frames_max())];
        let skip = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            resampler,
            pending: Vec::new(),
            output,
            skip,
            received: 0,
            emitted: 0,
        })
    }

    /// Feeds samples; calls `sink` with whatever is ready at the analysis rate.
    pub fn push(
        &mut self,
        samples: &[f32],
        sink: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        self.received += samples.len() as u64;
        self.feed(samples, u64::MAX, sink)
    }

    fn feed(
        &mut self,
        samples: &[f32],
        limit: u64,
        sink: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        let Some(resampler) = &mut self.resampler else {
            sink(samples);
            return Ok(());
        };
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= resampler.input_frames_next() {
            let need = resampler.input_frames_next();
            let input = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
                .map_err(|e| AudioError::Analysis(format!("resampler input: {e}")))?;
            let capacity = self.output.len();
            let mut output = InterleavedSlice::new_mut(&mut self.output, 1, capacity)
                .map_err(|e| AudioError::Analysis(format!("resampler output: {e}")))?;
            let (read, written) = resampler
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| AudioError::Analysis(format!("resampling: {e}")))?;
            start += read;
            let skipped = self.skip.min(written);
            self.skip -= skipped;
            let room = limit
                .saturating_sub(self.emitted)
                .min((written - skipped) as u64) as usize;
            self.emitted += room as u64;
            sink(&self.output[skipped..skipped + room]);
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the tail: emits exactly as many samples as the input's length implies.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        let Some(resampler) = &self.resampler else {
            return Ok(());
        };
        let target = (self.received as f64 * resampler.resample_ratio()).round() as u64;
        let silence = vec![0.0; RESAMPLER_CHUNK];
        while self.emitted < target {
            self.feed(&silence, target, sink)?;
        }
        Ok(())
    }
}

/// Decodes `source` (an open file or any readable, seekable media) and streams mono samples
/// at [`ANALYSIS_RATE`] into `sink`. `extension` helps format detection.
pub fn decode(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    sink: &mut dyn FnMut(&[f32]),
) -> Result<SourceInfo, AudioError> {
    // A malformed file must never take the process down, whatever a codec does with it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_inner(source, extension, sink)
    }))
    .unwrap_or_else(|_| Err(AudioError::Corrupt("the decoder rejected the data".into())))
}

fn decode_inner(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    sink: &mut dyn FnMut(&[f32]),
) -> Result<SourceInfo, AudioError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                AudioError::Io(io)
            }
            other => AudioError::Unsupported(other.to_string()),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(AudioError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(AudioError::NoAudioTrack)?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::Unsupported(e.to_string()))?;

    let mut converter: Option<(ToAnalysisRate, u32)> = None;
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let mut channels = 0;
    let mut frames: u64 = 0;
    let mut decode_errors = 0u32;
    let mut decoded_any = false;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A truncated file ends early: keep what was decoded.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) if decoded_any => {
                tracing::warn!(error = %e, "stopping at a damaged packet");
                break;
            }
            Err(e) => return Err(AudioError::Corrupt(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(SymphoniaError::DecodeError(e)) => {
                decode_errors += 1;
                if decode_errors > 64 && !decoded_any {
                    return Err(AudioError::Corrupt(e.to_string()));
                }
                continue;
            }
            Err(e) => return Err(AudioError::Corrupt(e.to_string())),
        };
        let rate = buffer.spec().rate();
        channels = buffer.spec().channels().count().max(1);
        let n = buffer.frames();
        if n == 0 {
            continue;
        }
        decoded_any = true;
        // Plane by plane, the downmix is a sum of slices the compiler vectorises.
        buffer.copy_to_vecs_planar(&mut planes);
        mono.clear();
        mono.resize(n, 0.0);
        for plane in &planes {
            mono.iter_mut().zip(plane).for_each(|(m, s)| *m += s);
        }
        let scale = 1.0 / planes.len().max(1) as f32;
        mono.iter_mut().for_each(|m| *m *= scale);
        frames += n as u64;
        let (conv, conv_rate) = match &mut converter {
            Some(c) => c,
            None => converter.insert((ToAnalysisRate::new(rate)?, rate)),
        };
        if *conv_rate != rate {
            return Err(AudioError::Unsupported(
                "the sample rate changes mid-stream".into(),
            ));
        }
        conv.push(&mono, sink)?;
    }
    let Some((mut conv, rate)) = converter else {
        return Err(AudioError::Corrupt("no audio could be decoded".into()));
    };
    conv.finish(sink)?;
    Ok(SourceInfo {
        sample_rate: rate,
        channels,
        duration: frames as f64 / f64::from(rate),
    })
}
