//! Nodes: their context, retry policy and the type-erased function shapes the engine stores.

use crate::error::{NodeError, NodeErrorKind};
use crate::event::{EventHub, EventKind};
use crate::state::{Counters, State};
use crate::{Command, ThreadId};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type NodeFn<S> = Arc<
    dyn Fn(Arc<S>, NodeContext) -> BoxFuture<Result<Command<<S as State>::Update>, NodeError>>
        + Send
        + Sync,
>;
pub(crate) type ItemFn<S> =
    Arc<dyn Fn(NodeContext) -> BoxFuture<Result<<S as State>::Update, NodeError>> + Send + Sync>;
pub(crate) type ItemsFn<S> = Arc<dyn Fn(&Arc<S>) -> Vec<ItemFn<S>> + Send + Sync>;
pub(crate) type AnswerFn<S> =
    Arc<dyn Fn(&S, Value) -> Result<<S as State>::Update, NodeError> + Send + Sync>;
pub(crate) type RouterFn<S> = Arc<dyn Fn(&S, &Counters) -> String + Send + Sync>;

/// What a running node can see and do besides reading the state: report progress, emit
/// events, notice cancellation.
#[derive(Clone)]
pub struct NodeContext {
    pub(crate) thread: ThreadId,
    pub(crate) node: Arc<str>,
    pub(crate) item: Option<usize>,
    pub(crate) attempt: u32,
    pub(crate) step: u64,
    pub(crate) hub: Arc<EventHub>,
    pub(crate) cancel: CancellationToken,
}

impl NodeContext {
    /// The thread (run) this node runs in.
    pub fn thread(&self) -> &ThreadId {
        &self.thread
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The fan-out item index, for nodes that fan out.
    pub fn item(&self) -> Option<usize> {
        self.item
    }

    /// The attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The step this node runs in.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Reports progress (`fraction` is clamped to 0..=1).
    pub fn progress(&self, fraction: f32, message: impl Into<String>) {
        self.hub.publish(
            &self.thread,
            EventKind::Progress {
                node: self.node.to_string(),
                item: self.item,
                fraction: fraction.clamp(0.0, 1.0),
                message: message.into(),
            },
        );
    }

    /// Emits an application-defined event into the thread's stream.
    pub fn emit(&self, name: impl Into<String>, payload: Value) {
        self.hub.publish(
            &self.thread,
            EventKind::Custom {
                node: self.node.to_string(),
                item: self.item,
                name: name.into(),
                payload,
            },
        );
    }

    /// Whether the run has been cancelled. Long-running nodes check this and stop early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the run is cancelled; for `select!` in long-running nodes.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
}

/// How a node retries failed attempts: exponential backoff with jitter.
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: f64,
    retry_if: Arc<dyn Fn(&NodeError) -> bool + Send + Sync>,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("multiplier", &self.multiplier)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    /// One attempt, no retries.
    fn default() -> Self {
        Self::exponential(1)
    }
}

impl RetryPolicy {
    /// Up to `max_attempts` attempts; backoff starts at 200 ms, doubles, is capped at 30 s,
    /// with ±25 % jitter. Transient errors and timeouts are retried.
    pub fn exponential(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.25,
            retry_if: Arc::new(|e: &NodeError| {
                matches!(e.kind, NodeErrorKind::Transient | NodeErrorKind::Timeout)
            }),
        }
    }

    /// Sets the first backoff and the cap.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the growth factor between attempts (at least 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier.max(1.0);
        self
    }

    /// Sets the jitter as a fraction of the backoff (0 = none, at most 1).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Decides which errors are retried.
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&NodeError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retry_if = Arc::new(predicate);
        self
    }

    /// The number of attempts allowed.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn should_retry(&self, attempt: u32, error: &NodeError) -> bool {
        attempt < self.max_attempts
            && error.kind != NodeErrorKind::Cancelled
            && (self.retry_if)(error)
    }

    /// The wait after failed attempt `attempt` (from 1). The jitter is drawn from `seed`
    /// rather than a global RNG, so a replayed run waits the same.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        // Uniform in [-jitter, +jitter] from a splitmix64 hash of the seed.
        let unit = splitmix64(seed ^ u64::from(attempt)) as f64 / u64::MAX as f64;
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_caps() {
        let policy = RetryPolicy::exponential(10)
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(0.25);
        for seed in 0..50 {
            let first = policy.delay(1, seed).as_secs_f64();
            let third = policy.delay(3, seed).as_secs_f64();
            let ninth = policy.delay(9, seed).as_secs_f64();
            assert!((0.075..=0.125).contains(&first), "{first}");
            assert!((0.3..=0.5).contains(&third), "{third}");
            assert!((0.75..=1.25).contains(&ninth), "{ninth}");
        }
        let without_jitter = policy.clone().jitter(0.0);
        assert_eq!(without_jitter.delay(2, 7), Duration::from_millis(200));
    }

    #[test]
    fn only_chosen_errors_retry_and_never_past_the_limit() {
        let policy = RetryPolicy::exponential(3);
        assert!(policy.should_retry(1, &NodeError::transient("flaky")));
        assert!(policy.should_retry(2, &NodeError::timeout(Duration::from_secs(1))));
        assert!(!policy.should_retry(3, &NodeError::transient("flaky")));
        assert!(!policy.should_retry(1, &NodeError::permanent("bad input")));
        assert!(!policy.should_retry(1, &NodeError::cancelled()));
        let everything = policy.retry_if(|_| true);
        assert!(everything.should_retry(1, &NodeError::permanent("bad input")));
    }
}
