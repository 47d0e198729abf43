//! The store of one plugin instance: its data (memory limiter, the input it reads, what it
//! logged), the host side of the contract's imports, and the engine and linker every store uses.
//! Shared by `loader` (which instantiates a plugin once to ask its identity) and `file` (which
//! reads files), so that neither depends on the other.

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use super::bindings::types::{LogLevel, PluginInfo};
use super::bindings::Plugin;
use super::limits::{Limits, MemoryLimiter, TICK};

/// Plugin log messages kept per file (the rest are counted, not kept).
const MAX_PLUGIN_MESSAGES: usize = 32;
/// Longest plugin log message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Largest chunk handed to the plugin per `input.read`.
const MAX_READ_CHUNK: u32 = 1 << 20;

/// The data of one plugin store.
pub struct StoreState {
    pub(super) limiter: MemoryLimiter,
    /// The stored bytes of the file this store reads.
    pub(super) input: Option<Box<dyn std::io::Read + Send>>,
    /// Error-level messages from the plugin.
    pub(super) errors: Vec<String>,
    /// The plugin's panic message, sent just before its trap.
    pub(super) panic: Option<String>,
    pub(super) dropped_messages: u64,
    /// The object being read, for log context.
    pub(super) key: String,
    /// When the current call into the plugin started, and the plugin time it may use.
    pub(super) call_started: Instant,
    pub(super) call_budget: Duration,
    /// Time spent in `input.read` (a slow download) during the current call: the host's time.
    pub(super) input_waited: Duration,
    /// The error `input.read` gave, given again to any later read: an input that failed once
    /// stays failed.
    pub(super) input_failed: Option<String>,
}

impl StoreState {
    /// Readies the state of an instance that read a file to its end for the next file: nothing
    /// of the last file's input or messages is kept.
    pub(super) fn next_file(&mut self, key: String) {
        self.input = None;
        self.errors.clear();
        self.panic = None;
        self.dropped_messages = 0;
        self.key = key;
        self.input_waited = Duration::ZERO;
        self.input_failed = None;
    }

    pub(super) fn new(memory_bytes: u64, key: String) -> Self {
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
pub(super) fn set_deadline(store: &mut Store<StoreState>, budget: Duration) {
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

/// The engine settings every store relies on.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // `TRAILWATCH_PERFMAP=1` writes /tmp/perf-<pid>.map, which gives `perf` the plugin's function
    // names (for profiling; README, "Benchmark").
    if std::env::var_os("TRAILWATCH_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // A file gets an idle instance when one read a file to its end, a fresh one otherwise. From
    // a pool, a fresh instance's memory is a slot used before and reset with `memset` rather
    // than mapped anew and faulted in page by page: measured, the page faults and unmapping of a
    // fresh memory per file took about a fifth of `replay`'s time.
    let mut pooled = config.clone();
    pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool()));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        // The pool reserves its address space up front; where that is refused (a ulimit on
        // virtual memory), instances are allocated on demand as before.
        Err(e) => {
            tracing::warn!("plugin instances are allocated one by one (no pool: {e:#})");
            Engine::new(&config)
        }
    }
}

/// Plugin stores that may exist at once: two runtimes (during a plugin upgrade) of up to 256
/// readers each (`pipeline.max_concurrent_files`), and the stores that load plugins.
const POOL_STORES: u32 = 2 * 256 + 16;

/// Memory of an instance reset with `memset` when it is given back (beyond it, `madvise`). A
/// file's instance uses a few MiB: its read window, the decompressor and one rendered batch.
const KEEP_RESIDENT: usize = 2 << 20;

fn pool() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // A component instance of the plugin holds its main module and the adapter modules the
    // component encoding adds, each with a table.
    pool.total_component_instances(POOL_STORES)
        .total_core_instances(4 * POOL_STORES)
        .total_memories(POOL_STORES)
        .total_tables(4 * POOL_STORES)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10);
    pool
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
    // Through the one interface it needs: a plugin without an optional interface must load.
    let pre = linker.instantiate_pre(component)?;
    let meta = super::bindings::meta::GuestIndices::new(&pre)?;
    let instance = pre.instantiate(&mut store)?;
    meta.load(&mut store, &instance)?.call_info(&mut store)
}
