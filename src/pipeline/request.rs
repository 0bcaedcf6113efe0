//! Checking what a person asks for before any work starts, and storing their files.

use super::state::{IntentOverrides, RunRequest, Upload};
use crate::objects::{ObjectError, Objects};
use montage_models::{DURATION_RANGE, Format};
use std::path::{Path, PathBuf};

/// The longest prompt accepted, in characters.
pub const MAX_PROMPT_CHARS: usize = 4_000;
/// The largest image accepted, in bytes.
pub const MAX_IMAGE_BYTES: u64 = 50 << 20;
/// The largest audio file accepted, in bytes.
pub const MAX_AUDIO_BYTES: u64 = 500 << 20;
/// The most images one run takes.
pub const MAX_IMAGES: usize = 200;

/// A request that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Something about the request itself.
    #[error("{0}")]
    Invalid(String),
    /// A file that cannot be used.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Storing a file failed.
    #[error(transparent)]
    Store(#[from] ObjectError),
}

/// Reads `16:9,9:16,1:1` (and `vertical`, `square`, …).
pub fn parse_formats(text: &str) -> Result<Vec<Format>, RequestError> {
    formats_named(text.split(','))
}

/// A format by name ("16:9", "vertical").
pub fn format_named(name: &str) -> Result<Format, RequestError> {
    Format::parse(name).ok_or_else(|| {
        RequestError::Invalid(format!("unknown format {name:?}: use 16:9, 9:16 or 1:1"))
    })
}

/// Formats by name ("16:9", "vertical"), each named once however often it is given; unknown
/// names and an empty list are refused.
pub fn formats_named<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Format>, RequestError> {
    let mut formats = Vec::new();
    for part in names.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let format = format_named(part)?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    if formats.is_empty() {
        return Err(RequestError::Invalid(
            "no format given: use 16:9, 9:16 or 1:1".into(),
        ));
    }
    Ok(formats)
}

/// What a person hands over, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Their words.
    pub prompt: String,
    /// A music file.
    pub audio: Option<PathBuf>,
    /// Image files.
    pub images: Vec<PathBuf>,
    /// Formats overriding the prompt.
    pub formats: Option<Vec<Format>>,
    /// Length overriding the prompt, seconds.
    pub duration: Option<f64>,
    /// Seed.
    pub seed: u64,
}

fn check_size(path: &Path, limit: u64) -> Result<(), RequestError> {
    let size = std::fs::metadata(path)
        .map_err(|e| RequestError::File {
            path: path.to_owned(),
            reason: format!("cannot read it: {e}"),
        })?
        .len();
    if size > limit {
        return Err(RequestError::File {
            path: path.to_owned(),
            reason: format!(
                "{} MB is more than the {} MB allowed",
                size >> 20,
                limit >> 20
            ),
        });
    }
    Ok(())
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, RequestError> {
    check_size(path, limit)?;
    std::fs::read(path).map_err(|e| RequestError::File {
        path: path.to_owned(),
        reason: format!("cannot read it: {e}"),
    })
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// Checks the words of a request and the length asked for.
pub fn check_prompt(prompt: &str, duration: Option<f64>) -> Result<String, RequestError> {
    let prompt = prompt.trim().to_owned();
    if prompt.is_empty() {
        return Err(RequestError::Invalid(
            "the prompt is empty: describe the video you want".into(),
        ));
    }
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(RequestError::Invalid(format!(
            "the prompt is longer than {MAX_PROMPT_CHARS} characters"
        )));
    }
    check_duration(duration)?;
    Ok(prompt)
}

/// Checks that a requested length, if any, is one Montage makes.
pub fn check_duration(duration: Option<f64>) -> Result<(), RequestError> {
    match duration {
        Some(duration) if !(duration.is_finite() && DURATION_RANGE.contains(&duration)) => {
            Err(RequestError::Invalid(format!(
                "a duration of {duration} s is outside {:.0}–{:.0} s",
                DURATION_RANGE.start(),
                DURATION_RANGE.end()
            )))
        }
        _ => Ok(()),
    }
}

/// The longest side of a picture Montage takes, in pixels (the compositor shrinks stills to
/// 4096 a side, after decoding them whole).
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// The most pixels a picture Montage takes may have (a 48-megapixel phone photo fits).
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;
/// Memory the whole process may spend decoding pictures at once, in MiB: checks beyond it
/// wait their turn instead of taking the server down.
const DECODE_BUDGET_MIB: u32 = 1024;

static DECODE_BUDGET: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(DECODE_BUDGET_MIB as usize);

/// Checks that `bytes` are a PNG or JPEG picture of at least 16×16 pixels, within
/// [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_PIXELS`] as its header declares them, that decodes;
/// its media type, or why not. Decoding waits for its share of the process's budget.
pub async fn check_image(bytes: Vec<u8>) -> Result<&'static str, String> {
    let (format, width, height) = image_header(&bytes)?;
    // A decoded picture takes at most four bytes a pixel, and the decoder as much again.
    let mib = (u64::from(width) * u64::from(height) * 8).div_ceil(1 << 20);
    let permits = u32::try_from(mib)
        .unwrap_or(u32::MAX)
        .clamp(1, DECODE_BUDGET_MIB);
    let _budget = DECODE_BUDGET
        .acquire_many(permits)
        .await
        .map_err(|_| "the server is stopping".to_owned())?;
    tokio::task::spawn_blocking(move || decode_image(&bytes, format))
        .await
        .map_err(|_| "checking the picture stopped".to_owned())?
}

