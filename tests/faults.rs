//! Throttling, 5xx, connection resets and refused credentials from a small fault-injecting proxy
//! in front of moto: every request is retried until it goes through, and no event is lost or
//! doubled; credentials AWS refuses are loaded again.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use common::moto::{self, Moto};
use common::poller::{pipeline_settings, Poller};
use common::proxy::{error_response, Fault, Proxy};
use trailwatch::aws::credentials::CredentialSource;
use trailwatch::aws::s3::S3;
use trailwatch::aws::{AwsClient, AwsError, ClientSettings};
use trailwatch::layout::Day;
use trailwatch::pipeline::Clock;
use trailwatch::runtime::cache::CompileCache;
use trailwatch::runtime::{Limits, PluginRuntime};
use trailwatch::source::s3_poll::{PollSettings, Start};
use trailwatch::state::checkpoint::CheckpointStore;

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A poller of `trail-bucket` from 2024-03-02 with its checkpoint in `state`, that reads every
/// object from the connection as it is used, so that the streaming path meets the faults.
fn streaming_poller(client: Arc<AwsClient>, state: &std::path::Path) -> Poller {
    streaming_poller_with(client, state, pipeline_settings())
}

/// As [`streaming_poller`], reading as `pipeline` says.
fn streaming_poller_with(
    client: Arc<AwsClient>,
    state: &std::path::Path,
    pipeline: trailwatch::pipeline::PipelineSettings,
) -> Poller {
    let runtime = Arc::new(
        PluginRuntime::from_file(
            &common::plugin_path(),
            &CompileCache::in_dir(common::cache_dir()),
            Limits::default(),
        )
        .unwrap(),
    );
    let settings = PollSettings {
        bucket: "trail-bucket".into(),
        prefix: String::new(),
        accounts: vec![],
        regions: vec![],
        include_insight: false,
        start: Start::Day(Day::parse("2024-03-02").unwrap()),
        relist_days: 2,
        relist_interval: Duration::ZERO,
        max_object_bytes: 64 << 20,
        stream_above_bytes: 0,
        delete_after: None,
        discovery_interval: Duration::from_secs(600),
    };
    let clock = Arc::new(FixedClock(AtomicI64::new(
        Day::parse("2024-03-02").unwrap().epoch_days * 86_400_000 + 20 * 3_600_000,
    )));
    Poller::new(
        client,
        runtime,
        settings,
        pipeline,
        CheckpointStore::open(state).unwrap(),
        clock,
    )
}

