//! Stills from job APIs against recorded exchanges in Replicate's and fal's formats
//! (tests/cassettes/{replicate,fal}), replayed by a local HTTP server that matches the
//! requests: a job is submitted once, polled to its end, its output fetched and checked.

use montage_models::remote::jobs::{JobJournal, MemoryJournal, Waiting};
use montage_models::remote::media::{
    FallbackImage, JobImage, JobModelConfig, JobService, MediaPrices,
};
use montage_models::{ImageModel, ImageRequest, ModelError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

const TOKEN: &str = "r8_planted-token-0123456789PLNT";
const FLUX: &str = "/v1/models/black-forest-labs/flux-schnell/predictions";
const PREDICTION: &str = "/v1/predictions/q6xzb7k2hdrma0ck1v3tj5p8fw";
const OUTPUT: &str = "/xezq/Kf3mQe8ZpTn1vYcR0bWdLh7uJ2sA9gXoN4iE6kVtB5yHqPrCA/out-0.webp";

fn cassette(api: &str, name: &str) -> Value {
    common::cassette(api, name)
}

/// A recorded answer with its output URLs pointed at the test server.
fn pointed(api: &str, name: &str, server: &MockServer) -> Value {
    let text = cassette(api, name)
        .to_string()
        .replace("https://replicate.delivery", &server.uri())
        .replace("https://v3.fal.media", &server.uri());
    serde_json::from_str(&text).unwrap()
}

/// A picture of `width` x `height` in `format`.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut bytes = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn webp(width: u32, height: u32) -> Vec<u8> {
    picture(width, height, image::ImageFormat::WebP)
}

