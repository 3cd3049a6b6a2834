//! Conversions between s3s wire types and the object store's domain types. Everything a
//! client sends is validated here (names, keys, version ids, tags, metadata) and turned
//! into a typed error when it is bad.

use std::time::{Duration, UNIX_EPOCH};

use s3s::dto;
use s3s::{S3Error, S3Result};

use super::errors::invalid;
use crate::object::model::{
    BucketName, Checksum, ChecksumAlgorithm, ETag, ObjectError, ObjectHeaders, ObjectKey,
    ObjectVersion, StorageClass, TagSet, UploadId, UserMetadata, VersionId,
};
use crate::object::state::WriteConditions;

pub fn bucket(name: &str) -> S3Result<BucketName> {
    BucketName::parse(name).map_err(invalid)
}

pub fn key(key: &str) -> S3Result<ObjectKey> {
    ObjectKey::parse(key).map_err(invalid)
}

pub fn version_id(id: Option<&str>) -> S3Result<Option<VersionId>> {
    match id {
        None => Ok(None),
        Some(id) => VersionId::parse(id).map(Some).map_err(|_| {
            invalid(ObjectError::InvalidArgument(
                "Invalid version id specified".into(),
            ))
        }),
    }
}

/// A request's object address: bucket, key and optional `versionId`, each validated.
pub fn object_version(
    b: &str,
    k: &str,
    v: Option<&str>,
) -> S3Result<(BucketName, ObjectKey, Option<VersionId>)> {
    Ok((bucket(b)?, key(k)?, version_id(v)?))
}

/// `x-amz-copy-source: bucket/key[?versionId=...]` (access points are not supported).
pub fn copy_source(
    source: &dto::CopySource,
) -> S3Result<(BucketName, ObjectKey, Option<VersionId>)> {
    match source {
        dto::CopySource::Bucket {
            bucket: b,
            key: k,
            version_id: v,
        } => object_version(b, k, v.as_deref()),
        _ => Err(S3Error::with_message(
            s3s::S3ErrorCode::NotImplemented,
            "Copying from an access point is not supported",
        )),
    }
}

pub fn upload_id(id: &str) -> S3Result<UploadId> {
    UploadId::parse(id).map_err(invalid)
}

