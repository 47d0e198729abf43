//! Categorization of CloudTrail events into metrics by AWS service and action type.
//!
//! `categorize(&Input) -> Category` names every event `aws.<service>.<action>` and raises the
//! cross-cutting flags a security team filters on. It is pure and runs on the hot path, so it
//! allocates only the `service` and `metric` strings of the result (and, rarely, a parse of a
//! request that carries a resource policy with a wildcard principal).
//!
//! # Layout
//! - `service`: the service segment, derived from `eventSource`.
//! - `ec2`, `vpc`, `iam`, `s3`, `lambda`: complete tables of the write APIs of those services
//!   (the VPC table takes the network APIs out of EC2).
//! - `kms`: KMS's cryptographic operations, the use of a key.
//! - `statement`: APIs that run a statement (PartiQL, SQL), read or write by the statement.
//! - `rules`: the verb-prefix rules for every other API.
//! - `crosscut`: authentication, credential and permission events of other services.
//! - `logging`: logging and monitoring changes of every service, and which are tampering.
//! - `exposure`: requests that open a resource or network to the world, found by inspecting
//!   request parameters with `params` and `policy`.
//! - `weakening`: protections of accounts and data turned off or weakened (a flag only).
//! - `outcome`: the `failed` and `denied` flags.
//! - `table`: lookups in the sorted static tables.
//!
//! # Precedence
//! An event may show several properties at once; the primary action is the first that applies:
//! authentication > logging_change > network_exposure > permissions > credential_creation >
//! data_read/data_write > create/modify/delete/read > other. `failed` and `denied` never change it.
//! The README ("Event categories") documents the scheme for users.

mod crosscut;
mod ec2;
mod exposure;
mod iam;
mod kms;
mod lambda;
mod logging;
mod outcome;
mod params;
mod policy;
mod rules;
mod s3;
mod service;
mod statement;
mod table;
mod vpc;
mod weakening;

#[cfg(test)]
mod tests;

use crosscut::Meaning;

/// The primary action type of an event; its `as_str()` is the last segment of the metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Reads configuration or metadata without changing it.
    Read,
    /// Creates a resource, or starts something new (an instance, a job, an export).
    Create,
    /// Changes an existing resource, its state, attachments or tags.
    Modify,
    /// Deletes or releases a resource.
    Delete,
    /// Changes who may do what: policies, grants, ACLs, group membership, sharing.
    Permissions,
    /// Signs in or obtains session credentials.
    Authentication,
    /// Changes logging or security monitoring (tampering is a flag on top).
    LoggingChange,
    /// Opens a resource or a network to the world.
    NetworkExposure,
    /// Creates a long-lived secret to sign in with (access key, password, key pair).
    CredentialCreation,
    /// A data event that reads (an object, an item).
    DataRead,
    /// A data event that writes (an object, an item, an invocation).
    DataWrite,
    /// A CloudTrail Insights event: unusual API activity.
    Insight,
    /// An event whose action cannot be told: no name, or an unknown verb.
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
    /// A sign-in or a trade of identity for session credentials.
    pub authentication: bool,
    /// A change of who may do what.
    pub permission_change: bool,
    /// Logging or monitoring stopped, deleted, narrowed, redirected or suppressed.
    pub logging_tampering: bool,
    /// A resource or network opened to the world.
    pub network_exposure: bool,
    /// A long-lived secret created to sign in with.
    pub credential_creation: bool,
    /// A protection of accounts or data turned off or weakened.
    pub protection_weakened: bool,
    /// The call returned an error code.
    pub failed: bool,
    /// The call was refused by authentication or authorization.
    pub denied: bool,
}

/// What categorization looks at; all borrowed from the parsed record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    /// `eventSource`, e.g. "ec2.amazonaws.com".
    pub event_source: Option<&'a str>,
    /// `eventName`, e.g. "RunInstances".
    pub event_name: Option<&'a str>,
    /// `eventType`, e.g. "AwsApiCall" or "AwsCloudTrailInsight".
    pub event_type: Option<&'a str>,
    /// `eventCategory`: "Management", "Data", "Insight", ...
    pub event_category: Option<&'a str>,
    /// `errorCode`, if the call failed.
    pub error_code: Option<&'a str>,
    /// `readOnly`, when the record states it.
    pub read_only: Option<bool>,
    /// The raw JSON text of `requestParameters`.
    pub request_parameters: Option<&'a str>,
}

/// The result: a stable metric name `aws.<service>.<action>` plus flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// The service segment: lowercase `[a-z0-9_]`, "vpc" for EC2's network APIs, or "unknown".
    pub service: String,
    /// The primary action, chosen by precedence.
    pub action: Action,
    /// `aws.<service>.<action>`.
    pub metric: String,
    /// Every cross-cutting property the event shows.
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
        // A sign-in is one by its record, whatever the source says (some exports drop it).
        let fallback = if is_sign_in(input) { "signin" } else { "unknown" };
        let mut service = service::from_source(present(input.event_source), fallback);
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
        "kms" => kms::action(name),
        _ => None,
    }
    .or_else(|| statement::action(service, name, params));
    let by_name = from_table.unwrap_or_else(|| rules::classify(name, input.read_only));
    let base = if is_data_event(input) {
        by_name.as_data()
    } else {
        by_name
    };

    let mut logging_change = base == Action::LoggingChange;
    flags.authentication |= base == Action::Authentication || is_sign_in(input);
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
    flags.network_exposure |= exposure::exposes(service, name, base, params);
    flags.protection_weakened |= weakening::weakens(service, name, params);

    // The raised properties in precedence order: the first one beats the base action if it
    // ranks higher, and nothing after it can.
    let raised = [
        (flags.authentication, Action::Authentication),
        (logging_change, Action::LoggingChange),
        (flags.network_exposure, Action::NetworkExposure),
        (flags.permission_change, Action::Permissions),
        (flags.credential_creation, Action::CredentialCreation),
    ];
    match raised.into_iter().find(|&(on, _)| on) {
        Some((_, action)) if action.rank() < base.rank() => action,
        _ => base,
    }
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
    present(input.event_type).is_some_and(|t| t.eq_ignore_ascii_case("AwsCloudTrailInsight"))
        || present(input.event_category).is_some_and(|c| c.eq_ignore_ascii_case("Insight"))
}

/// A console sign-in record: its type says so (`AwsConsoleSignIn`: logins, role switches,
/// password changes at sign-in), or it is a `ConsoleLogin` whose type was lost.
fn is_sign_in(input: &Input) -> bool {
    present(input.event_type).is_some_and(|t| t.eq_ignore_ascii_case("AwsConsoleSignIn"))
        || present(input.event_name) == Some("ConsoleLogin")
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
