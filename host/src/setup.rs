//! `trailwatch setup`: makes a trail the module can read, and says what it did. Idempotent:
//! each step looks first and changes only what is missing; a second run changes nothing and
//! says so.
//!
//! Steps: the bucket (created if missing); the bucket policy CloudTrail needs to deliver (its
//! two statements added, the bucket's other statements kept); the trail (all regions, global
//! service events, log file validation); logging started; the IAM policy for the module's own
//! user printed; with `write_config`, a working configuration written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::aws::cloudtrail::{self, EventSelector, NewTrail};
use crate::aws::endpoint::Partition;
use crate::aws::s3::S3;
use crate::aws::{AwsClient, AwsError};
use crate::config::{Config, Mode};
use crate::policy::{self, PolicyOptions};

/// What `setup` is asked for.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub bucket: String,
    pub trail: String,
    pub prefix: Option<String>,
    pub write_config: Option<PathBuf>,
    /// Make an organization trail; its member accounts' files go under `AWSLogs/<this id>/`.
    pub organization_id: Option<String>,
}

/// The statement ids of the delivery policy; statements with these ids are trailwatch's.
const ACL_CHECK: &str = "AWSCloudTrailAclCheck";
const WRITE: &str = "AWSCloudTrailWrite";
const ORGANIZATION_WRITE: &str = "AWSCloudTrailOrganizationWrite";

/// The statements CloudTrail needs to deliver `trail_arn`'s files for `account` into `bucket`
/// under `prefix`; for an organization trail, a third for the member accounts' files, which go
/// under `AWSLogs/<organization>/` (AWS's "bucket policy for an organization trail").
pub fn delivery_statements(
    partition: &str,
    bucket: &str,
    prefix: Option<&str>,
    account: &str,
    trail_arn: &str,
    organization: Option<&str>,
) -> Vec<Value> {
    let logs = |owner: &str| match prefix {
        Some(p) => format!("arn:{partition}:s3:::{bucket}/{p}/AWSLogs/{owner}/*"),
        None => format!("arn:{partition}:s3:::{bucket}/AWSLogs/{owner}/*"),
    };
    let write = |sid: &str, owner: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": logs(owner),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}
        })
    };
    let mut statements = vec![
        json!({
            "Sid": ACL_CHECK,
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": format!("arn:{partition}:s3:::{bucket}"),
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}
        }),
        write(WRITE, account),
    ];
    if let Some(org) = organization {
        statements.push(write(ORGANIZATION_WRITE, org));
    }
    statements
}

/// `existing` (a bucket policy's JSON text, if any) with the delivery statements in place of
/// any earlier ones of the same ids; `None` when it already has them exactly.
pub fn merged_policy(existing: Option<&str>, statements: Vec<Value>) -> anyhow::Result<Option<String>> {
    let mut doc: Value = match existing {
        Some(text) => serde_json::from_str(text).context("the bucket's policy is not JSON")?,
        None => json!({"Version": "2012-10-17", "Statement": []}),
    };
    let list = match doc.get_mut("Statement") {
        Some(Value::Array(a)) => a,
        Some(one @ Value::Object(_)) => {
            *one = Value::Array(vec![one.clone()]);
            one.as_array_mut().expect("made an array")
        }
        _ => bail!("the bucket's policy has no Statement list"),
    };
    let ours = |s: &Value| {
        matches!(
            s.get("Sid").and_then(Value::as_str),
            Some(ACL_CHECK | WRITE | ORGANIZATION_WRITE)
        )
    };
    let current: Vec<&Value> = list.iter().filter(|s| ours(s)).collect();
    if current.len() == statements.len() && statements.iter().all(|s| current.contains(&s)) {
        return Ok(None);
    }
    list.retain(|s| !ours(s));
    list.extend(statements);
    Ok(Some(doc.to_string()))
}

/// The configuration `--write-config` writes.
fn config_text(region: &str, options: &SetupOptions) -> String {
    let prefix = options.prefix.as_deref().unwrap_or("");
    format!(
        "# Written by `trailwatch setup`; README, \"Configuration for run\".\nmode = \"default\"\n\n[aws]\nregion = \"{region}\"\n\n\
         [source]\nbucket = \"{}\"\nprefix = \"{prefix}\"\ntrail_name = \"{}\"\n\n[[sinks]]\ntype = \"stdout\"\n",
        options.bucket, options.trail
    )
}

