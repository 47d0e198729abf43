//! Incidents: an identity's anomalies less than the incident gap apart, linked into one chain.
//!
//! An incident is held (not reported) until it links two anomalies or one scoring 75 or more: a
//! single mild anomaly is an event to look at, not an incident. From then on every anomaly that
//! joins it sends it again with a higher revision and what changed. After the incident gap
//! without an anomaly it is closed (by the next anomaly of the identity, or by the sweep) and
//! sent a last time.

use super::baseline::{OpenIncident, MAX_INCIDENT_EVENTS};
use super::identity::Identity;
use super::{Incident, Observation, Settings, Verdict, MINUTE};
use crate::categorize::Action;

/// The ATT&CK tactics an incident can touch, in the kill chain's order.
pub const TACTICS: [&str; 8] = [
    "initial-access",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "exfiltration",
    "impact",
];

/// A single anomaly scoring this much is an incident by itself.
pub const ALONE: u8 = 75;

fn bit(tactic: &str) -> u16 {
    TACTICS.iter().position(|t| *t == tactic).map_or(0, |i| 1 << i)
}

/// Calls whose success reads secrets or credentials.
const CREDENTIAL_READS: &[&str] = &[
    "GetSecretValue",
    "BatchGetSecretValue",
    "GetPasswordData",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "GetCredentialReport",
    "GetAuthorizationToken",
];

/// Calls that make a copy of data that can then be shared (sharing itself is
/// `signals::SHARING`).
const COPYING: &[&str] = &["CreateSnapshot", "CopySnapshot", "CopyImage", "CreateImage"];

/// Calls that destroy.
const DESTRUCTIVE: &[&str] = &[
    "DeleteBucket",
    "DeleteObjects",
    "DeleteDBInstance",
    "DeleteDBCluster",
    "TerminateInstances",
    "DeleteVolume",
    "DeleteSnapshot",
    "ScheduleKeyDeletion",
    "DeleteTable",
];

/// Calls that make a way back in.
const PERSISTENCE: &[&str] = &[
    "CreateUser",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AddUserToGroup",
];

/// The tactics an anomalous event shows.
pub fn tactics(ev: &Observation, verdict: &Verdict) -> u16 {
    let name = ev.event_name.as_deref().unwrap_or("");
    let flags = ev.category.flags;
    let mut bits = 0;
    let has = |code: &str| verdict.reasons.iter().any(|r| r.code == code);
    if has("new_asn_for_identity")
        || has("new_country_for_identity")
        || has("console_login_without_mfa")
        || has("access_key_two_networks")
        || has("instance_credentials_outside_aws")
        || has("instance_credentials_other_account")
        || has("pentest_user_agent")
        || has("dormant_identity")
        || ev.category.action == Action::Authentication
    {
        bits |= bit("initial-access");
    }
    if flags.credential_creation || PERSISTENCE.contains(&name) {
        bits |= bit("persistence");
    }
    if flags.permission_change {
        bits |= bit("privilege-escalation");
    }
    if flags.logging_tampering || flags.protection_weakened {
        bits |= bit("defense-evasion");
    }
    if CREDENTIAL_READS.contains(&name) {
        bits |= bit("credential-access");
    }
    if has("discovery_burst") || (ev.category.action == Action::Read && !CREDENTIAL_READS.contains(&name)) {
        bits |= bit("discovery");
    }
    if super::signals::SHARING.contains(&name) || COPYING.contains(&name) || ev.category.action == Action::DataRead {
        bits |= bit("exfiltration");
    }
    if DESTRUCTIVE.contains(&name) {
        bits |= bit("impact");
    }
    bits
}

/// A stable id: the identity and the incident's first anomaly.
fn id_of(identity: &str, first: i64, event: &str) -> String {
    // FNV-1a, 64 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes().chain(first.to_le_bytes()).chain(event.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("inc-{h:016x}")
}

fn score(o: &OpenIncident) -> u8 {
    ((1.0 - o.remaining) * 100.0).round().clamp(0.0, 100.0) as u8
}

fn names(bits: u16) -> Vec<&'static str> {
    TACTICS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect()
}

fn span(ms: i64) -> String {
    let minutes = ms.max(0) / MINUTE;
    if minutes < 1 {
        "under a minute".into()
    } else if minutes < 120 {
        format!("{minutes} minutes")
    } else {
        format!("{} hours", minutes / 60)
    }
}

