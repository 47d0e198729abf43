//! The plugin's pattern-of-life scoring (`scoring`): a batch of observations scored in steps,
//! the host handing over the stored entries the plugin asks for; and the sweep. Each batch
//! gets a fresh instance with the per-file limits, as the verdicts do: the plugin keeps nothing
//! between calls, so a trap costs the batch's scores and nothing learned before.

use super::bindings::scoring::{Entry, Incident, Observation, Scored, Settings, Step, Write};
use super::file::{PluginRuntime, TrapReason};

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

impl PluginRuntime {
    /// Whether the plugin scores events (the optional `scoring` interface).
    pub fn scores(&self) -> bool {
        self.exports.scoring.is_some()
    }

    /// Scores `events` in order; `entries` gives the stored entries under the keys asked for
    /// (those that exist). A batch whose entries cannot be read is not scored: scoring it
    /// against nothing would make every identity new again.
    pub fn score(
        &self,
        settings: Settings,
        events: &[Observation],
        mut entries: impl FnMut(&[String]) -> Result<Vec<Entry>, String>,
    ) -> Result<Scored, ScoringError> {
        let Some(indices) = &self.exports.scoring else {
            return Err(ScoringError::Unsupported);
        };
        let mut store = self.call_store("(scoring)");
        let result = (|| {
            let instance = self.exports.pre.instantiate(&mut store)?;
            let guest = indices.load(&mut store, &instance)?;
            let batch = guest.batch().call_constructor(&mut store, settings, events)?;
            let mut given = Vec::new();
            for _ in 0..MAX_STEPS {
                match guest.batch().call_next(&mut store, batch, &given)? {
                    Step::Done(scored) => return Ok(Ok(scored)),
                    Step::Needs(keys) => match entries(&keys) {
                        Ok(e) => given = e,
                        Err(e) => return Ok(Err(ScoringError::State(e))),
                    },
                }
            }
            Ok(Err(ScoringError::Endless(MAX_STEPS)))
        })();
        match result {
            Ok(r) => r,
            Err(e) => Err(ScoringError::Trap(self.trap_reason(&store, e))),
        }
    }

    /// Sweeps a page of stored entries at event time `now_ms`: what to rewrite or remove, and
    /// the incidents closed.
    pub fn sweep(
        &self,
        settings: Settings,
        now_ms: i64,
        entries: &[Entry],
    ) -> Result<(Vec<Write>, Vec<Incident>), ScoringError> {
        let Some(indices) = &self.exports.scoring else {
            return Err(ScoringError::Unsupported);
        };
        let mut store = self.call_store("(scoring sweep)");
        let result = self
            .exports
            .pre
            .instantiate(&mut store)
            .and_then(|instance| indices.load(&mut store, &instance))
            .and_then(|guest| guest.call_sweep(&mut store, settings, now_ms, entries));
        result.map_err(|e| ScoringError::Trap(self.trap_reason(&store, e)))
    }
}
