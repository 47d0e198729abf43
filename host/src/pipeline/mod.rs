//! The pipeline: work from a source, read on every core, enriched, fanned out to every sink,
//! acknowledged by all of them, then committed.
//!
//! ```text
//! source ──WorkItem──▶ reader (a pool: fetch, plugin, enrich, render) ──batches──▶ writer
//!    ▲                                                                               │
//!    │ finalize (deletion)                              every sink's queue ◀──────────┘
//!    └──── commit (checkpoint) ◀── acknowledgements from every sink ◀── sink runners
//! ```
//!
//! # Layout
//! - `work`: what a source hands over (an object and how to fetch it).
//! - `reader`: one file through the plugin on a blocking thread, rendered batch by batch.
//! - `dedup`: events an earlier file delivered within a window, left out (by `eventID`).
//! - `enrich`: the delivery times the host adds to each event.
//! - `writer`: takes each file's batches in submission order and sends them to the sinks.
//! - `mod.rs`: [`Pipeline`] (what lives across cycles) and [`Cycle`] (one pass of a source):
//!   submission with bounded concurrency, the commit of acknowledged files, the report.
//!
//! Order: files are read in parallel, but the writer hands them to the sinks in the order they
//! were submitted, each file's events in record order, so the output is deterministic. Files are
//! committed in the same order, each once every sink it was sent to acknowledged it.
//!
//! Memory is bounded: at most `max_concurrent_files + max_prefetch` files are fetched or read at
//! once (each holding at most one whole object of up to 8 MiB, larger ones are streamed), each
//! queues at most `QUEUE_PER_FILE` rendered batches for the writer, and the batches handed to
//! sinks and not yet acknowledged by all of them hold at most `max_inflight_bytes`.

pub mod dedup;
pub mod enrich;
pub mod reader;
pub mod work;
mod writer;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::aws::AwsError;
use crate::metrics::Metrics;
use crate::runtime::bindings::types::ObjectMeta;
use crate::runtime::PluginRuntime;
use crate::score::state::{ScoreState, Write as ScoreWrite};
use crate::score::{FileScoring, Scorer};
use crate::sink::runner::{self, SinkEvent, SHUTDOWN_GRACE};
use crate::sink::{Sink, SinkError};
use crate::state::checkpoint::{Change, Checkpoint, CheckpointError, CheckpointStore, PendingDelete};
use enrich::FileContext;
use reader::{FileMsg, FileStats, ReadEnd, ReadJob, ReadResult};
use work::{InputError, Retry, WorkItem};

/// Rendered batches a file may queue ahead of the writer.
pub const QUEUE_PER_FILE: usize = 4;
/// Messages a sink's queue holds.
const SINK_QUEUE: usize = 16;
/// Cycles a file that trips the plugin is tried before it is quarantined.
pub const MAX_ATTEMPTS: u32 = 3;

pub use crate::clock::{Clock, SystemClock};

/// How the pipeline reads.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Files read through the plugin at once (the reader pool: one per core by default).
    pub max_concurrent_files: usize,
    /// Files fetched ahead of their reading, beyond those being read.
    pub max_prefetch: usize,
    /// Cap on event bytes handed to sinks and not yet acknowledged by all of them.
    pub max_inflight_bytes: usize,
    /// Drop read-only events at ingestion (write-only mode).
    pub drop_read_only: bool,
    /// Events delivered later than this are flagged as delayed.
    pub delayed_after: Duration,
    /// Leave out events an earlier file delivered within this window, remembering at most this
    /// many ids (`None`: no de-duplication).
    pub dedup: Option<(Duration, usize)>,
    /// Hash each log file's decompressed content for integrity validation, recorded in the
    /// checkpoint with the file.
    pub hash_files: bool,
    /// Look up each event's source network and country (`None`: no databases configured).
    pub networks: Option<Arc<crate::networks::Networks>>,
    /// Score each event against its identity's pattern of life (`None`: no scoring).
    pub scoring: Option<crate::score::Scoring>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_concurrent_files: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_prefetch: 4,
            max_inflight_bytes: 64 << 20,
            drop_read_only: false,
            delayed_after: Duration::from_secs(900),
            dedup: None,
            hash_files: false,
            networks: None,
            scoring: None,
        }
    }
}

/// The checkpoint and the changes not yet recorded in its store, with what scoring learned
/// from the files committed since.
pub struct Ledger {
    store: Option<CheckpointStore>,
    checkpoint: Checkpoint,
    unrecorded: Vec<Change>,
    scoring: Option<Arc<Mutex<ScoreState>>>,
    /// The report's entries (gathered from the scores), committed alike.
    report: Option<Arc<Mutex<ScoreState>>>,
    /// Per file: scoring's writes and the report's.
    scoring_unrecorded: Vec<(u64, Vec<ScoreWrite>, Vec<ScoreWrite>)>,
}

impl Ledger {
    /// The checkpoint of `bucket` in `store`.
    pub fn open(mut store: CheckpointStore, bucket: &str) -> Result<Self, CheckpointError> {
        let checkpoint = store.load(bucket)?;
        Ok(Ledger {
            store: Some(store),
            checkpoint,
            unrecorded: Vec::new(),
            scoring: None,
            report: None,
            scoring_unrecorded: Vec::new(),
        })
    }