pub fn timestamp(ms: u64) -> dto::Timestamp {
    dto::Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

pub fn etag(tag: &ETag) -> dto::ETag {
    dto::ETag::Strong(tag.as_str().to_string())
}

/// An ETag a client sent (`If-Match`, a part list): quotes and weakness are not part of
/// the value compared.
pub fn etag_from_wire(tag: &dto::ETag) -> S3Result<ETag> {
    ETag::parse(tag.value()).map_err(invalid)
}

pub fn storage_class(class: Option<&dto::StorageClass>) -> S3Result<StorageClass> {
    match class {
        None => Ok(StorageClass::default()),
        Some(c) => StorageClass::parse(c.as_str()).map_err(invalid),
    }
}

pub fn storage_class_out(class: StorageClass) -> dto::StorageClass {
    dto::StorageClass::from(class.as_str().to_string())
}

pub fn object_storage_class_out(class: StorageClass) -> dto::ObjectStorageClass {
    dto::ObjectStorageClass::from(class.as_str().to_string())
}

pub fn user_metadata(metadata: Option<dto::Metadata>) -> UserMetadata {
    metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

pub fn metadata_out(metadata: &UserMetadata) -> Option<dto::Metadata> {
    (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

pub struct HeaderFields {
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_type: Option<String>,
    pub expires: Option<dto::Timestamp>,
}

pub fn headers(h: HeaderFields) -> ObjectHeaders {
    ObjectHeaders {
        content_type: h.content_type,
        cache_control: h.cache_control,
        content_disposition: h.content_disposition,
        content_encoding: h.content_encoding,
        content_language: h.content_language,
        expires: h.expires.and_then(|t| {
            let mut out = Vec::new();
            t.format(dto::TimestampFormat::HttpDate, &mut out).ok()?;
            String::from_utf8(out).ok()
        }),
    }
}

pub fn expires_out(headers: &ObjectHeaders) -> Option<dto::Timestamp> {
    let raw = headers.expires.as_deref()?;
    dto::Timestamp::parse(dto::TimestampFormat::HttpDate, raw).ok()
}

/// `x-amz-tagging: k1=v1&k2=v2` (URL-encoded).
pub fn tagging_header(raw: Option<&str>) -> S3Result<TagSet> {
    use crate::object::model::MAX_OBJECT_TAGS;
    let Some(raw) = raw else {
        return Ok(TagSet::default());
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    TagSet::from_pairs(pairs, MAX_OBJECT_TAGS).map_err(invalid)
}

/// A `<Tagging>` document; `max_tags` is 10 for objects, 50 for buckets.
pub fn tag_set(tags: &[dto::Tag], max_tags: usize) -> S3Result<TagSet> {
    let pairs = tags
        .iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>();
    TagSet::from_pairs(pairs, max_tags).map_err(invalid)
}

pub fn tags_out(tags: &TagSet) -> Vec<dto::Tag> {
    tags.0
        .iter()
        .map(|(k, v)| dto::Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub fn conditions(
    if_match: Option<&dto::ETagCondition>,
    if_none_match: Option<&dto::ETagCondition>,
) -> S3Result<WriteConditions> {
    let if_match = match if_match {
        None => None,
        Some(dto::ETagCondition::Any) => Some(ETag::parse("*").map_err(invalid)?),
        Some(dto::ETagCondition::ETag(tag)) => Some(etag_from_wire(tag)?),
    };
    let if_none_match_any = match if_none_match {
        None => false,
        Some(dto::ETagCondition::Any) => true,
        Some(dto::ETagCondition::ETag(_)) => {
            return Err(S3Error::with_message(
                s3s::S3ErrorCode::NotImplemented,
                "If-None-Match on a write supports only '*'",
            ))
        }
    };
    Ok(WriteConditions {
        if_match,
        if_none_match_any,
    })
}

/// `Content-MD5`: base64 of 16 bytes, else `InvalidDigest`.
pub fn content_md5(raw: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(raw) = raw else { return Ok(None) };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok());
    match bytes {
        Some(b) => Ok(Some(b)),
        None => Err(S3Error::with_message(
            s3s::S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified was invalid.",
        )),
    }
}

/// The checksum a client announced (`x-amz-checksum-*` header or trailer), if any, and
/// the algorithm it asked for.
pub struct ChecksumFields<'a> {
    pub algorithm: Option<&'a dto::ChecksumAlgorithm>,
    pub crc32: Option<&'a str>,
    pub crc32c: Option<&'a str>,
    pub sha1: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub crc64nvme: Option<&'a str>,
}

pub fn checksum(
    fields: ChecksumFields<'_>,
) -> S3Result<(Option<ChecksumAlgorithm>, Option<Checksum>)> {
    if fields.crc64nvme.is_some() {
        return Err(invalid(ObjectError::InvalidArgument(
            "CRC64NVME checksums are not supported; use CRC32, CRC32C, SHA1 or SHA256".into(),
        )));
    }
    let given = [
        (ChecksumAlgorithm::Crc32, fields.crc32),
        (ChecksumAlgorithm::Crc32c, fields.crc32c),
        (ChecksumAlgorithm::Sha1, fields.sha1),
        (ChecksumAlgorithm::Sha256, fields.sha256),
    ];
    let mut expected = None;
    for (alg, value) in given {
        if let Some(value) = value {
            if expected.is_some() {
                return Err(invalid(ObjectError::InvalidArgument(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.".into(),
                )));
            }
            expected = Some(Checksum::new(alg, value).map_err(invalid)?);
        }
    }
    let algorithm = match fields.algorithm {
        None => None,
        Some(a) => Some(ChecksumAlgorithm::parse(a.as_str()).map_err(invalid)?),
    };
    let algorithm = algorithm.or(expected.as_ref().map(|c| c.algorithm));
    Ok((algorithm, expected))
}

/// The checksum header fields of a response.
#[derive(Default)]
pub struct ChecksumOut {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

pub fn checksum_out(checksum: Option<&Checksum>) -> ChecksumOut {
    let mut out = ChecksumOut::default();
    if let Some(c) = checksum {
        let v = Some(c.value_b64.clone());
        match c.algorithm {
            ChecksumAlgorithm::Crc32 => out.crc32 = v,
            ChecksumAlgorithm::Crc32c => out.crc32c = v,
            ChecksumAlgorithm::Sha1 => out.sha1 = v,
            ChecksumAlgorithm::Sha256 => out.sha256 = v,
        }
    }
    out
}

pub fn version_out(version: &ObjectVersion) -> Option<String> {
    (!version.version_id.is_null()).then(|| version.version_id.to_string())
}

pub fn owner(id: &str) -> dto::Owner {
    dto::Owner {
        display_name: Some(id.to_string()),
        id: Some(id.to_string()),
    }
}
