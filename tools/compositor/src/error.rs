//! What can go wrong, naming the timeline item at fault.

use std::fmt;
use std::path::PathBuf;

/// A part of the timeline an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The timeline as a whole.
    Timeline,
    /// An output format, by index and label.
    Output(usize, String),
    /// A scene, by index and id when it has one.
    Scene(usize, Option<String>),
    /// An overlay, by index.
    Overlay(usize),
    /// An audio track, by index.
    AudioTrack(usize),
    /// The colour grade.
    Grade,
    /// A caption cue, by index.
    Cue(usize),
    /// Where the render writes (not part of the timeline).
    Target,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Timeline => write!(f, "timeline"),
            Item::Output(index, label) => write!(f, "output {index} ({label})"),
            Item::Scene(index, Some(id)) => write!(f, "scene {index} ({id})"),
            Item::Scene(index, None) => write!(f, "scene {index}"),
            Item::Overlay(index) => write!(f, "overlay {index}"),
            Item::AudioTrack(index) => write!(f, "audio track {index}"),
            Item::Grade => write!(f, "grade"),
            Item::Cue(index) => write!(f, "caption {index}"),
            Item::Target => write!(f, "render target"),
        }
    }
}

/// Errors from validating and rendering a timeline.
#[derive(Debug, thiserror::Error)]
pub enum CompositorError {
    /// The timeline is inconsistent: found before anything is encoded.
    #[error("{item}: {reason}")]
    Invalid {
        /// The item at fault.
        item: Item,
        /// What is wrong with it.
        reason: String,
    },
    /// A media file the timeline names cannot be used: found before anything is encoded.
    #[error("{item}: cannot use {}: {reason}", path.display())]
    Media {
        /// The item that names the file.
        item: Item,
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The render was cancelled; no output file was left behind.
    #[error("render cancelled")]
    Cancelled,
    /// FFmpeg failed while encoding or writing.
    #[error("{context}: {source}")]
    Ffmpeg {
        /// What was being done.
        context: String,
        /// FFmpeg's error.
        source: ffmpeg_next::Error,
    },
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CompositorError {
    pub(crate) fn invalid(item: Item, reason: impl Into<String>) -> Self {
        CompositorError::Invalid {
            item,
            reason: reason.into(),
        }
    }

    pub(crate) fn media(item: Item, path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        CompositorError::Media {
            item,
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// The item at fault, for validation and media errors.
    pub fn item(&self) -> Option<&Item> {
        match self {
            CompositorError::Invalid { item, .. } | CompositorError::Media { item, .. } => {
                Some(item)
            }
            _ => None,
        }
    }
}

/// Attaches context to FFmpeg and I/O errors.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, CompositorError>;
}

impl<T> Context<T> for Result<T, ffmpeg_next::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, CompositorError> {
        self.map_err(|source| CompositorError::Ffmpeg {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, std::io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, CompositorError> {
        self.map_err(|source| CompositorError::Io {
            context: context(),
            source,
        })
    }
}
