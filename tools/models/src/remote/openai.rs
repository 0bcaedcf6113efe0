//! Any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio,
//! OpenRouter, Groq, Together, DeepSeek, Gemini's OpenAI-compatible endpoint): chat
//! completions with tools and structured output. The answers are read with async-openai's
//! wire types; they never leave this module.

use super::policy::{CallError, Failure, Policy, PolicyConfig, retry_after};
use super::schema as reshape;
use super::{Prices, StructuredOutput, ToolCalling};
use crate::error::ModelError;
use crate::traits::TextModel;
use crate::types::{
    FinishReason, Message, ModelId, Role, TextRequest, TextResponse, ToolCall, Usage,
};
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason as WireFinish,
};
use async_trait::async_trait;
use serde_json::{Value, json};

/// How to reach one OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The provider's name in model ids and messages (`openai`, `ollama`, …).
    pub provider: String,
    /// The API's base, up to and including `/v1`.
    pub base_url: String,
    /// The environment variable holding the key (its name appears in messages, never the key).
    pub key_variable: String,
    /// The key, when the variable is set.
    pub key: Option<String>,
    /// The model; `None` asks the endpoint for its only one.
    pub model: Option<String>,
    /// What tokens cost.
    pub prices: Prices,
    /// How the endpoint takes structured output.
    pub structured: StructuredOutput,
    /// How the endpoint is asked to call tools.
    pub tool_calling: ToolCalling,
    /// Limits, timeouts, retries, breaker.
    pub policy: PolicyConfig,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("key_variable", &self.key_variable)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .finish()
    }
}

/// A text model behind an OpenAI-compatible endpoint.
pub struct OpenAiText {
    config: OpenAiConfig,
    model: String,
    http: reqwest::Client,
    policy: Policy,
    /// The endpoint refused a schema's limits (`maxLength`, …): it gets schemas without
    /// them from then on.
    limits_refused: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for OpenAiText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiText")
            .field("config", &self.config)
            .field("model", &self.model)
            .finish()
    }
}

/// An HTTP client held to `policy`'s timeouts (every remote provider's).
pub(super) fn client(policy: &PolicyConfig) -> Result<reqwest::Client, ModelError> {
    reqwest::Client::builder()
        .connect_timeout(policy.timeout.min(std::time::Duration::from_secs(10)))
        .timeout(policy.timeout)
        .build()
        .map_err(|e| ModelError::Unavailable(format!("cannot make an HTTP client: {e}")))
}

impl OpenAiText {
    /// Connects to the endpoint. Without a configured model it asks `GET /models` and takes
    /// the only one, or says which to choose.
    pub async fn connect(config: OpenAiConfig) -> Result<OpenAiText, ModelError> {
        let http = client(&config.policy)?;
        let policy = Policy::new(config.policy.clone());
        let model = match &config.model {
            Some(model) => model.clone(),
            None => only_model(&config, &http, &policy).await?,
        };
        Ok(OpenAiText {
            config,
            model,
            http,
            policy,
            limits_refused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The request body in the endpoint's dialect.
    fn body(&self, request: &TextRequest) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(wire_message).collect();
        let mut body = json!({ "model": self.model, "messages": messages });
        if !request.tools.is_empty() {
            body["tools"] = Value::Array(
                request
                    .tools
                    .iter()
                    .map(|tool| {
                        json!({
                            "type": "function",
                            "function": {
                                "name": tool.name,
                                "description": tool.description,
                                "parameters": tool.parameters,
                            },
                        })
                    })
                    .collect(),
            );
            body["tool_choice"] = match &request.tool_choice {
                Some(name) => json!({ "type": "function", "function": { "name": name } }),
                None => json!("auto"),
            };
        }
        if let Some(format) = &request.response_format {
            let schema = if self
                .limits_refused
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                reshape::without_limits(&format.schema)
            } else {
                format.schema.clone()
            };
            body["response_format"] = match self.config.structured {
                StructuredOutput::JsonSchema => json!({
                    "type": "json_schema",
                    "json_schema": { "name": format.name, "schema": schema, "strict": false },
                }),
                StructuredOutput::JsonSchemaStrict => json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": format.name,
                        "schema": reshape::strict(&schema),
                        "strict": true,
                    },
                }),
                StructuredOutput::JsonObject => json!({
                    "type": "json_object",
                    "schema": schema,
                }),
            };
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        sorted_keys(body)
    }

    fn explain(&self, error: CallError) -> ModelError {
        explain(&self.config, &self.model, error)
    }
}

