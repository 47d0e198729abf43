//! Pattern of life in the documents: each event's score members, and incident documents
//! (`schema/event.schema.json`, `schema/incident.schema.json`).

use serde::Serialize;

use crate::runtime::bindings::scoring::{Incident, IncidentStatus, Verdict};

pub use trailwatch_document::severity;

/// Appends an event's score members to its document's head ([`trailwatch_document::write_verdict`]:
/// text that needs no escaping copied as it is, rather than through serde_json).
pub fn write_verdict(out: &mut Vec<u8>, v: &Verdict) {
    trailwatch_document::write_verdict(
        out,
        trailwatch_document::Verdict {
            identity: &v.identity,
            score: v.score,
            anomalous: v.anomalous,
            reasons: v.reasons.iter().map(|r| trailwatch_document::Reason {
                code: &r.code,
                text: &r.text,
                points: r.points,
            }),
            incident: v.incident.as_deref(),
        },
    );
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[derive(Serialize)]
struct IncidentOut<'a> {
    kind: &'static str,
    schema_version: u32,
    incident_id: &'a str,
    revision: u32,
    status: &'static str,
    severity: &'static str,
    score: u8,
    identity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    summary: &'a str,
    change: &'a str,
    first_time: String,
    last_time: String,
    first_time_ms: i64,
    last_time_ms: i64,
    tactics: &'a [String],
    reasons: &'a [String],
    anomalies: u32,
    events: &'a [String],
    countries: &'a [String],
    asns: &'a [u32],
}

/// What an incident update is, for the metrics: `opened`, `updated` or `closed`.
pub fn change_kind(i: &Incident) -> &'static str {
    match (i.status, i.revision) {
        (IncidentStatus::Closed, _) => "closed",
        (_, 1) => "opened",
        _ => "updated",
    }
}

/// Appends an incident document as a JSON line.
pub fn write_incident(out: &mut Vec<u8>, i: &Incident) -> serde_json::Result<()> {
    let doc = IncidentOut {
        kind: "incident",
        schema_version: super::ndjson::SCHEMA_VERSION,
        incident_id: &i.id,
        revision: i.revision,
        status: match i.status {
            IncidentStatus::Open => "open",
            IncidentStatus::Closed => "closed",
        },
        severity: severity(i.score),
        score: i.score,
        identity: &i.identity,
        account_id: i.account_id.as_deref(),
        summary: &i.summary,
        change: &i.change,
        first_time: rfc3339(i.first_ms),
        last_time: rfc3339(i.last_ms),
        first_time_ms: i.first_ms,
        last_time_ms: i.last_ms,
        tactics: &i.tactics,
        reasons: &i.reasons,
        anomalies: i.anomalies,
        events: &i.events,
        countries: &i.countries,
        asns: &i.asns,
    };
    serde_json::to_writer(&mut *out, &doc)?;
    out.push(b'\n');
    Ok(())
}
