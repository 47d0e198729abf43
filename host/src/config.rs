//! The configuration file (TOML), typed and validated once at start-up.
//!
//! Unknown keys are errors; a bad value names its key, the value and what was expected.
//! Command-line flags override the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::Limits;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `default`, `restricted` or `write-only` (README, "Modes").
    #[serde(default)]
    pub mode: Mode,
    /// Where the plugin comes from and the limits it runs under.
    #[serde(default)]
    pub plugin: PluginConfig,
    /// How AWS is reached.
    #[serde(default)]
    pub aws: AwsConfig,
    /// The trail bucket and how it is polled.
    #[serde(default)]
    pub source: SourceConfig,
    /// Deletion of processed log files.
    #[serde(default)]
    pub delete: DeleteConfig,
    /// The trail check.
    #[serde(default)]
    pub trail: TrailConfig,
    /// `[integrity]`: log-file integrity validation from CloudTrail's digests.
    #[serde(default)]
    pub integrity: IntegrityConfig,
    /// `[enrich]`: where events' source addresses are looked up.
    #[serde(default)]
    pub enrich: EnrichConfig,
    /// `[scoring]`: each event scored against its identity's pattern of life.
    #[serde(default)]
    pub scoring: ScoringConfig,
    /// `[report]`: the report page `run` keeps up to date.
    #[serde(default)]
    pub report: ReportConfig,
    /// Where the checkpoint is kept.
    #[serde(default)]
    pub state: StateConfig,
    /// Where events go when no `[[sinks]]` are configured (kept for older configs).
    #[serde(default)]
    pub output: OutputConfig,
    /// Where events go: every sink gets every event.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// How files are read and how much may be in flight.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// trailwatch's own metrics and health endpoints.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// One `[[sinks]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    /// NDJSON to standard output.
    Stdout(StdoutSinkConfig),
    /// NDJSON appended to a file, fsynced before acknowledging, rotated by size.
    File(FileSinkConfig),
    /// NDJSON batches POSTed to an HTTP receiver.
    Http(HttpSinkConfig),
    /// OTLP/HTTP logs (JSON encoding) to an OpenTelemetry Collector.
    Otlp(HttpSinkConfig),
}

impl SinkConfig {
    /// The sink's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::File(_) => "file",
            SinkConfig::Http(_) => "http",
            SinkConfig::Otlp(_) => "otlp",
        }
    }

    /// The configured `name`, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            SinkConfig::Stdout(s) => s.name.as_deref(),
            SinkConfig::File(f) => f.name.as_deref(),
            SinkConfig::Http(h) | SinkConfig::Otlp(h) => h.name.as_deref(),
        }
    }
}

/// `[[sinks]] type = "stdout"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Name in logs and metrics. Default `stdout#<position>`.
    pub name: Option<String>,
}

/// `[[sinks]] type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Name in logs and metrics. Default `file#<position>`.
    pub name: Option<String>,
    /// The file, appended to (created with its directory when missing).
    pub path: PathBuf,
    /// Rotate when the file reaches this many MiB (absent: never).
    pub rotate_mib: Option<u64>,
    /// Rotated files kept (`path.1` newest … `path.N`). Default 5.
    #[serde(default = "default_keep_files")]
    pub keep_files: u32,
}

fn default_keep_files() -> u32 {
    5
}

/// `[[sinks]] type = "http"` and `type = "otlp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// Name in logs and metrics. Default `<type>#<position>`.
    pub name: Option<String>,
    /// `http`: the URL batches are POSTed to.
    pub url: Option<String>,
    /// `otlp`: the collector's base URL; logs go to `{endpoint}/v1/logs`.
    pub endpoint: Option<String>,
    /// Extra request headers. A value `${env:NAME}` is read from the environment at start-up;
    /// values are never logged.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, crate::aws::secret::Secret>,
    /// `http`: the request's Content-Type. Default `application/x-ndjson` (Fluent Bit's `http`
    /// input wants `application/json`).
    pub content_type: Option<String>,
    /// `"none"` or `"gzip"`. Default none.
    #[serde(default)]
    pub compression: Compression,
    /// Events per request at most. Default 1000.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Bytes per request at most (before compression; an event larger than this goes alone).
    /// Default 1 MiB.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// A partial batch is sent after this long. Default 1000.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// Time to connect, seconds. Default 5.
    #[serde(default = "default_sink_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Time for one request, seconds. Default 30.
    #[serde(default = "default_sink_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Attempts after the first for one request, on connection errors, 408, 429 and 5xx.
    /// Default 10; then the files it holds are not acknowledged and are sent again later.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First pause before a retry, ms; doubles, with jitter. Default 500.
    #[serde(default = "default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// Longest pause before a retry (and longest `Retry-After` honoured), seconds. Default 30.
    #[serde(default = "default_retry_max_backoff_secs")]
    pub retry_max_backoff_secs: u64,
    /// `https://`: certificate authorities (a PEM bundle) trusted for the receiver besides the
    /// built-in web roots: a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// `https://`: the client certificate (PEM, with its chain) presented to a receiver that
    /// asks for one (mutual TLS); with `tls_client_key_file`.
    pub tls_client_cert_file: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `tls_client_cert_file`.
    pub tls_client_key_file: Option<PathBuf>,
    /// Lets an `http://` URL name a host other than this machine (events cross the network
    /// unencrypted). Default false.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
}

fn default_batch_max_events() -> usize {
    1000
}
fn default_batch_max_bytes() -> usize {
    1 << 20
}
fn default_batch_timeout_ms() -> u64 {
    1000
}
fn default_sink_connect_timeout_secs() -> u64 {
    5
}
fn default_sink_request_timeout_secs() -> u64 {
    30
}
fn default_max_retries() -> u32 {
    10
}
fn default_retry_initial_backoff_ms() -> u64 {
    500
}
fn default_retry_max_backoff_secs() -> u64 {
    30
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Files read through the plugin at once. Default: the number of cores.
    pub max_concurrent_files: Option<usize>,
    /// Event bytes handed to sinks and not yet acknowledged by all of them, MiB. Default 64.
    #[serde(default = "default_max_inflight_mib")]
    pub max_inflight_mib: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_concurrent_files: None,
            max_inflight_mib: default_max_inflight_mib(),
        }
    }
}

