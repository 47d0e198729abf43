//! `trailwatch replay`: local CloudTrail files through the plugin, NDJSON out.
//!
//! Files are read in parallel by `jobs` workers, each with its own store per file; the output is
//! written in file order (the order `walk::collect` gives), each file's events in record order,
//! so the same input always gives the same output. Each worker hands its events over through a
//! small bounded channel, so memory stays bounded whatever the number or size of the files.

pub mod summary;
pub mod walk;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Instant, UNIX_EPOCH};

use anyhow::Context;

use crate::output::ndjson;
use crate::runtime::bindings::types::{FileKind, ObjectMeta, Outcome};
use crate::runtime::PluginRuntime;
use summary::{FileResult, Summary};

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Files and directories to read.
    pub paths: Vec<PathBuf>,
    /// Worker threads (at least one).
    pub jobs: usize,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// Batches of a file's output queued ahead of the writer, per file being read.
const QUEUE_PER_FILE: usize = 8;

enum Message {
    Events(Vec<u8>),
    Done(FileResult, u64),
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Log => "log",
        FileKind::Insight => "insight",
        FileKind::Digest => "digest",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Denied => "denied",
    }
}

/// Reads one file through the plugin, sending its output lines in batches.
fn replay_file(runtime: &PluginRuntime, path: &std::path::Path, tx: &SyncSender<Message>) {
    let key = path.display().to_string();
    let mut result = FileResult::new(key.clone());
    // The plugin pulls the file's bytes as it needs them: memory stays bounded whatever the size.
    let (file, metadata) = match std::fs::File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok(x) => x,
        Err(e) => {
            result.failure = Some(format!("cannot read the file: {e}"));
            // The writer is gone only when the output failed; nothing more to report then.
            tx.send(Message::Done(result, 0)).ok();
            return;
        }
    };
    let last_modified_ms = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64);
    let size = metadata.len();
    let meta = ObjectMeta {
        key: key.clone(),
        size,
        last_modified_ms,
    };
    let mut counts = FileResult::new(String::new());
    let input = Box::new(std::io::BufReader::with_capacity(256 << 10, file));
    let outcome = runtime.read_file(input, &meta, |batch| {
        // The raw record plus the normalized fields: sized once, not grown by copying.
        let mut out = Vec::with_capacity(batch.iter().map(|e| e.raw.len() + 1024).sum());
        for event in batch {
            ndjson::write_event(&mut out, event, &key)?;
            // Look up before inserting: a metric is almost always there already.
            match counts.metrics.get_mut(event.category.metric.as_str()) {
                Some(n) => *n += 1,
                None => {
                    counts.metrics.insert(event.category.metric.clone(), 1);
                }
            }
            for flag in ndjson::flag_names(event.category.flags) {
                *counts.flags.entry(flag).or_default() += 1;
            }
            *counts.outcomes.entry(outcome_name(event.outcome)).or_default() += 1;
            if !event.problems.is_empty() {
                counts.flagged += 1;
            }
        }
        tx.send(Message::Events(out))
            .map_err(|_| anyhow::anyhow!("the output was closed"))
    });
    let report = match outcome {
        Ok(report) => report,
        Err((report, failure)) => {
            result.failure = Some(failure.to_string());
            report
        }
    };
    result.kind = report.kind.map(kind_name);
    result.digest_log_files = report.digest.map(|d| d.log_file_count);
    result.events = report.events;
    result.flagged = counts.flagged;
    result.metrics = counts.metrics;
    result.flags = counts.flags;
    result.outcomes = counts.outcomes;
    tx.send(Message::Done(result, size)).ok();
}

/// Runs a replay, writing NDJSON to `out`. Returns the summary; the caller decides the exit code
/// (non-zero when any file failed).
pub fn run(runtime: &PluginRuntime, options: &ReplayOptions, out: &mut dyn Write) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (files, skipped) = walk::collect(&options.paths)?;
    let mut senders: Vec<Option<SyncSender<Message>>> = Vec::with_capacity(files.len());
    let mut receivers: Vec<Receiver<Message>> = Vec::with_capacity(files.len());
    for _ in &files {
        let (tx, rx) = sync_channel(QUEUE_PER_FILE);
        senders.push(Some(tx));
        receivers.push(rx);
    }
    let senders = Mutex::new(senders);
    let next = AtomicUsize::new(0);
    let progress = (options.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files, {msg} [{elapsed_precise}, eta {eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut summary = Summary {
        skipped_files: skipped,
        ..Summary::default()
    };

    let write_result = std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..options.jobs.max(1).min(files.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { return };
                let tx = senders.lock().map(|mut s| s[i].take()).ok().flatten();
                let Some(tx) = tx else { return };
                replay_file(runtime, path, &tx);
            });
        }
        let mut out_error = None;
        for (i, rx) in receivers.into_iter().enumerate() {
            let mut done = false;
            for message in rx.iter() {
                match message {
                    Message::Events(bytes) if out_error.is_none() => {
                        if let Err(e) = out.write_all(&bytes) {
                            out_error = Some(e);
                        }
                    }
                    Message::Events(_) => {}
                    Message::Done(result, size) => {
                        if let Some(bar) = &progress {
                            bar.inc(1);
                            bar.set_message(format!("{} events", summary.events + result.events));
                        }
                        summary.add(result, size);
                        done = true;
                    }
                }
            }
            if !done {
                let mut lost = FileResult::new(files[i].display().to_string());
                lost.failure = Some("the worker reading this file stopped unexpectedly".into());
                summary.add(lost, 0);
            }
            if out_error.is_some() {
                break;
            }
        }
        if let Some(e) = out_error {
            return Err(e).context("writing the output");
        }
        out.flush().context("writing the output")
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    write_result?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
