//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation, Get/PutBucketVersioning.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::convert;
use super::errors::{invalid, s3_error};
use super::StratusS3;
use crate::object::model::{ObjectError, VersioningState};

/// The region every bucket reports (the whole cluster is one region).
pub const REGION: &str = "us-east-1";

pub async fn list_buckets(
    s: &StratusS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let prefix = req.input.prefix.clone();
    let buckets = s.service.list_buckets(&s.owner).await.map_err(s3_error)?;
    let buckets = buckets
        .into_iter()
        .filter(|(name, _)| {
            prefix
                .as_deref()
                .is_none_or(|p| name.as_str().starts_with(p))
        })
        .map(|(name, created_ms)| Bucket {
            name: Some(name.to_string()),
            creation_date: Some(convert::timestamp(created_ms)),
            bucket_region: Some(REGION.to_string()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(convert::owner(&s.owner)),
        prefix,
        ..Default::default()
    }))
}

pub async fn create_bucket(
    s: &StratusS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    if let Some(location) = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
    {
        let location = location.as_str();
        if !location.is_empty() && location != REGION {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::IllegalLocationConstraintException,
                format!("The {location} location constraint is incompatible for the region specific endpoint this request was sent to."),
            ));
        }
    }
    if req.input.object_lock_enabled_for_bucket == Some(true) {
        return Err(invalid(ObjectError::InvalidArgument(
            "Object Lock is not supported".into(),
        )));
    }
    s.service
        .create_bucket(&s.owner, bucket.clone())
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{bucket}")),
    }))
}

pub async fn head_bucket(
    s: &StratusS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    s.service.head_bucket(bucket).await.map_err(s3_error)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(REGION.to_string()),
        ..Default::default()
    }))
}

pub async fn delete_bucket(
    s: &StratusS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    s.service.delete_bucket(bucket).await.map_err(s3_error)?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub async fn get_bucket_location(
    s: &StratusS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    s.service.head_bucket(bucket).await.map_err(s3_error)?;
    // us-east-1 is reported as an empty LocationConstraint, as S3 does.
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}

pub async fn get_bucket_versioning(
    s: &StratusS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    let record = s.service.head_bucket(bucket).await.map_err(s3_error)?;
    Ok(S3Response::new(GetBucketVersioningOutput {
        status: record
            .versioning
            .status()
            .map(|st| BucketVersioningStatus::from(st.to_string())),
        ..Default::default()
    }))
}

pub async fn put_bucket_versioning(
    s: &StratusS3,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    let config = &req.input.versioning_configuration;
    if config
        .mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
    {
        return Err(invalid(ObjectError::InvalidArgument(
            "MFA delete is not supported".into(),
        )));
    }
    let state = match config.status.as_ref() {
        Some(status) => VersioningState::parse_status(status.as_str()).map_err(invalid)?,
        None => {
            return Err(invalid(ObjectError::MalformedXml(
                "VersioningConfiguration needs a Status".into(),
            )))
        }
    };
    s.service
        .put_bucket_versioning(bucket, state)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}
