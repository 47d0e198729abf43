//! Compiled plugins cached on disk, keyed by the plugin's bytes and the engine's settings.
//!
//! Compiling a plugin takes ~100 ms; loading a precompiled one ~1 ms. A precompiled artifact is
//! only valid for the wasmtime version and engine configuration that made it, so both are part of
//! the key. The cache directory must be trusted: loading an artifact runs native code from it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled plugins are kept; `None` compiles every time.
#[derive(Debug, Clone, Default)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// Feeds `Hash` output into a SHA-256, so the engine's compatibility hash can join the key.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The SHA-256 of a plugin's bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// A cache in `dir` (created when first written).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: Some(dir.into()) }
    }

    /// No cache: compile every time.
    pub fn disabled() -> Self {
        CompileCache { dir: None }
    }

    /// The cache directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The file a plugin's compiled form is kept in.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut sha = Sha256::new();
        sha.update(bytes);
        sha.update(b"\0wasmtime-48.0.8\0");
        engine.precompile_compatibility_hash().hash(&mut ShaHasher(&mut sha));
        Some(dir.join(format!("{}.cwasm", hex::encode(sha.finalize()))))
    }

    /// The compiled component for `bytes`: from the cache when there, else compiled (and cached).
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(path) = self.entry_path(engine, bytes) else {
            return Component::new(engine, bytes);
        };
        if path.exists() {
            // SAFETY: the artifact was written by `precompile_component` of an engine with the
            // same version and settings (both are in its name), into a directory the operator
            // controls; wasmtime also checks the header for compatibility.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "compiled plugin cache entry unusable; recompiling")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled plugin cache");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
