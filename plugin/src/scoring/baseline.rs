//! What the plugin remembers of each identity and account, stored by the host as entries.
//!
//! Entries are a version byte followed by the value in postcard's compact binary form. Every map
//! is capped: past its cap the value seen
//! longest ago goes. Values not seen for `forget-after` are dropped by the sweep, and an
//! identity not seen for that long goes whole. A value counts how often it was seen (`n`) and
//! when it was last seen (`t`, ms).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The entries' format version. A newer plugin reads older versions and writes its own.
pub const VERSION: u32 = 1;

/// Caps per identity.
pub const MAX_APIS: usize = 512;
pub const MAX_NETWORKS: usize = 64;
pub const MAX_COUNTRIES: usize = 32;
pub const MAX_AGENTS: usize = 32;
pub const MAX_REGIONS: usize = 32;
/// Distinct names a burst window remembers.
pub const MAX_WINDOW_NAMES: usize = 64;
/// Event ids an incident lists.
pub const MAX_INCIDENT_EVENTS: usize = 200;

/// How often a value was seen and when last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub n: u64,
    pub t: i64,
}

/// A capped map of values to when they were seen.
pub type Values<K> = BTreeMap<K, Seen>;

/// Counts `key` seen at `t`; past `cap` values, the one seen longest ago goes.
pub fn see<K: Ord + Clone>(map: &mut Values<K>, key: K, t: i64, cap: usize) {
    let s = map.entry(key).or_default();
    s.n += 1;
    s.t = s.t.max(t);
    if map.len() > cap {
        if let Some(oldest) = map.iter().min_by_key(|(_, s)| (s.t, s.n)).map(|(k, _)| k.clone()) {
            map.remove(&oldest);
        }
    }
}

/// `see` for a key borrowed: allocated only when new to the map.
pub fn see_str(map: &mut Values<String>, key: &str, t: i64, cap: usize) {
    match map.get_mut(key) {
        Some(s) => {
            s.n += 1;
            s.t = s.t.max(t);
        }
        None => see(map, key.to_owned(), t, cap),
    }
}

/// `f` with the value under `key`, made with `new` when missing (the key allocated only then):
/// one look-up when it is there.
pub fn update<V, T>(map: &mut super::Map<V>, key: &str, new: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> T) -> T {
    if let Some(v) = map.get_mut(key) {
        return f(v);
    }
    let mut v = new();
    let out = f(&mut v);
    map.insert(key.to_owned(), v);
    out
}

/// Drops values last seen before `before`; whether any went.
pub fn forget<K: Ord>(map: &mut Values<K>, before: i64) -> bool {
    let n = map.len();
    map.retain(|_, s| s.t >= before);
    map.len() != n
}

/// A fixed ten-minute window of an identity's calls, for bursts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Which window (event time / 10 minutes).
    pub at: i64,
    /// Calls in it.
    pub calls: u64,
    /// Distinct read APIs called.
    pub reads: BTreeSet<String>,
    /// Distinct services of those reads.
    pub services: BTreeSet<String>,
    /// Distinct APIs denied.
    pub denied: BTreeSet<String>,
    /// Reason codes already raised in this window (a burst is raised once).
    pub raised: BTreeSet<String>,
}

/// An identity's incident still linking anomalies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: String,
    /// Updates sent so far (0: not reported yet).
    pub revision: u32,
    pub first: i64,
    pub last: i64,
    /// The product of (1 - score/100) over its anomalies.
    pub remaining: f64,
    /// ATT&CK tactics, as bits of `incident::TACTICS`.
    pub tactics: u16,
    pub reasons: Vec<String>,
    pub events: Vec<String>,
    pub anomalies: u32,
    /// The strongest anomaly's score and its first reason's text.
    pub top: (u8, String),
    pub countries: Vec<String>,
    pub asns: Vec<u32>,
    pub account: Option<String>,
}

/// What is remembered of one identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityBaseline {
    pub v: u32,
    /// First and last event time seen.
    pub first: i64,
    pub last: i64,
    /// Calls seen.
    pub events: u64,
    /// `service:eventName`.
    pub apis: Values<String>,
    pub asns: Values<u32>,
    pub countries: Values<String>,
    pub agents: Values<String>,
    pub regions: Values<String>,
    /// Calls per hour of the day (UTC).
    pub hours: [u64; 24],
    pub failed: u64,
    pub denied: u64,
    /// The minute of the last call and the calls in it.
    pub minute: i64,
    pub minute_calls: u64,
    /// Minutes with at least one call.
    pub active_minutes: u64,
    pub window: Window,
    /// Rule reasons raised before, by code, counted once per window: what is habitual.
    pub habits: BTreeMap<String, u64>,
}

