//! Signed requests with timeouts and retries.
//!
//! Throttling (`SlowDown`, 503, 429, `RequestTimeout`, throttling codes), 5xx, connection
//! resets and timeouts are retried with capped exponential backoff and full jitter. Refused
//! credentials and missing permissions are not retried here: they come back typed, once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use super::credentials::{CredentialSource, CredentialsProvider};
use super::error::{is_credentials_code, is_denied_code, is_retryable_code, AwsError};

/// How requests are made.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// AWS region of the bucket / trail.
    pub region: String,
    /// Custom endpoint (S3-compatible stores, tests); path-style addressing is used with it.
    pub endpoint_url: Option<String>,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for a whole request.
    pub request_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First back-off; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest back-off.
    pub backoff_cap: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            region: "us-east-1".into(),
            endpoint_url: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_attempts: 6,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(20),
        }
    }
}

/// Requests made, by operation (`s3:ListObjectsV2`, ...), attempts and retries counted apart.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Requests sent (each attempt counts: each one is billed).
    pub requests: BTreeMap<&'static str, u64>,
    /// Of those, retries.
    pub retries: BTreeMap<&'static str, u64>,
}

/// A signed HTTP client for one region and set of credentials.
pub struct AwsClient {
    http: reqwest::Client,
    credentials: CredentialsProvider,
    settings: ClientSettings,
    counts: Mutex<RequestCounts>,
    jitter: Mutex<u64>,
}

/// One request to send.
pub struct Request<'a> {
    /// `s3:GetObject` and the like, for counts and messages.
    pub operation: &'static str,
    /// Signing name: `s3`, `cloudtrail`.
    pub service: &'static str,
    /// HTTP method.
    pub method: reqwest::Method,
    /// Full URL, query included, already percent-encoded.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Bytes,
    /// The object key, for messages about it.
    pub key: Option<&'a str>,
    /// Hand back any answer below 500 as it is (status and headers), instead of as an error.
    pub any_status: bool,
}

/// An answer with a success status.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl AwsClient {
    /// A client; `seed` drives the backoff jitter (tests pass a fixed one).
    pub fn new(settings: ClientSettings, source: CredentialSource, seed: u64) -> Result<Self, AwsError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            // A redirect from S3 means the wrong region or endpoint: say so, do not follow it
            // with a signature made for another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AwsError::Transport {
                operation: "client",
                message: e.to_string(),
            })?;
        let credentials = CredentialsProvider::new(source, &settings.region);
        Ok(AwsClient {
            http,
            credentials,
            settings,
            counts: Mutex::new(RequestCounts::default()),
            jitter: Mutex::new(seed | 1),
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Requests made so far.
    pub fn counts(&self) -> RequestCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn count(&self, operation: &'static str, retry: bool) {
        if let Ok(mut c) = self.counts.lock() {
            *c.requests.entry(operation).or_default() += 1;
            if retry {
                *c.retries.entry(operation).or_default() += 1;
            }
        }
    }

    /// Full-jitter backoff for attempt `n` (1-based): uniform in [0, min(cap, base·2ⁿ)].
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.settings.backoff_cap);
        let r = self
            .jitter
            .lock()
            .map(|mut x| {
                // xorshift64: deterministic for a given seed.
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x
            })
            .unwrap_or(0);
        let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(frac)
    }

    /// Sends a request, signing it afresh per attempt and retrying what is transient.
    pub async fn send(&self, req: Request<'_>) -> Result<Response, AwsError> {
        match self.send_until(&req, Until::Body).await? {
            Answer::Whole(r) => Ok(r),
            Answer::Streaming(_) => unreachable!("asked for the whole body"),
        }
    }

    /// Sends a request and hands back the answer as soon as a success status and its headers
    /// arrive, the body still to be read from the connection (a large object, read as it is
    /// used). Failures before that are retried as by `send`; failures while reading the body are
    /// the caller's. The client's time limit per request does not apply: the caller bounds each
    /// read of the body instead.
    pub async fn send_streaming(&self, req: Request<'_>) -> Result<reqwest::Response, AwsError> {
        match self.send_until(&req, Until::Head).await? {
            Answer::Streaming(r) => Ok(r),
            Answer::Whole(_) => unreachable!("asked for the head only"),
        }
    }

    async fn send_until(&self, req: &Request<'_>, until: Until) -> Result<Answer, AwsError> {
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.count(req.operation, attempt > 1);
            let creds = self.credentials.get().await?;
            let key_id = creds.access_key_id().to_owned();
            let outcome = self.send_once(req, creds, until).await;
            let refused = matches!(&outcome, Err(Attempt::Answer { code, .. }) if is_credentials_code(code));
            if refused && self.credentials.refreshable() {
                // Expired, revoked or rotated before their stated expiry: drop them, so that
                // this request (once) and the next poll ask the source again.
                self.credentials.invalidate(&key_id).await;
                if !refreshed && attempt < self.settings.max_attempts {
                    refreshed = true;
                    tracing::info!(
                        operation = req.operation,
                        "AWS refused the credentials; loading them again"
                    );
                    continue;
                }
            }
            let retry = match &outcome {
                Ok(_) => false,
                Err(Attempt::Transport(_)) => true,
                Err(Attempt::Answer { status, code, .. }) => {
                    *status >= 500 || *status == 429 || is_retryable_code(code)
                }
                Err(Attempt::Fatal(_)) => false,
            };
            if !retry || attempt >= self.settings.max_attempts {
                return outcome.map_err(|a| a.into_error(req.operation));
            }
            let wait = self.backoff(attempt);
            tracing::debug!(
                operation = req.operation,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying AWS request"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(
        &self,
        req: &Request<'_>,
        creds: aws_credential_types::Credentials,
        until: Until,
    ) -> Result<Answer, Attempt> {
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        if req.service == "s3" {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.settings.region)
            .name(req.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Attempt::Fatal(AwsError::NoCredentials(e.to_string())))?
            .into();
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let signable = SignableRequest::new(
            req.method.as_str(),
            &req.url,
            headers.iter().copied(),
            SignableBody::Bytes(&req.body),
        )
        .map_err(|e| {
            Attempt::Fatal(AwsError::Parse {
                operation: req.operation,
                message: e.to_string(),
            })
        })?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| {
                Attempt::Fatal(AwsError::Parse {
                    operation: req.operation,
                    message: e.to_string(),
                })
            })?
            .into_parts();
        let mut builder = self.http.request(req.method.clone(), &req.url);
        for (k, v) in &req.headers {
            builder = builder.header(*k, v);
        }
        for (k, v) in instructions.headers() {
            builder = builder.header(k, v);
        }
        let sent = builder.body(req.body.clone());
        let response = if until == Until::Head {
            // The client's limit would cover the whole body, which the caller reads at its own
            // pace (bounding each read): here it bounds the wait for the answer's head only.
            let limit = self.settings.request_timeout;
            match tokio::time::timeout(limit, sent.timeout(Duration::from_secs(86_400)).send()).await {
                Ok(answer) => answer,
                Err(_) => return Err(Attempt::Transport(format!("no answer within {limit:?}"))),
            }
        } else {
            sent.send().await
        }
        .map_err(|e| Attempt::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let success = (200..300).contains(&status) || (req.any_status && status < 500 && status != 429);
        if success && until == Until::Head {
            return Ok(Answer::Streaming(response));
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| Attempt::Transport(e.to_string()))?;
        if success {
            return Ok(Answer::Whole(Response { status, headers, body }));
        }
        let (code, message) = error_fields(&body);
        let code = code.unwrap_or_else(|| match status {
            403 => "AccessDenied".into(),
            404 => "NotFound".into(),
            _ => format!("HTTP{status}"),
        });
        Err(Attempt::Answer {
            status,
            code,
            message: message.unwrap_or_default(),
            key: req.key.map(str::to_owned),
        })
    }
}

