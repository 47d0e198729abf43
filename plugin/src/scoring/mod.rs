//! Pattern of life: a baseline per identity learned from the stream, a score with its reasons
//! for every event, and incidents linking an identity's anomalies (the contract's `scoring`).
//!
//! Nothing is kept between calls: baselines are entries the host stores (`baseline`), asked for
//! by key at the start of a batch. A batch is scored in the stream's order, event by event:
//! first judged against what was learned before it (`signals`), then learned from. Anomalies
//! join their identity's open incident (`incident`).
//!
//! # Layout
//! - `identity`: who made a call, at two levels (a role's session and the role).
//! - `agent`: user agents by family.
//! - `baseline`: what is remembered of identities, accounts and access keys, capped.
//! - `signals`: the reasons and their points.
//! - `incident`: chains of anomalies, their ATT&CK tactics, summary and updates.

pub mod agent;
pub mod baseline;
pub mod identity;
pub mod incident;
pub mod signals;

use std::collections::{BTreeMap, BTreeSet};

use crate::categorize::Category;
use crate::model::{Outcome, Principal, SourceKind};
use baseline::{AccountBaseline, AccountValue, IdentityBaseline, KeyUse};

/// How scoring judges (the contract's `settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub threshold: u8,
    pub learning_ms: i64,
    pub learning_events: u32,
    pub incident_gap_ms: i64,
    pub forget_after_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: 50,
            learning_ms: 7 * DAY,
            learning_events: 50,
            incident_gap_ms: 2 * HOUR,
            forget_after_ms: 90 * DAY,
        }
    }
}

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// A role session's own baseline is forgotten after this long unseen.
pub const SESSION_FORGET_MS: i64 = 2 * DAY;

/// Where a source address is (the host's enrichment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub scope: String,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    pub country: Option<String>,
}

/// What scoring needs of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub event_id: Option<String>,
    pub event_time_ms: Option<i64>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub category: Category,
    pub read_only: bool,
    pub event_type: Option<String>,
    pub region: Option<String>,
    pub recipient_account_id: Option<String>,
    pub principal: Option<Principal<'static>>,
    pub source_address: Option<String>,
    pub source_kind: SourceKind,
    pub network: Option<Network>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub outcome: Outcome,
    /// Worked out once when the batch starts.
    pub prepared: Prepared,
}

/// What scoring works out of an observation once: its identity, API, user-agent family and the
/// keys of the account values it shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub identity: Option<identity::Identity>,
    /// `service:eventName`.
    pub api: String,
    pub agent_family: Option<String>,
    /// (kind, entry key) of each account value the event shows.
    pub values: Vec<(&'static str, String)>,
}

impl Prepared {
    fn of(ev: &Observation) -> Self {
        let identity = identity::of(ev.principal.as_ref(), ev.recipient_account_id.as_deref());
        let api = format!("{}:{}", ev.category.service, ev.event_name.as_deref().unwrap_or(""));
        let agent_family = ev.user_agent.as_deref().and_then(agent::family);
        let mut values = Vec::new();
        if let Some(account) = identity.as_ref().and_then(|i| i.account.as_deref()) {
            let mut add =
                |kind: &'static str, value: &str| values.push((kind, baseline::value_key(account, kind, value)));
            add("api", &api);
            if let Some(asn) = ev.public_asn() {
                add("asn", &asn.to_string());
            }
            if let Some(c) = ev.country() {
                add("country", c);
            }
            if let Some(f) = &agent_family {
                add("agent", f);
            }
            if let Some(r) = ev.region.as_deref() {
                add("region", r);
            }
        }
        Prepared {
            identity,
            api,
            agent_family,
            values,
        }
    }
}

impl Observation {
    /// `service:eventName` (once prepared).
    pub fn api(&self) -> &str {
        &self.prepared.api
    }

    /// The entry key of the account value of `kind` the event shows (once prepared).
    pub fn value_key(&self, kind: &str) -> Option<&str> {
        self.prepared
            .values
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, key)| key.as_str())
    }

    /// A public network with a known autonomous system.
    pub fn public_asn(&self) -> Option<u32> {
        let n = self.network.as_ref()?;
        if n.scope == "public" {
            n.asn
        } else {
            None
        }
    }

    /// The country of a public source.
    pub fn country(&self) -> Option<&str> {
        let n = self.network.as_ref()?;
        if n.scope == "public" {
            n.country.as_deref()
        } else {
            None
        }
    }
}

/// Why a score is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub text: String,
    pub points: u8,
}

/// One event's score.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub identity: String,
    pub score: u8,
    pub anomalous: bool,
    pub reasons: Vec<Reason>,
    pub incident: Option<String>,
}

