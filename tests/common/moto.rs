//! A real moto server on 127.0.0.1, started per test and stopped on drop, plus helpers to seed
//! a trail bucket through trailwatch's own signed S3 client.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use trailwatch::aws::client::Request;
use trailwatch::aws::credentials::CredentialSource;
use trailwatch::aws::s3::S3;
use trailwatch::aws::secret::Secret;
use trailwatch::aws::{AwsClient, ClientSettings};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its working directory (the recording lands there).
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts moto's server and waits until it answers.
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // moto's own server, with its SQS queue operations made atomic (see the script).
        let child = Command::new("python3")
            .arg(super::root().join("tests/receivers/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto's server (pip install 'moto[server]'; .ci/run does)");
        let url = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, url, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = ureq_get(&format!("{}/moto-api/data.json", moto.url)) {
                if resp.0 == 200 {
                    return moto;
                }
            }
            assert!(Instant::now() < deadline, "moto's server did not start within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// POSTs to a moto-api endpoint.
    pub fn api(&self, path: &str, body: &str) -> String {
        let (status, text) = http(&format!("{}{path}", self.url), "POST", body).expect("moto api");
        assert!(status < 300, "{path}: {status} {text}");
        text
    }

    /// Turns IAM enforcement on from now.
    pub fn enforce_auth(&self) {
        self.api("/moto-api/reset-auth", "0");
    }

    /// Starts recording requests.
    pub fn start_recording(&self) {
        self.api("/moto-api/recorder/start-recording", "");
    }

    /// The requests recorded: (method, url, x-amz-target).
    pub fn recording(&self) -> Vec<(String, String, String)> {
        let (_, text) = http(&format!("{}/moto-api/recorder/download-recording", self.url), "GET", "").unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let target = v["headers"]
                    .as_object()
                    .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target")))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or("")
                    .to_owned();
                (
                    v["method"].as_str().unwrap().to_owned(),
                    v["url"].as_str().unwrap().to_owned(),
                    target,
                )
            })
            .collect()
    }

    /// A client of moto with the given keys.
    pub fn client(&self, key: &str, secret: &str) -> AwsClient {
        client_for(&self.url, key, secret)
    }
}

/// A client of an S3-compatible endpoint.
pub fn client_for(url: &str, key: &str, secret: &str) -> AwsClient {
    let settings = ClientSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(url.to_owned()),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(50),
        ..ClientSettings::default()
    };
    AwsClient::new(
        settings,
        CredentialSource::Static {
            access_key_id: key.into(),
            secret_access_key: Secret::new(secret),
            session_token: None,
        },
        42,
    )
    .unwrap()
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A minimal blocking HTTP/1.1 client for moto's own API (no AWS signing needed there).
pub fn http(url: &str, method: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    let body = if text.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    Ok((status, body))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn ureq_get(url: &str) -> std::io::Result<(u16, String)> {
    http(url, "GET", "")
}

/// One CloudTrail record with a unique id.
pub fn record(id: &str, time: &str, read_only: bool) -> String {
    let name = if read_only { "DescribeInstances" } else { "RunInstances" };
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::210987654321:user/ops","accountId":"210987654321","userName":"ops"}},"eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","userAgent":"e2e","requestID":"r-{id}","eventID":"{id}","readOnly":{read_only},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"210987654321","eventCategory":"Management"}}"#
    )
}

/// A trail bucket layout: (key, gzipped body, event ids).
#[derive(Clone)]
pub struct LogFile {
    pub key: String,
    pub body: Vec<u8>,
    pub ids: Vec<String>,
}

/// A log file for `account`/`region` delivered at `day` `hhmm`, with `n` events.
pub fn log_file(prefix: &str, account: &str, region: &str, day: &str, hhmm: &str, tag: &str, n: usize) -> LogFile {
    let (y, m, d) = (&day[0..4], &day[5..7], &day[8..10]);
    let key = format!(
        "{prefix}AWSLogs/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{y}{m}{d}T{hhmm}Z_{tag}.json.gz"
    );
    let time = format!("{day}T{}:{}:00Z", &hhmm[0..2], &hhmm[2..4]);
    let ids: Vec<String> = (0..n)
        .map(|i| format!("{account}-{region}-{day}-{hhmm}-{tag}-{i}"))
        .collect();
    let records: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| record(id, &time, i % 2 == 0))
        .collect();
    let body = crate::common::gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes());
    LogFile { key, body, ids }
}

/// Creates `bucket` and uploads `files`.
pub async fn seed(client: &AwsClient, bucket: &str, files: &[LogFile]) {
    let s3 = S3::new(client, bucket);
    s3.create_bucket().await.ok();
    for f in files {
        s3.put(&f.key, Bytes::from(f.body.clone())).await.unwrap();
    }
}

/// Creates an IAM user with an inline policy and returns its (key id, secret).
pub async fn iam_user(client: &AwsClient, url: &str, name: &str, policy: &str) -> (String, String) {
    let call = |body: String| Request {
        operation: "iam:call",
        service: "iam",
        method: reqwest::Method::POST,
        url: format!("{url}/"),
        headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
        body: Bytes::from(body),
        key: None,
        any_status: false,
    };
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    client
        .send(call(format!("Action=CreateUser&UserName={name}&Version=2010-05-08")))
        .await
        .unwrap();
    client
        .send(call(format!(
            "Action=PutUserPolicy&UserName={name}&PolicyName=p&PolicyDocument={}&Version=2010-05-08",
            enc(policy)
        )))
        .await
        .unwrap();
    let resp = client
        .send(call(format!(
            "Action=CreateAccessKey&UserName={name}&Version=2010-05-08"
        )))
        .await
        .unwrap();
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        create_access_key_result: CreateResult,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct CreateResult {
        access_key: AccessKey,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct AccessKey {
        access_key_id: String,
        secret_access_key: String,
    }
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    let key: Response = quick_xml::de::from_str(&text).unwrap();
    let key = key.create_access_key_result.access_key;
    (key.access_key_id, key.secret_access_key)
}

/// Where the test binary writes its state.
pub fn state_dir(base: &std::path::Path) -> PathBuf {
    base.join("state")
}
