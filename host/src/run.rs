//! `trailwatch run`: follow the trail bucket and feed every event into every sink.
//!
//! The loop polls, sleeps `poll_interval_secs`, and polls again; SIGTERM or SIGINT lets the files
//! in flight finish, waits briefly for the sinks' acknowledgements, commits the checkpoint and
//! exits 0. Errors (AWS, a failing sink) back off (doubling up to 15 minutes, reset by a good
//! poll); the same error is logged once, not at every retry.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::aws::credentials::CredentialSource;
use crate::aws::endpoint::{self, Variant};
use crate::aws::{AwsClient, ClientSettings};
use crate::config::SourceKind;
use crate::config::{Config, Mode};
use crate::layout::Day;
use crate::metrics::Metrics;
use crate::pipeline::{Clock, CycleError, Ledger, Pipeline, PipelineSettings, SystemClock};
use crate::runtime::bindings::trail_check as tc;
use crate::runtime::watch::PluginWatch;
use crate::runtime::{PluginRuntime, PluginSearch};
use crate::score::state::ScoreState;
use crate::source::s3_poll::{PollSettings, S3Source, Start};
use crate::source::sqs::{QueueSettings, SqsSource};
use crate::state::checkpoint::CheckpointStore;
use crate::trail;

/// Longest pause after repeated errors.
const MAX_BACKOFF: Duration = Duration::from_secs(900);

/// The AWS client the configuration asks for, for `region` when given.
pub fn client(config: &Config, region: Option<&str>) -> anyhow::Result<AwsClient> {
    client_for(&config.aws, region)
}