    /// A checkpoint that lives in memory only (`replay`).
    pub fn in_memory() -> Self {
        Ledger {
            store: None,
            checkpoint: Checkpoint::default(),
            unrecorded: Vec::new(),
            scoring: None,
            report: None,
            scoring_unrecorded: Vec::new(),
        }
    }

    /// Commits what scoring learned to `state` with the files it learned it from.
    pub fn with_scoring(mut self, state: Arc<Mutex<ScoreState>>) -> Self {
        self.scoring = Some(state);
        self
    }

    /// Notes what file `file` taught scoring (and added to the report), recorded at the next
    /// `commit`.
    pub fn learned(&mut self, file: u64, writes: Vec<ScoreWrite>, report: Vec<ScoreWrite>) {
        if self.scoring.is_some() {
            self.scoring_unrecorded.push((file, writes, report));
        }
    }

    /// Forgets what files not committed taught scoring (a cycle ended without them); whether
    /// there was any.
    ///
    /// Files handed over whose commit failed are not among them: their checkpoint changes wait
    /// for the next commit, and what they taught waits with them (staged again, so that the
    /// files scored meanwhile see it).
    pub fn forget_unrecorded_scoring(&mut self) -> bool {
        let waiting = &self.scoring_unrecorded;
        if let Some(report) = &self.report {
            let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
            report.abandon();
            for (file, _, entries) in waiting {
                report.restage(*file, entries);
            }
        }
        match &self.scoring {
            Some(state) => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                let any = state.abandon();
                for (file, writes, _) in waiting {
                    state.restage(*file, writes);
                }
                any
            }
            None => false,
        }
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Makes a change, recorded at the next `commit`. The checkpoint changes only this way, so
    /// that what is recorded is what is in memory.
    pub fn change(&mut self, change: Change) {
        change.apply(&mut self.checkpoint);
        if self.store.is_some() {
            self.unrecorded.push(change);
        }
    }

    /// Records the changes made since the last commit durably (nothing when there are none).
    ///
    /// With a checkpoint store, the changes and what scoring learned from the same files commit
    /// in one transaction: after a crash, no event is counted twice in a baseline nor missed.
    pub fn commit(&mut self) -> Result<(), CheckpointError> {
        match (self.store.as_mut(), &self.scoring) {
            (Some(store), _) => {
                let writes: Vec<ScoreWrite> = self
                    .scoring_unrecorded
                    .iter()
                    .flat_map(|(_, w, _)| w.iter().cloned())
                    .collect();
                let report: Vec<ScoreWrite> = self
                    .scoring_unrecorded
                    .iter()
                    .flat_map(|(_, _, r)| r.iter().cloned())
                    .collect();
                // On failure nothing was written: all stay to be recorded at the next commit.
                if !self.unrecorded.is_empty() {
                    tracing::debug!(target: crate::STAGE, changes = self.unrecorded.len(), "committing");
                }
                store.record_with(&self.checkpoint, &self.unrecorded, &writes, &report)?;
            }
            (None, Some(state)) => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                while !self.scoring_unrecorded.is_empty() {
                    let (file, writes, report) = self.scoring_unrecorded.remove(0);
                    if let Err(e) = state.commit_alone(file, writes.clone()) {
                        self.scoring_unrecorded.insert(0, (file, writes, report));
                        return Err(e.into());
                    }
                    if let Some(r) = &self.report {
                        let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
                        // Scoring's part is committed: the report's alone is tried again.
                        if let Err(e) = r.commit_alone(file, report.clone()) {
                            self.scoring_unrecorded.insert(0, (file, Vec::new(), report));
                            return Err(e.into());
                        }
                    }
                }
                self.unrecorded.clear();
                return Ok(());
            }
            (None, None) => {}
        }
        let learned = std::mem::take(&mut self.scoring_unrecorded);
        self.unrecorded.clear();
        if let Some(state) = &self.scoring {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            let mut report = self
                .report
                .as_ref()
                .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()));
            for (file, writes, entries) in learned {
                state.committed(file, writes);
                if let Some(r) = report.as_mut() {
                    r.committed(file, entries);
                }
            }
        }
        Ok(())
    }

    /// The checkpoint store, when there is one (its state store holds scoring's entries too).
    pub fn store(&self) -> Option<&CheckpointStore> {
        self.store.as_ref()
    }
}

/// What one cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CycleReport {
    /// Files read.
    pub files: u64,
    /// Events handed to the sinks and acknowledged.
    pub events: u64,
    /// Read-only events dropped (write-only mode).
    pub dropped_read_only: u64,
    /// Events of a file tried again that an earlier attempt had written, not written again.
    pub not_repeated: u64,
    /// Events an earlier file delivered within the de-duplication window, left out.
    pub duplicates: u64,
    /// Files found at the first poll with `start = "now"` and left unread.
    pub skipped_existing: u64,
    /// Files that could not be read, with why (their events before the failure were written).
    pub failed: Vec<(String, String)>,
    /// Files deleted.
    pub deleted: u64,
    /// Whether the cycle stopped early for a shutdown.
    pub interrupted: bool,
    /// Why deleting processed files failed, when it did.
    pub delete_error: Option<String>,
    /// Sinks that failed, with why; their files were not committed and are sent again.
    pub sink_errors: Vec<(String, String)>,
    /// Files read but not committed because a sink did not acknowledge them.
    pub not_acknowledged: u64,
    /// Anomalous events acknowledged.
    pub anomalies: u64,
    /// Incident documents acknowledged (opened, updated or closed).
    pub incidents: u64,
    /// Batches of events that went out without scores (scoring failed; the log says why).
    pub unscored_batches: u64,
}

