//! What scoring needs of each event (`scoring.observation`), from a typed event or from the
//! head of a document the plugin rendered, with the host's enrichment.

use std::borrow::Cow;

use trailwatch_document::head::{self, Text};

use crate::networks::{Scope, SourceNetwork};
use crate::runtime::bindings::documents::Summary;
use crate::runtime::bindings::scoring::{Network, Observation};
use crate::runtime::bindings::types::{ActionType, Category, Event, Principal, SourceKind};
use crate::runtime::scoring::Compact;

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Public => "public",
        Scope::Private => "private",
        Scope::Loopback => "loopback",
        Scope::LinkLocal => "link_local",
        Scope::Reserved => "reserved",
    }
}

/// The contract's record of a source network.
pub fn network(n: Option<&SourceNetwork>) -> Option<Network> {
    n.map(|n| Network {
        scope: scope_name(n.scope).to_owned(),
        asn: n.asn,
        as_org: n.as_org.clone(),
        country: n.country.clone(),
    })
}

/// The index plus one of `n` in the networks of `compact`, added when it is not there yet (a
/// batch's sources share a few networks).
pub fn network_index(compact: &mut Compact, n: &SourceNetwork) -> u32 {
    let scope = scope_name(n.scope);
    let same = |m: &Network| m.scope == scope && m.asn == n.asn && m.as_org == n.as_org && m.country == n.country;
    match compact.networks.iter().position(same) {
        Some(i) => i as u32 + 1,
        None => {
            compact.networks.extend(network(Some(n)));
            compact.networks.len() as u32
        }
    }
}

/// The observation of a typed event.
pub fn from_event(e: &Event, source: Option<&SourceNetwork>) -> Observation {
    Observation {
        event_id: e.event_id.clone(),
        event_time_ms: e.event_time_ms,
        event_source: e.event_source.clone(),
        event_name: e.event_name.clone(),
        category: e.category.clone(),
        read_only: e.read_only,
        event_type: e.event_type.clone(),
        region: e.region.clone(),
        recipient_account_id: e.recipient_account_id.clone(),
        principal: e.principal.clone(),
        source_address: e.source_address.clone(),
        source_kind: e.source_kind,
        network: network(source),
        user_agent: e.user_agent.clone(),
        error_code: e.error_code.clone(),
        outcome: e.outcome,
    }
}

fn own(t: Text<'_>) -> Option<String> {
    t.map(Cow::into_owned)
}

/// The action type named in a document.
pub fn action_type(name: &str) -> ActionType {
    match name {
        "read" => ActionType::Read,
        "create" => ActionType::Create,
        "modify" => ActionType::Modify,
        "delete" => ActionType::Delete,
        "permissions" => ActionType::Permissions,
        "authentication" => ActionType::Authentication,
        "logging_change" => ActionType::LoggingChange,
        "network_exposure" => ActionType::NetworkExposure,
        "credential_creation" => ActionType::CredentialCreation,
        "data_read" => ActionType::DataRead,
        "data_write" => ActionType::DataWrite,
        "insight" => ActionType::Insight,
        _ => ActionType::Other,
    }
}

fn source_kind(name: &str) -> SourceKind {
    match name {
        "ip" => SourceKind::Ip,
        "service" => SourceKind::Service,
        "aws_internal" => SourceKind::AwsInternal,
        "none" => SourceKind::None,
        _ => SourceKind::Other,
    }
}

/// Whether a rendered document's head says its source is an IP address (the plugin renders
/// the member as this; inside a JSON string its quotes would be escaped).
pub fn ip_source(head: &[u8]) -> bool {
    memchr::memmem::find(head, b"\"source_kind\":\"ip\"").is_some()
}

/// The part of an observation the report needs of an event that is not an anomaly: its time,
/// whether its source is an address, and the address's network.
pub fn light(event_time_ms: Option<i64>, ip: bool, network: Option<Network>) -> Observation {
    Observation {
        event_id: None,
        event_time_ms,
        event_source: None,
        event_name: None,
        category: Category {
            service: String::new(),
            action: ActionType::Other,
            metric: String::new(),
            flags: Default::default(),
        },
        read_only: false,
        event_type: None,
        region: None,
        recipient_account_id: None,
        principal: None,
        source_address: None,
        source_kind: if ip { SourceKind::Ip } else { SourceKind::Other },
        network,
        user_agent: None,
        error_code: None,
        outcome: crate::runtime::bindings::types::Outcome::Success,
    }
}

/// The observation of a rendered document: `head` is its text up to the summary's `head-end`
/// (the object still open; members the host added may follow the plugin's), `metric` its
/// metric name.
pub fn from_document(
    head: &[u8],
    summary: &Summary,
    metric: &str,
    network: Option<Network>,
) -> serde_json::Result<Observation> {
    let mut text = Vec::new();
    let h = head::read(head, &mut text)?;
    let d = summary;
    Ok(Observation {
        event_id: own(h.event_id),
        event_time_ms: d.event_time_ms,
        event_source: own(h.event_source),
        event_name: own(h.event_name),
        category: Category {
            service: h.service.into_owned(),
            action: action_type(&h.action),
            metric: metric.to_owned(),
            flags: d.flags,
        },
        read_only: d.read_only,
        event_type: own(h.event_type),
        region: own(h.region),
        recipient_account_id: own(h.recipient_account_id),
        principal: h.principal.map(|p| Principal {
            identity_type: own(p.identity_type),
            principal_id: own(p.principal_id),
            arn: own(p.arn),
            account_id: own(p.account_id),
            user_name: own(p.user_name),
            access_key_id: own(p.access_key_id),
            session_issuer_arn: own(p.session_issuer_arn),
            mfa_authenticated: p.mfa_authenticated,
            invoked_by: own(p.invoked_by),
        }),
        source_address: own(h.source_address),
        source_kind: source_kind(&h.source_kind),
        network,
        user_agent: own(h.user_agent),
        error_code: own(h.error_code),
        outcome: d.outcome,
    })
}
