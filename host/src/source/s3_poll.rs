//! Following a trail bucket: find the streams, list the recent days, read what is new.
//!
//! Costs little: streams are found with delimiter listings (never a scan of the bucket), and
//! each poll lists only the day prefixes still open. Misses nothing: a file delivered late under
//! an older key than the newest seen is still found, because the current and previous days are
//! listed whole and compared with the keys already done (trusting StartAfter alone would skip it).

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::layout::{file_time_ms, is_account_id, is_org_id, last_segment, Day};
use crate::aws::s3::{ObjectInfo, S3};
use crate::aws::{AwsClient, AwsError};
use crate::output::ndjson::{self, Delivery};
use crate::output::Sink;
use crate::runtime::bindings::types::FileError;
use crate::runtime::bindings::types::ObjectMeta;
use crate::runtime::{FileFailure, PluginRuntime};
use crate::state::checkpoint::{Change, Checkpoint, CheckpointError, CheckpointStore, PendingDelete};

/// The time, injectable so that tests can age files (S3 cannot backdate them).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Where a first run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only files that appear after the first poll.
    Now,
    /// Every file from this day on.
    Day(Day),
}

/// How the bucket is followed.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// The trail's bucket.
    pub bucket: String,
    /// Key prefix before `AWSLogs/` ("" or ending in `/`).
    pub prefix: String,
    /// Only these accounts (empty: all).
    pub accounts: Vec<String>,
    /// Only these regions (empty: all).
    pub regions: Vec<String>,
    /// Also read `CloudTrail-Insight/`.
    pub include_insight: bool,
    /// Where a first run starts.
    pub start: Start,
    /// Days listed whole at each poll (today and the days before it), for late files.
    pub relist_days: i64,
    /// Objects fetched at once.
    pub max_concurrent_fetches: usize,
    /// Objects larger than this are refused.
    pub max_object_bytes: u64,
    /// Objects larger than this are read from the connection as they are used rather than
    /// fetched whole ahead of time.
    pub stream_above_bytes: u64,
    /// Delete processed files this long after their own timestamp; `None`: never delete.
    pub delete_after: Option<Duration>,
    /// Drop read-only events at ingestion (write-only mode).
    pub drop_read_only: bool,
    /// Events delivered later than this are flagged as delayed.
    pub delayed_after: Duration,
    /// Find streams again after this long.
    pub discovery_interval: Duration,
}

/// What one poll cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CycleReport {
    /// Files read.
    pub files: u64,
    /// Events written.
    pub events: u64,
    /// Read-only events dropped (write-only mode).
    pub dropped_read_only: u64,
    /// Events of a file tried again that an earlier attempt had written, not written again.
    pub not_repeated: u64,
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
}

/// Why a poll cycle stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// AWS refused or failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The output could not be written.
    #[error("output: {0}")]
    Output(std::io::Error),
}

/// Resolves once `flag` is set (looked at every 50 ms).
async fn stopped(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `work`'s result, or `None` when a shutdown comes first: the request under way is dropped
/// (cancelled) rather than awaited, so that SIGTERM does not wait out a slow or stuck AWS call.
/// Nothing is lost: what was not acknowledged is not in the checkpoint and is read again.
async fn unless_stopped<T>(flag: &AtomicBool, work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        done = work => Some(done),
        _ = stopped(flag) => None,
    }
}

/// Polls a failing file is tried before it is quarantined, when retrying may help.
const MAX_ATTEMPTS: u32 = 3;

/// How reading one file ended.
enum Outcome {
    /// Every event was written.
    Done,
    /// It could not be read to its end; the records before `records_done` were written.
    Failed {
        reason: String,
        retry: Retry,
        records_done: u32,
    },
}

/// An object fetched whole, or to be downloaded as it is read.
enum Fetched {
    Whole(Result<bytes::Bytes, AwsError>),
    Later,
}

/// Whether a failed file is worth reading again.
#[derive(Clone, Copy)]
enum Retry {
    /// No: its contents are bad, or it is gone or too large. Quarantined at once.
    Never,
    /// Up to `MAX_ATTEMPTS` polls (a plugin trap), then quarantined.
    Limited,
    /// At every poll (access denied to this object, a transport failure): nothing is wrong with
    /// the file itself.
    Always,
}

