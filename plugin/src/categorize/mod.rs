//! Categorization of CloudTrail events into metrics by AWS service and action type.
//!
//! `categorize(&Input) -> Category` names every event `aws.<service>.<action>` and raises the
//! cross-cutting flags a security team filters on. It is pure and runs on the hot path, so the
//! only allocations are the `service` and `metric` strings of the result.
//!
//! # Layout
//! - [`service`]: the service segment, derived from `eventSource`.
//! - [`ec2`], [`vpc`], [`iam`], [`s3`], [`lambda`]: complete tables of the write APIs of those
//!   services (the VPC table takes the network APIs out of EC2).
//! - [`rules`]: the verb-prefix rules for every other API.
//! - [`crosscut`]: authentication, credential and permission events of other services.
//! - [`logging`]: logging and monitoring changes of every service, and which are tampering.
//! - [`exposure`]: requests that open a resource or network to the world, found by inspecting
//!   request parameters with [`params`] and [`policy`].
//! - [`outcome`]: the `failed` and `denied` flags.
//! - [`table`]: lookups in the sorted static tables.
//!
//! # Precedence
//! An event may show several properties at once; the primary action is the first that applies:
//! authentication > logging_change > network_exposure > permissions > credential_creation >
//! data_read/data_write > create/modify/delete/read > other. `failed` and `denied` never change it.
//! `CATEGORIES.md` next to this file documents the scheme for users.

mod crosscut;
mod ec2;
mod exposure;
mod iam;
mod lambda;
mod logging;
mod outcome;
mod params;
mod policy;
mod rules;
mod s3;
mod service;
mod table;
mod vpc;

#[cfg(test)]
mod tests;

use crosscut::Meaning;

/// The primary action type of an event; its `as_str()` is the last segment of the metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Create,
    Modify,
    Delete,
    Permissions,
    Authentication,
    LoggingChange,
    NetworkExposure,
    CredentialCreation,
    DataRead,
    DataWrite,
    Insight,
    Other,
}

impl Action {
    /// The stable snake_case name used as the last segment of the metric name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Modify => "modify",
            Action::Delete => "delete",
            Action::Permissions => "permissions",
            Action::Authentication => "authentication",
            Action::LoggingChange => "logging_change",
            Action::NetworkExposure => "network_exposure",
            Action::CredentialCreation => "credential_creation",
            Action::DataRead => "data_read",
            Action::DataWrite => "data_write",
            Action::Insight => "insight",
            Action::Other => "other",
        }
    }

    /// Position in the precedence order; lower wins when an event has several properties.
    const fn rank(self) -> u8 {
        match self {
            Action::Insight | Action::Authentication => 0,
            Action::LoggingChange => 1,
            Action::NetworkExposure => 2,
            Action::Permissions => 3,
            Action::CredentialCreation => 4,
            Action::DataRead | Action::DataWrite => 5,
            Action::Create | Action::Modify | Action::Delete | Action::Read => 6,
            Action::Other => 7,
        }
    }

    /// The data-event flavour of a verb-derived action: reads become `DataRead`, writes
    /// `DataWrite`; anything more specific is kept.
    const fn as_data(self) -> Action {
        match self {
            Action::Read => Action::DataRead,
            Action::Create | Action::Modify | Action::Delete => Action::DataWrite,
            other => other,
        }
    }
}

/// Cross-cutting properties a security team filters on, independent of the primary action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub authentication: bool,
    pub permission_change: bool,
    pub logging_tampering: bool,
    pub network_exposure: bool,
    pub credential_creation: bool,
    pub failed: bool,
    pub denied: bool,
}

/// What categorization looks at; all borrowed from the parsed record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    pub event_source: Option<&'a str>,
    pub event_name: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub event_category: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub read_only: Option<bool>,
    pub request_parameters: Option<&'a str>,
}

/// The result: a stable metric name `aws.<service>.<action>` plus flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub service: String,
    pub action: Action,
    pub metric: String,
    pub flags: Flags,
}

