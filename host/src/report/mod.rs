//! The report (`trailwatch report`, `replay --report`): one self-contained HTML page of where
//! activity came from, each identity's activity over time, the top anomalies and every incident
//! as a chain of events on a timeline.
//!
//! What it shows is gathered as files are scored, into the state store's `report` table (or
//! memory), and committed with each file like scoring's entries: a file read again after a crash
//! is not counted twice. Entries (JSON):
//! - `i/<identity>`: events and anomalies per day, and the identity's latest anomalies (to
//!   resolve the events of its incidents);
//! - `s/<country or scope>/<asn>`: events and anomalies from one network;
//! - `a`: the top anomalies;
//! - `x/<incident id>`: an incident's latest revision with its events.
//!
//! # Layout
//! - `mod.rs`: what a file adds ([`Gathered`]) and how it merges into the entries.
//! - `html.rs`: the page.
//! - `world.tsv`: the countries' outlines (written by `cargo run -p xtask -- world-map`).

pub mod html;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::runtime::bindings::scoring::{Incident, IncidentStatus, Observation, SourceKind, Verdict};
use crate::score::state::{ScoreState, StateError, Write};

/// Anomalies kept in the top list.
pub const TOP_ANOMALIES: usize = 100;
/// Days of activity kept per identity.
pub const DAYS_KEPT: usize = 120;
/// An identity's latest anomalies kept to resolve its incidents' events.
const RECENT: usize = 50;
/// Events kept per incident (as the incident document lists).
const INCIDENT_EVENTS: usize = 200;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// One anomalous event, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub event_id: String,
    pub time_ms: i64,
    pub identity: String,
    /// `eventSource`'s service and `eventName` (`iam.amazonaws.com:CreateAccessKey`).
    pub api: String,
    pub address: Option<String>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub org: Option<String>,
    pub score: u8,
    /// (code, text), strongest first.
    pub reasons: Vec<(String, String)>,
    pub incident: Option<String>,
}

/// `i/<identity>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityEntry {
    pub account: Option<String>,
    pub events: u64,
    pub anomalies: u64,
    pub max_score: u8,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Day (days since the Unix epoch) → (events, anomalies).
    pub days: BTreeMap<i64, (u32, u32)>,
    /// The latest anomalies, oldest first.
    pub recent: Vec<Anomaly>,
}

/// `s/<country or scope>/<asn>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// ISO 3166-1 alpha-2, when known.
    pub country: Option<String>,
    /// `public`, `private`, ...
    pub scope: String,
    pub asn: Option<u32>,
    pub org: Option<String>,
    pub events: u64,
    pub anomalies: u64,
    pub last_ms: i64,
}

/// An incident's latest revision (as its document says it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: String,
    pub revision: u32,
    pub identity: String,
    pub account: Option<String>,
    pub open: bool,
    pub summary: String,
    pub change: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub score: u8,
    pub tactics: Vec<String>,
    pub reasons: Vec<String>,
    pub event_ids: Vec<String>,
    pub anomalies: u32,
    pub countries: Vec<String>,
    pub asns: Vec<u32>,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        IncidentView {
            id: i.id.clone(),
            revision: i.revision,
            identity: i.identity.clone(),
            account: i.account_id.clone(),
            open: matches!(i.status, IncidentStatus::Open),
            summary: i.summary.clone(),
            change: i.change.clone(),
            first_ms: i.first_ms,
            last_ms: i.last_ms,
            score: i.score,
            tactics: i.tactics.clone(),
            reasons: i.reasons.clone(),
            event_ids: i.events.clone(),
            anomalies: i.anomalies,
            countries: i.countries.clone(),
            asns: i.asns.clone(),
        }
    }
}

/// `x/<incident id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEntry {
    pub incident: IncidentView,
    /// Its events that could be resolved, in time order.
    pub events: Vec<Anomaly>,
}

/// The identity a report groups under: a role session's role (sessions come and go; the role
/// is what an analyst follows), anything else as scored.
pub fn report_identity(identity: &str) -> &str {
    if let Some(rest) = identity.split_once(":assumed-role/") {
        if let Some((role, _session)) = rest.1.split_once('/') {
            return &identity[..rest.0.len() + ":assumed-role/".len() + role.len()];
        }
    }
    identity
}

