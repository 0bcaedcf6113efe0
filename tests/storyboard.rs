//! The storyboard, over a real WebSocket and the REST API: a run whose pictures would be
//! paid for (a fake Replicate counting submissions) stops after its prompts with the
//! scenes' prompts, sketches and estimate, pays for nothing until approved, rewrites only
//! the scenes a revision names, and makes the pictures once approved; a cancel stops it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::fakes::{png, prediction};
use common::server::*;

const TOKEN: &str = "r8_storyboard-token-PLANTED01234";

/// A fake Replicate whose FLUX answers within the request; counts submissions.
async fn fake_replicate(submitted: Arc<AtomicUsize>) -> MockServer {
    let server = MockServer::start().await;
    let at = server.uri();
    Mock::given(method("POST"))
        .and(path(
            "/v1/models/black-forest-labs/flux-schnell/predictions",
        ))
        .respond_with(move |_: &Request| {
            let n = submitted.fetch_add(1, Ordering::SeqCst);
            let id = format!("sb{n:04}qz5k2rmc0cr8m8t6xg");
            ResponseTemplate::new(201).set_body_json(prediction(
                &at,
                &id,
                "black-forest-labs/flux-schnell",
                "succeeded",
                json!([format!("{at}/files/{id}/out-0.png")]),
            ))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/.+/out-0\.png$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(1024, 1024), "image/png"))
        .mount(&server)
        .await;
    server
}

/// The next `feedback.needed` on `socket`, skipping everything before it.
async fn next_question(socket: &mut Socket) -> Value {
    loop {
        let event = socket.next().await;
        match event["type"].as_str() {
            Some("feedback.needed") => return event["data"].clone(),
            Some("run.failed" | "run.completed" | "run.cancelled") => {
                panic!("the run ended without asking: {event}")
            }
            _ => {}
        }
    }
}

