//! montage-compositor: renders a [`Timeline`] to finished MP4s through the FFmpeg libraries.
//!
//! A render validates the timeline and loads every file it names before encoding anything,
//! cuts each output into independent segments (scene bodies, transition regions), encodes the
//! segments in parallel with x264 (reusing any the cache already holds), mixes and encodes the
//! soundtrack, and joins everything into an MP4 (H.264 High, yuv420p, AAC 48 kHz, faststart)
//! written under a temporary name and renamed into place.
//!
//! ```no_run
//! use montage_compositor::{CancelToken, Compositor, RenderTarget, Timeline};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let timeline: Timeline = serde_json::from_str(&std::fs::read_to_string("timeline.json")?)?;
//! let target = RenderTarget::new("out", "video");
//! let report = Compositor::new()
//!     .with_cache_dir("cache")
//!     .render(&timeline, &target, &|progress| eprintln!("{:.0}%", progress.percent), &CancelToken::new())?;
//! println!("{}", report.outputs[0].path.display());
//! # Ok(()) }
//! ```

//! The modules, in the order a render uses them:
//! - `timeline`: the [`Timeline`] a caller hands over, and its checks.
//! - `prepare`: every file the timeline names, loaded and probed before anything is encoded.
//! - `plan`: each output cut into segments (scene bodies, transition regions).
//! - `compose`, `picture`, `grade`, `text`: one segment's frames: the pictures moved, graded,
//!   captioned.
//! - `encode`: x264 for the segments, AAC for the soundtrack, the MP4 joined.
//! - `mix`: the soundtrack: music, narration, ducking.
//! - `captions`: SRT and WebVTT sidecars.
//! - `media`: FFmpeg's decoders: probing clips, reading their last picture.
//! - `render`: the [`Compositor`] that runs all of it, with progress, cancelling and the
//!   segment cache.

mod captions;
mod compose;
mod encode;
mod error;
mod grade;
mod media;
mod mix;
mod picture;
mod plan;
mod prepare;
mod render;
mod text;
mod timeline;

pub use captions::{to_srt, to_vtt};
pub use error::{CompositorError, Item};
pub use media::{ClipProbe, LastPicture, last_picture, probe_clip};
pub use render::{
    CancelToken, Compositor, Progress, RenderReport, RenderTarget, RenderedOutput, SegmentReport,
};
pub use timeline::*;
