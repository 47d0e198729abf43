//! Logging and monitoring changes of every service, and which of them are tampering.
//!
//! A logging change reconfigures what AWS records or detects: CloudTrail, Config, GuardDuty,
//! Security Hub, Access Analyzer, Detective, Macie, Inspector, CloudWatch alarms and metric
//! streams, CloudWatch Logs, EventBridge rules, VPC flow logs, S3 server access logging, Route 53
//! resolver query logs and WAF logging. It is tampering when it stops, deletes, narrows, redirects
//! or suppresses what is recorded or detected (including trusted IP lists and archive rules,
//! which silence findings). Turning things on (`CreateTrail`, `StartLogging`, `CreateDetector`,
//! ...) is a logging change without the tampering flag. Conditional tampering needs evidence in
//! the request parameters: without them the event is a logging change only.

use super::params::{any_value, has_key, has_value, value_starts};
use super::table;

/// How a logging event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    /// Turns on or reconfigures logging or detection.
    Change,
    /// Stops, deletes, narrows, redirects or suppresses logging or detection.
    Tampering,
    /// Tampering when the request switches a detector, feature, control or session off.
    TamperingIfTurnedOff,
    /// Tampering when a findings filter archives or suppresses what it matches.
    TamperingIfSuppressing,
    /// Tampering when the new bucket logging status has no `LoggingEnabled` (S3).
    TamperingIfLoggingRemoved,
    /// Tampering when the request narrows what a trail records or redirects it (CloudTrail).
    TamperingIfNarrowed,
    // The next ones are logging changes only with the evidence (and then tampering): the same
    // APIs change much else, often and harmlessly.
    /// Access logs switched off (load balancer attributes, which a request sets one by one).
    /// CloudFront's `UpdateDistribution` is not judged: it carries the whole configuration, so
    /// logging off there cannot be told from a change elsewhere in a distribution that never
    /// logged.
    OnlyIfAccessLogsOff,
    /// Findings suppressed or archived (Security Hub's workflow updates).
    OnlyIfSuppressing,
    /// Feedback that calls a finding not useful (GuardDuty).
    OnlyIfNotUseful,
}

use Logging::*;

