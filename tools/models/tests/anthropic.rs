//! Vendors through rig, against recorded exchanges in Anthropic's Messages format
//! (tests/cassettes/anthropic), replayed by a local HTTP server that matches the requests.

use montage_models::local::LocalText;
use montage_models::remote::policy::PolicyConfig;
use montage_models::remote::vendor::{VendorConfig, VendorText};
use montage_models::remote::{FallbackText, Prices};
use montage_models::{
    FinishReason, Intent, Message, ModelError, TextModel, TextRequest, ToolSpec, structured,
};
use serde_json::{Value, json};
use std::sync::Arc;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A key planted to prove it never appears in what the provider says.
const PLANTED_KEY: &str = "sk-ant-test-planted-0123456789PLNT";

mod common;

fn cassette(name: &str) -> Value {
    common::cassette("anthropic", name)
}

fn claude(server: &MockServer) -> VendorText {
    VendorText::connect(config(server)).unwrap()
}

fn config(server: &MockServer) -> VendorConfig {
    VendorConfig {
        vendor: "anthropic".into(),
        base_url: Some(server.uri()),
        key_variable: "ANTHROPIC_API_KEY".into(),
        key: Some(PLANTED_KEY.into()),
        model: "claude-sonnet-4-5".into(),
        prices: Prices {
            input_per_million: 3.0,
            output_per_million: 15.0,
        },
        policy: common::quick_policy(),
        max_tokens: 1024,
    }
}

fn messages() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/v1/messages"))
}

fn asking(text: &str) -> TextRequest {
    TextRequest {
        messages: vec![Message::system("You make videos."), Message::user(text)],
        ..TextRequest::default()
    }
}

#[tokio::test]
async fn a_tool_use_block_comes_back_as_a_tool_call_with_its_cost() {
    let server = MockServer::start().await;
    messages()
        .and(header("x-api-key", PLANTED_KEY))
        .and(body_partial_json(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{ "type": "text", "text": "You make videos." }],
            "messages": [{ "role": "user" }],
            "tools": [{ "name": "make_video", "description": "Starts a video" }],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("tool_use")))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = asking("make me a neon city video, 20 seconds");
    request.tools = vec![ToolSpec {
        name: "make_video".into(),
        description: "Starts a video".into(),
        parameters: json!({
            "type": "object",
            "properties": { "prompt": { "type": "string" }, "duration": { "type": "number" } },
            "required": ["prompt"],
        }),
    }];
    let response = claude(&server).complete(request).await.unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert_eq!(
        response.content.as_deref(),
        Some("I'll start that video now.")
    );
    assert_eq!(response.tool_calls.len(), 1);
    let call = &response.tool_calls[0];
    assert_eq!(call.id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call.name, "make_video");
    assert_eq!(
        call.arguments,
        json!({ "prompt": "a neon city at night", "duration": 20 })
    );
    assert_eq!(response.usage.input_tokens, 612);
    assert!((response.cost_usd - (612.0 * 3.0 + 88.0 * 15.0) / 1e6).abs() < 1e-12);
    assert_eq!(response.model.to_string(), "anthropic/claude-sonnet-4-5");
}