/// What a failed call to this endpoint tells the person.
fn explain(config: &OpenAiConfig, model: &str, error: CallError) -> ModelError {
    super::policy::explain(
        &super::policy::Caller {
            provider: &config.provider,
            key_variable: &config.key_variable,
            base_url: &config.base_url,
            model,
            timeout: config.policy.timeout,
        },
        error,
    )
}

/// `value` with every object's keys in alphabetical order. Schemas come out in field order
/// (serde_json keeps insertion order in this build), and a grammar-constrained server writes
/// the properties in the order it is given: small models ramble less, and answer the same
/// way across builds, when the order does not depend on how a struct was written.
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

/// One of our messages in the wire's shape.
fn wire_message(message: &Message) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut wire = json!({ "role": role, "content": message.content });
    if !message.pictures.is_empty() {
        let mut parts =
            vec![json!({ "type": "text", "text": message.content.clone().unwrap_or_default() })];
        for picture in &message.pictures {
            parts.push(json!({ "type": "text", "text": picture.caption }));
            parts.push(json!({
                "type": "image_url",
                "image_url": {
                    "url": format!("data:image/jpeg;base64,{}", picture.jpeg_base64),
                    "detail": "low",
                },
            }));
        }
        wire["content"] = Value::Array(parts);
    }
    if !message.tool_calls.is_empty() {
        // Some servers (llama.cpp's) want text beside the calls, if only none.
        if message.content.is_none() {
            wire["content"] = json!("");
        }
        wire["tool_calls"] = Value::Array(
            message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments.to_string() },
                    })
                })
                .collect(),
        );
    }
    if let Some(id) = &message.tool_call_id {
        wire["tool_call_id"] = json!(id);
    }
    wire
}

/// The innermost cause of a transport error ("Connection refused"), without the URL (its
/// query could carry something private).
pub(super) fn cause(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut innermost: &dyn std::error::Error = &error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Sends `body` to `url` and reads the answer as `T`, as one attempt.
async fn attempt<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    key: Option<&str>,
    url: &str,
    body: Option<&Value>,
) -> Result<T, Failure> {
    let text = answered(http, key, url, body)
        .await?
        .text()
        .await
        .map_err(transport)?;
    serde_json::from_str(&text).map_err(|e| Failure::Garbled(e.to_string()))
}

/// How a request that got no answer failed.
fn transport(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Connection(cause(error))
    }
}

/// Sends `body` (a GET without one) and hands back a successful response; any other status
/// is a failure with the provider's words and its `Retry-After`.
async fn answered(
    http: &reqwest::Client,
    key: Option<&str>,
    url: &str,
    body: Option<&Value>,
) -> Result<reqwest::Response, Failure> {
    let mut request = match body {
        Some(body) => http.post(url).json(body),
        None => http.get(url),
    };
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let after = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(Failure::Status {
        status: status.as_u16(),
        message,
        retry_after: after,
    })
}

/// The models the endpoint serves (`GET /models`); `model` names the configured one in
/// what a failure says.
async fn list_models(
    config: &OpenAiConfig,
    http: &reqwest::Client,
    policy: &Policy,
    model: &str,
) -> Result<Vec<String>, ModelError> {
    let url = format!("{}/models", config.base_url.trim_end_matches('/'));
    let listed: Value = policy
        .call(|| attempt(http, config.key.as_deref(), &url, None))
        .await
        .map_err(|error| explain(config, model, error))?;
    Ok(listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

/// The endpoint's only model, or an error listing those to choose from.
async fn only_model(
    config: &OpenAiConfig,
    http: &reqwest::Client,
    policy: &Policy,
) -> Result<String, ModelError> {
    let ids = list_models(config, http, policy, "(any)").await?;
    let url = format!("{}/models", config.base_url.trim_end_matches('/'));
    match ids.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ModelError::Rejected(format!(
            "{} serves no model at {url}",
            config.provider
        ))),
        many => Err(ModelError::Rejected(format!(
            "{} serves {} models; choose one (models.{}.model): {}",
            config.provider,
            many.len(),
            config.provider,
            many.join(", ")
        ))),
    }
}

