//! The reader stage: one file through the plugin, on a thread that may block, its events
//! enriched and rendered as NDJSON batch by batch and handed to the writer in order.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::dedup::{document_event_id, Dedup};
use super::enrich::FileContext;
use super::work::{Input, Retry};
use crate::metrics::Metrics;
use crate::networks::Cache;
use crate::networks::SourceNetwork;
use crate::output::names;
use crate::output::ndjson;
use crate::runtime::bindings::documents;
use crate::runtime::bindings::types::{FileError, ObjectMeta, Outcome, SourceKind};
use crate::runtime::scoring::Compact;
use crate::runtime::{Batch, FileFailure, Keep, PluginRuntime};
use crate::score::observe;
use crate::score::ToScore;

/// What a reader hands the writer, in order.
pub enum FileMsg {
    /// NDJSON lines, each ending in `\n`, with the end offset of each, and what scoring needs
    /// of them when events are scored.
    Batch {
        bytes: Vec<u8>,
        ends: Vec<u32>,
        score: Option<ToScore>,
    },
    /// The file is finished.
    Done(Box<ReadResult>),
    /// Its bytes could not be had for a reason that stops the cycle (refused credentials).
    Fatal(crate::aws::AwsError),
}

/// How reading one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// Every event was handed over.
    Complete,
    /// It could not be read to its end; the records before `records_done` were handed over.
    Failed {
        reason: String,
        retry: Retry,
        records_done: u32,
    },
    /// A shutdown came first: nothing is recorded.
    Interrupted,
}

/// What was read from one file, counted.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    /// `log`, `insight` or `digest`, once the plugin could tell.
    pub kind: Option<&'static str>,
    /// Log files a digest lists.
    pub digest_log_files: Option<u32>,
    /// Events handed over.
    pub events: u64,
    /// Read-only events dropped (write-only mode).
    pub dropped_read_only: u64,
    /// Events of a file tried again that an earlier attempt handed over, not handed over again.
    pub not_repeated: u64,
    /// Events an earlier file delivered within the de-duplication window, not handed over.
    pub duplicates: u64,
    /// The de-duplication keys of the events handed over, remembered once the file is
    /// acknowledged (empty without de-duplication).
    pub delivered_ids: Vec<u128>,
    /// Events flagged with problems.
    pub flagged: u64,
    /// Events per metric.
    pub metrics: BTreeMap<String, u64>,
    /// Events per flag.
    pub flags: BTreeMap<&'static str, u64>,
    /// Events per outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// The SHA-256 of the file's decompressed content, when it was hashed (or why not).
    pub sha256: Option<Result<String, String>>,
}

/// The end of one file and its counts.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// How it ended.
    pub end: ReadEnd,
    /// What was read.
    pub stats: FileStats,
}

/// Everything one read needs.
pub struct ReadJob {
    /// The object.
    pub meta: ObjectMeta,
    /// Its bytes.
    pub input: Input,
    /// Records before this index were handed over by an earlier attempt.
    pub skip_below: u32,
    /// Drop read-only events (write-only mode).
    pub drop_read_only: bool,
    /// Hash the file's decompressed content (integrity validation).
    pub hash: bool,
    /// For the delivery record.
    pub context: FileContext,
    /// Events delivered within the window are left out (`None`: no de-duplication).
    pub dedup: Option<Arc<Dedup>>,
    /// Whether events are scored: each batch then carries what scoring needs (in the plugin's
    /// compact form, where it gives that).
    pub observe: bool,
}

/// Sends `msg`, letting go of the CPU permit while the writer is not taking more: a later file
/// that waits on the writer must not hold a reading slot that the file the writer waits for
/// needs.
fn send(
    tx: &mpsc::Sender<FileMsg>,
    msg: FileMsg,
    cpu: &mut Option<OwnedSemaphorePermit>,
    cpus: &Arc<Semaphore>,
    handle: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    match tx.try_send(msg) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => anyhow::bail!("the writer stopped"),
        Err(mpsc::error::TrySendError::Full(msg)) => {
            cpu.take();
            tx.blocking_send(msg)
                .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
            *cpu = Some(
                handle
                    .block_on(cpus.clone().acquire_owned())
                    .map_err(|_| anyhow::anyhow!("the reader pool closed"))?,
            );
            Ok(())
        }
    }
}

