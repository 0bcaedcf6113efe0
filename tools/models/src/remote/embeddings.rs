//! Vectors from an OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, llama.cpp's
//! server…), with the configured number of dimensions. An endpoint that answers one vector per
//! token (llama.cpp's server without pooling) is refused with what to do, or averaged when the
//! configuration says so: never stored as if it were one vector.

use super::openai::{OpenAiConfig, OpenAiText};
use crate::error::ModelError;
use crate::traits::{EmbeddingModel, TextModel};
use crate::types::{Embeddings, ModelId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do with an answer of one vector per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenVectors {
    /// Refuse it: the endpoint should pool (llama.cpp's `--pooling mean`).
    #[default]
    Refuse,
    /// Average them into one vector, as mean pooling would.
    Mean,
}

/// An embedding model behind an OpenAI-compatible endpoint.
pub struct OpenAiEmbeddings {
    endpoint: OpenAiText,
    dimensions: Option<usize>,
    token_vectors: TokenVectors,
}

impl OpenAiEmbeddings {
    /// Connects (without a model named, to the endpoint's only one). `dimensions` is asked of
    /// models that can shorten their vectors (OpenAI's text-embedding-3 family) and checked
    /// on every answer.
    pub async fn connect(
        config: OpenAiConfig,
        dimensions: Option<usize>,
        token_vectors: TokenVectors,
    ) -> Result<OpenAiEmbeddings, ModelError> {
        Ok(OpenAiEmbeddings {
            endpoint: OpenAiText::connect(config).await?,
            dimensions,
            token_vectors,
        })
    }

    /// The endpoint, for checking it.
    pub fn endpoint(&self) -> &OpenAiText {
        &self.endpoint
    }

    /// One vector from one `embedding` of the answer.
    fn vector(&self, embedding: &Value) -> Result<Vec<f32>, ModelError> {
        let who = TextModel::id(&self.endpoint);
        let numbers = |value: &Value| -> Option<Vec<f32>> {
            value
                .as_array()?
                .iter()
                .map(|n| n.as_f64().map(|n| n as f32))
                .collect()
        };
        let vector = match embedding.as_array().and_then(|a| a.first()) {
            Some(Value::Array(_)) => {
                let tokens: Vec<Vec<f32>> = embedding
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(numbers)
                    .collect::<Option<_>>()
                    .ok_or_else(|| unreadable(&who))?;
                match self.token_vectors {
                    TokenVectors::Refuse => {
                        return Err(ModelError::Unsupported {
                            provider: who.to_string(),
                            what: format!(
                                "give one vector per text: it answered one per token ({} of them); \
                                 start the server with pooling (llama.cpp: --pooling mean), or set \
                                 token_vectors = \"mean\" to average them",
                                tokens.len()
                            ),
                        });
                    }
                    TokenVectors::Mean => mean(&tokens).ok_or_else(|| unreadable(&who))?,
                }
            }
            _ => numbers(embedding).ok_or_else(|| unreadable(&who))?,
        };
        if vector.is_empty() || vector.iter().any(|v| !v.is_finite()) {
            return Err(unreadable(&who));
        }
        if let Some(wanted) = self.dimensions
            && vector.len() != wanted
        {
            return Err(ModelError::InvalidOutput(format!(
                "{who} answered vectors of {} dimensions, and {wanted} are configured",
                vector.len()
            )));
        }
        Ok(unit(vector))
    }
}

fn unreadable(who: &ModelId) -> ModelError {
    ModelError::InvalidOutput(format!(
        "{who} answered an embedding that is not a list of numbers"
    ))
}

fn mean(tokens: &[Vec<f32>]) -> Option<Vec<f32>> {
    let width = tokens.first()?.len();
    if tokens.iter().any(|t| t.len() != width) {
        return None;
    }
    let mut sum = vec![0.0f32; width];
    for token in tokens {
        for (s, v) in sum.iter_mut().zip(token) {
            *s += v;
        }
    }
    Some(sum.into_iter().map(|s| s / tokens.len() as f32).collect())
}

/// `vector` scaled to length one (cosine similarity is then a dot product everywhere).
fn unit(vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.into_iter().map(|v| v / norm).collect()
    } else {
        vector
    }
}

#[async_trait]
impl EmbeddingModel for OpenAiEmbeddings {
    fn id(&self) -> ModelId {
        let id = TextModel::id(&self.endpoint);
        match self.dimensions {
            // Shortened vectors are a space of their own.
            Some(dimensions) => ModelId::new(id.provider, format!("{}@{dimensions}", id.model)),
            None => id,
        }
    }

    async fn embed(&self, texts: &[String]) -> Result<Embeddings, ModelError> {
        let (data, cost_usd) = match self.token_vectors {
            TokenVectors::Refuse => self.endpoint.embeddings(texts, self.dimensions).await?,
            // An unpooled server's per-token vectors come out wrong for all but the first
            // text of a batch (measured on llama-cpp-python 0.3.36: the same text scored
            // -0.08 against itself two places later), so each text goes alone.
            TokenVectors::Mean => {
                let (mut data, mut cost) = (Vec::new(), 0.0);
                for text in texts {
                    let (mut one, spent) = self
                        .endpoint
                        .embeddings(std::slice::from_ref(text), self.dimensions)
                        .await?;
                    data.append(&mut one);
                    cost += spent;
                }
                (data, cost)
            }
        };
        if data.len() != texts.len() {
            return Err(ModelError::InvalidOutput(format!(
                "{} answered {} vectors for {} texts",
                TextModel::id(&self.endpoint),
                data.len(),
                texts.len()
            )));
        }
        let vectors = data
            .iter()
            .map(|embedding| self.vector(embedding))
            .collect::<Result<_, _>>()?;
        Ok(Embeddings {
            model: self.id(),
            vectors,
            cost_usd,
        })
    }
}
