//! Enrichment: what the host adds to each event that the plugin cannot know — when and how the
//! log file reached trailwatch, and where the event's source address is (`networks`).

use std::sync::Arc;

use crate::networks::Networks;
pub use crate::output::ndjson::Delivery;

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
    /// The databases source addresses are looked up in, when configured.
    pub networks: Option<Arc<Networks>>,
}

impl FileContext {
    /// Whether events of this file get delivery records (it came from a bucket).
    pub fn adds_delivery(&self) -> bool {
        self.bucket.is_some() && self.last_modified_ms.is_some()
    }

    /// Whether the host adds members of its own to this file's documents.
    pub fn adds_members(&self) -> bool {
        self.adds_delivery() || self.networks.is_some()
    }

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
