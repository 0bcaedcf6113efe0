//! Paid generation against a fake Replicate that speaks its predictions API and counts
//! submissions: a server killed while the jobs run resumes polling them after a restart and
//! never submits a scene twice, and a provider that is down gives way to the next model of
//! the chain, the run saying which model made each scene.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::fakes::{png, prediction};
use common::server::*;

const TOKEN: &str = "r8_test-token-PLANTED0123456789";
const FLUX: &str = "/v1/models/black-forest-labs/flux-schnell/predictions";
const FLUX_MODEL: &str = "black-forest-labs/flux-schnell";

/// What the fake Replicate saw.
#[derive(Default)]
struct Seen {
    /// Prompts submitted, by prediction id.
    submitted: BTreeMap<String, String>,
    /// Predictions polled at least once: Montage polls a job only after writing it down.
    polled: std::collections::BTreeSet<String>,
    /// Predictions Montage asked to cancel.
    cancelled: std::collections::BTreeSet<String>,
}

/// A fake Replicate whose jobs run until `finish` is set.
async fn fake_replicate(seen: Arc<Mutex<Seen>>, finish: Arc<AtomicBool>) -> MockServer {
    let server = MockServer::start().await;
    let base = server.uri();
    let submissions = Arc::clone(&seen);
    let at = base.clone();
    Mock::given(method("POST"))
        .and(path(FLUX))
        .respond_with(move |request: &Request| {
            let authorized = request
                .headers
                .get("authorization")
                .is_some_and(|v| v.to_str().ok() == Some(&format!("Bearer {TOKEN}")));
            if !authorized {
                return ResponseTemplate::new(401).set_body_json(json!({
                    "title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401,
                }));
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let mut seen = submissions.lock().unwrap();
            let id = format!("p{:04}qz5k2rmc0cr8m8t6xg", seen.submitted.len());
            seen.submitted.insert(
                id.clone(),
                body["input"]["prompt"].as_str().unwrap_or("").to_owned(),
            );
            ResponseTemplate::new(201).set_body_json(prediction(&at, &id, FLUX_MODEL, "starting", Value::Null))
        })
        .mount(&server)
        .await;
    let cancels = Arc::clone(&seen);
    let at = base.clone();
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/predictions/[a-z0-9]+/cancel$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().split('/').nth(3).unwrap().to_owned();
            cancels.lock().unwrap().cancelled.insert(id.clone());
            ResponseTemplate::new(200).set_body_json(prediction(
                &at,
                &id,
                FLUX_MODEL,
                "canceled",
                Value::Null,
            ))
        })
        .mount(&server)
        .await;
    let at = base.clone();
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/predictions/[a-z0-9]+$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap().to_owned();
            let mut seen = seen.lock().unwrap();
            if !seen.submitted.contains_key(&id) {
                return ResponseTemplate::new(404).set_body_json(json!({
                    "title": "Not found", "detail": "The requested resource could not be found.", "status": 404,
                }));
            }
            let body = match finish.load(Ordering::SeqCst) {
                true => prediction(
                    &at,
                    &id,
                    FLUX_MODEL,
                    "succeeded",
                    json!([format!("{at}/files/{id}/out-0.png")]),
                ),
                false => prediction(&at, &id, FLUX_MODEL, "processing", Value::Null),
            };
            seen.polled.insert(id);
            ResponseTemplate::new(200).set_body_json(body)
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

fn paid_settings(replicate: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MONTAGE_MODELS__IMAGE", "replicate".into()),
        ("REPLICATE_BASE_URL", format!("{replicate}/v1")),
        ("REPLICATE_API_TOKEN", TOKEN.into()),
        ("MONTAGE_MODELS__REPLICATE__FIRST_POLL_MS", "50".into()),
        ("MONTAGE_PIPELINE__FEEDBACK", "accept".into()),
    ]
}

fn as_pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn square_run() -> Value {
    json!({
        "prompt": "a calm lake at dawn, mist over the water",
        "formats": ["1:1"],
        "duration": 6,
        "max_iterations": 0,
    })
}

on_both_databases!(a_server_killed_while_its_jobs_run_never_pays_for_a_scene_twice);

