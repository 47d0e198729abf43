//! `run`'s continuous validation: each new digest of every stream `run` reads is judged as it
//! arrives, against the hashes of the log files `run` read (kept in the checkpoint with each
//! file, in the same commit), and what is wrong goes to the sinks as finding documents, to the
//! log and to the metrics.
//!
//! Digests are judged from when validation was first on for the checkpoint (the source's start
//! for a new one, else that moment): files read before then have no hash. A digest whose listed
//! files `run` has yet to read waits for them (up to 30 minutes, then they are fetched and hashed
//! here); one that needs something that cannot be had now (a request that keeps failing, a
//! public key not yet readable) is judged at a later cycle, never guessed at. Each trail writing
//! to a stream has its own chain. Files read that no digest lists, once a later digest is in,
//! are reported as extra (when one trail writes to the stream: log files do not name their
//! trail); a chain whose digests stop coming is reported as a gap.

use std::collections::{BTreeMap, BTreeSet};

use super::{document, FetchError, Keys, Validator};
use crate::aws::s3::S3;
use crate::aws::AwsClient;
use crate::config::{Config, Mode, SourceKind};
use crate::layout::{file_time_ms, Day};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::runtime::bindings::integrity as wi;
use crate::runtime::PluginRuntime;
use crate::state::checkpoint::{ChainPosition, Change, Checkpoint};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// A digest waits this long (in this process) for `run` to read the files it lists.
const WAIT_FOR_FILES_MS: i64 = 30 * MINUTE_MS;
/// ... and never once it ended this long ago, however often `run` restarted meanwhile.
const WAIT_AT_MOST_MS: i64 = 6 * HOUR_MS;
/// CloudTrail writes a digest about every hour; one this late is a gap.
const DIGEST_DUE_MS: i64 = HOUR_MS + 15 * MINUTE_MS;
/// Hashes and listed keys no digest came for are let go after this long.
const KEEP_MS: i64 = 2 * 24 * HOUR_MS;

/// Whether `run` validates, and why not when it does not.
pub fn decide(config: &Config, runtime: &PluginRuntime, validation_on: Option<bool>) -> Result<(), String> {
    if !runtime.validates() {
        return Err("the plugin in use does not export trailwatch:plugin/integrity".into());
    }
    if config.source.kind == SourceKind::Sqs {
        return Err(
            "digests are followed with S3 polling; the queue source does not list the bucket (use `trailwatch verify`)"
                .into(),
        );
    }
    match (config.integrity.enabled, validation_on) {
        (Some(false), _) => Err("[integrity] enabled = false".into()),
        (Some(true), _) | (None, Some(true)) => Ok(()),
        (None, Some(false)) => {
            Err("the trail has log file validation off (turn it on, and digests are checked)".into())
        }
        (_, None) => {
            Err("whether the trail has log file validation on is not known (set [integrity] enabled = true)".into())
        }
    }
}

/// The trail a digest's key names (`<acct>_CloudTrail-Digest_<region>_<trail>_<home region>_<time>.json.gz`).
fn trail_of(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or("");
    let Some((_, rest)) = name.split_once("_CloudTrail-Digest_") else {
        return "";
    };
    // <region>_<trail>_<home region>_<time>[_backfill].json.gz; a trail name may hold '_'.
    let rest = rest.split_once('_').map_or("", |(_, r)| r);
    let rest = rest.trim_end_matches(".json.gz").trim_end_matches("_backfill");
    let mut parts = rest.rsplitn(3, '_');
    let (_time, _home, trail) = (parts.next(), parts.next(), parts.next());
    trail.unwrap_or("")
}

/// `run`'s digest follower.
pub struct Follower {
    bucket: String,
    trail: Option<String>,
    keys: Keys,
    interval_ms: i64,
    next_ms: i64,
    /// Where validation starts on a checkpoint that has none yet: the source's start for a new
    /// checkpoint, `None` (now) for one that read files before.
    start_ms: Option<i64>,
    /// Files older than this may have been deleted by `run` itself (`[delete]`).
    delete_after_ms: Option<i64>,
    /// Whether the trail was logging at the last check, when known: a gap is then an error.
    pub logging: Option<bool>,
    /// Digests waiting for `run` to read their files, since when.
    waiting_since: BTreeMap<String, i64>,
}

