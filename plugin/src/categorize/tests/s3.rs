//! S3 buckets and objects, and data events.

use super::{call, metric, with_params};
use crate::categorize::{categorize, Input};

#[test]
fn s3_object_reads_and_writes_are_data_events() {
    let data = |name: &'static str| Input {
        event_category: Some("Data"),
        ..call("s3.amazonaws.com", name)
    };
    assert_eq!(metric(data("GetObject")), "aws.s3.data_read");
    assert_eq!(metric(data("HeadObject")), "aws.s3.data_read");
    assert_eq!(metric(data("PutObject")), "aws.s3.data_write");
    assert_eq!(metric(data("DeleteObjects")), "aws.s3.data_write");
    assert_eq!(metric(data("GetObjectLockConfiguration")), "aws.s3.data_read");
    assert_eq!(metric(data("RenameObject")), "aws.s3.data_write");
    // Object APIs are data even when the category is missing.
    assert_eq!(metric(call("s3.amazonaws.com", "ListObjectsV2")), "aws.s3.data_read");
    assert_eq!(
        metric(call("s3.amazonaws.com", "CompleteMultipartUpload")),
        "aws.s3.data_write"
    );
}

#[test]
fn s3_bucket_apis_use_the_table() {
    assert_eq!(metric(call("s3.amazonaws.com", "CreateBucket")), "aws.s3.create");
    assert_eq!(metric(call("s3.amazonaws.com", "PutBucketVersioning")), "aws.s3.modify");
    assert_eq!(metric(call("s3.amazonaws.com", "ListBuckets")), "aws.s3.read");
    assert_eq!(
        metric(call("s3.amazonaws.com", "PutBucketPolicy")),
        "aws.s3.permissions"
    );
}

#[test]
fn public_bucket_acl_is_network_exposure() {
    let input = with_params(
        call("s3.amazonaws.com", "PutBucketAcl"),
        r#"{"bucketName":"b","AccessControlPolicy":{"AccessControlList":{"Grant":[{"Grantee":{"xsi:type":"Group","URI":"http://acs.amazonaws.com/groups/global/AllUsers"},"Permission":"READ"}]}},"acl":[""]}"#,
    );
    let category = categorize(&input);
    assert_eq!(category.metric, "aws.s3.network_exposure");
    assert!(category.flags.network_exposure && category.flags.permission_change);

    let canned = with_params(
        call("s3.amazonaws.com", "PutBucketAcl"),
        r#"{"bucketName":"b","x-amz-acl":["public-read"],"acl":[""]}"#,
    );
    assert_eq!(metric(canned), "aws.s3.network_exposure");
    let private = with_params(
        call("s3.amazonaws.com", "PutBucketAcl"),
        r#"{"bucketName":"b","x-amz-acl":["private"],"acl":[""]}"#,
    );
    assert_eq!(metric(private), "aws.s3.permissions");
}

#[test]
fn public_object_acl_is_network_exposure_and_private_is_a_data_write() {
    let public = Input {
        event_category: Some("Data"),
        ..with_params(
            call("s3.amazonaws.com", "PutObjectAcl"),
            r#"{"bucketName":"b","key":"k","x-amz-acl":["public-read"],"acl":[""]}"#,
        )
    };
    assert_eq!(metric(public), "aws.s3.network_exposure");
    let private = Input {
        event_category: Some("Data"),
        ..with_params(
            call("s3.amazonaws.com", "PutObjectAcl"),
            r#"{"bucketName":"b","key":"public-read","acl":[""]}"#,
        )
    };
    assert_eq!(metric(private), "aws.s3.data_write");
}

#[test]
fn public_bucket_policy_is_network_exposure_but_a_tls_only_policy_is_not() {
    let public = with_params(
        call("s3.amazonaws.com", "PutBucketPolicy"),
        r#"{"bucketName":"b","bucketPolicy":{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]},"policy":[""]}"#,
    );
    assert_eq!(metric(public), "aws.s3.network_exposure");
    let tls_only = with_params(
        call("s3.amazonaws.com", "PutBucketPolicy"),
        r#"{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}}"#,
    );
    assert_eq!(metric(tls_only), "aws.s3.permissions");
}

#[test]
fn lifting_a_public_access_block_is_network_exposure() {
    assert_eq!(
        metric(call("s3.amazonaws.com", "DeleteBucketPublicAccessBlock")),
        "aws.s3.network_exposure"
    );
    let lifted = with_params(
        call("s3.amazonaws.com", "PutBucketPublicAccessBlock"),
        r#"{"bucketName":"b","PublicAccessBlockConfiguration":{"BlockPublicAcls":true,"IgnorePublicAcls":true,"BlockPublicPolicy":false,"RestrictPublicBuckets":true}}"#,
    );
    assert_eq!(metric(lifted), "aws.s3.network_exposure");
    let kept = with_params(
        call("s3.amazonaws.com", "PutBucketPublicAccessBlock"),
        r#"{"bucketName":"b","PublicAccessBlockConfiguration":{"BlockPublicAcls":true,"IgnorePublicAcls":true,"BlockPublicPolicy":true,"RestrictPublicBuckets":true}}"#,
    );
    assert_eq!(metric(kept), "aws.s3.modify");
}

#[test]
fn data_events_of_other_services_are_data_reads_and_writes() {
    let get = Input {
        event_category: Some("Data"),
        read_only: Some(true),
        ..call("dynamodb.amazonaws.com", "GetItem")
    };
    assert_eq!(metric(get), "aws.dynamodb.data_read");
    let invoke = Input {
        event_category: Some("Data"),
        ..call("lambda.amazonaws.com", "Invoke")
    };
    assert_eq!(metric(invoke), "aws.lambda.data_write");
}
