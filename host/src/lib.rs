//! trailwatch's host: all I/O around the sandboxed plugin.
//!
//! # Layout
//! - `cli`: the command line; `main.rs` only calls `cli::main`.
//! - `config`: the TOML configuration, validated at start-up.
//! - `runtime`: wasmtime engine, plugin loading (version check, compile cache) and per-file
//!   stores with memory and time limits.
//! - `replay`: local files through the plugin, in parallel, in a deterministic order.
//! - `output`: the NDJSON event format.

pub mod aws;
pub mod cli;
pub mod config;
pub mod output;
pub mod replay;
pub mod run;
pub mod runtime;
pub mod source;
pub mod state;
