//! The settings of a trail's bucket that the trail check reads: policy, ACL, public access
//! block, server access logging, versioning, location.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::client::Request;
use super::error::AwsError;
use super::s3::S3;

/// One grant of a bucket ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A `Group` grantee's URI.
    pub group_uri: Option<String>,
    /// A `CanonicalUser` grantee's id.
    pub user_id: Option<String>,
    /// `READ`, `WRITE`, `READ_ACP`, `WRITE_ACP` or `FULL_CONTROL`.
    pub permission: String,
}

/// GetPublicAccessBlock.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// GetBucketVersioning.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Versioning {
    /// `Enabled` or `Suspended`; `None` when never enabled.
    pub status: Option<String>,
    /// `Enabled` or `Disabled`.
    pub mfa_delete: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct AccessControlPolicy {
    access_control_list: AccessControlList,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct AccessControlList {
    grant: Vec<XmlGrant>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct XmlGrant {
    grantee: Grantee,
    permission: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Grantee {
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct BucketLoggingStatus {
    logging_enabled: Option<LoggingEnabled>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LoggingEnabled {
    target_bucket: Option<String>,
}

#[derive(Deserialize, Default)]
struct LocationConstraint {
    #[serde(rename = "$text", default)]
    region: Option<String>,
}

impl S3<'_> {
    /// GET of the bucket's `subresource` (`?acl`, `?policy`, …); `None` when S3 says the bucket
    /// has none (a `NoSuch…` code).
    async fn subresource(&self, operation: &'static str, subresource: &str) -> Result<Option<Bytes>, AwsError> {
        let answer = self
            .client()
            .send(Request {
                operation,
                service: "s3",
                method: reqwest::Method::GET,
                url: format!("{}/?{subresource}", self.base()),
                headers: vec![],
                body: Bytes::new(),
                key: None,
                any_status: false,
            })
            .await;
        match answer {
            Ok(r) => Ok(Some(r.body)),
            Err(AwsError::NotFound { code, .. }) if code.starts_with("NoSuch") && code != "NoSuchBucket" => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn xml<T: DeserializeOwned + Default>(
        &self,
        operation: &'static str,
        subresource: &str,
    ) -> Result<Option<T>, AwsError> {
        let Some(body) = self.subresource(operation, subresource).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&body);
        if text.trim().is_empty() {
            return Ok(Some(T::default()));
        }
        super::xml::from_str(&text).map(Some).map_err(|e| AwsError::Parse {
            operation,
            message: e.to_string(),
        })
    }

    /// The bucket policy (JSON text), `None` when the bucket has none.
    pub async fn policy(&self) -> Result<Option<String>, AwsError> {
        let body = self.subresource("s3:GetBucketPolicy", "policy").await?;
        Ok(body.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// PutBucketPolicy: replaces the bucket's policy with `policy` (JSON text).
    pub async fn put_policy(&self, policy: &str) -> Result<(), AwsError> {
        self.client()
            .send(Request {
                operation: "s3:PutBucketPolicy",
                service: "s3",
                method: reqwest::Method::PUT,
                url: format!("{}/?policy", self.base()),
                headers: vec![("content-type", "application/json".into())],
                body: Bytes::from(policy.to_owned()),
                key: None,
                any_status: false,
            })
            .await?;
        Ok(())
    }

    /// The grants of the bucket's ACL.
    pub async fn acl(&self) -> Result<Vec<Grant>, AwsError> {
        let acl: Option<AccessControlPolicy> = self.xml("s3:GetBucketAcl", "acl").await?;
        Ok(acl
            .unwrap_or_default()
            .access_control_list
            .grant
            .into_iter()
            .map(|g| Grant {
                group_uri: g.grantee.uri,
                user_id: g.grantee.id,
                permission: g.permission,
            })
            .collect())
    }

    /// The bucket's public access block, `None` when it has none.
    pub async fn public_access_block(&self) -> Result<Option<PublicAccessBlock>, AwsError> {
        self.xml("s3:GetPublicAccessBlock", "publicAccessBlock").await
    }

    /// The bucket server access logging goes to, `None` when it is off.
    pub async fn logging_target(&self) -> Result<Option<String>, AwsError> {
        let status: Option<BucketLoggingStatus> = self.xml("s3:GetBucketLogging", "logging").await?;
        Ok(status.and_then(|s| s.logging_enabled).and_then(|l| l.target_bucket))
    }

    /// The bucket's versioning state.
    pub async fn versioning(&self) -> Result<Versioning, AwsError> {
        Ok(self
            .xml("s3:GetBucketVersioning", "versioning")
            .await?
            .unwrap_or_default())
    }

    /// The bucket's region (GetBucketLocation: empty means us-east-1, `EU` eu-west-1).
    pub async fn location(&self) -> Result<String, AwsError> {
        let l: Option<LocationConstraint> = self.xml("s3:GetBucketLocation", "location").await?;
        Ok(match l.and_then(|l| l.region).as_deref().map(str::trim) {
            None | Some("") => "us-east-1".into(),
            Some("EU") => "eu-west-1".into(),
            Some(r) => r.to_owned(),
        })
    }
}
