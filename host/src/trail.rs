//! The trail check: the host reads the trail and its bucket, the plugin decides (its
//! `trail-check` interface), the host applies the fixes it is allowed to and reports.
//!
//! A call that fails (a missing permission, most often) does not stop the check: it goes into
//! the snapshot's `unread` and the plugin reports it as a finding. Only DescribeTrails, without
//! which nothing can be checked, is an error here.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::json;

use crate::aws::cloudtrail::{self, EventSelector, TrailUpdate};
use crate::aws::s3::S3;
use crate::aws::{AwsClient, AwsError};
use crate::config::{Config, Mode};
use crate::runtime::bindings::trail_check as tc;
use crate::runtime::PluginRuntime;

/// What the module wants of the trail, from its configuration.
pub fn desired(config: &Config) -> tc::Desired {
    tc::Desired {
        mode: match config.mode {
            Mode::Default => tc::Mode::Default,
            Mode::WriteOnly => tc::Mode::WriteOnly,
            Mode::Restricted => tc::Mode::Restricted,
        },
        bucket: config.source.bucket.clone(),
        prefix: config.source.prefix.clone(),
        trail_name: config.source.trail_name.clone(),
        write_event_filter: config.trail.write_event_filter,
        max_delivery_age_minutes: config.trail.max_delivery_age_minutes,
    }
}

/// Keeps the value of a call that worked; notes one that failed in `unread`.
fn note<T>(unread: &mut Vec<tc::Unread>, target: &str, result: Result<T, AwsError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            unread.push(tc::Unread {
                operation: e.operation().unwrap_or("aws").to_owned(),
                target: target.to_owned(),
                code: e.code().to_owned(),
                message: e.to_string(),
            });
            None
        }
    }
}

fn read_write(text: Option<&str>) -> tc::ReadWrite {
    match text {
        Some("ReadOnly") => tc::ReadWrite::ReadOnly,
        Some("WriteOnly") => tc::ReadWrite::WriteOnly,
        _ => tc::ReadWrite::All,
    }
}

fn read_write_name(rw: tc::ReadWrite) -> &'static str {
    match rw {
        tc::ReadWrite::All => "All",
        tc::ReadWrite::ReadOnly => "ReadOnly",
        tc::ReadWrite::WriteOnly => "WriteOnly",
    }
}

