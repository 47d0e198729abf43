//! The CloudTrail API calls trailwatch makes: DescribeTrails (log-location discovery).

use bytes::Bytes;
use serde::Deserialize;

use super::client::{AwsClient, Request};
use super::error::AwsError;

/// A trail as DescribeTrails gives it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Trail {
    /// Name.
    pub name: String,
    /// ARN.
    #[serde(rename = "TrailARN", default)]
    pub trail_arn: Option<String>,
    /// Bucket the trail delivers to.
    #[serde(default)]
    pub s3_bucket_name: Option<String>,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub s3_key_prefix: Option<String>,
    /// Home region.
    #[serde(default)]
    pub home_region: Option<String>,
    /// An organization trail.
    #[serde(default)]
    pub is_organization_trail: Option<bool>,
    /// A multi-region trail.
    #[serde(default)]
    pub is_multi_region_trail: Option<bool>,
}

impl Trail {
    /// Whether AWS Control Tower manages this trail (not supported: it must not be changed, and
    /// its logs live in a separate log-archive account).
    pub fn is_control_tower(&self) -> bool {
        self.name.starts_with("aws-controltower-")
    }
}

#[derive(Deserialize)]
struct DescribeTrailsResponse {
    #[serde(rename = "trailList", default)]
    trail_list: Vec<Trail>,
}

/// DescribeTrails for the client's region (shadow trails of other regions included).
pub async fn describe_trails(client: &AwsClient) -> Result<Vec<Trail>, AwsError> {
    let url = format!("{}/", client.service_url("cloudtrail"));
    let resp = client
        .send(Request {
            operation: "cloudtrail:DescribeTrails",
            service: "cloudtrail",
            method: reqwest::Method::POST,
            url,
            headers: vec![
                ("content-type", "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target",
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails".into(),
                ),
            ],
            body: Bytes::from_static(b"{\"includeShadowTrails\":true}"),
            key: None,
            any_status: false,
        })
        .await?;
    let parsed: DescribeTrailsResponse = serde_json::from_slice(&resp.body).map_err(|e| AwsError::Parse {
        operation: "cloudtrail:DescribeTrails",
        message: e.to_string(),
    })?;
    Ok(parsed.trail_list)
}
