//! The OpenAI-compatible provider against a real model server: llama.cpp's, serving
//! SmolLM2-135M-Instruct, which `scripts/test` starts (`scripts/llama-server`) and names in
//! `MONTAGE_TEST_LLAMA_URL`. A 135M model writes poor prose: these tests hold it to
//! structure and behaviour, not wording.

use montage_models::remote::openai::{OpenAiConfig, OpenAiText};
use montage_models::remote::policy::PolicyConfig;
use montage_models::remote::{FallbackText, Prices, StructuredOutput, ToolCalling};
use montage_models::{Intent, Message, ModelError, TextModel, TextRequest, ToolSpec, structured};
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn server_url() -> String {
    std::env::var("MONTAGE_TEST_LLAMA_URL").expect(
        "MONTAGE_TEST_LLAMA_URL is not set: run the tests with scripts/test, which starts llama.cpp's server",
    )
}

fn config(base_url: &str, policy: PolicyConfig) -> OpenAiConfig {
    OpenAiConfig {
        provider: "openai".into(),
        base_url: base_url.to_owned(),
        key_variable: "OPENAI_API_KEY".into(),
        key: None,
        model: None,
        prices: Prices::default(),
        structured: StructuredOutput::JsonObject,
        tool_calling: ToolCalling::Routed,
        policy,
    }
}

fn patient() -> PolicyConfig {
    PolicyConfig {
        timeout: Duration::from_secs(120),
        ..PolicyConfig::default()
    }
}

#[tokio::test]
async fn the_real_server_reads_an_intent_and_calls_a_tool_when_told_to() {
    let model = OpenAiText::connect(config(&server_url(), patient()))
        .await
        .unwrap();
    assert_eq!(model.id().to_string(), "openai/smollm2", "its only model");

    let request = TextRequest {
        messages: vec![
            Message::system("Read the request for a video into the JSON the schema describes."),
            Message::user("a 20 second upbeat neon city music video, vertical"),
        ],
        temperature: Some(0.0),
        seed: Some(1),
        ..TextRequest::default()
    };
    // Grammar-constrained decoding makes even a small model's answer fit the schema; the
    // provider checks it against the whole schema all the same.
    let (intent, response) = structured::<Intent>(&model, "intent", request)
        .await
        .unwrap();
    assert!(intent.duration.is_finite());
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);

    let request = TextRequest {
        messages: vec![Message::user("make me a video of the sea at dawn")],
        tools: vec![ToolSpec {
            name: "create_video".into(),
            description: "Starts making a video from a description".into(),
            parameters: json!({
                "type": "object",
                "properties": { "prompt": { "type": "string" } },
                "required": ["prompt"],
            }),
        }],
        tool_choice: Some("create_video".into()),
        ..TextRequest::default()
    };
    let response = model.complete(request).await.unwrap();
    let call = response
        .tool_calls
        .first()
        .expect("a forced choice gets a call");
    assert_eq!(call.name, "create_video");
    assert!(call.arguments["prompt"].is_string(), "{}", call.arguments);
}

/// A server of the test's own, stopped while in use: the local model stands in and says
/// so, and after enough failures the breaker stops calling the dead endpoint at all.
#[tokio::test]
async fn a_server_that_stops_is_stood_in_for_and_then_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/llama-server");
    let started = Command::new(script)
        .arg("start")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let url = String::from_utf8(started.stdout).unwrap().trim().to_owned();
    let remote = Arc::new(
        OpenAiText::connect(config(
            &url,
            PolicyConfig {
                // Three other tests share the machine's two cores with this server's first
                // answer; once it is stopped, every call fails at once whatever the limit.
                timeout: Duration::from_secs(180),
                attempts: 1,
                breaker_failures: 2,
                breaker_cooldown: Duration::from_secs(600),
                ..PolicyConfig::default()
            },
        ))
        .await
        .unwrap(),
    );
    let chain = FallbackText::new(vec![
        remote.clone() as Arc<dyn TextModel>,
        Arc::new(montage_models::local::LocalText),
    ])
    .unwrap();
    let ask = || TextRequest {
        messages: vec![Message::user("a 12 second calm lake video, square")],
        ..TextRequest::default()
    };
    let (_, answered) = structured::<Intent>(&chain, "intent", ask()).await.unwrap();
    assert_eq!(
        answered.model.to_string(),
        "openai/smollm2",
        "{:?}",
        answered.notices
    );
    assert!(answered.notices.is_empty());

    let stopped = Command::new(script)
        .arg("stop")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(stopped.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (intent, stood_in) = structured::<Intent>(&chain, "intent", ask()).await.unwrap();
    assert_eq!(stood_in.model.provider, "local");
    assert_eq!(intent.duration, 12.0, "the local model read it");
    assert!(
        stood_in.notices[0].contains("openai cannot be reached"),
        "{:?}",
        stood_in.notices
    );
    let _ = remote.complete(ask()).await;
    let refused = remote.complete(ask()).await.unwrap_err();
    assert!(
        matches!(&refused, ModelError::Unavailable(m) if m.contains("failed several times in a row")),
        "{refused}"
    );
}

#[tokio::test]
async fn the_real_server_streams_its_words() {
    let model = OpenAiText::connect(config(&server_url(), patient()))
        .await
        .unwrap();
    let pieces = std::sync::Mutex::new(Vec::<String>::new());
    let request = TextRequest {
        messages: vec![Message::user("Say hello in five words.")],
        temperature: Some(0.0),
        seed: Some(1),
        ..TextRequest::default()
    };
    let response = model
        .stream(request, &|piece| {
            pieces.lock().unwrap().push(piece.to_owned())
        })
        .await
        .unwrap();
    let pieces = pieces.into_inner().unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(Some(pieces.concat()), response.content);
}

fn embeddings_url() -> String {
    std::env::var("MONTAGE_TEST_LLAMA_EMBEDDINGS_URL").expect(
        "MONTAGE_TEST_LLAMA_EMBEDDINGS_URL is not set: run the tests with scripts/test, which starts llama.cpp's server in embedding mode",
    )
}

/// llama.cpp's server answers one vector per token (it pools nothing unless started with
/// `--pooling`): refused with what to do, or averaged into one vector when configured, the
/// same text always to the same vector.
#[tokio::test]
async fn the_real_servers_token_vectors_are_refused_or_averaged_never_stored_as_one() {
    use montage_models::EmbeddingModel;
    use montage_models::remote::embeddings::{OpenAiEmbeddings, TokenVectors};
    let refusing = OpenAiEmbeddings::connect(
        config(&embeddings_url(), patient()),
        None,
        TokenVectors::Refuse,
    )
    .await
    .unwrap();
    let error = refusing
        .embed(&["a neon city at night".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(error, ModelError::Unsupported { .. })
            && error.to_string().contains("one per token"),
        "{error}"
    );
    let averaging = OpenAiEmbeddings::connect(
        config(&embeddings_url(), patient()),
        None,
        TokenVectors::Mean,
    )
    .await
    .unwrap();
    let texts = [
        "a neon city at night".to_owned(),
        "a calm beach at dawn".to_owned(),
        "a neon city at night".to_owned(),
    ];
    let made = averaging.embed(&texts).await.unwrap();
    assert_eq!(made.vectors.len(), 3);
    assert!(
        made.vectors
            .iter()
            .all(|v| v.len() == made.vectors[0].len())
    );
    let norm: f32 = made.vectors[0].iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&made.vectors[0], &made.vectors[2]) > 0.9999);
    assert!(dot(&made.vectors[0], &made.vectors[1]) < 0.9999);
}