/// Runs the steps, printing one line per step; returns whether anything changed.
pub async fn setup(config: &Config, client: &AwsClient, options: &SetupOptions) -> anyhow::Result<bool> {
    if config.mode == Mode::Restricted {
        bail!("setup creates and changes a trail, which restricted mode never does");
    }
    let region = client.settings().region.clone();
    let partition = Partition::of(&region).name();
    let prefix = options
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    let mut changed = false;
    let say = |step: &str, what: &str| println!("{step}: {what}");

    let identity = crate::aws::sts::caller_identity(client).await?;
    let account = identity.account;
    let s3 = S3::new(client, &options.bucket);
    if bucket_exists(&s3).await? {
        say(&format!("bucket {}", options.bucket), "exists");
    } else {
        s3.create_bucket().await?;
        changed = true;
        say(&format!("bucket {}", options.bucket), "created");
    }

    let trail_arn = format!("arn:{partition}:cloudtrail:{region}:{account}:trail/{}", options.trail);
    let organization = options.organization_id.as_deref();
    if let Some(org) = organization {
        if !crate::layout::is_org_id(org) {
            bail!("--organization-id {org:?} is not an organization id (o- and 10 to 32 lowercase letters or digits)");
        }
    }
    let statements = delivery_statements(partition, &options.bucket, prefix, &account, &trail_arn, organization);
    match merged_policy(s3.policy().await?.as_deref(), statements)? {
        Some(policy) => {
            s3.put_policy(&policy).await?;
            changed = true;
            say(
                "bucket policy",
                "CloudTrail's delivery statements added (the bucket's others kept)",
            );
        }
        None => say("bucket policy", "has CloudTrail's delivery statements"),
    }

    let trails = cloudtrail::describe_trails(client).await?;
    match trails.iter().find(|t| t.name == options.trail) {
        Some(t) => {
            if t.s3_bucket_name.as_deref() != Some(options.bucket.as_str()) {
                bail!(
                    "trail {} exists and delivers to {}, not {}: setup does not change an existing trail's bucket",
                    options.trail,
                    t.s3_bucket_name.as_deref().unwrap_or("no bucket"),
                    options.bucket
                );
            }
            say(
                &format!("trail {}", options.trail),
                "exists (`trailwatch check` says what to fix in it)",
            );
        }
        None => {
            cloudtrail::create_trail(
                client,
                &NewTrail {
                    name: options.trail.clone(),
                    s3_bucket_name: options.bucket.clone(),
                    s3_key_prefix: prefix.map(str::to_owned),
                    is_multi_region_trail: true,
                    include_global_service_events: true,
                    enable_log_file_validation: true,
                    is_organization_trail: organization.is_some(),
                },
            )
            .await?;
            changed = true;
            say(
                &format!("trail {}", options.trail),
                if organization.is_some() {
                    "created (an organization trail; all regions, global service events, log file validation)"
                } else {
                    "created (all regions, global service events, log file validation)"
                },
            );
        }
    }
    // AWS gives a new trail one selector for all management events; an AWS-compatible server
    // may give it none, which would record nothing. An existing trail's own selectors are kept.
    let selectors = cloudtrail::event_selectors(client, &options.trail).await?;
    if selectors.event_selectors.is_empty() && selectors.advanced_event_selectors.is_empty() {
        let all = EventSelector {
            read_write_type: Some("All".into()),
            include_management_events: Some(true),
            ..EventSelector::default()
        };
        cloudtrail::put_event_selectors(client, &options.trail, &[all]).await?;
        changed = true;
        say("event selectors", "set to all management events, read and write");
    } else {
        say("event selectors", "in place (kept as they are)");
    }
    if cloudtrail::trail_status(client, &options.trail).await?.is_logging == Some(true) {
        say("logging", "on");
    } else {
        cloudtrail::start_logging(client, &options.trail).await?;
        changed = true;
        say("logging", "started");
    }

    if let Some(path) = &options.write_config {
        changed |= write_config(path, &config_text(&region, options))?;
    }
    println!("\nIAM policy for trailwatch's own user (default mode; `trailwatch policy` for others):");
    let policy = policy::policy(&PolicyOptions {
        mode: Mode::Default,
        bucket: options.bucket.clone(),
        prefix: prefix.map(str::to_owned),
        trail: Some(options.trail.clone()),
        kms_key: None,
        auto_configure: false,
        delete: true,
        region,
        queue: None,
        // The trail setup makes has log file validation on.
        integrity: true,
    });
    print!("{}", policy::render(&policy));
    println!(
        "{}",
        if changed {
            "\nsetup done"
        } else {
            "\nnothing changed: everything was in place"
        }
    );
    Ok(changed)
}

