//! The verb-prefix rules that name the action of APIs without a hand-made table.
//!
//! The verb is the first CamelCase word of the event name ("DescribeInstances" → "Describe");
//! a leading "Batch" is skipped ("BatchGetItem" → "Get"). The decisions that are not obvious:
//! - Put, Add, Start, Publish, Send, Invoke and Export create something new (an item, a run, a
//!   message, an export); Stop, Enable, Disable, Cancel and Restore change an existing resource.
//! - Tagging is a modification, whatever the verb ("AddTagsToResource", "CreateTags").
//! - Attach and Detach are modifications: most attach resources to each other. They are
//!   permission changes only when the name carries an access word (see [`grants_access`]).
//! - Authorize, Grant, Share and Unshare are permission changes.
//! - CloudTrail's own `readOnly: true` beats a write verb: the call changed nothing.
//! - An unknown verb is `read` when `readOnly` is true and `other` otherwise; never blank.

use super::table;
use super::Action::{self, Create, Delete, Modify, Permissions, Read};

/// Verb → action, sorted by verb.
const VERBS: &[(&str, Action)] = &[
    ("Abort", Delete),
    ("Accept", Modify),
    ("Activate", Modify),
    ("Add", Create),
    ("Allocate", Create),
    ("Apply", Modify),
    ("Assign", Modify),
    ("Associate", Modify),
    ("Attach", Modify),
    ("Authorize", Permissions),
    ("Cancel", Modify),
    ("Change", Modify),
    ("Check", Read),
    ("Clone", Create),
    ("Close", Delete),
    ("Complete", Modify),
    ("Confirm", Modify),
    ("Connect", Modify),
    ("Copy", Create),
    ("Create", Create),
    ("Deactivate", Modify),
    ("Decrease", Modify),
    ("Delete", Delete),
    ("Deprovision", Delete),
    ("Deregister", Delete),
    ("Describe", Read),
    ("Destroy", Delete),
    ("Detach", Modify),
    ("Disable", Modify),
    ("Disassociate", Modify),
    ("Disconnect", Modify),
    ("Discover", Read),
    ("Download", Read),
    ("Edit", Modify),
    ("Enable", Modify),
    ("Estimate", Read),
    ("Execute", Modify),
    ("Export", Create),
    ("Failover", Modify),
    ("Filter", Read),
    ("Generate", Create),
    ("Get", Read),
    ("Grant", Permissions),
    ("Head", Read),
    ("Import", Create),
    ("Increase", Modify),
    ("Initiate", Create),
    ("Invite", Create),
    ("Invoke", Create),
    ("Issue", Create),
    ("Launch", Create),
    ("Leave", Delete),
    ("List", Read),
    ("Lock", Modify),
    ("Lookup", Read),
    ("Merge", Modify),
    ("Modify", Modify),
    ("Move", Modify),
    ("Open", Create),
    ("Pause", Modify),
    ("Precheck", Read),
    ("Preview", Read),
    ("Promote", Modify),
    ("Provision", Create),
    ("Publish", Create),
    ("Purchase", Create),
    ("Purge", Delete),
    ("Put", Create),
    ("Query", Read),
    ("Reboot", Modify),
    ("Receive", Read),
    ("Register", Create),
    ("Reject", Modify),
    ("Release", Delete),
    ("Remove", Delete),
    ("Rename", Modify),
    ("Renew", Modify),
    ("Replace", Modify),
    ("Replicate", Create),
    ("Request", Create),
    ("Resend", Create),
    ("Reset", Modify),
    ("Restart", Modify),
    ("Restore", Modify),
    ("Resume", Modify),
    ("Retrieve", Read),
    ("Revoke", Delete),
    ("Rotate", Modify),
    ("Rotation", Modify),
    ("Run", Create),
    ("Scan", Read),
    ("Schedule", Modify),
    ("Search", Read),
    ("Select", Read),
    ("Send", Create),
    ("Set", Modify),
    ("Setup", Create),
    ("Share", Permissions),
    ("Simulate", Read),
    ("Start", Create),
    ("Stop", Modify),
    ("Submit", Create),
    ("Subscribe", Create),
    ("Suspend", Modify),
    ("Synchronize", Modify),
    ("Tag", Modify),
    ("Terminate", Delete),
    ("Test", Read),
    ("Transfer", Modify),
    ("Unassign", Modify),
    ("Unlock", Modify),
    ("Unshare", Permissions),
    ("Unsubscribe", Delete),
    ("Untag", Modify),
    ("Update", Modify),
    ("Upgrade", Modify),
    ("Upload", Create),
    ("Validate", Read),
    ("View", Read),
    ("Write", Modify),
];

