//! The trail check: which trail the module should read, and what is wrong with it.
//!
//! Pure: a snapshot of what the host read from CloudTrail and S3, the module's settings and
//! the time go in; a report comes out. Every finding has a stable code from [`CODES`], which
//! says its severity and the benchmark controls it corresponds to (CIS AWS Foundations 1.4–5.0
//! section 3, Security Hub's CloudTrail controls).

pub mod model;

use model::*;

/// A finding code, what it means and the controls it corresponds to.
pub struct Code {
    pub code: &'static str,
    pub severity: Severity,
    pub controls: &'static [&'static str],
    pub meaning: &'static str,
}

/// Every code the check gives.
pub const CODES: &[Code] = &[
    code(
        "no-trail",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1", "CloudTrail.3"],
        "no trail in this account and region",
    ),
    code(
        "trail-not-found",
        Severity::Error,
        &[],
        "the trail named in the configuration does not exist",
    ),
    code(
        "no-trail-for-bucket",
        Severity::Error,
        &[],
        "no trail delivers to the configured bucket and prefix",
    ),
    code(
        "several-trails",
        Severity::Info,
        &[],
        "several trails could be read; says which was chosen and why",
    ),
    code(
        "control-tower-trail",
        Severity::Error,
        &[],
        "the trail is managed by AWS Control Tower, which is not supported",
    ),
    code(
        "trail-not-logging",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1"],
        "the trail is stopped: nothing is delivered",
    ),
    code(
        "delivery-error",
        Severity::Error,
        &[],
        "CloudTrail could not deliver the latest log file to the bucket",
    ),
    code(
        "notification-error",
        Severity::Warning,
        &[],
        "CloudTrail could not publish the latest SNS notification",
    ),
    code(
        "digest-delivery-error",
        Severity::Warning,
        &["CIS 3.2", "CloudTrail.4"],
        "CloudTrail could not deliver the latest digest file",
    ),
    code(
        "cloudwatch-logs-delivery-error",
        Severity::Warning,
        &["CIS 3.4", "CloudTrail.5"],
        "CloudTrail could not deliver to CloudWatch Logs",
    ),
    code(
        "no-recent-delivery",
        Severity::Warning,
        &[],
        "no log file was delivered for longer than expected",
    ),
    code(
        "not-multi-region",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1"],
        "the trail logs its home region only: events elsewhere are missed",
    ),
    code(
        "global-service-events-excluded",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1"],
        "IAM, STS and CloudFront events are not logged",
    ),
    code(
        "organization-trail",
        Severity::Info,
        &[],
        "an organization trail: keys hold the organization id",
    ),
    code(
        "management-events-excluded",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1"],
        "the trail logs no management events",
    ),
    code(
        "management-event-sources-excluded",
        Severity::Warning,
        &["CloudTrail.1"],
        "the events of some services are excluded",
    ),
    code(
        "write-events-not-logged",
        Severity::Error,
        &["CIS 3.1", "CloudTrail.1"],
        "the trail logs read events only",
    ),
    code(
        "read-events-not-logged",
        Severity::Warning,
        &["CIS 3.1", "CloudTrail.1"],
        "the trail logs write events only, and the module wants all",
    ),
    code(
        "write-filter-not-applied",
        Severity::Warning,
        &[],
        "write-only mode with the write-event filter, but the trail logs read events too",
    ),
    code(
        "bucket-mismatch",
        Severity::Error,
        &[],
        "the trail delivers to another bucket than the one configured",
    ),
    code(
        "prefix-mismatch",
        Severity::Error,
        &[],
        "the trail delivers under another key prefix than the one configured",
    ),
    code(
        "log-file-validation-off",
        Severity::Warning,
        &["CIS 3.2", "CloudTrail.4"],
        "no digest files: tampering with log files goes unnoticed",
    ),
    code(
        "bucket-public",
        Severity::Warning,
        &["CIS 3.3", "CloudTrail.6"],
        "the bucket's ACL or policy lets anyone read or write it",
    ),
    code(
        "public-access-block-off",
        Severity::Warning,
        &["CIS 3.3", "CloudTrail.6", "S3.8"],
        "the bucket does not block public access",
    ),
    code(
        "no-cloudwatch-logs",
        Severity::Warning,
        &["CIS 3.4", "CloudTrail.5"],
        "the trail does not deliver to CloudWatch Logs",
    ),
    code(
        "no-bucket-access-logging",
        Severity::Warning,
        &["CIS 3.6", "CloudTrail.7"],
        "S3 server access logging is off on the bucket",
    ),
    code(
        "no-kms-encryption",
        Severity::Warning,
        &["CIS 3.7", "CloudTrail.2"],
        "log files are not encrypted with a KMS key",
    ),
    code(
        "bucket-versioning-off",
        Severity::Warning,
        &["S3.14"],
        "deleted or overwritten log files cannot be recovered",
    ),
    code(
        "mfa-delete-off",
        Severity::Warning,
        &["CIS 2.1.2", "Prowler cloudtrail_bucket_requires_mfa_delete"],
        "versions can be deleted without MFA",
    ),
    code(
        "could-not-read",
        Severity::Warning,
        &[],
        "a setting could not be read (a missing permission, most often)",
    ),
    code(
        "check-off",
        Severity::Info,
        &[],
        "restricted mode: the trail is not checked",
    ),
    // Reported by the host, not by the check: the change auto-configure made.
    code(
        "trail-changed",
        Severity::Info,
        &[],
        "auto-configure changed the trail; the evidence holds the setting before and after",
    ),
];

