//! An NDJSON file, appended to, fsynced before an acknowledgement, rotated by size.
//!
//! Rotation happens only right after an fsync, so a rotated file is complete and durable:
//! `events.ndjson` becomes `events.ndjson.1`, `.1` becomes `.2`, …, and files past `keep_files`
//! are removed. Agents that tail files (Vector's `file` source, Fluent Bit's `tail`) follow
//! renames like these.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Batch, Sink, SinkError};

/// Appends events to a file.
pub struct FileSink {
    name: String,
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes in the current file.
    size: u64,
    /// Rotate once the file reaches this size; `None`: never.
    rotate_bytes: Option<u64>,
    keep_files: u32,
    /// fsync before acknowledging (off for `replay`, which has no checkpoint to protect).
    fsync: bool,
    pending: Option<u64>,
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl FileSink {
    /// Opens (creates, appends to) `path`.
    pub fn open(
        name: String,
        path: PathBuf,
        rotate_bytes: Option<u64>,
        keep_files: u32,
        fsync: bool,
    ) -> std::io::Result<Self> {
        let (file, size) = open(&path)?;
        Ok(FileSink {
            name,
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            size,
            rotate_bytes,
            keep_files,
            fsync,
            pending: None,
        })
    }

    /// Creates `path` anew (emptied), written without fsync: `replay --output`.
    pub fn create(name: String, path: PathBuf) -> std::io::Result<Self> {
        std::fs::File::create(&path)?;
        Self::open(name, path, None, 0, false)
    }

    fn io(&self, what: &str, e: std::io::Error) -> SinkError {
        SinkError::Io(format!("{what} {}: {e}", self.path.display()))
    }

    /// `path.N`.
    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Shifts the rotated files up by one, drops the oldest, and starts a new file.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.keep_files == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let oldest = self.numbered(self.keep_files);
            if oldest.exists() {
                std::fs::remove_file(&oldest)?;
            }
            for n in (1..self.keep_files).rev() {
                let from = self.numbered(n);
                if from.exists() {
                    std::fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        let (file, size) = open(&self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        self.out = BufWriter::with_capacity(1 << 20, file);
        self.size = size;
        tracing::info!(sink = %self.name, path = %self.path.display(), "output file rotated");
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.io("writing", e))?;
        if self.fsync {
            self.out.get_ref().sync_data().map_err(|e| self.io("syncing", e))?;
        }
        self.pending = None;
        if self.rotate_bytes.is_some_and(|limit| self.size >= limit) {
            self.rotate().map_err(|e| self.io("rotating", e))?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, batch: Arc<Batch>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            tokio::task::block_in_place(|| {
                self.pending.get_or_insert(batch.seq);
                self.out.write_all(&batch.bytes).map_err(|e| self.io("writing", e))?;
                self.size += batch.bytes.len() as u64;
                // A full file is closed at the next batch boundary (it was complete and durable
                // only once synced).
                if self.rotate_bytes.is_some_and(|limit| self.size >= limit) {
                    self.sync()?;
                }
                Ok(())
            })
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move { tokio::task::block_in_place(|| self.sync()) })
    }

    fn oldest_pending(&self) -> Option<u64> {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, text: &str) -> Arc<Batch> {
        let bytes = text.as_bytes().to_vec();
        let ends = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i as u32 + 1)
            .collect();
        Arc::new(Batch {
            seq,
            bytes,
            ends,
            permit: None,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_full_file_is_rotated_after_a_sync_and_only_keep_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let mut sink = FileSink::open("file#0".into(), path.clone(), Some(10), 2, true).unwrap();
        for i in 0..5 {
            sink.send(batch(i + 1, &format!("{{\"n\":{i}}}\n"))).await.unwrap();
        }
        sink.flush().await.unwrap();
        assert_eq!(sink.oldest_pending(), None);
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        // Each 8-byte line then the next one fill a file past 10 bytes: every file holds two.
        assert_eq!(read(dir.path().join("events.ndjson.2")), "{\"n\":0}\n{\"n\":1}\n");
        assert_eq!(read(dir.path().join("events.ndjson.1")), "{\"n\":2}\n{\"n\":3}\n");
        assert_eq!(read(path), "{\"n\":4}\n");
        assert!(!dir.path().join("events.ndjson.3").exists());
        let mut more = FileSink::open("file#0".into(), dir.path().join("events.ndjson"), Some(10), 2, true).unwrap();
        more.send(batch(9, "{\"n\":5}\n")).await.unwrap();
        more.flush().await.unwrap();
        assert_eq!(
            read(dir.path().join("events.ndjson.2")),
            "{\"n\":2}\n{\"n\":3}\n",
            "the oldest file went"
        );
    }
}