/// The same check, for callers outside the async runtime (`montage make` reads files in
/// turn, so there is nothing to share a budget with).
pub fn check_image_now(bytes: &[u8]) -> Result<&'static str, String> {
    let (format, _, _) = image_header(bytes)?;
    decode_image(bytes, format)
}

/// The format and the dimensions a picture's header declares, checked against the limits.
fn image_header(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32), String> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg))
        .ok_or("not a PNG or JPEG image")?;
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| "the picture's header is damaged: it does not say how big it is")?;
    if width.max(height) > MAX_IMAGE_SIDE || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(format!(
            "the picture is {width}×{height} pixels; Montage takes at most {MAX_IMAGE_SIDE} \
             pixels a side and {} megapixels: scale it down and upload it again",
            MAX_IMAGE_PIXELS / 1_000_000
        ));
    }
    if width < 16 || height < 16 {
        return Err("the image is smaller than 16×16 pixels".into());
    }
    Ok((format, width, height))
}

fn decode_image(bytes: &[u8], format: image::ImageFormat) -> Result<&'static str, String> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    reader.limits(limits);
    reader.decode().map_err(|error| match error {
        image::ImageError::Limits(_) => "the picture needs more memory to decode than Montage \
                                         allows"
            .to_owned(),
        image::ImageError::Unsupported(_) => {
            "this kind of PNG or JPEG is not one Montage can read".to_owned()
        }
        _ => "the picture's data is damaged or cut short: it does not decode".to_owned(),
    })?;
    Ok(if format == image::ImageFormat::Png {
        "image/png"
    } else {
        "image/jpeg"
    })
}

/// The media type of an audio file, from its first bytes.
fn audio_media_type(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        Some("audio/wav")
    } else if starts(b"fLaC") {
        Some("audio/flac")
    } else if starts(b"OggS") {
        Some("audio/ogg")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        Some("audio/mp4")
    } else if starts(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        Some("audio/mpeg")
    } else {
        None
    }
}

/// Checks that the file at `path` is music Montage can cut to — decoded and analysed in
/// full — and gives its media type, or says why not.
pub async fn check_audio(path: &Path) -> Result<&'static str, String> {
    let mut head = [0_u8; 12];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let media_type = audio_media_type(&head[..read])
        .ok_or("not audio Montage reads (WAV, MP3, FLAC, OGG/Vorbis or M4A)")?;
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || montage_audio::analyze_file(&path))
        .await
        .map_err(|_| "checking the audio stopped".to_owned())?
        .map_err(|error| {
            use montage_audio::AudioError;
            // The decoder's own words are for the log; people get what they can act on.
            tracing::info!(%error, "an audio file was refused");
            match error {
                AudioError::Unsupported(_) => {
                    "not audio Montage reads (WAV, MP3, FLAC, OGG/Vorbis or M4A)".to_owned()
                }
                AudioError::Corrupt(_) | AudioError::Io(_) => {
                    "the audio is damaged or cut short: it does not decode".to_owned()
                }
                other => format!("not usable audio: {other}"),
            }
        })?;
    Ok(media_type)
}

/// Checks a draft — the words, the length, every file decoded — and stores the files.
/// Nothing is stored unless all of it is good.
pub async fn prepare(draft: Draft, objects: &Objects) -> Result<RunRequest, RequestError> {
    let prompt = check_prompt(&draft.prompt, draft.duration)?;
    if draft.images.len() > MAX_IMAGES {
        return Err(RequestError::Invalid(format!(
            "at most {MAX_IMAGES} images per video"
        )));
    }
    let mut images = Vec::new();
    for path in &draft.images {
        let bytes = read_limited(path, MAX_IMAGE_BYTES)?;
        let media_type = check_image_now(&bytes).map_err(|reason| RequestError::File {
            path: path.clone(),
            reason,
        })?;
        images.push((display_name(path), media_type, bytes));
    }
    let audio = match &draft.audio {
        Some(path) => {
            check_size(path, MAX_AUDIO_BYTES)?;
            let media_type = check_audio(path)
                .await
                .map_err(|reason| RequestError::File {
                    path: path.clone(),
                    reason,
                })?;
            Some((display_name(path), media_type, path))
        }
        None => None,
    };
    let mut stored_images = Vec::new();
    for (name, media_type, bytes) in images {
        stored_images.push(Upload {
            name,
            object: objects.put("uploads", media_type, bytes).await?,
        });
    }
    let audio = match audio {
        Some((name, media_type, path)) => Some(Upload {
            name,
            object: objects.put_file("uploads", media_type, path).await?,
        }),
        None => None,
    };
    Ok(RunRequest {
        prompt,
        audio,
        images: stored_images,
        formats: draft.formats,
        duration: draft.duration,
        seed: draft.seed,
        overrides: IntentOverrides::default(),
    })
}
