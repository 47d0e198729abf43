//! The CloudTrail API calls trailwatch makes (JSON protocol 1.1): reading a trail's
//! configuration, and the few changes the trail check's fixes and `setup` need.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::client::{AwsClient, Request};
use super::error::AwsError;

/// A trail as DescribeTrails gives it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Trail {
    /// Name.
    pub name: String,
    /// ARN.
    #[serde(rename = "TrailARN")]
    pub trail_arn: Option<String>,
    /// Bucket the trail delivers to.
    pub s3_bucket_name: Option<String>,
    /// Key prefix inside the bucket.
    pub s3_key_prefix: Option<String>,
    /// Home region.
    pub home_region: Option<String>,
    /// An organization trail.
    pub is_organization_trail: Option<bool>,
    /// A multi-region trail.
    pub is_multi_region_trail: Option<bool>,
    /// IAM, STS and CloudFront events included.
    pub include_global_service_events: Option<bool>,
    /// Digest files written.
    pub log_file_validation_enabled: Option<bool>,
    /// The KMS key log files are encrypted with.
    pub kms_key_id: Option<String>,
    /// The CloudWatch Logs group it delivers to.
    pub cloud_watch_logs_log_group_arn: Option<String>,
    /// The SNS topic it notifies.
    #[serde(rename = "SnsTopicARN")]
    pub sns_topic_arn: Option<String>,
}

/// GetTrailStatus. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TrailStatus {
    pub is_logging: Option<bool>,
    pub latest_delivery_error: Option<String>,
    pub latest_notification_error: Option<String>,
    pub latest_digest_delivery_error: Option<String>,
    pub latest_cloud_watch_logs_delivery_error: Option<String>,
    #[serde(deserialize_with = "time_ms")]
    pub latest_delivery_time: Option<i64>,
    #[serde(deserialize_with = "time_ms")]
    pub stop_logging_time: Option<i64>,
}

/// A classic event selector.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EventSelector {
    /// `All`, `ReadOnly` or `WriteOnly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_write_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_management_events: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_resources: Vec<DataResource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_management_event_sources: Vec<String>,
}

/// One of a classic selector's data resources.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DataResource {
    #[serde(rename = "Type")]
    pub kind: String,
    pub values: Vec<String>,
}

/// An advanced event selector.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AdvancedEventSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

/// One field condition of an advanced event selector.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

/// GetEventSelectors: classic or advanced selectors (a trail has one kind).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EventSelectors {
    pub event_selectors: Vec<EventSelector>,
    pub advanced_event_selectors: Vec<AdvancedEventSelector>,
}

/// A tag.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// What UpdateTrail changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TrailUpdate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_multi_region_trail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_global_service_events: Option<bool>,
}

/// A new trail (CreateTrail).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NewTrail {
    pub name: String,
    pub s3_bucket_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
    pub is_multi_region_trail: bool,
    pub include_global_service_events: bool,
    pub enable_log_file_validation: bool,
    /// An organization trail (CreateTrail from the management account).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_organization_trail: bool,
}

/// JSON timestamps: epoch seconds (a number, as AWS sends them) or an RFC 3339 text.
fn time_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64().map(|s| (s * 1000.0).round() as i64),
        serde_json::Value::String(s) => humantime::parse_rfc3339_weak(&s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64),
        _ => None,
    })
}

/// One JSON-protocol call: `action` with `body`, answer read as `T`.
async fn call<T: DeserializeOwned>(
    client: &AwsClient,
    operation: &'static str,
    body: serde_json::Value,
) -> Result<T, AwsError> {
    let action = operation.trim_start_matches("cloudtrail:");
    let resp = client
        .send(Request {
            operation,
            service: "cloudtrail",
            method: reqwest::Method::POST,
            url: format!("{}/", client.service_url("cloudtrail")),
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target",
                    format!("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{action}"),
                ),
            ],
            body: Bytes::from(body.to_string()),
            key: None,
            any_status: false,
        })
        .await?;
    let body: &[u8] = if resp.body.is_empty() { b"{}" } else { &resp.body };
    serde_json::from_slice(body).map_err(|e| AwsError::Parse {
        operation,
        message: e.to_string(),
    })
}

#[derive(Deserialize)]
struct DescribeTrailsResponse {
    #[serde(rename = "trailList", default)]
    trail_list: Vec<Trail>,
}

/// DescribeTrails for the client's region (shadow trails of other regions included).
pub async fn describe_trails(client: &AwsClient) -> Result<Vec<Trail>, AwsError> {
    let r: DescribeTrailsResponse = call(
        client,
        "cloudtrail:DescribeTrails",
        json!({"includeShadowTrails": true}),
    )
    .await?;
    Ok(r.trail_list)
}

