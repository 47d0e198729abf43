//! The checkpoint: which log files are done, crash-safe on local disk.
//!
//! One JSON document, rewritten whole at each commit: written to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced. A `kill -9` at any instant leaves either
//! the old or the new checkpoint, never a torn one. A file is recorded only after every event of
//! it was acknowledged by the output, so after a restart nothing is lost and at most the files in
//! flight are emitted again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::layout::Day;

/// The checkpoint format version.
const VERSION: u32 = 1;

/// Progress of one (account, region, folder) stream: `…/<account>/CloudTrail/<region>/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Every day before this one is done.
    pub done_before: Option<Day>,
    /// Keys done, by day, for the days still listed (the recent ones and the one being caught up).
    pub processed: BTreeMap<Day, BTreeSet<String>>,
}

/// A processed file waiting for its deletion time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingDelete {
    /// When it may be deleted, ms since the Unix epoch.
    pub due_ms: i64,
    /// Its key.
    pub key: String,
}

/// Everything the checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The bucket the checkpoint belongs to.
    pub bucket: String,
    /// Per stream base prefix.
    pub streams: BTreeMap<String, StreamState>,
    /// Files to delete once due (default mode with deletion on).
    pub pending_delete: BTreeSet<PendingDelete>,
    /// Files that could not be read to their end, by key.
    #[serde(default)]
    pub failed: BTreeMap<String, FailedFile>,
    /// When the first poll ran (`start = "now"` skips what was delivered before).
    #[serde(default)]
    pub started_ms: Option<i64>,
}

/// A file that could not be read to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFile {
    /// Why, the last time.
    pub reason: String,
    /// How many polls tried it.
    pub attempts: u32,
    /// Not read again (kept in the bucket for inspection).
    pub quarantined: bool,
}

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("checkpoint {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The file is not a checkpoint of this version.
    #[error("checkpoint {path} is unreadable: {message}; move it away to start over")]
    Corrupt { path: PathBuf, message: String },
    /// Another process uses the state directory.
    #[error("state directory {dir} is in use by another trailwatch; give each instance its own state.dir")]
    Locked { dir: PathBuf },
    /// The checkpoint belongs to another bucket.
    #[error("checkpoint {path} belongs to bucket {found}, not {expected}; use another state dir")]
    OtherBucket {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// The checkpoint file in a state directory, locked against a second trailwatch using the same
/// directory for as long as the store lives.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    _lock: std::fs::File,
}

impl CheckpointStore {
    /// The store in `dir` (created if needed); fails when another process holds it.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| CheckpointError::Io {
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(CheckpointError::Locked { dir: dir.to_owned() }),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(CheckpointError::Io {
                    path: lock_path,
                    source,
                })
            }
        }
        Ok(CheckpointStore {
            path: dir.join("checkpoint.json"),
            _lock: lock,
        })
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the checkpoint for `bucket`, or an empty one on a first run.
    pub fn load(&self, bucket: &str) -> Result<Checkpoint, CheckpointError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint {
                    version: VERSION,
                    bucket: bucket.to_owned(),
                    ..Checkpoint::default()
                })
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if cp.version != VERSION {
            return Err(CheckpointError::Corrupt {
                path: self.path.clone(),
                message: format!("version {} (this build reads {VERSION})", cp.version),
            });
        }
        if cp.bucket != bucket {
            return Err(CheckpointError::OtherBucket {
                path: self.path.clone(),
                found: cp.bucket,
                expected: bucket.to_owned(),
            });
        }
        Ok(cp)
    }

    /// Writes the checkpoint durably (temp file, fsync, rename, fsync of the directory).
    pub fn commit(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension(format!("json.tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(cp).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_survives_a_reload_and_a_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        let day = Day::parse("2024-03-01").unwrap();
        cp.streams
            .entry("AWSLogs/1/CloudTrail/us-east-1/".into())
            .or_default()
            .processed
            .entry(day)
            .or_default()
            .insert("k1".into());
        store.commit(&cp).unwrap();
        std::fs::write(dir.path().join("checkpoint.json.tmp"), b"{\"torn").unwrap();
        assert_eq!(store.load("b").unwrap(), cp);
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused_while_the_first_lives() {
        let dir = tempfile::tempdir().unwrap();
        let first = CheckpointStore::open(dir.path()).unwrap();
        assert!(matches!(
            CheckpointStore::open(dir.path()),
            Err(CheckpointError::Locked { .. })
        ));
        drop(first);
        CheckpointStore::open(dir.path()).unwrap();
    }

    #[test]
    fn another_buckets_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        store.commit(&store.load("a").unwrap()).unwrap();
        assert!(matches!(store.load("b"), Err(CheckpointError::OtherBucket { .. })));
    }
}
