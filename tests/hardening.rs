//! `montage serve` against what breaks servers: a kill after every step of an answered run,
//! WebSocket clients that close, overflow or outlive the server, truncated uploads, image
//! bombs, limits, and requests that must be refused without changing anything.

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[macro_use]
mod common;

use common::picture;
use common::server::*;

on_both_databases!(an_answered_run_survives_a_kill_at_every_step);
on_both_databases!(deleting_a_run_frees_what_only_it_used);

/// A run answered and killed at once, then killed again after every checkpoint it makes
/// until it finishes: each restart goes on from where it was, the answer is taken once
/// (taking it again failed the run), and no task runs twice within a step.
async fn an_answered_run_survives_a_kill_at_every_step(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &backend, &[]).await;
    let (status, uploaded) = server.upload("night.png", picture([8, 8, 10])).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (id, mut socket) = dark_run(&server, &uploaded[0]["id"], "ask").await;
    let mut seen = socket.until("feedback.needed").await;
    server.wait_status(&id, &["waiting"]).await;
    let (status, answered) = server
        .post(
            &format!("/api/runs/{id}/feedback"),
            &json!({ "action": "accept" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answered}");
    drop(socket);
    server.kill().await;
    let mut kills = 1;
    'restarts: loop {
        server = Server::start(dir.path(), &backend, &[]).await;
        let mut socket = server.socket().await;
        let last = seen.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
        socket.subscribe(&id, last).await;
        loop {
            let Ok(event) = tokio::time::timeout(Duration::from_secs(120), socket.next()).await
            else {
                let (_, run) = server.get(&format!("/api/runs/{id}")).await;
                let tail: Vec<&serde_json::Value> = seen.iter().rev().take(6).collect();
                panic!(
                    "stuck after kill {kills}: {} {}; last seen {tail:?}",
                    run["status"], run["error"]
                );
            };
            let kind = event["type"].as_str().unwrap_or("").to_owned();
            seen.push(event);
            match kind.as_str() {
                "run.completed" => break 'restarts,
                "run.failed" => panic!("the run failed after kill {kills}: {seen:#?}"),
                "feedback.needed" => {
                    server.wait_status(&id, &["waiting"]).await;
                    let (status, body) = server
                        .post(
                            &format!("/api/runs/{id}/feedback"),
                            &json!({ "action": "skip" }),
                        )
                        .await;
                    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
                }
                "checkpoint" => {
                    drop(socket);
                    server.kill().await;
                    kills += 1;
                    continue 'restarts;
                }
                _ => {}
            }
        }
    }
    assert!(kills >= 3, "killed {kills} times");
    // A kill between a checkpoint and the storing of its events loses events no client was
    // ever sent, so seqs may skip; what was stored reaches every client once, in order.
    let seqs: Vec<u64> = seen.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let mut replay = server.socket().await;
    replay.subscribe(&id, 0).await;
    let mut replayed = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), replay.next()).await;
        let Ok(event) = next else {
            panic!("the replay stopped after {replayed:?}; seen live {seqs:?}");
        };
        replayed.push(event["seq"].as_u64().unwrap_or(0));
        if event["type"] == "run.completed" {
            break;
        }
    }
    assert_eq!(
        replayed, seqs,
        "a replay from the start gives what was seen live"
    );
    // Between two checkpoints (one step), each task finishes at most once.
    let mut step: BTreeSet<(String, Option<u64>)> = BTreeSet::new();
    for event in &seen {
        match event["type"].as_str() {
            Some("checkpoint") => step.clear(),
            Some("node.finished") => {
                let task = (
                    event["data"]["node"].as_str().unwrap().to_owned(),
                    event["data"]["scene"].as_u64(),
                );
                assert!(step.insert(task.clone()), "{task:?} ran twice in one step");
            }
            _ => {}
        }
    }
    let run = server.wait_status(&id, &["completed"]).await;
    assert!(run["outputs"]["videos"][0]["asset"]["url"].is_string());
}

