//! `trailwatch policy`: the least-privilege IAM policy one configuration needs, and nothing more.
//!
//! Every action here is one the host calls in that configuration (the operation names map to
//! IAM actions as `aws::error::iam_action` says); the README's permission blocks are this
//! function's output, kept equal by a test.

use serde::Serialize;

use crate::aws::endpoint::Partition;
use crate::config::Mode;

/// What the policy is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOptions {
    pub mode: Mode,
    /// The trail's bucket.
    pub bucket: String,
    /// The key prefix before `AWSLogs/`, when the trail has one.
    pub prefix: Option<String>,
    /// The trail, when known: the CloudTrail actions are scoped to it.
    pub trail: Option<String>,
    /// The KMS key the log files are encrypted with.
    pub kms_key: Option<String>,
    /// `check --fix` (and automatic configuration) may change the trail.
    pub auto_configure: bool,
    /// Processed log files are deleted (`[delete] enabled`).
    pub delete: bool,
    /// The region, for the partition of the ARNs.
    pub region: String,
    /// The queue's ARN when reading through SQS (`[source] type = "sqs"`): the bucket is never
    /// listed then.
    pub queue: Option<String>,
    /// Digests are validated in `run` (`[integrity]`, on by default where the trail has log
    /// file validation on): their signatures need CloudTrail's public keys.
    pub integrity: bool,
}

/// An IAM policy document.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

/// One statement: allow `action` on `resource`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub action: Vec<&'static str>,
    pub resource: Vec<String>,
}

fn allow(sid: &'static str, action: &[&'static str], resource: Vec<String>) -> Statement {
    Statement {
        sid,
        effect: "Allow",
        action: action.to_vec(),
        resource,
    }
}

/// The policy `o` needs.
pub fn policy(o: &PolicyOptions) -> Policy {
    let p = Partition::of(&o.region).name();
    let bucket = format!("arn:{p}:s3:::{}", o.bucket);
    let prefix = o
        .prefix
        .as_deref()
        .map(|x| x.trim_matches('/'))
        .filter(|x| !x.is_empty());
    let logs = match prefix {
        Some(x) => format!("{bucket}/{x}/AWSLogs/*"),
        None => format!("{bucket}/AWSLogs/*"),
    };
    let mut statement = match &o.queue {
        // ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch, GetQueueAttributes.
        Some(queue) => vec![
            allow(
                "ReadTheQueue",
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                vec![queue.clone()],
            ),
            allow("ReadLogFiles", &["s3:GetObject"], vec![logs.clone()]),
        ],
        // ListObjectsV2 and HeadBucket (the bucket's region).
        None => vec![
            allow("ListTheTrailBucket", &["s3:ListBucket"], vec![bucket.clone()]),
            allow("ReadLogFiles", &["s3:GetObject"], vec![logs.clone()]),
        ],
    };
    if let Some(key) = &o.kms_key {
        statement.push(allow("DecryptLogFiles", &["kms:Decrypt"], vec![key.clone()]));
    }
    if o.mode == Mode::Restricted {
        return Policy {
            version: "2012-10-17",
            statement,
        };
    }
    if o.delete {
        statement.push(allow("DeleteProcessedLogFiles", &["s3:DeleteObject"], vec![logs]));
    }
    let trail = match &o.trail {
        Some(t) if t.starts_with("arn:") => t.clone(),
        Some(t) => format!("arn:{p}:cloudtrail:*:*:trail/{t}"),
        None => "*".into(),
    };
    // DescribeTrails allows no resource but `*`.
    statement.push(allow("ListTrails", &["cloudtrail:DescribeTrails"], vec!["*".into()]));
    // Digest signatures, checked with CloudTrail's public keys; ListPublicKeys allows no
    // resource but `*`. The SQS source follows no digests.
    if o.integrity && o.queue.is_none() {
        statement.push(allow(
            "ReadDigestPublicKeys",
            &["cloudtrail:ListPublicKeys"],
            vec!["*".into()],
        ));
    }
    statement.push(allow(
        "CheckTheTrail",
        &[
            "cloudtrail:GetTrailStatus",
            "cloudtrail:GetEventSelectors",
            "cloudtrail:GetInsightSelectors",
            "cloudtrail:ListTags",
        ],
        vec![trail.clone()],
    ));
    statement.push(allow(
        "CheckTheTrailBucket",
        &[
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketLogging",
            "s3:GetBucketVersioning",
        ],
        vec![bucket],
    ));
    if o.auto_configure {
        statement.push(allow(
            "ConfigureTheTrail",
            &[
                "cloudtrail:StartLogging",
                "cloudtrail:UpdateTrail",
                "cloudtrail:PutEventSelectors",
            ],
            vec![trail],
        ));
    }
    Policy {
        version: "2012-10-17",
        statement,
    }
}

