//! The checkpoint: which log files are done, crash-safe on local disk.
//!
//! Two files in the state directory. `checkpoint.json` is a snapshot, rewritten whole now and then:
//! written to a temporary file, fsynced, renamed over the old one, and the directory fsynced.
//! `journal.ndjson` holds the changes made since, one JSON line each, appended and fsynced at
//! every commit, so that a commit costs a few hundred bytes however many files and streams the
//! checkpoint knows (an organization trail has thousands of streams). Loading reads the snapshot
//! and replays the journal; after `COMPACT_AFTER` lines the snapshot is rewritten and the journal
//! emptied. Every change sets a value rather than adding to one, so a change replayed twice (a
//! crash between the two steps of a compaction) gives the same checkpoint.
//!
//! A `kill -9` at any instant leaves the last commit readable: a line cut short at the end of the
//! journal was never acknowledged and is dropped. A file is recorded only after every event of it
//! was acknowledged by the output, so after a restart nothing is lost and at most the files in
//! flight are emitted again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod v1;

/// The checkpoint format version.
const VERSION: u32 = 2;

/// A processed file waiting for its deletion time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingDelete {
    /// When it may be deleted, ms since the Unix epoch.
    pub due_ms: i64,
    /// Its key.
    pub key: String,
}

/// Everything the checkpoint holds. It is keyed by object: it knows keys, not how a source
/// finds them, so that every source (S3 polling, notifications) shares it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The bucket the checkpoint belongs to.
    pub bucket: String,
    /// Objects done (read to their end, or quarantined), by key, past the cursors.
    #[serde(default)]
    pub done: BTreeSet<String>,
    /// Source positions: for each key prefix, every key under it that sorts before the bound is
    /// done, and is no longer listed one by one in `done`.
    #[serde(default)]
    pub cursors: BTreeMap<String, String>,
    /// Files to delete once due (default mode with deletion on).
    pub pending_delete: BTreeSet<PendingDelete>,
    /// Files that could not be read to their end, by key.
    #[serde(default)]
    pub failed: BTreeMap<String, FailedFile>,
    /// When the first poll ran (`start = "now"` skips what was delivered before).
    #[serde(default)]
    pub started_ms: Option<i64>,
    /// Log-file integrity: the SHA-256 of each log file read, by key, until a digest that
    /// lists it was judged (or it was found in no digest).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hashes: BTreeMap<String, FileHash>,
    /// Log-file integrity: the last digest judged in each chain, by the digest stream's prefix
    /// (`…/CloudTrail-Digest/<region>/`) followed by the trail's name: where the next digest's
    /// chain must lead back to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub chains: BTreeMap<String, ChainPosition>,
    /// Log-file integrity: log files a judged digest listed before `run` read them (their
    /// hashes, when they come, are not wanted), with the time in their names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listed: BTreeMap<String, i64>,
    /// Log-file integrity: digests ending after this are judged (when validation was first on
    /// for this checkpoint), ms since the Unix epoch.
    #[serde(default)]
    pub integrity_since_ms: Option<i64>,
}

/// The hash of a log file's decompressed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// The time in the file's name, ms since the Unix epoch.
    pub time_ms: i64,
}

/// The last digest judged in a digest stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPosition {
    /// Its key (listing resumes after it).
    pub key: String,
    /// `bucket/key`.
    pub location: String,
    /// SHA-256 of its decompressed content, lowercase hex.
    pub sha256: String,
    /// Its signature, hex, when it had one.
    pub signature: Option<String>,
    /// `digestStartTime` and `digestEndTime`, ms since the Unix epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    /// `digestStartTime` of the first digest judged in this stream: files read since then
    /// must each be listed by a digest.
    pub since_ms: i64,
    /// No digest came after it for too long, and that was reported.
    #[serde(default)]
    pub gap_reported: bool,
}

impl Checkpoint {
    /// Whether `key` is done: listed, or before its prefix's cursor.
    pub fn is_done(&self, key: &str) -> bool {
        self.done.contains(key)
            || self
                .cursors
                .range::<str, _>((Bound::Unbounded, Bound::Included(key)))
                .next_back()
                .is_some_and(|(prefix, before)| key.starts_with(prefix.as_str()) && key < before.as_str())
    }

