//! The local text model: a heuristic intent parser behind the structured-output interface,
//! and a rule-based tool caller (see [`super::tools`]) behind the tool-calling one.

use super::intent_reader::{parse_intent, words};
use crate::error::ModelError;
use crate::traits::TextModel;
use crate::types::{FinishReason, ModelId, Role, TextRequest, TextResponse, Usage};
use async_trait::async_trait;

/// The schema name under which the local model extracts an [`Intent`].
pub const INTENT_SCHEMA: &str = "intent";

/// Rule-based text model: extracts an [`Intent`] from a request's last user message when
/// asked for the `intent` schema, and calls the tools it is offered when the person's words
/// ask for one (or says plainly that it did not understand).
#[derive(Debug, Clone, Default)]
pub struct LocalText;

#[async_trait]
impl TextModel for LocalText {
    fn id(&self) -> ModelId {
        ModelId::new("local", "heuristic-1")
    }

    async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError> {
        let unsupported = |what: &str| ModelError::Unsupported {
            provider: self.id().to_string(),
            what: what.to_owned(),
        };
        if !request.tools.is_empty() {
            let (content, tool_calls, finish) =
                match super::tools::read(&request.messages, &request.tools) {
                    super::tools::Reading::Call(calls) => (None, calls, FinishReason::ToolCalls),
                    super::tools::Reading::Say(text) => {
                        (Some(text), Vec::new(), FinishReason::Stop)
                    }
                };
            return Ok(TextResponse {
                model: self.id(),
                content,
                tool_calls,
                finish,
                usage: Usage::default(),
                cost_usd: 0.0,
                notices: Vec::new(),
                wasted: Vec::new(),
            });
        }
        let format = request
            .response_format
            .as_ref()
            .ok_or_else(|| unsupported("write free text"))?;
        if format.name != INTENT_SCHEMA {
            return Err(unsupported(&format!("answer the {:?} schema", format.name)));
        }
        let prompt = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .and_then(|m| m.content.as_deref())
            .ok_or_else(|| ModelError::InvalidRequest("no user message to read".into()))?;
        let intent = parse_intent(prompt).bounded();
        let content =
            serde_json::to_string(&intent).map_err(|e| ModelError::InvalidOutput(e.to_string()))?;
        Ok(TextResponse {
            model: self.id(),
            content: Some(content),
            tool_calls: Vec::new(),
            finish: FinishReason::Stop,
            usage: Usage {
                input_tokens: words(prompt).len() as u64,
                output_tokens: 0,
            },
            cost_usd: 0.0,
            notices: Vec::new(),
            wasted: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{Format, Intent};

    #[tokio::test]
    async fn answers_the_intent_schema_and_refuses_others() {
        let model = LocalText;
        let request = TextRequest {
            messages: vec![crate::Message::user("a dreamy 15 s square clip")],
            ..TextRequest::default()
        };
        let (intent, response) =
            crate::structured::<Intent>(&model, INTENT_SCHEMA, request.clone())
                .await
                .unwrap();
        assert_eq!(intent.formats, [Format::Square]);
        assert_eq!(intent.duration, 15.0);
        assert_eq!(response.cost_usd, 0.0);
        let other = crate::structured::<Intent>(&model, "plan", request).await;
        assert!(matches!(other, Err(ModelError::Unsupported { .. })));
    }
}
