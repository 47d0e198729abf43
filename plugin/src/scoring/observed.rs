//! Observations in the plugin's own compact form (the contract's `observing`): the instance
//! reading a file encodes what scoring needs of each event it renders, and the scoring
//! instance decodes it. One buffer crosses the boundary each way instead of some twenty strings
//! per event, and the host reads no document back to find them.
//!
//! The form is postcard over borrowed text, behind a byte naming the form: an instance decodes
//! only the form it writes (another plugin version's is refused, and the host scores that batch
//! through the contract's records instead). It carries only what scoring reads: an observation
//! decoded from it has no event source, metric name, source address or error code (the host's
//! enrichment stands for the address).

use std::borrow::Cow;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::{Network, Observation, Prepared};
use crate::categorize::{Action, Category, Flags};
use trailwatch_document as document;

use crate::documents::{flag_bits, principal_view};
use crate::model::{Event, Outcome, Principal, SourceKind, Text};

/// The first byte of every encoded observation (2: without the fields scoring does not read).
const FORM: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    event_id: Option<&'a str>,
    event_time_ms: Option<i64>,
    #[serde(borrow)]
    event_name: Option<&'a str>,
    service: &'a str,
    action: u8,
    flags: u8,
    read_only: bool,
    #[serde(borrow)]
    event_type: Option<&'a str>,
    #[serde(borrow)]
    region: Option<&'a str>,
    #[serde(borrow)]
    recipient_account_id: Option<&'a str>,
    #[serde(borrow)]
    principal: Option<document::Principal<'a>>,
    source_kind: u8,
    #[serde(borrow)]
    user_agent: Option<&'a str>,
    outcome: u8,
}

const ACTIONS: [Action; 13] = [
    Action::Read,
    Action::Create,
    Action::Modify,
    Action::Delete,
    Action::Permissions,
    Action::Authentication,
    Action::LoggingChange,
    Action::NetworkExposure,
    Action::CredentialCreation,
    Action::DataRead,
    Action::DataWrite,
    Action::Insight,
    Action::Other,
];

const SOURCE_KINDS: [SourceKind; 5] = [
    SourceKind::Ip,
    SourceKind::Service,
    SourceKind::AwsInternal,
    SourceKind::None,
    SourceKind::Other,
];

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

fn code<T: PartialEq>(all: &[T], value: &T) -> u8 {
    all.iter().position(|v| v == value).unwrap_or(0) as u8
}

fn of<T: Copy>(all: &[T], code: u8, what: &str) -> Result<T, String> {
    all.get(usize::from(code))
        .copied()
        .ok_or_else(|| format!("{what} code {code} is unknown"))
}

fn flags_of(bits: u8) -> Flags {
    let on = |i: u8| bits & (1 << i) != 0;
    Flags {
        authentication: on(0),
        permission_change: on(1),
        logging_tampering: on(2),
        network_exposure: on(3),
        credential_creation: on(4),
        protection_weakened: on(5),
        failed: on(6),
        denied: on(7),
    }
}

/// Appends the encoded observation of `event` to `out`.
pub fn encode(event: &Event<'_>, out: &mut Vec<u8>) {
    let e = event;
    let wire = Wire {
        event_id: e.event_id.as_deref(),
        event_time_ms: e.event_time_ms,
        event_name: e.event_name.as_deref(),
        service: &e.category.service,
        action: code(&ACTIONS, &e.category.action),
        flags: flag_bits(e.category.flags),
        read_only: e.read_only,
        event_type: e.event_type.as_deref(),
        region: e.region.as_deref(),
        recipient_account_id: e.recipient_account_id.as_deref(),
        principal: e.principal.as_ref().map(principal_view),
        source_kind: code(&SOURCE_KINDS, &e.source_kind),
        user_agent: e.user_agent.as_deref(),
        outcome: code(&OUTCOMES, &e.outcome),
    };
    out.push(FORM);
    // Writing plain data into a Vec cannot fail.
    let _ = postcard::to_extend(&wire, std::mem::take(out)).map(|v| *out = v);
}

