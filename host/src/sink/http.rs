//! NDJSON batches POSTed to an HTTP receiver — what Vector's `http_server` source (framing
//! `newline_delimited`, decoding `json`), Fluent Bit's `http` input and Logstash's `http` input
//! accept.
//!
//! Events are gathered into requests of at most `batch_max_events` events and
//! `batch_max_bytes` bytes (an event larger than that goes alone). A request is retried with
//! doubling, jittered pauses on connection errors, timeouts, 408, 429 and 5xx, honouring
//! `Retry-After`; a 4xx other than 408/429 is a permanent rejection, reported with the
//! receiver's answer. Either way the events are not acknowledged and nothing is dropped: their
//! files stay out of the checkpoint and are sent again.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::retry::{Backoff, Jitter};
use super::{Batch, Sink, SinkError};
use crate::aws::secret::Secret;
use crate::config::{Compression, HttpSinkConfig};
use crate::metrics::Metrics;

/// Longest part of a receiver's answer kept in a report.
const MAX_ANSWER: usize = 512;

/// Lines `from..to` of a batch, held until the request that carries them succeeds.
struct Part {
    batch: Arc<Batch>,
    from: usize,
    to: usize,
}

/// Events gathered for the next request.
#[derive(Default)]
pub struct Gathered {
    parts: Vec<Part>,
    events: usize,
    bytes: usize,
}

impl Gathered {
    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.parts
            .iter()
            .flat_map(|p| (p.from..p.to).map(move |i| p.batch.lines(i, i + 1)))
    }

    /// Events gathered.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Bytes gathered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn oldest(&self) -> Option<u64> {
        self.parts.first().map(|p| p.batch.seq)
    }
}

/// Sends request bodies with retries; shared by the `http` and `otlp` sinks.
pub struct Delivery {
    /// The sink's name.
    pub name: String,
    client: reqwest::Client,
    url: String,
    headers: Vec<(String, Secret)>,
    content_type: String,
    compression: Compression,
    max_retries: u32,
    backoff: Backoff,
    jitter: Jitter,
    metrics: Arc<Metrics>,
    /// Events and bytes per request.
    pub max_events: usize,
    /// Bytes per request.
    pub max_bytes: usize,
    /// A partial request is sent after this long.
    pub timeout: Duration,
    /// Whether an error status is worth retrying (the rest are permanent rejections).
    pub retryable: fn(u16) -> bool,
}

/// An error with the errors that caused it (a refused certificate is three levels down in a
/// request error), each once.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

/// Reads a TLS file of sink `name`, naming the key and the file when it cannot.
fn tls_file(name: &str, key: &str, path: &std::path::Path) -> Result<Vec<u8>, SinkError> {
    std::fs::read(path).map_err(|e| SinkError::Io(format!("sink {name}: {key} {}: {e}", path.display())))
}

/// The certificate authorities of `tls_ca_file`, trusted besides the built-in roots.
fn tls_authorities(name: &str, config: &HttpSinkConfig) -> Result<Vec<reqwest::Certificate>, SinkError> {
    let Some(path) = &config.tls_ca_file else {
        return Ok(Vec::new());
    };
    let pem = tls_file(name, "tls_ca_file", path)?;
    let bad = |why: String| SinkError::Io(format!("sink {name}: tls_ca_file {}: {why}", path.display()));
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(format!("not a PEM bundle: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into()
        ));
    }
    Ok(certs)
}

