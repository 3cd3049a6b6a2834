//! Listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions, with prefixes,
//! delimiters, common prefixes, markers, continuation tokens, start-after and
//! `encoding-type=url`. The paging itself is done by the bucket's data group.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::convert;
use super::errors::{invalid, s3_error};
use super::StratusS3;
use crate::object::model::ObjectError;
use crate::object::state::MAX_LIST_KEYS;

/// `max-keys`: default and ceiling 1000; negative is an error.
fn max_keys(requested: Option<i32>) -> S3Result<u32> {
    match requested {
        None => Ok(MAX_LIST_KEYS),
        Some(n) if n < 0 => Err(invalid(ObjectError::InvalidArgument(
            "max-keys cannot be negative".into(),
        ))),
        Some(n) => Ok((n as u32).min(MAX_LIST_KEYS)),
    }
}

/// `encoding-type`: only `url` exists.
fn url_encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(_) => Err(invalid(ObjectError::InvalidArgument(
            "Invalid Encoding Method specified in Request".into(),
        ))),
    }
}

/// S3's URL encoding of keys in listings: every byte but unreserved characters and `/`.
fn encode(value: &str, url: bool) -> String {
    if !url {
        return value.to_string();
    }
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(value, KEEP).to_string()
}

fn delimiter(d: Option<&str>) -> Option<String> {
    d.filter(|d| !d.is_empty()).map(str::to_string)
}

/// v2 continuation tokens are opaque to clients: the base64 of the key to start after.
fn token_for(marker: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(marker.as_bytes())
}

fn marker_from_token(token: &str) -> S3Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            invalid(ObjectError::InvalidArgument(
                "The continuation token provided is incorrect".into(),
            ))
        })
}

fn objects_out(
    listing: &crate::object::state::ObjectListing,
    url: bool,
    owner: Option<&str>,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let contents = listing
        .contents
        .iter()
        .map(|o| Object {
            key: Some(encode(o.key.as_str(), url)),
            size: Some(o.size_bytes as i64),
            e_tag: o.etag.as_ref().map(convert::etag),
            last_modified: Some(convert::timestamp(o.last_modified_ms)),
            storage_class: Some(convert::object_storage_class_out(o.storage_class)),
            checksum_algorithm: o
                .checksum_algorithm
                .map(|a| vec![ChecksumAlgorithm::from(a.as_str().to_string())]),
            owner: owner.map(convert::owner),
            ..Default::default()
        })
        .collect();
    let prefixes = listing
        .common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(encode(p, url)),
        })
        .collect();
    (contents, prefixes)
}

pub async fn list_objects(
    s: &StratusS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delim = delimiter(input.delimiter.as_deref());
    let listing = s
        .service
        .list_objects(
            bucket.clone(),
            prefix.clone(),
            delim.clone(),
            input.marker.clone(),
            max,
        )
        .await
        .map_err(s3_error)?;
    let (contents, prefixes) = objects_out(&listing, url, Some(&s.owner));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(bucket.to_string()),
        prefix: Some(encode(&prefix, url)),
        marker: Some(encode(input.marker.as_deref().unwrap_or(""), url)),
        max_keys: Some(max as i32),
        is_truncated: Some(listing.is_truncated),
        // S3 returns NextMarker only with a delimiter; clients without one use the last key.
        next_marker: if listing.is_truncated && delim.is_some() {
            listing.next_marker.as_deref().map(|m| encode(m, url))
        } else {
            None
        },
        delimiter: delim.map(|d| encode(&d, url)),
        encoding_type: input.encoding_type,
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        ..Default::default()
    }))
}