/// Whole event names that do not start with a verb, sorted: service events and Git operations
/// named by what happened.
const NAMES: &[(&str, Action)] = &[
    ("GitPull", Read),
    ("GitPush", Modify),
    ("JobCreated", Create),
    ("JobStatusChanged", Modify),
    ("PasswordUpdated", Modify),
    ("Signup_POST", Create),
];

/// Words before "Policy" that name a policy about something other than access (scaling,
/// retention, caching, ...), sorted.
const NON_ACCESS_POLICIES: &[&str] = &[
    "Backup",
    "Cache",
    "DataProtection",
    "Deployment",
    "Firewall",
    "Index",
    "Lifecycle",
    "LoadBalancer",
    "OriginRequest",
    "Password",
    "Placement",
    "ResponseHeaders",
    "Retention",
    "Scaling",
    "Stickiness",
    "Traffic",
];

/// The action of `name` by its verb, for APIs that no table names.
pub(super) fn classify(name: &str, read_only: Option<bool>) -> Action {
    if let Some(action) = table::lookup(NAMES, &name).or_else(|| by_method(name)) {
        return match action {
            Read => Read,
            _ if read_only == Some(true) => Read,
            action => action,
        };
    }
    let (verb, rest) = match split_verb(name) {
        ("Batch" | "Transact", rest) if !rest.is_empty() => split_verb(rest),
        split => split,
    };
    let by_verb = match verb.as_bytes().first() {
        // Some services write their names in camelCase ("updateDomainContact").
        Some(first) if first.is_ascii_lowercase() => {
            let mut capital = verb.to_owned();
            capital[..1].make_ascii_uppercase();
            table::lookup(VERBS, &capital.as_str())
        }
        _ => table::lookup(VERBS, &verb),
    };
    match by_verb {
        Some(Read) => Read,
        _ if read_only == Some(true) => Read,
        Some(Create | Delete) if is_tagging(rest) => Modify,
        Some(Create | Modify | Delete) | None if grants_access(name) => Permissions,
        Some(action) => action,
        None => Action::Other,
    }
}

/// The action of an HTTP endpoint logged by its path and method (Cognito's hosted UI:
/// "Token_POST", "Login_GET"): a GET reads, a DELETE deletes, other methods change something.
fn by_method(name: &str) -> Option<Action> {
    let (endpoint, method) = name.rsplit_once('_')?;
    if endpoint.is_empty() {
        return None;
    }
    match method {
        "GET" | "HEAD" => Some(Read),
        "DELETE" => Some(Delete),
        "POST" | "PUT" | "PATCH" => Some(Modify),
        _ => None,
    }
}

/// Splits a CamelCase event name after its first word: ("Describe", "Instances").
pub(super) fn split_verb(name: &str) -> (&str, &str) {
    let end = name
        .bytes()
        .skip(1)
        .position(|byte| byte.is_ascii_uppercase())
        .map_or(name.len(), |at| at + 1);
    name.split_at(end)
}

/// Whether the verb's object is tags ("AddTagsToResource", "RemoveTags", "CreateTags").
fn is_tagging(rest: &str) -> bool {
    rest == "Tag" || rest.starts_with("Tags")
}

