//! The WIT exports: moves values between the bindings and the plain Rust model.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Once;

use crate::categorize::{Action, Category};
use crate::model;

#[cfg(not(feature = "parser-only-fixture"))]
wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
});

// A plugin of the contract as it was before the optional `documents` interface: the host must
// load it and render the documents itself (test fixture only).
#[cfg(feature = "parser-only-fixture")]
wit_bindgen::generate!({
    inline: "package trailwatch:fixture;
        world parser-only {
            import trailwatch:plugin/host-log@0.2.0;
            import trailwatch:plugin/input@0.2.0;
            export trailwatch:plugin/meta@0.2.0;
            export trailwatch:plugin/parser@0.2.0;
            export trailwatch:plugin/scoring@0.2.0;
        }",
    path: "../wit",
    world: "trailwatch:fixture/parser-only",
    generate_all,
});

#[cfg(not(feature = "parser-only-fixture"))]
use exports::trailwatch::plugin::{
    documents, hashing, integrity, observing, scoring_memory, scoring_write_back, selection, trail_check,
};
use exports::trailwatch::plugin::{meta, parser, scoring};
use trailwatch::plugin::host_log::log;
use trailwatch::plugin::types as wit;

struct Plugin;

static PANIC_HOOK: Once = Once::new();

/// Sends a panic's message to the host before the trap, so the host can say why a file failed.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(wit::LogLevel::Panic, &format!("plugin panicked: {info}"));
        }));
    });
}

impl meta::Guest for Plugin {
    fn info() -> wit::PluginInfo {
        install_panic_hook();
        wit::PluginInfo {
            #[cfg(not(feature = "sandbox-fixture"))]
            name: crate::NAME.into(),
            #[cfg(feature = "sandbox-fixture")]
            name: "trailwatch-sandbox-fixture".into(),
            version: crate::VERSION.into(),
            contract_version: crate::CONTRACT_VERSION.into(),
        }
    }
}

/// The stored bytes, pulled from the host through the `input` import as the reader needs them.
struct HostInput;

impl std::io::Read for HostInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        match trailwatch::plugin::input::read(want) {
            Ok(bytes) => {
                // The host never sends more than asked; a host that did would lose nothing
                // silently: the excess is an error.
                if bytes.len() > buf.len() {
                    return Err(std::io::Error::other(crate::reader::InputError(format!(
                        "the host sent {} bytes for a read of {}",
                        bytes.len(),
                        buf.len()
                    ))));
                }
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Err(message) => Err(std::io::Error::other(crate::reader::InputError(message))),
        }
    }
}

/// The `log-file` resource: the reader behind a `RefCell`, as resource methods take `&self`;
/// the size of the last rendered batch (the next one's buffer is allocated once at about
/// that size rather than grown by doubling); and, once the file is observed (`observing`),
/// the observations of the last rendered batch.
#[cfg_attr(feature = "parser-only-fixture", allow(dead_code))]
struct LogFile(
    RefCell<crate::reader::LogFile>,
    std::cell::Cell<usize>,
    RefCell<Option<crate::documents::Observed>>,
);

/// Opens the file the host streams through `input`, keeping what `keep` keeps.
fn open(
    meta: wit::ObjectMeta,
    options: wit::OpenOptions,
    keep: crate::select::Keep,
    hashed: bool,
) -> Result<parser::LogFile, wit::FileError> {
    install_panic_hook();
    #[cfg(feature = "sandbox-fixture")]
    sandbox_fixture::misbehave(&meta.key);
    let options = model::OpenOptions {
        max_decompressed_bytes: options.max_decompressed_bytes,
        max_record_bytes: options.max_record_bytes,
        max_depth: options.max_depth,
    };
    let mut file =
        crate::reader::LogFile::open_with(Box::new(HostInput), &meta.key, options, hashed).map_err(file_error)?;
    file.select(keep);
    Ok(parser::LogFile::new(LogFile(
        RefCell::new(file),
        std::cell::Cell::new(0),
        RefCell::new(None),
    )))
}