/// Categorizes one event; never fails and never leaves the action blank.
pub fn categorize(input: &Input) -> Category {
    let mut flags = outcome::flags(present(input.error_code));
    let (service, action) = if is_insight(input) {
        (
            service::from_source(present(input.event_source), "cloudtrail"),
            Action::Insight,
        )
    } else {
        let mut service = service::from_source(present(input.event_source), "unknown");
        let action = match present(input.event_name) {
            Some(name) => classify(&mut service, name, input, &mut flags),
            None => Action::Other,
        };
        (service, action)
    };
    let metric = metric_name(&service, action);
    Category {
        service,
        action,
        metric,
        flags,
    }
}

/// Decides the primary action of a named event and raises its cross-cutting flags.
///
/// `service` is rewritten to `vpc` for the network APIs that EC2 serves.
fn classify(service: &mut String, raw_name: &str, input: &Input, flags: &mut Flags) -> Action {
    let name = if service == "lambda" {
        lambda::strip_version(raw_name)
    } else {
        raw_name
    };
    let params = present(input.request_parameters);

    let from_table = match service.as_str() {
        "ec2" if vpc::owns(name) => {
            // Reuses the buffer: "ec2" and "vpc" have the same length.
            service.clear();
            service.push_str("vpc");
            vpc::write_action(name)
        }
        "ec2" => ec2::write_action(name),
        "iam" => iam::write_action(name),
        "lambda" => lambda::write_action(name),
        "s3" => s3::action(name),
        _ => None,
    };
    let mut base = from_table.unwrap_or_else(|| rules::classify(name, input.read_only));
    if is_data_event(input) {
        base = base.as_data();
    }

    let mut logging_change = base == Action::LoggingChange;
    flags.authentication |= base == Action::Authentication;
    flags.permission_change |= base == Action::Permissions;
    flags.credential_creation |= base == Action::CredentialCreation;
    flags.network_exposure |= base == Action::NetworkExposure;

    match crosscut::meaning(service, name, params) {
        Some(Meaning::Authentication) => flags.authentication = true,
        Some(Meaning::CredentialCreation) => flags.credential_creation = true,
        Some(Meaning::Permissions) => flags.permission_change = true,
        None => {}
    }
    if let Some(tampering) = logging::change(service, name, params) {
        logging_change = true;
        flags.logging_tampering |= tampering;
    }
    if !matches!(base, Action::Read | Action::DataRead) && exposure::exposes(service, name, params) {
        flags.network_exposure = true;
    }

    let raised = [
        (flags.authentication, Action::Authentication),
        (logging_change, Action::LoggingChange),
        (flags.network_exposure, Action::NetworkExposure),
        (flags.permission_change, Action::Permissions),
        (flags.credential_creation, Action::CredentialCreation),
    ];
    raised
        .into_iter()
        .filter(|&(on, _)| on)
        .map(|(_, action)| action)
        .fold(
            base,
            |best, action| {
                if action.rank() < best.rank() {
                    action
                } else {
                    best
                }
            },
        )
}

/// `aws.<service>.<action>`, built with a single allocation.
fn metric_name(service: &str, action: Action) -> String {
    let action = action.as_str();
    let mut metric = String::with_capacity("aws..".len() + service.len() + action.len());
    metric.push_str("aws.");
    metric.push_str(service);
    metric.push('.');
    metric.push_str(action);
    metric
}

/// CloudTrail Insights events report unusual API activity rather than an API call.
fn is_insight(input: &Input) -> bool {
    present(input.event_type) == Some("AwsCloudTrailInsight")
        || present(input.event_category).is_some_and(|c| c.eq_ignore_ascii_case("Insight"))
}

/// Data events (object reads and writes, function invocations, item reads) are counted apart
/// from management events because their volume and meaning differ.
fn is_data_event(input: &Input) -> bool {
    present(input.event_category).is_some_and(|c| c.eq_ignore_ascii_case("Data"))
}

/// A field's text, or `None` when it is absent, empty or the literal `null` some exports write.
fn present(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|text| !text.is_empty() && *text != "null")
}
