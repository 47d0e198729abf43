//! Hard limits on every plugin store: memory and time.
//!
//! Memory: a `ResourceLimiter` refuses growth past the cap and records it, so a trap can be
//! reported as "memory limit" rather than a bare trap. Time: a ticker thread advances the engine's
//! epoch every `TICK`; each store gets a deadline in ticks and traps when it passes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};

/// How often the engine's epoch advances.
pub const TICK: Duration = Duration::from_millis(10);

/// Limits applied to every plugin store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the plugin's linear memory, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock budget for reading one file.
    pub time_per_file: Duration,
    /// Decompressed bytes one file may yield before it is refused as too large.
    pub max_decompressed_bytes: u64,
    /// A record larger than this is skipped and flagged.
    pub max_record_bytes: u32,
    /// A record nested deeper than this is flagged.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            time_per_file: Duration::from_secs(120),
            max_decompressed_bytes: 4 << 30,
            max_record_bytes: 16 << 20,
            max_depth: 64,
        }
    }
}

impl Limits {
    /// The time budget in epoch ticks (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        (self.time_per_file.as_millis() / TICK.as_millis()).max(1) as u64
    }
}

/// The memory side of the limits, kept in the store's data.
#[derive(Debug)]
pub struct MemoryLimiter {
    cap: u64,
    /// The size a refused growth asked for, when one was refused.
    pub refused: Option<u64>,
    /// The largest memory size granted so far.
    pub granted: u64,
}

impl MemoryLimiter {
    /// A limiter that refuses memory beyond `cap` bytes.
    pub fn new(cap: u64) -> Self {
        MemoryLimiter {
            cap,
            refused: None,
            granted: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.cap {
            self.refused = Some(desired as u64);
            // An error (not `Ok(false)`) traps at once instead of letting the guest see -1 and
            // carry on; an allocator that handles failure would just try again.
            wasmtime::bail!(
                "plugin memory limit of {} bytes reached (asked for {desired})",
                self.cap
            );
        }
        self.granted = self.granted.max(desired as u64);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Advances an engine's epoch until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`'s epoch every `TICK`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("trailwatch-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panicked ticker thread has nothing left to clean up.
            t.join().ok();
        }
    }
}
