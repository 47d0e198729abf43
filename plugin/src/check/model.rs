//! The trail check's input and output, as in the contract's `trail-check` interface.

/// The module's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Default,
    WriteOnly,
    Restricted,
}

/// What the module wants of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub mode: Mode,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub trail_name: Option<String>,
    pub write_event_filter: bool,
    pub max_delivery_age_minutes: u32,
}

/// `ReadWriteType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadWrite {
    All,
    ReadOnly,
    WriteOnly,
}

impl ReadWrite {
    /// As CloudTrail spells it.
    pub fn name(self) -> &'static str {
        match self {
            ReadWrite::All => "All",
            ReadWrite::ReadOnly => "ReadOnly",
            ReadWrite::WriteOnly => "WriteOnly",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataResource {
    pub kind: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSelector {
    pub read_write: ReadWrite,
    pub include_management_events: bool,
    pub exclude_management_event_sources: Vec<String>,
    pub data_resources: Vec<DataResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvancedEventSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    pub name: String,
    pub arn: Option<String>,
    pub home_region: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub multi_region: bool,
    pub organization: bool,
    pub include_global_service_events: bool,
    pub log_file_validation: bool,
    pub kms_key_id: Option<String>,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub sns_topic_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailStatus {
    pub is_logging: bool,
    pub latest_delivery_error: Option<String>,
    pub latest_notification_error: Option<String>,
    pub latest_digest_delivery_error: Option<String>,
    pub latest_cloud_watch_logs_delivery_error: Option<String>,
    pub latest_delivery_time_ms: Option<i64>,
    pub stop_logging_time_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub group_uri: Option<String>,
    pub user_id: Option<String>,
    pub permission: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketSettings {
    pub name: String,
    pub policy: Option<String>,
    pub acl: Vec<Grant>,
    pub public_access_block: Option<PublicAccessBlock>,
    pub logging_target: Option<String>,
    pub versioning: Option<String>,
    pub mfa_delete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub operation: String,
    pub target: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailSnapshot {
    pub trail: Trail,
    pub status: Option<TrailStatus>,
    pub event_selectors: Vec<EventSelector>,
    pub advanced_event_selectors: Vec<AdvancedEventSelector>,
    pub insight_types: Vec<String>,
    pub tags: Vec<Tag>,
    pub bucket: Option<BucketSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub region: String,
    pub trails: Vec<TrailSnapshot>,
    pub unread: Vec<Unread>,
    pub desired: Desired,
    pub now_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    StartLogging(String),
    MakeMultiRegion(String),
    IncludeGlobalServiceEvents(String),
    SetManagementEvents { trail: String, read_write: ReadWrite },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub field: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub trail: Option<String>,
    pub message: String,
    pub evidence: Vec<Evidence>,
    pub controls: Vec<&'static str>,
    pub fix: Option<Fix>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub chosen: Option<String>,
    pub reason: String,
    pub prefix: Option<String>,
    pub organization: bool,
    pub findings: Vec<Finding>,
}