/// The AWS client `[aws]` asks for, for `region` when given.
pub fn client_for(a: &crate::config::AwsConfig, region: Option<&str>) -> anyhow::Result<AwsClient> {
    let defaults = ClientSettings::default();
    let region = region
        .map(str::to_owned)
        .or_else(|| a.region.clone())
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let flag = |set: Option<bool>, var: &str, key: &str| -> anyhow::Result<bool> {
        match set {
            Some(b) => Ok(b),
            None => match std::env::var(var) {
                Err(_) => Ok(false),
                Ok(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Ok(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Ok(v) => bail!("${var} is {v:?}; expected true or false (or set aws.{key})"),
            },
        }
    };
    let variant = Variant {
        fips: flag(a.use_fips, "AWS_USE_FIPS_ENDPOINT", "use_fips")?,
        dual_stack: flag(a.use_dualstack, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack")?,
    };
    if a.endpoint_url.is_none() {
        if let Some(why) = endpoint::unsupported(&region, variant) {
            bail!("aws.use_fips / aws.use_dualstack: {why}");
        }
    }
    let settings = ClientSettings {
        region,
        endpoint_url: a.endpoint_url.clone(),
        variant,
        connect_timeout: a
            .connect_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(defaults.connect_timeout),
        request_timeout: a
            .request_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(defaults.request_timeout),
        max_attempts: a.max_attempts.unwrap_or(defaults.max_attempts).max(1),
        ..defaults
    };
    let source = match (&a.access_key_id, &a.secret_access_key) {
        (Some(id), Some(secret)) => CredentialSource::Static {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: a.session_token.clone(),
        },
        _ => CredentialSource::Chain {
            profile: a.profile.clone(),
        },
    };
    let seed = SystemClock.now_ms() as u64 ^ u64::from(std::process::id());
    Ok(AwsClient::new(settings, source, seed)?)
}

/// The client for `bucket`'s own region (HeadBucket says which), or `client` when it is the
/// same or S3 does not say.
pub(crate) async fn bucket_client(
    config: &Config,
    client: Arc<AwsClient>,
    bucket: &str,
) -> anyhow::Result<Arc<AwsClient>> {
    Ok(match crate::aws::s3::S3::new(&client, bucket).region().await {
        Ok(Some(region)) if region != client.settings().region => {
            tracing::info!(bucket = %bucket, region = %region, "the bucket is in another region; using it for S3");
            Arc::new(self::client(config, Some(&region))?)
        }
        Ok(_) => client,
        Err(e) => {
            tracing::warn!(bucket = %bucket, error = %e, "could not learn the bucket's region; using aws.region");
            client
        }
    })
}

/// Logs a finding of the start-up check at its severity.
fn log_finding(f: &tc::Finding) {
    let evidence: Vec<String> = f.evidence.iter().map(|e| format!("{}={}", e.field, e.value)).collect();
    let evidence = evidence.join(", ");
    match f.severity {
        tc::Severity::Error => {
            tracing::error!(code = %f.code, trail = ?f.trail, evidence = %evidence, "trail check: {}", f.message)
        }
        tc::Severity::Warning => {
            tracing::warn!(code = %f.code, trail = ?f.trail, evidence = %evidence, "trail check: {}", f.message)
        }
        tc::Severity::Info => {
            tracing::info!(code = %f.code, trail = ?f.trail, evidence = %evidence, "trail check: {}", f.message)
        }
    }
}

/// The bucket and prefix to read: the configured bucket as it is, or the trail the check
/// chose. The check runs at start-up in default and write-only modes (`[trail] check`); its
/// findings are logged. Without a configured bucket, a check that chose no trail stops the
/// start, naming why.
pub(crate) async fn locate(config: &Config, client: &AwsClient, runtime: &PluginRuntime) -> anyhow::Result<Located> {
    let configured = config.source.bucket.clone();
    let as_configured = |bucket: String, check: Option<Checked>| Located {
        bucket,
        prefix: config.source.prefix.clone().unwrap_or_default(),
        check,
    };
    if config.mode == Mode::Restricted {
        let bucket = configured.context("source.bucket is required in restricted mode")?;
        return Ok(as_configured(bucket, None));
    }
    if configured.is_some() && !config.trail.check {
        return Ok(as_configured(configured.unwrap_or_default(), None));
    }
    let check = match (check_trail(config, client, runtime).await, &configured) {
        (Ok(c), _) => c,
        (Err(e), Some(bucket)) => {
            tracing::warn!(error = %format!("{e:#}"), "the trail could not be checked; reading source.bucket as configured");
            return Ok(as_configured(bucket.clone(), None));
        }
        (Err(e), None) => return Err(e.context("finding the trail's bucket")),
    };
    for f in &check.report.findings {
        log_finding(f);
    }
    let (snap, report) = (&check.snapshot, &check.report);
    if let Some(bucket) = configured {
        return Ok(as_configured(bucket, Some(check)));
    }
    let Some(name) = &report.chosen else {
        let errors: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.severity == tc::Severity::Error)
            .map(|f| f.message.as_str())
            .collect();
        bail!("no trail to follow ({}): {}", report.reason, errors.join("; "));
    };
    let trail = snap
        .trails
        .iter()
        .find(|t| &t.trail.name == name)
        .with_context(|| format!("the check chose trail {name}, which DescribeTrails did not list"))?;
    let bucket = trail
        .trail
        .bucket
        .clone()
        .with_context(|| format!("trail {name} has no S3 bucket"))?;
    let prefix = config
        .source
        .prefix
        .clone()
        .or(report.prefix.clone())
        .unwrap_or_default();
    tracing::info!(trail = %name, bucket = %bucket, prefix = %prefix, reason = %report.reason, "following trail");
    Ok(Located {
        bucket,
        prefix,
        check: Some(check),
    })
}

/// Where `run` reads, and the start-up check's verdict when there was one.
pub(crate) struct Located {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) check: Option<Checked>,
}

/// A trail check's verdict, for the sinks and the metrics, and the changes auto-configure made
/// before it.
pub(crate) struct Checked {
    region: String,
    checked_at_ms: i64,
    pub(crate) snapshot: tc::Snapshot,
    pub(crate) report: tc::Report,
    changes: Vec<(String, trail::Change)>,
}

/// Checks the trail; with `[trail] auto_configure`, applies the fixes for the trail the module
/// reads and checks again. Every change is logged before and after (`trail::apply`).
async fn check_trail(config: &Config, client: &AwsClient, runtime: &PluginRuntime) -> anyhow::Result<Checked> {
    let checked = check_trail_once(config, client, runtime).await?;
    auto_configure(config, client, runtime, checked).await
}

/// Applies `checked`'s fixes when auto-configure is on, and checks again after a change.
async fn auto_configure(
    config: &Config,
    client: &AwsClient,
    runtime: &PluginRuntime,
    checked: Checked,
) -> anyhow::Result<Checked> {
    if !config.trail.auto_configure || config.mode == Mode::Restricted {
        return Ok(checked);
    }
    let mut changes = Vec::new();
    for a in trail::apply_all(config, client, &checked.snapshot, &checked.report, true).await {
        match a.result {
            Ok(change) => changes.push((a.trail, change)),
            Err(e) => {
                tracing::warn!(trail = %a.trail, fix = %a.fix, error = %format!("{e:#}"), "auto-configure could not change the trail")
            }
        }
    }
    if changes.is_empty() {
        return Ok(checked);
    }
    let mut again = check_trail_once(config, client, runtime).await?;
    again.changes = changes;
    Ok(again)
}

/// One check, without auto-configure.
async fn check_trail_once(config: &Config, client: &AwsClient, runtime: &PluginRuntime) -> anyhow::Result<Checked> {
    let checked_at_ms = SystemClock.now_ms();
    let snapshot = trail::snapshot(config, client, checked_at_ms).await?;
    let report = trail::check(runtime, &snapshot)?;
    Ok(Checked {
        region: snapshot.region.clone(),
        checked_at_ms,
        snapshot,
        report,
        changes: Vec::new(),
    })
}

/// Queues the check's findings for every sink as documents (`kind` = `finding`), ahead of the
/// first cycle's events, and sets the findings metric.
fn report_findings(check: &Checked, pipeline: &mut Pipeline, metrics: &Metrics) {
    let findings = &check.report.findings;
    metrics.trail_findings(
        findings
            .iter()
            .map(|f| (f.code.as_str(), trail::severity_name(f.severity))),
    );
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    let changes: Vec<tc::Finding> = check.changes.iter().map(|(t, c)| trail::change_finding(t, c)).collect();
    for f in changes.iter().chain(findings) {
        bytes.extend_from_slice(trail::document(&check.report, f, &check.region, check.checked_at_ms).as_bytes());
        bytes.push(b'\n');
        ends.push(bytes.len() as u32);
    }
    pipeline.queue_documents(bytes, ends);
}

/// Log files larger than this (compressed) are read from the connection as they are used: at
/// most `max_concurrent_fetches` objects of up to this size are held in memory at once.
pub const STREAM_ABOVE_BYTES: u64 = 8 << 20;

/// The poller settings the configuration asks for; `bucket` and `prefix` resolved.
pub fn poll_settings(config: &Config, bucket: String, prefix: String) -> PollSettings {
    let s = &config.source;
    PollSettings {
        bucket,
        prefix,
        accounts: s.accounts.clone(),
        regions: s.regions.clone(),
        include_insight: s.include_insight,
        start: match Day::parse(&s.start) {
            Some(d) => Start::Day(d),
            None => Start::Now,
        },
        relist_days: i64::from(s.relist_days),
        relist_interval: Duration::from_secs(s.relist_interval_secs),
        max_object_bytes: s.max_object_mib << 20,
        stream_above_bytes: STREAM_ABOVE_BYTES,
        delete_after: (config.mode != Mode::Restricted && config.delete.enabled)
            .then(|| Duration::from_secs(config.delete.after_hours * 3600)),
        discovery_interval: Duration::from_secs(s.discovery_interval_secs),
    }
}

/// A queue cycle receives for at most this long before `run`'s housekeeping.
pub const QUEUE_CYCLE: Duration = Duration::from_secs(60);

/// The queue settings the configuration asks for; `bucket` and `prefix` resolved.
pub fn queue_settings(config: &Config, queue_url: String, bucket: String, prefix: String) -> QueueSettings {
    let s = &config.source;
    QueueSettings {
        queue_url,
        bucket,
        prefix,
        accounts: s.accounts.clone(),
        regions: s.regions.clone(),
        include_insight: s.include_insight,
        wait_time: Duration::from_secs(s.wait_time_secs),
        max_receives: s.max_receives,
        visibility_timeout: s.visibility_timeout_secs.map(Duration::from_secs),
        max_object_bytes: s.max_object_mib << 20,
        stream_above_bytes: STREAM_ABOVE_BYTES,
        delete_after: (config.mode != Mode::Restricted && config.delete.enabled)
            .then(|| Duration::from_secs(config.delete.after_hours * 3600)),
        cycle_length: QUEUE_CYCLE,
        // Without de-duplication, an hour: notifications sent twice come within seconds.
        remember_done: s.dedup_window().unwrap_or(Duration::from_secs(3600)),
    }
}

/// Where `run` finds new files.
enum Source {
    Poll(S3Source),
    Queue(SqsSource),
}

impl Source {
    async fn poll_once(
        &mut self,
        pipeline: &mut Pipeline,
        shutdown: Arc<AtomicBool>,
    ) -> Result<crate::pipeline::CycleReport, CycleError> {
        match self {
            Source::Poll(s) => s.poll_once(pipeline, shutdown).await,
            Source::Queue(q) => q.poll_once(pipeline, shutdown).await,
        }
    }
}

/// The requests of every client, each counted once however many roles it has.
fn all_requests(clients: &[&Arc<AwsClient>]) -> std::collections::BTreeMap<&'static str, u64> {
    all_requests_by(clients, |c| c.requests)
}

