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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trailwatch::aws::credentials::CredentialSource;
use trailwatch::aws::s3::S3;
use trailwatch::aws::{AwsClient, AwsError, ClientSettings};
use trailwatch::runtime::cache::CompileCache;
use trailwatch::runtime::{Limits, PluginRuntime};
use trailwatch::source::layout::Day;
use trailwatch::source::s3_poll::{Clock, PollSettings, Poller, Start};
use trailwatch::state::checkpoint::CheckpointStore;

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Reads one HTTP/1.1 request (head and Content-Length body); `None` at EOF.
async fn read_request(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the proxy answers instead of forwarding the `n`th request (from 0), if anything; an
/// empty answer is a connection reset.
type Injection = fn(u64) -> Option<Vec<u8>>;

/// SlowDown 503, InternalError 500, a reset, 429, in a fixed pattern.
fn throttling(n: u64) -> Option<Vec<u8>> {
    match n % 6 {
        1 => Some(error_response("503 Slow Down", "SlowDown")),
        2 => Some(error_response("500 Internal Server Error", "InternalError")),
        4 if n % 12 == 4 => Some(Vec::new()),
        5 if n % 18 == 5 => Some(error_response("429 Too Many Requests", "TooManyRequests")),
        _ => None,
    }
}

/// Fails requests as `inject` says and forwards the rest to `upstream`. One request per
/// connection.
async fn serve(
    listener: TcpListener,
    upstream: String,
    seen: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
    inject: Injection,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let upstream = upstream.clone();
        let seen = seen.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let Some(request) = read_request(&mut sock).await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::Relaxed);
            if let Some(resp) = inject(n) {
                faults.fetch_add(1, Ordering::Relaxed);
                if !resp.is_empty() {
                    sock.write_all(&resp).await.ok();
                }
                // An empty injection is a connection reset: close without an answer.
                return;
            }
            let Ok(mut up) = TcpStream::connect(&upstream).await else {
                return;
            };
            let text = String::from_utf8_lossy(&request);
            let head_end = text.find("\r\n\r\n").map(|i| i + 2).unwrap_or(0);
            let mut forwarded = Vec::new();
            for line in text[..head_end].split("\r\n").filter(|l| !l.is_empty()) {
                if !line.to_ascii_lowercase().starts_with("connection:") {
                    forwarded.extend_from_slice(line.as_bytes());
                    forwarded.extend_from_slice(b"\r\n");
                }
            }
            forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
            forwarded.extend_from_slice(&request[head_end + 2..]);
            if up.write_all(&forwarded).await.is_err() {
                return;
            }
            let mut response = Vec::new();
            if up.read_to_end(&mut response).await.is_err() {
                return;
            }
            sock.write_all(&response).await.ok();
        });
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

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = moto.url.trim_start_matches("http://").to_owned();
    let seen = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(AtomicU64::new(0));
    tokio::spawn(serve(listener, upstream, seen.clone(), faults.clone(), throttling));

    let client = Arc::new(moto::client_for(&proxy_url, "AKIDTEST", "secret"));
    let runtime = Arc::new(
        PluginRuntime::from_file(
            &common::plugin_path(),
            &CompileCache::in_dir(common::cache_dir()),
            Limits::default(),
        )
        .unwrap(),
    );
    let state = tempfile::tempdir().unwrap();
    let settings = PollSettings {
        bucket: "trail-bucket".into(),
        prefix: String::new(),
        accounts: vec![],
        regions: vec![],
        include_insight: false,
        start: Start::Day(Day::parse("2024-03-02").unwrap()),
        relist_days: 2,
        max_concurrent_fetches: 4,
        max_object_bytes: 1 << 20,
        delete_after: None,
        drop_read_only: false,
        delayed_after: Duration::from_secs(900),
        discovery_interval: Duration::from_secs(600),
    };
    let clock = Arc::new(FixedClock(AtomicI64::new(
        Day::parse("2024-03-02").unwrap().epoch_days * 86_400_000 + 20 * 3_600_000,
    )));
    let mut poller = Poller::new(
        client.clone(),
        runtime,
        settings,
        CheckpointStore::open(state.path()).unwrap(),
        clock,
    )
    .unwrap();
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
fn first_expired(n: u64) -> Option<Vec<u8>> {
    (n == 0).then(|| error_response("400 Bad Request", "ExpiredToken"))
}

/// A bucket with one object behind a proxy that refuses the first request's credentials.
async fn expired_once() -> (Moto, String, Arc<AtomicU64>) {
    let moto = Moto::start();
    let direct = moto.client("AKIDTEST", "secret");
    let file = moto::log_file("", "111122223333", "us-east-1", "2024-03-02", "0000", "f", 1);
    moto::seed(&direct, "trail-bucket", &[file]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = moto.url.trim_start_matches("http://").to_owned();
    let faults = Arc::new(AtomicU64::new(0));
    tokio::spawn(serve(
        listener,
        upstream,
        Arc::new(AtomicU64::new(0)),
        faults.clone(),
        first_expired,
    ));
    (moto, proxy_url, faults)
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
