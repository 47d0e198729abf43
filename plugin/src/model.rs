//! The normalized event and file types, in plain Rust.
//!
//! They mirror the WIT contract (`wit/plugin.wit`) field for field; `component.rs` moves them
//! into the generated bindings. Keeping them separate lets the same code run natively (tests,
//! the native benchmark) and inside the sandbox.

use crate::categorize::Category;

/// CloudTrail's `eventCategory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventCategory {
    Management,
    Data,
    Insight,
    NetworkActivity,
    Other,
}

/// Whether the call succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

/// What `sourceIPAddress` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Ip,
    Service,
    AwsInternal,
    None,
    Other,
}

/// `userIdentity`, normalized.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    pub identity_type: Option<String>,
    pub principal_id: Option<String>,
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub user_name: Option<String>,
    pub access_key_id: Option<String>,
    pub session_issuer_arn: Option<String>,
    pub mfa_authenticated: Option<bool>,
    pub invoked_by: Option<String>,
}

/// `tlsDetails`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls {
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
    pub client_provided_host_header: Option<String>,
}

/// One CloudTrail record, normalized and categorized.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub index: u32,
    pub event_id: Option<String>,
    pub event_time_ms: Option<i64>,
    pub event_time: Option<String>,
    pub event_version: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub category: Category,
    pub read_only: bool,
    pub read_only_derived: bool,
    pub event_category: EventCategory,
    pub event_type: Option<String>,
    pub region: Option<String>,
    pub recipient_account_id: Option<String>,
    pub principal: Option<Principal>,
    pub source_address: Option<String>,
    pub source_kind: SourceKind,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    pub shared_event_id: Option<String>,
    pub resources: Vec<String>,
    pub tls: Option<Tls>,
    pub problems: Vec<String>,
    pub raw: String,
}

/// What kind of CloudTrail object a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Log,
    Insight,
    Digest,
}

/// What a digest file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestInfo {
    pub account_id: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub log_file_count: u32,
}

/// Limits on the reading of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    pub max_decompressed_bytes: u64,
    pub max_record_bytes: u32,
    pub max_depth: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_decompressed_bytes: 4 << 30,
            max_record_bytes: 16 << 20,
            max_depth: 64,
        }
    }
}

/// Why a file could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    BadGzip(String),
    Truncated(String),
    NotJson(String),
    NotCloudtrail(String),
    TooLarge(u64),
    ReadFailed(String),
    Closed,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::BadGzip(m) => write!(f, "corrupt gzip: {m}"),
            FileError::Truncated(m) => write!(f, "truncated: {m}"),
            FileError::NotJson(m) => write!(f, "not JSON: {m}"),
            FileError::NotCloudtrail(m) => write!(f, "not a CloudTrail file: {m}"),
            FileError::TooLarge(limit) => write!(f, "decompresses to more than {limit} bytes"),
            FileError::ReadFailed(m) => write!(f, "the host could not read the file: {m}"),
            FileError::Closed => f.write_str("read again after an error"),
        }
    }
}
