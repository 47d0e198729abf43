//! Following a trail bucket: find the streams, list the recent days, hand what is new to the
//! pipeline, and delete what is done once it is due.
//!
//! Costs little: streams are found with delimiter listings (never a scan of the bucket), each
//! poll lists only the day prefixes still open, and the closed days of a backfill are read in
//! one walk of the keys after the stream's cursor (a listing per 1000 files, not per day). Misses nothing: a file delivered late under
//! an older key than the newest seen is still found, because the current and previous days are
//! listed whole and compared with the keys already done (trusting StartAfter alone would skip it):
//! today at every poll, the open days before it every `relist_interval`, and each day once more
//! by the walk that closes it.
//! A day is closed (the stream's cursor moves past it) only once every file listed in it is done
//! or quarantined, after the files submitted before are settled.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::aws::s3::{ObjectInfo, S3};
use crate::aws::{AwsClient, AwsError};
use crate::layout::{file_time_ms, is_account_id, is_org_id, last_segment, Day};
use crate::pipeline::work::{Input, InputError, Retry, WorkItem};
use crate::pipeline::{unless_stopped, Cycle, CycleError, CycleReport, Ledger, Pipeline};
use crate::state::checkpoint::{Change, Checkpoint, PendingDelete};

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
    /// Days listed whole (today and the days before it), for late files.
    pub relist_days: i64,
    /// The open days before today are listed at most this often per stream (today at every
    /// poll); a day is listed once more when it closes, in the walk of closed days.
    pub relist_interval: Duration,
    /// Objects larger than this are refused.
    pub max_object_bytes: u64,
    /// Objects larger than this are read from the connection as they are used rather than
    /// fetched whole ahead of time.
    pub stream_above_bytes: u64,
    /// Delete processed files this long after their own timestamp; `None`: never delete.
    pub delete_after: Option<Duration>,
    /// Find streams again after this long.
    pub discovery_interval: Duration,
}

/// The S3 source: discovery, listings, fetches, deletion.
pub struct S3Source {
    client: Arc<AwsClient>,
    settings: PollSettings,
    streams: Vec<String>,
    discovered_at_ms: Option<i64>,
    /// When each stream's open days before today were last listed.
    older_listed_ms: HashMap<String, i64>,
}

/// A stream's cursor key for `day`: every key before it is done.
fn cursor_key(stream: &str, day: Day) -> String {
    format!("{stream}{}", day.key_part())
}

/// The day a stream's cursor stands at.
fn cursor_day(cp: &Checkpoint, stream: &str) -> Option<Day> {
    let part = cp.cursor(stream)?.strip_prefix(stream)?.strip_suffix('/')?;
    let mut it = part.split('/');
    let (y, m, d) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    Day::from_ymd(y, m, d)
}

/// The day in a log file's key under `stream` (`<stream>YYYY/MM/DD/…`).
fn key_day(stream: &str, key: &str) -> Option<Day> {
    let mut it = key.strip_prefix(stream)?.splitn(4, '/');
    let (y, m, d) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    it.next()?;
    // Only the layout CloudTrail writes (zero-padded): keys then sort by day, as the walk needs.
    Day::from_ymd(y, m, d).filter(|&day| key.starts_with(&cursor_key(stream, day)))
}

/// Moves `stream`'s cursor from `from` to `to` once every file of `keys` is done, when the
/// cursor still stands at `from` (the days before closed).
fn close_days(cycle: &mut Cycle<'_>, stream: &str, from: Day, to: Day, keys: Vec<String>) {
    let stream = stream.to_owned();
    cycle.marker(move |cp| {
        let at = cp.cursor(&stream) == Some(cursor_key(&stream, from).as_str());
        if at && keys.iter().all(|k| cp.is_done(k)) {
            vec![Change::Cursor {
                before: cursor_key(&stream, to),
                prefix: stream,
            }]
        } else {
            Vec::new()
        }
    });
}

/// An object's bytes, fetched whole or read from the connection as the plugin uses them.
fn fetch(client: Arc<AwsClient>, bucket: String, o: &ObjectInfo, limit: u64, stream_above: u64) -> WorkItem {
    fetch_object(
        client,
        bucket,
        o.key.clone(),
        Some(o.size),
        Some(o.last_modified_ms),
        limit,
        stream_above,
    )
}