/// The client certificate and key of `tls_client_cert_file` and `tls_client_key_file`.
fn tls_identity(name: &str, config: &HttpSinkConfig) -> Result<Option<reqwest::Identity>, SinkError> {
    let (Some(cert_path), Some(key_path)) = (&config.tls_client_cert_file, &config.tls_client_key_file) else {
        return Ok(None);
    };
    let cert = tls_file(name, "tls_client_cert_file", cert_path)?;
    let key = tls_file(name, "tls_client_key_file", key_path)?;
    if !String::from_utf8_lossy(&cert).contains("-----BEGIN CERTIFICATE-----") {
        return Err(SinkError::Io(format!(
            "sink {name}: tls_client_cert_file {}: no PEM certificate in it",
            cert_path.display()
        )));
    }
    if !String::from_utf8_lossy(&key).contains("PRIVATE KEY-----") {
        return Err(SinkError::Io(format!(
            "sink {name}: tls_client_key_file {}: no PEM private key in it",
            key_path.display()
        )));
    }
    let mut pem = key;
    pem.push(b'\n');
    pem.extend_from_slice(&cert);
    reqwest::Identity::from_pem(&pem).map(Some).map_err(|e| {
        SinkError::Io(format!(
            "sink {name}: tls_client_cert_file {} with tls_client_key_file {}: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })
}

/// NDJSON receivers: 408, 429 and 5xx are passing troubles.
pub fn retryable_http(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

impl Delivery {
    /// A delivery to `url` with `config`'s options.
    pub fn new(
        name: String,
        url: String,
        content_type: String,
        config: &HttpSinkConfig,
        metrics: Arc<Metrics>,
        seed: u64,
    ) -> Result<Self, SinkError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .timeout(Duration::from_secs(config.request_timeout_secs));
        for cert in tls_authorities(&name, config)? {
            builder = builder.add_root_certificate(cert);
        }
        if let Some(identity) = tls_identity(&name, config)? {
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| SinkError::Io(format!("sink {name}: HTTP client: {e}")))?;
        Ok(Delivery {
            name,
            client,
            url,
            headers: config.resolved_headers(),
            content_type,
            compression: config.compression,
            max_retries: config.max_retries,
            backoff: Backoff {
                initial: Duration::from_millis(config.retry_initial_backoff_ms.max(1)),
                max: Duration::from_secs(config.retry_max_backoff_secs.max(1)),
            },
            jitter: Jitter::new(seed),
            metrics,
            max_events: config.batch_max_events.max(1),
            max_bytes: config.batch_max_bytes.max(1),
            timeout: Duration::from_millis(config.batch_timeout_ms.max(1)),
            retryable: retryable_http,
        })
    }

    /// POSTs `body` (of `events` events) until the receiver takes it, refuses it for good, or
    /// the retries run out.
    pub async fn post(&mut self, body: Vec<u8>, events: usize) -> Result<bytes::Bytes, SinkError> {
        let raw_len = body.len();
        let body = match self.compression {
            Compression::None => bytes::Bytes::from(body),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::with_capacity(raw_len / 4), flate2::Compression::fast());
                enc.write_all(&body)
                    .and_then(|()| enc.finish())
                    .map(bytes::Bytes::from)
                    .map_err(|e| SinkError::Io(format!("compressing: {e}")))?
            }
        };
        let mut attempt = 0u32;
        loop {
            let mut req = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, &self.content_type)
                .body(body.clone());
            if self.compression == Compression::Gzip {
                req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
            }
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.expose());
            }
            let (why, asked) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| self.backoff.retry_after(v, std::time::SystemTime::now()));
                    let answer = resp.bytes().await;
                    let code = status.as_u16();
                    match (&answer, status.is_success()) {
                        (Ok(answer), true) => {
                            self.metrics.sink_batch(&self.name, events as u64, raw_len as u64);
                            return Ok(answer.clone());
                        }
                        // Accepted, but the answer was cut off: whether it was taken is not known,
                        // so it is sent again (at least once).
                        (Err(e), true) => {
                            let why = format!("{} answered {status} but the answer was cut off: {e}", self.url);
                            (why, retry_after)
                        }
                        _ => {
                            let text = answer
                                .map(|b| {
                                    let mut t = String::from_utf8_lossy(&b[..b.len().min(MAX_ANSWER)]).into_owned();
                                    if b.len() > MAX_ANSWER {
                                        t.push('…');
                                    }
                                    t
                                })
                                .unwrap_or_else(|e| format!("(the answer could not be read: {e})"));
                            let why = format!("{} answered {status}: {}", self.url, text.trim());
                            if !(self.retryable)(code) {
                                self.metrics.sink_rejection(&self.name);
                                tracing::error!(sink = %self.name, status = code, answer = %text.trim(), "the receiver rejected a batch; its files are not acknowledged");
                                return Err(SinkError::Rejected(why));
                            }
                            (why, retry_after)
                        }
                    }
                }
                Err(e) => (format!("{}: {}", self.url, with_causes(&e)), None),
            };
            attempt += 1;
            if attempt > self.max_retries {
                return Err(SinkError::Failing(format!("{why} (after {} attempts)", attempt)));
            }
            self.metrics.sink_retry(&self.name);
            let pause = asked.unwrap_or_else(|| self.backoff.pause(attempt, self.jitter.next()));
            tracing::warn!(sink = %self.name, attempt, pause_ms = pause.as_millis() as u64, error = %why, "delivery failed; trying again");
            tokio::time::sleep(pause).await;
        }
    }
}

