//! Reading a document's head back: the members scoring needs of an event, as the writer wrote
//! them (members the host added to the head are passed over). Strings without escapes are
//! borrowed from the text.

use std::borrow::Cow;

use serde::Deserialize;

/// A text member; absent members are `None`.
pub type Text<'a> = Option<Cow<'a, str>>;

/// The members of a head scoring reads (`schema/event.schema.json`).
#[derive(Debug, Deserialize)]
pub struct Head<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_id: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_source: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_name: Text<'a>,
    #[serde(borrow)]
    pub service: Cow<'a, str>,
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub event_type: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub region: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub recipient_account_id: Text<'a>,
    #[serde(borrow)]
    pub principal: Option<PrincipalHead<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub source_address: Text<'a>,
    #[serde(borrow)]
    pub source_kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub user_agent: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub error_code: Text<'a>,
}

/// The `principal` member.
#[derive(Debug, Deserialize)]
pub struct PrincipalHead<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    pub identity_type: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub principal_id: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub arn: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub account_id: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub user_name: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub access_key_id: Text<'a>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub session_issuer_arn: Text<'a>,
    pub mfa_authenticated: Option<bool>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub invoked_by: Text<'a>,
}

/// A text member, borrowed from the document when it has no escapes (serde borrows a `Cow`
/// only where it is a field's whole type).
fn text<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Option::<Borrowed<'a>>::deserialize(d).map(|t| t.map(|b| b.0))
}

/// Reads the head `head` (a document's text up to where its head ends, the object still open),
/// closed in `scratch`.
pub fn read<'a>(head: &[u8], scratch: &'a mut Vec<u8>) -> serde_json::Result<Head<'a>> {
    scratch.clear();
    scratch.reserve(head.len() + 1);
    scratch.extend_from_slice(head);
    scratch.push(b'}');
    serde_json::from_slice(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_reads_back_past_members_the_host_added_with_escapes_decoded() {
        let text = br#"{"kind":"event","event_id":"e-1","event_name":"Get\"Thing","service":"s3","action":"read","principal":{"arn":"arn:aws:iam::1:user/a","mfa_authenticated":true},"source_address":"192.0.2.1","source_kind":"ip","source_network":{"scope":"public","asn":64500,"country":"DE"},"delivery":{"x":1}"#;
        let mut scratch = Vec::new();
        let h = read(text, &mut scratch).unwrap();
        assert_eq!(h.event_id.as_deref(), Some("e-1"));
        assert_eq!(h.event_name.as_deref(), Some("Get\"Thing"));
        assert!(matches!(h.event_id, Some(Cow::Borrowed(_))));
        let p = h.principal.unwrap();
        assert_eq!(p.arn.as_deref(), Some("arn:aws:iam::1:user/a"));
        assert_eq!(p.mfa_authenticated, Some(true));
        assert_eq!(h.source_kind, "ip");
        assert!(h.user_agent.is_none());
        assert!(read(b"{\"service\":", &mut scratch).is_err());
    }
}
