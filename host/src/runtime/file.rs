//! Reading one object through the plugin, in a fresh limited store.
//!
//! A trapped instance cannot be entered again, so every file gets its own `Store` from the
//! shared `InstancePre` (~15 µs). A trap costs that file only: the report says which limit
//! tripped (memory, time) or what the plugin said when it panicked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use super::bindings::types::{DigestInfo, Event, FileError, FileKind, ObjectMeta, OpenOptions};
use super::bindings::PluginPre;
use super::cache::CompileCache;
use super::limits::{EpochTicker, Limits};
use super::loader::{self, LoadError, LoadedPlugin, PluginSearch, Rejected};
use super::store::set_deadline;
pub use super::store::{engine, linker, plugin_info, StoreState};

/// Events handed to the caller per plugin call.
pub const BATCH: u32 = 512;
/// Why the plugin stopped with a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapReason {
    /// It asked for more memory than the cap.
    Memory { limit_bytes: u64 },
    /// It ran past the time budget.
    Time { limit: Duration },
    /// It panicked; the message is what it logged.
    Panic { message: String },
    /// Any other trap.
    Other { message: String },
}

impl std::fmt::Display for TrapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapReason::Memory { limit_bytes } => {
                write!(f, "plugin exceeded its memory limit of {} MiB", limit_bytes >> 20)
            }
            TrapReason::Time { limit } => write!(f, "plugin exceeded its time limit of {:?} for one file", limit),
            TrapReason::Panic { message } => write!(f, "{message}"),
            TrapReason::Other { message } => write!(f, "plugin trapped: {message}"),
        }
    }
}

/// Why a file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum FileFailure {
    /// The plugin reported the file as bad (not gzip, not JSON, truncated, too large, ...).
    #[error("{}", describe_file_error(.0))]
    Input(FileError),
    /// The plugin trapped.
    #[error("{0}")]
    Trap(TrapReason),
    /// The consumer of the events failed (an output write).
    #[error("output failed: {0:#}")]
    Output(anyhow::Error),
}

/// A file error in words.
pub fn describe_file_error(e: &FileError) -> String {
    match e {
        FileError::BadGzip(m) => format!("corrupt gzip: {m}"),
        FileError::Truncated(m) => format!("truncated: {m}"),
        FileError::NotJson(m) => format!("not JSON: {m}"),
        FileError::NotCloudtrail(m) => format!("not a CloudTrail file: {m}"),
        FileError::TooLarge(limit) => format!("decompresses to more than {limit} bytes (limit max_decompressed_bytes)"),
        FileError::ReadFailed(m) => format!("could not be read: {m}"),
        FileError::Closed => "read again after an error".to_owned(),
    }
}

/// What reading a file produced.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file's kind, once the plugin could tell.
    pub kind: Option<FileKind>,
    /// What a digest file says.
    pub digest: Option<DigestInfo>,
    /// Events handed to the consumer.
    pub events: u64,
}

/// The engine, the chosen plugin and the limits: everything needed to read files.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<StoreState>,
    pre: PluginPre<StoreState>,
    plugin: LoadedPlugin,
    limits: Limits,
    /// Shared by the runtimes of one engine: a second ticker would halve every time limit.
    ticker: Arc<EpochTicker>,
}

impl PluginRuntime {
    /// Loads the newest compatible plugin `search` finds. Returns the runtime and the plugins
    /// that were passed over, with why.
    pub fn from_search(
        search: &PluginSearch,
        cache: &CompileCache,
        limits: Limits,
    ) -> anyhow::Result<(Self, Vec<Rejected>)> {
        let engine = engine()?;
        let linker = linker(&engine)?;
        let (plugin, rejected) =
            loader::load_newest(&engine, &linker, search, cache).map_err(|e: LoadError| anyhow::anyhow!(e))?;
        Ok((Self::with_plugin(engine, &linker, plugin, limits)?, rejected))
    }

    /// A runtime for one plugin file, whatever else its directory holds.
    pub fn from_file(path: &std::path::Path, cache: &CompileCache, limits: Limits) -> anyhow::Result<Self> {
        let engine = engine()?;
        let linker = linker(&engine)?;
        let plugin = loader::load_one(&engine, &linker, path, cache)
            .map_err(|reason| anyhow::anyhow!("plugin {}: {reason}", path.display()))?;
        Self::with_plugin(engine, &linker, plugin, limits)
    }

