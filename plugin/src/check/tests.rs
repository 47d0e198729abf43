use super::*;

const NOW: i64 = 1_764_000_000_000;

fn healthy(name: &str) -> TrailSnapshot {
    TrailSnapshot {
        trail: Trail {
            name: name.into(),
            arn: Some(format!("arn:aws:cloudtrail:us-east-1:111122223333:trail/{name}")),
            home_region: Some("us-east-1".into()),
            bucket: Some("trail-bucket".into()),
            prefix: None,
            multi_region: true,
            organization: false,
            include_global_service_events: true,
            log_file_validation: true,
            kms_key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            cloud_watch_logs_log_group_arn: Some("arn:aws:logs:us-east-1:111122223333:log-group:ct".into()),
            sns_topic_arn: None,
        },
        status: Some(TrailStatus {
            is_logging: true,
            latest_delivery_time_ms: Some(NOW - 5 * 60_000),
            ..TrailStatus::default()
        }),
        event_selectors: vec![EventSelector {
            read_write: ReadWrite::All,
            include_management_events: true,
            exclude_management_event_sources: vec![],
            data_resources: vec![],
        }],
        advanced_event_selectors: vec![],
        insight_types: vec![],
        tags: vec![],
        bucket: Some(BucketSettings {
            name: "trail-bucket".into(),
            policy: Some(
                r#"{"Statement":[{"Sid":"AWSCloudTrailWrite","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::trail-bucket/*"}]}"#
                    .into(),
            ),
            acl: vec![Grant {
                group_uri: None,
                user_id: Some("owner".into()),
                permission: "FULL_CONTROL".into(),
            }],
            public_access_block: Some(PublicAccessBlock {
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            }),
            logging_target: Some("access-logs".into()),
            versioning: Some("Enabled".into()),
            mfa_delete: Some("Enabled".into()),
        }),
    }
}

fn desired(mode: Mode) -> Desired {
    Desired {
        mode,
        bucket: None,
        prefix: None,
        trail_name: None,
        write_event_filter: false,
        max_delivery_age_minutes: 60,
    }
}

fn snapshot(trails: Vec<TrailSnapshot>) -> Snapshot {
    Snapshot {
        region: "us-east-1".into(),
        trails,
        unread: vec![],
        desired: desired(Mode::Default),
        now_ms: NOW,
    }
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.code).collect()
}

/// The one finding of a snapshot made from a healthy trail by `change`.
fn only(change: impl FnOnce(&mut TrailSnapshot)) -> Finding {
    let mut t = healthy("main");
    change(&mut t);
    let r = check(&snapshot(vec![t]));
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!(r.chosen.as_deref(), Some("main"));
    r.findings.into_iter().next().unwrap()
}

#[test]
fn a_healthy_trail_has_no_findings() {
    let r = check(&snapshot(vec![healthy("main")]));
    assert_eq!(codes(&r), Vec::<&str>::new());
    assert_eq!(r.chosen.as_deref(), Some("main"));
    assert_eq!(r.reason, "main: the only trail");
}

