//! Where log files come from: the trail's S3 bucket, polled.
//!
//! # Layout
//! - `s3_poll`: discovery by delimiter listings, day-prefix listings that catch late files,
//!   bounded-concurrency fetches, deletion of old acknowledged files.

pub mod s3_poll;