fn text(t: Option<&str>) -> Option<Text<'_>> {
    t.map(Cow::Borrowed)
}

/// A batch's compact observations: their bytes, and the observations borrowing their text.
pub type Observations<'a> = Vec<Observation<'a>>;

self_cell::self_cell!(
    /// A batch's compact observations: their bytes, and the observations borrowing their text.
    pub struct Decoded {
        owner: Vec<u8>,
        #[covariant]
        dependent: Observations,
    }
);

/// The observation `bytes` encode, with the host's `network` for its source.
pub fn decode(bytes: &[u8], network: Option<Rc<Network>>) -> Result<Observation<'_>, String> {
    let (&form, rest) = bytes.split_first().ok_or("an observation is empty")?;
    if form != FORM {
        return Err(format!("an observation is in form {form}, not this plugin's {FORM}"));
    }
    let w: Wire<'_> = postcard::from_bytes(rest).map_err(|e| format!("an observation cannot be read: {e}"))?;
    Ok(Observation {
        event_id: text(w.event_id),
        event_time_ms: w.event_time_ms,
        event_source: None,
        event_name: text(w.event_name),
        category: Category {
            service: w.service.to_owned(),
            action: of(&ACTIONS, w.action, "action")?,
            metric: String::new(),
            flags: flags_of(w.flags),
        },
        read_only: w.read_only,
        event_type: text(w.event_type),
        region: text(w.region),
        recipient_account_id: text(w.recipient_account_id),
        principal: w.principal.map(|p| Principal {
            identity_type: text(p.identity_type),
            principal_id: text(p.principal_id),
            arn: text(p.arn),
            account_id: text(p.account_id),
            user_name: text(p.user_name),
            access_key_id: text(p.access_key_id),
            session_issuer_arn: text(p.session_issuer_arn),
            mfa_authenticated: p.mfa_authenticated,
            invoked_by: text(p.invoked_by),
        }),
        source_address: None,
        source_kind: of(&SOURCE_KINDS, w.source_kind, "source kind")?,
        network,
        user_agent: text(w.user_agent),
        error_code: None,
        outcome: of(&OUTCOMES, w.outcome, "outcome")?,
        prepared: Prepared::default(),
    })
}

