//! One JSON object per event per line: the normalized fields, where the event came from, and
//! the raw CloudTrail record.
//!
//! The schema is documented in the README ("Event schema"). Absent values are left out rather
//! than written as `null`. The raw record is embedded as JSON as it was written; newlines in its
//! whitespace become spaces so that each event stays on one line.

use serde::Serialize;

use crate::runtime::bindings::types::{
    ActionType, Event, EventCategory, EventFlags, Outcome, Principal, SourceKind, TlsDetails,
};

/// Stable snake_case name of an action type (the metric's last segment).
pub fn action_name(a: ActionType) -> &'static str {
    match a {
        ActionType::Read => "read",
        ActionType::Create => "create",
        ActionType::Modify => "modify",
        ActionType::Delete => "delete",
        ActionType::Permissions => "permissions",
        ActionType::Authentication => "authentication",
        ActionType::LoggingChange => "logging_change",
        ActionType::NetworkExposure => "network_exposure",
        ActionType::CredentialCreation => "credential_creation",
        ActionType::DataRead => "data_read",
        ActionType::DataWrite => "data_write",
        ActionType::Insight => "insight",
        ActionType::Other => "other",
    }
}

/// Stable names of the flags that are set.
pub fn flag_names(f: EventFlags) -> Vec<&'static str> {
    [
        (EventFlags::AUTHENTICATION, "authentication"),
        (EventFlags::PERMISSION_CHANGE, "permission_change"),
        (EventFlags::LOGGING_TAMPERING, "logging_tampering"),
        (EventFlags::NETWORK_EXPOSURE, "network_exposure"),
        (EventFlags::CREDENTIAL_CREATION, "credential_creation"),
        (EventFlags::FAILED, "failed"),
        (EventFlags::DENIED, "denied"),
    ]
    .into_iter()
    .filter(|(flag, _)| f.contains(*flag))
    .map(|(_, name)| name)
    .collect()
}

fn event_category_name(c: EventCategory) -> &'static str {
    match c {
        EventCategory::Management => "management",
        EventCategory::Data => "data",
        EventCategory::Insight => "insight",
        EventCategory::NetworkActivity => "network_activity",
        EventCategory::Other => "other",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Denied => "denied",
    }
}

fn source_kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Ip => "ip",
        SourceKind::Service => "service",
        SourceKind::AwsInternal => "aws_internal",
        SourceKind::None => "none",
        SourceKind::Other => "other",
    }
}

#[derive(Serialize)]
struct PrincipalOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_issuer_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_authenticated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<&'a str>,
}

impl<'a> From<&'a Principal> for PrincipalOut<'a> {
    fn from(p: &'a Principal) -> Self {
        PrincipalOut {
            identity_type: p.identity_type.as_deref(),
            principal_id: p.principal_id.as_deref(),
            arn: p.arn.as_deref(),
            account_id: p.account_id.as_deref(),
            user_name: p.user_name.as_deref(),
            access_key_id: p.access_key_id.as_deref(),
            session_issuer_arn: p.session_issuer_arn.as_deref(),
            mfa_authenticated: p.mfa_authenticated,
            invoked_by: p.invoked_by.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct TlsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher_suite: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_provided_host_header: Option<&'a str>,
}

impl<'a> From<&'a TlsDetails> for TlsOut<'a> {
    fn from(t: &'a TlsDetails) -> Self {
        TlsOut {
            tls_version: t.tls_version.as_deref(),
            cipher_suite: t.cipher_suite.as_deref(),
            client_provided_host_header: t.client_provided_host_header.as_deref(),
        }
    }
}

/// When and how a log file reached trailwatch (the `run` path; `replay` has no such times).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The S3 object's last-modified time, ms since the Unix epoch.
    pub last_modified_ms: i64,
    /// When trailwatch read it.
    pub processed_at_ms: i64,
    /// Last-modified minus event time: how long CloudTrail took to deliver the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_delay_ms: Option<i64>,
    /// Processing time minus last-modified: how long trailwatch took to pick it up.
    pub processing_delay_ms: i64,
    /// Delivered later than the threshold (default 15 min, the delay AWS states as normal).
    pub delayed: bool,
}

