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
//! - `observed`: observations in the plugin's compact form, from a file's reader to scoring.

pub mod agent;
pub mod baseline;
pub mod identity;
pub mod incident;
pub mod memory;
pub mod observed;
pub mod signals;

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::categorize::Category;
use crate::model::{Outcome, Principal, SourceKind, Text};
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

/// What scoring needs of one event: its text owned (from the contract's records) or borrowed
/// (from the plugin's compact form, kept by the batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    pub event_id: Option<Text<'a>>,
    pub event_time_ms: Option<i64>,
    pub event_source: Option<Text<'a>>,
    pub event_name: Option<Text<'a>>,
    pub category: Category,
    pub read_only: bool,
    pub event_type: Option<Text<'a>>,
    pub region: Option<Text<'a>>,
    pub recipient_account_id: Option<Text<'a>>,
    pub principal: Option<Principal<'a>>,
    pub source_address: Option<Text<'a>>,
    pub source_kind: SourceKind,
    /// Shared by the batch's observations from one network.
    pub network: Option<std::rc::Rc<Network>>,
    pub user_agent: Option<Text<'a>>,
    pub error_code: Option<Text<'a>>,
    pub outcome: Outcome,
    /// Worked out once when the batch starts.
    pub prepared: Prepared,
}

/// What scoring works out of an observation once: its identity, API, user-agent family and the
/// keys of the account values it shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// Shared with the event before when both have the same principal and account ...
    pub identity: Option<Rc<identity::Identity>>,
    /// ... `service:eventName`, with the event before when both call the same API ...
    pub api: Rc<str>,
    /// ... (and with every event of the same user agent) ...
    pub agent_family: Option<Rc<str>>,
    /// The user agent names a penetration-testing distribution.
    pub pentest: bool,
    /// ... and the entry key of each account value the event shows, with the event before when
    /// both show the same.
    pub values: Rc<ValueKeys>,
}

/// The entry keys of an event's account values (`baseline::value_key`), in one string: one
/// allocation per event rather than one per value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueKeys {
    text: String,
    /// (kind, start, end in `text`) of the first `len`.
    spans: [(&'static str, u32, u32); 5],
    len: u8,
}

impl ValueKeys {
    /// Adds account `account`'s value `value` of kind `kind` (at most five).
    fn add(&mut self, account: &str, kind: &'static str, value: &str) {
        let Some(span) = self.spans.get_mut(usize::from(self.len)) else {
            return;
        };
        let start = self.text.len();
        baseline::push_value_key(&mut self.text, account, kind, value);
        *span = (kind, start as u32, self.text.len() as u32);
        self.len += 1;
    }

    /// (kind, entry key) of each.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.spans[..usize::from(self.len)]
            .iter()
            .map(|&(kind, start, end)| (kind, &self.text[start as usize..end as usize]))
    }
}

/// A user agent's family and whether it names a penetration-testing distribution, worked out
/// once per distinct agent and kept by the instance across batches (a trail's calls share a
/// few hundred agents), up to `MAX_AGENTS_KNOWN`, then started again.
type Agents = rustc_hash::FxHashMap<String, (Option<Rc<str>>, bool)>;

const MAX_AGENTS_KNOWN: usize = 4096;

thread_local! {
    static AGENTS: std::cell::RefCell<Agents> = std::cell::RefCell::new(Agents::default());
}