/// An incident as sent (the contract's `incident`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub revision: u32,
    pub identity: String,
    pub account_id: Option<String>,
    pub open: bool,
    pub summary: String,
    pub change: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub score: u8,
    pub tactics: Vec<&'static str>,
    pub reasons: Vec<String>,
    pub events: Vec<String>,
    pub anomalies: u32,
    pub countries: Vec<String>,
    pub asns: Vec<u32>,
}

/// An entry to store (`Some`) or remove (`None`).
pub type Write = (String, Option<Vec<u8>>);

/// A batch's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    pub verdicts: Vec<Verdict>,
    pub incidents: Vec<Incident>,
    pub writes: Vec<Write>,
}

/// What `Batch::next` needs or found.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Needs(Vec<String>),
    Done(Scored),
}

/// A batch of events being scored.
pub struct Batch {
    settings: Settings,
    events: Vec<Observation>,
    entries: BTreeMap<String, Vec<u8>>,
    asked: bool,
}

impl Batch {
    pub fn new(settings: Settings, mut events: Vec<Observation>) -> Self {
        for ev in &mut events {
            ev.prepared = Prepared::of(ev);
        }
        Batch {
            settings,
            events,
            entries: BTreeMap::new(),
            asked: false,
        }
    }

    /// Goes on with `entries`; asks once for every entry the batch reads.
    pub fn next(&mut self, entries: Vec<(String, Vec<u8>)>) -> Step {
        self.entries.extend(entries);
        if !self.asked {
            self.asked = true;
            let keys = self.keys();
            if !keys.is_empty() {
                return Step::Needs(keys.into_iter().collect());
            }
        }
        let events = std::mem::take(&mut self.events);
        let entries = std::mem::take(&mut self.entries);
        Step::Done(score(&self.settings, &events, entries))
    }

    fn keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for ev in &self.events {
            let Some(id) = &ev.prepared.identity else {
                continue;
            };
            keys.insert(baseline::identity_key(&id.key));
            keys.insert(baseline::incident_key(&id.key));
            if let Some(parent) = &id.parent {
                keys.insert(baseline::identity_key(parent));
            }
            if let Some(account) = &id.account {
                keys.insert(baseline::account_key(account));
            }
            keys.extend(ev.prepared.values.iter().map(|(_, key)| key.clone()));
            if let (Some(key), Some(_)) = (access_key(ev), ev.public_asn()) {
                keys.insert(baseline::access_key_key(key));
            }
        }
        keys
    }
}

