//! trailwatch's host: all I/O around the sandboxed plugin.
//!
//! # Layout
//! - `cli`: the command line; `main.rs` only calls `cli::main`.
//! - `config`: the TOML configuration, validated at start-up.
//! - `clock`: the time, injectable; `layout`: CloudTrail's key layout in a bucket.
//! - `runtime`: wasmtime engine, plugin loading (version check, compile cache, the built-in
//!   plugin) and per-file stores with memory and time limits.
//! - `source`: where files come from (S3 polling; local files for `replay`).
//! - `pipeline`: the stages between a source and the sinks: reader pool, enrichment, writer,
//!   acknowledgements, commit.
//! - `sink`: stdout, file, HTTP and OTLP outputs, each acknowledging what it handed over.
//! - `state`: the checkpoint, keyed by object.
//! - `metrics`: Prometheus metrics, health and readiness.
//! - `output`: the NDJSON event format and its names.
//! - `replay`, `run`: the two commands, each a source wired to the pipeline.
//! - `setup`: creates what the module needs (bucket, its delivery policy, the trail), idempotent.
//! - `policy`: the least-privilege IAM policy of a configuration (`trailwatch policy`).
//! - `trail`: the trail check (`check`, and `run` at start-up): reads the trail, asks the plugin,
//!   applies fixes.
//! - `integrity`: log-file integrity validation from CloudTrail's digests (`verify`, and `run`).
//! - `aws`: SigV4-signed S3 and CloudTrail requests.

/// The log target of `run`'s stages at debug level (`TRAILWATCH_LOG=trailwatch::stage=debug`):
/// listing, fetching, reading, a sink batch, acknowledged, committing (the checkpoint), deleting,
/// each logged as it starts: what was under way when a process stopped. The crash soak aims its
/// kills with them.
pub const STAGE: &str = "trailwatch::stage";

pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod integrity;
pub mod layout;
pub mod metrics;
pub mod networks;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod replay;
pub mod report;
pub mod run;
pub mod runtime;
pub mod score;
pub mod setup;
pub mod sink;
pub mod source;
pub mod state;
pub mod trail;
