//! Events rendered as their output documents, one buffer per batch (the contract's `documents`
//! interface).
//!
//! The typed path (`next_batch`) copies every text of every event out of the record, then the
//! contract copies each again across the sandbox boundary, and the host renders the document
//! from them. Here each event is rendered straight from the record's text it borrows, into one
//! buffer, which crosses the boundary as a single copy; a small fixed-size summary per event
//! gives the host what it counts and filters on. The documents are the ones the host renders
//! from typed events, byte for byte: both use `trailwatch_document`.

use trailwatch_document as document;

use crate::categorize::Flags;
use crate::model::{Event, EventCategory, FileError, Outcome, SourceKind};
use crate::reader::LogFile;

/// What the host needs of one event besides its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Position of the record in the file's `Records` array.
    pub index: u32,
    /// Where the document's head ends in the batch's text: the host may add members there.
    pub head_end: u32,
    /// Where the document ends, after its newline.
    pub end: u32,
    pub event_time_ms: Option<i64>,
    pub read_only: bool,
    /// Index of the event's metric name in the batch's `metrics`.
    pub metric: u32,
    /// Bit `i` set: the flag `trailwatch_document::FLAG_NAMES[i]`.
    pub flags: u8,
    pub outcome: Outcome,
    /// The record had problems (the document lists them).
    pub flagged: bool,
}

/// A batch of rendered events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The documents, one line each, in order (UTF-8).
    pub text: Vec<u8>,
    /// The metric names the events use, each once.
    pub metrics: Vec<String>,
    /// One per document, in order.
    pub events: Vec<Summary>,
    /// The events' observations, when the batch is observed for scoring.
    pub observed: Option<Observed>,
}

/// What scoring needs of a batch's events, in the plugin's compact form
/// (`scoring::observed`): observation `i` is `bytes[ends[i-1]..ends[i]]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Observed {
    pub bytes: Vec<u8>,
    pub ends: Vec<u32>,
}

impl Batch {
    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.text.clear();
        self.metrics.clear();
        self.events.clear();
        if let Some(o) = &mut self.observed {
            o.bytes.clear();
            o.ends.clear();
        }
    }
}

impl EventCategory {
    /// The name the document uses.
    pub const fn name(self) -> &'static str {
        match self {
            EventCategory::Management => "management",
            EventCategory::Data => "data",
            EventCategory::Insight => "insight",
            EventCategory::NetworkActivity => "network_activity",
            EventCategory::Other => "other",
        }
    }
}

impl Outcome {
    /// The name the document uses.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

impl SourceKind {
    /// The name the document uses.
    pub const fn name(self) -> &'static str {
        match self {
            SourceKind::Ip => "ip",
            SourceKind::Service => "service",
            SourceKind::AwsInternal => "aws_internal",
            SourceKind::None => "none",
            SourceKind::Other => "other",
        }
    }
}

/// The flags as the document numbers them (the order of `FLAG_NAMES`).
pub fn flag_bits(f: Flags) -> u8 {
    [
        f.authentication,
        f.permission_change,
        f.logging_tampering,
        f.network_exposure,
        f.credential_creation,
        f.protection_weakened,
        f.failed,
        f.denied,
    ]
    .into_iter()
    .enumerate()
    .fold(0, |bits, (i, on)| bits | (u8::from(on) << i))
}

/// The document's view of a principal, borrowing its text.
pub fn principal_view<'a>(p: &'a crate::model::Principal<'_>) -> document::Principal<'a> {
    document::Principal {
        identity_type: p.identity_type.as_deref(),
        principal_id: p.principal_id.as_deref(),
        arn: p.arn.as_deref(),
        account_id: p.account_id.as_deref(),
        user_name: p.user_name.as_deref(),
        access_key_id: p.access_key_id.as_deref(),
        session_issuer_arn: p.session_issuer_arn.as_deref(),
        mfa_authenticated: p.mfa_authenticated,
        invoked_by: p.invoked_by.as_deref(),
    }
}

/// Appends the document of `event`, read from the object `key`, and its summary.
pub fn render(batch: &mut Batch, event: &Event<'_>, key: &str) {
    let e = event;
    let principal = e.principal.as_ref().map(principal_view);
    let tls = e.tls.as_ref().map(|t| document::Tls {
        tls_version: t.tls_version.as_deref(),
        cipher_suite: t.cipher_suite.as_deref(),
        client_provided_host_header: t.client_provided_host_header.as_deref(),
    });
    let flags = flag_bits(e.category.flags);
    let view = document::Event {
        index: e.index,
        event_id: e.event_id.as_deref(),
        event_time: e.event_time.as_deref(),
        event_time_ms: e.event_time_ms,
        event_version: e.event_version.as_deref(),
        event_source: e.event_source.as_deref(),
        event_name: e.event_name.as_deref(),
        service: &e.category.service,
        action: e.category.action.as_str(),
        metric: &e.category.metric,
        flags,
        read_only: e.read_only,
        read_only_derived: e.read_only_derived,
        event_category: e.event_category.name(),
        event_type: e.event_type.as_deref(),
        region: e.region.as_deref(),
        recipient_account_id: e.recipient_account_id.as_deref(),
        principal,
        source_address: e.source_address.as_deref(),
        source_kind: e.source_kind.name(),
        user_agent: e.user_agent.as_deref(),
        error_code: e.error_code.as_deref(),
        error_message: e.error_message.as_deref(),
        outcome: e.outcome.name(),
        request_id: e.request_id.as_deref(),
        shared_event_id: e.shared_event_id.as_deref(),
        resources: &e.resources,
        tls,
        problems: &e.problems,
        raw: &e.raw,
    };
    document::write_head(&mut batch.text, &view, key);
    let head_end = batch.text.len();
    document::write_tail(&mut batch.text, &e.raw, !e.problems.is_empty());
    let metric = match batch.metrics.iter().position(|m| *m == e.category.metric) {
        Some(i) => i,
        None => {
            batch.metrics.push(e.category.metric.clone());
            batch.metrics.len() - 1
        }
    };
    // A batch stays far below 4 GiB (the reader's byte budget ends it at a few MiB).
    let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    batch.events.push(Summary {
        index: e.index,
        head_end: offset(head_end),
        end: offset(batch.text.len()),
        event_time_ms: e.event_time_ms,
        read_only: e.read_only,
        metric: offset(metric),
        flags,
        outcome: e.outcome,
        flagged: !e.problems.is_empty(),
    });
    if let Some(o) = &mut batch.observed {
        crate::scoring::observed::encode(e, &mut o.bytes);
        o.ends.push(offset(o.bytes.len()));
    }
}

impl LogFile {
    /// Renders up to `max` further events into `batch` (cleared first): the events `next_batch`
    /// gives, as their documents. No events means the file ended cleanly; errors as
    /// `next_batch`.
    pub fn next_documents(&mut self, max: u32, batch: &mut Batch) -> Result<usize, FileError> {
        batch.clear();
        let key = self.key().to_owned();
        self.next_with(max, |event| render(batch, &event, &key))
    }

    /// One step of a hashed read, rendered (`LogFile::next_step_with`): the count, and whether
    /// the file has ended.
    pub fn next_documents_step(&mut self, max: u32, batch: &mut Batch) -> Result<(usize, bool), FileError> {
        batch.clear();
        let key = self.key().to_owned();
        self.next_step_with(max, |event| render(batch, &event, &key))
    }
}