/// Why a cycle stopped.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// AWS refused or failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A sink failed: nothing it did not acknowledge was committed.
    #[error("sink {sink} {error}")]
    Sink { sink: String, error: SinkError },
}

/// One file's record, for a caller that wants them all (`replay`'s summary).
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// Its key.
    pub key: String,
    /// Its size as stored.
    pub size: u64,
    /// How reading it ended.
    pub end: ReadEnd,
    /// What was read.
    pub stats: FileStats,
}

/// Everything that lives across cycles.
pub struct Pipeline {
    runtime: Arc<PluginRuntime>,
    settings: PipelineSettings,
    ledger: Ledger,
    sinks: Vec<Option<Box<dyn Sink>>>,
    names: Vec<String>,
    /// Files some sinks acknowledged in a cycle that did not commit them: sent to the others only.
    partial: HashMap<String, BTreeSet<usize>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    inflight: Arc<Semaphore>,
    next_file: u64,
    next_batch: u64,
    /// Called with every file's record as it is committed (replay's summary).
    on_file: Option<Box<dyn FnMut(FileRecord) + Send>>,
    /// Documents that are no file's events (the trail check's findings), for every sink at
    /// the start of the next cycle: NDJSON lines and the end offset of each.
    documents: Vec<(Vec<u8>, Vec<u32>)>,
    /// The ids delivered within the de-duplication window.
    dedup: Option<Arc<dedup::Dedup>>,
    /// What scoring learned, when events are scored.
    scoring_state: Option<Arc<Mutex<ScoreState>>>,
    report_state: Option<Arc<Mutex<ScoreState>>>,
    /// The scorer, between cycles (the writer has it during one).
    scorer: Option<Scorer>,
    /// Scoring holds its writes (`Pipeline::hold_scoring_writes`).
    hold_scoring_writes: bool,
}

impl Pipeline {
    /// A pipeline reading with `runtime` into `sinks`, committing to `ledger`.
    pub fn new(
        runtime: Arc<PluginRuntime>,
        settings: PipelineSettings,
        ledger: Ledger,
        sinks: Vec<Box<dyn Sink>>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let names = sinks.iter().map(|s| s.name().to_owned()).collect();
        let inflight = Arc::new(Semaphore::new(settings.max_inflight_bytes.max(1)));
        metrics.watch_inflight(inflight.clone(), settings.max_inflight_bytes.max(1));
        Pipeline {
            runtime,
            ledger,
            sinks: sinks.into_iter().map(Some).collect(),
            names,
            partial: HashMap::new(),
            metrics,
            clock,
            inflight,
            next_file: 0,
            next_batch: 0,
            on_file: None,
            documents: Vec::new(),
            dedup: settings
                .dedup
                .map(|(window, max)| Arc::new(dedup::Dedup::new(window, max))),
            settings,
            scoring_state: None,
            report_state: None,
            scorer: None,
            hold_scoring_writes: false,
        }
    }

    /// Has scoring hold what it learns and hand it to the state every few dozen files, before
    /// a sweep reads it, and when a cycle ends with every file committed, rather than with
    /// every file ([`Scorer::hold_writes`]). For `replay`, which keeps no checkpoint: what
    /// the state holds is then no longer what the files committed taught it, file by file, and
    /// a cycle that ends with files not committed drops what was held.
    pub fn hold_scoring_writes(&mut self) {
        self.hold_scoring_writes = true;
        if let Some(s) = &mut self.scorer {
            s.hold_writes();
        }
    }

    /// Scores events against `state` (with `settings.scoring`), committed through the ledger
    /// with their files, and keeps the report's entries beside it when `report` (gathering them
    /// costs about a tenth of scoring's time: not done for a replay that writes no report and
    /// keeps no state). A plugin without the `scoring` interface scores nothing (said once).
    pub fn score_with(&mut self, state: Arc<Mutex<ScoreState>>, report: bool) {
        if self.settings.scoring.is_none() {
            return;
        }
        if report {
            let entries = state.lock().unwrap_or_else(|p| p.into_inner()).report();
            match entries {
                Ok(r) => {
                    let r = Arc::new(Mutex::new(r));
                    self.ledger.report = Some(r.clone());
                    self.report_state = Some(r);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the report's entries cannot be kept; events are scored all the same")
                }
            }
        }
        self.ledger.scoring = Some(state.clone());
        self.scoring_state = Some(state);
        self.scorer = self.new_scorer();
    }

    /// The report's entries, when events are scored.
    pub fn report_state(&self) -> Option<&Arc<Mutex<ScoreState>>> {
        self.report_state.as_ref()
    }

