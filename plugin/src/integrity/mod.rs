//! Log-file integrity validation from CloudTrail's digest files: reading a digest, and the
//! verdict on it (signature, location, chain, the hash of every log file it lists) and on a
//! stream's digests together (files no digest lists, hours without a digest).
//!
//! What `aws cloudtrail validate-logs` checks, decided here from what the host fetched: the
//! plugin sees bytes, hashes and public keys, never AWS.
//!
//! # Layout
//! - `digest`: a digest file's stored bytes to a `Digest` (and the SHA-256 of its content).
//! - `judge`: one digest's verdict.
//! - `coverage`: a stream's digests and log files taken together.

pub mod coverage;
pub mod digest;
pub mod judge;
#[cfg(test)]
mod tests;

pub use coverage::{judge_coverage, Coverage, Span};
pub use digest::{read_digest, Digest, ListedFile};
pub use judge::{judge, DigestCheck, FileState, Previous, PreviousDigest, PublicKey, Verdict};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// Something found wrong (or not checked) about a digest or a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable machine code (README, "Log-file integrity").
    pub code: &'static str,
    pub severity: Severity,
    /// `bucket/key` of the digest or log file it is about.
    pub location: String,
    pub message: String,
    pub evidence: Vec<(String, String)>,
}

impl Problem {
    fn new(code: &'static str, severity: Severity, location: &str, message: String) -> Self {
        debug_assert!(CODES.iter().any(|c| c.0 == code), "{code} is not in CODES");
        Problem {
            code,
            severity,
            location: location.to_owned(),
            message,
            evidence: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.evidence.push((name.to_owned(), value.into()));
        self
    }
}

/// Every problem code with its severity and what it means, for the README's table.
pub const CODES: &[(&str, Severity, &str)] = &[
    (
        "digest-unreadable",
        Severity::Error,
        "A digest file is not a digest CloudTrail wrote (corrupt gzip, not JSON, a field missing).",
    ),
    (
        "digest-moved",
        Severity::Error,
        "A digest is not where CloudTrail wrote it (its `digestS3Bucket`/`digestS3Object` name another place).",
    ),
    (
        "digest-unsigned",
        Severity::Error,
        "A digest has no signature in its S3 metadata, or one that is not hex.",
    ),
    (
        "digest-signature-algorithm-unknown",
        Severity::Error,
        "A digest is signed with an algorithm other than SHA256withRSA.",
    ),
    (
        "digest-public-key-unknown",
        Severity::Error,
        "No public key of the region has the digest's `digestPublicKeyFingerprint`.",
    ),
    (
        "digest-signature-invalid",
        Severity::Error,
        "The digest's signature does not verify: the digest was changed or forged.",
    ),
    (
        "digest-signature-not-checked",
        Severity::Warning,
        "No public keys to check signatures with (restricted mode without `[integrity] public_keys_file`); hashes and the chain were still checked.",
    ),
    (
        "digest-missing",
        Severity::Error,
        "The digest a digest names as its previous one is not in the bucket.",
    ),
    (
        "digest-chain-broken",
        Severity::Error,
        "The previous digest's hash or signature is not what the digest after it says.",
    ),
    (
        "digest-gap",
        Severity::Error,
        "No digest covers part of the time validated (a warning when whether logging was on is not known).",
    ),
    (
        "log-file-missing",
        Severity::Error,
        "A log file a digest lists is not in the bucket.",
    ),
    (
        "log-file-modified",
        Severity::Error,
        "A log file's content does not have the SHA-256 its digest lists.",
    ),
    (
        "log-file-unreadable",
        Severity::Error,
        "A log file a digest lists could not be read to its end (corrupt gzip, a refused read).",
    ),
    (
        "log-file-not-checked",
        Severity::Info,
        "A log file a digest lists was not looked at (deleted after reading, before its hash was kept).",
    ),
    (
        "log-file-not-in-digest",
        Severity::Error,
        "A log file in a validated hour that no digest lists: not delivered by CloudTrail.",
    ),
];

/// The README's table of problem codes.
pub fn codes_table() -> String {
    let mut out = String::from("| code | severity | means |\n|---|---|---|\n");
    for (code, severity, meaning) in CODES {
        let severity = match severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        out.push_str(&format!("| `{code}` | {severity} | {meaning} |\n"));
    }
    out
}
