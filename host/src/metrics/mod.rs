//! trailwatch's own metrics, in the Prometheus/OpenMetrics text format, and its health.
//!
//! # Layout
//! - `mod.rs`: the registry and every metric, with the small methods the stages call.
//! - `server`: `/metrics`, `/healthz` and `/readyz` on `[metrics] listen`.

pub mod server;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric trailwatch exports.
pub struct Metrics {
    registry: Registry,
    files: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    outcomes: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    dropped_read_only: Counter,
    duplicates: Counter,
    queue_messages: Family<Labels, Counter>,
    queue_extensions: Counter,
    queue_late_extensions: Counter,
    s3_requests: Family<Labels, Counter>,
    s3_seen: Mutex<std::collections::BTreeMap<String, u64>>,
    sink_batches: Family<Labels, Counter>,
    sink_events: Family<Labels, Counter>,
    sink_bytes: Family<Labels, Counter>,
    sink_retries: Family<Labels, Counter>,
    sink_rejections: Family<Labels, Counter>,
    sink_failing: Family<Labels, Gauge>,
    sink_partial: Family<Labels, Counter>,
    inflight_bytes: Gauge,
    delivery_delay: Histogram,
    processing_delay: Histogram,
    polls: Family<Labels, Counter>,
    last_poll: Gauge<f64, AtomicU64>,
    plugin: Family<Labels, Gauge>,
    trail_findings: Family<Labels, Gauge>,
    integrity_problems: Family<Labels, Counter>,
    integrity_digests: Family<Labels, Counter>,
    anomalies: Family<Labels, Counter>,
    incidents: Family<Labels, Counter>,
    scoring_failures: Counter,
    /// When the last poll succeeded, ms since the Unix epoch (0: never), for `/readyz`.
    last_poll_ms: AtomicI64,
    /// Sinks whose last delivery failed, for `/readyz`.
    failing: Mutex<std::collections::BTreeSet<String>>,
    /// Where the in-flight bytes are read from at a scrape.
    inflight_source: Mutex<Option<(std::sync::Arc<tokio::sync::Semaphore>, usize)>>,
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_owned())]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("trailwatch");
        let m = Metrics {
            files: Family::default(),
            events: Family::default(),
            outcomes: Family::default(),
            failures: Family::default(),
            dropped_read_only: Counter::default(),
            duplicates: Counter::default(),
            queue_messages: Family::default(),
            queue_extensions: Counter::default(),
            queue_late_extensions: Counter::default(),
            s3_requests: Family::default(),
            s3_seen: Mutex::default(),
            sink_batches: Family::default(),
            sink_events: Family::default(),
            sink_bytes: Family::default(),
            sink_retries: Family::default(),
            sink_rejections: Family::default(),
            sink_failing: Family::default(),
            sink_partial: Family::default(),
            inflight_bytes: Gauge::default(),
            // 1 s to ~9 h, doubling.
            delivery_delay: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            processing_delay: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            polls: Family::default(),
            last_poll: Gauge::default(),
            plugin: Family::default(),
            trail_findings: Family::default(),
            integrity_problems: Family::default(),
            integrity_digests: Family::default(),
            anomalies: Family::default(),
            incidents: Family::default(),
            scoring_failures: Counter::default(),
            last_poll_ms: AtomicI64::new(0),
            failing: Mutex::default(),
            inflight_source: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "files",
            "Log files finished, by result (done, failed, quarantined)",
            m.files.clone(),
        );
        registry.register(
            "events",
            "Events acknowledged by every sink, by metric (aws.<service>.<action>)",
            m.events.clone(),
        );
        registry.register(
            "event_outcomes",
            "Events acknowledged by every sink, by outcome",
            m.outcomes.clone(),
        );
        registry.register(
            "file_failures",
            "Files that could not be read to their end, by reason (bad_file, plugin, unavailable, too_large)",
            m.failures.clone(),
        );
        registry.register(
            "dropped_read_only_events",
            "Read-only events dropped at ingestion (write-only mode)",
            m.dropped_read_only.clone(),
        );
        registry.register(
            "duplicate_events",
            "Events left out because an earlier file delivered them within the de-duplication window",
            m.duplicates.clone(),
        );
        registry.register(
            "queue_messages",
            "Queue messages finished, by result (deleted, returned, poison, not_a_notification, ignored)",
            m.queue_messages.clone(),
        );
        registry.register(
            "queue_visibility_extensions",
            "Queue messages whose visibility was extended while their objects were read",
            m.queue_extensions.clone(),
        );
        registry.register(
            "queue_visibility_late",
            "Queue message extensions answered after the visibility may have run out (another instance may read \
             the message too: raise the visibility timeout)",
            m.queue_late_extensions.clone(),
        );
        registry.register(
            "s3_requests",
            "AWS requests sent (S3, SQS, CloudTrail), by operation",
            m.s3_requests.clone(),
        );
        registry.register("sink_batches", "Batches handed over, by sink", m.sink_batches.clone());
        registry.register("sink_events", "Events handed over, by sink", m.sink_events.clone());
        registry.register(
            "sink_bytes",
            "Bytes handed over (before compression), by sink",
            m.sink_bytes.clone(),
        );
        registry.register(
            "sink_retries",
            "Deliveries tried again after a failure, by sink",
            m.sink_retries.clone(),
        );
        registry.register(
            "sink_rejections",
            "Deliveries refused for good by the receiver, by sink",
            m.sink_rejections.clone(),
        );
        registry.register(
            "sink_partially_rejected_records",
            "Log records an OTLP collector rejected in a partial success, by sink",
            m.sink_partial.clone(),
        );
        registry.register(
            "sink_failing",
            "1 while a sink's last delivery failed",
            m.sink_failing.clone(),
        );
        registry.register(
            "inflight_bytes",
            "Event bytes read and not yet handed over by every sink",
            m.inflight_bytes.clone(),
        );
        registry.register(
            "delivery_delay_seconds",
            "Time from an event to its log file's arrival in S3",
            m.delivery_delay.clone(),
        );
        registry.register(
            "processing_delay_seconds",
            "Time from a log file's arrival in S3 to trailwatch reading it (per event)",
            m.processing_delay.clone(),
        );
        registry.register("polls", "Poll cycles, by result (ok, failed)", m.polls.clone());
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "When the last poll cycle succeeded, seconds since the Unix epoch",
            m.last_poll.clone(),
        );
        registry.register("plugin_info", "The plugin in use (value 1)", m.plugin.clone());
        registry.register(
            "trail_findings",
            "Findings of the last trail check, by code and severity (README, \"Trail check\")",
            m.trail_findings.clone(),
        );
        registry.register(
            "integrity_problems",
            "Log-file integrity problems found, by code and severity (README, \"Log-file integrity\")",
            m.integrity_problems.clone(),
        );
        registry.register(
            "integrity_digests",
            "Digest files judged, by result (intact, problems, unreadable)",
            m.integrity_digests.clone(),
        );
        registry.register(
            "anomalies",
            "Anomalous events acknowledged, by severity (README, \"Pattern of life\")",
            m.anomalies.clone(),
        );
        registry.register(
            "incidents",
            "Incident documents acknowledged, by severity and change (opened, updated, closed)",
            m.incidents.clone(),
        );
        registry.register(
            "scoring_failures",
            "Batches whose events went out without scores because the plugin could not score them",
            m.scoring_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The metrics as OpenMetrics text.
    pub fn render(&self) -> String {
        if let Ok(w) = self.inflight_source.lock() {
            if let Some((semaphore, cap)) = w.as_ref() {
                self.inflight_bytes
                    .set(cap.saturating_sub(semaphore.available_permits()) as i64);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        encode(&mut out, &self.registry).ok();
        out
    }

    /// A file finished: `result` is `done`, `failed` or `quarantined`.
    pub fn file(&self, result: &str) {
        self.files.get_or_create(&label("result", result)).inc();
    }

    /// A file failed for `reason` (see the help text).
    pub fn failure(&self, reason: &str) {
        self.failures.get_or_create(&label("reason", reason)).inc();
    }

    /// `n` events of `metric` were acknowledged.
    pub fn events(&self, metric: &str, n: u64) {
        self.events.get_or_create(&label("metric", metric)).inc_by(n);
    }

    /// `n` events with `outcome` were acknowledged.
    pub fn outcome(&self, outcome: &str, n: u64) {
        self.outcomes.get_or_create(&label("outcome", outcome)).inc_by(n);
    }

    /// `n` events were left out as duplicates.
    pub fn duplicates(&self, n: u64) {
        self.duplicates.inc_by(n);
    }

    /// A queue message finished with `result` (see the help text).
    pub fn queue_message(&self, result: &str) {
        self.queue_messages.get_or_create(&label("result", result)).inc();
    }

    /// `n` queue messages had their visibility extended.
    pub fn queue_extensions(&self, n: u64) {
        self.queue_extensions.inc_by(n);
    }

    /// A queue message's extension was answered after its visibility may have run out.
    pub fn queue_late_extension(&self) {
        self.queue_late_extensions.inc();
    }

    /// `n` read-only events were dropped.
    pub fn dropped_read_only(&self, n: u64) {
        self.dropped_read_only.inc_by(n);
    }

    /// The client's request counts as they stand now (they only grow).
    pub fn s3_requests(&self, counts: &std::collections::BTreeMap<&str, u64>) {
        let Ok(mut seen) = self.s3_seen.lock() else { return };
        for (op, &n) in counts {
            let before = seen.insert((*op).to_owned(), n).unwrap_or(0);
            if n > before {
                self.s3_requests
                    .get_or_create(&label("operation", op))
                    .inc_by(n - before);
            }
        }
    }

    /// A sink handed over a batch of `events` events, `bytes` long.
    pub fn sink_batch(&self, sink: &str, events: u64, bytes: u64) {
        let l = label("sink", sink);
        self.sink_batches.get_or_create(&l).inc();
        self.sink_events.get_or_create(&l).inc_by(events);
        self.sink_bytes.get_or_create(&l).inc_by(bytes);
        self.sink_failing.get_or_create(&l).set(0);
        self.set_failing(sink, false);
    }

    fn set_failing(&self, sink: &str, failing: bool) {
        if let Ok(mut set) = self.failing.lock() {
            if failing {
                set.insert(sink.to_owned());
            } else {
                set.remove(sink);
            }
        }
    }

    /// Deliveries sink `sink` tried again so far.
    pub fn sink_retries(&self, sink: &str) -> u64 {
        self.sink_retries.get_or_create(&label("sink", sink)).get()
    }

    /// A sink tries a delivery again.
    pub fn sink_retry(&self, sink: &str) {
        let l = label("sink", sink);
        self.sink_retries.get_or_create(&l).inc();
        self.sink_failing.get_or_create(&l).set(1);
        self.set_failing(sink, true);
    }

    /// A receiver refused a delivery for good.
    pub fn sink_rejection(&self, sink: &str) {
        let l = label("sink", sink);
        self.sink_rejections.get_or_create(&l).inc();
        self.sink_failing.get_or_create(&l).set(1);
        self.set_failing(sink, true);
    }

    /// A collector rejected `n` records of an accepted request.
    pub fn sink_partial_rejected(&self, sink: &str, n: u64) {
        self.sink_partial.get_or_create(&label("sink", sink)).inc_by(n);
    }

    /// A sink failed (`true`) or acknowledged again (`false`).
    pub fn sink_failing(&self, sink: &str, failing: bool) {
        self.sink_failing
            .get_or_create(&label("sink", sink))
            .set(i64::from(failing));
        self.set_failing(sink, failing);
    }

    /// Reads the in-flight bytes from `semaphore` (of `cap` permits) at each scrape.
    pub fn watch_inflight(&self, semaphore: std::sync::Arc<tokio::sync::Semaphore>, cap: usize) {
        if let Ok(mut w) = self.inflight_source.lock() {
            *w = Some((semaphore, cap));
        }
    }

    /// The sinks whose last delivery failed.
    pub fn failing_sinks(&self) -> Vec<String> {
        self.failing
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// One event's delays: from the event to its file's arrival in S3 (when the event time is
    /// known), and from the arrival to trailwatch reading it, in ms.
    pub fn observe_delivery(&self, delivery_delay_ms: Option<i64>, processing_delay_ms: i64) {
        if let Some(ms) = delivery_delay_ms {
            self.delivery_delay.observe(ms.max(0) as f64 / 1000.0);
        }
        self.processing_delay
            .observe(processing_delay_ms.max(0) as f64 / 1000.0);
    }

    /// A poll cycle ended, at `now_ms`.
    pub fn poll(&self, ok: bool, now_ms: i64) {
        self.polls
            .get_or_create(&label("result", if ok { "ok" } else { "failed" }))
            .inc();
        if ok {
            self.last_poll.set(now_ms as f64 / 1000.0);
            self.last_poll_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// When the last poll succeeded (ms since the Unix epoch), if one did.
    pub fn last_poll_ms(&self) -> Option<i64> {
        Some(self.last_poll_ms.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// The findings of the last trail check, as (code, severity) pairs: earlier ones are gone.
    pub fn trail_findings<'a>(&self, findings: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.trail_findings.clear();
        for (code, severity) in findings {
            self.trail_findings
                .get_or_create(&vec![("code", code.to_owned()), ("severity", severity.to_owned())])
                .inc();
        }
    }

    /// `n` anomalous events of `severity` were acknowledged.
    pub fn anomalies(&self, severity: &str, n: u64) {
        self.anomalies.get_or_create(&label("severity", severity)).inc_by(n);
    }

    /// An incident document of `severity` was acknowledged; `change` is opened, updated or closed.
    pub fn incident(&self, severity: &str, change: &str, n: u64) {
        self.incidents
            .get_or_create(&vec![("severity", severity.to_owned()), ("change", change.to_owned())])
            .inc_by(n);
    }

    /// A batch could not be scored.
    pub fn scoring_failure(&self) {
        self.scoring_failures.inc();
    }

    /// An integrity problem found.
    pub fn integrity_problem(&self, code: &str, severity: &str) {
        self.integrity_problems
            .get_or_create(&vec![("code", code.to_owned()), ("severity", severity.to_owned())])
            .inc();
    }

    /// A digest judged: `intact`, `problems` or `unreadable`.
    pub fn integrity_digest(&self, result: &str) {
        self.integrity_digests.get_or_create(&label("result", result)).inc();
    }

    /// The plugin now in use.
    pub fn plugin(&self, name: &str, version: &str, sha256: &str) {
        self.plugin.clear();
        self.plugin
            .get_or_create(&vec![
                ("name", name.to_owned()),
                ("version", version.to_owned()),
                ("sha256", sha256.to_owned()),
            ])
            .set(1);
    }
}
