//! Models behind the network, and what every one of them shares.
//!
//! - [`policy`]: limits, timeouts, retries honouring `Retry-After`, the circuit breaker.
//! - [`openai`]: any OpenAI-compatible chat endpoint, for text and (with a model that sees)
//!   the critic; [`embeddings`]: its `/embeddings`, for the generation cache.
//! - [`vendor`]: vendors with APIs of their own (Anthropic, Gemini, Mistral, xAI, Cohere…)
//!   through rig's provider registry.
//! - [`FallbackText`]: a chain of text models, each standing in when the ones before fail.
//! - [`SeeingCritic`]: the critic on any of those text models that sees pictures.
//! - [`jobs`]: paid jobs (Replicate's predictions, fal's queue) submitted once per request
//!   and polled to their end; [`media`]: stills from them, checked before use, and chains;
//!   [`openai_media`]: stills and speech from OpenAI-compatible endpoints;
//!   [`elevenlabs`]: ElevenLabs voices.
//!
//! Provider wire types stay in their module; keys stay in their provider and appear in no
//! message, log or record (messages name the variable that holds them).

pub mod clips;
pub mod elevenlabs;
pub mod embeddings;
mod fal;
pub mod jobs;
pub mod media;
pub mod openai;
pub mod openai_media;
pub mod policy;
mod replicate;
mod schema;
pub mod vendor;
mod vision;

pub use vision::SeeingCritic;

use crate::error::ModelError;
use crate::traits::TextModel;
use crate::types::{ModelId, TextRequest, TextResponse, Usage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a provider charges, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    /// Per million tokens in.
    pub input_per_million: f64,
    /// Per million tokens out.
    pub output_per_million: f64,
}

impl Prices {
    /// What `usage` costs.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_million
            + usage.output_tokens as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

/// How an endpoint takes a JSON Schema for structured output. Either way the answer is
/// checked against the whole schema by Montage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    /// `{"type": "json_schema", "json_schema": {…, "strict": false}}`: OpenAI, Ollama, vLLM.
    #[default]
    JsonSchema,
    /// The same with `"strict": true` and the schema in the form strict mode takes (every
    /// property required, optional ones nullable, no other properties): OpenAI's models
    /// since gpt-4o-2024-08-06 then never answer outside it.
    JsonSchemaStrict,
    /// `{"type": "json_object", "schema": {…}}`: llama.cpp's server, which refuses the other.
    JsonObject,
}

/// How an endpoint is asked to call tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCalling {
    /// `tool_choice: "auto"`: the model decides (OpenAI and other large models).
    #[default]
    Auto,
    /// First a structured question (which tool, or none), then that tool forced: small
    /// models answer in prose under `auto`, but follow a forced choice. After a tool's
    /// result the model answers in words, so one message never sets off a chain of calls.
    Routed,
}

/// Text models tried in order: when one fails (or its breaker is open), the next answers,
/// and the answer says which stood in and why.
pub struct FallbackText {
    chain: Vec<Arc<dyn TextModel>>,
}

impl FallbackText {
    /// The chain, first choice first; at least one model.
    pub fn new(chain: Vec<Arc<dyn TextModel>>) -> Result<FallbackText, ModelError> {
        if chain.is_empty() {
            return Err(ModelError::InvalidRequest(
                "a fallback chain needs at least one model".into(),
            ));
        }
        Ok(FallbackText { chain })
    }
}

#[async_trait]
impl TextModel for FallbackText {
    fn id(&self) -> ModelId {
        self.chain[0].id()
    }

    async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError> {
        self.answer(request, None).await
    }

    fn stand_ins(&self) -> Option<&[Arc<dyn TextModel>]> {
        Some(&self.chain)
    }

