//! montage-graph: a durable, typed state-graph engine.
//!
//! A [`StateGraph`] holds nodes (async functions of a state snapshot), edges, routers and
//! fan-out nodes; [`StateGraph::compile`] validates it into a [`CompiledGraph`], which runs
//! *threads*: each run is a sequence of supersteps, each checkpointed, each streaming
//! [`Event`]s. A node can ask a question ([`Command::interrupt`]); the thread stops and
//! [`CompiledGraph::resume`] carries the answer on, in this process or another. Threads can
//! be continued after a crash, inspected at any checkpoint and forked.
//!
//! The engine knows nothing of video, databases or HTTP.
//!
//! ```
//! use montage_graph::{Command, MergeError, NodeError, RunConfig, RunOutcome, State, StateGraph, StepWrites, ThreadId, END, START};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! struct Review { notes: Vec<String>, approved: Option<bool> }
//!
//! impl State for Review {
//!     type Update = (Option<String>, Option<bool>);
//!     fn merge(&mut self, (note, approved): Self::Update, writes: &mut StepWrites) -> Result<(), MergeError> {
//!         self.notes.extend(note); // appends merge; two writers are fine
//!         if let Some(approved) = approved {
//!             writes.claim("approved")?; // a single value: a second writer is an error
//!             self.approved = Some(approved);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut graph = StateGraph::<Review>::new();
//! graph
//!     .add_node("ask", |_, _| async {
//!         Ok(Command::update((Some("draft ready".into()), None)).interrupt("approve?".into()))
//!     })
//!     .on_answer(|_, answer| match answer.as_bool() {
//!         Some(yes) => Ok((None, Some(yes))),
//!         None => Err(NodeError::permanent("answer true or false")),
//!     });
//! graph.add_edge(START, "ask").add_edge("ask", END);
//! let graph = graph.compile().unwrap();
//!
//! let thread = ThreadId::random();
//! let asked = graph.invoke(&thread, Review::default(), RunConfig::default()).await.unwrap();
//! assert!(matches!(asked, RunOutcome::Interrupted { .. }));
//! let done = graph.resume(&thread, true.into(), RunConfig::default()).await.unwrap();
//! assert_eq!(done.state().approved, Some(true));
//! assert_eq!(done.state().notes, ["draft ready"]);
//! # });
//! ```
//!
//! # Layout
//! - [`builder`](StateGraph): `StateGraph` and its validation.
//! - `topology`: what a graph is made of: [`START`], [`END`], [`NodeSpec`] and routers.
//! - `compiled`: `CompiledGraph` — invoke, resume, continue, state, history, fork.
//! - `exec`: the private superstep loop (plan, run, merge, route, checkpoint).
//! - `state`: the [`State`] trait with its merge rule, [`StepWrites`], [`Counters`].
//! - `command`: [`Command`], what a node returns.
//! - `node`: [`NodeContext`] and [`RetryPolicy`].
//! - [`checkpoint`]: the [`Checkpointer`] trait, [`MemoryCheckpointer`] and (feature
//!   `test-util`) the conformance suite every checkpointer must pass.
//! - [`testing`] (feature `test-util`): the pipeline-shaped graph the benches measure.
//! - `event`: [`Event`], [`EventHub`], [`EventStream`].
//! - `error`: [`GraphError`], [`BuildError`], [`NodeError`], [`MergeError`],
//!   [`CheckpointError`].

mod builder;
pub mod checkpoint;
mod command;
mod compiled;
mod error;
mod event;
mod exec;
mod ids;
mod node;
mod state;
#[cfg(feature = "test-util")]
pub mod testing;
mod topology;

pub use builder::StateGraph;
pub use checkpoint::{
    Checkpoint, CheckpointMeta, Checkpointer, Interrupt, MemoryCheckpointer, PendingWrite,
    RunStatus,
};
pub use command::Command;
pub use compiled::{CheckpointInfo, CompiledGraph, Fork, RunConfig, RunOutcome, ThreadState};
pub use error::{BuildError, CheckpointError, GraphError, MergeError, NodeError, NodeErrorKind};
pub use event::{Event, EventHub, EventKind, EventStream};
pub use ids::{CheckpointId, ThreadId};
pub use node::{NodeContext, RetryPolicy};
pub use state::{Counters, State, StepWrites};
pub use tokio_util::sync::CancellationToken;
pub use topology::{END, NodeSpec, START};