    fn new_scorer(&self) -> Option<Scorer> {
        let (settings, state) = (self.settings.scoring.as_ref()?, self.scoring_state.as_ref()?);
        if !self.runtime.scores() {
            tracing::warn!(plugin = %self.runtime.plugin().path.display(), "the plugin in use does not score events (no trailwatch:plugin/scoring): events go out without scores");
            return None;
        }
        let mut scorer = Scorer::new(self.runtime.clone(), settings, state.clone(), self.report_state.clone());
        if self.hold_scoring_writes {
            scorer.hold_writes();
        }
        Some(scorer)
    }

    /// Whether events are scored (with the plugin in use).
    pub fn scores(&self) -> bool {
        self.scoring_state.is_some() && self.runtime.scores()
    }

    /// Calls `f` with every file's record as it is committed, in submission order.
    pub fn on_file(&mut self, f: impl FnMut(FileRecord) + Send + 'static) {
        self.on_file = Some(Box::new(f));
    }

    /// Sends NDJSON `lines` (each ending in a newline; `ends` the end offset of each) to every
    /// sink at the start of the next cycle, ahead of its files, through the same in-flight cap
    /// and queues. They belong to no file: nothing is committed for them, and a cycle that
    /// fails does not send them again (the trail check makes its findings again at the next
    /// start).
    pub fn queue_documents(&mut self, lines: Vec<u8>, ends: Vec<u32>) {
        if !ends.is_empty() {
            self.documents.push((lines, ends));
        }
    }

    /// Reads the next files with `runtime` (a plugin upgraded without a restart).
    pub fn set_runtime(&mut self, runtime: Arc<PluginRuntime>) {
        self.runtime = runtime;
        if self.scoring_state.is_some() {
            self.scorer = self.new_scorer();
        }
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        self.ledger.checkpoint()
    }

    /// The ledger, for a source's own changes between cycles (deletion).
    pub fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts a cycle; `shutdown` stops it between files. Fails when a sink was lost (its
    /// task panicked, or was left stuck at a shutdown): the process must restart.
    pub fn cycle(&mut self, shutdown: Arc<AtomicBool>) -> Result<Cycle<'_>, CycleError> {
        if let Some(i) = self.sinks.iter().position(Option::is_none) {
            return Err(CycleError::Sink {
                sink: self.names[i].clone(),
                error: SinkError::Io("the sink stopped unexpectedly; restart trailwatch".into()),
            });
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut sink_txs = Vec::new();
        let mut runners = Vec::new();
        for (i, sink) in self.sinks.iter_mut().enumerate() {
            let (tx, rx) = mpsc::channel(SINK_QUEUE);
            sink_txs.push(tx);
            let Some(sink) = sink.take() else { continue };
            runners.push(Some(tokio::spawn(runner::run(i, sink, rx, events_tx.clone()))));
        }
        drop(events_tx);
        let (slot_tx, slot_rx) = mpsc::unbounded_channel();
        for (bytes, ends) in self.documents.drain(..) {
            slot_tx.send(Slot::Documents { bytes, ends }).ok();
        }
        let (written_tx, written_rx) = mpsc::unbounded_channel();
        // A scorer lost with a writer that stopped unexpectedly is made again.
        if self.scorer.is_none() && self.scoring_state.is_some() {
            self.scorer = self.new_scorer();
        }
        let scorer = self.scorer.take();
        let observe = scorer.is_some();
        let writer = tokio::spawn(writer::run(
            slot_rx,
            sink_txs,
            written_tx,
            self.inflight.clone(),
            self.settings.max_inflight_bytes.max(1),
            self.next_batch,
            scorer,
        ));
        let readers = self.settings.max_concurrent_files.max(1);
        let n = self.sinks.len();
        Ok(Cycle {
            slots: Arc::new(Semaphore::new(readers + self.settings.max_prefetch)),
            cpus: Arc::new(Semaphore::new(readers)),
            slot_tx: Some(slot_tx),
            written_rx,
            events_rx,
            writer: Some(writer),
            runners,
            pending: VecDeque::new(),
            acked: vec![0; n],
            sink_failed: vec![None; n],
            report: CycleReport::default(),
            fatal: None,
            shutdown,
            observe,
            p: self,
        })
    }
}

/// A file or a source's marker, on its way to the commit.
pub enum Slot {
    /// A file being read; its batches come through `rx`.
    File {
        seq: u64,
        key: String,
        size: u64,
        targets: Vec<usize>,
        delete: Option<PendingDelete>,
        rx: mpsc::Receiver<FileMsg>,
        /// Held until the writer is done with the file: files read ahead of the writer are
        /// bounded by the slots, whatever the sinks do.
        permit: tokio::sync::OwnedSemaphorePermit,
    },
    /// Changes a source wants made once every file submitted before is settled.
    Marker(Box<dyn FnOnce(&Checkpoint) -> Vec<Change> + Send>),
    /// Lines for every sink that are no file's events ([`Pipeline::queue_documents`]).
    Documents { bytes: Vec<u8>, ends: Vec<u32> },
}

/// A slot the writer is done with.
pub enum Written {
    /// Every batch of the file was sent to its sinks.
    File {
        seq: u64,
        key: String,
        size: u64,
        targets: Vec<usize>,
        delete: Option<PendingDelete>,
        result: Box<ReadResult>,
        /// What scoring learned from it and counted, when it was scored.
        scoring: Option<FileScoring>,
    },
    /// As submitted.
    Marker(Box<dyn FnOnce(&Checkpoint) -> Vec<Change> + Send>),
    /// The file's bytes could not be had for a reason that stops the cycle.
    Fatal(AwsError),
}

/// One pass of a source through the pipeline.
pub struct Cycle<'p> {
    p: &'p mut Pipeline,
    slots: Arc<Semaphore>,
    cpus: Arc<Semaphore>,
    slot_tx: Option<mpsc::UnboundedSender<Slot>>,
    written_rx: mpsc::UnboundedReceiver<Written>,
    events_rx: mpsc::UnboundedReceiver<SinkEvent>,
    writer: Option<JoinHandle<(u64, Option<Scorer>)>>,
    runners: Vec<Option<JoinHandle<Box<dyn Sink>>>>,
    pending: VecDeque<Written>,
    acked: Vec<u64>,
    sink_failed: Vec<Option<SinkError>>,
    report: CycleReport,
    fatal: Option<AwsError>,
    shutdown: Arc<AtomicBool>,
    /// Whether this cycle's files are scored.
    observe: bool,
}