/// One count of every distinct client, summed by operation.
fn all_requests_by(
    clients: &[&Arc<AwsClient>],
    which: fn(crate::aws::client::RequestCounts) -> std::collections::BTreeMap<&'static str, u64>,
) -> std::collections::BTreeMap<&'static str, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (i, c) in clients.iter().enumerate() {
        if clients[..i].iter().any(|d| Arc::ptr_eq(c, d)) {
            continue;
        }
        for (op, n) in which(c.counts()) {
            *out.entry(op).or_default() += n;
        }
    }
    out
}

/// The pipeline settings the configuration asks for.
pub fn pipeline_settings(config: &Config) -> PipelineSettings {
    let defaults = PipelineSettings::default();
    PipelineSettings {
        max_concurrent_files: config
            .pipeline
            .max_concurrent_files
            .unwrap_or(defaults.max_concurrent_files),
        max_prefetch: config.source.max_concurrent_fetches,
        max_inflight_bytes: config.pipeline.max_inflight_mib << 20,
        drop_read_only: config.mode == Mode::WriteOnly,
        delayed_after: Duration::from_secs(config.source.delayed_after_secs),
        dedup: config
            .source
            .dedup_window()
            .map(|w| (w, config.source.dedup_max_events)),
        // Set by `run` once it knows whether log files are validated.
        hash_files: false,
        // Opened by `run` (a database that cannot be read stops it with the file's name).
        networks: None,
        scoring: config.scoring.settings(),
    }
}