    /// Whether nothing was read with it yet.
    pub fn is_new(&self) -> bool {
        self.done.is_empty()
            && self.cursors.is_empty()
            && self.failed.is_empty()
            && self.pending_delete.is_empty()
            && self.started_ms.is_none()
    }

    /// The cursor of `prefix`, when it has one.
    pub fn cursor(&self, prefix: &str) -> Option<&str> {
        self.cursors.get(prefix).map(String::as_str)
    }
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
    /// The records before this index were written and acknowledged by an earlier attempt; the
    /// next attempt does not write them again. (A record's index is its place in the file, the
    /// same whichever plugin reads it, and log files do not change.)
    #[serde(default)]
    pub records_done: u32,
}

/// Journal lines after which the snapshot is rewritten and the journal emptied.
const COMPACT_AFTER: usize = 20_000;

/// One change to the checkpoint, as a journal line. Each sets a value, never adds to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A file is done: all its events were acknowledged, or it is quarantined.
    Done { key: String },
    /// Every key under `prefix` before `before` is done; they leave `done`. Creates the cursor
    /// when it is new.
    Cursor { prefix: String, before: String },
    /// A file could not be read to its end; this is its record now.
    Failed { key: String, file: FailedFile },
    /// A file that had failed was read to its end: its record goes.
    Recovered { key: String },
    /// A processed file waits for its deletion time.
    DeleteLater { entry: PendingDelete },
    /// A file was deleted.
    Deleted { entry: PendingDelete },
    /// The first poll ran at `ms`.
    Started { ms: i64 },
    /// A done key is no longer remembered one by one (the queue source keeps what it read for
    /// its de-duplication window only).
    Forget { key: String },
    /// A log file read was hashed (integrity validation).
    Hashed { key: String, hash: FileHash },
    /// A log file's hash is no longer needed: a digest listing it was judged.
    Unhashed { key: String },
    /// A chain's last digest judged.
    Chain { stream: String, position: ChainPosition },
    /// A log file a judged digest listed before it was read.
    Listed { key: String, time_ms: i64 },
    /// A listed log file no longer remembered.
    Unlisted { key: String },
    /// Integrity validation judges digests ending after `ms`.
    IntegritySince { ms: i64 },
}

impl Change {
    /// Makes the change in `cp`.
    pub fn apply(&self, cp: &mut Checkpoint) {
        match self {
            Change::Done { key } => {
                if !cp.is_done(key) {
                    cp.done.insert(key.clone());
                }
            }
            Change::Cursor { prefix, before } => {
                let covered: Vec<String> = cp
                    .done
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Excluded(before.as_str())))
                    .filter(|k| k.starts_with(prefix.as_str()))
                    .cloned()
                    .collect();
                for k in covered {
                    cp.done.remove(&k);
                }
                cp.cursors.insert(prefix.clone(), before.clone());
            }
            Change::Failed { key, file } => {
                cp.failed.insert(key.clone(), file.clone());
            }
            Change::Recovered { key } => {
                cp.failed.remove(key);
            }
            Change::DeleteLater { entry } => {
                cp.pending_delete.insert(entry.clone());
            }
            Change::Deleted { entry } => {
                cp.pending_delete.remove(entry);
            }
            Change::Started { ms } => cp.started_ms = Some(*ms),
            Change::Forget { key } => {
                cp.done.remove(key);
            }
            Change::Hashed { key, hash } => {
                cp.hashes.insert(key.clone(), hash.clone());
            }
            Change::Unhashed { key } => {
                cp.hashes.remove(key);
            }
            Change::Chain { stream, position } => {
                cp.chains.insert(stream.clone(), position.clone());
            }
            Change::Listed { key, time_ms } => {
                cp.listed.insert(key.clone(), *time_ms);
            }
            Change::Unlisted { key } => {
                cp.listed.remove(key);
            }
            Change::IntegritySince { ms } => cp.integrity_since_ms = Some(*ms),
        }
    }
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

