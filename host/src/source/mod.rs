//! Where log files come from: the trail's S3 bucket, polled.
//!
//! # Layout
//! - `s3_poll`: discovery by delimiter listings, day-prefix listings that catch late files,
//!   the walk of a backfill's closed days, bounded-concurrency fetches, deletion of old
//!   acknowledged files.
//! - `notification`: the objects an SQS message about new files names (S3, SNS, EventBridge
//!   and CloudTrail's own formats), for the queue source that is to read them.

pub mod notification;
pub mod s3_poll;
