//! What the plugin remembers of each identity and account, stored by the host as entries.
//!
//! Entries are JSON with a version (`v`). Every map is capped: past its cap the value seen
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
/// Caps per account.
pub const MAX_ACCOUNT_IDENTITIES: usize = 4096;
pub const MAX_ACCOUNT_APIS: usize = 2048;
pub const MAX_ACCOUNT_VALUES: usize = 512;
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
    pub incident: Option<OpenIncident>,
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

/// What is remembered of one account: which identities are active in it and which networks,
/// countries, user agents, regions and APIs it uses at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountBaseline {
    pub v: u32,
    pub first: i64,
    pub events: u64,
    pub identities: Values<String>,
    pub apis: Values<String>,
    pub asns: Values<u32>,
    pub countries: Values<String>,
    pub agents: Values<String>,
    pub regions: Values<String>,
}

impl AccountBaseline {
    pub fn new(t: i64) -> Self {
        AccountBaseline {
            v: VERSION,
            first: t,
            ..AccountBaseline::default()
        }
    }

    pub fn forget(&mut self, before: i64) -> bool {
        let mut changed = forget(&mut self.identities, before);
        changed |= forget(&mut self.apis, before);
        changed |= forget(&mut self.asns, before);
        changed |= forget(&mut self.countries, before);
        changed |= forget(&mut self.agents, before);
        changed |= forget(&mut self.regions, before);
        changed
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
/// damaged): the caller starts afresh.
pub fn read<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let version: Version = serde_json::from_slice(bytes).ok()?;
    if version.v > VERSION {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// An entry's bytes.
pub fn write<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The key of an identity's baseline.
pub fn identity_key(identity: &str) -> String {
    format!("i/{identity}")
}

/// The key of an account's baseline.
pub fn account_key(account: &str) -> String {
    format!("a/{account}")
}

/// The key of an access key's last use.
pub fn access_key_key(access_key: &str) -> String {
    format!("k/{access_key}")
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
        assert_eq!(read::<IdentityBaseline>(br#"{"v":99}"#), None);
        assert_eq!(read::<IdentityBaseline>(b"not json"), None);
    }
}
