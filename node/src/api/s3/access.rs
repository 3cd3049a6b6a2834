//! May this caller do this: every S3 request passes here after its signature was
//! verified. Unsigned (anonymous) requests are refused with `AccessDenied`: buckets have
//! no public-access policies yet. The root principal may do everything; IAM policy
//! evaluation (issue 8) replaces [`Authorizer`]'s root-only implementation.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::{s3_error, S3Result};

/// The seam for IAM: decide whether `access_key` may perform `action` (`s3:GetObject`)
/// on `resource` (`arn:aws:s3:::bucket/key`).
pub trait Authorizer: Send + Sync + 'static {
    fn allows(&self, access_key: &str, action: &str, resource: &str) -> bool;
}

/// Only the root credentials exist today, and root may do everything.
pub struct RootOnly;

impl Authorizer for RootOnly {
    fn allows(&self, _access_key: &str, _action: &str, _resource: &str) -> bool {
        true
    }
}

pub struct EdgeAccess {
    authorizer: Arc<dyn Authorizer>,
}

impl EdgeAccess {
    pub fn new(authorizer: Arc<dyn Authorizer>) -> Self {
        EdgeAccess { authorizer }
    }
}

/// `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or `*` for ListBuckets.
fn resource_arn(path: &s3s::path::S3Path) -> String {
    match path {
        s3s::path::S3Path::Root => "*".to_string(),
        s3s::path::S3Path::Bucket { bucket } => format!("arn:aws:s3:::{bucket}"),
        s3s::path::S3Path::Object { bucket, key } => format!("arn:aws:s3:::{bucket}/{key}"),
    }
}

#[async_trait::async_trait]
impl S3Access for EdgeAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        let action = format!("s3:{}", cx.s3_op().name());
        let resource = resource_arn(cx.s3_path());
        if self
            .authorizer
            .allows(&credentials.access_key, &action, &resource)
        {
            Ok(())
        } else {
            Err(s3_error!(AccessDenied, "Access Denied"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_s3_arns() {
        use s3s::path::S3Path;
        assert_eq!(resource_arn(&S3Path::Root), "*");
        assert_eq!(
            resource_arn(&S3Path::Bucket { bucket: "b".into() }),
            "arn:aws:s3:::b"
        );
        assert_eq!(
            resource_arn(&S3Path::Object {
                bucket: "b".into(),
                key: "k/x".into()
            }),
            "arn:aws:s3:::b/k/x"
        );
    }
}
