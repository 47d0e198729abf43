//! The S3 operations trailwatch uses: ListObjectsV2, GetObject, DeleteObjects.

use base64::Engine as _;
use bytes::Bytes;
use md5::Digest as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::client::{AwsClient, Request};
use super::error::AwsError;

/// Bytes in a MiB.
const MIB: u64 = 1 << 20;

/// Characters SigV4 leaves unencoded (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// In a path, `/` also stays.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last-modified time, ms since the Unix epoch.
    pub last_modified_ms: i64,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes, when a delimiter was given.
    pub prefixes: Vec<String>,
    /// Token for the next page, when there is one.
    pub next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    common_prefixes: Vec<CommonPrefix>,
    next_continuation_token: Option<String>,
    is_truncated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommonPrefix {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteResult {
    #[serde(default)]
    error: Vec<DeleteError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteError {
    key: String,
    code: String,
    #[serde(default)]
    message: String,
}

/// A key DeleteObjects did not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDeleted {
    /// The key.
    pub key: String,
    /// S3's error code.
    pub code: String,
    /// S3's message.
    pub message: String,
}

/// The S3 API of one bucket.
pub struct S3<'a> {
    client: &'a AwsClient,
    bucket: String,
}

impl<'a> S3<'a> {
    /// Operations on `bucket` through `client`.
    pub fn new(client: &'a AwsClient, bucket: &str) -> Self {
        S3 {
            client,
            bucket: bucket.to_owned(),
        }
    }

