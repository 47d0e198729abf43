//! `trailwatch verify`: validates the log files of a time range against CloudTrail's digests,
//! as `aws cloudtrail validate-logs` does, and says what is missing, changed, extra or forged.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::Context;

use super::{document, host_problem, keys_from_file, severity_name, FetchError, Keys, Validator};
use crate::aws::s3::S3;
use crate::clock::Clock;
use crate::config::{Config, Mode};
use crate::layout::{file_time_ms, is_account_id, is_org_id, last_segment, Day};
use crate::runtime::bindings::integrity as wi;
use crate::runtime::PluginRuntime;

/// What `verify` validates and how it prints.
pub struct VerifyOptions {
    /// From when, ms since the Unix epoch.
    pub start_ms: i64,
    /// Until when.
    pub end_ms: i64,
    /// Only these accounts (all when empty).
    pub accounts: Vec<String>,
    /// Only these regions (all when empty).
    pub regions: Vec<String>,
    pub format: crate::trail::Format,
}

/// A digest stream: `<prefix>AWSLogs/[<org>/]<account>/`, the account and the region.
struct Stream {
    account_root: String,
    account: String,
    region: String,
}

const HOUR_MS: i64 = 3_600_000;

/// What verify counted.
#[derive(Default)]
struct Tally {
    digests: u32,
    signatures_valid: u32,
    files_listed: u32,
    files_valid: u32,
}

