//! One JSON object per event per line: the normalized fields, where the event came from, and
//! the raw CloudTrail record.
//!
//! The schema is documented in the README ("Event schema"). Absent values are left out rather
//! than written as `null`. The raw record is embedded as JSON as it was written; newlines in its
//! whitespace become spaces so that each event stays on one line.

use serde::Serialize;
use trailwatch_document as document;

use super::names::{action_name, event_category_name, flag_bits, outcome_name, source_kind_name};
use crate::runtime::bindings::types::{Event, Principal, TlsDetails};

fn principal(p: &Principal) -> document::Principal<'_> {
    document::Principal {
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

fn tls(t: &TlsDetails) -> document::Tls<'_> {
    document::Tls {
        tls_version: t.tls_version.as_deref(),
        cipher_suite: t.cipher_suite.as_deref(),
        client_provided_host_header: t.client_provided_host_header.as_deref(),
    }
}

/// The document's view of a typed event.
fn view(event: &Event) -> document::Event<'_, String> {
    document::Event {
        index: event.index,
        event_id: event.event_id.as_deref(),
        event_time: event.event_time.as_deref(),
        event_time_ms: event.event_time_ms,
        event_version: event.event_version.as_deref(),
        event_source: event.event_source.as_deref(),
        event_name: event.event_name.as_deref(),
        service: &event.category.service,
        action: action_name(event.category.action),
        metric: &event.category.metric,
        flags: flag_bits(event.category.flags),
        read_only: event.read_only,
        read_only_derived: event.read_only_derived,
        event_category: event_category_name(event.event_category),
        event_type: event.event_type.as_deref(),
        region: event.region.as_deref(),
        recipient_account_id: event.recipient_account_id.as_deref(),
        principal: event.principal.as_ref().map(principal),
        source_address: event.source_address.as_deref(),
        source_kind: source_kind_name(event.source_kind),
        user_agent: event.user_agent.as_deref(),
        error_code: event.error_code.as_deref(),
        error_message: event.error_message.as_deref(),
        outcome: outcome_name(event.outcome),
        request_id: event.request_id.as_deref(),
        shared_event_id: event.shared_event_id.as_deref(),
        resources: &event.resources,
        tls: event.tls.as_ref().map(tls),
        problems: &event.problems,
        raw: &event.raw,
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

pub use document::SCHEMA_VERSION;

use crate::networks::SourceNetwork;

/// Appends one event as a JSON line to `out`.
pub fn write_event(out: &mut Vec<u8>, event: &Event, key: &str) -> serde_json::Result<()> {
    write_event_with(out, event, key, None, None).map(|_| ())
}

/// Appends one event as a JSON line to `out`, with its delivery times and its source's network
/// when known. Returns where its head ends in `out` (before its `raw` member), where further
/// members may be added.
pub fn write_event_with(
    out: &mut Vec<u8>,
    event: &Event,
    key: &str,
    delivery: Option<&Delivery<'_>>,
    network: Option<&SourceNetwork>,
) -> serde_json::Result<usize> {
    document::write_head(out, &view(event), key);
    if let Some(d) = delivery {
        write_delivery(out, d)?;
    }
    if let Some(n) = network {
        write_network(out, n)?;
    }
    let head = out.len();
    document::write_tail(out, &event.raw, !event.problems.is_empty());
    Ok(head)
}

/// Appends the `source_network` member to a document's head.
pub fn write_network(out: &mut Vec<u8>, network: &SourceNetwork) -> serde_json::Result<()> {
    out.extend_from_slice(b",\"source_network\":");
    serde_json::to_writer(&mut *out, network)
}

/// The source address of a rendered document's head, when its `source_kind` is `ip`.
pub fn document_ip_source(head: &[u8]) -> Option<&str> {
    const MEMBER: &[u8] = b",\"source_address\":\"";
    let at = memchr::memmem::find(head, MEMBER)? + MEMBER.len();
    let rest = &head[at..];
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' || !rest[end..].starts_with(b"\",\"source_kind\":\"ip\"") {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// Appends the `delivery` member to a document's head.
pub fn write_delivery(out: &mut Vec<u8>, delivery: &Delivery<'_>) -> serde_json::Result<()> {
    out.extend_from_slice(b",\"delivery\":");
    serde_json::to_writer(&mut *out, delivery)
}

#[cfg(test)]
mod tests {
    //! The writer is checked byte for byte against serde_json serializing the same line from a
    //! derived `Serialize` (the way it was first written).

    use serde::Serialize;

    use super::*;
    use crate::runtime::bindings::types::{ActionType, Category, EventCategory, EventFlags, Outcome, SourceKind};

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

    #[derive(Serialize)]
    struct Line<'a> {
        kind: &'static str,
        schema_version: u32,
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

    /// Where an event came from.
    #[derive(Serialize)]
    struct Origin<'a> {
        key: &'a str,
        index: u32,
    }

    fn reference(
        out: &mut Vec<u8>,
        event: &Event,
        key: &str,
        delivery: Option<&Delivery<'_>>,
    ) -> serde_json::Result<()> {
        let line = Line {
            kind: "event",
            schema_version: SCHEMA_VERSION,
            event_id: event.event_id.as_deref(),
            event_time: event.event_time.as_deref(),
            event_time_ms: event.event_time_ms,
            event_version: event.event_version.as_deref(),
            event_source: event.event_source.as_deref(),
            event_name: event.event_name.as_deref(),
            service: &event.category.service,
            action: action_name(event.category.action),
            metric: &event.category.metric,
            flags: document::flag_names(flag_bits(event.category.flags)).collect(),
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
        out.pop();
        document::write_tail(out, &event.raw, !event.problems.is_empty());
        Ok(())
    }

    fn text(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn event(odd: &str) -> Event {
        Event {
            index: 7,
            event_id: text("e-1"),
            event_time_ms: Some(-1_700_000_000_123),
            event_time: text("2024-01-01T00:00:00Z"),
            event_version: text("1.08"),
            event_source: text("iam.amazonaws.com"),
            event_name: text(odd),
            category: Category {
                service: "iam".into(),
                action: ActionType::Permissions,
                metric: "aws.iam.permissions".into(),
                flags: EventFlags::PERMISSION_CHANGE | EventFlags::FAILED | EventFlags::DENIED,
            },
            read_only: false,
            read_only_derived: true,
            event_category: EventCategory::Management,
            event_type: text("AwsApiCall"),
            region: None,
            recipient_account_id: text("123456789012"),
            principal: Some(Principal {
                identity_type: text("AssumedRole"),
                principal_id: None,
                arn: text(odd),
                account_id: text("123456789012"),
                user_name: text("s\u{e9}ssion"),
                access_key_id: None,
                session_issuer_arn: text("arn:aws:iam::123456789012:role/r"),
                mfa_authenticated: Some(false),
                invoked_by: None,
            }),
            source_address: text("203.0.113.9"),
            source_kind: SourceKind::Ip,
            user_agent: text(odd),
            error_code: text("AccessDenied"),
            error_message: text(odd),
            outcome: Outcome::Denied,
            request_id: None,
            shared_event_id: None,
            resources: vec!["arn:a".into(), odd.into()],
            tls: Some(TlsDetails {
                tls_version: text("TLSv1.3"),
                cipher_suite: None,
                client_provided_host_header: text(odd),
            }),
            problems: vec![odd.into()],
            raw: format!("{{\"eventName\":{}}}", serde_json::to_string(odd).unwrap()),
        }
    }

    #[test]
    fn lines_match_serde_json_byte_for_byte() {
        let odd = [
            "plain",
            "",
            "quote \" and backslash \\ here",
            "control \u{1} \u{1f} \n \r \t \u{8} \u{c} \u{7f}",
            "caf\u{e9} \u{2603} \u{1F600}",
            "exactly8",
            "long text past several eight-byte words with a quote at the end\"",
        ];
        let delivery = Delivery::new(
            "bucket \"b\"",
            1_700_000_100_000,
            1_700_000_200_000,
            Some(1_700_000_000_000),
            900_000,
        );
        for text in odd {
            let mut e = event(text);
            for delivery in [None, Some(&delivery)] {
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                write_event_with(&mut ours, &e, "k\"ey", delivery, None).unwrap();
                reference(&mut theirs, &e, "k\"ey", delivery).unwrap();
                assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
            }
            // And with every optional part absent.
            e.principal = None;
            e.tls = None;
            e.resources.clear();
            e.problems.clear();
            e.event_time_ms = None;
            e.category.flags = EventFlags::empty();
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            write_event(&mut ours, &e, "k").unwrap();
            reference(&mut theirs, &e, "k", None).unwrap();
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
            let line: serde_json::Value = serde_json::from_slice(&ours).unwrap();
            assert_eq!(line["event_name"], text);
        }
    }
}