fn config(service: JobService, server: &MockServer) -> JobModelConfig {
    JobModelConfig {
        service,
        base_url: match service {
            JobService::Replicate => format!("{}/v1", server.uri()),
            JobService::Fal => server.uri(),
        },
        key_variable: match service {
            JobService::Replicate => "REPLICATE_API_TOKEN".into(),
            JobService::Fal => "FAL_KEY".into(),
        },
        key: Some(TOKEN.into()),
        model: match service {
            JobService::Replicate => "black-forest-labs/flux-schnell".into(),
            JobService::Fal => "fal-ai/flux/schnell".into(),
        },
        prices: MediaPrices {
            per_output: 0.003,
            per_second: 0.0,
            per_video_second: 0.0,
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

fn landscape(key: &str) -> ImageRequest {
    ImageRequest {
        prompt: "a lighthouse on a cliff at dusk, waves below".into(),
        negative_prompt: String::new(),
        width: 1920,
        height: 1080,
        seed: 7,
        job_key: Some(key.into()),
    }
}

/// A still model of `service` on `server`, with a journal of its own.
fn job_image(service: JobService, server: &MockServer) -> JobImage {
    JobImage::connect(config(service, server), Arc::new(MemoryJournal::default())).unwrap()
}

/// What a still model of `service` says when its submission to `at` is answered `status`
/// with the recorded `answer`; the submission is made once, never retried.
async fn refusal(service: JobService, at: &str, status: u16, answer: (&str, &str)) -> String {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(status).set_body_json(cassette(answer.0, answer.1)))
        .expect(1)
        .mount(&server)
        .await;
    let said = job_image(service, &server)
        .generate(landscape("hash-refused"))
        .await
        .unwrap_err()
        .to_string();
    server.verify().await;
    said
}

/// Replicate answering `first` to the submission, `then` to every poll, and `output` at the
/// output's URL.
async fn replicate(first: &str, then: &str, output: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(FLUX))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("prefer", "wait=1"))
        .and(body_partial_json(json!({
            "input": {
                "prompt": "a lighthouse on a cliff at dusk, waves below",
                "aspect_ratio": "16:9",
                "seed": 7,
                "num_outputs": 1,
                "output_format": "png",
            },
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(pointed(
            "replicate",
            first,
            &server,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(PREDICTION))
        .respond_with(ResponseTemplate::new(200).set_body_json(pointed("replicate", then, &server)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OUTPUT))
        .respond_with(output)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_replicate_job_is_submitted_once_polled_to_its_end_and_its_picture_checked() {
    let server = replicate(
        "prediction_starting",
        "prediction_succeeded",
        ResponseTemplate::new(200).set_body_raw(webp(1344, 768), "image/webp"),
    )
    .await;
    let journal = Arc::new(MemoryJournal::default());
    let model = JobImage::connect(config(JobService::Replicate, &server), journal.clone()).unwrap();
    let made = model.generate(landscape("hash-a")).await.unwrap();
    assert_eq!(
        made.model.to_string(),
        "replicate/black-forest-labs/flux-schnell"
    );
    assert_eq!(made.media_type, "image/png");
    let picture = image::load_from_memory(&made.bytes).unwrap();
    assert_eq!((picture.width(), picture.height()), (1344, 768));
    assert!((made.cost_usd - 0.003).abs() < 1e-12);
    let written = journal
        .find("hash-a|replicate/black-forest-labs/flux-schnell")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(written.job.as_deref(), Some("q6xzb7k2hdrma0ck1v3tj5p8fw"));
    assert_eq!(written.ended.as_deref(), Some("succeeded"));
    server.verify().await;
}

#[tokio::test]
async fn a_failed_prediction_is_a_failure_that_names_the_reason() {
    let server = replicate(
        "prediction_processing",
        "prediction_failed",
        ResponseTemplate::new(404),
    )
    .await;
    let journal = Arc::new(MemoryJournal::default());
    let model = JobImage::connect(config(JobService::Replicate, &server), journal.clone()).unwrap();
    let error = model.generate(landscape("hash-b")).await.unwrap_err();
    assert!(
        matches!(&error, ModelError::Rejected(said) if said.contains("All generated images contained NSFW content")),
        "{error}"
    );
    let ended = journal
        .find("hash-b|replicate/black-forest-labs/flux-schnell")
        .await
        .unwrap()
        .unwrap()
        .ended
        .unwrap();
    assert!(ended.starts_with("failed: All generated images"), "{ended}");
}

#[tokio::test]
async fn a_prediction_cancelled_at_the_provider_is_said_so() {
    let server = replicate(
        "prediction_starting",
        "prediction_canceled",
        ResponseTemplate::new(404),
    )
    .await;
    let journal = Arc::new(MemoryJournal::default());
    let model = JobImage::connect(config(JobService::Replicate, &server), journal.clone()).unwrap();
    let error = model.generate(landscape("hash-m")).await.unwrap_err();
    assert!(
        error.to_string().contains("was cancelled at the provider"),
        "{error}"
    );
    let ended = journal
        .find("hash-m|replicate/black-forest-labs/flux-schnell")
        .await
        .unwrap()
        .unwrap()
        .ended;
    assert_eq!(ended.as_deref(), Some("canceled"));
}

#[tokio::test]
async fn outputs_that_cannot_be_used_are_failures_never_pictures() {
    for (output, expected) in [
        (ResponseTemplate::new(404), "could not be fetched (404"),
        (
            ResponseTemplate::new(200).set_body_raw("<html>gone</html>", "text/html"),
            "made no usable picture",
        ),
        (
            ResponseTemplate::new(200).set_body_raw(webp(768, 1344), "image/webp"),
            "made a 768x1344 picture for a 1920x1080 scene",
        ),
    ] {
        let server = replicate("prediction_starting", "prediction_succeeded", output).await;
        let model = job_image(JobService::Replicate, &server);
        let error = model.generate(landscape("hash-c")).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
        // The job ran and was paid for: the ledger is told.
        let [paid] = error.wasted() else {
            panic!("the finished job's cost is lost: {error:?}");
        };
        assert!((paid.cost_usd - 0.003).abs() < 1e-12);
    }
}

#[tokio::test]
async fn no_credit_is_said_plainly_and_never_retried() {
    let said = refusal(
        JobService::Replicate,
        FLUX,
        402,
        ("replicate", "payment_required"),
    )
    .await;
    assert!(
        said.contains("replicate wants payment before it runs this (402)")
            && said.contains("You need to set up billing")
            && said.contains("REPLICATE_API_TOKEN"),
        "{said}"
    );
    assert!(!said.contains(TOKEN));
}

#[tokio::test]
async fn a_throttled_submission_is_tried_again_but_one_whose_answer_was_lost_is_not() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(FLUX))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(cassette("replicate", "rate_limited")),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(FLUX))
        .respond_with(ResponseTemplate::new(201).set_body_json(pointed(
            "replicate",
            "prediction_succeeded",
            &server,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OUTPUT))
        .respond_with(ResponseTemplate::new(200).set_body_raw(webp(1344, 768), "image/webp"))
        .mount(&server)
        .await;
    let model = job_image(JobService::Replicate, &server);
    model.generate(landscape("hash-e")).await.unwrap();
    server.verify().await;

    let stalled = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(FLUX))
        .respond_with(
            ResponseTemplate::new(201)
                .set_delay(Duration::from_secs(5))
                .set_body_json(cassette("replicate", "prediction_starting")),
        )
        .expect(1)
        .mount(&stalled)
        .await;
    let model = job_image(JobService::Replicate, &stalled);
    let error = model.generate(landscape("hash-f")).await.unwrap_err();
    assert!(
        !error.is_transient()
            && error
                .to_string()
                .contains("may have been taken, so it is not made again"),
        "{error}"
    );
    stalled.verify().await;
}

#[tokio::test]
async fn a_fal_request_is_queued_polled_under_its_app_and_its_result_fetched() {
    let server = MockServer::start().await;
    let id = "5c1f7a3e-2b9d-4e8a-9f61-0d3c8b7e4a21";
    Mock::given(method("POST"))
        .and(path("/fal-ai/flux/schnell"))
        .and(header("authorization", format!("Key {TOKEN}").as_str()))
        .and(body_partial_json(json!({
            "prompt": "a lighthouse on a cliff at dusk, waves below",
            "image_size": { "width": 1920, "height": 1080 },
            "num_images": 1,
            "seed": 7,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("fal", "submitted")))
        .expect(1)
        .mount(&server)
        .await;
    let status = format!("/fal-ai/flux/requests/{id}/status");
    for name in ["status_in_queue", "status_in_progress"] {
        Mock::given(method("GET"))
            .and(path(status.as_str()))
            .respond_with(ResponseTemplate::new(202).set_body_json(cassette("fal", name)))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(status.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(cassette("fal", "status_completed")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/fal-ai/flux/requests/{id}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(pointed(
            "fal",
            "result_flux_schnell",
            &server,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/files/penguin/Qm7xV2kTz9RbN4cLw8YpE_4f1c2a9d8e7b4c3a.jpg",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(picture(1024, 576, image::ImageFormat::Jpeg), "image/jpeg"),
        )
        .mount(&server)
        .await;
    let model = job_image(JobService::Fal, &server);
    let made = model.generate(landscape("hash-g")).await.unwrap();
    assert_eq!(made.model.to_string(), "fal/fal-ai/flux/schnell");
    assert_eq!(made.media_type, "image/png", "every still is kept as PNG");
    assert!(made.bytes.starts_with(b"\x89PNG"));
    server.verify().await;
}

#[tokio::test]
async fn an_out_of_credit_fal_key_is_told_in_falls_words() {
    let said = refusal(
        JobService::Fal,
        "/fal-ai/flux/schnell",
        403,
        ("fal", "forbidden_exhausted_balance"),
    )
    .await;
    assert!(
        said.contains(
            "fal refused the key in FAL_KEY (403: User is locked. Reason: Exhausted balance"
        ),
        "{said}"
    );
}

#[tokio::test]
async fn a_refused_request_is_not_retried_and_its_words_are_kept() {
    let said = refusal(
        JobService::Fal,
        "/fal-ai/flux/schnell",
        422,
        ("fal", "error"),
    )
    .await;
    assert!(
        said.contains("fal refused the request (422): Input should be less than or equal to 4"),
        "{said}"
    );
}

#[tokio::test]
async fn without_a_key_the_model_is_refused_naming_the_variable() {
    let server = MockServer::start().await;
    let mut keyless = config(JobService::Replicate, &server);
    keyless.key = None;
    let error = JobImage::connect(keyless, Arc::new(MemoryJournal::default())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "replicate needs a key, and REPLICATE_API_TOKEN is not set"
    );
}

#[tokio::test]
async fn a_chain_stands_in_with_the_next_model_and_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let chain = FallbackImage::new(vec![
        Arc::new(job_image(JobService::Replicate, &server)),
        Arc::new(montage_models::local::LocalImage),
    ])
    .unwrap();
    let made = chain.generate(landscape("hash-i")).await.unwrap();
    assert_eq!(made.model.to_string(), "local/procedural-1");
    assert_eq!(
        made.notices,
        [
            "replicate/black-forest-labs/flux-schnell failed: provider unavailable: replicate is overloaded (503, 1 attempt)",
            "local/procedural-1 made it instead"
        ]
    );
}

mod openai_endpoint {
    use super::*;
    use montage_models::remote::openai_media::{OpenAiImage, OpenAiMediaConfig, OpenAiSpeech};
    use montage_models::{SpeechModel, SpeechRequest};

    fn endpoint(server: &MockServer, model: &str) -> OpenAiMediaConfig {
        OpenAiMediaConfig {
            provider: "openai".into(),
            base_url: format!("{}/v1", server.uri()),
            key_variable: "OPENAI_API_KEY".into(),
            key: Some(TOKEN.into()),
            model: model.into(),
            policy: common::quick_policy(),
        }
    }

    /// The recorded answer with a real picture where its base64 goes.
    fn image_answer(width: u32, height: u32) -> Value {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(picture(
            width,
            height,
            image::ImageFormat::Png,
        ));
        let text = cassette("openai", "image_b64")
            .to_string()
            .replace("PNG_BASE64", &encoded);
        serde_json::from_str(&text).unwrap()
    }

    #[tokio::test]
    async fn a_gpt_image_still_comes_back_as_base64_in_the_scenes_shape() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/images/generations"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({
                "model": "gpt-image-1",
                "prompt": "a lighthouse on a cliff at dusk, waves below",
                "size": "1536x1024",
                "n": 1,
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(image_answer(1536, 1024)))
            .expect(1)
            .mount(&server)
            .await;
        let model = OpenAiImage::new(
            endpoint(&server, "gpt-image-1"),
            MediaPrices {
                per_output: 0.04,
                per_second: 0.0,
                per_video_second: 0.0,
            },
        )
        .unwrap();
        let made = model.generate(landscape("hash-k")).await.unwrap();
        assert_eq!(made.model.to_string(), "openai/gpt-image-1");
        assert!((made.cost_usd - 0.04).abs() < 1e-12);
        let picture = image::load_from_memory(&made.bytes).unwrap();
        assert_eq!((picture.width(), picture.height()), (1536, 1024));
        server.verify().await;
    }

    #[tokio::test]
    async fn a_blocked_prompt_is_said_in_openais_words_and_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/images/generations"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(cassette("openai", "image_error_400")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let model =
            OpenAiImage::new(endpoint(&server, "gpt-image-1"), MediaPrices::default()).unwrap();
        let said = model
            .generate(landscape("hash-l"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            said.contains(
                "openai refused the request (400): Your request was rejected by the safety system"
            ),
            "{said}"
        );
    }

    fn wav(seconds: f64) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 24_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for n in 0..(seconds * 24_000.0) as u32 {
            writer
                .write_sample(((n as f64 * 0.05).sin() * 8_000.0) as i16)
                .unwrap();
        }
        writer.finalize().unwrap();
        bytes.into_inner()
    }

    #[tokio::test]
    async fn speech_is_asked_for_as_wav_and_measured() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/speech"))
            .and(body_partial_json(json!({
                "model": "gpt-4o-mini-tts",
                "input": "The lake wakes slowly.",
                "voice": "nova",
                "response_format": "wav",
            })))
            .respond_with(ResponseTemplate::new(200).set_body_raw(wav(1.5), "audio/wav"))
            .expect(1)
            .mount(&server)
            .await;
        let speech =
            OpenAiSpeech::new(endpoint(&server, "gpt-4o-mini-tts"), "nova".into(), 15.0).unwrap();
        let said = speech
            .speak(SpeechRequest {
                text: "The lake wakes slowly.".into(),
                voice: String::new(),
                rate: 1.0,
            })
            .await
            .unwrap();
        assert!((said.seconds - 1.5).abs() < 0.01, "{}", said.seconds);
        assert!((said.cost_usd - 22.0 * 15.0 / 1e6).abs() < 1e-12);

        let garbled = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/audio/speech"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw("ID3\u{3}mp3 bytes", "audio/mpeg"),
            )
            .mount(&garbled)
            .await;
        let speech = OpenAiSpeech::new(endpoint(&garbled, "tts-1"), "alloy".into(), 15.0).unwrap();
        let error = speech
            .speak(SpeechRequest {
                text: "Hello.".into(),
                voice: String::new(),
                rate: 1.0,
            })
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("spoke no usable audio"),
            "{error}"
        );
    }
}

mod music {
    use super::*;
    use montage_models::remote::media::JobMusic;
    use montage_models::{MusicModel, MusicRequest};

    const VERSION: &str = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb";
    const BED: &str = "/yhqm/Ue7bQ2rXnC4pW9sLk0TfJaZ3vD8hG1mYo5iN6cEqR4tBwKoIA/out.mp3";

    fn musicgen(server: &MockServer) -> JobModelConfig {
        JobModelConfig {
            model: format!("meta/musicgen:{VERSION}"),
            prices: MediaPrices {
                per_output: 0.0,
                per_second: 0.0014,
                per_video_second: 0.0,
            },
            ..config(JobService::Replicate, server)
        }
    }

    fn request() -> MusicRequest {
        MusicRequest {
            prompt: "calm dreamy pastel".into(),
            bpm: 92.0,
            meter: 4,
            seconds: 10.6,
            seed: 3,
            job_key: Some("music-hash".into()),
        }
    }

    async fn served(bed: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/predictions"))
            .and(body_partial_json(json!({
                "version": VERSION,
                "input": {
                    "prompt": "calm dreamy pastel, 92 bpm",
                    "duration": 11,
                    "output_format": "wav",
                },
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(pointed(
                "replicate",
                "musicgen_succeeded",
                &server,
            )))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(BED))
            .respond_with(bed)
            .mount(&server)
            .await;
        server
    }

    fn wav(seconds: f64) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 32_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut bytes = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for n in 0..(seconds * 32_000.0) as u32 {
            let sample = ((n as f64 * 0.03).sin() * 6_000.0) as i16;
            writer.write_sample(sample).unwrap();
            writer.write_sample(sample).unwrap();
        }
        writer.finalize().unwrap();
        bytes.into_inner()
    }

    #[tokio::test]
    async fn a_musicgen_bed_by_version_is_asked_for_as_wav_and_priced_by_the_second() {
        let server = served(ResponseTemplate::new(200).set_body_raw(wav(11.0), "audio/wav")).await;
        let model =
            JobMusic::connect(musicgen(&server), Arc::new(MemoryJournal::default())).unwrap();
        let bed = model.compose(request()).await.unwrap();
        assert_eq!(bed.model.model, format!("meta/musicgen:{VERSION}"));
        assert!(bed.beats.is_none(), "its beats are found by analysis");
        assert!(
            (bed.cost_usd - 12.836114 * 0.0014).abs() < 1e-9,
            "{}",
            bed.cost_usd
        );
        server.verify().await;
    }

    #[tokio::test]
    async fn a_bed_that_is_not_wav_is_refused() {
        let server =
            served(ResponseTemplate::new(200).set_body_raw("ID3\u{4}not wav at all", "audio/mpeg"))
                .await;
        let model =
            JobMusic::connect(musicgen(&server), Arc::new(MemoryJournal::default())).unwrap();
        let error = model.compose(request()).await.unwrap_err();
        assert!(
            error.to_string().contains("made no usable music"),
            "{error}"
        );
    }
}

mod elevenlabs {
    use super::*;
    use montage_models::remote::elevenlabs::{ElevenLabsConfig, ElevenLabsSpeech};
    use montage_models::{SpeechModel, SpeechRequest};

    const VOICE: &str = "JBFqnCBsd6RMkjVDRZzb";

    fn voice(server: &MockServer) -> ElevenLabsSpeech {
        ElevenLabsSpeech::connect(ElevenLabsConfig {
            base_url: server.uri(),
            key_variable: "ELEVENLABS_API_KEY".into(),
            key: Some(TOKEN.into()),
            model: "eleven_multilingual_v2".into(),
            voice: VOICE.into(),
            per_million_characters: 300.0,
            policy: common::quick_policy(),
        })
        .unwrap()
    }

    fn hello() -> SpeechRequest {
        SpeechRequest {
            text: "Hello there.".into(),
            voice: String::new(),
            rate: 1.0,
        }
    }

    /// The recorded answer with `seconds` of 24 kHz PCM where its audio goes.
    fn spoken(seconds: f64) -> Value {
        use base64::Engine;
        let pcm: Vec<u8> = (0..(seconds * 24_000.0) as u32)
            .flat_map(|n| (((n as f64 * 0.07).sin() * 5_000.0) as i16).to_le_bytes())
            .collect();
        let text = cassette("elevenlabs", "with_timestamps")
            .to_string()
            .replace(
                "AUDIO_BASE64",
                &base64::engine::general_purpose::STANDARD.encode(pcm),
            );
        serde_json::from_str(&text).unwrap()
    }

    #[tokio::test]
    async fn a_voice_speaks_pcm_that_is_kept_as_wav_of_the_words_length() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(
                format!("/v1/text-to-speech/{VOICE}/with-timestamps").as_str(),
            ))
            .and(wiremock::matchers::query_param(
                "output_format",
                "pcm_24000",
            ))
            .and(header("xi-api-key", TOKEN))
            .and(body_partial_json(
                json!({ "text": "Hello there.", "model_id": "eleven_multilingual_v2" }),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(spoken(1.2)))
            .expect(1)
            .mount(&server)
            .await;
        let said = voice(&server).speak(hello()).await.unwrap();
        assert_eq!(said.model.to_string(), "elevenlabs/eleven_multilingual_v2");
        assert!((said.seconds - 1.2).abs() < 0.01, "{}", said.seconds);
        let reader = hound::WavReader::new(std::io::Cursor::new(&said.wav)).unwrap();
        assert_eq!(reader.spec().sample_rate, 24_000);
        assert!((said.cost_usd - 12.0 * 300.0 / 1e6).abs() < 1e-12);
        let words: Vec<(&str, f64, f64)> = said
            .words
            .iter()
            .map(|w| (w.text.as_str(), w.start, w.end))
            .collect();
        assert_eq!(
            words,
            [("Hello", 0.0, 0.43), ("there.", 0.511, 1.138)],
            "each word from its first character's start to its last one's end"
        );
        server.verify().await;
    }

    #[tokio::test]
    async fn audio_cut_short_of_its_words_is_refused() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(spoken(0.3)))
            .mount(&server)
            .await;
        let error = voice(&server).speak(hello()).await.unwrap_err();
        assert!(
            error.to_string().contains("for words that take 1.14 s"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_exhausted_quota_is_told_apart_from_a_bad_key() {
        for (answer, expected) in [
            (
                "quota_exceeded",
                "elevenlabs wants payment before it runs this (402): This request exceeds your quota",
            ),
            (
                "unauthorized",
                "elevenlabs refused the key in ELEVENLABS_API_KEY (401)",
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(
                    ResponseTemplate::new(401).set_body_json(cassette("elevenlabs", answer)),
                )
                .expect(1)
                .mount(&server)
                .await;
            let said = voice(&server).speak(hello()).await.unwrap_err().to_string();
            assert!(said.contains(expected), "{said}");
            assert!(!said.contains(TOKEN));
        }
    }
}
