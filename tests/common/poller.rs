//! A poller for tests: the S3 source and a pipeline into one in-memory sink.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use trailwatch::aws::AwsClient;
use trailwatch::metrics::Metrics;
use trailwatch::pipeline::{Clock, CycleError, CycleReport, Ledger, Pipeline, PipelineSettings};
use trailwatch::runtime::PluginRuntime;
use trailwatch::sink::memory::MemorySink;
use trailwatch::source::s3_poll::{PollSettings, S3Source};
use trailwatch::state::checkpoint::{Checkpoint, CheckpointStore};

/// The source and the pipeline, polled together.
pub struct Poller {
    pub source: S3Source,
    pub pipeline: Pipeline,
    buffer: Arc<Mutex<Vec<u8>>>,
}

/// Two readers, four prefetches, as on this machine.
pub fn pipeline_settings() -> PipelineSettings {
    PipelineSettings {
        max_concurrent_files: 2,
        max_prefetch: 4,
        ..PipelineSettings::default()
    }
}

impl Poller {
    /// A poller of `settings.bucket` with its checkpoint in `store`.
    pub fn new(
        client: Arc<AwsClient>,
        runtime: Arc<PluginRuntime>,
        settings: PollSettings,
        pipeline: PipelineSettings,
        store: CheckpointStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (sink, buffer) = MemorySink::new("memory");
        let ledger = Ledger::open(store, &settings.bucket).unwrap();
        let pipeline = Pipeline::new(
            runtime,
            pipeline,
            ledger,
            vec![Box::new(sink)],
            Arc::new(Metrics::new()),
            clock,
        );
        Poller {
            source: S3Source::new(client, settings),
            pipeline,
            buffer,
        }
    }

    /// One poll; the events it wrote are appended to `out`.
    pub async fn poll_once(&mut self, out: &mut Vec<u8>, shutdown: &AtomicBool) -> Result<CycleReport, CycleError> {
        let flag = Arc::new(AtomicBool::new(shutdown.load(std::sync::atomic::Ordering::Relaxed)));
        let report = self.source.poll_once(&mut self.pipeline, flag).await;
        out.append(&mut self.buffer.lock().unwrap());
        report
    }

    /// The checkpoint as it stands.
    pub fn checkpoint(&self) -> &Checkpoint {
        self.pipeline.checkpoint()
    }

    /// The streams found.
    pub fn streams(&self) -> &[String] {
        self.source.streams()
    }
}
