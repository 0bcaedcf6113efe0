//! Montage: turns a chat into a finished video whose cuts land on the beat.
//!
//! This crate is the application around the workspace's libraries: the command line
//! (`montage analyze`, `montage make`), the configuration, the provider registry, the media
//! store and the video pipeline. The server and the database store join it as they are
//! built (see DESIGN.md).
//!
//! # Layout
//! - [`cli`]: the `montage` command line; [`make`]: `montage make`.
//! - [`config`]: defaults, `montage.toml`, environment.
//! - [`providers`]: which model serves which capability.
//! - [`objects`]: the content-addressed media store.
//! - [`pipeline`]: the video graph, its state, nodes, planner and templates.
//! - [`store`]: the database (SQLite or Postgres) and the graph checkpointer on it.
//! - [`telemetry`]: tracing set-up for the binary.

pub mod agent;
pub mod app;
pub mod cli;
pub mod config;
pub mod make;
pub mod metrics;
pub mod objects;
pub mod pipeline;
pub mod providers;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod worker;
