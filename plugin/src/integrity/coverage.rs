//! A stream's digests taken together: hours no digest covers, and log files no digest lists.

use std::collections::BTreeSet;

use super::{Problem, Severity};

/// A digest's span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub location: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub previous: Option<String>,
}

/// What the host saw of one stream over a time range.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub digests: Vec<Span>,
    /// Log file keys with the time in their names.
    pub log_files: Vec<(String, i64)>,
    /// Every key the digests list.
    pub listed: Vec<String>,
    pub from_ms: i64,
    pub until_ms: i64,
    pub logging: Option<bool>,
}

/// Two digests' spans closer than this are taken to touch (CloudTrail starts each digest where
/// the one before ended, to the second).
const TOUCH_MS: i64 = 60_000;

/// A log file is listed by the digest of the hour it was delivered in, usually minutes after the
/// time in its name but now and then much later: a file is judged only when a digest ending at
/// least this long after its time was read.
pub const DELIVERY_MS: i64 = 2 * 3_600_000;

fn time(ms: i64) -> String {
    crate::time::format_ms(ms)
}

/// Judges a stream's coverage.
pub fn judge_coverage(c: &Coverage) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut spans: Vec<&Span> = c.digests.iter().collect();
    spans.sort_by_key(|s| (s.start_ms, s.end_ms));
    // Gaps: stretches of [from, until] no digest covers.
    let severity = match c.logging {
        Some(false) => None,
        Some(true) => Some(Severity::Error),
        None => Some(Severity::Warning),
    };
    // A gap before a digest that names a previous digest that was not found is that digest's
    // hour: the chain check reports it as `digest-missing`, and its files as unverifiable.
    let read: BTreeSet<&str> = spans.iter().map(|s| s.location.as_str()).collect();
    let mut covered = c.from_ms;
    let mut gaps = Vec::new();
    let mut explained = Vec::new();
    for s in &spans {
        if s.start_ms > covered + TOUCH_MS && covered < c.until_ms {
            let gap = (covered, s.start_ms.min(c.until_ms), Some(s.location.as_str()));
            match &s.previous {
                Some(p) if !read.contains(p.as_str()) => explained.push(gap),
                _ => gaps.push(gap),
            }
        }
        covered = covered.max(s.end_ms);
    }
    if covered + TOUCH_MS < c.until_ms {
        // Nothing came after the last digest: the gap is named by it.
        gaps.push((covered, c.until_ms, spans.last().map(|s| s.location.as_str())));
    }
    if let Some(severity) = severity {
        for &(from, to, next) in &gaps {
            let mut p = Problem::new(
                "digest-gap",
                severity,
                next.unwrap_or(""),
                format!(
                    "no digest covers {} to {}: CloudTrail writes one every hour while logging and validation are on, so a digest was deleted, or logging or validation was off{}",
                    time(from),
                    time(to),
                    if severity == Severity::Warning {
                        " (whether logging was on is not known)"
                    } else {
                        ""
                    }
                ),
            )
            .with("from", time(from))
            .with("to", time(to));
            if let Some(next) = next {
                p = p.with("digest", next.to_owned());
            }
            problems.push(p);
        }
    }
    // Extra files: in a judged hour, yet listed by no digest.
    let latest_end = spans.iter().map(|s| s.end_ms).max();
    let listed: BTreeSet<&str> = c.listed.iter().map(String::as_str).collect();
    if let Some(latest_end) = latest_end {
        let mut extra: Vec<&(String, i64)> = c
            .log_files
            .iter()
            .filter(|(key, t)| {
                *t >= c.from_ms
                    && *t <= c.until_ms
                    && *t + DELIVERY_MS <= latest_end
                    && !listed.contains(key.as_str())
                    && !explained
                        .iter()
                        .any(|(from, to, _)| *t >= from - DELIVERY_MS && *t <= *to)
            })
            .collect();
        extra.sort();
        for (key, t) in extra {
            problems.push(
                Problem::new(
                    "log-file-not-in-digest",
                    Severity::Error,
                    key,
                    "a log file no digest lists: CloudTrail did not deliver it (it was put in the bucket by someone else, or copied in under a CloudTrail name)".into(),
                )
                .with("time in key", time(*t)),
            );
        }
    }
    problems
}
