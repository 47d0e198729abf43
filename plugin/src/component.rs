//! The WIT exports: moves values between the bindings and the plain Rust model.

use std::cell::RefCell;
use std::sync::Once;

use crate::categorize::{Action, Category};
use crate::model;

wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
});

use exports::trailwatch::plugin::{meta, parser};
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

/// The `log-file` resource: the reader behind a `RefCell`, as resource methods take `&self`.
struct LogFile(RefCell<crate::reader::LogFile>);

impl parser::Guest for Plugin {
    type LogFile = LogFile;
}

impl parser::GuestLogFile for LogFile {
    fn open(meta: wit::ObjectMeta, options: wit::OpenOptions) -> Result<parser::LogFile, wit::FileError> {
        install_panic_hook();
        #[cfg(feature = "sandbox-fixture")]
        sandbox_fixture::misbehave(&meta.key);
        let options = model::OpenOptions {
            max_decompressed_bytes: options.max_decompressed_bytes,
            max_record_bytes: options.max_record_bytes,
            max_depth: options.max_depth,
        };
        crate::reader::LogFile::open_reader(Box::new(HostInput), &meta.key, options)
            .map(|f| parser::LogFile::new(LogFile(RefCell::new(f))))
            .map_err(file_error)
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

fn category(c: Category) -> wit::Category {
    let f = c.flags;
    let mut flags = wit::EventFlags::empty();
    for (on, flag) in [
        (f.authentication, wit::EventFlags::AUTHENTICATION),
        (f.permission_change, wit::EventFlags::PERMISSION_CHANGE),
        (f.logging_tampering, wit::EventFlags::LOGGING_TAMPERING),
        (f.network_exposure, wit::EventFlags::NETWORK_EXPOSURE),
        (f.credential_creation, wit::EventFlags::CREDENTIAL_CREATION),
        (f.failed, wit::EventFlags::FAILED),
        (f.denied, wit::EventFlags::DENIED),
    ] {
        if on {
            flags = flags | flag;
        }
    }
    wit::Category {
        service: c.service,
        action: action(c.action),
        metric: c.metric,
        flags,
    }
}

fn event(e: model::Event) -> wit::Event {
    wit::Event {
        index: e.index,
        event_id: e.event_id,
        event_time_ms: e.event_time_ms,
        event_time: e.event_time,
        event_version: e.event_version,
        event_source: e.event_source,
        event_name: e.event_name,
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
        event_type: e.event_type,
        region: e.region,
        recipient_account_id: e.recipient_account_id,
        principal: e.principal.map(|p| wit::Principal {
            identity_type: p.identity_type,
            principal_id: p.principal_id,
            arn: p.arn,
            account_id: p.account_id,
            user_name: p.user_name,
            access_key_id: p.access_key_id,
            session_issuer_arn: p.session_issuer_arn,
            mfa_authenticated: p.mfa_authenticated,
            invoked_by: p.invoked_by,
        }),
        source_address: e.source_address,
        source_kind: match e.source_kind {
            model::SourceKind::Ip => wit::SourceKind::Ip,
            model::SourceKind::Service => wit::SourceKind::Service,
            model::SourceKind::AwsInternal => wit::SourceKind::AwsInternal,
            model::SourceKind::None => wit::SourceKind::None,
            model::SourceKind::Other => wit::SourceKind::Other,
        },
        user_agent: e.user_agent,
        error_code: e.error_code,
        error_message: e.error_message,
        outcome: match e.outcome {
            model::Outcome::Success => wit::Outcome::Success,
            model::Outcome::Failure => wit::Outcome::Failure,
            model::Outcome::Denied => wit::Outcome::Denied,
        },
        request_id: e.request_id,
        shared_event_id: e.shared_event_id,
        resources: e.resources,
        tls: e.tls.map(|t| wit::TlsDetails {
            tls_version: t.tls_version,
            cipher_suite: t.cipher_suite,
            client_provided_host_header: t.client_provided_host_header,
        }),
        problems: e.problems,
        raw: e.raw,
    }
}

export!(Plugin);

/// Deliberate misbehaviour for the host's sandbox tests (feature `sandbox-fixture` only).
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