fn default_max_inflight_mib() -> usize {
    64
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for `/metrics`, `/healthz` and `/readyz`, e.g. `127.0.0.1:9464`. Absent: off.
    pub listen: Option<String>,
    /// `/readyz` fails when the last good poll is older than this many poll intervals. Default 3.
    #[serde(default = "default_ready_within_polls")]
    pub ready_within_polls: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            ready_within_polls: default_ready_within_polls(),
        }
    }
}

fn default_ready_within_polls() -> u32 {
    3
}

/// The operating mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// CloudTrail read for discovery; S3 list, get and delete.
    #[default]
    Default,
    /// Only `s3:ListBucket` and `s3:GetObject`: no CloudTrail call, no deletion, no discovery.
    Restricted,
    /// As default, and read-only events are dropped at ingestion.
    WriteOnly,
}

/// `[aws]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region of the bucket (and of the CloudTrail API). Default: `$AWS_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Custom endpoint for S3-compatible stores (path-style addressing).
    pub endpoint_url: Option<String>,
    /// FIPS 140 endpoints (`s3-fips.…`, `cloudtrail-fips.…`). Default: `$AWS_USE_FIPS_ENDPOINT`,
    /// else false.
    pub use_fips: Option<bool>,
    /// Dual-stack (IPv6) endpoints. Default: `$AWS_USE_DUALSTACK_ENDPOINT`, else false.
    pub use_dualstack: Option<bool>,
    /// Access key id of a dedicated IAM user; with `secret_access_key`. Default: the AWS chain.
    pub access_key_id: Option<String>,
    /// Its secret (never logged).
    pub secret_access_key: Option<crate::aws::secret::Secret>,
    /// A session token for temporary keys (never logged).
    pub session_token: Option<crate::aws::secret::Secret>,
    /// A named profile of the shared config files, for the AWS chain.
    pub profile: Option<String>,
    /// Time to connect, seconds. Default 5.
    pub connect_timeout_secs: Option<u64>,
    /// Time for one request, seconds. Default 60.
    pub request_timeout_secs: Option<u64>,
    /// Attempts per request, the first included. Default 6.
    pub max_attempts: Option<u32>,
}

/// `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// How new log files are found: `"s3"` (polling the bucket, the default) or `"sqs"` (S3
    /// event notifications on a queue, `queue_url`).
    #[serde(rename = "type", default)]
    pub kind: SourceKind,
    /// The queue's URL (`type = "sqs"`).
    pub queue_url: Option<String>,
    /// Seconds a receive waits for messages (long polling, 1 to 20). Default 20.
    #[serde(default = "default_wait_time_secs")]
    pub wait_time_secs: u64,
    /// A message received this many times is poison: its last attempt is not extended, and a
    /// failure is reported for the dead-letter queue. Default: the queue's redrive
    /// `maxReceiveCount`, else 10.
    pub max_receives: Option<u32>,
    /// The visibility timeout messages are extended by, seconds. Default: the queue's.
    pub visibility_timeout_secs: Option<u64>,
    /// Events an earlier file delivered within this many seconds are left out (by `eventID`).
    /// 0: off. Default 3600 with `type = "sqs"`, 0 when polling (each key is read once there).
    pub dedup_window_secs: Option<u64>,
    /// At most this many event ids are remembered for de-duplication (~50 bytes each).
    /// Default 500000.
    #[serde(default = "default_dedup_max_events")]
    pub dedup_max_events: usize,
    /// The trail's bucket. Required in restricted mode; otherwise found with DescribeTrails.
    pub bucket: Option<String>,
    /// Key prefix before `AWSLogs/`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// In default mode without `bucket`: the trail (name or ARN) whose bucket to follow.
    pub trail_name: Option<String>,
    /// Only these accounts (empty: all found).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Only these regions (empty: all found).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Also read Insight files.
    #[serde(default = "yes")]
    pub include_insight: bool,
    /// Seconds between polls. Default 60.
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// First run: `"now"` (only new files) or a day `"YYYY-MM-DD"` to read from.
    #[serde(default = "default_start")]
    pub start: String,
    /// Days listed whole for late files (today counts): today at each poll, the others every
    /// `relist_interval_secs`. Default 2.
    #[serde(default = "default_relist_days")]
    pub relist_days: u32,
    /// Seconds between listings of the open days before today (today is listed at every poll;
    /// a day is listed once more when it closes). 0: at every poll. Default 300.
    #[serde(default = "default_relist_interval_secs")]
    pub relist_interval_secs: u64,
    /// Objects fetched at once. Default 4.
    #[serde(default = "default_max_concurrent_fetches")]
    pub max_concurrent_fetches: usize,
    /// Objects larger than this (MiB) are refused. Default 1024.
    #[serde(default = "default_max_object_mib")]
    pub max_object_mib: u64,
    /// Seconds between discoveries of accounts and regions. Default 600.
    #[serde(default = "default_discovery_interval_secs")]
    pub discovery_interval_secs: u64,
    /// Events delivered later than this many seconds are flagged delayed. Default 900.
    #[serde(default = "default_delayed_after_secs")]
    pub delayed_after_secs: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// `[source] type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Polling the bucket.
    #[default]
    S3,
    /// S3 event notifications on an SQS queue.
    Sqs,
}

impl SourceConfig {
    /// The de-duplication window, when on.
    pub fn dedup_window(&self) -> Option<std::time::Duration> {
        let secs = self.dedup_window_secs.unwrap_or(match self.kind {
            SourceKind::Sqs => 3600,
            SourceKind::S3 => 0,
        });
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }
}

fn default_wait_time_secs() -> u64 {
    20
}
fn default_dedup_max_events() -> usize {
    500_000
}

fn yes() -> bool {
    true
}
fn default_poll_interval_secs() -> u64 {
    60
}
fn default_start() -> String {
    "now".into()
}
fn default_relist_days() -> u32 {
    2
}
fn default_relist_interval_secs() -> u64 {
    300
}
fn default_max_concurrent_fetches() -> usize {
    4
}
fn default_max_object_mib() -> u64 {
    1024
}
fn default_discovery_interval_secs() -> u64 {
    600
}
fn default_delayed_after_secs() -> u64 {
    900
}