/// The checkpoint files in a state directory, locked against a second trailwatch using the same
/// directory for as long as the store lives.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    journal_path: PathBuf,
    /// The journal, open for appending once `load` has replayed it.
    journal: Option<File>,
    /// Lines in the journal.
    journal_lines: usize,
    _lock: File,
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
        // A snapshot being written when a process died is left as a temp file; the directory is
        // ours now (locked), so no other writer owns one. Never read: the snapshot it was to
        // replace is still whole, and the journal still holds its changes.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("checkpoint.json.tmp") {
                    if let Err(error) = std::fs::remove_file(e.path()) {
                        tracing::warn!(path = %e.path().display(), %error, "could not remove a checkpoint temp file left by a crash");
                    }
                }
            }
        }
        Ok(CheckpointStore {
            path: dir.join("checkpoint.json"),
            journal_path: dir.join("journal.ndjson"),
            journal: None,
            journal_lines: 0,
            _lock: lock,
        })
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal's path.
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// Loads the checkpoint for `bucket` (the snapshot plus the journal), or starts an empty one
    /// on a first run. The journal is then open for `record`.
    pub fn load(&mut self, bucket: &str) -> Result<Checkpoint, CheckpointError> {
        let (mut cp, migrated) = match self.read_snapshot(bucket)? {
            Some(found) => found,
            None => {
                // A first run: the snapshot names the bucket before any change is journaled. A
                // journal without a snapshot (the snapshot was removed to start over) is dropped.
                let cp = Checkpoint {
                    version: VERSION,
                    bucket: bucket.to_owned(),
                    ..Checkpoint::default()
                };
                // The journal is emptied first: a crash between the two steps must not leave an
                // old journal to be replayed onto the new snapshot.
                self.open_journal(true)?;
                self.snapshot(&cp)?;
                return Ok(cp);
            }
        };
        self.open_journal(false)?;
        let path = self.journal_path.clone();
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let Some(journal) = self.journal.as_ref() else {
            return Err(io(std::io::Error::other("the journal is not open")));
        };
        let mut bytes = Vec::new();
        (&*journal).read_to_end(&mut bytes).map_err(io)?;
        // Only whole lines were ever acknowledged; a cut-off last line is dropped for good, so
        // that the next line appended does not join it.
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            tracing::warn!(path = %path.display(), bytes = bytes.len() - whole, "dropping a checkpoint journal line cut off by a crash");
            journal.set_len(whole as u64).map_err(io)?;
            journal.sync_all().map_err(io)?;
        }
        let mut lines = 0;
        for (i, line) in bytes[..whole].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            // A version 1 line (left by a crash while migrating) means the same change.
            let change: Change = serde_json::from_slice(line)
                .or_else(|e| v1::line(line).map_err(|_| e))
                .map_err(|e| CheckpointError::Corrupt {
                    path: path.clone(),
                    message: format!("line {}: {e}", i + 1),
                })?;
            change.apply(&mut cp);
            lines += 1;
        }
        self.journal_lines = lines;
        if migrated {
            // Written in this version's form once, so that the old form is read only this time.
            self.snapshot(&cp)?;
            self.open_journal(true)?;
            tracing::info!(path = %self.path.display(), "checkpoint converted from version 1");
        }
        Ok(cp)
    }

    /// The snapshot for `bucket`, and whether it was in the version 1 form; `None` when there is
    /// none yet.
    fn read_snapshot(&self, bucket: &str) -> Result<Option<(Checkpoint, bool)>, CheckpointError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let corrupt = |e: serde_json::Error| CheckpointError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let version = serde_json::from_slice::<Version>(&bytes).map_err(corrupt)?.version;
        let cp: Checkpoint = match version {
            1 => v1::snapshot(&bytes).map_err(corrupt)?,
            _ => serde_json::from_slice(&bytes).map_err(corrupt)?,
        };
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
        Ok(Some((cp, version == 1)))
    }

    /// Opens the journal for reading and appending, emptied when `empty`.
    fn open_journal(&mut self, empty: bool) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.journal_path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.journal_path)
            .map_err(io)?;
        if empty {
            file.set_len(0).map_err(io)?;
            file.sync_all().map_err(io)?;
            self.journal_lines = 0;
        }
        // The journal's directory entry is durable before any commit relies on it.
        if let Some(dir) = self.journal_path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        (&file).seek(SeekFrom::Start(0)).map_err(io)?;
        self.journal = Some(file);
        Ok(())
    }

    /// Makes `changes` durable: appended to the journal and fsynced. `cp` is the checkpoint with
    /// the changes made; it becomes the new snapshot when the journal has grown long enough.
    pub fn record(&mut self, cp: &Checkpoint, changes: &[Change]) -> Result<(), CheckpointError> {
        if changes.is_empty() {
            return Ok(());
        }
        let io = |source| CheckpointError::Io {
            path: self.journal_path.clone(),
            source,
        };
        let mut lines = Vec::with_capacity(changes.len() * 160);
        for change in changes {
            serde_json::to_writer(&mut lines, change).map_err(|e| io(std::io::Error::other(e)))?;
            lines.push(b'\n');
        }
        let journal = match self.journal.as_mut() {
            Some(j) => j,
            None => return Err(io(std::io::Error::other("the checkpoint was not loaded"))),
        };
        let before = journal.metadata().map_err(io)?.len();
        if let Err(e) = journal.write_all(&lines).and_then(|()| journal.sync_data()) {
            // A line cut short by the failure (a full disk) must not stay inside the journal
            // once the next commit appends after it: the changes are recorded again then. If it
            // cannot be cut back, nothing more is appended: it stays the journal's last line,
            // which the next start drops.
            if journal.set_len(before).is_err() {
                self.journal = None;
            }
            return Err(io(e));
        }
        self.journal_lines += changes.len();
        if self.journal_lines >= COMPACT_AFTER {
            self.snapshot(cp)?;
            self.open_journal(true)?;
        }
        Ok(())
    }

    /// Writes `cp` as the snapshot, durably (temp file, fsync, rename, fsync of the directory).
    /// The journal is left as it is: replayed on top, its changes change nothing.
    pub fn snapshot(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension(format!("json.tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(cp).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(key: &str) -> Change {
        Change::Done { key: key.into() }
    }

    /// Applies `changes` and records them, as the poller does.
    fn commit(store: &mut CheckpointStore, cp: &mut Checkpoint, changes: &[Change]) {
        for c in changes {
            c.apply(cp);
        }
        store.record(cp, changes).unwrap();
    }

    #[test]
    fn a_crash_while_the_snapshot_is_written_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        commit(&mut store, &mut cp, &[done("k1"), Change::Started { ms: 7 }]);
        let failed = FailedFile {
            reason: "bad".into(),
            attempts: 1,
            quarantined: false,
            records_done: 120,
        };
        commit(
            &mut store,
            &mut cp,
            &[Change::Failed {
                key: "k2".into(),
                file: failed,
            }],
        );
        // Compaction died midway through the temp file, before its rename: the name the writer
        // uses (its pid), half a snapshot in it, the old snapshot and the whole journal beside.
        let tmp = dir.path().join("checkpoint.json.tmp4242");
        let whole = serde_json::to_vec(&cp).unwrap();
        std::fs::write(&tmp, &whole[..whole.len() / 2]).unwrap();
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        assert!(!tmp.exists(), "the temp file of the crash is removed");
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(reloaded, cp);
        assert_eq!(reloaded.started_ms, Some(7));
        assert!(reloaded.is_done("k1"));
        assert_eq!(reloaded.failed["k2"].records_done, 120);
        commit(&mut store, &mut reloaded, &[done("k3")]);
        drop(store);
        assert!(CheckpointStore::open(dir.path())
            .unwrap()
            .load("b")
            .unwrap()
            .is_done("k3"));
    }

    #[test]
    fn a_crash_after_the_snapshot_before_the_journal_is_emptied_replays_it_harmlessly() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        let failed = FailedFile {
            reason: "bad".into(),
            attempts: 2,
            quarantined: false,
            records_done: 5,
        };
        commit(
            &mut store,
            &mut cp,
            &[
                done("k1"),
                Change::Failed {
                    key: "k2".into(),
                    file: failed,
                },
                Change::Forget { key: "k1".into() },
                done("k4"),
            ],
        );
        // Compaction's first step, the snapshot renamed into place; then the crash, so the
        // journal of the changes it already holds is replayed on top at the next start.
        store.snapshot(&cp).unwrap();
        let journal = std::fs::read_to_string(store.journal_path()).unwrap();
        assert_eq!(journal.lines().count(), 4, "the journal still holds every change");
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(
            reloaded, cp,
            "each change sets a value: replaying it again changes nothing"
        );
        assert!(!reloaded.is_done("k1") && reloaded.is_done("k4"));
        assert_eq!(reloaded.failed["k2"].attempts, 2);
        commit(&mut store, &mut reloaded, &[done("k5")]);
        drop(store);
        let again = CheckpointStore::open(dir.path()).unwrap().load("b").unwrap();
        assert!(again.is_done("k5") && again.is_done("k4") && !again.is_done("k1"));
    }

    #[test]
    fn a_line_cut_off_by_a_crash_is_dropped_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        commit(&mut store, &mut cp, &[done("k1")]);
        let journal = store.journal_path().to_owned();
        drop(store);
        let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(br#"{"op":"done","stream":"AWSLogs/1/Cl"#).unwrap();
        drop(f);

        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(reloaded, cp, "the cut-off line was never acknowledged");
        commit(&mut store, &mut reloaded, &[done("k2")]);
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let again = store.load("b").unwrap();
        assert_eq!(again.done.iter().collect::<Vec<_>>(), ["k1", "k2"]);
    }

    #[test]
    fn a_damaged_line_inside_the_journal_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        commit(&mut store, &mut cp, &[done("k1"), done("k2")]);
        let journal = store.journal_path().to_owned();
        drop(store);
        let text = std::fs::read_to_string(&journal).unwrap().replacen("done", "dome", 1);
        std::fs::write(&journal, text).unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        match store.load("b") {
            Err(CheckpointError::Corrupt { path, message }) => {
                assert_eq!(path, journal);
                assert!(message.starts_with("line 1: unknown variant `dome`"), "{message}");
            }
            other => panic!("expected a corrupt journal, got {other:?}"),
        }
    }

    #[test]
    fn a_long_journal_becomes_the_snapshot_and_replaying_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        let changes: Vec<Change> = (0..COMPACT_AFTER).map(|i| done(&format!("k{i}"))).collect();
        commit(&mut store, &mut cp, &changes[..COMPACT_AFTER - 1]);
        let journal = store.journal_path().to_owned();
        let before = std::fs::read(&journal).unwrap();
        commit(&mut store, &mut cp, &changes[COMPACT_AFTER - 1..]);
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0, "compacted");
        let snapshot: Checkpoint = serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(snapshot, cp);
        // A crash between writing the snapshot and emptying the journal replays the old journal
        // over the new snapshot.
        drop(store);
        std::fs::write(&journal, before).unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        assert_eq!(store.load("b").unwrap(), cp);
    }

    #[test]
    fn a_cursor_covers_the_keys_before_it_and_drops_them_from_the_set() {
        const STREAM: &str = "AWSLogs/1/CloudTrail/us-east-1/";
        let mut cp = Checkpoint::default();
        done(&format!("{STREAM}2024/03/01/a")).apply(&mut cp);
        done(&format!("{STREAM}2024/03/02/b")).apply(&mut cp);
        done("AWSLogs/1/CloudTrail/eu-west-1/2024/03/01/c").apply(&mut cp);
        Change::Cursor {
            prefix: STREAM.into(),
            before: format!("{STREAM}2024/03/02/"),
        }
        .apply(&mut cp);
        assert_eq!(
            cp.done.iter().collect::<Vec<_>>(),
            [
                "AWSLogs/1/CloudTrail/eu-west-1/2024/03/01/c",
                &format!("{STREAM}2024/03/02/b")
            ]
        );
        assert!(cp.is_done(&format!("{STREAM}2024/03/01/a")), "before the cursor");
        assert!(
            cp.is_done(&format!("{STREAM}2024/02/11/old")),
            "before the cursor, never listed"
        );
        assert!(!cp.is_done(&format!("{STREAM}2024/03/02/new")));
        assert!(
            !cp.is_done("AWSLogs/1/CloudTrail/eu-west-1/2024/02/11/old"),
            "another prefix"
        );
        // Done again under the cursor changes nothing.
        done(&format!("{STREAM}2024/03/01/a")).apply(&mut cp);
        assert_eq!(cp.done.len(), 2);
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
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        store.load("a").unwrap();
        assert!(matches!(store.load("b"), Err(CheckpointError::OtherBucket { .. })));
    }
}