/// Follows one bucket.
pub struct Poller {
    client: Arc<AwsClient>,
    runtime: Arc<PluginRuntime>,
    settings: PollSettings,
    store: CheckpointStore,
    checkpoint: Checkpoint,
    /// Changes made to `checkpoint` and not yet recorded in `store`.
    unrecorded: Vec<Change>,
    clock: Arc<dyn Clock>,
    streams: Vec<String>,
    discovered_at_ms: Option<i64>,
}

impl Poller {
    /// A poller resuming from the checkpoint in `store`.
    pub fn new(
        client: Arc<AwsClient>,
        runtime: Arc<PluginRuntime>,
        mut settings: PollSettings,
        mut store: CheckpointStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CheckpointError> {
        if !settings.prefix.is_empty() && !settings.prefix.ends_with('/') {
            settings.prefix.push('/');
        }
        settings.relist_days = settings.relist_days.max(1);
        let checkpoint = store.load(&settings.bucket)?;
        Ok(Poller {
            client,
            runtime,
            settings,
            store,
            checkpoint,
            unrecorded: Vec::new(),
            clock,
            streams: Vec::new(),
            discovered_at_ms: None,
        })
    }

    /// Reads the next files with `runtime` (a plugin upgraded without a restart).
    pub fn set_runtime(&mut self, runtime: Arc<PluginRuntime>) {
        self.runtime = runtime;
    }

    /// The streams found by the last discovery.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Makes a change to the checkpoint, recorded at the next `commit`. The checkpoint is changed
    /// only this way, so that what is recorded is what is in memory.
    fn change(&mut self, change: Change) {
        change.apply(&mut self.checkpoint);
        self.unrecorded.push(change);
    }

    /// Records the changes made since the last commit durably (nothing to do when there are none).
    fn commit(&mut self) -> Result<(), CheckpointError> {
        self.store.record(&self.checkpoint, &self.unrecorded)?;
        self.unrecorded.clear();
        Ok(())
    }

    /// Whether `key` of `stream` and `day` is done.
    fn is_done(&self, stream: &str, day: Day, key: &str) -> bool {
        let state = self.checkpoint.streams.get(stream);
        state
            .and_then(|s| s.processed.get(&day))
            .is_some_and(|keys| keys.contains(key))
    }

    /// Finds the (account, region) streams with delimiter listings.
    async fn discover(&mut self) -> Result<(), AwsError> {
        let s3 = S3::new(&self.client, &self.settings.bucket);
        let root = format!("{}AWSLogs/", self.settings.prefix);
        let mut accounts: Vec<(String, String)> = Vec::new();
        for p in s3.list_all(&root, Some("/"), None).await?.prefixes {
            let seg = last_segment(&p).to_owned();
            if is_account_id(&seg) {
                accounts.push((seg, p));
            } else if is_org_id(&seg) {
                for q in s3.list_all(&p, Some("/"), None).await?.prefixes {
                    let acct = last_segment(&q).to_owned();
                    if is_account_id(&acct) {
                        accounts.push((acct, q));
                    }
                }
            }
        }
        let mut streams = Vec::new();
        for (account, account_root) in accounts {
            if !self.settings.accounts.is_empty() && !self.settings.accounts.contains(&account) {
                continue;
            }
            let mut folders = vec!["CloudTrail/"];
            if self.settings.include_insight {
                folders.push("CloudTrail-Insight/");
            }
            for folder in folders {
                for region_prefix in s3
                    .list_all(&format!("{account_root}{folder}"), Some("/"), None)
                    .await?
                    .prefixes
                {
                    let region = last_segment(&region_prefix);
                    if self.settings.regions.is_empty() || self.settings.regions.iter().any(|r| r == region) {
                        streams.push(region_prefix);
                    }
                }
            }
        }
        streams.sort();
        tracing::info!(streams = streams.len(), "discovered log streams");
        self.streams = streams;
        self.discovered_at_ms = Some(self.clock.now_ms());
        Ok(())
    }

    /// One poll: discovery when due, new files of every stream through the plugin into `out`,
    /// then deletion of due files. Stops between files when `shutdown` is set.
    pub async fn poll_once(&mut self, out: &mut dyn Sink, shutdown: &AtomicBool) -> Result<CycleReport, PollError> {
        let now = self.clock.now_ms();
        let due = self
            .discovered_at_ms
            .is_none_or(|t| now - t >= self.settings.discovery_interval.as_millis() as i64);
        if due {
            match unless_stopped(shutdown, self.discover()).await {
                Some(found) => found?,
                None => {
                    return Ok(CycleReport {
                        interrupted: true,
                        ..CycleReport::default()
                    })
                }
            }
        }
        if self.settings.start == Start::Now && self.checkpoint.started_ms.is_none() {
            self.change(Change::Started { ms: now });
        }
        let mut report = CycleReport::default();
        let today = Day::of_ms(now);
        for stream in self.streams.clone() {
            if shutdown.load(Ordering::Relaxed) {
                report.interrupted = true;
                break;
            }
            self.poll_stream(&stream, today, out, shutdown, &mut report).await?;
        }
        self.commit()?;
        if !report.interrupted {
            // Deletion is housekeeping: its failure must not hold up reading.
            if let Err(e) = self.delete_due(&mut report).await {
                tracing::warn!(error = %e, "deleting processed log files failed; will try again at the next poll");
                report.delete_error = Some(e.to_string());
            }
        }
        Ok(report)
    }

    async fn poll_stream(
        &mut self,
        stream: &str,
        today: Day,
        out: &mut dyn Sink,
        shutdown: &AtomicBool,
        report: &mut CycleReport,
    ) -> Result<(), PollError> {
        let oldest_open = today.minus(self.settings.relist_days - 1);
        if !self.checkpoint.streams.contains_key(stream) {
            let day = match self.settings.start {
                Start::Now => oldest_open,
                Start::Day(d) => d.min(today),
            };
            self.change(Change::DoneBefore {
                stream: stream.to_owned(),
                day,
            });
        }
        // With start = "now", files from before the first poll (by the time in their name) are
        // left unread, in every stream; a stream that appears later is read from its start.
        let skip_before = match self.settings.start {
            Start::Now => self.checkpoint.started_ms,
            Start::Day(_) => None,
        };
        let done_before = |p: &Self| p.checkpoint.streams.get(stream).and_then(|s| s.done_before);
        let mut day = done_before(self).unwrap_or(oldest_open);
        while day <= today {
            let day_prefix = format!("{stream}{}", day.key_part());
            let s3 = S3::new(&self.client, &self.settings.bucket);
            let Some(listed) = unless_stopped(shutdown, s3.list_all(&day_prefix, None, None)).await else {
                report.interrupted = true;
                self.commit()?;
                return Ok(());
            };
            let listed = listed?;
            let mut new = Vec::new();
            for o in listed.objects {
                if self.is_done(stream, day, &o.key) {
                    continue;
                }
                if skip_before.is_some_and(|t| file_time_ms(&o.key).unwrap_or(o.last_modified_ms) < t) {
                    report.skipped_existing += 1;
                    self.change(Change::Done {
                        stream: stream.to_owned(),
                        day,
                        key: o.key,
                    });
                } else {
                    new.push(o);
                }
            }
            if !new.is_empty() {
                let finished = self.read_objects(stream, day, new, out, shutdown, report).await?;
                if !finished {
                    self.commit()?;
                    return Ok(());
                }
            }
            // A day old enough not to be listed again is closed: its key set is dropped. Not while
            // it holds a file still to be retried.
            let retrying = self
                .checkpoint
                .failed
                .range(day_prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&day_prefix))
                .any(|(_, f)| !f.quarantined);
            if day < oldest_open && !retrying && done_before(self) == Some(day) {
                self.change(Change::DoneBefore {
                    stream: stream.to_owned(),
                    day: day.next(),
                });
            }
            day = day.next();
        }
        // Nothing to write when the poll found nothing new: idle streams cost no disk writes.
        self.commit()?;
        Ok(())
    }

