//! The score stage: each file's events, in the stream's order, through the plugin's
//! pattern-of-life scoring; the verdicts spliced into the documents, incident documents added
//! to the file's output, and what was learned staged to commit with the file.
//!
//! # Layout
//! - `observe`: what scoring needs of an event, from a typed event or a rendered document.
//! - `state`: the entries scoring learned: committed (state store or memory) and pending.
//! - `mod.rs`: [`Scoring`] settings and the [`Scorer`] the writer calls for each batch.

pub mod observe;
pub mod state;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::output::scoring::{change_kind, severity, write_incident, write_verdict};
use crate::report::Gathered;
use crate::runtime::bindings::documents::Summary;
use crate::runtime::bindings::scoring::{Incident, Observation, Settings};
use crate::runtime::scoring::{Compact, ScoringError, ScoringSession};
use crate::runtime::PluginRuntime;
use state::{ScoreState, Write};

/// How events are scored (`[scoring]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// An event is anomalous at this score or above.
    pub threshold: u8,
    /// An identity is learning until first seen this long ago ...
    pub learning: Duration,
    /// ... and until it made this many calls.
    pub learning_events: u32,
    /// Anomalies closer than this form one incident; an incident this quiet is closed.
    pub incident_gap: Duration,
    /// What was not seen for this long is forgotten.
    pub forget_after: Duration,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            threshold: 50,
            learning: Duration::from_secs(7 * 86_400),
            learning_events: 50,
            incident_gap: Duration::from_secs(2 * 3600),
            forget_after: Duration::from_secs(90 * 86_400),
        }
    }
}

impl Scoring {
    fn wit(&self) -> Settings {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Settings {
            threshold: self.threshold,
            learning_ms: ms(self.learning),
            learning_events: self.learning_events,
            incident_gap_ms: ms(self.incident_gap),
            forget_after_ms: ms(self.forget_after),
        }
    }
}

/// What the reader hands over with a batch to score: an observation per document (as the
/// contract's records, or in the plugin's compact form) and where in the batch's bytes each
/// document's score members go.
#[derive(Debug, Default)]
pub struct ToScore {
    pub observations: Vec<Observation>,
    /// The observations in the plugin's compact form (then `observations` is empty) ...
    pub compact: Option<Compact>,
    /// ... with each document's summary and the batch's metric names, to read an observation
    /// back from a document's head where the report needs it whole.
    pub summaries: Vec<Summary>,
    pub metrics: Vec<String>,
    /// Per document, the offset in the batch's bytes where its head ends.
    pub heads: Vec<u32>,
    /// The latest event time of the batch.
    pub latest_ms: Option<i64>,
    /// Why a document could not be observed: the batch goes out without scores.
    pub unreadable: Option<String>,
}

impl ToScore {
    /// Notes an event time of the batch.
    pub fn saw(&mut self, time_ms: Option<i64>) {
        if let Some(t) = time_ms {
            self.latest_ms = Some(self.latest_ms.map_or(t, |l| l.max(t)));
        }
    }

    /// How many documents it observes.
    fn len(&self) -> usize {
        match &self.compact {
            Some(c) => c.ends.len(),
            None => self.observations.len(),
        }
    }

    /// Notes one document's observation (or why there is none) and where its head ends.
    pub fn observe(&mut self, observed: serde_json::Result<Observation>, head: u32) {
        match observed {
            Ok(o) => {
                self.saw(o.event_time_ms);
                self.observations.push(o);
                self.heads.push(head);
            }
            Err(e) => {
                if self.unreadable.is_none() {
                    self.unreadable = Some(format!("a document the plugin rendered cannot be read back: {e}"));
                }
            }
        }
    }
}

/// What one file's scoring added, counted when the file is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Anomalous events by severity.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Incident documents by (severity, opened/updated/closed).
    pub incidents: BTreeMap<(&'static str, &'static str), u64>,
    /// Batches that went out without scores.
    pub failures: u64,
}

/// A file's scoring, to commit with it.
#[derive(Debug, Default)]
pub struct FileScoring {
    pub writes: Vec<Write>,
    /// What it added to the report's entries.
    pub report: Vec<Write>,
    pub tally: Tally,
}