/// Service → (event name → how it counts), both levels sorted by name.
const EVENTS: &[(&str, &[(&str, Logging)])] = &[
    (
        "access_analyzer",
        &[
            ("ApplyArchiveRule", Tampering),
            ("CreateAnalyzer", Change),
            ("CreateArchiveRule", Tampering),
            ("DeleteAnalyzer", Tampering),
            ("UpdateArchiveRule", Tampering),
        ],
    ),
    (
        "cloudtrail",
        &[
            ("CreateEventDataStore", Change),
            ("CreateTrail", Change),
            ("DeleteChannel", Tampering),
            ("DeleteEventDataStore", Tampering),
            ("DeleteTrail", Tampering),
            ("DeregisterOrganizationDelegatedAdmin", Tampering),
            ("PutEventSelectors", TamperingIfNarrowed),
            ("PutInsightSelectors", TamperingIfNarrowed),
            ("RegisterOrganizationDelegatedAdmin", Change),
            ("StartEventDataStoreIngestion", Change),
            ("StartLogging", Change),
            ("StopEventDataStoreIngestion", Tampering),
            ("StopLogging", Tampering),
            ("UpdateEventDataStore", Tampering),
            ("UpdateTrail", TamperingIfNarrowed),
        ],
    ),
    (
        "config",
        &[
            ("DeleteConfigRule", Tampering),
            ("DeleteConfigurationAggregator", Tampering),
            ("DeleteConfigurationRecorder", Tampering),
            ("DeleteConformancePack", Tampering),
            ("DeleteDeliveryChannel", Tampering),
            ("DeleteEvaluationResults", Tampering),
            ("DeleteOrganizationConfigRule", Tampering),
            ("DeleteOrganizationConformancePack", Tampering),
            ("DeleteServiceLinkedConfigurationRecorder", Tampering),
            ("PutConfigRule", Change),
            ("PutConfigurationAggregator", Change),
            ("PutConfigurationRecorder", Change),
            ("PutConformancePack", Change),
            ("PutDeliveryChannel", Change),
            ("StartConfigurationRecorder", Change),
            ("StopConfigurationRecorder", Tampering),
        ],
    ),
    (
        "detective",
        &[
            ("CreateGraph", Change),
            ("DeleteGraph", Tampering),
            ("DeleteMembers", Tampering),
            ("DisassociateMembership", Tampering),
        ],
    ),
    (
        "elasticloadbalancing",
        &[("ModifyLoadBalancerAttributes", OnlyIfAccessLogsOff)],
    ),
    (
        "events",
        &[
            ("DeleteRule", Tampering),
            ("DisableRule", Tampering),
            ("RemoveTargets", Tampering),
        ],
    ),
    (
        "guardduty",
        &[
            ("AcceptAdministratorInvitation", Change),
            ("AcceptInvitation", Change),
            ("ArchiveFindings", Tampering),
            ("CreateDetector", Change),
            ("CreateFilter", TamperingIfSuppressing),
            ("CreateIPSet", Tampering),
            ("CreateMembers", Change),
            ("CreatePublishingDestination", Change),
            ("CreateThreatIntelSet", Change),
            ("DeleteDetector", Tampering),
            ("DeleteMembers", Tampering),
            ("DeletePublishingDestination", Tampering),
            ("DeleteThreatIntelSet", Tampering),
            ("DisableOrganizationAdminAccount", Tampering),
            ("DisassociateFromAdministratorAccount", Tampering),
            ("DisassociateFromMasterAccount", Tampering),
            ("DisassociateMembers", Tampering),
            ("EnableOrganizationAdminAccount", Change),
            ("StartMonitoringMembers", Change),
            ("StopMonitoringMembers", Tampering),
            ("UpdateDetector", TamperingIfTurnedOff),
            ("UpdateFilter", TamperingIfSuppressing),
            ("UpdateFindingsFeedback", OnlyIfNotUseful),
            ("UpdateIPSet", Tampering),
            ("UpdateMemberDetectors", TamperingIfTurnedOff),
            ("UpdateOrganizationConfiguration", TamperingIfTurnedOff),
            ("UpdatePublishingDestination", Tampering),
        ],
    ),
    (
        "inspector2",
        &[
            ("CreateFilter", TamperingIfSuppressing),
            ("Disable", Tampering),
            ("DisableDelegatedAdminAccount", Tampering),
            ("DisassociateMember", Tampering),
            ("Enable", Change),
            ("EnableDelegatedAdminAccount", Change),
            ("UpdateFilter", TamperingIfSuppressing),
        ],
    ),
    (
        "logs",
        &[
            ("DeleteDestination", Tampering),
            ("DeleteLogGroup", Tampering),
            ("DeleteLogStream", Tampering),
            ("DeleteMetricFilter", Tampering),
            ("DeleteSubscriptionFilter", Tampering),
            ("PutRetentionPolicy", Tampering),
        ],
    ),
    (
        "macie2",
        &[
            ("CreateFindingsFilter", TamperingIfSuppressing),
            ("DisableMacie", Tampering),
            ("DisableOrganizationAdminAccount", Tampering),
            ("DisassociateFromAdministratorAccount", Tampering),
            ("DisassociateFromMasterAccount", Tampering),
            ("EnableMacie", Change),
            ("UpdateFindingsFilter", TamperingIfSuppressing),
            ("UpdateMacieSession", TamperingIfTurnedOff),
        ],
    ),
    (
        "monitoring",
        &[
            ("DeleteAlarms", Tampering),
            ("DeleteMetricStream", Tampering),
            ("DisableAlarmActions", Tampering),
            ("EnableAlarmActions", Change),
            ("StopMetricStreams", Tampering),
        ],
    ),
    // Leaving takes the account out of the organization's trail and delegated detectors.
    (
        "organizations",
        &[
            ("LeaveOrganization", Tampering),
            ("RemoveAccountFromOrganization", Tampering),
        ],
    ),
    (
        "route53resolver",
        &[
            ("AssociateResolverQueryLogConfig", Change),
            ("CreateResolverQueryLogConfig", Change),
            ("DeleteResolverQueryLogConfig", Tampering),
            ("DisassociateResolverQueryLogConfig", Tampering),
        ],
    ),
    ("s3", &[("PutBucketLogging", TamperingIfLoggingRemoved)]),
    (
        "securityhub",
        &[
            ("BatchDisableStandards", Tampering),
            ("BatchEnableStandards", Change),
            ("BatchUpdateFindings", OnlyIfSuppressing),
            ("BatchUpdateStandardsControlAssociations", TamperingIfTurnedOff),
            ("DeleteMembers", Tampering),
            ("DisableImportFindingsForProduct", Tampering),
            ("DisableOrganizationAdminAccount", Tampering),
            ("DisableSecurityHub", Tampering),
            ("DisassociateFromAdministratorAccount", Tampering),
            ("DisassociateFromMasterAccount", Tampering),
            ("DisassociateMembers", Tampering),
            ("EnableImportFindingsForProduct", Change),
            ("EnableSecurityHub", Change),
            ("UpdateFindings", OnlyIfSuppressing),
            ("UpdateStandardsControl", TamperingIfTurnedOff),
        ],
    ),
    ("vpc", &[("CreateFlowLogs", Change), ("DeleteFlowLogs", Tampering)]),
    (
        "wafv2",
        &[
            ("DeleteLoggingConfiguration", Tampering),
            ("PutLoggingConfiguration", Change),
        ],
    ),
];