/// The work item of object `key` of `bucket`: fetched whole, or read from the connection as the
/// plugin uses it when it is large or its size is not known (a notification that does not say).
pub(crate) fn fetch_object(
    client: Arc<AwsClient>,
    bucket: String,
    key: String,
    size: Option<u64>,
    last_modified_ms: Option<i64>,
    limit: u64,
    stream_above: u64,
) -> WorkItem {
    let item_key = key.clone();
    let fetch = Box::pin(async move {
        let s3 = S3::new(&client, &bucket);
        tracing::debug!(target: crate::STAGE, key = %key, "fetching");
        // The listing gives the size: an object over the limit is not even fetched.
        let got: Result<Input, AwsError> = if let Some(size) = size.filter(|&s| s > limit) {
            Err(AwsError::TooLarge { key, size, limit })
        } else if size.is_none_or(|s| s > stream_above) {
            s3.get_stream(&key, limit).await.map(|r| Box::new(r) as Input)
        } else {
            s3.get(&key, limit)
                .await
                .map(|b| Box::new(bytes::Buf::reader(b)) as Input)
        };
        got.map_err(|e| match e {
            // Refused credentials are everybody's problem: stop the poll and back off.
            e @ (AwsError::Credentials { .. } | AwsError::NoCredentials(_)) => InputError::Fatal(e),
            e @ (AwsError::TooLarge { .. } | AwsError::NotFound { .. }) => InputError::File {
                reason: e.to_string(),
                retry: Retry::Never,
            },
            // One object the key may not read (another KMS key, an archived object) or that
            // will not download: that file fails, the others go on, and it is tried again.
            e => InputError::File {
                reason: e.to_string(),
                retry: Retry::Always,
            },
        })
    });
    WorkItem {
        key: item_key,
        size: size.unwrap_or(0),
        last_modified_ms,
        fetch,
        bucket: None,
        delete_due_ms: None,
    }
}

