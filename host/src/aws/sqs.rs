//! The SQS calls the queue source makes (JSON protocol 1.0): long-poll receives, batch deletes,
//! batch visibility changes, and the queue's attributes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{AwsClient, Request};
use super::error::AwsError;

/// At most this many messages per receive, and entries per batch call (SQS's limit).
pub const BATCH: usize = 10;

/// Set once a batch call was refused for its permission. IAM allows DeleteMessageBatch and
/// ChangeMessageVisibilityBatch with `sqs:DeleteMessage` and `sqs:ChangeMessageVisibility`
/// (there are no batch actions to grant), but some SQS-compatible servers check for actions
/// named after the batch calls: from then on the single calls are made instead.
static BATCHES_REFUSED: AtomicBool = AtomicBool::new(false);

fn refuse_batches() {
    if !BATCHES_REFUSED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            "the queue refused a batch call for its permission: deleting and extending messages one at a time from now on"
        );
    }
}

/// A message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id (the same at every receive).
    pub id: String,
    /// The handle of this receive, for deleting it and changing its visibility.
    pub receipt: String,
    /// Its body.
    pub body: String,
    /// How many times it was received, this time included.
    pub receive_count: u32,
    /// When it was sent, ms since the Unix epoch.
    pub sent_ms: Option<i64>,
}

/// An entry of a batch call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The message's id.
    pub id: String,
    /// The error code SQS gave.
    pub code: String,
    /// Its message.
    pub message: String,
}

/// What the queue says of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueAttributes {
    /// The visibility timeout, seconds.
    pub visibility_timeout_secs: Option<u64>,
    /// The redrive policy's `maxReceiveCount`, when the queue has a dead-letter queue.
    pub max_receive_count: Option<u32>,
    /// The dead-letter queue's ARN.
    pub dead_letter_arn: Option<String>,
    /// The queue's ARN.
    pub arn: Option<String>,
}

/// One queue.
pub struct Sqs<'a> {
    client: &'a AwsClient,
    queue_url: &'a str,
}

/// The region in a queue URL (`https://sqs.<region>.amazonaws.com/…`, the legacy
/// `https://<region>.queue.amazonaws.com/…`, or China's `.amazonaws.com.cn`); `None` for any other
/// host (a local endpoint).
pub fn queue_region(queue_url: &str) -> Option<String> {
    let rest = queue_url.split_once("://")?.1;
    let host = rest.split(['/', ':']).next()?;
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["sqs" | "sqs-fips", region, "amazonaws", ..] => Some((*region).to_owned()),
        [region, "queue", "amazonaws", ..] => Some((*region).to_owned()),
        _ => None,
    }
}

