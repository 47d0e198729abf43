//! The `scoring` export: the contract's records to the plain model (`crate::scoring`) and back.

use std::borrow::Cow;
use std::cell::RefCell;

use super::scoring as ws;
use super::{wit, Plugin};
use crate::categorize::{Action, Category, Flags};
use crate::model;
use crate::scoring as m;

fn settings(s: ws::Settings) -> m::Settings {
    m::Settings {
        threshold: s.threshold,
        learning_ms: s.learning_ms,
        learning_events: s.learning_events,
        incident_gap_ms: s.incident_gap_ms,
        forget_after_ms: s.forget_after_ms,
    }
}

fn action(a: wit::ActionType) -> Action {
    match a {
        wit::ActionType::Read => Action::Read,
        wit::ActionType::Create => Action::Create,
        wit::ActionType::Modify => Action::Modify,
        wit::ActionType::Delete => Action::Delete,
        wit::ActionType::Permissions => Action::Permissions,
        wit::ActionType::Authentication => Action::Authentication,
        wit::ActionType::LoggingChange => Action::LoggingChange,
        wit::ActionType::NetworkExposure => Action::NetworkExposure,
        wit::ActionType::CredentialCreation => Action::CredentialCreation,
        wit::ActionType::DataRead => Action::DataRead,
        wit::ActionType::DataWrite => Action::DataWrite,
        wit::ActionType::Insight => Action::Insight,
        wit::ActionType::Other => Action::Other,
    }
}

fn category(c: wit::Category) -> Category {
    let f = c.flags;
    Category {
        service: c.service,
        action: action(c.action),
        metric: c.metric,
        flags: Flags {
            authentication: (f & wit::EventFlags::AUTHENTICATION) == wit::EventFlags::AUTHENTICATION,
            permission_change: (f & wit::EventFlags::PERMISSION_CHANGE) == wit::EventFlags::PERMISSION_CHANGE,
            logging_tampering: (f & wit::EventFlags::LOGGING_TAMPERING) == wit::EventFlags::LOGGING_TAMPERING,
            network_exposure: (f & wit::EventFlags::NETWORK_EXPOSURE) == wit::EventFlags::NETWORK_EXPOSURE,
            credential_creation: (f & wit::EventFlags::CREDENTIAL_CREATION) == wit::EventFlags::CREDENTIAL_CREATION,
            protection_weakened: (f & wit::EventFlags::PROTECTION_WEAKENED) == wit::EventFlags::PROTECTION_WEAKENED,
            failed: (f & wit::EventFlags::FAILED) == wit::EventFlags::FAILED,
            denied: (f & wit::EventFlags::DENIED) == wit::EventFlags::DENIED,
        },
    }
}

fn owned(t: Option<String>) -> Option<model::Text<'static>> {
    t.map(Cow::Owned)
}

fn principal(p: wit::Principal) -> model::Principal<'static> {
    model::Principal {
        identity_type: owned(p.identity_type),
        principal_id: owned(p.principal_id),
        arn: owned(p.arn),
        account_id: owned(p.account_id),
        user_name: owned(p.user_name),
        access_key_id: owned(p.access_key_id),
        session_issuer_arn: owned(p.session_issuer_arn),
        mfa_authenticated: p.mfa_authenticated,
        invoked_by: owned(p.invoked_by),
    }
}

fn observation(o: ws::Observation) -> m::Observation<'static> {
    m::Observation {
        event_id: owned(o.event_id),
        event_time_ms: o.event_time_ms,
        event_source: owned(o.event_source),
        event_name: owned(o.event_name),
        category: category(o.category),
        read_only: o.read_only,
        event_type: owned(o.event_type),
        region: owned(o.region),
        recipient_account_id: owned(o.recipient_account_id),
        principal: o.principal.map(principal),
        source_address: owned(o.source_address),
        source_kind: match o.source_kind {
            wit::SourceKind::Ip => model::SourceKind::Ip,
            wit::SourceKind::Service => model::SourceKind::Service,
            wit::SourceKind::AwsInternal => model::SourceKind::AwsInternal,
            wit::SourceKind::None => model::SourceKind::None,
            wit::SourceKind::Other => model::SourceKind::Other,
        },
        network: o.network.map(network).map(std::rc::Rc::new),
        user_agent: owned(o.user_agent),
        error_code: owned(o.error_code),
        outcome: match o.outcome {
            wit::Outcome::Success => model::Outcome::Success,
            wit::Outcome::Failure => model::Outcome::Failure,
            wit::Outcome::Denied => model::Outcome::Denied,
        },
        prepared: Default::default(),
    }
}

