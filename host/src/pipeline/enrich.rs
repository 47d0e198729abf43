//! Enrichment: what the host adds to each event that the plugin cannot know — when and how the
//! log file reached trailwatch.

use serde::Serialize;

/// When and how a log file reached trailwatch (the `run` path; `replay` has no such times).
#[derive(Debug, Clone, Serialize)]
pub struct Delivery<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The S3 object's last-modified time, ms since the Unix epoch.
    pub last_modified_ms: i64,
    /// When trailwatch read it.
    pub processed_at_ms: i64,
    /// Last-modified minus event time: how long CloudTrail took to deliver the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_delay_ms: Option<i64>,
    /// Processing time minus last-modified: how long trailwatch took to pick it up.
    pub processing_delay_ms: i64,
    /// Delivered later than the threshold (default 15 min, the delay AWS states as normal).
    pub delayed: bool,
}

impl<'a> Delivery<'a> {
    /// The delivery record of an event of `event_time_ms` in an object of `last_modified_ms`.
    pub fn new(
        bucket: &'a str,
        last_modified_ms: i64,
        processed_at_ms: i64,
        event_time_ms: Option<i64>,
        delayed_after_ms: i64,
    ) -> Self {
        let delivery_delay_ms = event_time_ms.map(|t| last_modified_ms - t);
        Delivery {
            bucket,
            last_modified_ms,
            processed_at_ms,
            delivery_delay_ms,
            processing_delay_ms: processed_at_ms - last_modified_ms,
            delayed: delivery_delay_ms.is_some_and(|d| d > delayed_after_ms),
        }
    }
}

/// What enrichment needs to know about one file.
#[derive(Debug, Clone)]
pub struct FileContext {
    /// The bucket, when the file came from one.
    pub bucket: Option<String>,
    /// The object's last-modified time.
    pub last_modified_ms: Option<i64>,
    /// When trailwatch started reading it.
    pub processed_at_ms: i64,
    /// Events delivered later than this are flagged delayed.
    pub delayed_after_ms: i64,
}

impl FileContext {
    /// The delivery record of an event of `event_time_ms`, when the file came from a bucket.
    pub fn delivery(&self, event_time_ms: Option<i64>) -> Option<Delivery<'_>> {
        Some(Delivery::new(
            self.bucket.as_deref()?,
            self.last_modified_ms?,
            self.processed_at_ms,
            event_time_ms,
            self.delayed_after_ms,
        ))
    }
}