    /// The bucket's base URL: path-style with a custom endpoint, virtual-hosted on AWS (in the
    /// region's partition, FIPS or dual-stack as configured).
    /// The client requests go through.
    pub(super) fn client(&self) -> &'a AwsClient {
        self.client
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub(super) fn base(&self) -> String {
        let s = self.client.settings();
        match &s.endpoint_url {
            Some(e) => format!(
                "{}/{}",
                e.trim_end_matches('/'),
                utf8_percent_encode(&self.bucket, UNRESERVED)
            ),
            None => super::endpoint::s3_bucket_url(&self.bucket, &s.region, s.variant),
        }
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.base(), utf8_percent_encode(key, PATH))
    }

    /// One page of ListObjectsV2 (up to 1000 keys).
    pub async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        continuation: Option<&str>,
    ) -> Result<ListPage, AwsError> {
        // Query parameters in sorted order, as the canonical request wants them.
        let mut query: Vec<(&str, &str)> = vec![("list-type", "2"), ("prefix", prefix)];
        if let Some(t) = continuation {
            query.push(("continuation-token", t));
        }
        if let Some(d) = delimiter {
            query.push(("delimiter", d));
        }
        if let Some(s) = start_after {
            query.push(("start-after", s));
        }
        query.sort();
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, UNRESERVED)))
            .collect();
        let url = format!("{}/?{}", self.base(), q.join("&"));
        let resp = self
            .client
            .send(Request {
                operation: "s3:ListObjectsV2",
                service: "s3",
                method: reqwest::Method::GET,
                url,
                headers: vec![],
                body: Bytes::new(),
                key: None,
                any_status: false,
            })
            .await?;
        parse_listing(&resp.body)
    }

    /// Every page of a listing, concatenated.
    pub async fn list_all(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
    ) -> Result<ListPage, AwsError> {
        let mut all = ListPage::default();
        let mut token: Option<String> = None;
        loop {
            let page = self.list(prefix, delimiter, start_after, token.as_deref()).await?;
            all.objects.extend(page.objects);
            all.prefixes.extend(page.prefixes);
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// The region the bucket lives in (HeadBucket's `x-amz-bucket-region`), when S3 says.
    pub async fn region(&self) -> Result<Option<String>, AwsError> {
        let resp = self
            .client
            .send(Request {
                operation: "s3:HeadBucket",
                service: "s3",
                method: reqwest::Method::HEAD,
                url: format!("{}/", self.base()),
                headers: vec![],
                body: Bytes::new(),
                key: None,
                // A bucket in another region answers 301 or 400, still with its region.
                any_status: true,
            })
            .await?;
        Ok(resp
            .headers
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    /// The whole object, refused when larger than `limit` bytes.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Bytes, AwsError> {
        Ok(self.get_with_metadata(key, limit).await?.0)
    }

    /// The whole object with its user metadata (`x-amz-meta-*` headers, by name without the
    /// prefix), refused when larger than `limit` bytes: a digest file and its signature.
    pub async fn get_with_metadata(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<(Bytes, std::collections::BTreeMap<String, String>), AwsError> {
        let resp = self.client.send(self.get_request(key)).await?;
        if resp.body.len() as u64 > limit {
            return Err(AwsError::TooLarge {
                key: key.to_owned(),
                size: resp.body.len() as u64,
                limit,
            });
        }
        let metadata = resp
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok((resp.body, metadata))
    }

    /// Starts downloading an object whose body is then read as it is used (`ObjectReader`), so
    /// that a large object never sits whole in memory. Each read waits at most the client's
    /// request timeout for more bytes; an object over `limit` bytes is refused, by its
    /// Content-Length when given, else when the bytes read pass it.
    pub async fn get_stream(&self, key: &str, limit: u64) -> Result<ObjectReader, AwsError> {
        let response = self.client.send_streaming(self.get_request(key)).await?;
        if let Some(size) = response.content_length().filter(|&n| n > limit) {
            return Err(AwsError::TooLarge {
                key: key.to_owned(),
                size,
                limit,
            });
        }
        // The whole download may take the request timeout plus a second per MiB: a server
        // that trickles bytes cannot hold a file (and the poll) forever.
        let size = response.content_length().unwrap_or(limit);
        let idle = self.client.settings().request_timeout;
        let allowed = idle + std::time::Duration::from_secs(size.div_ceil(MIB));
        Ok(ObjectReader {
            response,
            chunk: Bytes::new(),
            handle: tokio::runtime::Handle::current(),
            idle,
            deadline: std::time::Instant::now() + allowed,
            allowed,
            read: 0,
            limit,
            key: key.to_owned(),
        })
    }

    fn get_request<'k>(&self, key: &'k str) -> Request<'k> {
        Request {
            operation: "s3:GetObject",
            service: "s3",
            method: reqwest::Method::GET,
            url: self.object_url(key),
            headers: vec![],
            body: Bytes::new(),
            key: Some(key),
            any_status: false,
        }
    }

    /// Uploads an object (used by tests and tools; trailwatch itself never writes to the bucket).
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), AwsError> {
        self.put_with_metadata(key, body, &[]).await
    }

    /// Uploads an object with user metadata (`x-amz-meta-<name>: <value>`; tests and tools).
    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Bytes,
        metadata: &[(&'static str, String)],
    ) -> Result<(), AwsError> {
        self.client
            .send(Request {
                operation: "s3:PutObject",
                service: "s3",
                method: reqwest::Method::PUT,
                url: self.object_url(key),
                headers: metadata.to_vec(),
                body,
                key: Some(key),
                any_status: false,
            })
            .await?;
        Ok(())
    }

    /// Creates the bucket (tests and tools).
    pub async fn create_bucket(&self) -> Result<(), AwsError> {
        // Outside us-east-1 the bucket's region is named in the body.
        let region = &self.client.settings().region;
        let body = if region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ))
        };
        self.client
            .send(Request {
                operation: "s3:CreateBucket",
                service: "s3",
                method: reqwest::Method::PUT,
                url: self.base(),
                headers: vec![],
                body,
                key: None,
                any_status: false,
            })
            .await?;
        Ok(())
    }

    /// Deletes up to 1000 keys in one request; returns the keys S3 could not delete.
    pub async fn delete(&self, keys: &[String]) -> Result<Vec<NotDeleted>, AwsError> {
        assert!(keys.len() <= 1000, "DeleteObjects takes at most 1000 keys");
        let mut body = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
        for k in keys {
            body.push_str("<Object><Key>");
            body.push_str(&quick_xml::escape::escape(k.as_str()));
            body.push_str("</Key></Object>");
        }
        body.push_str("</Delete>");
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()));
        let resp = self
            .client
            .send(Request {
                operation: "s3:DeleteObjects",
                service: "s3",
                method: reqwest::Method::POST,
                url: format!("{}/?delete=", self.base()),
                headers: vec![("content-md5", md5), ("content-type", "application/xml".into())],
                body: Bytes::from(body),
                key: None,
                any_status: false,
            })
            .await?;
        let text = String::from_utf8_lossy(&resp.body);
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let parsed: DeleteResult = super::xml::from_str(&text).map_err(|e| AwsError::Parse {
            operation: "s3:DeleteObjects",
            message: e.to_string(),
        })?;
        Ok(parsed
            .error
            .into_iter()
            .map(|e| NotDeleted {
                key: e.key,
                code: e.code,
                message: e.message,
            })
            .collect())
    }
}

