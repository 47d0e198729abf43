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

use crate::aws::cloudtrail::{self, DigestPublicKey};
use crate::aws::s3::S3;
use crate::aws::{AwsClient, AwsError};
use crate::runtime::bindings::integrity as wi;
use crate::runtime::bindings::types::ObjectMeta;
use crate::runtime::file::HashFailure;
use crate::runtime::PluginRuntime;

/// The most a digest file may weigh (stored).
const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// The controls log-file validation answers to.
pub const CONTROLS: [&str; 2] = ["CIS 3.2", "CloudTrail.4"];

/// Where digest signatures are checked with.
pub enum Keys {
    /// CloudTrail's ListPublicKeys in each digest's own region (every region signs with its
    /// own keys), asked once per region and again for an unknown fingerprint, at most every ten
    /// minutes; `client` makes the CloudTrail client of a region.
    Fetched {
        client: ClientFor,
        regions: BTreeMap<String, RegionKeys>,
    },
    /// Keys from `[integrity] public_keys_file`, every region's (restricted mode: no CloudTrail
    /// call).
    Fixed(Vec<wi::PublicKey>),
    /// None: signatures are not checked (restricted mode without keys).
    None,
}

/// Makes the CloudTrail client of a region.
pub type ClientFor = Box<dyn Fn(&str) -> anyhow::Result<AwsClient> + Send + Sync>;

/// One region's public keys, as last read.
pub struct RegionKeys {
    client: AwsClient,
    keys: Vec<wi::PublicKey>,
    fetched_at_ms: i64,
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