/// `[trail]`: what the trail check wants of the trail (README, "Trail check").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailConfig {
    /// Check the trail at start-up (default and write-only modes). Default true.
    #[serde(default = "yes")]
    pub check: bool,
    /// In write-only mode, have the trail itself log write management events only (applied by
    /// `check --fix`). Default false.
    #[serde(default)]
    pub write_event_filter: bool,
    /// A last delivery older than this is reported. Default 60 minutes.
    #[serde(default = "default_max_delivery_age_minutes")]
    pub max_delivery_age_minutes: u32,
    /// `run` applies the check's fixes itself (never in restricted mode). Default false.
    #[serde(default)]
    pub auto_configure: bool,
    /// How often `run` checks the trail again (and, with auto_configure, repairs it), in
    /// seconds. Default 600.
    #[serde(default = "default_config_check_interval_secs")]
    pub config_check_interval_secs: u64,
}

fn default_config_check_interval_secs() -> u64 {
    600
}

impl Default for TrailConfig {
    fn default() -> Self {
        TrailConfig {
            check: true,
            write_event_filter: false,
            max_delivery_age_minutes: default_max_delivery_age_minutes(),
            auto_configure: false,
            config_check_interval_secs: default_config_check_interval_secs(),
        }
    }
}

fn default_max_delivery_age_minutes() -> u32 {
    60
}

/// `[enrich]`: the MaxMind-format databases each event's source address is looked up in
/// (README, "Where activity comes from"). Neither set: no `source_network` member.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// An ASN database (`autonomous_system_number`, `autonomous_system_organization`):
    /// GeoLite2-ASN, DB-IP ASN, or the one `cargo run -p xtask -- demo` installs.
    pub asn_database: Option<PathBuf>,
    /// A country database (`country.iso_code` or `country_code`): GeoLite2-Country, DB-IP
    /// country, ip-location-db.
    pub country_database: Option<PathBuf>,
}

/// `[scoring]`: pattern of life (README, "Pattern of life"): every event gets a score, its
/// reasons and, once anomalous, its incident.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// Score events. Default on.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// An event is anomalous at this score or above (1–100). Default 50.
    #[serde(default = "default_threshold")]
    pub threshold: u8,
    /// An identity raises no baseline-based reason until first seen this many days ago ...
    #[serde(default = "default_learning_days")]
    pub learning_days: u32,
    /// ... and until it made this many calls. Default 7 days and 50 calls.
    #[serde(default = "default_learning_events")]
    pub learning_events: u32,
    /// Anomalies of one identity less than this many minutes apart form one incident; an
    /// incident quiet this long is closed. Default 120.
    #[serde(default = "default_incident_gap_minutes")]
    pub incident_gap_minutes: u32,
    /// Identities and values of a baseline not seen for this many days are forgotten.
    /// Default 90.
    #[serde(default = "default_forget_after_days")]
    pub forget_after_days: u32,
}

fn default_true() -> bool {
    true
}
fn default_threshold() -> u8 {
    50
}
fn default_learning_days() -> u32 {
    7
}
fn default_learning_events() -> u32 {
    50
}
fn default_incident_gap_minutes() -> u32 {
    120
}
fn default_forget_after_days() -> u32 {
    90
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            enabled: true,
            threshold: default_threshold(),
            learning_days: default_learning_days(),
            learning_events: default_learning_events(),
            incident_gap_minutes: default_incident_gap_minutes(),
            forget_after_days: default_forget_after_days(),
        }
    }
}

/// `[report]`: the HTML report (README, "The report") that `run` writes while it runs: the same
/// page as `trailwatch report`, which cannot open the state store `run` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Where `run` writes the page (replaced whole each time). Absent: not written.
    pub path: Option<PathBuf>,
    /// How often, in minutes (1–1440), and once more when `run` stops. Default 10.
    #[serde(default = "default_report_every_minutes")]
    pub every_minutes: u32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            path: None,
            every_minutes: default_report_every_minutes(),
        }
    }
}

fn default_report_every_minutes() -> u32 {
    10
}

impl ReportConfig {
    /// Checks the values against what is scored.
    pub fn validate(&self, scoring: &ScoringConfig) -> Result<(), ConfigError> {
        if !(1..=1440).contains(&self.every_minutes) {
            return Err(ConfigError::Value {
                key: "report.every_minutes",
                value: self.every_minutes.to_string(),
                expected: "1 to 1440 (minutes)",
            });
        }
        if let (Some(path), false) = (&self.path, scoring.enabled) {
            return Err(ConfigError::Value {
                key: "report.path",
                value: path.display().to_string(),
                expected: "unset while [scoring] enabled = false (the report shows what scoring found)",
            });
        }
        Ok(())
    }
}

impl ScoringConfig {
    /// The scoring settings, `None` when scoring is off.
    pub fn settings(&self) -> Option<crate::score::Scoring> {
        self.enabled.then(|| crate::score::Scoring {
            threshold: self.threshold,
            learning: std::time::Duration::from_secs(u64::from(self.learning_days) * 86_400),
            learning_events: self.learning_events,
            incident_gap: std::time::Duration::from_secs(u64::from(self.incident_gap_minutes) * 60),
            forget_after: std::time::Duration::from_secs(u64::from(self.forget_after_days) * 86_400),
        })
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100).contains(&self.threshold) {
            return Err(ConfigError::Value {
                key: "scoring.threshold",
                value: self.threshold.to_string(),
                expected: "1 to 100",
            });
        }
        // An incident must close before its identity's baseline can be forgotten (a role's
        // session's after two days).
        if !(1..=1440).contains(&self.incident_gap_minutes) {
            return Err(ConfigError::Value {
                key: "scoring.incident_gap_minutes",
                value: self.incident_gap_minutes.to_string(),
                expected: "1 to 1440 (minutes)",
            });
        }
        if self.forget_after_days < 2 {
            return Err(ConfigError::Value {
                key: "scoring.forget_after_days",
                value: self.forget_after_days.to_string(),
                expected: "at least 2 (days)",
            });
        }
        Ok(())
    }
}