/// The `montage_websocket_clients` gauge.
async fn websocket_clients(api: &Api) -> u64 {
    let text = api.text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix("montage_websocket_clients "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gauge in {text}"))
}

/// Waits until the gauge reads `wanted`.
async fn wait_clients(api: &Api, wanted: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = websocket_clients(api).await;
        if now == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now} WebSocket clients counted, {wanted} expected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The close frame that ends the stream, skipping anything sent before it.
async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.0.next())
            .await
            .expect("the server closes in time");
        match frame {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("the connection broke without a close frame: {error}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

/// Sessions end with their clients: a client that follows a chat whose run waits for an
/// answer and then closes leaves nothing behind; a client's close is answered with a close
/// frame; a frame over the limit gets 1009; a stopping server says 1001.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_sessions_close_properly_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let (status, uploaded) = server.upload("night.png", picture([8, 8, 10])).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(websocket_clients(&server).await, 0);

    for cycle in 0..2 {
        let (status, chat) = server.post("/api/chats", &json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{chat}");
        let chat = chat["id"].as_str().unwrap().to_owned();
        let mut socket = server.socket().await;
        socket
            .send(json!({ "v": 1, "type": "subscribe", "chat_id": chat }))
            .await;
        assert_eq!(socket.next().await["type"], "subscribed");
        socket
            .send(
                json!({ "v": 1, "type": "chat.message", "chat_id": chat, "data": {
                    "content": "an 8 second bright sunny beach video, horizontal",
                    "uploads": [uploaded[0]["id"]],
                }}),
            )
            .await;
        let run = loop {
            let message = socket.next().await;
            if message["type"] == "chat.run" {
                break message["data"]["run_id"].as_str().unwrap().to_owned();
            }
        };
        server.wait_status(&run, &["waiting"]).await;
        assert_eq!(websocket_clients(&server).await, 1, "cycle {cycle}");
        socket
            .0
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        assert_eq!(
            close_code(&mut socket).await,
            Some(CloseCode::Normal),
            "the close is answered"
        );
        wait_clients(&server, 0).await;
    }

    let mut socket = server.socket().await;
    socket
        .0
        .send(Message::text("x".repeat(100 << 10)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
    wait_clients(&server, 0).await;

    let mut socket = server.socket().await;
    let pid = server.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Away));
}

/// A client that sends less than its Content-Length and stops is told 400, and nothing is
/// kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_upload_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let addr = server.base.strip_prefix("http://").unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let part = picture([200, 100, 50]);
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--cut\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
          content-type: image/png\r\n\r\n",
    );
    body.extend_from_slice(&part[..part.len() / 2]);
    let head = format!(
        "POST /api/uploads HTTP/1.1\r\nhost: {addr}\r\n\
         content-type: multipart/form-data; boundary=cut\r\ncontent-length: {}\r\n\r\n",
        body.len() + part.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    let (status, runs) = server.get("/api/runs").await;
    assert_eq!((status, runs), (StatusCode::OK, json!([])));
    let incoming = dir.path().join("data").join("incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?} left in {}", incoming.display());
}

/// An image that declares enormous dimensions is refused from its header, before anything
/// is decoded; one within the limits is taken.
#[tokio::test(flavor = "multi_thread")]
async fn image_dimension_bombs_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let bomb = grey_png(20_000, 20_000);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let (status, body) = server.upload("bomb.png", bomb).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("20000×20000") && message.contains("8192"),
        "{message}"
    );
    let (status, body) = server.upload("wide.png", grey_png(4000, 100)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A grey PNG of `width`×`height`, written row by row (a bomb compresses to little).
fn grey_png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().unwrap();
        let mut rows = writer.stream_writer().unwrap();
        let row = vec![128_u8; width as usize];
        for _ in 0..height {
            std::io::Write::write_all(&mut rows, &row).unwrap();
        }
        rows.finish().unwrap();
    }
    bytes
}

