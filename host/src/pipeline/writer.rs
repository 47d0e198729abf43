//! The writer: takes each file's batches in the order the files were submitted and sends them
//! to the file's sinks, then tells each sink the file ended and passes the file on to be
//! committed. Its waits are the backpressure: a sink whose queue is full, or the in-flight cap,
//! stops it, which stops the readers, which stops the source.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use super::reader::{FileMsg, FileStats, ReadEnd, ReadResult};
use super::{Slot, Written};
use crate::score::{Scorer, ToScore};
use crate::sink::{Batch, Message};

/// Scores a batch on a blocking thread (a plugin call), handing the scorer back.
async fn score(
    scorer: Scorer,
    file: u64,
    bytes: Vec<u8>,
    ends: Vec<u32>,
    input: ToScore,
) -> (Option<Scorer>, Vec<u8>, Vec<u32>) {
    match tokio::task::spawn_blocking(move || {
        let mut scorer = scorer;
        let (bytes, ends) = scorer.score_batch(file, bytes, ends, input);
        (scorer, bytes, ends)
    })
    .await
    {
        Ok((scorer, bytes, ends)) => (Some(scorer), bytes, ends),
        // A panic in the host's scoring code: the batch is lost with the scorer; the file is
        // reported failed (not committed) and read again.
        Err(e) => {
            tracing::error!(error = %e, "the scorer stopped unexpectedly");
            (None, Vec::new(), Vec::new())
        }
    }
}

/// Sends one batch of a file's documents to its sinks; false when the in-flight pool closed.
async fn send(
    bytes: Vec<u8>,
    ends: Vec<u32>,
    targets: &[usize],
    sinks: &[mpsc::Sender<Message>],
    inflight: &Arc<Semaphore>,
    cap: usize,
    next_batch: &mut u64,
) -> bool {
    // A batch larger than the whole cap takes all of it rather than waiting forever.
    let want = bytes.len().clamp(1, cap);
    let Ok(permit) = inflight.clone().acquire_many_owned(want as u32).await else {
        return false;
    };
    *next_batch += 1;
    let batch = Arc::new(Batch {
        seq: *next_batch,
        bytes,
        ends,
        permit: Some(permit),
    });
    for &k in targets {
        // A sink's queue closes only when its runner is gone (an abandoned cycle).
        sinks[k].send(Message::Events(batch.clone())).await.ok();
    }
    true
}

/// Runs until the slot queue closes; returns the next batch number and the scorer.
pub async fn run(
    mut slots: mpsc::UnboundedReceiver<Slot>,
    sinks: Vec<mpsc::Sender<Message>>,
    written: mpsc::UnboundedSender<Written>,
    inflight: Arc<Semaphore>,
    cap: usize,
    mut next_batch: u64,
    mut scorer: Option<Scorer>,
) -> (u64, Option<Scorer>) {
    let scoring = scorer.is_some();
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
        // A scorer lost (a panic in the host's scoring code) takes the rest of the cycle's files
        // with it: they are not sent nor committed, and are read again at the next cycle with
        // a new scorer, so that none goes out unscored and unlearned.
        let mut lost_scorer = scoring && scorer.is_none();
        while let Some(msg) = rx.recv().await {
            match msg {
                FileMsg::Batch {
                    mut bytes,
                    mut ends,
                    score: to_score,
                } => {
                    if lost_scorer {
                        continue;
                    }
                    if let Some(input) = to_score {
                        if let Some(s) = scorer.take() {
                            (scorer, bytes, ends) = score(s, seq, bytes, ends, input).await;
                            if scorer.is_none() {
                                lost_scorer = true;
                                continue;
                            }
                        }
                    }
                    if !send(bytes, ends, &targets, &sinks, &inflight, cap, &mut next_batch).await {
                        break;
                    }
                    through = next_batch;
                }
                FileMsg::Done(r) => {
                    if lost_scorer {
                        break;
                    }
                    // Incidents quiet long enough close with this file, when it goes to every
                    // sink (a file sent again to some sinks only leaves the sweep to a later one).
                    let every_sink = targets.len() == sinks.len();
                    if let Some(s) = scorer.take_if(|s| every_sink && s.file_done()) {
                        let swept = tokio::task::spawn_blocking(move || {
                            let mut s = s;
                            let closed = s.maybe_sweep(seq);
                            (s, closed)
                        })
                        .await;
                        match swept {
                            Ok((s, closed)) => {
                                scorer = Some(s);
                                if let Some((bytes, ends)) = closed {
                                    if send(bytes, ends, &targets, &sinks, &inflight, cap, &mut next_batch).await {
                                        through = next_batch;
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "the scorer stopped unexpectedly");
                                lost_scorer = true;
                                break;
                            }
                        }
                    }
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
        let result = match result {
            Some(r) if !lost_scorer => r,
            _ if lost_scorer => Box::new(ReadResult {
                end: ReadEnd::Failed {
                    reason: "the scorer stopped unexpectedly; the file is read again".into(),
                    retry: super::work::Retry::Always,
                    records_done: 0,
                },
                stats: FileStats::default(),
            }),
            // The reader stopped without saying how the file ended (a panic): the events it sent
            // were scored and are learned with the file; a retry from the first record may
            // count them again, which only this rare path does.
            _ => Box::new(ReadResult {
                end: ReadEnd::Failed {
                    reason: "the reader of this file stopped unexpectedly".into(),
                    retry: super::work::Retry::Limited,
                    records_done: 0,
                },
                stats: FileStats::default(),
            }),
        };
        for &k in &targets {
            sinks[k].send(Message::EndOfFile { file: seq, through }).await.ok();
        }
        drop(permit);
        let scoring = if lost_scorer {
            None
        } else {
            scorer.as_mut().map(|s| s.take(seq))
        };
        written
            .send(Written::File {
                seq,
                key,
                size,
                targets,
                delete,
                result,
                scoring,
            })
            .ok();
    }
    (next_batch, scorer)
}
