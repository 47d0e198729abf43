//! Where events go: every configured sink gets every event, and says when it has durably handed
//! them over.
//!
//! # Layout
//! - `stdout`, `file` (rotation by size), `http` (batching and delivery, NDJSON), `otlp` (the
//!   OTLP/HTTP JSON encoding of the same sink),
//!   `memory` (tests and embedding): one file per sink, each implementing [`Sink`].
//! - `retry`: capped, jittered backoff and `Retry-After`, shared by the HTTP sinks.
//! - `runner`: drives one sink for a cycle: takes batches in order, flushes when the queue runs
//!   dry or the sink's delay is up, and acknowledges files whose events it handed over.
//!
//! The writer sends each sink its own queue of [`Message`]s; batches are shared (`Arc`), so a
//! batch sent to three sinks is held once, and the bytes it holds count against the pipeline's
//! in-flight cap until the last sink lets go of it.

pub mod file;
pub mod http;
pub mod memory;
pub mod otlp;
pub mod retry;
pub mod runner;
pub mod stdout;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// NDJSON lines of one file, as the writer hands them to every sink.
pub struct Batch {
    /// Position among every batch of the run: sinks take batches in this order.
    pub seq: u64,
    /// The lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// The end offset (exclusive, after the `\n`) of each line in `bytes`.
    pub ends: Vec<u32>,
    /// Holds the batch's share of the in-flight cap until every sink has let go.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Batch {
    /// Lines `from..to` as one slice of `bytes`.
    pub fn lines(&self, from: usize, to: usize) -> &[u8] {
        let start = if from == 0 { 0 } else { self.ends[from - 1] as usize };
        let end = if to == 0 { 0 } else { self.ends[to - 1] as usize };
        &self.bytes[start..end]
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// What a sink's queue carries, in order.
pub enum Message {
    /// Events to hand over.
    Events(Arc<Batch>),
    /// Every event of file `file` was sent: acknowledge it once every batch up to `through` is
    /// handed over (`through` 0: the file had none).
    EndOfFile { file: u64, through: u64 },
}

/// Why a sink could not hand events over. Either way the files it holds are not acknowledged:
/// they stay out of the checkpoint and are read again, so nothing is lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The receiver refused the data for good (a 4xx other than 408/429); what it said is kept.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Delivery kept failing (connection errors, 5xx, 429) past the retries allowed.
    #[error("failing: {0}")]
    Failing(String),
    /// A local write failed (disk full, closed pipe).
    #[error("write failed: {0}")]
    Io(String),
}

/// One destination of events.
pub trait Sink: Send {
    /// The sink's name in logs and metrics (`type` and position, or its configured `name`).
    fn name(&self) -> &str;
    /// Takes a batch. May hand over what it holds first (a full HTTP request), and waits while
    /// it does: that wait is the backpressure that slows reading.
    fn send(&mut self, batch: Arc<Batch>) -> BoxFuture<'_, Result<(), SinkError>>;
    /// Hands over everything taken so far, durably (fsync for a file, a 2xx for HTTP).
    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>>;
    /// The `seq` of the oldest batch taken and not yet handed over, if any.
    fn oldest_pending(&self) -> Option<u64>;
    /// Longest a file's acknowledgement may wait for a flush while more batches keep coming.
    fn max_delay(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// Drops what it holds and has not handed over, after a failure: those files are not
    /// acknowledged and are sent again.
    fn reset(&mut self) {}
}

/// Sink name for logs: its configured name, else `<type>#<position>`.
pub fn sink_name(kind: &str, index: usize, name: Option<&str>) -> String {
    name.map(str::to_owned).unwrap_or_else(|| format!("{kind}#{index}"))
}

/// The sinks `configs` ask for (numbered from 0 in the order given), or the `[output] path`
/// file, or standard output when there are none.
pub fn build(
    configs: &[crate::config::SinkConfig],
    output: Option<&std::path::Path>,
    metrics: &Arc<crate::metrics::Metrics>,
    seed: u64,
) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    use crate::config::SinkConfig;
    use anyhow::Context;
    if configs.is_empty() {
        return Ok(vec![match output {
            Some(path) => Box::new(
                file::FileSink::open("file#0".into(), path.to_owned(), None, 0, true)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => Box::new(stdout::StdoutSink::new("stdout#0".into())),
        }]);
    }
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let seed = seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        sinks.push(match c {
            SinkConfig::Stdout(s) => Box::new(stdout::StdoutSink::new(sink_name("stdout", i, s.name.as_deref()))),
            SinkConfig::File(f) => Box::new(
                file::FileSink::open(
                    sink_name("file", i, f.name.as_deref()),
                    f.path.clone(),
                    f.rotate_mib.map(|m| m << 20),
                    f.keep_files,
                    true,
                )
                .with_context(|| format!("opening the file sink {}", f.path.display()))?,
            ),
            SinkConfig::Http(h) => Box::new(http::HttpSink::new(
                sink_name("http", i, h.name.as_deref()),
                h,
                metrics.clone(),
                seed,
            )?),
            SinkConfig::Otlp(h) => Box::new(otlp::sink(
                sink_name("otlp", i, h.name.as_deref()),
                h,
                metrics.clone(),
                seed,
            )?),
        });
    }
    Ok(sinks)
}
