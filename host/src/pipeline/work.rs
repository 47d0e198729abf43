//! The unit of work a source hands the pipeline: one object, and how to get its bytes.

use futures::future::BoxFuture;

use crate::aws::AwsError;

/// The bytes of an object, as the plugin will pull them.
pub type Input = Box<dyn std::io::Read + Send>;

/// Whether a file that failed is worth reading again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No: its contents are bad, or it is gone or too large. Quarantined at once.
    Never,
    /// Up to `MAX_ATTEMPTS` cycles (a plugin trap), then quarantined.
    Limited,
    /// At every cycle (access denied to this object, a transport failure): nothing is wrong with
    /// the file itself.
    Always,
}

/// Why an object's bytes could not be had.
#[derive(Debug)]
pub enum InputError {
    /// This object only; `retry` says whether to try again.
    File { reason: String, retry: Retry },
    /// Everybody's problem (refused credentials): the cycle stops and backs off.
    Fatal(AwsError),
}

/// One object to read.
pub struct WorkItem {
    /// Its key (S3 key, or local path): the checkpoint's key and the events' `origin.key`.
    pub key: String,
    /// Its size as stored.
    pub size: u64,
    /// Its last-modified time, ms since the Unix epoch, when known.
    pub last_modified_ms: Option<i64>,
    /// How to get its bytes: run by the pipeline when the file's turn comes.
    pub fetch: BoxFuture<'static, Result<Input, InputError>>,
    /// The bucket it came from, for the events' delivery times (`None`: no delivery record).
    pub bucket: Option<String>,
    /// When it may be deleted once read to its end (`None`: never).
    pub delete_due_ms: Option<i64>,
}