/// Says at start-up what the mode leaves out, and why.
fn announce_mode(config: &Config) {
    match config.mode {
        Mode::Restricted if config.source.kind == SourceKind::Sqs => tracing::warn!(
            "restricted mode: only sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, \
             sqs:GetQueueAttributes and s3:GetObject are used; the CloudTrail API is never called, so there is no \
             trail discovery and no misconfiguration detection, and no log file is deleted"
        ),
        Mode::Restricted => tracing::warn!(
            "restricted mode: only s3:ListBucket and s3:GetObject are used; the CloudTrail API is never called, so \
             there is no trail discovery and no misconfiguration detection, and no log file is deleted"
        ),
        Mode::WriteOnly => tracing::info!("write-only mode: read-only events are dropped at ingestion"),
        Mode::Default if !config.delete.enabled => tracing::info!("deletion of processed log files is turned off"),
        Mode::Default => {}
    }
}

/// How `run` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// One poll cycle, then exit.
    pub once: bool,
    /// Logs are JSON lines: stderr carries nothing else.
    pub json_logs: bool,
    /// The configuration file, read again on SIGHUP for its `[trail]` settings.
    pub config_path: Option<std::path::PathBuf>,
}

/// Runs the daemon (or one cycle with `once`).
pub fn run(
    config: Config,
    search: PluginSearch,
    runtime: PluginRuntime,
    options: RunOptions,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(config, search, Arc::new(runtime), options))
}

