//! Where the AWS credentials come from: an access key pair in the config file (a dedicated IAM
//! user, the common set-up for this kind of module), or the standard chain (environment, shared
//! profiles with SSO and assume-role, web identity, container and instance metadata).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

use super::error::AwsError;
use super::secret::Secret;

/// Refresh chain credentials this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The configured source of credentials.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Keys from the config file.
    Static {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// The standard AWS chain, optionally with a named profile.
    Chain { profile: Option<String> },
    /// Any provider (an embedding program's own, or a test's).
    Provider(aws_credential_types::provider::SharedCredentialsProvider),
}

/// Hands out current credentials, loading and refreshing them as needed.
pub struct CredentialsProvider {
    source: CredentialSource,
    region: String,
    chain: Mutex<Option<aws_credential_types::provider::SharedCredentialsProvider>>,
    cached: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsProvider")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl CredentialsProvider {
    /// A provider for `source`; nothing is loaded until the first request.
    pub fn new(source: CredentialSource, region: &str) -> Self {
        CredentialsProvider {
            source,
            region: region.to_owned(),
            chain: Mutex::new(None),
            cached: Mutex::new(None),
        }
    }

    /// Whether credentials refused by AWS may be replaced by asking the source again (not for
    /// keys written in the config file).
    pub fn refreshable(&self) -> bool {
        !matches!(self.source, CredentialSource::Static { .. })
    }

    /// Forgets the cached credentials if they are still those with `access_key_id`: AWS refused
    /// them, so the next request asks the source again rather than waiting for their stated
    /// expiry (revoked or rotated before it). Credentials another request already loaded again
    /// are kept.
    pub async fn invalidate(&self, access_key_id: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.access_key_id() == access_key_id) {
            *cached = None;
        }
    }

    /// Current credentials.
    pub async fn get(&self) -> Result<Credentials, AwsError> {
        match &self.source {
            CredentialSource::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => Ok(Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "trailwatch-config",
            )),
            CredentialSource::Chain { .. } | CredentialSource::Provider(_) => {
                let mut cached = self.cached.lock().await;
                if let Some(c) = cached.as_ref() {
                    let fresh = c.expiry().is_none_or(|exp| exp > SystemTime::now() + REFRESH_MARGIN);
                    if fresh {
                        return Ok(c.clone());
                    }
                }
                let mut chain = self.chain.lock().await;
                if let (None, CredentialSource::Provider(p)) = (chain.as_ref(), &self.source) {
                    *chain = Some(p.clone());
                }
                if let (None, CredentialSource::Chain { profile }) = (chain.as_ref(), &self.source) {
                    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .region(aws_config::Region::new(self.region.clone()));
                    if let Some(p) = profile {
                        loader = loader.profile_name(p);
                    }
                    let conf = loader.load().await;
                    let provider = conf
                        .credentials_provider()
                        .ok_or_else(|| AwsError::NoCredentials("the AWS credential chain is empty".into()))?;
                    *chain = Some(provider);
                }
                let provider = chain.as_ref().expect("set just above");
                let creds = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| AwsError::NoCredentials(e.to_string()))?;
                *cached = Some(creds.clone());
                Ok(creds)
            }
        }
    }
}
