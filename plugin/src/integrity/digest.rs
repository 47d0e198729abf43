//! Reading a digest file: gzip or plain JSON to a `Digest`, with the SHA-256 of its content.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::model::FileError;

/// The most a digest may decompress to. CloudTrail's list a few thousand log files at most
/// (about 400 bytes each); this leaves room for a hundred times that.
pub const MAX_DIGEST_BYTES: u64 = 256 << 20;

/// A log file a digest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub bucket: String,
    pub key: String,
    /// `hashValue`, lowercase hex.
    pub sha256: String,
    pub oldest_event_time: Option<String>,
    pub newest_event_time: Option<String>,
}

/// What a digest file says (the contract's `integrity.digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub account_id: String,
    pub start_time: String,
    pub end_time: String,
    pub end_time_ms: i64,
    pub bucket: String,
    pub key: String,
    pub previous_bucket: Option<String>,
    pub previous_key: Option<String>,
    pub previous_sha256: Option<String>,
    pub previous_signature: Option<String>,
    pub public_key_fingerprint: String,
    pub signature_algorithm: String,
    /// SHA-256 of the decompressed content, lowercase hex.
    pub sha256: String,
    pub files: Vec<ListedFile>,
}

impl Digest {
    /// `digestStartTime` in milliseconds since the Unix epoch (checked readable on reading).
    pub fn start_time_ms(&self) -> i64 {
        crate::time::parse_epoch_ms(&self.start_time).unwrap_or(self.end_time_ms)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawListed {
    s3_bucket: Option<String>,
    s3_object: Option<String>,
    hash_value: Option<String>,
    hash_algorithm: Option<String>,
    oldest_event_time: Option<String>,
    newest_event_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDigest {
    aws_account_id: Option<String>,
    digest_start_time: Option<String>,
    digest_end_time: Option<String>,
    digest_s3_bucket: Option<String>,
    digest_s3_object: Option<String>,
    previous_digest_s3_bucket: Option<String>,
    previous_digest_s3_object: Option<String>,
    previous_digest_hash_value: Option<String>,
    previous_digest_hash_algorithm: Option<String>,
    previous_digest_signature: Option<String>,
    digest_public_key_fingerprint: Option<String>,
    digest_signature_algorithm: Option<String>,
    log_files: Option<Vec<RawListed>>,
}

fn required(value: Option<String>, field: &str) -> Result<String, FileError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| FileError::NotCloudtrail(format!("the digest has no \"{field}\"")))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The decompressed content of a stored object (gzip, or plain when it does not start like gzip).
fn inflate(stored: &[u8]) -> Result<Vec<u8>, FileError> {
    if !stored.starts_with(&[0x1f, 0x8b]) {
        return Ok(stored.to_vec());
    }
    let mut out = Vec::new();
    let mut decoder = MultiGzDecoder::new(stored).take(MAX_DIGEST_BYTES + 1);
    decoder.read_to_end(&mut out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FileError::Truncated("the gzip stream ends early".into())
        } else {
            FileError::BadGzip(e.to_string())
        }
    })?;
    if out.len() as u64 > MAX_DIGEST_BYTES {
        return Err(FileError::TooLarge(MAX_DIGEST_BYTES));
    }
    Ok(out)
}

/// Reads a digest file from its stored bytes.
pub fn read_digest(stored: &[u8]) -> Result<Digest, FileError> {
    let content = inflate(stored)?;
    let sha256 = hex(&Sha256::digest(&content));
    let raw: RawDigest = serde_json::from_slice(&content).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            FileError::NotJson(e.to_string())
        } else {
            FileError::NotCloudtrail(format!("not a digest: {e}"))
        }
    })?;
    let end_time = required(raw.digest_end_time, "digestEndTime")?;
    let end_time_ms = crate::time::parse_epoch_ms(&end_time).ok_or_else(|| {
        FileError::NotCloudtrail(format!("the digest's \"digestEndTime\" is not a time: {end_time:?}"))
    })?;
    let start_time = required(raw.digest_start_time, "digestStartTime")?;
    if crate::time::parse_epoch_ms(&start_time).is_none() {
        return Err(FileError::NotCloudtrail(format!(
            "the digest's \"digestStartTime\" is not a time: {start_time:?}"
        )));
    }
    if let Some(algorithm) = raw.previous_digest_hash_algorithm.as_deref() {
        if algorithm != "SHA-256" {
            return Err(FileError::NotCloudtrail(format!(
                "the digest's \"previousDigestHashAlgorithm\" is {algorithm:?}, not \"SHA-256\""
            )));
        }
    }
    let log_files = raw
        .log_files
        .ok_or_else(|| FileError::NotCloudtrail("the digest has no \"logFiles\"".into()))?;
    let mut files = Vec::with_capacity(log_files.len());
    for (i, f) in log_files.into_iter().enumerate() {
        let field = |name: &str| format!("logFiles[{i}].{name}");
        if let Some(algorithm) = f.hash_algorithm.as_deref() {
            if algorithm != "SHA-256" {
                return Err(FileError::NotCloudtrail(format!(
                    "the digest's \"{}\" is {algorithm:?}, not \"SHA-256\"",
                    field("hashAlgorithm")
                )));
            }
        }
        files.push(ListedFile {
            bucket: required(f.s3_bucket, &field("s3Bucket"))?,
            key: required(f.s3_object, &field("s3Object"))?,
            sha256: required(f.hash_value, &field("hashValue"))?.to_ascii_lowercase(),
            oldest_event_time: f.oldest_event_time,
            newest_event_time: f.newest_event_time,
        });
    }
    Ok(Digest {
        account_id: required(raw.aws_account_id, "awsAccountId")?,
        start_time,
        end_time,
        end_time_ms,
        bucket: required(raw.digest_s3_bucket, "digestS3Bucket")?,
        key: required(raw.digest_s3_object, "digestS3Object")?,
        previous_bucket: raw.previous_digest_s3_bucket.filter(|v| !v.is_empty()),
        previous_key: raw.previous_digest_s3_object.filter(|v| !v.is_empty()),
        previous_sha256: raw
            .previous_digest_hash_value
            .filter(|v| !v.is_empty())
            .map(|v| v.to_ascii_lowercase()),
        previous_signature: raw.previous_digest_signature.filter(|v| !v.is_empty()),
        public_key_fingerprint: required(raw.digest_public_key_fingerprint, "digestPublicKeyFingerprint")?,
        // aws-cli reads the algorithm from the object's metadata only; CloudTrail writes both.
        signature_algorithm: raw
            .digest_signature_algorithm
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "SHA256withRSA".into()),
        sha256,
        files,
    })
}
