//! Authentication, credential creation and permission changes.

use super::{call, metric, with_params};
use crate::categorize::{categorize, Action, Input};

#[test]
fn key_pairs_are_credential_creation() {
    let category = categorize(&call("ec2.amazonaws.com", "CreateKeyPair"));
    assert_eq!(category.metric, "aws.ec2.credential_creation");
    assert!(category.flags.credential_creation);
    assert_eq!(
        metric(call("ec2.amazonaws.com", "ImportKeyPair")),
        "aws.ec2.credential_creation"
    );
    assert_eq!(metric(call("ec2.amazonaws.com", "GetPasswordData")), "aws.ec2.read");
}

#[test]
fn iam_access_keys_and_passwords_are_credential_creation() {
    for name in [
        "CreateAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "UploadSSHPublicKey",
    ] {
        let input = Input {
            event_name: Some(name),
            ..call("iam.amazonaws.com", "")
        };
        let category = categorize(&input);
        assert_eq!(category.action, Action::CredentialCreation, "{name}");
        assert!(category.flags.credential_creation, "{name}");
    }
}

#[test]
fn iam_policy_changes_are_permissions() {
    let category = categorize(&call("iam.amazonaws.com", "PutRolePolicy"));
    assert_eq!(category.metric, "aws.iam.permissions");
    assert!(category.flags.permission_change);
    assert_eq!(metric(call("iam.amazonaws.com", "ListRoles")), "aws.iam.read");
}

#[test]
fn console_login_is_authentication() {
    let input = Input {
        event_type: Some("AwsConsoleSignIn"),
        ..call("signin.amazonaws.com", "ConsoleLogin")
    };
    let category = categorize(&input);
    assert_eq!(category.metric, "aws.signin.authentication");
    assert!(category.flags.authentication);
}

#[test]
fn assuming_a_role_is_authentication_but_asking_who_am_i_is_a_read() {
    for name in [
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "GetSessionToken",
    ] {
        let input = Input {
            event_name: Some(name),
            read_only: Some(true),
            ..call("sts.amazonaws.com", "")
        };
        assert_eq!(metric(input), "aws.sts.authentication", "{name}");
    }
    assert_eq!(metric(call("sts.amazonaws.com", "GetCallerIdentity")), "aws.sts.read");
}

#[test]
fn resource_policies_of_other_services_are_permissions() {
    assert_eq!(metric(call("kms.amazonaws.com", "PutKeyPolicy")), "aws.kms.permissions");
    assert_eq!(metric(call("kms.amazonaws.com", "CreateGrant")), "aws.kms.permissions");
    assert_eq!(
        metric(call("ecr.amazonaws.com", "SetRepositoryPolicy")),
        "aws.ecr.permissions"
    );
    assert_eq!(
        metric(call("secretsmanager.amazonaws.com", "PutResourcePolicy")),
        "aws.secretsmanager.permissions"
    );
    assert_eq!(
        metric(call("organizations.amazonaws.com", "AttachPolicy")),
        "aws.organizations.permissions"
    );
    let queue_policy = with_params(
        call("sqs.amazonaws.com", "SetQueueAttributes"),
        r#"{"queueUrl":"https://sqs/q","attributes":{"Policy":"{\"Statement\":[]}"}}"#,
    );
    assert_eq!(metric(queue_policy), "aws.sqs.permissions");
    let visibility = with_params(
        call("sqs.amazonaws.com", "SetQueueAttributes"),
        r#"{"queueUrl":"https://sqs/q","attributes":{"VisibilityTimeout":"30"}}"#,
    );
    assert_eq!(metric(visibility), "aws.sqs.modify");
}

#[test]
fn authentication_outranks_everything() {
    let input = Input {
        error_code: Some("AccessDenied"),
        ..call("signin.amazonaws.com", "ConsoleLogin")
    };
    let category = categorize(&input);
    assert_eq!(category.action, Action::Authentication);
    assert!(category.flags.denied);
}
