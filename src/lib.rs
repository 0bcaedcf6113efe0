//! Montage: turns a chat into a finished video whose cuts land on the beat.
//!
//! This crate is the application around the workspace's libraries. Today it holds the
//! command line (`montage analyze`) and logging set-up; the video pipeline, the server and
//! the store join it as they are built (see DESIGN.md).
//!
//! # Layout
//! - [`cli`]: the `montage` command line.
//! - [`telemetry`]: tracing set-up for the binary.

pub mod cli;
pub mod telemetry;
