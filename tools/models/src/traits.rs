//! One trait per capability. The pipeline holds `Arc<dyn …>` of these and never knows which
//! provider is behind them.

use crate::error::ModelError;
use crate::types::{
    ClipRequest, Critique, Embeddings, GeneratedClip, GeneratedImage, GeneratedMusic, ImageRequest,
    ModelId, MusicRequest, Speech, SpeechRequest, TextRequest, TextResponse, VisionRequest,
};
use async_trait::async_trait;

/// Chat completion: plain text, structured output against a JSON Schema, and tool calls.
#[async_trait]
pub trait TextModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Answers a conversation.
    async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError>;

    /// Answers a conversation, handing each piece of the text to `piece` as it is written
    /// (providers that cannot stream hand over the whole text at once).
    async fn stream(
        &self,
        request: TextRequest,
        piece: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<TextResponse, ModelError> {
        let response = self.complete(request).await?;
        if let Some(text) = response.content.as_deref().filter(|t| !t.is_empty()) {
            piece(text);
        }
        Ok(response)
    }

    /// The models behind this one that stand in for each other, first choice first: a
    /// structured answer one of them cannot give in shape is asked of the next. A lone
    /// model has none.
    fn stand_ins(&self) -> Option<&[std::sync::Arc<dyn TextModel>]> {
        None
    }
}

/// Looks at frames and reports problems.
#[async_trait]
pub trait VisionModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Critiques the frames of a video's scenes.
    async fn critique(&self, request: VisionRequest) -> Result<Critique, ModelError>;
}

/// Makes still images.
#[async_trait]
pub trait ImageModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Makes one image.
    async fn generate(&self, request: ImageRequest) -> Result<GeneratedImage, ModelError>;

    /// What one image is expected to cost, in US dollars, for estimates (local: nothing).
    fn price(&self) -> f64 {
        0.0
    }

    /// The models behind this one, first choice first, when it is a chain: a budget that
    /// cannot pay for the first steps down to the next. A lone model has none.
    fn stand_ins(&self) -> Option<&[std::sync::Arc<dyn ImageModel>]> {
        None
    }
    /// Stops the paid job the request with `job_key` started, if it still runs (the run
    /// it was for was cancelled): whether one was stopped. Local models have none.
    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        let _ = job_key;
        Ok(false)
    }
}

/// Makes short video clips from stills.
#[async_trait]
pub trait ClipModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Makes one clip.
    async fn generate(&self, request: ClipRequest) -> Result<GeneratedClip, ModelError>;

    /// The lengths it makes, in seconds, shortest first.
    fn lengths(&self) -> Vec<f64>;

    /// What a clip of `seconds` (one of [`lengths`](Self::lengths)) is expected to cost, in
    /// US dollars.
    fn price(&self, seconds: f64) -> f64;
    /// Stops the paid job the request with `job_key` started, if it still runs (the run
    /// it was for was cancelled): whether one was stopped. Local models have none.
    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        let _ = job_key;
        Ok(false)
    }
}

/// The length a clip covering `seconds` is made at: the shortest of `lengths` at or above it
/// (a clip shorter than its scene would freeze on its last frame). None when the scene is
/// longer than every length.
pub fn clip_length(lengths: &[f64], seconds: f64) -> Option<f64> {
    lengths
        .iter()
        .copied()
        .filter(|&length| length + 1e-6 >= seconds)
        .min_by(f64::total_cmp)
}

/// Speaks text.
#[async_trait]
pub trait SpeechModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Speaks one text.
    async fn speak(&self, request: SpeechRequest) -> Result<Speech, ModelError>;

    /// What speaking `text` is expected to cost, in US dollars, for estimates (local:
    /// nothing).
    fn price(&self, text: &str) -> f64 {
        let _ = text;
        0.0
    }
}

/// Makes music.
#[async_trait]
pub trait MusicModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Makes one piece.
    async fn compose(&self, request: MusicRequest) -> Result<GeneratedMusic, ModelError>;
    /// Stops the paid job the request with `job_key` started, if it still runs (the run
    /// it was for was cancelled): whether one was stopped. Local models have none.
    async fn cancel(&self, job_key: &str) -> Result<bool, ModelError> {
        let _ = job_key;
        Ok(false)
    }
}

/// Turns texts into vectors for similarity search.
#[async_trait]
pub trait EmbeddingModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Embeds each text.
    async fn embed(&self, texts: &[String]) -> Result<Embeddings, ModelError>;
}

/// Asks `model` for structured output of type `T` and checks the answer against the whole
/// schema (endpoints that take a reduced schema, or none, answer outside it): an answer that
/// does not fit is asked for once more with what was wrong, then refused.
pub async fn structured<T>(
    model: &dyn TextModel,
    schema_name: &str,
    request: TextRequest,
) -> Result<(T, TextResponse), ModelError>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    let format = crate::types::JsonSchemaFormat::of::<T>(schema_name);
    structured_as(model, format, request, |_: &T| Ok(())).await
}