async fn run_async(
    config: Config,
    search: PluginSearch,
    runtime: Arc<PluginRuntime>,
    options: RunOptions,
) -> anyhow::Result<ExitCode> {
    let once = options.once;
    let mut config = config;
    announce_mode(&config);
    // Before any call: a database that cannot be read is a configuration error.
    let networks = crate::networks::Networks::open(
        config.enrich.asn_database.as_deref(),
        config.enrich.country_database.as_deref(),
    )?
    .map(Arc::new);
    if let Some(networks) = &networks {
        tracing::info!(databases = %networks.description, "source addresses are looked up");
    }
    let client = Arc::new(client(&config, None)?);
    // CloudTrail is called in aws.region, whatever region the bucket is in.
    let trail_client = client.clone();
    let Located { bucket, prefix, check } = locate(&config, &client, &runtime).await?;
    // S3 notifies a queue in the bucket's own region only: the queue's region (its URL names
    // it) is the bucket's, and both are signed for it; the bucket is never listed.
    let queue_client = match (&config.source.kind, &config.source.queue_url) {
        (SourceKind::Sqs, Some(url)) => Some(match crate::aws::sqs::queue_region(url) {
            Some(region) if region != client.settings().region => Arc::new(self::client(&config, Some(&region))?),
            _ => client.clone(),
        }),
        _ => None,
    };
    // A central log bucket often lives in another region than the account's API calls: sign
    // S3 requests for the bucket's own region.
    let client = match &queue_client {
        Some(q) => q.clone(),
        None => bucket_client(&config, client, &bucket).await?,
    };
    let store = CheckpointStore::open(&config.state.dir)?;
    let ledger = Ledger::open(store, &bucket)?;
    let metrics = Arc::new(Metrics::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let interval = Duration::from_secs(config.source.poll_interval_secs);
    if let Some(listen) = &config.metrics.listen {
        let addr = listen.parse().context("metrics.listen")?;
        let ready = crate::metrics::server::Readiness {
            max_age: interval.saturating_mul(config.metrics.ready_within_polls.max(1)) + Duration::from_secs(30),
            clock: clock.clone(),
        };
        let bound = crate::metrics::server::serve(addr, metrics.clone(), ready)
            .await
            .with_context(|| format!("listening on {listen} (metrics.listen)"))?;
        tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    }
    let seed = clock.now_ms() as u64 ^ u64::from(std::process::id());
    let sinks = crate::sink::build(&config.sinks, config.output.path.as_deref(), &metrics, seed)?;
    {
        let p = runtime.plugin();
        metrics.plugin(&p.name, &p.version, &p.sha256);
    }
    // Log-file integrity: on where the trail validates (or as configured); the pipeline then
    // hashes each file it reads.
    let validation_on = check.as_ref().and_then(|c| {
        let chosen = c.report.chosen.as_deref();
        c.snapshot
            .trails
            .iter()
            .find(|t| {
                Some(t.trail.name.as_str()) == chosen
                    || (chosen.is_none() && t.trail.bucket.as_deref() == Some(bucket.as_str()))
            })
            .map(|t| t.trail.log_file_validation)
    });
    let mut follower = match crate::integrity::follow::decide(&config, &runtime, validation_on) {
        Ok(()) => {
            tracing::info!("log files are validated against CloudTrail's digest files");
            let trail = check.as_ref().and_then(|c| c.report.chosen.clone());
            let mut f = crate::integrity::follow::Follower::new(
                &config,
                &bucket,
                trail.clone(),
                ledger.checkpoint().is_new(),
                clock.now_ms(),
            )?;
            f.logging = check.as_ref().and_then(|c| logging_of(c, trail.as_deref()));
            Some(f)
        }
        Err(why) => {
            tracing::info!(reason = %why, "log-file integrity validation is off");
            None
        }
    };
    let mut settings = pipeline_settings(&config);
    settings.hash_files = follower.is_some();
    settings.networks = networks;
    let scoring_state = match (&settings.scoring, ledger.store()) {
        (Some(_), Some(store)) => Some(ScoreState::on_disk(store.database().clone(), store.path().to_owned())?),
        _ => None,
    };
    let mut pipeline = Pipeline::new(runtime.clone(), settings, ledger, sinks, metrics.clone(), clock.clone());
    if let Some(state) = scoring_state {
        pipeline.score_with(Arc::new(std::sync::Mutex::new(state)), true);
        if pipeline.scores() {
            tracing::info!("events are scored against their identities' pattern of life");
        }
    }
    // The trail is checked again every config_check_interval_secs and on SIGHUP (after the
    // configuration's [trail] settings were read again); findings go to the sinks when they
    // differ from the last ones sent, changes always. The trail chosen at start-up stays the
    // one checked (and repaired): the module reads its bucket, and another trail ranking first
    // later (this one stopped, say) must not be changed in its place.
    let pinned = check.as_ref().and_then(|c| c.report.chosen.clone());
    let mut last_findings = check.as_ref().map(finding_keys);
    let mut next_check = tokio::time::Instant::now() + Duration::from_secs(config.trail.config_check_interval_secs);
    if let Some(check) = &check {
        report_findings(check, &mut pipeline, &metrics);
    }
    let mut source = match config.source.kind {
        SourceKind::S3 => Source::Poll(S3Source::new(client.clone(), poll_settings(&config, bucket, prefix))),
        SourceKind::Sqs => {
            let url = config
                .source
                .queue_url
                .clone()
                .context("source.queue_url is required with type = \"sqs\"")?;
            tracing::info!(queue = %url, bucket = %bucket, "reading the S3 notifications of the queue");
            Source::Queue(SqsSource::new(
                client.clone(),
                client.clone(),
                queue_settings(&config, url, bucket, prefix),
                metrics.clone(),
            ))
        }
    };
    let clients: Vec<&Arc<AwsClient>> = [&client, &trail_client]
        .into_iter()
        .chain(queue_client.as_ref())
        .collect();
    let mut plugin = runtime;
    let mut watch = PluginWatch::new(&search, config.plugin.compile_cache());

    let shutdown = Arc::new(AtomicBool::new(false));
    let notify = Arc::new(tokio::sync::Notify::new());
    spawn_signal_listener(shutdown.clone(), notify.clone())?;
    let hangup = Arc::new(AtomicBool::new(false));
    spawn_hangup_listener(hangup.clone(), notify.clone())?;

    let mut failures: u32 = 0;
    let mut last_error: Option<String> = None;
    let mut exit = ExitCode::SUCCESS;
    let mut report_page = config.report.path.clone().map(|path| ReportPage {
        path,
        dir: config.state.dir.clone(),
        every: Duration::from_secs(60 * u64::from(config.report.every_minutes)),
        next: tokio::time::Instant::now(),
        said_nothing: false,
    });
    loop {
        if let Some(new) = tokio::task::block_in_place(|| watch.check(&plugin)) {
            plugin = Arc::new(new);
            let p = plugin.plugin();
            metrics.plugin(&p.name, &p.version, &p.sha256);
            pipeline.set_runtime(plugin.clone());
        }
        let reload = hangup.swap(false, Ordering::Relaxed);
        if reload {
            reload_trail_settings(&mut config, options.config_path.as_deref());
        }
        let rechecks = config.mode != Mode::Restricted && config.trail.check;
        if rechecks && (reload || tokio::time::Instant::now() >= next_check) {
            next_check = tokio::time::Instant::now() + Duration::from_secs(config.trail.config_check_interval_secs);
            let named = config.source.trail_name.clone();
            if named.is_none() {
                config.source.trail_name.clone_from(&pinned);
            }
            let checked = check_trail(&config, &trail_client, &plugin).await;
            config.source.trail_name = named;
            match checked {
                Ok(checked) => {
                    if let Some(f) = follower.as_mut() {
                        f.logging = logging_of(&checked, pinned.as_deref());
                    }
                    let keys = finding_keys(&checked);
                    if !checked.changes.is_empty() || last_findings.as_ref() != Some(&keys) {
                        for f in &checked.report.findings {
                            log_finding(f);
                        }
                        report_findings(&checked, &mut pipeline, &metrics);
                    }
                    last_findings = Some(keys);
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "the trail could not be checked again"),
            }
        }
        let result = source.poll_once(&mut pipeline, shutdown.clone()).await;
        // New digests, judged against the hashes of the files this and earlier polls read.
        if let (Some(follower), Source::Poll(s), false) = (follower.as_mut(), &source, shutdown.load(Ordering::Relaxed))
        {
            let streams = s.streams().to_vec();
            let limit = config.source.max_object_mib.saturating_mul(1 << 20);
            if let Err(e) = follower
                .cycle(&mut pipeline, &plugin, &client, &streams, limit, shutdown.clone())
                .await
            {
                tracing::warn!(error = %format!("{e:#}"), "log-file integrity validation failed; trying again at the next poll");
            }
        }
        metrics.s3_requests(&all_requests(&clients));
        metrics.poll(result.is_ok(), clock.now_ms());
        let wait = match result {
            Ok(report) => {
                failures = 0;
                last_error = None;
                tracing::info!(
                    files = report.files,
                    events = report.events,
                    failed = report.failed.len(),
                    deleted = report.deleted,
                    skipped_existing = report.skipped_existing,
                    dropped_read_only = report.dropped_read_only,
                    not_repeated = report.not_repeated,
                    duplicates = report.duplicates,
                    "poll done"
                );
                if !report.failed.is_empty() && once {
                    exit = ExitCode::from(1);
                }
                match source {
                    // The receives wait for messages themselves (long polling).
                    Source::Queue(_) => Duration::ZERO,
                    Source::Poll(_) => interval,
                }
            }
            Err(e) => {
                failures += 1;
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, auth = matches!(&e, CycleError::Aws(a) if a.is_auth()), "poll failed; backing off");
                    last_error = Some(text);
                } else {
                    tracing::debug!(error = %text, failures, "poll failed again");
                }
                if once {
                    exit = ExitCode::from(1);
                }
                interval.saturating_mul(1u32 << failures.min(10)).min(MAX_BACKOFF)
            }
        };
        // The page changes only when a poll commits: written after the first poll that finds it
        // due (`--once`, and a run told to stop, write it once as they stop).
        let stopping = once || shutdown.load(Ordering::Relaxed);
        if let Some(page) = report_page
            .as_mut()
            .filter(|p| !stopping && tokio::time::Instant::now() >= p.next)
        {
            page.write(&pipeline);
        }
        if once || shutdown.load(Ordering::Relaxed) {
            break;
        }
        let wait = if config.mode != Mode::Restricted && config.trail.check {
            wait.min(next_check.saturating_duration_since(tokio::time::Instant::now()))
        } else {
            wait
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notify.notified() => {}
        }
        if shutdown.load(Ordering::Relaxed) {
            break;
        }
    }
    // What the last cycles committed.
    if let Some(page) = report_page.as_mut() {
        page.write(&pipeline);
    }
    if let Source::Queue(q) = &mut source {
        q.shutdown().await;
    }
    let requests: Vec<String> = all_requests(&clients).iter().map(|(k, v)| format!("{k} {v}")).collect();
    tracing::info!(requests = %requests.join(", "), "AWS requests made");
    // Retries per AWS operation and per sink: what faults cost.
    let mut retries: Vec<String> = all_requests_by(&clients, |c| c.retries)
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    for (i, s) in config.sinks.iter().enumerate() {
        let name = crate::sink::sink_name(s.kind(), i, s.name());
        match metrics.sink_retries(&name) {
            0 => {}
            n => retries.push(format!("sink {name} {n}")),
        }
    }
    tracing::info!(retries = %retries.join(", "), "retries made");
    if options.json_logs {
        return Ok(exit);
    }
    let or_none = |v: &[String]| if v.is_empty() { "none".into() } else { v.join(", ") };
    eprintln!("trailwatch run: AWS requests: {}", or_none(&requests));
    eprintln!("trailwatch run: retries: {}", or_none(&retries));
    Ok(exit)
}