const fn code(
    code: &'static str,
    severity: Severity,
    controls: &'static [&'static str],
    meaning: &'static str,
) -> Code {
    Code {
        code,
        severity,
        controls,
        meaning,
    }
}

/// [`CODES`] as the README's Markdown table.
pub fn codes_table() -> String {
    let mut out = String::from("| code | severity | controls | means |\n|---|---|---|---|\n");
    for c in CODES {
        let severity = match c.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let controls = if c.controls.is_empty() {
            "–".to_owned()
        } else {
            c.controls.join(", ")
        };
        out.push_str(&format!("| `{}` | {severity} | {controls} | {} |\n", c.code, c.meaning));
    }
    out
}

/// The entry of `code` in [`CODES`].
pub fn lookup(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// Groups that mean anyone (`AllUsers`) or any AWS account (`AuthenticatedUsers`).
const PUBLIC_GROUPS: [&str; 2] = [
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
];

struct Findings {
    list: Vec<Finding>,
}

impl Findings {
    fn add(
        &mut self,
        code: &'static str,
        trail: Option<&str>,
        message: String,
        evidence: Vec<Evidence>,
        fix: Option<Fix>,
    ) {
        let entry = lookup(code).unwrap_or_else(|| panic!("finding code {code} is not in CODES"));
        self.list.push(Finding {
            code,
            severity: entry.severity,
            trail: trail.map(str::to_owned),
            message,
            evidence,
            controls: entry.controls.to_vec(),
            fix,
        });
    }
}

fn ev(field: &str, value: impl std::fmt::Display) -> Evidence {
    Evidence {
        field: field.to_owned(),
        value: value.to_string(),
    }
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "(none)".into())
}

/// A prefix as the module compares it: no slashes at its ends, empty for none.
fn norm_prefix(p: Option<&str>) -> &str {
    p.unwrap_or("").trim_matches('/')
}

/// Checks `snapshot`.
pub fn check(snapshot: &Snapshot) -> Report {
    let d = &snapshot.desired;
    let mut f = Findings { list: Vec::new() };
    if d.mode == Mode::Restricted {
        f.add(
            "check-off",
            None,
            "restricted mode makes no CloudTrail call, so the trail is not checked: misconfiguration \
             detection, automatic configuration, log-location discovery and deletion are off"
                .into(),
            vec![ev("mode", "restricted")],
            None,
        );
        return Report {
            chosen: None,
            reason: "restricted mode: the configured bucket is read as it is".into(),
            prefix: d.prefix.clone(),
            organization: false,
            findings: f.list,
        };
    }
    let mut choosing = Findings { list: Vec::new() };
    let (chosen, reason) = choose(snapshot, &mut choosing);
    // A read that failed is said, since it may be why a trail was or was not chosen, but
    // those about Control Tower trails only (another account's log-archive bucket, most
    // often): such trails are never read. A bucket shared with another trail still counts.
    let matters = |u: &&Unread| {
        let about = |tower: bool| {
            snapshot
                .trails
                .iter()
                .any(|t| is_about(u, t) && is_control_tower(t).is_some() == tower)
        };
        about(false) || !about(true)
    };
    for u in snapshot.unread.iter().filter(matters) {
        let trail = chosen
            .filter(|t| t.trail.name == u.target)
            .map(|t| t.trail.name.as_str());
        f.add(
            "could-not-read",
            trail,
            format!(
                "{} for {} failed ({}), so what it says is not checked: {}",
                u.operation, u.target, u.code, u.message
            ),
            vec![ev(&u.operation, &u.code)],
            None,
        );
    }
    f.list.extend(choosing.list);
    let Some(t) = chosen else {
        return Report {
            chosen: None,
            reason,
            prefix: d.prefix.clone(),
            organization: false,
            findings: f.list,
        };
    };
    check_trail(snapshot, t, &mut f);
    Report {
        chosen: Some(t.trail.name.clone()),
        reason,
        prefix: t.trail.prefix.clone(),
        organization: t.trail.organization,
        findings: f.list,
    }
}

