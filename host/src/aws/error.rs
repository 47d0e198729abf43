//! Typed AWS errors.

/// What went wrong talking to AWS. Codes come from the service's error body.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The credentials were refused: unknown key, wrong secret, expired token.
    #[error("{operation}: AWS refused the credentials ({code}): {message}")]
    Credentials {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The credentials are valid but lack a permission.
    #[error(
        "{operation}: access denied ({code}): {message}; the IAM policy must allow {} (README, \"IAM permissions\")",
        iam_action(operation)
    )]
    Denied {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The machine's clock is so far from AWS's that requests are refused, and signing with the
    /// time AWS answered with did not help either.
    #[error("{operation}: AWS refused the request's time ({code}): {message}; this machine's clock is off AWS's by {skew} (fix its time sync)")]
    ClockSkew {
        operation: &'static str,
        code: String,
        message: String,
        /// AWS's time minus this machine's (`3600 s`), as far as known.
        skew: String,
    },
    /// The bucket, key or trail does not exist.
    #[error("{operation}: not found ({code}): {message}")]
    NotFound {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// Any other error answer, after retries where it was retryable.
    #[error("{operation}: HTTP {status} {code}: {message}")]
    Service {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// The request did not get an answer (connection, timeout), after retries.
    #[error("{operation}: {message}")]
    Transport { operation: &'static str, message: String },
    /// No credentials could be found or loaded.
    #[error("no AWS credentials: {0}")]
    NoCredentials(String),
    /// The answer could not be read.
    #[error("{operation}: cannot read the answer: {message}")]
    Parse { operation: &'static str, message: String },
    /// An object is larger than the configured limit.
    #[error("{key}: {size} bytes, over the limit of {limit} bytes (max_object_mib)")]
    TooLarge { key: String, size: u64, limit: u64 },
}

impl AwsError {
    /// The API call that failed, when one did.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            AwsError::Credentials { operation, .. }
            | AwsError::Denied { operation, .. }
            | AwsError::ClockSkew { operation, .. }
            | AwsError::NotFound { operation, .. }
            | AwsError::Service { operation, .. }
            | AwsError::Transport { operation, .. }
            | AwsError::Parse { operation, .. } => Some(operation),
            AwsError::NoCredentials(_) | AwsError::TooLarge { .. } => None,
        }
    }

    /// The AWS error code, or a name for an error without one (`Transport`, `Parse`).
    pub fn code(&self) -> &str {
        match self {
            AwsError::Credentials { code, .. }
            | AwsError::Denied { code, .. }
            | AwsError::ClockSkew { code, .. }
            | AwsError::NotFound { code, .. }
            | AwsError::Service { code, .. } => code,
            AwsError::Transport { .. } => "Transport",
            AwsError::Parse { .. } => "Parse",
            AwsError::NoCredentials(_) => "NoCredentials",
            AwsError::TooLarge { .. } => "TooLarge",
        }
    }

    /// Whether waiting and trying the same thing again may help (used by the poll loop's
    /// back-off; the client has already retried transient errors itself).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            AwsError::Credentials { .. } | AwsError::Denied { .. } | AwsError::NoCredentials(_)
        )
    }
}

/// Error codes that mean the credentials themselves were refused.
pub fn is_credentials_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "AuthFailure"
    )
}

/// The IAM action that allows `operation`. Most are named as the API call; these are not.
pub fn iam_action(operation: &str) -> &str {
    match operation {
        "s3:ListObjectsV2" => "s3:ListBucket",
        "s3:DeleteObjects" => "s3:DeleteObject",
        "s3:HeadObject" => "s3:GetObject",
        "s3:HeadBucket" => "s3:ListBucket",
        "s3:GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "sqs:DeleteMessageBatch" => "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility",
        other => other,
    }
}

/// Error codes that mean a permission is missing.
pub fn is_denied_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" | "UnauthorizedOperation"
    )
}

/// Error codes worth retrying after a pause.
pub fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "SlowDown"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestTimeoutException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_iam_action_to_grant() {
        let denied = |operation| {
            AwsError::Denied {
                operation,
                code: "AccessDenied".into(),
                message: "Access Denied".into(),
            }
            .to_string()
        };
        assert!(denied("s3:ListObjectsV2").contains("must allow s3:ListBucket"));
        assert!(denied("s3:HeadBucket").contains("must allow s3:ListBucket"));
        assert!(denied("s3:DeleteObjects").contains("must allow s3:DeleteObject"));
        assert!(denied("s3:GetPublicAccessBlock").contains("must allow s3:GetBucketPublicAccessBlock"));
        assert!(denied("sqs:DeleteMessageBatch").contains("must allow sqs:DeleteMessage ("));
        assert!(denied("sqs:ChangeMessageVisibilityBatch").contains("must allow sqs:ChangeMessageVisibility ("));
        assert!(denied("cloudtrail:DescribeTrails").contains("must allow cloudtrail:DescribeTrails"));
    }
}
