//! Object and bucket tagging.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::convert;
use super::errors::s3_error;
use super::StratusS3;
use crate::object::model::{MAX_BUCKET_TAGS, MAX_OBJECT_TAGS};

pub async fn get_object_tagging(
    s: &StratusS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let input = &req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    let version = s
        .service
        .head_object(bucket, key, version_id)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: convert::tags_out(&version.tags),
        version_id: convert::version_out(&version),
    }))
}

pub async fn put_object_tagging(
    s: &StratusS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let input = req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    let tags = convert::tag_set(&input.tagging.tag_set, MAX_OBJECT_TAGS)?;
    let version_id = s
        .service
        .put_object_tagging(bucket, key, version_id, tags)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(PutObjectTaggingOutput {
        version_id: version_id.map(|v| v.to_string()),
    }))
}

pub async fn delete_object_tagging(
    s: &StratusS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let input = &req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    let version_id = s
        .service
        .delete_object_tagging(bucket, key, version_id)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(DeleteObjectTaggingOutput {
        version_id: version_id.map(|v| v.to_string()),
    }))
}

pub async fn get_bucket_tagging(
    s: &StratusS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    let record = s.service.head_bucket(bucket).await.map_err(s3_error)?;
    if record.tags.is_empty() {
        return Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::NoSuchTagSet,
            "The TagSet does not exist",
        ));
    }
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: convert::tags_out(&record.tags),
    }))
}

pub async fn put_bucket_tagging(
    s: &StratusS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let tags = convert::tag_set(&input.tagging.tag_set, MAX_BUCKET_TAGS)?;
    s.service
        .put_bucket_tagging(bucket, tags)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub async fn delete_bucket_tagging(
    s: &StratusS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let bucket = convert::bucket(&req.input.bucket)?;
    s.service
        .delete_bucket_tagging(bucket)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}