/// `[integrity]`: log-file integrity validation (README, "Log-file integrity").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrityConfig {
    /// Validate each new digest in `run`. Default: on when the trail has log file validation
    /// on (or, without a trail check, when the bucket holds digests).
    pub enabled: Option<bool>,
    /// CloudTrail's public keys as `aws cloudtrail list-public-keys` prints them: what digest
    /// signatures are checked with in restricted mode (which makes no CloudTrail call). Without
    /// it, restricted mode checks hashes and the chain, not signatures.
    pub public_keys_file: Option<PathBuf>,
    /// How often `run` looks for new digests, in seconds (CloudTrail writes one an hour per
    /// stream). Default 300.
    #[serde(default = "default_integrity_interval_secs")]
    pub check_interval_secs: u64,
}

fn default_integrity_interval_secs() -> u64 {
    300
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            enabled: None,
            public_keys_file: None,
            check_interval_secs: default_integrity_interval_secs(),
        }
    }
}

/// `[delete]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteConfig {
    /// Delete processed log files (default mode only). Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hours after the file's own timestamp. Default 24.
    #[serde(default = "default_after_hours")]
    pub after_hours: u64,
}

impl Default for DeleteConfig {
    fn default() -> Self {
        DeleteConfig {
            enabled: true,
            after_hours: default_after_hours(),
        }
    }
}

fn default_after_hours() -> u64 {
    24
}

/// `[state]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Directory of the checkpoint. Default `$XDG_STATE_HOME/trailwatch`, else
    /// `~/.local/state/trailwatch`.
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: default_state_dir(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("trailwatch");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/trailwatch"),
        None => PathBuf::from("trailwatch-state"),
    }
}

/// `[output]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// NDJSON file to append to; absent: stdout.
    pub path: Option<PathBuf>,
}

/// `[plugin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Directory holding plugin `.wasm` files; the newest compatible one is used (the built-in
    /// plugin too, unless `builtin = false`). Absent: `$TRAILWATCH_PLUGIN_DIR`, else the default
    /// directories (see [`default_plugin_dirs`]).
    pub dir: Option<PathBuf>,
    /// Also consider the plugin built into the binary. Default true.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// Directory for compiled plugins; empty string turns the cache off.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: Option<PathBuf>,
    /// Cap on the plugin's memory per file, in MiB.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: u64,
    /// Time the plugin may spend on one file, in seconds.
    #[serde(default = "default_time_limit_secs")]
    pub time_limit_secs: u64,
    /// A file that decompresses to more than this many MiB is refused (gzip bombs).
    #[serde(default = "default_max_decompressed_mib")]
    pub max_decompressed_mib: u64,
    /// A single record larger than this many MiB is skipped and flagged.
    #[serde(default = "default_max_record_mib")]
    pub max_record_mib: u32,
    /// Use a plugin from a directory only when its SHA-256 is in `pinned_sha256` or
    /// `<file>.minisig` is a minisign signature of it by one of `trusted_keys`.
    #[serde(default)]
    pub require_signature: bool,
    /// minisign public keys (the base64 line of a `.pub` file, `RW…`).
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// SHA-256 hashes (hex) of plugin files accepted without a signature.
    #[serde(default)]
    pub pinned_sha256: Vec<String>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            dir: None,
            builtin: true,
            cache_dir: default_cache_dir(),
            memory_limit_mib: default_memory_limit_mib(),
            time_limit_secs: default_time_limit_secs(),
            max_decompressed_mib: default_max_decompressed_mib(),
            max_record_mib: default_max_record_mib(),
            require_signature: false,
            trusted_keys: Vec::new(),
            pinned_sha256: Vec::new(),
        }
    }
}

/// The plugin directories looked at when none is given: the user's
/// (`$XDG_DATA_HOME/trailwatch/plugins`, else `~/.local/share/trailwatch/plugins`), then the
/// system's (`/usr/local/lib/trailwatch/plugins`, `/usr/lib/trailwatch/plugins`). Those that do
/// not exist are passed over.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(x) => dirs.push(PathBuf::from(x).join("trailwatch/plugins")),
        None => {
            if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                dirs.push(PathBuf::from(h).join(".local/share/trailwatch/plugins"));
            }
        }
    }
    dirs.push(PathBuf::from("/usr/local/lib/trailwatch/plugins"));
    dirs.push(PathBuf::from("/usr/lib/trailwatch/plugins"));
    dirs
}

/// `$XDG_CACHE_HOME/trailwatch`, else `$HOME/.cache/trailwatch`, else no cache.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("trailwatch"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/trailwatch"))
}

