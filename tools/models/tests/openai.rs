//! The OpenAI-compatible text provider against recorded exchanges in OpenAI's real format
//! (tests/cassettes/openai), replayed by a local HTTP server that matches the requests.

use montage_models::remote::openai::{OpenAiConfig, OpenAiText};
use montage_models::remote::{FallbackText, Prices};
use montage_models::remote::{StructuredOutput, ToolCalling};
use montage_models::{
    FinishReason, Intent, Message, ModelError, TextModel, TextRequest, ToolSpec, structured,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A key planted to prove it never appears in what the provider says.
const PLANTED_KEY: &str = "sk-test-planted-0123456789abcdefPLNT";

mod common;

fn cassette(name: &str) -> Value {
    common::cassette("openai", name)
}

fn config(server: &MockServer, model: Option<&str>) -> OpenAiConfig {
    OpenAiConfig {
        provider: "openai".into(),
        base_url: format!("{}/v1", server.uri()),
        key_variable: "OPENAI_API_KEY".into(),
        key: Some(PLANTED_KEY.into()),
        model: model.map(str::to_owned),
        prices: Prices {
            input_per_million: 0.4,
            output_per_million: 1.6,
        },
        structured: StructuredOutput::JsonSchema,
        tool_calling: ToolCalling::Auto,
        policy: common::quick_policy(),
    }
}

/// A mock of the chat completions endpoint, to refine.
fn chat_completions() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/v1/chat/completions"))
}

fn asking(text: &str) -> TextRequest {
    TextRequest {
        messages: vec![Message::system("You make videos."), Message::user(text)],
        ..TextRequest::default()
    }
}

#[tokio::test]
async fn a_tool_call_comes_back_with_its_arguments_and_its_cost() {
    let server = MockServer::start().await;
    chat_completions()
        .and(header("authorization", format!("Bearer {PLANTED_KEY}").as_str()))
        .and(body_partial_json(json!({
            "model": "gpt-4.1-mini",
            "tool_choice": { "type": "function", "function": { "name": "create_video" } },
            "tools": [{ "type": "function", "function": { "name": "create_video" } }],
            "messages": [{ "role": "system" }, { "role": "user", "content": "make a neon city video" }],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("tool_call")))
        .expect(1)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let mut request = asking("make a neon city video");
    request.tools = vec![ToolSpec {
        name: "create_video".into(),
        description: "Starts a video".into(),
        parameters: json!({ "type": "object", "properties": { "prompt": { "type": "string" } } }),
    }];
    request.tool_choice = Some("create_video".into());
    let response = model.complete(request).await.unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert_eq!(response.tool_calls.len(), 1);
    let call = &response.tool_calls[0];
    assert_eq!(call.name, "create_video");
    assert_eq!(call.id, "call_Qm1xv8JtY3nR0aLk2sWd5pEo");
    assert_eq!(call.arguments["formats"], json!(["9:16"]));
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (412, 31)
    );
    assert!((response.cost_usd - (412.0 * 0.4 + 31.0 * 1.6) / 1e6).abs() < 1e-12);
    assert_eq!(response.model.to_string(), "openai/gpt-4.1-mini");
}

#[tokio::test]
async fn structured_output_is_asked_in_the_endpoints_dialect_and_checked_against_the_schema() {
    let server = MockServer::start().await;
    chat_completions()
        .and(body_partial_json(json!({
            "response_format": { "type": "json_schema", "json_schema": { "name": "intent" } },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("intent")))
        .expect(1)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let (intent, _) = structured::<Intent>(&model, "intent", asking("20 s neon city, vertical"))
        .await
        .unwrap();
    assert_eq!(intent.subject, "neon city at night");
    assert_eq!(intent.duration, 20.0);

    // llama.cpp's server takes the schema inside a json_object format; an answer outside the
    // schema is asked for again with what was wrong.
    let server = MockServer::start().await;
    let mut settings = config(&server, Some("smollm2"));
    settings.structured = StructuredOutput::JsonObject;
    chat_completions()
        .and(body_partial_json(json!({
            "response_format": { "type": "json_object", "schema": { "type": "object" } },
        })))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let asked_again = body["messages"].as_array().unwrap().iter().any(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("does not fit the schema"))
            });
            let name = if asked_again {
                "intent"
            } else {
                "intent_off_schema"
            };
            ResponseTemplate::new(200).set_body_json(cassette(name))
        })
        .expect(2)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(settings).await.unwrap();
    let (intent, _) = structured::<Intent>(&model, "intent", asking("20 s neon city, vertical"))
        .await
        .unwrap();
    assert_eq!(intent.formats, [montage_models::Format::Portrait]);
}

