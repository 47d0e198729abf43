//! Reading one object through the plugin, in a fresh limited store.
//!
//! A trapped instance cannot be entered again, so every file gets its own `Store` from the
//! shared `InstancePre` (~15 µs). A trap costs that file only: the report says which limit
//! tripped (memory, time) or what the plugin said when it panicked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use super::bindings::types::{DigestInfo, Event, FileError, FileKind, LogLevel, ObjectMeta, OpenOptions, PluginInfo};
use super::bindings::{Plugin, PluginPre};
use super::cache::CompileCache;
use super::limits::{EpochTicker, Limits, MemoryLimiter, TICK};
use super::loader::{self, LoadError, LoadedPlugin, PluginSearch, Rejected};

/// Events handed to the caller per plugin call.
pub const BATCH: u32 = 512;
/// Plugin log messages kept per file (the rest are counted, not kept).
const MAX_PLUGIN_MESSAGES: usize = 32;
/// Longest plugin log message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Largest chunk handed to the plugin per `input.read`.
const MAX_READ_CHUNK: u32 = 1 << 20;

/// The data of one plugin store.
pub struct StoreState {
    limiter: MemoryLimiter,
    /// The stored bytes of the file this store reads.
    input: Option<Box<dyn std::io::Read + Send>>,
    /// Error-level messages from the plugin.
    errors: Vec<String>,
    /// The plugin's panic message, sent just before its trap.
    panic: Option<String>,
    dropped_messages: u64,
    /// The object being read, for log context.
    key: String,
    /// When the current call into the plugin started, and the plugin time it may use.
    call_started: Instant,
    call_budget: Duration,
    /// Time spent in `input.read` (a slow download) during the current call: the host's time.
    input_waited: Duration,
    /// The error `input.read` gave, given again to any later read: an input that failed once
    /// stays failed.
    input_failed: Option<String>,
}

impl StoreState {
    fn new(memory_bytes: u64, key: String) -> Self {
        StoreState {
            limiter: MemoryLimiter::new(memory_bytes),
            input: None,
            errors: Vec::new(),
            panic: None,
            dropped_messages: 0,
            key,
            call_started: Instant::now(),
            call_budget: Duration::ZERO,
            input_waited: Duration::ZERO,
            input_failed: None,
        }
    }
}

/// Epoch ticks in `d`, at least one.
fn ticks(d: Duration) -> u64 {
    ((d.as_millis() / TICK.as_millis()) as u64).max(1)
}

/// Gives the next call into the plugin `budget` of plugin time. Time the host spends fetching
/// the plugin's input (a slow download) is the host's, not the plugin's: when the deadline comes,
/// the plugin's own time so far is worked out again without it, and only past the budget does the
/// call trap.
fn set_deadline(store: &mut Store<StoreState>, budget: Duration) {
    let state = store.data_mut();
    state.call_started = Instant::now();
    state.call_budget = budget;
    state.input_waited = Duration::ZERO;
    store.set_epoch_deadline(ticks(budget));
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        let used = state.call_started.elapsed().saturating_sub(state.input_waited);
        match state.call_budget.checked_sub(used) {
            Some(left) if !left.is_zero() => Ok(wasmtime::UpdateDeadline::Continue(ticks(left))),
            _ => Ok(wasmtime::UpdateDeadline::Interrupt),
        }
    });
}

impl super::bindings::trailwatch::plugin::types::Host for StoreState {}

impl super::bindings::trailwatch::plugin::input::Host for StoreState {
    fn read(&mut self, max: u32) -> Result<Vec<u8>, String> {
        if let Some(failed) = &self.input_failed {
            return Err(failed.clone());
        }
        let Some(input) = self.input.as_mut() else {
            return Ok(Vec::new());
        };
        let mut buf = vec![0u8; max.min(MAX_READ_CHUNK) as usize];
        let started = Instant::now();
        let result = loop {
            match input.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    break Ok(buf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(format!("reading {}: {e}", self.key)),
            }
        };
        self.input_waited += started.elapsed();
        if let Err(e) = &result {
            self.input_failed = Some(e.clone());
        }
        result
    }
}

impl super::bindings::trailwatch::plugin::host_log::Host for StoreState {
    fn log(&mut self, level: LogLevel, mut message: String) {
        if self.errors.len() >= MAX_PLUGIN_MESSAGES {
            self.dropped_messages += 1;
            return;
        }
        if message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        match level {
            LogLevel::Debug => tracing::debug!(target: "trailwatch::plugin", key = %self.key, "{message}"),
            LogLevel::Info => tracing::info!(target: "trailwatch::plugin", key = %self.key, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "trailwatch::plugin", key = %self.key, "{message}"),
            LogLevel::Panic => {
                tracing::error!(target: "trailwatch::plugin", key = %self.key, "{message}");
                self.panic = Some(message);
            }
            LogLevel::Error => {
                tracing::error!(target: "trailwatch::plugin", key = %self.key, "{message}");
                self.errors.push(message);
            }
        }
    }
}

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

/// The engine settings every store relies on.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&config)
}

/// A linker with the host's imports (`host-log` and `input`).
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    Plugin::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Instantiates `component` once, with default limits, and asks for its identity.
pub fn plugin_info(
    engine: &Engine,
    linker: &Linker<StoreState>,
    component: &Component,
) -> wasmtime::Result<PluginInfo> {
    let limits = Limits::default();
    let mut store = Store::new(engine, StoreState::new(limits.memory_bytes, "(plugin-info)".into()));
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(limits.deadline_ticks());
    store.epoch_deadline_trap();
    let plugin = Plugin::instantiate(&mut store, component, linker)?;
    plugin.trailwatch_plugin_meta().call_info(&mut store)
}

impl PluginRuntime {
    /// Loads the newest compatible plugin `search` finds. Returns the runtime and the plugins
    /// that were passed over, with why.
    pub fn from_search(search: &PluginSearch, cache: &CompileCache, limits: Limits) -> anyhow::Result<(Self, Vec<Rejected>)> {
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
        let (plugin, rejected) =
            loader::load_newest(&self.engine, &self.linker, search, cache).map_err(|e: LoadError| anyhow::anyhow!(e))?;
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
