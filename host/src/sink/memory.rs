//! An in-memory sink, for tests and for embedding trailwatch as a library.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{Batch, Sink, SinkError};

/// Appends every event line to a shared buffer.
#[derive(Clone)]
pub struct MemorySink {
    name: String,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemorySink {
    /// A sink named `name` and the buffer it appends to.
    pub fn new(name: &str) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        (
            MemorySink {
                name: name.to_owned(),
                buffer: buffer.clone(),
            },
            buffer,
        )
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, batch: Arc<Batch>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let mut buffer = self
                .buffer
                .lock()
                .map_err(|_| SinkError::Io("the memory sink's buffer is poisoned".into()))?;
            buffer.extend_from_slice(&batch.bytes);
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    fn oldest_pending(&self) -> Option<u64> {
        None
    }
}
