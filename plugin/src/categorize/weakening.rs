//! Protections of accounts and data turned off or weakened: what an intruder undoes before the
//! damage (MITRE ATT&CK: modify authentication process, inhibit system recovery, data
//! destruction). It is a flag on top of the event's action, like logging tampering.
//!
//! Always: an MFA device deactivated or deleted, the account's password policy deleted, a
//! bucket's replication or default encryption deleted, EBS encryption by default turned off.
//! Depending on the request (without it, nothing is flagged): a bucket's versioning suspended or
//! its MFA delete disabled; a lifecycle rule that expires current objects with no prefix, tag or
//! size filter (the whole bucket); a password policy below the CIS AWS Foundations benchmark
//! (shorter than 14 characters, or remembering fewer than 24 passwords; AWS takes a setting
//! left out as its default, which is below both).

use serde_json::Value;

use super::params::{any_value, has_value};
use super::table;

/// How an event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weakening {
    Always,
    IfVersioningOff,
    IfExpiresEverything,
    IfPasswordPolicyWeak,
}

use Weakening::*;

/// Service → (event name → how it counts), both levels sorted by name.
const EVENTS: &[(&str, &[(&str, Weakening)])] = &[
    ("ec2", &[("DisableEbsEncryptionByDefault", Always)]),
    (
        "iam",
        &[
            ("DeactivateMFADevice", Always),
            ("DeleteAccountPasswordPolicy", Always),
            ("DeleteVirtualMFADevice", Always),
            ("UpdateAccountPasswordPolicy", IfPasswordPolicyWeak),
        ],
    ),
    (
        "s3",
        &[
            ("DeleteBucketEncryption", Always),
            ("DeleteBucketReplication", Always),
            ("PutBucketLifecycle", IfExpiresEverything),
            ("PutBucketLifecycleConfiguration", IfExpiresEverything),
            ("PutBucketVersioning", IfVersioningOff),
        ],
    ),
];

/// Whether the event turns a protection off or weakens it.
pub(super) fn weakens(service: &str, name: &str, params: Option<&str>) -> bool {
    let Some(kind) = table::lookup(EVENTS, &service).and_then(|names| table::lookup(names, &name)) else {
        return false;
    };
    let evidence = |probe: fn(&str) -> bool| params.is_some_and(probe);
    match kind {
        Always => true,
        IfVersioningOff => evidence(|p| has_value(p, "Status", "Suspended") || has_value(p, "MfaDelete", "Disabled")),
        IfExpiresEverything => evidence(expires_everything),
        IfPasswordPolicyWeak => evidence(password_policy_weak),
    }
}

/// A lifecycle configuration with a rule that expires current objects (after days or at a
/// date), is not disabled, and has no filter that narrows it: no non-empty prefix, no tag, no
/// object size. Rules are judged one by one (a request parses only on this rare API).
fn expires_everything(params: &str) -> bool {
    serde_json::from_str::<Value>(params).is_ok_and(|value| any_rule_expires_everything(&value))
}

fn any_rule_expires_everything(value: &Value) -> bool {
    match value {
        Value::Object(members) => rule_expires_everything(members) || members.values().any(any_rule_expires_everything),
        Value::Array(items) => items.iter().any(any_rule_expires_everything),
        _ => false,
    }
}

/// One rule object (`{"ID":…,"Status":…,"Filter":…,"Expiration":…}`).
fn rule_expires_everything(rule: &serde_json::Map<String, Value>) -> bool {
    let expires = rule
        .get("Expiration")
        .and_then(Value::as_object)
        .is_some_and(|e| e.contains_key("Days") || e.contains_key("Date"));
    let enabled = rule.get("Status").and_then(Value::as_str) != Some("Disabled");
    let narrows = |scope: &serde_json::Map<String, Value>| {
        scope
            .get("Prefix")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty())
            || ["Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan"]
                .iter()
                .any(|key| scope.contains_key(*key))
    };
    let filtered = narrows(rule) || rule.get("Filter").and_then(Value::as_object).is_some_and(narrows);
    expires && enabled && !filtered
}

