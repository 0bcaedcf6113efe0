//! H.264 and AAC encoding, the segment cache's file format, and the MP4 muxing that joins
//! segments without re-encoding them.
//!
//! Every segment is encoded by its own x264 instance with identical settings, so each starts on
//! an IDR frame (x264 keeps GOPs closed) and all share one SPS/PPS: their packets can follow one
//! another in a single stream. Decode timestamps run contiguously inside a segment, so shifting a
//! segment by its first frame keeps them strictly increasing across the joins.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use ffmpeg::codec::{self, encoder};
use ffmpeg::format::{Pixel, Sample, sample};
use ffmpeg::util::color;
use ffmpeg::{ChannelLayout, Dictionary, Packet, Rational, frame};
use ffmpeg_next as ffmpeg;

use crate::error::{CompositorError, Context};
use crate::media::{SAMPLE_RATE, copy_into_frame};
use crate::picture::Frame;
use crate::plan::Fps;
use crate::timeline::Quality;

const SEGMENT_MAGIC: &[u8; 8] = b"MTGSEG01";
const AUDIO_BIT_RATE: usize = 192_000;

/// How one output's video is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VideoSettings {
    pub width: u32,
    pub height: u32,
    pub fps: Fps,
    pub quality: Quality,
    /// x264 threads per encoder; segments encode side by side.
    pub threads: usize,
}

impl VideoSettings {
    fn time_base(&self) -> Rational {
        Rational(self.fps.den as i32, self.fps.num as i32)
    }
}

/// An encoded packet, its timestamps in frames from its segment's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredPacket {
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
    pub data: Vec<u8>,
}

fn open_video_encoder(settings: &VideoSettings) -> Result<encoder::Video, ffmpeg::Error> {
    let codec = encoder::find_by_name("libx264").ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut video = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    video.set_width(settings.width);
    video.set_height(settings.height);
    video.set_format(Pixel::YUV420P);
    video.set_time_base(settings.time_base());
    video.set_frame_rate(Some(Rational(
        settings.fps.num as i32,
        settings.fps.den as i32,
    )));
    video.set_flags(codec::Flags::GLOBAL_HEADER);
    video.set_colorspace(color::Space::BT709);
    video.set_color_range(color::Range::MPEG);
    video.set_color_primaries(color::Primaries::BT709);
    video.set_color_transfer_characteristic(color::TransferCharacteristic::BT709);
    let mut options = Dictionary::new();
    options.set("preset", settings.quality.preset.as_str());
    options.set("crf", &settings.quality.crf.to_string());
    options.set("profile", "high");
    options.set("threads", &settings.threads.to_string());
    // x264 0.164's macroblock-tree rate control reads uninitialised memory: with it, the same
    // frames can encode to different bytes from run to run (seen with MALLOC_PERTURB_), which
    // would break both the segment cache's promise and repeatable renders.
    options.set("x264-params", "mbtree=0");
    video.open_with(options)
}

/// Encodes one segment's frames.
pub(crate) struct SegmentEncoder {
    encoder: encoder::Video,
    frame: frame::Video,
    next_pts: i64,
    packets: Vec<StoredPacket>,
}

impl SegmentEncoder {
    pub fn new(settings: &VideoSettings) -> Result<SegmentEncoder, CompositorError> {
        let encoder = open_video_encoder(settings)
            .context(|| "opening the H.264 encoder (libx264)".into())?;
        let frame = frame::Video::new(Pixel::YUV420P, settings.width, settings.height);
        Ok(SegmentEncoder {
            encoder,
            frame,
            next_pts: 0,
            packets: Vec::new(),
        })
    }

    pub fn push(&mut self, picture: &Frame) -> Result<(), CompositorError> {
        let (w, h) = (picture.width, picture.height);
        copy_into_frame(&mut self.frame, 0, &picture.y, w, h);
        copy_into_frame(&mut self.frame, 1, &picture.u, w / 2, h / 2);
        copy_into_frame(&mut self.frame, 2, &picture.v, w / 2, h / 2);
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += 1;
        self.encoder
            .send_frame(&self.frame)
            .context(|| "encoding a frame".into())?;
        self.drain()
    }

    pub fn finish(mut self) -> Result<Vec<StoredPacket>, CompositorError> {
        self.encoder
            .send_eof()
            .context(|| "finishing a segment".into())?;
        self.drain()?;
        Ok(self.packets)
    }

    fn drain(&mut self) -> Result<(), CompositorError> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let data = packet.data().unwrap_or_default().to_vec();
            let pts = packet.pts().unwrap_or(0);
            self.packets.push(StoredPacket {
                pts,
                dts: packet.dts().unwrap_or(pts),
                key: packet.is_key(),
                data,
            });
        }
        Ok(())
    }
}