impl<'a> Delivery<'a> {
    /// The delivery record of an event of `event_time_ms` in an object of `last_modified_ms`.
    pub fn new(
        bucket: &'a str,
        last_modified_ms: i64,
        processed_at_ms: i64,
        event_time_ms: Option<i64>,
        delayed_after_ms: i64,
    ) -> Self {
        let delivery_delay_ms = event_time_ms.map(|t| last_modified_ms - t);
        Delivery {
            bucket,
            last_modified_ms,
            processed_at_ms,
            delivery_delay_ms,
            processing_delay_ms: processed_at_ms - last_modified_ms,
            delayed: delivery_delay_ms.is_some_and(|d| d > delayed_after_ms),
        }
    }
}

/// Where an event came from.
#[derive(Serialize)]
pub struct Origin<'a> {
    /// The S3 key or local path of the file.
    pub key: &'a str,
    /// The record's position in the file.
    pub index: u32,
}

/// Appends the raw record as the `raw` member: embedded as JSON when it is valid JSON, as a
/// string otherwise. `out` ends with the line object's closing brace, which this replaces.
fn append_raw(out: &mut Vec<u8>, event: &Event) -> serde_json::Result<()> {
    let raw = event.raw.as_str();
    if raw.is_empty() {
        return Ok(());
    }
    // A record the plugin parsed without problems is valid JSON (serde_json validated it inside
    // the plugin); one with problems may not be, so only those are checked again here, with the
    // nesting limit a downstream JSON parser would have: a record too deep to parse is written
    // as a string rather than handed to every consumer as a nesting bomb.
    let valid = event.problems.is_empty() || serde_json::from_str::<serde_json::Value>(raw).is_ok();
    out.pop();
    out.extend_from_slice(b",\"raw\":");
    if !valid {
        serde_json::to_writer(&mut *out, raw)?;
    } else if memchr::memchr2(b'\n', b'\r', raw.as_bytes()).is_some() {
        // In valid JSON a newline can only be whitespace between tokens.
        out.extend(raw.bytes().map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
    } else {
        out.extend_from_slice(raw.as_bytes());
    }
    out.push(b'}');
    Ok(())
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_time_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_name: Option<&'a str>,
    service: &'a str,
    action: &'static str,
    metric: &'a str,
    flags: Vec<&'static str>,
    read_only: bool,
    read_only_derived: bool,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<PrincipalOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_address: Option<&'a str>,
    source_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    resources: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    problems: &'a [String],
    origin: Origin<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a Delivery<'a>>,
}

/// Appends one event as a JSON line to `out`.
pub fn write_event(out: &mut Vec<u8>, event: &Event, key: &str) -> serde_json::Result<()> {
    write_event_with(out, event, key, None)
}

/// Appends one event as a JSON line to `out`, with its delivery times when known.
pub fn write_event_with(
    out: &mut Vec<u8>,
    event: &Event,
    key: &str,
    delivery: Option<&Delivery<'_>>,
) -> serde_json::Result<()> {
    let line = Line {
        event_id: event.event_id.as_deref(),
        event_time: event.event_time.as_deref(),
        event_time_ms: event.event_time_ms,
        event_version: event.event_version.as_deref(),
        event_source: event.event_source.as_deref(),
        event_name: event.event_name.as_deref(),
        service: &event.category.service,
        action: action_name(event.category.action),
        metric: &event.category.metric,
        flags: flag_names(event.category.flags),
        read_only: event.read_only,
        read_only_derived: event.read_only_derived,
        event_category: event_category_name(event.event_category),
        event_type: event.event_type.as_deref(),
        region: event.region.as_deref(),
        recipient_account_id: event.recipient_account_id.as_deref(),
        principal: event.principal.as_ref().map(PrincipalOut::from),
        source_address: event.source_address.as_deref(),
        source_kind: source_kind_name(event.source_kind),
        user_agent: event.user_agent.as_deref(),
        error_code: event.error_code.as_deref(),
        error_message: event.error_message.as_deref(),
        outcome: outcome_name(event.outcome),
        request_id: event.request_id.as_deref(),
        shared_event_id: event.shared_event_id.as_deref(),
        resources: &event.resources,
        tls: event.tls.as_ref().map(TlsOut::from),
        problems: &event.problems,
        origin: Origin {
            key,
            index: event.index,
        },
        delivery,
    };
    serde_json::to_writer(&mut *out, &line)?;
    append_raw(out, event)?;
    out.push(b'\n');
    Ok(())
}
