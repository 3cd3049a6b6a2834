//! Multipart uploads: create, upload part, upload part copy, complete (ETag checks and
//! the `-N` ETag), abort, list parts, list uploads. Parts are always erasure coded; the
//! 5 MiB minimum (all but the last part) and the 10,000-part ceiling are S3's.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::body::request_body;
use super::convert::{self, ChecksumFields, HeaderFields};
use super::errors::{invalid, s3_error};
use super::StratusS3;
use crate::object::model::ObjectError;
use crate::object::service::RangeSpec;
use crate::object::state::{NewUpload, MAX_LIST_KEYS};

/// Part numbers are 1..=10,000.
const MAX_PART_NUMBER: i32 = 10_000;

fn part_number(n: i32) -> S3Result<u16> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n as u16)
    } else {
        Err(invalid(ObjectError::InvalidArgument(format!(
            "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
        ))))
    }
}

pub async fn create_multipart_upload(
    s: &StratusS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let checksum_algorithm = match input.checksum_algorithm.as_ref() {
        Some(a) => {
            Some(crate::object::model::ChecksumAlgorithm::parse(a.as_str()).map_err(invalid)?)
        }
        None => None,
    };
    let upload = NewUpload {
        storage_class: convert::storage_class(input.storage_class.as_ref())?,
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
        checksum_algorithm,
    };
    let upload_id = s
        .service
        .create_upload(bucket.clone(), key.clone(), upload)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        upload_id: Some(upload_id.to_string()),
        checksum_algorithm: input.checksum_algorithm,
        ..Default::default()
    }))
}

pub async fn upload_part(
    s: &StratusS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let upload_id = convert::upload_id(&input.upload_id)?;
    let number = part_number(input.part_number)?;
    let (_, expected_checksum) = convert::checksum(ChecksumFields {
        algorithm: input.checksum_algorithm.as_ref(),
        crc32: input.checksum_crc32.as_deref(),
        crc32c: input.checksum_crc32c.as_deref(),
        sha1: input.checksum_sha1.as_deref(),
        sha256: input.checksum_sha256.as_deref(),
        crc64nvme: input.checksum_crc64nvme.as_deref(),
    })?;
    let content_length = input.content_length.map(|l| l.max(0) as u64);
    let content_md5 = convert::content_md5(input.content_md5.as_deref())?;
    let (etag, checksum) = s
        .service
        .upload_part(
            bucket,
            key,
            upload_id,
            number,
            request_body(input.body),
            content_md5,
            expected_checksum,
            content_length,
        )
        .await
        .map_err(s3_error)?;
    let sums = convert::checksum_out(checksum.as_ref());
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(convert::etag(&etag)),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        ..Default::default()
    }))
}

/// `x-amz-copy-source-range: bytes=first-last` (both inclusive, both required).
fn copy_source_range(raw: Option<&str>) -> S3Result<Option<RangeSpec>> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || {
        invalid(ObjectError::InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy".into(),
        ))
    };
    let spec = raw.strip_prefix("bytes=").ok_or_else(bad)?;
    let (first, last) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let last: u64 = last.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(Some(RangeSpec::FromTo(first, Some(last))))
}

pub async fn upload_part_copy(
    s: &StratusS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let (src_bucket, src_key, src_version) = convert::copy_source(&input.copy_source)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let upload_id = convert::upload_id(&input.upload_id)?;
    let number = part_number(input.part_number)?;
    let range = copy_source_range(input.copy_source_range.as_deref())?;

    let source = s
        .service
        .get_object(src_bucket, src_key, src_version, range)
        .await
        .map_err(s3_error)?;
    if let Some(m) = input.copy_source_if_match.as_ref() {
        let matches = match m {
            ETagCondition::Any => true,
            ETagCondition::ETag(t) => source
                .version
                .etag
                .as_ref()
                .is_some_and(|e| e.as_str() == t.value()),
        };
        if !matches {
            return Err(S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
    }
    let length = match source.range {
        Some((start, end)) => end - start,
        None => source.version.size_bytes,
    };
    let copy_version = convert::version_out(&source.version);
    let (etag, checksum) = s
        .service
        .upload_part(
            bucket,
            key,
            upload_id,
            number,
            source.body,
            None,
            None,
            Some(length),
        )
        .await
        .map_err(s3_error)?;
    let sums = convert::checksum_out(checksum.as_ref());
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(convert::etag(&etag)),
            last_modified: Some(convert::timestamp(source.version.last_modified_ms)),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            ..Default::default()
        }),
        copy_source_version_id: copy_version,
        ..Default::default()
    }))
}

pub async fn complete_multipart_upload(
    s: &StratusS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let upload_id = convert::upload_id(&input.upload_id)?;
    let listed = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(invalid(ObjectError::MalformedXml(
            "You must specify at least one part".into(),
        )));
    }
    let mut parts = Vec::with_capacity(listed.len());
    for p in &listed {
        let number = part_number(p.part_number.unwrap_or(0))?;
        let etag = match p.e_tag.as_ref() {
            Some(tag) => convert::etag_from_wire(tag)?,
            None => {
                return Err(invalid(ObjectError::InvalidPart(format!(
                    "part {number} has no ETag"
                ))))
            }
        };
        parts.push((number, etag));
    }
    let conditions = convert::conditions(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let outcome = s
        .service
        .complete_upload(bucket.clone(), key.clone(), upload_id, parts, conditions)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        location: Some(format!("/{bucket}/{key}")),
        e_tag: Some(convert::etag(&outcome.etag)),
        version_id: outcome.version_id.map(|v| v.to_string()),
        ..Default::default()
    }))
}

