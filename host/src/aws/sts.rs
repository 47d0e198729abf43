//! STS GetCallerIdentity: the account the credentials belong to (`setup` needs it for the
//! bucket policy CloudTrail delivers under).

use bytes::Bytes;
use serde::Deserialize;

use super::client::{AwsClient, Request};
use super::error::AwsError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    get_caller_identity_result: Identity,
}

/// Who the credentials are.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    /// The account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// GetCallerIdentity (the query protocol).
pub async fn caller_identity(client: &AwsClient) -> Result<Identity, AwsError> {
    let resp = client
        .send(Request {
            operation: "sts:GetCallerIdentity",
            service: "sts",
            method: reqwest::Method::POST,
            url: format!("{}/", client.service_url("sts")),
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            body: Bytes::from_static(b"Action=GetCallerIdentity&Version=2011-06-15"),
            key: None,
            any_status: false,
        })
        .await?;
    let text = String::from_utf8_lossy(&resp.body);
    let r: Response = super::xml::from_str(&text).map_err(|e| AwsError::Parse {
        operation: "sts:GetCallerIdentity",
        message: e.to_string(),
    })?;
    Ok(r.get_caller_identity_result)
}
