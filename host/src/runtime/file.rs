//! Reading one object through the plugin, in a limited store.
//!
//! A file gets an instance that read an earlier file to its end, when one is idle, or a fresh
//! one from the shared `InstancePre`. A trapped instance cannot be entered again and is never
//! reused: a trap costs that file only, and the report says which limit tripped (memory, time)
//! or what the plugin said when it panicked. Reusing instances saves the reset and the page
//! faults of a fresh memory per file (measured: about a tenth of `replay` over files of ~500
//! events; README, "Benchmark").

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::component::{InstancePre, Linker, ResourceAny};
use wasmtime::{Engine, Store};

use super::bindings::types::{DigestInfo, Event, FileError, FileKind, ObjectMeta, OpenOptions};
use super::bindings::{
    documents, integrity, observing, parser, scoring, scoring_memory, scoring_write_back, selection, trail_check,
};
use super::cache::CompileCache;
use super::in_place;
use super::limits::{EpochTicker, Limits};
use super::loader::{self, LoadError, LoadedPlugin, PluginSearch, Rejected};
use super::store::set_deadline;
pub use super::store::{engine, linker, plugin_info, StoreState};

/// Decompressed bytes asked of the plugin per `inflate-rest` call, when hashing a file's rest.
const INFLATE_CHUNK: u32 = 1 << 20;

/// Events handed to the caller per plugin call.
pub const BATCH: u32 = 512;
/// Events rendered per plugin call: ~2.8 KB of document each, so a batch of about 360 KB stays
/// in the core's cache while the plugin writes it and the host copies it out (512 were slower).
pub const DOCUMENTS_BATCH: u32 = 128;
/// Idle instances a runtime keeps for the next files (more readers than this get fresh ones).
const MAX_IDLE: usize = 16;
/// An instance whose memory grew past this is let go rather than kept: a file that needed much
/// memory must not leave a later file less room than a fresh instance would have.
const MAX_IDLE_MEMORY: u64 = 32 << 20;

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

/// Why a file could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashFailure {
    /// Its stored bytes could not all be read (the download failed): worth trying again.
    Input(String),
    /// Its content could not be decompressed to its end (a corrupt gzip stream, a limit).
    Content(String),
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
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The file's kind, once the plugin could tell.
    pub kind: Option<FileKind>,
    /// What a digest file says.
    pub digest: Option<DigestInfo>,
    /// Events handed to the consumer.
    pub events: u64,
    /// Records the plugin's selection left out (write-only mode).
    pub left_out: u64,
    /// When the file was read hashed: the SHA-256 of its whole decompressed content (lowercase
    /// hex), or why it could not be had (a corrupt gzip stream, a trap). Boxed: the report
    /// travels in every read's error too.
    pub sha256: Option<Box<Result<String, String>>>,
}

/// Which events of a file are read (write-only mode's rules are the plugin's; see the
/// contract's `selection` interface).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keep {
    /// Every event.
    #[default]
    All,
    /// Write-only mode.
    WriteOnly,
}

/// The plugin's exports the host reads files through, found once per plugin.
pub(super) struct Exports {
    pub(super) pre: InstancePre<StoreState>,
    parser: parser::GuestIndices,
    /// `None` for a plugin without the optional `documents` interface.
    documents: Option<documents::GuestIndices>,
    /// `None` for a plugin without the optional `trail-check` interface.
    trail_check: Option<trail_check::GuestIndices>,
    /// `None` for a plugin without the optional `selection` interface.
    selection: Option<selection::GuestIndices>,
    /// `None` for a plugin without the optional `integrity` interface.
    pub(super) integrity: Option<integrity::GuestIndices>,
    /// `None` for a plugin without the optional `hashing` interface.
    hashing: Option<in_place::Indices>,
    /// `None` for a plugin without the optional `scoring` interface.
    pub(super) scoring: Option<scoring::GuestIndices>,
    /// `None` for a plugin without the optional `scoring-memory` interface.
    pub(super) scoring_memory: Option<scoring_memory::GuestIndices>,
    /// `None` for a plugin without the optional `scoring-write-back` interface.
    pub(super) scoring_write_back: Option<scoring_write_back::GuestIndices>,
    /// `None` for a plugin without the optional `observing` interface.
    pub(super) observing: Option<observing::GuestIndices>,
}