pub async fn abort_multipart_upload(
    s: &StratusS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = &req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let upload_id = convert::upload_id(&input.upload_id)?;
    s.service
        .abort_upload(bucket, key, upload_id)
        .await
        .map_err(s3_error)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(
    s: &StratusS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = &req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let upload_id = convert::upload_id(&input.upload_id)?;
    let marker = match input.part_number_marker {
        None => 0,
        Some(m) if (0..=MAX_PART_NUMBER).contains(&m) => m as u16,
        Some(_) => {
            return Err(invalid(ObjectError::InvalidArgument(
                "part-number-marker is out of range".into(),
            )))
        }
    };
    let max_parts = match input.max_parts {
        None => MAX_LIST_KEYS,
        Some(n) if n < 0 => {
            return Err(invalid(ObjectError::InvalidArgument(
                "max-parts cannot be negative".into(),
            )))
        }
        Some(n) => (n as u32).min(MAX_LIST_KEYS),
    };
    let listing = s
        .service
        .list_parts(
            bucket.clone(),
            key.clone(),
            upload_id.clone(),
            marker,
            max_parts,
        )
        .await
        .map_err(s3_error)?;
    let parts = listing
        .parts
        .iter()
        .map(|p| {
            let sums = convert::checksum_out(p.checksum.as_ref());
            Part {
                part_number: Some(i32::from(p.part_number)),
                e_tag: Some(convert::etag(&p.etag)),
                size: Some(p.size_bytes as i64),
                last_modified: Some(convert::timestamp(p.uploaded_ms)),
                checksum_crc32: sums.crc32,
                checksum_crc32c: sums.crc32c,
                checksum_sha1: sums.sha1,
                checksum_sha256: sums.sha256,
                ..Default::default()
            }
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        upload_id: Some(upload_id.to_string()),
        part_number_marker: Some(i32::from(marker)),
        next_part_number_marker: listing.next_part_number_marker.map(i32::from),
        max_parts: Some(max_parts as i32),
        is_truncated: Some(listing.is_truncated),
        parts: Some(parts),
        storage_class: Some(convert::storage_class_out(listing.upload.storage_class)),
        owner: Some(convert::owner(&s.owner)),
        initiator: Some(Initiator {
            id: Some(s.owner.clone()),
            display_name: Some(s.owner.clone()),
        }),
        checksum_algorithm: listing
            .upload
            .checksum_algorithm
            .map(|a| ChecksumAlgorithm::from(a.as_str().to_string())),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    s: &StratusS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let max = match input.max_uploads {
        None => MAX_LIST_KEYS,
        Some(n) if n < 0 => {
            return Err(invalid(ObjectError::InvalidArgument(
                "max-uploads cannot be negative".into(),
            )))
        }
        Some(n) => (n as u32).min(MAX_LIST_KEYS),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
    let upload_id_marker = match input.upload_id_marker.as_deref() {
        Some(u) if !u.is_empty() && key_marker.is_some() => Some(convert::upload_id(u)?),
        _ => None,
    };
    let listing = s
        .service
        .list_uploads(
            bucket.clone(),
            prefix.clone(),
            delimiter.clone(),
            key_marker,
            upload_id_marker,
            max,
        )
        .await
        .map_err(s3_error)?;
    let uploads = listing
        .uploads
        .iter()
        .map(|u| MultipartUpload {
            key: Some(u.key.to_string()),
            upload_id: Some(u.upload_id.to_string()),
            initiated: Some(convert::timestamp(u.initiated_ms)),
            storage_class: Some(convert::storage_class_out(u.storage_class)),
            owner: Some(convert::owner(&s.owner)),
            initiator: Some(Initiator {
                id: Some(s.owner.clone()),
                display_name: Some(s.owner.clone()),
            }),
            ..Default::default()
        })
        .collect();
    let prefixes = listing
        .common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(p.clone()),
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(bucket.to_string()),
        prefix: Some(prefix),
        delimiter,
        key_marker: Some(input.key_marker.unwrap_or_default()),
        upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
        next_key_marker: listing.next_key_marker.clone(),
        next_upload_id_marker: listing
            .next_upload_id_marker
            .as_ref()
            .map(|u| u.to_string()),
        max_uploads: Some(max as i32),
        is_truncated: Some(listing.is_truncated),
        uploads: Some(uploads),
        common_prefixes: Some(prefixes),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_are_bounded() {
        assert_eq!(part_number(1).unwrap(), 1);
        assert_eq!(part_number(10_000).unwrap(), 10_000);
        assert!(part_number(0).is_err());
        assert!(part_number(10_001).is_err());
    }

    #[test]
    fn copy_source_ranges_parse_strictly() {
        assert!(matches!(
            copy_source_range(Some("bytes=0-9")).unwrap(),
            Some(RangeSpec::FromTo(0, Some(9)))
        ));
        assert!(copy_source_range(Some("bytes=9-0")).is_err());
        assert!(copy_source_range(Some("0-9")).is_err());
        assert!(copy_source_range(Some("bytes=-9")).is_err());
        assert!(copy_source_range(None).unwrap().is_none());
    }
}