/// Whether the bucket is there (HeadBucket answers 404 for one that is not).
async fn bucket_exists(s3: &S3<'_>) -> Result<bool, AwsError> {
    match s3.list("", None, None, None).await {
        Ok(_) => Ok(true),
        Err(AwsError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes the configuration unless `path` holds it already; refuses to overwrite another.
fn write_config(path: &Path, text: &str) -> anyhow::Result<bool> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == text => {
            println!("config {}: unchanged", path.display());
            Ok(false)
        }
        Ok(_) => bail!(
            "{} exists with another configuration; not overwritten (remove it or choose another path)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("config {}: written", path.display());
            Ok(true)
        }
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delivery_statements_are_added_once_and_others_kept() {
        let ours = delivery_statements(
            "aws",
            "b",
            Some("org"),
            "111122223333",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/t",
            None,
        );
        assert_eq!(ours[1]["Resource"], "arn:aws:s3:::b/org/AWSLogs/111122223333/*");
        let first = merged_policy(None, ours.clone()).unwrap().unwrap();
        assert_eq!(
            merged_policy(Some(&first), ours.clone()).unwrap(),
            None,
            "a second run changes nothing"
        );
        let other = r#"{"Version":"2012-10-17","Statement":{"Sid":"Mine","Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::b"}}"#;
        let merged: Value = serde_json::from_str(&merged_policy(Some(other), ours.clone()).unwrap().unwrap()).unwrap();
        let sids: Vec<&str> = merged["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["Mine", ACL_CHECK, WRITE]);
        let changed = delivery_statements(
            "aws",
            "b",
            None,
            "111122223333",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/t",
            None,
        );
        let redone: Value = serde_json::from_str(&merged_policy(Some(&first), changed).unwrap().unwrap()).unwrap();
        assert_eq!(
            redone["Statement"].as_array().unwrap().len(),
            2,
            "earlier statements of ours replaced"
        );
    }

    #[test]
    fn an_organization_trail_may_also_write_under_the_organization_id() {
        let arn = "arn:aws-us-gov:cloudtrail:us-gov-west-1:111122223333:trail/org";
        let ours = delivery_statements("aws-us-gov", "b", None, "111122223333", arn, Some("o-abcdef1234"));
        let resources: Vec<&str> = ours.iter().map(|s| s["Resource"].as_str().unwrap()).collect();
        assert_eq!(
            resources,
            [
                "arn:aws-us-gov:s3:::b",
                "arn:aws-us-gov:s3:::b/AWSLogs/111122223333/*",
                "arn:aws-us-gov:s3:::b/AWSLogs/o-abcdef1234/*"
            ]
        );
        assert!(ours
            .iter()
            .all(|s| s["Condition"]["StringEquals"]["aws:SourceArn"] == arn));
        let first = merged_policy(None, ours.clone()).unwrap().unwrap();
        assert_eq!(merged_policy(Some(&first), ours).unwrap(), None);
        let plain = delivery_statements("aws-us-gov", "b", None, "111122223333", arn, None);
        let redone: Value = serde_json::from_str(&merged_policy(Some(&first), plain).unwrap().unwrap()).unwrap();
        assert_eq!(
            redone["Statement"].as_array().unwrap().len(),
            2,
            "the organization statement is ours too"
        );
    }
}
