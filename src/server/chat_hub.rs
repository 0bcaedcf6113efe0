//! The live stream of each chat: what the agent says and which run a chat follows, fanned out
//! to the WebSocket sessions watching it. Runs announce themselves here too, so the runs and the
//! chats share this module rather than importing each other.

use crate::store::ChatMessage;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Something that happened in a chat, for the clients watching it.
#[derive(Debug, Clone)]
pub enum ChatEvent {
    /// A piece of the agent's answer.
    Delta(String),
    /// A whole message, as stored (the person's, then the agent's).
    Message(ChatMessage),
    /// The chat now follows this run.
    Run(String),
}

/// The live stream of each chat.
#[derive(Default)]
pub struct ChatHub {
    chats: Mutex<HashMap<String, broadcast::Sender<ChatEvent>>>,
}

impl ChatHub {
    /// Follows chat `id`.
    pub fn subscribe(&self, id: &str) -> broadcast::Receiver<ChatEvent> {
        self.chats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }

    /// Tells chat `id`'s watchers.
    pub fn send(&self, id: &str, event: ChatEvent) {
        let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = chats.get(id)
            && sender.send(event).is_err()
        {
            // Nobody watches any more.
            chats.remove(id);
        }
    }
}