#[async_trait]
impl TextModel for OpenAiText {
    fn id(&self) -> ModelId {
        ModelId::new(&self.config.provider, &self.model)
    }

    async fn complete(&self, request: TextRequest) -> Result<TextResponse, ModelError> {
        if self.routes(&request) {
            return self.routed(request, None).await;
        }
        self.once(&request).await
    }

    async fn stream(
        &self,
        request: TextRequest,
        piece: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<TextResponse, ModelError> {
        if self.routes(&request) {
            return self.routed(request, Some(piece)).await;
        }
        self.streaming(&request, piece).await
    }
}

/// A whole answer, gathered from one response or a stream of chunks.
#[derive(Debug, Default)]
struct Collected {
    content: Option<String>,
    /// Tool calls by their index in the stream: id, name, arguments so far.
    calls: Vec<(String, String, String)>,
    finish: Option<WireFinish>,
    usage: Option<Usage>,
}

/// Reads a streamed answer (server-sent events) as one attempt, handing on text as it
/// comes. A stream that breaks after text went out cannot be retried without repeating it.
async fn streamed(
    http: &reqwest::Client,
    key: Option<&str>,
    url: &str,
    body: &Value,
    piece: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    begun: &std::sync::atomic::AtomicBool,
) -> Result<Collected, Failure> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    let broken = |failure: Failure| {
        if begun.load(Ordering::SeqCst) {
            Failure::Garbled(format!("the answer broke off after it began ({failure:?})"))
        } else {
            failure
        }
    };
    let response = answered(http, key, url, Some(body)).await?;
    let mut events = response.bytes_stream().eventsource();
    let mut collected = Collected::default();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| broken(Failure::Connection(e.to_string())))?;
        if event.data.trim() == "[DONE]" {
            break;
        }
        let chunk: CreateChatCompletionStreamResponse = serde_json::from_str(&event.data)
            .map_err(|e| broken(Failure::Garbled(e.to_string())))?;
        if let Some(usage) = chunk.usage {
            collected.usage = Some(Usage {
                input_tokens: u64::from(usage.prompt_tokens),
                output_tokens: u64::from(usage.completion_tokens),
            });
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                begun.store(true, Ordering::SeqCst);
                piece(&text);
                collected
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            for call in choice.delta.tool_calls.unwrap_or_default() {
                let index = call.index as usize;
                if collected.calls.len() <= index {
                    collected.calls.resize(index + 1, Default::default());
                }
                let slot = &mut collected.calls[index];
                if let Some(id) = call.id {
                    slot.0 = id;
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name {
                        slot.1.push_str(&name);
                    }
                    if let Some(arguments) = function.arguments {
                        slot.2.push_str(&arguments);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                collected.finish = choice.finish_reason;
            }
        }
    }
    Ok(collected)
}

/// What a check of an endpoint found.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Where it is.
    pub base_url: String,
    /// The variable the key comes from.
    pub key_variable: String,
    /// Whether that variable holds a key.
    pub key_present: bool,
    /// `Ok` with the models it serves when it answers and serves ours; what is wrong else.
    pub verdict: Result<Vec<String>, String>,
}

impl OpenAiText {
    /// Whether `request` goes the routed way: tools offered, none chosen, and this endpoint
    /// configured to route.
    fn routes(&self, request: &TextRequest) -> bool {
        self.config.tool_calling == ToolCalling::Routed
            && !request.tools.is_empty()
            && request.tool_choice.is_none()
    }

    /// Asks the endpoint which models it serves (`GET /models`): it answers, takes the key,
    /// and serves the configured model, or what is wrong.
    pub async fn check(&self) -> Checked {
        let listed = list_models(&self.config, &self.http, &self.policy, &self.model).await;
        let verdict = listed.map_err(|e| e.to_string()).and_then(|ids| {
            if ids.contains(&self.model) {
                Ok(ids)
            } else {
                Err(format!(
                    "{} does not serve {:?} (it serves {})",
                    self.config.provider,
                    self.model,
                    if ids.is_empty() {
                        "none".to_owned()
                    } else {
                        ids.join(", ")
                    }
                ))
            }
        });
        Checked {
            base_url: self.config.base_url.clone(),
            key_variable: self.config.key_variable.clone(),
            key_present: self.config.key.is_some(),
            verdict,
        }
    }

