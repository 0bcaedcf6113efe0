//! Vendors with APIs of their own (Anthropic, Gemini, Mistral, xAI, Cohere, DeepSeek, Groq
//! and the rest rig knows), through rig's provider registry: chat with tools and structured
//! output. rig's types stay in this module; Montage's policy (limits, retries, breaker) wraps
//! every call as it wraps the OpenAI-compatible ones.

use super::Prices;
use super::policy::{CallError, Caller, Failure, Policy, PolicyConfig, explain, retry_after};
use crate::error::ModelError;
use crate::traits::TextModel;
use crate::types::{
    FinishReason, ModelId, Picture, Role, TextRequest, TextResponse, ToolCall, Usage,
};
use async_trait::async_trait;
use rig_core::completion::message::{
    AssistantContent, AssistantMessage, CallId, DocumentSourceKind, Image, ImageDetail,
    ImageMediaType, Message as RigMessage, ToolCall as RigToolCall, ToolChoice, ToolFunction,
    ToolName, UserContent,
};
use rig_core::completion::{CompletionRequest, CompletionResponse, ToolDefinition};
use rig_core::driver::DynModel;
use rig_core::error::ProviderError;
use rig_core::operation::Completion;
use rig_core::providers::registry::{ProviderConfig, ProviderId, ProviderRef};
use serde_json::Value;

/// How to reach one vendor.
#[derive(Clone)]
pub struct VendorConfig {
    /// rig's name for it: `anthropic`, `gemini`, `mistral`, `xai`, `cohere`, …
    pub vendor: String,
    /// Where it is served, when not at the vendor's own address (a proxy, a test server).
    pub base_url: Option<String>,
    /// The environment variable holding the key.
    pub key_variable: String,
    /// The key, when the variable is set.
    pub key: Option<String>,
    /// The model.
    pub model: String,
    /// What tokens cost.
    pub prices: Prices,
    /// Limits, timeouts, retries, breaker.
    pub policy: PolicyConfig,
    /// Longest answer, in tokens (Anthropic requires one).
    pub max_tokens: u64,
}

impl std::fmt::Debug for VendorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorConfig")
            .field("vendor", &self.vendor)
            .field("base_url", &self.base_url)
            .field("key_variable", &self.key_variable)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .finish()
    }
}

/// The variable a vendor's key is read from by default (`ANTHROPIC_API_KEY`), or `None` for
/// a vendor rig does not know.
pub fn key_variable(vendor: &str) -> Option<&'static str> {
    ProviderId::resolve(vendor).ok()?.api_key_env()
}

/// A text model of a vendor rig speaks to.
pub struct VendorText {
    config: VendorConfig,
    model: DynModel<Completion>,
    /// The vendor's configuration (key included), for listing its models.
    provider: ProviderConfig,
    http: reqwest::Client,
    policy: Policy,
}

impl std::fmt::Debug for VendorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorText")
            .field("config", &self.config)
            .finish()
    }
}

impl VendorText {
    /// The vendor's model. Fails for a vendor rig does not know (naming those it does) and
    /// for a missing key.
    pub fn connect(config: VendorConfig) -> Result<VendorText, ModelError> {
        let id = ProviderId::resolve(&config.vendor).map_err(|e| {
            ModelError::InvalidRequest(format!("no vendor {:?} ({e})", config.vendor))
        })?;
        let key = config.key.clone().ok_or_else(|| {
            ModelError::Rejected(format!(
                "{} needs a key, and {} is not set",
                config.vendor, config.key_variable
            ))
        })?;
        let mut provider = id.config(key.clone()).ok_or_else(|| {
            ModelError::InvalidRequest(format!(
                "{} is not one Montage can call directly",
                config.vendor
            ))
        })?;
        if let Some(base_url) = &config.base_url {
            provider = provider.with_base_url(base_url.clone());
        }
        let reference = ProviderRef::configured(provider.clone(), config.model.clone())
            .map_err(|e| ModelError::InvalidRequest(format!("model {:?}: {e}", config.model)))?;
        let http = super::openai::client(&config.policy)?;
        let model =
            reference.completion_model_with(key, rig_reqwest::ReqwestClient::from(http.clone()));
        Ok(VendorText {
            policy: Policy::new(config.policy.clone()),
            config,
            model,
            provider,
            http,
        })
    }

    /// Where it is served, when not at the vendor's own address.
    pub fn base_url(&self) -> Option<&str> {
        self.config.base_url.as_deref()
    }

    /// The environment variable its key came from.
    pub fn key_variable(&self) -> &str {
        &self.config.key_variable
    }