/// Open incidents are looked at when event time moved on this much since the last time ...
const SWEEP_EVERY_MS: i64 = 3_600_000;
/// ... and every entry (what to forget) this much.
const FORGET_EVERY_MS: i64 = 24 * 3_600_000;
/// Entries handed to one sweep call.
const SWEEP_PAGE: usize = 256;
/// An instance that holds its writes hands them all over at least every this many files.
const FLUSH_EVERY_FILES: u32 = 64;
/// The file number held writes handed over at the end are staged and committed under.
pub const HELD: u64 = u64::MAX;

/// Scores batches in order for the writer.
pub struct Scorer {
    runtime: Arc<PluginRuntime>,
    /// The plugin instance batches are scored in; made again after a trap.
    session: Option<ScoringSession>,
    settings: Settings,
    state: Arc<Mutex<ScoreState>>,
    /// The report's entries, and what each file not yet taken added to them.
    report: Option<Arc<Mutex<ScoreState>>>,
    gathered: BTreeMap<u64, Gathered>,
    /// Each uncommitted file's tally.
    tallies: BTreeMap<u64, Tally>,
    /// The latest event time seen, and when the sweep last ran (event time).
    clock_ms: Option<i64>,
    swept_ms: Option<i64>,
    forgot_ms: Option<i64>,
    /// The instance is to hold its writes (`scoring-write-back`) ...
    hold: bool,
    /// ... and files scored since it last handed them all over.
    held_files: u32,
}

impl Scorer {
    pub fn new(
        runtime: Arc<PluginRuntime>,
        scoring: &Scoring,
        state: Arc<Mutex<ScoreState>>,
        report: Option<Arc<Mutex<ScoreState>>>,
    ) -> Self {
        Scorer {
            runtime,
            session: None,
            settings: scoring.wit(),
            state,
            report,
            gathered: BTreeMap::new(),
            tallies: BTreeMap::new(),
            clock_ms: None,
            swept_ms: None,
            forgot_ms: None,
            hold: false,
            held_files: 0,
        }
    }

    /// Has the scoring instance hold what batches change and hand it over every
    /// `FLUSH_EVERY_FILES` files, before a sweep reads it, and at [`Scorer::flush_all`], rather
    /// than with every batch (where the plugin has `scoring-write-back`). For a caller that
    /// commits no checkpoint with each file (`replay`): with held writes, a file's writes are
    /// no longer its own.
    pub fn hold_writes(&mut self) {
        self.hold = true;
    }

