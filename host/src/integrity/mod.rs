//! Log-file integrity validation: the host fetches CloudTrail's digest files, their signatures
//! (S3 metadata), CloudTrail's public keys and the log files they list; the plugin reads each
//! digest and judges it (its `integrity` interface).
//!
//! # Layout
//! - this file: `Validator`, which fetches what a digest's verdict needs and asks the plugin;
//!   problems as finding documents.
//! - `verify`: `trailwatch verify`, a time range at once, like `aws cloudtrail validate-logs`.
//! - `follow`: `run`'s continuous validation, each new digest as it arrives.

pub mod follow;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aws::cloudtrail::{self, DigestPublicKey};
use crate::aws::s3::S3;
use crate::aws::{AwsClient, AwsError};
use crate::runtime::bindings::integrity as wi;
use crate::runtime::bindings::types::ObjectMeta;
use crate::runtime::PluginRuntime;

/// The most a digest file may weigh (stored).
const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// The controls log-file validation answers to.
pub const CONTROLS: [&str; 2] = ["CIS 3.2", "CloudTrail.4"];

/// Where digest signatures are checked with.
pub enum Keys {
    /// CloudTrail's ListPublicKeys, asked once per validator (and again for an unknown
    /// fingerprint, at most every ten minutes).
    Fetched {
        client: Arc<AwsClient>,
        keys: Option<Vec<wi::PublicKey>>,
        fetched_at_ms: i64,
    },
    /// Keys from `[integrity] public_keys_file` (restricted mode: no CloudTrail call).
    Fixed(Vec<wi::PublicKey>),
    /// None: signatures are not checked (restricted mode without keys).
    None,
}

/// Reads `ListPublicKeys`' answer as `aws cloudtrail list-public-keys` prints it, from a file.
pub fn keys_from_file(path: &std::path::Path) -> anyhow::Result<Vec<wi::PublicKey>> {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Key {
        value: String,
        fingerprint: String,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(rename = "PublicKeyList", alias = "publicKeyList")]
        list: Vec<Key>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {} ([integrity] public_keys_file): {e}", path.display()))?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} ([integrity] public_keys_file) is not the answer of `aws cloudtrail list-public-keys` (a JSON object with PublicKeyList): {e}",
            path.display()
        )
    })?;
    file.list
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let der = base64::engine::general_purpose::STANDARD
                .decode(k.value.trim())
                .map_err(|e| anyhow::anyhow!("{}: PublicKeyList[{i}].Value is not base64: {e}", path.display()))?;
            Ok(wi::PublicKey {
                fingerprint: k.fingerprint,
                der,
            })
        })
        .collect()
}

fn public_key(k: DigestPublicKey) -> wi::PublicKey {
    wi::PublicKey {
        fingerprint: k.fingerprint,
        der: k.der,
    }
}

/// A digest fetched and read.
#[derive(Clone)]
pub struct Fetched {
    /// `bucket/key` where it was read.
    pub location: String,
    pub digest: wi::Digest,
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
}

/// One digest's outcome.
pub struct Outcome {
    pub location: String,
    /// `None` when the digest could not be read (its problem says why).
    pub verdict: Option<wi::Verdict>,
    /// Log files it lists.
    pub listed: u32,
}

/// A problem of the plugin's shape for what the host met itself (a digest it cannot read).
pub fn host_problem(code: &str, location: &str, message: String) -> wi::Problem {
    wi::Problem {
        code: code.into(),
        severity: wi::Severity::Error,
        location: location.into(),
        message,
        evidence: Vec::new(),
    }
}

/// Fetches what digests' verdicts need and asks the plugin for them.
pub struct Validator<'a> {
    pub runtime: &'a PluginRuntime,
    pub client: &'a AwsClient,
    pub keys: Keys,
    /// Digests read, by `bucket/key`: the chain's previous links.
    pub seen: BTreeMap<String, wi::PreviousDigest>,
}

impl<'a> Validator<'a> {
    /// A validator reading buckets through `client`.
    pub fn new(runtime: &'a PluginRuntime, client: &'a AwsClient, keys: Keys) -> Self {
        Validator {
            runtime,
            client,
            keys,
            seen: BTreeMap::new(),
        }
    }

