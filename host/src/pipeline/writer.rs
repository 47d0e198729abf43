//! The writer: takes each file's batches in the order the files were submitted and sends them
//! to the file's sinks, then tells each sink the file ended and passes the file on to be
//! committed. Its waits are the backpressure: a sink whose queue is full, or the in-flight cap,
//! stops it, which stops the readers, which stops the source.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use super::reader::{FileMsg, FileStats, ReadEnd, ReadResult};
use super::{Slot, Written};
use crate::sink::{Batch, Message};

/// Runs until the slot queue closes; returns the next batch number.
pub async fn run(
    mut slots: mpsc::UnboundedReceiver<Slot>,
    sinks: Vec<mpsc::Sender<Message>>,
    written: mpsc::UnboundedSender<Written>,
    inflight: Arc<Semaphore>,
    cap: usize,
    mut next_batch: u64,
) -> u64 {
    while let Some(slot) = slots.recv().await {
        let (seq, key, size, targets, delete, mut rx, permit) = match slot {
            Slot::Marker(m) => {
                written.send(Written::Marker(m)).ok();
                continue;
            }
            Slot::Documents { bytes, ends } => {
                let want = bytes.len().clamp(1, cap);
                let Ok(permit) = inflight.clone().acquire_many_owned(want as u32).await else {
                    continue;
                };
                next_batch += 1;
                let batch = Arc::new(Batch {
                    seq: next_batch,
                    bytes,
                    ends,
                    permit: Some(permit),
                });
                for sink in &sinks {
                    sink.send(Message::Events(batch.clone())).await.ok();
                }
                continue;
            }
            Slot::File {
                seq,
                key,
                size,
                targets,
                delete,
                rx,
                permit,
            } => (seq, key, size, targets, delete, rx, permit),
        };
        let mut through = 0;
        let mut result = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                FileMsg::Batch { bytes, ends } => {
                    // A batch larger than the whole cap takes all of it rather than waiting forever.
                    let want = bytes.len().clamp(1, cap);
                    let Ok(permit) = inflight.clone().acquire_many_owned(want as u32).await else {
                        break;
                    };
                    next_batch += 1;
                    through = next_batch;
                    let batch = Arc::new(Batch {
                        seq: next_batch,
                        bytes,
                        ends,
                        permit: Some(permit),
                    });
                    for &k in &targets {
                        // A sink's queue closes only when its runner is gone (an abandoned cycle).
                        sinks[k].send(Message::Events(batch.clone())).await.ok();
                    }
                }
                FileMsg::Done(r) => {
                    result = Some(r);
                    break;
                }
                FileMsg::Fatal(e) => {
                    written.send(Written::Fatal(e)).ok();
                    result = None;
                    through = u64::MAX;
                    break;
                }
            }
        }
        if through == u64::MAX {
            drop(permit);
            continue;
        }
        let result = result.unwrap_or_else(|| {
            Box::new(ReadResult {
                end: ReadEnd::Failed {
                    reason: "the reader of this file stopped unexpectedly".into(),
                    retry: super::work::Retry::Limited,
                    records_done: 0,
                },
                stats: FileStats::default(),
            })
        });
        for &k in &targets {
            sinks[k].send(Message::EndOfFile { file: seq, through }).await.ok();
        }
        drop(permit);
        written
            .send(Written::File {
                seq,
                key,
                size,
                targets,
                delete,
                result,
            })
            .ok();
    }
    next_batch
}