/// SlowDown 503, InternalError 500, a reset, 429, in a fixed pattern.
fn throttling(n: u64, _head: &str) -> Option<Fault> {
    match n % 6 {
        1 => Some(Fault::Answer(error_response("503 Slow Down", "SlowDown"))),
        2 => Some(Fault::Answer(error_response(
            "500 Internal Server Error",
            "InternalError",
        ))),
        4 if n % 12 == 4 => Some(Fault::Reset),
        5 if n % 18 == 5 => Some(Fault::Answer(error_response(
            "429 Too Many Requests",
            "TooManyRequests",
        ))),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_and_resets_are_retried_and_nothing_is_lost() {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    let files: Vec<moto::LogFile> = (0..40)
        .map(|f| {
            moto::log_file(
                "",
                "111122223333",
                "us-east-1",
                "2024-03-02",
                &format!("{:02}{:02}", f / 4, (f % 4) * 15),
                &format!("f{f}"),
                5,
            )
        })
        .collect();
    moto::seed(&direct, "trail-bucket", &files).await;

    let proxy = Proxy::start(&moto.url, throttling).await;
    let faults = proxy.faults.clone();
    let client = Arc::new(moto::client_for(&proxy.url, "AKIDTEST", "secret"));
    let state = tempfile::tempdir().unwrap();
    // One request at a time: the fault pattern counts requests, and requests that several
    // readers retry in lockstep could meet it at every attempt (no real endpoint fails that
    // way; a file whose retries run out would only be read again at the next poll).
    let mut one_at_a_time = pipeline_settings();
    one_at_a_time.max_concurrent_files = 1;
    one_at_a_time.max_prefetch = 0;
    let mut poller = streaming_poller_with(client.clone(), state.path(), one_at_a_time);
    let mut out = Vec::new();
    let report = poller.poll_once(&mut out, &AtomicBool::new(false)).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let events = common::lines(&out);
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = files.iter().flat_map(|f| f.ids.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every event exactly once");
    let counts = client.counts();
    let retries: u64 = counts.retries.values().sum();
    assert!(faults.load(Ordering::Relaxed) >= 20, "the proxy injected faults");
    assert_eq!(
        retries,
        faults.load(Ordering::Relaxed),
        "each injected fault cost exactly one retry"
    );
}

/// Credentials from a source that can be asked again, counting how often it is asked.
#[derive(Debug)]
struct CountingProvider(Arc<AtomicU64>);

impl ProvideCredentials for CountingProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.fetch_add(1, Ordering::Relaxed);
        // Valid for an hour: only AWS's refusal can make the client ask again this soon.
        let expiry = std::time::SystemTime::now() + Duration::from_secs(3600);
        provider::future::ProvideCredentials::ready(Ok(Credentials::new(
            "AKIDTEST",
            "secret",
            Some("token".into()),
            Some(expiry),
            "test",
        )))
    }
}

/// The first request is refused with ExpiredToken, as S3 answers a revoked session.
fn first_expired(n: u64, _head: &str) -> Option<Fault> {
    (n == 0).then(|| Fault::Answer(error_response("400 Bad Request", "ExpiredToken")))
}

/// A bucket with one object behind a proxy that refuses the first request's credentials.
async fn expired_once() -> (Moto, String, Arc<AtomicU64>) {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    let file = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "f", 1);
    moto::seed(&direct, "trail-bucket", &[file]).await;
    let proxy = Proxy::start(&moto.url, first_expired).await;
    (moto, proxy.url, proxy.faults)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_loaded_again_before_their_stated_expiry() {
    let (_moto, proxy_url, faults) = expired_once().await;
    let calls = Arc::new(AtomicU64::new(0));
    let settings = ClientSettings {
        endpoint_url: Some(proxy_url),
        ..ClientSettings::default()
    };
    let source = CredentialSource::Provider(SharedCredentialsProvider::new(CountingProvider(calls.clone())));
    let client = AwsClient::new(settings, source, 42).unwrap();
    let listed = S3::new(&client, "trail-bucket")
        .list_all("AWSLogs/", None, None)
        .await
        .unwrap();
    assert_eq!(listed.objects.len(), 1);
    assert_eq!(faults.load(Ordering::Relaxed), 1, "the proxy refused one request");
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "asked again after the refusal, not at expiry"
    );
    assert_eq!(client.counts().retries.values().sum::<u64>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_keys_from_the_config_file_are_reported_not_retried() {
    let (_moto, proxy_url, _) = expired_once().await;
    let client = moto::client_for(&proxy_url, "AKIDTEST", "secret");
    let e = S3::new(&client, "trail-bucket")
        .list_all("AWSLogs/", None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AwsError::Credentials { code, .. } if code == "ExpiredToken"),
        "{e:?}"
    );
    assert_eq!(client.counts().retries.values().sum::<u64>(), 0);
}

/// The first download of a log file is cut off halfway through its body.
fn first_download_cut(_n: u64, head: &str) -> Option<Fault> {
    static CUT: AtomicBool = AtomicBool::new(false);
    let request_line = head.lines().next().unwrap_or("");
    let download = request_line.starts_with("GET ") && request_line.contains(".json.gz");
    (download && !CUT.swap(true, Ordering::Relaxed)).then_some(Fault::Truncate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_off_midway_is_read_again_without_repeating_the_events_already_written() {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    // Large enough that half of it holds whole records: they are written before the cut.
    let file = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "big", 3000);
    moto::seed(&direct, "trail-bucket", std::slice::from_ref(&file)).await;
    let proxy = Proxy::start(&moto.url, first_download_cut).await;
    let client = Arc::new(moto::client_for(&proxy.url, "AKIDTEST", "secret"));
    let state = tempfile::tempdir().unwrap();
    let mut poller = streaming_poller(client, state.path());

    let mut out = Vec::new();
    let report = poller.poll_once(&mut out, &AtomicBool::new(false)).await.unwrap();
    assert_eq!(proxy.faults.load(Ordering::Relaxed), 1);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let (key, reason) = &report.failed[0];
    assert_eq!(key, &file.key);
    assert!(reason.contains("the download failed after"), "{reason}");
    let before_cut = common::lines(&out).len();
    assert!(
        before_cut > 0 && before_cut < 3000,
        "the events before the cut are written: {before_cut}"
    );
    assert!(
        !poller.checkpoint().failed[key].quarantined,
        "a cut download is tried again"
    );

    let mut again = Vec::new();
    let report = poller.poll_once(&mut again, &AtomicBool::new(false)).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        report.not_repeated, before_cut as u64,
        "the events written before the cut are not written again"
    );
    let ids: Vec<String> = common::lines(&out)
        .iter()
        .chain(common::lines(&again).iter())
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, file.ids,
        "every event exactly once, in order, across the two polls"
    );
    assert!(poller.checkpoint().failed.is_empty());
}