/// Whether the trail `name` was logging when `check` read it.
fn logging_of(check: &Checked, name: Option<&str>) -> Option<bool> {
    let name = name?;
    check
        .snapshot
        .trails
        .iter()
        .find(|t| t.trail.name == name)
        .and_then(|t| t.status.as_ref())
        .map(|s| s.is_logging)
}

/// What a check found, to tell whether the next one says something new.
fn finding_keys(check: &Checked) -> Vec<(String, Option<String>)> {
    check
        .report
        .findings
        .iter()
        .map(|f| (f.code.clone(), f.trail.clone()))
        .collect()
}

/// Reads the configuration file again and takes its `[trail]` settings; a file that no longer
/// loads is reported and the settings in use stay. Other sections take effect at the next start.
fn reload_trail_settings(config: &mut Config, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no configuration file to read again; checking the trail");
        return;
    };
    match Config::load(path) {
        Ok(new) => {
            if new.mode != config.mode {
                tracing::warn!(file = %path.display(), "SIGHUP: a change of mode takes effect at the next start");
            }
            tracing::info!(
                file = %path.display(),
                auto_configure = new.trail.auto_configure,
                write_event_filter = new.trail.write_event_filter,
                "SIGHUP: [trail] settings read again; other sections take effect at the next start"
            );
            config.trail = new.trail;
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "SIGHUP: the configuration does not load; the settings in use stay")
        }
    }
}

