//! The plugin runtime: one engine, one linker, a limited store per file.
//!
//! # Layout
//! - `bindings`: the one `bindgen!` site for the WIT contract.
//! - `limits`: memory cap (a `ResourceLimiter` that records why it refused) and the epoch ticker
//!   behind the per-file time limit.
//! - `loader`: finds plugins in the plugin directories and the one built in, checks the
//!   contract version, compiles with a cache.
//! - `store`: one plugin store's data and the host side of the imports; the engine and linker.
//! - `file`: reads one object through the plugin and says why it failed when it does.
//! - `verdict`: the plugin's integrity verdicts (digests read and judged), one fresh instance a call.
//! - `scoring`: the plugin's pattern-of-life scores, in steps, one fresh instance a batch.
//! - `watch`: takes a new plugin from the plugin directory without a restart.
//! - `trust`: `[plugin] require_signature`: pinned hashes and minisign signatures.

pub mod bindings;
pub mod cache;
pub mod file;
mod in_place;
pub mod limits;
pub mod loader;
pub mod scoring;
pub mod store;
pub mod trust;
pub mod verdict;
pub mod watch;

pub use file::{Batch, FileFailure, FileReport, Keep, PluginRuntime, TrapReason};
pub use limits::Limits;
pub use loader::{LoadError, LoadedPlugin, PluginSearch};

/// The contract version this host speaks (`wit/plugin.wit`).
pub const CONTRACT_VERSION: &str = "0.2.0";