/// Writes a segment to the cache: to a temporary name first, so a crash leaves no half file
/// under the final one.
pub(crate) fn write_segment(path: &Path, packets: &[StoredPacket]) -> Result<(), CompositorError> {
    let context = || format!("writing segment {}", path.display());
    let directory = path.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(directory).context(context)?;
    {
        let mut out = BufWriter::new(temporary.as_file());
        out.write_all(SEGMENT_MAGIC).context(context)?;
        out.write_all(&(packets.len() as u64).to_le_bytes())
            .context(context)?;
        for packet in packets {
            out.write_all(&packet.pts.to_le_bytes()).context(context)?;
            out.write_all(&packet.dts.to_le_bytes()).context(context)?;
            out.write_all(&[u8::from(packet.key)]).context(context)?;
            out.write_all(&(packet.data.len() as u64).to_le_bytes())
                .context(context)?;
            out.write_all(&packet.data).context(context)?;
        }
        out.flush().context(context)?;
    }
    temporary
        .persist(path)
        .map_err(|error| error.error)
        .context(context)?;
    Ok(())
}

/// Reads a cached segment; `None` when it is missing or unreadable, so it is encoded again.
pub(crate) fn read_segment(path: &Path) -> Option<Vec<StoredPacket>> {
    walk_segment(path, true)
}

/// Whether a cached segment is whole, checked from its packet headers without reading the
/// packets themselves.
pub(crate) fn segment_is_complete(path: &Path) -> bool {
    walk_segment(path, false).is_some()
}

/// Walks a segment file's structure, reading the packet data or seeking over it; `None` unless
/// the file is exactly one well-formed segment.
fn walk_segment(path: &Path, read_data: bool) -> Option<Vec<StoredPacket>> {
    let file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut input = BufReader::new(file);
    let mut magic = [0; 8];
    input.read_exact(&mut magic).ok()?;
    if &magic != SEGMENT_MAGIC {
        return None;
    }
    let mut word = [0; 8];
    let mut next = |input: &mut BufReader<File>| -> Option<u64> {
        input.read_exact(&mut word).ok()?;
        Some(u64::from_le_bytes(word))
    };
    let count = next(&mut input)?;
    let mut packets = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let pts = next(&mut input)? as i64;
        let dts = next(&mut input)? as i64;
        let mut key = [0];
        input.read_exact(&mut key).ok()?;
        let length = next(&mut input)?;
        if length > 1 << 28 {
            return None;
        }
        let data = if read_data {
            let mut data = vec![0; length as usize];
            input.read_exact(&mut data).ok()?;
            data
        } else {
            input.seek_relative(length as i64).ok()?;
            Vec::new()
        };
        packets.push(StoredPacket {
            pts,
            dts,
            key: key[0] == 1,
            data,
        });
    }
    // Seeking succeeds past the end, so the position is what proves the file whole.
    (input.stream_position().ok()? == size).then_some(packets)
}

fn open_audio_encoder(fast: bool) -> Result<encoder::Audio, ffmpeg::Error> {
    let codec = encoder::find(codec::Id::AAC).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut audio = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()?;
    audio.set_rate(SAMPLE_RATE as i32);
    audio.set_channel_layout(ChannelLayout::STEREO);
    audio.set_format(Sample::F32(sample::Type::Planar));
    audio.set_bit_rate(AUDIO_BIT_RATE);
    audio.set_time_base(Rational(1, SAMPLE_RATE as i32));
    audio.set_flags(codec::Flags::GLOBAL_HEADER);
    let mut options = Dictionary::new();
    // The fast coder takes half the time of the default two-loop search.
    options.set("aac_coder", if fast { "fast" } else { "twoloop" });
    audio.open_with(options)
}

/// Encodes interleaved stereo float at 48 kHz as AAC-LC; timestamps are in samples.
pub(crate) fn encode_audio(
    samples: &[f32],
    fast: bool,
) -> Result<Vec<StoredPacket>, CompositorError> {
    let context = || "encoding the soundtrack (AAC)".to_string();
    let mut encoder = open_audio_encoder(fast).context(context)?;
    let frame_size = encoder.frame_size().max(1) as usize;
    let mut packets = Vec::new();
    let drain = |encoder: &mut encoder::Audio, packets: &mut Vec<StoredPacket>| {
        let mut packet = Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            let pts = packet.pts().unwrap_or(0);
            let data = packet.data().unwrap_or_default().to_vec();
            packets.push(StoredPacket {
                pts,
                dts: packet.dts().unwrap_or(pts),
                key: true,
                data,
            });
        }
    };
    let total = samples.len() / 2;
    let mut start = 0;
    while start < total {
        let count = frame_size.min(total - start);
        let mut frame = frame::Audio::new(
            Sample::F32(sample::Type::Planar),
            count,
            ChannelLayout::STEREO,
        );
        frame.set_rate(SAMPLE_RATE);
        for channel in 0..2 {
            let plane = frame.plane_mut::<f32>(channel);
            for (index, value) in plane.iter_mut().take(count).enumerate() {
                *value = samples[2 * (start + index) + channel];
            }
        }
        frame.set_pts(Some(start as i64));
        encoder.send_frame(&frame).context(context)?;
        drain(&mut encoder, &mut packets);
        start += count;
    }
    encoder.send_eof().context(context)?;
    drain(&mut encoder, &mut packets);
    Ok(packets)
}

