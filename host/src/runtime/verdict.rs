//! The plugin's integrity verdicts: a digest read, a digest judged, a stream's coverage judged.
//! Each call gets a fresh instance with the per-file limits, as the trail check does.

use wasmtime::Store;

use super::bindings::integrity::{Coverage, Digest, DigestCheck, Guest, Problem, Verdict};
use super::bindings::types::FileError;
use super::file::{describe_file_error, PluginRuntime, TrapReason};
use super::store::StoreState;

/// Why a verdict could not be had.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The plugin lacks the `integrity` interface.
    #[error(
        "the plugin in use does not export trailwatch:plugin/integrity (upgrade the plugin to validate log files)"
    )]
    Unsupported,
    /// The plugin trapped.
    #[error("{0}")]
    Trap(TrapReason),
}

impl PluginRuntime {
    fn with_integrity<T>(
        &self,
        what: &str,
        call: impl FnOnce(&Guest, &mut Store<StoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, VerdictError> {
        let Some(indices) = &self.exports.integrity else {
            return Err(VerdictError::Unsupported);
        };
        let mut store = self.call_store(what);
        let result = self
            .exports
            .pre
            .instantiate(&mut store)
            .and_then(|instance| indices.load(&mut store, &instance))
            .and_then(|guest| call(&guest, &mut store));
        result.map_err(|e| VerdictError::Trap(self.trap_reason(&store, e)))
    }

    /// Reads a digest file from its stored bytes. The inner error says why the bytes are not a
    /// digest, in words.
    pub fn read_digest(&self, stored: &[u8]) -> Result<Result<Digest, String>, VerdictError> {
        self.with_integrity("(digest)", |g, store| g.call_read_digest(store, stored))
            .map(|r| r.map_err(|e: FileError| describe_file_error(&e)))
    }

    /// Judges one digest.
    pub fn judge_digest(&self, check: &DigestCheck) -> Result<Verdict, VerdictError> {
        self.with_integrity("(digest verdict)", |g, store| g.call_judge(store, check))
    }

    /// Judges a stream's digests and log files together.
    pub fn judge_coverage(&self, coverage: &Coverage) -> Result<Vec<Problem>, VerdictError> {
        self.with_integrity("(digest coverage)", |g, store| g.call_judge_coverage(store, coverage))
    }
}