fn network(n: ws::Network) -> m::Network {
    m::Network {
        scope: n.scope,
        asn: n.asn,
        as_org: n.as_org,
        country: n.country,
    }
}

/// `observing.start`: a batch of observations in the plugin's compact form.
#[cfg(not(feature = "parser-only-fixture"))]
pub fn start(
    s: ws::Settings,
    bytes: Vec<u8>,
    ends: &[u32],
    networks: Vec<ws::Network>,
    network_of: &[u32],
) -> Result<ws::Batch, String> {
    let networks: Vec<m::Network> = networks.into_iter().map(network).collect();
    let batch = m::Batch::compact(settings(s), bytes, ends, &networks, network_of)?;
    Ok(ws::Batch::new(Batch(RefCell::new(batch))))
}

fn incident(i: m::Incident) -> ws::Incident {
    ws::Incident {
        id: i.id,
        revision: i.revision,
        identity: i.identity,
        account_id: i.account_id,
        status: if i.open {
            ws::IncidentStatus::Open
        } else {
            ws::IncidentStatus::Closed
        },
        summary: i.summary,
        change: i.change,
        first_ms: i.first_ms,
        last_ms: i.last_ms,
        score: i.score,
        tactics: i.tactics.into_iter().map(str::to_owned).collect(),
        reasons: i.reasons,
        events: i.events,
        anomalies: i.anomalies,
        countries: i.countries,
        asns: i.asns,
    }
}

fn writes(w: Vec<m::Write>) -> Vec<ws::Write> {
    w.into_iter().map(|(key, value)| ws::Write { key, value }).collect()
}

fn entries(e: Vec<ws::Entry>) -> Vec<(String, Vec<u8>)> {
    e.into_iter().map(|e| (e.key, e.value)).collect()
}

/// A batch being scored, behind the resource handle.
pub struct Batch(RefCell<m::Batch>);

impl ws::GuestBatch for Batch {
    fn new(s: ws::Settings, events: Vec<ws::Observation>) -> Self {
        super::install_panic_hook();
        Batch(RefCell::new(m::Batch::new(
            settings(s),
            events.into_iter().map(observation).collect(),
        )))
    }

    fn next(&self, given: Vec<ws::Entry>) -> ws::Step {
        #[cfg(feature = "sandbox-fixture")]
        if self.0.borrow().has_event_id_with("scoring-trap") {
            panic!("sandbox fixture panics on purpose while scoring");
        }
        match self.0.borrow_mut().next(entries(given)) {
            m::Step::Needs(keys) => ws::Step::Needs(keys),
            m::Step::Done(scored) => ws::Step::Done(ws::Scored {
                verdicts: scored
                    .verdicts
                    .into_iter()
                    .map(|v| ws::Verdict {
                        identity: v.identity,
                        score: v.score,
                        anomalous: v.anomalous,
                        reasons: v
                            .reasons
                            .into_iter()
                            .map(|r| ws::Reason {
                                code: r.code.to_owned(),
                                text: r.text,
                                points: r.points,
                            })
                            .collect(),
                        incident: v.incident,
                    })
                    .collect(),
                incidents: scored.incidents.into_iter().map(incident).collect(),
                writes: writes(scored.writes),
            }),
        }
    }
}

impl ws::Guest for Plugin {
    type Batch = Batch;

    fn sweep(s: ws::Settings, now_ms: i64, given: Vec<ws::Entry>) -> (Vec<ws::Write>, Vec<ws::Incident>) {
        super::install_panic_hook();
        let (w, incidents) = m::sweep(&settings(s), now_ms, entries(given));
        (writes(w), incidents.into_iter().map(incident).collect())
    }
}