#[tokio::test]
async fn a_refused_key_is_explained_without_the_key_and_not_retried() {
    let server = MockServer::start().await;
    chat_completions()
        .respond_with(ResponseTemplate::new(401).set_body_json(cassette("unauthorized")))
        .expect(1)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let error = model.complete(asking("hi")).await.unwrap_err();
    let said = error.to_string();
    assert_eq!(said, "openai refused the key in OPENAI_API_KEY (401)");
    assert!(!format!("{error:?} {model:?}").contains(PLANTED_KEY));
    assert!(!error.is_transient());
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_and_then_explained() {
    let server = MockServer::start().await;
    chat_completions()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(cassette("rate_limited")),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    chat_completions()
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("tool_call")))
        .expect(1)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(model.complete(asking("hi")).await.is_ok());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );

    let server = MockServer::start().await;
    chat_completions()
        .respond_with(ResponseTemplate::new(500).set_body_json(cassette("server_error")))
        .expect(3)
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let error = model.complete(asking("hi")).await.unwrap_err();
    assert!(error.is_transient());
    assert!(
        error
            .to_string()
            .contains("openai is failing (500, 3 attempts)"),
        "{error}"
    );
}

#[tokio::test]
async fn garbage_and_a_stalled_answer_are_errors_not_answers() {
    let server = MockServer::start().await;
    chat_completions()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("{\"id\": \"chatcmpl-1\", \"choices\": [tru"),
        )
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("m")))
        .await
        .unwrap();
    let error = model.complete(asking("hi")).await.unwrap_err();
    assert!(matches!(error, ModelError::InvalidOutput(_)), "{error:?}");

    let server = MockServer::start().await;
    chat_completions()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(cassette("tool_call"))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut settings = config(&server, Some("m"));
    settings.policy.attempts = 1;
    let model = OpenAiText::connect(settings).await.unwrap();
    let error = model.complete(asking("hi")).await.unwrap_err();
    assert!(matches!(error, ModelError::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn without_a_model_named_the_endpoints_only_one_is_used_or_the_choices_are_named() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("models_one")))
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, None)).await.unwrap();
    assert_eq!(model.id().to_string(), "openai/smollm2");

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("models_many")))
        .mount(&server)
        .await;
    let error = OpenAiText::connect(config(&server, None))
        .await
        .unwrap_err();
    let said = error.to_string();
    assert!(said.contains("llama3.2:3b, qwen2.5:7b"), "{said}");
    assert!(said.contains("models.openai.model"), "{said}");
}

#[tokio::test]
async fn a_failing_endpoint_falls_back_to_the_local_model_and_says_so() {
    let server = MockServer::start().await;
    chat_completions()
        .respond_with(ResponseTemplate::new(401).set_body_json(cassette("unauthorized")))
        .mount(&server)
        .await;
    let remote = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let chain = FallbackText::new(vec![
        Arc::new(remote),
        Arc::new(montage_models::local::LocalText),
    ])
    .unwrap();
    let (intent, response) = structured::<Intent>(
        &chain,
        montage_models::local::INTENT_SCHEMA,
        asking("a 20 second upbeat neon city music video, vertical"),
    )
    .await
    .unwrap();
    assert_eq!(intent.duration, 20.0);
    assert_eq!(response.model.provider, "local");
    assert!(
        response.notices[0].contains("refused the key in OPENAI_API_KEY (401)"),
        "{:?}",
        response.notices
    );
}