/// The contract's `keep` as the reader's.
#[cfg(not(feature = "parser-only-fixture"))]
fn keep_of(keep: selection::Keep) -> crate::select::Keep {
    match keep {
        selection::Keep::All => crate::select::Keep::All,
        selection::Keep::WriteOnly => crate::select::Keep::WriteOnly,
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl selection::Guest for Plugin {
    fn open_selected(
        meta: wit::ObjectMeta,
        options: wit::OpenOptions,
        keep: selection::Keep,
    ) -> Result<parser::LogFile, wit::FileError> {
        open(meta, options, keep_of(keep), false)
    }

    fn left_out(file: parser::LogFileBorrow<'_>) -> u64 {
        file.get::<LogFile>().0.borrow().left_out()
    }
}

impl parser::Guest for Plugin {
    type LogFile = LogFile;
}

impl parser::GuestLogFile for LogFile {
    fn open(meta: wit::ObjectMeta, options: wit::OpenOptions) -> Result<parser::LogFile, wit::FileError> {
        open(meta, options, crate::select::Keep::All, false)
    }

    fn kind(&self) -> wit::FileKind {
        match self.0.borrow().kind() {
            model::FileKind::Log => wit::FileKind::Log,
            model::FileKind::Insight => wit::FileKind::Insight,
            model::FileKind::Digest => wit::FileKind::Digest,
        }
    }

    fn digest(&self) -> Option<wit::DigestInfo> {
        self.0.borrow().digest().map(|d| wit::DigestInfo {
            account_id: d.account_id.clone(),
            start_time: d.start_time.clone(),
            end_time: d.end_time.clone(),
            log_file_count: d.log_file_count,
        })
    }

    fn next_batch(&self, max: u32) -> Result<Vec<wit::Event>, wit::FileError> {
        let batch = self.0.borrow_mut().next_batch(max).map_err(file_error)?;
        Ok(batch.into_iter().map(event).collect())
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl documents::Guest for Plugin {
    fn next_documents(file: parser::LogFileBorrow<'_>, max: u32) -> Result<documents::Batch, wit::FileError> {
        let file = file.get::<LogFile>();
        let mut batch = file.batch();
        file.0
            .borrow_mut()
            .next_documents(max, &mut batch)
            .map_err(file_error)?;
        Ok(file.documents_out(batch))
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl LogFile {
    /// An empty batch with room for about as much text as the last one took.
    fn batch(&self) -> crate::documents::Batch {
        crate::documents::Batch {
            text: Vec::with_capacity(self.1.get() + self.1.get() / 4),
            // Observed: the last batch's buffers, taken or not, are used again.
            observed: self.2.borrow_mut().as_mut().map(|o| {
                let (mut bytes, mut ends) = (std::mem::take(&mut o.bytes), std::mem::take(&mut o.ends));
                bytes.clear();
                ends.clear();
                crate::documents::Observed { bytes, ends }
            }),
            ..Default::default()
        }
    }

    /// `batch` as the contract's record (and its size remembered for the next); its
    /// observations kept for `observing.take`.
    fn documents_out(&self, batch: crate::documents::Batch) -> documents::Batch {
        self.1.set(batch.text.len());
        if let Some(o) = batch.observed {
            *self.2.borrow_mut() = Some(o);
        }
        let events = batch
            .events
            .iter()
            .map(|s| documents::Summary {
                index: s.index,
                head_end: s.head_end,
                end: s.end,
                event_time_ms: s.event_time_ms,
                read_only: s.read_only,
                metric: s.metric,
                flags: event_flags(s.flags),
                outcome: outcome(s.outcome),
                flagged: s.flagged,
            })
            .collect();
        documents::Batch {
            text: batch.text,
            metrics: batch.metrics,
            events,
        }
    }
}

fn outcome(o: model::Outcome) -> wit::Outcome {
    match o {
        model::Outcome::Success => wit::Outcome::Success,
        model::Outcome::Failure => wit::Outcome::Failure,
        model::Outcome::Denied => wit::Outcome::Denied,
    }
}

fn file_error(e: model::FileError) -> wit::FileError {
    match e {
        model::FileError::BadGzip(m) => wit::FileError::BadGzip(m),
        model::FileError::Truncated(m) => wit::FileError::Truncated(m),
        model::FileError::NotJson(m) => wit::FileError::NotJson(m),
        model::FileError::NotCloudtrail(m) => wit::FileError::NotCloudtrail(m),
        model::FileError::TooLarge(n) => wit::FileError::TooLarge(n),
        model::FileError::ReadFailed(m) => wit::FileError::ReadFailed(m),
        model::FileError::Closed => wit::FileError::Closed,
    }
}

fn action(a: Action) -> wit::ActionType {
    match a {
        Action::Read => wit::ActionType::Read,
        Action::Create => wit::ActionType::Create,
        Action::Modify => wit::ActionType::Modify,
        Action::Delete => wit::ActionType::Delete,
        Action::Permissions => wit::ActionType::Permissions,
        Action::Authentication => wit::ActionType::Authentication,
        Action::LoggingChange => wit::ActionType::LoggingChange,
        Action::NetworkExposure => wit::ActionType::NetworkExposure,
        Action::CredentialCreation => wit::ActionType::CredentialCreation,
        Action::DataRead => wit::ActionType::DataRead,
        Action::DataWrite => wit::ActionType::DataWrite,
        Action::Insight => wit::ActionType::Insight,
        Action::Other => wit::ActionType::Other,
    }
}

/// The flags from the document's numbering (bit `i` is `FLAG_NAMES[i]`).
fn event_flags(bits: u8) -> wit::EventFlags {
    [
        wit::EventFlags::AUTHENTICATION,
        wit::EventFlags::PERMISSION_CHANGE,
        wit::EventFlags::LOGGING_TAMPERING,
        wit::EventFlags::NETWORK_EXPOSURE,
        wit::EventFlags::CREDENTIAL_CREATION,
        wit::EventFlags::PROTECTION_WEAKENED,
        wit::EventFlags::FAILED,
        wit::EventFlags::DENIED,
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| bits & (1 << i) != 0)
    .fold(wit::EventFlags::empty(), |all, (_, flag)| all | flag)
}

fn category(c: Category) -> wit::Category {
    let flags = event_flags(crate::documents::flag_bits(c.flags));
    wit::Category {
        service: c.service,
        action: action(c.action),
        metric: c.metric,
        flags,
    }
}

fn text(t: Option<model::Text<'_>>) -> Option<String> {
    t.map(Cow::into_owned)
}

fn event(e: model::Event<'_>) -> wit::Event {
    wit::Event {
        index: e.index,
        event_id: text(e.event_id),
        event_time_ms: e.event_time_ms,
        event_time: text(e.event_time),
        event_version: text(e.event_version),
        event_source: text(e.event_source),
        event_name: text(e.event_name),
        category: category(e.category),
        read_only: e.read_only,
        read_only_derived: e.read_only_derived,
        event_category: match e.event_category {
            model::EventCategory::Management => wit::EventCategory::Management,
            model::EventCategory::Data => wit::EventCategory::Data,
            model::EventCategory::Insight => wit::EventCategory::Insight,
            model::EventCategory::NetworkActivity => wit::EventCategory::NetworkActivity,
            model::EventCategory::Other => wit::EventCategory::Other,
        },
        event_type: text(e.event_type),
        region: text(e.region),
        recipient_account_id: text(e.recipient_account_id),
        principal: e.principal.map(|p| wit::Principal {
            identity_type: text(p.identity_type),
            principal_id: text(p.principal_id),
            arn: text(p.arn),
            account_id: text(p.account_id),
            user_name: text(p.user_name),
            access_key_id: text(p.access_key_id),
            session_issuer_arn: text(p.session_issuer_arn),
            mfa_authenticated: p.mfa_authenticated,
            invoked_by: text(p.invoked_by),
        }),
        source_address: text(e.source_address),
        source_kind: match e.source_kind {
            model::SourceKind::Ip => wit::SourceKind::Ip,
            model::SourceKind::Service => wit::SourceKind::Service,
            model::SourceKind::AwsInternal => wit::SourceKind::AwsInternal,
            model::SourceKind::None => wit::SourceKind::None,
            model::SourceKind::Other => wit::SourceKind::Other,
        },
        user_agent: text(e.user_agent),
        error_code: text(e.error_code),
        error_message: text(e.error_message),
        outcome: outcome(e.outcome),
        request_id: text(e.request_id),
        shared_event_id: text(e.shared_event_id),
        resources: e.resources.into_iter().map(Cow::into_owned).collect(),
        tls: e.tls.map(|t| wit::TlsDetails {
            tls_version: text(t.tls_version),
            cipher_suite: text(t.cipher_suite),
            client_provided_host_header: text(t.client_provided_host_header),
        }),
        problems: e.problems,
        raw: e.raw.into_owned(),
    }
}

/// The trail check: the contract's records to the plain model and back.
#[cfg(not(feature = "parser-only-fixture"))]
mod trail_check_export {
    use super::trail_check as tc;
    use crate::check::model as m;

    fn mode(v: tc::Mode) -> m::Mode {
        match v {
            tc::Mode::Default => m::Mode::Default,
            tc::Mode::WriteOnly => m::Mode::WriteOnly,
            tc::Mode::Restricted => m::Mode::Restricted,
        }
    }

    fn read_write(v: tc::ReadWrite) -> m::ReadWrite {
        match v {
            tc::ReadWrite::All => m::ReadWrite::All,
            tc::ReadWrite::ReadOnly => m::ReadWrite::ReadOnly,
            tc::ReadWrite::WriteOnly => m::ReadWrite::WriteOnly,
        }
    }

    fn read_write_out(v: m::ReadWrite) -> tc::ReadWrite {
        match v {
            m::ReadWrite::All => tc::ReadWrite::All,
            m::ReadWrite::ReadOnly => tc::ReadWrite::ReadOnly,
            m::ReadWrite::WriteOnly => tc::ReadWrite::WriteOnly,
        }
    }

    fn trail(t: tc::Trail) -> m::Trail {
        m::Trail {
            name: t.name,
            arn: t.arn,
            home_region: t.home_region,
            bucket: t.bucket,
            prefix: t.prefix,
            multi_region: t.multi_region,
            organization: t.organization,
            include_global_service_events: t.include_global_service_events,
            log_file_validation: t.log_file_validation,
            kms_key_id: t.kms_key_id,
            cloud_watch_logs_log_group_arn: t.cloud_watch_logs_log_group_arn,
            sns_topic_arn: t.sns_topic_arn,
        }
    }

    fn status(s: tc::TrailStatus) -> m::TrailStatus {
        m::TrailStatus {
            is_logging: s.is_logging,
            latest_delivery_error: s.latest_delivery_error,
            latest_notification_error: s.latest_notification_error,
            latest_digest_delivery_error: s.latest_digest_delivery_error,
            latest_cloud_watch_logs_delivery_error: s.latest_cloud_watch_logs_delivery_error,
            latest_delivery_time_ms: s.latest_delivery_time_ms,
            stop_logging_time_ms: s.stop_logging_time_ms,
        }
    }

    fn bucket(b: tc::BucketSettings) -> m::BucketSettings {
        m::BucketSettings {
            name: b.name,
            policy: b.policy,
            acl: b
                .acl
                .into_iter()
                .map(|g| m::Grant {
                    group_uri: g.group_uri,
                    user_id: g.user_id,
                    permission: g.permission,
                })
                .collect(),
            public_access_block: b.public_access_block.map(|p| m::PublicAccessBlock {
                block_public_acls: p.block_public_acls,
                ignore_public_acls: p.ignore_public_acls,
                block_public_policy: p.block_public_policy,
                restrict_public_buckets: p.restrict_public_buckets,
            }),
            logging_target: b.logging_target,
            versioning: b.versioning,
            mfa_delete: b.mfa_delete,
        }
    }

    fn trail_snapshot(t: tc::TrailSnapshot) -> m::TrailSnapshot {
        m::TrailSnapshot {
            trail: trail(t.trail),
            status: t.status.map(status),
            event_selectors: t
                .event_selectors
                .into_iter()
                .map(|s| m::EventSelector {
                    read_write: read_write(s.read_write),
                    include_management_events: s.include_management_events,
                    exclude_management_event_sources: s.exclude_management_event_sources,
                    data_resources: s
                        .data_resources
                        .into_iter()
                        .map(|d| m::DataResource {
                            kind: d.kind,
                            values: d.values,
                        })
                        .collect(),
                })
                .collect(),
            advanced_event_selectors: t
                .advanced_event_selectors
                .into_iter()
                .map(|s| m::AdvancedEventSelector {
                    name: s.name,
                    field_selectors: s
                        .field_selectors
                        .into_iter()
                        .map(|f| m::FieldSelector {
                            field: f.field,
                            equals: f.equals,
                            starts_with: f.starts_with,
                            ends_with: f.ends_with,
                            not_equals: f.not_equals,
                            not_starts_with: f.not_starts_with,
                            not_ends_with: f.not_ends_with,
                        })
                        .collect(),
                })
                .collect(),
            insight_types: t.insight_types,
            tags: t
                .tags
                .into_iter()
                .map(|t| m::Tag {
                    key: t.key,
                    value: t.value,
                })
                .collect(),
            bucket: t.bucket.map(bucket),
        }
    }

    fn snapshot(s: tc::Snapshot) -> m::Snapshot {
        let d = s.desired;
        m::Snapshot {
            region: s.region,
            trails: s.trails.into_iter().map(trail_snapshot).collect(),
            unread: s
                .unread
                .into_iter()
                .map(|u| m::Unread {
                    operation: u.operation,
                    target: u.target,
                    code: u.code,
                    message: u.message,
                })
                .collect(),
            desired: m::Desired {
                mode: mode(d.mode),
                bucket: d.bucket,
                prefix: d.prefix,
                trail_name: d.trail_name,
                write_event_filter: d.write_event_filter,
                max_delivery_age_minutes: d.max_delivery_age_minutes,
            },
            now_ms: s.now_ms,
        }
    }

    fn fix(f: m::Fix) -> tc::Fix {
        match f {
            m::Fix::StartLogging(t) => tc::Fix::StartLogging(t),
            m::Fix::MakeMultiRegion(t) => tc::Fix::MakeMultiRegion(t),
            m::Fix::IncludeGlobalServiceEvents(t) => tc::Fix::IncludeGlobalServiceEvents(t),
            m::Fix::SetManagementEvents { trail, read_write } => tc::Fix::SetManagementEvents(tc::ManagementEvents {
                trail,
                read_write: read_write_out(read_write),
            }),
        }
    }

    fn finding(f: m::Finding) -> tc::Finding {
        tc::Finding {
            code: f.code.into(),
            severity: match f.severity {
                m::Severity::Info => tc::Severity::Info,
                m::Severity::Warning => tc::Severity::Warning,
                m::Severity::Error => tc::Severity::Error,
            },
            trail: f.trail,
            message: f.message,
            evidence: f
                .evidence
                .into_iter()
                .map(|e| tc::Evidence {
                    field: e.field,
                    value: e.value,
                })
                .collect(),
            controls: f.controls.into_iter().map(str::to_owned).collect(),
            fix: f.fix.map(fix),
        }
    }

    impl tc::Guest for super::Plugin {
        fn check(snap: tc::Snapshot) -> tc::Report {
            super::install_panic_hook();
            let r = crate::check::check(&snapshot(snap));
            tc::Report {
                chosen: r.chosen,
                reason: r.reason,
                prefix: r.prefix,
                organization: r.organization,
                findings: r.findings.into_iter().map(finding).collect(),
            }
        }
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl observing::Guest for Plugin {
    fn observe(file: parser::LogFileBorrow<'_>) {
        let file = file.get::<LogFile>();
        let mut observed = file.2.borrow_mut();
        if observed.is_none() {
            *observed = Some(crate::documents::Observed::default());
        }
    }

    fn take(file: parser::LogFileBorrow<'_>) -> observing::Observed {
        let file = file.get::<LogFile>();
        let mut observed = file.2.borrow_mut();
        match observed.as_mut() {
            Some(o) => observing::Observed {
                bytes: std::mem::take(&mut o.bytes),
                ends: std::mem::take(&mut o.ends),
            },
            None => observing::Observed {
                bytes: Vec::new(),
                ends: Vec::new(),
            },
        }
    }

    fn start(
        settings: scoring::Settings,
        bytes: Vec<u8>,
        ends: Vec<u32>,
        networks: Vec<scoring::Network>,
        network_of: Vec<u32>,
    ) -> Result<scoring::Batch, String> {
        install_panic_hook();
        scoring_export::start(settings, bytes, &ends, networks, &network_of)
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl scoring_memory::Guest for Plugin {
    fn remember(max_bytes: u64) {
        crate::scoring::memory::remember(max_bytes);
    }

    fn forget() {
        crate::scoring::memory::forget();
    }
}

#[cfg(not(feature = "parser-only-fixture"))]
impl scoring_write_back::Guest for Plugin {
    fn hold() {
        crate::scoring::memory::hold();
    }

    fn flush(prefix: String) -> Vec<scoring::Write> {
        crate::scoring::memory::flush(&prefix)
            .into_iter()
            .map(|(key, value)| scoring::Write { key, value })
            .collect()
    }
}

export!(Plugin);

/// Deliberate misbehaviour for the host's sandbox tests (feature `sandbox-fixture` only).
#[cfg(not(feature = "parser-only-fixture"))]
#[path = "component_integrity.rs"]
mod integrity_export;

#[path = "component_scoring.rs"]
mod scoring_export;

#[cfg(feature = "sandbox-fixture")]
mod sandbox_fixture {
    /// Misbehaves as the object key asks: allocate without end, loop without end, or panic.
    pub fn misbehave(key: &str) {
        if key.contains("memory-bomb") {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0x5a; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        if key.contains("infinite-loop") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if key.contains("panic") {
            panic!("sandbox fixture panics on purpose for {key}");
        }
    }
}