/// Whether an event changes logging or monitoring: `Some(tampering)`, or `None` if it does not.
pub(super) fn change(service: &str, name: &str, params: Option<&str>) -> Option<bool> {
    let kind = table::lookup(EVENTS, &service).and_then(|names| table::lookup(names, &name))?;
    let evidence = |probe: fn(&str) -> bool| params.is_some_and(probe);
    Some(match kind {
        OnlyIfAccessLogsOff => return evidence(access_logs_off).then_some(true),
        OnlyIfSuppressing => return evidence(suppresses_findings).then_some(true),
        OnlyIfNotUseful => return evidence(|params| has_value(params, "feedback", "NOT_USEFUL")).then_some(true),
        Change => false,
        Tampering => true,
        TamperingIfTurnedOff => evidence(turns_off),
        TamperingIfSuppressing => evidence(suppresses_findings),
        TamperingIfLoggingRemoved => evidence(|params| !crate::text::has(params, "LoggingEnabled")),
        TamperingIfNarrowed => evidence(narrows),
    })
}

/// Access logs switched off: an ALB/NLB attribute `{"key":"access_logs.s3.enabled",
/// "value":"false"}` or a classic load balancer's `"accessLog":{"enabled":false}`.
fn access_logs_off(params: &str) -> bool {
    let after = |marker: &str| params.find(marker).map(|at| &params[at + marker.len()..]);
    let v2 = after("access_logs.s3.enabled").is_some_and(|rest| {
        // The value follows its key in the same attribute, before the next attribute's key.
        let attribute = rest
            .find("\"key")
            .or_else(|| rest.find("\"Key"))
            .map_or(rest, |end| &rest[..end]);
        has_value(attribute, "value", "false")
    });
    let object_off = |marker: &str| {
        after(marker).is_some_and(|rest| {
            let object = rest.find('}').map_or(rest, |end| &rest[..end]);
            has_value(object, "enabled", "false")
        })
    };
    v2 || object_off("\"accessLog\"")
}