/// Reads every trail `client`'s region lists, with its status, selectors and tags, and the
/// settings of every bucket they deliver to (each in its own region). No CloudTrail call is
/// made in restricted mode.
pub async fn snapshot(config: &Config, client: &AwsClient, now_ms: i64) -> anyhow::Result<tc::Snapshot> {
    let region = client.settings().region.clone();
    let mut snap = tc::Snapshot {
        region: region.clone(),
        trails: Vec::new(),
        unread: Vec::new(),
        desired: desired(config),
        now_ms,
    };
    if config.mode == Mode::Restricted {
        return Ok(snap);
    }
    let trails = cloudtrail::describe_trails(client)
        .await
        .context("listing the trails (cloudtrail:DescribeTrails)")?;
    let mut buckets: BTreeMap<String, Option<tc::BucketSettings>> = BTreeMap::new();
    for t in trails {
        let id = t.trail_arn.clone().unwrap_or_else(|| t.name.clone());
        let u = &mut snap.unread;
        let status = note(u, &t.name, cloudtrail::trail_status(client, &id).await);
        let selectors = note(u, &t.name, cloudtrail::event_selectors(client, &id).await).unwrap_or_default();
        let insight_types = note(u, &t.name, cloudtrail::insight_types(client, &id).await).unwrap_or_default();
        let tags = match &t.trail_arn {
            Some(arn) => note(u, &t.name, cloudtrail::tags(client, arn).await).unwrap_or_default(),
            None => Vec::new(),
        };
        let bucket = match &t.s3_bucket_name {
            Some(b) => {
                if !buckets.contains_key(b) {
                    let settings = bucket_settings(config, client, b, &mut snap.unread).await;
                    buckets.insert(b.clone(), settings);
                }
                buckets.get(b).cloned().flatten()
            }
            None => None,
        };
        snap.trails.push(tc::TrailSnapshot {
            trail: tc::Trail {
                name: t.name.clone(),
                arn: t.trail_arn.clone(),
                home_region: t.home_region.clone(),
                bucket: t.s3_bucket_name.clone(),
                prefix: t.s3_key_prefix.clone().filter(|p| !p.is_empty()),
                multi_region: t.is_multi_region_trail.unwrap_or(false),
                organization: t.is_organization_trail.unwrap_or(false),
                include_global_service_events: t.include_global_service_events.unwrap_or(false),
                log_file_validation: t.log_file_validation_enabled.unwrap_or(false),
                kms_key_id: t.kms_key_id.clone(),
                cloud_watch_logs_log_group_arn: t.cloud_watch_logs_log_group_arn.clone(),
                sns_topic_arn: t.sns_topic_arn.clone(),
            },
            status: status.map(|s| tc::TrailStatus {
                is_logging: s.is_logging.unwrap_or(false),
                latest_delivery_error: s.latest_delivery_error,
                latest_notification_error: s.latest_notification_error,
                latest_digest_delivery_error: s.latest_digest_delivery_error,
                latest_cloud_watch_logs_delivery_error: s.latest_cloud_watch_logs_delivery_error,
                latest_delivery_time_ms: s.latest_delivery_time,
                stop_logging_time_ms: s.stop_logging_time,
            }),
            event_selectors: selectors
                .event_selectors
                .into_iter()
                .map(|s| tc::EventSelector {
                    read_write: read_write(s.read_write_type.as_deref()),
                    include_management_events: s.include_management_events.unwrap_or(true),
                    exclude_management_event_sources: s.exclude_management_event_sources,
                    data_resources: s
                        .data_resources
                        .into_iter()
                        .map(|d| tc::DataResource {
                            kind: d.kind,
                            values: d.values,
                        })
                        .collect(),
                })
                .collect(),
            advanced_event_selectors: selectors
                .advanced_event_selectors
                .into_iter()
                .map(|s| tc::AdvancedEventSelector {
                    name: s.name,
                    field_selectors: s
                        .field_selectors
                        .into_iter()
                        .map(|f| tc::FieldSelector {
                            field: f.field,
                            equals: f.equals,
                            starts_with: f.starts_with,
                            ends_with: f.ends_with,
                            not_equals: f.not_equals,
                            not_starts_with: f.not_starts_with,
                            not_ends_with: f.not_ends_with,
                        })
                        .collect(),
                })
                .collect(),
            insight_types,
            tags: tags
                .into_iter()
                .map(|t| tc::Tag {
                    key: t.key,
                    value: t.value,
                })
                .collect(),
            bucket,
        });
    }
    Ok(snap)
}

/// The settings of `bucket`, read in its own region; `None` when not even its region or
/// ACL could be read (what failed is in `unread`).
async fn bucket_settings(
    config: &Config,
    client: &AwsClient,
    bucket: &str,
    unread: &mut Vec<tc::Unread>,
) -> Option<tc::BucketSettings> {
    let here = S3::new(client, bucket);
    let region = note(unread, bucket, here.region().await).flatten();
    let regional;
    let client = match region {
        Some(r) if r != client.settings().region => match crate::run::client(config, Some(&r)) {
            Ok(c) => {
                regional = c;
                &regional
            }
            Err(_) => client,
        },
        _ => client,
    };
    let s3 = S3::new(client, bucket);
    let policy = note(unread, bucket, s3.policy().await).flatten();
    let acl = note(unread, bucket, s3.acl().await);
    let public_access_block = note(unread, bucket, s3.public_access_block().await).flatten();
    let logging_target = note(unread, bucket, s3.logging_target().await).flatten();
    let versioning = note(unread, bucket, s3.versioning().await).unwrap_or_default();
    let acl = acl?;
    Some(tc::BucketSettings {
        name: bucket.to_owned(),
        policy,
        acl: acl
            .into_iter()
            .map(|g| tc::Grant {
                group_uri: g.group_uri,
                user_id: g.user_id,
                permission: g.permission,
            })
            .collect(),
        public_access_block: public_access_block.map(|p| tc::PublicAccessBlock {
            block_public_acls: p.block_public_acls,
            ignore_public_acls: p.ignore_public_acls,
            block_public_policy: p.block_public_policy,
            restrict_public_buckets: p.restrict_public_buckets,
        }),
        logging_target,
        versioning: versioning.status,
        mfa_delete: versioning.mfa_delete,
    })
}

