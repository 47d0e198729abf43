//! Pattern of life in the documents: each event's score members, and incident documents
//! (`schema/event.schema.json`, `schema/incident.schema.json`).

use serde::Serialize;

use crate::runtime::bindings::scoring::{Incident, IncidentStatus, Verdict};

/// The severity of a score: `critical` from 90, `high` from 75, `medium` from 50, else `low`.
pub fn severity(score: u8) -> &'static str {
    match score {
        90.. => "critical",
        75.. => "high",
        50.. => "medium",
        _ => "low",
    }
}

#[derive(Serialize)]
struct ReasonOut<'a> {
    code: &'a str,
    text: &'a str,
    points: u8,
}

/// Appends an event's score members to its document's head: `identity` (when it has one),
/// `score`, `anomalous`, `severity` (anomalous events only), `reasons` and `incident` (once the
/// incident it belongs to is reported).
pub fn write_verdict(out: &mut Vec<u8>, v: &Verdict) -> serde_json::Result<()> {
    if !v.identity.is_empty() {
        out.extend_from_slice(b",\"identity\":");
        serde_json::to_writer(&mut *out, &v.identity)?;
    }
    out.extend_from_slice(b",\"score\":");
    out.extend_from_slice(itoa::Buffer::new().format(v.score).as_bytes());
    out.extend_from_slice(if v.anomalous {
        b",\"anomalous\":true"
    } else {
        b",\"anomalous\":false"
    });
    if v.anomalous {
        out.extend_from_slice(b",\"severity\":\"");
        out.extend_from_slice(severity(v.score).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"reasons\":");
    let reasons: Vec<ReasonOut<'_>> = v
        .reasons
        .iter()
        .map(|r| ReasonOut {
            code: &r.code,
            text: &r.text,
            points: r.points,
        })
        .collect();
    serde_json::to_writer(&mut *out, &reasons)?;
    if let Some(id) = &v.incident {
        out.extend_from_slice(b",\"incident\":");
        serde_json::to_writer(&mut *out, id)?;
    }
    Ok(())
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