/// Which events of a file are handed over.
struct Filter {
    /// Events below this index were handed over by an earlier attempt.
    skip_below: u32,
    /// Read-only events are dropped here (write-only mode with a plugin that does not select).
    drop_read_only: bool,
    /// The plugin leaves out what write-only mode does not keep: a gap in the indexes is a
    /// record it left out, not one lost.
    selected: bool,
    /// The end of the unbroken run of records handed over from the first.
    done_below: u32,
}

impl Filter {
    /// Whether the event at `index` is handed over; counts it in `stats` when it is not.
    fn keep(&mut self, stats: &mut FileStats, index: u32, read_only: bool) -> bool {
        if index < self.skip_below {
            stats.not_repeated += 1;
            return false;
        }
        // Only an unbroken run of records from the first counts as done: a plugin that
        // skipped or reordered indexes must not make a retry skip records never written.
        if index == self.done_below || (self.selected && index > self.done_below) {
            self.done_below = index + 1;
        }
        if self.drop_read_only && read_only {
            stats.dropped_read_only += 1;
            return false;
        }
        true
    }

    /// Whether `keep` would hand every one of these events over.
    fn keeps_all(&self, events: &[documents::Summary]) -> bool {
        events
            .iter()
            .all(|s| s.index >= self.skip_below && !(self.drop_read_only && s.read_only))
    }
}

impl FileStats {
    /// Whether event `i` of a batch was delivered within the de-duplication window (counted);
    /// otherwise its key is noted for when the file is acknowledged.
    fn duplicate(&mut self, keys: &[Option<u128>], delivered: &[bool], i: usize) -> bool {
        if delivered.get(i).copied().unwrap_or(false) {
            self.duplicates += 1;
            return true;
        }
        if let Some(Some(k)) = keys.get(i) {
            self.delivered_ids.push(*k);
        }
        false
    }

    /// Counts an event handed over.
    fn count(&mut self, metric: &str, flags: u8, outcome: Outcome, flagged: bool) {
        self.events += 1;
        match self.metrics.get_mut(metric) {
            Some(n) => *n += 1,
            None => {
                self.metrics.insert(metric.to_owned(), 1);
            }
        }
        for flag in trailwatch_document::flag_names(flags) {
            *self.flags.entry(flag).or_default() += 1;
        }
        *self.outcomes.entry(names::outcome_name(outcome)).or_default() += 1;
        if flagged {
            self.flagged += 1;
        }
    }
}