/// Whether the name speaks of access: a permission, a grant, an ACL, or a policy that is not
/// one of the [`NON_ACCESS_POLICIES`] ("PutKeyPolicy" yes, "PutScalingPolicy" no).
pub(super) fn grants_access(name: &str) -> bool {
    if crate::text::has(name, "Permission") || crate::text::has(name, "Grant") || crate::text::has(name, "Acl") {
        return true;
    }
    name.match_indices("Polic").any(|(at, _)| {
        let before = &name[..at];
        !NON_ACCESS_POLICIES.iter().any(|qualifier| before.ends_with(qualifier))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn tables_are_sorted_without_duplicates() {
        let verbs: Vec<_> = VERBS.iter().map(|(verb, _)| *verb).collect();
        assert_strictly_sorted("VERBS", &verbs);
        let names: Vec<_> = NAMES.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("NAMES", &names);
        assert_strictly_sorted("NON_ACCESS_POLICIES", NON_ACCESS_POLICIES);
    }

    #[test]
    fn verb_is_the_first_camel_case_word() {
        assert_eq!(split_verb("DescribeInstances"), ("Describe", "Instances"));
        assert_eq!(split_verb("ListObjectsV2"), ("List", "ObjectsV2"));
        assert_eq!(split_verb("Decrypt"), ("Decrypt", ""));
        assert_eq!(split_verb("x"), ("x", ""));
        assert_eq!(split_verb(""), ("", ""));
    }

    #[test]
    fn verbs_name_the_action() {
        assert_eq!(classify("DescribeTable", None), Read);
        assert_eq!(classify("LookupEvents", None), Read);
        assert_eq!(classify("CreateQueue", None), Create);
        assert_eq!(classify("PutParameter", None), Create);
        assert_eq!(classify("UpdateService", None), Modify);
        assert_eq!(classify("RebootDBInstance", None), Modify);
        assert_eq!(classify("DeleteStack", None), Delete);
        assert_eq!(classify("DeregisterTaskDefinition", None), Delete);
    }

    #[test]
    fn batch_prefix_is_skipped() {
        assert_eq!(classify("BatchGetItem", None), Read);
        assert_eq!(classify("BatchDeleteImage", None), Delete);
        assert_eq!(classify("BatchWriteItem", None), Modify);
        assert_eq!(classify("Batch", None), Action::Other);
    }

    #[test]
    fn transactions_are_read_by_their_second_word() {
        assert_eq!(classify("TransactWriteItems", None), Modify);
        assert_eq!(classify("TransactGetItems", None), Read);
    }

    #[test]
    fn camel_case_names_have_verbs_too() {
        assert_eq!(classify("updateDomainContact", None), Modify);
        assert_eq!(classify("listDomains", None), Read);
        assert_eq!(classify("action", None), Action::Other);
    }

    #[test]
    fn endpoints_are_read_by_their_method() {
        assert_eq!(classify("Confirm_GET", None), Read);
        assert_eq!(classify("Confirm_POST", None), Modify);
        assert_eq!(classify("Token_POST", None), Modify);
        assert_eq!(classify("Signup_POST", None), Create);
        assert_eq!(classify("Logout_DELETE", None), Delete);
        assert_eq!(classify("_GET", None), Action::Other);
    }

    #[test]
    fn names_without_a_verb_are_known_whole() {
        assert_eq!(classify("GitPush", None), Modify);
        assert_eq!(classify("GitPull", None), Read);
        assert_eq!(classify("JobCreated", None), Create);
        assert_eq!(classify("JobStatusChanged", None), Modify);
        assert_eq!(classify("JobStatusChanged", Some(true)), Read);
    }

    #[test]
    fn tagging_is_a_modification() {
        assert_eq!(classify("AddTagsToResource", None), Modify);
        assert_eq!(classify("RemoveTagsFromResource", None), Modify);
        assert_eq!(classify("TagResource", None), Modify);
        assert_eq!(classify("CreateTags", None), Modify);
        assert_eq!(classify("CreateTagOption", None), Create);
    }

    #[test]
    fn access_words_make_a_permission_change() {
        assert_eq!(classify("PutKeyPolicy", None), Permissions);
        assert_eq!(classify("CreateGrant", None), Permissions);
        assert_eq!(classify("RevokeGrant", None), Permissions);
        assert_eq!(classify("SetRepositoryPolicy", None), Permissions);
        assert_eq!(classify("AttachPolicy", None), Permissions);
        assert_eq!(classify("ModifyDocumentPermission", None), Permissions);
        assert_eq!(classify("AuthorizeSnapshotAccess", None), Permissions);
        assert_eq!(classify("GetKeyPolicy", None), Read);
    }

    #[test]
    fn non_access_policies_are_plain_writes() {
        assert_eq!(classify("PutScalingPolicy", None), Create);
        assert_eq!(classify("PutLifecyclePolicy", None), Create);
        assert_eq!(classify("CreateLBCookieStickinessPolicy", None), Create);
        assert_eq!(classify("SetLoadBalancerPoliciesOfListener", None), Modify);
    }

    #[test]
    fn attaching_resources_is_a_modification() {
        assert_eq!(classify("AttachLoadBalancers", None), Modify);
        assert_eq!(classify("DetachInstances", None), Modify);
    }

    #[test]
    fn read_only_decides_unknown_verbs_and_beats_write_verbs() {
        assert_eq!(classify("Decrypt", Some(true)), Read);
        assert_eq!(classify("Decrypt", Some(false)), Action::Other);
        assert_eq!(classify("Decrypt", None), Action::Other);
        assert_eq!(classify("GenerateDataKey", Some(true)), Read);
        assert_eq!(classify("GenerateDataKey", None), Create);
    }
}
