//! Clips against a fake Replicate that speaks its files and predictions APIs: each scene's
//! still is uploaded and handed to Kling as the clip's first frame, the clip is made at the
//! nearest length that covers the scene and shown in the video in place of the still, and
//! a clip that cannot be decoded leaves its scene the still, paid for and said.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::fakes::{mp4, png, prediction};
use common::server::*;

const TOKEN: &str = "r8_clip-token-PLANTED0123456789";
const FLUX: &str = "/v1/models/black-forest-labs/flux-schnell/predictions";
const KLING: &str = "/v1/models/kwaivgi/kling-v2.1/predictions";

/// What the fake Replicate saw.
#[derive(Default)]
struct Seen {
    /// Files uploaded, each a JPEG in a `content` part.
    uploads: usize,
    /// Kling's inputs, by prediction id.
    clips: BTreeMap<String, Value>,
    /// The pictures uploaded, by the URL their file is known by.
    frames: BTreeMap<String, Vec<u8>>,
}

fn authorized(request: &Request) -> bool {
    request
        .headers
        .get("authorization")
        .is_some_and(|v| v.to_str().ok() == Some(&format!("Bearer {TOKEN}")))
}

/// A fake Replicate: FLUX answers within the request, Kling at the first poll, and the
/// first clip it makes is cut short when `damage_first`.
async fn fake_replicate(seen: Arc<Mutex<Seen>>, dir: &Path, damage_first: bool) -> MockServer {
    let server = MockServer::start().await;
    let base = server.uri();
    let at = base.clone();
    Mock::given(method("POST"))
        .and(path(FLUX))
        .respond_with(move |request: &Request| {
            assert!(authorized(request));
            let id = format!("s{}", uuid::Uuid::new_v4().simple());
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
    let uploads = Arc::clone(&seen);
    let at = base.clone();
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(move |request: &Request| {
            assert!(authorized(request));
            let multipart = request
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("multipart/form-data"));
            let body = &request.body;
            let named = body.windows(16).any(|w| w == b"name=\"content\"; ");
            let jpeg = body.windows(3).any(|w| w == [0xFF, 0xD8, 0xFF]);
            if !(multipart && named && jpeg) {
                return ResponseTemplate::new(400).set_body_json(json!({ "detail": "no content part", "status": 400 }));
            }
            let mut seen = uploads.lock().unwrap();
            seen.uploads += 1;
            let id = format!("f{}", seen.uploads);
            let from = body.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]).unwrap();
            let to = body.windows(2).rposition(|w| w == [0xFF, 0xD9]).unwrap() + 2;
            seen.frames.insert(format!("{at}/v1/files/{id}"), body[from..to].to_vec());
            ResponseTemplate::new(201).set_body_json(json!({
                "id": id, "name": "start-frame.jpeg", "content_type": "image/jpeg", "size": body.len(),
                "urls": { "get": format!("{at}/v1/files/{id}") },
            }))
        })
        .mount(&server)
        .await;
    let clips = Arc::clone(&seen);
    let at = base.clone();
    Mock::given(method("POST"))
        .and(path(KLING))
        .respond_with(move |request: &Request| {
            assert!(authorized(request));
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let mut seen = clips.lock().unwrap();
            let id = format!("c{:04}kling", seen.clips.len());
            seen.clips.insert(id.clone(), body["input"].clone());
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
    let polled = Arc::clone(&seen);
    let at = base.clone();
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/predictions/c[0-9]+kling$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap().to_owned();
            let seen = polled.lock().unwrap();
            let seconds = seen.clips[&id]["duration"].as_u64().unwrap();
            let output = json!(format!("{at}/files/{id}/clip-{seconds}.mp4"));
            ResponseTemplate::new(200).set_body_json(prediction(
                &at,
                &id,
                "kwaivgi/kling-v2.1",
                "succeeded",
                output,
            ))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/.+/out-0\.png$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(1024, 1024), "image/png"))
        .mount(&server)
        .await;
    for seconds in [5, 10] {
        let clip = mp4(dir, "color=c=0x00FF00:s=720x720:r=24", seconds);
        if damage_first {
            let cut = clip[..clip.len() / 3].to_vec();
            Mock::given(method("GET"))
                .and(path(format!("/files/c0000kling/clip-{seconds}.mp4")))
                .respond_with(ResponseTemplate::new(200).set_body_raw(cut, "video/mp4"))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path_regex(format!(
                r"^/files/c[0-9]+kling/clip-{seconds}\.mp4$"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_raw(clip, "video/mp4"))
            .mount(&server)
            .await;
    }
    server
}

/// The mean colour of the video's picture at `seconds`.
fn colour_at(video: &[u8], seconds: f64, dir: &Path) -> [f64; 3] {
    let path = dir.join(format!("frame-{}.mp4", uuid::Uuid::new_v4()));
    std::fs::write(&path, video).unwrap();
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{seconds:.3}"), "-i"])
        .arg(&path)
        .args([
            "-frames:v",
            "1",
            "-s",
            "16x16",
            "-pix_fmt",
            "rgb24",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .unwrap();
    assert!(output.status.success() && output.stdout.len() == 16 * 16 * 3);
    let mut sum = [0.0; 3];
    for pixel in output.stdout.chunks(3) {
        for c in 0..3 {
            sum[c] += f64::from(pixel[c]) / 256.0;
        }
    }
    sum
}

/// A server making stills and clips on `replicate`, taking the critic's fixes.
async fn clip_server(dir: &Path, replicate: &MockServer) -> Server {
    let base = format!("{}/v1", replicate.uri());
    let settings = [
        ("MONTAGE_MODELS__IMAGE", "replicate"),
        ("MONTAGE_MODELS__CLIP", "replicate"),
        ("REPLICATE_BASE_URL", base.as_str()),
        ("REPLICATE_API_TOKEN", TOKEN),
        ("MONTAGE_MODELS__REPLICATE__FIRST_POLL_MS", "50"),
        ("MONTAGE_PIPELINE__FEEDBACK", "accept"),
    ];
    Server::start(dir, &Backend::Sqlite, &settings).await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_scene_plays_a_clip_made_from_its_still_and_a_broken_clip_leaves_the_still() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), dir.path(), true).await;
    let server = clip_server(dir.path(), &replicate).await;
    let run = server
        .create(json!({
            "prompt": "a lighthouse on a cliff, waves rolling in",
            "formats": ["1:1"],
            "duration": 8,
            "pace": "medium",
            "max_iterations": 0,
        }))
        .await;
    let view = server.wait_status(&run, &["completed"]).await;
    let scenes = view["plan"]["scenes"].as_array().unwrap().clone();
    let (uploads, clips) = {
        let seen = seen.lock().unwrap();
        (seen.uploads, seen.clips.clone())
    };
    assert_eq!(clips.len(), scenes.len(), "one clip asked per scene");
    assert_eq!(uploads, scenes.len(), "each still uploaded once");
    for input in clips.values() {
        assert!(
            input["start_image"]
                .as_str()
                .is_some_and(|u| u.contains("/v1/files/f")),
            "{input}"
        );
        assert_eq!(
            input["duration"], 5,
            "scenes of a few seconds take Kling's 5 s"
        );
    }

    let damaged_prompt = clips["c0000kling"]["prompt"].as_str().unwrap();
    let without: Vec<&Value> = scenes.iter().filter(|s| s["clip"].is_null()).collect();
    assert_eq!(
        without.len(),
        1,
        "only the damaged clip is left out: {scenes:?}"
    );
    let still_prompt = without[0]["prompt"].as_str().unwrap();
    assert!(
        damaged_prompt.starts_with(still_prompt) && damaged_prompt.contains("seconds of motion"),
        "the clip is asked with the scene's prompt and its motion: {damaged_prompt}"
    );
    let kept = without[0]["index"].as_u64().unwrap() as usize;
    let notices = view["notices"].to_string();
    assert!(
        notices.contains(&format!("scene {} keeps its still", kept + 1))
            && notices.contains("does not decode"),
        "{notices}"
    );
    for scene in &scenes {
        if !scene["clip"].is_null() {
            assert_eq!(scene["clip_model"], "replicate/kwaivgi/kling-v2.1");
        }
    }

    let ledger = view["cost"]["ledger"].as_array().unwrap();
    let paid_clips: Vec<&Value> = ledger
        .iter()
        .filter(|e| e["capability"] == "clip")
        .collect();
    assert_eq!(
        paid_clips.len(),
        scenes.len(),
        "the broken clip was paid for too"
    );
    for entry in &paid_clips {
        assert!(
            (entry["usd"].as_f64().unwrap() - 5.0 * 0.056).abs() < 1e-9,
            "{entry}"
        );
    }
    let estimated: Vec<&Value> = view["cost"]["estimate"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["capability"] == "clip")
        .collect();
    assert_eq!(estimated.len(), scenes.len());

    let video = server
        .download(
            view["outputs"]["videos"][0]["asset"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    let (_, width, height, seconds) = probe(&video, dir.path());
    assert_eq!((width, height), (1080, 1080));
    assert!((seconds - view["plan"]["duration"].as_f64().unwrap()).abs() < 0.1);
    for (k, scene) in scenes.iter().enumerate() {
        let middle = (scene["start"].as_f64().unwrap() + scene["end"].as_f64().unwrap()) / 2.0;
        let [red, green, blue] = colour_at(&video, middle, dir.path());
        if k == kept {
            assert!(
                blue > 90.0,
                "scene {k} shows its still: {red} {green} {blue}"
            );
        } else {
            assert!(
                green > 200.0 && blue < 40.0 && red < 60.0,
                "scene {k} shows its lime clip: {red} {green} {blue}"
            );
        }
    }
    assert!(!serde_json::to_string(&view).unwrap().contains(TOKEN));
}

/// At a slow pace every cut melts into the next, and the story carries the shots on within
/// each part of the song: those scenes' clips start from the last frame of the clip before
/// (lime, as the fake's clips are), the others from their own stills.
#[tokio::test(flavor = "multi_thread")]
async fn a_carried_on_scene_starts_from_the_last_frame_of_the_clip_before() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), dir.path(), false).await;
    let server = clip_server(dir.path(), &replicate).await;
    let run = server
        .create(json!({
            "prompt": "a foggy forest at dawn, light through the trees",
            "formats": ["1:1"],
            "duration": 12,
            "pace": "slow",
            "max_iterations": 0,
        }))
        .await;
    let view = server.wait_status(&run, &["completed"]).await;
    let scenes = view["plan"]["scenes"].as_array().unwrap().len();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.clips.len(), scenes, "every scene has its clip");
    let lime = |jpeg: &[u8]| {
        let picture = image::load_from_memory(jpeg).unwrap().to_rgb8();
        let n = f64::from(picture.width() * picture.height());
        let mean = |c: usize| picture.pixels().map(|p| f64::from(p[c])).sum::<f64>() / n;
        mean(1) > 200.0 && mean(2) < 60.0
    };
    let started_from_clips = seen
        .clips
        .values()
        .filter(|input| lime(&seen.frames[input["start_image"].as_str().unwrap()]))
        .count();
    assert!(
        started_from_clips > 0 && started_from_clips < scenes,
        "some scenes carry on the clip before, the first of each part does not: {started_from_clips} of {scenes}"
    );
    assert!(
        view["plan"]["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["clip_model"] == "replicate/kwaivgi/kling-v2.1"),
        "{}",
        view["plan"]
    );
}