fn default_memory_limit_mib() -> u64 {
    512
}
fn default_time_limit_secs() -> u64 {
    120
}
fn default_max_decompressed_mib() -> u64 {
    4096
}
fn default_max_record_mib() -> u32 {
    16
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value out of range.
    #[error("config key {key} = {value}: expected {expected}")]
    Value {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A value that cannot be used, with why.
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if config
            .plugin
            .cache_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            config.plugin.cache_dir = None;
        }
        config.plugin.validate()?;
        config.scoring.validate()?;
        config.report.validate(&config.scoring)?;
        config.validate_run()?;
        Ok(config)
    }

    /// Checks the keys `run` uses.
    pub fn validate_run(&self) -> Result<(), ConfigError> {
        let a = &self.aws;
        if a.access_key_id.is_some() != a.secret_access_key.is_some() {
            return Err(ConfigError::Value {
                key: "aws.access_key_id",
                value: if a.access_key_id.is_some() {
                    "set".into()
                } else {
                    "unset".into()
                },
                expected: "access_key_id and secret_access_key both set, or both unset (AWS credential chain)",
            });
        }
        if let Some(u) = &a.endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::Value {
                    key: "aws.endpoint_url",
                    value: u.clone(),
                    expected: "an http:// or https:// URL",
                });
            }
        }
        if self.mode == Mode::Restricted && self.trail.auto_configure {
            return Err(ConfigError::Value {
                key: "trail.auto_configure",
                value: "true".into(),
                expected: "false in restricted mode, which never calls CloudTrail",
            });
        }
        if self.trail.config_check_interval_secs < 10 {
            return Err(ConfigError::Value {
                key: "trail.config_check_interval_secs",
                value: self.trail.config_check_interval_secs.to_string(),
                expected: "at least 10 (seconds)",
            });
        }
        let s = &self.source;
        if self.mode == Mode::Restricted && s.bucket.is_none() {
            return Err(ConfigError::Value {
                key: "source.bucket",
                value: "unset".into(),
                expected: "a bucket name: restricted mode never calls CloudTrail, so the bucket cannot be discovered",
            });
        }
        if s.kind == SourceKind::Sqs {
            match &s.queue_url {
                None => {
                    return Err(ConfigError::Value {
                        key: "source.queue_url",
                        value: "unset".into(),
                        expected:
                            "the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>) with type = \"sqs\"",
                    })
                }
                Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                    return Err(ConfigError::Value {
                        key: "source.queue_url",
                        value: u.clone(),
                        expected: "an http:// or https:// URL",
                    })
                }
                Some(_) => {}
            }
            if self.integrity.enabled == Some(true) {
                return Err(ConfigError::Value {
                    key: "integrity.enabled",
                    value: "true".into(),
                    expected: "unset or false with type = \"sqs\": `run` follows digests while polling the bucket, \
                               which the queue source never lists; check them with `trailwatch verify`",
                });
            }
            let timeout = a.request_timeout_secs.unwrap_or(60);
            if timeout <= s.wait_time_secs + 5 {
                return Err(ConfigError::Value {
                    key: "aws.request_timeout_secs",
                    value: timeout.to_string(),
                    expected: "more than source.wait_time_secs + 5 (a long poll must end before the request times out)",
                });
            }
        } else if s.queue_url.is_some() {
            return Err(ConfigError::Value {
                key: "source.queue_url",
                value: "set".into(),
                expected: "unset unless type = \"sqs\"",
            });
        }
        if !(1..=20).contains(&s.wait_time_secs) {
            return Err(ConfigError::Value {
                key: "source.wait_time_secs",
                value: s.wait_time_secs.to_string(),
                expected: "1 to 20 (seconds; SQS's longest long poll)",
            });
        }
        if let Some(v) = s.visibility_timeout_secs.filter(|v| !(2..=43_200).contains(v)) {
            return Err(ConfigError::Value {
                key: "source.visibility_timeout_secs",
                value: v.to_string(),
                expected: "2 to 43200 (seconds, as SQS allows)",
            });
        }
        if s.max_receives == Some(0) {
            return Err(ConfigError::Value {
                key: "source.max_receives",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if s.dedup_max_events == 0 {
            return Err(ConfigError::Value {
                key: "source.dedup_max_events",
                value: "0".into(),
                expected: "at least 1; to turn de-duplication off, set dedup_window_secs = 0",
            });
        }
        if s.start != "now" && crate::layout::Day::parse(&s.start).is_none() {
            return Err(ConfigError::Value {
                key: "source.start",
                value: s.start.clone(),
                expected: "\"now\" or a date YYYY-MM-DD",
            });
        }
        if s.poll_interval_secs == 0 {
            return Err(ConfigError::Value {
                key: "source.poll_interval_secs",
                value: "0".into(),
                expected: "at least 1 (seconds)",
            });
        }
        if !(2..=30).contains(&s.relist_days) {
            // One day would close yesterday at midnight, before its last, late files arrive.
            return Err(ConfigError::Value {
                key: "source.relist_days",
                value: s.relist_days.to_string(),
                expected: "2 to 30 (days; today and at least yesterday)",
            });
        }
        if !(1..=65_536).contains(&s.max_object_mib) {
            return Err(ConfigError::Value {
                key: "source.max_object_mib",
                value: s.max_object_mib.to_string(),
                expected: "1 to 65536 (MiB)",
            });
        }
        if !(1..=87_600).contains(&self.delete.after_hours) {
            return Err(ConfigError::Value {
                key: "delete.after_hours",
                value: self.delete.after_hours.to_string(),
                expected: "1 to 87600 (hours); to keep files, set delete.enabled = false",
            });
        }
        for (key, value) in [
            ("aws.connect_timeout_secs", a.connect_timeout_secs),
            ("aws.request_timeout_secs", a.request_timeout_secs),
        ] {
            if let Some(v) = value.filter(|v| !(1..=3600).contains(v)) {
                return Err(ConfigError::Value {
                    key,
                    value: v.to_string(),
                    expected: "1 to 3600 (seconds)",
                });
            }
        }
        if let Some(v) = a.max_attempts.filter(|v| !(1..=20).contains(v)) {
            return Err(ConfigError::Value {
                key: "aws.max_attempts",
                value: v.to_string(),
                expected: "1 to 20",
            });
        }
        if !(1..=64).contains(&s.max_concurrent_fetches) {
            return Err(ConfigError::Value {
                key: "source.max_concurrent_fetches",
                value: s.max_concurrent_fetches.to_string(),
                expected: "1 to 64",
            });
        }
        if let Some(bad) = s.accounts.iter().find(|a| !crate::layout::is_account_id(a)) {
            return Err(ConfigError::Value {
                key: "source.accounts",
                value: bad.clone(),
                expected: "12-digit account ids",
            });
        }
        if self
            .pipeline
            .max_concurrent_files
            .is_some_and(|n| !(1..=256).contains(&n))
        {
            return Err(ConfigError::Value {
                key: "pipeline.max_concurrent_files",
                value: format!("{:?}", self.pipeline.max_concurrent_files),
                expected: "1 to 256",
            });
        }
        if !(1..=4096).contains(&self.pipeline.max_inflight_mib) {
            return Err(ConfigError::Value {
                key: "pipeline.max_inflight_mib",
                value: self.pipeline.max_inflight_mib.to_string(),
                expected: "1 to 4096 (MiB)",
            });
        }
        if let Some(listen) = &self.metrics.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Value {
                    key: "metrics.listen",
                    value: listen.clone(),
                    expected: "an address and port, e.g. 127.0.0.1:9464",
                });
            }
        }
        if self.output.path.is_some() && !self.sinks.is_empty() {
            return Err(ConfigError::Value {
                key: "output.path",
                value: "set".into(),
                expected: "either [output] path or [[sinks]], not both (use a [[sinks]] table with type = \"file\")",
            });
        }
        for sink in &self.sinks {
            sink.validate()?;
        }
        Ok(())
    }
}

