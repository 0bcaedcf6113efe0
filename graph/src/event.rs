//! The ordered event stream of each thread, with replay for late subscribers.

use crate::ThreadId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// One thing that happened in a run. `seq` increases by one per event within a thread,
/// across resumes and across processes (it is carried in the checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the thread's stream, starting at 1.
    pub seq: u64,
    /// The thread (run) it belongs to.
    pub thread: ThreadId,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A new thread started with its input.
    RunStarted,
    /// A stopped thread continued: after an answer, a crash or a failure.
    RunResumed,
    /// A node (or one fan-out item of it) started an attempt.
    NodeStarted {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A node (or item) finished successfully.
    NodeFinished {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// How long the successful attempt took.
        duration_ms: u64,
    },
    /// An attempt failed and will be retried after a backoff.
    NodeRetrying {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// The wait before the next attempt.
        backoff_ms: u64,
    },
    /// A node failed for good.
    NodeFailed {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// Why.
        error: String,
    },
    /// Progress reported from inside a node.
    Progress {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// Fraction done, 0.0 to 1.0.
        fraction: f32,
        /// What is being done.
        message: String,
    },
    /// An application-defined event emitted from inside a node.
    Custom {
        /// The node.
        node: String,
        /// The fan-out item.
        item: Option<usize>,
        /// The event's name.
        name: String,
        /// Its payload.
        payload: Value,
    },
    /// A step's checkpoint was saved.
    Checkpoint {
        /// The step number.
        step: u64,
        /// The checkpoint's id.
        id: String,
    },
    /// A node asked a question; the run waits for an answer.
    Interrupted {
        /// The node that asked.
        node: String,
        /// The question.
        question: Value,
    },
    /// The run reached END.
    RunCompleted,
    /// The run failed.
    RunFailed {
        /// Why.
        error: String,
    },
    /// The run was cancelled.
    RunCancelled,
}

impl EventKind {
    /// Whether the run stops after this event (until resumed).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Interrupted { .. }
                | Self::RunCompleted
                | Self::RunFailed { .. }
                | Self::RunCancelled
        )
    }
}

/// The events of many threads: an in-memory log per thread (bounded) plus live delivery.
/// Persisting events for good is the job of the application's store, which subscribes here.
pub struct EventHub {
    threads: Mutex<HashMap<ThreadId, ThreadLog>>,
    retain: usize,
}

struct ThreadLog {
    events: VecDeque<Event>,
    last_seq: u64,
    sender: broadcast::Sender<Event>,
}

impl ThreadLog {
    /// The retained events from `from_seq` on.
    fn since(&self, from_seq: u64) -> VecDeque<Event> {
        self.events
            .iter()
            .filter(|e| e.seq >= from_seq)
            .cloned()
            .collect()
    }
}

const LIVE_CAPACITY: usize = 1024;

impl Default for EventHub {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventHub {
    /// A hub that keeps the last `retain` events of each thread for replay.
    pub fn new(retain: usize) -> Self {
        Self {
            threads: Mutex::new(HashMap::new()),
            retain: retain.max(1),
        }
    }

    fn with_log<T>(&self, thread: &ThreadId, f: impl FnOnce(&mut ThreadLog) -> T) -> T {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let log = threads.entry(thread.clone()).or_insert_with(|| ThreadLog {
            events: VecDeque::new(),
            last_seq: 0,
            sender: broadcast::channel(LIVE_CAPACITY).0,
        });
        f(log)
    }

    /// Appends an event to a thread's stream and returns its seq.
    pub fn publish(&self, thread: &ThreadId, kind: EventKind) -> u64 {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let retain = self.retain;
        self.with_log(thread, |log| {
            log.last_seq += 1;
            let event = Event {
                seq: log.last_seq,
                thread: thread.clone(),
                at_ms,
                kind,
            };
            if log.events.len() == retain {
                log.events.pop_front();
            }
            log.events.push_back(event.clone());
            // No receiver is not an error: nobody is watching yet.
            let _ = log.sender.send(event);
            log.last_seq
        })
    }

    /// The seq of the thread's newest event (0 if none).
    pub fn last_seq(&self, thread: &ThreadId) -> u64 {
        self.with_log(thread, |log| log.last_seq)
    }

    /// Makes the thread's next seq follow `seq` at least: used when a thread continues in a
    /// process that has not seen its earlier events.
    pub fn advance_to(&self, thread: &ThreadId, seq: u64) {
        self.with_log(thread, |log| log.last_seq = log.last_seq.max(seq));
    }

    /// Drops a thread's retained events (for example once they are persisted and the run ended).
    pub fn forget(&self, thread: &ThreadId) {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.remove(thread);
    }

    /// Follows a thread's events from `from_seq` on: first those still retained, then live
    /// ones, each exactly once and in order.
    pub fn subscribe(self: &Arc<Self>, thread: &ThreadId, from_seq: u64) -> EventStream {
        let (backlog, live) = self.with_log(thread, |log| {
            let live = log.sender.subscribe();
            (log.since(from_seq), live)
        });
        EventStream {
            hub: Arc::clone(self),
            thread: thread.clone(),
            backlog,
            live,
            next_seq: from_seq,
        }
    }

    fn retained_from(&self, thread: &ThreadId, from_seq: u64) -> VecDeque<Event> {
        self.with_log(thread, |log| log.since(from_seq))
    }
}

/// A subscription to one thread's events. Call [`EventStream::next`], or turn it into a
/// [`futures::Stream`] with [`EventStream::into_stream`].
pub struct EventStream {
    hub: Arc<EventHub>,
    thread: ThreadId,
    backlog: VecDeque<Event>,
    live: broadcast::Receiver<Event>,
    next_seq: u64,
}

impl EventStream {
    /// The next event, waiting for it if need be. `None` once the hub is gone.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.seq < self.next_seq {
                    continue;
                }
                self.next_seq = event.seq + 1;
                return Some(event);
            }
            match self.live.recv().await {
                Ok(event) if event.seq < self.next_seq => continue,
                Ok(event) => {
                    self.next_seq = event.seq + 1;
                    return Some(event);
                }
                // A slow subscriber fell behind the live channel: catch up from the log.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.backlog = self.hub.retained_from(&self.thread, self.next_seq);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The subscription as a `Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Event> + Send {
        futures::stream::unfold(self, |mut stream| async move {
            let event = stream.next().await?;
            Some((event, stream))
        })
    }
}