#[tokio::test]
async fn structured_output_goes_as_the_output_format_and_is_checked() {
    let server = MockServer::start().await;
    messages()
        .and(body_partial_json(json!({
            "output_config": { "format": { "type": "json_schema" } },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("intent")))
        .expect(1)
        .mount(&server)
        .await;
    let (intent, response) = structured::<Intent>(
        &claude(&server),
        "intent",
        asking("a 20 second vertical neon city video"),
    )
    .await
    .unwrap();
    assert_eq!(intent.subject, "neon city at night");
    assert_eq!(intent.duration, 20.0);
    assert_eq!(response.usage.output_tokens, 71);
}

#[tokio::test]
async fn a_refused_key_is_explained_without_the_key_and_not_retried() {
    let server = MockServer::start().await;
    messages()
        .respond_with(ResponseTemplate::new(401).set_body_json(cassette("unauthorized")))
        .expect(1)
        .mount(&server)
        .await;
    let error = claude(&server).complete(asking("hi")).await.unwrap_err();
    let said = error.to_string();
    assert!(
        said.contains("anthropic refused the key in ANTHROPIC_API_KEY (401)"),
        "{said}"
    );
    assert!(!said.contains(PLANTED_KEY));
    assert!(!format!("{error:?}").contains(PLANTED_KEY));
}

#[tokio::test]
async fn an_overloaded_vendor_is_retried_then_the_local_model_stands_in_and_says_so() {
    let server = MockServer::start().await;
    messages()
        .respond_with(
            ResponseTemplate::new(529)
                .insert_header("retry-after", "0")
                .set_body_json(cassette("overloaded")),
        )
        .expect(3)
        .mount(&server)
        .await;
    let chain = FallbackText::new(vec![Arc::new(claude(&server)), Arc::new(LocalText)]).unwrap();
    let (intent, response) =
        structured::<Intent>(&chain, "intent", asking("a calm beach video, 15 seconds"))
            .await
            .unwrap();
    assert_eq!(intent.duration, 15.0);
    assert_eq!(response.model.provider, "local");
    assert_eq!(
        response.notices,
        [
            "anthropic/claude-sonnet-4-5 failed: provider unavailable: anthropic is overloaded (529, 3 attempts)",
            "local/heuristic-1 answered instead"
        ]
    );
}

#[tokio::test]
async fn a_vendor_rig_does_not_know_or_a_missing_key_is_refused_plainly() {
    let server = MockServer::start().await;
    let base = VendorConfig {
        vendor: "no-such-vendor".into(),
        base_url: Some(server.uri()),
        key_variable: "X_API_KEY".into(),
        key: Some("k".into()),
        model: "m".into(),
        prices: Prices::default(),
        policy: PolicyConfig::default(),
        max_tokens: 16,
    };
    let unknown = VendorText::connect(base.clone()).unwrap_err();
    assert!(
        matches!(unknown, ModelError::InvalidRequest(_)),
        "{unknown}"
    );
    let keyless = VendorText::connect(VendorConfig {
        vendor: "anthropic".into(),
        key: None,
        key_variable: "ANTHROPIC_API_KEY".into(),
        ..base
    })
    .unwrap_err();
    assert_eq!(
        keyless.to_string(),
        ModelError::Rejected("anthropic needs a key, and ANTHROPIC_API_KEY is not set".into())
            .to_string()
    );
}

#[tokio::test]
async fn the_critic_on_a_vendor_sends_small_jpegs_as_image_blocks() {
    use montage_models::remote::SeeingCritic;
    use montage_models::{FramePosition, SceneBrief, VisionFrame, VisionModel, VisionRequest};
    let server = MockServer::start().await;
    messages()
        .and(body_partial_json(json!({
            "output_config": { "format": { "type": "json_schema" } },
        })))
        .respond_with(|request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let blocks = body["messages"][0]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let images: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "image").collect();
            let small_jpegs = images.len() == 2
                && images.iter().all(|b| {
                    b["source"]["type"] == "base64"
                        && b["source"]["media_type"] == "image/jpeg"
                        && b["source"]["data"]
                            .as_str()
                            .is_some_and(|d| d.len() < 40_000)
                });
            let told = blocks.iter().any(|b| {
                b["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("a lighthouse in fog") && t.contains("first frame"))
            });
            if small_jpegs && told {
                ResponseTemplate::new(200).set_body_json(cassette("critique"))
            } else {
                ResponseTemplate::new(400).set_body_string(format!("unexpected blocks: {blocks:?}"))
            }
        })
        .expect(1)
        .mount(&server)
        .await;
    let picture = image::RgbImage::from_pixel(1920, 1080, image::Rgb([90, 90, 110]));
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let frames = [FramePosition::First, FramePosition::Last]
        .into_iter()
        .map(|position| VisionFrame {
            scene: 0,
            position,
            image: png.clone(),
        })
        .collect();
    let critic = SeeingCritic::new(Arc::new(claude(&server)));
    let critique = critic
        .critique(VisionRequest {
            instruction: "Find what is wrong.".into(),
            scenes: vec![SceneBrief {
                prompt: "a lighthouse in fog".into(),
                generated: true,
                soft_cut_after: false,
            }],
            palette: vec!["#5a5a6e".into()],
            frames,
        })
        .await
        .unwrap();
    assert_eq!(critique.model.to_string(), "anthropic/claude-sonnet-4-5");
    assert_eq!(critique.issues.len(), 1);
    assert_eq!(critique.issues[0].kind, montage_models::IssueKind::Other);
    assert_eq!(critique.usage.input_tokens, 1184);
    assert!((critique.cost_usd - (1184.0 * 3.0 + 64.0 * 15.0) / 1e6).abs() < 1e-12);
}

#[tokio::test]
async fn a_check_lists_the_vendors_models_without_paying_and_names_what_it_offers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", PLANTED_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("models")))
        .expect(2)
        .mount(&server)
        .await;
    messages()
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    claude(&server).check().await.unwrap();
    let absent = VendorText::connect(VendorConfig {
        model: "claude-sonnet-9".into(),
        ..config(&server)
    })
    .unwrap();
    let said = absent.check().await.unwrap_err();
    assert!(
        said.contains("anthropic does not offer \"claude-sonnet-9\" to this key")
            && said.contains("claude-haiku-4-5-20251001"),
        "{said}"
    );
    assert!(!said.contains(PLANTED_KEY));
}
