//! CloudTrail's integrity evidence, made the way CloudTrail makes it, for a test bucket: hourly
//! log files and the hourly digests that list them, chained and signed with a test key pair
//! (tests/fixtures/integrity), and a `ListPublicKeys` answer for the proxy to give in front of
//! moto (which has no such call). Written from CloudTrail's documentation of the digest format,
//! independently of trailwatch's own reading of it.
#![allow(dead_code)]

use bytes::Bytes;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest as _, Sha256};
use trailwatch::aws::s3::S3;
use trailwatch::aws::AwsClient;

use super::moto::{self, LogFile};

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
pub const TRAIL: &str = "main-trail";
/// The fingerprint the test key is known by.
pub const FINGERPRINT: &str = "7d2a5d1b0c4e6f8a9b1c2d3e4f5a6b7c";

/// A test key pair: `cloudtrail-test-key.pem` (CloudTrail's stand-in) or `foreign-test-key.pem`.
pub fn private_key(name: &str) -> RsaPrivateKey {
    let pem = std::fs::read_to_string(super::root().join("tests/fixtures/integrity").join(name)).unwrap();
    RsaPrivateKey::from_pkcs1_pem(&pem).unwrap()
}

/// `ListPublicKeys`' answer holding the test key.
pub fn list_public_keys_answer() -> String {
    use base64::Engine as _;
    let der = private_key("cloudtrail-test-key.pem")
        .to_public_key()
        .to_pkcs1_der()
        .unwrap();
    let value = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    format!(
        r#"{{"PublicKeyList":[{{"Value":"{value}","ValidityStartTime":1.5E9,"ValidityEndTime":2.5E9,"Fingerprint":"{FINGERPRINT}"}}]}}"#
    )
}

/// The same, as the HTTP answer the proxy gives.
pub fn list_public_keys_response() -> Vec<u8> {
    let body = list_public_keys_answer();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One digest as stored: key, gzipped body, signature (hex), and the SHA-256 of its content.
#[derive(Clone)]
pub struct DigestFile {
    pub key: String,
    pub body: Vec<u8>,
    pub signature: String,
    pub sha256: String,
}

/// A stream's evidence: log files and their digests, hour by hour.
pub struct Evidence {
    pub bucket: String,
    pub logs: Vec<LogFile>,
    pub digests: Vec<DigestFile>,
}

/// Where a stream's evidence is: an account and a region.
#[derive(Clone, Copy)]
pub struct Stream<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

/// The stream the single-stream helpers use.
pub const STREAM: Stream<'static> = Stream {
    account: ACCOUNT,
    region: REGION,
};

fn digest_key(stream: Stream, end: &str) -> String {
    // end: 2024-03-01T11:00:00Z
    let compact: String = end.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let (y, m, d) = (&end[0..4], &end[5..7], &end[8..10]);
    let Stream { account, region } = stream;
    format!("AWSLogs/{account}/CloudTrail-Digest/{region}/{y}/{m}/{d}/{account}_CloudTrail-Digest_{region}_{TRAIL}_{REGION}_{compact}.json.gz")
}

/// Signs a digest's content as CloudTrail does: digestEndTime, bucket/key, the content's
/// SHA-256 and the previous signature (`null` for a chain's first), a line each.
pub fn sign(
    key: &RsaPrivateKey,
    end: &str,
    bucket: &str,
    digest_key: &str,
    content: &[u8],
    previous: Option<&str>,
) -> String {
    let text = format!(
        "{end}\n{bucket}/{digest_key}\n{}\n{}",
        hex(&Sha256::digest(content)),
        previous.unwrap_or("null")
    );
    hex(&key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text.as_bytes()))
        .unwrap())
}