/// GetTrailStatus of `trail` (name or ARN).
pub async fn trail_status(client: &AwsClient, trail: &str) -> Result<TrailStatus, AwsError> {
    call(client, "cloudtrail:GetTrailStatus", json!({"Name": trail})).await
}

/// GetEventSelectors of `trail`.
pub async fn event_selectors(client: &AwsClient, trail: &str) -> Result<EventSelectors, AwsError> {
    call(client, "cloudtrail:GetEventSelectors", json!({"TrailName": trail})).await
}

/// The insight types GetInsightSelectors lists for `trail` (none when Insights are off).
pub async fn insight_types(client: &AwsClient, trail: &str) -> Result<Vec<String>, AwsError> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Selector {
        insight_type: String,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Answer {
        insight_selectors: Vec<Selector>,
    }
    match call::<Answer>(client, "cloudtrail:GetInsightSelectors", json!({"TrailName": trail})).await {
        Ok(a) => Ok(a.insight_selectors.into_iter().map(|s| s.insight_type).collect()),
        Err(AwsError::Service { code, .. }) if code == "InsightNotEnabledException" => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The tags of the trail `arn`.
pub async fn tags(client: &AwsClient, arn: &str) -> Result<Vec<Tag>, AwsError> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Resource {
        tags_list: Vec<Tag>,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Answer {
        resource_tag_list: Vec<Resource>,
    }
    let a: Answer = call(client, "cloudtrail:ListTags", json!({"ResourceIdList": [arn]})).await?;
    Ok(a.resource_tag_list.into_iter().flat_map(|r| r.tags_list).collect())
}

/// PutEventSelectors: replaces `trail`'s selectors with these classic ones.
pub async fn put_event_selectors(client: &AwsClient, trail: &str, selectors: &[EventSelector]) -> Result<(), AwsError> {
    call::<serde_json::Value>(
        client,
        "cloudtrail:PutEventSelectors",
        json!({"TrailName": trail, "EventSelectors": selectors}),
    )
    .await
    .map(drop)
}

/// UpdateTrail.
pub async fn update_trail(client: &AwsClient, update: &TrailUpdate) -> Result<(), AwsError> {
    let body = serde_json::to_value(update).unwrap_or_default();
    call::<serde_json::Value>(client, "cloudtrail:UpdateTrail", body)
        .await
        .map(drop)
}

/// StartLogging of `trail`.
pub async fn start_logging(client: &AwsClient, trail: &str) -> Result<(), AwsError> {
    call::<serde_json::Value>(client, "cloudtrail:StartLogging", json!({"Name": trail}))
        .await
        .map(drop)
}

/// CreateTrail.
pub async fn create_trail(client: &AwsClient, trail: &NewTrail) -> Result<Trail, AwsError> {
    let body = serde_json::to_value(trail).unwrap_or_default();
    call(client, "cloudtrail:CreateTrail", body).await
}

/// One of CloudTrail's public keys for digest signatures (ListPublicKeys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPublicKey {
    /// `Fingerprint`, hex.
    pub fingerprint: String,
    /// `Value`: the key, DER.
    pub der: Vec<u8>,
    /// `ValidityStartTime` and `ValidityEndTime`, milliseconds since the Unix epoch.
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawPublicKey {
    value: String,
    fingerprint: String,
    #[serde(default, deserialize_with = "time_ms")]
    validity_start_time: Option<i64>,
    #[serde(default, deserialize_with = "time_ms")]
    validity_end_time: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPublicKeysResponse {
    #[serde(default)]
    public_key_list: Vec<RawPublicKey>,
    next_token: Option<String>,
}

/// ListPublicKeys: the keys valid at some time between `start_ms` and `end_ms` (milliseconds
/// since the Unix epoch), every page.
pub async fn list_public_keys(
    client: &AwsClient,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<DigestPublicKey>, AwsError> {
    use base64::Engine as _;
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"StartTime": start_ms / 1000, "EndTime": (end_ms + 999) / 1000});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page: ListPublicKeysResponse = call(client, "cloudtrail:ListPublicKeys", body).await?;
        for k in page.public_key_list {
            let der = base64::engine::general_purpose::STANDARD
                .decode(k.value.trim())
                .map_err(|e| AwsError::Parse {
                    operation: "cloudtrail:ListPublicKeys",
                    message: format!("the key with fingerprint {} is not base64: {e}", k.fingerprint),
                })?;
            keys.push(DigestPublicKey {
                fingerprint: k.fingerprint,
                der,
                valid_from_ms: k.validity_start_time,
                valid_until_ms: k.validity_end_time,
            });
        }
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(t) if token.as_ref() != Some(&t) => token = Some(t),
            _ => return Ok(keys),
        }
    }
}
