//! Where log files come from: the trail's S3 bucket, polled, or the S3 event notifications of
//! an SQS queue.
//!
//! # Layout
//! - `s3_poll`: discovery by delimiter listings, day-prefix listings that catch late files,
//!   the walk of a backfill's closed days, bounded-concurrency fetches, deletion of old
//!   acknowledged files.
//! - `notification`: the objects an SQS message about new files names (S3, SNS, EventBridge
//!   and CloudTrail's own formats).
//! - `sqs`: the queue source: long-poll receives, messages deleted once their objects are
//!   acknowledged, visibility extended while they are read, poison messages reported.

pub mod notification;
pub mod s3_poll;
pub mod sqs;