#[test]
fn each_misconfiguration_is_one_finding_with_its_evidence_and_fix() {
    let f = only(|t| t.status.as_mut().unwrap().is_logging = false);
    assert_eq!((f.code, f.severity), ("trail-not-logging", Severity::Error));
    assert_eq!(f.fix, Some(Fix::StartLogging("main".into())));
    assert_eq!(f.evidence[0].field, "GetTrailStatus.IsLogging");
    assert_eq!(f.controls, vec!["CIS 3.1", "CloudTrail.1"]);

    let f = only(|t| t.trail.multi_region = false);
    assert_eq!(
        (f.code, f.fix),
        ("not-multi-region", Some(Fix::MakeMultiRegion("main".into())))
    );
    let f = only(|t| t.trail.include_global_service_events = false);
    assert_eq!(f.code, "global-service-events-excluded");
    assert_eq!(f.fix, Some(Fix::IncludeGlobalServiceEvents("main".into())));

    let f = only(|t| t.status.as_mut().unwrap().latest_delivery_error = Some("AccessDenied".into()));
    assert_eq!((f.code, f.severity), ("delivery-error", Severity::Error));
    assert!(f.message.contains("AccessDenied"), "{}", f.message);
    assert_eq!(
        only(|t| t.status.as_mut().unwrap().latest_notification_error = Some("x".into())).code,
        "notification-error"
    );
    assert_eq!(
        only(|t| t.status.as_mut().unwrap().latest_digest_delivery_error = Some("x".into())).code,
        "digest-delivery-error"
    );
    assert_eq!(
        only(|t| t.status.as_mut().unwrap().latest_cloud_watch_logs_delivery_error = Some("x".into())).code,
        "cloudwatch-logs-delivery-error"
    );
    let f = only(|t| t.status.as_mut().unwrap().latest_delivery_time_ms = Some(NOW - 3 * 3_600_000));
    assert_eq!(f.code, "no-recent-delivery");
    assert!(f.message.contains("180 minutes ago"), "{}", f.message);
    assert_eq!(f.evidence[0].value, format_ms_for(NOW - 3 * 3_600_000));

    let f = only(|t| t.event_selectors[0].include_management_events = false);
    assert_eq!(f.code, "management-events-excluded");
    assert_eq!(
        f.fix,
        Some(Fix::SetManagementEvents {
            trail: "main".into(),
            read_write: ReadWrite::All
        })
    );
    let f = only(|t| t.event_selectors[0].exclude_management_event_sources = vec!["kms.amazonaws.com".into()]);
    assert_eq!((f.code, f.fix), ("management-event-sources-excluded", None));
    let f = only(|t| t.event_selectors[0].read_write = ReadWrite::ReadOnly);
    assert_eq!((f.code, f.severity), ("write-events-not-logged", Severity::Error));
    let f = only(|t| t.event_selectors[0].read_write = ReadWrite::WriteOnly);
    assert_eq!(f.code, "read-events-not-logged");
    assert_eq!(
        f.fix,
        Some(Fix::SetManagementEvents {
            trail: "main".into(),
            read_write: ReadWrite::All
        })
    );

    assert_eq!(
        only(|t| t.trail.log_file_validation = false).code,
        "log-file-validation-off"
    );
    assert_eq!(only(|t| t.trail.kms_key_id = None).code, "no-kms-encryption");
    assert_eq!(
        only(|t| t.trail.cloud_watch_logs_log_group_arn = None).code,
        "no-cloudwatch-logs"
    );
    let f = only(|t| {
        b(t).acl.push(Grant {
            group_uri: Some("http://acs.amazonaws.com/groups/global/AllUsers".into()),
            user_id: None,
            permission: "READ".into(),
        })
    });
    assert_eq!(f.code, "bucket-public");
    assert_eq!(f.evidence[0].value, "AllUsers READ");
    let f = only(|t| {
        b(t).policy = Some(
            r#"{"Statement":{"Sid":"open","Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject"}}"#.into(),
        )
    });
    assert_eq!((f.code, f.evidence[0].value.as_str()), ("bucket-public", "open"));
    // Anyone, but only under a condition (an organization id, a source IP), is not public here.
    assert_eq!(
        check(&snapshot(vec![{
            let mut t = healthy("main");
            b(&mut t).policy = Some(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}"#.into(),
            );
            t
        }]))
        .findings,
        vec![]
    );
    let f = only(|t| b(t).public_access_block.as_mut().unwrap().restrict_public_buckets = false);
    assert_eq!(
        (f.code, f.evidence[0].value.as_str()),
        ("public-access-block-off", "RestrictPublicBuckets off")
    );
    assert_eq!(
        only(|t| b(t).public_access_block = None).code,
        "public-access-block-off"
    );
    assert_eq!(only(|t| b(t).logging_target = None).code, "no-bucket-access-logging");
    assert_eq!(
        only(|t| b(t).versioning = Some("Suspended".into())).code,
        "bucket-versioning-off"
    );
    assert_eq!(
        only(|t| b(t).mfa_delete = Some("Disabled".into())).code,
        "mfa-delete-off"
    );
    let f = only(|t| t.trail.organization = true);
    assert_eq!((f.code, f.severity), ("organization-trail", Severity::Info));
}

fn b(t: &mut TrailSnapshot) -> &mut BucketSettings {
    t.bucket.as_mut().unwrap()
}

fn format_ms_for(ms: i64) -> String {
    crate::time::format_ms(ms)
}