    /// The state it scores against.
    pub fn state(&self) -> &Arc<Mutex<ScoreState>> {
        &self.state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScoreState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scores one batch of file `file`: `bytes` (documents ending at `ends`) come back with
    /// each document's score members and the incident documents the batch reported.
    pub fn score_batch(&mut self, file: u64, bytes: Vec<u8>, ends: Vec<u32>, input: ToScore) -> (Vec<u8>, Vec<u32>) {
        if let Some(why) = &input.unreadable {
            tracing::error!(file, error = %why, "a batch goes out without scores");
            self.tallies.entry(file).or_default().failures += 1;
            return (bytes, ends);
        }
        if input.len() != ends.len() || input.heads.len() != ends.len() {
            tracing::error!(
                file,
                "a batch to score does not match its documents; sent without scores"
            );
            self.tallies.entry(file).or_default().failures += 1;
            return (bytes, ends);
        }
        if let Some(t) = input.latest_ms {
            self.clock_ms = Some(self.clock_ms.map_or(t, |c| c.max(t)));
        }
        let state = self.state.clone();
        let generation = self.lock().generation();
        let result = self.with_session(|runtime, session, settings| {
            session.sync(runtime, generation)?;
            let entries = |keys: &[String]| {
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                state.get(keys).map_err(|e| e.to_string())
            };
            match &input.compact {
                Some(compact) => runtime.score_compact(session, settings, compact, entries),
                None => runtime.score(session, settings, &input.observations, entries),
            }
        });
        let scored = match result {
            Ok(s) if s.verdicts.len() == ends.len() => s,
            Ok(_) => {
                tracing::error!(
                    file,
                    "the plugin scored a batch with a verdict count that does not match; sent without scores"
                );
                // Its writes are not staged.
                if let Some(session) = &mut self.session {
                    session.unsync();
                }
                self.tallies.entry(file).or_default().failures += 1;
                return (bytes, ends);
            }
            Err(e) => {
                self.failed(file, &e);
                return (bytes, ends);
            }
        };
        self.lock()
            .stage(file, scored.writes.into_iter().map(|w| (w.key, w.value)).collect());
        if self.report.is_some() {
            let g = self.gathered.entry(file).or_default();
            match &input.compact {
                None => g.events(&input.observations, &scored.verdicts),
                Some(c) => {
                    // The report needs few observations whole (anomalies, an identity's first
                    // event): those are read back from their documents' heads.
                    let starts: Vec<usize> = std::iter::once(0).chain(ends.iter().map(|e| *e as usize)).collect();
                    g.events_with(&scored.verdicts, |i, whole| {
                        let head = &bytes[starts[i]..input.heads[i] as usize];
                        let network = match c.network_of[i] {
                            0 => None,
                            n => c.networks.get(n as usize - 1).cloned(),
                        };
                        let s = &input.summaries[i];
                        if whole {
                            let metric = input.metrics.get(s.metric as usize).map_or("", String::as_str);
                            if let Ok(o) = observe::from_document(head, s, metric, network.clone()) {
                                return Cow::Owned(o);
                            }
                        }
                        Cow::Owned(observe::light(s.event_time_ms, observe::ip_source(head), network))
                    });
                }
            }
            g.incidents(&scored.incidents);
        }
        let mut out = Vec::with_capacity(bytes.len() + 160 * ends.len());
        let mut new_ends = Vec::with_capacity(ends.len() + scored.incidents.len());
        let tally = self.tallies.entry(file).or_default();
        let mut start = 0usize;
        for ((end, head), verdict) in ends.iter().zip(&input.heads).zip(&scored.verdicts) {
            let (end, head) = (*end as usize, *head as usize);
            out.extend_from_slice(&bytes[start..head]);
            write_verdict(&mut out, verdict);
            out.extend_from_slice(&bytes[head..end]);
            new_ends.push(out.len() as u32);
            start = end;
            if verdict.anomalous {
                *tally.anomalies.entry(severity(verdict.score)).or_default() += 1;
            }
        }
        for incident in &scored.incidents {
            let _ = write_incident(&mut out, incident);
            new_ends.push(out.len() as u32);
            *tally
                .incidents
                .entry((severity(incident.score), change_kind(incident)))
                .or_default() += 1;
        }
        (out, new_ends)
    }

    /// Calls `f` with the scoring instance (made when there is none); an instance that
    /// trapped is dropped.
    fn with_session<T>(
        &mut self,
        f: impl FnOnce(&PluginRuntime, &mut ScoringSession, Settings) -> Result<T, ScoringError>,
    ) -> Result<T, ScoringError> {
        let mut session = match self.session.take() {
            Some(s) => s,
            None => {
                let mut s = self.runtime.scoring_session()?;
                if self.hold {
                    s.hold(&self.runtime)?;
                }
                s
            }
        };
        let result = f(&self.runtime, &mut session, self.settings);
        if matches!(result, Err(ScoringError::Trap(_))) {
            self.lost(&session);
        } else {
            self.session = Some(session);
        }
        result
    }

    /// Says what a dropped instance took with it.
    fn lost(&mut self, session: &ScoringSession) {
        if session.holding() {
            tracing::error!(
                files = self.held_files + 1,
                "the scoring instance stopped: what it learned from the last files and had not handed over is lost from the baselines"
            );
        }
        self.held_files = 0;
    }

    /// Stages, with file `file`, what the instance holds changed under `prefix`.
    fn flush(&mut self, file: u64, prefix: &str) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        match self.runtime.flush(&mut session, prefix) {
            Ok(writes) => {
                if prefix.is_empty() {
                    self.held_files = 0;
                }
                self.lock()
                    .stage(file, writes.into_iter().map(|w| (w.key, w.value)).collect());
                self.session = Some(session);
            }
            Err(e) => {
                self.lost(&session);
                self.failed(file, &e);
            }
        }
    }

    /// Everything the instance holds changed, handed over (nothing when it holds nothing):
    /// to commit when every file scored is.
    pub fn flush_all(&mut self) -> Vec<Write> {
        self.flush(HELD, "");
        self.lock().take(HELD)
    }

    fn failed(&mut self, file: u64, e: &ScoringError) {
        tracing::error!(file, error = %e, "scoring failed; the batch's events are sent without scores");
        self.tallies.entry(file).or_default().failures += 1;
    }

