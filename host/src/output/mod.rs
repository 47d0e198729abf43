//! Output formats for normalized events, and where they go.

pub mod ndjson;

use std::fs::File;
use std::io::{self, BufWriter, Write};

/// Where `run` writes events. `acknowledge` is called after each log file's events and before the
/// file is recorded as done in the checkpoint: when it returns, the events must survive what the
/// checkpoint survives.
pub trait Sink: Write + Send {
    /// Makes everything written so far durable.
    fn acknowledge(&mut self) -> io::Result<()>;
}

/// An in-memory sink (tests, embedding): written is durable enough.
impl Sink for Vec<u8> {
    fn acknowledge(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file appended to: flushed and fsynced at each acknowledgement, so that a crash of the
/// machine (not only of trailwatch) loses no event the checkpoint counts as written.
pub struct FileSink(BufWriter<File>);

impl FileSink {
    /// Appends to `file`.
    pub fn new(file: File) -> Self {
        FileSink(BufWriter::with_capacity(1 << 20, file))
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for FileSink {
    fn acknowledge(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_data()
    }
}

/// Standard output: flushed at each acknowledgement; what reads it (a pipe to the agent) takes
/// over from there.
pub struct StdoutSink(BufWriter<io::Stdout>);

impl StdoutSink {
    /// Writes to this process's standard output.
    pub fn new() -> Self {
        StdoutSink(BufWriter::with_capacity(1 << 20, io::stdout()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for StdoutSink {
    fn acknowledge(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