impl IdentityBaseline {
    /// A baseline starting at `t`.
    pub fn new(t: i64) -> Self {
        IdentityBaseline {
            v: VERSION,
            first: t,
            last: t,
            ..IdentityBaseline::default()
        }
    }

    /// Whether it is past learning at `t`.
    pub fn established(&self, t: i64, learning_ms: i64, learning_events: u32) -> bool {
        t - self.first >= learning_ms && self.events >= u64::from(learning_events)
    }

    /// Drops what was not seen since `before`; whether anything changed.
    pub fn forget(&mut self, before: i64) -> bool {
        let mut changed = forget(&mut self.apis, before);
        changed |= forget(&mut self.asns, before);
        changed |= forget(&mut self.countries, before);
        changed |= forget(&mut self.agents, before);
        changed |= forget(&mut self.regions, before);
        changed
    }
}

/// What is remembered of one account as a whole: how many calls it saw. How it uses each value
/// (an API, a network, a country, a user-agent family, a region) is an entry of its own
/// ([`value_key`], [`AccountValue`]), so that a batch reads only the values its events show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountBaseline {
    pub v: u32,
    pub first: i64,
    pub events: u64,
}

impl AccountBaseline {
    pub fn new(t: i64) -> Self {
        AccountBaseline {
            v: VERSION,
            first: t,
            events: 0,
        }
    }
}

/// How often an account used one value, and when last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountValue {
    pub v: u32,
    pub n: u64,
    pub t: i64,
}

impl AccountValue {
    pub fn seen(&self) -> Seen {
        Seen { n: self.n, t: self.t }
    }
}

/// The key of how account `account` uses `value` of kind `kind` (`api`, `asn`, `country`,
/// `agent`, `region`).
pub fn value_key(account: &str, kind: &str, value: &str) -> String {
    let mut key = String::new();
    push_value_key(&mut key, account, kind, value);
    key
}

/// [`value_key`] appended to `out`.
pub fn push_value_key(out: &mut String, account: &str, kind: &str, value: &str) {
    for part in ["v/", account, "/", kind, "/", value] {
        out.push_str(part);
    }
}

/// Where an access key was last used from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyUse {
    pub v: u32,
    pub t: i64,
    pub asn: u32,
    pub country: Option<String>,
}

/// Reads an entry of any version this plugin knows; `None` when it cannot (a newer plugin's, or
/// damaged): the caller leaves it alone.
pub fn read<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    let (&version, value) = bytes.split_first()?;
    if version == 0 || u32::from(version) > VERSION {
        return None;
    }
    postcard::from_bytes(value).ok()
}

/// An entry's bytes.
pub fn write<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION as u8];
    // Writing plain data to a Vec cannot fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    out
}

/// The prefixes of the entries' keys, each followed by a name: an identity's baseline, its
/// open incident, an account's baseline, an access key's last use. (How an account uses a value
/// is keyed by [`value_key`].)
pub const IDENTITY: &str = "i/";
pub const INCIDENT: &str = "n/";
pub const ACCOUNT: &str = "a/";
pub const ACCESS_KEY: &str = "k/";

/// The key of an identity's open incident.
pub fn incident_key(identity: &str) -> String {
    super::concat(&[INCIDENT, identity])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_the_value_seen_longest_ago_and_forgetting_drops_old_ones() {
        let mut m = Values::new();
        for i in 0..3 {
            see(&mut m, i, 100 + i64::from(i), 3);
        }
        see(&mut m, 0, 200, 3);
        see(&mut m, 9, 201, 3);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![0, 2, 9]);
        assert!(forget(&mut m, 150));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![0, 9]);
        assert!(!forget(&mut m, 150));
    }

    #[test]
    fn entries_round_trip_and_a_newer_version_is_not_read() {
        let mut b = IdentityBaseline::new(5);
        see(&mut b.asns, 64500, 5, MAX_NETWORKS);
        let bytes = write(&b);
        assert_eq!(read::<IdentityBaseline>(&bytes), Some(b));
        assert_eq!(read::<IdentityBaseline>(&[99, 0, 0]), None);
        assert_eq!(read::<IdentityBaseline>(b"\x01not a baseline"), None);
        assert_eq!(read::<IdentityBaseline>(b""), None);
    }
}
