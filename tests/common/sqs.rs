//! Queue set-up on moto for the queue source's tests, through trailwatch's own signed client:
//! queues with a dead-letter queue, a bucket's notifications to a queue, messages sent in each
//! format users route to a queue.
#![allow(dead_code)]

use bytes::Bytes;
use serde_json::{json, Value};
use trailwatch::aws::client::Request;
use trailwatch::aws::AwsClient;

/// One SQS JSON-protocol call.
pub async fn call(client: &AwsClient, url: &str, action: &'static str, body: Value) -> Value {
    let resp = client
        .send(trailwatch::aws::sqs::json_request(url, "sqs:test", action, &body))
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
}

/// A queue with `visibility` seconds of visibility timeout; with `dead_letter` = Some(n), a
/// dead-letter queue that takes a message after n receives. Returns (queue URL, DLQ URL).
pub async fn queue(
    client: &AwsClient,
    url: &str,
    name: &str,
    visibility: u32,
    dead_letter: Option<u32>,
) -> (String, Option<String>) {
    let mut attributes = json!({"VisibilityTimeout": visibility.to_string()});
    let dlq = match dead_letter {
        Some(n) => {
            let dlq = call(client, url, "CreateQueue", json!({"QueueName": format!("{name}-dlq")})).await["QueueUrl"]
                .as_str()
                .unwrap()
                .to_owned();
            let arn = arn(client, url, &dlq).await;
            attributes["RedrivePolicy"] =
                json!(json!({"deadLetterTargetArn": arn, "maxReceiveCount": n.to_string()}).to_string());
            Some(dlq)
        }
        None => None,
    };
    let q = call(
        client,
        url,
        "CreateQueue",
        json!({"QueueName": name, "Attributes": attributes}),
    )
    .await["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    (q, dlq)
}

/// The queue's ARN.
pub async fn arn(client: &AwsClient, url: &str, queue: &str) -> String {
    attribute(client, url, queue, "QueueArn").await
}

/// One attribute of the queue.
pub async fn attribute(client: &AwsClient, url: &str, queue: &str, name: &str) -> String {
    call(
        client,
        url,
        "GetQueueAttributes",
        json!({"QueueUrl": queue, "AttributeNames": [name]}),
    )
    .await["Attributes"][name]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Messages in the queue, visible and in flight.
pub async fn depth(client: &AwsClient, url: &str, queue: &str) -> (u64, u64) {
    let v = call(
        client,
        url,
        "GetQueueAttributes",
        json!({"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    )
    .await;
    let n = |k: &str| v["Attributes"][k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    (
        n("ApproximateNumberOfMessages"),
        n("ApproximateNumberOfMessagesNotVisible"),
    )
}

/// Sends `body`.
pub async fn send(client: &AwsClient, url: &str, queue: &str, body: &str) {
    call(
        client,
        url,
        "SendMessage",
        json!({"QueueUrl": queue, "MessageBody": body}),
    )
    .await;
}

/// Receives what is visible (for looking into a dead-letter queue).
pub async fn receive(client: &AwsClient, url: &str, queue: &str) -> Vec<String> {
    let v = call(
        client,
        url,
        "ReceiveMessage",
        json!({"QueueUrl": queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
    )
    .await;
    v["Messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["Body"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default()
}

/// Has `bucket` notify `queue_arn` of every object created.
pub async fn notify(client: &AwsClient, url: &str, bucket: &str, queue_arn: &str) {
    notify_prefixes(client, url, bucket, &[(queue_arn, "")]).await
}

/// Has `bucket` notify each queue of the objects created under its key prefix (S3's
/// notification filter rules; "" for every object).
pub async fn notify_prefixes(client: &AwsClient, url: &str, bucket: &str, queues: &[(&str, &str)]) {
    let configurations: String = queues
        .iter()
        .enumerate()
        .map(|(i, (arn, prefix))| {
            let filter = if prefix.is_empty() {
                String::new()
            } else {
                format!("<Filter><S3Key><FilterRule><Name>prefix</Name><Value>{prefix}</Value></FilterRule></S3Key></Filter>")
            };
            format!("<QueueConfiguration><Id>trailwatch-{i}</Id><Queue>{arn}</Queue><Event>s3:ObjectCreated:*</Event>{filter}</QueueConfiguration>")
        })
        .collect();
    let body = format!("<NotificationConfiguration>{configurations}</NotificationConfiguration>");
    client
        .send(Request {
            operation: "s3:PutBucketNotificationConfiguration",
            service: "s3",
            method: reqwest::Method::PUT,
            url: format!("{url}/{bucket}?notification"),
            headers: vec![("content-type", "application/xml".into())],
            body: Bytes::from(body),
            key: None,
            any_status: false,
        })
        .await
        .unwrap();
}

/// An S3 event notification of `keys` (keys encoded as S3 does: `+` for a space).
pub fn s3_event(bucket: &str, keys: &[&str]) -> String {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            let encoded = percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/")
                .replace("%20", "+");
            json!({"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                   "eventTime": "2024-03-01T01:05:00.000Z", "eventName": "ObjectCreated:Put",
                   "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                          "object": {"key": encoded, "size": 100, "eTag": "0123456789abcdef"}}})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// The same wrapped in an SNS envelope.
pub fn sns(message: &str) -> String {
    json!({"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
           "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail-files", "Subject": "Amazon S3 Notification",
           "Message": message, "Timestamp": "2024-03-01T01:05:01.000Z", "SignatureVersion": "1"})
    .to_string()
}

/// An EventBridge "Object Created" event.
pub fn eventbridge(bucket: &str, key: &str) -> String {
    json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
           "source": "aws.s3", "account": "111122223333", "time": "2024-03-01T01:05:00Z", "region": "us-east-1",
           "resources": [format!("arn:aws:s3:::{bucket}")],
           "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "etag": "b1946ac9"},
                      "reason": "PutObject"}})
    .to_string()
}

/// CloudTrail's own notification of new files (through SNS).
pub fn cloudtrail(bucket: &str, keys: &[&str]) -> String {
    sns(&json!({"s3Bucket": bucket, "s3ObjectKey": keys}).to_string())
}
