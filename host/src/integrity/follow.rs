//! `run`'s continuous validation: each new digest of every stream `run` reads is judged as it
//! arrives, against the hashes of the log files `run` read (kept in the checkpoint with each
//! file, in the same commit), and what is wrong goes to the sinks as finding documents, to the
//! log and to the metrics.
//!
//! A digest whose listed files `run` has not read yet waits for the next cycle (up to two hours,
//! then those files are fetched and hashed here). Files read that no digest lists once a later
//! digest is in are reported as extra; a stream whose digests stop coming is reported as a gap.

use std::collections::{BTreeMap, BTreeSet};

use super::{document, Keys, Validator};
use crate::aws::s3::S3;
use crate::aws::AwsClient;
use crate::config::{Config, Mode, SourceKind};
use crate::layout::{file_time_ms, Day};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::runtime::bindings::integrity as wi;
use crate::runtime::PluginRuntime;
use crate::state::checkpoint::{ChainPosition, Change};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// A digest waits this long for `run` to read the files it lists (those of days its polling
/// has not closed yet) before they are fetched here.
const WAIT_FOR_FILES_MS: i64 = 30 * MINUTE_MS;
/// CloudTrail writes a digest about every hour; one this late is a gap.
const DIGEST_DUE_MS: i64 = HOUR_MS + 15 * MINUTE_MS;
/// Hashes of files no digest ever came for are let go after this long.
const KEEP_HASHES_MS: i64 = 2 * 24 * HOUR_MS;

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

/// `run`'s digest follower.
pub struct Follower {
    bucket: String,
    trail: Option<String>,
    keys: Keys,
    interval_ms: i64,
    next_ms: i64,
    /// Digests ending after this are judged in a stream without a chain position yet: the
    /// source's start (its first day, or when `run` first polled with `start = "now"`).
    from_ms: Option<i64>,
    /// Whether the trail was logging at the last check, when known: a gap is then an error.
    pub logging: Option<bool>,
    /// Digests waiting for `run` to read their files, since when.
    waiting_since: BTreeMap<String, i64>,
}

