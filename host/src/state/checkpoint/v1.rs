//! Reading a version 1 checkpoint (per-stream days) into the version 2 form (per object).
//!
//! Version 1 kept, per `…/<account>/CloudTrail/<region>/` stream, the first day not yet closed
//! and the keys done on each open day; its journal said `done` with the stream and the day, and
//! `done_before`. Both come over unchanged in meaning: a closed day becomes the stream's cursor.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Change, Checkpoint, FailedFile, PendingDelete};

#[derive(Deserialize)]
struct Stream {
    done_before: Option<String>,
    #[serde(default)]
    processed: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Deserialize)]
struct Snapshot {
    bucket: String,
    streams: BTreeMap<String, Stream>,
    pending_delete: BTreeSet<PendingDelete>,
    #[serde(default)]
    failed: BTreeMap<String, FailedFile>,
    #[serde(default)]
    started_ms: Option<i64>,
}

/// The two journal lines whose shape changed.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Line {
    Done { key: String },
    DoneBefore { stream: String, day: String },
}

/// `YYYY-MM-DD` as the key part `YYYY/MM/DD/`.
fn key_part(day: &str) -> String {
    format!("{}/", day.replace('-', "/"))
}

/// A version 1 snapshot as a version 2 checkpoint.
pub fn snapshot(bytes: &[u8]) -> serde_json::Result<Checkpoint> {
    let old: Snapshot = serde_json::from_slice(bytes)?;
    let mut cp = Checkpoint {
        version: super::VERSION,
        bucket: old.bucket,
        pending_delete: old.pending_delete,
        failed: old.failed,
        started_ms: old.started_ms,
        ..Checkpoint::default()
    };
    for (stream, state) in old.streams {
        if let Some(day) = state.done_before {
            cp.cursors.insert(stream.clone(), format!("{stream}{}", key_part(&day)));
        }
        cp.done.extend(state.processed.into_values().flatten());
    }
    Ok(cp)
}

/// A version 1 journal line as the change it meant.
pub fn line(bytes: &[u8]) -> serde_json::Result<Change> {
    Ok(match serde_json::from_slice(bytes)? {
        Line::Done { key } => Change::Done { key },
        Line::DoneBefore { stream, day } => Change::Cursor {
            before: format!("{stream}{}", key_part(&day)),
            prefix: stream,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_snapshot_and_journal_mean_the_same_in_version_2() {
        let snap = br#"{"version":1,"bucket":"b","streams":{"AWSLogs/1/CloudTrail/us-east-1/":{"done_before":"2024-03-02","processed":{"2024-03-02":["AWSLogs/1/CloudTrail/us-east-1/2024/03/02/x.json.gz"]}}},"pending_delete":[],"failed":{},"started_ms":null}"#;
        let mut cp = snapshot(snap).unwrap();
        assert!(cp.is_done("AWSLogs/1/CloudTrail/us-east-1/2024/03/01/old.json.gz"));
        assert!(cp.is_done("AWSLogs/1/CloudTrail/us-east-1/2024/03/02/x.json.gz"));
        assert!(!cp.is_done("AWSLogs/1/CloudTrail/us-east-1/2024/03/02/y.json.gz"));
        line(br#"{"op":"done","stream":"AWSLogs/1/CloudTrail/us-east-1/","day":"2024-03-02","key":"AWSLogs/1/CloudTrail/us-east-1/2024/03/02/y.json.gz"}"#)
            .unwrap()
            .apply(&mut cp);
        line(br#"{"op":"done_before","stream":"AWSLogs/1/CloudTrail/us-east-1/","day":"2024-03-03"}"#)
            .unwrap()
            .apply(&mut cp);
        assert!(cp.done.is_empty(), "the closed day's keys leave the set: {:?}", cp.done);
        assert!(cp.is_done("AWSLogs/1/CloudTrail/us-east-1/2024/03/02/y.json.gz"));
    }
}