impl SinkConfig {
    /// Checks one sink table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (key, h) = match self {
            SinkConfig::Stdout(_) => return Ok(()),
            SinkConfig::File(f) => {
                if f.rotate_mib == Some(0) {
                    return Err(ConfigError::Value {
                        key: "sinks.rotate_mib",
                        value: "0".into(),
                        expected: "at least 1 (MiB), or absent for no rotation",
                    });
                }
                if f.keep_files == 0 {
                    // Rotating with nothing kept would delete events already acknowledged.
                    return Err(ConfigError::Value {
                        key: "sinks.keep_files",
                        value: "0".into(),
                        expected: "at least 1 (rotated files kept)",
                    });
                }
                return Ok(());
            }
            SinkConfig::Http(h) => {
                if h.endpoint.is_some() {
                    return Err(ConfigError::Value {
                        key: "sinks.endpoint",
                        value: "set".into(),
                        expected: "url for an http sink (endpoint is for otlp)",
                    });
                }
                ("sinks.url", h)
            }
            SinkConfig::Otlp(h) => {
                if h.content_type.is_some() {
                    return Err(ConfigError::Value {
                        key: "sinks.content_type",
                        value: "set".into(),
                        expected: "no content_type for an otlp sink (OTLP/HTTP JSON is application/json)",
                    });
                }
                if h.url.is_some() {
                    return Err(ConfigError::Value {
                        key: "sinks.url",
                        value: "set".into(),
                        expected: "endpoint for an otlp sink (logs go to {endpoint}/v1/logs)",
                    });
                }
                ("sinks.endpoint", h)
            }
        };
        let url = h.url.as_ref().or(h.endpoint.as_ref());
        match url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => h.check_transport(key, u)?,
            Some(u) => {
                return Err(ConfigError::Value {
                    key,
                    value: u.clone(),
                    expected: "an http:// or https:// URL",
                })
            }
            None => {
                return Err(ConfigError::Value {
                    key,
                    value: "unset".into(),
                    expected: "the receiver's URL",
                })
            }
        }
        for (name, value) in &h.headers {
            if let Err(var) = expand_env(value.expose()) {
                return Err(ConfigError::Value {
                    key: "sinks.headers",
                    value: format!("{name} = …${{env:{var}}}…"),
                    expected: "an environment variable that is set",
                });
            }
        }
        let ranges: [(&'static str, u64, u64, u64); 5] = [
            ("sinks.batch_max_events", h.batch_max_events as u64, 1, 100_000),
            ("sinks.batch_max_bytes", h.batch_max_bytes as u64, 1024, 256 << 20),
            ("sinks.batch_timeout_ms", h.batch_timeout_ms, 1, 600_000),
            ("sinks.request_timeout_secs", h.request_timeout_secs, 1, 3600),
            ("sinks.connect_timeout_secs", h.connect_timeout_secs, 1, 3600),
        ];
        for (key, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                return Err(ConfigError::Value {
                    key,
                    value: value.to_string(),
                    expected: "a value in range (see the README's sink table)",
                });
            }
        }
        Ok(())
    }
}

/// `text` with every `${env:NAME}` replaced by that variable's value; the name of the first
/// variable that is not set, when one is not.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&std::env::var(name).map_err(|_| name.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl HttpSinkConfig {
    /// Plaintext only to this machine unless allowed; TLS files only with `https://`, the
    /// client certificate and key together.
    fn check_transport(&self, key: &'static str, url: &str) -> Result<(), ConfigError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
            key: key.into(),
            message: format!("{url}: {e}"),
        })?;
        let tls_set = [
            ("sinks.tls_ca_file", &self.tls_ca_file),
            ("sinks.tls_client_cert_file", &self.tls_client_cert_file),
            ("sinks.tls_client_key_file", &self.tls_client_key_file),
        ];
        if parsed.scheme() == "http" {
            if let Some((name, _)) = tls_set.iter().find(|(_, v)| v.is_some()) {
                return Err(ConfigError::Invalid {
                    key: (*name).into(),
                    message: format!("set, but {key} = {url} is plain http:// and would not use it; use https://"),
                });
            }
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback && !self.allow_plaintext {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: format!(
                        "{url} is plain http:// to another machine: events (and any Authorization header) would \
                         cross the network unencrypted; use https://, or set allow_plaintext = true for this sink"
                    ),
                });
            }
        }
        match (&self.tls_client_cert_file, &self.tls_client_key_file) {
            (Some(_), None) => Err(ConfigError::Invalid {
                key: "sinks.tls_client_key_file".into(),
                message: "unset, but tls_client_cert_file is set: a client certificate needs its key".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                key: "sinks.tls_client_cert_file".into(),
                message: "unset, but tls_client_key_file is set: a key needs its client certificate".into(),
            }),
            _ => Ok(()),
        }
    }

    /// The headers with `${env:NAME}` values read from the environment.
    pub fn resolved_headers(&self) -> Vec<(String, crate::aws::secret::Secret)> {
        self.headers
            .iter()
            .map(|(k, v)| {
                let value = expand_env(v.expose()).unwrap_or_default();
                (k.clone(), crate::aws::secret::Secret::new(value))
            })
            .collect()
    }
}

