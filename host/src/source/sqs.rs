//! Following a trail bucket through the S3 event notifications on an SQS queue.
//!
//! Each receive long-polls for up to ten messages; each message names objects (every format
//! `notification` reads), which go through the same pipeline as polled files. A message is
//! deleted only once every object it names is done — every event acknowledged by every sink
//! and committed to the checkpoint — so that a crash, a failed sink or a `kill -9` leaves it to
//! come back after its visibility timeout, to this instance or another one. While its objects
//! are read, its visibility is extended (at half the timeout), so that a large object is not
//! handed to a second instance meanwhile; the last attempt a message is allowed
//! (`max_receives`) is not extended, and a failure then is reported as poison, for the queue's
//! redrive policy to move it to the dead-letter queue. A message that is no notification is
//! reported with its id and start and left for the dead-letter queue too.
//!
//! Several instances may read one queue: each message goes to one of them at a time. Each
//! instance has its own checkpoint; an object read again because its message came back is
//! skipped when this instance had it done (remembered for the de-duplication window), and its
//! events are left out by `eventID` when another file delivered them within the window.
//!
//! Work is done in cycles: a cycle receives until the queue is empty or `cycle_length` has
//! passed, then waits for what it handed over, so that `run`'s housekeeping (plugin upgrades,
//! trail checks, deletion of processed files) happens between cycles.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::aws::sqs::{Message, QueueAttributes, Sqs, BATCH};
use crate::aws::{AwsClient, AwsError};
use crate::clock::Clock;
use crate::layout::{classify, file_time_ms, KeyKind};
use crate::metrics::Metrics;
use crate::pipeline::{unless_stopped, Cycle, CycleError, CycleReport, Pipeline};
use crate::source::notification::{self, Notification};
use crate::source::s3_poll::{delete_due, fetch_object};
use crate::state::checkpoint::{Change, Checkpoint};

/// Without a redrive policy or `max_receives`, the receive count that makes a message poison.
pub const DEFAULT_MAX_RECEIVES: u32 = 10;

/// How the queue is read.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// The queue's URL.
    pub queue_url: String,
    /// The bucket the trail writes to: objects of another bucket are not read.
    pub bucket: String,
    /// Key prefix before `AWSLogs/` ("" or ending in `/`).
    pub prefix: String,
    /// Only these accounts (empty: all).
    pub accounts: Vec<String>,
    /// Only these regions (empty: all).
    pub regions: Vec<String>,
    /// Also read `CloudTrail-Insight/`.
    pub include_insight: bool,
    /// Longest wait of a receive (1–20 s).
    pub wait_time: Duration,
    /// The receive count that makes a message poison (`None`: the redrive policy's, else 10).
    pub max_receives: Option<u32>,
    /// What messages are extended by (`None`: the queue's visibility timeout).
    pub visibility_timeout: Option<Duration>,
    /// Objects larger than this are refused.
    pub max_object_bytes: u64,
    /// Objects larger than this (or of unknown size) are read from the connection as used.
    pub stream_above_bytes: u64,
    /// Delete processed files this long after their own timestamp; `None`: never delete.
    pub delete_after: Option<Duration>,
    /// A cycle receives for at most this long before it waits for what it handed over.
    pub cycle_length: Duration,
    /// Objects done are remembered one by one this long, to skip them when notified again.
    pub remember_done: Duration,
}

/// A message being worked on, by id.
#[derive(Debug, Clone)]
struct InFlight {
    receipt: String,
    /// When to extend its visibility next, ms; `None`: never (its last attempt).
    extend_at_ms: Option<i64>,
    /// When its visibility runs out at the earliest, as far as this instance can tell (from
    /// the answer to its receive, then from each extension sent), ms.
    lapses_at_ms: i64,
}