/// Resolves once `flag` is set (looked at every 50 ms).
pub async fn stopped(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `work`'s result, or `None` when a shutdown comes first: the request under way is dropped
/// (cancelled) rather than awaited, so that SIGTERM does not wait out a slow or stuck call.
/// Nothing is lost: what was not acknowledged is not in the checkpoint and is read again.
pub async fn unless_stopped<T>(flag: &AtomicBool, work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        done = work => Some(done),
        _ = stopped(flag) => None,
    }
}

impl Cycle<'_> {
    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        self.p.ledger.checkpoint()
    }

    /// The clock.
    pub fn now_ms(&self) -> i64 {
        self.p.clock.now_ms()
    }

    /// Makes a source's change at once (recorded at the next commit).
    pub fn change(&mut self, change: Change) {
        self.p.ledger.change(change);
    }

    /// The report so far, for a source's own counts.
    pub fn report(&mut self) -> &mut CycleReport {
        &mut self.report
    }

    /// Whether the cycle should stop taking work: a shutdown, refused credentials, or every sink
    /// failed. One failed sink does not stop the others: they go on getting every file (and the
    /// failed one gets them at a later cycle; none is committed before it has them).
    pub fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
            || self.fatal.is_some()
            || (!self.sink_failed.is_empty() && self.sink_failed.iter().all(Option::is_some))
    }

    /// Hands a file to the reader pool. Waits while the pool is full; commits what has been
    /// acknowledged meanwhile. Returns false when the cycle is stopping and took nothing.
    pub async fn submit(&mut self, item: WorkItem) -> Result<bool, CycleError> {
        self.settle().await?;
        if self.stopping() {
            self.report.interrupted |= self.shutdown.load(Ordering::Relaxed);
            return Ok(false);
        }
        let permit = loop {
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => break permit.expect("the slot pool stays open"),
                Some(event) = self.events_rx.recv() => self.on_sink_event(event),
                Some(written) = self.written_rx.recv() => self.pending.push_back(written),
                _ = stopped(&self.shutdown) => {
                    self.report.interrupted = true;
                    return Ok(false);
                }
            }
            self.commit_ready()?;
        };
        if self.stopping() {
            self.report.interrupted |= self.shutdown.load(Ordering::Relaxed);
            return Ok(false);
        }
        let p = &mut *self.p;
        p.next_file += 1;
        let seq = p.next_file;
        let done_by = p.partial.get(&item.key);
        let targets: Vec<usize> = (0..p.names.len())
            .filter(|k| done_by.is_none_or(|d| !d.contains(k)))
            .collect();
        let skip_below = p
            .ledger
            .checkpoint()
            .failed
            .get(&item.key)
            .map_or(0, |f| f.records_done);
        let (tx, rx) = mpsc::channel(QUEUE_PER_FILE);
        let delete = item.delete_due_ms.map(|due_ms| PendingDelete {
            due_ms,
            key: item.key.clone(),
        });
        self.slot_tx
            .as_ref()
            .expect("open until finish")
            .send(Slot::File {
                seq,
                key: item.key.clone(),
                size: item.size,
                targets,
                delete,
                rx,
                permit,
            })
            .ok();
        let job = ReadTask {
            runtime: p.runtime.clone(),
            cpus: self.cpus.clone(),
            metrics: p.metrics.clone(),
            shutdown: self.shutdown.clone(),
            drop_read_only: p.settings.drop_read_only,
            hash: p.settings.hash_files,
            delayed_after_ms: p.settings.delayed_after.as_millis() as i64,
            processed_at_ms: p.clock.now_ms(),
            skip_below,
            dedup: p.dedup.clone(),
            networks: p.settings.networks.clone(),
            observe: self.observe,
        };
        tokio::spawn(job.run(item, tx));
        Ok(true)
    }

    /// Waits for `work` (a source's request: a long poll of a queue) while committing what is
    /// acknowledged meanwhile, so that markers run as their files settle rather than after.
    pub async fn wait_on<T>(&mut self, work: impl std::future::Future<Output = T>) -> Result<T, CycleError> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => {
                    self.settle().await?;
                    return Ok(done);
                }
                Some(event) = self.events_rx.recv() => self.on_sink_event(event),
                Some(written) = self.written_rx.recv() => self.pending.push_back(written),
            }
            self.commit_ready()?;
        }
    }

    /// Adds changes that `marker` works out once every file submitted so far is settled
    /// (committed, or left uncommitted by a failure): a source closing a day.
    pub fn marker(&mut self, marker: impl FnOnce(&Checkpoint) -> Vec<Change> + Send + 'static) {
        if let Some(tx) = &self.slot_tx {
            tx.send(Slot::Marker(Box::new(marker))).ok();
        }
    }

    /// Commits what has been acknowledged without waiting.
    async fn settle(&mut self) -> Result<(), CycleError> {
        while let Ok(event) = self.events_rx.try_recv() {
            self.on_sink_event(event);
        }
        while let Ok(written) = self.written_rx.try_recv() {
            self.pending.push_back(written);
        }
        self.commit_ready()
    }

    fn on_sink_event(&mut self, event: SinkEvent) {
        match event {
            SinkEvent::Acked { sink, file } => {
                self.acked[sink] = self.acked[sink].max(file);
                self.p.metrics.sink_failing(&self.p.names[sink], false);
            }
            SinkEvent::Failed { sink, error } => {
                self.p.metrics.sink_failing(&self.p.names[sink], true);
                self.sink_failed[sink] = Some(error);
            }
        }
    }

    /// Commits, in order, the files every target sink acknowledged, and the markers after them.
    fn commit_ready(&mut self) -> Result<(), CycleError> {
        let mut changed = false;
        while let Some(front) = self.pending.front() {
            match front {
                Written::File { seq, targets, .. } => {
                    if !targets.iter().all(|&k| self.acked[k] >= *seq) {
                        break;
                    }
                }
                Written::Marker(_) | Written::Fatal(_) => {}
            }
            let Some(written) = self.pending.pop_front() else { break };
            changed = true;
            match written {
                Written::Marker(marker) => {
                    for change in marker(self.p.ledger.checkpoint()) {
                        self.p.ledger.change(change);
                    }
                }
                // Not recorded: the file is read again once the credentials work.
                Written::Fatal(e) => self.on_fatal(e),
                Written::File {
                    seq,
                    key,
                    size,
                    delete,
                    result,
                    scoring,
                    ..
                } => self.commit_file(seq, key, size, delete, *result, scoring),
            }
        }
        if changed {
            self.p.ledger.commit()?;
        }
        Ok(())
    }

    /// Records one acknowledged file.
    fn commit_file(
        &mut self,
        seq: u64,
        key: String,
        size: u64,
        delete: Option<PendingDelete>,
        result: ReadResult,
        scoring: Option<FileScoring>,
    ) {
        self.p.partial.remove(&key);
        let ReadResult { end, stats } = result;
        let m = &self.p.metrics;
        // What the file taught scoring commits with it, however its reading ended: a failed
        // file's events before the failure were scored and are not read again.
        if let Some(FileScoring { writes, report, tally }) = scoring {
            if end != ReadEnd::Interrupted {
                for (severity, n) in &tally.anomalies {
                    m.anomalies(severity, *n);
                }
                for ((severity, change), n) in &tally.incidents {
                    m.incident(severity, change, *n);
                }
                for _ in 0..tally.failures {
                    m.scoring_failure();
                }
                self.report.anomalies += tally.anomalies.values().sum::<u64>();
                self.report.incidents += tally.incidents.values().sum::<u64>();
                self.report.unscored_batches += tally.failures;
                self.p.ledger.learned(seq, writes, report);
            }
        }
        for (metric, n) in &stats.metrics {
            m.events(metric, *n);
        }
        for (outcome, n) in &stats.outcomes {
            m.outcome(outcome, *n);
        }
        m.dropped_read_only(stats.dropped_read_only);
        m.duplicates(stats.duplicates);
        // Acknowledged by every sink: from now on these events are duplicates within the window.
        if let Some(d) = &self.p.dedup {
            d.record(self.p.clock.now_ms(), &stats.delivered_ids);
        }
        if end != ReadEnd::Interrupted {
            self.report.files += 1;
        }
        self.report.events += stats.events;
        self.report.dropped_read_only += stats.dropped_read_only;
        self.report.not_repeated += stats.not_repeated;
        self.report.duplicates += stats.duplicates;
        let ledger = &mut self.p.ledger;
        match &end {
            ReadEnd::Complete => {
                m.file("done");
                if ledger.checkpoint().failed.contains_key(&key) {
                    ledger.change(Change::Recovered { key: key.clone() });
                }
                ledger.change(Change::Done { key: key.clone() });
                // Its hash waits for the digest that lists it, in the same commit as the file
                // (log files only: Insight files have no such digests), unless that digest was
                // judged already.
                let wanted = key.contains("/CloudTrail/") && !ledger.checkpoint().listed.contains_key(&key);
                if let (Some(Ok(sha256)), Some(time_ms), true) =
                    (&stats.sha256, crate::layout::file_time_ms(&key), wanted)
                {
                    ledger.change(Change::Hashed {
                        key: key.clone(),
                        hash: crate::state::checkpoint::FileHash {
                            sha256: sha256.clone(),
                            time_ms,
                        },
                    });
                }
                // A file that could not be read to its end is kept in the bucket: deleting it
                // would lose the events after the failure.
                if let Some(entry) = delete {
                    ledger.change(Change::DeleteLater { entry });
                }
            }
            ReadEnd::Failed {
                reason,
                retry,
                records_done,
            } => {
                self.report.failed.push((key.clone(), reason.clone()));
                m.failure(match retry {
                    Retry::Never if reason.contains("over the limit") => "too_large",
                    Retry::Never => "bad_file",
                    Retry::Limited => "plugin",
                    Retry::Always => "unavailable",
                });
                let mut entry = ledger.checkpoint().failed.get(&key).cloned().unwrap_or_default();
                entry.attempts += 1;
                entry.reason = reason.clone();
                entry.records_done = entry.records_done.max(*records_done);
                entry.quarantined = match retry {
                    Retry::Never => true,
                    Retry::Limited => entry.attempts >= MAX_ATTEMPTS,
                    Retry::Always => false,
                };
                if entry.quarantined {
                    m.file("quarantined");
                    // Recorded in the checkpoint and kept in the bucket; not read again.
                    tracing::error!(key = %key, attempts = entry.attempts, error = %entry.reason, "log file quarantined: kept in the bucket, not read again");
                } else {
                    m.file("failed");
                    tracing::warn!(key = %key, attempts = entry.attempts, error = %entry.reason, "log file failed; will try again at the next poll");
                }
                let quarantined = entry.quarantined;
                ledger.change(Change::Failed {
                    key: key.clone(),
                    file: entry,
                });
                if quarantined {
                    ledger.change(Change::Done { key: key.clone() });
                }
            }
            ReadEnd::Interrupted => {}
        }
        if let Some(f) = self.p.on_file.as_mut() {
            f(FileRecord { key, size, end, stats });
        }
    }

    /// Records a fatal input error (refused credentials): the cycle stops taking work.
    fn on_fatal(&mut self, e: AwsError) {
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
    }

    /// Waits for every file submitted to be acknowledged (or for a sink to fail), commits, and
    /// gives the sinks back to the pipeline.
    pub async fn finish(mut self) -> Result<CycleReport, CycleError> {
        drop(self.slot_tx.take());
        let mut shutdown_at: Option<tokio::time::Instant> = None;
        let mut written_open = true;
        let mut events_open = true;
        let mut commit_error: Option<CycleError> = None;
        while written_open || events_open {
            if shutdown_at.is_none() && self.shutdown.load(Ordering::Relaxed) {
                shutdown_at = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
            }
            let deadline = shutdown_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                written = self.written_rx.recv(), if written_open => match written {
                    Some(w) => self.pending.push_back(w),
                    None => written_open = false,
                },
                event = self.events_rx.recv(), if events_open => match event {
                    Some(e) => self.on_sink_event(e),
                    None => events_open = false,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("shutting down before every sink acknowledged; the files not acknowledged are read again at the next start");
                    self.report.interrupted = true;
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(100)), if shutdown_at.is_none() => {}
            }
            // A checkpoint that cannot be written stops the commits, not the draining: the
            // sinks must come back to the pipeline whatever happens.
            if commit_error.is_none() {
                if let Err(e) = self.commit_ready() {
                    commit_error = Some(e);
                }
            }
        }
        if let Some(writer) = self.writer.take() {
            if !writer.is_finished() {
                writer.abort();
            }
            if let Ok((next, scorer)) = writer.await {
                self.p.next_batch = next;
                self.p.scorer = scorer;
            }
        }
        for (i, runner) in self.runners.iter_mut().enumerate() {
            if let Some(handle) = runner.take() {
                if !handle.is_finished() {
                    handle.abort();
                }
                // A sink stuck in a blocking write (a pipe nobody reads) cannot be aborted:
                // it is left behind rather than waited for.
                match tokio::time::timeout(SHUTDOWN_GRACE, handle).await {
                    Ok(Ok(sink)) => self.p.sinks[i] = Some(sink),
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!(sink = %self.p.names[i], "sink stopped before it finished");
                    }
                }
            }
        }
        // What scoring held goes to the state once every file it scored is committed.
        if self.pending.is_empty() && commit_error.is_none() && !self.report.interrupted {
            if let Some(scorer) = self.p.scorer.as_mut() {
                let held = scorer.flush_all();
                if !held.is_empty() {
                    self.p.ledger.learned(crate::score::HELD, held, Vec::new());
                }
            }
        }
        // What some sinks acknowledged and others did not is sent to the others only next time.
        for w in self.pending.drain(..) {
            if let Written::File {
                seq,
                key,
                targets,
                result,
                ..
            } = w
            {
                if result.end != ReadEnd::Interrupted {
                    self.report.not_acknowledged += 1;
                }
                // Only a file read to its end may skip, next time, the sinks that have it all: a
                // failed read's sinks have only its first records.
                if result.end == ReadEnd::Complete {
                    let done: Vec<usize> = targets.iter().copied().filter(|&k| self.acked[k] >= seq).collect();
                    if !done.is_empty() {
                        self.p.partial.entry(key).or_default().extend(done);
                    }
                }
            }
        }
        let committed = match commit_error {
            Some(e) => Err(e),
            None => self.p.ledger.commit().map_err(CycleError::from),
        };
        // Files not committed are read and scored again: what they taught is dropped, and the
        // sweep they may have run is run again.
        if self.p.ledger.forget_unrecorded_scoring() {
            if let Some(scorer) = self.p.scorer.as_mut() {
                scorer.rewind_sweep();
            }
        }
        committed?;
        for (i, failed) in self.sink_failed.iter().enumerate() {
            if let Some(e) = failed {
                self.report.sink_errors.push((self.p.names[i].clone(), e.to_string()));
            }
        }
        if let Some(e) = self.fatal.take() {
            return Err(CycleError::Aws(e));
        }
        if let Some((i, Some(error))) = self.sink_failed.iter().enumerate().find(|(_, f)| f.is_some()) {
            return Err(CycleError::Sink {
                sink: self.p.names[i].clone(),
                error: error.clone(),
            });
        }
        self.report.interrupted |= self.shutdown.load(Ordering::Relaxed);
        Ok(self.report)
    }
}

