//! The plugin's pattern-of-life scoring (`scoring`): a batch of observations scored in steps,
//! the host handing over the stored entries the plugin asks for; and the sweep.
//!
//! One instance serves batch after batch (a [`ScoringSession`]), which saves a fresh instance and
//! a cold allocator per batch. Where the plugin has `scoring-memory`, the instance remembers the
//! entries it read and wrote between calls (a batch then asks only for those it does not hold);
//! the host keeps its promises to it: every write is staged before the next call, and
//! [`ScoringSession::sync`] makes it forget whenever the entries changed otherwise (the state's
//! generation moved: files' writes dropped) or a batch's writes were not taken. Where the plugin
//! also has `scoring-write-back` and the caller asks for it (`replay`), the instance holds what
//! batches change until [`PluginRuntime::flush`]. Each call gets
//! the per-file time limit; after a trap the session is dropped and the next batch gets a fresh
//! instance: a trap costs the batch's scores and nothing learned before.

use wasmtime::Store;

use wasmtime::component::ResourceAny;

use super::bindings::scoring::{Entry, Guest, Incident, Network, Observation, Scored, Settings, Step, Write};
use super::bindings::{observing, scoring_memory, scoring_write_back};
use super::file::{PluginRuntime, TrapReason};
use super::store::{set_deadline, StoreState};

/// Why a batch could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// The plugin lacks the `scoring` interface.
    #[error("the plugin in use does not export trailwatch:plugin/scoring (upgrade the plugin to score events)")]
    Unsupported,
    /// The plugin trapped.
    #[error("{0}")]
    Trap(TrapReason),
    /// The stored entries the plugin asked for could not be read.
    #[error("cannot read scoring state: {0}")]
    State(String),
    /// The plugin asked for entries again and again.
    #[error("the plugin asked for stored entries {0} times without finishing the batch")]
    Endless(usize),
    /// The plugin could not read the observations it was given in its compact form (another
    /// plugin version's, during an upgrade); nothing was scored.
    #[error("the plugin cannot read the observations: {0}")]
    Observations(String),
}

/// A batch's observations in the plugin's compact form (`observing`), with the host's
/// enrichment: `network_of[i]` is the index plus one in `networks` of observation `i`'s
/// source network, 0 for none.
#[derive(Debug, Default)]
pub struct Compact {
    pub bytes: Vec<u8>,
    pub ends: Vec<u32>,
    pub networks: Vec<Network>,
    pub network_of: Vec<u32>,
}

/// Steps a batch may take before the host gives up on it.
const MAX_STEPS: usize = 8;

/// An instance of the plugin kept for scoring.
pub struct ScoringSession {
    store: Store<StoreState>,
    guest: Guest,
    /// The plugin's `scoring-memory`, turned on.
    memory: Option<scoring_memory::Guest>,
    /// The plugin's `scoring-write-back`, where it has it and `scoring-memory` is on.
    write_back: Option<scoring_write_back::Guest>,
    /// Whether it holds its writes (`scoring-write-back.hold` was called).
    holding: bool,
    /// The plugin's `observing`, for batches in its compact form.
    observing: Option<observing::Guest>,
    /// The state generation what it remembers matches; `None`: it must forget before the
    /// next call.
    synced: Option<u64>,
}

/// The share of the plugin's memory limit a remembering instance may fill with entries.
const MEMORY_SHARE: u64 = 4;

impl ScoringSession {
    /// Makes the instance forget what it remembers unless that matches the state's
    /// `generation` (nothing but this instance's own writes changed the entries since).
    pub fn sync(&mut self, runtime: &PluginRuntime, generation: u64) -> Result<(), ScoringError> {
        let Some(memory) = &self.memory else {
            return Ok(());
        };
        if self.synced == Some(generation) {
            return Ok(());
        }
        set_deadline(&mut self.store, runtime.limits.time_per_file);
        memory
            .call_forget(&mut self.store)
            .map_err(|e| ScoringError::Trap(runtime.trap_reason(&self.store, e)))?;
        self.synced = Some(generation);
        Ok(())
    }

    /// The last call's writes were not staged: forget before the next call.
    pub fn unsync(&mut self) {
        self.synced = None;
    }

    /// Has the instance hold its writes until [`PluginRuntime::flush`], where the plugin can.
    pub fn hold(&mut self, runtime: &PluginRuntime) -> Result<(), ScoringError> {
        let Some(write_back) = &self.write_back else {
            return Ok(());
        };
        if !self.holding {
            set_deadline(&mut self.store, runtime.limits.time_per_file);
            write_back
                .call_hold(&mut self.store)
                .map_err(|e| ScoringError::Trap(runtime.trap_reason(&self.store, e)))?;
            self.holding = true;
        }
        Ok(())
    }

    /// Whether the instance holds its writes.
    pub fn holding(&self) -> bool {
        self.holding
    }
}

impl PluginRuntime {
    /// Whether the plugin scores events (the optional `scoring` interface).
    pub fn scores(&self) -> bool {
        self.exports.scoring.is_some()
    }