    /// The public keys of `region` for a digest signed with `fingerprint`: `None` when there
    /// are none to check with; `Err` when they cannot be had now (the digest waits).
    async fn keys_for(
        &mut self,
        fingerprint: &str,
        region: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<wi::PublicKey>>, Transient> {
        let (make, regions) = match &mut self.keys {
            Keys::None => return Ok(None),
            Keys::Fixed(keys) => return Ok(Some(keys.clone())),
            Keys::Fetched { client, regions } => (client, regions),
        };
        let known = |k: &RegionKeys| k.keys.iter().any(|k| k.fingerprint.eq_ignore_ascii_case(fingerprint));
        let fetch = match regions.get(region) {
            None => true,
            Some(k) if known(k) => false,
            // A key rotated in since the last read: read again, but not more than every ten
            // minutes; until then the digest waits rather than being called forged.
            Some(k) if now_ms - k.fetched_at_ms < 600_000 => {
                return Err(Transient(format!(
                    "no public key of {region} has fingerprint {fingerprint} yet; asked again in a few minutes"
                )))
            }
            Some(_) => true,
        };
        if fetch {
            let client = match regions.remove(region) {
                Some(k) => k.client,
                None => make(region).map_err(|e| Transient(format!("a CloudTrail client for {region}: {e:#}")))?,
            };
            // Every key valid in the last two years: CloudTrail rotates keys, and digests of a
            // range or a backlog may span several.
            let listed = cloudtrail::list_public_keys(&client, now_ms - 2 * 366 * 86_400_000, now_ms).await;
            let keys = match listed {
                Ok(keys) => keys.into_iter().map(public_key).collect(),
                Err(e) => {
                    return Err(Transient(format!(
                        "reading CloudTrail's public keys for digest signatures in {region}: {e}"
                    )))
                }
            };
            tracing::debug!(region, "read CloudTrail's public keys for digest signatures");
            regions.insert(
                region.to_owned(),
                RegionKeys {
                    client,
                    keys,
                    fetched_at_ms: now_ms,
                },
            );
        }
        Ok(regions.get(region).map(|k| k.keys.clone()))
    }

    /// Fetches and reads the digest at `bucket/key`.
    pub async fn fetch(&mut self, bucket: &str, key: &str) -> Result<Fetched, FetchError> {
        let location = format!("{bucket}/{key}");
        let (bytes, metadata) = match S3::new(self.client, bucket)
            .get_with_metadata(key, MAX_DIGEST_BYTES)
            .await
        {
            Ok(got) => got,
            Err(AwsError::NotFound { .. }) => return Err(FetchError::NotFound),
            Err(AwsError::TooLarge { size, .. }) => {
                return Err(FetchError::Bad(host_problem(
                    "digest-unreadable",
                    &location,
                    format!("the digest weighs {size} bytes, more than any CloudTrail writes"),
                )))
            }
            Err(e) => return Err(FetchError::Transient(Transient(format!("fetching {location}: {e}")))),
        };
        let digest = match self.runtime.read_digest(&bytes) {
            Ok(Ok(d)) => d,
            Ok(Err(why)) => {
                return Err(FetchError::Bad(host_problem(
                    "digest-unreadable",
                    &location,
                    format!("the digest is not one CloudTrail wrote: {why}"),
                )))
            }
            Err(e) => {
                return Err(FetchError::Bad(host_problem(
                    "digest-unreadable",
                    &location,
                    e.to_string(),
                )))
            }
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
    async fn previous(&mut self, fetched: &Fetched) -> Result<wi::Previous, Transient> {
        let (Some(bucket), Some(key)) = (&fetched.digest.previous_bucket, &fetched.digest.previous_key) else {
            return Ok(wi::Previous::None);
        };
        let location = format!("{bucket}/{key}");
        if let Some(p) = self.seen.get(&location) {
            return Ok(wi::Previous::Found(p.clone()));
        }
        match self.fetch(bucket, key).await {
            Ok(f) => Ok(wi::Previous::Found(wi::PreviousDigest {
                location: f.location,
                sha256: f.digest.sha256,
                signature: f.signature,
            })),
            Err(FetchError::NotFound) => Ok(wi::Previous::Missing),
            Err(FetchError::Transient(t)) => Err(t),
            // Present but not a digest: its own validation says so; the link cannot be checked.
            Err(FetchError::Bad(_)) => Ok(wi::Previous::NotChecked),
        }
    }

    /// Fetches a log file and hashes its decompressed content in the plugin.
    pub async fn hash_log_file(&self, bucket: &str, key: &str, limit: u64) -> Result<wi::FileState, Transient> {
        let s3 = S3::new(self.client, bucket);
        let reader = match s3.get_stream(key, limit).await {
            Ok(r) => r,
            Err(AwsError::NotFound { .. }) => return Ok(wi::FileState::Missing),
            Err(e @ AwsError::TooLarge { .. }) => return Ok(wi::FileState::Unreadable(e.to_string())),
            Err(e) => return Err(Transient(format!("fetching {bucket}/{key}: {e}"))),
        };
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: 0,
            last_modified_ms: None,
        };
        let runtime = self.runtime;
        match tokio::task::block_in_place(|| runtime.hash_file(Box::new(reader), &meta)) {
            Ok(sha256) => Ok(wi::FileState::Hashed(sha256)),
            Err(HashFailure::Input(why)) => Err(Transient(format!("reading {bucket}/{key}: {why}"))),
            Err(HashFailure::Content(why)) => Ok(wi::FileState::Unreadable(why)),
        }
    }

    /// Judges `fetched`: its previous digest and each listed file are looked up with
    /// `known` first (hashes of files already read: `run`'s), then fetched. `Ok(Err)` when
    /// something it needs cannot be had now (a request that keeps failing, a key not yet
    /// known): the digest is judged later rather than wrongly.
    pub async fn judge(
        &mut self,
        fetched: &Fetched,
        known: &dyn Fn(&str, &str) -> Option<wi::FileState>,
        limit: u64,
        now_ms: i64,
    ) -> Result<Result<wi::Verdict, Transient>, crate::runtime::verdict::VerdictError> {
        let region = region_of(&fetched.location).to_owned();
        let keys = match self
            .keys_for(&fetched.digest.public_key_fingerprint, &region, now_ms)
            .await
        {
            Ok(keys) => keys,
            Err(t) => return Ok(Err(t)),
        };
        let previous = match self.previous(fetched).await {
            Ok(p) => p,
            Err(t) => return Ok(Err(t)),
        };
        let mut files = Vec::with_capacity(fetched.digest.files.len());
        for f in &fetched.digest.files {
            let state = match known(&f.bucket, &f.key) {
                Some(state) => state,
                None => match self.hash_log_file(&f.bucket, &f.key, limit).await {
                    Ok(state) => state,
                    Err(t) => return Ok(Err(t)),
                },
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
        self.runtime.judge_digest(&check).map(Ok)
    }
}

/// Something needed could not be had now (a request that kept failing after its retries, a
/// key not yet readable): worth trying again later, not a verdict.
#[derive(Debug, Clone)]
pub struct Transient(pub String);

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a digest was not read.
pub enum FetchError {
    /// It is not in the bucket.
    NotFound,
    /// It could not be fetched now.
    Transient(Transient),
    /// It is not a digest CloudTrail wrote: the problem to report.
    Bad(wi::Problem),
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