    /// The public keys for a digest signed with `fingerprint` around `at_ms`; `None` when there
    /// are none to check with.
    async fn keys_for(
        &mut self,
        fingerprint: &str,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Vec<wi::PublicKey>>, AwsError> {
        match &mut self.keys {
            Keys::None => Ok(None),
            Keys::Fixed(keys) => Ok(Some(keys.clone())),
            Keys::Fetched {
                client,
                keys,
                fetched_at_ms,
            } => {
                let known = keys
                    .as_ref()
                    .is_some_and(|k| k.iter().any(|k| k.fingerprint.eq_ignore_ascii_case(fingerprint)));
                let stale = now_ms - *fetched_at_ms >= 600_000;
                if keys.is_none() || (!known && stale) {
                    // Every key valid from a year before the digest to now: CloudTrail rotates
                    // keys, and a range's digests may span several.
                    let from = at_ms.min(now_ms) - 366 * 86_400_000;
                    let fetched = cloudtrail::list_public_keys(client, from, now_ms).await?;
                    tracing::debug!(
                        keys = fetched.len(),
                        "read CloudTrail's public keys for digest signatures"
                    );
                    *keys = Some(fetched.into_iter().map(public_key).collect());
                    *fetched_at_ms = now_ms;
                }
                Ok(keys.clone())
            }
        }
    }

    /// Fetches and reads the digest at `bucket/key`. `Err` is the problem to report (it could
    /// not be fetched or is not a digest), `None` when it is not in the bucket.
    pub async fn fetch(&mut self, bucket: &str, key: &str) -> Result<Fetched, Option<wi::Problem>> {
        let location = format!("{bucket}/{key}");
        let (bytes, metadata) = match S3::new(self.client, bucket)
            .get_with_metadata(key, MAX_DIGEST_BYTES)
            .await
        {
            Ok(got) => got,
            Err(AwsError::NotFound { .. }) => return Err(None),
            Err(e) => {
                return Err(Some(host_problem(
                    "digest-unreadable",
                    &location,
                    format!("the digest could not be fetched: {e}"),
                )))
            }
        };
        let digest = match self.runtime.read_digest(&bytes) {
            Ok(Ok(d)) => d,
            Ok(Err(why)) => {
                return Err(Some(host_problem(
                    "digest-unreadable",
                    &location,
                    format!("the digest is not one CloudTrail wrote: {why}"),
                )))
            }
            Err(e) => return Err(Some(host_problem("digest-unreadable", &location, e.to_string()))),
        };
        let signature = metadata.get("signature").cloned();
        self.seen.insert(
            location.clone(),
            wi::PreviousDigest {
                location: location.clone(),
                sha256: digest.sha256.clone(),
                signature: signature.clone(),
            },
        );
        Ok(Fetched {
            location,
            digest,
            signature,
            signature_algorithm: metadata.get("signature-algorithm").cloned(),
        })
    }

    /// What is known of the digest `fetched` names as its previous one: read before, or
    /// fetched now (and then counted as read).
    async fn previous(&mut self, fetched: &Fetched) -> wi::Previous {
        let (Some(bucket), Some(key)) = (&fetched.digest.previous_bucket, &fetched.digest.previous_key) else {
            return wi::Previous::None;
        };
        let location = format!("{bucket}/{key}");
        if let Some(p) = self.seen.get(&location) {
            return wi::Previous::Found(p.clone());
        }
        match self.fetch(bucket, key).await {
            Ok(f) => wi::Previous::Found(wi::PreviousDigest {
                location: f.location,
                sha256: f.digest.sha256,
                signature: f.signature,
            }),
            Err(None) => wi::Previous::Missing,
            // Present but unreadable: its own validation says so when it is in range.
            Err(Some(_)) => wi::Previous::NotChecked,
        }
    }

    /// Fetches a log file and hashes its decompressed content in the plugin.
    pub async fn hash_log_file(&self, bucket: &str, key: &str, limit: u64) -> wi::FileState {
        let s3 = S3::new(self.client, bucket);
        let reader = match s3.get_stream(key, limit).await {
            Ok(r) => r,
            Err(AwsError::NotFound { .. }) => return wi::FileState::Missing,
            Err(e) => return wi::FileState::Unreadable(e.to_string()),
        };
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: 0,
            last_modified_ms: None,
        };
        let runtime = self.runtime;
        let hashed = tokio::task::block_in_place(|| runtime.hash_file(Box::new(reader), &meta));
        match hashed {
            Ok(sha256) => wi::FileState::Hashed(sha256),
            Err(why) => wi::FileState::Unreadable(why),
        }
    }

    /// Judges `fetched`: its previous digest and each listed file are looked up with
    /// `known` first (hashes of files already read: `run`'s), then fetched.
    pub async fn judge(
        &mut self,
        fetched: &Fetched,
        known: &dyn Fn(&str, &str) -> Option<wi::FileState>,
        limit: u64,
        now_ms: i64,
    ) -> Result<wi::Verdict, anyhow::Error> {
        let keys = self
            .keys_for(
                &fetched.digest.public_key_fingerprint,
                fetched.digest.end_time_ms,
                now_ms,
            )
            .await
            .map_err(|e| anyhow::anyhow!("reading CloudTrail's public keys for digest signatures: {e}"))?;
        let previous = self.previous(fetched).await;
        let mut files = Vec::with_capacity(fetched.digest.files.len());
        for f in &fetched.digest.files {
            let state = match known(&f.bucket, &f.key) {
                Some(state) => state,
                None => self.hash_log_file(&f.bucket, &f.key, limit).await,
            };
            files.push((f.key.clone(), state));
        }
        let check = wi::DigestCheck {
            location: fetched.location.clone(),
            digest: fetched.digest.clone(),
            signature: fetched.signature.clone(),
            signature_algorithm: fetched.signature_algorithm.clone(),
            keys,
            previous,
            files,
        };
        Ok(self.runtime.judge_digest(&check)?)
    }
}

/// A severity's name in documents.
pub fn severity_name(s: wi::Severity) -> &'static str {
    match s {
        wi::Severity::Info => "info",
        wi::Severity::Warning => "warning",
        wi::Severity::Error => "error",
    }
}

/// A problem as a finding document (`kind` = `finding`, `schema/finding.schema.json`), one JSON
/// line without its newline.
pub fn document(problem: &wi::Problem, trail: Option<&str>, region: &str, checked_at_ms: i64) -> String {
    use crate::output::finding::{Evidence, FindingDocument};
    FindingDocument {
        kind: "finding",
        code: &problem.code,
        severity: severity_name(problem.severity),
        trail,
        message: &problem.message,
        evidence: problem
            .evidence
            .iter()
            .map(|(field, value)| Evidence { field, value })
            .collect(),
        controls: CONTROLS.to_vec(),
        fix: None,
        region,
        chosen_trail: trail,
        checked_at_ms,
        location: Some(&problem.location),
    }
    .line()
}

/// The region of a digest or log file key (`…/CloudTrail-Digest/<region>/…`), when it has one.
pub fn region_of(key: &str) -> &str {
    let mut parts = key.split('/');
    while let Some(p) = parts.next() {
        if p == "CloudTrail-Digest" || p == "CloudTrail" || p == "CloudTrail-Insight" {
            return parts.next().unwrap_or("");
        }
    }
    ""
}