/// Downloads of log files get no answer at all.
fn downloads_unanswered(_n: u64, head: &str) -> Option<Fault> {
    let request_line = head.lines().next().unwrap_or("");
    (request_line.starts_with("GET ") && request_line.contains(".json.gz")).then_some(Fault::Hang)
}

/// Downloads of log files stall halfway through the body.
fn downloads_stall(_n: u64, head: &str) -> Option<Fault> {
    let request_line = head.lines().next().unwrap_or("");
    (request_line.starts_with("GET ") && request_line.contains(".json.gz")).then_some(Fault::Stall)
}

/// Polls once through a proxy making `inject`'s faults, with a 1 s request timeout and two
/// attempts per request; returns the report and the events written.
async fn poll_with_short_timeout(inject: common::proxy::Injection) -> (trailwatch::pipeline::CycleReport, usize) {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    let file = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "big", 3000);
    moto::seed(&direct, "trail-bucket", &[file]).await;
    let proxy = Proxy::start(&moto.url, inject).await;
    let settings = ClientSettings {
        endpoint_url: Some(proxy.url.clone()),
        request_timeout: Duration::from_secs(1),
        max_attempts: 2,
        backoff_base: Duration::from_millis(5),
        ..ClientSettings::default()
    };
    let source = CredentialSource::Static {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: trailwatch::aws::secret::Secret::new("secret"),
        session_token: None,
    };
    let client = Arc::new(AwsClient::new(settings, source, 42).unwrap());
    let state = tempfile::tempdir().unwrap();
    let mut poller = streaming_poller(client, state.path());
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    let report = poller.poll_once(&mut out, &AtomicBool::new(false)).await.unwrap();
    // Bounded by the 1 s timeout and two attempts per request, not by the faults (a hang would
    // never end): the bound is wide so that a loaded machine does not fail it.
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    (report, common::lines(&out).len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_never_answers_fails_its_file_after_the_request_timeout() {
    let (report, events) = poll_with_short_timeout(downloads_unanswered).await;
    assert_eq!(events, 0);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(
        report.failed[0].1.contains("no answer within 1s"),
        "{:?}",
        report.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_stalls_midway_fails_its_file_after_the_request_timeout() {
    let (report, events) = poll_with_short_timeout(downloads_stall).await;
    assert!(
        events > 0 && events < 3000,
        "the events before the stall are written: {events}"
    );
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("no bytes for 1s"), "{:?}", report.failed);
}

/// A 503 asking, with `Retry-After`, for two seconds' pause.
fn slow_down_with_retry_after(n: u64, _head: &str) -> Option<Fault> {
    (n == 0).then(|| {
        let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        Fault::Answer(
            format!(
                "HTTP/1.1 503 Slow Down\r\nRetry-After: 2\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_answer_is_waited_for_before_the_next_attempt() {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    moto::seed(&direct, "trail-bucket", &[]).await;
    let proxy = Proxy::start(&moto.url, slow_down_with_retry_after).await;
    // The client's own back-off is 5-50 ms: only the header can make it wait two seconds.
    let client = moto::client_for(&proxy.url, "AKIDTEST", "secret");
    let started = std::time::Instant::now();
    let page = S3::new(&client, "trail-bucket").list_all("", None, None).await.unwrap();
    assert!(page.objects.is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
    assert_eq!(client.counts().retries.get("s3:ListObjectsV2"), Some(&1));
}

/// AWS's time in these tests: an hour ahead of this machine's.
fn aws_now() -> std::time::SystemTime {
    std::time::SystemTime::now() + Duration::from_secs(3600)
}

/// The request's signing time, from its `x-amz-date` header (`20261202T215800Z`).
fn signed_at(head: &str) -> Option<std::time::SystemTime> {
    let v = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-amz-date:")
            .map(|v| v.trim().to_owned())
    })?;
    let b = v.as_bytes();
    if b.len() != 16 {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &v[0..4],
        &v[4..6],
        &v[6..8],
        &v[9..11],
        &v[11..13],
        &v[13..15]
    );
    humantime::parse_rfc3339(&text).ok()
}

/// Whether a request was signed more than five minutes away from AWS's time.
fn skewed(head: &str) -> bool {
    signed_at(head).is_none_or(|t| {
        let now = aws_now();
        let off = now
            .duration_since(t)
            .or_else(|_| t.duration_since(now))
            .unwrap_or_default();
        off > Duration::from_secs(300)
    })
}

/// An answer refusing the request's time as S3 (XML, `ServerTime`) or a JSON-protocol service
/// (`InvalidSignatureException`, only the `Date` header says AWS's time) gives it.
fn time_refusal(head: &str) -> Fault {
    let date = httpdate::fmt_http_date(aws_now());
    let (kind, body) = if head.contains("x-amz-target") || head.contains("X-Amz-Target") {
        (
            "application/x-amz-json-1.1",
            r#"{"__type":"InvalidSignatureException","message":"Signature expired: the request's time is earlier than AWS's time minus 5 minutes"}"#.to_owned(),
        )
    } else {
        (
            "application/xml",
            format!(
                "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><ServerTime>{}</ServerTime></Error>",
                humantime::format_rfc3339_seconds(aws_now())
            ),
        )
    };
    let status = if kind == "application/xml" {
        "403 Forbidden"
    } else {
        "400 Bad Request"
    };
    Fault::Answer(
        format!(
            "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// AWS an hour ahead: a request signed with this machine's time is refused.
fn clock_an_hour_ahead(_n: u64, head: &str) -> Option<Fault> {
    skewed(head).then(|| time_refusal(head))
}

/// A request is refused for its time whatever time it was signed with.
fn always_too_skewed(_n: u64, head: &str) -> Option<Fault> {
    Some(time_refusal(head))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_corrected_from_aws_time_not_taken_for_refused_credentials() {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    moto::seed(&direct, "trail-bucket", &[]).await;
    let proxy = Proxy::start(&moto.url, clock_an_hour_ahead).await;

    // S3, which says `RequestTimeTooSkewed` and its `ServerTime`.
    let client = moto::client_for(&proxy.url, "AKIDTEST", "secret");
    let s3 = S3::new(&client, "trail-bucket");
    s3.list_all("", None, None).await.unwrap();
    let skew = client.clock_skew_ms();
    assert!((3_590_000..=3_610_000).contains(&skew), "learned skew {skew} ms");
    // Once learned, requests are signed with AWS's time and pass at the first attempt.
    s3.list_all("", None, None).await.unwrap();
    s3.list_all("AWSLogs/", None, None).await.unwrap();
    assert_eq!(proxy.faults.load(Ordering::Relaxed), 1);
    assert_eq!(client.counts().retries.get("s3:ListObjectsV2"), Some(&1));

    // CloudTrail's JSON protocol, which refuses the signature and says its time in `Date`.
    let client = moto::client_for(&proxy.url, "AKIDTEST", "secret");
    trailwatch::aws::cloudtrail::describe_trails(&client).await.unwrap();
    assert!((3_590_000..=3_610_000).contains(&client.clock_skew_ms()));
    assert_eq!(proxy.faults.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_refusal_that_correction_does_not_cure_is_reported_as_clock_skew() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.url, always_too_skewed).await;
    let client = moto::client_for(&proxy.url, "AKIDTEST", "secret");
    let err = S3::new(&client, "trail-bucket")
        .list_all("", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::ClockSkew { .. }), "{err:?}");
    assert!(!err.is_auth());
    let text = err.to_string();
    assert!(
        text.contains("RequestTimeTooSkewed") && text.contains("clock is off AWS's by"),
        "{text}"
    );
    // One attempt with this machine's time, one with AWS's: no credential reload, no back-off loop.
    assert_eq!(client.counts().requests.get("s3:ListObjectsV2"), Some(&2));
}
