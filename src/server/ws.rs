//! `/api/ws`: the WebSocket. Clients subscribe to runs and get their events as they
//! happen (after replaying what they missed), answer questions and cancel runs. A frame
//! the server cannot use gets an `error` reply; the connection stays open.

use super::AppState;
use super::auth::Caller;
use super::chats::PostMessage;
use super::error::ApiError;
use super::protocol::{self, ClientMessage, Envelope};
use crate::store::{RunStatus, User};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Messages queued for one client; a client this far behind waits its runs' forwarders.
const OUTBOX: usize = 1024;
/// The largest frame a client may send.
const MAX_FRAME: usize = 64 << 10;
/// How long the closing frame may take to reach a client that stopped reading.
const CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Upgrades to the WebSocket protocol of docs/protocol.md.
pub async fn upgrade(
    State(shared): State<AppState>,
    Caller(user): Caller,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            session(shared, user, sink, stream)
        })
}

/// Why a session ends, and the close frame that says so (none when the connection is gone).
fn closing(reason: Option<Result<Message, axum::Error>>) -> Option<CloseFrame> {
    let frame = |code: u16, reason: &str| {
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    };
    match reason {
        // The client closed: the close handshake answers with its own code.
        Some(Ok(Message::Close(theirs))) => {
            frame(theirs.map_or(close_code::NORMAL, |f| f.code), "")
        }
        Some(Err(error)) if too_big(&error) => {
            frame(close_code::SIZE, "a message is limited to 64 KiB")
        }
        _ => None,
    }
}

