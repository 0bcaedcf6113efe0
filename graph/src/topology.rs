//! What a graph is made of, shared by the builder that checks it and the compiled graph that
//! runs it: the virtual start and end, node definitions and routers.

use crate::error::NodeError;
use crate::node::{AnswerFn, ItemsFn, NodeFn, RetryPolicy, RouterFn};
use crate::state::State;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The virtual node a run starts from.
pub const START: &str = "__start__";
/// The virtual node a run ends at.
pub const END: &str = "__end__";

pub(crate) enum NodeBody<S: State> {
    Single(NodeFn<S>),
    FanOut {
        items: ItemsFn<S>,
        concurrency: usize,
    },
}

/// A node being defined: configure its retries, timeout, answer handler, fan-out
/// concurrency and goto targets.
pub struct NodeSpec<S: State> {
    pub(crate) name: String,
    pub(crate) body: NodeBody<S>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) on_answer: Option<AnswerFn<S>>,
    pub(crate) goto_targets: Vec<String>,
}

impl<S: State> NodeSpec<S> {
    /// Retries failed attempts by `policy` (each fan-out item separately).
    pub fn retry(&mut self, policy: RetryPolicy) -> &mut Self {
        self.retry = policy;
        self
    }

    /// Fails an attempt that runs longer than `limit` (a [`NodeErrorKind::Timeout`](crate::NodeErrorKind::Timeout), which retries by default).
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }

    /// Takes the answer to this node's question (see
    /// [`Command::interrupt`](crate::Command::interrupt)) and turns it into an update. An `Err`
    /// rejects the answer; the run stays waiting.
    pub fn on_answer(
        &mut self,
        handler: impl Fn(&S, Value) -> Result<S::Update, NodeError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_answer = Some(Arc::new(handler));
        self
    }

    /// Runs at most `limit` items of this fan-out node at once.
    pub fn concurrency(&mut self, limit: usize) -> &mut Self {
        if let NodeBody::FanOut { concurrency, .. } = &mut self.body {
            *concurrency = limit;
        }
        self
    }

    /// Declares nodes this node may jump to with [`Command::goto`](crate::Command::goto).
    pub fn may_goto<'a>(&mut self, targets: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.goto_targets
            .extend(targets.into_iter().map(str::to_owned));
        self
    }
}

pub(crate) struct Router<S: State> {
    pub(crate) route: RouterFn<S>,
    pub(crate) targets: Vec<String>,
}