    /// Asks the vendor which models the key may use (a free call): `Ok` when ours is one
    /// of them, else what is wrong. A dated id (`claude-sonnet-4-5-20250929`) serves the
    /// alias it starts with.
    pub async fn check(&self) -> Result<(), String> {
        let listed = self
            .policy
            .call(|| {
                let provider = self.provider.clone();
                let http = rig_reqwest::ReqwestClient::from(self.http.clone());
                async move {
                    match provider {
                        ProviderConfig::OpenAi(c) => c.connect(http).list_models().await,
                        ProviderConfig::Anthropic(c) => c.connect(http).list_models().await,
                        ProviderConfig::Gemini(c) => c.connect(http).list_models().await,
                    }
                    .map_err(failure)
                }
            })
            .await
            .map_err(|error| self.explain(error).to_string())?;
        let ours = &self.config.model;
        let ids: Vec<String> = listed.into_iter().map(|m| m.id).collect();
        let serves = |id: &String| {
            let id = id.strip_prefix("models/").unwrap_or(id);
            id == ours
                || id
                    .strip_prefix(ours.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        };
        if ids.iter().any(serves) {
            return Ok(());
        }
        let mut some: Vec<&str> = ids.iter().map(String::as_str).take(8).collect();
        if ids.len() > some.len() {
            some.push("…");
        }
        Err(format!(
            "{} does not offer {ours:?} to this key (it offers {})",
            self.config.vendor,
            if some.is_empty() {
                "none".to_owned()
            } else {
                some.join(", ")
            }
        ))
    }

    fn explain(&self, error: CallError) -> ModelError {
        explain(
            &Caller {
                provider: &self.config.vendor,
                key_variable: &self.config.key_variable,
                base_url: self.config.base_url.as_deref().unwrap_or("its own address"),
                model: &self.config.model,
                timeout: self.config.policy.timeout,
            },
            error,
        )
    }
}

/// Our conversation as rig's request.
fn rig_request(request: &TextRequest, max_tokens: u64) -> Result<CompletionRequest, ModelError> {
    let invalid = |what: String| ModelError::InvalidRequest(what);
    let tool_name =
        |name: &str| ToolName::new(name).map_err(|e| invalid(format!("a tool name: {e}")));
    let mut preamble = Vec::new();
    let mut history = Vec::new();
    // The name of each call, for the results that answer it.
    let mut called: Vec<(String, String)> = Vec::new();
    for message in &request.messages {
        let text = message.content.clone().unwrap_or_default();
        match message.role {
            Role::System => preamble.push(text),
            Role::User => history.push(user_message(text, &message.pictures)),
            Role::Assistant => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(AssistantContent::text(text));
                }
                for call in &message.tool_calls {
                    called.push((call.id.clone(), call.name.clone()));
                    content.push(AssistantContent::ToolCall(RigToolCall::new(
                        CallId::from_wire(call.id.clone()),
                        ToolFunction::new(tool_name(&call.name)?, call.arguments.clone()),
                    )));
                }
                history.push(RigMessage::Assistant(AssistantMessage::new(content)));
            }
            Role::Tool => {
                let id = message.tool_call_id.clone().unwrap_or_default();
                let name = called
                    .iter()
                    .find(|(call, _)| *call == id)
                    .map(|(_, name)| name.clone())
                    .ok_or_else(|| invalid(format!("a tool result answers no call ({id})")))?;
                history.push(RigMessage::tool_result(
                    CallId::from_wire(id),
                    tool_name(&name)?,
                    text,
                ));
            }
        }
    }
    let last = history
        .pop()
        .ok_or_else(|| invalid("there is no message to answer".into()))?;
    let mut rig = CompletionRequest::new(last)
        .messages(history)
        .max_tokens(max_tokens)
        .temperature(request.temperature.map(f64::from));
    if !preamble.is_empty() {
        rig = rig.preamble(preamble.join("\n\n"));
    }
    if let Some(seed) = request.seed {
        rig = rig.seed(seed);
    }
    if !request.tools.is_empty() {
        let mut tools = Vec::new();
        for tool in &request.tools {
            tools.push(ToolDefinition {
                name: tool_name(&tool.name)?,
                description: tool.description.clone(),
                parameters: tool.parameters.clone(),
            });
        }
        rig = rig.tools(tools).tool_choice(match &request.tool_choice {
            Some(name) => ToolChoice::Specific {
                function_names: vec![tool_name(name)?],
            },
            None => ToolChoice::Auto,
        });
    }
    if let Some(format) = &request.response_format {
        let schema = schemars::Schema::try_from(format.schema.clone())
            .map_err(|e| invalid(format!("the {} schema: {e}", format.name)))?;
        rig = rig.output_schema(schema);
    }
    Ok(rig)
}

/// A user's turn: the text, then each picture after its caption.
fn user_message(text: String, pictures: &[Picture]) -> RigMessage {
    if pictures.is_empty() {
        return RigMessage::user(text);
    }
    let mut content = vec![UserContent::text(text)];
    for picture in pictures {
        content.push(UserContent::text(picture.caption.clone()));
        content.push(UserContent::Image(Image {
            data: DocumentSourceKind::Base64(picture.jpeg_base64.clone()),
            media_type: Some(ImageMediaType::JPEG),
            detail: Some(ImageDetail::Low),
            ..Image::default()
        }));
    }
    RigMessage::User { content }
}

