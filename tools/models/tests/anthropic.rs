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
    VendorText::connect(VendorConfig {
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
    })
    .unwrap()
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