/// A segment's packets and the output frame it starts on.
pub(crate) struct PlacedSegment {
    pub start: u64,
    pub packets: Vec<StoredPacket>,
}

/// Writes the MP4: the segments' packets in order, shifted to their place, and the soundtrack,
/// with the index at the front (faststart). `cancelled` is polled between packets.
pub(crate) fn mux(
    path: &Path,
    settings: &VideoSettings,
    segments: &[PlacedSegment],
    audio: &[StoredPacket],
    cancelled: &dyn Fn() -> bool,
) -> Result<(), CompositorError> {
    let context = || format!("writing {}", path.display());
    // An encoder with the segments' settings gives the stream the same SPS/PPS they were made with.
    let reference =
        open_video_encoder(settings).context(|| "opening the H.264 encoder (libx264)".into())?;
    // Likewise the AAC encoder's AudioSpecificConfig.
    let audio_reference = open_audio_encoder(false).context(|| "opening the AAC encoder".into())?;
    let mut output = ffmpeg::format::output_as(path, "mp4").context(context)?;
    {
        let mut stream = output
            .add_stream(encoder::find_by_name("libx264"))
            .context(context)?;
        stream.set_parameters(&reference);
        stream.set_time_base(settings.time_base());
    }
    {
        let mut stream = output
            .add_stream(encoder::find(codec::Id::AAC))
            .context(context)?;
        stream.set_parameters(&audio_reference);
        stream.set_time_base(Rational(1, SAMPLE_RATE as i32));
    }
    let mut options = Dictionary::new();
    options.set("movflags", "+faststart");
    output.write_header_with(options).context(context)?;
    let video_base = output
        .stream(0)
        .map(|stream| stream.time_base())
        .unwrap_or(settings.time_base());
    let audio_base = output
        .stream(1)
        .map(|stream| stream.time_base())
        .unwrap_or(Rational(1, SAMPLE_RATE as i32));
    let frame_seconds = settings.fps.den as f64 / settings.fps.num as f64;

    let video = segments.iter().flat_map(|segment| {
        segment
            .packets
            .iter()
            .map(move |packet| (segment.start as i64, packet))
    });
    let mut video = video.peekable();
    let mut audio_packets = audio.iter().peekable();
    let mut written = 0usize;
    loop {
        let video_time = video
            .peek()
            .map(|(offset, packet)| (offset + packet.dts) as f64 * frame_seconds);
        let audio_time = audio_packets
            .peek()
            .map(|packet| packet.dts as f64 / SAMPLE_RATE as f64);
        let take_video = match (video_time, audio_time) {
            (None, None) => break,
            (Some(v), Some(a)) => v <= a,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let mut packet;
        if take_video {
            let (offset, stored) = video.next().expect("peeked");
            packet = Packet::copy(&stored.data);
            packet.set_pts(Some(offset + stored.pts));
            packet.set_dts(Some(offset + stored.dts));
            packet.set_duration(1);
            if stored.key {
                packet.set_flags(codec::packet::Flags::KEY);
            }
            packet.set_stream(0);
            packet.rescale_ts(settings.time_base(), video_base);
        } else {
            let stored = audio_packets.next().expect("peeked");
            packet = Packet::copy(&stored.data);
            packet.set_pts(Some(stored.pts));
            packet.set_dts(Some(stored.dts));
            packet.set_duration(1024);
            packet.set_flags(codec::packet::Flags::KEY);
            packet.set_stream(1);
            packet.rescale_ts(Rational(1, SAMPLE_RATE as i32), audio_base);
        }
        packet.write_interleaved(&mut output).context(context)?;
        written += 1;
        if written.is_multiple_of(64) && cancelled() {
            return Err(CompositorError::Cancelled);
        }
    }
    output.write_trailer().context(context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_damaged_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.seg");
        let packets = vec![
            StoredPacket {
                pts: 0,
                dts: -2,
                key: true,
                data: vec![1, 2, 3],
            },
            StoredPacket {
                pts: 2,
                dts: -1,
                key: false,
                data: vec![4; 300],
            },
        ];
        write_segment(&path, &packets).unwrap();
        assert_eq!(read_segment(&path), Some(packets));
        assert!(segment_is_complete(&path));

        let bytes = std::fs::read(&path).unwrap();
        for damaged in [
            &bytes[..bytes.len() - 1],
            &[bytes.as_slice(), &[0]].concat()[..],
            &bytes[..8],
        ] {
            std::fs::write(&path, damaged).unwrap();
            assert!(
                !segment_is_complete(&path),
                "{} bytes of {}",
                damaged.len(),
                bytes.len()
            );
            assert_eq!(read_segment(&path), None);
        }
        assert!(!segment_is_complete(&dir.path().join("missing.seg")));
    }
}