impl Follower {
    /// A follower of `bucket`'s digests; signatures checked with CloudTrail's keys (through
    /// `trail_client`) unless the mode forbids CloudTrail calls.
    pub fn new(
        config: &Config,
        bucket: &str,
        trail: Option<String>,
        trail_client: std::sync::Arc<AwsClient>,
        now_ms: i64,
    ) -> anyhow::Result<Self> {
        let keys = match (&config.integrity.public_keys_file, config.mode) {
            (Some(path), _) => Keys::Fixed(super::keys_from_file(path)?),
            (None, Mode::Restricted) => Keys::None,
            (None, _) => Keys::Fetched {
                client: trail_client.clone(),
                keys: None,
                fetched_at_ms: now_ms,
            },
        };
        Ok(Follower {
            bucket: bucket.to_owned(),
            trail,
            keys,
            interval_ms: config.integrity.check_interval_secs as i64 * 1000,
            next_ms: now_ms,
            from_ms: Day::parse(&config.source.start).map(|d| d.epoch_days * 86_400_000),
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
        let keys = std::mem::replace(&mut self.keys, Keys::None);
        let mut validator = Validator::new(runtime, client, keys);
        let mut problems: Vec<(String, wi::Problem)> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        let mut result = Ok(());
        for log_stream in log_streams {
            let Some(stream) = digest_stream(log_stream) else {
                continue;
            };
            if let Err(e) = self
                .stream(
                    pipeline,
                    &mut validator,
                    &stream,
                    log_stream,
                    max_object_bytes,
                    now_ms,
                    &metrics,
                    &mut problems,
                    &mut changes,
                )
                .await
            {
                result = Err(e.context(format!("validating the digests of {stream}")));
                break;
            }
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
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &mut self,
        pipeline: &mut Pipeline,
        validator: &mut Validator<'_>,
        stream: &str,
        log_stream: &str,
        max_object_bytes: u64,
        now_ms: i64,
        metrics: &Metrics,
        problems: &mut Vec<(String, wi::Problem)>,
        changes: &mut Vec<Change>,
    ) -> anyhow::Result<()> {
        let region = super::region_of(stream).to_owned();
        let mut position = pipeline.checkpoint().chains.get(stream).cloned();
        let mut unhashed = BTreeSet::new();
        if let Some(p) = position.as_ref().filter(|p| !p.sha256.is_empty()) {
            validator.seen.insert(
                p.location.clone(),
                wi::PreviousDigest {
                    location: p.location.clone(),
                    sha256: p.sha256.clone(),
                    signature: p.signature.clone(),
                },
            );
        }
        // After the last digest judged; the first time, from the hour before the source's start.
        let began_ms = self.from_ms.or(pipeline.checkpoint().started_ms).unwrap_or(now_ms);
        let start_after = match &position {
            Some(p) => p.key.clone(),
            None => format!("{stream}{}", Day::of_ms(began_ms - HOUR_MS).key_part()),
        };
        let s3 = S3::new(validator.client, &self.bucket);
        let listed = s3.list_all(stream, None, Some(&start_after)).await?;
        let mut digests: Vec<(i64, String)> = listed
            .objects
            .into_iter()
            .filter_map(|o| file_time_ms(&o.key).map(|t| (t, o.key)))
            .filter(|(t, _)| position.is_some() || *t > began_ms - HOUR_MS)
            .collect();
        digests.sort();
        for (_, key) in digests {
            let fetched = match validator.fetch(&self.bucket, &key).await {
                Ok(f) => f,
                Err(found) => {
                    if let Some(p) = found {
                        metrics.integrity_digest("unreadable");
                        problems.push((region.clone(), p));
                    }
                    // Not judged, and not read again: the next digest's chain names it (its hash
                    // unknown, the link is not checked).
                    let time_ms = file_time_ms(&key).unwrap_or(now_ms);
                    let p = ChainPosition {
                        key: key.clone(),
                        location: format!("{}/{key}", self.bucket),
                        sha256: String::new(),
                        signature: None,
                        start_ms: time_ms - HOUR_MS,
                        end_ms: time_ms,
                        since_ms: position.as_ref().map_or(time_ms - HOUR_MS, |p| p.since_ms),
                        gap_reported: false,
                    };
                    changes.push(Change::Chain {
                        stream: stream.to_owned(),
                        position: p.clone(),
                    });
                    position = Some(p);
                    continue;
                }
            };
            // A file not hashed and not done is one `run` has yet to read (a file missing from
            // a day its polling has closed counts as done, and is judged missing now).
            let cp = pipeline.checkpoint();
            let waiting = fetched
                .digest
                .files
                .iter()
                .any(|f| !cp.hashes.contains_key(&f.key) && !cp.is_done(&f.key));
            let since = *self.waiting_since.entry(key.clone()).or_insert(now_ms);
            if waiting && now_ms - since < WAIT_FOR_FILES_MS {
                tracing::debug!(digest = %key, "a digest waits for its log files to be read");
                break;
            }
            self.waiting_since.remove(&key);
            let known: BTreeMap<String, wi::FileState> = fetched
                .digest
                .files
                .iter()
                .filter_map(|f| {
                    cp.hashes
                        .get(&f.key)
                        .filter(|_| f.bucket == self.bucket)
                        .map(|h| (f.key.clone(), wi::FileState::Hashed(h.sha256.clone())))
                })
                .collect();
            let lookup = |_: &str, key: &str| known.get(key).cloned();
            let verdict = validator.judge(&fetched, &lookup, max_object_bytes, now_ms).await?;
            metrics.integrity_digest(if verdict.problems.is_empty() {
                "intact"
            } else {
                "problems"
            });
            tracing::info!(
                digest = %key,
                files = fetched.digest.files.len(),
                valid = verdict.files_valid,
                signature_valid = verdict.signature_valid,
                problems = verdict.problems.len(),
                "digest judged"
            );
            problems.extend(verdict.problems.into_iter().map(|p| (region.clone(), p)));
            for f in &fetched.digest.files {
                if pipeline.checkpoint().hashes.contains_key(&f.key) && unhashed.insert(f.key.clone()) {
                    changes.push(Change::Unhashed { key: f.key.clone() });
                }
            }
            let start_ms =
                crate::aws::s3::parse_time_ms(&fetched.digest.start_time).unwrap_or(fetched.digest.end_time_ms);
            let since_ms = position.as_ref().map_or(start_ms, |p| p.since_ms);
            let next = ChainPosition {
                key: key.clone(),
                location: fetched.location.clone(),
                sha256: fetched.digest.sha256.clone(),
                signature: fetched.signature.clone(),
                start_ms,
                end_ms: fetched.digest.end_time_ms,
                since_ms,
                gap_reported: false,
            };
            changes.push(Change::Chain {
                stream: stream.to_owned(),
                position: next.clone(),
            });
            position = Some(next);
        }
        let Some(mut position) = position else {
            return Ok(());
        };
        // Files read since the chain began that no digest listed, now that a later one is in.
        let cp = pipeline.checkpoint();
        let read: Vec<(String, i64)> = cp
            .hashes
            .range::<str, _>((std::ops::Bound::Included(log_stream), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(log_stream))
            .filter(|(k, _)| !unhashed.contains(*k))
            .map(|(k, h)| (k.clone(), h.time_ms))
            .collect();
        let extra = validator.runtime.judge_coverage(&wi::Coverage {
            digests: vec![wi::Span {
                location: position.location.clone(),
                start_ms: position.since_ms,
                end_ms: position.end_ms,
                previous: None,
            }],
            log_files: read.iter().map(|(k, t)| (format!("{}/{k}", self.bucket), *t)).collect(),
            listed: Vec::new(),
            from_ms: position.since_ms,
            until_ms: now_ms,
            logging: Some(false),
        })?;
        let reported: BTreeSet<String> = extra
            .iter()
            .map(|p| p.location.trim_start_matches(&format!("{}/", self.bucket)).to_owned())
            .collect();
        problems.extend(extra.into_iter().map(|p| (region.clone(), p)));
        for (key, t) in read {
            if reported.contains(&key) || t < now_ms - KEEP_HASHES_MS {
                changes.push(Change::Unhashed { key });
            }
        }
        // No digest for too long: once per last digest.
        if now_ms - position.end_ms > DIGEST_DUE_MS && !position.gap_reported {
            let gaps = validator.runtime.judge_coverage(&wi::Coverage {
                digests: vec![wi::Span {
                    location: position.location.clone(),
                    start_ms: position.start_ms,
                    end_ms: position.end_ms,
                    previous: None,
                }],
                log_files: Vec::new(),
                listed: Vec::new(),
                from_ms: position.start_ms,
                until_ms: now_ms - (DIGEST_DUE_MS - HOUR_MS),
                logging: self.logging,
            })?;
            if !gaps.is_empty() {
                position.gap_reported = true;
                changes.push(Change::Chain {
                    stream: stream.to_owned(),
                    position,
                });
            }
            problems.extend(gaps.into_iter().map(|p| (region.clone(), p)));
        }
        Ok(())
    }
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
    use super::digest_stream;

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
}
