//! Why audio could not be analysed.

/// A decode or analysis failure. Silence and music without a pulse are not errors: they give
/// a grid with no beats.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be read.
    #[error("cannot read the audio: {0}")]
    Io(#[from] std::io::Error),
    /// The data is not in a container or codec we can decode.
    #[error("unsupported or unrecognised audio format: {0}")]
    Unsupported(String),
    /// The data claims to be audio but is damaged beyond decoding.
    #[error("the audio is corrupt: {0}")]
    Corrupt(String),
    /// The file holds no audio track.
    #[error("the file has no audio track")]
    NoAudioTrack,
    /// A sample rate outside 8–192 kHz.
    #[error("sample rate {0} Hz is outside the supported 8–192 kHz")]
    SampleRate(u32),
    /// Too little audio to find a beat in.
    #[error("{seconds:.2} s of audio is too short to analyse (at least {minimum} s needed)")]
    TooShort {
        /// How much audio there was.
        seconds: f64,
        /// The minimum.
        minimum: f64,
    },
    /// The analysis library failed (an internal error).
    #[error("analysis failed: {0}")]
    Analysis(String),
}