/// What files scored but not yet merged added: counted per file, merged into the entries when
/// the file is taken to be committed.
#[derive(Debug, Default)]
pub struct Gathered {
    identities: HashMap<String, IdentityEntry>,
    sources: HashMap<String, SourceEntry>,
    anomalies: Vec<Anomaly>,
    incidents: Vec<IncidentView>,
}

impl Gathered {
    /// Notes a batch's events with their verdicts.
    pub fn events(&mut self, observations: &[Observation], verdicts: &[Verdict]) {
        let n = observations.len().min(verdicts.len());
        self.events_with(&verdicts[..n], |i, _| Cow::Borrowed(&observations[i]));
    }

    /// Notes a batch's events with their verdicts, `observation(i, whole)` giving event `i`'s
    /// observation: whole when asked (an anomaly, or an identity whose account is not known
    /// yet), otherwise its time, source kind and network are enough.
    pub fn events_with<'o>(
        &mut self,
        verdicts: &[Verdict],
        mut observation: impl FnMut(usize, bool) -> Cow<'o, Observation>,
    ) {
        for (i, v) in verdicts.iter().enumerate() {
            let account_unknown = !v.identity.is_empty()
                && self
                    .identities
                    .get(report_identity(&v.identity))
                    .is_none_or(|e| e.account.is_none());
            let o = observation(i, v.anomalous || account_unknown);
            let o = o.as_ref();
            let Some(time) = o.event_time_ms else { continue };
            let anomaly = v.anomalous.then(|| anomaly_of(o, v, time));
            if !v.identity.is_empty() {
                let id = report_identity(&v.identity);
                let e = match self.identities.get_mut(id) {
                    Some(e) => e,
                    None => self.identities.entry(id.to_owned()).or_insert_with(|| IdentityEntry {
                        first_ms: time,
                        last_ms: time,
                        ..IdentityEntry::default()
                    }),
                };
                if e.account.is_none() {
                    e.account = o.principal.as_ref().and_then(|p| p.account_id.clone());
                }
                e.events += 1;
                e.first_ms = e.first_ms.min(time);
                e.last_ms = e.last_ms.max(time);
                let day = e.days.entry(time.div_euclid(DAY_MS)).or_default();
                day.0 += 1;
                if let Some(a) = &anomaly {
                    day.1 += 1;
                    e.anomalies += 1;
                    e.max_score = e.max_score.max(v.score);
                    e.recent.push(a.clone());
                }
            }
            if matches!(o.source_kind, SourceKind::Ip) {
                let n = o.network.as_ref();
                let country = n.and_then(|n| n.country.clone());
                let asn = n.and_then(|n| n.asn);
                let scope = n.map_or_else(|| "unknown".to_owned(), |n| n.scope.clone());
                let key = format!(
                    "s/{}/{}",
                    country.as_deref().unwrap_or(&scope),
                    asn.map_or_else(String::new, |a| a.to_string())
                );
                let s = self.sources.entry(key).or_insert_with(|| SourceEntry {
                    country,
                    scope,
                    asn,
                    org: n.and_then(|n| n.as_org.clone()),
                    ..SourceEntry::default()
                });
                s.events += 1;
                s.last_ms = s.last_ms.max(time);
                if anomaly.is_some() {
                    s.anomalies += 1;
                }
            }
            if let Some(a) = anomaly {
                self.anomalies.push(a);
            }
        }
    }

    /// Notes incidents reported, updated or closed.
    pub fn incidents(&mut self, incidents: &[Incident]) {
        self.incidents.extend(incidents.iter().map(IncidentView::from));
    }

    /// Merges what was gathered into the entries `state` holds (pending values first), staged
    /// as file `file`'s writes (`ScoreState::take` hands them over).
    pub fn merge(self, state: &mut ScoreState, file: u64) -> Result<(), StateError> {
        let mut keys: Vec<String> = self.identities.keys().map(|k| format!("i/{k}")).collect();
        keys.extend(self.sources.keys().cloned());
        // Incidents' identities too: their events are resolved from the identity's anomalies.
        for i in &self.incidents {
            let k = format!("i/{}", report_identity(&i.identity));
            if !keys.contains(&k) {
                keys.push(k);
            }
            keys.push(format!("x/{}", i.id));
        }
        if !self.anomalies.is_empty() {
            keys.push("a".to_owned());
        }
        keys.sort();
        keys.dedup();
        let mut current: HashMap<String, Vec<u8>> = state.get(&keys)?.into_iter().map(|e| (e.key, e.value)).collect();
        let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut identities: HashMap<String, IdentityEntry> = HashMap::new();
        for (id, add) in self.identities {
            let key = format!("i/{id}");
            let mut e: IdentityEntry = decode(current.remove(&key)).unwrap_or_else(|| IdentityEntry {
                first_ms: add.first_ms,
                last_ms: add.last_ms,
                ..IdentityEntry::default()
            });
            e.account = e.account.or(add.account);
            e.events += add.events;
            e.anomalies += add.anomalies;
            e.max_score = e.max_score.max(add.max_score);
            e.first_ms = e.first_ms.min(add.first_ms);
            e.last_ms = e.last_ms.max(add.last_ms);
            for (day, (n, a)) in add.days {
                let d = e.days.entry(day).or_default();
                d.0 += n;
                d.1 += a;
            }
            while e.days.len() > DAYS_KEPT {
                e.days.pop_first();
            }
            // Trimmed once this file's incidents found their events in it.
            e.recent.extend(add.recent);
            identities.insert(key, e);
        }
        for (key, add) in self.sources {
            let mut s: SourceEntry = decode(current.remove(&key)).unwrap_or_else(|| SourceEntry {
                country: add.country.clone(),
                scope: add.scope.clone(),
                asn: add.asn,
                org: add.org.clone(),
                ..SourceEntry::default()
            });
            s.events += add.events;
            s.anomalies += add.anomalies;
            s.last_ms = s.last_ms.max(add.last_ms);
            s.org = s.org.or(add.org);
            out.insert(key, encode(&s));
        }
        if !self.anomalies.is_empty() {
            let mut top: Vec<Anomaly> = decode(current.remove("a")).unwrap_or_default();
            top.extend(self.anomalies);
            // Strongest first; of equal scores the latest, so that the list never freezes.
            top.sort_by(|a, b| b.score.cmp(&a.score).then(b.time_ms.cmp(&a.time_ms)));
            top.truncate(TOP_ANOMALIES);
            out.insert("a".to_owned(), encode(&top));
        }
        let mut entries: HashMap<String, IncidentEntry> = HashMap::new();
        for incident in self.incidents {
            let key = format!("x/{}", incident.id);
            let mut entry = match entries.remove(&key) {
                Some(e) => e,
                None => decode(current.remove(&key)).unwrap_or(IncidentEntry {
                    incident: incident.clone(),
                    events: Vec::new(),
                }),
            };
            if incident.revision >= entry.incident.revision {
                entry.incident = incident;
            }
            // Its events, from its identity's latest anomalies.
            let ikey = format!("i/{}", report_identity(&entry.incident.identity));
            if !identities.contains_key(&ikey) {
                if let Some(e) = decode::<IdentityEntry>(current.remove(&ikey)) {
                    identities.insert(ikey.clone(), e);
                }
            }
            if let Some(identity) = identities.get(&ikey) {
                for id in &entry.incident.event_ids {
                    if entry.events.len() >= INCIDENT_EVENTS {
                        break;
                    }
                    if entry.events.iter().any(|e| &e.event_id == id) {
                        continue;
                    }
                    if let Some(a) = identity.recent.iter().find(|a| &a.event_id == id) {
                        let mut a = a.clone();
                        a.incident = Some(entry.incident.id.clone());
                        entry.events.push(a);
                    }
                }
                entry.events.sort_by_key(|e| e.time_ms);
            }
            entries.insert(key, entry);
        }
        for (key, mut e) in identities {
            if e.recent.len() > RECENT {
                e.recent.drain(..e.recent.len() - RECENT);
            }
            out.insert(key, encode(&e));
        }
        for (key, e) in entries {
            out.insert(key, encode(&e));
        }
        let writes: Vec<Write> = out.into_iter().map(|(k, v)| (k, Some(v))).collect();
        state.stage(file, writes);
        Ok(())
    }
}