#[tokio::test]
async fn routed_tool_calling_asks_which_tool_then_forces_it() {
    let server = MockServer::start().await;
    chat_completions()
        .and(body_partial_json(json!({
            "response_format": { "type": "json_schema", "json_schema": { "name": "tool_choice" } },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-r1", "object": "chat.completion", "created": 1764547300, "model": "m",
            "choices": [{ "index": 0, "finish_reason": "stop",
                "message": { "role": "assistant", "content": "{\"tool\":\"create_video\"}" } }],
            "usage": { "prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105 },
        })))
        .expect(1)
        .mount(&server)
        .await;
    chat_completions()
        .and(body_partial_json(json!({
            "tool_choice": { "type": "function", "function": { "name": "create_video" } },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("tool_call")))
        .expect(1)
        .mount(&server)
        .await;
    let mut settings = config(&server, Some("m"));
    settings.tool_calling = ToolCalling::Routed;
    let model = OpenAiText::connect(settings).await.unwrap();
    let mut request = asking("make a neon city video");
    request.tools = vec![ToolSpec {
        name: "create_video".into(),
        description: "Starts a video".into(),
        parameters: json!({ "type": "object" }),
    }];
    let response = model.complete(request).await.unwrap();
    assert_eq!(response.tool_calls[0].name, "create_video");
    assert_eq!(response.usage.input_tokens, 100 + 412, "both calls counted");
}

fn sse(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/cassettes/openai/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn a_streamed_answer_arrives_piece_by_piece_with_tool_call_fragments_joined() {
    let server = MockServer::start().await;
    chat_completions()
        .and(body_partial_json(
            json!({ "stream": true, "tools": [{ "type": "function" }] }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse("stream_tool_call")),
        )
        .mount(&server)
        .await;
    chat_completions()
        .and(body_partial_json(
            json!({ "stream": true, "stream_options": { "include_usage": true } }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse("stream_text")),
        )
        .mount(&server)
        .await;
    let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
        .await
        .unwrap();
    let pieces = std::sync::Mutex::new(Vec::new());
    let response = model
        .stream(asking("how is it going?"), &|piece| {
            pieces.lock().unwrap().push(piece.to_owned())
        })
        .await
        .unwrap();
    assert_eq!(
        *pieces.lock().unwrap(),
        ["Your video", " is being", " made."]
    );
    assert_eq!(
        response.content.as_deref(),
        Some("Your video is being made.")
    );
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (380, 6)
    );

    let mut request = asking("scenes 2 and 4 brighter");
    request.tools = vec![ToolSpec {
        name: "regenerate_scene".into(),
        description: "Makes scenes again".into(),
        parameters: json!({ "type": "object" }),
    }];
    let response = model.stream(request, &|_| {}).await.unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls);
    let call = &response.tool_calls[0];
    assert_eq!(call.name, "regenerate_scene");
    assert_eq!(
        call.arguments,
        json!({ "scenes": [1, 3], "instruction": "brighter" })
    );
}

#[tokio::test]
async fn a_stream_that_stalls_is_a_timeout() {
    let server = MockServer::start().await;
    chat_completions()
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse("stream_text"))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut settings = config(&server, Some("m"));
    settings.policy.attempts = 1;
    let model = OpenAiText::connect(settings).await.unwrap();
    let error = model.stream(asking("hi"), &|_| {}).await.unwrap_err();
    assert!(matches!(error, ModelError::Timeout { .. }), "{error:?}");
}

/// A 1920×1080 PNG of one colour, as the critic's frames are.
fn frame(rgb: [u8; 3]) -> Vec<u8> {
    let picture = image::RgbImage::from_pixel(1920, 1080, image::Rgb(rgb));
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

#[tokio::test]
async fn the_critic_sees_small_frames_and_its_findings_are_checked() {
    use montage_models::{FramePosition, SceneBrief, VisionFrame, VisionModel, VisionRequest};
    let server = MockServer::start().await;
    chat_completions()
        .and(body_partial_json(json!({
            "response_format": { "type": "json_schema", "json_schema": { "name": "critique" } },
        })))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let parts = body["messages"][1]["content"].as_array().unwrap().clone();
            let images: Vec<&str> = parts
                .iter()
                .filter(|p| p["type"] == "image_url")
                .filter_map(|p| p["image_url"]["url"].as_str())
                .collect();
            // Four frames, each a small JPEG (a 1080p PNG would be megabytes).
            let small = images.len() == 4
                && images
                    .iter()
                    .all(|u| u.starts_with("data:image/jpeg;base64,") && u.len() < 40_000);
            let told = parts.iter().any(|p| {
                p["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("a calm lake at dawn"))
            });
            if small && told {
                ResponseTemplate::new(200).set_body_json(cassette("critique"))
            } else {
                ResponseTemplate::new(400).set_body_string(format!("unexpected parts: {parts:?}"))
            }
        })
        .expect(1)
        .mount(&server)
        .await;
    let model = montage_models::remote::SeeingCritic::new(std::sync::Arc::new(
        OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
            .await
            .unwrap(),
    ));
    let brief = |prompt: &str| SceneBrief {
        prompt: prompt.into(),
        generated: true,
        soft_cut_after: false,
    };
    let mut frames = Vec::new();
    for scene in 0..2 {
        for position in [FramePosition::First, FramePosition::Last] {
            frames.push(VisionFrame {
                scene,
                position,
                image: frame([40, 90, 160]),
            });
        }
    }
    let critique = model
        .critique(VisionRequest {
            instruction: "Find what is wrong.".into(),
            scenes: vec![
                brief("a calm lake at dawn"),
                brief("a calm lake at dawn, closer"),
            ],
            palette: vec!["#2a63e8".into()],
            frames,
        })
        .await
        .unwrap();
    assert_eq!(
        critique.issues.len(),
        1,
        "the issue about a scene 10 is dropped"
    );
    assert_eq!(critique.issues[0].scene, 1);
    assert_eq!(
        critique.issues[0].kind,
        montage_models::IssueKind::PromptAdherence
    );
    assert!(critique.cost_usd > 0.0);
}

mod embeddings {
    use super::*;
    use montage_models::EmbeddingModel;
    use montage_models::remote::embeddings::{OpenAiEmbeddings, TokenVectors};

    fn embeddings_endpoint() -> wiremock::MockBuilder {
        Mock::given(method("POST")).and(path("/v1/embeddings"))
    }

    #[tokio::test]
    async fn vectors_come_back_in_order_at_the_configured_length_and_unit_long() {
        let server = MockServer::start().await;
        embeddings_endpoint()
            .and(header(
                "authorization",
                format!("Bearer {PLANTED_KEY}").as_str(),
            ))
            .and(body_partial_json(json!({
                "model": "text-embedding-3-small",
                "input": ["neon city", "calm beach"],
                "dimensions": 4,
                "encoding_format": "float",
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(cassette("embeddings")))
            .expect(1)
            .mount(&server)
            .await;
        let model = OpenAiEmbeddings::connect(
            config(&server, Some("text-embedding-3-small")),
            Some(4),
            TokenVectors::Refuse,
        )
        .await
        .unwrap();
        assert_eq!(model.id().to_string(), "openai/text-embedding-3-small@4");
        let made = model
            .embed(&["neon city".into(), "calm beach".into()])
            .await
            .unwrap();
        assert_eq!(made.vectors.len(), 2);
        // The answer lists index 1 first; the vectors follow the texts.
        assert_eq!(made.vectors[1], [0.0, 0.0, 0.6, 0.8]);
        let norm: f32 = made.vectors[0].iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!((made.cost_usd - 12.0 * 0.4 / 1e6).abs() < 1e-12);
        let shorter = OpenAiEmbeddings::connect(
            config(&server, Some("text-embedding-3-small")),
            Some(3),
            TokenVectors::Refuse,
        )
        .await
        .unwrap();
        server.reset().await;
        embeddings_endpoint()
            .respond_with(ResponseTemplate::new(200).set_body_json(cassette("embeddings")))
            .mount(&server)
            .await;
        let wrong = shorter
            .embed(&["neon city".into(), "calm beach".into()])
            .await
            .unwrap_err();
        assert!(
            wrong
                .to_string()
                .contains("4 dimensions, and 3 are configured"),
            "{wrong}"
        );
    }

    #[tokio::test]
    async fn one_vector_per_token_is_refused_with_what_to_do_or_averaged_when_asked() {
        let server = MockServer::start().await;
        embeddings_endpoint()
            .respond_with(
                ResponseTemplate::new(200).set_body_json(cassette("embeddings_per_token")),
            )
            .mount(&server)
            .await;
        let refusing =
            OpenAiEmbeddings::connect(config(&server, Some("smollm2")), None, TokenVectors::Refuse)
                .await
                .unwrap();
        let error = refusing.embed(&["a b c".into()]).await.unwrap_err();
        let said = error.to_string();
        assert!(said.contains("one per token (3 of them)"), "{said}");
        assert!(said.contains("--pooling mean"), "{said}");
        assert!(!said.contains(PLANTED_KEY));
        let averaging =
            OpenAiEmbeddings::connect(config(&server, Some("smollm2")), None, TokenVectors::Mean)
                .await
                .unwrap();
        let made = averaging.embed(&["a b c".into()]).await.unwrap();
        let [x, y, z] = made.vectors[0][..] else {
            panic!("{:?}", made.vectors)
        };
        // The mean (0.3, 0.3, 0.0), at unit length.
        assert!((x - y).abs() < 1e-6 && z.abs() < 1e-6 && (x - 0.70710677).abs() < 1e-5);
    }
}

mod schemas {
    use super::*;
    use montage_models::{JsonSchemaFormat, structured_as};

    fn brief() -> JsonSchemaFormat {
        JsonSchemaFormat {
            name: "brief".into(),
            schema: json!({
                "type": "object",
                "properties": {
                    "subject": { "type": "string", "maxLength": 80 },
                    "note": { "type": "string" },
                    "shots": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "lens": { "type": "string" },
                                "light": { "type": "string" },
                            },
                            "required": ["lens"],
                        },
                    },
                },
                "required": ["subject", "shots"],
            }),
        }
    }

    #[tokio::test]
    async fn strict_mode_gets_every_property_required_and_its_forced_nulls_are_taken_out() {
        let server = MockServer::start().await;
        chat_completions()
            .and(body_partial_json(json!({
                "response_format": { "type": "json_schema", "json_schema": {
                    "name": "brief",
                    "strict": true,
                    "schema": {
                        "additionalProperties": false,
                        "required": ["note", "shots", "subject"],
                        "properties": {
                            "subject": { "maxLength": 80 },
                            "note": { "anyOf": [{ "type": "string" }, { "type": "null" }] },
                            "shots": { "items": {
                                "additionalProperties": false,
                                "required": ["lens", "light"],
                            } },
                        },
                    },
                } },
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(cassette("brief_strict")))
            .expect(1)
            .mount(&server)
            .await;
        let mut settings = config(&server, Some("gpt-4.1-mini"));
        settings.structured = StructuredOutput::JsonSchemaStrict;
        let model = OpenAiText::connect(settings).await.unwrap();
        let (answer, _) = structured_as::<Value>(&model, brief(), asking("a lake"), |_| Ok(()))
            .await
            .unwrap();
        assert_eq!(
            answer,
            json!({ "subject": "a calm lake at dawn", "shots": [{ "lens": "35mm" }] })
        );
    }

    /// Whether a request's schema still carries its limits.
    fn with_limits(request: &Request) -> bool {
        String::from_utf8_lossy(&request.body).contains("maxLength")
    }

    #[tokio::test]
    async fn an_endpoint_that_refuses_a_schemas_limits_gets_them_left_out_from_then_on() {
        let server = MockServer::start().await;
        chat_completions()
            .and(with_limits)
            .respond_with(ResponseTemplate::new(400).set_body_json(cassette("schema_refused")))
            .expect(1)
            .mount(&server)
            .await;
        chat_completions()
            .and(|request: &Request| !with_limits(request))
            .respond_with(ResponseTemplate::new(200).set_body_json(cassette("brief")))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        chat_completions()
            .and(|request: &Request| !with_limits(request))
            .respond_with(ResponseTemplate::new(200).set_body_json(cassette("brief_too_long")))
            .expect(2)
            .mount(&server)
            .await;
        let model = OpenAiText::connect(config(&server, Some("gpt-4.1-mini")))
            .await
            .unwrap();
        let (answer, response) =
            structured_as::<Value>(&model, brief(), asking("a lake"), |_| Ok(()))
                .await
                .unwrap();
        assert_eq!(answer["subject"], "a calm lake at dawn");
        assert!(
            response.notices[0].contains("refused the schema's limits")
                && response.notices[0].contains("'maxLength' is not permitted"),
            "{:?}",
            response.notices
        );
        // The limit the endpoint no longer sees is still Montage's check.
        let refused = structured_as::<Value>(&model, brief(), asking("a lake"), |_| Ok(()))
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("longer than 80 characters")
                || refused.to_string().contains("maxLength"),
            "{refused}"
        );
        server.verify().await;
    }
}