    /// Fetches (with bounded concurrency, in key order) and reads `objects`; each file is
    /// recorded as done only after its events were written and acknowledged. Objects up to
    /// `stream_above_bytes` are fetched whole, several at a time; larger ones are downloaded when
    /// their turn comes and read from the connection as the plugin consumes them, so memory
    /// stays bounded whatever the bucket holds. Returns false when a shutdown stopped it early.
    #[allow(clippy::too_many_arguments)]
    async fn read_objects(
        &mut self,
        stream: &str,
        day: Day,
        objects: Vec<ObjectInfo>,
        out: &mut dyn Sink,
        shutdown: &AtomicBool,
        report: &mut CycleReport,
    ) -> Result<bool, PollError> {
        let client = self.client.clone();
        let bucket = self.settings.bucket.clone();
        let limit = self.settings.max_object_bytes;
        let stream_above = self.settings.stream_above_bytes;
        let mut fetches = stream::iter(objects.into_iter().map(|o| {
            let client = client.clone();
            let bucket = bucket.clone();
            async move {
                // The listing gives the size: an object over the limit is not even fetched.
                let fetched = if o.size > limit {
                    Fetched::Whole(Err(AwsError::TooLarge {
                        key: o.key.clone(),
                        size: o.size,
                        limit,
                    }))
                } else if o.size > stream_above {
                    Fetched::Later
                } else {
                    Fetched::Whole(S3::new(&client, &bucket).get(&o.key, limit).await)
                };
                (o, fetched)
            }
        }))
        .buffered(self.settings.max_concurrent_fetches.max(1));
        loop {
            let next = unless_stopped(shutdown, fetches.next()).await;
            let Some(Some((object, fetched))) = next else {
                report.interrupted |= next.is_none();
                return Ok(next.is_some());
            };
            if shutdown.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(false);
            }
            let input: Result<Box<dyn Read + Send>, AwsError> = match fetched {
                Fetched::Whole(bytes) => bytes.map(|b| Box::new(bytes::Buf::reader(b)) as Box<dyn Read + Send>),
                Fetched::Later => {
                    let s3 = S3::new(&client, &bucket);
                    let Some(started) = unless_stopped(shutdown, s3.get_stream(&object.key, limit)).await else {
                        report.interrupted = true;
                        return Ok(false);
                    };
                    started.map(|r| Box::new(r) as Box<dyn Read + Send>)
                }
            };
            let outcome = match input {
                Ok(input) => {
                    let skip_below = self.checkpoint.failed.get(&object.key).map_or(0, |f| f.records_done);
                    self.read_one(&object, input, skip_below, out, report)?
                }
                // Refused credentials are everybody's problem: stop the poll and back off.
                Err(e @ AwsError::Credentials { .. }) | Err(e @ AwsError::NoCredentials(_)) => return Err(e.into()),
                Err(e @ AwsError::TooLarge { .. }) | Err(e @ AwsError::NotFound { .. }) => Outcome::Failed {
                    reason: e.to_string(),
                    retry: Retry::Never,
                    records_done: 0,
                },
                // One object the key may not read (another KMS key, an archived object) or that
                // will not download: that file fails, the others go on, and it is tried again.
                Err(e) => Outcome::Failed {
                    reason: e.to_string(),
                    retry: Retry::Always,
                    records_done: 0,
                },
            };
            let complete = match outcome {
                Outcome::Done => {
                    if self.checkpoint.failed.contains_key(&object.key) {
                        self.change(Change::Recovered {
                            key: object.key.clone(),
                        });
                    }
                    self.change(Change::Done {
                        stream: stream.to_owned(),
                        day,
                        key: object.key.clone(),
                    });
                    true
                }
                Outcome::Failed {
                    reason,
                    retry,
                    records_done,
                } => {
                    report.failed.push((object.key.clone(), reason.clone()));
                    let mut entry = self.checkpoint.failed.get(&object.key).cloned().unwrap_or_default();
                    entry.attempts += 1;
                    entry.reason = reason;
                    entry.records_done = entry.records_done.max(records_done);
                    entry.quarantined = match retry {
                        Retry::Never => true,
                        Retry::Limited => entry.attempts >= MAX_ATTEMPTS,
                        Retry::Always => false,
                    };
                    if entry.quarantined {
                        // Recorded in the checkpoint and kept in the bucket; not read again.
                        tracing::error!(key = %object.key, attempts = entry.attempts, error = %entry.reason, "log file quarantined: kept in the bucket, not read again");
                    } else {
                        tracing::warn!(key = %object.key, attempts = entry.attempts, error = %entry.reason, "log file failed; will try again at the next poll");
                    }
                    let quarantined = entry.quarantined;
                    self.change(Change::Failed {
                        key: object.key.clone(),
                        file: entry,
                    });
                    if quarantined {
                        self.change(Change::Done {
                            stream: stream.to_owned(),
                            day,
                            key: object.key.clone(),
                        });
                    }
                    false
                }
            };
            // A file that could not be read to its end is kept in the bucket: deleting it would
            // lose the events after the failure.
            if let (Some(after), true) = (self.settings.delete_after, complete) {
                let born = file_time_ms(&object.key).unwrap_or(object.last_modified_ms);
                self.change(Change::DeleteLater {
                    entry: PendingDelete {
                        due_ms: born.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
                        key: object.key.clone(),
                    },
                });
            }
            self.commit()?;
        }
    }

    /// Reads one file through the plugin and writes its events, acknowledged by the sink (flushed,
    /// and fsynced for a file) before the caller records the file as done.
    /// Says whether the file was read to its end, and if not, whether to try it again. Records
    /// before `skip_below` were written by an earlier attempt and are not written again.
    fn read_one(
        &self,
        object: &ObjectInfo,
        input: Box<dyn Read + Send>,
        skip_below: u32,
        out: &mut dyn Sink,
        report: &mut CycleReport,
    ) -> Result<Outcome, PollError> {
        let meta = ObjectMeta {
            key: object.key.clone(),
            size: object.size,
            last_modified_ms: Some(object.last_modified_ms),
        };
        let processed_at_ms = self.clock.now_ms();
        let delayed_after_ms = self.settings.delayed_after.as_millis() as i64;
        let drop_read_only = self.settings.drop_read_only;
        let mut written = 0u64;
        let mut dropped = 0u64;
        let mut repeated = 0u64;
        let mut done_below = skip_below;
        let mut buf = Vec::with_capacity(1 << 20);
        let result = tokio::task::block_in_place(|| {
            self.runtime.read_file(input, &meta, |batch| {
                buf.clear();
                for event in batch {
                    if event.index < skip_below {
                        repeated += 1;
                        continue;
                    }
                    // Only an unbroken run of records from the first counts as done: a plugin
                    // that skipped or reordered indexes must not make a retry skip records that
                    // were never written.
                    if event.index == done_below {
                        done_below += 1;
                    }
                    if drop_read_only && event.read_only {
                        dropped += 1;
                        continue;
                    }
                    let delivery = Delivery::new(
                        &self.settings.bucket,
                        object.last_modified_ms,
                        processed_at_ms,
                        event.event_time_ms,
                        delayed_after_ms,
                    );
                    ndjson::write_event_with(&mut buf, event, &object.key, Some(&delivery))?;
                    written += 1;
                }
                out.write_all(&buf)?;
                Ok(())
            })
        });
        report.files += 1;
        report.events += written;
        report.dropped_read_only += dropped;
        report.not_repeated += repeated;
        let outcome = match result {
            Ok(_) => Outcome::Done,
            Err((_, FileFailure::Output(e))) => {
                return Err(PollError::Output(std::io::Error::other(format!("{e:#}"))));
            }
            // The host could not hand over the bytes: nothing wrong with the file.
            Err((_, failure @ FileFailure::Input(FileError::ReadFailed(_)))) => Outcome::Failed {
                reason: failure.to_string(),
                retry: Retry::Always,
                records_done: done_below,
            },
            // The file's contents are bad: reading it again gives the same answer.
            Err((_, failure @ FileFailure::Input(_))) => Outcome::Failed {
                reason: failure.to_string(),
                retry: Retry::Never,
                records_done: done_below,
            },
            // A limit or a plugin fault: worth a few more tries (a later plugin may do better).
            Err((_, failure @ FileFailure::Trap(_))) => Outcome::Failed {
                reason: failure.to_string(),
                retry: Retry::Limited,
                records_done: done_below,
            },
        };
        out.acknowledge().map_err(PollError::Output)?;
        Ok(outcome)
    }

    /// Deletes processed files whose time has come, in batches of up to 1000.
    async fn delete_due(&mut self, report: &mut CycleReport) -> Result<(), PollError> {
        if self.settings.delete_after.is_none() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let due: Vec<PendingDelete> = self
            .checkpoint
            .pending_delete
            .iter()
            .take_while(|p| p.due_ms <= now)
            .cloned()
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let (client, bucket) = (self.client.clone(), self.settings.bucket.clone());
        let s3 = S3::new(&client, &bucket);
        for chunk in due.chunks(1000) {
            let keys: Vec<String> = chunk.iter().map(|p| p.key.clone()).collect();
            let failed = s3.delete(&keys).await?;
            let failed_keys: BTreeSet<&str> = failed.iter().map(|f| f.key.as_str()).collect();
            let mut by_code: std::collections::BTreeMap<&str, (usize, &str)> = Default::default();
            for f in &failed {
                let e = by_code.entry(f.code.as_str()).or_insert((0, f.message.as_str()));
                e.0 += 1;
            }
            for (code, (n, message)) in by_code {
                tracing::warn!(
                    code,
                    files = n,
                    message,
                    "could not delete processed log files; will retry"
                );
            }
            for p in chunk {
                if !failed_keys.contains(p.key.as_str()) {
                    self.change(Change::Deleted { entry: p.clone() });
                    report.deleted += 1;
                }
            }
            self.commit()?;
        }
        Ok(())
    }
}
