//! AWS access: credentials, SigV4-signed HTTP with retries, and the few S3 and CloudTrail
//! operations trailwatch needs.
//!
//! # Layout
//! - `secret`: a string whose `Debug`/`Display` never show it.
//! - `credentials`: keys from the config file, or the standard chain through `aws-config`.
//! - `client`: signing, timeouts, retries with capped exponential backoff and jitter, and a count
//!   of every request by operation (they cost money).
//! - `endpoint`: service URLs for every partition (`aws`, `aws-cn`, `aws-us-gov`, …), FIPS and
//!   dual-stack as options.
//! - `error`: typed AWS errors; callers branch on the kind, never on message text.
//! - `s3`: ListObjectsV2, GetObject, DeleteObjects.
//! - `bucket`: the bucket settings the trail check reads (policy, ACL, public access block, …).
//! - `sqs`: ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch, GetQueueAttributes
//!   (the queue source).
//! - `sts`: GetCallerIdentity (the account, for `setup`).
//! - `xml`: XML answers read safely (quick-xml's panics become errors).
//! - `cloudtrail`: reading a trail (DescribeTrails, GetTrailStatus, selectors, tags) and the
//!   changes fixes and `setup` make (PutEventSelectors, UpdateTrail, StartLogging, CreateTrail).

pub mod bucket;
pub mod client;
pub mod cloudtrail;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod s3;
pub mod secret;
pub mod sqs;
pub mod sts;
pub mod xml;

pub use client::{AwsClient, ClientSettings, RequestCounts};
pub use error::AwsError;