/// A ListObjectsV2 answer's page.
pub(crate) fn parse_listing(body: &[u8]) -> Result<ListPage, AwsError> {
    let text = String::from_utf8_lossy(body);
    let parsed: ListBucketResult = super::xml::from_str(&text).map_err(|e| AwsError::Parse {
        operation: "s3:ListObjectsV2",
        message: e.to_string(),
    })?;
    let mut objects = Vec::with_capacity(parsed.contents.len());
    for c in parsed.contents {
        let last_modified_ms = parse_time_ms(&c.last_modified).ok_or_else(|| AwsError::Parse {
            operation: "s3:ListObjectsV2",
            message: format!("LastModified {:?} of {} is not a timestamp", c.last_modified, c.key),
        })?;
        objects.push(ObjectInfo {
            key: c.key,
            size: c.size,
            last_modified_ms,
        });
    }
    let next = if parsed.is_truncated.unwrap_or(false) {
        parsed.next_continuation_token
    } else {
        None
    };
    Ok(ListPage {
        objects,
        prefixes: parsed.common_prefixes.into_iter().map(|p| p.prefix).collect(),
        next,
    })
}

/// S3's `LastModified` (`2024-03-01T12:00:00.000Z`) in ms since the Unix epoch.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z')).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// An object's body read from the connection as it is used: the plugin's input for a large
/// object. It blocks on the async body, so it is read on a thread that may block (inside
/// `tokio::task::block_in_place`, as `run` reads files).
pub struct ObjectReader {
    response: reqwest::Response,
    chunk: Bytes,
    handle: tokio::runtime::Handle,
    /// Longest wait for the next bytes.
    idle: std::time::Duration,
    /// When the whole download must be done, and how long that allowed.
    deadline: std::time::Instant,
    allowed: std::time::Duration,
    read: u64,
    limit: u64,
    key: String,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            let left = self.deadline.saturating_duration_since(std::time::Instant::now());
            let wait = self.idle.min(left);
            let next = self.handle.block_on(tokio::time::timeout(wait, self.response.chunk()));
            let (key, read) = (&self.key, self.read);
            match next {
                Err(_) if wait < self.idle => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "{key}: the download took longer than the {:?} allowed (after {read} bytes)",
                            self.allowed
                        ),
                    ))
                }
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("{key}: no bytes for {:?} after {read} bytes of the download", self.idle),
                    ))
                }
                Ok(Err(e)) => {
                    return Err(std::io::Error::other(format!(
                        "{key}: the download failed after {read} bytes: {e}"
                    )))
                }
                Ok(Ok(None)) => return Ok(0),
                Ok(Ok(Some(bytes))) => {
                    self.read += bytes.len() as u64;
                    if self.read > self.limit {
                        return Err(std::io::Error::other(format!(
                            "{key}: over the limit of {} bytes (max_object_mib)",
                            self.limit
                        )));
                    }
                    self.chunk = bytes;
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time_ms;

    #[test]
    fn s3_timestamps_are_read() {
        assert_eq!(parse_time_ms("2024-01-01T00:00:00.000Z"), Some(1_704_067_200_000));
        assert_eq!(parse_time_ms("2024-01-01T00:00:01Z"), Some(1_704_067_201_000));
        assert_eq!(parse_time_ms("nope"), None);
    }
}
