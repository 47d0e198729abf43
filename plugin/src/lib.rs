//! trailwatch's plugin: the decision logic that runs inside the WASM sandbox.
//!
//! # Layout
//! - `reader`: opens a CloudTrail object (gzip or plain JSON) and reads it in bounded batches.
//! - `scan`: finds where each JSON value ends in the decompressed stream, with bounded memory.
//! - `record`: tolerant typed reading of one record (odd types, `null`, lowercase keys).
//! - `fast`: a strict one-pass reader of ordinary records into the same `Record`, borrowing.
//! - `normalize`: a record to a normalized `model::Event`, naming what was wrong.
//! - `categorize`: service, action type, metric name and cross-cutting flags.
//! - `select`: which events the module's mode keeps (write-only mode's rules).
//! - `check`: the trail check: which trail to read and what is wrong with its configuration.
//! - `integrity`: log-file integrity validation: digests read and judged.
//! - `documents`: events rendered as their output documents, one buffer per batch.
//! - `scoring`: pattern of life: baselines per identity, scores with reasons, incidents.
//! - `time`: `eventTime` in the formats producers write.
//! - `text`: substring search for short texts.
//! - `mem`: `memcmp` and `bcmp` a word at a time (wasm32 has them a byte at a time).
//! - `component` (wasm32 only): the WIT exports, a thin layer over the above.
//!
//! Nothing here does I/O, reads a clock or draws randomness: same input, same output. The same
//! code builds natively, which the tests and the native benchmark use.

pub mod categorize;
pub mod check;
pub mod documents;
pub mod fast;
#[doc(hidden)]
pub mod fuzzing;
pub mod integrity;
pub mod mem;
pub mod model;
pub mod normalize;
pub mod reader;
#[cfg(test)]
mod readme;
pub mod record;
pub mod scan;
pub mod scoring;
pub mod select;
pub mod text;
pub mod time;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

/// The plugin's name as reported to the host.
pub const NAME: &str = "trailwatch-core";
/// The plugin's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of the WIT contract this plugin implements.
pub const CONTRACT_VERSION: &str = "0.2.0";