/// How long after a receive (or an extension) a message is extended: a third of the
/// timeout, so that an extension answered slowly (a loaded queue, a slow network) still lands
/// well before the timeout runs out.
fn extension_interval(visibility: Duration) -> i64 {
    i64::try_from(visibility.as_millis() / 3).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

type Registry = Arc<Mutex<HashMap<String, InFlight>>>;

/// How a message ended, worked out once everything submitted before it settled.
#[derive(Debug)]
struct Outcome {
    id: String,
    receipt: String,
    result: MessageResult,
}

#[derive(Debug)]
enum MessageResult {
    /// Every object it names is done (or not for this trailwatch to read): delete it.
    Done,
    /// Some object is not done: left to come back; `poison` when it had its last attempt.
    NotDone {
        why: Vec<String>,
        poison: bool,
        receive: u32,
        max: u32,
    },
}

/// What becomes of an object a message names.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Read,
    /// Not for this trailwatch to read (a digest, another object, Insight when left out).
    Skip,
    /// A log file this instance leaves out: the message is kept, with why.
    Hold(String),
}

/// The queue source.
pub struct SqsSource {
    /// Signed for the bucket's region (GetObject, DeleteObjects).
    s3: Arc<AwsClient>,
    /// Signed for the queue's region.
    sqs: Arc<AwsClient>,
    settings: QueueSettings,
    metrics: Arc<Metrics>,
    /// Learned from the queue at the first cycle.
    queue: Option<Resolved>,
    inflight: Registry,
    outcomes: Option<mpsc::UnboundedSender<Outcome>>,
    deleter: Option<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
    /// Keys this instance had done, oldest first, with when: forgotten after `remember_done`.
    remembered: VecDeque<(i64, String)>,
    /// `remembered` was seeded with the checkpoint's keys.
    seeded: bool,
    /// Keys handed over in this cycle: a second notification of one is not read again while
    /// the first is under way (its message's marker waits for the first to settle).
    submitted: HashSet<String>,
}

/// What the queue's attributes and the settings come to.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    visibility: Duration,
    max_receives: u32,
}

impl SqsSource {
    /// A source reading `settings.queue_url` through `sqs`, objects through `s3`.
    pub fn new(s3: Arc<AwsClient>, sqs: Arc<AwsClient>, mut settings: QueueSettings, metrics: Arc<Metrics>) -> Self {
        if !settings.prefix.is_empty() && !settings.prefix.ends_with('/') {
            settings.prefix.push('/');
        }
        SqsSource {
            s3,
            sqs,
            settings,
            metrics,
            queue: None,
            inflight: Arc::default(),
            outcomes: None,
            deleter: None,
            heartbeat: None,
            remembered: VecDeque::new(),
            seeded: false,
            submitted: HashSet::new(),
        }
    }

    /// The queue client (its request counts).
    pub fn queue_client(&self) -> &Arc<AwsClient> {
        &self.sqs
    }

