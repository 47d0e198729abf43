//! Metric names, precedence, outcome flags and the odd inputs of real logs.

use super::{call, metric};
use crate::categorize::{categorize, Action, Category, Flags, Input};

#[test]
fn run_instances_is_ec2_create() {
    let category = categorize(&call("ec2.amazonaws.com", "RunInstances"));
    assert_eq!(
        category,
        Category {
            service: "ec2".to_owned(),
            action: Action::Create,
            metric: "aws.ec2.create".to_owned(),
            flags: Flags::default(),
        }
    );
}

#[test]
fn metric_names_follow_the_scheme() {
    assert_eq!(
        metric(call("ec2.amazonaws.com", "TerminateInstances")),
        "aws.ec2.delete"
    );
    assert_eq!(
        metric(call("iam.amazonaws.com", "AttachUserPolicy")),
        "aws.iam.permissions"
    );
    assert_eq!(
        metric(call("sts.amazonaws.com", "AssumeRole")),
        "aws.sts.authentication"
    );
    assert_eq!(
        metric(call("cloudtrail.amazonaws.com", "StopLogging")),
        "aws.cloudtrail.logging_change"
    );
    assert_eq!(
        metric(call("dynamodb.amazonaws.com", "DescribeTable")),
        "aws.dynamodb.read"
    );
    assert_eq!(
        metric(call("sso-directory.amazonaws.com", "SearchUsers")),
        "aws.sso_directory.read"
    );
}

#[test]
fn action_names_are_stable_snake_case() {
    let all = [
        (Action::Read, "read"),
        (Action::Create, "create"),
        (Action::Modify, "modify"),
        (Action::Delete, "delete"),
        (Action::Permissions, "permissions"),
        (Action::Authentication, "authentication"),
        (Action::LoggingChange, "logging_change"),
        (Action::NetworkExposure, "network_exposure"),
        (Action::CredentialCreation, "credential_creation"),
        (Action::DataRead, "data_read"),
        (Action::DataWrite, "data_write"),
        (Action::Insight, "insight"),
        (Action::Other, "other"),
    ];
    for (action, name) in all {
        assert_eq!(action.as_str(), name);
    }
}

#[test]
fn precedence_is_the_documented_order() {
    let order = [
        Action::Authentication,
        Action::LoggingChange,
        Action::NetworkExposure,
        Action::Permissions,
        Action::CredentialCreation,
        Action::DataWrite,
        Action::Create,
        Action::Other,
    ];
    for pair in order.windows(2) {
        assert!(pair[0].rank() < pair[1].rank(), "{:?} before {:?}", pair[0], pair[1]);
    }
    assert_eq!(Action::DataRead.rank(), Action::DataWrite.rank());
    assert_eq!(Action::Read.rank(), Action::Delete.rank());
}

#[test]
fn unknown_verb_is_other_never_blank() {
    let category = categorize(&call("example.amazonaws.com", "FrobnicateWidget"));
    assert_eq!(category.action, Action::Other);
    assert_eq!(category.metric, "aws.example.other");
}

#[test]
fn read_only_unknown_verb_is_read() {
    let input = Input {
        read_only: Some(true),
        ..call("example.amazonaws.com", "FrobnicateWidget")
    };
    assert_eq!(metric(input), "aws.example.read");
}

#[test]
fn kms_crypto_operations_use_the_key() {
    assert_eq!(metric(call("kms.amazonaws.com", "Decrypt")), "aws.kms.data_read");
    assert_eq!(
        metric(call("kms.amazonaws.com", "GenerateDataKey")),
        "aws.kms.data_read"
    );
    assert_eq!(metric(call("kms.amazonaws.com", "Encrypt")), "aws.kms.data_write");
    assert_eq!(metric(call("kms.amazonaws.com", "ReEncrypt")), "aws.kms.data_write");
    assert_eq!(
        metric(call("kms.amazonaws.com", "ScheduleKeyDeletion")),
        "aws.kms.modify"
    );
    assert_eq!(
        metric(call("kms.amazonaws.com", "ConnectCustomKeyStore")),
        "aws.kms.modify"
    );
    assert_eq!(metric(call("kms.amazonaws.com", "ReplicateKey")), "aws.kms.create");
}

#[test]
fn apis_that_were_other_have_actions() {
    for (source, name, want) in [
        (
            "organizations.amazonaws.com",
            "InviteAccountToOrganization",
            "aws.organizations.create",
        ),
        (
            "organizations.amazonaws.com",
            "LeaveOrganization",
            "aws.organizations.logging_change",
        ),
        ("dynamodb.amazonaws.com", "TransactWriteItems", "aws.dynamodb.modify"),
        ("dynamodb.amazonaws.com", "ExecuteStatement", "aws.dynamodb.modify"),
        (
            "secretsmanager.amazonaws.com",
            "RotationFailed",
            "aws.secretsmanager.modify",
        ),
        ("s3.amazonaws.com", "JobCreated", "aws.s3.create"),
        ("s3.amazonaws.com", "JobStatusChanged", "aws.s3.modify"),
        (
            "cognito-idp.amazonaws.com",
            "Token_POST",
            "aws.cognito_idp.authentication",
        ),
        ("cognito-idp.amazonaws.com", "Confirm_GET", "aws.cognito_idp.read"),
        ("cognito-idp.amazonaws.com", "Signup_POST", "aws.cognito_idp.create"),
        ("codecommit.amazonaws.com", "GitPush", "aws.codecommit.modify"),
        ("rds.amazonaws.com", "FailoverDBCluster", "aws.rds.modify"),
        ("rbin.amazonaws.com", "UnlockRule", "aws.rbin.modify"),
        (
            "route53domains.amazonaws.com",
            "updateDomainContact",
            "aws.route53domains.modify",
        ),
        ("acm.amazonaws.com", "ResendValidationEmail", "aws.acm.create"),
        (
            "controltower.amazonaws.com",
            "PrecheckOrganizationalUnit",
            "aws.controltower.read",
        ),
        ("ssm.amazonaws.com", "OpenControlChannel", "aws.ssm.create"),
    ] {
        assert_eq!(metric(call(source, name)), want, "{source} {name}");
    }
}