#[test]
fn advanced_selectors_are_read_and_never_rewritten() {
    let field = |name: &str, equals: &[&str]| FieldSelector {
        field: name.into(),
        equals: equals.iter().map(|s| s.to_string()).collect(),
        ..FieldSelector::default()
    };
    let with = |selectors: Vec<Vec<FieldSelector>>| {
        let mut t = healthy("main");
        t.event_selectors.clear();
        t.advanced_event_selectors = selectors
            .into_iter()
            .map(|field_selectors| AdvancedEventSelector {
                name: None,
                field_selectors,
            })
            .collect();
        check(&snapshot(vec![t]))
    };
    assert_eq!(
        codes(&with(vec![vec![field("eventCategory", &["Management"])]])),
        Vec::<&str>::new()
    );
    let r = with(vec![vec![
        field("eventCategory", &["Management"]),
        field("readOnly", &["true"]),
    ]]);
    assert_eq!(codes(&r), vec!["write-events-not-logged"]);
    assert_eq!(r.findings[0].fix, None);
    assert!(r.findings[0].message.contains("advanced selectors"));
    let r = with(vec![vec![
        field("eventCategory", &["Management"]),
        field("readOnly", &["false"]),
    ]]);
    assert_eq!(codes(&r), vec!["read-events-not-logged"]);
    let r = with(vec![vec![
        field("eventCategory", &["Data"]),
        field("resources.type", &["AWS::S3::Object"]),
    ]]);
    assert_eq!(codes(&r), vec!["management-events-excluded"]);
    assert_eq!(r.findings[0].fix, None);
    let mut excluded = field("eventSource", &[]);
    excluded.not_equals = vec!["kms.amazonaws.com".into()];
    let r = with(vec![vec![field("eventCategory", &["Management"]), excluded]]);
    assert_eq!(codes(&r), vec!["management-event-sources-excluded"]);
}

#[test]
fn write_only_mode_wants_write_events_only_when_the_filter_is_on() {
    let mut s = snapshot(vec![healthy("main")]);
    s.desired = desired(Mode::WriteOnly);
    assert_eq!(
        codes(&check(&s)),
        Vec::<&str>::new(),
        "without the filter, All is what write-only mode wants"
    );
    s.desired.write_event_filter = true;
    let r = check(&s);
    assert_eq!(codes(&r), vec!["write-filter-not-applied"]);
    assert_eq!(
        r.findings[0].fix,
        Some(Fix::SetManagementEvents {
            trail: "main".into(),
            read_write: ReadWrite::WriteOnly
        })
    );
    s.trails[0].event_selectors[0].read_write = ReadWrite::WriteOnly;
    assert_eq!(codes(&check(&s)), Vec::<&str>::new());
    s.desired.write_event_filter = false;
    assert_eq!(codes(&check(&s)), vec!["read-events-not-logged"]);
}

#[test]
fn the_trail_is_chosen_by_name_then_bucket_and_prefix_then_rank() {
    let mut stopped = healthy("a-stopped");
    stopped.status.as_mut().unwrap().is_logging = false;
    let mut single = healthy("b-single-region");
    single.trail.multi_region = false;
    let s = snapshot(vec![stopped.clone(), single.clone(), healthy("z-main")]);
    let r = check(&s);
    assert_eq!(r.chosen.as_deref(), Some("z-main"));
    assert_eq!(codes(&r), vec!["several-trails"]);
    assert!(
        r.findings[0].message.contains("rather than a-stopped, b-single-region"),
        "{}",
        r.findings[0].message
    );

    let mut named = s.clone();
    named.desired.trail_name = Some("a-stopped".into());
    let r = check(&named);
    assert_eq!(r.chosen.as_deref(), Some("a-stopped"));
    assert_eq!(codes(&r), vec!["trail-not-logging"]);
    assert_eq!(r.reason, "a-stopped: named a-stopped in source.trail_name");
    named.desired.trail_name = Some("arn:aws:cloudtrail:us-east-1:111122223333:trail/b-single-region".into());
    assert_eq!(check(&named).chosen.as_deref(), Some("b-single-region"));
    named.desired.trail_name = Some("gone".into());
    let r = check(&named);
    assert_eq!((r.chosen.clone(), codes(&r)), (None, vec!["trail-not-found"]));

    let mut other = healthy("other");
    other.trail.bucket = Some("other-bucket".into());
    let mut prefixed = healthy("prefixed");
    prefixed.trail.prefix = Some("org".into());
    let mut by_bucket = snapshot(vec![healthy("main"), other, prefixed]);
    by_bucket.desired.bucket = Some("trail-bucket".into());
    by_bucket.desired.prefix = Some("/org/".into());
    let r = check(&by_bucket);
    assert_eq!(r.chosen.as_deref(), Some("prefixed"));
    assert_eq!(r.prefix.as_deref(), Some("org"));
    assert_eq!(codes(&r), Vec::<&str>::new());
    by_bucket.desired.bucket = Some("elsewhere".into());
    let r = check(&by_bucket);
    assert_eq!((r.chosen.clone(), codes(&r)), (None, vec!["no-trail-for-bucket"]));

    let mut named_other_bucket = snapshot(vec![healthy("main")]);
    named_other_bucket.desired.trail_name = Some("main".into());
    named_other_bucket.desired.bucket = Some("elsewhere".into());
    named_other_bucket.desired.prefix = Some("p".into());
    assert_eq!(
        codes(&check(&named_other_bucket)),
        vec!["bucket-mismatch", "prefix-mismatch"]
    );

    let r = check(&snapshot(vec![]));
    assert_eq!((r.chosen.clone(), codes(&r)), (None, vec!["no-trail"]));
}