/// Reads `job` through `runtime` and sends its batches to `tx`, then `Done`. Runs on a blocking
/// thread holding `cpu`, one of the reading slots.
pub fn read(
    runtime: &PluginRuntime,
    job: ReadJob,
    tx: &mpsc::Sender<FileMsg>,
    cpu: OwnedSemaphorePermit,
    cpus: &Arc<Semaphore>,
    metrics: &Metrics,
) {
    let handle = tokio::runtime::Handle::current();
    let mut cpu = Some(cpu);
    let ReadJob {
        meta,
        input,
        skip_below,
        drop_read_only,
        hash,
        context,
        dedup,
        observe,
    } = job;
    tracing::debug!(target: crate::STAGE, key = %meta.key, "reading");
    let compact_wanted = observe && runtime.observes();
    let mut stats = FileStats::default();
    let selected = drop_read_only && runtime.selects();
    let mut filter = Filter {
        skip_below,
        drop_read_only: drop_read_only && !selected,
        selected,
        done_below: skip_below,
    };
    let keep = if drop_read_only { Keep::WriteOnly } else { Keep::All };
    let mut networks = context.networks.as_deref().map(Cache::new);
    let on_batch = |batch: Batch<'_>| {
        let mut bytes;
        let mut ends;
        let mut score = observe.then(ToScore::default);
        match batch {
            Batch::Typed(batch) => {
                bytes = Vec::with_capacity(batch.iter().map(|e| e.raw.len() + 1024).sum());
                ends = Vec::with_capacity(batch.len());
                let keys: Vec<Option<u128>> = match &dedup {
                    Some(d) => batch
                        .iter()
                        .map(|e| e.event_id.as_deref().map(|id| d.key(id)))
                        .collect(),
                    None => Vec::new(),
                };
                let delivered = dedup.as_ref().map(|d| d.delivered(&keys)).unwrap_or_default();
                for (i, event) in batch.iter().enumerate() {
                    if !filter.keep(&mut stats, event.index, event.read_only) {
                        continue;
                    }
                    if stats.duplicate(&keys, &delivered, i) {
                        continue;
                    }
                    let delivery = context.delivery(event.event_time_ms);
                    if let Some(d) = &delivery {
                        metrics.observe_delivery(d.delivery_delay_ms, d.processing_delay_ms);
                    }
                    let network = match (&mut networks, &event.source_address, event.source_kind) {
                        (Some(cache), Some(source), SourceKind::Ip) => cache.lookup(source),
                        _ => None,
                    };
                    let head = ndjson::write_event_with(&mut bytes, event, &meta.key, delivery.as_ref(), network)?;
                    if let Some(score) = &mut score {
                        score.saw(event.event_time_ms);
                        score.observations.push(observe::from_event(event, network));
                        score.heads.push(head as u32);
                    }
                    ends.push(u32::try_from(bytes.len()).map_err(|_| anyhow::anyhow!("a batch over 4 GiB"))?);
                    stats.count(
                        &event.category.metric,
                        names::flag_bits(event.category.flags),
                        event.outcome,
                        !event.problems.is_empty(),
                    );
                }
            }
            Batch::Documents(batch, observed) => {
                // Compact observations, one per document, or none (read back from the heads).
                let observed = observed.filter(|o| o.ends.len() == batch.events.len());
                let mut compact = match (&mut score, &observed) {
                    (Some(_), Some(o)) => Some(Compact {
                        bytes: Vec::with_capacity(o.bytes.len()),
                        ends: Vec::with_capacity(o.ends.len()),
                        ..Compact::default()
                    }),
                    _ => None,
                };
                // Observation `i` of the plugin's, appended with its network.
                let add = |compact: &mut Compact, i: usize, network: Option<&SourceNetwork>| {
                    let Some(o) = &observed else { return };
                    let start = if i == 0 { 0 } else { o.ends[i - 1] as usize };
                    let end = o.ends[i] as usize;
                    compact
                        .bytes
                        .extend_from_slice(o.bytes.get(start..end).unwrap_or_default());
                    compact.ends.push(compact.bytes.len() as u32);
                    let n = network.map_or(0, |n| observe::network_index(compact, n));
                    compact.network_of.push(n);
                };
                let keys: Vec<Option<u128>> = match &dedup {
                    Some(d) => {
                        let mut start = 0;
                        batch
                            .events
                            .iter()
                            .map(|s| {
                                let line = &batch.text[start..(s.end as usize).min(batch.text.len())];
                                start = s.end as usize;
                                document_event_id(line).map(|id| d.key(id))
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                let delivered = dedup.as_ref().map(|d| d.delivered(&keys)).unwrap_or_default();
                let as_rendered =
                    !context.adds_members() && filter.keeps_all(&batch.events) && !delivered.contains(&true);
                ends = Vec::with_capacity(batch.events.len());
                if as_rendered {
                    // Nothing to drop or add: the plugin's text is the batch.
                    let mut start = 0;
                    for (i, s) in batch.events.iter().enumerate() {
                        filter.keep(&mut stats, s.index, s.read_only);
                        stats.duplicate(&keys, &delivered, i);
                        ends.push(s.end);
                        if let Some(score) = &mut score {
                            if let Some(c) = &mut compact {
                                add(c, i, None);
                                score.saw(s.event_time_ms);
                                score.heads.push(s.head_end);
                                score.summaries.push(*s);
                            } else {
                                let head = &batch.text[start..s.head_end as usize];
                                let metric = &batch.metrics[s.metric as usize];
                                score.observe(observe::from_document(head, s, metric, None), s.head_end);
                            }
                        }
                        start = s.end as usize;
                        let flags = names::flag_bits(s.flags);
                        stats.count(&batch.metrics[s.metric as usize], flags, s.outcome, s.flagged);
                    }
                    bytes = batch.text;
                } else {
                    bytes = Vec::with_capacity(batch.text.len() + 256 * batch.events.len());
                    let mut start = 0;
                    for (i, s) in batch.events.iter().enumerate() {
                        let (line, head) = (start..s.end as usize, s.head_end as usize);
                        start = s.end as usize;
                        if !filter.keep(&mut stats, s.index, s.read_only) {
                            continue;
                        }
                        if stats.duplicate(&keys, &delivered, i) {
                            continue;
                        }
                        bytes.extend_from_slice(&batch.text[line.start..head]);
                        if let Some(d) = context.delivery(s.event_time_ms) {
                            metrics.observe_delivery(d.delivery_delay_ms, d.processing_delay_ms);
                            ndjson::write_delivery(&mut bytes, &d)?;
                        }
                        let source = ndjson::document_ip_source(&batch.text[line.start..head]);
                        let mut network = None;
                        if let (Some(cache), Some(source)) = (&mut networks, source) {
                            network = cache.lookup(source);
                            if let Some(network) = network {
                                ndjson::write_network(&mut bytes, network)?;
                            }
                        }
                        if let Some(score) = &mut score {
                            if let Some(c) = &mut compact {
                                add(c, i, network);
                                score.saw(s.event_time_ms);
                                score.heads.push(bytes.len() as u32);
                                score.summaries.push(*s);
                            } else {
                                let metric = &batch.metrics[s.metric as usize];
                                let observed = observe::from_document(
                                    &batch.text[line.start..head],
                                    s,
                                    metric,
                                    observe::network(network),
                                );
                                score.observe(observed, bytes.len() as u32);
                            }
                        }
                        bytes.extend_from_slice(&batch.text[head..line.end]);
                        ends.push(u32::try_from(bytes.len()).map_err(|_| anyhow::anyhow!("a batch over 4 GiB"))?);
                        let flags = names::flag_bits(s.flags);
                        stats.count(&batch.metrics[s.metric as usize], flags, s.outcome, s.flagged);
                    }
                }
                if let (Some(score), Some(c)) = (&mut score, compact) {
                    score.compact = Some(c);
                    score.metrics = batch.metrics;
                }
            }
        }
        if ends.is_empty() {
            return Ok(());
        }
        send(tx, FileMsg::Batch { bytes, ends, score }, &mut cpu, cpus, &handle)
    };
    let result = if hash {
        runtime.read_batches_hashed(input, &meta, keep, compact_wanted, on_batch)
    } else {
        runtime.read_batches_keeping(input, &meta, keep, compact_wanted, on_batch)
    };
    let (report, end) = match result {
        Ok(report) => (report, ReadEnd::Complete),
        Err((report, failure)) => {
            let end = match failure {
                // The writer is gone: the cycle was abandoned (shutdown); nothing to record.
                FileFailure::Output(_) => ReadEnd::Interrupted,
                // The host could not hand over the bytes: nothing wrong with the file.
                f @ FileFailure::Input(FileError::ReadFailed(_)) => ReadEnd::Failed {
                    reason: f.to_string(),
                    retry: Retry::Always,
                    records_done: filter.done_below,
                },
                // The file's contents are bad: reading it again gives the same answer.
                f @ FileFailure::Input(_) => ReadEnd::Failed {
                    reason: f.to_string(),
                    retry: Retry::Never,
                    records_done: filter.done_below,
                },
                // A limit or a plugin fault: worth a few more tries (a later plugin may do better).
                f @ FileFailure::Trap(_) => ReadEnd::Failed {
                    reason: f.to_string(),
                    retry: Retry::Limited,
                    records_done: filter.done_below,
                },
            };
            (report, end)
        }
    };
    stats.dropped_read_only += report.left_out;
    stats.sha256 = report.sha256.map(|r| *r);
    stats.kind = report.kind.map(names::kind_name);
    stats.digest_log_files = report.digest.map(|d| d.log_file_count);
    drop(cpu);
    // The writer is gone only when the cycle was abandoned.
    tx.blocking_send(FileMsg::Done(Box::new(ReadResult { end, stats })))
        .ok();
}
