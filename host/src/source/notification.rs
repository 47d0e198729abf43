//! What an SQS message about new log files says: the objects it names.
//!
//! Every format users route to a queue is read: S3 event notifications (`Records[].s3`, keys
//! URL-encoded with `+` for a space), the same wrapped in an SNS envelope (`Type: Notification`,
//! the notification as the `Message` string; or delivered raw), EventBridge "Object Created"
//! events (keys as they are), CloudTrail's own SNS notifications (`s3Bucket` and an
//! `s3ObjectKey` array: one message, many files), and `s3:TestEvent` (nothing to read). Anything
//! else is an error naming the message and quoting its start, so that it can be left for the
//! queue's dead-letter queue.

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// An object a message names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// In bytes, when the message says.
    pub size: Option<u64>,
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// These objects were created (possibly none: an S3 notification of other events).
    Objects(Vec<ObjectRef>),
    /// S3's test message when a notification is configured, or SNS's subscription messages:
    /// nothing to read; the message is done with.
    Nothing(&'static str),
}

/// A message that is none of the formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {id}: {reason}; it starts: {snippet}")]
pub struct NotificationError {
    pub id: String,
    pub reason: String,
    pub snippet: String,
}

/// Reads the body of message `id`.
pub fn parse(id: &str, body: &str) -> Result<Notification, NotificationError> {
    let fail = |reason: String| NotificationError {
        id: id.to_owned(),
        reason,
        snippet: snippet(body),
    };
    let value: Value = serde_json::from_str(body).map_err(|e| fail(format!("not JSON ({e})")))?;
    read(&value, 0).map_err(fail)
}

/// The first 200 characters of `body`, on one line.
fn snippet(body: &str) -> String {
    let mut s: String = body
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}

fn read(v: &Value, depth: u8) -> Result<Notification, String> {
    let Some(o) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    // An SNS envelope: the notification is the Message string.
    if let Some(kind) = o.get("Type").and_then(Value::as_str) {
        return match kind {
            "Notification" if depth == 0 => {
                let message = o
                    .get("Message")
                    .and_then(Value::as_str)
                    .ok_or("an SNS notification without a Message string")?;
                let inner: Value =
                    serde_json::from_str(message).map_err(|e| format!("the SNS Message is not JSON ({e})"))?;
                read(&inner, 1)
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                Ok(Notification::Nothing("an SNS subscription message"))
            }
            other => Err(format!("an SNS message of type {other:?}")),
        };
    }
    if o.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Nothing("S3's test event"));
    }
    if let Some(records) = o.get("Records") {
        return s3_records(records).map(Notification::Objects);
    }
    if let Some(bucket) = o.get("s3Bucket") {
        return cloudtrail(bucket, o.get("s3ObjectKey")).map(Notification::Objects);
    }
    if o.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(o).map(Notification::Objects);
    }
    Err("neither an S3 notification (Records), CloudTrail's (s3Bucket, s3ObjectKey), an EventBridge S3 event, nor an SNS envelope of one".into())
}

/// S3 event notifications: the created objects of `Records`, keys decoded.
fn s3_records(records: &Value) -> Result<Vec<ObjectRef>, String> {
    let records = records.as_array().ok_or("Records is not an array")?;
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !name.starts_with("ObjectCreated:") && !name.starts_with("s3:ObjectCreated:") {
            continue;
        }
        let s3 = r.get("s3").ok_or_else(|| format!("Records[{i}] has no s3"))?;
        let bucket = text(s3, &["bucket", "name"]).ok_or_else(|| format!("Records[{i}].s3.bucket.name is missing"))?;
        let key = text(s3, &["object", "key"]).ok_or_else(|| format!("Records[{i}].s3.object.key is missing"))?;
        out.push(ObjectRef {
            bucket: bucket.to_owned(),
            key: decode_key(key).map_err(|e| format!("Records[{i}].s3.object.key {key:?}: {e}"))?,
            size: s3.pointer("/object/size").and_then(Value::as_u64),
        });
    }
    Ok(out)
}

/// CloudTrail's notification: one bucket, many keys, as they are.
fn cloudtrail(bucket: &Value, keys: Option<&Value>) -> Result<Vec<ObjectRef>, String> {
    let bucket = bucket.as_str().ok_or("s3Bucket is not a string")?;
    let keys = keys.and_then(Value::as_array).ok_or("s3ObjectKey is not an array")?;
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let key = k.as_str().ok_or_else(|| format!("s3ObjectKey[{i}] is not a string"))?;
            Ok(ObjectRef {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size: None,
            })
        })
        .collect()
}

