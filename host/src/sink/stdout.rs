//! Standard output: NDJSON through a 64 KiB buffer, flushed at each acknowledgement; what reads
//! the pipe (the agent) takes over from there. A batch larger than the buffer (a rendered batch
//! is ~360 KB) is written from its own memory rather than copied into the buffer first.

use std::io::Write;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Batch, Sink, SinkError};

/// Writes events to standard output.
pub struct StdoutSink {
    name: String,
    out: std::io::BufWriter<std::io::Stdout>,
    pending: Option<u64>,
}

impl StdoutSink {
    /// A sink named `name`.
    pub fn new(name: String) -> Self {
        StdoutSink {
            name,
            out: std::io::BufWriter::with_capacity(64 << 10, std::io::stdout()),
            pending: None,
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, batch: Arc<Batch>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            self.pending.get_or_insert(batch.seq);
            tokio::task::block_in_place(|| self.out.write_all(&batch.bytes))
                .map_err(|e| SinkError::Io(format!("standard output: {e}")))
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            tokio::task::block_in_place(|| self.out.flush())
                .map_err(|e| SinkError::Io(format!("standard output: {e}")))?;
            self.pending = None;
            Ok(())
        })
    }

    fn oldest_pending(&self) -> Option<u64> {
        self.pending
    }
}
