//! Following a trail bucket: find the streams, list the recent days, read what is new.
//!
//! Costs little: streams are found with delimiter listings (never a scan of the bucket), and
//! each poll lists only the day prefixes still open. Misses nothing: a file delivered late under
//! an older key than the newest seen is still found, because the current and previous days are
//! listed whole and compared with the keys already done (trusting StartAfter alone would skip it).

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::layout::{file_time_ms, is_account_id, is_org_id, last_segment, Day};
use crate::aws::s3::{ObjectInfo, S3};
use crate::aws::{AwsClient, AwsError};
use crate::output::ndjson::{self, Delivery};
use crate::runtime::bindings::types::ObjectMeta;
use crate::runtime::PluginRuntime;
use crate::state::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, PendingDelete, StreamState};

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
    /// Files found at the first poll with `start = "now"` and left unread.
    pub skipped_existing: u64,
    /// Files that could not be read, with why (their events before the failure were written).
    pub failed: Vec<(String, String)>,
    /// Files deleted.
    pub deleted: u64,
    /// Whether the cycle stopped early for a shutdown.
    pub interrupted: bool,
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

/// Follows one bucket.
pub struct Poller {
    client: Arc<AwsClient>,
    runtime: Arc<PluginRuntime>,
    settings: PollSettings,
    store: CheckpointStore,
    checkpoint: Checkpoint,
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
        store: CheckpointStore,
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
            clock,
            streams: Vec::new(),
            discovered_at_ms: None,
        })
    }

    /// The streams found by the last discovery.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
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
    pub async fn poll_once(
        &mut self,
        out: &mut (dyn Write + Send),
        shutdown: &AtomicBool,
    ) -> Result<CycleReport, PollError> {
        let now = self.clock.now_ms();
        let due = self
            .discovered_at_ms
            .is_none_or(|t| now - t >= self.settings.discovery_interval.as_millis() as i64);
        if due {
            self.discover().await?;
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
        if !report.interrupted {
            self.delete_due(&mut report).await?;
        }
        Ok(report)
    }

    async fn poll_stream(
        &mut self,
        stream: &str,
        today: Day,
        out: &mut (dyn Write + Send),
        shutdown: &AtomicBool,
        report: &mut CycleReport,
    ) -> Result<(), PollError> {
        let oldest_open = today.minus(self.settings.relist_days - 1);
        let first_run = !self.checkpoint.streams.contains_key(stream);
        let mut state = self
            .checkpoint
            .streams
            .get(stream)
            .cloned()
            .unwrap_or_else(|| StreamState {
                done_before: Some(match self.settings.start {
                    Start::Now => oldest_open,
                    Start::Day(d) => d.min(today),
                }),
                processed: Default::default(),
            });
        let seed = first_run && self.settings.start == Start::Now;
        let mut day = state.done_before.unwrap_or(oldest_open);
        while day <= today {
            let listed = {
                let s3 = S3::new(&self.client, &self.settings.bucket);
                s3.list_all(&format!("{stream}{}", day.key_part()), None, None).await?
            };
            let done = state.processed.entry(day).or_default();
            let new: Vec<ObjectInfo> = listed.objects.into_iter().filter(|o| !done.contains(&o.key)).collect();
            if seed {
                report.skipped_existing += new.len() as u64;
                done.extend(new.into_iter().map(|o| o.key));
            } else if !new.is_empty() {
                let finished = self.read_objects(day, new, &mut state, out, shutdown, report).await?;
                if !finished {
                    self.checkpoint.streams.insert(stream.to_owned(), state);
                    return Ok(());
                }
            }
            if day < oldest_open {
                // Old enough not to be listed again: drop its key set.
                state.processed.remove(&day);
                state.done_before = Some(day.next());
            }
            day = day.next();
        }
        self.checkpoint.streams.insert(stream.to_owned(), state);
        self.store.commit(&self.checkpoint)?;
        Ok(())
    }

    /// Fetches (with bounded concurrency, in key order) and reads `objects`; each file is
    /// recorded as done only after its events were written and flushed. Returns false when a
    /// shutdown stopped it early.
    async fn read_objects(
        &mut self,
        day: Day,
        objects: Vec<ObjectInfo>,
        state: &mut StreamState,
        out: &mut (dyn Write + Send),
        shutdown: &AtomicBool,
        report: &mut CycleReport,
    ) -> Result<bool, PollError> {
        let client = self.client.clone();
        let bucket = self.settings.bucket.clone();
        let limit = self.settings.max_object_bytes;
        let mut fetches = stream::iter(objects.into_iter().map(|o| {
            let client = client.clone();
            let bucket = bucket.clone();
            async move {
                // The listing gives the size: an object over the limit is not even fetched.
                let bytes = if o.size > limit {
                    Err(AwsError::TooLarge {
                        key: o.key.clone(),
                        size: o.size,
                        limit,
                    })
                } else {
                    S3::new(&client, &bucket).get(&o.key, limit).await
                };
                (o, bytes)
            }
        }))
        .buffered(self.settings.max_concurrent_fetches.max(1));
        while let Some((object, bytes)) = fetches.next().await {
            if shutdown.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(false);
            }
            let bytes = match bytes {
                Ok(b) => Some(b),
                Err(e @ AwsError::TooLarge { .. }) | Err(e @ AwsError::NotFound { .. }) => {
                    tracing::error!(key = %object.key, error = %e, "log file not read");
                    report.failed.push((object.key.clone(), e.to_string()));
                    None
                }
                Err(e) => return Err(e.into()),
            };
            let complete = match bytes {
                Some(bytes) => self.read_one(&object, &bytes, out, report)?,
                None => false,
            };
            state.processed.entry(day).or_default().insert(object.key.clone());
            // A file that could not be read to its end is kept in the bucket for inspection:
            // deleting it would lose the events after the failure.
            if let (Some(after), true) = (self.settings.delete_after, complete) {
                let born = file_time_ms(&object.key).unwrap_or(object.last_modified_ms);
                self.checkpoint.pending_delete.insert(PendingDelete {
                    due_ms: born + after.as_millis() as i64,
                    key: object.key.clone(),
                });
            }
            // Commit with this stream's progress included.
            let stream_key = stream_of(&object.key);
            self.checkpoint.streams.insert(stream_key, state.clone());
            self.store.commit(&self.checkpoint)?;
        }
        Ok(true)
    }

    /// Reads one file through the plugin and writes its events, flushed: the acknowledgement.
    /// Returns whether the file was read to its end.
    fn read_one(
        &self,
        object: &ObjectInfo,
        bytes: &bytes::Bytes,
        out: &mut (dyn Write + Send),
        report: &mut CycleReport,
    ) -> Result<bool, PollError> {
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
        let mut buf = Vec::with_capacity(1 << 20);
        let result = tokio::task::block_in_place(|| {
            let input = Box::new(bytes::Buf::reader(bytes.clone()));
            self.runtime.read_file(input, &meta, |batch| {
                buf.clear();
                for event in batch {
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
        let complete = match result {
            Ok(_) => true,
            Err((_, crate::runtime::FileFailure::Output(e))) => {
                return Err(PollError::Output(std::io::Error::other(format!("{e:#}"))));
            }
            Err((_, failure)) => {
                // The file is bad (or trips a limit): it is recorded and kept, not retried forever.
                tracing::error!(key = %object.key, error = %failure, "log file failed; its events before the failure were written");
                report.failed.push((object.key.clone(), failure.to_string()));
                false
            }
        };
        out.flush().map_err(PollError::Output)?;
        Ok(complete)
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
        let s3 = S3::new(&self.client, &self.settings.bucket);
        for chunk in due.chunks(1000) {
            let keys: Vec<String> = chunk.iter().map(|p| p.key.clone()).collect();
            let failed = s3.delete(&keys).await?;
            let failed_keys: BTreeSet<&str> = failed.iter().map(|f| f.key.as_str()).collect();
            for f in &failed {
                tracing::warn!(key = %f.key, code = %f.code, message = %f.message, "could not delete a processed log file; will retry");
            }
            for p in chunk {
                if !failed_keys.contains(p.key.as_str()) {
                    self.checkpoint.pending_delete.remove(p);
                    report.deleted += 1;
                }
            }
            self.store.commit(&self.checkpoint)?;
        }
        Ok(())
    }
}

/// The stream prefix of a log file key (everything before `YYYY/MM/DD/<file>`).
fn stream_of(key: &str) -> String {
    let mut cut = key.len();
    for _ in 0..4 {
        cut = key[..cut].rfind('/').unwrap_or(0);
    }
    key[..cut + 1].to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stream_of_a_key_is_its_region_prefix() {
        assert_eq!(
            super::stream_of("p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz"),
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/"
        );
    }
}