/// The plugin's verdict on `snapshot`.
pub fn check(runtime: &PluginRuntime, snapshot: &tc::Snapshot) -> anyhow::Result<tc::Report> {
    match runtime.check_trail(snapshot) {
        Ok(Some(report)) => Ok(report),
        Ok(None) => bail!(
            "plugin {} {} has no trail-check interface, so the trail cannot be checked (`trailwatch plugin` lists \
             what it lacks)",
            runtime.plugin().name,
            runtime.plugin().version
        ),
        Err(trap) => bail!("the plugin failed while checking the trail: {trap}"),
    }
}

/// The severity's name.
pub fn severity_name(s: tc::Severity) -> &'static str {
    match s {
        tc::Severity::Info => "info",
        tc::Severity::Warning => "warning",
        tc::Severity::Error => "error",
    }
}

/// `check`'s exit code: 0 clean (information only), 1 warnings, 2 errors.
pub fn exit_code(report: &tc::Report) -> u8 {
    let worst = report
        .findings
        .iter()
        .map(|f| match f.severity {
            tc::Severity::Info => 0,
            tc::Severity::Warning => 1,
            tc::Severity::Error => 2,
        })
        .max();
    worst.unwrap_or(0)
}

/// A fix as the trail check's document and the table show it.
pub fn fix_json(fix: &tc::Fix) -> serde_json::Value {
    match fix {
        tc::Fix::StartLogging(t) => json!({"action": "start-logging", "trail": t}),
        tc::Fix::MakeMultiRegion(t) => json!({"action": "make-multi-region", "trail": t}),
        tc::Fix::IncludeGlobalServiceEvents(t) => json!({"action": "include-global-service-events", "trail": t}),
        tc::Fix::SetManagementEvents(m) => {
            json!({"action": "set-management-events", "trail": m.trail, "read_write": read_write_name(m.read_write)})
        }
    }
}

/// A finding as a document for the sinks and `check --format json` (`kind` = `finding`;
/// `schema/finding.schema.json`): one JSON line without its newline, members in the schema's
/// order.
pub fn document(report: &tc::Report, finding: &tc::Finding, region: &str, checked_at_ms: i64) -> String {
    use crate::output::finding::{Evidence, FindingDocument};
    FindingDocument {
        kind: "finding",
        code: &finding.code,
        severity: severity_name(finding.severity),
        trail: finding.trail.as_deref(),
        message: &finding.message,
        evidence: finding
            .evidence
            .iter()
            .map(|e| Evidence {
                field: &e.field,
                value: &e.value,
            })
            .collect(),
        controls: finding.controls.iter().map(String::as_str).collect(),
        fix: finding.fix.as_ref().map(fix_json),
        region,
        chosen_trail: report.chosen.as_deref(),
        checked_at_ms,
        location: None,
    }
    .line()
}

/// The report as a table for people.
pub fn table(report: &tc::Report) -> String {
    let mut out = String::new();
    match &report.chosen {
        Some(_) => out.push_str(&format!("trail: {}\n", report.reason)),
        None => out.push_str(&format!("trail: none ({})\n", report.reason)),
    }
    if report.findings.is_empty() {
        out.push_str("no findings: the trail is configured as the module needs\n");
        return out;
    }
    let width = report.findings.iter().map(|f| f.code.len()).max().unwrap_or(4).max(4);
    out.push_str(&format!("{:<8} {:<width$} {}\n", "SEVERITY", "CODE", "FINDING"));
    for f in &report.findings {
        out.push_str(&format!(
            "{:<8} {:<width$} {}\n",
            severity_name(f.severity),
            f.code,
            f.message
        ));
        for e in &f.evidence {
            out.push_str(&format!("{:<8} {:<width$}   {} = {}\n", "", "", e.field, e.value));
        }
        if !f.controls.is_empty() {
            out.push_str(&format!(
                "{:<8} {:<width$}   controls: {}\n",
                "",
                "",
                f.controls.join(", ")
            ));
        }
        if let Some(fix) = &f.fix {
            out.push_str(&format!(
                "{:<8} {:<width$}   fix (--fix): {}\n",
                "",
                "",
                describe_fix(fix)
            ));
        }
    }
    out
}

/// A fix in words.
pub fn describe_fix(fix: &tc::Fix) -> String {
    match fix {
        tc::Fix::StartLogging(t) => format!("StartLogging {t}"),
        tc::Fix::MakeMultiRegion(t) => format!("UpdateTrail {t} IsMultiRegionTrail=true"),
        tc::Fix::IncludeGlobalServiceEvents(t) => format!("UpdateTrail {t} IncludeGlobalServiceEvents=true"),
        tc::Fix::SetManagementEvents(m) => format!(
            "PutEventSelectors {} management events {} (data events kept)",
            m.trail,
            read_write_name(m.read_write)
        ),
    }
}