impl Exports {
    fn new(linker: &Linker<StoreState>, plugin: &LoadedPlugin) -> anyhow::Result<Self> {
        let pre = linker.instantiate_pre(&plugin.component)?;
        let parser = parser::GuestIndices::new(&pre)?;
        let documents = documents::GuestIndices::new(&pre).ok();
        let trail_check = trail_check::GuestIndices::new(&pre).ok();
        let selection = selection::GuestIndices::new(&pre).ok();
        let integrity = integrity::GuestIndices::new(&pre).ok();
        let hashing = in_place::Indices::new(&pre)?;
        let scoring = scoring::GuestIndices::new(&pre).ok();
        let scoring_memory = scoring_memory::GuestIndices::new(&pre).ok();
        let scoring_write_back = scoring_write_back::GuestIndices::new(&pre).ok();
        let observing = observing::GuestIndices::new(&pre).ok();
        Ok(Exports {
            pre,
            parser,
            documents,
            trail_check,
            selection,
            integrity,
            hashing,
            scoring,
            scoring_memory,
            scoring_write_back,
            observing,
        })
    }
}

/// An instance with its exports, reading a file or idle between two.
struct Instance {
    store: Store<StoreState>,
    parser: parser::Guest,
    documents: Option<documents::Guest>,
    selection: Option<selection::Guest>,
    integrity: Option<integrity::Guest>,
    hashing: Option<in_place::Hashing>,
    observing: Option<observing::Guest>,
}

/// How a file is read: as rendered documents or typed events, and which events.
#[derive(Debug, Clone, Copy)]
struct How {
    rendered: bool,
    keep: Keep,
    /// Rendered batches come with their observations for scoring, where the plugin can.
    observe: bool,
}

/// One batch of a file, in the form the plugin gave it.
pub enum Batch<'a> {
    /// Typed events (`parser.next-batch`): the host renders their documents.
    Typed(&'a [Event]),
    /// Events rendered by the plugin (`documents.next-documents`), checked to be framed as
    /// their summaries say; with their observations when the file is observed
    /// (`observing.take`), one per document.
    Documents(documents::Batch, Option<observing::Observed>),
}

