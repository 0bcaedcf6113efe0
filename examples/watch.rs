//! Watches a run of `montage serve` over the WebSocket and prints its events, one per line,
//! until it completes, fails, is cancelled or asks a question.
//!
//! ```sh
//! cargo run --example watch -- ws://127.0.0.1:8080/api/ws RUN_ID [LAST_SEQ]
//! ```

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(run)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: watch WS_URL RUN_ID [LAST_SEQ]");
    };
    let seq: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await?;
    let subscribe = json!({ "v": 1, "type": "subscribe", "run_id": run, "seq": seq });
    socket.send(Message::text(subscribe.to_string())).await?;
    let mut out = std::io::stdout().lock();
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let envelope: Value = serde_json::from_str(&text)?;
        let kind = envelope["type"].as_str().unwrap_or("?");
        let seq = envelope["seq"]
            .as_u64()
            .map_or("-".into(), |s| s.to_string());
        std::io::Write::write_all(
            &mut out,
            format!("{seq:>4} {kind:<16} {}\n", envelope["data"]).as_bytes(),
        )?;
        if matches!(
            kind,
            "run.completed" | "run.failed" | "run.cancelled" | "feedback.needed" | "error"
        ) {
            break;
        }
    }
    Ok(())
}