/// How much of a successful answer `send_once` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The whole body.
    Body,
    /// The status and headers.
    Head,
}

/// A successful answer, whole or with its body still to read.
enum Answer {
    Whole(Response),
    Streaming(reqwest::Response),
}

/// What one attempt came to, before deciding on a retry.
enum Attempt {
    Transport(String),
    Answer {
        status: u16,
        code: String,
        message: String,
        key: Option<String>,
    },
    Fatal(AwsError),
}

impl Attempt {
    fn into_error(self, operation: &'static str) -> AwsError {
        match self {
            Attempt::Transport(message) => AwsError::Transport { operation, message },
            Attempt::Fatal(e) => e,
            Attempt::Answer {
                status,
                code,
                message,
                key,
            } => {
                let message = match key {
                    Some(k) if message.is_empty() => k,
                    Some(k) => format!("{message} (key {k})"),
                    None => message,
                };
                if is_credentials_code(&code) {
                    AwsError::Credentials {
                        operation,
                        code,
                        message,
                    }
                } else if is_denied_code(&code) || status == 403 {
                    AwsError::Denied {
                        operation,
                        code,
                        message,
                    }
                } else if status == 404 || code.starts_with("NoSuch") || code.ends_with("NotFoundException") {
                    AwsError::NotFound {
                        operation,
                        code,
                        message,
                    }
                } else {
                    AwsError::Service {
                        operation,
                        status,
                        code,
                        message,
                    }
                }
            }
        }
    }
}

/// The error code and message of an S3 (XML) or JSON-protocol error body.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).unwrap_or_default();
        let code = v
            .get("__type")
            .or_else(|| v.get("code"))
            .and_then(|c| c.as_str())
            .map(|c| c.rsplit('#').next().unwrap_or(c).to_owned());
        let message = v
            .get("message")
            .or_else(|| v.get("Message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        return (code, message);
    }
    (xml_text(trimmed, "Code"), xml_text(trimmed, "Message"))
}

/// The text of the first `<tag>…</tag>` in an XML document (error bodies are flat).
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(unescape_xml(&xml[start..end]))
}

/// Resolves the five predefined XML entities and numeric references.
pub fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") => u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32),
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
