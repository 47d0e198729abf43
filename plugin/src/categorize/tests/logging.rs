//! Logging changes and tampering.

use super::{call, with_params};
use crate::categorize::{categorize, Action, Input};

#[test]
fn delete_flow_logs_is_vpc_logging_tampering() {
    let category = categorize(&call("ec2.amazonaws.com", "DeleteFlowLogs"));
    assert_eq!(category.metric, "aws.vpc.logging_change");
    assert!(category.flags.logging_tampering);
    let create = categorize(&call("ec2.amazonaws.com", "CreateFlowLogs"));
    assert_eq!(create.metric, "aws.vpc.logging_change");
    assert!(!create.flags.logging_tampering);
}

#[test]
fn stopping_cloudtrail_is_logging_tampering() {
    let category = categorize(&call("cloudtrail.amazonaws.com", "StopLogging"));
    assert_eq!(category.action, Action::LoggingChange);
    assert!(category.flags.logging_tampering);
}

#[test]
fn turning_logging_on_is_a_logging_change_without_tampering() {
    for name in ["CreateTrail", "StartLogging"] {
        let input = Input {
            event_name: Some(name),
            ..call("cloudtrail.amazonaws.com", "")
        };
        let category = categorize(&input);
        assert_eq!(category.action, Action::LoggingChange, "{name}");
        assert!(!category.flags.logging_tampering, "{name}");
    }
}

#[test]
fn monitoring_teardown_is_logging_tampering() {
    for (source, name) in [
        ("guardduty.amazonaws.com", "DeleteDetector"),
        ("config.amazonaws.com", "StopConfigurationRecorder"),
        ("securityhub.amazonaws.com", "DisableSecurityHub"),
        ("access-analyzer.amazonaws.com", "DeleteAnalyzer"),
        ("monitoring.amazonaws.com", "DeleteAlarms"),
        ("logs.amazonaws.com", "DeleteLogGroup"),
        ("events.amazonaws.com", "DisableRule"),
        ("macie2.amazonaws.com", "DisableMacie"),
        ("detective.amazonaws.com", "DeleteGraph"),
    ] {
        let input = Input {
            event_source: Some(source),
            event_name: Some(name),
            ..Input::default()
        };
        let category = categorize(&input);
        assert_eq!(category.action, Action::LoggingChange, "{source} {name}");
        assert!(category.flags.logging_tampering, "{source} {name}");
    }
}

#[test]
fn guardduty_archive_filter_is_logging_tampering() {
    let input = with_params(
        call("guardduty.amazonaws.com", "CreateFilter"),
        r#"{"detectorId":"d","name":"quiet","action":"ARCHIVE","findingCriteria":{}}"#,
    );
    assert!(categorize(&input).flags.logging_tampering);
}

#[test]
fn disabling_bucket_logging_is_tampering_and_enabling_is_not() {
    let off = with_params(
        call("s3.amazonaws.com", "PutBucketLogging"),
        r#"{"bucketName":"b","BucketLoggingStatus":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"logging":[""]}"#,
    );
    let category = categorize(&off);
    assert_eq!(category.metric, "aws.s3.logging_change");
    assert!(category.flags.logging_tampering);
    let on = with_params(
        call("s3.amazonaws.com", "PutBucketLogging"),
        r#"{"bucketName":"b","BucketLoggingStatus":{"LoggingEnabled":{"TargetBucket":"logs","TargetPrefix":"b/"}}}"#,
    );
    assert!(!categorize(&on).flags.logging_tampering);
}
