//! What one scoring instance remembers between calls when the host asks it to (the contract's
//! `scoring-memory`): the entries it was given and wrote, decoded, as the host's store holds
//! them. A batch then asks only for the entries it does not hold, and decodes none twice.
//!
//! The host keeps its side of it: every write is applied to what it hands out later, and it
//! says `forget` whenever the store's entries change in any other way (files read again after
//! their writes were dropped). The memory is bounded: past its budget it is emptied, and the
//! next batches ask again.
//!
//! Held writes (the contract's `scoring-write-back`): once the host says `hold`, a batch hands
//! over nothing it changed; the changed keys are noted and `flush` encodes them when the host
//! asks (before a sweep reads them, and before it ends). Past the budget, a batch hands over
//! everything held changed before the memory is emptied, so that nothing changed is lost.

use super::{Loaded, Set, Write};
use std::cell::RefCell;

/// Decoded bytes assumed for an identity's baseline at its caps (APIs, networks, countries,
/// agents, regions, its burst window's names) ...
const IDENTITY_BYTES: u64 = 64 << 10;
/// ... for an open incident (up to 200 event ids, its reasons and summary) ...
const INCIDENT_BYTES: u64 = 16 << 10;
/// ... and for any other entry, or a key known to be absent.
const ENTRY_BYTES: u64 = 512;

/// The entries one instance holds.
pub struct Memory {
    max_bytes: u64,
    pub loaded: Loaded,
    /// Keys asked for that do not exist.
    absent: Set,
    /// Whether batches hold their writes until `flush` ...
    hold: bool,
    /// ... and the keys changed since last handed over (held or absent: removed).
    dirty: Set,
}

thread_local! {
    static MEMORY: RefCell<Option<Memory>> = const { RefCell::new(None) };
}

/// From now on, remembers entries between calls, within about `max_bytes`.
pub fn remember(max_bytes: u64) {
    MEMORY.with(|m| {
        *m.borrow_mut() = Some(Memory {
            max_bytes,
            loaded: Loaded::default(),
            absent: Set::default(),
            hold: false,
            dirty: Set::default(),
        })
    });
}

/// From now on, batches hold their writes until [`flush`] (with the memory on).
pub fn hold() {
    with(|m| m.hold = true);
}

/// The entries changed since last handed over whose key starts with `prefix`, as writes in
/// key order.
pub fn flush(prefix: &str) -> Vec<Write> {
    with(|m| m.flush(prefix)).unwrap_or_default()
}

/// Forgets every entry remembered (remembering goes on).
pub fn forget() {
    with(|m| m.clear());
}

/// Whether the instance remembers entries.
pub fn is_on() -> bool {
    MEMORY.with(|m| m.borrow().is_some())
}

/// `f` with the memory, when it is on.
pub fn with<T>(f: impl FnOnce(&mut Memory) -> T) -> Option<T> {
    MEMORY.with(|m| m.borrow_mut().as_mut().map(f))
}

impl Memory {
    fn clear(&mut self) {
        self.loaded = Loaded::default();
        self.absent.clear();
        self.dirty.clear();
    }

    /// Whether it knows what the store holds under `key`.
    pub fn holds(&self, key: &str) -> bool {
        self.absent.contains(key) || self.loaded.holds(key)
    }

    /// Whether it holds its writes and the entry `key` is held changed already: a batch
    /// touching it has nothing to ask nor to note (but an incident's, which can close).
    pub fn holds_changed(&self, key: &str) -> bool {
        self.hold && !key.starts_with("n/") && self.dirty.contains(key)
    }

    /// Takes the entries given for the keys `asked`: those not given do not exist.
    pub fn absorb_asked(&mut self, asked: &[String], given: Vec<(String, Vec<u8>)>) {
        let mut found = Set::default();
        for (key, value) in given {
            self.absent.remove(&key);
            found.insert(key.clone());
            self.loaded.insert(key, &value);
        }
        for key in asked {
            if !found.contains(key) {
                self.absent.insert(key.clone());
            }
        }
    }

    /// The entries under `touched` as they are now, to write: those a batch read or made.
    /// An incident closed leaves (its key is then absent).
    pub fn writes(&mut self, touched: Vec<String>) -> Vec<Write> {
        if self.hold {
            return self.hold_writes(touched);
        }
        let touched = &touched;
        let writes = self.loaded.writes(touched);
        // An entry it cannot read is judged as new by each batch (as an instance that remembers
        // nothing judges it): what this batch made under its key goes.
        let unreadable: Vec<String> = touched
            .iter()
            .filter(|k| self.loaded.unreadable.contains(*k))
            .cloned()
            .collect();
        for key in &unreadable {
            self.loaded.forget_value(key);
        }
        for (key, value) in &writes {
            if value.is_none() {
                self.loaded.remove(key);
                self.absent.insert(key.clone());
            } else {
                self.absent.remove(key);
            }
        }
        writes
    }

    /// Takes writes the instance made otherwise (the sweep's).
    pub fn absorb_writes(&mut self, writes: &[Write]) {
        for (key, value) in writes {
            // What the host stores under it now.
            self.dirty.remove(key);
            self.loaded.remove(key);
            match value {
                Some(v) => {
                    self.absent.remove(key);
                    self.loaded.insert(key.clone(), v);
                }
                None => {
                    self.absent.insert(key.clone());
                }
            }
        }
        self.bound();
    }

    /// `writes` while writes are held: the keys `touched` the host would be handed are noted
    /// changed instead; past the budget, everything changed goes out.
    fn hold_writes(&mut self, touched: Vec<String>) -> Vec<Write> {
        for key in touched {
            if self.loaded.unreadable.contains(&key) {
                self.loaded.forget_value(&key);
            } else if self.loaded.closed(&key) {
                self.loaded.remove(&key);
                self.absent.insert(key.clone());
                self.dirty.insert(key);
            } else if self.loaded.holds(&key) {
                self.absent.remove(&key);
                self.dirty.insert(key);
            }
        }
        if self.over_budget() {
            let writes = self.flush("");
            self.clear();
            return writes;
        }
        Vec::new()
    }

    /// The entries changed since last handed over under `prefix`, as writes in key order;
    /// they are no longer changed.
    fn flush(&mut self, prefix: &str) -> Vec<Write> {
        let mut keys: Vec<String> = self.dirty.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
        keys.sort_unstable();
        let mut writes = Vec::with_capacity(keys.len());
        for key in keys {
            self.dirty.remove(&key);
            match self.loaded.encoded(&key) {
                Some(value) => writes.push((key, value)),
                None if self.absent.contains(&key) => writes.push((key, None)),
                None => {}
            }
        }
        writes
    }

    fn over_budget(&self) -> bool {
        let (identities, incidents, others) = self.loaded.counts();
        let bytes = identities as u64 * IDENTITY_BYTES
            + incidents as u64 * INCIDENT_BYTES
            + (others + self.absent.len()) as u64 * ENTRY_BYTES;
        bytes > self.max_bytes
    }

    /// Empties it when it holds more than its budget (and no change the host was not handed).
    pub fn bound(&mut self) {
        if self.dirty.is_empty() && self.over_budget() {
            self.clear();
        }
    }
}
