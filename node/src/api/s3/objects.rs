//! Object operations: PutObject, GetObject (ranges, conditional reads), HeadObject,
//! DeleteObject, DeleteObjects, CopyObject (metadata and tagging directives, conditional
//! copies).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::body::{request_body, response_body};
use super::convert::{self, ChecksumFields, HeaderFields};
use super::errors::{invalid, s3_error};
use super::StratusS3;
use crate::object::model::{ObjectError, ObjectVersion};
use crate::object::service::{PutMeta, RangeSpec};

/// DeleteObjects takes at most this many keys per request, as S3 does.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn put_object(
    s: &StratusS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let (checksum_algorithm, expected_checksum) = convert::checksum(ChecksumFields {
        algorithm: input.checksum_algorithm.as_ref(),
        crc32: input.checksum_crc32.as_deref(),
        crc32c: input.checksum_crc32c.as_deref(),
        sha1: input.checksum_sha1.as_deref(),
        sha256: input.checksum_sha256.as_deref(),
        crc64nvme: input.checksum_crc64nvme.as_deref(),
    })?;
    let content_length = match input.content_length {
        Some(len) if len < 0 => {
            return Err(invalid(ObjectError::InvalidArgument(
                "Content-Length must not be negative".into(),
            )))
        }
        Some(len) => Some(len as u64),
        None => None,
    };
    let meta = PutMeta {
        headers: convert::headers(HeaderFields {
            cache_control: input.cache_control,
            content_disposition: input.content_disposition,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            content_type: input.content_type.map(|m| m.to_string()),
            expires: input.expires,
        }),
        user_metadata: convert::user_metadata(input.metadata),
        tags: convert::tagging_header(input.tagging.as_deref())?,
        storage_class: convert::storage_class(input.storage_class.as_ref())?,
        content_md5: convert::content_md5(input.content_md5.as_deref())?,
        expected_checksum,
        checksum_algorithm,
        content_length,
        conditions: convert::conditions(input.if_match.as_ref(), input.if_none_match.as_ref())?,
    };
    let outcome = s
        .service
        .put_object(bucket, key, request_body(input.body), meta)
        .await
        .map_err(s3_error)?;
    let sums = convert::checksum_out(outcome.checksum.as_ref());
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(convert::etag(&outcome.etag)),
        version_id: outcome.version_id.map(|v| v.to_string()),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        size: Some(outcome.size_bytes as i64),
        ..Default::default()
    }))
}

/// The S3 rules for If-Match / If-None-Match / If-(Un)Modified-Since on reads:
/// If-Match failing → 412, else If-Unmodified-Since failing → 412; If-None-Match
/// matching → 304, else If-Modified-Since not modified → 304.
struct ReadConditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
}

fn etag_matches(condition: &ETagCondition, version: &ObjectVersion) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => version
            .etag
            .as_ref()
            .is_some_and(|e| e.as_str() == tag.value()),
    }
}

