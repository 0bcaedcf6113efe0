//! montage-models: what Montage asks of models, one trait per capability, over normalized
//! types — and the local providers that answer offline.
//!
//! - [`TextModel`]: chat completion with structured output (a JSON Schema) and tool calls, in
//!   the shape OpenAI-compatible APIs use; [`structured`] asks for and checks a typed answer.
//! - [`VisionModel`] critiques frames, [`ImageModel`] makes stills, [`ClipModel`] video clips,
//!   [`SpeechModel`] speech, [`MusicModel`] music, [`EmbeddingModel`] vectors.
//! - [`local`]: the heuristic intent parser ([`local::LocalText`]), the procedural image
//!   renderer ([`local::LocalImage`]), espeak-ng speech ([`local::LocalSpeech`]) and the
//!   hashing embedder ([`local::HashingEmbedder`]). The local music bed and the local critic
//!   build on the audio and critic tools and are wired by the application.
//! - [`remote`]: models behind the network (any OpenAI-compatible endpoint), the policy every
//!   remote call goes through (limits, retries, breaker), and fallback chains.
//!
//! Provider wire formats stay inside their provider's module; the pipeline sees only these
//! types.

mod error;
mod intent;
pub mod local;
pub mod remote;
mod traits;
mod types;

pub use error::ModelError;
pub use intent::{Category, DEFAULT_DURATION, DURATION_RANGE, Format, Intent, Mood, Pace};
pub use traits::{
    ClipModel, EmbeddingModel, ImageModel, MusicModel, SpeechModel, TextModel, VisionModel,
    clip_length, structured, structured_as,
};
pub use types::*;
