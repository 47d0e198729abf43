//! The checkpoint as it was kept before the state store: `checkpoint.json`, a snapshot
//! rewritten whole now and then (temp file, fsync, rename, fsync of the directory), and
//! `journal.ndjson`, the changes since, one JSON line each, appended and fsynced at every commit.
//! A line cut short at the end of the journal was never acknowledged and is dropped.
//!
//! [`super::CheckpointStore`] reads a state directory of this form once and moves it into the
//! state store; this reader stays for that.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{v1, Change, Checkpoint, CheckpointError, COMPACT_AFTER, VERSION};

/// The checkpoint files in a state directory, locked against a second trailwatch using the same
/// directory for as long as the store lives (or unlocked, when the caller holds the lock).
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    journal_path: PathBuf,
    /// The journal, open for appending once `load` has replayed it.
    journal: Option<File>,
    /// Lines in the journal.
    journal_lines: usize,
    _lock: Option<File>,
}

impl FileStore {
    /// The store in `dir` (created if needed); fails when another process holds it.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let lock = super::lock(dir)?;
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
        Ok(FileStore {
            path: dir.join("checkpoint.json"),
            journal_path: dir.join("journal.ndjson"),
            journal: None,
            journal_lines: 0,
            _lock: Some(lock),
        })
    }

    /// The files in `dir`, for a caller that holds the directory's lock (the state store,
    /// moving them into itself).
    pub fn unlocked(dir: &Path) -> Self {
        FileStore {
            path: dir.join("checkpoint.json"),
            journal_path: dir.join("journal.ndjson"),
            journal: None,
            journal_lines: 0,
            _lock: None,
        }
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
    use super::super::FailedFile;
    use super::*;

    fn done(key: &str) -> Change {
        Change::Done { key: key.into() }
    }

    /// Applies `changes` and records them, as the poller does.
    fn commit(store: &mut FileStore, cp: &mut Checkpoint, changes: &[Change]) {
        for c in changes {
            c.apply(cp);
        }
        store.record(cp, changes).unwrap();
    }

    #[test]
    fn a_crash_while_the_snapshot_is_written_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
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
        let mut store = FileStore::open(dir.path()).unwrap();
        assert!(!tmp.exists(), "the temp file of the crash is removed");
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(reloaded, cp);
        assert_eq!(reloaded.started_ms, Some(7));
        assert!(reloaded.is_done("k1"));
        assert_eq!(reloaded.failed["k2"].records_done, 120);
        commit(&mut store, &mut reloaded, &[done("k3")]);
        drop(store);
        assert!(FileStore::open(dir.path()).unwrap().load("b").unwrap().is_done("k3"));
    }

    #[test]
    fn a_crash_after_the_snapshot_before_the_journal_is_emptied_replays_it_harmlessly() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
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
        let mut store = FileStore::open(dir.path()).unwrap();
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(
            reloaded, cp,
            "each change sets a value: replaying it again changes nothing"
        );
        assert!(!reloaded.is_done("k1") && reloaded.is_done("k4"));
        assert_eq!(reloaded.failed["k2"].attempts, 2);
        commit(&mut store, &mut reloaded, &[done("k5")]);
        drop(store);
        let again = FileStore::open(dir.path()).unwrap().load("b").unwrap();
        assert!(again.is_done("k5") && again.is_done("k4") && !again.is_done("k1"));
    }

    #[test]
    fn a_line_cut_off_by_a_crash_is_dropped_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        commit(&mut store, &mut cp, &[done("k1")]);
        let journal = store.journal_path().to_owned();
        drop(store);
        let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(br#"{"op":"done","stream":"AWSLogs/1/Cl"#).unwrap();
        drop(f);

        let mut store = FileStore::open(dir.path()).unwrap();
        let mut reloaded = store.load("b").unwrap();
        assert_eq!(reloaded, cp, "the cut-off line was never acknowledged");
        commit(&mut store, &mut reloaded, &[done("k2")]);
        drop(store);
        let mut store = FileStore::open(dir.path()).unwrap();
        let again = store.load("b").unwrap();
        assert_eq!(again.done.iter().collect::<Vec<_>>(), ["k1", "k2"]);
    }

    #[test]
    fn a_damaged_line_inside_the_journal_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        let mut cp = store.load("b").unwrap();
        commit(&mut store, &mut cp, &[done("k1"), done("k2")]);
        let journal = store.journal_path().to_owned();
        drop(store);
        let text = std::fs::read_to_string(&journal).unwrap().replacen("done", "dome", 1);
        std::fs::write(&journal, text).unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
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
        let mut store = FileStore::open(dir.path()).unwrap();
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
        let mut store = FileStore::open(dir.path()).unwrap();
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
        let first = FileStore::open(dir.path()).unwrap();
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(CheckpointError::Locked { .. })
        ));
        drop(first);
        FileStore::open(dir.path()).unwrap();
    }

    #[test]
    fn another_buckets_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        store.load("a").unwrap();
        assert!(matches!(store.load("b"), Err(CheckpointError::OtherBucket { .. })));
    }
}
