//! `/api/ws`: the WebSocket. Clients subscribe to runs and get their events as they
//! happen (after replaying what they missed), answer questions and cancel runs. A frame
//! the server cannot use gets an `error` reply; the connection stays open.

use super::Shared;
use super::auth::Caller;
use super::chats::ChoicesBody;
use super::error::ApiError;
use super::protocol::{self, ClientMessage, Envelope};
use crate::agent::Choices;
use crate::store::{RunStatus, User};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages queued for one client; a client this far behind waits its runs' forwarders.
const OUTBOX: usize = 1024;
/// The largest frame a client may send.
const MAX_FRAME: usize = 64 << 10;

/// Upgrades to the WebSocket protocol of docs/protocol.md.
pub async fn upgrade(
    State(shared): State<Shared>,
    Caller(user): Caller,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| session(shared, user, socket))
}

async fn session(shared: Shared, user: User, socket: WebSocket) {
    let _counted = shared.workers.metrics().websocket_connected();
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut pending) = mpsc::channel::<Envelope>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(envelope) = pending.recv().await {
            let Ok(text) = serde_json::to_string(&envelope) else {
                continue;
            };
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    let mut follows: HashMap<String, JoinHandle<()>> = HashMap::new();
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let _ = outbox
                    .send(Envelope::error(None, "bad_frame", "send JSON text frames"))
                    .await;
                continue;
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let reply = match serde_json::from_str::<ClientMessage>(&text) {
            Err(error) => Some(Envelope::error(
                None,
                "bad_message",
                &format!("not a message of protocol v{}: {error}", protocol::VERSION),
            )),
            Ok(message) if message.version() != protocol::VERSION => Some(Envelope::error(
                None,
                "unsupported_version",
                &format!("this server speaks protocol v{}", protocol::VERSION),
            )),
            Ok(message) => handle(&shared, &user, message, &outbox, &mut follows).await,
        };
        if let Some(reply) = reply
            && outbox.send(reply).await.is_err()
        {
            break;
        }
    }
    for (_, follow) in follows {
        follow.abort();
    }
    drop(outbox);
    let _ = writer.await;
}

fn chat_refused(chat_id: &str, error: &ApiError) -> Envelope {
    let body = error.body();
    Envelope::chat(
        "error",
        chat_id,
        json!({ "code": body.code, "message": body.message }),
    )
}

fn refused(run_id: &str, error: ApiError) -> Envelope {
    let body = error.body();
    Envelope::error(Some(run_id), body.code, &body.message)
}