    async fn stream(
        &self,
        request: TextRequest,
        piece: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<TextResponse, ModelError> {
        self.answer(request, Some(piece)).await
    }
}

impl FallbackText {
    /// Tries each model in turn, streaming to `piece` when given (a whole answer is asked
    /// for otherwise: some endpoints count tokens only for those).
    async fn answer(
        &self,
        request: TextRequest,
        piece: Option<&(dyn for<'s> Fn(&'s str) + Send + Sync)>,
    ) -> Result<TextResponse, ModelError> {
        let mut notices = Vec::new();
        let mut last = None;
        for (place, model) in self.chain.iter().enumerate() {
            let answered = match piece {
                Some(piece) => model.stream(request.clone(), piece).await,
                None => model.complete(request.clone()).await,
            };
            match answered {
                Ok(mut response) => {
                    if place > 0 {
                        notices.push(format!("{} answered instead", response.model));
                    }
                    notices.append(&mut response.notices);
                    response.notices = notices;
                    return Ok(response);
                }
                // A stand-in that cannot do this at all (the local model writes no free
                // text): the failure before it is the one worth telling.
                Err(ModelError::Unsupported { .. })
                    if place + 1 == self.chain.len() && last.is_some() =>
                {
                    break;
                }
                // What the request itself gets wrong, every model gets wrong.
                Err(error @ (ModelError::InvalidRequest(_) | ModelError::Unsupported { .. }))
                    if place + 1 == self.chain.len() =>
                {
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(model = %model.id(), %error, "a text model failed; trying the next");
                    notices.push(format!("{} failed: {error}", model.id()));
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| ModelError::Unavailable("no text model answered".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, Message};

    struct Answers(Result<&'static str, &'static str>, &'static str);

    #[async_trait]
    impl TextModel for Answers {
        fn id(&self) -> ModelId {
            ModelId::new(self.1, "m")
        }

        async fn complete(&self, _: TextRequest) -> Result<TextResponse, ModelError> {
            match self.0 {
                Ok(text) => Ok(TextResponse {
                    model: self.id(),
                    content: Some(text.into()),
                    tool_calls: Vec::new(),
                    finish: FinishReason::Stop,
                    usage: Usage::default(),
                    cost_usd: 0.0,
                    notices: Vec::new(),
                    wasted: Vec::new(),
                }),
                Err(why) => Err(ModelError::Rejected(why.into())),
            }
        }
    }

    /// A stand-in that cannot answer this kind of request.
    struct Cannot;

    #[async_trait]
    impl TextModel for Cannot {
        fn id(&self) -> ModelId {
            ModelId::new("local", "rules")
        }

        async fn complete(&self, _: TextRequest) -> Result<TextResponse, ModelError> {
            Err(ModelError::Unsupported {
                provider: "local/rules".into(),
                what: "write free text".into(),
            })
        }
    }

    #[tokio::test]
    async fn the_next_model_stands_in_and_says_so() {
        let chain = FallbackText::new(vec![
            Arc::new(Answers(
                Err("openai refused the key in OPENAI_API_KEY (401)"),
                "openai",
            )),
            Arc::new(Answers(Ok("hello"), "local")),
        ])
        .unwrap();
        let request = TextRequest {
            messages: vec![Message::user("hi")],
            ..TextRequest::default()
        };
        let response = chain.complete(request.clone()).await.unwrap();
        assert_eq!(response.model.provider, "local");
        assert_eq!(
            response.notices,
            [
                "openai/m failed: openai refused the key in OPENAI_API_KEY (401)",
                "local/m answered instead"
            ]
        );
        let cannot = FallbackText::new(vec![
            Arc::new(Answers(Err("the server is down"), "openai")),
            Arc::new(Cannot),
        ])
        .unwrap();
        let told = cannot.complete(request.clone()).await.unwrap_err();
        assert_eq!(
            told.to_string(),
            ModelError::Rejected("the server is down".into()).to_string()
        );
        let alone = FallbackText::new(vec![Arc::new(Answers(Err("down"), "openai"))]).unwrap();
        assert!(matches!(
            alone.complete(request).await,
            Err(ModelError::Rejected(_))
        ));
    }

    #[test]
    fn cost_follows_the_prices() {
        let prices = Prices {
            input_per_million: 0.4,
            output_per_million: 1.6,
        };
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 500,
        };
        assert!((prices.cost(&usage) - 0.0012).abs() < 1e-12);
    }
}