/// The ARN of the queue at `queue_url`, in its region (or `region` for a URL that names none).
pub fn queue_arn(queue_url: &str, region: &str) -> Option<String> {
    let region = queue_region(queue_url).unwrap_or_else(|| region.to_owned());
    let path = queue_url.split_once("://")?.1.split_once('/')?.1;
    let mut parts = path.trim_end_matches('/').split('/');
    let (account, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !crate::layout::is_account_id(account) || name.is_empty() {
        return None;
    }
    let partition = super::endpoint::Partition::of(&region).name();
    Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

/// A JSON-protocol SQS request of `action` to the endpoint `base` (no trailing `/`).
pub fn json_request(base: &str, operation: &'static str, action: &str, body: &Value) -> Request<'static> {
    Request {
        operation,
        service: "sqs",
        method: reqwest::Method::POST,
        url: format!("{base}/"),
        headers: vec![
            ("content-type", "application/x-amz-json-1.0".into()),
            ("x-amz-target", format!("AmazonSQS.{action}")),
        ],
        body: Bytes::from(body.to_string()),
        key: None,
        any_status: false,
    }
}

impl<'a> Sqs<'a> {
    /// The queue at `queue_url`, through `client` (signed for the client's region).
    pub fn new(client: &'a AwsClient, queue_url: &'a str) -> Self {
        Sqs { client, queue_url }
    }

    async fn call<T: DeserializeOwned>(&self, operation: &'static str, body: Value) -> Result<T, AwsError> {
        let action = operation.trim_start_matches("sqs:");
        let resp = self
            .client
            .send(json_request(&self.client.service_url("sqs"), operation, action, &body))
            .await
            .map_err(|e| match e {
                // The queue is gone or misnamed: say which, as not found.
                AwsError::Service { code, message, .. }
                    if code == "QueueDoesNotExist" || code == "AWS.SimpleQueueService.NonExistentQueue" =>
                {
                    AwsError::NotFound {
                        operation,
                        code,
                        message: format!("{message} (queue {})", self.queue_url),
                    }
                }
                e => e,
            })?;
        let body: &[u8] = if resp.body.is_empty() { b"{}" } else { &resp.body };
        serde_json::from_slice(body).map_err(|e| AwsError::Parse {
            operation,
            message: e.to_string(),
        })
    }

    /// ReceiveMessage: waits up to `wait_secs` (long polling) for up to `max` messages.
    pub async fn receive(&self, max: usize, wait_secs: u64) -> Result<Vec<Message>, AwsError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Raw {
            message_id: String,
            receipt_handle: String,
            body: String,
            attributes: BTreeMap<String, String>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Answer {
            messages: Vec<Raw>,
        }
        let names = ["ApproximateReceiveCount", "SentTimestamp"];
        let a: Answer = self
            .call(
                "sqs:ReceiveMessage",
                json!({
                    "QueueUrl": self.queue_url,
                    "MaxNumberOfMessages": max.clamp(1, BATCH),
                    "WaitTimeSeconds": wait_secs.min(20),
                    "MessageSystemAttributeNames": names,
                    "AttributeNames": names,
                }),
            )
            .await?;
        Ok(a.messages
            .into_iter()
            .map(|m| Message {
                receive_count: m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                sent_ms: m.attributes.get("SentTimestamp").and_then(|t| t.parse().ok()),
                id: m.message_id,
                receipt: m.receipt_handle,
                body: m.body,
            })
            .collect())
    }

    /// DeleteMessageBatch of up to ten (id, receipt) pairs; the entries that failed.
    pub async fn delete(&self, entries: &[(String, String)]) -> Result<Vec<Failed>, AwsError> {
        if BATCHES_REFUSED.load(Ordering::Relaxed) {
            return self
                .one_by_one(entries, |receipt| {
                    (
                        "sqs:DeleteMessage",
                        json!({"QueueUrl": self.queue_url, "ReceiptHandle": receipt}),
                    )
                })
                .await;
        }
        let list: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (_, receipt))| json!({"Id": i.to_string(), "ReceiptHandle": receipt}))
            .collect();
        match self
            .batch(
                "sqs:DeleteMessageBatch",
                json!({"QueueUrl": self.queue_url, "Entries": list}),
                entries,
            )
            .await
        {
            Err(AwsError::Denied { .. }) => {
                refuse_batches();
                Box::pin(self.delete(entries)).await
            }
            other => other,
        }
    }

    /// ChangeMessageVisibilityBatch of up to ten (id, receipt) pairs to `timeout_secs`; the
    /// entries that failed.
    pub async fn change_visibility(
        &self,
        entries: &[(String, String)],
        timeout_secs: u64,
    ) -> Result<Vec<Failed>, AwsError> {
        if BATCHES_REFUSED.load(Ordering::Relaxed) {
            return self
                .one_by_one(entries, |receipt| {
                    (
                        "sqs:ChangeMessageVisibility",
                        json!({"QueueUrl": self.queue_url, "ReceiptHandle": receipt, "VisibilityTimeout": timeout_secs}),
                    )
                })
                .await;
        }
        let list: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (_, receipt))| {
                json!({"Id": i.to_string(), "ReceiptHandle": receipt, "VisibilityTimeout": timeout_secs})
            })
            .collect();
        match self
            .batch(
                "sqs:ChangeMessageVisibilityBatch",
                json!({"QueueUrl": self.queue_url, "Entries": list}),
                entries,
            )
            .await
        {
            Err(AwsError::Denied { .. }) => {
                refuse_batches();
                Box::pin(self.change_visibility(entries, timeout_secs)).await
            }
            other => other,
        }
    }

    /// The single calls of a batch, one per entry: an entry refused with a code of its own is
    /// reported as failed, a refusal of the call itself is the error.
    async fn one_by_one(
        &self,
        entries: &[(String, String)],
        call: impl Fn(&str) -> (&'static str, Value),
    ) -> Result<Vec<Failed>, AwsError> {
        let mut failed = Vec::new();
        for (id, receipt) in entries {
            let (operation, body) = call(receipt);
            match self.call::<Value>(operation, body).await {
                Ok(_) => {}
                Err(AwsError::Service { code, message, .. }) => failed.push(Failed {
                    id: id.clone(),
                    code,
                    message,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(failed)
    }

    async fn batch(
        &self,
        operation: &'static str,
        body: Value,
        entries: &[(String, String)],
    ) -> Result<Vec<Failed>, AwsError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Entry {
            id: String,
            code: String,
            message: String,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Answer {
            failed: Vec<Entry>,
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let a: Answer = self.call(operation, body).await?;
        Ok(a.failed
            .into_iter()
            .map(|f| Failed {
                id: f
                    .id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| entries.get(i))
                    .map_or(f.id, |(id, _)| id.clone()),
                code: f.code,
                message: f.message,
            })
            .collect())
    }

    /// GetQueueAttributes: the visibility timeout, the redrive policy and the ARN.
    pub async fn attributes(&self) -> Result<QueueAttributes, AwsError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Answer {
            attributes: BTreeMap<String, String>,
        }
        let a: Answer = self
            .call(
                "sqs:GetQueueAttributes",
                json!({
                    "QueueUrl": self.queue_url,
                    "AttributeNames": ["VisibilityTimeout", "RedrivePolicy", "QueueArn"],
                }),
            )
            .await?;
        let redrive: Option<Value> = a
            .attributes
            .get("RedrivePolicy")
            .and_then(|p| serde_json::from_str(p).ok());
        Ok(QueueAttributes {
            visibility_timeout_secs: a.attributes.get("VisibilityTimeout").and_then(|v| v.parse().ok()),
            max_receive_count: redrive.as_ref().and_then(|r| match &r["maxReceiveCount"] {
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
            dead_letter_arn: redrive
                .as_ref()
                .and_then(|r| r["deadLetterTargetArn"].as_str().map(str::to_owned)),
            arn: a.attributes.get("QueueArn").cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_queue_url() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/111122223333/trail").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            queue_region("https://us-east-2.queue.amazonaws.com/111122223333/trail").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            queue_region("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/trail").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/111122223333/trail"), None);
    }

    #[test]
    fn the_arn_comes_from_the_queue_url() {
        assert_eq!(
            queue_arn(
                "https://sqs.us-gov-west-1.amazonaws.com/111122223333/trail-files",
                "us-east-1"
            )
            .as_deref(),
            Some("arn:aws-us-gov:sqs:us-gov-west-1:111122223333:trail-files")
        );
        assert_eq!(
            queue_arn("http://127.0.0.1:5000/111122223333/q", "eu-west-1").as_deref(),
            Some("arn:aws:sqs:eu-west-1:111122223333:q")
        );
        assert_eq!(queue_arn("https://sqs.us-east-1.amazonaws.com/q", "us-east-1"), None);
    }
}
