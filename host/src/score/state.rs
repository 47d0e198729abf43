//! Where scoring's entries live: committed entries in the state store (redb) or, for a
//! `replay` without `--state-dir`, in memory; in front of them, what files not yet committed
//! changed.
//!
//! The writer scores files in order, ahead of their commit: a file's scores see every earlier
//! file's writes, committed or not (`pending`). A file's writes (`delta`) are made durable with
//! its commit, after every sink acknowledged its events, and only then leave `pending`. A cycle
//! that ends with files not acknowledged drops what they wrote: they are read and scored again,
//! so that no event is counted twice in a baseline, nor missed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::runtime::bindings::scoring::Entry;

/// A table of entries: key → bytes.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// Scoring's entries in the state store: key → the plugin's bytes.
pub const TABLE: Table = TableDefinition::new("scoring");

/// What the report shows, gathered from the scores (`crate::report`): key → JSON.
pub const REPORT_TABLE: Table = TableDefinition::new("report");

/// An entry to store (`Some`) or remove (`None`).
pub type Write = (String, Option<Vec<u8>>);

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StateError {
    pub path: PathBuf,
    pub message: String,
}

impl StateError {
    pub fn new(path: &Path, e: impl std::fmt::Display) -> Self {
        StateError {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

/// The state store's database file in `dir`, created when new.
pub fn open_database(dir: &Path) -> Result<Arc<Database>, StateError> {
    std::fs::create_dir_all(dir).map_err(|e| StateError::new(dir, e))?;
    let path = dir.join("state.redb");
    let db = Database::create(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StateError::new(
            &path,
            "in use by another trailwatch; give each instance its own state directory",
        ),
        e => StateError::new(&path, e),
    })?;
    Ok(Arc::new(db))
}

/// Committed entries: on disk or in memory.
enum Committed {
    Disk { db: Arc<Database>, path: PathBuf },
    Memory(BTreeMap<String, Vec<u8>>),
}

/// Entries of one table (scoring's, or the report's), committed and pending.
pub struct ScoreState {
    table: Table,
    committed: Committed,
    /// The latest value of each key some file not yet committed wrote, with that file.
    pending: HashMap<String, (u64, Option<Vec<u8>>)>,
    /// Each uncommitted file's writes.
    deltas: BTreeMap<u64, Vec<Write>>,
    /// Moves each time entries change other than by staging writes (pending ones dropped): a
    /// scoring instance that remembers entries forgets them then.
    generation: u64,
}

impl ScoreState {
    /// Entries kept in memory only.
    pub fn in_memory() -> Self {
        ScoreState {
            table: TABLE,
            committed: Committed::Memory(BTreeMap::new()),
            pending: HashMap::new(),
            deltas: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Entries in the state store `db` (at `path`, for messages).
    pub fn on_disk(db: Arc<Database>, path: PathBuf) -> Result<Self, StateError> {
        Self::on_disk_table(db, path, TABLE)
    }

    fn on_disk_table(db: Arc<Database>, path: PathBuf, table: Table) -> Result<Self, StateError> {
        // The table exists from the start, so that reads need not tell "no table" apart.
        let tx = db.begin_write().map_err(|e| StateError::new(&path, e))?;
        tx.open_table(table).map_err(|e| StateError::new(&path, e))?;
        tx.commit().map_err(|e| StateError::new(&path, e))?;
        Ok(ScoreState {
            table,
            committed: Committed::Disk { db, path },
            pending: HashMap::new(),
            deltas: BTreeMap::new(),
            generation: 0,
        })
    }

    /// The report's entries, where these are: the same store, or memory.
    pub fn report(&self) -> Result<Self, StateError> {
        match &self.committed {
            Committed::Disk { db, path } => Self::on_disk_table(db.clone(), path.clone(), REPORT_TABLE),
            Committed::Memory(_) => Ok(ScoreState {
                table: REPORT_TABLE,
                ..Self::in_memory()
            }),
        }
    }

    /// Moves whenever entries change other than by [`ScoreState::stage`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The table its entries are in.
    pub fn table(&self) -> Table {
        self.table
    }

    /// The database, when on disk (to commit with the checkpoint).
    pub fn database(&self) -> Option<&Arc<Database>> {
        match &self.committed {
            Committed::Disk { db, .. } => Some(db),
            Committed::Memory(_) => None,
        }
    }

    /// The entries under `keys` that exist, pending values first.
    pub fn get(&self, keys: &[String]) -> Result<Vec<Entry>, StateError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut rest = Vec::new();
        for key in keys {
            match self.pending.get(key) {
                Some((_, Some(v))) => out.push(Entry {
                    key: key.clone(),
                    value: v.clone(),
                }),
                Some((_, None)) => {}
                None => rest.push(key),
            }
        }
        match &self.committed {
            Committed::Memory(m) => {
                for key in rest {
                    if let Some(v) = m.get(key.as_str()) {
                        out.push(Entry {
                            key: key.clone(),
                            value: v.clone(),
                        });
                    }
                }
            }
            Committed::Disk { db, path } => {
                if !rest.is_empty() {
                    let err = |e: &dyn std::fmt::Display| StateError::new(path, e);
                    let tx = db.begin_read().map_err(|e| err(&e))?;
                    let table = tx.open_table(self.table).map_err(|e| err(&e))?;
                    for key in rest {
                        if let Some(v) = table.get(key.as_str()).map_err(|e| err(&e))? {
                            out.push(Entry {
                                key: key.clone(),
                                value: v.value().to_vec(),
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Up to `max` entries whose key starts with `prefix`, after `after` in key order, as the
    /// scores see them (pending values
    /// in place of committed ones, pending removals left out, keys only pending included): a
    /// page for the sweep, which must not depend on what happens to be committed yet. Also the
    /// key to go on after when more may follow.
    pub fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Entry>, Option<String>), StateError> {
        let bound = (
            after.map_or(std::ops::Bound::Included(prefix), std::ops::Bound::Excluded),
            std::ops::Bound::Unbounded,
        );
        let mut merged: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        match &self.committed {
            Committed::Memory(m) => {
                for (k, v) in m
                    .range::<str, _>(bound)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .take(max)
                {
                    merged.insert(k.clone(), Some(v.clone()));
                }
            }
            Committed::Disk { db, path } => {
                let err = |e: &dyn std::fmt::Display| StateError::new(path, e);
                let tx = db.begin_read().map_err(|e| err(&e))?;
                let table = tx.open_table(self.table).map_err(|e| err(&e))?;
                for item in table.range::<&str>(bound).map_err(|e| err(&e))?.take(max) {
                    let (k, v) = item.map_err(|e| err(&e))?;
                    if !k.value().starts_with(prefix) {
                        break;
                    }
                    merged.insert(k.value().to_owned(), Some(v.value().to_vec()));
                }
            }
        }
        let in_range = |k: &str| k.starts_with(prefix) && after.is_none_or(|a| k > a);
        for (k, (_, v)) in &self.pending {
            if in_range(k) {
                merged.insert(k.clone(), v.clone());
            }
        }
        // The first `max` keys of both, in order; removed ones count as keys passed.
        let taken: Vec<(String, Option<Vec<u8>>)> = merged.into_iter().take(max).collect();
        let next = if taken.len() == max {
            taken.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let out = taken
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| Entry { key, value }))
            .collect();
        Ok((out, next))
    }

    /// Notes `writes` made by file `file` (scored, not yet committed).
    pub fn stage(&mut self, file: u64, writes: Vec<Write>) {
        for (k, v) in &writes {
            self.pending.insert(k.clone(), (file, v.clone()));
        }
        self.deltas.entry(file).or_default().extend(writes);
    }

    /// Notes again `writes` of file `file`, handed over to commit and not yet committed, after
    /// [`ScoreState::abandon`] dropped them with the rest.
    pub fn restage(&mut self, file: u64, writes: &[Write]) {
        for (k, v) in writes {
            self.pending.insert(k.clone(), (file, v.clone()));
        }
    }

    /// The writes of file `file`, to commit with it.
    pub fn take(&mut self, file: u64) -> Vec<Write> {
        self.deltas.remove(&file).unwrap_or_default()
    }

    /// `writes` of file `file` are durable: they leave `pending` unless a later file wrote the
    /// same keys since. In memory, they become the committed entries.
    pub fn committed(&mut self, file: u64, writes: Vec<Write>) {
        for (k, v) in writes {
            if self.pending.get(&k).is_some_and(|(f, _)| *f == file) {
                self.pending.remove(&k);
            }
            if let Committed::Memory(m) = &mut self.committed {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
        }
    }

    /// Commits `writes` of file `file` to the store on its own (no checkpoint: `replay`).
    pub fn commit_alone(&mut self, file: u64, writes: Vec<Write>) -> Result<(), StateError> {
        if let Committed::Disk { db, path } = &self.committed {
            let err = |e: &dyn std::fmt::Display| StateError::new(path, e);
            let tx = db.begin_write().map_err(|e| err(&e))?;
            write_all(&tx, self.table, &writes).map_err(|e| err(&e))?;
            tx.commit().map_err(|e| err(&e))?;
        }
        self.committed(file, writes);
        Ok(())
    }

    /// Drops what files not committed wrote: they are scored again when read again. Whether
    /// there was any.
    pub fn abandon(&mut self) -> bool {
        let any = !self.pending.is_empty() || !self.deltas.is_empty();
        self.pending.clear();
        self.deltas.clear();
        if any {
            self.generation += 1;
        }
        any
    }
}

/// Writes `writes` into `table` within `tx` (the checkpoint's transaction, or one of its own).
pub fn write_all(tx: &redb::WriteTransaction, table: Table, writes: &[Write]) -> Result<(), redb::Error> {
    let mut table = tx.open_table(table)?;
    for (k, v) in writes {
        match v {
            Some(v) => {
                table.insert(k.as_str(), v.as_slice())?;
            }
            None => {
                table.remove(k.as_str())?;
            }
        }
    }
    Ok(())
}
