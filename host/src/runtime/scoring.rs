//! The plugin's pattern-of-life scoring (`scoring`): a batch of observations scored in steps,
//! the host handing over the stored entries the plugin asks for; and the sweep.
//!
//! One instance serves batch after batch (a [`ScoringSession`]): the plugin keeps nothing between
//! calls (each batch is a resource dropped at its end), so reusing its instance changes no
//! result and saves a fresh instance and a cold allocator per batch. Each call gets the per-file
//! time limit; after a trap the session is dropped and the next batch gets a fresh instance: a
//! trap costs the batch's scores and nothing learned before.

use wasmtime::Store;

use super::bindings::scoring::{Entry, Guest, Incident, Observation, Scored, Settings, Step, Write};
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
}

/// Steps a batch may take before the host gives up on it.
const MAX_STEPS: usize = 8;

/// An instance of the plugin kept for scoring.
pub struct ScoringSession {
    store: Store<StoreState>,
    guest: Guest,
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
        let guest = self
            .exports
            .pre
            .instantiate(&mut store)
            .and_then(|instance| indices.load(&mut store, &instance));
        match guest {
            Ok(guest) => Ok(ScoringSession { store, guest }),
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
        mut entries: impl FnMut(&[String]) -> Result<Vec<Entry>, String>,
    ) -> Result<Scored, ScoringError> {
        let ScoringSession { store, guest } = session;
        set_deadline(store, self.limits.time_per_file);
        let result = (|| {
            let batch = guest.batch().call_constructor(&mut *store, settings, events)?;
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
        match result {
            Ok(r) => r,
            Err(e) => Err(ScoringError::Trap(self.trap_reason(store, e))),
        }
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
        let ScoringSession { store, guest } = session;
        set_deadline(store, self.limits.time_per_file);
        guest
            .call_sweep(&mut *store, settings, now_ms, entries)
            .map_err(|e| ScoringError::Trap(self.trap_reason(store, e)))
    }
}
