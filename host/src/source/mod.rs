//! Where log files come from: the trail's S3 bucket, polled.
//!
//! # Layout
//! - `layout`: CloudTrail's key layout (accounts, organization ids, regions, days, file times).
//! - `s3_poll`: discovery by delimiter listings, day-prefix listings that catch late files,
//!   bounded-concurrency fetches, deletion of old acknowledged files.

pub mod layout;
pub mod s3_poll;
