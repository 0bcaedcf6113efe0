//! The local embedding model: feature hashing of words and character trigrams.

use crate::error::ModelError;
use crate::traits::EmbeddingModel;
use crate::types::{Embeddings, ModelId};
use async_trait::async_trait;

/// Length of the vectors.
pub const DIMENSIONS: usize = 256;

/// Hashing embedder: texts sharing words and spellings get close vectors. Deterministic,
/// no model file.
#[derive(Debug, Clone, Default)]
pub struct HashingEmbedder;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The vector of one text (unit length; all zeros for a text without letters or digits).
pub fn embed_text(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIMENSIONS];
    let mut add = |feature: &str, weight: f32| {
        let hash = fnv1a(feature.as_bytes());
        let index = (hash % DIMENSIONS as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    };
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        add(&format!("w:{word}"), 1.0);
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for gram in padded.windows(3) {
            add(&format!("g:{}", gram.iter().collect::<String>()), 0.5);
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    vector
}

#[async_trait]
impl EmbeddingModel for HashingEmbedder {
    fn id(&self) -> ModelId {
        ModelId::new("local", "hashing-256")
    }

    async fn embed(&self, texts: &[String]) -> Result<Embeddings, ModelError> {
        Ok(Embeddings {
            model: self.id(),
            vectors: texts.iter().map(|t| embed_text(t)).collect(),
            cost_usd: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let a = embed_text("wide shot of a neon city at night");
        let b = embed_text("neon city at night, close-up");
        let c = embed_text("a calm beach in the morning sun");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.3);
        assert_eq!(embed_text("…"), vec![0.0; DIMENSIONS]);
    }
}