/// A change made to a trail, with what it was before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The fix, in words.
    pub fix: String,
    /// The setting before.
    pub before: serde_json::Value,
    /// The setting after.
    pub after: serde_json::Value,
}

/// Applies `fix` to a trail of `snapshot`. Never in restricted mode.
pub async fn apply(
    config: &Config,
    client: &AwsClient,
    snapshot: &tc::Snapshot,
    fix: &tc::Fix,
) -> anyhow::Result<Change> {
    if config.mode == Mode::Restricted {
        bail!("restricted mode never changes the trail");
    }
    let name = fix_trail(fix);
    let Some(t) = snapshot.trails.iter().find(|t| t.trail.name == name) else {
        bail!("the fix is for trail {name}, which the snapshot does not hold");
    };
    let id = t.trail.arn.clone().unwrap_or_else(|| name.to_owned());
    let what = describe_fix(fix);
    let change = match fix {
        tc::Fix::StartLogging(_) => {
            cloudtrail::start_logging(client, &id).await?;
            Change {
                fix: what,
                before: json!({"IsLogging": false}),
                after: json!({"IsLogging": true}),
            }
        }
        tc::Fix::MakeMultiRegion(_) => {
            // A multi-region trail must include global service events.
            let update = TrailUpdate {
                name: id,
                is_multi_region_trail: Some(true),
                include_global_service_events: Some(true),
            };
            cloudtrail::update_trail(client, &update).await?;
            Change {
                fix: what,
                before: json!({"IsMultiRegionTrail": false, "IncludeGlobalServiceEvents": t.trail.include_global_service_events}),
                after: json!({"IsMultiRegionTrail": true, "IncludeGlobalServiceEvents": true}),
            }
        }
        tc::Fix::IncludeGlobalServiceEvents(_) => {
            let update = TrailUpdate {
                name: id,
                is_multi_region_trail: None,
                include_global_service_events: Some(true),
            };
            cloudtrail::update_trail(client, &update).await?;
            Change {
                fix: what,
                before: json!({"IncludeGlobalServiceEvents": false}),
                after: json!({"IncludeGlobalServiceEvents": true}),
            }
        }
        tc::Fix::SetManagementEvents(m) => {
            if !t.advanced_event_selectors.is_empty() {
                bail!("trail {name} uses advanced event selectors, which are never rewritten automatically");
            }
            let before = selectors_json(&t.event_selectors);
            let selectors = management_selectors(&t.event_selectors, m.read_write);
            cloudtrail::put_event_selectors(client, &id, &selectors).await?;
            Change {
                fix: what,
                before,
                after: serde_json::to_value(&selectors).unwrap_or_default(),
            }
        }
    };
    tracing::info!(fix = %change.fix, before = %change.before, after = %change.after, "changed the trail");
    Ok(change)
}

/// The trail a fix is for.
pub fn fix_trail(fix: &tc::Fix) -> &str {
    match fix {
        tc::Fix::StartLogging(t) | tc::Fix::MakeMultiRegion(t) | tc::Fix::IncludeGlobalServiceEvents(t) => t,
        tc::Fix::SetManagementEvents(m) => &m.trail,
    }
}

/// What applying one fix gave.
pub struct Applied {
    pub trail: String,
    pub fix: String,
    pub result: anyhow::Result<Change>,
}

/// Applies the fixes `report` offers, in order. With `chosen_only`, only those for the trail
/// the module reads (auto-configure never touches another).
pub async fn apply_all(
    config: &Config,
    client: &AwsClient,
    snapshot: &tc::Snapshot,
    report: &tc::Report,
    chosen_only: bool,
) -> Vec<Applied> {
    let mut applied = Vec::new();
    for fix in report.findings.iter().filter_map(|f| f.fix.as_ref()) {
        let trail = fix_trail(fix);
        if chosen_only && report.chosen.as_deref() != Some(trail) {
            continue;
        }
        applied.push(Applied {
            trail: trail.to_owned(),
            fix: describe_fix(fix),
            result: apply(config, client, snapshot, fix).await,
        });
    }
    applied
}