/// A digest's JSON for the hour ending at `end`, listing `logs`.
pub fn digest_json(
    stream: Stream,
    bucket: &str,
    start: &str,
    end: &str,
    logs: &[&LogFile],
    previous: Option<&DigestFile>,
) -> String {
    let files: Vec<String> = logs
        .iter()
        .map(|l| {
            let content = super::gunzip(&l.body);
            format!(
                r#"{{"s3Bucket":"{bucket}","s3Object":"{}","hashValue":"{}","hashAlgorithm":"SHA-256","newestEventTime":"{start}","oldestEventTime":"{start}"}}"#,
                l.key,
                hex(&Sha256::digest(&content))
            )
        })
        .collect();
    let previous = match previous {
        Some(p) => format!(
            r#""previousDigestS3Bucket":"{bucket}","previousDigestS3Object":"{}","previousDigestHashValue":"{}","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"{}""#,
            p.key, p.sha256, p.signature
        ),
        None => r#""previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null"#.into(),
    };
    format!(
        r#"{{"awsAccountId":"{}","digestStartTime":"{start}","digestEndTime":"{end}","digestS3Bucket":"{bucket}","digestS3Object":"{}","digestPublicKeyFingerprint":"{FINGERPRINT}","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,{previous},"logFiles":[{}]}}"#,
        stream.account,
        digest_key(stream, end),
        files.join(",")
    )
}

/// A digest file of the single stream for the hour `start`..`end` listing `logs`, chained to
/// `previous`, signed with `key`.
pub fn digest(
    key: &RsaPrivateKey,
    bucket: &str,
    start: &str,
    end: &str,
    logs: &[&LogFile],
    previous: Option<&DigestFile>,
) -> DigestFile {
    digest_in(STREAM, key, bucket, start, end, logs, previous)
}

/// The same in `stream`.
pub fn digest_in(
    stream: Stream,
    key: &RsaPrivateKey,
    bucket: &str,
    start: &str,
    end: &str,
    logs: &[&LogFile],
    previous: Option<&DigestFile>,
) -> DigestFile {
    let content = digest_json(stream, bucket, start, end, logs, previous);
    let k = digest_key(stream, end);
    let signature = sign(
        key,
        end,
        bucket,
        &k,
        content.as_bytes(),
        previous.map(|p| p.signature.as_str()),
    );
    DigestFile {
        key: k,
        body: super::gzip(content.as_bytes()),
        signature,
        sha256: hex(&Sha256::digest(content.as_bytes())),
    }
}

/// `hours` hours of evidence on 2024-03-01 from 10:00: two log files an hour (at :05 and :35)
/// and a digest at the end of each hour listing them, the first digest starting a chain.
pub fn evidence(bucket: &str, hours: u32) -> Evidence {
    evidence_in(STREAM, bucket, hours)
}

/// The same in `stream`.
pub fn evidence_in(stream: Stream, bucket: &str, hours: u32) -> Evidence {
    let key = private_key("cloudtrail-test-key.pem");
    let mut logs = Vec::new();
    let mut digests: Vec<DigestFile> = Vec::new();
    for h in 0..hours {
        let hour = 10 + h;
        let hour_logs: Vec<LogFile> = ["05", "35"]
            .iter()
            .map(|m| {
                moto::log_file(
                    "",
                    stream.account,
                    stream.region,
                    "2024-03-01",
                    &format!("{hour:02}{m}"),
                    &format!("h{hour}{m}"),
                    3,
                )
            })
            .collect();
        let start = format!("2024-03-01T{hour:02}:00:00Z");
        let end = format!("2024-03-01T{:02}:00:00Z", hour + 1);
        let d = digest_in(
            stream,
            &key,
            bucket,
            &start,
            &end,
            &hour_logs.iter().collect::<Vec<_>>(),
            digests.last(),
        );
        logs.extend(hour_logs);
        digests.push(d);
    }
    Evidence {
        bucket: bucket.into(),
        logs,
        digests,
    }
}

/// Puts a digest with its signature in its S3 metadata, as CloudTrail stores it.
pub async fn put_digest(client: &AwsClient, bucket: &str, d: &DigestFile) {
    S3::new(client, bucket)
        .put_with_metadata(
            &d.key,
            Bytes::from(d.body.clone()),
            &[
                ("x-amz-meta-signature", d.signature.clone()),
                ("x-amz-meta-signature-algorithm", "SHA256withRSA".into()),
            ],
        )
        .await
        .unwrap();
}

/// Creates the bucket and stores the evidence.
pub async fn store(client: &AwsClient, e: &Evidence) {
    moto::seed(client, &e.bucket, &e.logs).await;
    for d in &e.digests {
        put_digest(client, &e.bucket, d).await;
    }
}