/// The engine, the chosen plugin and the limits: everything needed to read files.
pub struct PluginRuntime {
    pub(super) engine: Engine,
    linker: Linker<StoreState>,
    pub(super) exports: Exports,
    plugin: LoadedPlugin,
    pub(super) limits: Limits,
    /// Shared by the runtimes of one engine: a second ticker would halve every time limit.
    ticker: Arc<EpochTicker>,
    /// Instances that read a file to its end, for the next files.
    idle: Mutex<Vec<Instance>>,
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
        let plugin = loader::load_one(&engine, &linker, path, cache, None)
            .map_err(|reason| anyhow::anyhow!("plugin {}: {reason}", path.display()))?;
        Self::with_plugin(engine, &linker, plugin, limits)
    }

    fn with_plugin(
        engine: Engine,
        linker: &Linker<StoreState>,
        plugin: LoadedPlugin,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let exports = Exports::new(linker, &plugin)?;
        let ticker = Arc::new(EpochTicker::start(&engine)?);
        Ok(PluginRuntime {
            engine,
            linker: linker.clone(),
            exports,
            plugin,
            limits,
            ticker,
            idle: Mutex::new(Vec::new()),
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
        let exports = Exports::new(&self.linker, &plugin)?;
        let runtime = PluginRuntime {
            engine: self.engine.clone(),
            linker: self.linker.clone(),
            exports,
            plugin,
            limits: self.limits,
            ticker: self.ticker.clone(),
            idle: Mutex::new(Vec::new()),
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

    /// Instances kept idle for the next files (each read a file to its end without a trap).
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Checks a trail snapshot with the plugin's `trail-check` interface, in a fresh instance
    /// with the per-file limits. `Ok(None)` when the plugin lacks the interface.
    pub fn check_trail(&self, snapshot: &trail_check::Snapshot) -> Result<Option<trail_check::Report>, TrapReason> {
        let Some(indices) = &self.exports.trail_check else {
            return Ok(None);
        };
        let mut store = self.call_store("(trail check)");
        let result = self
            .exports
            .pre
            .instantiate(&mut store)
            .and_then(|instance| indices.load(&mut store, &instance))
            .and_then(|guest| guest.call_check(&mut store, snapshot));
        match result {
            Ok(report) => Ok(Some(report)),
            Err(e) => Err(self.trap_reason(&store, e)),
        }
    }

    /// A store for one call that reads no file (a verdict), with the per-file limits; `what`
    /// names it in the plugin's log lines.
    pub(super) fn call_store(&self, what: &str) -> Store<StoreState> {
        let mut store = Store::new(&self.engine, StoreState::new(self.limits.memory_bytes, what.to_owned()));
        store.limiter(|s| &mut s.limiter);
        set_deadline(&mut store, self.limits.time_per_file);
        store
    }

    /// Whether the plugin decides which events write-only mode keeps (the optional `selection`
    /// interface). Without it, the caller drops read-only events itself.
    pub fn selects(&self) -> bool {
        self.exports.selection.is_some()
    }

    /// Whether the plugin renders documents itself (the optional `documents` interface).
    pub fn renders_documents(&self) -> bool {
        self.exports.documents.is_some()
    }

    /// Reads one object through the plugin as typed events. `on_batch` gets the events in order;
    /// events handed over before a failure stay handed over (nothing already read is lost).
    pub fn read_file(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        mut on_batch: impl FnMut(&[Event]) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        let how = How {
            rendered: false,
            keep: Keep::All,
            observe: false,
        };
        self.read(input, meta, how, false, |batch| match batch {
            Batch::Typed(events) => on_batch(events),
            Batch::Documents(..) => unreachable!("documents were not asked for"),
        })
    }

    /// Reads one object through the plugin, as rendered documents when the plugin can render
    /// them and as typed events otherwise; like [`read_file`](Self::read_file) otherwise.
    pub fn read_batches(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        self.read(input, meta, self.how(Keep::All, false), false, on_batch)
    }

    fn how(&self, keep: Keep, observe: bool) -> How {
        How {
            rendered: self.renders_documents(),
            keep,
            observe,
        }
    }

    /// Whether the plugin hands over the observations scoring needs with its rendered batches
    /// (the optional `observing` interface, with `documents`).
    pub fn observes(&self) -> bool {
        self.exports.observing.is_some() && self.renders_documents()
    }

    /// [`read_batches`](Self::read_batches) keeping only what `keep` keeps, when the plugin
    /// decides that (see [`selects`](Self::selects)); every event otherwise. Event indexes stay
    /// those of the file: a left-out record leaves a gap, counted in `FileReport::left_out`.
    /// With `observe`, rendered batches come with their observations where the plugin can
    /// (see [`observes`](Self::observes)).
    pub fn read_batches_keeping(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        keep: Keep,
        observe: bool,
        on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        self.read(input, meta, self.how(keep, observe), false, on_batch)
    }

    /// [`read_batches_keeping`](Self::read_batches_keeping) that also hashes the file's whole
    /// decompressed content for log-file integrity validation (`FileReport::sha256`), when the
    /// plugin has the `integrity` interface (see [`validates`](Self::validates)). The plugin
    /// hands over the bytes it decompressed after each batch and the host hashes them (SHA-256
    /// runs natively, with the CPU's SHA instructions, several times faster than in the sandbox);
    /// a file whose reading stopped early is decompressed to its end for the hash.
    pub fn read_batches_hashed(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        keep: Keep,
        observe: bool,
        on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        let hash = self.validates();
        self.read(input, meta, self.how(keep, observe), hash, on_batch)
    }

    /// The SHA-256 of a stored object's decompressed content (lowercase hex), read through the
    /// plugin (its events are read and dropped).
    pub fn hash_file(&self, input: Box<dyn std::io::Read + Send>, meta: &ObjectMeta) -> Result<String, HashFailure> {
        if !self.validates() {
            return Err(HashFailure::Content("the plugin has no integrity interface".into()));
        }
        let result = self.read(input, meta, self.how(Keep::All, false), true, |_| Ok(()));
        let report = match result {
            Ok(report) => report,
            Err((_, FileFailure::Output(e))) => return Err(HashFailure::Content(format!("{e:#}"))),
            Err((_, FileFailure::Input(e @ FileError::ReadFailed(_)))) => {
                return Err(HashFailure::Input(describe_file_error(&e)))
            }
            Err((report, FileFailure::Input(e))) => match report.sha256 {
                Some(_) => report,
                None => return Err(HashFailure::Content(describe_file_error(&e))),
            },
            Err((_, FileFailure::Trap(reason))) => return Err(HashFailure::Content(reason.to_string())),
        };
        match report.sha256.map(|r| *r) {
            Some(Ok(sha256)) => Ok(sha256),
            // Its stored bytes could not all be had: the download, not the file.
            Some(Err(why)) if why.starts_with("could not be read") => Err(HashFailure::Input(why)),
            Some(Err(why)) => Err(HashFailure::Content(why)),
            None => Err(HashFailure::Content("not hashed".into())),
        }
    }

    /// Whether the plugin can validate log files (the optional `integrity` interface).
    pub fn validates(&self) -> bool {
        self.exports.integrity.is_some()
    }

    fn read(
        &self,
        input: Box<dyn std::io::Read + Send>,
        meta: &ObjectMeta,
        how: How,
        hash: bool,
        on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> Result<FileReport, (FileReport, FileFailure)> {
        let started = Instant::now();
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut instance = match idle {
            Some(mut instance) => {
                instance.store.data_mut().next_file(meta.key.clone());
                instance
            }
            None => match self.fresh_instance(&meta.key) {
                Ok(instance) => instance,
                Err(reason) => return Err((FileReport::default(), FileFailure::Trap(reason))),
            },
        };
        instance.store.data_mut().input = Some(input);
        let (result, handle) = self.read_with(&mut instance, started, meta, how, hash, on_batch);
        // An instance goes back idle only when the file ended as the plugin meant it to (its
        // end, or a bad file) and its log file was dropped in the guest. After a trap it cannot
        // be entered again; after an output failure the file stopped half way.
        let clean = match &result {
            Ok(_) | Err((_, FileFailure::Input(_))) => true,
            Err((_, FileFailure::Trap(_) | FileFailure::Output(_))) => false,
        };
        if clean {
            let dropped = match handle {
                Some(handle) => {
                    set_deadline(&mut instance.store, self.limits.time_per_file);
                    handle.resource_drop(&mut instance.store).is_ok()
                }
                None => true,
            };
            let state = instance.store.data_mut();
            state.input = None;
            if dropped && state.limiter.granted <= MAX_IDLE_MEMORY {
                if let Ok(mut idle) = self.idle.lock() {
                    if idle.len() < MAX_IDLE {
                        idle.push(instance);
                    }
                }
            }
        }
        result
    }

    /// A new instance of the plugin for the file `key`, with the memory limit and the whole time
    /// budget.
    fn fresh_instance(&self, key: &str) -> Result<Instance, TrapReason> {
        let mut store = Store::new(&self.engine, StoreState::new(self.limits.memory_bytes, key.to_owned()));
        store.limiter(|s| &mut s.limiter);
        set_deadline(&mut store, self.limits.time_per_file);
        let loaded = self.exports.pre.instantiate(&mut store).and_then(|instance| {
            let parser = self.exports.parser.load(&mut store, &instance)?;
            let documents = match &self.exports.documents {
                Some(d) => Some(d.load(&mut store, &instance)?),
                None => None,
            };
            let selection = match &self.exports.selection {
                Some(s) => Some(s.load(&mut store, &instance)?),
                None => None,
            };
            let integrity = match &self.exports.integrity {
                Some(i) => Some(i.load(&mut store, &instance)?),
                None => None,
            };
            let hashing = match &self.exports.hashing {
                Some(h) => Some(h.load(&mut store, &instance)?),
                None => None,
            };
            let observing = match &self.exports.observing {
                Some(o) => Some(o.load(&mut store, &instance)?),
                None => None,
            };
            Ok((parser, documents, selection, integrity, hashing, observing))
        });
        match loaded {
            Ok((parser, documents, selection, integrity, hashing, observing)) => Ok(Instance {
                store,
                parser,
                documents,
                selection,
                integrity,
                hashing,
                observing,
            }),
            Err(e) => Err(self.trap_reason(&store, e)),
        }
    }

    /// Reads one file with `instance`. Gives back the file's handle in the guest, when it was
    /// opened, for the caller to drop.
    fn read_with(
        &self,
        instance: &mut Instance,
        started: Instant,
        meta: &ObjectMeta,
        how: How,
        hash: bool,
        on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> (Result<FileReport, (FileReport, FileFailure)>, Option<ResourceAny>) {
        let mut hasher = hash.then(Sha256::new);
        let (mut result, handle) = self.read_open(instance, started, meta, how, &mut hasher, on_batch);
        let keep = how.keep;
        // The rest of a file whose reading stopped early (or its last bytes), for the hash. A
        // trap leaves the instance unusable, and an output failure means the file is read again.
        let finish = matches!(&result, Ok(_) | Err((_, FileFailure::Input(_))));
        if let (Some(mut hasher), Some(integrity), Some(handle), true) =
            (hasher, instance.integrity.as_ref(), handle, finish)
        {
            let store = &mut instance.store;
            // One time budget for the whole rest, however many chunks it takes.
            set_deadline(store, self.limits.time_per_file);
            let sha256 = loop {
                match integrity.call_inflate_rest(&mut *store, handle, INFLATE_CHUNK) {
                    Ok(Ok(bytes)) if bytes.is_empty() => break Ok(hex::encode(hasher.finalize())),
                    Ok(Ok(bytes)) => hasher.update(&bytes),
                    Ok(Err(e)) => break Err(describe_file_error(&e)),
                    Err(e) => break Err(self.trap_reason(store, e).to_string()),
                }
            };
            match &mut result {
                Ok(report) | Err((report, _)) => report.sha256 = Some(Box::new(sha256)),
            }
        }
        // What the selection left out, once per file, whatever the ending.
        let selection = instance.selection.as_ref().filter(|_| keep != Keep::All);
        if let (Some(selection), Some(handle)) = (selection, handle) {
            let store = &mut instance.store;
            set_deadline(store, self.limits.time_per_file);
            if let Ok(n) = selection.call_left_out(&mut *store, handle) {
                match &mut result {
                    Ok(report) | Err((report, _)) => report.left_out = n,
                }
            }
        }
        (result, handle)
    }

    /// Opens the file (selected, when `keep` asks and the plugin can) and reads it to its end
    /// or its first failure.
    fn read_open(
        &self,
        instance: &mut Instance,
        started: Instant,
        meta: &ObjectMeta,
        how: How,
        hasher: &mut Option<Sha256>,
        mut on_batch: impl FnMut(Batch<'_>) -> anyhow::Result<()>,
    ) -> (Result<FileReport, (FileReport, FileFailure)>, Option<ResourceAny>) {
        let mut report = FileReport::default();
        let Instance {
            store,
            parser,
            documents,
            selection,
            integrity,
            hashing,
            observing,
        } = instance;
        let integrity = integrity.as_ref().filter(|_| hasher.is_some());
        // A hashed file is read in steps where the plugin can: its text then never piles up in
        // the sandbox between two kept events.
        let hashing = hashing.as_ref().filter(|_| integrity.is_some());
        let How {
            rendered,
            keep,
            observe,
        } = how;
        let documents = documents.as_ref().filter(|_| rendered);
        let observing = observing.as_ref().filter(|_| observe && documents.is_some());
        set_deadline(store, self.limits.time_per_file.saturating_sub(started.elapsed()));
        let log_file = parser.log_file();
        let options = OpenOptions {
            max_decompressed_bytes: self.limits.max_decompressed_bytes,
            max_record_bytes: self.limits.max_record_bytes,
            max_depth: self.limits.max_depth,
        };
        let selected = selection.as_ref().filter(|_| keep != Keep::All);
        let opened = match (integrity, selected) {
            (Some(integrity), _) => {
                let keep = match selected {
                    Some(_) => selection::Keep::WriteOnly,
                    None => selection::Keep::All,
                };
                integrity.call_open_hashed(&mut *store, meta, options, keep)
            }
            (None, Some(selection)) => {
                selection.call_open_selected(&mut *store, meta, options, selection::Keep::WriteOnly)
            }
            (None, None) => log_file.call_open(&mut *store, meta, options),
        };
        let handle = match opened {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return (Err((report, FileFailure::Input(e))), None),
            Err(e) => return (Err((report, FileFailure::Trap(self.trap_reason(store, e)))), None),
        };
        let calls = (|| -> wasmtime::Result<()> {
            report.kind = Some(log_file.call_kind(&mut *store, handle)?);
            report.digest = log_file.call_digest(&mut *store, handle)?;
            if let Some(o) = observing {
                o.call_observe(&mut *store, handle)?;
            }
            Ok(())
        })();
        if let Err(e) = calls {
            return (
                Err((report, FileFailure::Trap(self.trap_reason(store, e)))),
                Some(handle),
            );
        }
        // The time limit is on the plugin's own time: neither the consumer of each batch (an
        // output that pushes back, an ordered writer waiting for an earlier file) nor the host
        // fetching the input (a slow download) may eat into it. So the deadline is set again
        // before each call to what the plugin has left, and input time is given back.
        let mut used = started.elapsed().saturating_sub(store.data().input_waited);
        loop {
            let left = self.limits.time_per_file.saturating_sub(used);
            set_deadline(store, left);
            let call_started = Instant::now();
            let result = match (hashing, documents, hasher.as_mut()) {
                (Some(h), Some(_), Some(hasher)) => next_rendered_step(h, store, handle, hasher),
                (Some(h), None, Some(hasher)) => h.next_typed_step(&mut *store, handle, BATCH, hasher).map(|r| {
                    r.map(|step| Step {
                        fetched: Fetched::Typed(step.events),
                        hashed: true,
                        ended: step.ended,
                    })
                }),
                (_, Some(d), _) => next_documents(d, store, handle),
                (_, None, _) => log_file
                    .call_next_batch(&mut *store, handle, BATCH)
                    .map(|r| r.map(|events| Step::batch(Fetched::Typed(events)))),
            };
            let observed = match (observing, &result) {
                (
                    Some(o),
                    Ok(Ok(Step {
                        fetched: Fetched::Documents(d),
                        ..
                    })),
                ) if !d.events.is_empty() => match o.call_take(&mut *store, handle) {
                    Ok(observed) => Some(observed),
                    Err(e) => {
                        return (
                            Err((report, FileFailure::Trap(self.trap_reason(store, e)))),
                            Some(handle),
                        )
                    }
                },
                _ => None,
            };
            // After a trap the instance cannot be entered again: the trap is what is reported.
            if let (Some(hasher), Some(integrity), Ok(Ok(step))) = (hasher.as_mut(), integrity, &result) {
                if !step.hashed {
                    match integrity.call_take_inflated(&mut *store, handle) {
                        Ok(bytes) => hasher.update(&bytes),
                        Err(e) => {
                            return (
                                Err((report, FileFailure::Trap(self.trap_reason(store, e)))),
                                Some(handle),
                            )
                        }
                    }
                }
            }
            used += call_started.elapsed().saturating_sub(store.data().input_waited);
            let step = match result {
                Ok(Ok(step)) => step,
                Ok(Err(e)) => return (Err((report, FileFailure::Input(e))), Some(handle)),
                Err(e) => {
                    return (
                        Err((report, FileFailure::Trap(self.trap_reason(store, e)))),
                        Some(handle),
                    )
                }
            };
            let (events, handed) = match step.fetched {
                Fetched::Typed(events) if events.is_empty() => (0, Ok(())),
                Fetched::Typed(events) => (events.len(), on_batch(Batch::Typed(&events))),
                Fetched::Documents(d) if d.events.is_empty() => (0, Ok(())),
                Fetched::Documents(d) => (d.events.len(), on_batch(Batch::Documents(d, observed))),
            };
            report.events += events as u64;
            if let Err(e) = handed {
                return (Err((report, FileFailure::Output(e))), Some(handle));
            }
            if step.ended {
                return (Ok(report), Some(handle));
            }
        }
    }

    /// Works out which limit a trap came from, or what the plugin said before it.
    pub(super) fn trap_reason(&self, store: &Store<StoreState>, error: wasmtime::Error) -> TrapReason {
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

/// A batch as it came from the plugin.
enum Fetched {
    Typed(Vec<Event>),
    Documents(documents::Batch),
}

/// One call's worth of a file: its events, whether the decompressed bytes read with them were
/// hashed with the call (a `hashing` step), and whether the file has ended.
struct Step {
    fetched: Fetched,
    hashed: bool,
    ended: bool,
}

impl Step {
    /// A batch of `next-batch` or `next-documents`: empty only at the file's end.
    fn batch(fetched: Fetched) -> Step {
        let ended = match &fetched {
            Fetched::Typed(events) => events.is_empty(),
            Fetched::Documents(d) => d.events.is_empty(),
        };
        Step {
            fetched,
            hashed: false,
            ended,
        }
    }
}

/// The next rendered batch, checked: a plugin that broke the framing its summaries describe
/// (offsets out of order or past the text, lines that do not end where they say, text that is not
/// UTF-8) would hand every sink a corrupt stream, so that is a fault of the plugin, not of the file.
fn next_documents(
    documents: &documents::Guest,
    store: &mut Store<StoreState>,
    handle: ResourceAny,
) -> wasmtime::Result<Result<Step, FileError>> {
    match documents.call_next_documents(&mut *store, handle, DOCUMENTS_BATCH)? {
        Ok(batch) => Ok(Ok(Step::batch(Fetched::Documents(checked(batch)?)))),
        Err(e) => Ok(Err(e)),
    }
}

/// The next rendered step of a hashed file, its bytes fed to `hasher` and its batch checked as
/// `next_documents` checks one.
fn next_rendered_step(
    hashing: &in_place::Hashing,
    store: &mut Store<StoreState>,
    handle: ResourceAny,
    hasher: &mut Sha256,
) -> wasmtime::Result<Result<Step, FileError>> {
    match hashing.next_rendered_step(&mut *store, handle, DOCUMENTS_BATCH, hasher)? {
        Ok(step) => Ok(Ok(Step {
            fetched: Fetched::Documents(checked(step.documents)?),
            hashed: true,
            ended: step.ended,
        })),
        Err(e) => Ok(Err(e)),
    }
}

/// `batch` when it is framed as its summaries say; a fault of the plugin otherwise.
fn checked(batch: documents::Batch) -> wasmtime::Result<documents::Batch> {
    if let Err(problem) = check_framing(&batch) {
        wasmtime::bail!("the plugin's rendered batch is malformed: {problem}");
    }
    Ok(batch)
}

/// Whether the summaries of `batch` describe its text: consecutive lines, each ending in its one
/// newline, heads inside their lines, metrics that exist, and UTF-8 throughout.
pub fn check_framing(batch: &documents::Batch) -> Result<(), String> {
    let text = &batch.text;
    std::str::from_utf8(text).map_err(|e| format!("the text is not UTF-8: {e}"))?;
    let mut start = 0usize;
    for (i, s) in batch.events.iter().enumerate() {
        let (head, end) = (s.head_end as usize, s.end as usize);
        if !(start < head && head < end && end <= text.len()) {
            return Err(format!(
                "document {i} has offsets {head}/{end} after {start} in {} bytes",
                text.len()
            ));
        }
        if s.metric as usize >= batch.metrics.len() {
            return Err(format!(
                "document {i} names metric {} of {}",
                s.metric,
                batch.metrics.len()
            ));
        }
        if memchr::memchr(b'\n', &text[start..end]) != Some(end - start - 1) {
            return Err(format!("document {i} is not one line ending at byte {end}"));
        }
        start = end;
    }
    if start != text.len() {
        return Err(format!("{} bytes follow the last document", text.len() - start));
    }
    Ok(())
}