/// A password policy below the CIS benchmark: a minimum length under 14 or a reuse prevention
/// under 24, either left out included.
fn password_policy_weak(params: &str) -> bool {
    let below = |key: &str, floor: u32| !any_value(params, key, |value| value.parse::<u32>().is_ok_and(|n| n >= floor));
    below("minimumPasswordLength", 14) || below("passwordReusePrevention", 24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let services: Vec<_> = EVENTS.iter().map(|(service, _)| *service).collect();
        assert_strictly_sorted("weakening::EVENTS", &services);
        for (service, events) in EVENTS {
            let names: Vec<_> = events.iter().map(|(name, _)| *name).collect();
            assert_strictly_sorted(service, &names);
        }
    }

    #[test]
    fn removing_mfa_encryption_or_replication_always_weakens() {
        assert!(weakens("iam", "DeactivateMFADevice", None));
        assert!(weakens("iam", "DeleteVirtualMFADevice", None));
        assert!(weakens("iam", "DeleteAccountPasswordPolicy", None));
        assert!(weakens("s3", "DeleteBucketEncryption", None));
        assert!(weakens("s3", "DeleteBucketReplication", None));
        assert!(weakens("ec2", "DisableEbsEncryptionByDefault", None));
        assert!(!weakens("iam", "EnableMFADevice", None));
        assert!(!weakens("s3", "PutBucketEncryption", None));
    }

    #[test]
    fn versioning_weakens_when_suspended() {
        let suspended = r#"{"bucketName":"b","VersioningConfiguration":{"Status":"Suspended"},"versioning":[""]}"#;
        assert!(weakens("s3", "PutBucketVersioning", Some(suspended)));
        let no_mfa = r#"{"bucketName":"b","VersioningConfiguration":{"Status":"Enabled","MfaDelete":"Disabled"}}"#;
        assert!(weakens("s3", "PutBucketVersioning", Some(no_mfa)));
        let enabled = r#"{"bucketName":"b","VersioningConfiguration":{"Status":"Enabled"},"versioning":[""]}"#;
        assert!(!weakens("s3", "PutBucketVersioning", Some(enabled)));
        assert!(!weakens("s3", "PutBucketVersioning", None));
    }

    #[test]
    fn a_lifecycle_weakens_when_it_expires_the_whole_bucket() {
        let everything = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Enabled",
            "Filter":{"Prefix":""},"Expiration":{"Days":1}}},"lifecycle":[""]}"#;
        assert!(weakens("s3", "PutBucketLifecycleConfiguration", Some(everything)));
        let unfiltered = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":[{"ID":"x","Status":"Enabled",
            "Filter":{},"Expiration":{"Date":"2024-05-01T00:00:00Z"}}]}}"#;
        assert!(weakens("s3", "PutBucketLifecycle", Some(unfiltered)));
        let logs_only = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Enabled",
            "Filter":{"Prefix":"tmp/"},"Expiration":{"Days":7}}}}"#;
        assert!(!weakens("s3", "PutBucketLifecycleConfiguration", Some(logs_only)));
        let old_versions = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Enabled",
            "Filter":{"Prefix":""},"NoncurrentVersionExpiration":{"NoncurrentDays":30}}}}"#;
        assert!(!weakens("s3", "PutBucketLifecycleConfiguration", Some(old_versions)));
        let markers = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Enabled",
            "Filter":{"Prefix":""},"Expiration":{"ExpiredObjectDeleteMarker":true}}}}"#;
        assert!(!weakens("s3", "PutBucketLifecycleConfiguration", Some(markers)));
        let two_rules = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":[
            {"ID":"a","Status":"Enabled","Filter":{"Prefix":"logs/"},"Transition":{"Days":30,"StorageClass":"GLACIER"}},
            {"ID":"b","Status":"Enabled","Filter":{},"Expiration":{"Days":1}}]}}"#;
        assert!(weakens("s3", "PutBucketLifecycleConfiguration", Some(two_rules)));
        let disabled = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Disabled",
            "Filter":{"Prefix":""},"Expiration":{"Days":1}}}}"#;
        assert!(!weakens("s3", "PutBucketLifecycleConfiguration", Some(disabled)));
        let tagged = r#"{"bucketName":"b","LifecycleConfiguration":{"Rule":{"ID":"x","Status":"Enabled",
            "Filter":{"Tag":{"Key":"tmp","Value":"1"}},"Expiration":{"Days":1}}}}"#;
        assert!(!weakens("s3", "PutBucketLifecycleConfiguration", Some(tagged)));
    }

    #[test]
    fn a_password_policy_weakens_below_the_benchmark() {
        let strong = r#"{"minimumPasswordLength":14,"passwordReusePrevention":24,"requireSymbols":true}"#;
        assert!(!weakens("iam", "UpdateAccountPasswordPolicy", Some(strong)));
        let short = r#"{"minimumPasswordLength":8,"passwordReusePrevention":24}"#;
        assert!(weakens("iam", "UpdateAccountPasswordPolicy", Some(short)));
        let forgetful = r#"{"minimumPasswordLength":16}"#;
        assert!(weakens("iam", "UpdateAccountPasswordPolicy", Some(forgetful)));
        assert!(!weakens("iam", "UpdateAccountPasswordPolicy", None));
    }
}
