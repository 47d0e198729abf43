//! Signed requests with timeouts and retries.
//!
//! Throttling (`SlowDown`, 503, 429, `RequestTimeout`, throttling codes), 5xx, connection
//! resets and timeouts are retried with capped exponential backoff and full jitter, waiting at
//! least what a `Retry-After` header asks (up to five minutes). Refused credentials and missing
//! permissions are not retried here: they come back typed, once.
//!
//! A request refused for its time (`RequestTimeTooSkewed`, or a signature refusal while the
//! answer's `Date` is minutes away from the signing time) is not a credentials problem: the
//! client takes AWS's time from the answer, signs with it from then on, and tries again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use super::credentials::{CredentialSource, CredentialsProvider};
use super::endpoint::Variant;
use super::error::{is_credentials_code, is_denied_code, is_retryable_code, AwsError};

/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A signature refusal with the answer's time at least this far from the signing time is taken
/// as clock skew (AWS allows 5 minutes; SigV4 refuses beyond 15 for some services).
const SKEW_TOLERANCE_MS: i64 = 4 * 60 * 1000;

/// How requests are made.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// AWS region of the bucket / trail.
    pub region: String,
    /// Custom endpoint (S3-compatible stores, tests); path-style addressing is used with it.
    pub endpoint_url: Option<String>,
    /// FIPS and dual-stack endpoints (ignored with `endpoint_url`).
    pub variant: Variant,
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
            variant: Variant::default(),
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
    /// AWS's time minus this machine's, milliseconds, as last learned from a skew refusal.
    skew_ms: AtomicI64,
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
            skew_ms: AtomicI64::new(0),
        })
    }

    /// AWS's time minus this machine's, milliseconds (0 until a request was refused for it).
    pub fn clock_skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }

    /// The base URL of `service`'s API: the custom endpoint, or the region's in its partition.
    pub fn service_url(&self, service: &str) -> String {
        match &self.settings.endpoint_url {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => super::endpoint::service_url(service, &self.settings.region, self.settings.variant),
        }
    }

    /// The time to sign with: this machine's, corrected by the skew AWS made known.
    fn signing_time(&self) -> SystemTime {
        shift(SystemTime::now(), self.clock_skew_ms())
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
        let mut corrected = false;
        loop {
            attempt += 1;
            self.count(req.operation, attempt > 1);
            let creds = self.credentials.get().await?;
            let key_id = creds.access_key_id().to_owned();
            let signed_at = self.signing_time();
            let mut outcome = self.send_once(req, creds, until, signed_at).await;
            if let Err(Attempt::Answer {
                code,
                server_time,
                skew,
                ..
            }) = &mut outcome
            {
                let server_time = *server_time;
                let off = server_time.map(|t| millis_between(signed_at, t));
                let skewed = code == "RequestTimeTooSkewed"
                    || (is_credentials_code(code) && off.is_some_and(|o| o.abs() >= SKEW_TOLERANCE_MS));
                if skewed {
                    if let (Some(server), false) = (server_time, corrected) {
                        corrected = true;
                        let learned = millis_between(SystemTime::now(), server);
                        self.skew_ms.store(learned, Ordering::Relaxed);
                        tracing::warn!(
                            operation = req.operation,
                            skew_secs = learned / 1000,
                            "AWS refused the request's time: this machine's clock is {} s off AWS's; \
                             signing with AWS's time from now on",
                            learned / 1000
                        );
                        if attempt < self.settings.max_attempts {
                            continue;
                        }
                    }
                    // AWS's time minus this machine's, the same quantity the correction used.
                    *skew = Some(server_time.map(|t| millis_between(SystemTime::now(), t) / 1000));
                }
            }
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
                Err(Attempt::Answer { status, code, skew, .. }) => {
                    skew.is_none() && (*status >= 500 || *status == 429 || is_retryable_code(code))
                }
                Err(Attempt::Fatal(_)) => false,
            };
            if !retry || attempt >= self.settings.max_attempts {
                return outcome.map_err(|a| a.into_error(req.operation));
            }
            let asked = match &outcome {
                Err(Attempt::Answer { retry_after, .. }) => retry_after.map(|d| d.min(MAX_RETRY_AFTER)),
                _ => None,
            };
            let wait = self.backoff(attempt).max(asked.unwrap_or_default());
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
        signed_at: SystemTime,
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
            .time(signed_at)
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
        let fields = ErrorFields::read(&body, &headers);
        let code = fields.code.unwrap_or_else(|| match status {
            403 => "AccessDenied".into(),
            404 => "NotFound".into(),
            _ => format!("HTTP{status}"),
        });
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Err(Attempt::Answer {
            status,
            code,
            message: fields.message.unwrap_or_default(),
            key: req.key.map(str::to_owned),
            retry_after: header("retry-after").and_then(retry_after),
            server_time: fields
                .server_time
                .or_else(|| header("date").and_then(|d| httpdate::parse_http_date(d).ok())),
            skew: None,
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
        /// What a `Retry-After` header asked for.
        retry_after: Option<Duration>,
        /// AWS's time when it answered (`Date`, or S3's `ServerTime`).
        server_time: Option<SystemTime>,
        /// Set when the answer refused the request's time: AWS's time minus this machine's,
        /// seconds, when known.
        skew: Option<Option<i64>>,
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
                skew,
                ..
            } => {
                let message = match key {
                    Some(k) if message.is_empty() => k,
                    Some(k) => format!("{message} (key {k})"),
                    None => message,
                };
                if let Some(skew) = skew {
                    AwsError::ClockSkew {
                        operation,
                        code,
                        message,
                        skew: match skew {
                            Some(secs) => format!("{secs} s"),
                            None => "an unknown amount".into(),
                        },
                    }
                } else if is_credentials_code(&code) {
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

/// What an error answer says: code, message and (S3) the server's time.
#[derive(Debug, Default, PartialEq)]
struct ErrorFields {
    code: Option<String>,
    message: Option<String>,
    server_time: Option<SystemTime>,
}

/// An XML error body: S3's `<Error>`, the query protocol's `<ErrorResponse><Error>` and EC2's
/// `<Response><Errors><Error>` (the root's name is not checked).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct XmlError {
    code: Option<String>,
    message: Option<String>,
    server_time: Option<String>,
    error: Option<Box<XmlError>>,
    errors: Option<Box<XmlError>>,
}

impl XmlError {
    /// The innermost error with a code.
    fn into_fields(self) -> ErrorFields {
        if self.code.is_none() {
            if let Some(inner) = self.error.or(self.errors) {
                return inner.into_fields();
            }
        }
        ErrorFields {
            code: self.code,
            message: self.message,
            server_time: self
                .server_time
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok()),
        }
    }
}

/// Reads an error body as the client does (fuzzing; `crate::fuzzing`).
pub(crate) fn read_error_body(body: &[u8]) -> Option<String> {
    ErrorFields::read(body, &reqwest::header::HeaderMap::new()).code
}

impl ErrorFields {
    /// Reads a JSON-protocol or XML error body, and the `x-amzn-ErrorType` header that
    /// REST-JSON services send the code in.
    fn read(body: &[u8], headers: &reqwest::header::HeaderMap) -> ErrorFields {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim_start();
        let mut fields = if trimmed.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(trimmed).unwrap_or_default();
            let field = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| v.get(n).and_then(|c| c.as_str()))
                    .map(str::to_owned)
            };
            ErrorFields {
                code: field(&["__type", "code", "Code"]),
                message: field(&["message", "Message", "errorMessage"]),
                server_time: None,
            }
        } else if trimmed.starts_with('<') {
            super::xml::from_str::<XmlError>(trimmed)
                .map(XmlError::into_fields)
                .unwrap_or_default()
        } else {
            ErrorFields::default()
        };
        if fields.code.is_none() {
            fields.code = headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        // `com.amazonaws.cloudtrail.v20131101#TrailNotFoundException`, or
        // `AccessDeniedException:http://internal.amazon.com/…`: the code is the name alone.
        fields.code = fields.code.map(|c| {
            let c = c.rsplit('#').next().unwrap_or(&c);
            c.split(':').next().unwrap_or(c).to_owned()
        });
        fields
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// `to - from` in milliseconds, negative when `to` is earlier.
fn millis_between(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// `t` moved by `ms` milliseconds.
fn shift(t: SystemTime, ms: i64) -> SystemTime {
    let by = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        t + by
    } else {
        t - by
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str, header: Option<&str>) -> ErrorFields {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(h) = header {
            headers.insert("x-amzn-errortype", h.parse().unwrap());
        }
        ErrorFields::read(body.as_bytes(), &headers)
    }

    #[test]
    fn error_bodies_of_every_protocol_are_read() {
        let s3 = read(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestTimeTooSkewed</Code>\
             <Message>The difference &amp; the time</Message><RequestTime>20260101T000000Z</RequestTime>\
             <ServerTime>2026-12-02T10:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>",
            None,
        );
        assert_eq!(s3.code.as_deref(), Some("RequestTimeTooSkewed"));
        assert_eq!(s3.message.as_deref(), Some("The difference & the time"));
        assert_eq!(
            s3.server_time,
            Some(humantime::parse_rfc3339("2026-12-02T10:00:00Z").unwrap())
        );
        let query = read(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
             <Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>1</RequestId></ErrorResponse>",
            None,
        );
        assert_eq!(query.code.as_deref(), Some("AccessDenied"));
        assert_eq!(query.message.as_deref(), Some("not allowed"));
        let ec2 = read(
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors></Response>",
            None,
        );
        assert_eq!(ec2.code.as_deref(), Some("UnauthorizedOperation"));
        let json = read(
            r#"{"__type":"com.amazonaws.cloudtrail.v20131101#TrailNotFoundException","message":"Unknown trail"}"#,
            None,
        );
        assert_eq!(json.code.as_deref(), Some("TrailNotFoundException"));
        assert_eq!(json.message.as_deref(), Some("Unknown trail"));
        let rest = read(
            r#"{"Message":"User is not authorized"}"#,
            Some("AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
        );
        assert_eq!(rest.code.as_deref(), Some("AccessDeniedException"));
        assert_eq!(rest.message.as_deref(), Some("User is not authorized"));
        assert_eq!(read("<html>bad gateway</html>", None).code, None);
        assert_eq!(read("", None), ErrorFields::default());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let wait = retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }
}
