//! The normalized event and file types, in plain Rust.
//!
//! They mirror the WIT contract (`wit/plugin.wit`) field for field; `component.rs` moves them
//! into the generated bindings. Keeping them separate lets the same code run natively (tests,
//! the native benchmark) and inside the sandbox.

use std::borrow::Cow;

use crate::categorize::Category;

/// Text of an event: borrowed from the record's JSON where it needed no unescaping.
pub type Text<'a> = Cow<'a, str>;

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
pub struct Principal<'a> {
    pub identity_type: Option<Text<'a>>,
    pub principal_id: Option<Text<'a>>,
    pub arn: Option<Text<'a>>,
    pub account_id: Option<Text<'a>>,
    pub user_name: Option<Text<'a>>,
    pub access_key_id: Option<Text<'a>>,
    pub session_issuer_arn: Option<Text<'a>>,
    pub mfa_authenticated: Option<bool>,
    pub invoked_by: Option<Text<'a>>,
}

/// `tlsDetails`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls<'a> {
    pub tls_version: Option<Text<'a>>,
    pub cipher_suite: Option<Text<'a>>,
    pub client_provided_host_header: Option<Text<'a>>,
}

/// One CloudTrail record, normalized and categorized.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub index: u32,
    pub event_id: Option<Text<'a>>,
    pub event_time_ms: Option<i64>,
    pub event_time: Option<Text<'a>>,
    pub event_version: Option<Text<'a>>,
    pub event_source: Option<Text<'a>>,
    pub event_name: Option<Text<'a>>,
    pub category: Category,
    pub read_only: bool,
    pub read_only_derived: bool,
    pub event_category: EventCategory,
    pub event_type: Option<Text<'a>>,
    pub region: Option<Text<'a>>,
    pub recipient_account_id: Option<Text<'a>>,
    pub principal: Option<Principal<'a>>,
    pub source_address: Option<Text<'a>>,
    pub source_kind: SourceKind,
    pub user_agent: Option<Text<'a>>,
    pub error_code: Option<Text<'a>>,
    pub error_message: Option<Text<'a>>,
    pub outcome: Outcome,
    pub request_id: Option<Text<'a>>,
    pub shared_event_id: Option<Text<'a>>,
    pub resources: Vec<Text<'a>>,
    pub tls: Option<Tls<'a>>,
    pub problems: Vec<String>,
    pub raw: Text<'a>,
}

fn owned(text: Option<Text<'_>>) -> Option<Text<'static>> {
    text.map(|t| Cow::Owned(t.into_owned()))
}

impl Principal<'_> {
    /// The same principal, owning its text.
    pub fn into_owned(self) -> Principal<'static> {
        Principal {
            identity_type: owned(self.identity_type),
            principal_id: owned(self.principal_id),
            arn: owned(self.arn),
            account_id: owned(self.account_id),
            user_name: owned(self.user_name),
            access_key_id: owned(self.access_key_id),
            session_issuer_arn: owned(self.session_issuer_arn),
            mfa_authenticated: self.mfa_authenticated,
            invoked_by: owned(self.invoked_by),
        }
    }
}

impl Event<'_> {
    /// The same event, owning its text (to keep it past the buffer it was read from).
    pub fn into_owned(self) -> Event<'static> {
        Event {
            index: self.index,
            event_id: owned(self.event_id),
            event_time_ms: self.event_time_ms,
            event_time: owned(self.event_time),
            event_version: owned(self.event_version),
            event_source: owned(self.event_source),
            event_name: owned(self.event_name),
            category: self.category,
            read_only: self.read_only,
            read_only_derived: self.read_only_derived,
            event_category: self.event_category,
            event_type: owned(self.event_type),
            region: owned(self.region),
            recipient_account_id: owned(self.recipient_account_id),
            principal: self.principal.map(Principal::into_owned),
            source_address: owned(self.source_address),
            source_kind: self.source_kind,
            user_agent: owned(self.user_agent),
            error_code: owned(self.error_code),
            error_message: owned(self.error_message),
            outcome: self.outcome,
            request_id: owned(self.request_id),
            shared_event_id: owned(self.shared_event_id),
            resources: self.resources.into_iter().map(|r| Cow::Owned(r.into_owned())).collect(),
            tls: self.tls.map(|t| Tls {
                tls_version: owned(t.tls_version),
                cipher_suite: owned(t.cipher_suite),
                client_provided_host_header: owned(t.client_provided_host_header),
            }),
            problems: self.problems,
            raw: Cow::Owned(self.raw.into_owned()),
        }
    }
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
