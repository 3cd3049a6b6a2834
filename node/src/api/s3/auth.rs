//! Who is calling: SigV4 verification is done by s3s (headers, presigned URLs with their
//! expiry, aws-chunked bodies, clock skew); this module only answers "what is the secret
//! of this access key". Today that is the root credentials from the node's config; IAM
//! users (issue 8) plug in behind the same [`AccessKeys`] trait.

use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

/// The seam between the edge and whatever holds access keys.
pub trait AccessKeys: Send + Sync + 'static {
    /// The secret of `access_key`, or `None` when there is no such key.
    fn secret_of(&self, access_key: &str) -> Option<String>;
}

/// The root credentials of the cluster (config `credentials`).
pub struct RootKeys {
    pub access_key: String,
    pub secret_key: String,
}

impl AccessKeys for RootKeys {
    fn secret_of(&self, access_key: &str) -> Option<String> {
        (access_key == self.access_key).then(|| self.secret_key.clone())
    }
}

/// Adapts [`AccessKeys`] to s3s.
pub struct EdgeAuth {
    keys: Arc<dyn AccessKeys>,
}

impl EdgeAuth {
    pub fn new(keys: Arc<dyn AccessKeys>) -> Self {
        EdgeAuth { keys }
    }
}

#[async_trait::async_trait]
impl S3Auth for EdgeAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.secret_of(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