impl Prepared {
    fn of(
        ev: &Observation,
        before: Option<&Observation>,
        agents: &mut Agents,
        identity: Option<Rc<identity::Identity>>,
    ) -> Self {
        let api = match before {
            Some(b) if b.category.service == ev.category.service && b.event_name == ev.event_name => {
                b.prepared.api.clone()
            }
            _ => Rc::from(concat(&[
                &ev.category.service,
                ":",
                ev.event_name.as_deref().unwrap_or(""),
            ])),
        };
        let (agent_family, pentest) = match ev.user_agent.as_deref() {
            None => (None, false),
            Some(ua) => match agents.get(ua) {
                Some(known) => known.clone(),
                None => {
                    let seen = (agent::family(ua).map(Rc::from), agent::is_pentest(ua));
                    if agents.len() >= MAX_AGENTS_KNOWN {
                        agents.clear();
                    }
                    agents.insert(ua.to_owned(), seen.clone());
                    seen
                }
            },
        };
        let shows_the_same = |b: &Observation| {
            let (p, id) = (&b.prepared, &identity);
            let same_account = match (&p.identity, id) {
                (Some(a), Some(b)) => Rc::ptr_eq(a, b) || a.account == b.account,
                (None, None) => true,
                _ => false,
            };
            same_account
                && Rc::ptr_eq(&p.api, &api)
                && b.public_asn() == ev.public_asn()
                && b.country() == ev.country()
                && p.agent_family == agent_family
                && b.region == ev.region
        };
        if let Some(b) = before.filter(|b| shows_the_same(b)) {
            return Prepared {
                values: b.prepared.values.clone(),
                identity,
                api,
                agent_family,
                pentest,
            };
        }
        let mut values = ValueKeys::default();
        if let Some(account) = identity.as_ref().and_then(|i| i.account.as_deref()) {
            values.text.reserve(5 * (account.len() + 16) + api.len());
            let mut add = |kind: &'static str, value: &str| values.add(account, kind, value);
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
            pentest,
            values: Rc::new(values),
        }
    }
}

impl Observation<'_> {
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
            .map(|(_, key)| key)
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

/// A batch's observations: owned, or borrowing the compact form's bytes the batch keeps.
enum Events {
    Owned(Vec<Observation<'static>>),
    Compact(observed::Decoded),
}

impl Events {
    fn all(&self) -> &[Observation<'_>] {
        match self {
            Events::Owned(events) => events,
            Events::Compact(decoded) => decoded.borrow_dependent(),
        }
    }
}

/// A batch of events being scored.
pub struct Batch {
    settings: Settings,
    events: Events,
    entries: BTreeMap<String, Vec<u8>>,
    asked: bool,
    /// Every key the batch reads or writes, in order (with the instance holding its writes,
    /// less those it holds changed already).
    touched: Vec<String>,
    missing: Vec<String>,
    /// Scored: a further `next` scores nothing.
    done: bool,
}

impl Batch {
    pub fn new(settings: Settings, mut events: Vec<Observation<'static>>) -> Self {
        prepare(&mut events);
        Self::of(settings, Events::Owned(events))
    }

    /// A batch of observations in the plugin's compact form (as `observed::decode_all` takes
    /// them); an error names the observation that cannot be read.
    pub fn compact(
        settings: Settings,
        bytes: Vec<u8>,
        ends: &[u32],
        networks: &[Network],
        network_of: &[u32],
    ) -> Result<Self, String> {
        let decoded = observed::Decoded::try_new(bytes, |bytes| {
            let mut events = observed::decode_all(bytes, ends, networks, network_of)?;
            prepare(&mut events);
            Ok::<_, String>(events)
        })?;
        Ok(Self::of(settings, Events::Compact(decoded)))
    }

    fn of(settings: Settings, events: Events) -> Self {
        Batch {
            settings,
            events,
            entries: BTreeMap::new(),
            asked: false,
            touched: Vec::new(),
            missing: Vec::new(),
            done: false,
        }
    }

    /// Whether one of its events' ids contains `text` (the sandbox fixture's trigger).
    #[cfg(feature = "sandbox-fixture")]
    pub fn has_event_id_with(&self, text: &str) -> bool {
        self.events
            .all()
            .iter()
            .any(|e| e.event_id.as_deref().is_some_and(|id| id.contains(text)))
    }

    /// Goes on with `entries`; asks once for every entry the batch reads (with the instance's
    /// memory on, for those it does not hold).
    pub fn next(&mut self, entries: Vec<(String, Vec<u8>)>) -> Step {
        if self.done {
            return Step::Done(Scored::default());
        }
        let step = self.step(entries);
        self.done = matches!(step, Step::Done(_));
        step
    }