async fn handle(
    shared: &Shared,
    user: &User,
    message: ClientMessage,
    outbox: &mpsc::Sender<Envelope>,
    follows: &mut HashMap<String, JoinHandle<()>>,
) -> Option<Envelope> {
    match message {
        ClientMessage::Subscribe {
            chat_id: Some(chat_id),
            run_id: None,
            seq,
            ..
        } => {
            let chat = match super::chats::chat_of(shared, &user.id, &chat_id).await {
                Ok(chat) => chat,
                Err(error) => return Some(chat_refused(&chat_id, &error)),
            };
            let key = format!("chat:{chat_id}");
            if let Some(previous) = follows.remove(&key) {
                previous.abort();
            }
            let ack = Envelope::chat("subscribed", &chat_id, json!({ "run_id": chat.run }));
            if outbox.send(ack).await.is_err() {
                return None;
            }
            // Live messages from here on; before them, those stored after the client's last.
            let follow = tokio::spawn(follow_chat(
                shared.clone(),
                user.clone(),
                chat_id.clone(),
                outbox.clone(),
            ));
            follows.insert(key, follow);
            let stored = match shared.workers.app().database.chat_messages(&chat_id).await {
                Ok(stored) => stored,
                Err(error) => return Some(chat_refused(&chat_id, &ApiError::from(error))),
            };
            for message in stored.into_iter().filter(|m| m.seq > seq) {
                let replay = Envelope::chat("chat.message", &chat_id, json!(message));
                if outbox.send(replay).await.is_err() {
                    return None;
                }
            }
            None
        }
        ClientMessage::Subscribe {
            run_id: Some(run_id),
            chat_id: None,
            seq,
            ..
        } => {
            let run = match shared.workers.run(&user.id, &run_id).await {
                Ok(run) => run,
                Err(error) => return Some(refused(&run_id, error.into())),
            };
            if let Some(previous) = follows.remove(&run_id) {
                previous.abort();
            }
            // The acknowledgement goes out before the forwarder starts sending.
            let ack = Envelope::reply(
                "subscribed",
                Some(&run_id),
                json!({ "status": run.status.as_str(), "after_seq": seq }),
            );
            if outbox.send(ack).await.is_err() {
                return None;
            }
            let follow = tokio::spawn(forward(
                shared.clone(),
                run_id.clone(),
                seq,
                run.status,
                outbox.clone(),
            ));
            follows.insert(run_id, follow);
            None
        }
        ClientMessage::Subscribe { .. } => Some(Envelope::error(
            None,
            "bad_message",
            "subscribe names either a run_id or a chat_id",
        )),
        ClientMessage::ChatMessage { chat_id, data, .. } => {
            let content = data["content"].as_str().unwrap_or_default().to_owned();
            let uploads: Vec<String> = data["uploads"]
                .as_array()
                .map(|u| {
                    u.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let choices = match data.get("choices").filter(|c| !c.is_null()) {
                None => Choices::default(),
                Some(choices) => match serde_json::from_value::<ChoicesBody>(choices.clone())
                    .map_err(|e| ApiError::invalid(format!("choices: {e}")))
                    .and_then(ChoicesBody::checked)
                {
                    Ok(choices) => choices,
                    Err(error) => return Some(chat_refused(&chat_id, &error)),
                },
            };
            let chat = match super::chats::chat_of(shared, &user.id, &chat_id).await {
                Ok(chat) => chat,
                Err(error) => return Some(chat_refused(&chat_id, &error)),
            };
            // The agent may take a while; the socket keeps reading meanwhile.
            let (shared, user, outbox) = (shared.clone(), user.clone(), outbox.clone());
            tokio::spawn(async move {
                if let Err(error) =
                    super::chats::converse(&shared, &user, &chat, &content, &uploads, &choices)
                        .await
                {
                    let _ = outbox.send(chat_refused(&chat.id, &error)).await;
                }
            });
            None
        }
        ClientMessage::Unsubscribe { run_id, .. } => {
            if let Some(follow) = follows.remove(&run_id) {
                follow.abort();
            }
            Some(Envelope::reply("unsubscribed", Some(&run_id), json!({})))
        }
        ClientMessage::Feedback { run_id, data, .. } => {
            Some(match shared.workers.answer(&user.id, &run_id, data).await {
                Ok(()) => Envelope::reply("feedback.accepted", Some(&run_id), json!({})),
                Err(error) => refused(&run_id, error.into()),
            })
        }
        ClientMessage::Cancel { run_id, .. } => {
            Some(match shared.workers.cancel(&user.id, &run_id).await {
                Ok(outcome) => Envelope::reply(
                    "cancel.accepted",
                    Some(&run_id),
                    json!({ "stopping": outcome == crate::worker::Cancelled::Requested }),
                ),
                Err(error) => refused(&run_id, error.into()),
            })
        }
    }
}

/// Sends a run's events after `after_seq`: the stored ones, then live ones, each once and
/// in order. A run that has ended needs only the stored ones.
async fn forward(
    shared: Shared,
    run_id: String,
    after_seq: u64,
    status: RunStatus,
    outbox: mpsc::Sender<Envelope>,
) {
    let database = &shared.workers.app().database;
    let ended = status.has_ended();
    // Subscribed before reading the store, so nothing falls between the two.
    let mut live = (!ended).then(|| shared.workers.listen(&run_id));
    let mut last = after_seq;
    match database.events_since(&run_id, last).await {
        Ok(events) => {
            for event in events {
                last = event.seq;
                let over = protocol::ends_run(&event);
                if outbox.send(protocol::event_envelope(&event)).await.is_err() || over {
                    return;
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, run = run_id, "cannot replay events");
            let _ = outbox
                .send(Envelope::error(
                    Some(&run_id),
                    "internal",
                    "the run's past events cannot be read now",
                ))
                .await;
            return;
        }
    }
    let Some(live) = live.as_mut() else {
        return;
    };
    loop {
        let fresh = match live.recv().await {
            Ok(event) if event.seq <= last => continue,
            Ok(event) if event.seq == last + 1 => vec![event],
            // Behind the live channel (or it skipped ahead): the store has everything.
            Ok(_) | Err(RecvError::Lagged(_)) => match database.events_since(&run_id, last).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, run = run_id, "cannot catch up on events");
                    return;
                }
            },
            Err(RecvError::Closed) => return,
        };
        for event in fresh {
            last = event.seq;
            let over = protocol::ends_run(&event);
            if outbox.send(protocol::event_envelope(&event)).await.is_err() || over {
                return;
            }
        }
    }
}

/// Sends a chat's live messages (`chat.delta` pieces, then each whole `chat.message`) and
/// follows the runs its agent starts, sending their events too.
async fn follow_chat(shared: Shared, user: User, chat_id: String, outbox: mpsc::Sender<Envelope>) {
    use super::chats::ChatEvent;
    let mut events = shared.chats.subscribe(&chat_id);
    let mut runs: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let envelope = match events.recv().await {
            Ok(ChatEvent::Delta(text)) => {
                Envelope::chat("chat.delta", &chat_id, json!({ "text": text }))
            }
            Ok(ChatEvent::Message(message)) => {
                Envelope::chat("chat.message", &chat_id, json!(message))
            }
            Ok(ChatEvent::Run(run_id)) => {
                if let Ok(run) = shared.workers.run(&user.id, &run_id).await {
                    runs.push(tokio::spawn(forward(
                        shared.clone(),
                        run_id.clone(),
                        0,
                        run.status,
                        outbox.clone(),
                    )));
                }
                Envelope::chat("chat.run", &chat_id, json!({ "run_id": run_id }))
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        };
        if outbox.send(envelope).await.is_err() {
            break;
        }
    }
    for run in runs {
        run.abort();
    }
}
