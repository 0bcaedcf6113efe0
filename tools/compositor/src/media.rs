//! Reading media through the FFmpeg libraries: stills, video clips and audio.

use std::path::Path;
use std::sync::Once;

use ffmpeg::format::{Pixel, Sample, sample};
use ffmpeg::software::{resampling, scaling};
use ffmpeg::{ChannelLayout, frame, media};
use ffmpeg_next as ffmpeg;

use crate::picture::Frame;

/// The mix's sample rate: AAC at 48 kHz.
pub(crate) const SAMPLE_RATE: u32 = 48_000;

/// The longest side a still is kept at in memory; Ken Burns rarely needs more.
const MAX_STILL_SIDE: u32 = 4096;

/// Initialises FFmpeg once, with its logging kept to errors.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(error) = ffmpeg::init() {
            tracing::error!(%error, "FFmpeg failed to initialise");
        }
        // Failures reach the caller as typed errors; FFmpeg's own log would only repeat them.
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
    });
}

/// A decoded still in straight RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbaImage {
    /// A copy scaled to `width`×`height` with an area-averaging (or bicubic, when enlarging) filter.
    pub fn resized(&self, width: u32, height: u32) -> Result<RgbaImage, ffmpeg::Error> {
        if (width, height) == (self.width, self.height) {
            return Ok(self.clone());
        }
        let mut input = frame::Video::new(Pixel::RGBA, self.width, self.height);
        copy_into_frame(
            &mut input,
            0,
            &self.data,
            self.width as usize * 4,
            self.height as usize,
        );
        let flags = if width < self.width {
            scaling::Flags::AREA
        } else {
            scaling::Flags::BICUBIC
        };
        rgba_from_frame(&input, width, height, flags)
    }
}

/// A file opened with a decoder for its best stream of one kind.
struct OpenedStream {
    input: ffmpeg::format::context::Input,
    index: usize,
    decoder: ffmpeg::decoder::Decoder,
    /// Seconds per timestamp unit.
    time_base: f64,
    /// The stream's first timestamp, in seconds.
    start_time: f64,
}

fn open_best(path: &Path, kind: media::Type, missing: &str) -> Result<OpenedStream, String> {
    init();
    let input = ffmpeg::format::input(path).map_err(describe)?;
    let stream = input.streams().best(kind).ok_or(missing)?;
    let index = stream.index();
    let time_base = f64::from(stream.time_base());
    let start_time = match stream.start_time() {
        ffmpeg::ffi::AV_NOPTS_VALUE => 0.0,
        start => start as f64 * time_base,
    };
    let decoder = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(describe)?
        .decoder();
    Ok(OpenedStream {
        input,
        index,
        decoder,
        time_base,
        start_time,
    })
}

/// Decodes the first picture of an image file, shrunk to at most 4096 pixels a side.
pub(crate) fn decode_image(path: &Path) -> Result<RgbaImage, String> {
    let opened = open_best(path, media::Type::Video, "no picture in the file")?;
    let (mut input, index) = (opened.input, opened.index);
    let mut decoder = opened.decoder.video().map_err(describe)?;
    let mut decoded = frame::Video::empty();
    let mut got = false;
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        // A damaged packet can still be followed by a good one; the end decides.
        if decoder.send_packet(&packet).is_ok() && decoder.receive_frame(&mut decoded).is_ok() {
            got = true;
            break;
        }
    }
    if !got {
        decoder.send_eof().map_err(describe)?;
        decoder
            .receive_frame(&mut decoded)
            .map_err(|_| "no picture could be decoded".to_string())?;
    }
    let (width, height) = (decoded.width(), decoded.height());
    if width == 0 || height == 0 {
        return Err("the picture is empty".into());
    }
    let scale = (MAX_STILL_SIDE as f64 / width.max(height) as f64).min(1.0);
    let target = (
        ((width as f64 * scale).round() as u32).max(1),
        ((height as f64 * scale).round() as u32).max(1),
    );
    rgba_from_frame(&decoded, target.0, target.1, scaling::Flags::AREA).map_err(describe)
}

fn rgba_from_frame(
    frame: &frame::Video,
    width: u32,
    height: u32,
    flags: scaling::Flags,
) -> Result<RgbaImage, ffmpeg::Error> {
    let mut scaler = scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        Pixel::RGBA,
        width,
        height,
        flags,
    )?;
    let mut output = frame::Video::empty();
    scaler.run(frame, &mut output)?;
    let data = plane_bytes(&output, 0, width as usize * 4, height as usize);
    Ok(RgbaImage {
        width,
        height,
        data,
    })
}

/// Copies a plane out of a frame without its row padding.
fn plane_bytes(frame: &frame::Video, index: usize, row_bytes: usize, rows: usize) -> Vec<u8> {
    let stride = frame.stride(index);
    let data = frame.data(index);
    let mut bytes = Vec::with_capacity(row_bytes * rows);
    for row in 0..rows {
        bytes.extend_from_slice(&data[row * stride..row * stride + row_bytes]);
    }
    bytes
}

