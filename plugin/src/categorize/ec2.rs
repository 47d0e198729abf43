//! The write APIs of EC2 outside networking (instances, images, volumes, snapshots, keys,
//! capacity); the network APIs that EC2 also serves are in [`super::vpc`].
//!
//! Sharing images and snapshots and giving an instance a role are permission changes (sharing
//! with everyone is network exposure, decided in [`super::exposure`]); key pairs are
//! credentials; turning off the block on public images or snapshots is network exposure.

use super::table;
use super::Action::{self, Create, CredentialCreation, Delete, Modify, NetworkExposure, Permissions};

/// EC2 write API → action, sorted by name.
const WRITES: &[(&str, Action)] = &[
    ("AcceptReservedInstancesExchangeQuote", Modify),
    ("AllocateHosts", Create),
    ("AssociateEnclaveCertificateIamRole", Permissions),
    ("AssociateIamInstanceProfile", Permissions),
    ("AssociateInstanceEventWindow", Modify),
    ("AttachVolume", Modify),
    ("BundleInstance", Create),
    ("CancelBundleTask", Modify),
    ("CancelCapacityReservation", Delete),
    ("CancelCapacityReservationFleets", Delete),
    ("CancelConversionTask", Modify),
    ("CancelExportTask", Modify),
    ("CancelImageLaunchPermission", Permissions),
    ("CancelImportTask", Modify),
    ("CancelReservedInstancesListing", Modify),
    ("CancelSpotFleetRequests", Delete),
    ("CancelSpotInstanceRequests", Delete),
    ("ConfirmProductInstance", Modify),
    ("CopyFpgaImage", Create),
    ("CopyImage", Create),
    ("CopySnapshot", Create),
    ("CreateCapacityReservation", Create),
    ("CreateCapacityReservationFleet", Create),
    ("CreateDefaultInstanceProfile", Create),
    ("CreateFleet", Create),
    ("CreateFpgaImage", Create),
    ("CreateImage", Create),
    ("CreateInstanceEventWindow", Create),
    ("CreateInstanceExportTask", Create),
    ("CreateKeyPair", CredentialCreation),
    ("CreateLaunchTemplate", Create),
    ("CreateLaunchTemplateVersion", Create),
    ("CreatePlacementGroup", Create),
    ("CreateReplaceRootVolumeTask", Create),
    ("CreateReservedInstancesListing", Create),
    ("CreateRestoreImageTask", Create),
    ("CreateSnapshot", Create),
    ("CreateSnapshots", Create),
    ("CreateSpotDatafeedSubscription", Create),
    ("CreateStoreImageTask", Create),
    ("CreateTags", Modify),
    ("CreateVolume", Create),
    ("DeleteFleets", Delete),
    ("DeleteFpgaImage", Delete),
    ("DeleteInstanceEventWindow", Delete),
    ("DeleteKeyPair", Delete),
    ("DeleteLaunchTemplate", Delete),
    ("DeleteLaunchTemplateVersions", Delete),
    ("DeletePlacementGroup", Delete),
    ("DeleteQueuedReservedInstances", Delete),
    ("DeleteSnapshot", Delete),
    ("DeleteSpotDatafeedSubscription", Delete),
    ("DeleteTags", Modify),
    ("DeleteVolume", Delete),
    ("DeregisterImage", Delete),
    ("DeregisterInstanceEventNotificationAttributes", Modify),
    ("DetachVolume", Modify),
    ("DisableAllowedImagesSettings", Modify),
    ("DisableEbsEncryptionByDefault", Modify),
    ("DisableFastLaunch", Modify),
    ("DisableFastSnapshotRestores", Modify),
    ("DisableImage", Modify),
    ("DisableImageBlockPublicAccess", NetworkExposure),
    ("DisableImageDeprecation", Modify),
    ("DisableImageDeregistrationProtection", Modify),
    ("DisableSerialConsoleAccess", Modify),
    ("DisableSnapshotBlockPublicAccess", NetworkExposure),
    ("DisassociateEnclaveCertificateIamRole", Permissions),
    ("DisassociateIamInstanceProfile", Permissions),
    ("DisassociateInstanceEventWindow", Modify),
    ("EnableAllowedImagesSettings", Modify),
    ("EnableEbsEncryptionByDefault", Modify),
    ("EnableFastLaunch", Modify),
    ("EnableFastSnapshotRestores", Modify),
    ("EnableImage", Modify),
    ("EnableImageBlockPublicAccess", Modify),
    ("EnableImageDeprecation", Modify),
    ("EnableImageDeregistrationProtection", Modify),
    ("EnableSerialConsoleAccess", Modify),
    ("EnableSnapshotBlockPublicAccess", Modify),
    ("EnableVolumeIO", Modify),
    ("ExportImage", Create),
    ("ImportImage", Create),
    ("ImportInstance", Create),
    ("ImportKeyPair", CredentialCreation),
    ("ImportSnapshot", Create),
    ("ImportVolume", Create),
    ("LockSnapshot", Modify),
    ("ModifyAvailabilityZoneGroup", Modify),
    ("ModifyCapacityReservation", Modify),
    ("ModifyCapacityReservationFleet", Modify),
    ("ModifyDefaultCreditSpecification", Modify),
    ("ModifyEbsDefaultKmsKeyId", Modify),
    ("ModifyFleet", Modify),
    ("ModifyFpgaImageAttribute", Permissions),
    ("ModifyHosts", Modify),
    ("ModifyIdFormat", Modify),
    ("ModifyIdentityIdFormat", Modify),
    ("ModifyImageAttribute", Permissions),
    ("ModifyInstanceAttribute", Modify),
    ("ModifyInstanceCapacityReservationAttributes", Modify),
    ("ModifyInstanceCpuOptions", Modify),
    ("ModifyInstanceCreditSpecification", Modify),
    ("ModifyInstanceEventStartTime", Modify),
    ("ModifyInstanceEventWindow", Modify),
    ("ModifyInstanceMaintenanceOptions", Modify),
    ("ModifyInstanceMetadataDefaults", Modify),
    ("ModifyInstanceMetadataOptions", Modify),
    ("ModifyInstanceNetworkPerformanceOptions", Modify),
    ("ModifyInstancePlacement", Modify),
    ("ModifyLaunchTemplate", Modify),
    ("ModifyPrivateDnsNameOptions", Modify),
    ("ModifyReservedInstances", Modify),
    ("ModifySnapshotAttribute", Permissions),
    ("ModifySnapshotTier", Modify),
    ("ModifySpotFleetRequest", Modify),
    ("ModifyVolume", Modify),
    ("ModifyVolumeAttribute", Modify),
    ("MonitorInstances", Modify),
    ("PurchaseCapacityBlock", Create),
    ("PurchaseHostReservation", Create),
    ("PurchaseReservedInstancesOffering", Create),
    ("PurchaseScheduledInstances", Create),
    ("RebootInstances", Modify),
    ("RegisterImage", Create),
    ("RegisterInstanceEventNotificationAttributes", Modify),
    ("ReleaseHosts", Delete),
    ("ReplaceIamInstanceProfileAssociation", Permissions),
    ("ReplaceImageCriteriaInAllowedImagesSettings", Modify),
    ("ReportInstanceStatus", Modify),
    ("RequestSpotFleet", Create),
    ("RequestSpotInstances", Create),
    ("ResetEbsDefaultKmsKeyId", Modify),
    ("ResetFpgaImageAttribute", Permissions),
    ("ResetImageAttribute", Permissions),
    ("ResetInstanceAttribute", Modify),
    ("ResetSnapshotAttribute", Permissions),
    ("RestoreImageFromRecycleBin", Modify),
    ("RestoreSnapshotFromRecycleBin", Modify),
    ("RestoreSnapshotTier", Modify),
    ("RunInstances", Create),
    ("RunScheduledInstances", Create),
    ("SendDiagnosticInterrupt", Modify),
    ("StartInstances", Modify),
    ("StopInstances", Modify),
    ("TerminateInstances", Delete),
    ("UnlockSnapshot", Modify),
    ("UnmonitorInstances", Modify),
];

/// The action of an EC2 write API outside networking, or `None` for reads and unknown names.
pub(super) fn write_action(name: &str) -> Option<Action> {
    table::lookup(WRITES, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;
    use crate::categorize::vpc;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let names: Vec<_> = WRITES.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("ec2::WRITES", &names);
    }

    #[test]
    fn no_api_is_both_ec2_and_vpc() {
        for (name, _) in WRITES {
            assert!(!vpc::owns(name), "{name} is in both the EC2 and the VPC table");
        }
    }

    #[test]
    fn instance_lifecycle_is_named() {
        assert_eq!(write_action("RunInstances"), Some(Create));
        assert_eq!(write_action("StartInstances"), Some(Modify));
        assert_eq!(write_action("StopInstances"), Some(Modify));
        assert_eq!(write_action("TerminateInstances"), Some(Delete));
        assert_eq!(write_action("DescribeInstances"), None);
    }
}