impl PluginConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(16..=65_536).contains(&self.memory_limit_mib) {
            return Err(ConfigError::Value {
                key: "plugin.memory_limit_mib",
                value: self.memory_limit_mib.to_string(),
                expected: "16 to 65536 (MiB)",
            });
        }
        if !(1..=86_400).contains(&self.time_limit_secs) {
            return Err(ConfigError::Value {
                key: "plugin.time_limit_secs",
                value: self.time_limit_secs.to_string(),
                expected: "1 to 86400 (seconds)",
            });
        }
        if self.max_decompressed_mib == 0 {
            return Err(ConfigError::Value {
                key: "plugin.max_decompressed_mib",
                value: "0".into(),
                expected: "at least 1 (MiB)",
            });
        }
        if !(1..=1024).contains(&self.max_record_mib) {
            return Err(ConfigError::Value {
                key: "plugin.max_record_mib",
                value: self.max_record_mib.to_string(),
                expected: "1 to 1024 (MiB)",
            });
        }
        self.trust()?;
        Ok(())
    }

    /// The compiled-plugin cache. None under the trust policy: a cached artifact is native code
    /// that no signature covers, and whoever could write one would get around the policy.
    pub fn compile_cache(&self) -> crate::runtime::cache::CompileCache {
        use crate::runtime::cache::CompileCache;
        match &self.cache_dir {
            Some(dir) if !self.require_signature => CompileCache::in_dir(dir),
            _ => CompileCache::disabled(),
        }
    }

    /// The trust policy, `None` without `require_signature`. Keys and hashes without
    /// `require_signature = true` are an error: they would look like protection and check nothing.
    pub fn trust(&self) -> Result<Option<crate::runtime::trust::TrustPolicy>, ConfigError> {
        use crate::runtime::trust::{TrustPolicy, TrustedKey};
        if !self.require_signature {
            if !self.trusted_keys.is_empty() || !self.pinned_sha256.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "plugin.require_signature".into(),
                    message: "trusted_keys or pinned_sha256 is set but require_signature is not true, so plugins \
                              would not be checked; set require_signature = true"
                        .into(),
                });
            }
            return Ok(None);
        }
        if self.trusted_keys.is_empty() && self.pinned_sha256.is_empty() {
            return Err(ConfigError::Invalid {
                key: "plugin.require_signature".into(),
                message: "true, but neither trusted_keys nor pinned_sha256 is set: no plugin file could be used \
                          (the built-in one could); add a minisign public key or a SHA-256"
                    .into(),
            });
        }
        let keys = self
            .trusted_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                TrustedKey::parse(k).map_err(|message| ConfigError::Invalid {
                    key: format!("plugin.trusted_keys[{i}] = {k:?}"),
                    message,
                })
            })
            .collect::<Result<Vec<TrustedKey>, _>>()?;
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(ConfigError::Invalid {
                    key: format!("plugin.trusted_keys[{i}]"),
                    message: format!("a second key with ID {}: key IDs must be unique", k.id),
                });
            }
        }
        let pinned = self
            .pinned_sha256
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = h.trim().to_ascii_lowercase();
                if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(h)
                } else {
                    Err(ConfigError::Invalid {
                        key: format!("plugin.pinned_sha256[{i}] = {h:?}"),
                        message: "expected a SHA-256 as 64 hex digits (`sha256sum FILE.wasm`)".into(),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(TrustPolicy { keys, pinned }))
    }

    /// Where plugins are looked for: `flag_dir` (`--plugin-dir`), else `$TRAILWATCH_PLUGIN_DIR`,
    /// else `[plugin] dir`, else the default directories; with the trust policy.
    pub fn search(&self, flag_dir: Option<&Path>) -> Result<crate::runtime::PluginSearch, ConfigError> {
        let explicit = flag_dir
            .map(Path::to_owned)
            .or_else(|| {
                std::env::var_os("TRAILWATCH_PLUGIN_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| self.dir.clone());
        Ok(crate::runtime::PluginSearch {
            explicit: explicit.is_some(),
            dirs: explicit.map_or_else(default_plugin_dirs, |d| vec![d]),
            builtin: self.builtin,
            trust: self.trust()?,
        })
    }

    /// The limits every plugin store gets.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_limit_mib << 20,
            time_per_file: Duration::from_secs(self.time_limit_secs),
            max_decompressed_bytes: self.max_decompressed_mib << 20,
            max_record_bytes: self.max_record_mib << 20,
            max_depth: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e = Config::parse("[plugin]\nmemory_limit = 5\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("memory_limit"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_key_value_and_expectation() {
        let e = Config::parse("[plugin]\nmemory_limit_mib = 1\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key plugin.memory_limit_mib = 1: expected 16 to 65536 (MiB)"
        );
    }

    #[test]
    fn the_report_page_needs_scoring_and_a_sensible_interval() {
        let c = Config::parse("[report]\npath = \"/tmp/r.html\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.report.every_minutes, 10);
        let e = Config::parse(
            "[report]\npath = \"/tmp/r.html\"\nevery_minutes = 0\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key report.every_minutes = 0: expected 1 to 1440 (minutes)"
        );
        let e = Config::parse(
            "[scoring]\nenabled = false\n[report]\npath = \"/tmp/r.html\"\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key report.path = /tmp/r.html: expected unset while [scoring] enabled = false"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config::parse(
            "[aws]\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI-secret\"\nsession_token = \"tok-secret\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(
            debug.contains("AKIDEXAMPLE")
                && !debug.contains("secret\"")
                && !debug.contains("wJalr")
                && !debug.contains("tok-")
        );
    }

    #[test]
    fn auto_configure_is_refused_in_restricted_mode() {
        let e = Config::parse(
            "mode = \"restricted\"\n[source]\nbucket = \"b\"\n[trail]\nauto_configure = true\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("trail.auto_configure"), "{e}");
    }

    #[test]
    fn restricted_mode_needs_a_bucket() {
        let e = Config::parse("mode = \"restricted\"\n", Path::new("t.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key source.bucket = unset: expected a bucket name"),
            "{e}"
        );
        let e = Config::parse("[source]\nstart = \"yesterday\"\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key source.start = yesterday: expected \"now\" or a date YYYY-MM-DD"
        );
    }

    #[test]
    fn the_plugin_trust_policy_is_checked() {
        let parse = |t: &str| Config::parse(t, Path::new("t.toml"));
        let e = parse("[plugin]\nrequire_signature = true\n").unwrap_err().to_string();
        assert!(
            e.contains("plugin.require_signature") && e.contains("neither trusted_keys nor pinned_sha256"),
            "{e}"
        );
        let e = parse("[plugin]\npinned_sha256 = [\"ab\"]\n").unwrap_err().to_string();
        assert!(e.contains("require_signature is not true"), "{e}");
        let e = parse("[plugin]\nrequire_signature = true\npinned_sha256 = [\"ab\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plugin.pinned_sha256[0]") && e.contains("64 hex digits"),
            "{e}"
        );
        let e = parse("[plugin]\nrequire_signature = true\ntrusted_keys = [\"RWQnope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plugin.trusted_keys[0]") && e.contains("not a minisign public key"),
            "{e}"
        );
        let pin = "AB".repeat(32);
        let c = parse(&format!(
            "[plugin]\nrequire_signature = true\npinned_sha256 = [\"{pin}\"]\n"
        ))
        .unwrap();
        let trust = c.plugin.search(None).unwrap().trust.unwrap();
        assert_eq!(trust.pinned, vec!["ab".repeat(32)]);
        assert!(Config::default().plugin.search(None).unwrap().trust.is_none());
    }

    #[test]
    fn a_queue_source_is_checked() {
        let parse = |t: &str| Config::parse(t, Path::new("t.toml"));
        let e = parse("[source]\ntype = \"sqs\"\n").unwrap_err();
        assert!(e.to_string().starts_with("config key source.queue_url = unset"), "{e}");
        let e = parse("[source]\nqueue_url = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\n").unwrap_err();
        assert!(e.to_string().contains("unset unless type = \"sqs\""), "{e}");
        let e = parse("[source]\ntype = \"sqs\"\nqueue_url = \"sqs.eu-west-1.amazonaws.com/1/q\"\n").unwrap_err();
        assert!(e.to_string().contains("an http:// or https:// URL"), "{e}");
        let e = parse("[source]\ntype = \"kinesis\"\n").unwrap_err();
        assert!(e.to_string().contains("kinesis"), "{e}");
        let queue = "[source]\ntype = \"sqs\"\nqueue_url = \"https://sqs.eu-west-1.amazonaws.com/1/q\"\n";
        let e = parse(&format!("{queue}wait_time_secs = 21\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key source.wait_time_secs = 21: expected 1 to 20 (seconds; SQS's longest long poll)"
        );
        let e = parse(&format!("[aws]\nrequest_timeout_secs = 25\n{queue}")).unwrap_err();
        assert!(
            e.to_string().starts_with("config key aws.request_timeout_secs = 25"),
            "{e}"
        );
        let e = parse(&format!("{queue}visibility_timeout_secs = 1\n")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key source.visibility_timeout_secs = 1"),
            "{e}"
        );
        let e = parse(&format!("{queue}\n[integrity]\nenabled = true\n")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key integrity.enabled = true: expected unset or false with type = \"sqs\""),
            "{e}"
        );
        assert!(parse(&format!("{queue}\n[integrity]\nenabled = false\n")).is_ok());
        let e = parse(&format!("{queue}max_receives = 0\n")).unwrap_err();
        assert!(e.to_string().starts_with("config key source.max_receives = 0"), "{e}");
        let c = parse(queue).unwrap();
        assert_eq!(c.source.kind, SourceKind::Sqs);
        assert_eq!(c.source.dedup_window(), Some(Duration::from_secs(3600)));
        let c = parse(&format!("{queue}dedup_window_secs = 0\n")).unwrap();
        assert_eq!(c.source.dedup_window(), None);
        assert_eq!(
            parse("").unwrap().source.dedup_window(),
            None,
            "polling reads each key once"
        );
    }

    #[test]
    fn sink_tables_are_typed_and_checked() {
        let c = Config::parse(
            "[[sinks]]\ntype = \"stdout\"\n[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:8686/\"\ncompression = \"gzip\"\n[[sinks]]\ntype = \"otlp\"\nendpoint = \"http://127.0.0.1:4318\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let kinds: Vec<&str> = c.sinks.iter().map(SinkConfig::kind).collect();
        assert_eq!(kinds, ["stdout", "http", "otlp"]);
        let e = Config::parse(
            "[[sinks]]\ntype = \"http\"\nurl = \"x\"\nbatch_size = 3\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("batch_size"), "{e}");
        let e = Config::parse("[[sinks]]\ntype = \"http\"\n", Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key sinks.url = unset: expected the receiver's URL"
        );
        let e = Config::parse("[[sinks]]\ntype = \"kafka\"\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("kafka"), "{e}");
        let e = Config::parse(
            "[[sinks]]\ntype = \"http\"\nurl = \"https://h/\"\nheaders = { Authorization = \"${env:TRAILWATCH_TEST_UNSET_VAR}\" }\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("an environment variable that is set"), "{e}");
    }

    #[test]
    fn plaintext_goes_only_to_this_machine_unless_allowed_and_tls_files_need_https() {
        let parse = |sink: &str| Config::parse(&format!("[[sinks]]\n{sink}\n"), Path::new("t.toml"));
        for ok in [
            "type = \"http\"\nurl = \"http://127.0.0.1:8686/\"",
            "type = \"http\"\nurl = \"http://127.1.2.3/\"",
            "type = \"http\"\nurl = \"http://localhost:8686/\"",
            "type = \"otlp\"\nendpoint = \"http://[::1]:4318\"",
            "type = \"http\"\nurl = \"http://10.0.0.5/\"\nallow_plaintext = true",
            "type = \"otlp\"\nendpoint = \"https://collector.example:4318\"\ntls_ca_file = \"/ca.pem\"\n\
             tls_client_cert_file = \"/c.pem\"\ntls_client_key_file = \"/c.key\"",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = parse("type = \"http\"\nurl = \"http://10.0.0.5:8080/in\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key sinks.url: http://10.0.0.5:8080/in is plain http:// to another machine: events (and any \
             Authorization header) would cross the network unencrypted; use https://, or set allow_plaintext = true \
             for this sink"
        );
        let e = parse("type = \"otlp\"\nendpoint = \"http://collector:4318\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key sinks.endpoint: http://collector:4318 is plain"),
            "{e}"
        );
        let e = parse("type = \"http\"\nurl = \"http://127.0.0.1/\"\ntls_ca_file = \"/ca.pem\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key sinks.tls_ca_file: set, but sinks.url = http://127.0.0.1/ is plain http:// and would not use \
             it; use https://"
        );
        let e = parse("type = \"http\"\nurl = \"https://h/\"\ntls_client_cert_file = \"/c.pem\"").unwrap_err();
        assert!(
            e.to_string().starts_with("config key sinks.tls_client_key_file: unset"),
            "{e}"
        );
        let e = parse("type = \"http\"\nurl = \"https://h/\"\ntls_client_key_file = \"/c.key\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config key sinks.tls_client_cert_file: unset"),
            "{e}"
        );
    }

    #[test]
    fn env_references_are_expanded_anywhere_in_a_value() {
        std::env::set_var("TRAILWATCH_TEST_EXPAND", "tok");
        assert_eq!(
            expand_env("Bearer ${env:TRAILWATCH_TEST_EXPAND}!").unwrap(),
            "Bearer tok!"
        );
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert_eq!(
            expand_env("${env:TRAILWATCH_TEST_NOT_SET_AT_ALL}").unwrap_err(),
            "TRAILWATCH_TEST_NOT_SET_AT_ALL"
        );
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert_eq!(c.plugin.memory_limit_mib, 512);
        assert_eq!(c.plugin.limits().time_per_file, Duration::from_secs(120));
    }
}