    fn step(&mut self, entries: Vec<(String, Vec<u8>)>) -> Step {
        if memory::is_on() {
            return memory::with(|m| self.next_remembering(m, entries)).expect("the memory is on");
        }
        self.entries.extend(entries);
        if !self.asked {
            self.asked = true;
            self.touched = self.keys(|_| false);
            if !self.touched.is_empty() {
                return Step::Needs(self.touched.clone());
            }
        }
        let mut loaded = Loaded::from(std::mem::take(&mut self.entries));
        let mut scored = score_in(&self.settings, self.events.all(), &mut loaded);
        scored.writes = loaded.writes(&self.touched);
        Step::Done(scored)
    }

    fn next_remembering(&mut self, memory: &mut memory::Memory, entries: Vec<(String, Vec<u8>)>) -> Step {
        if !self.asked {
            self.asked = true;
            self.touched = self.keys(|key| memory.holds_changed(key));
            self.missing = self.touched.iter().filter(|k| !memory.holds(k)).cloned().collect();
            if !self.missing.is_empty() {
                return Step::Needs(self.missing.clone());
            }
        }
        memory.absorb_asked(&self.missing, entries);
        let mut scored = score_in(&self.settings, self.events.all(), &mut memory.loaded);
        scored.writes = memory.writes(std::mem::take(&mut self.touched));
        memory.bound();
        Step::Done(scored)
    }