/// The observations of a batch: `bytes` split at `ends`, each with the network `network_of`
/// names (index plus one in `networks`, 0 for none). An error names the observation.
pub fn decode_all<'a>(
    bytes: &'a [u8],
    ends: &[u32],
    networks: &[Network],
    network_of: &[u32],
) -> Result<Vec<Observation<'a>>, String> {
    if network_of.len() != ends.len() {
        return Err(format!(
            "{} observations but {} network indexes",
            ends.len(),
            network_of.len()
        ));
    }
    // Each network once, shared by its observations.
    let networks: Vec<Rc<Network>> = networks.iter().cloned().map(Rc::new).collect();
    let mut start = 0usize;
    let mut out = Vec::with_capacity(ends.len());
    for (i, (&end, &n)) in ends.iter().zip(network_of).enumerate() {
        let end = end as usize;
        let one = bytes.get(start..end).ok_or_else(|| {
            format!(
                "observation {i} ends at {end}, outside the {} bytes after {start}",
                bytes.len()
            )
        })?;
        let network = match n {
            0 => None,
            n => Some(
                networks
                    .get(n as usize - 1)
                    .cloned()
                    .ok_or_else(|| format!("observation {i} names network {n} of {}", networks.len()))?,
            ),
        };
        out.push(decode(one, network).map_err(|e| format!("observation {i}: {e}"))?);
        start = end;
    }
    if start != bytes.len() {
        return Err(format!("{} bytes follow the last observation", bytes.len() - start));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::documents::{Batch, Observed};
    use crate::model::OpenOptions;
    use crate::reader::LogFile;

    /// The observation the contract's records give for `e` (what `scoring.batch`'s
    /// constructor builds from the host's copy of the event), without what the compact form
    /// leaves behind.
    fn expected(e: &Event<'_>, network: Option<Network>) -> Observation<'static> {
        let text = |t: &Option<std::borrow::Cow<'_, str>>| t.as_deref().map(|t| Cow::Owned(t.to_owned()));
        Observation {
            event_id: text(&e.event_id),
            event_time_ms: e.event_time_ms,
            event_source: None,
            event_name: text(&e.event_name),
            category: Category {
                metric: String::new(),
                ..e.category.clone()
            },
            read_only: e.read_only,
            event_type: text(&e.event_type),
            region: text(&e.region),
            recipient_account_id: text(&e.recipient_account_id),
            principal: e.principal.clone().map(Principal::into_owned),
            source_address: None,
            source_kind: e.source_kind,
            network: network.map(Rc::new),
            user_agent: text(&e.user_agent),
            error_code: None,
            outcome: e.outcome,
            prepared: Prepared::default(),
        }
    }

    #[test]
    fn every_fixture_event_decodes_to_the_observation_its_record_gives() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/logs");
        let network = Network {
            scope: "public".into(),
            asn: Some(64500),
            as_org: Some("Example".into()),
            country: Some("NL".into()),
        };
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") || path.ends_with("digest.json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let key = path.display().to_string();
            let mut typed = LogFile::open(bytes.clone(), &key, OpenOptions::default()).unwrap();
            let events = typed.next_batch(10_000).unwrap();
            let mut rendered = LogFile::open(bytes, &key, OpenOptions::default()).unwrap();
            let mut batch = Batch {
                observed: Some(Observed::default()),
                ..Batch::default()
            };
            rendered.next_documents(10_000, &mut batch).unwrap();
            let observed = batch.observed.unwrap();
            assert_eq!(observed.ends.len(), events.len(), "{key}");
            // Every other event with a network, as the host enriches sources.
            let network_of: Vec<u32> = (0..events.len()).map(|i| (i % 2) as u32).collect();
            let decoded = decode_all(
                &observed.bytes,
                &observed.ends,
                std::slice::from_ref(&network),
                &network_of,
            )
            .unwrap();
            for (i, (d, e)) in decoded.iter().zip(&events).enumerate() {
                assert_eq!(
                    *d,
                    expected(e, (i % 2 == 1).then(|| network.clone())),
                    "{key} event {i}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} events checked");
    }

    #[test]
    fn another_form_or_broken_bytes_are_refused_naming_the_observation() {
        let mut batch = Batch {
            observed: Some(Observed::default()),
            ..Batch::default()
        };
        let doc =
            r#"{"Records":[{"eventID":"a","eventSource":"s3.amazonaws.com","eventName":"GetObject"},{"eventID":"b"}]}"#;
        let mut file = LogFile::open(doc.as_bytes().to_vec(), "t.json", OpenOptions::default()).unwrap();
        file.next_documents(10, &mut batch).unwrap();
        let Observed { mut bytes, ends } = batch.observed.unwrap();
        assert_eq!(decode_all(&bytes, &ends, &[], &[0, 0]).unwrap().len(), 2);
        let err = decode_all(&bytes, &ends, &[], &[0, 3]).unwrap_err();
        assert!(err.contains("observation 1 names network 3 of 0"), "{err}");
        let err = decode_all(&bytes, &ends[..1], &[], &[0]).unwrap_err();
        assert!(err.contains("bytes follow the last observation"), "{err}");
        let second = ends[0] as usize;
        bytes[second] = FORM + 1;
        let err = decode_all(&bytes, &ends, &[], &[0, 0]).unwrap_err();
        assert!(err.contains("observation 1: an observation is in form 3"), "{err}");
        bytes[second] = FORM;
        bytes.truncate(bytes.len() - 3);
        let err = decode_all(&bytes, &[ends[0], bytes.len() as u32], &[], &[0, 0]).unwrap_err();
        assert!(err.starts_with("observation 1: an observation cannot be read"), "{err}");
    }
}
