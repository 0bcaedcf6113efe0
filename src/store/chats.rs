//! Conversations and their messages.

use super::runs::{FAMILY_ROOT, now_ms};
use super::{Database, StoreError, damaged};
use serde::Serialize;
use serde_json::Value;

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chat {
    /// Its id.
    pub id: String,
    /// Whose it is.
    pub owner: String,
    /// Its title.
    pub title: String,
    /// The run it follows: the latest version of the video it is making.
    pub run: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Its place in the conversation, from 1.
    pub seq: u64,
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
    /// For the assistant: the tools it called, with their arguments and results.
    pub actions: Value,
    /// For the person: the uploads they attached.
    pub uploads: Vec<String>,
    /// When, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

type ChatTuple = (String, String, String, Option<String>, i64);

/// A chat from its row.
fn chat((id, owner, title, run, created_at_ms): ChatTuple) -> Chat {
    Chat {
        id,
        owner,
        title,
        run,
        created_at_ms,
    }
}

type MessageTuple = (i64, String, String, String, String, i64);

impl Database {
    /// Starts a conversation for `owner`.
    pub async fn create_chat(&self, owner: &str, title: &str) -> Result<Chat, StoreError> {
        let chat = Chat {
            id: uuid::Uuid::now_v7().to_string(),
            owner: owner.to_owned(),
            title: title.to_owned(),
            run: None,
            created_at_ms: now_ms(),
        };
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO chats (id, owner, title, created_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&chat.id)
        .bind(&chat.owner)
        .bind(&chat.title)
        .bind(chat.created_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(chat)
    }

    /// A conversation, if it exists.
    pub async fn chat(&self, id: &str) -> Result<Option<Chat>, StoreError> {
        let row: Option<ChatTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, owner, title, run, created_at_ms FROM chats WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(chat))
    }

    /// `owner`'s conversations, newest first, at most `limit`.
    pub async fn list_chats(&self, owner: &str, limit: u32) -> Result<Vec<Chat>, StoreError> {
        let rows: Vec<ChatTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, owner, title, run, created_at_ms FROM chats WHERE owner = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(chat).collect())
    }

    /// Makes every conversation that follows a version of `run`'s video follow `run` (its
    /// newest version); returns their ids.
    pub async fn follow_version(&self, run: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "UPDATE chats SET run = $1 WHERE run IN \
             (SELECT id FROM runs WHERE id = ({FAMILY_ROOT}) OR root = ({FAMILY_ROOT})) RETURNING id"
        );
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Makes the conversation follow `run`.
    pub async fn set_chat_run(&self, chat: &str, run: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE chats SET run = $1 WHERE id = $2")
            .bind(run)
            .bind(chat)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Appends a message; returns it with its seq.
    pub async fn add_chat_message(
        &self,
        chat: &str,
        role: &str,
        content: &str,
        actions: &Value,
        uploads: &[String],
    ) -> Result<ChatMessage, StoreError> {
        let now = now_ms();
        let uploads_json = serde_json::to_string(uploads).map_err(|e| damaged(e.to_string()))?;
        let (seq,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO chat_messages (chat, seq, role, content, actions, uploads, created_at_ms) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages WHERE chat = $1), $2, $3, $4, $5, $6) \
             RETURNING seq",
        )
        .bind(chat)
        .bind(role)
        .bind(content)
        .bind(actions.to_string())
        .bind(&uploads_json)
        .bind(now)
        .fetch_one(pool)
        .await)?;
        Ok(ChatMessage {
            seq: u64::try_from(seq).map_err(|e| damaged(e.to_string()))?,
            role: role.to_owned(),
            content: content.to_owned(),
            actions: actions.clone(),
            uploads: uploads.to_vec(),
            created_at_ms: now,
        })
    }

    /// A conversation's messages, in order.
    pub async fn chat_messages(&self, chat: &str) -> Result<Vec<ChatMessage>, StoreError> {
        let rows: Vec<MessageTuple> = on_pool!(self, pool => sqlx::query_as(
            "SELECT seq, role, content, actions, uploads, created_at_ms FROM chat_messages \
             WHERE chat = $1 ORDER BY seq",
        )
        .bind(chat)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(seq, role, content, actions, uploads, created_at_ms)| {
                Ok(ChatMessage {
                    seq: u64::try_from(seq).map_err(|e| damaged(e.to_string()))?,
                    role,
                    content,
                    actions: serde_json::from_str(&actions).map_err(|e| damaged(e.to_string()))?,
                    uploads: serde_json::from_str(&uploads).map_err(|e| damaged(e.to_string()))?,
                    created_at_ms,
                })
            })
            .collect()
    }
}
