//! OTLP/HTTP logs, JSON encoding, to an OpenTelemetry Collector: `POST {endpoint}/v1/logs`.
//!
//! Each event becomes a log record: `timeUnixNano` is the CloudTrail event time,
//! `observedTimeUnixNano` when trailwatch read it, the severity comes from the outcome and the
//! flags, the whole event document is the `body` (a `kvlistValue`), and the key fields are
//! `attributes`. The resource says `service.name = trailwatch` and its version. Retries follow
//! the OTLP specification: 429, 502, 503 and 504 (honouring `Retry-After`); other errors are
//! permanent. A `partialSuccess` answer is logged and counted.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::http::{Delivery, Encoding, Gathered, HttpSink};
use super::SinkError;
use crate::config::HttpSinkConfig;
use crate::metrics::Metrics;

/// The OTLP/JSON encoding of the HTTP sink.
pub struct Otlp {
    metrics: Arc<Metrics>,
}

/// OTLP/HTTP's passing troubles (the specification's list).
fn retryable_otlp(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// An OTLP sink for `config` (`endpoint` set, as checked with the configuration).
pub fn sink(name: String, config: &HttpSinkConfig, metrics: Arc<Metrics>, seed: u64) -> Result<HttpSink, SinkError> {
    let endpoint = config.endpoint.clone().unwrap_or_default();
    let url = format!("{}/v1/logs", endpoint.trim_end_matches('/'));
    let mut delivery = Delivery::new(name, url, "application/json".into(), config, metrics.clone(), seed)?;
    delivery.retryable = retryable_otlp;
    Ok(HttpSink::with_encoding(delivery, Box::new(Otlp { metrics })))
}

impl Encoding for Otlp {
    fn body(&self, g: &Gathered) -> Vec<u8> {
        request(g, now_ns())
    }

    fn answered(&self, sink: &str, answer: &[u8]) {
        if let Some((rejected, message)) = partial_rejection(answer) {
            self.metrics.sink_partial_rejected(sink, rejected);
            tracing::warn!(sink = %sink, rejected, message = %message, "the collector rejected some log records (partial success)");
        }
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `rejectedLogRecords` and `errorMessage` of a partial-success answer, when it has some.
fn partial_rejection(answer: &[u8]) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let p = v.get("partialSuccess")?;
    let rejected = match p.get("rejectedLogRecords")? {
        Value::String(s) => s.parse().ok()?,
        n => n.as_u64()?,
    };
    let message = p.get("errorMessage").and_then(Value::as_str).unwrap_or("").to_owned();
    (rejected > 0 || !message.is_empty()).then_some((rejected, message))
}

/// A JSON value as an OTLP `AnyValue` (integers as decimal strings, as the JSON mapping wants).
pub fn any_value(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(a) => json!({ "arrayValue": { "values": a.iter().map(any_value).collect::<Vec<_>>() } }),
        Value::Object(o) => json!({ "kvlistValue": { "values": key_values(o) } }),
    }
}

fn key_values(o: &Map<String, Value>) -> Vec<Value> {
    o.iter()
        .map(|(k, v)| json!({ "key": k, "value": any_value(v) }))
        .collect()
}

/// `severityNumber` and `severityText` of an event: ERROR for logging tampering, WARN for a
/// failure, a refusal, or a change to access, credentials, exposure or protections, INFO
/// otherwise.
fn severity(event: &Value) -> (u8, &'static str) {
    let flags: Vec<&str> = event["flags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if flags.contains(&"logging_tampering") {
        return (17, "ERROR");
    }
    let sensitive = [
        "network_exposure",
        "credential_creation",
        "permission_change",
        "protection_weakened",
    ];
    if event["outcome"] != "success" || flags.iter().any(|f| sensitive.contains(f)) {
        return (13, "WARN");
    }
    (9, "INFO")
}

/// The attributes of a log record: the fields an analyst filters on.
fn attributes(event: &Value) -> Vec<Value> {
    let mut out = vec![json!({ "key": "cloud.provider", "value": { "stringValue": "aws" } })];
    let fields: [(&str, &Value); 13] = [
        ("cloud.region", &event["region"]),
        ("cloud.account.id", &event["recipient_account_id"]),
        ("aws.cloudtrail.event_id", &event["event_id"]),
        ("aws.cloudtrail.event_name", &event["event_name"]),
        ("aws.cloudtrail.event_source", &event["event_source"]),
        ("aws.principal.arn", &event["principal"]["arn"]),
        ("source.address", &event["source_address"]),
        ("error.type", &event["error_code"]),
        ("trailwatch.metric", &event["metric"]),
        ("trailwatch.action", &event["action"]),
        ("trailwatch.outcome", &event["outcome"]),
        ("trailwatch.read_only", &event["read_only"]),
        ("trailwatch.flags", &event["flags"]),
    ];
    for (key, value) in fields {
        if !value.is_null() {
            out.push(json!({ "key": key, "value": any_value(value) }));
        }
    }
    out
}

/// An event line as a JSON value. Every line is JSON, but its `raw` member is the record as
/// stored, and serde_json refuses some valid JSON there (a number beyond a 64-bit float's range,
/// `1e400`): such a line keeps its normalized head (the plugin's own rendering, which ends where
/// `,"raw":` first appears), with `raw` as text and a problem saying why.
fn event_value(line: &[u8]) -> Value {
    const RAW: &[u8] = b",\"raw\":";
    let e = match serde_json::from_slice(line) {
        Ok(v) => return v,
        Err(e) => e,
    };
    let at = line.windows(RAW.len()).position(|w| w == RAW);
    let head = at.and_then(|i| {
        let mut head = line[..i].to_vec();
        head.push(b'}');
        serde_json::from_slice::<Value>(&head).ok().map(|h| (i, h))
    });
    match head {
        Some((i, mut event)) => {
            let raw = line[i + RAW.len()..].trim_ascii_end();
            let raw = raw.strip_suffix(b"}").unwrap_or(raw);
            event["raw"] = Value::String(String::from_utf8_lossy(raw).into_owned());
            let problem = Value::String(format!("raw is kept as text: {e}"));
            match event["problems"].as_array_mut() {
                Some(problems) => problems.push(problem),
                None => event["problems"] = Value::Array(vec![problem]),
            }
            event
        }
        // Not a document of the plugin's: say so rather than drop it.
        None => json!({ "problems": [format!("not JSON: {e}")], "raw": String::from_utf8_lossy(line) }),
    }
}

/// One log record for an event line.
fn log_record(line: &[u8], observed_ns: u128) -> Value {
    let event = event_value(line);
    let (number, text) = severity(&event);
    let mut record = json!({
        "observedTimeUnixNano": observed_ns.to_string(),
        "severityNumber": number,
        "severityText": text,
        "body": any_value(&event),
        "attributes": attributes(&event),
    });
    if let Some(ms) = event["event_time_ms"].as_i64().filter(|&ms| ms >= 0) {
        record["timeUnixNano"] = Value::String((ms as u128 * 1_000_000).to_string());
    }
    record
}

/// An `ExportLogsServiceRequest` for the gathered events.
pub fn request(g: &Gathered, observed_ns: u128) -> Vec<u8> {
    let version = env!("CARGO_PKG_VERSION");
    let records: Vec<Value> = g.lines().map(|l| log_record(l, observed_ns)).collect();
    let body = json!({
        "resourceLogs": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": "trailwatch" } },
                { "key": "service.version", "value": { "stringValue": version } },
            ]},
            "scopeLogs": [{
                "scope": { "name": "trailwatch", "version": version },
                "logRecords": records,
            }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_serde_json_refuses_keeps_its_head_and_its_raw_as_text() {
        let line = br#"{"kind":"event","event_id":"e1","event_time_ms":1709287200000,"problems":["x"],"raw":{"eventID":"e1","n":1e400,"s":",\"raw\":"}}"#;
        let event = event_value(line);
        assert_eq!(event["event_id"], "e1");
        assert_eq!(event["event_time_ms"], 1_709_287_200_000_i64);
        assert_eq!(event["raw"], r#"{"eventID":"e1","n":1e400,"s":",\"raw\":"}"#);
        let problems = event["problems"].as_array().unwrap();
        assert_eq!(problems[0], "x");
        assert!(
            problems[1]
                .as_str()
                .unwrap()
                .starts_with("raw is kept as text: number out of range"),
            "{problems:?}"
        );
        let record = log_record(line, 1);
        assert_eq!(record["timeUnixNano"], "1709287200000000000");
        // A line that is not a document at all is still kept, as text.
        let event = event_value(b"not json");
        assert_eq!(event["raw"], "not json");
        assert!(event["problems"][0].as_str().unwrap().starts_with("not JSON"));
        // An ordinary line is read as it is.
        assert_eq!(event_value(br#"{"event_id":"e2","raw":{"n":1}}"#)["raw"]["n"], 1);
    }
}