/// EventBridge's "Object Created": one object, its key as it is.
fn eventbridge(o: &serde_json::Map<String, Value>) -> Result<Vec<ObjectRef>, String> {
    let kind = o.get("detail-type").and_then(Value::as_str).unwrap_or("");
    if kind != "Object Created" {
        return Ok(Vec::new());
    }
    let detail = o.get("detail").ok_or("an EventBridge event without detail")?;
    let bucket = text(detail, &["bucket", "name"]).ok_or("detail.bucket.name is missing")?;
    let key = text(detail, &["object", "key"]).ok_or("detail.object.key is missing")?;
    Ok(vec![ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: detail.pointer("/object/size").and_then(Value::as_u64),
    }])
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// An S3 notification's key: `+` is a space, `%XX` a byte, and the bytes UTF-8.
fn decode_key(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| "decodes to bytes that are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0100Z_a.json.gz";

    fn one(bucket: &str, key: &str, size: Option<u64>) -> Notification {
        Notification::Objects(vec![ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            size,
        }])
    }

    fn s3_event(key: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-03-01T01:05:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "trail-bucket", "arn": "arn:aws:s3:::trail-bucket"},
                   "object": {"key": key, "size": 1234, "eTag": "0123456789abcdef", "sequencer": "0055AED6DCD90281E5"}}
        }]})
        .to_string()
    }

    #[test]
    fn an_s3_notification_names_its_object_with_the_key_decoded() {
        assert_eq!(
            parse("m1", &s3_event(KEY)).unwrap(),
            one("trail-bucket", KEY, Some(1234))
        );
        let odd = "my+logs/%C3%A9t%C3%A9/AWSLogs/a%2Bb.json.gz";
        assert_eq!(
            parse("m1", &s3_event(odd)).unwrap(),
            one("trail-bucket", "my logs/été/AWSLogs/a+b.json.gz", Some(1234))
        );
        let bad = parse("m1", &s3_event("k%FF")).unwrap_err();
        assert!(bad.reason.contains("Records[0].s3.object.key"), "{bad}");
    }

    #[test]
    fn other_s3_events_name_nothing() {
        let removed = s3_event(KEY).replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse("m", &removed).unwrap(), Notification::Objects(vec![]));
    }

    #[test]
    fn an_sns_envelope_is_opened() {
        let envelope = serde_json::json!({
            "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail-files", "Subject": "Amazon S3 Notification",
            "Message": s3_event(KEY), "Timestamp": "2024-03-01T01:05:01.000Z", "SignatureVersion": "1"
        });
        assert_eq!(
            parse("m2", &envelope.to_string()).unwrap(),
            one("trail-bucket", KEY, Some(1234))
        );
        let confirm = serde_json::json!({"Type": "SubscriptionConfirmation", "Message": "You have chosen…"});
        assert!(matches!(
            parse("m", &confirm.to_string()).unwrap(),
            Notification::Nothing(_)
        ));
        let nested = serde_json::json!({"Type": "Notification", "Message": envelope.to_string()});
        assert!(parse("m", &nested.to_string()).is_err(), "one envelope, not two");
    }

    #[test]
    fn cloudtrails_notification_names_every_file() {
        let body = serde_json::json!({"s3Bucket": "trail-bucket", "s3ObjectKey": [KEY, KEY.replace("_a.", "_b.")]});
        let envelope = serde_json::json!({"Type": "Notification", "Message": body.to_string()});
        let Notification::Objects(objects) = parse("m3", &envelope.to_string()).unwrap() else {
            panic!()
        };
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].key, KEY.replace("_a.", "_b."));
        assert_eq!(parse("m3", &body.to_string()).unwrap(), Notification::Objects(objects));
    }

    #[test]
    fn an_eventbridge_object_created_event_names_its_object() {
        let event = serde_json::json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "111122223333", "time": "2024-03-01T01:05:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::trail-bucket"],
            "detail": {"version": "0", "bucket": {"name": "trail-bucket"},
                       "object": {"key": KEY, "size": 99, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "cloudtrail.amazonaws.com", "reason": "PutObject"}
        });
        assert_eq!(
            parse("m4", &event.to_string()).unwrap(),
            one("trail-bucket", KEY, Some(99))
        );
        let deleted = event.to_string().replace("Object Created", "Object Deleted");
        assert_eq!(parse("m4", &deleted).unwrap(), Notification::Objects(vec![]));
    }

    #[test]
    fn s3s_test_event_is_nothing_to_read() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-03-01T01:00:00.000Z","Bucket":"trail-bucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert!(matches!(parse("m5", body).unwrap(), Notification::Nothing(_)));
    }

    #[test]
    fn anything_else_is_an_error_with_the_message_id_and_its_start() {
        let e = parse("m6", r#"{"hello": "world"}"#).unwrap_err();
        assert_eq!(e.id, "m6");
        assert!(
            e.to_string().starts_with("message m6: neither an S3 notification"),
            "{e}"
        );
        assert!(e.to_string().ends_with(r#"it starts: {"hello": "world"}"#), "{e}");
        let long = format!("not json {}", "x".repeat(500));
        let e = parse("m7", &long).unwrap_err();
        assert!(e.reason.starts_with("not JSON"), "{e}");
        assert_eq!(e.snippet.chars().count(), 201);
        let e = parse(
            "m8",
            r#"{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.reason, "Records[0].s3.object.key is missing");
    }
}