fn prompts(question: &Value) -> Vec<String> {
    question["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["prompt"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_run_waits_for_its_storyboard_and_pays_for_nothing_before_approval() {
    let dir = tempfile::tempdir().unwrap();
    let submitted = Arc::new(AtomicUsize::new(0));
    let replicate = fake_replicate(Arc::clone(&submitted)).await;
    let base = format!("{}/v1", replicate.uri());
    let settings = [
        ("MONTAGE_MODELS__IMAGE", "replicate"),
        ("REPLICATE_BASE_URL", base.as_str()),
        ("REPLICATE_API_TOKEN", TOKEN),
    ];
    let server = Server::start(dir.path(), &Backend::Sqlite, &settings).await;
    let run = server
        .create(json!({
            "prompt": "a calm lake at dawn, mist over the water",
            "formats": ["1:1"],
            "duration": 6,
            "max_iterations": 0,
        }))
        .await;
    let mut socket = server.socket().await;
    socket.subscribe(&run, 0).await;

    let first = next_question(&mut socket).await;
    assert_eq!(first["kind"], "storyboard");
    assert_eq!(first["revision"], 0);
    let scenes = first["scenes"].as_array().unwrap().clone();
    assert!(scenes.len() >= 2, "{first}");
    let estimate = first["estimate"]["usd"].as_f64().unwrap();
    assert!(
        (estimate - 0.003 * scenes.len() as f64).abs() < 1e-9,
        "{first}"
    );
    let text = first["text"].as_str().unwrap();
    assert!(
        text.contains(
            "replicate/black-forest-labs/flux-schnell makes the pictures once you approve"
        ) && text.contains("estimated at $0.01")
            && text.contains("Estimated cost: 3 image $0.01"),
        "{text}"
    );
    for scene in &scenes {
        let sketch = server
            .download(scene["sketch"]["url"].as_str().unwrap())
            .await;
        let (width, height) = png::Decoder::new(std::io::Cursor::new(sketch))
            .read_info()
            .map(|reader| (reader.info().width, reader.info().height))
            .unwrap();
        assert_eq!((width, height), (270, 270), "a quarter of the 1080 canvas");
    }
    assert_eq!(
        submitted.load(Ordering::SeqCst),
        0,
        "nothing paid before approval"
    );
    let (_, view) = server.get(&format!("/api/runs/{run}")).await;
    assert_eq!(view["status"], "waiting");
    assert_eq!(view["question"]["kind"], "storyboard");

    // Nothing to skip to yet: refused, and the run keeps waiting.
    let (status, refused) = server
        .post(
            &format!("/api/runs/{run}/feedback"),
            &json!({ "action": "skip" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("no video yet"), "{refused}");

    // A revision over the WebSocket rewrites scene 2 alone.
    socket
        .send(json!({ "v": 1, "type": "feedback", "run_id": run, "data": {
            "action": "regenerate", "scenes": [1], "instruction": "under a starry night sky" } }))
        .await;
    let second = next_question(&mut socket).await;
    assert_eq!(second["kind"], "storyboard");
    assert_eq!(second["revision"], 1);
    let (before, after) = (prompts(&first), prompts(&second));
    assert!(after[1].contains("under a starry night sky"), "{after:?}");
    for k in (0..before.len()).filter(|&k| k != 1) {
        assert_eq!(before[k], after[k], "scene {k} keeps its prompt");
    }
    assert_ne!(
        first["scenes"][1]["sketch"]["id"], second["scenes"][1]["sketch"]["id"],
        "the rewritten scene is sketched again"
    );
    assert_eq!(
        second["round"], first["round"],
        "a revision is no round of fixes"
    );
    assert_eq!(submitted.load(Ordering::SeqCst), 0);

    // Approved over REST: the pictures are made, once each.
    let (status, _) = server
        .post(
            &format!("/api/runs/{run}/feedback"),
            &json!({ "action": "accept" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let view = server.wait_status(&run, &["completed"]).await;
    assert_eq!(submitted.load(Ordering::SeqCst), scenes.len());
    let made: Vec<&str> = view["plan"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(
        made, after,
        "the pictures are made from the approved prompts"
    );
    assert!(!serde_json::to_string(&view).unwrap().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_storyboard_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let run = server
        .create(json!({
            "prompt": "a neon city at night, rain on the streets",
            "formats": ["9:16"],
            "duration": 6,
            "storyboard": "always",
        }))
        .await;
    let mut socket = server.socket().await;
    socket.subscribe(&run, 0).await;
    let question = next_question(&mut socket).await;
    assert_eq!(question["kind"], "storyboard");
    assert!(
        question["text"]
            .as_str()
            .unwrap()
            .contains("local/procedural-1 makes the pictures")
            && !question["text"]
                .as_str()
                .unwrap()
                .contains("Estimated cost"),
        "offline, nothing is paid: {question}"
    );
    let (status, _) = server
        .post(
            &format!("/api/runs/{run}/feedback"),
            &json!({ "action": "cancel" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let view = server.wait_status(&run, &["cancelled"]).await;
    assert!(view["outputs"].is_null(), "{view}");
    let scenes = view["plan"]["scenes"].as_array().unwrap();
    assert!(
        scenes.iter().all(|s| s["thumbnail"].is_null()),
        "no picture was made"
    );
}

/// With `over_budget = "ask"`, a budget too small for the pictures stops the run before
/// them, whatever the storyboard policy: the person raises the budget (never past the
/// server's), sees what it now pays for, and approves.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_over_its_budget_asks_and_a_raised_budget_pays_for_every_picture() {
    let dir = tempfile::tempdir().unwrap();
    let submitted = Arc::new(AtomicUsize::new(0));
    let replicate = fake_replicate(Arc::clone(&submitted)).await;
    let base = format!("{}/v1", replicate.uri());
    let settings = [
        ("MONTAGE_MODELS__IMAGE", "replicate"),
        ("REPLICATE_BASE_URL", base.as_str()),
        ("REPLICATE_API_TOKEN", TOKEN),
        ("MONTAGE_MODELS__REPLICATE__IMAGE_PRICES__PER_OUTPUT", "0.5"),
        ("MONTAGE_PIPELINE__BUDGET_USD", "2.0"),
        ("MONTAGE_PIPELINE__OVER_BUDGET", "ask"),
        ("MONTAGE_PIPELINE__STORYBOARD", "never"),
    ];
    let server = Server::start(dir.path(), &Backend::Sqlite, &settings).await;
    let run = server
        .create(json!({
            "prompt": "a calm lake at dawn, mist over the water",
            "formats": ["1:1"],
            "duration": 6,
            "max_iterations": 0,
            "budget_usd": 0.6,
        }))
        .await;
    let mut socket = server.socket().await;
    socket.subscribe(&run, 0).await;
    let asked = next_question(&mut socket).await;
    let scenes = asked["scenes"].as_array().unwrap().len();
    assert_eq!(asked["kind"], "storyboard");
    let text = asked["text"].as_str().unwrap();
    assert!(
        text.contains("Budget: the run's budget of $0.60 leaves no room for replicate/black-forest-labs/flux-schnell to make scene")
            && text.contains("change the budget"),
        "{text}"
    );
    assert!((asked["estimate"]["usd"].as_f64().unwrap() - 0.5).abs() < 1e-9);

    let (status, refused) = server
        .post(
            &format!("/api/runs/{run}/feedback"),
            &json!({ "action": "budget", "usd": 5.0 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.to_string().contains("at most $2.00"), "{refused}");

    socket
        .send(json!({ "v": 1, "type": "feedback", "run_id": run, "data": { "action": "budget", "usd": 1.5 } }))
        .await;
    let again = next_question(&mut socket).await;
    let text = again["text"].as_str().unwrap();
    assert!(
        !text.contains("leaves no room") && text.contains("of its $1.50 budget (100 %)"),
        "the new budget pays for everything: {text}"
    );
    assert!(
        (again["estimate"]["usd"].as_f64().unwrap() - 0.5 * scenes as f64).abs() < 1e-9,
        "{again}"
    );
    assert_eq!(submitted.load(Ordering::SeqCst), 0);
    let (_, view) = server.get(&format!("/api/runs/{run}")).await;
    assert!(
        !view["notices"].to_string().contains("leaves no room"),
        "no stale word about the old budget: {}",
        view["notices"]
    );

    let (status, _) = server
        .post(
            &format!("/api/runs/{run}/feedback"),
            &json!({ "action": "accept" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let view = server.wait_status(&run, &["completed"]).await;
    assert_eq!(submitted.load(Ordering::SeqCst), scenes);
    assert!((view["cost"]["usd"].as_f64().unwrap() - 0.5 * scenes as f64).abs() < 1e-9);
}