    fn with_plugin(
        engine: Engine,
        linker: &Linker<StoreState>,
        plugin: LoadedPlugin,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let pre = PluginPre::new(linker.instantiate_pre(&plugin.component)?)?;
        let ticker = Arc::new(EpochTicker::start(&engine)?);
        Ok(PluginRuntime {
            engine,
            linker: linker.clone(),
            pre,
            plugin,
            limits,
            ticker,
        })
    }

    /// Looks again. When the newest compatible plugin is not the one in use (by content: a file
    /// replaced in place counts), returns a runtime for it that shares this one's engine, limits
    /// and epoch ticker. The plugins passed over come back with why.
    pub fn reload(
        &self,
        search: &PluginSearch,
        cache: &CompileCache,
    ) -> anyhow::Result<(Option<PluginRuntime>, Vec<Rejected>)> {
        let (plugin, rejected) = loader::load_newest(&self.engine, &self.linker, search, cache)
            .map_err(|e: LoadError| anyhow::anyhow!(e))?;
        if plugin.sha256 == self.plugin.sha256 {
            return Ok((None, rejected));
        }
        let pre = PluginPre::new(self.linker.instantiate_pre(&plugin.component)?)?;
        let runtime = PluginRuntime {
            engine: self.engine.clone(),
            linker: self.linker.clone(),
            pre,
            plugin,
            limits: self.limits,
            ticker: self.ticker.clone(),
        };
        Ok((Some(runtime), rejected))
    }

    /// The plugin in use.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// The limits every store gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Reads one object through the plugin. `on_batch` gets the events in order; events handed
    /// over before a failure stay handed over (nothing already read is lost).
    pub fn read_file(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        mut on_batch: impl FnMut(&[Event]) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        let mut report = FileReport {
            kind: None,
            digest: None,
            events: 0,
        };
        let mut state = StoreState::new(self.limits.memory_bytes, meta.key.clone());
        state.input = Some(input);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        set_deadline(&mut store, self.limits.time_per_file);
        let started = Instant::now();
        let plugin = match self.pre.instantiate(&mut store) {
            Ok(p) => p,
            Err(e) => return Err((report, FileFailure::Trap(self.trap_reason(&store, e)))),
        };
        let log_file = plugin.trailwatch_plugin_parser().log_file();
        let options = OpenOptions {
            max_decompressed_bytes: self.limits.max_decompressed_bytes,
            max_record_bytes: self.limits.max_record_bytes,
            max_depth: self.limits.max_depth,
        };
        let handle = match log_file.call_open(&mut store, meta, options) {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err((report, FileFailure::Input(e))),
            Err(e) => return Err((report, FileFailure::Trap(self.trap_reason(&store, e)))),
        };
        let calls = (|| -> wasmtime::Result<()> {
            report.kind = Some(log_file.call_kind(&mut store, handle)?);
            report.digest = log_file.call_digest(&mut store, handle)?;
            Ok(())
        })();
        if let Err(e) = calls {
            return Err((report, FileFailure::Trap(self.trap_reason(&store, e))));
        }
        // The time limit is on the plugin's own time: neither the consumer of each batch (an
        // output that pushes back, an ordered writer waiting for an earlier file) nor the host
        // fetching the input (a slow download) may eat into it. So the deadline is set again
        // before each call to what the plugin has left, and input time is given back.
        let mut used = started.elapsed().saturating_sub(store.data().input_waited);
        loop {
            let left = self.limits.time_per_file.saturating_sub(used);
            set_deadline(&mut store, left);
            let call_started = Instant::now();
            let result = log_file.call_next_batch(&mut store, handle, BATCH);
            used += call_started.elapsed().saturating_sub(store.data().input_waited);
            match result {
                Ok(Ok(batch)) if batch.is_empty() => return Ok(report),
                Ok(Ok(batch)) => {
                    report.events += batch.len() as u64;
                    if let Err(e) = on_batch(&batch) {
                        return Err((report, FileFailure::Output(e)));
                    }
                }
                Ok(Err(e)) => return Err((report, FileFailure::Input(e))),
                Err(e) => return Err((report, FileFailure::Trap(self.trap_reason(&store, e)))),
            }
        }
    }

    /// Works out which limit a trap came from, or what the plugin said before it.
    fn trap_reason(&self, store: &Store<StoreState>, error: wasmtime::Error) -> TrapReason {
        let state = store.data();
        if state.limiter.refused.is_some() {
            return TrapReason::Memory {
                limit_bytes: self.limits.memory_bytes,
            };
        }
        if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
            return TrapReason::Time {
                limit: self.limits.time_per_file,
            };
        }
        if let Some(message) = &state.panic {
            return TrapReason::Panic {
                message: message.clone(),
            };
        }
        TrapReason::Other {
            message: format!("{error:#}"),
        }
    }
}