    /// Notes that a file was scored (one going to every sink); whether [`Scorer::maybe_sweep`]
    /// has work for it (a sweep or a flush due), so that the writer hands it over to a blocking
    /// thread only then.
    pub fn file_done(&mut self) -> bool {
        self.held_files = self.held_files.saturating_add(1);
        let Some(now) = self.clock_ms else {
            return self.flush_due();
        };
        let due = |last: Option<i64>, every: i64| last.is_none_or(|t| now - t >= every);
        self.flush_due() || due(self.forgot_ms, FORGET_EVERY_MS) || due(self.swept_ms, SWEEP_EVERY_MS)
    }

    /// Whether the instance holds writes and is due to hand them all over.
    fn flush_due(&self) -> bool {
        self.hold && self.held_files >= FLUSH_EVERY_FILES
    }

    /// Runs the sweep when event time moved on an hour since the last one, its writes staged
    /// with file `file`: the incident documents it closed, as NDJSON lines. Hands over what
    /// the instance holds every `FLUSH_EVERY_FILES` files ([`Scorer::file_done`] counts them).
    pub fn maybe_sweep(&mut self, file: u64) -> Option<(Vec<u8>, Vec<u32>)> {
        if self.flush_due() {
            self.flush(file, "");
        }
        let now = self.clock_ms?;
        let due = |last: &mut Option<i64>, every: i64| match *last {
            None => {
                *last = Some(now);
                false
            }
            Some(t) if now - t >= every => {
                *last = Some(now);
                true
            }
            Some(_) => false,
        };
        // Every entry once a day (event time); the open incidents (`n/…`) every hour.
        let prefix = if due(&mut self.forgot_ms, FORGET_EVERY_MS) {
            self.swept_ms = Some(now);
            if let Some(report) = &self.report {
                let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = crate::report::forget(&mut report, file, now, self.settings.forget_after_ms) {
                    tracing::error!(error = %e, "cannot read the report's entries to forget the stale ones");
                }
            }
            ""
        } else if due(&mut self.swept_ms, SWEEP_EVERY_MS) {
            "n/"
        } else {
            return None;
        };
        // The sweep reads the entries from the state: what the instance holds changed of them
        // goes there first.
        self.flush(file, prefix);
        let mut after: Option<String> = None;
        let mut writes = Vec::new();
        let mut closed: Vec<Incident> = Vec::new();
        loop {
            let page = match self.lock().page(prefix, after.as_deref(), SWEEP_PAGE) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read scoring state for the sweep");
                    break;
                }
            };
            let (entries, next) = page;
            if !entries.is_empty() {
                let generation = self.lock().generation();
                let swept = self.with_session(|runtime, session, settings| {
                    session.sync(runtime, generation)?;
                    runtime.sweep(session, settings, now, &entries)
                });
                match swept {
                    Ok((w, i)) => {
                        writes.extend(w.into_iter().map(|w| (w.key, w.value)));
                        closed.extend(i);
                    }
                    Err(e) => {
                        self.failed(file, &e);
                        break;
                    }
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        self.lock().stage(file, writes);
        if closed.is_empty() {
            return None;
        }
        if self.report.is_some() {
            self.gathered.entry(file).or_default().incidents(&closed);
        }
        let tally = self.tallies.entry(file).or_default();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for incident in &closed {
            let _ = write_incident(&mut out, incident);
            ends.push(out.len() as u32);
            *tally
                .incidents
                .entry((severity(incident.score), change_kind(incident)))
                .or_default() += 1;
        }
        Some((out, ends))
    }

    /// Forgets when the sweep last ran and what uncommitted files counted: files not committed
    /// are scored again, and the sweep with them.
    pub fn rewind_sweep(&mut self) {
        self.swept_ms = None;
        self.forgot_ms = None;
        self.clock_ms = None;
        self.tallies.clear();
        self.gathered.clear();
    }

    /// What file `file` learned and counted, to commit with it.
    pub fn take(&mut self, file: u64) -> FileScoring {
        let writes = self.lock().take(file);
        let gathered = self.gathered.remove(&file);
        let report = match &self.report {
            Some(state) => {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                // The report is a view: a store that cannot be read leaves this file out of
                // it (said), the scores go on.
                if let Some(Err(e)) = gathered.map(|g| g.merge(&mut state, file)) {
                    tracing::error!(file, error = %e, "the report's entries cannot be read; this file is left out of the report");
                }
                state.take(file)
            }
            None => Vec::new(),
        };
        FileScoring {
            writes,
            report,
            tally: self.tallies.remove(&file).unwrap_or_default(),
        }
    }
}
