//! Turning a tolerant `Record` into a normalized, categorized `Event`.
//!
//! Every field that can be used is used; everything that was wrong is named in `problems` with
//! its JSON path, so a record with a bad field is flagged rather than dropped.

use std::borrow::Cow;

use crate::categorize::{self, Action};
use crate::model::{Event, EventCategory, Outcome, Principal, SourceKind, Text, Tls};
use crate::record::{Many, Record, Scalar, Shape};

/// Collects what was wrong with a record.
struct Problems(Vec<String>);

impl Problems {
    fn note(&mut self, text: String) {
        self.0.push(text);
    }

    /// A field that should hold text. Numbers and booleans are kept as text and noted.
    fn text<'a>(&mut self, path: &str, value: Scalar<'a>) -> Option<Text<'a>> {
        match value {
            Scalar::Str(s) if s.is_empty() => None,
            Scalar::Str(s) => Some(s),
            Scalar::Absent | Scalar::Null => None,
            Scalar::Num(n) => {
                self.note(format!(
                    "{path}: expected a string, found the number {n} (kept as text)"
                ));
                Some(Cow::Owned(n))
            }
            Scalar::Bool(b) => {
                self.note(format!("{path}: expected a string, found {b} (kept as text)"));
                Some(Cow::Owned(b.to_string()))
            }
            other => {
                self.note(format!("{path}: expected a string, found {} (ignored)", other.kind()));
                None
            }
        }
    }

    /// A field that should hold a boolean. `"true"`/`"True"`/`"false"` are read and noted.
    fn boolean(&mut self, path: &str, value: Scalar<'_>) -> Option<bool> {
        match value {
            Scalar::Bool(b) => Some(b),
            Scalar::Absent | Scalar::Null => None,
            Scalar::Str(s) => {
                let parsed = parse_bool_text(&s);
                match parsed {
                    Some(b) => self.note(format!(
                        "{path}: expected a boolean, found the string {s:?} (read as {b})"
                    )),
                    None => self.note(format!("{path}: expected a boolean, found the string {s:?} (ignored)")),
                }
                parsed
            }
            other => {
                self.note(format!("{path}: expected a boolean, found {} (ignored)", other.kind()));
                None
            }
        }
    }

    fn shape(&mut self, path: &str, shape: Shape) -> bool {
        match shape {
            Shape::Object => true,
            Shape::Absent | Shape::Null => false,
            Shape::Wrong(kind) => {
                self.note(format!("{path}: expected an object, found {kind} (ignored)"));
                false
            }
        }
    }
}

