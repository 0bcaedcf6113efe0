//! Clips from job APIs against recorded exchanges in Replicate's and fal's formats
//! (tests/cassettes/{replicate,fal}): the still reaches Kling as its first frame (through
//! Replicate's file store, as a data URI on fal), the clip is asked at the nearest length
//! covering the scene, and an output that is no MP4 is a paid failure, never a clip.

use montage_models::remote::clips::JobClip;
use montage_models::remote::jobs::{MemoryJournal, Waiting};
use montage_models::remote::media::{JobModelConfig, JobService, MediaPrices};
use montage_models::{ClipModel, ClipRequest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod common;

const TOKEN: &str = "r8_planted-clip-token-0123456789";
const KLING: &str = "/v1/models/kwaivgi/kling-v2.1/predictions";
const FILE_URL: &str =
    "https://api.replicate.com/v1/files/ZjQ5MDRhYzEtN2E3Zi00NWRmLWIyZTAtNjA4ZjE3NGY3YjVi";

/// A recorded answer with its output URLs pointed at the test server.
fn pointed(api: &str, name: &str, server: &MockServer) -> Value {
    let text = common::cassette(api, name)
        .to_string()
        .replace("https://replicate.delivery", &server.uri())
        .replace("https://v3.fal.media", &server.uri());
    serde_json::from_str(&text).unwrap()
}

/// The first bytes of an MP4: its `ftyp` box, then some of a `moov`.
fn mp4_bytes() -> Vec<u8> {
    let mut bytes = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

fn config(service: JobService, server: &MockServer) -> JobModelConfig {
    JobModelConfig {
        service,
        base_url: match service {
            JobService::Replicate => format!("{}/v1", server.uri()),
            JobService::Fal => server.uri(),
        },
        key_variable: "KEY".into(),
        key: Some(TOKEN.into()),
        model: match service {
            JobService::Replicate => "kwaivgi/kling-v2.1".into(),
            JobService::Fal => "fal-ai/kling-video/v2.1/standard/image-to-video".into(),
        },
        prices: MediaPrices {
            per_output: 0.0,
            per_second: 0.0,
            per_video_second: 0.056,
        },
        policy: common::quick_policy(),
        waiting: Waiting {
            first_poll: Duration::from_millis(5),
            deadline: Duration::from_secs(10),
        },
        extra_input: Default::default(),
        webhook: None,
    }
}

fn clip_model(service: JobService, server: &MockServer) -> JobClip {
    JobClip::connect(config(service, server), Arc::new(MemoryJournal::default())).unwrap()
}

/// A still of a vertical scene, as a PNG.
fn still() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(288, 512, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

fn request(seconds: f64, key: &str) -> ClipRequest {
    ClipRequest {
        prompt: "a lighthouse on a basalt cliff at dusk, waves rolling in, camera pushing in"
            .into(),
        negative_prompt: "text, watermark".into(),
        seconds,
        width: 1080,
        height: 1920,
        seed: 7,
        start_frame_id: "3f1c9a7e".into(),
        start_frame: still(),
        job_key: Some(key.into()),
    }
}

/// Whether a multipart body holds a `content` part carrying a JPEG.
fn uploads_a_jpeg(request: &Request) -> bool {
    let body = &request.body;
    body.windows(14).any(|w| w == b"name=\"content\"")
        && body.windows(3).any(|w| w == [0xFF, 0xD8, 0xFF])
}

/// Replicate taking the still into its file store and answering the Kling prediction with
/// the recorded clip, whose file is `output`.
async fn replicate(output: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(|request: &Request| uploads_a_jpeg(request))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(common::cassette("replicate", "file_created")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut starting = common::cassette("replicate", "kling_succeeded");
    starting["status"] = json!("starting");
    starting["output"] = Value::Null;
    Mock::given(method("POST"))
        .and(path(KLING))
        .and(body_partial_json(json!({ "input": {
            "start_image": FILE_URL,
            "duration": 5,
            "negative_prompt": "text, watermark",
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(starting))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/k3w9d1x0vsrmc0cqv2b8tn4z7a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pointed(
            "replicate",
            "kling_succeeded",
            &server,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/xezq/Lq2nVb7cXk9Pz4tRw1mYeH0sJ6gDfA3uK8oN5iC/tmpm8w4f1lb.mp4",
        ))
        .respond_with(output)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_replicate_clip_starts_from_the_uploaded_still_at_the_length_covering_the_scene() {
    let server = replicate(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4")).await;
    let model = clip_model(JobService::Replicate, &server);
    assert_eq!(model.lengths(), [5.0, 10.0]);
    let made = model.generate(request(3.4, "hash-clip-1")).await.unwrap();
    assert_eq!(made.model.to_string(), "replicate/kwaivgi/kling-v2.1");
    assert_eq!(made.seconds, 5.0);
    assert!((made.cost_usd - 0.28).abs() < 1e-9, "{}", made.cost_usd);
    assert_eq!(made.bytes, mp4_bytes());
    server.verify().await;
}

#[tokio::test]
async fn an_output_that_is_no_mp4_is_a_paid_failure() {
    let server =
        replicate(ResponseTemplate::new(200).set_body_raw("<html>expired</html>", "text/html"))
            .await;
    let failed = clip_model(JobService::Replicate, &server)
        .generate(request(3.4, "hash-clip-2"))
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("made no MP4"), "{failed}");
    let paid: f64 = failed.wasted().iter().map(|w| w.cost_usd).sum();
    assert!((paid - 0.28).abs() < 1e-9, "the clip was paid for: {paid}");
}

#[tokio::test]
async fn a_fal_clip_takes_the_still_as_a_data_uri_and_its_length_as_a_string() {
    let server = MockServer::start().await;
    let id = "9e2d4b1a-7c3f-4a8e-b5d6-1f0e9c8b7a63";
    Mock::given(method("POST"))
        .and(path("/fal-ai/kling-video/v2.1/standard/image-to-video"))
        .and(header("authorization", format!("Key {TOKEN}").as_str()))
        .and(body_partial_json(
            json!({ "duration": "10", "negative_prompt": "text, watermark" }),
        ))
        .and(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            body["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:image/jpeg;base64,/9j/"))
        })
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::cassette("fal", "submitted_kling")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut completed = common::cassette("fal", "status_completed");
    completed["request_id"] = json!(id);
    Mock::given(method("GET"))
        .and(path(format!("/fal-ai/kling-video/requests/{id}/status")))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/fal-ai/kling-video/requests/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(pointed(
            "fal",
            "result_kling",
            &server,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/zebra/Xb4kP9qW2mZc7Lr1Tn8Vy_output.mp4"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(mp4_bytes(), "video/mp4"))
        .mount(&server)
        .await;
    let made = clip_model(JobService::Fal, &server)
        .generate(request(7.2, "hash-clip-3"))
        .await
        .unwrap();
    assert_eq!(made.seconds, 10.0);
    assert!((made.cost_usd - 0.56).abs() < 1e-9);
    server.verify().await;
}

#[tokio::test]
async fn a_scene_longer_than_every_clip_is_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    let failed = clip_model(JobService::Replicate, &server)
        .generate(request(12.0, "hash-clip-4"))
        .await
        .unwrap_err();
    assert!(
        failed
            .to_string()
            .contains("at most 10 s, and the scene is 12.0 s"),
        "{failed}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let unknown = JobClip::connect(
        JobModelConfig {
            model: "someone/text-to-speech".into(),
            ..config(JobService::Replicate, &server)
        },
        Arc::new(MemoryJournal::default()),
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("Kling, Hailuo"), "{unknown}");
}

#[tokio::test]
async fn a_clip_left_running_is_cancelled_at_fal_when_asked() {
    let server = MockServer::start().await;
    let id = "9e2d4b1a-7c3f-4a8e-b5d6-1f0e9c8b7a63";
    Mock::given(method("POST"))
        .and(path("/fal-ai/kling-video/v2.1/standard/image-to-video"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::cassette("fal", "submitted_kling")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/fal-ai/kling-video/requests/{id}/status")))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(common::cassette("fal", "status_in_progress")),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/fal-ai/kling-video/requests/{id}/cancel")))
        .and(header("authorization", format!("Key {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({ "status": "CANCELLATION_REQUESTED" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut impatient = config(JobService::Fal, &server);
    impatient.waiting.deadline = Duration::from_millis(30);
    let model = JobClip::connect(impatient, Arc::new(MemoryJournal::default())).unwrap();
    let waited = model.generate(request(4.0, "hash-clip-5")).await;
    assert!(waited.is_err(), "the clip is still being made");
    assert!(
        model.cancel("hash-clip-5").await.unwrap(),
        "its job is stopped"
    );
    assert!(
        !model.cancel("hash-clip-5").await.unwrap(),
        "a job stopped already is not stopped again"
    );
    assert!(!model.cancel("hash-never-made").await.unwrap());
    server.verify().await;
}
