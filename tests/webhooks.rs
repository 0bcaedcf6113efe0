//! Replicate's webhooks against a fake Replicate: each prediction is submitted with
//! Montage's webhook URL, and a signed delivery saying it finished has the run poll it at
//! once (the polls would otherwise come a minute later); deliveries that do not verify, are
//! stale or are not predictions are refused, and a repeated one changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[macro_use]
mod common;

use common::fakes::{png, prediction};
use common::server::*;

const TOKEN: &str = "r8_webhook-token-PLANTED0123456789";
/// Replicate's public test secret (its SDKs' test vector).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HOOK: &str = "https://montage.example.com/api/webhooks/replicate";

#[derive(Default)]
struct Seen {
    /// What each submission asked to be called back at, by prediction id.
    webhooks: BTreeMap<String, Value>,
    /// Predictions Replicate has finished.
    finished: BTreeSet<String>,
    /// Polls, by prediction id.
    polls: BTreeMap<String, usize>,
}

/// A FLUX prediction served from `base`, its picture with it once it succeeded.
fn flux(base: &str, id: &str, status: &str) -> Value {
    let output = match status {
        "succeeded" => json!([format!("{base}/files/{id}/out-0.png")]),
        _ => Value::Null,
    };
    prediction(base, id, "black-forest-labs/flux-schnell", status, output)
}

async fn fake_replicate(seen: Arc<Mutex<Seen>>) -> MockServer {
    let server = MockServer::start().await;
    let (submissions, at) = (Arc::clone(&seen), server.uri());
    Mock::given(method("POST"))
        .and(path(
            "/v1/models/black-forest-labs/flux-schnell/predictions",
        ))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let mut seen = submissions.lock().unwrap();
            let id = format!("wh{:04}qz5k2rmc0cr8", seen.webhooks.len());
            seen.webhooks.insert(
                id.clone(),
                json!({ "webhook": body["webhook"], "filter": body["webhook_events_filter"] }),
            );
            ResponseTemplate::new(201).set_body_json(flux(&at, &id, "starting"))
        })
        .mount(&server)
        .await;
    let at = server.uri();
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/predictions/wh[0-9]+qz5k2rmc0cr8$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap().to_owned();
            let mut seen = seen.lock().unwrap();
            *seen.polls.entry(id.clone()).or_default() += 1;
            let status = match seen.finished.contains(&id) {
                true => "succeeded",
                false => "processing",
            };
            ResponseTemplate::new(200).set_body_json(flux(&at, &id, status))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/files/.+/out-0\.png$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png(512, 512), "image/png"))
        .mount(&server)
        .await;
    server
}

/// A delivery of `body` signed with `SECRET` (message `id`, sent `age` seconds ago).
async fn deliver(server: &Server, id: &str, age: i64, body: &Value) -> StatusCode {
    let body = body.to_string();
    let timestamp = chrono::Utc::now().timestamp() - age;
    let signature = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .sign(id, timestamp, body.as_bytes())
        .unwrap();
    reqwest::Client::new()
        .post(server.url("/api/webhooks/replicate"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_webhook_has_the_run_take_its_picture_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let replicate = fake_replicate(Arc::clone(&seen)).await;
    let base = format!("{}/v1", replicate.uri());
    let settings = [
        ("MONTAGE_MODELS__IMAGE", "replicate"),
        ("REPLICATE_BASE_URL", base.as_str()),
        ("REPLICATE_API_TOKEN", TOKEN),
        ("MONTAGE_MODELS__REPLICATE__WEBHOOK_URL", HOOK),
        ("REPLICATE_WEBHOOK_SECRET", SECRET),
        // Without a delivery, a job would not be polled for a minute.
        ("MONTAGE_MODELS__REPLICATE__FIRST_POLL_MS", "60000"),
        ("MONTAGE_PIPELINE__FEEDBACK", "accept"),
    ];
    let server = Server::start(dir.path(), &Backend::Sqlite, &settings).await;
    let run = server
        .create(json!({
            "prompt": "a lighthouse at dusk, waves against the rocks",
            "formats": ["1:1"],
            "duration": 6,
            "max_iterations": 0,
        }))
        .await;
    let jobs = loop {
        let (_, view) = server.get(&format!("/api/runs/{run}")).await;
        let planned = view["plan"]["scenes"].as_array().map_or(0, Vec::len);
        let submitted: Vec<String> = seen.lock().unwrap().webhooks.keys().cloned().collect();
        if planned > 0 && submitted.len() == planned {
            break submitted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for asked in seen.lock().unwrap().webhooks.values() {
        assert_eq!(asked["webhook"], HOOK);
        assert_eq!(asked["filter"], json!(["completed"]));
    }
    // Each job waits for its delivery once its submission is written down.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let finished = |id: &str| flux(&replicate.uri(), id, "succeeded");
    let forged = {
        let body = finished(&jobs[0]).to_string();
        reqwest::Client::new()
            .post(server.url("/api/webhooks/replicate"))
            .header("webhook-id", "msg_forged")
            .header(
                "webhook-timestamp",
                chrono::Utc::now().timestamp().to_string(),
            )
            .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(forged, StatusCode::UNAUTHORIZED);
    assert_eq!(
        deliver(&server, "msg_stale", 3_600, &finished(&jobs[0])).await,
        StatusCode::UNAUTHORIZED,
        "an hour-old delivery is a replay"
    );
    assert_eq!(
        deliver(&server, "msg_list", 0, &json!([])).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(
        seen.lock().unwrap().polls.is_empty(),
        "refused deliveries wake nothing"
    );

    for (k, id) in jobs.iter().enumerate() {
        seen.lock().unwrap().finished.insert(id.clone());
        let message = format!("msg_{k}");
        assert_eq!(
            deliver(&server, &message, 0, &finished(id)).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            deliver(&server, &message, 0, &finished(id)).await,
            StatusCode::NO_CONTENT,
            "a repeated delivery is taken and changes nothing"
        );
    }
    let view = server.wait_status(&run, &["completed"]).await;
    let polls = seen.lock().unwrap().polls.clone();
    assert_eq!(polls.len(), jobs.len(), "{polls:?}");
    assert!(
        polls.values().all(|&n| n == 1),
        "each job polled once, when its delivery came: {polls:?}"
    );
    let paid: Vec<&Value> = view["cost"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["capability"] == "image" && e["cached"] == false)
        .collect();
    assert_eq!(paid.len(), jobs.len());
}

#[tokio::test]
async fn webhooks_without_their_secret_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_montage"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("MONTAGE_MODELS__REPLICATE__WEBHOOK_URL", HOOK)
        .env_remove("REPLICATE_WEBHOOK_SECRET");
    on_data(&mut command, dir.path(), &Backend::Sqlite);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("REPLICATE_WEBHOOK_SECRET is not"), "{said}");
}
