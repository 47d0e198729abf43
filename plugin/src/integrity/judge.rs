//! The verdict on one digest: where it is, who signed it, how it links to the digest before it,
//! and whether every log file it lists is there with the content it lists.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::{Problem, Severity};

/// One of CloudTrail's public keys for digest signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub fingerprint: String,
    /// DER: PKCS #1 `RSAPublicKey` or `SubjectPublicKeyInfo`.
    pub der: Vec<u8>,
}

/// A previous digest as the host found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousDigest {
    /// `bucket/key` where it was read.
    pub location: String,
    /// SHA-256 of its decompressed content, lowercase hex.
    pub sha256: String,
    /// Its signature from its S3 metadata, hex.
    pub signature: Option<String>,
}

/// What the host found of the digest a digest names as its previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    None,
    Found(PreviousDigest),
    Missing,
    NotChecked,
}

/// What the host found of one listed log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Hashed(String),
    Missing,
    Unreadable(String),
    NotChecked,
}

/// Everything needed to judge one digest.
#[derive(Debug, Clone)]
pub struct DigestCheck {
    /// `bucket/key` where the digest was read.
    pub location: String,
    pub digest: Digest,
    /// S3 metadata `signature`, hex.
    pub signature: Option<String>,
    /// S3 metadata `signature-algorithm`.
    pub signature_algorithm: Option<String>,
    /// `None`: no keys, the signature is not checked.
    pub keys: Option<Vec<PublicKey>>,
    pub previous: Previous,
    /// State of each listed file, by key.
    pub files: Vec<(String, FileState)>,
}

/// The verdict on one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub signature_valid: bool,
    pub files_valid: u32,
    pub problems: Vec<Problem>,
}

/// The text CloudTrail signs: `digestEndTime`, `bucket/key`, the digest content's SHA-256 and
/// the previous digest's signature (`null` for the first of a chain), a line each.
pub fn string_to_sign(digest: &Digest) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.end_time,
        digest.bucket,
        digest.key,
        digest.sha256,
        digest.previous_signature.as_deref().unwrap_or("null")
    )
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let b = text.trim().as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

fn parse_key(der: &[u8]) -> Option<RsaPublicKey> {
    RsaPublicKey::from_pkcs1_der(der)
        .ok()
        .or_else(|| RsaPublicKey::from_public_key_der(der).ok())
}

/// Checks the signature; `Ok(true)` when verified, `Ok(false)` when not checked (no keys),
/// `Err` with the problem otherwise.
fn signature(check: &DigestCheck) -> Result<bool, Problem> {
    let at = check.location.as_str();
    let d = &check.digest;
    let Some(keys) = &check.keys else {
        return Ok(false);
    };
    let algorithm = check.signature_algorithm.as_deref().unwrap_or(&d.signature_algorithm);
    if !algorithm.eq_ignore_ascii_case("SHA256withRSA") || !d.signature_algorithm.eq_ignore_ascii_case("SHA256withRSA")
    {
        return Err(Problem::new(
            "digest-signature-algorithm-unknown",
            Severity::Error,
            at,
            format!("the digest is signed with {algorithm:?}; CloudTrail signs with SHA256withRSA"),
        )
        .with(
            "metadata signature-algorithm",
            check.signature_algorithm.clone().unwrap_or_default(),
        )
        .with("digestSignatureAlgorithm", d.signature_algorithm.clone()));
    }
    let Some(signature) = check.signature.as_deref() else {
        return Err(Problem::new(
            "digest-unsigned",
            Severity::Error,
            at,
            "the digest has no signature in its S3 metadata (x-amz-meta-signature): it was not written by CloudTrail, or was copied without its metadata".into(),
        ));
    };
    let Some(signature_bytes) = unhex(signature) else {
        return Err(Problem::new(
            "digest-unsigned",
            Severity::Error,
            at,
            "the digest's signature (x-amz-meta-signature) is not hex".into(),
        )
        .with("x-amz-meta-signature", signature.chars().take(80).collect::<String>()));
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.fingerprint.eq_ignore_ascii_case(&d.public_key_fingerprint))
    else {
        return Err(Problem::new(
            "digest-public-key-unknown",
            Severity::Error,
            at,
            format!(
                "no public key of the region has the fingerprint {} the digest names ({} keys known): the digest was not signed by CloudTrail",
                d.public_key_fingerprint,
                keys.len()
            ),
        )
        .with("digestPublicKeyFingerprint", d.public_key_fingerprint.clone()));
    };
    let Some(public) = parse_key(&key.der) else {
        return Err(Problem::new(
            "digest-public-key-unknown",
            Severity::Error,
            at,
            format!(
                "the public key with fingerprint {} is not an RSA public key in DER",
                key.fingerprint
            ),
        )
        .with("digestPublicKeyFingerprint", d.public_key_fingerprint.clone()));
    };
    let hashed = Sha256::digest(string_to_sign(d).as_bytes());
    match public.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &signature_bytes) {
        Ok(()) => Ok(true),
        Err(_) => Err(Problem::new(
            "digest-signature-invalid",
            Severity::Error,
            at,
            "the digest's signature does not verify with CloudTrail's public key: the digest (or its end time, location or link to the previous digest) was changed after CloudTrail signed it, or forged".into(),
        )
        .with("digestPublicKeyFingerprint", d.public_key_fingerprint.clone())
        .with("digest sha256", d.sha256.clone())),
    }
}

