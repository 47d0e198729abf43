//! `trailwatch replay`: local CloudTrail files through the plugin, NDJSON out.
//!
//! Files are read in parallel by `jobs` workers, each file by a plugin instance of its own (one
//! that read an earlier file to its end, or a fresh one); the output is written in file order
//! (the order `walk::collect` gives), each file's events in record order, so the same input
//! always gives the same output. Each worker hands its events over through a
//! small bounded channel, so memory stays bounded whatever the number or size of the files.

pub mod summary;
pub mod walk;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Instant, UNIX_EPOCH};

use anyhow::Context;

use crate::metrics::Metrics;
use crate::pipeline::reader::ReadEnd;
use crate::pipeline::work::{Input, InputError, Retry, WorkItem};
use crate::pipeline::{FileRecord, Ledger, Pipeline, PipelineSettings, SystemClock};
use crate::runtime::PluginRuntime;
use crate::score::state::{self, ScoreState};
use crate::sink::Sink;
use summary::{FileResult, Summary};

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Files and directories to read.
    pub paths: Vec<PathBuf>,
    /// Files read at once (at least one).
    pub jobs: usize,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
    /// Where source addresses are looked up (`None`: they are not).
    pub networks: Option<Arc<crate::networks::Networks>>,
    /// How events are scored (`None`: they are not).
    pub scoring: Option<crate::score::Scoring>,
    /// Where baselines are kept across replays (`None`: in memory, this replay only).
    pub state_dir: Option<PathBuf>,
    /// Write the report page here at the end.
    pub report: Option<PathBuf>,
}

/// A local file as the pipeline's work: opened when its turn comes, read as the plugin pulls.
fn local_file(path: PathBuf) -> WorkItem {
    let key = path.display().to_string();
    let metadata = std::fs::metadata(&path).ok();
    let last_modified_ms = metadata
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64);
    let size = metadata.map_or(0, |m| m.len());
    let fetch = Box::pin(async move {
        std::fs::File::open(&path)
            .map(|f| Box::new(std::io::BufReader::with_capacity(256 << 10, f)) as Input)
            .map_err(|e| InputError::File {
                reason: format!("cannot read the file: {e}"),
                retry: Retry::Never,
            })
    });
    WorkItem {
        key,
        size,
        last_modified_ms,
        fetch,
        bucket: None,
        delete_due_ms: None,
    }
}

fn file_result(record: FileRecord) -> FileResult {
    let mut result = FileResult::new(record.key);
    let s = record.stats;
    result.kind = s.kind;
    result.digest_log_files = s.digest_log_files;
    result.events = s.events;
    result.flagged = s.flagged;
    result.metrics = s.metrics;
    result.flags = s.flags;
    result.outcomes = s.outcomes;
    result.failure = match record.end {
        ReadEnd::Complete => None,
        ReadEnd::Failed { reason, .. } => Some(reason),
        ReadEnd::Interrupted => Some("interrupted".into()),
    };
    result
}

/// Runs a replay into `sink`: the same pipeline as `run`, over local files, without a
/// checkpoint. Returns the summary; the caller decides the exit code (non-zero when any file
/// failed).
pub fn run(runtime: Arc<PluginRuntime>, options: &ReplayOptions, sink: Box<dyn Sink>) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (files, skipped) = walk::collect(&options.paths)?;
    let progress = (options.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files, {msg} [{elapsed_precise}, eta {eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let summary = Arc::new(Mutex::new(Summary {
        skipped_files: skipped,
        ..Summary::default()
    }));
    let settings = PipelineSettings {
        max_concurrent_files: options.jobs.max(1),
        // A file opened ahead per reader, so that a reader never waits for the writer to take
        // the file before it.
        max_prefetch: options.jobs.max(1),
        networks: options.networks.clone(),
        scoring: options.scoring,
        ..PipelineSettings::default()
    };
    let mut lock = None;
    let state = match (&options.scoring, &options.state_dir) {
        (None, _) => None,
        (Some(_), None) => Some(ScoreState::in_memory()),
        (Some(_), Some(dir)) => {
            // Held for the replay, as `run` holds its state directory.
            lock = Some(crate::state::checkpoint::lock(dir)?);
            let db = state::open_database(dir)?;
            Some(ScoreState::on_disk(db, dir.join("state.redb"))?)
        }
    };
    let mut pipeline = Pipeline::new(
        runtime,
        settings,
        Ledger::in_memory(),
        vec![sink],
        Arc::new(Metrics::new()),
        Arc::new(SystemClock),
    );
    if let Some(state) = state {
        // The report's entries, for `--report` or for `trailwatch report` on the state later.
        let report = options.report.is_some() || options.state_dir.is_some();
        pipeline.score_with(Arc::new(Mutex::new(state)), report);
        // Each file is read once, with no checkpoint to keep in step with the state.
        pipeline.hold_scoring_writes();
    }
    let report_state = pipeline.report_state().cloned();
    if options.report.is_some() && (options.scoring.is_none() || !pipeline.scores()) {
        anyhow::bail!("--report needs events scored: scoring is off or the plugin in use does not score");
    }
    if options.report.is_some() && report_state.is_none() {
        anyhow::bail!("--report: the report's entries cannot be kept (see the error above)");
    }
    let scoring = match (&options.scoring, pipeline.scores()) {
        (None, _) => Some("scoring is off".to_owned()),
        (Some(_), false) => Some("the plugin in use does not export trailwatch:plugin/scoring".to_owned()),
        (Some(_), true) => None,
    };
    {
        let summary = summary.clone();
        let bar = progress.clone();
        pipeline.on_file(move |record| {
            let size = record.size;
            let result = file_result(record);
            if let Ok(mut s) = summary.lock() {
                if let Some(bar) = &bar {
                    bar.inc(1);
                    bar.set_message(format!("{} events", s.events + result.events));
                }
                s.add(result, size);
            }
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        let mut cycle = pipeline.cycle(Arc::new(AtomicBool::new(false)))?;
        for path in files {
            if !cycle.submit(local_file(path)).await? {
                break;
            }
        }
        cycle.finish().await
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    drop(pipeline);
    let report = outcome.context("writing the output")?;
    if let (Some(out), Some(state)) = (&options.report, &report_state) {
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        let data = crate::report::ReportData::load(&state)?;
        let origin = match &options.state_dir {
            Some(dir) => format!("a replay with the state directory {}", dir.display()),
            None => "a replay".to_owned(),
        };
        crate::report::write_page(&data, &origin, out)?;
    }
    drop(lock);
    let mut summary = Arc::try_unwrap(summary)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .context("the summary is still shared")?;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.scoring = scoring;
    summary.anomalies = report.anomalies;
    summary.incidents = report.incidents;
    summary.unscored_batches = report.unscored_batches;
    Ok(summary)
}
