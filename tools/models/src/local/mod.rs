//! The offline providers: no keys, no network, deterministic for a seed.

mod embed;
mod image;
mod intent_reader;
mod intent_words;
pub mod palette;
mod speech;
mod text;
mod tools;

pub use embed::{DIMENSIONS as EMBEDDING_DIMENSIONS, HashingEmbedder, embed_text};
pub use image::{LocalImage, Look, Shot, render as render_image};
pub use intent_reader::parse_intent;
pub use speech::LocalSpeech;
pub use text::{INTENT_SCHEMA, LocalText};
