//! Each run's stored events, fanned out to the clients following it live.

use montage_graph::Event;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Each run's stored events, for live listeners: an event is sent here only once it is in
/// the database, so what a client has seen survives any crash with the same seq.
#[derive(Default)]
pub(super) struct Broadcasts {
    runs: Mutex<HashMap<String, broadcast::Sender<Event>>>,
}

/// Events a slow listener may fall behind by before it catches up from the database.
const BROADCAST_CAPACITY: usize = 256;

impl Broadcasts {
    pub(super) fn subscribe(&self, run: &str) -> broadcast::Receiver<Event> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.entry(run.to_owned())
            .or_insert_with(|| broadcast::channel(BROADCAST_CAPACITY).0)
            .subscribe()
    }

    pub(super) fn send(&self, event: &Event) {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = runs.get(event.thread.as_str()) {
            let _ = sender.send(event.clone());
        }
    }

    /// The run has ended: its listeners get what was sent, then the end of the stream.
    pub(super) fn close(&self, run: &str) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run);
    }
}
