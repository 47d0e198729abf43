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

/// A buffered output for `run`: `Buffered<File>` appends to a file, `Buffered<Stdout>` writes to
/// standard output.
pub struct Buffered<W: Write>(BufWriter<W>);

impl<W: Write> Buffered<W> {
    /// Writes to `inner` through a 1 MiB buffer.
    pub fn new(inner: W) -> Self {
        Buffered(BufWriter::with_capacity(1 << 20, inner))
    }
}

impl<W: Write> Write for Buffered<W> {
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

/// A file is flushed and fsynced at each acknowledgement, so that a crash of the machine (not
/// only of trailwatch) loses no event the checkpoint counts as written.
impl Sink for Buffered<File> {
    fn acknowledge(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_data()
    }
}

/// Standard output is flushed at each acknowledgement; what reads it (a pipe to the agent) takes
/// over from there.
impl Sink for Buffered<io::Stdout> {
    fn acknowledge(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
