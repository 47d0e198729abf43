//! Authentication, credential and permission events of services without a hand-made table,
//! which their verbs do not reveal ("ConsoleLogin", "AssumeRole", "SendSSHPublicKey",
//! "CreateAccountAssignment"). The tables of EC2, IAM, S3, VPC and Lambda decide these for their
//! own APIs, and [`super::logging`] decides logging changes for every service.
//!
//! Authentication is signing in or trading a proof of identity for session credentials;
//! `GetCallerIdentity` only reads. Credential creation makes a long-lived secret to sign in with
//! (a key pair, an API key, a password); STS session credentials are authentication instead.

use super::params::{has_key, has_value};
use super::table;

/// What a known event means beyond its verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meaning {
    /// Signs in, or obtains session credentials by proving an identity.
    Authentication,
    /// Creates a long-lived secret to sign in with.
    CredentialCreation,
    /// Changes who may do what.
    Permissions,
}

/// A table entry: a meaning, or a meaning that depends on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The event always has this meaning.
    Always(Meaning),
    /// A permission change when the request sets a `Policy` attribute (SQS, SNS).
    PermissionsIfPolicyAttribute,
}

// Short names keep the table one entry per line.
const AUTHENTICATION: Kind = Kind::Always(Meaning::Authentication);
const CREDENTIAL: Kind = Kind::Always(Meaning::CredentialCreation);
const PERMISSIONS: Kind = Kind::Always(Meaning::Permissions);
const POLICY_ATTRIBUTE: Kind = Kind::PermissionsIfPolicyAttribute;

/// Service → (event name → kind), both levels sorted by name.
const EVENTS: &[(&str, &[(&str, Kind)])] = &[
    ("apigateway", &[("CreateApiKey", CREDENTIAL)]),
    (
        "cognito_identity",
        &[
            ("GetCredentialsForIdentity", AUTHENTICATION),
            ("GetOpenIdToken", AUTHENTICATION),
            ("GetOpenIdTokenForDeveloperIdentity", AUTHENTICATION),
        ],
    ),
    (
        "cognito_idp",
        &[
            ("AdminInitiateAuth", AUTHENTICATION),
            ("AdminRespondToAuthChallenge", AUTHENTICATION),
            ("AdminSetUserPassword", CREDENTIAL),
            // The hosted UI's endpoints, logged by path and method.
            ("IdpResponse_GET", AUTHENTICATION),
            ("IdpResponse_POST", AUTHENTICATION),
            ("InitiateAuth", AUTHENTICATION),
            ("Login_POST", AUTHENTICATION),
            ("RespondToAuthChallenge", AUTHENTICATION),
            ("SAML2Response_POST", AUTHENTICATION),
            ("Token_POST", AUTHENTICATION),
        ],
    ),
    (
        "ec2_instance_connect",
        &[
            ("SendSSHPublicKey", CREDENTIAL),
            ("SendSerialConsoleSSHPublicKey", CREDENTIAL),
        ],
    ),
    (
        "identitystore",
        &[
            ("CreateGroupMembership", PERMISSIONS),
            ("DeleteGroupMembership", PERMISSIONS),
        ],
    ),
    (
        "lightsail",
        &[
            ("CreateKeyPair", CREDENTIAL),
            ("DownloadDefaultKeyPair", CREDENTIAL),
            ("ImportKeyPair", CREDENTIAL),
        ],
    ),
    // Leaving takes the account out of the organization's service control policies.
    ("organizations", &[("LeaveOrganization", PERMISSIONS)]),
    (
        "ram",
        &[
            ("AssociateResourceShare", PERMISSIONS),
            ("CreateResourceShare", PERMISSIONS),
            ("DisassociateResourceShare", PERMISSIONS),
        ],
    ),
    (
        "rds",
        &[
            ("ModifyDBClusterSnapshotAttribute", PERMISSIONS),
            ("ModifyDBSnapshotAttribute", PERMISSIONS),
        ],
    ),
    (
        "signin",
        &[
            ("CheckMfa", AUTHENTICATION),
            ("ConsoleLogin", AUTHENTICATION),
            ("CredentialChallenge", AUTHENTICATION),
            ("CredentialVerification", AUTHENTICATION),
            ("ExitRole", AUTHENTICATION),
            ("GetSigninToken", AUTHENTICATION),
            // A new password set while signing in (an expired or a first one).
            ("PasswordUpdated", CREDENTIAL),
            ("RenewRoleSession", AUTHENTICATION),
            ("SwitchRole", AUTHENTICATION),
            ("UserAuthentication", AUTHENTICATION),
        ],
    ),
    ("sns", &[("SetTopicAttributes", POLICY_ATTRIBUTE)]),
    ("sqs", &[("SetQueueAttributes", POLICY_ATTRIBUTE)]),
    (
        "sso",
        &[
            ("Authenticate", AUTHENTICATION),
            ("CreateAccountAssignment", PERMISSIONS),
            ("CreateToken", AUTHENTICATION),
            ("DeleteAccountAssignment", PERMISSIONS),
            ("Federate", AUTHENTICATION),
            ("GetRoleCredentials", AUTHENTICATION),
        ],
    ),
    (
        "sso_oauth",
        &[("CreateToken", AUTHENTICATION), ("CreateTokenWithIAM", AUTHENTICATION)],
    ),
    (
        "sts",
        &[
            ("AssumeRole", AUTHENTICATION),
            ("AssumeRoleWithSAML", AUTHENTICATION),
            ("AssumeRoleWithWebIdentity", AUTHENTICATION),
            ("AssumeRoot", AUTHENTICATION),
            ("GetFederationToken", AUTHENTICATION),
            ("GetSessionToken", AUTHENTICATION),
        ],
    ),
    ("transfer", &[("ImportSshPublicKey", CREDENTIAL)]),
];