    /// [`ToolCalling::Routed`]: which tool (structured output), then that tool forced; words
    /// alone after a tool's result or when no tool fits.
    /// Words are streamed to `piece`, when given; a tool call comes whole.
    async fn routed(
        &self,
        mut request: TextRequest,
        piece: Option<&(dyn for<'s> Fn(&'s str) + Send + Sync)>,
    ) -> Result<TextResponse, ModelError> {
        let after_tool = request
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Tool);
        let mut spent = (Usage::default(), 0.0);
        let choice = if after_tool {
            None
        } else {
            let mut names: Vec<Value> = request.tools.iter().map(|t| json!(t.name)).collect();
            names.push(json!("none"));
            let mut question = request.clone();
            question.tools.clear();
            question.messages.push(Message::new(
                Role::System,
                format!(
                    "Which tool carries out the person's last message? Tools: {}. Answer \"none\" \
                     to answer in words.",
                    request
                        .tools
                        .iter()
                        .map(|t| format!("{} ({})", t.name, t.description))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
            question.response_format = Some(crate::types::JsonSchemaFormat {
                name: "tool_choice".into(),
                schema: json!({
                    "type": "object",
                    "properties": { "tool": { "type": "string", "enum": names } },
                    "required": ["tool"],
                    "additionalProperties": false,
                }),
            });
            let answer = self.once(&question).await?;
            spent = (answer.usage, answer.cost_usd);
            answer
                .content
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .and_then(|v| v["tool"].as_str().map(str::to_owned))
                .filter(|name| request.tools.iter().any(|t| t.name == *name))
        };
        let mut response = match (choice, piece) {
            (Some(name), _) => {
                request.tool_choice = Some(name);
                self.once(&request).await?
            }
            (None, Some(piece)) => {
                request.tools.clear();
                self.streaming(&request, piece).await?
            }
            (None, None) => {
                request.tools.clear();
                self.once(&request).await?
            }
        };
        response.usage.input_tokens += spent.0.input_tokens;
        response.usage.output_tokens += spent.0.output_tokens;
        response.cost_usd += spent.1;
        Ok(response)
    }

    /// One chat completion, streamed.
    async fn streaming(
        &self,
        request: &TextRequest,
        piece: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<TextResponse, ModelError> {
        let mut body = self.body(request);
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
        let url = self.url("/chat/completions");
        let key = self.config.key.as_deref();
        let begun = std::sync::atomic::AtomicBool::new(false);
        let streamed = self
            .policy
            .call(|| streamed(&self.http, key, &url, &body, piece, &begun))
            .await
            .map_err(|error| self.explain(error))?;
        self.finish(streamed)
    }

    /// One chat completion. An endpoint that refuses a schema is asked once more with the
    /// schema's limits left out (and gets them left out from then on); the answer is checked
    /// against the whole schema by the caller either way.
    async fn once(&self, request: &TextRequest) -> Result<TextResponse, ModelError> {
        let answer = match self.call(&self.body(request)).await {
            Err(CallError::Failed {
                failure:
                    Failure::Status {
                        status: 400,
                        message,
                        ..
                    },
                ..
            }) if request.response_format.is_some()
                && !self
                    .limits_refused
                    .load(std::sync::atomic::Ordering::Relaxed)
                && reshape::refuses_schema(&message) =>
            {
                tracing::warn!(provider = %self.config.provider, %message, "the endpoint refused a schema; sending it without limits");
                self.limits_refused
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let mut response = self.read(
                    self.call(&self.body(request))
                        .await
                        .map_err(|error| self.explain(error))?,
                )?;
                response.notices.push(format!(
                    "{} refused the schema's limits ({message}); it gets schemas without them, and Montage checks every answer against the whole schema",
                    self.config.provider
                ));
                response
            }
            answered => self.read(answered.map_err(|error| self.explain(error))?)?,
        };
        Ok(self.without_forced_nulls(request, answer))
    }

    /// The answer to a strict schema without the `null`s strict mode made the model write
    /// for optional properties.
    fn without_forced_nulls(
        &self,
        request: &TextRequest,
        mut answer: TextResponse,
    ) -> TextResponse {
        if self.config.structured != StructuredOutput::JsonSchemaStrict {
            return answer;
        }
        let (Some(format), Some(content)) = (&request.response_format, &answer.content) else {
            return answer;
        };
        if let Ok(mut value) = serde_json::from_str::<Value>(content) {
            reshape::drop_optional_nulls(&mut value, &format.schema);
            answer.content = Some(value.to_string());
        }
        answer
    }

    /// The `embedding` of each text from `/embeddings`, in the order of `texts` (their shape
    /// is checked by the caller), and what the call cost.
    pub(super) async fn embeddings(
        &self,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<(Vec<Value>, f64), ModelError> {
        let url = self.url("/embeddings");
        let key = self.config.key.as_deref();
        let mut body = json!({ "model": self.model, "input": texts, "encoding_format": "float" });
        if let Some(dimensions) = dimensions {
            body["dimensions"] = json!(dimensions);
        }
        let answer: Value = self
            .policy
            .call(|| attempt(&self.http, key, &url, Some(&body)))
            .await
            .map_err(|error| self.explain(error))?;
        let garbled = || {
            ModelError::InvalidOutput(format!(
                "{} answered embeddings without a data list",
                self.config.provider
            ))
        };
        let mut data: Vec<(u64, Value)> = answer["data"]
            .as_array()
            .ok_or_else(garbled)?
            .iter()
            .enumerate()
            .map(|(n, item)| {
                let index = item["index"].as_u64().unwrap_or(n as u64);
                (index, item["embedding"].clone())
            })
            .collect();
        data.sort_by_key(|(index, _)| *index);
        let usage = Usage {
            input_tokens: answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: 0,
        };
        Ok((
            data.into_iter().map(|(_, v)| v).collect(),
            self.config.prices.cost(&usage),
        ))
    }

    /// One chat completion of a ready body, as the policy's call ended.
    async fn call(&self, body: &Value) -> Result<CreateChatCompletionResponse, CallError> {
        let url = self.url("/chat/completions");
        let key = self.config.key.as_deref();
        self.policy
            .call(|| attempt(&self.http, key, &url, Some(body)))
            .await
    }

    /// Our answer from the endpoint's.
    fn read(&self, answer: CreateChatCompletionResponse) -> Result<TextResponse, ModelError> {
        let choice = answer.choices.into_iter().next().ok_or_else(|| {
            ModelError::InvalidOutput(format!("{} answered with no choice", self.config.provider))
        })?;
        let calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => {
                    Some((call.id, call.function.name, call.function.arguments))
                }
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        self.finish(Collected {
            content: choice.message.content,
            calls,
            finish: choice.finish_reason,
            usage: answer.usage.map(|u| Usage {
                input_tokens: u64::from(u.prompt_tokens),
                output_tokens: u64::from(u.completion_tokens),
            }),
        })
    }

    /// Our answer from the wire's, with the call's cost.
    fn finish(&self, collected: Collected) -> Result<TextResponse, ModelError> {
        let mut tool_calls = Vec::new();
        for (id, name, arguments) in collected.calls {
            let arguments = serde_json::from_str(&arguments).map_err(|e| {
                ModelError::InvalidOutput(format!(
                    "the arguments of its call to {name} are not JSON: {e}"
                ))
            })?;
            tool_calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
        let usage = collected.usage.unwrap_or_default();
        let finish = match collected.finish {
            Some(WireFinish::Length) => FinishReason::Length,
            Some(WireFinish::ToolCalls | WireFinish::FunctionCall) => FinishReason::ToolCalls,
            Some(WireFinish::ContentFilter) => FinishReason::ContentFilter,
            Some(WireFinish::Stop) | None if !tool_calls.is_empty() => FinishReason::ToolCalls,
            Some(WireFinish::Stop) | None => FinishReason::Stop,
        };
        Ok(TextResponse {
            model: self.id(),
            content: collected.content,
            tool_calls,
            finish,
            cost_usd: self.config.prices.cost(&usage),
            usage,
            notices: Vec::new(),
            wasted: Vec::new(),
        })
    }
}