fn parse_bool_text(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// A record that could not be read as an object at all, flagged with why.
pub fn flagged(index: u32, raw: Text<'_>, problem: String) -> Event<'_> {
    let category = categorize::categorize(&categorize::Input::default());
    Event {
        index,
        event_id: None,
        event_time_ms: None,
        event_time: None,
        event_version: None,
        event_source: None,
        event_name: None,
        read_only: false,
        read_only_derived: true,
        category,
        event_category: EventCategory::Other,
        event_type: None,
        region: None,
        recipient_account_id: None,
        principal: None,
        source_address: None,
        source_kind: SourceKind::None,
        user_agent: None,
        error_code: None,
        error_message: None,
        outcome: Outcome::Success,
        request_id: None,
        shared_event_id: None,
        resources: Vec::new(),
        tls: None,
        problems: vec![problem],
        raw,
    }
}

/// Normalizes one parsed record. The record borrows from its JSON text, so the event's `raw` is
/// left empty for the caller to fill with that text.
pub fn normalize(index: u32, record: Record<'_>) -> Event<'_> {
    if let Shape::Wrong(kind) = record.shape {
        return flagged(index, Cow::Borrowed(""), format!("record is {kind}, not an object"));
    }
    let mut p = Problems(Vec::new());

    let event_id = p.text("eventID", record.event_id);
    let event_time = p.text("eventTime", record.event_time);
    let event_version = p.text("eventVersion", record.event_version);
    let event_source = p.text("eventSource", record.event_source);
    let event_name = p.text("eventName", record.event_name);
    let event_type = p.text("eventType", record.event_type);
    let region = p.text("awsRegion", record.aws_region);
    let recipient_account_id = p.text("recipientAccountId", record.recipient_account_id);
    let source_address = p.text("sourceIPAddress", record.source_ip_address);
    let user_agent = p.text("userAgent", record.user_agent);
    let error_code = p.text("errorCode", record.error_code).filter(|c| c != "null");
    let error_message = p.text("errorMessage", record.error_message);
    let request_id = p.text("requestID", record.request_id);
    let shared_event_id = p.text("sharedEventID", record.shared_event_id);
    let given_read_only = p.boolean("readOnly", record.read_only);
    let category_text = p.text("eventCategory", record.event_category);

    let is_insight = event_type.as_deref() == Some("AwsCloudTrailInsight");
    if event_id.is_none() && event_name.is_none() && event_source.is_none() && event_time.is_none() && !is_insight {
        p.note("no CloudTrail fields: eventID, eventName, eventSource and eventTime are all missing".into());
    } else if event_id.is_none() {
        p.note("eventID: missing".into());
    }

    let event_time_ms = match &event_time {
        Some(t) => {
            let ms = crate::time::parse_epoch_ms(t);
            if ms.is_none() {
                p.note(format!("eventTime: not a timestamp: {t:?}"));
            }
            ms
        }
        None => {
            p.note("eventTime: missing".into());
            None
        }
    };

    let event_category = match category_text.as_deref() {
        None if is_insight => EventCategory::Insight,
        None => EventCategory::Management,
        Some(c) if c.eq_ignore_ascii_case("Management") => EventCategory::Management,
        Some(c) if c.eq_ignore_ascii_case("Data") => EventCategory::Data,
        Some(c) if c.eq_ignore_ascii_case("Insight") => EventCategory::Insight,
        Some(c) if c.eq_ignore_ascii_case("NetworkActivity") => EventCategory::NetworkActivity,
        Some(c) => {
            p.note(format!("eventCategory: unknown value {c:?}"));
            EventCategory::Other
        }
    };

    // Insight records name the API they are about inside insightDetails.
    let mut insight_source = None;
    let mut insight_name = None;
    if p.shape("insightDetails", record.insight_details.shape) {
        insight_source = p.text("insightDetails.eventSource", record.insight_details.event_source);
        insight_name = p.text("insightDetails.eventName", record.insight_details.event_name);
    }

    let request_parameters = record.request_parameters.map(|r| r.get()).filter(|r| *r != "null");
    let mut category = categorize::categorize(&categorize::Input {
        event_source: event_source.as_deref().or(insight_source.as_deref()),
        event_name: event_name.as_deref().or(insight_name.as_deref()),
        event_type: event_type.as_deref(),
        event_category: category_text.as_deref(),
        error_code: error_code.as_deref(),
        read_only: given_read_only,
        request_parameters,
    });

    let (read_only, read_only_derived) = match given_read_only {
        Some(v) => (v, false),
        None => (
            matches!(category.action, Action::Read | Action::DataRead | Action::Insight),
            true,
        ),
    };

    let console_login = event_name.as_deref() == Some("ConsoleLogin");
    let console_failure = console_login
        && record
            .response_elements
            .is_some_and(|r| crate::text::has(r.get(), "\"Failure\""));
    // A failed console sign-in has no errorCode; its failure is only in responseElements.
    if console_failure {
        category.flags.failed = true;
    }
    let outcome = if category.flags.denied {
        Outcome::Denied
    } else if error_code.is_some() || console_failure {
        Outcome::Failure
    } else {
        Outcome::Success
    };

    let mut console_mfa = None;
    if console_login && p.shape("additionalEventData", record.additional_event_data.shape) {
        console_mfa = p
            .text("additionalEventData.MFAUsed", record.additional_event_data.mfa_used)
            .and_then(|s| parse_bool_text(&s));
    }
    let principal = if p.shape("userIdentity", record.user_identity.shape) {
        Some(principal(record.user_identity, console_mfa, &mut p))
    } else {
        None
    };

    let source_kind = classify_source(source_address.as_deref());

    let mut resources = Vec::new();
    match record.resources {
        Many::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                // The paths are formatted only for a problem: most records list resources.
                match (item.shape, item.arn) {
                    (Shape::Object, Scalar::Str(arn)) if !arn.is_empty() => resources.push(arn),
                    (Shape::Object, arn) => {
                        if let Some(arn) = p.text(&format!("resources[{i}].ARN"), arn) {
                            resources.push(arn);
                        }
                    }
                    (shape, _) => {
                        p.shape(&format!("resources[{i}]"), shape);
                    }
                }
            }
        }
        Many::Absent => {}
        Many::Wrong(kind) => p.note(format!("resources: expected a list, found {kind} (ignored)")),
    }

    let tls = if p.shape("tlsDetails", record.tls_details.shape) {
        let t = record.tls_details;
        Some(Tls {
            tls_version: p.text("tlsDetails.tlsVersion", t.tls_version),
            cipher_suite: p.text("tlsDetails.cipherSuite", t.cipher_suite),
            client_provided_host_header: p.text("tlsDetails.clientProvidedHostHeader", t.host_header),
        })
    } else {
        None
    };

    Event {
        index,
        event_id,
        event_time_ms,
        event_time,
        event_version,
        event_source,
        event_name,
        category,
        read_only,
        read_only_derived,
        event_category,
        event_type,
        region,
        recipient_account_id,
        principal,
        source_address,
        source_kind,
        user_agent,
        error_code,
        error_message,
        outcome,
        request_id,
        shared_event_id,
        resources,
        tls,
        problems: p.0,
        raw: Cow::Borrowed(""),
    }
}

fn principal<'a>(u: crate::record::UserIdentity<'a>, console_mfa: Option<bool>, p: &mut Problems) -> Principal<'a> {
    let identity_type = p.text("userIdentity.type", u.identity_type);
    let arn = p.text("userIdentity.arn", u.arn);
    let mut session_issuer_arn = None;
    let mut mfa = None;
    if p.shape("userIdentity.sessionContext", u.session_context.shape) {
        let ctx = u.session_context;
        if p.shape("userIdentity.sessionContext.sessionIssuer", ctx.session_issuer.shape) {
            session_issuer_arn = p.text("userIdentity.sessionContext.sessionIssuer.arn", ctx.session_issuer.arn);
        }
        if p.shape("userIdentity.sessionContext.attributes", ctx.attributes.shape) {
            mfa = match ctx.attributes.mfa_authenticated {
                // CloudTrail writes this boolean as a string; that is not a problem.
                Scalar::Str(s) => parse_bool_text(&s),
                other => p.boolean("userIdentity.sessionContext.attributes.mfaAuthenticated", other),
            };
        }
    }
    let mut user_name = p.text("userIdentity.userName", u.user_name);
    if user_name.is_none() {
        // Assumed roles and federated users carry their session name only in the ARN.
        if let Some(a) = &arn {
            if crate::text::has(a, ":assumed-role/") || crate::text::has(a, ":federated-user/") {
                let last = |a: &str| a.rsplit('/').next().filter(|s| !s.is_empty()).map(|s| s.len());
                user_name = match a {
                    Cow::Borrowed(a) => last(a).map(|n| Cow::Borrowed(&a[a.len() - n..])),
                    Cow::Owned(a) => last(a).map(|n| Cow::Owned(a[a.len() - n..].to_owned())),
                };
            }
        }
    }
    Principal {
        identity_type,
        principal_id: p.text("userIdentity.principalId", u.principal_id),
        arn,
        account_id: p.text("userIdentity.accountId", u.account_id),
        user_name,
        access_key_id: p.text("userIdentity.accessKeyId", u.access_key_id),
        session_issuer_arn,
        mfa_authenticated: console_mfa.or(mfa),
        invoked_by: p.text("userIdentity.invokedBy", u.invoked_by),
    }
}

fn classify_source(source: Option<&str>) -> SourceKind {
    match source {
        None => SourceKind::None,
        Some("AWS Internal") => SourceKind::AwsInternal,
        Some(s) if s.parse::<std::net::IpAddr>().is_ok() => SourceKind::Ip,
        Some(s) if s.ends_with(".amazonaws.com") || s.ends_with(".amazonaws.com.cn") => SourceKind::Service,
        Some(_) => SourceKind::Other,
    }
}
