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
}

/// Makes short video clips.
#[async_trait]
pub trait ClipModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Makes one clip.
    async fn generate(&self, request: ClipRequest) -> Result<GeneratedClip, ModelError>;
}

/// Speaks text.
#[async_trait]
pub trait SpeechModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Speaks one text.
    async fn speak(&self, request: SpeechRequest) -> Result<Speech, ModelError>;
}

/// Makes music.
#[async_trait]
pub trait MusicModel: Send + Sync {
    /// The provider and model.
    fn id(&self) -> ModelId;
    /// Makes one piece.
    async fn compose(&self, request: MusicRequest) -> Result<GeneratedMusic, ModelError>;
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
/// model like a schema's, once.
pub async fn structured_as<T>(
    model: &dyn TextModel,
    format: crate::types::JsonSchemaFormat,
    mut request: TextRequest,
    check: impl Fn(&T) -> Result<(), String> + Send + Sync,
) -> Result<(T, TextResponse), ModelError>
where
    T: serde::de::DeserializeOwned,
{
    let schema_name = format.name.clone();
    let validator = jsonschema::validator_for(&format.schema)
        .map_err(|e| ModelError::InvalidRequest(format!("the {schema_name} schema: {e}")))?;
    request.response_format = Some(format);
    let mut asked_again = false;
    // A refused first answer was paid for too: the answer that is kept carries its cost.
    let mut spent = (crate::types::Usage::default(), 0.0);
    loop {
        let mut response = model.complete(request.clone()).await?;
        response.usage.input_tokens += spent.0.input_tokens;
        response.usage.output_tokens += spent.0.output_tokens;
        response.cost_usd += spent.1;
        spent = (response.usage, response.cost_usd);
        let problem = match checked::<T>(&validator, response.content.as_deref())
            .and_then(|value| check(&value).map(|()| value))
        {
            Ok(value) => return Ok((value, response)),
            Err(problem) => problem,
        };
        if asked_again {
            return Err(ModelError::InvalidOutput(format!(
                "{} answered {schema_name} outside its schema twice: {problem}",
                response.model
            )));
        }
        asked_again = true;
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
}