/// Sets `flag` and wakes the loop on each SIGHUP.
fn spawn_hangup_listener(flag: Arc<AtomicBool>, notify: Arc<tokio::sync::Notify>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            flag.store(true, Ordering::Relaxed);
            // Stored when the loop is not waiting (a poll under way): the next wait ends at once.
            notify.notify_one();
        }
    });
    Ok(())
}

fn spawn_signal_listener(flag: Arc<AtomicBool>, notify: Arc<tokio::sync::Notify>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down: finishing the file in flight");
        flag.store(true, Ordering::Relaxed);
        notify.notify_waiters();
    });
    Ok(())
}

/// The report page `run` keeps up to date (`[report] path`).
struct ReportPage {
    path: std::path::PathBuf,
    /// The state directory, for the page's origin line.
    dir: std::path::PathBuf,
    every: Duration,
    next: tokio::time::Instant,
    /// Whether it said that there is nothing to report.
    said_nothing: bool,
}

impl ReportPage {
    /// Writes the page of what is committed now (replacing the last one whole); a failure is
    /// said and tried again at the next due time.
    fn write(&mut self, pipeline: &Pipeline) {
        self.next = tokio::time::Instant::now() + self.every;
        let Some(state) = pipeline.report_state() else {
            if !self.said_nothing {
                self.said_nothing = true;
                tracing::warn!(path = %self.path.display(), "no report page: events are not scored here (see the start-up lines)");
            }
            return;
        };
        let written = tokio::task::block_in_place(|| -> anyhow::Result<(usize, usize)> {
            let db = state.lock().unwrap_or_else(|p| p.into_inner()).database().cloned();
            let Some(db) = db else {
                anyhow::bail!("the report's entries are not in a state store");
            };
            let data = crate::report::ReportData::load_database(&db, &self.dir.join("state.redb"))?;
            let origin = format!("the running trailwatch's state directory {}", self.dir.display());
            crate::report::write_page(&data, &origin, &self.path)?;
            Ok((data.identities.len(), data.incidents.len()))
        });
        match written {
            Ok((identities, incidents)) => {
                tracing::info!(path = %self.path.display(), identities, incidents, "report page written")
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %format!("{e:#}"), "the report page could not be written")
            }
        }
    }
}