/// How a call rig made failed, as the policy weighs failures.
fn failure(error: ProviderError) -> Failure {
    let status_of = |response: &rig_core::ProviderResponseError, or: u16| Failure::Status {
        status: response.status.map_or(or, |s| s.as_u16()),
        message: said(&response.body),
        retry_after: response.headers.as_ref().and_then(retry_after),
    };
    match error {
        ProviderError::InvalidAuthentication(response) => status_of(&response, 401),
        ProviderError::ProviderResponse(response) if response.status.is_some() => {
            status_of(&response, 500)
        }
        ProviderError::Http(error) => match &*error {
            rig_core::http_client::Error::InvalidStatusCodeWithDetails {
                status,
                body,
                headers,
            } => Failure::Status {
                status: status.as_u16(),
                message: said(body),
                retry_after: retry_after(headers),
            },
            rig_core::http_client::Error::Instance(inner) => {
                match inner.downcast_ref::<reqwest::Error>() {
                    Some(e) if e.is_timeout() => Failure::Timeout,
                    _ => Failure::Connection(without_urls(&inner.to_string())),
                }
            }
            other => Failure::Connection(without_urls(&other.to_string())),
        },
        other => Failure::Garbled(without_urls(&other.to_string())),
    }
}

/// `text` with every URL in it left out: some vendors (Gemini) take the key in the query,
/// and transport errors quote the URL they failed on.
fn without_urls(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            let bare = word.trim_start_matches(['(', '"', '\'']);
            match bare.starts_with("http://") || bare.starts_with("https://") {
                true => "(a URL)",
                false => word,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of a vendor's error body (`{"error": {"message": …}}`), or the body.
fn said(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[async_trait]
impl TextModel for VendorText {
    fn id(&self) -> ModelId {
        ModelId::new(self.config.vendor.clone(), self.config.model.clone())
    }

    async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError> {
        let rig = rig_request(&request, self.config.max_tokens)?;
        let answer: CompletionResponse = self
            .policy
            .call(|| {
                let call = self.model.call(rig.clone());
                async move { call.await.map_err(failure) }
            })
            .await
            .map_err(|error| self.explain(error))?;
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in &answer.choice {
            match block {
                AssistantContent::Text(text) => content.push_str(&text.text),
                AssistantContent::ToolCall(call) => tool_calls.push(ToolCall {
                    id: call.id.wire().into_owned(),
                    name: call.function.name.as_str().to_owned(),
                    arguments: Value::Object(call.function.arguments.clone()),
                }),
                _ => {}
            }
        }
        let finish = match answer.finish_reason() {
            Some(rig_core::completion::FinishReason::ToolCalls) => FinishReason::ToolCalls,
            Some(rig_core::completion::FinishReason::Length) => FinishReason::Length,
            Some(rig_core::completion::FinishReason::ContentFilter) => FinishReason::ContentFilter,
            _ if !tool_calls.is_empty() => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        };
        let usage = Usage {
            input_tokens: answer.usage.input_tokens.unwrap_or(0),
            output_tokens: answer.usage.output_tokens.unwrap_or(0),
        };
        Ok(TextResponse {
            model: self.id(),
            content: (!content.is_empty()).then_some(content),
            tool_calls,
            finish,
            cost_usd: self.config.prices.cost(&usage),
            usage,
            notices: Vec::new(),
            wasted: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Message, ToolSpec};

    #[test]
    fn urls_and_the_keys_in_their_queries_are_left_out_of_failures() {
        let said = without_urls(
            "error sending request for url (https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSyPLANTED): connection refused",
        );
        assert!(
            !said.contains("AIza") && !said.contains("googleapis"),
            "{said}"
        );
        assert!(said.ends_with("connection refused"), "{said}");
    }

    #[test]
    fn a_conversation_with_a_tool_round_trip_maps_onto_rig() {
        let call = ToolCall {
            id: "toolu_01".into(),
            name: "make_video".into(),
            arguments: serde_json::json!({ "prompt": "neon city" }),
        };
        let mut assistant = Message::new(Role::Assistant, String::new());
        assistant.content = None;
        assistant.tool_calls = vec![call];
        let mut result = Message::new(Role::Tool, "{\"run\": \"r1\"}".to_owned());
        result.tool_call_id = Some("toolu_01".into());
        let request = TextRequest {
            messages: vec![
                Message::system("You make videos."),
                Message::user("make a neon city video"),
                assistant,
                result,
            ],
            tools: vec![ToolSpec {
                name: "make_video".into(),
                description: "Makes a video".into(),
                parameters: serde_json::json!({ "type": "object" }),
            }],
            ..TextRequest::default()
        };
        let rig = rig_request(&request, 1024).unwrap();
        assert_eq!(rig.system_instructions(), Some("You make videos."));
        assert_eq!(rig.tools.len(), 1);
        let mut orphan = request.clone();
        orphan.messages.remove(2);
        let error = rig_request(&orphan, 1024).unwrap_err();
        assert!(error.to_string().contains("answers no call"), "{error}");
    }
}
