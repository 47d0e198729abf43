//! One JSON object per event per line: the normalized fields, where the event came from, and
//! the raw CloudTrail record.
//!
//! The schema is documented in the README ("Event schema"). Absent values are left out rather
//! than written as `null`. The raw record is embedded as JSON as it was written; newlines in its
//! whitespace become spaces so that each event stays on one line.

use serde::Serialize;

use super::names::{action_name, event_category_name, flag_names, outcome_name, source_kind_name};
use crate::runtime::bindings::types::{Event, Principal, TlsDetails};

/// Appends `text` as a JSON string. Most texts need no escaping and are copied as they are;
/// the rest go through serde_json's escaping, so the output is the same either way.
fn push_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` holds a quote, a backslash or a control character, eight bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(LOW) & !x & HIGH;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        // A byte below 0x20, or equal to '"' or '\\'.
        let control = w.wrapping_sub(LOW * 0x20) & !w & HIGH;
        if control | zero_in(w ^ (LOW * u64::from(b'"'))) | zero_in(w ^ (LOW * u64::from(b'\\'))) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Writes one JSON object member by member, leaving out absent values.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, key: &str, value: &str) {
        push_str(self.key(key), value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.bool(key, value);
        }
    }

    fn int(&mut self, key: &str, value: impl itoa::Integer) {
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value);
        self.key(key).extend_from_slice(text.as_bytes());
    }

    fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        let out = self.key(key);
        out.push(b'[');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, value);
        }
        out.push(b']');
    }

    fn object(&mut self, key: &str) -> Object<'_> {
        Object::start(self.key(key))
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn write_principal(p: &Principal, mut o: Object<'_>) {
    o.opt_str("identity_type", p.identity_type.as_deref());
    o.opt_str("principal_id", p.principal_id.as_deref());
    o.opt_str("arn", p.arn.as_deref());
    o.opt_str("account_id", p.account_id.as_deref());
    o.opt_str("user_name", p.user_name.as_deref());
    o.opt_str("access_key_id", p.access_key_id.as_deref());
    o.opt_str("session_issuer_arn", p.session_issuer_arn.as_deref());
    o.opt_bool("mfa_authenticated", p.mfa_authenticated);
    o.opt_str("invoked_by", p.invoked_by.as_deref());
    o.end();
}

fn write_tls(t: &TlsDetails, mut o: Object<'_>) {
    o.opt_str("tls_version", t.tls_version.as_deref());
    o.opt_str("cipher_suite", t.cipher_suite.as_deref());
    o.opt_str("client_provided_host_header", t.client_provided_host_header.as_deref());
    o.end();
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

/// The version of the event document (`schema/event.schema.json`); it changes only when a
/// member is removed, renamed or changes meaning (new optional members keep it).
pub const SCHEMA_VERSION: u32 = 1;

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
    out.reserve(event.raw.len() + 1024);
    let mut o = Object::start(out);
    o.str("kind", "event");
    o.int("schema_version", SCHEMA_VERSION);
    o.opt_str("event_id", event.event_id.as_deref());
    o.opt_str("event_time", event.event_time.as_deref());
    if let Some(ms) = event.event_time_ms {
        o.int("event_time_ms", ms);
    }
    o.opt_str("event_version", event.event_version.as_deref());
    o.opt_str("event_source", event.event_source.as_deref());
    o.opt_str("event_name", event.event_name.as_deref());
    o.str("service", &event.category.service);
    o.str("action", action_name(event.category.action));
    o.str("metric", &event.category.metric);
    o.strs("flags", flag_names(event.category.flags));
    o.bool("read_only", event.read_only);
    o.bool("read_only_derived", event.read_only_derived);
    o.str("event_category", event_category_name(event.event_category));
    o.opt_str("event_type", event.event_type.as_deref());
    o.opt_str("region", event.region.as_deref());
    o.opt_str("recipient_account_id", event.recipient_account_id.as_deref());
    if let Some(p) = &event.principal {
        write_principal(p, o.object("principal"));
    }
    o.opt_str("source_address", event.source_address.as_deref());
    o.str("source_kind", source_kind_name(event.source_kind));
    o.opt_str("user_agent", event.user_agent.as_deref());
    o.opt_str("error_code", event.error_code.as_deref());
    o.opt_str("error_message", event.error_message.as_deref());
    o.str("outcome", outcome_name(event.outcome));
    o.opt_str("request_id", event.request_id.as_deref());
    o.opt_str("shared_event_id", event.shared_event_id.as_deref());
    if !event.resources.is_empty() {
        o.strs("resources", event.resources.iter().map(String::as_str));
    }
    if let Some(t) = &event.tls {
        write_tls(t, o.object("tls"));
    }
    if !event.problems.is_empty() {
        o.strs("problems", event.problems.iter().map(String::as_str));
    }
    let mut origin = o.object("origin");
    origin.str("key", key);
    origin.int("index", event.index);
    origin.end();
    if let Some(d) = delivery {
        serde_json::to_writer(o.key("delivery"), d)?;
    }
    o.end();
    append_raw(out, event)?;
    out.push(b'\n');
    Ok(())
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
            flags: flag_names(event.category.flags).collect(),
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
        super::append_raw(out, event)?;
        out.push(b'\n');
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
                write_event_with(&mut ours, &e, "k\"ey", delivery).unwrap();
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
