//! One chat message to a finished video made entirely by paid models, against fakes that
//! speak their APIs: FLUX stills, Kling clips from them and a MusicGen bed on Replicate, an
//! ElevenLabs voice. The storyboard comes first with the estimate, nothing is paid before
//! the person approves it in the chat, and the run's ledger has the true cost after.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::fakes::{mp4, png, prediction};
use common::server::*;

const TOKEN: &str = "r8_generated-token-PLANTED012345";
const VOICE_KEY: &str = "sk_generated-voice-PLANTED0123456";
const MUSICGEN: &str = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb";

/// Replicate: FLUX and MusicGen answer within the request, Kling at its first poll; counts
/// what it is paid for.
async fn replicate(dir: &Path, paid: Arc<AtomicUsize>) -> MockServer {
    let server = MockServer::start().await;
    let (at, count) = (server.uri(), Arc::clone(&paid));
    Mock::given(method("POST"))
        .and(path(
            "/v1/models/black-forest-labs/flux-schnell/predictions",
        ))
        .respond_with(move |_: &Request| {
            let id = format!("img{}", count.fetch_add(1, Ordering::SeqCst));
            let output = json!([format!("{at}/files/{id}/out-0.png")]);
            ResponseTemplate::new(201).set_body_json(prediction(
                &at,
                &id,
                "black-forest-labs/flux-schnell",
                "succeeded",
                output,
            ))
        })
        .mount(&server)
        .await;
    let (at, count) = (server.uri(), Arc::clone(&paid));
    Mock::given(method("POST"))
        .and(path("/v1/predictions"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(body["version"], MUSICGEN);
            let id = format!("bed{}", count.fetch_add(1, Ordering::SeqCst));
            let output = json!(format!("{at}/files/{id}/out.wav"));
            ResponseTemplate::new(201).set_body_json(prediction(
                &at,
                &id,
                "meta/musicgen",
                "succeeded",
                output,
            ))
        })
        .mount(&server)
        .await;
    let at = server.uri();
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(201).set_body_json(json!({
                "id": "f1", "urls": { "get": format!("{at}/v1/files/f1") },
            }))
        })
        .mount(&server)
        .await;
    let (at, count) = (server.uri(), Arc::clone(&paid));
    Mock::given(method("POST"))
        .and(path("/v1/models/kwaivgi/kling-v2.1/predictions"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let seconds = body["input"]["duration"].as_u64().unwrap();
            let id = format!("kling{}s{seconds}", count.fetch_add(1, Ordering::SeqCst));
            ResponseTemplate::new(201).set_body_json(prediction(
                &at,
                &id,
                "kwaivgi/kling-v2.1",
                "starting",
                Value::Null,
            ))
        })
        .mount(&server)
        .await;
    let at = server.uri();
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/predictions/kling[0-9]+s[0-9]+$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap();
            let seconds = id.rsplit('s').next().unwrap();
            let output = json!(format!("{at}/files/{id}/clip-{seconds}.mp4"));
            ResponseTemplate::new(200).set_body_json(prediction(
                &at,
                id,
                "kwaivgi/kling-v2.1",
                "succeeded",
                output,
            ))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/img[0-9]+/out-0\.png$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(1344, 768), "image/png"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/bed[0-9]+/out\.wav$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(song(dir), "audio/wav"))
        .mount(&server)
        .await;
    for seconds in [5, 10] {
        Mock::given(method("GET"))
            .and(path_regex(format!(
                r"^/files/kling[0-9]+s{seconds}/clip-{seconds}\.mp4$"
            )))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(mp4(dir, "testsrc=s=1280x720:r=24", seconds), "video/mp4"),
            )
            .mount(&server)
            .await;
    }
    server
}

/// ElevenLabs: each character of the text spoken in 50 ms.
async fn elevenlabs() -> MockServer {
    use base64::Engine;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/text-to-speech/[A-Za-z0-9]+/with-timestamps$"))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let characters: Vec<String> =
                body["text"].as_str().unwrap().chars().map(String::from).collect();
            let starts: Vec<f64> = (0..characters.len()).map(|k| k as f64 * 0.05).collect();
            let ends: Vec<f64> = starts.iter().map(|s| s + 0.05).collect();
            let samples = ((characters.len() as f64 * 0.05 + 0.1) * 24_000.0) as u32;
            let pcm: Vec<u8> = (0..samples)
                .flat_map(|n| (((n as f64 * 0.06).sin() * 4_000.0) as i16).to_le_bytes())
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({
                "audio_base64": base64::engine::general_purpose::STANDARD.encode(pcm),
                "alignment": { "characters": characters, "character_start_times_seconds": starts, "character_end_times_seconds": ends },
            }))
        })
        .mount(&server)
        .await;
    server
}