/// What a file's reading task needs besides the item.
struct ReadTask {
    runtime: Arc<PluginRuntime>,
    cpus: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    shutdown: Arc<AtomicBool>,
    drop_read_only: bool,
    hash: bool,
    delayed_after_ms: i64,
    processed_at_ms: i64,
    skip_below: u32,
    dedup: Option<Arc<dedup::Dedup>>,
    networks: Option<Arc<crate::networks::Networks>>,
    observe: bool,
}

impl ReadTask {
    async fn run(self, item: WorkItem, tx: mpsc::Sender<FileMsg>) {
        let done = |end: ReadEnd| {
            FileMsg::Done(Box::new(ReadResult {
                end,
                stats: FileStats::default(),
            }))
        };
        let input = match unless_stopped(&self.shutdown, item.fetch).await {
            None => {
                tx.send(done(ReadEnd::Interrupted)).await.ok();
                return;
            }
            Some(Ok(input)) => input,
            Some(Err(InputError::File { reason, retry })) => {
                tx.send(done(ReadEnd::Failed {
                    reason,
                    retry,
                    records_done: 0,
                }))
                .await
                .ok();
                return;
            }
            Some(Err(InputError::Fatal(e))) => {
                tx.send(FileMsg::Fatal(e)).await.ok();
                return;
            }
        };
        let Ok(cpu) = self.cpus.clone().acquire_owned().await else {
            return;
        };
        let job = ReadJob {
            meta: ObjectMeta {
                key: item.key.clone(),
                size: item.size,
                last_modified_ms: item.last_modified_ms,
            },
            input,
            skip_below: self.skip_below,
            drop_read_only: self.drop_read_only,
            hash: self.hash,
            context: FileContext {
                bucket: item.bucket,
                last_modified_ms: item.last_modified_ms,
                processed_at_ms: self.processed_at_ms,
                delayed_after_ms: self.delayed_after_ms,
                networks: self.networks,
            },
            dedup: self.dedup,
            observe: self.observe,
        };
        let (runtime, cpus, metrics) = (self.runtime, self.cpus, self.metrics);
        // A panic in the reader drops `tx` without `Done`: the writer reports the file failed.
        tokio::task::spawn_blocking(move || reader::read(&runtime, job, &tx, cpu, &cpus, &metrics))
            .await
            .ok();
    }
}

