//! The S3 APIs named explicitly: every bucket- and account-level write, and the object-level
//! APIs, which are data reads or data writes whatever their `eventCategory` says.
//!
//! Bucket policies, bucket ACLs, ownership controls (they switch ACLs on or off) and access point
//! policies are permission changes. Object ACLs are data writes like the rest of the object
//! APIs: they are counted as network exposure when they grant access to everyone, which is
//! decided in [`super::exposure`] along with public bucket ACLs, public policies and lifted
//! public access blocks. Server access logging is a logging change; turning it off is tampering
//! (decided in [`super::crosscut`]).

use super::table;
use super::Action::{self, Create, DataRead, DataWrite, Delete, LoggingChange, Modify, NetworkExposure, Permissions};

/// S3 API → action, sorted by name.
const APIS: &[(&str, Action)] = &[
    ("AbortMultipartUpload", DataWrite),
    ("CompleteMultipartUpload", DataWrite),
    ("CopyObject", DataWrite),
    ("CreateAccessGrant", Permissions),
    ("CreateAccessGrantsInstance", Create),
    ("CreateAccessGrantsLocation", Create),
    ("CreateAccessPoint", Create),
    ("CreateAccessPointForObjectLambda", Create),
    ("CreateBucket", Create),
    ("CreateJob", Create),
    ("CreateMultiRegionAccessPoint", Create),
    ("CreateMultipartUpload", DataWrite),
    ("CreateStorageLensGroup", Create),
    ("DeleteAccessGrant", Permissions),
    ("DeleteAccessGrantsInstance", Delete),
    ("DeleteAccessGrantsInstanceResourcePolicy", Permissions),
    ("DeleteAccessGrantsLocation", Delete),
    ("DeleteAccessPoint", Delete),
    ("DeleteAccessPointForObjectLambda", Delete),
    ("DeleteAccessPointPolicy", Permissions),
    ("DeleteAccessPointPolicyForObjectLambda", Permissions),
    ("DeleteAccountPublicAccessBlock", NetworkExposure),
    ("DeleteBucket", Delete),
    ("DeleteBucketAnalyticsConfiguration", Modify),
    ("DeleteBucketCors", Modify),
    ("DeleteBucketEncryption", Modify),
    ("DeleteBucketIntelligentTieringConfiguration", Modify),
    ("DeleteBucketInventoryConfiguration", Modify),
    ("DeleteBucketLifecycle", Modify),
    ("DeleteBucketMetadataTableConfiguration", Modify),
    ("DeleteBucketMetricsConfiguration", Modify),
    ("DeleteBucketOwnershipControls", Permissions),
    ("DeleteBucketPolicy", Permissions),
    ("DeleteBucketPublicAccessBlock", NetworkExposure),
    ("DeleteBucketReplication", Modify),
    ("DeleteBucketTagging", Modify),
    ("DeleteBucketWebsite", Modify),
    ("DeleteMultiRegionAccessPoint", Delete),
    ("DeleteObject", DataWrite),
    ("DeleteObjectTagging", DataWrite),
    ("DeleteObjects", DataWrite),
    ("DeletePublicAccessBlock", NetworkExposure),
    ("DeleteStorageLensConfiguration", Delete),
    ("DeleteStorageLensGroup", Delete),
    ("GetObject", DataRead),
    ("GetObjectAcl", DataRead),
    ("GetObjectAttributes", DataRead),
    ("GetObjectLegalHold", DataRead),
    ("GetObjectRetention", DataRead),
    ("GetObjectTagging", DataRead),
    ("GetObjectTorrent", DataRead),
    ("HeadObject", DataRead),
    ("ListMultipartUploadParts", DataRead),
    ("ListObjectVersions", DataRead),
    ("ListObjects", DataRead),
    ("ListObjectsV2", DataRead),
    ("ListParts", DataRead),
    ("PutAccelerateConfiguration", Modify),
    ("PutAccessGrantsInstanceResourcePolicy", Permissions),
    ("PutAccessPointConfigurationForObjectLambda", Modify),
    ("PutAccessPointPolicy", Permissions),
    ("PutAccessPointPolicyForObjectLambda", Permissions),
    ("PutAccountPublicAccessBlock", Modify),
    ("PutBucketAccelerateConfiguration", Modify),
    ("PutBucketAcl", Permissions),
    ("PutBucketAnalyticsConfiguration", Modify),
    ("PutBucketCors", Modify),
    ("PutBucketEncryption", Modify),
    ("PutBucketIntelligentTieringConfiguration", Modify),
    ("PutBucketInventoryConfiguration", Modify),
    ("PutBucketLifecycle", Modify),
    ("PutBucketLifecycleConfiguration", Modify),
    ("PutBucketLogging", LoggingChange),
    ("PutBucketMetricsConfiguration", Modify),
    ("PutBucketNotification", Modify),
    ("PutBucketNotificationConfiguration", Modify),
    ("PutBucketObjectLockConfiguration", Modify),
    ("PutBucketOwnershipControls", Permissions),
    ("PutBucketPolicy", Permissions),
    ("PutBucketPublicAccessBlock", Modify),
    ("PutBucketReplication", Modify),
    ("PutBucketRequestPayment", Modify),
    ("PutBucketTagging", Modify),
    ("PutBucketVersioning", Modify),
    ("PutBucketWebsite", Modify),
    ("PutMultiRegionAccessPointPolicy", Permissions),
    ("PutObject", DataWrite),
    ("PutObjectAcl", DataWrite),
    ("PutObjectLegalHold", DataWrite),
    ("PutObjectLockConfiguration", Modify),
    ("PutObjectRetention", DataWrite),
    ("PutObjectTagging", DataWrite),
    ("PutPublicAccessBlock", Modify),
    ("PutStorageLensConfiguration", Modify),
    ("RenameObject", DataWrite),
    ("RestoreObject", DataWrite),
    ("SelectObjectContent", DataRead),
    ("UpdateAccessGrantsLocation", Modify),
    ("UpdateJobPriority", Modify),
    ("UpdateJobStatus", Modify),
    ("UploadPart", DataWrite),
    ("UploadPartCopy", DataWrite),
    ("WriteGetObjectResponse", DataWrite),
];

/// The action of a named S3 API, or `None` for bucket reads and unknown names.
pub(super) fn action(name: &str) -> Option<Action> {
    table::lookup(APIS, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::logging;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let names: Vec<_> = APIS.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("s3::APIS", &names);
    }

    #[test]
    fn logging_entries_are_known_to_the_logging_table() {
        for (name, action) in APIS {
            if *action == LoggingChange {
                assert!(logging::change("s3", name, None).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn object_apis_are_data_and_bucket_apis_are_not() {
        assert_eq!(action("GetObject"), Some(DataRead));
        assert_eq!(action("ListObjectsV2"), Some(DataRead));
        assert_eq!(action("PutObject"), Some(DataWrite));
        assert_eq!(action("DeleteObjects"), Some(DataWrite));
        assert_eq!(action("CreateBucket"), Some(Create));
        assert_eq!(action("PutBucketPolicy"), Some(Permissions));
        assert_eq!(action("GetBucketPolicy"), None);
    }
}