/// The cross-cutting meaning of an event, if it has one and the request parameters confirm it.
pub(super) fn meaning(service: &str, name: &str, params: Option<&str>) -> Option<Meaning> {
    match table::lookup(EVENTS, &service).and_then(|names| table::lookup(names, &name))? {
        Kind::Always(meaning) => Some(meaning),
        Kind::PermissionsIfPolicyAttribute => params
            .is_some_and(sets_policy_attribute)
            .then_some(Meaning::Permissions),
    }
}

/// SQS `attributes: {"Policy": ...}` or SNS `attributeName: "Policy"`.
fn sets_policy_attribute(params: &str) -> bool {
    has_key(params, "Policy") || has_value(params, "attributeName", "Policy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let services: Vec<_> = EVENTS.iter().map(|(service, _)| *service).collect();
        assert_strictly_sorted("crosscut::EVENTS", &services);
        for (service, events) in EVENTS {
            let names: Vec<_> = events.iter().map(|(name, _)| *name).collect();
            assert_strictly_sorted(service, &names);
        }
    }

    #[test]
    fn services_with_tables_are_not_listed() {
        for (service, _) in EVENTS {
            assert!(
                !matches!(*service, "ec2" | "iam" | "lambda" | "s3" | "vpc"),
                "the {service} table decides its own events"
            );
        }
    }

    #[test]
    fn sign_in_and_role_assumption_are_authentication() {
        assert_eq!(meaning("signin", "ConsoleLogin", None), Some(Meaning::Authentication));
        assert_eq!(
            meaning("sts", "AssumeRoleWithSAML", None),
            Some(Meaning::Authentication)
        );
        assert_eq!(meaning("sts", "GetCallerIdentity", None), None);
    }

    #[test]
    fn queue_policy_is_a_permission_change_and_redrive_is_not() {
        let policy = r#"{"queueUrl":"q","attributes":{"Policy":"{}"}}"#;
        assert_eq!(
            meaning("sqs", "SetQueueAttributes", Some(policy)),
            Some(Meaning::Permissions)
        );
        let redrive = r#"{"queueUrl":"q","attributes":{"RedrivePolicy":"{}"}}"#;
        assert_eq!(meaning("sqs", "SetQueueAttributes", Some(redrive)), None);
        assert_eq!(meaning("sqs", "SetQueueAttributes", None), None);
        let topic = r#"{"topicArn":"t","attributeName":"Policy","attributeValue":"{}"}"#;
        assert_eq!(
            meaning("sns", "SetTopicAttributes", Some(topic)),
            Some(Meaning::Permissions)
        );
    }
}
