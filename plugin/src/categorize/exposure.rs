//! Requests that open a resource or a network to the world, decided from their parameters.
//!
//! APIs that always expose (an internet gateway, peering, deleting a public access block) are
//! named in the service tables. This module decides the conditional ones, plus two checks that
//! apply to every write of every service: a resource policy that lets everyone in
//! ([`super::policy`]) and `publiclyAccessible: true` (RDS, Redshift, DMS). The conditional
//! cases need the request parameters as evidence: without them nothing is flagged.
//!
//! Decisions: a security group ingress rule (EC2's, and the classic ones of RDS, Redshift and
//! ElastiCache) is exposure when it opens to the world: `0.0.0.0/0`, `::/0`, or a public range of
//! /8 or wider (IPv6: /16); a rule between security groups or from a private range is a
//! permission change only, and so is every egress rule. A load balancer created without
//! `scheme: internal` is internet-facing, which is AWS's default; a route is exposure when it
//! targets an internet gateway; a network ACL entry is exposure when it allows.

use super::params::{any_value, has_value, list_has, scalar_at, value_starts};
use super::policy;
use super::rules;
use super::Action;

/// Canned S3 ACLs that grant access beyond the owner's account.
const PUBLIC_CANNED_ACLS: &[&str] = &["authenticated-read", "public-read", "public-read-write"];

/// The switches of an S3 public access block; any of them off lifts part of the block.
const PUBLIC_ACCESS_BLOCK_SWITCHES: &[&str] = &[
    "BlockPublicAcls",
    "BlockPublicPolicy",
    "IgnorePublicAcls",
    "RestrictPublicBuckets",
];

/// Whether a write request (of the given base action) exposes something to the world.
///
/// Reads expose nothing, and data writes carry neither resource policies nor database settings,
/// so the checks for those are skipped on the high-volume object writes.
pub(super) fn exposes(service: &str, name: &str, base: Action, params: Option<&str>) -> bool {
    if matches!(base, Action::Read | Action::DataRead) {
        return false;
    }
    let Some(params) = params else {
        return false;
    };
    if opens_classic_security_group(name) {
        return opens_to_world(params);
    }
    let specific = match (service, name) {
        ("ec2", "ModifyFpgaImageAttribute" | "ModifyImageAttribute" | "ModifySnapshotAttribute") => {
            shares_with_everyone(params)
        }
        ("elasticloadbalancing", "CreateLoadBalancer") => !has_value(params, "scheme", "internal"),
        ("lambda", "AddLayerVersionPermission" | "AddPermission") => has_value(params, "principal", "*"),
        ("lambda", "CreateFunctionUrlConfig" | "UpdateFunctionUrlConfig") => has_value(params, "authType", "NONE"),
        ("rds", "ModifyDBClusterSnapshotAttribute" | "ModifyDBSnapshotAttribute") => {
            list_has(params, "valuesToAdd", "all")
        }
        (
            "s3",
            "CopyObject" | "CreateBucket" | "CreateMultipartUpload" | "PutBucketAcl" | "PutObject" | "PutObjectAcl",
        ) => grants_public_acl(params),
        ("s3", "PutAccountPublicAccessBlock" | "PutBucketPublicAccessBlock" | "PutPublicAccessBlock") => {
            lifts_public_access_block(params)
        }
        ("ssm", "ModifyDocumentPermission") => list_has(params, "accountIdsToAdd", "all"),
        ("vpc", "AuthorizeSecurityGroupIngress" | "ModifySecurityGroupRules") => opens_to_world(params),
        ("vpc", "CreateNetworkAclEntry" | "ReplaceNetworkAclEntry") => has_value(params, "ruleAction", "allow"),
        ("vpc", "CreateRoute" | "ReplaceRoute") => {
            any_value(params, "gatewayId", |gateway| gateway.starts_with("igw-"))
        }
        ("vpc", "ModifyVpcEndpointServicePermissions") => list_has(params, "addAllowedPrincipals", "*"),
        _ => false,
    };
    specific
        || (base != Action::DataWrite
            && (has_value(params, "publiclyAccessible", "true") || policy::allows_everyone(params)))
}

/// `Authorize*SecurityGroupIngress` of RDS, Redshift and ElastiCache open a port like EC2's.
fn opens_classic_security_group(name: &str) -> bool {
    rules::split_verb(name).0 == "Authorize" && name.ends_with("SecurityGroupIngress")
}

/// Keys that hold a security group rule's source range (EC2, and RDS/Redshift/ElastiCache's
/// `cidrip`).
const RULE_RANGES: &[&str] = &["cidrIp", "cidrIpv4", "cidrIpv6", "cidrip", "cIDRIP"];

/// A rule whose source is the world or a large public range.
fn opens_to_world(params: &str) -> bool {
    RULE_RANGES
        .iter()
        .any(|key| any_value(params, key, is_world_or_large_public))
}

/// `0.0.0.0/0`, `::/0`, or a public IPv4 range of /8 or wider, or IPv6 of /16 or wider.
fn is_world_or_large_public(cidr: &str) -> bool {
    let Some((address, prefix)) = cidr.trim().split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    // A range wider than the largest private block (10.0.0.0/8, fc00::/7) covers public space,
    // whatever its address says; at that size only the private (or loopback, or "this
    // network") block itself is not public.
    if let Ok(v4) = address.parse::<std::net::Ipv4Addr>() {
        let first = v4.octets()[0];
        return prefix == 0 || prefix < 8 || (prefix == 8 && !matches!(first, 0 | 10 | 127));
    }
    if let Ok(v6) = address.parse::<std::net::Ipv6Addr>() {
        let first = v6.segments()[0];
        let local = (prefix >= 7 && (first & 0xfe00) == 0xfc00) || (prefix >= 10 && (first & 0xffc0) == 0xfe80);
        return prefix == 0 || (prefix <= 16 && !local);
    }
    false
}

/// An S3 ACL, canned or explicit, that grants to all users or all authenticated AWS users.
fn grants_public_acl(params: &str) -> bool {
    crate::text::has(params, "/groups/global/AllUsers")
        || crate::text::has(params, "/groups/global/AuthenticatedUsers")
        || any_value(params, "x-amz-acl", |acl| {
            PUBLIC_CANNED_ACLS.iter().any(|public| acl.eq_ignore_ascii_case(public))
        })
}

/// A public access block configuration with at least one switch off.
fn lifts_public_access_block(params: &str) -> bool {
    PUBLIC_ACCESS_BLOCK_SWITCHES
        .iter()
        .any(|switch| has_value(params, switch, "false"))
}

/// An image or snapshot attribute change that adds the group `all` (everyone) rather than
/// removing it: `{"createVolumePermission":{"add":{"items":[{"group":"all"}]}}}`.
fn shares_with_everyone(params: &str) -> bool {
    value_starts(params, "group")
        .filter(|&at| scalar_at(params, at).eq_ignore_ascii_case("all"))
        .any(|at| {
            let before = &params[..at];
            last_key(before, "add") > last_key(before, "remove")
        })
}

/// One past the offset of the last `"key":` in `text`, or zero when there is none.
fn last_key(text: &str, key: &str) -> usize {
    value_starts(text, key).last().map_or(0, |at| at + 1)
}