#[test]
fn control_tower_trails_are_refused_by_name_tag_or_bucket() {
    let by_name = healthy("aws-controltower-BaselineCloudTrail");
    let mut by_tag = healthy("baseline");
    by_tag.tags.push(Tag {
        key: "aws:cloudformation:stack-name".into(),
        value: "AWSControlTowerBP-BASELINE-CLOUDTRAIL-MASTER".into(),
    });
    let mut by_bucket = healthy("logs");
    by_bucket.trail.bucket = Some("aws-controltower-logs-111122223333-us-east-1".into());
    for t in [by_name, by_tag, by_bucket] {
        let r = check(&snapshot(vec![t.clone()]));
        assert_eq!(r.chosen, None, "{}", t.trail.name);
        assert_eq!(codes(&r), vec!["control-tower-trail"]);
        assert!(r.findings[0].message.contains("does not support"));
    }
    // Beside a trail of the user's own, that one is read.
    let r = check(&snapshot(vec![
        healthy("aws-controltower-BaselineCloudTrail"),
        healthy("own"),
    ]));
    assert_eq!(r.chosen.as_deref(), Some("own"));
    assert_eq!(codes(&r), vec!["control-tower-trail"]);
}

#[test]
fn restricted_mode_checks_nothing_and_says_what_that_removes() {
    let mut s = snapshot(vec![]);
    s.desired = desired(Mode::Restricted);
    let r = check(&s);
    assert_eq!(codes(&r), vec!["check-off"]);
    assert!(r.findings[0].message.contains("automatic configuration"));
}

#[test]
fn a_failed_read_about_a_control_tower_trails_bucket_is_left_out() {
    let mut other = healthy("aws-controltower-BaselineCloudTrail");
    other.trail.bucket = Some("aws-controltower-logs-999988887777-us-east-1".into());
    other.bucket = None;
    let mut s = snapshot(vec![healthy("main"), other]);
    for target in ["aws-controltower-logs-999988887777-us-east-1", "trail-bucket", "main"] {
        s.unread.push(Unread {
            operation: "s3:GetBucketAcl".into(),
            target: target.into(),
            code: "AccessDenied".into(),
            message: "denied".into(),
        });
    }
    let r = check(&s);
    assert_eq!(r.chosen.as_deref(), Some("main"));
    let about: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.code == "could-not-read")
        .map(|f| f.message.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(about, ["trail-bucket", "main"]);
    assert_eq!(r.findings[1].trail.as_deref(), Some("main"));
    // A bucket shared by the Control Tower trail and the one read counts.
    s.trails[1].trail.bucket = Some("trail-bucket".into());
    assert_eq!(codes(&check(&s)).iter().filter(|c| **c == "could-not-read").count(), 3);
    s.trails[1].trail.bucket = Some("aws-controltower-logs-999988887777-us-east-1".into());
    // No trail chosen: every failed read is said, but those about a Control Tower trail.
    s.trails.remove(0);
    let r = check(&s);
    assert_eq!(r.chosen, None);
    assert_eq!(codes(&r), ["could-not-read", "could-not-read", "control-tower-trail"]);
    s.trails.clear();
    assert_eq!(codes(&check(&s)).iter().filter(|c| **c == "could-not-read").count(), 3);
}

#[test]
fn calls_that_failed_are_findings_and_the_rest_is_still_checked() {
    let mut t = healthy("main");
    t.bucket.as_mut().unwrap().logging_target = None;
    let mut s = snapshot(vec![t]);
    s.unread.push(Unread {
        operation: "s3:GetBucketPolicy".into(),
        target: "trail-bucket".into(),
        code: "AccessDenied".into(),
        message: "the IAM policy must allow s3:GetBucketPolicy".into(),
    });
    let r = check(&s);
    assert_eq!(codes(&r), vec!["could-not-read", "no-bucket-access-logging"]);
    assert!(r.findings[0]
        .message
        .contains("s3:GetBucketPolicy for trail-bucket failed (AccessDenied)"));
}

#[test]
fn codes_are_unique_and_described() {
    let mut seen = std::collections::BTreeSet::new();
    for c in CODES {
        assert!(seen.insert(c.code), "{} twice", c.code);
        assert!(!c.meaning.is_empty());
        assert!(
            c.code.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
            "{}",
            c.code
        );
    }
}

#[test]
fn the_readme_lists_every_code_as_the_plugin_has_it() {
    crate::readme::assert_block("finding-codes", &codes_table());
}