/// A change auto-configure made, as a finding (`trail-changed`): the before and after are its
/// evidence.
pub fn change_finding(trail: &str, change: &Change) -> tc::Finding {
    tc::Finding {
        code: "trail-changed".into(),
        severity: tc::Severity::Info,
        trail: Some(trail.to_owned()),
        message: format!("auto-configure changed trail {trail}: {}", change.fix),
        evidence: vec![
            tc::Evidence {
                field: "before".into(),
                value: change.before.to_string(),
            },
            tc::Evidence {
                field: "after".into(),
                value: change.after.to_string(),
            },
        ],
        controls: Vec::new(),
        fix: None,
    }
}

fn selectors_json(selectors: &[tc::EventSelector]) -> serde_json::Value {
    serde_json::to_value(selectors.iter().map(classic).collect::<Vec<_>>()).unwrap_or_default()
}

fn classic(s: &tc::EventSelector) -> EventSelector {
    EventSelector {
        read_write_type: Some(read_write_name(s.read_write).into()),
        include_management_events: Some(s.include_management_events),
        data_resources: s
            .data_resources
            .iter()
            .map(|d| cloudtrail::DataResource {
                kind: d.kind.clone(),
                values: d.values.clone(),
            })
            .collect(),
        exclude_management_event_sources: s.exclude_management_event_sources.clone(),
    }
}

/// One selector of management events of type `rw` (keeping the sources the trail excluded),
/// and the trail's data resources as they were, in selectors of their own with their own type:
/// the fix changes management events only.
fn management_selectors(existing: &[tc::EventSelector], rw: tc::ReadWrite) -> Vec<EventSelector> {
    let excluded = existing
        .iter()
        .find(|s| s.include_management_events)
        .map(|s| s.exclude_management_event_sources.clone())
        .unwrap_or_default();
    let mut out = vec![EventSelector {
        read_write_type: Some(read_write_name(rw).into()),
        include_management_events: Some(true),
        data_resources: Vec::new(),
        exclude_management_event_sources: excluded,
    }];
    for s in existing.iter().filter(|s| !s.data_resources.is_empty()) {
        let mut data = classic(s);
        data.include_management_events = Some(false);
        data.exclude_management_event_sources.clear();
        out.push(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_management_fix_keeps_data_events_as_they_were() {
        let existing = vec![tc::EventSelector {
            read_write: tc::ReadWrite::ReadOnly,
            include_management_events: true,
            exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
            data_resources: vec![tc::DataResource {
                kind: "AWS::S3::Object".into(),
                values: vec!["arn:aws:s3:::secrets/".into()],
            }],
        }];
        let out = management_selectors(&existing, tc::ReadWrite::WriteOnly);
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true, "ExcludeManagementEventSources": ["kms.amazonaws.com"]},
                {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": false, "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::secrets/"]}]}
            ])
        );
    }
}

/// How `check` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One finding document per line (NDJSON).
    Json,
}

/// `trailwatch check [--fix]`: checks the trail once, prints the findings, and with `fix`
/// applies the fixes the findings offer (the plugin offers only what the mode allows), then
/// checks again. The exit code is that of the last check ([`exit_code`]).
pub fn run_check(config: &Config, runtime: &PluginRuntime, format: Format, fix: bool) -> anyhow::Result<u8> {
    if fix && config.mode == Mode::Restricted {
        bail!("--fix: restricted mode never changes the trail");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = crate::run::client(config, None)?;
        let now = || crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let snap = snapshot(config, &client, now()).await?;
        let mut report = check(runtime, &snap)?;
        print_report(&report, &snap, format, now());
        if fix {
            let applied = apply_all(config, &client, &snap, &report, false).await;
            if applied.is_empty() {
                eprintln!("nothing to fix");
                return Ok(exit_code(&report));
            }
            for a in &applied {
                match &a.result {
                    Ok(c) => eprintln!("fixed: {}\n  before: {}\n  after:  {}", c.fix, c.before, c.after),
                    Err(e) => eprintln!("could not fix ({}): {e:#}", a.fix),
                }
            }
            let again = snapshot(config, &client, now()).await?;
            report = check(runtime, &again)?;
            eprintln!("checked again after the fixes:");
            print_report(&report, &again, format, now());
        }
        Ok(exit_code(&report))
    })
}

fn print_report(report: &tc::Report, snap: &tc::Snapshot, format: Format, now_ms: i64) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (a pager quit early) must not turn the verdict into a panic.
    let _ = match format {
        Format::Table => out.write_all(table(report).as_bytes()),
        Format::Json => report.findings.iter().try_for_each(|f| {
            let doc = document(report, f, &snap.region, now_ms);
            writeln!(out, "{doc}")
        }),
    };
}