/// Trail switches that, set to `false`, record less.
const TRAIL_SWITCHES: &[&str] = &[
    "enableLogFileValidation",
    "includeGlobalServiceEvents",
    "includeManagementEvents",
    "isMultiRegionTrail",
    "isOrganizationTrail",
];

/// A trail or its selectors changed to record less, or its logs sent elsewhere or unencrypted:
/// a switch off, read or write events only, management event sources excluded, advanced
/// selectors without management events or with one that excludes (`NotEquals`,
/// `NotStartsWith`, `NotEndsWith`) or filters on `readOnly`, Insights emptied, a new bucket or
/// prefix, CloudWatch Logs delivery or the KMS key removed. Selectors that log all management
/// events and add data events are not narrowing.
fn narrows(params: &str) -> bool {
    TRAIL_SWITCHES.iter().any(|key| has_value(params, key, "false"))
        || has_value(params, "readWriteType", "ReadOnly")
        || has_value(params, "readWriteType", "WriteOnly")
        || any_value(params, "excludeManagementEventSources", |first| !first.is_empty())
        || ["notEquals", "notStartsWith", "notEndsWith"]
            .iter()
            .any(|key| has_key(params, key))
        || has_value(params, "field", "readOnly")
        || value_starts(params, "insightSelectors").any(|at| params[at..].starts_with("[]"))
        || has_key(params, "s3BucketName")
        || has_key(params, "s3KeyPrefix")
        || has_value(params, "cloudWatchLogsLogGroupArn", "")
        || has_value(params, "kmsKeyId", "")
        || (has_key(params, "advancedEventSelectors") && !crate::text::has(params, "\"Management\""))
}

/// A detector, feature, control or session switched off or paused.
fn turns_off(params: &str) -> bool {
    has_value(params, "enable", "false")
        || ["status", "controlStatus", "associationStatus"]
            .iter()
            .any(|key| has_value(params, key, "DISABLED") || has_value(params, key, "PAUSED"))
}