impl S3Source {
    /// A source following `settings.bucket`.
    pub fn new(client: Arc<AwsClient>, mut settings: PollSettings) -> Self {
        if !settings.prefix.is_empty() && !settings.prefix.ends_with('/') {
            settings.prefix.push('/');
        }
        settings.relist_days = settings.relist_days.max(1);
        S3Source {
            client,
            settings,
            streams: Vec::new(),
            discovered_at_ms: None,
            older_listed_ms: HashMap::new(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The client.
    pub fn client(&self) -> &Arc<AwsClient> {
        &self.client
    }

    /// The streams found by the last discovery.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// Finds the (account, region) streams with delimiter listings.
    async fn discover(&mut self, now_ms: i64) -> Result<(), AwsError> {
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
        self.discovered_at_ms = Some(now_ms);
        Ok(())
    }

    /// One poll: discovery when due, new files of every stream through `pipeline`, then
    /// deletion of due files. Stops between files when `shutdown` is set.
    pub async fn poll_once(
        &mut self,
        pipeline: &mut Pipeline,
        shutdown: Arc<AtomicBool>,
    ) -> Result<CycleReport, CycleError> {
        let now = pipeline.clock().now_ms();
        let due = self
            .discovered_at_ms
            .is_none_or(|t| now - t >= self.settings.discovery_interval.as_millis() as i64);
        if due {
            match unless_stopped(&shutdown, self.discover(now)).await {
                Some(found) => found?,
                None => {
                    return Ok(CycleReport {
                        interrupted: true,
                        ..CycleReport::default()
                    })
                }
            }
        }
        let mut cycle = pipeline.cycle(shutdown.clone())?;
        if self.settings.start == Start::Now && cycle.checkpoint().started_ms.is_none() {
            cycle.change(Change::Started { ms: now });
        }
        let today = Day::of_ms(now);
        let mut listed: Result<(), CycleError> = Ok(());
        for stream in self.streams.clone() {
            if cycle.stopping() {
                break;
            }
            listed = self.poll_stream(&mut cycle, &stream, today, &shutdown).await;
            if listed.is_err() {
                break;
            }
        }
        // Whatever stopped the listing, what was handed over is acknowledged and committed.
        let mut report = cycle.finish().await?;
        listed?;
        if !report.interrupted {
            // Deletion is housekeeping: its failure must not hold up reading.
            let now = pipeline.clock().now_ms();
            if let Err(e) = self.delete_due(pipeline.ledger(), now, &mut report).await {
                tracing::warn!(error = %e, "deleting processed log files failed; will try again at the next poll");
                report.delete_error = Some(e.to_string());
            }
        }
        Ok(report)
    }

    async fn poll_stream(
        &mut self,
        cycle: &mut Cycle<'_>,
        stream: &str,
        today: Day,
        shutdown: &AtomicBool,
    ) -> Result<(), CycleError> {
        let oldest_open = today.minus(self.settings.relist_days - 1);
        if cycle.checkpoint().cursor(stream).is_none() {
            let day = match self.settings.start {
                Start::Now => oldest_open,
                Start::Day(d) => d.min(today),
            };
            cycle.change(Change::Cursor {
                prefix: stream.to_owned(),
                before: cursor_key(stream, day),
            });
        }
        // With start = "now", files from before the first poll (by the time in their name) are
        // left unread, in every stream; a stream that appears later is read from its start.
        let skip_before = match self.settings.start {
            Start::Now => cycle.checkpoint().started_ms,
            Start::Day(_) => None,
        };
        let mut day = cursor_day(cycle.checkpoint(), stream).unwrap_or(oldest_open);
        if day < oldest_open {
            if !self
                .walk_closed_days(cycle, stream, day, oldest_open, skip_before, shutdown)
                .await?
            {
                return Ok(());
            }
            day = oldest_open;
        }
        // The open days, each listed whole: a late file under an older key is found. Those
        // before today, every relist_interval: a late file there waits at most that long, and
        // the walk lists its day once more when it closes.
        let now = cycle.now_ms();
        let interval = i64::try_from(self.settings.relist_interval.as_millis()).unwrap_or(i64::MAX);
        let older_due = self.older_listed_ms.get(stream).is_none_or(|&t| now - t >= interval);
        while day <= today {
            if day < today && !older_due {
                day = day.next();
                continue;
            }
            let day_prefix = format!("{stream}{}", day.key_part());
            let s3 = S3::new(&self.client, &self.settings.bucket);
            tracing::debug!(target: crate::STAGE, prefix = %day_prefix, "listing");
            let Some(listed) = unless_stopped(shutdown, s3.list_all(&day_prefix, None, None)).await else {
                cycle.report().interrupted = true;
                return Ok(());
            };
            for o in listed?.objects {
                if !self.submit_object(cycle, o, skip_before).await? {
                    return Ok(());
                }
            }
            day = day.next();
        }
        if older_due {
            self.older_listed_ms.insert(stream.to_owned(), now);
        }
        Ok(())
    }

    /// Reads the closed days of `stream`, from `from` up to `open` (not included), in one walk
    /// of the keys after the cursor, 1000 to a page, across days: a backfill of years costs a
    /// listing per 1000 files instead of one per calendar day. Each day is closed in turn once
    /// every file listed in it is done (read, or quarantined), after the files submitted before
    /// are settled; a day left open stops the days after it from closing, and the next poll
    /// walks again from it (what is done is skipped). False when the cycle stopped.
    async fn walk_closed_days(
        &self,
        cycle: &mut Cycle<'_>,
        stream: &str,
        from: Day,
        open: Day,
        skip_before: Option<i64>,
        shutdown: &AtomicBool,
    ) -> Result<bool, CycleError> {
        let s3 = S3::new(&self.client, &self.settings.bucket);
        let start_after = cursor_key(stream, from);
        let end = cursor_key(stream, open);
        let mut token: Option<String> = None;
        // The day being gathered with its keys, and the cursor its closing expects to find.
        let mut day: Option<(Day, Vec<String>)> = None;
        let mut cursor = from;
        'pages: loop {
            tracing::debug!(target: crate::STAGE, prefix = %stream, "listing");
            let listing = s3.list(stream, None, Some(&start_after), token.as_deref());
            let Some(page) = unless_stopped(shutdown, listing).await else {
                cycle.report().interrupted = true;
                return Ok(false);
            };
            let page = page?;
            for o in page.objects {
                if o.key >= end {
                    break 'pages;
                }
                // Not a log file's key (nothing CloudTrail writes): a day listing would not see it.
                let Some(d) = key_day(stream, &o.key) else { continue };
                if let Some((gathered, keys)) = day.take_if(|(g, _)| *g != d) {
                    close_days(cycle, stream, cursor, gathered.next(), keys);
                    cursor = gathered.next();
                }
                day.get_or_insert_with(|| (d, Vec::new())).1.push(o.key.clone());
                if !self.submit_object(cycle, o, skip_before).await? {
                    return Ok(false);
                }
            }
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if let Some((gathered, keys)) = day.take() {
            close_days(cycle, stream, cursor, gathered.next(), keys);
            cursor = gathered.next();
        }
        if cursor < open {
            close_days(cycle, stream, cursor, open, Vec::new());
        }
        Ok(true)
    }

    /// Hands `o` to the pipeline unless it is done or older than `skip_before` (start = "now");
    /// false when the cycle stopped.
    async fn submit_object(
        &self,
        cycle: &mut Cycle<'_>,
        o: ObjectInfo,
        skip_before: Option<i64>,
    ) -> Result<bool, CycleError> {
        if cycle.checkpoint().is_done(&o.key) {
            return Ok(true);
        }
        if skip_before.is_some_and(|t| file_time_ms(&o.key).unwrap_or(o.last_modified_ms) < t) {
            cycle.report().skipped_existing += 1;
            cycle.change(Change::Done { key: o.key });
            return Ok(true);
        }
        let mut item = fetch(
            self.client.clone(),
            self.settings.bucket.clone(),
            &o,
            self.settings.max_object_bytes,
            self.settings.stream_above_bytes,
        );
        item.bucket = Some(self.settings.bucket.clone());
        item.delete_due_ms = self.settings.delete_after.map(|after| {
            let born = file_time_ms(&o.key).unwrap_or(o.last_modified_ms);
            born.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
        });
        cycle.submit(item).await
    }

    /// Deletes processed files whose time has come.
    async fn delete_due(&mut self, ledger: &mut Ledger, now: i64, report: &mut CycleReport) -> Result<(), CycleError> {
        if self.settings.delete_after.is_none() {
            return Ok(());
        }
        delete_due(&self.client, &self.settings.bucket, ledger, now, report).await
    }
}

/// Deletes the processed files of `bucket` whose time has come, in batches of up to 1000.
pub(crate) async fn delete_due(
    client: &AwsClient,
    bucket: &str,
    ledger: &mut Ledger,
    now: i64,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let due: Vec<PendingDelete> = ledger
        .checkpoint()
        .pending_delete
        .iter()
        .take_while(|p| p.due_ms <= now)
        .cloned()
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let s3 = S3::new(client, bucket);
    for chunk in due.chunks(1000) {
        let keys: Vec<String> = chunk.iter().map(|p| p.key.clone()).collect();
        tracing::debug!(target: crate::STAGE, files = keys.len(), "deleting");
        let failed = s3.delete(&keys).await?;
        let failed_keys: BTreeSet<&str> = failed.iter().map(|f| f.key.as_str()).collect();
        let mut by_code: std::collections::BTreeMap<&str, (usize, &str)> = Default::default();
        for f in &failed {
            let e = by_code.entry(f.code.as_str()).or_insert((0, f.message.as_str()));
            e.0 += 1;
        }
        for (code, (n, message)) in by_code {
            if crate::aws::error::is_denied_code(code) {
                tracing::warn!(
                    code,
                    files = n,
                    message,
                    "could not delete processed log files: the IAM policy must allow s3:DeleteObject; will retry"
                );
            } else {
                tracing::warn!(
                    code,
                    files = n,
                    message,
                    "could not delete processed log files; will retry"
                );
            }
        }
        for p in chunk {
            if !failed_keys.contains(p.key.as_str()) {
                ledger.change(Change::Deleted { entry: p.clone() });
                report.deleted += 1;
            }
        }
        ledger.commit()?;
    }
    Ok(())
}