/// Gathers lines into requests of bounded size; used by both HTTP sinks.
#[derive(Default)]
pub struct Batcher {
    gathered: Gathered,
}

impl Batcher {
    /// Nothing gathered.
    pub fn new() -> Self {
        Batcher {
            gathered: Gathered::default(),
        }
    }

    /// Takes `batch`; returns the requests it filled, in order, to be sent now. The rest waits.
    pub fn add(&mut self, batch: Arc<Batch>, max_events: usize, max_bytes: usize) -> Vec<Gathered> {
        let mut full = Vec::new();
        let mut from = 0;
        for i in 0..batch.len() {
            let len = batch.lines(i, i + 1).len();
            let here = i - from;
            let g = &self.gathered;
            let is_full = g.events + here >= max_events
                || (g.events + here > 0 && g.bytes + batch.lines(from, i).len() + len > max_bytes);
            if is_full {
                self.push(&batch, from, i);
                from = i;
                full.push(std::mem::take(&mut self.gathered));
            }
        }
        self.push(&batch, from, batch.len());
        full
    }

    /// What is gathered, taken out.
    pub fn take(&mut self) -> Option<Gathered> {
        (self.gathered.events > 0).then(|| std::mem::take(&mut self.gathered))
    }

    /// The `seq` of the oldest batch gathered.
    pub fn oldest(&self) -> Option<u64> {
        self.gathered.oldest()
    }

    fn push(&mut self, batch: &Arc<Batch>, from: usize, to: usize) {
        if from < to {
            self.gathered.events += to - from;
            self.gathered.bytes += batch.lines(from, to).len();
            self.gathered.parts.push(Part {
                batch: batch.clone(),
                from,
                to,
            });
        }
    }
}

/// How a request's body is made from the events gathered, and what the receiver's answer says.
pub trait Encoding: Send {
    /// The request body.
    fn body(&self, gathered: &Gathered) -> Vec<u8>;
    /// Looks at a 2xx answer (an OTLP partial success); nothing by default.
    fn answered(&self, _sink: &str, _answer: &[u8]) {}
}

/// NDJSON: the lines as they are.
pub struct Ndjson;

impl Encoding for Ndjson {
    fn body(&self, g: &Gathered) -> Vec<u8> {
        let mut body = Vec::with_capacity(g.bytes());
        for line in g.lines() {
            body.extend_from_slice(line);
        }
        body
    }
}

/// A sink that POSTs gathered events: NDJSON (`type = "http"`) or OTLP (`type = "otlp"`,
/// see `otlp`), as its encoding says.
pub struct HttpSink {
    delivery: Delivery,
    batcher: Batcher,
    encoding: Box<dyn Encoding>,
}

impl HttpSink {
    /// An NDJSON sink for `config` (`url` set, as checked with the configuration).
    pub fn new(name: String, config: &HttpSinkConfig, metrics: Arc<Metrics>, seed: u64) -> Result<Self, SinkError> {
        let url = config.url.clone().unwrap_or_default();
        let content_type = config
            .content_type
            .clone()
            .unwrap_or_else(|| "application/x-ndjson".into());
        let delivery = Delivery::new(name, url, content_type, config, metrics, seed)?;
        Ok(Self::with_encoding(delivery, Box::new(Ndjson)))
    }

    /// A sink delivering with `delivery`, its bodies made by `encoding`.
    pub fn with_encoding(delivery: Delivery, encoding: Box<dyn Encoding>) -> Self {
        HttpSink {
            delivery,
            batcher: Batcher::new(),
            encoding,
        }
    }

    async fn post(&mut self, g: Gathered) -> Result<(), SinkError> {
        let body = self.encoding.body(&g);
        let answer = self.delivery.post(body, g.events()).await?;
        self.encoding.answered(&self.delivery.name, &answer);
        Ok(())
    }
}

impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.delivery.name
    }

    fn send(&mut self, batch: Arc<Batch>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            for g in self
                .batcher
                .add(batch, self.delivery.max_events, self.delivery.max_bytes)
            {
                self.post(g).await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if let Some(g) = self.batcher.take() {
                self.post(g).await?;
            }
            Ok(())
        })
    }

    fn oldest_pending(&self) -> Option<u64> {
        self.batcher.oldest()
    }

    fn max_delay(&self) -> Duration {
        self.delivery.timeout
    }

    fn reset(&mut self) {
        self.batcher.take();
    }
}