/// Counts per key of a map, merged.
pub fn merge_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::*;

    fn values(state: &ScoreState, keys: &[&str]) -> Vec<(String, Vec<u8>)> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        state
            .get(&keys)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    #[test]
    fn a_failed_commit_keeps_what_its_files_taught_for_the_next_and_the_rest_is_dropped() {
        let state = Arc::new(Mutex::new(ScoreState::in_memory()));
        let mut ledger = Ledger::in_memory().with_scoring(state.clone());
        let w = |k: &str, v: &[u8]| (k.to_owned(), Some(v.to_vec()));
        // File 1 was handed over to commit and its commit failed; file 2 was scored after it
        // and not handed over (the cycle ends without it).
        state.lock().unwrap().stage(1, vec![w("i/a", b"1"), w("i/b", b"1")]);
        state.lock().unwrap().stage(2, vec![w("i/b", b"2"), w("i/c", b"2")]);
        let one = state.lock().unwrap().take(1);
        ledger.learned(1, one, Vec::new());
        let generation = state.lock().unwrap().generation();

        assert!(ledger.forget_unrecorded_scoring());
        let keys = ["i/a", "i/b", "i/c"];
        let want = vec![("i/a".to_owned(), b"1".to_vec()), ("i/b".to_owned(), b"1".to_vec())];
        {
            let s = state.lock().unwrap();
            assert!(s.generation() > generation, "a remembering scoring instance forgets");
            assert_eq!(values(&s, &keys), want, "file 1's writes still seen, file 2's gone");
        }
        // Recorded with file 1 at the next commit.
        ledger.commit().unwrap();
        let mut s = state.lock().unwrap();
        assert!(!s.abandon(), "nothing pending");
        assert_eq!(values(&s, &keys), want);
    }
}
