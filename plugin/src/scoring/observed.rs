//! Observations in the plugin's own compact form (the contract's `observing`): the instance
//! reading a file encodes what scoring needs of each event it renders, and the scoring
//! instance decodes it. One buffer crosses the boundary each way instead of some twenty strings
//! per event, and the host reads no document back to find them.
//!
//! The form is a byte naming it, then fixed fields, the lengths of the text fields and their
//! text, one after the other (and the same for the principal, when there is one): decoding
//! checks an observation's text is UTF-8 once and borrows every field from it (measured: the
//! previous form, postcard with a UTF-8 check per field, took a seventh of what scoring adds to
//! encode and decode). An instance decodes only the form it writes (another plugin version's
//! is refused, and the host scores that batch through the contract's records instead). It
//! carries only what scoring reads: an observation decoded from it has no event source, metric
//! name, source address or error code (the host's enrichment stands for the address).

use std::borrow::Cow;
use std::rc::Rc;

use super::{Network, Observation, Prepared};
use crate::categorize::{Action, Category, Flags};
use crate::documents::flag_bits;
use crate::model::{Event, Outcome, Principal, SourceKind, Text};

/// The first byte of every encoded observation (3: fixed fields, lengths and text).
const FORM: u8 = 3;

/// Bytes before the text fields' lengths: the form, action, flags, bits (read-only, has a
/// time, has a principal), source kind, outcome and the event time (i64, little-endian).
const FIXED: usize = 14;
/// Text fields of an observation (event id, name, service, type, region, recipient account,
/// user agent) and of a principal (identity type, principal id, ARN, account, user name,
/// access key, session issuer, invoked by); each length is a little-endian u32, plus one (0:
/// none).
const TEXTS: usize = 7;
const PRINCIPAL_TEXTS: usize = 8;

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

/// Appends the lengths of `texts` and then their text.
fn put_texts(out: &mut Vec<u8>, texts: &[Option<&str>]) {
    for t in texts {
        let n = t.map_or(0, |t| u32::try_from(t.len()).map_or(u32::MAX, |n| n.saturating_add(1)));
        out.extend_from_slice(&n.to_le_bytes());
    }
    for t in texts.iter().flatten() {
        out.extend_from_slice(t.as_bytes());
    }
}