#[test]
fn sign_ins_are_judged_by_the_record() {
    let no_source = Input {
        event_name: Some("ConsoleLogin"),
        ..Input::default()
    };
    let category = categorize(&no_source);
    assert_eq!(category.metric, "aws.signin.authentication");
    assert!(category.flags.authentication);
    for name in ["AssumeRole", "ExternalIdPDirectoryLogin", "PasswordUpdated"] {
        let sign_in = Input {
            event_type: Some("AwsConsoleSignIn"),
            ..call("signin.amazonaws.com", name)
        };
        let category = categorize(&sign_in);
        assert_eq!(category.metric, "aws.signin.authentication", "{name}");
    }
    let password = Input {
        event_type: Some("AwsConsoleSignIn"),
        ..call("signin.amazonaws.com", "PasswordUpdated")
    };
    assert!(categorize(&password).flags.credential_creation);
}

#[test]
fn missing_event_name_is_other() {
    let input = Input {
        event_name: None,
        ..call("ec2.amazonaws.com", "")
    };
    assert_eq!(metric(input), "aws.ec2.other");
    assert_eq!(metric(call("ec2.amazonaws.com", "")), "aws.ec2.other");
    assert_eq!(metric(call("ec2.amazonaws.com", "null")), "aws.ec2.other");
}

#[test]
fn missing_event_source_is_unknown() {
    for source in [None, Some(""), Some("null"), Some("   ")] {
        let input = Input {
            event_source: source,
            ..call("", "DescribeThings")
        };
        assert_eq!(metric(input), "aws.unknown.read", "{source:?}");
    }
}

#[test]
fn odd_sources_give_clean_service_names() {
    assert_eq!(metric(call("AWS Internal", "DescribeThings")), "aws.aws_internal.read");
    assert_eq!(metric(call("ssm.amazonaws.com", "SendCommand")), "aws.ssm.create");
    assert_eq!(
        metric(call("monitoring.amazonaws.com", "PutMetricData")),
        "aws.monitoring.create"
    );
}

#[test]
fn insight_events_are_insight() {
    let insight = Input {
        event_source: Some("ec2.amazonaws.com"),
        event_name: Some("RunInstances"),
        event_type: Some("AwsCloudTrailInsight"),
        event_category: Some("Insight"),
        ..Input::default()
    };
    assert_eq!(metric(insight), "aws.ec2.insight");
    let sourceless = Input {
        event_category: Some("Insight"),
        ..Input::default()
    };
    let category = categorize(&sourceless);
    assert_eq!(category.metric, "aws.cloudtrail.insight");
    assert_eq!(category.action, Action::Insight);
}

#[test]
fn service_events_are_named_like_calls() {
    let input = Input {
        event_type: Some("AwsServiceEvent"),
        ..call("ec2.amazonaws.com", "CreateSnapshot")
    };
    assert_eq!(metric(input), "aws.ec2.create");
}

#[test]
fn denied_and_failed_do_not_change_the_action() {
    let input = Input {
        error_code: Some("Client.UnauthorizedOperation"),
        ..call("ec2.amazonaws.com", "RunInstances")
    };
    let category = categorize(&input);
    assert_eq!(category.metric, "aws.ec2.create");
    assert!(category.flags.failed && category.flags.denied);

    let throttled = Input {
        error_code: Some("ThrottlingException"),
        ..call("iam.amazonaws.com", "AttachRolePolicy")
    };
    let category = categorize(&throttled);
    assert_eq!(category.metric, "aws.iam.permissions");
    assert!(category.flags.failed && !category.flags.denied);

    let null = Input {
        error_code: Some("null"),
        ..call("iam.amazonaws.com", "ListUsers")
    };
    assert!(!categorize(&null).flags.failed);
}

#[test]
fn lambda_version_suffix_is_stripped() {
    assert_eq!(
        metric(call("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2")),
        "aws.lambda.modify"
    );
    assert_eq!(
        metric(call("lambda.amazonaws.com", "CreateFunction20150331")),
        "aws.lambda.create"
    );
    assert_eq!(
        metric(call("lambda.amazonaws.com", "AddPermission20150331v2")),
        "aws.lambda.permissions"
    );
    assert_eq!(
        metric(call("lambda.amazonaws.com", "GetFunction20150331v2")),
        "aws.lambda.read"
    );
}
