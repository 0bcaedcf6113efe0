//! Montage: turns a chat into a finished video whose cuts land on the beat.
//!
//! This crate is the application around the workspace's libraries: the command line
//! (`montage serve`, `montage make`, `montage analyze`, `montage user`), the configuration,
//! the provider registry, the media store, the database, the video pipeline, the run worker,
//! the HTTP/WebSocket server and the chat agent (see DESIGN.md).
//!
//! # Layout
//! - [`cli`]: the `montage` command line; [`make`]: `montage make`; [`eval`]: `montage eval`,
//!   the prompt-regression harness.
//! - [`config`]: defaults, `montage.toml`, environment.
//! - [`app`]: the services `make` and `serve` both open.
//! - [`providers`]: which model serves which capability.
//! - [`quota`]: what one person may ask of the server.
//! - [`retention`]: deleting runs and what only they use; keeping the disk from only growing.
//! - [`objects`]: the content-addressed media store.
//! - [`pipeline`]: the video graph, its state, nodes, planner and templates.
//! - [`store`]: the database (SQLite or Postgres): runs, events, users, chats, uploads,
//!   assets, ledger, cache, and the graph checkpointer on it.
//! - [`worker`]: the run queue and the workers that execute runs durably.
//! - [`server`]: `montage serve`'s REST API and WebSocket; [`metrics`]: its Prometheus metrics.
//! - [`agent`]: the chat agent and its tools.
//! - [`telemetry`]: tracing set-up for the binary.

pub mod agent;
pub mod app;
pub mod cli;
pub mod config;
pub mod eval;
pub mod make;
pub mod metrics;
pub mod objects;
pub mod pipeline;
pub mod providers;
pub mod quota;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod worker;
