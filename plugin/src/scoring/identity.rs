//! Who made a call: the identity a security analyst would recognise, from `userIdentity`.

use crate::model::Principal;

/// What kind of identity an event was made by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The account's root user.
    Root,
    /// An IAM user.
    User,
    /// A session of an assumed role (Identity Center users sign in as one).
    RoleSession,
    /// A federated user (`GetFederationToken`), SAML or web identity user.
    Federated,
    /// Another account, known by its id only.
    Account,
    /// Anything else with a name.
    Other,
}

/// An event's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its key: an ARN, or `<account>:<type>:<name>` when the record has none.
    pub key: String,
    /// The wider identity it belongs to: an assumed role's session belongs to the role
    /// (`arn:aws:sts::<account>:assumed-role/<role>`), a federated user to the IAM user that
    /// federated it. Baselines are kept at both levels.
    pub parent: Option<String>,
    /// Its account.
    pub account: Option<String>,
    /// What kind it is.
    pub kind: Kind,
    /// The session name, for a role session.
    pub session: Option<String>,
}

impl Identity {
    /// A role session named after an EC2 instance (`i-0123456789abcdef0`): the instance
    /// profile's credentials.
    pub fn is_instance_session(&self) -> bool {
        self.kind == Kind::RoleSession
            && self.session.as_deref().is_some_and(|s| {
                s.len() >= 10 && s.len() <= 19 && s.starts_with("i-") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
            })
    }
}

/// `arn:aws:sts::<account>:assumed-role/<role>` for a role's ARN
/// (`arn:aws:iam::<account>:role/<path/><role>`): the key its sessions' parent has.
fn assumed_role_of(role_arn: &str) -> Option<String> {
    let (head, resource) = role_arn.split_once(":role/")?;
    let partition_account = head.strip_prefix("arn:")?.split_once(":iam:")?;
    let role = resource.rsplit('/').next()?;
    Some(super::concat(&[
        "arn:",
        partition_account.0,
        ":sts:",
        partition_account.1,
        ":assumed-role/",
        role,
    ]))
}

fn some<'a>(t: &'a Option<std::borrow::Cow<'_, str>>) -> Option<&'a str> {
    t.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The identity of `principal`; `None` for calls no identity of the account made (AWS services
/// acting on their own) and records without one.
pub fn of(principal: Option<&Principal<'_>>, recipient: Option<&str>) -> Option<Identity> {
    let p = principal?;
    let kind_name = some(&p.identity_type).unwrap_or("");
    let account = some(&p.account_id).or(recipient).map(str::to_owned);
    let acct = account.as_deref().unwrap_or("unknown");
    let arn = some(&p.arn);
    let named = |kind: &str, name: Option<&str>| -> Option<String> {
        let name = name.or(some(&p.principal_id))?;
        Some(format!("{acct}:{kind}:{name}"))
    };
    let (kind, key, parent, session) = match kind_name {
        "AWSService" => return None,
        "Root" => (
            Kind::Root,
            arn.map(str::to_owned)
                .unwrap_or_else(|| format!("arn:aws:iam::{acct}:root")),
            None,
            None,
        ),
        "IAMUser" => (
            Kind::User,
            arn.map(str::to_owned).or_else(|| named("user", some(&p.user_name)))?,
            None,
            None,
        ),
        "AssumedRole" => {
            let key = arn
                .map(str::to_owned)
                .or_else(|| named("role-session", some(&p.principal_id)))?;
            // arn:aws:sts::<account>:assumed-role/<role>/<session>
            let (parent, session) = match key.rsplit_once('/') {
                Some((role, session)) if crate::text::has(role, ":assumed-role/") => {
                    (Some(role.to_owned()), Some(session.to_owned()))
                }
                _ => (some(&p.session_issuer_arn).and_then(assumed_role_of), None),
            };
            (Kind::RoleSession, key, parent, session)
        }
        "FederatedUser" | "SAMLUser" | "WebIdentityUser" => (
            Kind::Federated,
            arn.map(str::to_owned)
                .or_else(|| named(&kind_name.to_ascii_lowercase(), some(&p.user_name)))?,
            some(&p.session_issuer_arn).map(str::to_owned),
            None,
        ),
        "AWSAccount" => (Kind::Account, named("account", None)?, None, None),
        _ => (
            Kind::Other,
            arn.map(str::to_owned).or_else(|| {
                let kind = if kind_name.is_empty() { "unknown" } else { kind_name };
                named(&kind.to_ascii_lowercase(), some(&p.user_name))
            })?,
            None,
            None,
        ),
    };
    Some(Identity {
        key,
        parent,
        account,
        kind,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn principal(kind: &str, arn: Option<&str>) -> Principal<'static> {
        Principal {
            identity_type: Some(Cow::Owned(kind.into())),
            arn: arn.map(|a| Cow::Owned(a.into())),
            account_id: Some(Cow::Borrowed("111122223333")),
            principal_id: Some(Cow::Borrowed("AIDAEXAMPLE")),
            ..Principal::default()
        }
    }

    #[test]
    fn a_role_session_belongs_to_its_role_and_an_instance_session_is_told_apart() {
        let p = principal(
            "AssumedRole",
            Some("arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0"),
        );
        let id = of(Some(&p), None).unwrap();
        assert_eq!(id.kind, Kind::RoleSession);
        assert_eq!(id.parent.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/web"));
        assert_eq!(id.session.as_deref(), Some("i-0123456789abcdef0"));
        assert!(id.is_instance_session());
        let p = principal(
            "AssumedRole",
            Some("arn:aws:sts::111122223333:assumed-role/ci/build-42"),
        );
        assert!(!of(Some(&p), None).unwrap().is_instance_session());
    }

    #[test]
    fn a_session_without_an_arn_has_the_same_parent_as_one_with() {
        let mut p = principal("AssumedRole", None);
        p.session_issuer_arn = Some(Cow::Borrowed("arn:aws:iam::111122223333:role/team/web"));
        let id = of(Some(&p), None).unwrap();
        assert_eq!(id.parent.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/web"));
    }

    #[test]
    fn services_have_no_identity_and_records_without_an_arn_are_named_by_account() {
        assert_eq!(of(Some(&principal("AWSService", None)), None), None);
        let root = of(Some(&principal("Root", None)), None).unwrap();
        assert_eq!(root.key, "arn:aws:iam::111122223333:root");
        let mut p = principal("IAMUser", None);
        p.user_name = Some(Cow::Borrowed("alice"));
        assert_eq!(of(Some(&p), None).unwrap().key, "111122223333:user:alice");
        assert_eq!(of(None, None), None);
    }
}