async fn a_server_killed_while_its_jobs_run_never_pays_for_a_scene_twice(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let finish = Arc::new(AtomicBool::new(false));
    let replicate = fake_replicate(Arc::clone(&seen), Arc::clone(&finish)).await;
    let settings = paid_settings(&replicate.uri());
    let server = Server::start(dir.path(), &backend, &as_pairs(&settings)).await;
    let run = server.create(square_run()).await;
    // Every scene's job is submitted, written down (it has been polled) and still running.
    // Killed between a submission and its journal write, a server submits again, saying the
    // scene may have been paid twice: that window is not what this test is about.
    let scenes = loop {
        let (_, view) = server.get(&format!("/api/runs/{run}")).await;
        let planned = view["plan"]["scenes"].as_array().map_or(0, Vec::len);
        let (submitted, polled) = {
            let seen = seen.lock().unwrap();
            (seen.submitted.len(), seen.polled.len())
        };
        if planned > 0 && submitted == planned && polled == planned {
            break planned;
        }
        assert!(
            submitted <= planned || planned == 0,
            "{submitted} jobs for {planned} scenes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    server.kill().await;
    finish.store(true, Ordering::SeqCst);

    let server = Server::start(dir.path(), &backend, &as_pairs(&settings)).await;
    let view = server.wait_status(&run, &["completed"]).await;
    let submitted = seen.lock().unwrap().submitted.clone();
    assert_eq!(
        submitted.len(),
        scenes,
        "one submission per scene: {submitted:?}"
    );
    let paid: Vec<&Value> = view["cost"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["capability"] == "image")
        .collect();
    assert_eq!(paid.len(), scenes, "{paid:?}");
    for entry in &paid {
        assert_eq!(entry["model"], "replicate/black-forest-labs/flux-schnell");
        assert!(
            (entry["usd"].as_f64().unwrap() - 0.003).abs() < 1e-9,
            "{entry}"
        );
    }
    let video = server
        .download(
            view["outputs"]["videos"][0]["asset"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
    let (codec, width, height, _) = probe(&video, dir.path());
    assert_eq!((codec.as_str(), width, height), ("h264", 1080, 1080));
    let everything = serde_json::to_string(&view).unwrap();
    assert!(!everything.contains(TOKEN), "the token is in the run view");
}

/// A run cancelled while its jobs run has each of them cancelled at Replicate: nothing
/// goes on being made and paid for.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_cancels_its_jobs_at_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), Arc::new(AtomicBool::new(false))).await;
    let settings = paid_settings(&replicate.uri());
    let server = Server::start(dir.path(), &Backend::Sqlite, &as_pairs(&settings)).await;
    let run = server.create(square_run()).await;
    let jobs = loop {
        let (_, view) = server.get(&format!("/api/runs/{run}")).await;
        let planned = view["plan"]["scenes"].as_array().map_or(0, Vec::len);
        let polled = seen.lock().unwrap().polled.clone();
        if planned > 0 && polled.len() == planned {
            break polled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (status, _) = server
        .post(&format!("/api/runs/{run}/cancel"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.wait_status(&run, &["cancelled"]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.lock().unwrap().cancelled != jobs {
        assert!(
            std::time::Instant::now() < deadline,
            "every running job is cancelled: {:?} of {jobs:?}",
            seen.lock().unwrap().cancelled
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen.lock().unwrap().submitted.len(),
        jobs.len(),
        "nothing submitted anew"
    );
}

/// A budget too small for the chain's first model steps down it: the first scene from FLUX
/// pro, the rest from FLUX schnell, each priced by its own model, and the run says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_budget_steps_down_the_image_chain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("montage.toml"),
        "[models]\nimage = \"replicate:black-forest-labs/flux-1.1-pro,replicate,local\"\n\n\
         [models.replicate.model_prices]\n\"black-forest-labs/flux-1.1-pro\" = { per_output = 0.04 }\n",
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), Arc::new(AtomicBool::new(true))).await;
    let pro = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let made = Arc::clone(&pro);
    let at = replicate.uri();
    Mock::given(method("POST"))
        .and(path(
            "/v1/models/black-forest-labs/flux-1.1-pro/predictions",
        ))
        .respond_with(move |_: &Request| {
            let id = format!("pro{}qz5k2rmc0cr8", made.fetch_add(1, Ordering::SeqCst));
            let done = prediction(
                &at,
                &id,
                "black-forest-labs/flux-1.1-pro",
                "succeeded",
                json!([format!("{at}/files/{id}/out-0.png")]),
            );
            ResponseTemplate::new(201).set_body_json(done)
        })
        .mount(&replicate)
        .await;
    let settings: Vec<(&str, String)> = paid_settings(&replicate.uri())
        .into_iter()
        .filter(|(k, _)| *k != "MONTAGE_MODELS__IMAGE")
        .collect();
    let server = Server::start(dir.path(), &Backend::Sqlite, &as_pairs(&settings)).await;
    let mut run = square_run();
    run["budget_usd"] = json!(0.05);
    let run = server.create(run).await;
    let view = server.wait_status(&run, &["completed"]).await;
    assert_eq!(
        pro.load(Ordering::SeqCst),
        1,
        "one picture from the dear model"
    );
    let made_by: Vec<&str> = view["plan"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["model"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(made_by.len(), 3, "{made_by:?}");
    assert_eq!(made_by[0], "replicate/black-forest-labs/flux-1.1-pro");
    assert!(
        made_by[1..]
            .iter()
            .all(|m| *m == "replicate/black-forest-labs/flux-schnell"),
        "{made_by:?}"
    );
    assert_eq!(seen.lock().unwrap().submitted.len(), 2);
    let spent = view["cost"]["usd"].as_f64().unwrap();
    assert!((spent - 0.046).abs() < 1e-9, "{spent}");
    let notices = view["notices"].to_string();
    assert!(
        notices
            .contains("scenes 2, 3; replicate/black-forest-labs/flux-schnell makes them instead"),
        "{notices}"
    );
}

/// `montage user budget` on the test's data: what it prints, and whether it succeeded.
fn set_budget(dir: &std::path::Path, name: &str, usd: &str) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_montage"));
    command.args(["user", "budget", name, usd]);
    on_data(&mut command, dir, &Backend::Sqlite);
    let output = command.output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}

/// A person's monthly budget holds across their runs: the first run pays for the pictures
/// it has room for, the next finds the month spent and draws locally, and each says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_monthly_budget_holds_across_a_persons_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (done, said) = set_budget(dir.path(), "local", "0.007");
    assert!(
        done && said.contains("local may spend $0.01 a month"),
        "{said}"
    );
    let (done, said) = set_budget(dir.path(), "nobody", "1");
    assert!(!done && said.contains("no user named \"nobody\""), "{said}");
    let (done, said) = set_budget(dir.path(), "local", "lots");
    assert!(!done && said.contains("is no amount"), "{said}");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), Arc::new(AtomicBool::new(true))).await;
    let settings = paid_settings(&replicate.uri());
    let server = Server::start(dir.path(), &Backend::Sqlite, &as_pairs(&settings)).await;
    let first = server.create(square_run()).await;
    let view = server.wait_status(&first, &["completed"]).await;
    assert_eq!(
        seen.lock().unwrap().submitted.len(),
        2,
        "two pictures fit the month"
    );
    let notices = view["notices"].to_string();
    assert!(
        notices.contains("your monthly budget of $0.01 ($0.01 left this month) leaves no room"),
        "{notices}"
    );
    assert_eq!(view["cost"]["estimate"]["monthly"]["limit"], 0.007);

    // Another video: the generation cache has none of its pictures.
    let mut other = square_run();
    other["prompt"] = json!("a desert road at noon, heat haze over the asphalt");
    let second = server.create(other).await;
    let view = server.wait_status(&second, &["completed"]).await;
    assert_eq!(
        seen.lock().unwrap().submitted.len(),
        2,
        "the month has no room for another paid picture"
    );
    let estimate = &view["cost"]["estimate"];
    assert!(
        estimate.is_null() || estimate["usd"] == 0.0,
        "nothing paid is expected: {estimate}"
    );
    let made_by: Vec<&str> = view["plan"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["model"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        made_by.iter().all(|m| *m == "local/procedural-1"),
        "{made_by:?}"
    );
    let notices = view["notices"].to_string();
    assert!(
        notices.contains("your monthly budget of $0.01 ($0.00 left this month)"),
        "{notices}"
    );
}

/// Replicate down (every request a 503): the local renderer, next in the chain, makes the
/// pictures, and the run says which model made each scene.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_is_down_gives_way_to_the_next_in_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "title": "Service Unavailable", "detail": "Replicate is temporarily unavailable", "status": 503,
        })))
        .mount(&replicate)
        .await;
    let mut settings = paid_settings(&replicate.uri());
    settings[0].1 = "replicate,local".into();
    let server = Server::start(dir.path(), &Backend::Sqlite, &as_pairs(&settings)).await;
    let run = server.create(square_run()).await;
    let view = server.wait_status(&run, &["completed"]).await;
    let made_by: Vec<&str> = view["plan"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scene| scene["model"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        !made_by.is_empty() && made_by.iter().all(|m| *m == "local/procedural-1"),
        "{made_by:?}"
    );
    let notices = view["notices"].to_string();
    assert!(
        notices.contains("replicate/black-forest-labs/flux-schnell failed")
            && notices.contains("local/procedural-1 made it instead"),
        "{notices}"
    );
    // What the stand-in drew is not remembered as Replicate's answer to the request: the
    // same run again asks Replicate again rather than being served the drawings.
    let again = server.create(square_run()).await;
    let view = server.wait_status(&again, &["completed"]).await;
    let images: Vec<&Value> = view["cost"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["capability"] == "image")
        .collect();
    assert!(
        !images.is_empty() && images.iter().all(|e| e["cached"] == false),
        "{images:?}"
    );
    let (status, _) = server.get(&format!("/api/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK);
}

/// A run with a budget: the estimate comes before any picture is asked for (over the
/// WebSocket and in the run), the budget pays for the pictures it has room for, the rest are
/// drawn locally and the run says so, and no call that would overrun it is made.
#[tokio::test(flavor = "multi_thread")]
async fn a_budget_is_never_overrun_and_the_estimate_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen), Arc::new(AtomicBool::new(true))).await;
    let settings = paid_settings(&replicate.uri());
    let server = Server::start(dir.path(), &Backend::Sqlite, &as_pairs(&settings)).await;
    let mut run = square_run();
    run["budget_usd"] = json!(0.007);
    let run = server.create(run).await;
    let mut socket = server.socket().await;
    socket.subscribe(&run, 0).await;
    let events = socket.until("run.completed").await;
    let estimate = events
        .iter()
        .position(|e| e["type"] == "cost.estimate")
        .expect("an estimate was sent");
    let first_picture = events
        .iter()
        .position(|e| e["type"] == "asset.ready")
        .expect("pictures were made");
    assert!(estimate < first_picture, "the estimate comes first");
    let sent = &events[estimate]["data"];
    assert!(
        (sent["usd"].as_f64().unwrap() - 0.006).abs() < 1e-9,
        "{sent}"
    );
    assert_eq!(sent["budget"], 0.007);
    assert_eq!(sent["items"].as_array().unwrap().len(), 2);

    let view = server.wait_status(&run, &["completed"]).await;
    assert_eq!(
        seen.lock().unwrap().submitted.len(),
        2,
        "two pictures fit the budget"
    );
    let spent: f64 = view["cost"]["usd"].as_f64().unwrap();
    assert!(spent <= 0.007 + 1e-9, "{spent}");
    assert!((view["cost"]["estimate"]["usd"].as_f64().unwrap() - 0.006).abs() < 1e-9);
    let made_by: Vec<&str> = view["plan"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["model"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        made_by
            .iter()
            .filter(|m| **m == "replicate/black-forest-labs/flux-schnell")
            .count(),
        2,
        "{made_by:?}"
    );
    assert!(made_by.len() > 2 && made_by[2..].iter().all(|m| *m == "local/procedural-1"));
    let notices = view["notices"].to_string();
    assert!(
        notices.contains("the run's budget of $0.01 leaves no room for replicate/black-forest-labs/flux-schnell to make scene"),
        "{notices}"
    );
    assert!(notices.contains("of its $0.01 budget"), "{notices}");
}
