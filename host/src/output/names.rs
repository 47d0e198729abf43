//! The stable names the output documents use for the contract's enums and flags, defined once
//! for every sink, the summary and the metrics.

use crate::runtime::bindings::types::{ActionType, EventCategory, EventFlags, FileKind, Outcome, SourceKind};

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

/// The flags as the document numbers them (bit `i` is `trailwatch_document::FLAG_NAMES[i]`).
pub fn flag_bits(f: EventFlags) -> u8 {
    [
        EventFlags::AUTHENTICATION,
        EventFlags::PERMISSION_CHANGE,
        EventFlags::LOGGING_TAMPERING,
        EventFlags::NETWORK_EXPOSURE,
        EventFlags::CREDENTIAL_CREATION,
        EventFlags::PROTECTION_WEAKENED,
        EventFlags::FAILED,
        EventFlags::DENIED,
    ]
    .into_iter()
    .enumerate()
    .filter(|(_, flag)| f.contains(*flag))
    .fold(0, |bits, (i, _)| bits | 1 << i)
}

pub fn event_category_name(c: EventCategory) -> &'static str {
    match c {
        EventCategory::Management => "management",
        EventCategory::Data => "data",
        EventCategory::Insight => "insight",
        EventCategory::NetworkActivity => "network_activity",
        EventCategory::Other => "other",
    }
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Denied => "denied",
    }
}

pub fn source_kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Ip => "ip",
        SourceKind::Service => "service",
        SourceKind::AwsInternal => "aws_internal",
        SourceKind::None => "none",
        SourceKind::Other => "other",
    }
}

/// Stable name of a file kind.
pub fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Log => "log",
        FileKind::Insight => "insight",
        FileKind::Digest => "digest",
    }
}