/// Copies tightly packed rows into a frame's plane, which may have padded rows.
pub(crate) fn copy_into_frame(
    frame: &mut frame::Video,
    index: usize,
    bytes: &[u8],
    row_bytes: usize,
    rows: usize,
) {
    let stride = frame.stride(index);
    let data = frame.data_mut(index);
    for row in 0..rows {
        data[row * stride..row * stride + row_bytes]
            .copy_from_slice(&bytes[row * row_bytes..(row + 1) * row_bytes]);
    }
}

/// Reads a video clip's pictures in order, by time.
pub(crate) struct ClipReader {
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Video,
    time_base: f64,
    start_time: f64,
    scaler: Option<scaling::Context>,
    current: Option<(f64, Frame)>,
    upcoming: Option<(f64, frame::Video)>,
    finished: bool,
}

impl ClipReader {
    /// Opens a clip; fails when it has no video stream or no decoder.
    pub fn open(path: &Path) -> Result<ClipReader, String> {
        let opened = open_best(path, media::Type::Video, "no video stream in the file")?;
        Ok(ClipReader {
            decoder: opened.decoder.video().map_err(describe)?,
            input: opened.input,
            stream_index: opened.index,
            time_base: opened.time_base,
            start_time: opened.start_time,
            scaler: None,
            current: None,
            upcoming: None,
            finished: false,
        })
    }

    /// Moves close to `seconds` (on a keyframe at or before it) so reading can start there.
    pub fn seek(&mut self, seconds: f64) -> Result<(), String> {
        if seconds <= 0.5 {
            return Ok(());
        }
        let target = ((seconds + self.start_time) * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
        self.input.seek(target, ..target).map_err(describe)?;
        self.decoder.flush();
        self.current = None;
        self.upcoming = None;
        self.finished = false;
        Ok(())
    }

    /// The picture showing at `seconds` into the clip: the last one that starts at or before
    /// it, the first one before the clip starts and the last one after it ends.
    pub fn picture_at(&mut self, seconds: f64) -> Result<&Frame, String> {
        loop {
            if let Some((time, _)) = &self.upcoming {
                if *time > seconds + 1e-6 && self.current.is_some() {
                    break;
                }
                let (time, frame) = self.upcoming.take().expect("checked above");
                let picture = self.convert(&frame)?;
                self.current = Some((time, picture));
            }
            if self.finished {
                break;
            }
            self.decode_next()?;
        }
        self.current
            .as_ref()
            .map(|(_, picture)| picture)
            .ok_or_else(|| "no picture could be decoded".to_string())
    }

    fn decode_next(&mut self) -> Result<(), String> {
        let mut decoded = frame::Video::empty();
        loop {
            if self.decoder.receive_frame(&mut decoded).is_ok() {
                let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0);
                self.upcoming = Some((pts as f64 * self.time_base - self.start_time, decoded));
                return Ok(());
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        // A damaged packet is skipped; the next keyframe recovers.
                        let _ = self.decoder.send_packet(&packet);
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    let _ = self.decoder.send_eof();
                    if self.decoder.receive_frame(&mut decoded).is_ok() {
                        let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0);
                        self.upcoming =
                            Some((pts as f64 * self.time_base - self.start_time, decoded));
                    } else {
                        self.finished = true;
                    }
                    return Ok(());
                }
                Err(error) => return Err(describe(error)),
            }
        }
    }

    fn convert(&mut self, frame: &frame::Video) -> Result<Frame, String> {
        let (width, height) = (frame.width(), frame.height());
        let stale = self.scaler.as_ref().is_none_or(|scaler| {
            let input = scaler.input();
            (input.format, input.width, input.height) != (frame.format(), width, height)
        });
        if stale {
            let scaler = scaling::Context::get(
                frame.format(),
                width,
                height,
                Pixel::YUV420P,
                width,
                height,
                scaling::Flags::BILINEAR,
            )
            .map_err(describe)?;
            self.scaler = Some(scaler);
        }
        let mut output = frame::Video::empty();
        self.scaler
            .as_mut()
            .expect("set above")
            .run(frame, &mut output)
            .map_err(describe)?;
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Ok(Frame {
            width: w,
            height: h,
            y: plane_bytes(&output, 0, w, h),
            u: plane_bytes(&output, 1, cw, ch),
            v: plane_bytes(&output, 2, cw, ch),
        })
    }
}

/// What a video clip holds, found by decoding it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipProbe {
    /// Its pictures' width, pixels.
    pub width: usize,
    /// Their height, pixels.
    pub height: usize,
    /// Where its last picture starts, seconds: the clip plays that long before it would hold.
    pub last_picture: f64,
}

/// Decodes `path` through to its last picture: a clip that cannot be read to its end (a
/// truncated or damaged download) fails here, not halfway through a render.
pub fn probe_clip(path: &Path) -> Result<ClipProbe, String> {
    let mut reader = ClipReader::open(path)?;
    let (width, height) = {
        let first = reader.picture_at(0.0)?;
        (first.width, first.height)
    };
    let mut last_picture = 0.0;
    loop {
        reader.decode_next()?;
        match reader.upcoming.take() {
            Some((time, _)) => last_picture = f64::max(last_picture, time),
            None if reader.finished => break,
            None => {}
        }
    }
    Ok(ClipProbe {
        width,
        height,
        last_picture,
    })
}