    /// Reads the queue's attributes and starts the tasks that delete finished messages and
    /// extend the visibility of those in flight.
    async fn start(&mut self) -> Result<Resolved, AwsError> {
        if let Some(q) = self.queue {
            return Ok(q);
        }
        let attributes = Sqs::new(&self.sqs, &self.settings.queue_url).attributes().await?;
        let q = resolve(&self.settings, &attributes);
        match (&attributes.dead_letter_arn, attributes.max_receive_count) {
            (Some(dlq), Some(n)) => tracing::info!(
                queue = %self.settings.queue_url,
                dead_letter_queue = %dlq,
                max_receive_count = n,
                visibility_timeout_secs = q.visibility.as_secs(),
                "reading the queue"
            ),
            _ => tracing::warn!(
                queue = %self.settings.queue_url,
                visibility_timeout_secs = q.visibility.as_secs(),
                "the queue has no dead-letter queue (redrive policy): a message that cannot be read comes back \
                 for ever; give it one (README, \"Reading through SQS\")"
            ),
        }
        if let Some(n) = attributes.max_receive_count.filter(|&n| n < q.max_receives) {
            tracing::warn!(
                max_receives = q.max_receives,
                max_receive_count = n,
                "source.max_receives is above the queue's maxReceiveCount: the dead-letter queue takes a message \
                 before its last attempt here"
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.outcomes = Some(tx);
        self.deleter = Some(tokio::spawn(deleter(
            self.sqs.clone(),
            self.settings.queue_url.clone(),
            self.metrics.clone(),
            rx,
        )));
        self.heartbeat = Some(tokio::spawn(heartbeat(
            self.sqs.clone(),
            self.settings.queue_url.clone(),
            self.inflight.clone(),
            self.metrics.clone(),
            q.visibility,
        )));
        self.queue = Some(q);
        Ok(q)
    }

    /// One cycle: receives until the queue is empty (a receive brings nothing) or the cycle's
    /// length has passed, hands every object over, waits for the acknowledgements (deleting
    /// each message as its objects are done), then deletes processed files that are due.
    pub async fn poll_once(
        &mut self,
        pipeline: &mut Pipeline,
        shutdown: Arc<AtomicBool>,
    ) -> Result<CycleReport, CycleError> {
        let q = match unless_stopped(&shutdown, self.start()).await {
            Some(q) => q?,
            None => {
                return Ok(CycleReport {
                    interrupted: true,
                    ..CycleReport::default()
                })
            }
        };
        self.forget_old(pipeline);
        self.submitted.clear();
        let mut cycle = pipeline.cycle(shutdown.clone())?;
        let started = tokio::time::Instant::now();
        let mut received: Result<(), CycleError> = Ok(());
        while !cycle.stopping() && started.elapsed() < self.settings.cycle_length {
            let sqs = Sqs::new(&self.sqs, &self.settings.queue_url);
            let wait = self.settings.wait_time.as_secs();
            let got = cycle.wait_on(unless_stopped(&shutdown, sqs.receive(BATCH, wait))).await;
            let messages = match got {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    received = Err(e.into());
                    break;
                }
                Ok(None) => {
                    cycle.report().interrupted = true;
                    break;
                }
                Err(e) => {
                    received = Err(e);
                    break;
                }
            };
            if messages.is_empty() {
                break;
            }
            // Every message of the receive is extended from now: the last ones may wait for
            // reading slots while the first ones' objects are read.
            self.hold(&messages, q, crate::clock::SystemClock.now_ms());
            for m in messages {
                if let Err(e) = self.take(&mut cycle, m, q).await {
                    received = Err(e);
                    break;
                }
            }
            if received.is_err() {
                break;
            }
        }
        let finished = cycle.finish().await;
        // What is still in flight had its marker dropped (a sink failed, or the shutdown came
        // first): visible again at once, for this instance's next cycle or another instance.
        self.release_unfinished().await;
        let mut report = finished?;
        received?;
        if !report.interrupted && self.settings.delete_after.is_some() {
            let now = pipeline.clock().now_ms();
            if let Err(e) = delete_due(&self.s3, &self.settings.bucket, pipeline.ledger(), now, &mut report).await {
                tracing::warn!(error = %e, "deleting processed log files failed; will try again after the next cycle");
                report.delete_error = Some(e.to_string());
            }
        }
        Ok(report)
    }

    /// Registers `messages` as in flight, to be extended every third of the timeout (all but
    /// those on their last attempt) and made visible again if the cycle ends before they are
    /// finished.
    fn hold(&self, messages: &[Message], q: Resolved, now: i64) {
        let every = extension_interval(q.visibility);
        if let Ok(mut inflight) = self.inflight.lock() {
            for m in messages {
                inflight.insert(
                    m.id.clone(),
                    InFlight {
                        receipt: m.receipt.clone(),
                        extend_at_ms: (m.receive_count < q.max_receives).then_some(now + every),
                        lapses_at_ms: now.saturating_add(millis(q.visibility)),
                    },
                );
            }
        }
    }

    /// No longer in flight: not extended, not made visible again.
    fn let_go(&self, id: &str) {
        if let Ok(mut inflight) = self.inflight.lock() {
            inflight.remove(id);
        }
    }

    /// Hands the objects of message `m` over, and a marker after them that finishes it.
    async fn take(&mut self, cycle: &mut Cycle<'_>, m: Message, q: Resolved) -> Result<(), CycleError> {
        let Some(outcomes) = self.outcomes.clone() else {
            return Ok(());
        };
        let objects = match notification::parse(&m.id, &m.body) {
            Ok(Notification::Objects(objects)) => objects,
            Ok(Notification::Nothing(what)) => {
                self.let_go(&m.id);
                tracing::info!(message_id = %m.id, "{what}: nothing to read");
                self.metrics.queue_message("ignored");
                outcomes
                    .send(Outcome {
                        id: m.id,
                        receipt: m.receipt,
                        result: MessageResult::Done,
                    })
                    .ok();
                return Ok(());
            }
            Err(e) => {
                // Left as it is: it comes back after its visibility timeout, and the queue's
                // redrive policy moves it to the dead-letter queue.
                self.let_go(&m.id);
                self.metrics.queue_message("not_a_notification");
                tracing::error!(
                    message_id = %m.id,
                    receive = m.receive_count,
                    error = %e,
                    "a queue message that is no notification of new files: left for the dead-letter queue"
                );
                return Ok(());
            }
        };
        let now = cycle.now_ms();
        let last = m.receive_count >= q.max_receives;
        tracing::debug!(
            message_id = %m.id,
            receive = m.receive_count,
            objects = %objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>().join(" "),
            "queue message received"
        );
        let mut keys = Vec::new();
        let mut held = Vec::new();
        for o in objects {
            if o.bucket != self.settings.bucket {
                held.push(format!(
                    "{}: in bucket {}, not {} (the bucket this trailwatch reads)",
                    o.key, o.bucket, self.settings.bucket
                ));
                continue;
            }
            match wanted(&self.settings, &o.key) {
                Wanted::Read => {}
                Wanted::Skip => {
                    tracing::debug!(key = %o.key, "not a log file this trailwatch reads; skipped");
                    continue;
                }
                Wanted::Hold(why) => {
                    held.push(format!("{}: {why}", o.key));
                    continue;
                }
            }
            if let Some(f) = cycle.checkpoint().failed.get(&o.key).filter(|f| f.quarantined) {
                held.push(format!("{}: quarantined ({})", o.key, f.reason));
                continue;
            }
            keys.push(o.key.clone());
            if cycle.checkpoint().is_done(&o.key) || !self.submitted.insert(o.key.clone()) {
                continue;
            }
            let mut item = fetch_object(
                self.s3.clone(),
                self.settings.bucket.clone(),
                o.key.clone(),
                o.size,
                m.sent_ms,
                self.settings.max_object_bytes,
                self.settings.stream_above_bytes,
            );
            item.bucket = Some(self.settings.bucket.clone());
            item.delete_due_ms = self.settings.delete_after.map(|after| {
                let born = file_time_ms(&o.key).or(m.sent_ms).unwrap_or(now);
                born.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
            });
            self.remembered.push_back((now, o.key));
            if !cycle.submit(item).await? {
                // Stopping: the message is not finished; it is made visible again at the end.
                return Ok(());
            }
        }
        let (id, receipt, receive, max) = (m.id, m.receipt, m.receive_count, q.max_receives);
        let inflight = self.inflight.clone();
        cycle.marker(move |cp| {
            if let Ok(mut m) = inflight.lock() {
                m.remove(&id);
            }
            let mut why = held;
            why.extend(keys.iter().filter_map(|k| not_done(cp, k)));
            let result = if why.is_empty() {
                MessageResult::Done
            } else {
                MessageResult::NotDone {
                    why,
                    poison: last,
                    receive,
                    max,
                }
            };
            outcomes.send(Outcome { id, receipt, result }).ok();
            Vec::new()
        });
        Ok(())
    }

    /// Forgets the keys done longer ago than `remember_done` (they were remembered to skip a
    /// notification that comes twice), so that the checkpoint does not grow for ever.
    fn forget_old(&mut self, pipeline: &mut Pipeline) {
        let now = pipeline.clock().now_ms();
        if !self.seeded {
            self.seeded = true;
            let known: Vec<String> = pipeline.checkpoint().done.iter().cloned().collect();
            self.remembered.extend(known.into_iter().map(|k| (now, k)));
        }
        let horizon = now.saturating_sub(i64::try_from(self.settings.remember_done.as_millis()).unwrap_or(i64::MAX));
        let ledger = pipeline.ledger();
        let mut forgot = false;
        while let Some((at, _)) = self.remembered.front() {
            if *at >= horizon {
                break;
            }
            let Some((_, key)) = self.remembered.pop_front() else {
                break;
            };
            let cp = ledger.checkpoint();
            let pending = cp.failed.get(&key).is_some_and(|f| !f.quarantined);
            if !pending && (cp.done.contains(&key) || cp.failed.contains_key(&key)) {
                ledger.change(Change::Forget { key });
                forgot = true;
            }
        }
        if forgot {
            if let Err(e) = ledger.commit() {
                tracing::warn!(error = %e, "could not record the checkpoint's forgotten keys; will try again");
            }
        }
    }

    /// At shutdown: lets the finished messages be deleted, then makes those still in flight
    /// visible again at once, for another instance (or the next start) to take.
    pub async fn shutdown(&mut self) {
        self.outcomes.take();
        if let Some(d) = self.deleter.take() {
            if tokio::time::timeout(Duration::from_secs(10), d).await.is_err() {
                tracing::warn!("finished queue messages were not all deleted before the shutdown; they come back");
            }
        }
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.release_unfinished().await;
    }

    /// Makes the messages still in flight visible again at once, and stops extending them.
    async fn release_unfinished(&mut self) {
        let left: Vec<(String, String)> = match self.inflight.lock() {
            Ok(mut m) => m.drain().map(|(id, f)| (id, f.receipt)).collect(),
            Err(_) => Vec::new(),
        };
        if left.is_empty() {
            return;
        }
        let sqs = Sqs::new(&self.sqs, &self.settings.queue_url);
        for chunk in left.chunks(BATCH) {
            match sqs.change_visibility(chunk, 0).await {
                Ok(failed) => {
                    for f in failed {
                        tracing::debug!(message_id = %f.id, code = %f.code, "could not make a message visible again");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not make unfinished messages visible again; they come back after their timeout")
                }
            }
        }
        for _ in 0..left.len() {
            self.metrics.queue_message("returned");
        }
        tracing::info!(messages = left.len(), "unfinished queue messages made visible again");
    }
}

/// The visibility and poison count the settings and the queue's attributes come to.
fn resolve(settings: &QueueSettings, attributes: &QueueAttributes) -> Resolved {
    let visibility = settings
        .visibility_timeout
        .or(attributes.visibility_timeout_secs.map(Duration::from_secs))
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_secs(2));
    let max_receives = settings
        .max_receives
        .or(attributes.max_receive_count)
        .unwrap_or(DEFAULT_MAX_RECEIVES)
        .max(1);
    Resolved {
        visibility,
        max_receives,
    }
}

/// Whether `key` is read: log files (and Insight files, when asked) are; digests and other
/// objects are skipped, as when polling. A log file of an account or region this instance
/// leaves out keeps its message (for the dead-letter queue, or the instance it is meant
/// for): deleting it would lose it for every other reader of the queue.
fn wanted(s: &QueueSettings, key: &str) -> Wanted {
    match classify(&s.prefix, key) {
        KeyKind::Stream {
            account,
            folder,
            region,
        } => {
            if !(folder == "CloudTrail" || (folder == "CloudTrail-Insight" && s.include_insight)) {
                Wanted::Skip
            } else if !(s.accounts.is_empty() || s.accounts.iter().any(|a| a == account)) {
                Wanted::Hold(format!("account {account} is not in source.accounts"))
            } else if !(s.regions.is_empty() || s.regions.iter().any(|r| r == region)) {
                Wanted::Hold(format!("region {region} is not in source.regions"))
            } else {
                Wanted::Read
            }
        }
        KeyKind::Other => Wanted::Skip,
    }
}

/// Why `key` keeps its message from being deleted, if it does.
fn not_done(cp: &Checkpoint, key: &str) -> Option<String> {
    match cp.failed.get(key) {
        Some(f) if f.quarantined => Some(format!("{key}: quarantined ({})", f.reason)),
        Some(f) => Some(format!("{key}: {}", f.reason)),
        None if cp.is_done(key) => None,
        None => Some(format!("{key}: not acknowledged by every sink")),
    }
}

/// Deletes finished messages (ten to a request), and stops extending the others.
async fn deleter(
    client: Arc<AwsClient>,
    queue_url: String,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
) {
    let sqs = Sqs::new(&client, &queue_url);
    let mut batch: Vec<(String, String)> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(o) = next.take() {
            match o.result {
                MessageResult::Done => batch.push((o.id, o.receipt)),
                MessageResult::NotDone {
                    why,
                    poison: true,
                    receive,
                    max,
                } => {
                    metrics.queue_message("poison");
                    tracing::error!(
                        message_id = %o.id,
                        receive,
                        max_receives = max,
                        objects = %why.join("; "),
                        "poison message: its last attempt failed; left for the queue's dead-letter queue"
                    );
                }
                MessageResult::NotDone { why, receive, max, .. } => {
                    metrics.queue_message("returned");
                    tracing::warn!(
                        message_id = %o.id,
                        receive,
                        max_receives = max,
                        objects = %why.join("; "),
                        "queue message not finished: it comes back after its visibility timeout"
                    );
                }
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        while !batch.is_empty() {
            let chunk: Vec<(String, String)> = batch.drain(..batch.len().min(BATCH)).collect();
            let sent = std::time::Instant::now();
            match sqs.delete(&chunk).await {
                Ok(failed) => {
                    tracing::debug!(
                        messages = %chunk
                            .iter()
                            .filter(|(id, _)| !failed.iter().any(|f| f.id == *id))
                            .map(|(id, _)| id.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        answered_after_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "deleted finished queue messages"
                    );
                    for _ in 0..chunk.len() - failed.len() {
                        metrics.queue_message("deleted");
                    }
                    for f in failed {
                        metrics.queue_message("not_deleted");
                        tracing::warn!(
                            message_id = %f.id,
                            code = %f.code,
                            error = %f.message,
                            "a finished queue message could not be deleted: it comes back, and its objects are skipped \
                             here (or de-duplicated) when it does"
                        );
                    }
                }
                Err(e) => {
                    for _ in 0..chunk.len() {
                        metrics.queue_message("not_deleted");
                    }
                    tracing::warn!(
                        messages = chunk.len(),
                        error = %e,
                        "finished queue messages could not be deleted: they come back, and their objects are skipped \
                         here (or de-duplicated) when they do"
                    );
                }
            }
        }
    }
}

/// Extends the visibility of the messages in flight every third of the timeout, and says so
/// when an extension was answered so late that the message may have been visible meanwhile
/// (another instance may read it too: raise the queue's visibility timeout).
async fn heartbeat(
    client: Arc<AwsClient>,
    queue_url: String,
    inflight: Registry,
    metrics: Arc<Metrics>,
    visibility: Duration,
) {
    let sqs = Sqs::new(&client, &queue_url);
    let tick = (visibility / 10).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let every = extension_interval(visibility);
    loop {
        tokio::time::sleep(tick).await;
        let now = crate::clock::SystemClock.now_ms();
        let due: Vec<(String, String)> = match inflight.lock() {
            Ok(m) => m
                .iter()
                .filter(|(_, f)| f.extend_at_ms.is_some_and(|t| t <= now))
                .map(|(id, f)| (id.clone(), f.receipt.clone()))
                .collect(),
            Err(_) => return,
        };
        for chunk in due.chunks(BATCH) {
            let sent = crate::clock::SystemClock.now_ms();
            let answer = sqs.change_visibility(chunk, visibility.as_secs()).await;
            let answered = crate::clock::SystemClock.now_ms();
            match answer {
                Ok(failed) => {
                    let extended = chunk.len() - failed.len();
                    metrics.queue_extensions(extended as u64);
                    if let Ok(mut m) = inflight.lock() {
                        for (id, _) in chunk {
                            if let Some(f) = m.get_mut(id) {
                                if answered > f.lapses_at_ms {
                                    tracing::warn!(
                                        message_id = %id,
                                        late_ms = answered - f.lapses_at_ms,
                                        answered_after_ms = answered - sent,
                                        visibility_timeout_secs = visibility.as_secs(),
                                        "a queue message's visibility was extended only after it may have run out: \
                                         another instance may read it too; raise the visibility timeout"
                                    );
                                    metrics.queue_late_extension();
                                }
                                f.extend_at_ms = Some(sent + every);
                                f.lapses_at_ms = sent.saturating_add(millis(visibility));
                            }
                        }
                        for f in &failed {
                            // Its receipt no longer holds (the timeout passed meanwhile): it may
                            // be another instance's now.
                            tracing::warn!(
                                message_id = %f.id,
                                code = %f.code,
                                error = %f.message,
                                "could not extend a queue message's visibility; it may be read again elsewhere"
                            );
                            if let Some(e) = m.get_mut(&f.id) {
                                e.extend_at_ms = None;
                            }
                        }
                    }
                    tracing::debug!(
                        messages = extended,
                        answered_after_ms = answered - sent,
                        "extended the visibility of queue messages in flight"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "extending the visibility of queue messages failed; trying again"),
            }
        }
    }
}

impl Drop for SqsSource {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QueueSettings {
        QueueSettings {
            queue_url: "http://127.0.0.1/1/q".into(),
            bucket: "b".into(),
            prefix: String::new(),
            accounts: Vec::new(),
            regions: Vec::new(),
            include_insight: true,
            wait_time: Duration::from_secs(20),
            max_receives: None,
            visibility_timeout: None,
            max_object_bytes: 1 << 30,
            stream_above_bytes: 8 << 20,
            delete_after: None,
            cycle_length: Duration::from_secs(60),
            remember_done: Duration::from_secs(3600),
        }
    }

    #[test]
    fn log_files_left_out_keep_their_message_and_other_objects_are_skipped() {
        let mut s = settings();
        s.accounts = vec!["111122223333".into()];
        s.regions = vec!["us-east-1".into()];
        s.include_insight = false;
        let key = |account: &str, folder: &str, region: &str| {
            format!(
                "AWSLogs/{account}/{folder}/{region}/2024/03/01/{account}_{folder}_{region}_20240301T0000Z_x.json.gz"
            )
        };
        assert_eq!(
            wanted(&s, &key("111122223333", "CloudTrail", "us-east-1")),
            Wanted::Read
        );
        assert_eq!(
            wanted(&s, &key("444455556666", "CloudTrail", "us-east-1")),
            Wanted::Hold("account 444455556666 is not in source.accounts".into())
        );
        assert_eq!(
            wanted(&s, &key("111122223333", "CloudTrail", "eu-west-1")),
            Wanted::Hold("region eu-west-1 is not in source.regions".into())
        );
        assert_eq!(
            wanted(&s, &key("111122223333", "CloudTrail-Insight", "us-east-1")),
            Wanted::Skip
        );
        assert_eq!(
            wanted(&s, &key("111122223333", "CloudTrail-Digest", "us-east-1")),
            Wanted::Skip
        );
        assert_eq!(wanted(&s, "exports/report.csv"), Wanted::Skip);
        s.include_insight = true;
        assert_eq!(
            wanted(&s, &key("111122223333", "CloudTrail-Insight", "us-east-1")),
            Wanted::Read
        );
    }

    #[test]
    fn the_poison_count_and_visibility_come_from_the_settings_then_the_queue() {
        let mut s = settings();
        let queue = QueueAttributes {
            visibility_timeout_secs: Some(120),
            max_receive_count: Some(4),
            ..QueueAttributes::default()
        };
        let r = resolve(&s, &queue);
        assert_eq!((r.visibility, r.max_receives), (Duration::from_secs(120), 4));
        let r = resolve(&s, &QueueAttributes::default());
        assert_eq!(
            (r.visibility, r.max_receives),
            (Duration::from_secs(30), DEFAULT_MAX_RECEIVES)
        );
        s.max_receives = Some(2);
        s.visibility_timeout = Some(Duration::from_secs(9));
        let r = resolve(&s, &queue);
        assert_eq!((r.visibility, r.max_receives), (Duration::from_secs(9), 2));
    }

    #[test]
    fn a_key_holds_its_message_until_done_and_not_quarantined() {
        let mut cp = Checkpoint::default();
        assert_eq!(not_done(&cp, "k").as_deref(), Some("k: not acknowledged by every sink"));
        Change::Done { key: "k".into() }.apply(&mut cp);
        assert_eq!(not_done(&cp, "k"), None);
        Change::Failed {
            key: "k".into(),
            file: crate::state::checkpoint::FailedFile {
                reason: "bad gzip".into(),
                attempts: 1,
                quarantined: true,
                records_done: 0,
            },
        }
        .apply(&mut cp);
        assert_eq!(not_done(&cp, "k").as_deref(), Some("k: quarantined (bad gzip)"));
    }
}