fn seconds(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

fn check_read_conditions(c: &ReadConditions<'_>, version: &ObjectVersion) -> S3Result<()> {
    let modified_s = (version.last_modified_ms / 1000) as i64;
    let precondition = || {
        S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let not_modified = || {
        let mut e = S3Error::new(S3ErrorCode::NotModified);
        e.set_status_code(axum::http::StatusCode::NOT_MODIFIED);
        e
    };
    if let Some(m) = c.if_match {
        if !etag_matches(m, version) {
            return Err(precondition());
        }
    } else if let Some(t) = c.if_unmodified_since {
        if modified_s > seconds(t) {
            return Err(precondition());
        }
    }
    if let Some(m) = c.if_none_match {
        if etag_matches(m, version) {
            return Err(not_modified());
        }
    } else if let Some(t) = c.if_modified_since {
        if modified_s <= seconds(t) {
            return Err(not_modified());
        }
    }
    Ok(())
}

fn range_spec(range: Option<&Range>) -> Option<RangeSpec> {
    match range? {
        Range::Int { first, last } => Some(RangeSpec::FromTo(*first, *last)),
        Range::Suffix { length } => Some(RangeSpec::Suffix(*length)),
    }
}

pub async fn get_object(
    s: &StratusS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    if input.part_number.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "GetObject by partNumber is not supported yet",
        ));
    }
    let outcome = s
        .service
        .get_object(bucket, key, version_id, range_spec(input.range.as_ref()))
        .await
        .map_err(s3_error)?;
    let version = &outcome.version;
    check_read_conditions(
        &ReadConditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        version,
    )?;
    let (content_length, content_range) = match outcome.range {
        Some((start, end)) => (
            end - start,
            Some(format!(
                "bytes {start}-{}/{}",
                end.saturating_sub(1),
                version.size_bytes
            )),
        ),
        None => (version.size_bytes, None),
    };
    let full = content_range.is_none();
    let sums = convert::checksum_out(version.checksum.as_ref().filter(|_| full));
    let output = GetObjectOutput {
        body: Some(response_body(outcome.body)),
        accept_ranges: Some("bytes".to_string()),
        content_length: Some(content_length as i64),
        content_range,
        e_tag: version.etag.as_ref().map(convert::etag),
        last_modified: Some(convert::timestamp(version.last_modified_ms)),
        version_id: convert::version_out(version),
        metadata: convert::metadata_out(&version.user_metadata),
        content_type: version
            .headers
            .content_type
            .as_deref()
            .and_then(|t| t.parse().ok()),
        cache_control: version.headers.cache_control.clone(),
        content_disposition: version.headers.content_disposition.clone(),
        content_encoding: version.headers.content_encoding.clone(),
        content_language: version.headers.content_language.clone(),
        expires: convert::expires_out(&version.headers),
        storage_class: Some(convert::storage_class_out(version.storage_class)),
        tag_count: (!version.tags.is_empty()).then_some(version.tags.0.len() as i32),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        ..Default::default()
    };
    let mut response = S3Response::new(output);
    if outcome.range.is_some() {
        response.status = Some(axum::http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(response)
}

pub async fn head_object(
    s: &StratusS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    let version = s
        .service
        .head_object(bucket, key, version_id)
        .await
        .map_err(s3_error)?;
    check_read_conditions(
        &ReadConditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &version,
    )?;
    let (content_length, content_range) = match input.range.as_ref() {
        None => (version.size_bytes, None),
        Some(range) => match range.check(version.size_bytes) {
            Ok(r) => (
                r.end - r.start,
                Some(format!(
                    "bytes {}-{}/{}",
                    r.start,
                    r.end.saturating_sub(1),
                    version.size_bytes
                )),
            ),
            Err(_) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRange,
                    "The requested range is not satisfiable",
                ))
            }
        },
    };
    let sums = convert::checksum_out(version.checksum.as_ref());
    Ok(S3Response::new(HeadObjectOutput {
        accept_ranges: Some("bytes".to_string()),
        content_length: Some(content_length as i64),
        content_range,
        e_tag: version.etag.as_ref().map(convert::etag),
        last_modified: Some(convert::timestamp(version.last_modified_ms)),
        version_id: convert::version_out(&version),
        metadata: convert::metadata_out(&version.user_metadata),
        content_type: version
            .headers
            .content_type
            .as_deref()
            .and_then(|t| t.parse().ok()),
        cache_control: version.headers.cache_control.clone(),
        content_disposition: version.headers.content_disposition.clone(),
        content_encoding: version.headers.content_encoding.clone(),
        content_language: version.headers.content_language.clone(),
        expires: convert::expires_out(&version.headers),
        storage_class: Some(convert::storage_class_out(version.storage_class)),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        ..Default::default()
    }))
}

pub async fn delete_object(
    s: &StratusS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = &req.input;
    let (bucket, key, version_id) =
        convert::object_version(&input.bucket, &input.key, input.version_id.as_deref())?;
    let outcome = s
        .service
        .delete_object(bucket, key, version_id)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: outcome.delete_marker.then_some(true),
        version_id: outcome.version_id.map(|v| v.to_string()),
        ..Default::default()
    }))
}