/// Appends the encoded observation of `event` to `out`.
pub fn encode(event: &Event<'_>, out: &mut Vec<u8>) {
    let e = event;
    let bits = u8::from(e.read_only) | u8::from(e.event_time_ms.is_some()) << 1 | u8::from(e.principal.is_some()) << 2;
    out.extend_from_slice(&[
        FORM,
        code(&ACTIONS, &e.category.action),
        flag_bits(e.category.flags),
        bits,
        code(&SOURCE_KINDS, &e.source_kind),
        code(&OUTCOMES, &e.outcome),
    ]);
    out.extend_from_slice(&e.event_time_ms.unwrap_or(0).to_le_bytes());
    put_texts(
        out,
        &[
            e.event_id.as_deref(),
            e.event_name.as_deref(),
            Some(&e.category.service),
            e.event_type.as_deref(),
            e.region.as_deref(),
            e.recipient_account_id.as_deref(),
            e.user_agent.as_deref(),
        ],
    );
    if let Some(p) = &e.principal {
        out.push(match p.mfa_authenticated {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        put_texts(
            out,
            &[
                p.identity_type.as_deref(),
                p.principal_id.as_deref(),
                p.arn.as_deref(),
                p.account_id.as_deref(),
                p.user_name.as_deref(),
                p.access_key_id.as_deref(),
                p.session_issuer_arn.as_deref(),
                p.invoked_by.as_deref(),
            ],
        );
    }
}

/// Reads `N` text fields at `bytes[at..]` (their lengths, then their text, checked UTF-8
/// once); returns them and where they end.
fn take_texts<const N: usize>(bytes: &[u8], at: usize) -> Result<([Option<&str>; N], usize), String> {
    let lengths = bytes
        .get(at..at + 4 * N)
        .ok_or("an observation ends inside its text lengths")?;
    let mut lens = [0u32; N];
    let mut total = 0usize;
    for (len, word) in lens.iter_mut().zip(lengths.chunks_exact(4)) {
        *len = u32::from_le_bytes(word.try_into().unwrap_or([0; 4]));
        total = total.saturating_add((*len as usize).saturating_sub(1));
    }
    let start = at + 4 * N;
    let text = bytes
        .get(start..start.saturating_add(total))
        .ok_or("an observation ends inside its text")?;
    let text = std::str::from_utf8(text).map_err(|e| format!("an observation's text is not UTF-8: {e}"))?;
    let mut out = [None; N];
    let mut pos = 0usize;
    for (slot, len) in out.iter_mut().zip(lens) {
        if len == 0 {
            continue;
        }
        let end = pos + (len as usize - 1);
        *slot = Some(
            text.get(pos..end)
                .ok_or("an observation's text field splits a character")?,
        );
        pos = end;
    }
    Ok((out, start + total))
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
    let (&form, _) = bytes.split_first().ok_or("an observation is empty")?;
    if form != FORM {
        return Err(format!("an observation is in form {form}, not this plugin's {FORM}"));
    }
    let fixed = bytes
        .get(..FIXED)
        .ok_or("an observation ends inside its fixed fields")?;
    let (action, flags, bits, source_kind, outcome) = (fixed[1], fixed[2], fixed[3], fixed[4], fixed[5]);
    let time = i64::from_le_bytes(fixed[6..14].try_into().unwrap_or([0; 8]));
    let ([event_id, event_name, service, event_type, region, recipient, user_agent], mut at) =
        take_texts::<TEXTS>(bytes, FIXED)?;
    let principal = if bits & 4 != 0 {
        let mfa = match bytes.get(at) {
            Some(0) => None,
            Some(1) => Some(false),
            Some(2) => Some(true),
            Some(m) => return Err(format!("an observation's MFA code {m} is unknown")),
            None => return Err("an observation ends before its principal".into()),
        };
        let ([identity_type, principal_id, arn, account_id, user_name, access_key_id, issuer, invoked_by], end) =
            take_texts::<PRINCIPAL_TEXTS>(bytes, at + 1)?;
        at = end;
        Some(Principal {
            identity_type: text(identity_type),
            principal_id: text(principal_id),
            arn: text(arn),
            account_id: text(account_id),
            user_name: text(user_name),
            access_key_id: text(access_key_id),
            session_issuer_arn: text(issuer),
            mfa_authenticated: mfa,
            invoked_by: text(invoked_by),
        })
    } else {
        None
    };
    if at != bytes.len() {
        return Err(format!("{} bytes follow an observation", bytes.len() - at));
    }
    Ok(Observation {
        event_id: text(event_id),
        event_time_ms: (bits & 2 != 0).then_some(time),
        event_source: None,
        event_name: text(event_name),
        category: Category {
            service: service.ok_or("an observation has no service")?.to_owned(),
            action: of(&ACTIONS, action, "action")?,
            metric: String::new(),
            flags: flags_of(flags),
        },
        read_only: bits & 1 != 0,
        event_type: text(event_type),
        region: text(region),
        recipient_account_id: text(recipient),
        principal,
        source_address: None,
        source_kind: of(&SOURCE_KINDS, source_kind, "source kind")?,
        network,
        user_agent: text(user_agent),
        error_code: None,
        outcome: of(&OUTCOMES, outcome, "outcome")?,
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
        assert!(
            err.contains("observation 1: an observation is in form 4, not this plugin's 3"),
            "{err}"
        );
        bytes[second] = FORM;
        let whole = bytes.clone();
        bytes.truncate(bytes.len() - 3);
        let err = decode_all(&bytes, &[ends[0], bytes.len() as u32], &[], &[0, 0]).unwrap_err();
        assert!(
            err.starts_with("observation 1: an observation ends inside its text"),
            "{err}"
        );
        let err = decode_all(&whole[..second + 10], &[ends[0], second as u32 + 10], &[], &[0, 0]).unwrap_err();
        assert!(
            err.starts_with("observation 1: an observation ends inside its fixed fields"),
            "{err}"
        );
        // The first event's text is its id, name and service ("a", "GetObject", "s3"): a byte
        // that is not UTF-8 in it, or one more byte, is refused.
        let text = FIXED + 4 * TEXTS;
        assert_eq!(&whole[text..text + 2], b"aG");
        let mut bad = whole.clone();
        bad[text] = 0xff;
        let err = decode_all(&bad, &ends, &[], &[0, 0]).unwrap_err();
        assert!(
            err.starts_with("observation 0: an observation's text is not UTF-8"),
            "{err}"
        );
        let mut longer = whole[..second].to_vec();
        longer.push(b'x');
        let err = decode_all(&longer, &[second as u32 + 1], &[], &[0]).unwrap_err();
        assert!(err.contains("observation 0: 1 bytes follow an observation"), "{err}");
        // Lengths that end inside a character of the (valid) text.
        let mut split = "é".as_bytes().to_vec();
        let mut one = vec![FORM, 0, 0, 0, 0, 0];
        one.extend_from_slice(&[0; 8]);
        for n in [0u32, 2, 2, 0, 0, 0, 0] {
            one.extend_from_slice(&n.to_le_bytes());
        }
        one.append(&mut split);
        let err = decode(&one, None).unwrap_err();
        assert!(err.contains("splits a character"), "{err}");
    }

    #[test]
    fn every_field_round_trips_absent_empty_or_present() {
        let doc = r#"{"Records":[
            {"eventID":"","eventTime":"2024-03-04T05:06:07Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","readOnly":false,
             "eventType":"AwsApiCall","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userAgent":"aws-cli/2 é",
             "sourceIPAddress":"203.0.113.9","errorCode":"AccessDenied",
             "userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::111122223333:user/ü","accountId":"111122223333",
               "userName":"ü","accessKeyId":"AKIA","invokedBy":"",
               "sessionContext":{"attributes":{"mfaAuthenticated":"true"},"sessionIssuer":{"arn":"arn:aws:iam::111122223333:role/r"}}}},
            {"eventSource":"s3.amazonaws.com"}
        ]}"#;
        let mut typed = LogFile::open(doc.as_bytes().to_vec(), "t.json", OpenOptions::default()).unwrap();
        let events = typed.next_batch(10).unwrap();
        let mut rendered = LogFile::open(doc.as_bytes().to_vec(), "t.json", OpenOptions::default()).unwrap();
        let mut batch = Batch {
            observed: Some(Observed::default()),
            ..Batch::default()
        };
        rendered.next_documents(10, &mut batch).unwrap();
        let observed = batch.observed.unwrap();
        let decoded = decode_all(&observed.bytes, &observed.ends, &[], &[0, 0]).unwrap();
        assert_eq!(decoded.len(), 2);
        for (d, e) in decoded.iter().zip(&events) {
            assert_eq!(*d, expected(e, None));
        }
        let p = decoded[0].principal.as_ref().unwrap();
        assert_eq!(p.mfa_authenticated, Some(true));
        assert_eq!(p.user_name.as_deref(), Some("ü"));
        assert_eq!(decoded[0].event_time_ms, Some(1_709_528_767_000));
        assert!(decoded[1].principal.is_none() && decoded[1].event_time_ms.is_none());
    }
}