    /// A new instance for scoring.
    pub fn scoring_session(&self) -> Result<ScoringSession, ScoringError> {
        let Some(indices) = &self.exports.scoring else {
            return Err(ScoringError::Unsupported);
        };
        let mut store = self.call_store("(scoring)");
        let loaded = self.exports.pre.instantiate(&mut store).and_then(|instance| {
            let guest = indices.load(&mut store, &instance)?;
            let memory = match &self.exports.scoring_memory {
                Some(m) => {
                    let memory = m.load(&mut store, &instance)?;
                    memory.call_remember(&mut store, self.limits.memory_bytes / MEMORY_SHARE)?;
                    Some(memory)
                }
                None => None,
            };
            let observing = match &self.exports.observing {
                Some(o) => Some(o.load(&mut store, &instance)?),
                None => None,
            };
            let write_back = match (&self.exports.scoring_write_back, &memory) {
                (Some(w), Some(_)) => Some(w.load(&mut store, &instance)?),
                _ => None,
            };
            Ok((guest, memory, observing, write_back))
        });
        match loaded {
            Ok((guest, memory, observing, write_back)) => Ok(ScoringSession {
                store,
                guest,
                memory,
                write_back,
                holding: false,
                observing,
                synced: None,
            }),
            Err(e) => Err(ScoringError::Trap(self.trap_reason(&store, e))),
        }
    }

    /// Scores `events` in order in `session`; `entries` gives the stored entries under the
    /// keys asked for (those that exist). A batch whose entries cannot be read is not scored:
    /// scoring it against nothing would make every identity new again. After an error other
    /// than that one, the session must not be used again.
    pub fn score(
        &self,
        session: &mut ScoringSession,
        settings: Settings,
        events: &[Observation],
        entries: impl FnMut(&[String]) -> Result<Vec<Entry>, String>,
    ) -> Result<Scored, ScoringError> {
        self.score_from(session, entries, |guest, _, store| {
            Ok(Ok(guest.batch().call_constructor(store, settings, events)?))
        })
    }

    /// [`score`](Self::score) for observations in the plugin's compact form: the session's
    /// plugin must have `observing`. `ScoringError::Observations` when it cannot read them
    /// (then nothing was scored and the session may go on).
    pub fn score_compact(
        &self,
        session: &mut ScoringSession,
        settings: Settings,
        events: &Compact,
        entries: impl FnMut(&[String]) -> Result<Vec<Entry>, String>,
    ) -> Result<Scored, ScoringError> {
        self.score_from(session, entries, |_, observing, store| {
            let Some(observing) = observing else {
                return Ok(Err(ScoringError::Observations(
                    "the plugin has no trailwatch:plugin/observing".into(),
                )));
            };
            let started = observing.call_start(
                store,
                settings,
                &events.bytes,
                &events.ends,
                &events.networks,
                &events.network_of,
            )?;
            Ok(started.map_err(ScoringError::Observations))
        })
    }

    fn score_from(
        &self,
        session: &mut ScoringSession,
        mut entries: impl FnMut(&[String]) -> Result<Vec<Entry>, String>,
        start: impl FnOnce(
            &Guest,
            Option<&observing::Guest>,
            &mut Store<StoreState>,
        ) -> wasmtime::Result<Result<ResourceAny, ScoringError>>,
    ) -> Result<Scored, ScoringError> {
        let ScoringSession {
            store,
            guest,
            observing,
            ..
        } = session;
        set_deadline(store, self.limits.time_per_file);
        let result = (|| {
            let batch = match start(guest, observing.as_ref(), &mut *store)? {
                Ok(batch) => batch,
                Err(e) => return Ok(Err(e)),
            };
            let mut given = Vec::new();
            let mut outcome = Err(ScoringError::Endless(MAX_STEPS));
            for _ in 0..MAX_STEPS {
                match guest.batch().call_next(&mut *store, batch, &given)? {
                    Step::Done(scored) => {
                        outcome = Ok(scored);
                        break;
                    }
                    Step::Needs(keys) => match entries(&keys) {
                        Ok(e) => given = e,
                        Err(e) => {
                            outcome = Err(ScoringError::State(e));
                            break;
                        }
                    },
                }
            }
            batch.resource_drop(&mut *store)?;
            Ok(outcome)
        })();
        let outcome = match result {
            Ok(r) => r,
            Err(e) => Err(ScoringError::Trap(self.trap_reason(store, e))),
        };
        if matches!(&outcome, Err(e) if !matches!(e, ScoringError::Observations(_))) {
            // Whatever the instance took in, its writes are not staged.
            session.unsync();
        }
        outcome
    }

    /// The entries changed under `prefix` that `session` held and did not hand over yet, as
    /// writes to stage (nothing when it does not hold its writes).
    pub fn flush(&self, session: &mut ScoringSession, prefix: &str) -> Result<Vec<Write>, ScoringError> {
        let ScoringSession {
            store,
            write_back,
            holding,
            ..
        } = session;
        let Some(write_back) = write_back.as_ref().filter(|_| *holding) else {
            return Ok(Vec::new());
        };
        set_deadline(store, self.limits.time_per_file);
        write_back
            .call_flush(&mut *store, prefix)
            .map_err(|e| ScoringError::Trap(self.trap_reason(store, e)))
    }

    /// Sweeps a page of stored entries at event time `now_ms` in `session`: what to rewrite or
    /// remove, and the incidents closed.
    pub fn sweep(
        &self,
        session: &mut ScoringSession,
        settings: Settings,
        now_ms: i64,
        entries: &[Entry],
    ) -> Result<(Vec<Write>, Vec<Incident>), ScoringError> {
        let ScoringSession { store, guest, .. } = session;
        set_deadline(store, self.limits.time_per_file);
        guest
            .call_sweep(&mut *store, settings, now_ms, entries)
            .map_err(|e| ScoringError::Trap(self.trap_reason(store, e)))
    }
}