/// The incident as sent.
fn render(o: &OpenIncident, identity: &str, open: bool, change: String) -> Incident {
    let tactics = names(o.tactics);
    let mut summary = format!(
        "{identity}: {} anomal{} over {}",
        o.anomalies,
        if o.anomalies == 1 { "y" } else { "ies" },
        span(o.last - o.first)
    );
    if !tactics.is_empty() {
        summary.push_str(", touching ");
        summary.push_str(&tactics.join(", "));
    }
    let from: Vec<String> = o
        .countries
        .iter()
        .cloned()
        .chain(o.asns.iter().map(|a| format!("AS{a}")))
        .collect();
    if !from.is_empty() {
        summary.push_str(", from ");
        summary.push_str(&from.join(", "));
    }
    summary.push_str("; strongest: ");
    summary.push_str(&o.top.1);
    Incident {
        id: o.id.clone(),
        revision: o.revision,
        identity: identity.to_owned(),
        account_id: o.account.clone(),
        open,
        summary,
        change,
        first_ms: o.first,
        last_ms: o.last,
        score: score(o),
        tactics,
        reasons: o.reasons.clone(),
        events: o.events.clone(),
        anomalies: o.anomalies,
        countries: o.countries.clone(),
        asns: o.asns.clone(),
    }
}

/// Closes the open incident in `slot` when it has been quiet for the incident gap at `t`: the
/// closed incident to send, when it was reported.
pub fn close_if_quiet(
    settings: &Settings,
    slot: &mut Option<OpenIncident>,
    identity: &str,
    t: i64,
) -> Option<Incident> {
    let quiet = slot.as_ref().is_some_and(|o| t - o.last > settings.incident_gap_ms);
    if !quiet {
        return None;
    }
    let mut o = slot.take()?;
    if o.revision == 0 {
        return None;
    }
    o.revision += 1;
    let change = format!("closed: no anomaly for {}", span(t - o.last));
    Some(render(&o, identity, false, change))
}

/// Links an anomalous event to its identity's incident: the incident's id when it is
/// reported, and the update to send, if any.
pub fn link(
    slot: &mut Option<OpenIncident>,
    id: &Identity,
    ev: &Observation,
    verdict: &Verdict,
    t: i64,
) -> (Option<String>, Option<Incident>) {
    let event = ev
        .event_id
        .as_deref()
        .map_or_else(|| format!("{}@{t}", ev.api()), str::to_owned);
    let o = slot.get_or_insert_with(|| OpenIncident {
        id: id_of(&id.key, t, &event),
        first: t,
        last: t,
        remaining: 1.0,
        account: id.account.clone(),
        ..OpenIncident::default()
    });
    let before_tactics = o.tactics;
    o.first = o.first.min(t);
    o.last = o.last.max(t);
    o.anomalies += 1;
    o.remaining *= 1.0 - f64::from(verdict.score.min(100)) / 100.0;
    o.tactics |= tactics(ev, verdict);
    for r in &verdict.reasons {
        if !o.reasons.iter().any(|c| c == r.code) {
            o.reasons.push(r.code.to_owned());
        }
    }
    if o.events.len() < MAX_INCIDENT_EVENTS {
        o.events.push(event.clone());
    }
    if let Some(c) = ev.country() {
        if !o.countries.iter().any(|x| x == c) {
            o.countries.push(c.to_owned());
        }
    }
    if let Some(a) = ev.public_asn() {
        if !o.asns.contains(&a) {
            o.asns.push(a);
        }
    }
    if verdict.score > o.top.0 {
        let text = verdict.reasons.first().map(|r| r.text.clone()).unwrap_or_default();
        o.top = (verdict.score, text);
    }
    let reportable = o.anomalies >= 2 || verdict.score >= ALONE || o.revision > 0;
    if !reportable {
        return (None, None);
    }
    let change = if o.revision == 0 {
        format!(
            "opened with {} anomal{}",
            o.anomalies,
            if o.anomalies == 1 { "y" } else { "ies" }
        )
    } else {
        let new: Vec<&str> = names(o.tactics & !before_tactics);
        let what = verdict.reasons.first().map_or("", |r| r.code);
        if new.is_empty() {
            format!("anomaly {} linked: {event} ({what})", o.anomalies)
        } else {
            format!(
                "anomaly {} linked: {event} ({what}); new stage {}",
                o.anomalies,
                new.join(", ")
            )
        }
    };
    o.revision += 1;
    let o = o.clone();
    (Some(o.id.clone()), Some(render(&o, &id.key, true, change)))
}