/// What one stream's digests gave.
#[derive(Default)]
struct Outcome {
    problems: Vec<wi::Problem>,
    changes: Vec<Change>,
}

impl Follower {
    /// A follower of `bucket`'s digests; signatures checked with CloudTrail's keys in each
    /// digest's region (clients made from `config`) unless the mode forbids CloudTrail calls.
    /// `fresh`: the checkpoint has read nothing yet.
    pub fn new(config: &Config, bucket: &str, trail: Option<String>, fresh: bool, now_ms: i64) -> anyhow::Result<Self> {
        let keys = match (&config.integrity.public_keys_file, config.mode) {
            (Some(path), _) => Keys::Fixed(super::keys_from_file(path)?),
            (None, Mode::Restricted) => Keys::None,
            (None, _) => {
                let aws = config.aws.clone();
                Keys::Fetched {
                    client: Box::new(move |region: &str| crate::run::client_for(&aws, Some(region))),
                    regions: BTreeMap::new(),
                }
            }
        };
        let start_ms = if fresh {
            Day::parse(&config.source.start)
                .map(|d| d.epoch_days * 86_400_000)
                .or(Some(now_ms))
        } else {
            None
        };
        Ok(Follower {
            bucket: bucket.to_owned(),
            trail,
            keys,
            interval_ms: config.integrity.check_interval_secs as i64 * 1000,
            next_ms: now_ms,
            start_ms,
            delete_after_ms: config
                .delete
                .enabled
                .then_some(config.delete.after_hours as i64 * HOUR_MS),
            logging: None,
            waiting_since: BTreeMap::new(),
        })
    }