pub async fn list_objects_v2(
    s: &StratusS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delim = delimiter(input.delimiter.as_deref());
    // The continuation token wins over start-after.
    let marker = match input.continuation_token.as_deref() {
        Some(token) => Some(marker_from_token(token)?),
        None => input.start_after.clone().filter(|s| !s.is_empty()),
    };
    let listing = s
        .service
        .list_objects(bucket.clone(), prefix.clone(), delim.clone(), marker, max)
        .await
        .map_err(s3_error)?;
    let owner = input
        .fetch_owner
        .unwrap_or(false)
        .then_some(s.owner.as_str());
    let (contents, prefixes) = objects_out(&listing, url, owner);
    let key_count = (contents.len() + prefixes.len()) as i32;
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(bucket.to_string()),
        prefix: Some(encode(&prefix, url)),
        max_keys: Some(max as i32),
        key_count: Some(key_count),
        continuation_token: input.continuation_token,
        is_truncated: Some(listing.is_truncated),
        next_continuation_token: listing
            .is_truncated
            .then(|| listing.next_marker.as_deref().map(token_for))
            .flatten(),
        delimiter: delim.map(|d| encode(&d, url)),
        encoding_type: input.encoding_type,
        start_after: input.start_after.map(|s| encode(&s, url)),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        ..Default::default()
    }))
}

pub async fn list_object_versions(
    s: &StratusS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = req.input;
    let bucket = convert::bucket(&input.bucket)?;
    let url = url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delim = delimiter(input.delimiter.as_deref());
    let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
    let version_id_marker = match input.version_id_marker.as_deref() {
        Some(v) if !v.is_empty() => {
            if key_marker.is_none() {
                return Err(invalid(ObjectError::InvalidArgument(
                    "A version-id marker cannot be specified without a key marker.".into(),
                )));
            }
            convert::version_id(Some(v))?
        }
        _ => None,
    };
    let listing = s
        .service
        .list_object_versions(
            bucket.clone(),
            prefix.clone(),
            delim.clone(),
            key_marker,
            version_id_marker,
            max,
        )
        .await
        .map_err(s3_error)?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for v in &listing.versions {
        if v.is_delete_marker {
            markers.push(DeleteMarkerEntry {
                key: Some(encode(v.key.as_str(), url)),
                version_id: Some(v.version_id.to_string()),
                is_latest: Some(v.is_latest),
                last_modified: Some(convert::timestamp(v.last_modified_ms)),
                owner: Some(convert::owner(&s.owner)),
            });
        } else {
            versions.push(ObjectVersion {
                key: Some(encode(v.key.as_str(), url)),
                version_id: Some(v.version_id.to_string()),
                is_latest: Some(v.is_latest),
                last_modified: Some(convert::timestamp(v.last_modified_ms)),
                e_tag: v.etag.as_ref().map(convert::etag),
                size: Some(v.size_bytes as i64),
                storage_class: Some(ObjectVersionStorageClass::from(
                    v.storage_class.as_str().to_string(),
                )),
                owner: Some(convert::owner(&s.owner)),
                checksum_algorithm: v
                    .checksum_algorithm
                    .map(|a| vec![ChecksumAlgorithm::from(a.as_str().to_string())]),
                ..Default::default()
            });
        }
    }
    let prefixes = listing
        .common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(encode(p, url)),
        })
        .collect();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(bucket.to_string()),
        prefix: Some(encode(&prefix, url)),
        key_marker: Some(encode(input.key_marker.as_deref().unwrap_or(""), url)),
        version_id_marker: Some(input.version_id_marker.clone().unwrap_or_default()),
        max_keys: Some(max as i32),
        is_truncated: Some(listing.is_truncated),
        next_key_marker: listing.next_key_marker.as_deref().map(|k| encode(k, url)),
        next_version_id_marker: listing.next_version_id_marker.map(|v| v.to_string()),
        delimiter: delim.map(|d| encode(&d, url)),
        encoding_type: input.encoding_type,
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(prefixes),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        assert_eq!(encode("a b/c+d~e", true), "a%20b/c%2Bd~e");
        assert_eq!(encode("a b", false), "a b");
        assert_eq!(encode("ü", true), "%C3%BC");
    }

    #[test]
    fn continuation_tokens_round_trip_and_garbage_is_refused() {
        let t = token_for("photos/2024/ü.jpg");
        assert_eq!(marker_from_token(&t).unwrap(), "photos/2024/ü.jpg");
        assert!(marker_from_token("!!!").is_err());
    }

    #[test]
    fn max_keys_is_capped_and_negative_refused() {
        assert_eq!(max_keys(None).unwrap(), 1000);
        assert_eq!(max_keys(Some(5000)).unwrap(), 1000);
        assert_eq!(max_keys(Some(0)).unwrap(), 0);
        assert!(max_keys(Some(-1)).is_err());
    }
}