/// Whether a failed read was about trail `t`: the trail itself, its ARN, or its bucket.
fn is_about(u: &Unread, t: &TrailSnapshot) -> bool {
    u.target == t.trail.name
        || t.trail.arn.as_deref() == Some(&u.target)
        || t.trail.bucket.as_deref() == Some(&u.target)
}

/// Whether AWS Control Tower manages the trail: by its name, its tags or its bucket's name.
fn is_control_tower(t: &TrailSnapshot) -> Option<Evidence> {
    if t.trail.name.starts_with("aws-controltower-") {
        return Some(ev("DescribeTrails.Name", &t.trail.name));
    }
    if let Some(tag) = t.tags.iter().find(|tag| {
        tag.key.starts_with("aws-controltower")
            || (tag.key == "aws:cloudformation:stack-name" && tag.value.starts_with("AWSControlTower"))
    }) {
        return Some(ev(&format!("ListTags.{}", tag.key), &tag.value));
    }
    match &t.trail.bucket {
        Some(b) if b.starts_with("aws-controltower-logs-") => Some(ev("DescribeTrails.S3BucketName", b)),
        _ => None,
    }
}

/// The trail to read, and why; adds the findings about the choice.
fn choose<'s>(s: &'s Snapshot, f: &mut Findings) -> (Option<&'s TrailSnapshot>, String) {
    let d = &s.desired;
    if s.trails.is_empty() {
        f.add(
            "no-trail",
            None,
            format!(
                "DescribeTrails found no trail in {}: create a multi-region trail (`trailwatch setup`) or set \
                 source.bucket",
                s.region
            ),
            vec![ev("DescribeTrails.trailList", "[]")],
            None,
        );
        return (None, "no trail".into());
    }
    let names = s
        .trails
        .iter()
        .map(|t| t.trail.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut candidates: Vec<&TrailSnapshot> = s.trails.iter().collect();
    let mut why = Vec::new();
    if let Some(wanted) = &d.trail_name {
        candidates.retain(|t| &t.trail.name == wanted || t.trail.arn.as_ref() == Some(wanted));
        if candidates.is_empty() {
            f.add(
                "trail-not-found",
                None,
                format!("no trail named {wanted} (trails: {names}); fix source.trail_name"),
                vec![ev("source.trail_name", wanted), ev("DescribeTrails.Name", &names)],
                None,
            );
            return (None, format!("no trail named {wanted}"));
        }
        why.push(format!("named {wanted} in source.trail_name"));
    } else if let Some(bucket) = &d.bucket {
        let same_bucket: Vec<&TrailSnapshot> = candidates
            .iter()
            .copied()
            .filter(|t| t.trail.bucket.as_ref() == Some(bucket))
            .collect();
        if same_bucket.is_empty() {
            f.add(
                "no-trail-for-bucket",
                None,
                format!(
                    "no trail delivers to bucket {bucket} (trails: {}); the module would read a bucket no trail writes to",
                    s.trails
                        .iter()
                        .map(|t| format!("{} → {}", t.trail.name, opt(&t.trail.bucket)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![ev("source.bucket", bucket)],
                None,
            );
            return (None, format!("no trail delivers to {bucket}"));
        }
        candidates = same_bucket;
        why.push(format!("delivers to {bucket}"));
        let wanted = norm_prefix(d.prefix.as_deref());
        let same_prefix: Vec<&TrailSnapshot> = candidates
            .iter()
            .copied()
            .filter(|t| norm_prefix(t.trail.prefix.as_deref()) == wanted)
            .collect();
        if !same_prefix.is_empty() {
            candidates = same_prefix;
        }
    }
    // Control Tower trails are never read, even when they are the only ones.
    let (tower, others): (Vec<&TrailSnapshot>, Vec<&TrailSnapshot>) =
        candidates.iter().partition(|t| is_control_tower(t).is_some());
    for t in &tower {
        let evidence = is_control_tower(t).into_iter().collect();
        f.add(
            "control-tower-trail",
            Some(&t.trail.name),
            format!(
                "trail {} is managed by AWS Control Tower, which trailwatch does not support: its logs live in the \
                 log-archive account and it must not be reconfigured; read that account's bucket in restricted mode",
                t.trail.name
            ),
            evidence,
            None,
        );
    }
    if others.is_empty() {
        return (None, "only Control Tower trails".into());
    }
    // The best of the rest: logging, in every region, with management events, from its home region.
    let rank = |t: &TrailSnapshot| {
        (
            t.status.as_ref().is_some_and(|st| st.is_logging),
            t.trail.multi_region,
            management(t).is_some(),
            t.trail.home_region.as_deref() == Some(s.region.as_str()),
            std::cmp::Reverse(t.trail.name.clone()),
        )
    };
    let best = *others.iter().max_by_key(|t| rank(t)).expect("one candidate at least");
    if others.len() > 1 {
        let rest: Vec<&str> = others
            .iter()
            .filter(|t| !std::ptr::eq(**t, best))
            .map(|t| t.trail.name.as_str())
            .collect();
        f.add(
            "several-trails",
            Some(&best.trail.name),
            format!(
                "{} trails fit; reading {} (logging, multi-region, management events and home region rank first; \
                 then the name) rather than {}; set source.trail_name to choose",
                others.len(),
                best.trail.name,
                rest.join(", ")
            ),
            vec![ev("DescribeTrails.Name", &names)],
            None,
        );
        why.push("ranked first of several".into());
    }
    if why.is_empty() {
        why.push("the only trail".into());
    }
    (Some(best), format!("{}: {}", best.trail.name, why.join("; ")))
}

/// Which management events the trail logs, when it logs some: their read/write type, the
/// sources it leaves out, and whether that came from advanced selectors.
fn management(t: &TrailSnapshot) -> Option<(ReadWrite, Vec<String>, bool)> {
    if !t.advanced_event_selectors.is_empty() {
        for sel in &t.advanced_event_selectors {
            let field = |name: &str| sel.field_selectors.iter().find(|fs| fs.field == name);
            let is_management = field("eventCategory").is_some_and(|fs| fs.equals.iter().any(|v| v == "Management"));
            if !is_management {
                continue;
            }
            let read_write = match field("readOnly").map(|fs| fs.equals.as_slice()) {
                Some([v]) if v == "true" => ReadWrite::ReadOnly,
                Some([v]) if v == "false" => ReadWrite::WriteOnly,
                _ => ReadWrite::All,
            };
            let excluded = field("eventSource").map(|fs| fs.not_equals.clone()).unwrap_or_default();
            return Some((read_write, excluded, true));
        }
        return None;
    }
    // Classic selectors: the widest type over those that include management events.
    let mut found: Option<(ReadWrite, Vec<String>, bool)> = None;
    for sel in t.event_selectors.iter().filter(|s| s.include_management_events) {
        let merged = match (found.as_ref().map(|f| f.0), sel.read_write) {
            (None, rw) => rw,
            (Some(a), b) if a == b => a,
            _ => ReadWrite::All,
        };
        let mut excluded = found
            .map(|f| f.1)
            .unwrap_or_else(|| sel.exclude_management_event_sources.clone());
        excluded.retain(|src| sel.exclude_management_event_sources.contains(src));
        found = Some((merged, excluded, false));
    }
    found
}

fn check_trail(s: &Snapshot, t: &TrailSnapshot, f: &mut Findings) {
    let d = &s.desired;
    let name = t.trail.name.as_str();
    let trail = Some(name);
    if t.trail.organization {
        f.add(
            "organization-trail",
            trail,
            format!(
                "{name} is an organization trail: its keys are AWSLogs/<organization id>/<account>/…, which the \
                 module reads as they are"
            ),
            vec![ev("DescribeTrails.IsOrganizationTrail", true)],
            None,
        );
    }
    if let Some(bucket) = &d.bucket {
        if t.trail.bucket.as_ref() != Some(bucket) {
            f.add(
                "bucket-mismatch",
                trail,
                format!(
                    "{name} delivers to bucket {}, but the module reads {bucket}: set source.bucket to the trail's",
                    opt(&t.trail.bucket)
                ),
                vec![
                    ev("DescribeTrails.S3BucketName", opt(&t.trail.bucket)),
                    ev("source.bucket", bucket),
                ],
                None,
            );
        }
    }
    if d.prefix.is_some() && norm_prefix(d.prefix.as_deref()) != norm_prefix(t.trail.prefix.as_deref()) {
        f.add(
            "prefix-mismatch",
            trail,
            format!(
                "{name} delivers under prefix {:?}, but the module reads {:?}: set source.prefix to the trail's",
                norm_prefix(t.trail.prefix.as_deref()),
                norm_prefix(d.prefix.as_deref())
            ),
            vec![
                ev("DescribeTrails.S3KeyPrefix", opt(&t.trail.prefix)),
                ev("source.prefix", opt(&d.prefix)),
            ],
            None,
        );
    }
    check_status(s, t, f);
    if !t.trail.multi_region {
        f.add(
            "not-multi-region",
            trail,
            format!(
                "{name} logs {} only: activity in every other region is missed",
                t.trail.home_region.as_deref().unwrap_or("its home region")
            ),
            vec![ev("DescribeTrails.IsMultiRegionTrail", false)],
            Some(Fix::MakeMultiRegion(name.into())),
        );
    }
    if !t.trail.include_global_service_events {
        f.add(
            "global-service-events-excluded",
            trail,
            format!("{name} leaves out global service events: IAM, STS and CloudFront calls are missed"),
            vec![ev("DescribeTrails.IncludeGlobalServiceEvents", false)],
            Some(Fix::IncludeGlobalServiceEvents(name.into())),
        );
    }
    check_selectors(d, t, f);
    check_advice(t, f);
}

fn check_status(s: &Snapshot, t: &TrailSnapshot, f: &mut Findings) {
    let name = t.trail.name.as_str();
    let trail = Some(name);
    let Some(st) = &t.status else { return };
    if !st.is_logging {
        let mut evidence = vec![ev("GetTrailStatus.IsLogging", false)];
        if let Some(ms) = st.stop_logging_time_ms {
            evidence.push(ev("GetTrailStatus.StopLoggingTime", crate::time::format_ms(ms)));
        }
        f.add(
            "trail-not-logging",
            trail,
            format!("{name} is stopped: CloudTrail delivers nothing until logging starts again"),
            evidence,
            Some(Fix::StartLogging(name.into())),
        );
    }
    let errors = [
        (
            "delivery-error",
            "LatestDeliveryError",
            &st.latest_delivery_error,
            "deliver log files to the bucket (check the bucket policy and KMS key policy)",
        ),
        (
            "notification-error",
            "LatestNotificationError",
            &st.latest_notification_error,
            "publish SNS notifications (check the topic policy)",
        ),
        (
            "digest-delivery-error",
            "LatestDigestDeliveryError",
            &st.latest_digest_delivery_error,
            "deliver digest files",
        ),
        (
            "cloudwatch-logs-delivery-error",
            "LatestCloudWatchLogsDeliveryError",
            &st.latest_cloud_watch_logs_delivery_error,
            "deliver to CloudWatch Logs (check the role)",
        ),
    ];
    for (code, field, value, what) in errors {
        if let Some(e) = value.as_ref().filter(|e| !e.is_empty()) {
            f.add(
                code,
                trail,
                format!("CloudTrail could not {what} for {name}: {e}"),
                vec![ev(&format!("GetTrailStatus.{field}"), e)],
                None,
            );
        }
    }
    if st.is_logging {
        let limit_ms = i64::from(s.desired.max_delivery_age_minutes) * 60_000;
        if let Some(last) = st.latest_delivery_time_ms {
            let age_ms = s.now_ms - last;
            if age_ms > limit_ms {
                f.add(
                    "no-recent-delivery",
                    trail,
                    format!(
                        "{name} delivered its last log file {} minutes ago (expected within {}): check the \
                         delivery errors and the bucket policy, or raise trail.max_delivery_age_minutes for a quiet account",
                        age_ms / 60_000,
                        s.desired.max_delivery_age_minutes
                    ),
                    vec![ev("GetTrailStatus.LatestDeliveryTime", crate::time::format_ms(last))],
                    None,
                );
            }
        }
    }
}

fn check_selectors(d: &Desired, t: &TrailSnapshot, f: &mut Findings) {
    let name = t.trail.name.as_str();
    let trail = Some(name);
    let filter = d.mode == Mode::WriteOnly && d.write_event_filter;
    let wanted = if filter { ReadWrite::WriteOnly } else { ReadWrite::All };
    let fix = |advanced: bool| {
        (!advanced).then(|| Fix::SetManagementEvents {
            trail: name.into(),
            read_write: wanted,
        })
    };
    let advanced_note = |advanced: bool| {
        if advanced {
            " (advanced selectors: change them yourself; they are not rewritten automatically)"
        } else {
            ""
        }
    };
    let Some((rw, excluded, advanced)) = management(t) else {
        let advanced = !t.advanced_event_selectors.is_empty();
        f.add(
            "management-events-excluded",
            trail,
            format!(
                "{name} logs no management events: API activity is not delivered at all{}",
                advanced_note(advanced)
            ),
            vec![ev(
                if advanced {
                    "GetEventSelectors.AdvancedEventSelectors"
                } else {
                    "GetEventSelectors.EventSelectors"
                },
                "no management events",
            )],
            fix(advanced),
        );
        return;
    };
    let source = if advanced {
        "GetEventSelectors.AdvancedEventSelectors.readOnly"
    } else {
        "GetEventSelectors.EventSelectors.ReadWriteType"
    };
    if !excluded.is_empty() {
        f.add(
            "management-event-sources-excluded",
            trail,
            format!(
                "{name} leaves out the management events of {}: they are missed",
                excluded.join(", ")
            ),
            vec![ev(
                "GetEventSelectors.ExcludeManagementEventSources",
                excluded.join(", "),
            )],
            None,
        );
    }
    match (rw, wanted) {
        (ReadWrite::ReadOnly, _) => f.add(
            "write-events-not-logged",
            trail,
            format!(
                "{name} logs read management events only: every change to the account is missed{}",
                advanced_note(advanced)
            ),
            vec![ev(source, rw.name())],
            fix(advanced),
        ),
        (ReadWrite::WriteOnly, ReadWrite::All) => f.add(
            "read-events-not-logged",
            trail,
            format!(
                "{name} logs write management events only, and the module is in {} mode: reads (discovery, data \
                 access) are missed{}",
                if d.mode == Mode::WriteOnly {
                    "write-only mode without the write-event filter, a"
                } else {
                    "default"
                },
                advanced_note(advanced)
            ),
            vec![ev(source, rw.name())],
            fix(advanced),
        ),
        (ReadWrite::All, ReadWrite::WriteOnly) => f.add(
            "write-filter-not-applied",
            trail,
            format!(
                "write-only mode with trail.write_event_filter on, but {name} logs read events too: they are delivered \
                 (and paid for) only to be dropped{}",
                advanced_note(advanced)
            ),
            vec![ev(source, rw.name())],
            fix(advanced),
        ),
        _ => {}
    }
}

fn check_advice(t: &TrailSnapshot, f: &mut Findings) {
    let name = t.trail.name.as_str();
    let trail = Some(name);
    if !t.trail.log_file_validation {
        f.add(
            "log-file-validation-off",
            trail,
            format!(
                "{name} has log file validation off: no digest files, so deleted or altered log files go unnoticed"
            ),
            vec![ev("DescribeTrails.LogFileValidationEnabled", false)],
            None,
        );
    }
    if t.trail.kms_key_id.is_none() {
        f.add(
            "no-kms-encryption",
            trail,
            format!("{name} does not encrypt its log files with a KMS key (SSE-KMS)"),
            vec![ev("DescribeTrails.KmsKeyId", "(none)")],
            None,
        );
    }
    if t.trail.cloud_watch_logs_log_group_arn.is_none() {
        f.add(
            "no-cloudwatch-logs",
            trail,
            format!("{name} does not deliver to CloudWatch Logs"),
            vec![ev("DescribeTrails.CloudWatchLogsLogGroupArn", "(none)")],
            None,
        );
    }
    let Some(b) = &t.bucket else { return };
    let bucket = b.name.as_str();
    let public_grants: Vec<String> = b
        .acl
        .iter()
        .filter(|g| g.group_uri.as_deref().is_some_and(|u| PUBLIC_GROUPS.contains(&u)))
        .map(|g| {
            format!(
                "{} {}",
                g.group_uri
                    .as_deref()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default(),
                g.permission
            )
        })
        .collect();
    let public_statements = b.policy.as_deref().map(public_policy_statements).unwrap_or_default();
    if !public_grants.is_empty() || !public_statements.is_empty() {
        let mut evidence = Vec::new();
        if !public_grants.is_empty() {
            evidence.push(ev("GetBucketAcl.Grants", public_grants.join(", ")));
        }
        if !public_statements.is_empty() {
            evidence.push(ev("GetBucketPolicy.Statement", public_statements.join(", ")));
        }
        f.add(
            "bucket-public",
            trail,
            format!("bucket {bucket} of {name} is public: anyone can reach the log files; remove the public grants and statements"),
            evidence,
            None,
        );
    }
    let pab_off = match &b.public_access_block {
        None => Some("(none)".to_owned()),
        Some(p) => {
            let off: Vec<&str> = [
                ("BlockPublicAcls", p.block_public_acls),
                ("IgnorePublicAcls", p.ignore_public_acls),
                ("BlockPublicPolicy", p.block_public_policy),
                ("RestrictPublicBuckets", p.restrict_public_buckets),
            ]
            .iter()
            .filter(|(_, on)| !on)
            .map(|(n, _)| *n)
            .collect();
            (!off.is_empty()).then(|| format!("{} off", off.join(", ")))
        }
    };
    if let Some(what) = pab_off {
        f.add(
            "public-access-block-off",
            trail,
            format!("bucket {bucket} does not block public access: turn on all four Block Public Access settings"),
            vec![ev("GetPublicAccessBlock", what)],
            None,
        );
    }
    if b.logging_target.is_none() {
        f.add(
            "no-bucket-access-logging",
            trail,
            format!("bucket {bucket} has server access logging off: who read or deleted log files is not recorded"),
            vec![ev("GetBucketLogging.LoggingEnabled", "(none)")],
            None,
        );
    }
    if b.versioning.as_deref() != Some("Enabled") {
        f.add(
            "bucket-versioning-off",
            trail,
            format!("bucket {bucket} has versioning off: a deleted or overwritten log file cannot be recovered"),
            vec![ev("GetBucketVersioning.Status", opt(&b.versioning))],
            None,
        );
    } else if b.mfa_delete.as_deref() != Some("Enabled") {
        f.add(
            "mfa-delete-off",
            trail,
            format!("bucket {bucket} lets log file versions be deleted without MFA"),
            vec![ev("GetBucketVersioning.MfaDelete", opt(&b.mfa_delete))],
            None,
        );
    }
}

/// The statements of a bucket policy that allow anyone (`"Principal": "*"` or `{"AWS": "*"}`)
/// without a condition, by `Sid` or position.
fn public_policy_statements(policy: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return Vec::new();
    };
    let statements = match doc.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => return Vec::new(),
    };
    let anyone = |p: &serde_json::Value| match p {
        serde_json::Value::String(s) => s == "*",
        serde_json::Value::Object(o) => o.get("AWS").is_some_and(|a| match a {
            serde_json::Value::String(s) => s == "*",
            serde_json::Value::Array(v) => v.iter().any(|x| x == "*"),
            _ => false,
        }),
        _ => false,
    };
    statements
        .iter()
        .enumerate()
        .filter(|(_, st)| {
            st.get("Effect").and_then(|e| e.as_str()) == Some("Allow")
                && st.get("Principal").is_some_and(anyone)
                && st.get("Condition").is_none()
        })
        .map(|(i, st)| {
            st.get("Sid")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{i}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