/// [`structured`] against a schema the caller shaped (one whose list lengths fit this
/// request, say), with `check` for what a schema cannot say: its complaint is put to the
/// model like a schema's, once. Behind a chain, a model that answers outside the schema
/// twice (or fails) gives way to the next, and the answer says so. Every paid attempt is
/// counted: in the answer that is kept, or in the error ([`ModelError::wasted`]).
pub async fn structured_as<T>(
    model: &dyn TextModel,
    format: crate::types::JsonSchemaFormat,
    mut request: TextRequest,
    check: impl Fn(&T) -> Result<(), String> + Send + Sync,
) -> Result<(T, TextResponse), ModelError>
where
    T: serde::de::DeserializeOwned,
{
    let validator = jsonschema::validator_for(&format.schema)
        .map_err(|e| ModelError::InvalidRequest(format!("the {} schema: {e}", format.name)))?;
    request.response_format = Some(format);
    let members: Vec<&dyn TextModel> = match model.stand_ins() {
        Some(chain) => chain.iter().map(|m| m.as_ref()).collect(),
        None => vec![model],
    };
    let mut notices = Vec::new();
    let mut wasted = Vec::new();
    let mut last = None;
    for (place, member) in members.iter().enumerate() {
        let final_place = place + 1 == members.len();
        match fitting(*member, &validator, request.clone(), &check).await {
            Ok((value, mut response)) => {
                if place > 0 {
                    notices.push(format!("{} answered instead", response.model));
                }
                notices.append(&mut response.notices);
                response.notices = notices;
                wasted.append(&mut response.wasted);
                response.wasted = wasted;
                return Ok((value, response));
            }
            Err((error, paid)) => {
                wasted.extend(paid);
                match error {
                    // A stand-in that cannot do this at all (the local model writes no
                    // free text): the failure before it is the one worth telling.
                    ModelError::Unsupported { .. } if final_place && last.is_some() => break,
                    error @ (ModelError::InvalidRequest(_) | ModelError::Unsupported { .. })
                        if final_place =>
                    {
                        last = Some(error);
                    }
                    error => {
                        if members.len() > 1 {
                            tracing::warn!(model = %member.id(), %error, "a text model gave no usable answer; trying the next");
                            notices.push(format!("{} failed: {error}", member.id()));
                        }
                        last = Some(error);
                    }
                }
            }
        }
    }
    let failure = last.unwrap_or_else(|| ModelError::Unavailable("no text model answered".into()));
    Err(ModelError::with_wasted(failure, wasted))
}

/// One model's answer in shape: asked once more with what was wrong, then refused with
/// what the refused answers cost (when they cost anything). A refused first answer's cost
/// goes onto the answer that is kept: both are this model's.
async fn fitting<T: serde::de::DeserializeOwned>(
    model: &dyn TextModel,
    validator: &jsonschema::Validator,
    mut request: TextRequest,
    check: &(impl Fn(&T) -> Result<(), String> + Send + Sync),
) -> Result<(T, TextResponse), (ModelError, Option<crate::types::Wasted>)> {
    let schema_name = request
        .response_format
        .as_ref()
        .map(|f| f.name.clone())
        .unwrap_or_default();
    let mut refused: Option<crate::types::Wasted> = None;
    let paid = |refused: Option<crate::types::Wasted>| {
        refused.filter(|w| w.cost_usd > 0.0 || w.usage != crate::types::Usage::default())
    };
    loop {
        let mut response = match model.complete(request.clone()).await {
            Ok(response) => response,
            Err(error) => return Err((error, paid(refused))),
        };
        if let Some(before) = &refused {
            response.usage += before.usage;
            response.cost_usd += before.cost_usd;
        }
        let problem = match checked::<T>(validator, response.content.as_deref())
            .and_then(|value| check(&value).map(|()| value))
        {
            Ok(value) => return Ok((value, response)),
            Err(problem) => problem,
        };
        let asked_again = refused.is_some();
        refused = Some(crate::types::Wasted {
            model: response.model.clone(),
            usage: response.usage,
            cost_usd: response.cost_usd,
        });
        if asked_again {
            let error = ModelError::InvalidOutput(format!(
                "{} answered {schema_name} outside its schema twice: {problem}",
                response.model
            ));
            return Err((error, paid(refused)));
        }
        if let Some(content) = &response.content {
            request.messages.push(crate::types::Message::new(
                crate::types::Role::Assistant,
                content.clone(),
            ));
        }
        request.messages.push(crate::types::Message::user(format!(
            "That answer does not fit the schema: {problem}. Answer again with JSON that fits it."
        )));
    }
}

/// `text` with raw line breaks and tabs inside its strings escaped: grammar-constrained
/// decoding (llama.cpp's) lets a model put them there, and JSON does not allow them. Outside
/// strings they are whitespace and stay.
fn escape_control_characters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string && !escaped && u32::from(c) < 0x20 {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                other => out.push_str(&format!("\\u{:04x}", u32::from(other))),
            }
            continue;
        }
        out.push(c);
        if in_string && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == '"' && !escaped {
            in_string = !in_string;
        }
        escaped = false;
    }
    out
}

