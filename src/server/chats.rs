//! `/api/chats`: conversations with the agent, and the live stream of each one's replies.

use super::AppState;
use super::auth::Caller;
use super::bodies;
use super::chat_hub::ChatEvent;
use super::error::{ApiError, Body, ErrorBody};
use crate::agent::{AgentError, Choices};
use crate::store::{Chat, ChatMessage, User};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What `POST /api/chats` takes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CreateChat {
    /// A title (default "New video").
    pub title: Option<String>,
}

/// What `POST /api/chats/{id}/messages` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// What the person says.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub content: String,
    /// Ids of their uploads attached to the message (music, pictures).
    #[serde(default)]
    #[schema(max_items = 200)]
    pub uploads: Vec<String>,
    /// Settings chosen outright for a video this message starts; each wins over what is
    /// read from the words.
    #[serde(default, deserialize_with = "super::schema::object_or_null")]
    pub choices: Option<ChoicesBody>,
}

/// Settings chosen for a new video (the web UI's settings panel).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ChoicesBody {
    /// Any of "16:9", "9:16", "1:1".
    #[schema(schema_with = super::schema::formats)]
    pub formats: Option<Vec<String>>,
    /// Length in seconds.
    #[schema(minimum = 3, maximum = 600)]
    pub duration: Option<f64>,
    /// music_video, promo, trailer, slideshow, explainer, travel or social.
    #[schema(schema_with = super::schema::category)]
    pub category: Option<montage_models::Category>,
    /// upbeat, energetic, calm, dreamy, dark, melancholic, epic, playful, romantic or
    /// mysterious.
    #[schema(schema_with = super::schema::mood)]
    pub mood: Option<montage_models::Mood>,
    /// slow, medium or fast.
    #[schema(schema_with = super::schema::pace)]
    pub pace: Option<montage_models::Pace>,
    /// Style words (at most 8).
    #[schema(schema_with = super::schema::style)]
    pub style: Option<Vec<String>>,
}

impl ChoicesBody {
    /// The choices, checked.
    pub fn checked(self) -> Result<Choices, ApiError> {
        crate::pipeline::request::check_duration(self.duration)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(Choices {
            formats: bodies::formats(self.formats.as_ref())?,
            duration: self.duration,
            overrides: bodies::overrides(self.category, self.mood, self.pace, self.style)?,
        })
    }
}

/// A chat with its messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatView {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The run it follows (the latest version of its video).
    pub run: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Its messages, in order: `seq`, `role`, `content`, `actions` (the agent's tool calls
    /// with their results), `uploads`, `created_at_ms`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<ChatMessage>,
}

/// What the agent did with a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeView {
    /// The person's message, as stored.
    #[schema(value_type = Object)]
    pub said: ChatMessage,
    /// The agent's answer, with its actions.
    #[schema(value_type = Object)]
    pub reply: ChatMessage,
    /// Runs it started; the chat follows the last.
    pub runs: Vec<String>,
}

fn view(chat: Chat, messages: Vec<ChatMessage>) -> ChatView {
    ChatView {
        id: chat.id,
        title: chat.title,
        run: chat.run,
        created_at_ms: chat.created_at_ms,
        messages,
    }
}

/// `owner`'s chat `id`, or not found.
pub async fn chat_of(shared: &AppState, owner: &str, id: &str) -> Result<Chat, ApiError> {
    shared
        .workers
        .app()
        .database
        .chat(id)
        .await?
        .filter(|chat| chat.owner == owner)
        .ok_or_else(|| ApiError::not_found(format!("no chat {id}")))
}

/// Runs the agent on one message and tells the chat's watchers as it goes.
pub async fn converse(
    shared: &AppState,
    user: &User,
    chat: &Chat,
    content: &str,
    uploads: &[String],
    choices: &Choices,
) -> Result<ExchangeView, ApiError> {
    let app = shared.workers.app();
    crate::quota::check_message(&app.database, &app.config.server.limits, &user.id).await?;
    let hub = &shared.chats;
    let delta = |piece: &str| hub.send(&chat.id, ChatEvent::Delta(piece.to_owned()));
    let exchange = shared
        .agent
        .respond(user, chat, content, uploads, choices, &delta)
        .await
        .map_err(|error| match error {
            AgentError::Invalid(message) => ApiError::invalid(message),
            AgentError::Worker(worker) => worker.into(),
            other => ApiError::internal(&other),
        })?;
    hub.send(&chat.id, ChatEvent::Message(exchange.said.clone()));
    for run in &exchange.runs {
        hub.send(&chat.id, ChatEvent::Run(run.clone()));
    }
    hub.send(&chat.id, ChatEvent::Message(exchange.reply.clone()));
    Ok(ExchangeView {
        said: exchange.said,
        reply: exchange.reply,
        runs: exchange.runs,
    })
}

/// Start a chat.
#[utoipa::path(post, path = "/api/chats", tag = "chats", request_body = CreateChat,
    responses((status = 201, description = "The chat", body = ChatView)))]
pub async fn create_chat(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Body(body): Body<CreateChat>,
) -> Result<(StatusCode, Json<ChatView>), ApiError> {
    let title = body
        .title
        .map(|t| t.trim().chars().take(200).collect::<String>())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "New video".into());
    let chat = shared
        .workers
        .app()
        .database
        .create_chat(&user.id, &title)
        .await?;
    Ok((StatusCode::CREATED, Json(view(chat, Vec::new()))))
}

/// A chat in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatSummary {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The run it follows.
    pub run: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// The caller's chats, newest first (at most 100).
#[utoipa::path(get, path = "/api/chats", tag = "chats",
    responses((status = 200, description = "Chats, newest first", body = Vec<ChatSummary>)))]
pub async fn list_chats(
    State(shared): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Vec<ChatSummary>>, ApiError> {
    let chats = shared
        .workers
        .app()
        .database
        .list_chats(&user.id, 100)
        .await?;
    Ok(Json(
        chats
            .into_iter()
            .map(|chat| ChatSummary {
                id: chat.id,
                title: chat.title,
                run: chat.run,
                created_at_ms: chat.created_at_ms,
            })
            .collect(),
    ))
}

/// A chat and its messages.
#[utoipa::path(get, path = "/api/chats/{id}", tag = "chats",
    params(("id" = String, Path, description = "The chat's id")),
    responses(
        (status = 200, description = "The chat", body = ChatView),
        (status = 404, description = "No such chat", body = ErrorBody),
    ))]
pub async fn get_chat(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<ChatView>, ApiError> {
    let chat = chat_of(&shared, &user.id, &id).await?;
    let messages = shared.workers.app().database.chat_messages(&id).await?;
    Ok(Json(view(chat, messages)))
}

/// Say something in a chat; the agent acts and answers (streamed to the chat's WebSocket
/// watchers as `chat.delta`).
#[utoipa::path(post, path = "/api/chats/{id}/messages", tag = "chats", request_body = PostMessage,
    params(("id" = String, Path, description = "The chat's id")),
    responses(
        (status = 201, description = "What was said and what the agent did", body = ExchangeView),
        (status = 404, description = "No such chat, or no such upload", body = ErrorBody),
        (status = 422, description = "An empty or enormous message", body = ErrorBody),
    ))]
pub async fn post_message(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    Body(body): Body<PostMessage>,
) -> Result<(StatusCode, Json<ExchangeView>), ApiError> {
    let chat = chat_of(&shared, &user.id, &id).await?;
    let choices = body.choices.unwrap_or_default().checked()?;
    let exchange = converse(
        &shared,
        &user,
        &chat,
        &body.content,
        &body.uploads,
        &choices,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(exchange)))
}
