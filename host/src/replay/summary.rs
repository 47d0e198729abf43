//! What a replay did, counted: files by kind, events by metric, flag and outcome, failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The result of reading one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The file's path.
    pub path: String,
    /// `log`, `insight` or `digest`, once known.
    pub kind: Option<&'static str>,
    /// Events written.
    pub events: u64,
    /// Events flagged with problems.
    pub flagged: u64,
    /// Events per metric.
    pub metrics: BTreeMap<String, u64>,
    /// Events per flag.
    pub flags: BTreeMap<&'static str, u64>,
    /// Events per outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Log files a digest lists.
    pub digest_log_files: Option<u32>,
    /// Why the file could not be read to its end.
    pub failure: Option<String>,
}

impl FileResult {
    /// An empty result for `path`.
    pub fn new(path: String) -> Self {
        FileResult {
            path,
            kind: None,
            events: 0,
            flagged: 0,
            metrics: BTreeMap::new(),
            flags: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            digest_log_files: None,
            failure: None,
        }
    }
}

/// The totals of a replay.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Files read (failed ones included).
    pub files: u64,
    /// Files per kind.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Files passed over in directories because of their names.
    pub skipped_files: u64,
    /// Events written.
    pub events: u64,
    /// Events flagged with problems.
    pub flagged_events: u64,
    /// Events per metric.
    pub metrics: BTreeMap<String, u64>,
    /// Events per flag.
    pub flags: BTreeMap<&'static str, u64>,
    /// Events per outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Every file with its result.
    pub per_file: Vec<FileResult>,
    /// Input bytes read (as stored, compressed where they were).
    pub bytes: u64,
    /// Whether events were scored (pattern of life), and why not when they were not.
    pub scoring: Option<String>,
    /// Anomalous events.
    pub anomalies: u64,
    /// Incident documents written (each report, update and closing of an incident).
    pub incidents: u64,
    /// Batches of events that went out without scores (scoring failed; the log says why).
    pub unscored_batches: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Summary {
    /// Adds one file's result.
    pub fn add(&mut self, file: FileResult, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
        if let Some(kind) = file.kind {
            *self.kinds.entry(kind).or_default() += 1;
        }
        self.events += file.events;
        self.flagged_events += file.flagged;
        for (k, v) in &file.metrics {
            *self.metrics.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &file.flags {
            *self.flags.entry(k).or_default() += v;
        }
        for (k, v) in &file.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.per_file.push(file);
    }

    /// Files that could not be read to their end.
    pub fn failures(&self) -> impl Iterator<Item = &FileResult> {
        self.per_file.iter().filter(|f| f.failure.is_some())
    }

    /// The human-readable summary written to stderr.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let failed = self.failures().count();
        let kinds: Vec<String> = self.kinds.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let rate = if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        };
        // Writing to a String cannot fail.
        writeln!(
            s,
            "replay: {} files ({}{}{} failed), {} events ({} flagged) in {:.2} s ({:.0} events/s)",
            self.files,
            kinds.join(", "),
            if kinds.is_empty() { "" } else { ", " },
            failed,
            self.events,
            self.flagged_events,
            self.seconds,
            rate
        )
        .ok();
        if self.skipped_files > 0 {
            writeln!(
                s,
                "skipped {} files in directories (not .json/.json.gz/.gz)",
                self.skipped_files
            )
            .ok();
        }
        if !self.metrics.is_empty() {
            writeln!(s, "events by metric:").ok();
            let width = self.metrics.keys().map(String::len).max().unwrap_or(0);
            for (metric, n) in &self.metrics {
                writeln!(s, "  {metric:<width$}  {n}").ok();
            }
        }
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(s, "events by flag: {}", flags.join(", ")).ok();
        }
        if !self.outcomes.is_empty() {
            let outcomes: Vec<String> = self.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(s, "events by outcome: {}", outcomes.join(", ")).ok();
        }
        match &self.scoring {
            None => {
                writeln!(
                    s,
                    "pattern of life: {} anomalous events, {} incident documents",
                    self.anomalies, self.incidents
                )
                .ok();
                if self.unscored_batches > 0 {
                    writeln!(
                        s,
                        "pattern of life: {} batches of events went out without scores (scoring failed; the errors above say why)",
                        self.unscored_batches
                    )
                    .ok();
                }
            }
            Some(why) => {
                writeln!(s, "pattern of life: not scored ({why})").ok();
            }
        }
        if failed > 0 {
            writeln!(s, "failed files:").ok();
            for f in self.failures() {
                let reason = f.failure.as_deref().unwrap_or_default();
                writeln!(
                    s,
                    "  {}: {reason} ({} events read before the failure were written)",
                    f.path, f.events
                )
                .ok();
            }
        }
        s
    }
}