fn chain(check: &DigestCheck, problems: &mut Vec<Problem>) {
    let d = &check.digest;
    let at = check.location.as_str();
    let named = match (&d.previous_bucket, &d.previous_key) {
        (Some(b), Some(k)) => format!("{b}/{k}"),
        _ => return,
    };
    match &check.previous {
        Previous::None | Previous::NotChecked => {}
        Previous::Missing => problems.push(
            Problem::new(
                "digest-missing",
                Severity::Error,
                &named,
                format!("the digest before {at} is not in the bucket: it was deleted or moved, and with it the list of log files of its hour"),
            )
            .with("previousDigestS3Object", named.clone()),
        ),
        Previous::Found(p) => {
            let mut broken = Vec::new();
            if p.location != named {
                broken.push(format!("it names {named} as the previous digest, but {} was found", p.location));
            }
            if let Some(want) = &d.previous_sha256 {
                if !want.eq_ignore_ascii_case(&p.sha256) {
                    broken.push(format!(
                        "the previous digest's content has SHA-256 {}, not {want} as this digest says",
                        p.sha256
                    ));
                }
            }
            match (&d.previous_signature, &p.signature) {
                (Some(want), Some(got)) if !want.eq_ignore_ascii_case(got) => {
                    broken.push("the previous digest's signature is not the one this digest names".into())
                }
                (Some(_), None) => broken.push("the previous digest has no signature, yet this digest names one".into()),
                _ => {}
            }
            if !broken.is_empty() {
                problems.push(
                    Problem::new(
                        "digest-chain-broken",
                        Severity::Error,
                        at,
                        format!("the chain of digests is broken: {}", broken.join("; ")),
                    )
                    .with("previousDigestS3Object", named)
                    .with("previousDigestHashValue", d.previous_sha256.clone().unwrap_or_default())
                    .with("previous digest sha256", p.sha256.clone()),
                );
            }
        }
    }
}

/// Judges one digest.
pub fn judge(check: &DigestCheck) -> Verdict {
    let d = &check.digest;
    let at = check.location.as_str();
    let mut problems = Vec::new();
    let written = format!("{}/{}", d.bucket, d.key);
    if written != check.location {
        problems.push(
            Problem::new(
                "digest-moved",
                Severity::Error,
                at,
                format!("the digest was written by CloudTrail to {written}, not where it was found"),
            )
            .with("digestS3Bucket", d.bucket.clone())
            .with("digestS3Object", d.key.clone()),
        );
    }
    let signature_valid = match signature(check) {
        Ok(valid) => valid,
        Err(p) => {
            problems.push(p);
            false
        }
    };
    if check.keys.is_none() {
        problems.push(Problem::new(
            "digest-signature-not-checked",
            Severity::Warning,
            at,
            "the digest's signature was not checked: no public keys (restricted mode makes no CloudTrail call; set [integrity] public_keys_file); its hashes and chain were".into(),
        ));
    }
    chain(check, &mut problems);
    let mut files_valid = 0;
    for listed in &d.files {
        let location = format!("{}/{}", listed.bucket, listed.key);
        let state = check
            .files
            .iter()
            .find(|(k, _)| *k == listed.key)
            .map_or(&FileState::NotChecked, |(_, s)| s);
        let problem = match state {
            FileState::Hashed(got) if got.eq_ignore_ascii_case(&listed.sha256) => {
                files_valid += 1;
                continue;
            }
            FileState::Hashed(got) => Problem::new(
                "log-file-modified",
                Severity::Error,
                &location,
                format!("the log file's content is not what CloudTrail delivered: its SHA-256 is {got}, the digest lists {}", listed.sha256),
            )
            .with("hashValue", listed.sha256.clone())
            .with("sha256", got.clone()),
            FileState::Missing => Problem::new(
                "log-file-missing",
                Severity::Error,
                &location,
                "a log file the digest lists is not in the bucket: it was deleted or moved".into(),
            ),
            FileState::Unreadable(why) => Problem::new(
                "log-file-unreadable",
                Severity::Error,
                &location,
                format!("a log file the digest lists could not be read to its end, so its hash is unknown: {why}"),
            ),
            FileState::NotChecked => Problem::new(
                "log-file-not-checked",
                Severity::Info,
                &location,
                "a log file the digest lists was not checked (read and deleted before its hash was kept)".into(),
            ),
        };
        problems.push(problem.with("digest", at.to_owned()));
    }
    Verdict {
        signature_valid,
        files_valid,
        problems,
    }
}
