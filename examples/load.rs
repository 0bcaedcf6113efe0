//! The server under load (run by `scripts/bench-load`, release build): 50 runs submitted at
//! once through the API on the local providers, with GET /api/runs/{id} timed throughout and
//! the number of runs executing at once watched; then 500 WebSocket clients watching one
//! run. Prints the figures; fails if a run is lost, the concurrency limit is broken, or a
//! client misses an event.
//!
//! ```sh
//! cargo run --release --example load -- target/release/montage [RUNS] [CLIENTS]
//! ```

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const RUNS_AT_ONCE: usize = 2;

/// Submits an 8 s run with `seed` (distinct seeds: nothing comes from the caches); its id.
async fn submit(http: &reqwest::Client, base: &str, seed: u64) -> anyhow::Result<String> {
    let body = json!({ "prompt": "an 8 second upbeat neon city video", "duration": 8,
                       "formats": ["16:9"], "feedback": "accept", "seed": seed });
    let run: Value = http
        .post(format!("{base}/api/runs"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    Ok(run["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/montage".into());
    let runs: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let clients: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let data = tempfile::tempdir()?;
    let mut server = tokio::process::Command::new(&binary)
        .args(["serve", "--addr", "127.0.0.1:0", "--exit-with-stdin"])
        .env("MONTAGE_STORAGE__DATA_DIR", data.path())
        .env("MONTAGE_SERVER__RUNS_AT_ONCE", RUNS_AT_ONCE.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().unwrap_or(0);
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let line = lines.next_line().await?.unwrap_or_default();
    let addr = line
        .strip_prefix("montage listening on http://")
        .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))?
        .to_owned();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let mut out = std::io::stdout().lock();

    // 50 runs at once.
    let started = Instant::now();
    let posts = (0..runs).map(|i| submit(&http, &base, i as u64 + 1));
    let ids: Vec<String> = futures::future::try_join_all(posts).await?;
    let submitted = started.elapsed();
    let mut latencies = Vec::new();
    let mut most_running = 0;
    let mut round = 0usize;
    let finished = loop {
        let id = &ids[round % ids.len()];
        round += 1;
        let asked = Instant::now();
        let response = http.get(format!("{base}/api/runs/{id}")).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET run {id}: {}",
            response.status()
        );
        response.bytes().await?;
        latencies.push(asked.elapsed());
        if round.is_multiple_of(10) {
            let listed: Vec<Value> = http
                .get(format!("{base}/api/runs?limit=200"))
                .send()
                .await?
                .json()
                .await?;
            let count = |status: &str| listed.iter().filter(|r| r["status"] == status).count();
            most_running = most_running.max(count("running"));
            if count("completed") + count("failed") == runs {
                anyhow::ensure!(count("failed") == 0, "{} runs failed", count("failed"));
                anyhow::ensure!(
                    listed.len() == runs,
                    "{} of {runs} runs listed",
                    listed.len()
                );
                break started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    anyhow::ensure!(
        most_running <= RUNS_AT_ONCE,
        "{most_running} runs executed at once, over the limit of {RUNS_AT_ONCE}"
    );
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    writeln!(
        out,
        "{runs} runs submitted at once in {submitted:.2?}, all completed in {finished:.1?} ({RUNS_AT_ONCE} at a time; at most {most_running} seen running)"
    )?;
    writeln!(
        out,
        "GET /api/runs/{{id}} during the load: {} requests, p50 {:.2?}, p95 {:.2?}, max {:.2?}",
        latencies.len(),
        at(0.50),
        at(0.95),
        at(1.0)
    )?;

    // 500 clients watching one run (a seed of its own: nothing comes from the caches).
    let id = submit(&http, &base, runs as u64 + 1).await?;
    let ws = format!("ws://{addr}/api/ws");
    let watching = Instant::now();
    let watchers = (0..clients).map(|_| {
        let (ws, id) = (ws.clone(), id.clone());
        tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(&ws).await?;
            let subscribe = json!({ "type": "subscribe", "run_id": id, "seq": 0 });
            socket.send(Message::text(subscribe.to_string())).await?;
            let mut seqs = Vec::new();
            while let Some(frame) = socket.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let envelope: Value = serde_json::from_str(&text)?;
                if let Some(seq) = envelope["seq"].as_u64() {
                    seqs.push(seq);
                }
                if envelope["type"] == "run.completed" {
                    break;
                }
            }
            anyhow::Ok(seqs)
        })
    });
    let mut counts = Vec::new();
    for watcher in futures::future::join_all(watchers).await {
        let seqs = watcher??;
        let in_order = seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1);
        anyhow::ensure!(in_order, "a client got events out of order or with gaps");
        counts.push(seqs.len());
    }
    let all = counts.first().copied().unwrap_or(0);
    anyhow::ensure!(
        counts.iter().all(|c| *c == all),
        "clients saw different numbers of events"
    );
    writeln!(
        out,
        "{clients} WebSocket clients watched one run: each got all {all} events in order, in {:.1?}",
        watching.elapsed()
    )?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    writeln!(out, "server peak memory (VmHWM): {peak}")?;
    Ok(())
}