/// Stages with file `file` the removal of what was last seen `forget_after_ms` before event time
/// `now_ms`: identities, networks, closed incidents (as scoring forgets baselines).
pub fn forget(state: &mut ScoreState, file: u64, now_ms: i64, forget_after_ms: i64) -> Result<(), StateError> {
    let before = now_ms.saturating_sub(forget_after_ms);
    let mut gone: Vec<Write> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (entries, next) = state.page("", after.as_deref(), 512)?;
        for e in entries {
            let value = Some(e.value);
            let stale = match e.key.split_once('/') {
                Some(("i", _)) => decode::<IdentityEntry>(value).is_some_and(|v| v.last_ms < before),
                Some(("s", _)) => decode::<SourceEntry>(value).is_some_and(|v| v.last_ms < before),
                Some(("x", _)) => {
                    decode::<IncidentEntry>(value).is_some_and(|v| !v.incident.open && v.incident.last_ms < before)
                }
                _ => false,
            };
            if stale {
                gone.push((e.key, None));
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    state.stage(file, gone);
    Ok(())
}

fn anomaly_of(o: &Observation, v: &Verdict, time: i64) -> Anomaly {
    let service = o
        .event_source
        .as_deref()
        .map(|s| s.trim_end_matches(".amazonaws.com"))
        .unwrap_or(&o.category.service);
    let n = o.network.as_ref();
    Anomaly {
        // As the plugin names an event without an id in its incidents.
        event_id: o.event_id.clone().unwrap_or_else(|| {
            format!(
                "{}:{}@{time}",
                o.category.service,
                o.event_name.as_deref().unwrap_or("")
            )
        }),
        time_ms: time,
        identity: v.identity.clone(),
        api: format!("{service}:{}", o.event_name.as_deref().unwrap_or("?")),
        address: o.source_address.clone(),
        country: n.and_then(|n| n.country.clone()),
        asn: n.and_then(|n| n.asn),
        org: n.and_then(|n| n.as_org.clone()),
        score: v.score,
        reasons: v.reasons.iter().map(|r| (r.code.clone(), r.text.clone())).collect(),
        incident: v.incident.clone(),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data: serializing cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// An entry's value, or `None` when absent or unreadable (written by another version: the
/// report starts it again rather than failing a file).
fn decode<T: for<'de> Deserialize<'de>>(bytes: Option<Vec<u8>>) -> Option<T> {
    let bytes = bytes?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "a report entry cannot be read; it starts again");
            None
        }
    }
}

/// Everything the report shows, read from its entries.
#[derive(Debug, Default)]
pub struct ReportData {
    pub identities: Vec<(String, IdentityEntry)>,
    pub sources: Vec<SourceEntry>,
    pub anomalies: Vec<Anomaly>,
    pub incidents: Vec<IncidentEntry>,
}

impl ReportData {
    /// Reads every entry of `state` (the report table) as the scores see it.
    pub fn load(state: &ScoreState) -> Result<Self, StateError> {
        let mut data = ReportData::default();
        let mut after: Option<String> = None;
        loop {
            let (entries, next) = state.page("", after.as_deref(), 512)?;
            for e in entries {
                data.add(&e.key, e.value);
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        data.sort();
        Ok(data)
    }

    /// Reads the report table of the state store at `path`, opened read-only (a copy on
    /// read-only storage will do; a store from before the report has no table: nothing).
    pub fn load_store(path: &std::path::Path) -> Result<Self, StateError> {
        use redb::ReadableDatabase;
        let err = |e: &dyn std::fmt::Display| StateError::new(path, e);
        let db = redb::ReadOnlyDatabase::open(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StateError::new(path, "in use by a running trailwatch; make the report once it stopped")
            }
            e => err(&e),
        })?;
        Self::read(db.begin_read().map_err(|e| err(&e))?, path)
    }

    /// Reads the report table as committed to the state store `db` (at `path`): what a running
    /// `run` has made durable.
    pub fn load_database(db: &redb::Database, path: &std::path::Path) -> Result<Self, StateError> {
        use redb::ReadableDatabase;
        Self::read(db.begin_read().map_err(|e| StateError::new(path, e))?, path)
    }

    fn read(tx: redb::ReadTransaction, path: &std::path::Path) -> Result<Self, StateError> {
        use redb::ReadableTable;
        let err = |e: &dyn std::fmt::Display| StateError::new(path, e);
        let mut data = ReportData::default();
        match tx.open_table(crate::score::state::REPORT_TABLE) {
            Ok(table) => {
                for item in table.iter().map_err(|e| err(&e))? {
                    let (k, v) = item.map_err(|e| err(&e))?;
                    data.add(k.value(), v.value().to_vec());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err(&e)),
        }
        data.sort();
        Ok(data)
    }

    fn add(&mut self, key: &str, value: Vec<u8>) {
        let value = Some(value);
        match key.split_once('/') {
            Some(("i", id)) => {
                if let Some(v) = decode(value) {
                    self.identities.push((id.to_owned(), v));
                }
            }
            Some(("s", _)) => self.sources.extend(decode::<SourceEntry>(value)),
            Some(("x", _)) => self.incidents.extend(decode::<IncidentEntry>(value)),
            None if key == "a" => self.anomalies = decode(value).unwrap_or_default(),
            _ => {}
        }
    }

    fn sort(&mut self) {
        let data = self;
        data.incidents.sort_by(|a, b| {
            b.incident
                .score
                .cmp(&a.incident.score)
                .then(a.incident.first_ms.cmp(&b.incident.first_ms))
        });
        data.sources.sort_by_key(|s| std::cmp::Reverse(s.events));
    }
}

/// `trailwatch report`: the page of what `dir`'s state store gathered, written to `out`.
/// Returns the numbers of identities and incidents shown.
pub fn write_from_state_dir(dir: &std::path::Path, out: &std::path::Path) -> anyhow::Result<(usize, usize)> {
    let path = dir.join("state.redb");
    if !path.exists() {
        anyhow::bail!(
            "no state store in {} (no state.redb): give the --state-dir of a `replay --state-dir` or `run` ([state] dir) that scored events",
            dir.display()
        );
    }
    // Held while reading, as `run` and `replay` hold it: one trailwatch at a time. A directory
    // that cannot take the lock file (read-only storage) is read all the same: the store's own
    // lock still keeps a writer out.
    let _lock = match crate::state::checkpoint::lock(dir) {
        Ok(l) => Some(l),
        Err(e @ crate::state::checkpoint::CheckpointError::Locked { .. }) => {
            anyhow::bail!("{e}; make the report once it stopped")
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading the state directory without its lock");
            None
        }
    };
    let data = ReportData::load_store(&path)?;
    write_page(&data, &format!("the state directory {}", dir.display()), out)?;
    Ok((data.identities.len(), data.incidents.len()))
}

/// Renders `data` into `out` (written whole, then renamed into place).
pub fn write_page(data: &ReportData, origin: &str, out: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let page = html::render(data, now, origin);
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, page).with_context(|| format!("cannot write the report to {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write the report to {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::bindings::scoring::{Network, Reason};
    use crate::runtime::bindings::types::{ActionType, Category, EventFlags, Outcome, Principal};

    fn event(id: &str, ms: i64, who: &str, country: &str) -> Observation {
        Observation {
            event_id: Some(id.into()),
            event_time_ms: Some(ms),
            event_source: Some("iam.amazonaws.com".into()),
            event_name: Some("CreateAccessKey".into()),
            category: Category {
                service: "iam".into(),
                action: ActionType::CredentialCreation,
                metric: "aws.iam.credential_creation".into(),
                flags: EventFlags::empty(),
            },
            read_only: false,
            event_type: None,
            region: None,
            recipient_account_id: None,
            principal: Some(Principal {
                identity_type: None,
                principal_id: None,
                arn: Some(who.into()),
                account_id: Some("111122223333".into()),
                user_name: None,
                access_key_id: None,
                session_issuer_arn: None,
                mfa_authenticated: None,
                invoked_by: None,
            }),
            source_address: Some("198.51.100.7".into()),
            source_kind: SourceKind::Ip,
            network: Some(Network {
                scope: "public".into(),
                asn: Some(64500),
                as_org: Some("Example".into()),
                country: Some(country.into()),
            }),
            user_agent: None,
            error_code: None,
            outcome: Outcome::Success,
        }
    }

    fn verdict(who: &str, score: u8, incident: Option<&str>) -> Verdict {
        Verdict {
            identity: who.into(),
            score,
            anomalous: score >= 50,
            reasons: if score >= 50 {
                vec![Reason {
                    code: "new_country_for_identity".into(),
                    text: "first call from there".into(),
                    points: score,
                }]
            } else {
                Vec::new()
            },
            incident: incident.map(str::to_owned),
        }
    }

    fn incident(id: &str, who: &str, revision: u32, events: &[&str], open: bool) -> Incident {
        Incident {
            id: id.into(),
            revision,
            identity: who.into(),
            account_id: Some("111122223333".into()),
            status: if open {
                IncidentStatus::Open
            } else {
                IncidentStatus::Closed
            },
            summary: format!("{who}: {} anomalies", events.len()),
            change: "opened".into(),
            first_ms: 0,
            last_ms: 0,
            score: 80,
            tactics: vec!["persistence".into()],
            reasons: vec!["new_country_for_identity".into()],
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            anomalies: events.len() as u32,
            countries: vec!["NL".into()],
            asns: vec![64500],
        }
    }

    #[test]
    fn files_add_up_once_committed_and_an_incident_finds_its_first_anomaly() {
        let session = "arn:aws:sts::111122223333:assumed-role/admin/alice";
        let role = "arn:aws:sts::111122223333:assumed-role/admin";
        let mut state = ScoreState::in_memory().report().unwrap();
        // File 1: a benign call and an anomaly not yet in an incident (one is not enough).
        let mut g = Gathered::default();
        g.events(
            &[event("e1", 1_000, session, "GB"), event("e2", 2_000, session, "NL")],
            &[verdict(session, 10, None), verdict(session, 60, None)],
        );
        g.merge(&mut state, 1).unwrap();
        let w1 = state.take(1);
        // File 2: a second anomaly reports the incident, listing both.
        let mut g = Gathered::default();
        g.events(
            &[event("e3", DAY_MS + 5, session, "NL")],
            &[verdict(session, 70, Some("inc-1"))],
        );
        g.incidents(&[incident("inc-1", session, 1, &["e2", "e3"], true)]);
        g.merge(&mut state, 2).unwrap();
        let w2 = state.take(2);
        // File 3 is never committed (a cycle ended without it): it counts for nothing.
        let mut g = Gathered::default();
        g.events(&[event("e4", DAY_MS + 9, session, "US")], &[verdict(session, 90, None)]);
        g.merge(&mut state, 3).unwrap();
        state.abandon();
        state.commit_alone(1, w1).unwrap();
        state.commit_alone(2, w2).unwrap();

        let data = ReportData::load(&state).unwrap();
        assert_eq!(data.identities.len(), 1);
        let (who, e) = &data.identities[0];
        assert_eq!(who, role);
        assert_eq!((e.events, e.anomalies, e.max_score), (3, 2, 70));
        assert_eq!(e.days.values().copied().collect::<Vec<_>>(), [(2, 1), (1, 1)]);
        let ids: Vec<&str> = data.anomalies.iter().map(|a| a.event_id.as_str()).collect();
        assert_eq!(ids, ["e3", "e2"], "strongest first");
        assert_eq!(data.incidents.len(), 1);
        let events: Vec<&str> = data.incidents[0].events.iter().map(|a| a.event_id.as_str()).collect();
        assert_eq!(
            events,
            ["e2", "e3"],
            "the first anomaly was scored before the incident existed"
        );
        let mut sources: Vec<(Option<&str>, u64, u64)> = data
            .sources
            .iter()
            .map(|s| (s.country.as_deref(), s.events, s.anomalies))
            .collect();
        sources.sort();
        assert_eq!(sources, [(Some("GB"), 1, 0), (Some("NL"), 2, 2)]);

        // A later revision replaces the incident; an older one arriving late does not.
        let mut g = Gathered::default();
        g.incidents(&[incident("inc-1", session, 3, &["e2", "e3"], false)]);
        g.incidents(&[incident("inc-1", session, 2, &["e2", "e3"], true)]);
        g.merge(&mut state, 4).unwrap();
        let w = state.take(4);
        state.commit_alone(4, w).unwrap();
        let data = ReportData::load(&state).unwrap();
        assert_eq!(data.incidents[0].incident.revision, 3);
        assert!(!data.incidents[0].incident.open);
        assert_eq!(data.incidents[0].events.len(), 2);
    }

    #[test]
    fn a_role_session_is_reported_as_its_role() {
        assert_eq!(
            report_identity("arn:aws:sts::111122223333:assumed-role/ci-deploy/build-42"),
            "arn:aws:sts::111122223333:assumed-role/ci-deploy"
        );
        assert_eq!(
            report_identity("arn:aws:sts::111122223333:assumed-role/ci-deploy"),
            "arn:aws:sts::111122223333:assumed-role/ci-deploy"
        );
        assert_eq!(
            report_identity("arn:aws:iam::111122223333:user/alice"),
            "arn:aws:iam::111122223333:user/alice"
        );
    }
}