    /// Every key the batch's events read or write: each distinct identity, role, account,
    /// value and access key once, in order, less those `skip` says.
    fn keys(&self, skip: impl Fn(&str) -> bool) -> Vec<String> {
        let mut identities = rustc_hash::FxHashSet::default();
        let mut parents = rustc_hash::FxHashSet::default();
        let mut accounts = rustc_hash::FxHashSet::default();
        let mut values = rustc_hash::FxHashSet::default();
        let mut access_keys = rustc_hash::FxHashSet::default();
        // A file's calls come mostly in runs of one identity's: what the event before showed is
        // not looked for again.
        let mut before: Option<&Prepared> = None;
        for ev in self.events.all() {
            let Some(id) = &ev.prepared.identity else {
                continue;
            };
            let same = before.is_some_and(|b| b.identity.as_ref().is_some_and(|i| i.key == id.key));
            if !same {
                identities.insert(id.key.as_str());
                if let Some(parent) = &id.parent {
                    parents.insert(parent.as_str());
                }
                if let Some(account) = &id.account {
                    accounts.insert(account.as_str());
                }
            }
            match before {
                Some(b) if Rc::ptr_eq(&b.values, &ev.prepared.values) => {}
                _ => values.extend(ev.prepared.values.iter().map(|(_, key)| key)),
            }
            before = Some(&ev.prepared);
            if let (Some(key), Some(_)) = (access_key(ev), ev.public_asn()) {
                access_keys.insert(key);
            }
        }
        let mut keys = Vec::with_capacity(2 * identities.len() + parents.len() + accounts.len() + values.len());
        // Each key is built in one buffer, and allocated only when kept.
        let mut key = String::new();
        let mut add = |prefix: &str, name: &str| {
            key.clear();
            key.push_str(prefix);
            key.push_str(name);
            if !skip(&key) {
                keys.push(key.clone());
            }
        };
        for id in identities {
            add(baseline::IDENTITY, id);
            add(baseline::INCIDENT, id);
        }
        // An identity can also be another's parent: the keys are deduplicated below.
        parents.into_iter().for_each(|p| add(baseline::IDENTITY, p));
        accounts.into_iter().for_each(|a| add(baseline::ACCOUNT, a));
        values.into_iter().for_each(|v| add("", v));
        access_keys.into_iter().for_each(|k| add(baseline::ACCESS_KEY, k));
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Works out what scoring needs of each of `events` once.
fn prepare(events: &mut [Observation<'_>]) {
    AGENTS.with(|agents| prepare_with(events, &mut agents.borrow_mut()));
}

/// Distinct principals a batch's identities are looked for among before one is worked out.
const RECENT_PRINCIPALS: usize = 16;

fn prepare_with(events: &mut [Observation<'_>], agents: &mut Agents) {
    // The first event of each of the distinct principals seen last, the latest last: a file's
    // calls come in runs of a few principals' (the event before's is looked at first).
    let mut recent: Vec<usize> = Vec::with_capacity(RECENT_PRINCIPALS);
    for i in 0..events.len() {
        let ev = &events[i];
        let same = |j: &usize| {
            let b = &events[*j];
            b.principal == ev.principal && b.recipient_account_id == ev.recipient_account_id
        };
        let identity = match recent.iter().rposition(same) {
            Some(k) => {
                // The latest seen last.
                let j = recent.remove(k);
                recent.push(j);
                events[j].prepared.identity.clone()
            }
            None => {
                if recent.len() == RECENT_PRINCIPALS {
                    recent.remove(0);
                }
                recent.push(i);
                identity::of(ev.principal.as_ref(), ev.recipient_account_id.as_deref()).map(Rc::new)
            }
        };
        let (done, rest) = events.split_at_mut(i);
        rest[0].prepared = Prepared::of(&rest[0], done.last(), agents, identity);
    }
}

/// `parts` joined (without `format!`'s machinery, which costs in the sandbox).
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// The access key id of a call signed with one.
fn access_key<'a>(ev: &'a Observation<'_>) -> Option<&'a str> {
    ev.principal
        .as_ref()?
        .access_key_id
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Entries by key (or name), hashed: ordered maps compared the keys' long shared prefixes
/// (`arn:aws:iam::…`, `v/<account>/…`) at every step of every look-up.
pub type Map<V> = rustc_hash::FxHashMap<String, V>;
pub type Set = rustc_hash::FxHashSet<String>;

/// The baselines a batch works on, decoded once and written back once.
#[derive(Default)]
pub struct Loaded {
    pub identities: Map<IdentityBaseline>,
    pub accounts: Map<AccountBaseline>,
    pub keys: Map<KeyUse>,
    /// How accounts use values, by entry key.
    pub values: Map<AccountValue>,
    /// Open incidents by identity; `None` once closed (the entry goes).
    pub incidents: Map<Option<baseline::OpenIncident>>,
    /// Entries this plugin cannot read (a newer plugin's, or damaged): judged as new, never
    /// overwritten.
    pub unreadable: Set,
}

impl Loaded {
    fn from(entries: BTreeMap<String, Vec<u8>>) -> Self {
        let mut loaded = Loaded::default();
        for (key, value) in entries {
            loaded.insert(key, &value);
        }
        loaded
    }

    /// Decodes the entry `key` holds; one this plugin cannot read is noted as such.
    fn insert(&mut self, key: String, value: &[u8]) {
        let read = if let Some(name) = key.strip_prefix("i/") {
            baseline::read(value)
                .map(|b| self.identities.insert(name.to_owned(), b))
                .is_some()
        } else if let Some(name) = key.strip_prefix("a/") {
            baseline::read(value)
                .map(|b| self.accounts.insert(name.to_owned(), b))
                .is_some()
        } else if let Some(name) = key.strip_prefix("k/") {
            baseline::read(value)
                .map(|b| self.keys.insert(name.to_owned(), b))
                .is_some()
        } else if key.starts_with("v/") {
            baseline::read(value)
                .map(|b| self.values.insert(key.clone(), b))
                .is_some()
        } else if let Some(name) = key.strip_prefix("n/") {
            baseline::read(value)
                .map(|b| self.incidents.insert(name.to_owned(), Some(b)))
                .is_some()
        } else {
            true
        };
        if !read {
            self.unreadable.insert(key);
        }
    }

    /// Whether it holds the entry `key` (or knows it cannot read it).
    fn holds(&self, key: &str) -> bool {
        if self.unreadable.contains(key) {
            return true;
        }
        if let Some(name) = key.strip_prefix("i/") {
            self.identities.contains_key(name)
        } else if let Some(name) = key.strip_prefix("a/") {
            self.accounts.contains_key(name)
        } else if let Some(name) = key.strip_prefix("k/") {
            self.keys.contains_key(name)
        } else if key.starts_with("v/") {
            self.values.contains_key(key)
        } else if let Some(name) = key.strip_prefix("n/") {
            self.incidents.get(name).is_some_and(Option::is_some)
        } else {
            false
        }
    }

    /// Whether `key` is an incident closed (its entry is to go).
    fn closed(&self, key: &str) -> bool {
        key.strip_prefix("n/")
            .is_some_and(|name| matches!(self.incidents.get(name), Some(None)))
    }

    /// Drops the entry `key`.
    fn remove(&mut self, key: &str) {
        self.unreadable.remove(key);
        self.forget_value(key);
    }

    /// Drops the value held under `key` (whether it can be read is still known).
    fn forget_value(&mut self, key: &str) {
        if let Some(name) = key.strip_prefix("i/") {
            self.identities.remove(name);
        } else if let Some(name) = key.strip_prefix("a/") {
            self.accounts.remove(name);
        } else if let Some(name) = key.strip_prefix("k/") {
            self.keys.remove(name);
        } else if key.starts_with("v/") {
            self.values.remove(key);
        } else if let Some(name) = key.strip_prefix("n/") {
            self.incidents.remove(name);
        }
    }

    /// The bytes of the entry `key` as it is now: `Some(None)` for an incident closed (the
    /// entry goes), `None` when it holds none or cannot read it (never overwritten).
    fn encoded(&self, key: &str) -> Option<Option<Vec<u8>>> {
        if self.unreadable.contains(key) {
            return None;
        }
        if let Some(name) = key.strip_prefix("i/") {
            self.identities.get(name).map(|v| Some(baseline::write(v)))
        } else if let Some(name) = key.strip_prefix("a/") {
            self.accounts.get(name).map(|v| Some(baseline::write(v)))
        } else if let Some(name) = key.strip_prefix("k/") {
            self.keys.get(name).map(|v| Some(baseline::write(v)))
        } else if key.starts_with("v/") {
            self.values.get(key).map(|v| Some(baseline::write(v)))
        } else if let Some(name) = key.strip_prefix("n/") {
            self.incidents.get(name).map(|o| o.as_ref().map(baseline::write))
        } else {
            None
        }
    }

    /// How many entries it holds: identities, incidents, the others.
    fn counts(&self) -> (usize, usize, usize) {
        let others = self.accounts.len() + self.keys.len() + self.values.len() + self.unreadable.len();
        (self.identities.len(), self.incidents.len(), others)
    }

    /// The entries under `keys` as they are now, in key order: those a batch read or made,
    /// not those it cannot read; an incident closed goes.
    fn writes(&self, keys: &[String]) -> Vec<Write> {
        keys.iter()
            .filter_map(|key| self.encoded(key).map(|value| (key.clone(), value)))
            .collect()
    }
}

/// Combines points: each reason takes its share of what the others left.
pub fn combine(points: impl IntoIterator<Item = u8>) -> u8 {
    let remaining = points
        .into_iter()
        .fold(1.0f64, |r, p| r * (1.0 - f64::from(p.min(100)) / 100.0));
    ((1.0 - remaining) * 100.0).round().clamp(0.0, 100.0) as u8
}

/// Scores `events` in order against `loaded`, which learns from them (no writes yet).
fn score_in(settings: &Settings, events: &[Observation], loaded: &mut Loaded) -> Scored {
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
        let mut reasons = signals::judge(settings, loaded, id, ev, t);
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
        signals::learn(loaded, id, ev, t);
        out.verdicts.push(verdict);
    }
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
    memory::with(|m| m.absorb_writes(&writes));
    (writes, incidents)
}

#[cfg(test)]
mod tests;
