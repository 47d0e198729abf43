//! Which events the module's mode keeps (the contract's `selection` interface, where the rules
//! are written out for users).

use crate::model::{Event, EventCategory};

/// What the module keeps of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keep {
    /// Every event.
    #[default]
    All,
    /// Write-only mode: writes, Insight events and the reads a security analyst cannot miss.
    WriteOnly,
}

/// Reads that hand out a secret, by event source and name.
const SECRET_READS: [(&str, &str); 3] = [
    ("secretsmanager.amazonaws.com", "GetSecretValue"),
    ("secretsmanager.amazonaws.com", "BatchGetSecretValue"),
    ("ec2.amazonaws.com", "GetPasswordData"),
];

/// Whether `keep` keeps `event`.
pub fn keeps(keep: Keep, event: &Event<'_>) -> bool {
    match keep {
        Keep::All => true,
        Keep::WriteOnly => {
            !event.read_only
                || event.event_category == EventCategory::Insight
                || event.category.flags.authentication
                || event.category.flags.denied
                || hands_out_a_secret(event)
        }
    }
}

fn hands_out_a_secret(event: &Event<'_>) -> bool {
    let (Some(source), Some(name)) = (event.event_source.as_deref(), event.event_name.as_deref()) else {
        return false;
    };
    SECRET_READS.iter().any(|&(s, n)| s == source && n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::LogFile;

    fn record(source: &str, name: &str, read_only: Option<bool>, error: Option<&str>) -> String {
        let read_only = read_only.map(|r| format!(r#","readOnly":{r}"#)).unwrap_or_default();
        let error = error.map(|e| format!(r#","errorCode":"{e}""#)).unwrap_or_default();
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T00:00:00Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"{name}","eventType":"AwsApiCall","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a"}}{read_only}{error}}}"#
        )
    }

    /// The names of the events `keep` keeps of `records`, with their indexes, and how many
    /// were left out.
    fn kept(keep: Keep, records: &[String], batch: u32) -> (Vec<(u32, String)>, u64) {
        let text = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let mut file = LogFile::open(text.into_bytes(), "k.json", crate::model::OpenOptions::default()).unwrap();
        file.select(keep);
        let mut out = Vec::new();
        loop {
            let events = file.next_batch(batch).unwrap();
            if events.is_empty() {
                break;
            }
            out.extend(
                events
                    .into_iter()
                    .map(|e| (e.index, e.event_name.unwrap().into_owned())),
            );
        }
        (out, file.left_out())
    }

    #[test]
    fn write_only_keeps_writes_insights_sign_ins_denials_and_secret_reads() {
        let records = [
            record("ec2.amazonaws.com", "DescribeInstances", Some(true), None),
            record("ec2.amazonaws.com", "RunInstances", Some(false), None),
            record("sts.amazonaws.com", "AssumeRole", Some(true), None),
            record("s3.amazonaws.com", "ListBuckets", Some(true), Some("AccessDenied")),
            record("secretsmanager.amazonaws.com", "GetSecretValue", Some(true), None),
            record("ec2.amazonaws.com", "GetPasswordData", Some(true), None),
            record("ssm.amazonaws.com", "GetParameter", Some(true), None),
            record("iam.amazonaws.com", "ListUsers", None, None),
            record("iam.amazonaws.com", "CreateUser", None, None),
        ];
        let (all, none_left) = kept(Keep::All, &records, 100);
        assert_eq!((all.len(), none_left), (9, 0));
        for batch in [1, 2, 100] {
            let (kept, left) = kept(Keep::WriteOnly, &records, batch);
            let names: Vec<(u32, &str)> = kept.iter().map(|(i, n)| (*i, n.as_str())).collect();
            assert_eq!(
                names,
                [
                    (1, "RunInstances"),
                    (2, "AssumeRole"),
                    (3, "ListBuckets"),
                    (4, "GetSecretValue"),
                    (5, "GetPasswordData"),
                    (8, "CreateUser")
                ],
                "batches of {batch}"
            );
            assert_eq!(left, 3);
        }
    }

    #[test]
    fn write_only_keeps_insight_events_whose_read_only_is_derived() {
        let insight = r#"{"eventVersion":"1.08","eventTime":"2024-03-01T00:00:00Z","awsRegion":"us-east-1","eventID":"i1","eventType":"AwsCloudTrailInsight","eventCategory":"Insight","sharedEventID":"s","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","insightType":"ApiCallRateInsight"}}"#;
        let text = format!(r#"{{"Records":[{insight}]}}"#);
        let mut file = LogFile::open(text.into_bytes(), "k.json", crate::model::OpenOptions::default()).unwrap();
        file.select(Keep::WriteOnly);
        let events = file.next_batch(10).unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].read_only, "an Insight event's read_only is derived true");
        assert_eq!(file.left_out(), 0);
    }

    #[test]
    fn a_file_of_reads_only_ends_cleanly_with_all_left_out() {
        let records: Vec<String> = (0..5)
            .map(|_| record("ec2.amazonaws.com", "DescribeVpcs", Some(true), None))
            .collect();
        assert_eq!(kept(Keep::WriteOnly, &records, 2), (vec![], 5));
    }
}
