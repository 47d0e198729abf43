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

use super::params::has_value;
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
            ("PutEventSelectors", Tampering),
            ("PutInsightSelectors", Tampering),
            ("RegisterOrganizationDelegatedAdmin", Change),
            ("StartEventDataStoreIngestion", Change),
            ("StartLogging", Change),
            ("StopEventDataStoreIngestion", Tampering),
            ("StopLogging", Tampering),
            ("UpdateEventDataStore", Tampering),
            ("UpdateTrail", Tampering),
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
    ("events", &[("DeleteRule", Tampering), ("DisableRule", Tampering)]),
    (
        "guardduty",
        &[
            ("AcceptAdministratorInvitation", Change),
            ("AcceptInvitation", Change),
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
        Change => false,
        Tampering => true,
        TamperingIfTurnedOff => evidence(turns_off),
        TamperingIfSuppressing => evidence(suppresses_findings),
        TamperingIfLoggingRemoved => evidence(|params| !crate::text::has(params, "LoggingEnabled")),
    })
}

/// A detector, feature, control or session switched off or paused.
fn turns_off(params: &str) -> bool {
    has_value(params, "enable", "false")
        || ["status", "controlStatus", "associationStatus"]
            .iter()
            .any(|key| has_value(params, key, "DISABLED") || has_value(params, key, "PAUSED"))
}

/// A findings filter whose action archives (GuardDuty, Macie) or suppresses (Inspector).
fn suppresses_findings(params: &str) -> bool {
    has_value(params, "action", "ARCHIVE") || has_value(params, "action", "SUPPRESS")
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