/// Whether a read failed on a frame over [`MAX_FRAME`].
fn too_big(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// One client's session over any sink and stream of frames: reads its messages, sends what
/// its subscriptions produce, and closes with the right code — the client's own when it
/// closes, 1009 for a frame over the limit, 1001 when the server stops. Every task the
/// session starts ends with it.
pub async fn session<W, R>(shared: AppState, user: User, mut sink: W, mut stream: R)
where
    W: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _counted = shared.workers.metrics().websocket_connected();
    let (outbox, mut pending) = mpsc::channel::<Envelope>(OUTBOX);
    let (close, mut closed) = oneshot::channel::<Option<CloseFrame>>();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                frame = &mut closed => {
                    if let Ok(Some(frame)) = frame {
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    break;
                }
                envelope = pending.recv() => {
                    let Some(envelope) = envelope else { break };
                    let Ok(text) = serde_json::to_string(&envelope) else {
                        continue;
                    };
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    let mut follows = Follows::default();
    let ending = loop {
        let message = tokio::select! {
            () = shared.stopping.cancelled() => break Some(CloseFrame {
                code: close_code::AWAY,
                reason: "the server is stopping; reconnect in a moment".into(),
            }),
            message = stream.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let _ = outbox
                    .send(Envelope::error(None, "bad_frame", "send JSON text frames"))
                    .await;
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => break closing(other),
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
            break None;
        }
    };
    // Forwarders first: they hold the outbox, and a client that stopped reading must not
    // keep the session alive.
    drop(follows);
    let _ = close.send(ending);
    let mut writer = writer;
    if tokio::time::timeout(CLOSE_LIMIT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// The forwarders of one session, by subscription; all of them stop when it is dropped.
#[derive(Default)]
struct Follows(HashMap<String, AbortOnDrop>);

impl Follows {
    /// Starts `task` as the forwarder of `key`, stopping the one it replaces.
    fn start(&mut self, key: String, task: impl Future<Output = ()> + Send + 'static) {
        self.0.insert(key, AbortOnDrop(tokio::spawn(task)));
    }

    fn stop(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
    shared: &AppState,
    user: &User,
    message: ClientMessage,
    outbox: &mpsc::Sender<Envelope>,
    follows: &mut Follows,
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
            follows.stop(&key);
            let ack = Envelope::chat("subscribed", &chat_id, json!({ "run_id": chat.run }));
            if outbox.send(ack).await.is_err() {
                return None;
            }
            follows.start(
                key,
                follow_chat(shared.clone(), user.clone(), chat_id, seq, outbox.clone()),
            );
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
            follows.stop(&run_id);
            // The acknowledgement goes out before the forwarder starts sending.
            let ack = Envelope::reply(
                "subscribed",
                Some(&run_id),
                json!({ "status": run.status.as_str(), "after_seq": seq }),
            );
            if outbox.send(ack).await.is_err() {
                return None;
            }
            let follow = forward(
                shared.clone(),
                run_id.clone(),
                seq,
                run.status,
                outbox.clone(),
            );
            follows.start(run_id, follow);
            None
        }
        ClientMessage::Subscribe { .. } => Some(Envelope::error(
            None,
            "bad_message",
            "subscribe names either a run_id or a chat_id",
        )),
        ClientMessage::ChatMessage { chat_id, data, .. } => {
            // The same body, and the same checks, as `POST /api/chats/{id}/messages`.
            let message = serde_json::from_value::<PostMessage>(data)
                .map_err(|e| ApiError::invalid(format!("the message does not fit: {e}")))
                .and_then(|m| {
                    Ok((
                        m.choices.unwrap_or_default().checked()?,
                        m.content,
                        m.uploads,
                    ))
                });
            let (choices, content, uploads) = match message {
                Ok(message) => message,
                Err(error) => return Some(chat_refused(&chat_id, &error)),
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
            follows.stop(&run_id);
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
    shared: AppState,
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

/// Sends a chat's messages stored after `after_seq`, then its live ones (`chat.delta` pieces,
/// then each whole `chat.message`), and follows the runs its agent starts, sending their
/// events too. The runs' forwarders stop with it.
async fn follow_chat(
    shared: AppState,
    user: User,
    chat_id: String,
    after_seq: u64,
    outbox: mpsc::Sender<Envelope>,
) {
    use super::chat_hub::ChatEvent;
    // Subscribed before reading the store, so nothing falls between the two.
    let mut events = shared.chats.subscribe(&chat_id);
    let mut last = after_seq;
    match shared.workers.app().database.chat_messages(&chat_id).await {
        Ok(stored) => {
            for message in stored.into_iter().filter(|m| m.seq > after_seq) {
                last = message.seq;
                let replay = Envelope::chat("chat.message", &chat_id, json!(message));
                if outbox.send(replay).await.is_err() {
                    return;
                }
            }
        }
        Err(error) => {
            let _ = outbox
                .send(chat_refused(&chat_id, &ApiError::from(error)))
                .await;
            return;
        }
    }
    let mut runs = tokio::task::JoinSet::new();
    loop {
        let envelope = match events.recv().await {
            Ok(ChatEvent::Delta(text)) => {
                Envelope::chat("chat.delta", &chat_id, json!({ "text": text }))
            }
            Ok(ChatEvent::Message(message)) if message.seq <= last => continue,
            Ok(ChatEvent::Message(message)) => {
                last = message.seq;
                Envelope::chat("chat.message", &chat_id, json!(message))
            }
            Ok(ChatEvent::Run(run_id)) => {
                if let Ok(run) = shared.workers.run(&user.id, &run_id).await {
                    runs.spawn(forward(
                        shared.clone(),
                        run_id.clone(),
                        0,
                        run.status,
                        outbox.clone(),
                    ));
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

    /// A server's shared services on a fresh data folder.
    async fn shared(data: &std::path::Path) -> AppState {
        let mut config = crate::config::Config::default();
        config.storage.data_dir = data.to_owned();
        let app = crate::app::App::open(config).await.unwrap();
        let local = Some(app.database.local_user().await.unwrap());
        let text = std::sync::Arc::clone(&app.text);
        let workers =
            crate::worker::Workers::start(app, std::sync::Arc::new(crate::metrics::Metrics::new()))
                .await
                .unwrap();
        AppState {
            agent: crate::agent::Agent::new(workers.clone(), text),
            workers,
            local,
            chats: std::sync::Arc::default(),
            stopping: tokio_util::sync::CancellationToken::new(),
            replicate_webhook: None,
            hosts: std::sync::Arc::new(super::super::guard::Hosts::new(
                "127.0.0.1:8080".parse().unwrap(),
                &[],
                true,
            )),
        }
    }

    type Client = (
        UnboundedSender<Result<Message, axum::Error>>,
        UnboundedReceiver<Message>,
    );

    /// A session over channels; the client's ends.
    fn connect(shared: &AppState) -> (Client, JoinHandle<()>) {
        let (to_server, from_client) = unbounded();
        let (to_client, from_server) = unbounded();
        let user = shared.local.clone().unwrap();
        let session = tokio::spawn(session(shared.clone(), user, to_client, from_client));
        ((to_server, from_server), session)
    }

    async fn next(from_server: &mut UnboundedReceiver<Message>) -> Option<Message> {
        tokio::time::timeout(std::time::Duration::from_secs(10), from_server.next())
            .await
            .expect("the session answers")
    }

    fn close_code_of(message: Option<Message>) -> Option<u16> {
        match message {
            Some(Message::Close(Some(frame))) => Some(frame.code),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_answers_in_envelopes_and_closes_with_the_right_code() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path()).await;

        let ((to_server, mut from_server), session) = connect(&shared);
        to_server
            .unbounded_send(Ok(Message::Text("{not json".into())))
            .unwrap();
        let Some(Message::Text(reply)) = next(&mut from_server).await else {
            panic!("a text reply")
        };
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(
            (reply["v"].as_u64(), reply["type"].as_str()),
            (Some(1), Some("error"))
        );
        assert_eq!(reply["data"]["code"], "bad_message");
        to_server
            .unbounded_send(Ok(Message::Close(Some(CloseFrame {
                code: close_code::NORMAL,
                reason: "bye".into(),
            }))))
            .unwrap();
        assert_eq!(
            close_code_of(next(&mut from_server).await),
            Some(close_code::NORMAL)
        );
        session.await.unwrap();
        assert!(
            next(&mut from_server).await.is_none(),
            "the session let go of the sink"
        );

        let ((to_server, mut from_server), session) = connect(&shared);
        let too_long = tungstenite::error::CapacityError::MessageTooLong {
            size: MAX_FRAME + 1,
            max_size: MAX_FRAME,
        };
        to_server
            .unbounded_send(Err(axum::Error::new(tungstenite::Error::Capacity(
                too_long,
            ))))
            .unwrap();
        assert_eq!(
            close_code_of(next(&mut from_server).await),
            Some(close_code::SIZE)
        );
        session.await.unwrap();

        let ((_to_server, mut from_server), session) = connect(&shared);
        shared.stopping.cancel();
        assert_eq!(
            close_code_of(next(&mut from_server).await),
            Some(close_code::AWAY)
        );
        session.await.unwrap();
    }
}