    /// Judges the new digests of the streams `run` reads (`log_streams`, as
    /// `…/CloudTrail/<region>/`), when the interval has passed. Problems go to every sink
    /// through `pipeline` (a cycle of their own) and to the metrics; only once the sinks have
    /// them are the chain positions recorded, so that a crash before repeats them rather than
    /// loses them.
    pub async fn cycle(
        &mut self,
        pipeline: &mut Pipeline,
        runtime: &PluginRuntime,
        client: &AwsClient,
        log_streams: &[String],
        max_object_bytes: u64,
        shutdown: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> anyhow::Result<()> {
        let now_ms = pipeline.clock().now_ms();
        if now_ms < self.next_ms {
            return Ok(());
        }
        self.next_ms = now_ms + self.interval_ms;
        let metrics = pipeline.metrics().clone();
        let mut changes = Vec::new();
        let since_ms = match pipeline.checkpoint().integrity_since_ms {
            Some(ms) => ms,
            None => {
                let ms = self.start_ms.unwrap_or(now_ms);
                changes.push(Change::IntegritySince { ms });
                ms
            }
        };
        let keys = std::mem::replace(&mut self.keys, Keys::None);
        let mut validator = Validator::new(runtime, client, keys);
        let mut problems: Vec<(String, wi::Problem)> = Vec::new();
        for log_stream in log_streams {
            let Some(stream) = digest_stream(log_stream) else {
                continue;
            };
            let region = super::region_of(&stream).to_owned();
            // One stream failing (a denied listing, a plugin fault) stops neither the others
            // nor the pruning; it is tried again at the next cycle.
            match self
                .stream(
                    pipeline.checkpoint(),
                    &mut validator,
                    &stream,
                    log_stream,
                    since_ms,
                    max_object_bytes,
                    now_ms,
                    &metrics,
                )
                .await
            {
                Ok(outcome) => {
                    problems.extend(outcome.problems.into_iter().map(|p| (region.clone(), p)));
                    changes.extend(outcome.changes);
                }
                Err(e) => {
                    tracing::warn!(stream = %stream, error = %format!("{e:#}"), "could not validate the digests of a stream; trying again at the next cycle")
                }
            }
            changes.extend(prune(pipeline.checkpoint(), log_stream, now_ms));
        }
        self.keys = validator.keys;
        if !problems.is_empty() {
            let mut bytes = Vec::new();
            let mut ends = Vec::new();
            for (region, p) in &problems {
                let severity = super::severity_name(p.severity);
                metrics.integrity_problem(&p.code, severity);
                match p.severity {
                    wi::Severity::Error => tracing::error!(code = %p.code, location = %p.location, "{}", p.message),
                    wi::Severity::Warning => tracing::warn!(code = %p.code, location = %p.location, "{}", p.message),
                    wi::Severity::Info => tracing::info!(code = %p.code, location = %p.location, "{}", p.message),
                }
                bytes.extend_from_slice(document(p, self.trail.as_deref(), region, now_ms).as_bytes());
                bytes.push(b'\n');
                ends.push(bytes.len() as u32);
            }
            pipeline.queue_documents(bytes, ends);
            let report = pipeline.cycle(shutdown)?.finish().await?;
            if report.interrupted {
                anyhow::bail!(
                    "stopped before every sink had the integrity findings; they are made again at the next start"
                );
            }
        }
        let ledger = pipeline.ledger();
        for change in changes {
            ledger.change(change);
        }
        ledger.commit()?;
        Ok(())
    }

    /// The new digests of one stream, judged in time order, each trail's against its own chain.
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &mut self,
        cp: &Checkpoint,
        validator: &mut Validator<'_>,
        stream: &str,
        log_stream: &str,
        since_ms: i64,
        max_object_bytes: u64,
        now_ms: i64,
        metrics: &Metrics,
    ) -> anyhow::Result<Outcome> {
        let mut out = Outcome::default();
        let mut positions: BTreeMap<String, ChainPosition> = cp
            .chains
            .range::<str, _>((std::ops::Bound::Included(stream), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(stream))
            .map(|(k, p)| (k[stream.len()..].to_owned(), p.clone()))
            .collect();
        for p in positions.values().filter(|p| !p.sha256.is_empty()) {
            validator.seen.insert(
                p.location.clone(),
                wi::PreviousDigest {
                    location: p.location.clone(),
                    sha256: p.sha256.clone(),
                    signature: p.signature.clone(),
                },
            );
        }
        // From the day of the oldest chain's last digest (every trail's later digests are on
        // or after it), or of when validation began.
        let from_ms = positions.values().map(|p| p.end_ms).min().unwrap_or(since_ms);
        let start_after = format!("{stream}{}", Day::of_ms(from_ms - HOUR_MS).key_part());
        let s3 = S3::new(validator.client, &self.bucket);
        let listed = s3.list_all(stream, None, Some(&start_after)).await?;
        let mut digests: Vec<(i64, String)> = listed
            .objects
            .into_iter()
            .filter_map(|o| file_time_ms(&o.key).map(|t| (t, o.key)))
            .filter(|(t, key)| match positions.get(trail_of(key)) {
                Some(p) => key.as_str() > p.key.as_str(),
                None => *t > since_ms,
            })
            .collect();
        digests.sort();
        let mut stopped_early = false;
        let mut unhashed = BTreeSet::new();
        for (time_ms, key) in digests {
            let trail = trail_of(&key).to_owned();
            let position = positions.get(&trail);
            let fetched = match validator.fetch(&self.bucket, &key).await {
                Ok(f) => f,
                // Gone since the listing: the next digest's chain says so.
                Err(FetchError::NotFound) => continue,
                Err(FetchError::Transient(t)) => {
                    tracing::warn!(digest = %key, reason = %t, "a digest could not be read now; trying again at the next cycle");
                    stopped_early = true;
                    break;
                }
                Err(FetchError::Bad(p)) => {
                    metrics.integrity_digest("unreadable");
                    out.problems.push(p);
                    // Not read again: the next digest's chain names it (its hash unknown, the
                    // link is not checked).
                    let next = ChainPosition {
                        key: key.clone(),
                        location: format!("{}/{key}", self.bucket),
                        sha256: String::new(),
                        signature: None,
                        start_ms: time_ms - HOUR_MS,
                        end_ms: time_ms,
                        since_ms: position.map_or(time_ms - HOUR_MS, |p| p.since_ms),
                        gap_reported: false,
                    };
                    out.changes.push(Change::Chain {
                        stream: format!("{stream}{trail}"),
                        position: next.clone(),
                    });
                    positions.insert(trail, next);
                    continue;
                }
            };
            let d = &fetched.digest;
            // A file not hashed and not done is one `run` has yet to read (a file missing from a
            // day its polling has closed counts as done, and is judged missing now).
            let waiting = d.files.iter().any(|f| {
                f.bucket == self.bucket
                    && !cp.hashes.contains_key(&f.key)
                    && !cp.is_done(&f.key)
                    && !cp.listed.contains_key(&f.key)
            });
            let first_seen = *self.waiting_since.entry(key.clone()).or_insert(now_ms);
            if waiting && now_ms - first_seen < WAIT_FOR_FILES_MS && now_ms - d.end_time_ms < WAIT_AT_MOST_MS {
                tracing::debug!(digest = %key, "a digest waits for its log files to be read");
                stopped_early = true;
                break;
            }
            let deleted_before = self.delete_after_ms.map(|after| now_ms - after);
            let known: BTreeMap<String, wi::FileState> = d
                .files
                .iter()
                .filter(|f| f.bucket == self.bucket)
                .filter_map(|f| {
                    let state = match cp.hashes.get(&f.key) {
                        Some(h) => wi::FileState::Hashed(h.sha256.clone()),
                        // Read, and perhaps deleted by `run` itself, before its hash was kept.
                        None if cp.is_done(&f.key)
                            && deleted_before
                                .is_some_and(|before| file_time_ms(&f.key).is_some_and(|t| t < before)) =>
                        {
                            wi::FileState::NotChecked
                        }
                        None => return None,
                    };
                    Some((f.key.clone(), state))
                })
                .collect();
            let lookup = |_: &str, key: &str| known.get(key).cloned();
            let verdict = match validator.judge(&fetched, &lookup, max_object_bytes, now_ms).await? {
                Ok(v) => v,
                Err(t) => {
                    tracing::warn!(digest = %key, reason = %t, "a digest could not be judged now; trying again at the next cycle");
                    stopped_early = true;
                    break;
                }
            };
            self.waiting_since.remove(&key);
            metrics.integrity_digest(if verdict.problems.is_empty() {
                "intact"
            } else {
                "problems"
            });
            tracing::info!(
                digest = %key,
                files = d.files.len(),
                valid = verdict.files_valid,
                signature_valid = verdict.signature_valid,
                problems = verdict.problems.len(),
                "digest judged"
            );
            let start_ms = crate::aws::s3::parse_time_ms(&d.start_time).unwrap_or(d.end_time_ms);
            // The hour of a digest that is gone: its files cannot be judged, and are not extra.
            if verdict.problems.iter().any(|p| p.code == "digest-missing") {
                let gone_from = position.map_or(start_ms - HOUR_MS, |p| p.end_ms);
                for (k, h) in hashes_of(cp, log_stream) {
                    if h >= gone_from - 2 * HOUR_MS && h <= start_ms && unhashed.insert(k.clone()) {
                        out.changes.push(Change::Unhashed { key: k });
                    }
                }
            }
            out.problems.extend(verdict.problems);
            for f in d.files.iter().filter(|f| f.bucket == self.bucket) {
                if cp.hashes.contains_key(&f.key) {
                    if unhashed.insert(f.key.clone()) {
                        out.changes.push(Change::Unhashed { key: f.key.clone() });
                    }
                } else if !cp.is_done(&f.key) {
                    // Listed before `run` read it: its hash, when it comes, is not wanted.
                    out.changes.push(Change::Listed {
                        key: f.key.clone(),
                        time_ms: file_time_ms(&f.key).unwrap_or(now_ms),
                    });
                }
            }
            let next = ChainPosition {
                key: key.clone(),
                location: fetched.location.clone(),
                sha256: d.sha256.clone(),
                signature: fetched.signature.clone(),
                start_ms,
                end_ms: d.end_time_ms,
                since_ms: position.map_or(start_ms, |p| p.since_ms),
                gap_reported: false,
            };
            out.changes.push(Change::Chain {
                stream: format!("{stream}{trail}"),
                position: next.clone(),
            });
            positions.insert(trail, next);
        }
        // Files read that no digest listed, now that a later one is in: when one trail writes
        // here (log files do not name their trail).
        if let (1, Some(position)) = (positions.len(), positions.values().next()) {
            let read: Vec<(String, i64)> = hashes_of(cp, log_stream)
                .filter(|(k, _)| !unhashed.contains(k))
                .collect();
            let files = read.iter().map(|(k, t)| (format!("{}/{k}", self.bucket), *t)).collect();
            let extra = validator.runtime.judge_coverage(&span_coverage(
                position,
                position.since_ms,
                files,
                now_ms,
                Some(false),
            ))?;
            for p in &extra {
                let key = p.location.trim_start_matches(&format!("{}/", self.bucket)).to_owned();
                if unhashed.insert(key.clone()) {
                    out.changes.push(Change::Unhashed { key });
                }
            }
            out.problems.extend(extra);
        }
        // A chain whose digests stopped coming: once per last digest, and only when no later
        // digest is waiting to be judged.
        if !stopped_early {
            for (trail, position) in &positions {
                if now_ms - position.end_ms <= DIGEST_DUE_MS || position.gap_reported {
                    continue;
                }
                let gaps = validator.runtime.judge_coverage(&span_coverage(
                    position,
                    position.start_ms,
                    Vec::new(),
                    now_ms - (DIGEST_DUE_MS - HOUR_MS),
                    self.logging,
                ))?;
                if !gaps.is_empty() {
                    let mut reported = position.clone();
                    reported.gap_reported = true;
                    out.changes.push(Change::Chain {
                        stream: format!("{stream}{trail}"),
                        position: reported,
                    });
                }
                out.problems.extend(gaps);
            }
        }
        Ok(out)
    }
}

/// What a chain's last judged digest covers, from `start_ms` to its end, with `log_files` read
/// and nothing seen until `until_ms`: the question put to the plugin after the new digests of a
/// stream (files no digest listed; a chain whose digests stopped coming).
fn span_coverage(
    position: &ChainPosition,
    start_ms: i64,
    log_files: Vec<(String, i64)>,
    until_ms: i64,
    logging: Option<bool>,
) -> wi::Coverage {
    wi::Coverage {
        digests: vec![wi::Span {
            location: position.location.clone(),
            start_ms,
            end_ms: position.end_ms,
            previous: None,
        }],
        log_files,
        listed: Vec::new(),
        from_ms: start_ms,
        until_ms,
        logging,
    }
}

/// The hashed files of a log stream, with the times in their names.
fn hashes_of<'a>(cp: &'a Checkpoint, log_stream: &'a str) -> impl Iterator<Item = (String, i64)> + 'a {
    cp.hashes
        .range::<str, _>((std::ops::Bound::Included(log_stream), std::ops::Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(log_stream))
        .map(|(k, h)| (k.clone(), h.time_ms))
}

/// Hashes and listed keys of a log stream no digest came for in two days.
fn prune(cp: &Checkpoint, log_stream: &str, now_ms: i64) -> Vec<Change> {
    let old = now_ms - KEEP_MS;
    let mut changes: Vec<Change> = hashes_of(cp, log_stream)
        .filter(|(_, t)| *t < old)
        .map(|(key, _)| Change::Unhashed { key })
        .collect();
    changes.extend(
        cp.listed
            .range::<str, _>((std::ops::Bound::Included(log_stream), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(log_stream))
            .filter(|(_, t)| **t < old)
            .map(|(k, _)| Change::Unlisted { key: k.clone() }),
    );
    changes
}

/// The digest stream of a log stream (`…/CloudTrail/<region>/` → `…/CloudTrail-Digest/<region>/`);
/// `None` for Insight streams (their digests are not CloudTrail's log digests).
fn digest_stream(log_stream: &str) -> Option<String> {
    let i = log_stream.rfind("/CloudTrail/")?;
    Some(format!(
        "{}/CloudTrail-Digest/{}",
        &log_stream[..i],
        &log_stream[i + "/CloudTrail/".len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::{digest_stream, trail_of};

    #[test]
    fn a_log_stream_has_its_digest_stream_beside_it() {
        assert_eq!(
            digest_stream("p/AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/").as_deref(),
            Some("p/AWSLogs/o-abc/111122223333/CloudTrail-Digest/eu-west-1/")
        );
        assert_eq!(
            digest_stream("AWSLogs/111122223333/CloudTrail-Insight/eu-west-1/"),
            None
        );
    }

    #[test]
    fn a_digest_names_its_trail_underscores_and_all() {
        let d = "AWSLogs/1/CloudTrail-Digest/eu-west-1/2024/03/01/111122223333_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_20240301T130000Z.json.gz";
        assert_eq!(trail_of(d), "my_trail");
        assert_eq!(trail_of(&d.replace("Z.json.gz", "Z_backfill.json.gz")), "my_trail");
        assert_eq!(trail_of("AWSLogs/x/other.json.gz"), "");
    }
}
