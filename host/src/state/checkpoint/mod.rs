//! The checkpoint: which log files are done, crash-safe on local disk.
//!
//! It lives in the state store, `<state.dir>/state.redb` (redb: an embedded transactional
//! key-value store), with what scoring learned. The `checkpoint` table holds a snapshot, rewritten
//! whole now and then; the `journal` table the changes made since, one row each, so that a commit
//! costs a few hundred bytes however many files and streams the checkpoint knows (an
//! organization trail has thousands of streams). Loading reads the snapshot and replays the
//! journal; after `COMPACT_AFTER` rows the snapshot is rewritten and the journal emptied, in the
//! same transaction. A commit writes its changes and scoring's entries in one transaction,
//! durable when it returns: after a `kill -9` at any instant, either both are there or neither.
//!
//! A file is recorded only after every event of it was acknowledged by the output, so after a
//! restart nothing is lost and at most the files in flight are emitted again, and scored again
//! against baselines that never saw them.
//!
//! A state directory of the earlier form (`checkpoint.json` and `journal.ndjson`, `files`) is
//! moved into the state store once, at the first load.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::score::state::{self as scoring, Write as ScoreWrite};

pub mod files;
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
    /// The state store failed.
    #[error(transparent)]
    State(#[from] crate::score::state::StateError),
    /// The checkpoint belongs to another bucket.
    #[error("checkpoint {path} belongs to bucket {found}, not {expected}; use another state dir")]
    OtherBucket {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// Creates `dir` if needed and locks it against a second trailwatch for as long as the file
/// returned lives.
pub fn lock(dir: &Path) -> Result<File, CheckpointError> {
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
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(CheckpointError::Locked { dir: dir.to_owned() }),
        Err(std::fs::TryLockError::Error(source)) => Err(CheckpointError::Io {
            path: lock_path,
            source,
        }),
    }
}

/// The snapshot, under the key `snapshot`.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoint");
/// The changes since the snapshot, in order.
const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");

/// The checkpoint in a state directory's state store, locked against a second trailwatch using
/// the same directory for as long as the store lives.
pub struct CheckpointStore {
    dir: PathBuf,
    path: PathBuf,
    db: Arc<Database>,
    /// Rows in the journal, and the number of the next.
    journal_rows: u64,
    next_row: u64,
    _lock: File,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CheckpointStore {
    /// The store in `dir` (created if needed); fails when another process holds it.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let lock = lock(dir)?;
        let db = scoring::open_database(dir)?;
        Ok(CheckpointStore {
            dir: dir.to_owned(),
            path: dir.join("state.redb"),
            db,
            journal_rows: 0,
            next_row: 0,
            _lock: lock,
        })
    }

    /// The state store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state store, which scoring's entries share (committed with the checkpoint).
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    fn err(&self, e: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::State(crate::score::state::StateError::new(&self.path, e))
    }

    fn corrupt(&self, message: String) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    /// Loads the checkpoint for `bucket` (the snapshot plus the journal), or starts an empty one
    /// on a first run, or moves a state directory of the earlier form in.
    pub fn load(&mut self, bucket: &str) -> Result<Checkpoint, CheckpointError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let snapshot = match read.open_table(SNAPSHOT) {
            Ok(t) => t.get("snapshot").map_err(|e| self.err(e))?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.err(e)),
        };
        let Some(bytes) = snapshot else {
            drop(read);
            return self.first_load(bucket);
        };
        let mut cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(format!("snapshot: {e}")))?;
        if cp.version != VERSION {
            return Err(self.corrupt(format!("version {} (this build reads {VERSION})", cp.version)));
        }
        if cp.bucket != bucket {
            return Err(CheckpointError::OtherBucket {
                path: self.path.clone(),
                found: cp.bucket,
                expected: bucket.to_owned(),
            });
        }
        let (mut rows, mut next) = (0, 0);
        match read.open_table(JOURNAL) {
            Ok(journal) => {
                for row in journal.iter().map_err(|e| self.err(e))? {
                    let (n, line) = row.map_err(|e| self.err(e))?;
                    let change: Change = serde_json::from_slice(line.value())
                        .map_err(|e| self.corrupt(format!("journal row {}: {e}", n.value())))?;
                    change.apply(&mut cp);
                    rows += 1;
                    next = n.value() + 1;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.err(e)),
        }
        self.journal_rows = rows;
        self.next_row = next;
        Ok(cp)
    }

    /// The checkpoint the store holds, whatever its bucket; `None` when it holds none yet.
    pub fn load_existing(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        #[derive(Deserialize)]
        struct Bucket {
            bucket: String,
        }
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let bucket = match read.open_table(SNAPSHOT) {
            Ok(t) => match t.get("snapshot").map_err(|e| self.err(e))? {
                Some(v) => {
                    serde_json::from_slice::<Bucket>(v.value())
                        .map_err(|e| self.corrupt(format!("snapshot: {e}")))?
                        .bucket
                }
                None => return Ok(None),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        drop(read);
        self.load(&bucket).map(Some)
    }

    /// The checkpoint of a directory without a snapshot in the state store: the files of the
    /// earlier form moved in, or a new one.
    fn first_load(&mut self, bucket: &str) -> Result<Checkpoint, CheckpointError> {
        let legacy = self.dir.join("checkpoint.json");
        let cp = if legacy.exists() {
            let cp = files::FileStore::unlocked(&self.dir).load(bucket)?;
            tracing::info!(from = %legacy.display(), to = %self.path.display(), "checkpoint moved into the state store");
            cp
        } else {
            Checkpoint {
                version: VERSION,
                bucket: bucket.to_owned(),
                ..Checkpoint::default()
            }
        };
        self.snapshot(&cp)?;
        // Moved aside only once the state store has it: a crash before leaves them to move again.
        for name in ["checkpoint.json", "journal.ndjson"] {
            let from = self.dir.join(name);
            if from.exists() {
                let to = self.dir.join(format!("{name}.moved-to-state-redb"));
                std::fs::rename(&from, &to).map_err(|source| CheckpointError::Io { path: from, source })?;
            }
        }
        Ok(cp)
    }

    /// Makes `changes` durable.
    pub fn record(&mut self, cp: &Checkpoint, changes: &[Change]) -> Result<(), CheckpointError> {
        self.record_with(cp, changes, &[], &[])
    }

    /// Makes `changes`, scoring's `writes` and the report's in one transaction. `cp` is the
    /// checkpoint with the changes made; it becomes the new snapshot when the journal has grown
    /// long enough.
    pub fn record_with(
        &mut self,
        cp: &Checkpoint,
        changes: &[Change],
        writes: &[ScoreWrite],
        report: &[ScoreWrite],
    ) -> Result<(), CheckpointError> {
        if changes.is_empty() && writes.is_empty() && report.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let compact = self.journal_rows + changes.len() as u64 >= COMPACT_AFTER as u64;
        {
            if compact {
                let bytes = serde_json::to_vec(cp).map_err(|e| self.err(e))?;
                let mut t = tx.open_table(SNAPSHOT).map_err(|e| self.err(e))?;
                t.insert("snapshot", bytes.as_slice()).map_err(|e| self.err(e))?;
                drop(t);
                tx.delete_table(JOURNAL).map_err(|e| self.err(e))?;
            } else {
                let mut journal = tx.open_table(JOURNAL).map_err(|e| self.err(e))?;
                for (i, change) in changes.iter().enumerate() {
                    let line = serde_json::to_vec(change).map_err(|e| self.err(e))?;
                    journal
                        .insert(self.next_row + i as u64, line.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            scoring::write_all(&tx, scoring::TABLE, writes).map_err(|e| self.err(e))?;
            scoring::write_all(&tx, scoring::REPORT_TABLE, report).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        if compact {
            self.journal_rows = 0;
            self.next_row = 0;
        } else {
            self.journal_rows += changes.len() as u64;
            self.next_row += changes.len() as u64;
        }
        Ok(())
    }

    /// Writes `cp` as the snapshot and empties the journal, in one transaction.
    pub fn snapshot(&mut self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let bytes = serde_json::to_vec(cp).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(SNAPSHOT).map_err(|e| self.err(e))?;
            t.insert("snapshot", bytes.as_slice()).map_err(|e| self.err(e))?;
        }
        tx.delete_table(JOURNAL).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.journal_rows = 0;
        self.next_row = 0;
        Ok(())
    }

    /// Rows in the journal (for tests).
    pub fn journal_rows(&self) -> Result<u64, CheckpointError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        match read.open_table(JOURNAL) {
            Ok(t) => t.len().map_err(|e| self.err(e)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.err(e)),
        }
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
    fn commits_survive_a_reopen_with_the_scoring_entries_written_with_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = CheckpointStore::open(dir.path()).unwrap();
            let mut cp = store.load("b").unwrap();
            done("k1").apply(&mut cp);
            store
                .record_with(
                    &cp,
                    &[done("k1")],
                    &[("i/alice".into(), Some(b"{}".to_vec()))],
                    &[("a".into(), Some(b"[]".to_vec()))],
                )
                .unwrap();
            commit(&mut store, &mut cp, &[done("k2"), Change::Started { ms: 7 }]);
            assert_eq!(store.journal_rows().unwrap(), 3);
        }
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let cp = store.load("b").unwrap();
        assert!(cp.is_done("k1") && cp.is_done("k2"));
        assert_eq!(cp.started_ms, Some(7));
        let state =
            crate::score::state::ScoreState::on_disk(store.database().clone(), store.path().to_owned()).unwrap();
        let got = state.get(&["i/alice".into(), "i/bob".into()]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, b"{}");
        let report = state.report().unwrap();
        assert_eq!(report.get(&["a".into()]).unwrap()[0].value, b"[]");
        assert!(
            report.get(&["i/alice".into()]).unwrap().is_empty(),
            "each table holds its own"
        );
        drop((state, report));
        // Appending goes on after the rows replayed.
        let mut cp = cp;
        commit(&mut store, &mut cp, &[done("k3")]);
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        assert!(store.load("b").unwrap().is_done("k3"));
    }

    #[test]
    fn a_long_journal_becomes_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        let changes: Vec<Change> = (0..COMPACT_AFTER).map(|i| done(&format!("k{i}"))).collect();
        commit(&mut store, &mut cp, &changes);
        assert_eq!(store.journal_rows().unwrap(), 0);
        commit(&mut store, &mut cp, &[done("last")]);
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let loaded = store.load("b").unwrap();
        assert_eq!(loaded, cp);
        assert_eq!(store.journal_rows().unwrap(), 1);
    }

    #[test]
    fn a_directory_of_the_earlier_form_is_moved_in_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut old = files::FileStore::open(dir.path()).unwrap();
            let mut cp = old.load("b").unwrap();
            done("old").apply(&mut cp);
            old.record(&cp, &[done("old")]).unwrap();
        }
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        assert!(store.load("b").unwrap().is_done("old"));
        assert!(!dir.path().join("checkpoint.json").exists());
        assert!(dir.path().join("checkpoint.json.moved-to-state-redb").exists());
        drop(store);
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        assert!(store.load("b").unwrap().is_done("old"));
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused_while_the_first_lives() {
        let dir = tempfile::tempdir().unwrap();
        let _first = CheckpointStore::open(dir.path()).unwrap();
        let second = CheckpointStore::open(dir.path()).unwrap_err();
        assert!(matches!(second, CheckpointError::Locked { .. }), "{second}");
    }

    #[test]
    fn another_buckets_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = CheckpointStore::open(dir.path()).unwrap();
            store.load("b").unwrap();
        }
        let mut store = CheckpointStore::open(dir.path()).unwrap();
        let e = store.load("other").unwrap_err();
        assert!(matches!(e, CheckpointError::OtherBucket { .. }), "{e}");
    }
}
