//! Drives one sink through a cycle: batches in order, flushes, acknowledgements.
//!
//! A file is acknowledged once the sink no longer holds any of its batches. The runner flushes
//! when its queue runs dry (nothing more to batch with) or when the oldest unacknowledged file
//! has waited the sink's `max_delay`, so that a steady stream of files still commits as it goes.
//! A sink that fails reports it once and then only drains its queue: the writer is never left
//! blocked on it, and the files it held stay unacknowledged.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Message, Sink, SinkError};

/// What a sink's runner reports to the pipeline.
#[derive(Debug)]
pub enum SinkEvent {
    /// Every file up to and including `file` that this sink was sent is handed over.
    Acked { sink: usize, file: u64 },
    /// The sink failed; it acknowledges nothing more this cycle.
    Failed { sink: usize, error: SinkError },
}

/// Runs `sink` (number `index`) until its queue closes, then gives it back.
pub async fn run(
    index: usize,
    mut sink: Box<dyn Sink>,
    mut queue: mpsc::Receiver<Message>,
    events: mpsc::UnboundedSender<SinkEvent>,
) -> Box<dyn Sink> {
    // Files sent in full and not yet acknowledged: (file, last batch, since).
    let mut waiting: VecDeque<(u64, u64, Instant)> = VecDeque::new();
    let mut holding_since: Option<Instant> = None;
    let result: Result<(), SinkError> = async {
        loop {
            // Something held (a file's acknowledgement, or a partial batch still holding its
            // share of the in-flight cap): flush once the sink's delay is up, even in the middle
            // of a file, so that the writer waiting for room is never left waiting.
            let since = waiting.front().map(|w| w.2).or(holding_since);
            let message = match since {
                Some(since) => {
                    let due = since + sink.max_delay();
                    match tokio::time::timeout_at(due, queue.recv()).await {
                        Ok(m) => m,
                        Err(_) => {
                            sink.flush().await?;
                            holding_since = None;
                            ack(index, &mut waiting, sink.as_ref(), &events);
                            continue;
                        }
                    }
                }
                None => queue.recv().await,
            };
            let Some(message) = message else { break };
            match message {
                Message::Events(batch) => {
                    tracing::debug!(target: crate::STAGE, sink = %sink.name(), "sink batch");
                    sink.send(batch).await?;
                    match sink.oldest_pending() {
                        Some(_) => {
                            holding_since.get_or_insert_with(Instant::now);
                        }
                        None => holding_since = None,
                    }
                }
                Message::EndOfFile { file, through } => waiting.push_back((file, through, Instant::now())),
            }
            ack(index, &mut waiting, sink.as_ref(), &events);
            if !waiting.is_empty() && queue.is_empty() {
                sink.flush().await?;
                holding_since = None;
                ack(index, &mut waiting, sink.as_ref(), &events);
            }
        }
        // The queue closed: hand over what is held, a file's batches or documents that belong
        // to no file (a cycle of findings and no files ends here).
        if !waiting.is_empty() || holding_since.is_some() || sink.oldest_pending().is_some() {
            sink.flush().await?;
            ack(index, &mut waiting, sink.as_ref(), &events);
        }
        Ok(())
    }
    .await;
    if let Err(error) = result {
        tracing::error!(sink = %sink.name(), error = %error, "sink failed; its files are not acknowledged and will be sent again");
        // The pipeline is gone only when the cycle was abandoned; nothing to tell then.
        events.send(SinkEvent::Failed { sink: index, error }).ok();
        // What it holds will not be acknowledged: let go of it (and of its share of the cap).
        sink.reset();
        // Let the writer go on: what it still sends here is dropped, unacknowledged.
        while queue.recv().await.is_some() {}
    }
    sink
}

/// Acknowledges the waiting files whose batches the sink no longer holds.
fn ack(
    index: usize,
    waiting: &mut VecDeque<(u64, u64, Instant)>,
    sink: &dyn Sink,
    events: &mpsc::UnboundedSender<SinkEvent>,
) {
    let oldest = sink.oldest_pending();
    let mut last = None;
    while let Some(&(file, through, _)) = waiting.front() {
        if oldest.is_some_and(|o| o <= through) {
            break;
        }
        last = Some(file);
        waiting.pop_front();
    }
    if let Some(file) = last {
        tracing::debug!(target: crate::STAGE, sink = %sink.name(), file, "acknowledged");
        events.send(SinkEvent::Acked { sink: index, file }).ok();
    }
}

/// How long `run` waits at most for the rest of a cycle's acknowledgements after a shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