/// The answer as `T`, or what is wrong with it.
pub(crate) fn checked<T: serde::de::DeserializeOwned>(
    validator: &jsonschema::Validator,
    content: Option<&str>,
) -> Result<T, String> {
    let text = content.ok_or("there is no answer")?;
    let value: serde_json::Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&escape_control_characters(text)))
        .map_err(|e| format!("it is not JSON ({e})"))?;
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, Usage};

    #[test]
    fn raw_line_breaks_inside_strings_are_read_as_escapes() {
        let raw = "{\n  \"line\": \"one\ntwo\\\"\ttab\"\n}";
        assert!(serde_json::from_str::<serde_json::Value>(raw).is_err());
        let value: serde_json::Value =
            serde_json::from_str(&escape_control_characters(raw)).unwrap();
        assert_eq!(value["line"], "one\ntwo\"\ttab");
    }

    /// A model that answers every request with the same text.
    struct Fixed(&'static str);

    #[async_trait]
    impl TextModel for Fixed {
        fn id(&self) -> ModelId {
            ModelId::new("test", "fixed")
        }

        async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError> {
            let format = request
                .response_format
                .expect("structured asks for a schema");
            assert_eq!(format.name, "intent");
            assert_eq!(format.schema["type"], "object");
            assert!(format.schema["properties"]["formats"].is_object());
            Ok(TextResponse {
                model: self.id(),
                content: Some(self.0.to_owned()),
                tool_calls: Vec::new(),
                finish: FinishReason::Stop,
                usage: Usage::default(),
                cost_usd: 0.0,
                notices: Vec::new(),
                wasted: Vec::new(),
            })
        }
    }

    #[tokio::test]
    async fn answers_that_do_not_fit_the_schema_are_refused() {
        for answer in [
            "not json",
            r#"{"category": "music_video"}"#,
            r#"{"mood": 3}"#,
        ] {
            let result =
                structured::<crate::Intent>(&Fixed(answer), "intent", TextRequest::default()).await;
            assert!(
                matches!(result, Err(ModelError::InvalidOutput(_))),
                "{answer}"
            );
        }
    }

    /// A model that answers every request with `answer`, at a price.
    struct Priced(&'static str, &'static str);

    #[async_trait]
    impl TextModel for Priced {
        fn id(&self) -> ModelId {
            ModelId::new(self.0, "m")
        }

        async fn complete(&self, _: TextRequest) -> Result<TextResponse, ModelError> {
            Ok(TextResponse {
                model: self.id(),
                content: Some(self.1.to_owned()),
                tool_calls: Vec::new(),
                finish: FinishReason::Stop,
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 10,
                },
                cost_usd: 0.001,
                notices: Vec::new(),
                wasted: Vec::new(),
            })
        }
    }

    #[tokio::test]
    async fn behind_a_chain_the_next_model_answers_what_one_could_not_and_every_attempt_is_paid() {
        let fits = r#"{"category":"music_video","subject":"a lake","duration":10,"formats":["1:1"],"mood":"calm","style":[],"palette":[],"pace":"slow","narration":false,"constraints":[]}"#;
        let chain = crate::remote::FallbackText::new(vec![
            std::sync::Arc::new(Priced("rambler", "a lake, I think")),
            std::sync::Arc::new(Priced("steady", fits)),
        ])
        .unwrap();
        let (intent, response) =
            structured::<crate::Intent>(&chain, "intent", TextRequest::default())
                .await
                .unwrap();
        assert_eq!(intent.subject, "a lake");
        assert_eq!(response.model.provider, "steady");
        assert_eq!(response.usage.input_tokens, 100);
        assert_eq!(
            response.wasted.len(),
            1,
            "the refused answers are the rambler's"
        );
        assert_eq!(response.wasted[0].model.provider, "rambler");
        assert_eq!(response.wasted[0].usage.input_tokens, 200);
        assert!((response.wasted[0].cost_usd - 0.002).abs() < 1e-12);
        assert!(
            response.notices[0].starts_with("rambler/m failed: the model's answer does not fit: rambler/m answered intent outside its schema twice"),
            "{:?}",
            response.notices
        );
        assert_eq!(response.notices[1], "steady/m answered instead");

        let alone =
            structured::<crate::Intent>(&Priced("rambler", "{}"), "intent", TextRequest::default())
                .await
                .unwrap_err();
        let [wasted] = alone.wasted() else {
            panic!("the refused answers were paid for: {alone:?}");
        };
        assert_eq!(
            (wasted.model.provider.as_str(), wasted.usage.output_tokens),
            ("rambler", 20)
        );
        assert!((wasted.cost_usd - 0.002).abs() < 1e-12);
        assert!(
            alone.to_string().contains("outside its schema twice"),
            "{alone}"
        );
    }
}