/// A clip's last picture, as RGBA rows.
#[derive(Debug, Clone, PartialEq)]
pub struct LastPicture {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Four bytes a pixel, row after row.
    pub rgba: Vec<u8>,
}

/// The last picture of the clip at `path`: where a clip that continues it starts.
pub fn last_picture(path: &Path) -> Result<LastPicture, String> {
    let mut reader = ClipReader::open(path)?;
    let mut last = None;
    loop {
        reader.decode_next()?;
        match reader.upcoming.take() {
            Some((_, frame)) => last = Some(frame),
            None if reader.finished => break,
            None => {}
        }
    }
    let frame = last.ok_or("no picture could be decoded")?;
    let picture = rgba_from_frame(
        &frame,
        frame.width(),
        frame.height(),
        scaling::Flags::BILINEAR,
    )
    .map_err(describe)?;
    Ok(LastPicture {
        width: picture.width,
        height: picture.height,
        rgba: picture.data,
    })
}

/// Decoded audio: interleaved stereo float at 48 kHz.
pub(crate) struct StereoAudio {
    pub samples: Vec<f32>,
}

impl StereoAudio {
    /// Length in sample frames.
    pub fn frames(&self) -> usize {
        self.samples.len() / 2
    }
}

/// Decodes the best audio stream of a file from `start` seconds, for at most `length` seconds,
/// as 48 kHz stereo.
pub(crate) fn decode_audio(
    path: &Path,
    start: f64,
    length: Option<f64>,
) -> Result<StereoAudio, String> {
    let opened = open_best(path, media::Type::Audio, "no audio stream in the file")?;
    let (mut input, index) = (opened.input, opened.index);
    let mut decoder = opened.decoder.audio().map_err(describe)?;
    let skip = (start.max(0.0) * SAMPLE_RATE as f64).round() as usize;
    let limit = length.map(|seconds| (seconds.max(0.0) * SAMPLE_RATE as f64).round() as usize);
    let mut resampler: Option<resampling::Context> = None;
    let mut collected = Vec::new();
    let mut decoded = frame::Audio::empty();
    let mut resampled = frame::Audio::empty();
    let append = |resampled: &frame::Audio, collected: &mut Vec<f32>| {
        let samples = resampled.samples();
        if samples > 0 {
            collected.extend(
                resampled.plane::<(f32, f32)>(0)[..samples]
                    .iter()
                    .flat_map(|&(l, r)| [l, r]),
            );
        }
    };
    let mut drain = |decoder: &mut ffmpeg::decoder::Audio,
                     collected: &mut Vec<f32>|
     -> Result<(), String> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            if decoded.channel_layout().is_empty() {
                decoded.set_channel_layout(ChannelLayout::default(i32::from(decoded.channels())));
            }
            if resampler.is_none() {
                resampler = Some(
                    resampling::Context::get(
                        decoded.format(),
                        decoded.channel_layout(),
                        decoded.rate(),
                        Sample::F32(sample::Type::Packed),
                        ChannelLayout::STEREO,
                        SAMPLE_RATE,
                    )
                    .map_err(describe)?,
                );
            }
            let converter = resampler.as_mut().expect("set above");
            converter.run(&decoded, &mut resampled).map_err(describe)?;
            append(&resampled, collected);
        }
        Ok(())
    };
    for (stream, packet) in input.packets() {
        if stream.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_ok() {
            drain(&mut decoder, &mut collected)?;
        }
        if limit.is_some_and(|limit| collected.len() / 2 >= skip + limit) {
            break;
        }
    }
    let _ = decoder.send_eof();
    drain(&mut decoder, &mut collected)?;
    if let Some(converter) = resampler.as_mut() {
        while let Ok(Some(_)) = converter.flush(&mut resampled) {
            if resampled.samples() == 0 {
                break;
            }
            append(&resampled, &mut collected);
        }
    } else {
        return Err("no audio could be decoded".into());
    }
    let begin = (skip * 2).min(collected.len());
    let end = limit.map_or(collected.len(), |limit| {
        (begin + limit * 2).min(collected.len())
    });
    Ok(StereoAudio {
        samples: collected[begin..end].to_vec(),
    })
}

/// FFmpeg's errors read as sentences.
pub(crate) fn describe(error: ffmpeg::Error) -> String {
    match error {
        ffmpeg::Error::InvalidData => "the data is invalid or not a supported media format".into(),
        ffmpeg::Error::DecoderNotFound => "no decoder for its codec".into(),
        ffmpeg::Error::Other { errno: ENOENT } => "no such file".into(),
        other => other.to_string(),
    }
}

/// POSIX's "no such file or directory", which FFmpeg passes through for a missing file.
const ENOENT: i32 = 2;