/// The policy as the command prints it.
pub fn render(policy: &Policy) -> String {
    // Plain data: serializing cannot fail.
    serde_json::to_string_pretty(policy).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: Mode) -> PolicyOptions {
        PolicyOptions {
            mode,
            bucket: "trail-bucket".into(),
            prefix: None,
            trail: None,
            kms_key: None,
            auto_configure: false,
            delete: true,
            region: "us-east-1".into(),
            queue: None,
            integrity: true,
        }
    }

    fn actions(p: &Policy) -> Vec<&str> {
        p.statement.iter().flat_map(|s| s.action.iter().copied()).collect()
    }

    #[test]
    fn each_mode_and_option_adds_exactly_its_actions() {
        assert_eq!(
            actions(&policy(&options(Mode::Restricted))),
            ["s3:ListBucket", "s3:GetObject"]
        );
        let default = policy(&options(Mode::Default));
        assert_eq!(actions(&default).len(), 2 + 1 + 1 + 1 + 4 + 5);
        assert_eq!(policy(&options(Mode::WriteOnly)), default);
        let mut o = options(Mode::Default);
        o.integrity = false;
        assert!(!actions(&policy(&o)).contains(&"cloudtrail:ListPublicKeys"));
        assert_eq!(actions(&policy(&o)).len(), actions(&default).len() - 1);
        let mut o = options(Mode::Default);
        o.delete = false;
        assert!(!actions(&policy(&o)).contains(&"s3:DeleteObject"));
        o.auto_configure = true;
        o.kms_key = Some("arn:aws:kms:us-east-1:111122223333:key/k".into());
        o.trail = Some("main".into());
        o.prefix = Some("/org/".into());
        o.region = "us-gov-west-1".into();
        let p = policy(&o);
        assert!(actions(&p).contains(&"cloudtrail:PutEventSelectors") && actions(&p).contains(&"kms:Decrypt"));
        let text = render(&p);
        assert!(
            text.contains("\"arn:aws-us-gov:s3:::trail-bucket/org/AWSLogs/*\""),
            "{text}"
        );
        assert!(text.contains("\"arn:aws-us-gov:cloudtrail:*:*:trail/main\""), "{text}");
        assert!(text.starts_with("{\n  \"Version\": \"2012-10-17\""), "{text}");
        let mut queued = options(Mode::Restricted);
        queued.queue = Some("arn:aws:sqs:us-east-1:111122223333:trail-files".into());
        assert_eq!(
            actions(&policy(&queued)),
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "s3:GetObject"
            ]
        );
    }

    #[test]
    fn the_readme_shows_what_the_command_prints() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let mut readme = std::fs::read_to_string(path).unwrap();
        let mut auto = options(Mode::Default);
        auto.auto_configure = true;
        auto.trail = Some("main".into());
        let mut differ = Vec::new();
        let mut queued = options(Mode::Restricted);
        queued.queue = Some("arn:aws:sqs:us-east-1:111122223333:TRAIL-QUEUE".into());
        for (name, mut o) in [
            ("restricted", options(Mode::Restricted)),
            ("restricted-sqs", queued),
            ("default", options(Mode::Default)),
            ("auto-configure", auto),
        ] {
            o.bucket = "TRAIL-BUCKET".into();
            let (open, close) = (format!("<!-- policy:{name} -->\n"), format!("<!-- /policy:{name} -->"));
            let start = readme.find(&open).expect("the README's policy block") + open.len();
            let end = readme[start..].find(&close).expect("its end") + start;
            let block = format!("```json\n{}```\n", render(&policy(&o)));
            if readme[start..end] != block {
                differ.push(name);
                readme.replace_range(start..end, &block);
            }
        }
        if std::env::var_os("TRAILWATCH_BLESS").is_some() {
            std::fs::write(path, readme).unwrap();
            return;
        }
        assert!(
            differ.is_empty(),
            "README.md's policies {differ:?} differ from `trailwatch policy`: run TRAILWATCH_BLESS=1 cargo test -p trailwatch --lib readme"
        );
    }
}