async fn say(server: &Server, chat: &str, content: &str) -> Value {
    let (status, exchange) = server
        .post(
            &format!("/api/chats/{chat}/messages"),
            &json!({ "content": content }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{exchange}");
    exchange
}

#[tokio::test(flavor = "multi_thread")]
async fn one_chat_message_makes_a_video_of_paid_clips_voice_and_music() {
    let dir = tempfile::tempdir().unwrap();
    let paid = Arc::new(AtomicUsize::new(0));
    let replicate = replicate(dir.path(), Arc::clone(&paid)).await;
    let voice = elevenlabs().await;
    let settings = [
        ("MONTAGE_MODELS__IMAGE", "replicate".to_owned()),
        ("MONTAGE_MODELS__CLIP", "replicate".to_owned()),
        ("MONTAGE_MODELS__MUSIC", "replicate".to_owned()),
        ("MONTAGE_MODELS__SPEECH", "elevenlabs".to_owned()),
        ("REPLICATE_BASE_URL", format!("{}/v1", replicate.uri())),
        ("REPLICATE_API_TOKEN", TOKEN.to_owned()),
        ("ELEVENLABS_BASE_URL", voice.uri()),
        ("ELEVENLABS_API_KEY", VOICE_KEY.to_owned()),
        (
            "MONTAGE_MODELS__ELEVENLABS__PER_MILLION_CHARACTERS",
            "300".to_owned(),
        ),
        ("MONTAGE_MODELS__REPLICATE__FIRST_POLL_MS", "50".to_owned()),
        ("MONTAGE_PIPELINE__MAX_ITERATIONS", "0".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &Backend::Sqlite, &pairs).await;
    let (_, chat) = server.post("/api/chats", &json!({})).await;
    let chat = chat["id"].as_str().unwrap().to_owned();

    let made = say(
        &server,
        &chat,
        "make a 10 second narrated video of a lighthouse at dusk",
    )
    .await;
    assert_eq!(
        made["reply"]["actions"][0]["tool"], "create_video",
        "{made}"
    );
    let run = made["reply"]["actions"][0]["result"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = server.wait_status(&run, &["waiting"]).await;
    let question = &waiting["question"];
    assert_eq!(question["kind"], "storyboard", "{question}");
    let items = question["estimate"]["items"].as_array().unwrap();
    for capability in ["image", "clip"] {
        assert!(
            items.iter().any(|i| i["capability"] == capability),
            "{items:?}"
        );
    }
    let before_approval = paid.load(Ordering::SeqCst);
    assert_eq!(
        before_approval, 1,
        "only the music bed (paid as it comes) before approval"
    );
    let status = say(&server, &chat, "what's the status?").await;
    assert!(
        status["reply"]["content"]
            .to_string()
            .contains("storyboard"),
        "the chat says the storyboard waits: {status}"
    );

    let approved = say(&server, &chat, "looks good").await;
    assert_eq!(
        approved["reply"]["actions"][0]["arguments"]["action"],
        "accept"
    );
    assert!(
        approved["reply"]["content"]
            .to_string()
            .contains("storyboard is approved"),
        "{approved}"
    );
    let view = server.wait_status(&run, &["completed"]).await;
    let scenes = view["plan"]["scenes"].as_array().unwrap();
    assert!(
        scenes
            .iter()
            .all(|s| s["model"] == "replicate/black-forest-labs/flux-schnell")
    );
    assert!(
        scenes
            .iter()
            .all(|s| s["clip_model"] == "replicate/kwaivgi/kling-v2.1")
    );
    let ledger = view["cost"]["ledger"].as_array().unwrap();
    for capability in ["image", "clip", "music", "speech"] {
        assert!(
            ledger
                .iter()
                .any(|e| e["capability"] == capability && e["usd"].as_f64().unwrap() > 0.0),
            "{capability} is paid for in the ledger: {ledger:?}"
        );
    }
    let total: f64 = ledger.iter().map(|e| e["usd"].as_f64().unwrap()).sum();
    assert!((view["cost"]["usd"].as_f64().unwrap() - total).abs() < 1e-9);
    let video = server
        .download(
            view["outputs"]["videos"][0]["asset"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    let (codec, width, height, seconds) = probe(&video, dir.path());
    assert_eq!((codec.as_str(), width, height), ("h264", 1920, 1080));
    assert!((seconds - view["plan"]["duration"].as_f64().unwrap()).abs() < 0.1);
    let everything = serde_json::to_string(&view).unwrap();
    assert!(!everything.contains(TOKEN) && !everything.contains(VOICE_KEY));
}