/// Runs `verify`; the exit code is 0 when every digest and log file in the range is intact, 1
/// with warnings only (something could not be checked), 2 with errors or when verify could not
/// run.
pub fn run_verify(config: &Config, runtime: &PluginRuntime, options: &VerifyOptions) -> anyhow::Result<u8> {
    if !runtime.validates() {
        anyhow::bail!("the plugin in use does not export trailwatch:plugin/integrity: log files cannot be validated (use a newer plugin)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(verify(config, runtime, options))
}

async fn verify(config: &Config, runtime: &PluginRuntime, options: &VerifyOptions) -> anyhow::Result<u8> {
    let now_ms = crate::clock::SystemClock.now_ms();
    let client = crate::run::client(config, None)?;
    let located = crate::run::locate(config, &client, runtime).await?;
    let trail = located.check.as_ref().and_then(|c| c.report.chosen.clone());
    let keys = match (&config.integrity.public_keys_file, config.mode) {
        (Some(path), _) => Keys::Fixed(keys_from_file(path)?),
        (None, Mode::Restricted) => {
            tracing::warn!("restricted mode makes no CloudTrail call: digest signatures are not checked (set [integrity] public_keys_file to check them); hashes and the chain are");
            Keys::None
        }
        (None, _) => {
            let aws = config.aws.clone();
            Keys::Fetched {
                client: Box::new(move |region: &str| crate::run::client_for(&aws, Some(region))),
                regions: std::collections::BTreeMap::new(),
            }
        }
    };
    let bucket_client = crate::run::bucket_client(config, std::sync::Arc::new(client), &located.bucket).await?;
    let s3 = S3::new(&bucket_client, &located.bucket);
    let streams = streams(&s3, &located.prefix, options).await?;
    let mut validator = Validator::new(runtime, &bucket_client, keys);
    let limit = config.source.max_object_mib.saturating_mul(1 << 20);
    let mut problems: Vec<(String, wi::Problem)> = Vec::new();
    let mut tally = Tally::default();
    // Digests are named for their end: those ending in the range, and those of the two hours
    // after it, which list the files of the range's last hours that were delivered late.
    let (from, until) = (options.start_ms, options.end_ms.saturating_add(3 * HOUR_MS));
    for stream in &streams {
        let region = &stream.region;
        let digest_root = format!("{}CloudTrail-Digest/{region}/", stream.account_root);
        let mut keys = Vec::new();
        for day in days(from, until) {
            let page = s3
                .list_all(&format!("{digest_root}{}", day.key_part()), None, None)
                .await
                .with_context(|| format!("listing {digest_root}"))?;
            keys.extend(
                page.objects
                    .into_iter()
                    .map(|o| o.key)
                    .filter(|k| file_time_ms(k).is_some_and(|t| t > from && t <= until)),
            );
        }
        keys.sort_by_key(|k| file_time_ms(k));
        let mut fetched = Vec::new();
        for key in &keys {
            match validator.fetch(&located.bucket, key).await {
                Ok(f) => fetched.push(f),
                Err(FetchError::Bad(p)) => problems.push((region.clone(), p)),
                Err(FetchError::Transient(t)) => anyhow::bail!("{t}"),
                // Listed a moment ago, gone now.
                Err(FetchError::NotFound) => problems.push((
                    region.clone(),
                    host_problem(
                        "digest-missing",
                        &format!("{}/{key}", located.bucket),
                        "the digest was deleted while it was being validated".into(),
                    ),
                )),
            }
        }
        let mut listed = BTreeSet::new();
        for f in &fetched {
            tally.digests += 1;
            tally.files_listed += f.digest.files.len() as u32;
            listed.extend(f.digest.files.iter().map(|l| format!("{}/{}", l.bucket, l.key)));
            let verdict = validator
                .judge(f, &|_, _| None, limit, now_ms)
                .await?
                .map_err(|t| anyhow::anyhow!("{t}"))?;
            tally.signatures_valid += u32::from(verdict.signature_valid);
            tally.files_valid += verdict.files_valid;
            problems.extend(verdict.problems.into_iter().map(|p| (region.clone(), p)));
        }
        // Log files of the range that no digest lists, and hours no digest covers.
        let log_root = format!("{}CloudTrail/{region}/", stream.account_root);
        let mut log_files = Vec::new();
        for day in days(options.start_ms, options.end_ms) {
            let page = s3
                .list_all(&format!("{log_root}{}", day.key_part()), None, None)
                .await
                .with_context(|| format!("listing {log_root}"))?;
            for o in page.objects {
                if let Some(t) = file_time_ms(&o.key) {
                    log_files.push((format!("{}/{}", located.bucket, o.key), t));
                }
            }
        }
        let coverage = wi::Coverage {
            digests: fetched
                .iter()
                .map(|f| wi::Span {
                    location: f.location.clone(),
                    start_ms: crate::aws::s3::parse_time_ms(&f.digest.start_time).unwrap_or(f.digest.end_time_ms),
                    end_ms: f.digest.end_time_ms,
                    previous: match (&f.digest.previous_bucket, &f.digest.previous_key) {
                        (Some(b), Some(k)) => Some(format!("{b}/{k}")),
                        _ => None,
                    },
                })
                .collect(),
            log_files,
            listed: listed.into_iter().collect(),
            from_ms: options.start_ms,
            // The last hour's digest comes about an hour after it.
            until_ms: options.end_ms.min(now_ms - HOUR_MS - 15 * 60_000),
            logging: None,
        };
        let found = runtime.judge_coverage(&coverage)?;
        problems.extend(found.into_iter().map(|p| (region.clone(), p)));
        tracing::debug!(account = %stream.account, region = %region, digests = keys.len(), "validated");
    }
    let mut out = std::io::stdout().lock();
    match options.format {
        crate::trail::Format::Json => {
            for (region, p) in &problems {
                writeln!(out, "{}", document(p, trail.as_deref(), region, now_ms))?;
            }
        }
        crate::trail::Format::Table => {
            for (_, p) in &problems {
                writeln!(out, "{:<8} {:<32} {}", severity_name(p.severity), p.code, p.location)?;
                writeln!(out, "         {}", p.message)?;
            }
        }
    }
    out.flush()?;
    let errors = problems
        .iter()
        .filter(|(_, p)| p.severity == wi::Severity::Error)
        .count();
    let warnings = problems
        .iter()
        .filter(|(_, p)| p.severity == wi::Severity::Warning)
        .count();
    eprintln!(
        "trailwatch verify: {} streams, {} digests ({} signatures verified), {} of {} listed log files valid; {errors} errors, {warnings} warnings",
        streams.len(),
        tally.digests,
        tally.signatures_valid,
        tally.files_valid,
        tally.files_listed,
    );
    Ok(if errors > 0 {
        2
    } else if warnings > 0 {
        1
    } else {
        0
    })
}

/// The days from the one of `from_ms` to the one of `until_ms`.
fn days(from_ms: i64, until_ms: i64) -> Vec<Day> {
    let mut day = Day::of_ms(from_ms);
    let last = Day::of_ms(until_ms);
    let mut out = vec![day];
    while day < last {
        day = day.next();
        out.push(day);
    }
    out
}

/// The digest streams under `prefix`, filtered by the options.
async fn streams(s3: &S3<'_>, prefix: &str, options: &VerifyOptions) -> anyhow::Result<Vec<Stream>> {
    let root = format!("{prefix}AWSLogs/");
    let listing = |p: String| async move {
        s3.list_all(&p, Some("/"), None)
            .await
            .with_context(|| format!("listing {p} in {}", s3.bucket()))
    };
    let mut accounts = Vec::new();
    for p in listing(root).await?.prefixes {
        let seg = last_segment(&p).to_owned();
        if is_account_id(&seg) {
            accounts.push((seg, p));
        } else if is_org_id(&seg) {
            for q in listing(p).await?.prefixes {
                let acct = last_segment(&q).to_owned();
                if is_account_id(&acct) {
                    accounts.push((acct, q));
                }
            }
        }
    }
    let mut streams = Vec::new();
    for (account, account_root) in accounts {
        if !options.accounts.is_empty() && !options.accounts.contains(&account) {
            continue;
        }
        // Regions with digests, and regions with log files but no digest at all (a digest
        // folder deleted whole is then a gap, not silence).
        let mut regions = BTreeSet::new();
        for folder in ["CloudTrail-Digest/", "CloudTrail/"] {
            for r in listing(format!("{account_root}{folder}")).await?.prefixes {
                regions.insert(last_segment(&r).to_owned());
            }
        }
        for region in regions {
            if options.regions.is_empty() || options.regions.contains(&region) {
                streams.push(Stream {
                    account_root: account_root.clone(),
                    account: account.clone(),
                    region,
                });
            }
        }
    }
    if streams.is_empty() {
        anyhow::bail!(
            "no digest files under {prefix}AWSLogs/ in {} for the accounts and regions asked: is log file validation on for the trail?",
            s3.bucket()
        );
    }
    Ok(streams)
}