/// The access key id of a call signed with one.
fn access_key(ev: &Observation) -> Option<&str> {
    ev.principal
        .as_ref()?
        .access_key_id
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The baselines a batch works on, decoded once and written back once.
#[derive(Default)]
pub struct Loaded {
    pub identities: BTreeMap<String, IdentityBaseline>,
    pub accounts: BTreeMap<String, AccountBaseline>,
    pub keys: BTreeMap<String, KeyUse>,
    /// How accounts use values, by entry key.
    pub values: BTreeMap<String, AccountValue>,
    /// Open incidents by identity; `None` once closed (the entry goes).
    pub incidents: BTreeMap<String, Option<baseline::OpenIncident>>,
    /// Entries this plugin cannot read (a newer plugin's, or damaged): judged as new, never
    /// overwritten.
    pub unreadable: BTreeSet<String>,
}

impl Loaded {
    fn from(entries: BTreeMap<String, Vec<u8>>) -> Self {
        let mut loaded = Loaded::default();
        for (key, value) in entries {
            let read = if let Some(name) = key.strip_prefix("i/") {
                baseline::read(&value)
                    .map(|b| loaded.identities.insert(name.to_owned(), b))
                    .is_some()
            } else if let Some(name) = key.strip_prefix("a/") {
                baseline::read(&value)
                    .map(|b| loaded.accounts.insert(name.to_owned(), b))
                    .is_some()
            } else if let Some(name) = key.strip_prefix("k/") {
                baseline::read(&value)
                    .map(|b| loaded.keys.insert(name.to_owned(), b))
                    .is_some()
            } else if key.starts_with("v/") {
                baseline::read(&value)
                    .map(|b| loaded.values.insert(key.clone(), b))
                    .is_some()
            } else if let Some(name) = key.strip_prefix("n/") {
                baseline::read(&value)
                    .map(|b| loaded.incidents.insert(name.to_owned(), Some(b)))
                    .is_some()
            } else {
                true
            };
            if !read {
                loaded.unreadable.insert(key);
            }
        }
        loaded
    }

    fn writes(self) -> Vec<Write> {
        let mut writes = Vec::new();
        let entries = self
            .identities
            .into_iter()
            .map(|(k, v)| (baseline::identity_key(&k), baseline::write(&v)))
            .chain(
                self.accounts
                    .into_iter()
                    .map(|(k, v)| (baseline::account_key(&k), baseline::write(&v))),
            )
            .chain(
                self.keys
                    .into_iter()
                    .map(|(k, v)| (baseline::access_key_key(&k), baseline::write(&v))),
            )
            .chain(self.values.into_iter().map(|(k, v)| (k, baseline::write(&v))));
        for (key, value) in entries {
            if !self.unreadable.contains(&key) {
                writes.push((key, Some(value)));
            }
        }
        for (identity, open) in self.incidents {
            let key = baseline::incident_key(&identity);
            if !self.unreadable.contains(&key) {
                writes.push((key, open.map(|o| baseline::write(&o))));
            }
        }
        writes
    }
}

/// Combines points: each reason takes its share of what the others left.
pub fn combine(points: impl IntoIterator<Item = u8>) -> u8 {
    let remaining = points
        .into_iter()
        .fold(1.0f64, |r, p| r * (1.0 - f64::from(p.min(100)) / 100.0));
    ((1.0 - remaining) * 100.0).round().clamp(0.0, 100.0) as u8
}

/// Scores `events` in order against `entries`.
pub fn score(settings: &Settings, events: &[Observation], entries: BTreeMap<String, Vec<u8>>) -> Scored {
    let mut loaded = Loaded::from(entries);
    let mut out = Scored::default();
    let mut clock = i64::MIN;
    for ev in events {
        // An event without a time is judged at the last time seen; the batch's first one, not
        // at all (a time of 0 would make its identity's baseline look years old).
        let Some(t) = ev.event_time_ms.or((clock > i64::MIN).then_some(clock)) else {
            out.verdicts.push(Verdict::default());
            continue;
        };
        clock = clock.max(t);
        let Some(id) = &ev.prepared.identity else {
            out.verdicts.push(Verdict::default());
            continue;
        };
        let mut reasons = signals::judge(settings, &mut loaded, id, ev, t);
        reasons.sort_by(|a, b| b.points.cmp(&a.points).then(a.code.cmp(b.code)));
        let score = combine(reasons.iter().map(|r| r.points));
        let anomalous = score >= settings.threshold.max(1);
        let mut verdict = Verdict {
            identity: id.key.clone(),
            score,
            anomalous,
            reasons,
            incident: None,
        };
        if anomalous && !loaded.unreadable.contains(&baseline::incident_key(&id.key)) {
            let slot = loaded.incidents.entry(id.key.clone()).or_default();
            if let Some(closed) = incident::close_if_quiet(settings, slot, &id.key, t) {
                out.incidents.push(closed);
            }
            let (reported, update) = incident::link(slot, id, ev, &verdict, t);
            verdict.incident = reported;
            out.incidents.extend(update);
        }
        signals::learn(&mut loaded, id, ev, t);
        out.verdicts.push(verdict);
    }
    out.writes = loaded.writes();
    out
}

/// Looks at a page of stored entries at `now`: forgets what was not seen for `forget-after`,
/// closes incidents quiet for the incident gap.
pub fn sweep(settings: &Settings, now: i64, entries: Vec<(String, Vec<u8>)>) -> (Vec<Write>, Vec<Incident>) {
    let before = now - settings.forget_after_ms;
    let mut writes = Vec::new();
    let mut incidents = Vec::new();
    for (key, value) in entries {
        if let Some(name) = key.strip_prefix("i/") {
            let Some(mut b) = baseline::read::<IdentityBaseline>(&value) else {
                continue;
            };
            let mut changed = false;
            // A role's sessions come and go (a CI job's, an instance's): the role's baseline
            // keeps what matters, a session unseen for two days goes.
            let session = name.contains(":assumed-role/") && name.matches('/').count() >= 2;
            let before = if session {
                before.max(now - SESSION_FORGET_MS)
            } else {
                before
            };
            if b.last < before {
                writes.push((key, None));
                continue;
            }
            changed |= b.forget(before);
            if changed {
                writes.push((key, Some(baseline::write(&b))));
            }
        } else if let Some(name) = key.strip_prefix("n/") {
            let Some(open) = baseline::read::<baseline::OpenIncident>(&value) else {
                continue;
            };
            let mut slot = Some(open);
            if let Some(closed) = incident::close_if_quiet(settings, &mut slot, name, now) {
                incidents.push(closed);
            }
            if slot.is_none() {
                writes.push((key, None));
            }
        } else if key.starts_with("v/") {
            if baseline::read::<AccountValue>(&value).is_some_and(|v| v.t < before) {
                writes.push((key, None));
            }
        } else if key.starts_with("k/") {
            // An access key's last network matters for minutes; a day is plenty.
            match baseline::read::<KeyUse>(&value) {
                Some(k) if k.t >= now - DAY => {}
                Some(_) => writes.push((key, None)),
                None => {}
            }
        }
    }
    (writes, incidents)
}

#[cfg(test)]
mod tests;