/// Limits per person: beyond them, 429 with `Retry-After` (and nothing is stored); a full
/// queue is 503.
#[tokio::test(flavor = "multi_thread")]
async fn limits_are_answered_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &Backend::Sqlite,
        &[
            ("MONTAGE_SERVER__LIMITS__RUNS_PER_HOUR", "2"),
            ("MONTAGE_SERVER__LIMITS__CHAT_MESSAGES_PER_MINUTE", "1"),
            ("MONTAGE_SERVER__LIMITS__UPLOAD_MB_PER_DAY", "1"),
            ("MONTAGE_SERVER__RUNS_AT_ONCE", "1"),
        ],
    )
    .await;
    let run = json!({ "prompt": "a calm sea", "duration": 4, "formats": ["1:1"] });
    server.create(run.clone()).await;
    server.create(run.clone()).await;
    let response = server
        .http
        .post(server.url("/api/runs"))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");
    let (_, runs) = server.get("/api/runs").await;
    assert_eq!(
        runs.as_array().unwrap().len(),
        2,
        "the refused run is not stored"
    );

    let (_, chat) = server.post("/api/chats", &json!({})).await;
    let messages = format!("/api/chats/{}/messages", chat["id"].as_str().unwrap());
    let (status, _) = server
        .post(&messages, &json!({ "content": "how far along is it?" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .post(&messages, &json!({ "content": "and now?" }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );

    let big = vec![0_u8; 700 << 10];
    let (status, body) = server.upload("a.wav", wav_of(&big)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = server.upload("b.png", noise_png(450, 450)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.upload("c.png", noise_png(450, 450)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// A WAV header over `samples` (not music: the check refuses it after counting its bytes).
fn wav_of(samples: &[u8]) -> Vec<u8> {
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVE");
    bytes.extend_from_slice(samples);
    bytes
}

/// A PNG of noise, so it does not compress: about 3 bytes a pixel.
fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// Tokens travel in headers: `?token=` is refused outside the WebSocket, pictures and
/// videos are fetched with the session cookie, and no token reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_stay_out_of_addresses_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite;
    let token = add_user(dir.path(), &backend, "ana");
    let log = dir.path().join("server.log");
    let server = Server::start_logging(
        dir.path(),
        &backend,
        &[("MONTAGE_SERVER__AUTH", "tokens"), ("RUST_LOG", "debug")],
        &log,
    )
    .await;
    let ana = server.as_user(&token);
    let (status, uploaded) = ana.upload("red.png", picture([200, 30, 30])).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let url = uploaded[0]["asset"]["url"].as_str().unwrap().to_owned();

    let plain = reqwest::Client::new();
    let with_query = plain
        .get(server.url(&format!("{url}?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(with_query.status(), StatusCode::UNAUTHORIZED);
    let runs = plain
        .get(server.url(&format!("/api/runs?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), StatusCode::UNAUTHORIZED);

    let session = ana
        .http
        .post(server.url("/api/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::NO_CONTENT);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/api/assets"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let picture = plain
        .get(server.url(&url))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(picture.status(), StatusCode::OK);
    assert_eq!(picture.headers()["content-type"], "image/png");
    let elsewhere = plain
        .get(server.url("/api/runs"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        StatusCode::UNAUTHORIZED,
        "the cookie counts only for downloads"
    );

    let mut socket = ana.socket().await;
    socket
        .send(json!({ "v": 1, "type": "subscribe", "run_id": "no-such-run" }))
        .await;
    assert_eq!(socket.next().await["data"]["code"], "not_found");
    drop(socket);
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("/api/ws"), "the log has the requests");
    assert!(!logged.contains(&token), "a token reached the log");
}

/// A local server answers only for its own address, and only pages it served may open
/// its WebSocket or post to it.
#[tokio::test(flavor = "multi_thread")]
async fn other_sites_cannot_use_a_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let rebound = server
        .http
        .get(server.url("/api/runs"))
        .header("host", "rebind.attacker.test")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = rebound.json().await.unwrap();
    assert_eq!(body["code"], "forbidden");
    let posted = server
        .http
        .post(server.url("/api/chats"))
        .header("origin", "https://attacker.test")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::FORBIDDEN);
    let (_, chats) = server.get("/api/chats").await;
    assert_eq!(chats, json!([]), "nothing was made");

    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://attacker.test".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("a cross-site WebSocket was not refused: {other:?}"),
    }
    let own = format!("http://{}", server.base.strip_prefix("http://").unwrap());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws.as_str(),
        )
        .unwrap();
    request.headers_mut().insert("origin", own.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

/// Numbers and words outside what Montage takes are refused in their own terms; ranges
/// follow RFC 9110.
#[tokio::test(flavor = "multi_thread")]
async fn answers_and_ranges_are_checked_to_the_letter() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &Backend::Sqlite, &[]).await;
    let (status, uploaded) = server.upload("night.png", picture([8, 8, 10])).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (id, mut socket) = dark_run(&server, &uploaded[0]["id"], "ask").await;
    socket.until("feedback.needed").await;
    server.wait_status(&id, &["waiting"]).await;
    let feedback = format!("/api/runs/{id}/feedback");
    let refusals = [
        json!({ "action": "regenerate", "scenes": [18446744073709551615_u64] }),
        json!({ "action": "regenerate", "scenes": [1], "instruction": "x".repeat(4001) }),
        json!({ "action": "skip", "extra": true }),
    ];
    for answer in &refusals {
        let (status, body) = server.post(&feedback, answer).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            !body["message"].as_str().unwrap().contains("scene 0"),
            "{body}"
        );
    }
    let (status, body) = server.post(&feedback, &refusals[0]).await;
    assert!(
        body["message"].as_str().unwrap().contains("from 0 to 9999"),
        "{status} {body}"
    );
    assert_eq!(
        server.wait_status(&id, &["waiting"]).await["status"],
        "waiting"
    );
    let (status, _) = server.post(&feedback, &json!({ "action": "skip" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = server.wait_status(&id, &["completed"]).await;
    let video = run["outputs"]["videos"][0]["asset"].clone();
    let url = server.url(video["url"].as_str().unwrap());
    let size = video["size"].as_u64().unwrap();

    let whole = server.http.get(&url).send().await.unwrap();
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", video["id"].as_str().unwrap()));
    let outside = server
        .http
        .get(&url)
        .header("range", format!("bytes={}-", size + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(outside.headers()["content-type"], "application/json");
    assert_eq!(
        outside.headers()["content-range"],
        format!("bytes */{size}")
    );
    let body: serde_json::Value = outside.json().await.unwrap();
    assert_eq!(body["code"], "range_not_satisfiable");
    let current = server
        .http
        .get(&url)
        .header("range", "bytes=0-99")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), StatusCode::PARTIAL_CONTENT);
    let stale = server
        .http
        .get(&url)
        .header("range", "bytes=0-99")
        .header("if-range", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::OK,
        "a stale validator gets the whole"
    );
    assert_eq!(stale.bytes().await.unwrap().len() as u64, size);
    let unchanged = server
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
}

/// Two people asking for the same video each get their own pictures' cost story: the
/// second is not told that someone else asked first; the figures of the whole server are
/// for admins.
#[tokio::test(flavor = "multi_thread")]
async fn one_persons_requests_are_not_revealed_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite;
    let ana = add_user(dir.path(), &backend, "ana");
    let ben = add_user(dir.path(), &backend, "ben");
    let admin = add_admin(dir.path(), &backend, "ops");
    let server = Server::start(dir.path(), &backend, &[("MONTAGE_SERVER__AUTH", "tokens")]).await;
    let request = json!({
        "prompt": "a 6 second calm lake at dawn",
        "formats": ["1:1"],
        "feedback": "accept",
        "seed": 7,
    });
    let cached = |run: &serde_json::Value| run["cost"]["cached"].as_u64().unwrap();
    let (ana, ben) = (server.as_user(&ana), server.as_user(&ben));
    let first = ana.create(request.clone()).await;
    let first = ana.wait_status(&first, &["completed"]).await;
    assert_eq!(cached(&first), 0);
    let other = ben.create(request.clone()).await;
    let other = ben.wait_status(&other, &["completed"]).await;
    assert_eq!(cached(&other), 0, "{}", other["cost"]);
    let again = ana.create(request).await;
    let again = ana.wait_status(&again, &["completed"]).await;
    assert!(
        cached(&again) > 0,
        "the same person's repeat still saves: {}",
        again["cost"]
    );

    let (status, body) = ana.get("/metrics").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let figures = server
        .as_user(&admin)
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(figures.status(), StatusCode::OK);
    assert!(
        figures
            .text()
            .await
            .unwrap()
            .contains("montage_runs{status=\"completed\"} 3")
    );
}

/// Files under the data folder, with their sizes.
fn stored_objects(data: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![data.join("objects")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push((path, entry.metadata().unwrap().len()));
            }
        }
    }
    found
}

/// Deleting a version removes what only it used and nothing another version needs; a
/// video still being made cannot be deleted; crash leftovers are removed at start-up;
/// `montage delete` does the same from the command line.
async fn deleting_a_run_frees_what_only_it_used(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for leftover in ["incoming/.tmpA1b2C3", "renders/.tmpD4e5F6/frame.png"] {
        let path = data.join(leftover);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"half-written").unwrap();
    }
    let settings = [("MONTAGE_STORAGE__OBJECT_GRACE_SECS", "0")];
    let server = Server::start(dir.path(), &backend, &settings).await;
    assert!(!data.join("incoming/.tmpA1b2C3").exists());
    assert!(!data.join("renders/.tmpD4e5F6").exists());

    let first = server
        .create(json!({
            "prompt": "a 6 second calm lake at dawn",
            "formats": ["16:9"],
            "feedback": "accept",
        }))
        .await;
    let first_run = server.wait_status(&first, &["completed"]).await;
    let (status, second) = server
        .post(
            &format!("/api/runs/{first}/revise"),
            &json!({ "formats": ["1:1"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    let second_run = server.wait_status(&second, &["completed"]).await;
    let before: u64 = stored_objects(&data).iter().map(|(_, n)| n).sum();

    let (status, deleted) = server
        .http
        .delete(server.url(&format!("/api/runs/{first}")))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let deleted: serde_json::Value = deleted.json().await.unwrap();
    assert!(deleted["objects"].as_u64().unwrap() >= 1, "{deleted}");
    let after: u64 = stored_objects(&data).iter().map(|(_, n)| n).sum();
    assert_eq!(before - after, deleted["bytes"].as_u64().unwrap());
    assert_eq!(
        server.get(&format!("/api/runs/{first}")).await.0,
        StatusCode::NOT_FOUND
    );
    let old_video = first_run["outputs"]["videos"][0]["asset"]["url"]
        .as_str()
        .unwrap();
    let gone = server.http.get(server.url(old_video)).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Everything the other version shows is still there, and it can still be revised.
    let (_, second_view) = server.get(&format!("/api/runs/{second}")).await;
    assert_eq!(second_view["versions"].as_array().unwrap().len(), 1);
    let mut urls = vec![second_run["outputs"]["videos"][0]["asset"]["url"].clone()];
    for scene in second_run["plan"]["scenes"].as_array().unwrap() {
        urls.push(scene["thumbnail"]["url"].clone());
    }
    for url in urls {
        server.download(url.as_str().unwrap()).await;
    }
    let (status, third) = server
        .post(
            &format!("/api/runs/{second}/revise"),
            &json!({ "pace": "slow" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    let third = third["id"].as_str().unwrap().to_owned();
    server.wait_status(&third, &["completed"]).await;

    let (status, uploaded) = server.upload("night.png", picture([8, 8, 10])).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (waiting, _socket) = dark_run(&server, &uploaded[0]["id"], "ask").await;
    server.wait_status(&waiting, &["waiting"]).await;
    let refused = server
        .http
        .delete(server.url(&format!("/api/runs/{waiting}")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    server.kill().await;

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_montage"));
    command.args(["delete", &second]);
    on_data(&mut command, dir.path(), &backend);
    command.env("MONTAGE_STORAGE__OBJECT_GRACE_SECS", "0");
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(
        said.starts_with(&format!("deleted run {second}: ")),
        "{said}"
    );
    let server = Server::start(dir.path(), &backend, &settings).await;
    assert_eq!(
        server.get(&format!("/api/runs/{second}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, left) = server.get(&format!("/api/runs/{third}")).await;
    assert_eq!(status, StatusCode::OK);
    server
        .download(
            left["outputs"]["videos"][0]["asset"]["url"]
                .as_str()
                .unwrap(),
        )
        .await;
}