pub async fn delete_objects(
    s: &StratusS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let objects = input.delete.objects;
    if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
        return Err(invalid(ObjectError::MalformedXml(format!(
            "Delete must name between 1 and {MAX_DELETE_KEYS} objects"
        ))));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in objects {
        let result = async {
            let key = convert::key(&object.key)?;
            let version_id = convert::version_id(object.version_id.as_deref())?;
            s.service
                .delete_object(bucket.clone(), key, version_id)
                .await
                .map_err(s3_error)
        }
        .await;
        match result {
            Ok(outcome) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(object.key.clone()),
                        version_id: object.version_id.clone(),
                        delete_marker: outcome.delete_marker.then_some(true),
                        delete_marker_version_id: outcome
                            .delete_marker
                            .then(|| outcome.version_id.map(|v| v.to_string()))
                            .flatten(),
                    });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_string()),
                key: Some(object.key.clone()),
                message: e.message().map(str::to_string),
                version_id: object.version_id.clone(),
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

pub async fn copy_object(
    s: &StratusS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let (src_bucket, src_key, src_version) = convert::copy_source(&input.copy_source)?;
    let dst_bucket = convert::bucket(&input.bucket)?;
    let dst_key = convert::key(&input.key)?;

    let source = s
        .service
        .head_object(src_bucket.clone(), src_key.clone(), src_version.clone())
        .await
        .map_err(s3_error)?;
    // x-amz-copy-source-if-*: the same rules as conditional reads, but every failure is 412.
    check_read_conditions(
        &ReadConditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        },
        &source,
    )
    .map_err(|e| {
        if e.code() == &S3ErrorCode::NotModified {
            S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
        } else {
            e
        }
    })?;

    let replace_metadata = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let replace_tags = input
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    let same_object = src_bucket == dst_bucket && src_key == dst_key && src_version.is_none();
    let new_class = input.storage_class.is_some();
    if same_object && !replace_metadata && !new_class {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (headers, user_metadata) = if replace_metadata {
        (
            convert::headers(HeaderFields {
                cache_control: input.cache_control,
                content_disposition: input.content_disposition,
                content_encoding: input.content_encoding,
                content_language: input.content_language,
                content_type: input.content_type.map(|m| m.to_string()),
                expires: input.expires,
            }),
            convert::user_metadata(input.metadata),
        )
    } else {
        (source.headers.clone(), source.user_metadata.clone())
    };
    let tags = if replace_tags {
        convert::tagging_header(input.tagging.as_deref())?
    } else {
        source.tags.clone()
    };
    let storage_class = match input.storage_class.as_ref() {
        Some(_) => convert::storage_class(input.storage_class.as_ref())?,
        None => source.storage_class,
    };
    let checksum_algorithm = match input.checksum_algorithm.as_ref() {
        Some(a) => {
            Some(crate::object::model::ChecksumAlgorithm::parse(a.as_str()).map_err(invalid)?)
        }
        None => source.checksum.as_ref().map(|c| c.algorithm),
    };
    let meta = PutMeta {
        headers,
        user_metadata,
        tags,
        storage_class,
        content_md5: None,
        expected_checksum: None,
        checksum_algorithm,
        content_length: Some(source.size_bytes),
        conditions: Default::default(),
    };
    let (outcome, source) = s
        .service
        .copy_object(src_bucket, src_key, src_version, dst_bucket, dst_key, meta)
        .await
        .map_err(s3_error)?;
    let sums = convert::checksum_out(outcome.checksum.as_ref());
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(convert::etag(&outcome.etag)),
            last_modified: Some(convert::timestamp(now_ms())),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            ..Default::default()
        }),
        copy_source_version_id: convert::version_out(&source),
        version_id: outcome.version_id.map(|v| v.to_string()),
        ..Default::default()
    }))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