/// A findings filter whose action archives (GuardDuty, Macie) or suppresses (Inspector), or
/// findings set to a suppressed workflow status or archived (Security Hub).
fn suppresses_findings(params: &str) -> bool {
    has_value(params, "action", "ARCHIVE")
        || has_value(params, "action", "SUPPRESS")
        || has_value(params, "status", "SUPPRESSED")
        || has_value(params, "recordState", "ARCHIVED")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;
    use crate::categorize::{s3, vpc, Action};

    #[test]
    fn table_is_sorted_without_duplicates() {
        let services: Vec<_> = EVENTS.iter().map(|(service, _)| *service).collect();
        assert_strictly_sorted("logging::EVENTS", &services);
        for (service, events) in EVENTS {
            let names: Vec<_> = events.iter().map(|(name, _)| *name).collect();
            assert_strictly_sorted(service, &names);
        }
    }

    #[test]
    fn service_tables_agree_on_logging_events() {
        for (service, events) in EVENTS {
            for (name, _) in *events {
                let in_table = match *service {
                    "vpc" => vpc::write_action(name),
                    "s3" => s3::action(name),
                    _ => continue,
                };
                assert_eq!(in_table, Some(Action::LoggingChange), "{service} {name}");
            }
        }
    }

    #[test]
    fn trail_changes_are_tampering_only_when_they_record_less() {
        let all = r#"{"trailName":"t","eventSelectors":[{"readWriteType":"All","includeManagementEvents":true,
            "dataResources":[{"type":"AWS::S3::Object","values":["arn:aws:s3"]}],"excludeManagementEventSources":[]}]}"#;
        assert_eq!(change("cloudtrail", "PutEventSelectors", Some(all)), Some(false));
        let write_only =
            r#"{"trailName":"t","eventSelectors":[{"readWriteType":"WriteOnly","includeManagementEvents":true}]}"#;
        assert_eq!(change("cloudtrail", "PutEventSelectors", Some(write_only)), Some(true));
        let no_kms = r#"{"trailName":"t","eventSelectors":[{"readWriteType":"All","excludeManagementEventSources":["kms.amazonaws.com"]}]}"#;
        assert_eq!(change("cloudtrail", "PutEventSelectors", Some(no_kms)), Some(true));
        let advanced = r#"{"trailName":"t","advancedEventSelectors":[{"fieldSelectors":[{"field":"eventCategory","equals":["Management"]},
            {"field":"eventSource","notEquals":["kms.amazonaws.com"]}]}]}"#;
        assert_eq!(change("cloudtrail", "PutEventSelectors", Some(advanced)), Some(true));
        let validation = r#"{"name":"t","enableLogFileValidation":true,"isMultiRegionTrail":true}"#;
        assert_eq!(change("cloudtrail", "UpdateTrail", Some(validation)), Some(false));
        let one_region = r#"{"name":"t","isMultiRegionTrail":false}"#;
        assert_eq!(change("cloudtrail", "UpdateTrail", Some(one_region)), Some(true));
        let redirected = r#"{"name":"t","s3BucketName":"elsewhere"}"#;
        assert_eq!(change("cloudtrail", "UpdateTrail", Some(redirected)), Some(true));
        let data_only = r#"{"trailName":"t","advancedEventSelectors":[{"fieldSelectors":[{"field":"eventCategory","equals":["Data"]},
            {"field":"resources.type","equals":["AWS::S3::Object"]}]}]}"#;
        assert_eq!(change("cloudtrail", "PutEventSelectors", Some(data_only)), Some(true));
        let with_management = r#"{"trailName":"t","advancedEventSelectors":[{"fieldSelectors":[{"field":"eventCategory","equals":["Management"]}]},
            {"fieldSelectors":[{"field":"eventCategory","equals":["Data"]},{"field":"resources.type","equals":["AWS::S3::Object"]}]}]}"#;
        assert_eq!(
            change("cloudtrail", "PutEventSelectors", Some(with_management)),
            Some(false)
        );
        let unencrypted = r#"{"name":"t","kmsKeyId":""}"#;
        assert_eq!(change("cloudtrail", "UpdateTrail", Some(unencrypted)), Some(true));
        let emptied = r#"{"trailName":"t","insightSelectors":[]}"#;
        assert_eq!(change("cloudtrail", "PutInsightSelectors", Some(emptied)), Some(true));
        let insights = r#"{"trailName":"t","insightSelectors":[{"insightType":"ApiCallRateInsight"}]}"#;
        assert_eq!(change("cloudtrail", "PutInsightSelectors", Some(insights)), Some(false));
        assert_eq!(change("cloudtrail", "StopLogging", None), Some(true));
    }

    #[test]
    fn weakened_monitoring_is_tampering() {
        assert_eq!(change("guardduty", "ArchiveFindings", None), Some(true));
        let not_useful = r#"{"detectorId":"d","findingIds":["f"],"feedback":"NOT_USEFUL"}"#;
        assert_eq!(
            change("guardduty", "UpdateFindingsFeedback", Some(not_useful)),
            Some(true)
        );
        let useful = r#"{"detectorId":"d","findingIds":["f"],"feedback":"USEFUL"}"#;
        assert_eq!(change("guardduty", "UpdateFindingsFeedback", Some(useful)), None);
        assert_eq!(change("events", "RemoveTargets", None), Some(true));
        let suppressed = r#"{"findingIdentifiers":[{"id":"i","productArn":"p"}],"workflow":{"status":"SUPPRESSED"}}"#;
        assert_eq!(
            change("securityhub", "BatchUpdateFindings", Some(suppressed)),
            Some(true)
        );
        let resolved = r#"{"findingIdentifiers":[{"id":"i","productArn":"p"}],"workflow":{"status":"RESOLVED"}}"#;
        assert_eq!(change("securityhub", "BatchUpdateFindings", Some(resolved)), None);
        let archived = r#"{"filters":{"id":[{"value":"i","comparison":"EQUALS"}]},"recordState":"ARCHIVED"}"#;
        assert_eq!(change("securityhub", "UpdateFindings", Some(archived)), Some(true));
        assert_eq!(change("organizations", "LeaveOrganization", None), Some(true));
    }

    #[test]
    fn access_logs_switched_off_are_tampering_and_other_attributes_are_not_logging() {
        let alb_off = r#"{"loadBalancerArn":"arn","attributes":[{"key":"idle_timeout.timeout_seconds","value":"60"},
            {"key":"access_logs.s3.enabled","value":"false"}]}"#;
        assert_eq!(
            change("elasticloadbalancing", "ModifyLoadBalancerAttributes", Some(alb_off)),
            Some(true)
        );
        let alb_on = r#"{"loadBalancerArn":"arn","attributes":[{"key":"access_logs.s3.enabled","value":"true"},
            {"key":"deletion_protection.enabled","value":"false"}]}"#;
        assert_eq!(
            change("elasticloadbalancing", "ModifyLoadBalancerAttributes", Some(alb_on)),
            None
        );
        let classic_off =
            r#"{"loadBalancerName":"lb","loadBalancerAttributes":{"accessLog":{"enabled":false,"s3BucketName":"b"}}}"#;
        assert_eq!(
            change(
                "elasticloadbalancing",
                "ModifyLoadBalancerAttributes",
                Some(classic_off)
            ),
            Some(true)
        );
        let timeout = r#"{"loadBalancerArn":"arn","attributes":[{"key":"idle_timeout.timeout_seconds","value":"60"}]}"#;
        assert_eq!(
            change("elasticloadbalancing", "ModifyLoadBalancerAttributes", Some(timeout)),
            None
        );
        // The whole configuration comes with every update: logging off says nothing alone.
        let cdn_off = r#"{"id":"E1","distributionConfig":{"logging":{"enabled":false,"includeCookies":false,"bucket":"","prefix":""},"enabled":true}}"#;
        assert_eq!(change("cloudfront", "UpdateDistribution", Some(cdn_off)), None);
    }

    #[test]
    fn conditional_tampering_needs_evidence() {
        assert_eq!(change("guardduty", "UpdateDetector", None), Some(false));
        let off = r#"{"detectorId":"d","enable":false}"#;
        assert_eq!(change("guardduty", "UpdateDetector", Some(off)), Some(true));
        let frequency = r#"{"detectorId":"d","findingPublishingFrequency":"SIX_HOURS"}"#;
        assert_eq!(change("guardduty", "UpdateDetector", Some(frequency)), Some(false));
        let disabled = r#"{"standardsControlArn":"c","controlStatus":"DISABLED"}"#;
        assert_eq!(
            change("securityhub", "UpdateStandardsControl", Some(disabled)),
            Some(true)
        );
    }

    #[test]
    fn archive_and_suppression_filters_are_tampering() {
        let archive = r#"{"detectorId":"d","name":"f","action":"ARCHIVE"}"#;
        assert_eq!(change("guardduty", "CreateFilter", Some(archive)), Some(true));
        let noop = r#"{"detectorId":"d","name":"f","action":"NOOP"}"#;
        assert_eq!(change("guardduty", "CreateFilter", Some(noop)), Some(false));
        let suppress = r#"{"name":"f","action":"SUPPRESS","filterCriteria":{}}"#;
        assert_eq!(change("inspector2", "CreateFilter", Some(suppress)), Some(true));
    }

    #[test]
    fn other_events_are_not_logging_changes() {
        assert_eq!(change("cloudtrail", "LookupEvents", None), None);
        assert_eq!(change("ec2", "DeleteFlowLogs", None), None);
    }
}
