//! The ordered key layout of object metadata inside a data group's state.
//!
//! Every key starts with [`OBJECT_TAG`] (byte 0 belongs to the Raft host, byte 1 to KV),
//! then the bucket name with a one-byte length prefix, then a kind byte:
//!
//! ```text
//! [2][len][bucket] 1                                         bucket record
//! [2][len][bucket] 2                                         version sequence (u64)
//! [2][len][bucket] 3 esc(key) 00 01  !seq (8 bytes BE)       an object version
//! [2][len][bucket] 4 esc(key) 00 01  version id              version id -> seq
//! [2][len][bucket] 5 esc(key) 00 01  esc(upload id) 00 01    a multipart upload
//! [2][len][bucket] 6 esc(key) 00 01  esc(upload id) 00 01  part (u16 BE)
//! [2][0] 0                                                  blob index complete (marker)
//! [2][0] 1 blob (16 bytes BE)                                blob -> its owner
//! [2][0] 2 blob (16 bytes BE)                                blob with missing shards
//! ```
//!
//! The blob rows live outside every bucket (a bucket name is 3 to 63 bytes, so a length
//! byte of 0 is never a bucket's): the background workers look a blob up by id alone,
//! since a shard file names its blob but not its bucket. See `state` for what they hold.
//!
//! `esc` writes each byte as is, except `00`, which becomes `00 FF`; the terminator `00 01`
//! sorts below both `00 FF` and every other byte.
//! Hence, for any two keys `a < b` (byte order, `a` a proper prefix of `b` included),
//! `esc(a) 00 01 < esc(b) 00 01`; `esc(p)` is a byte prefix of `esc(k)` exactly when `p` is a
//! prefix of `k`, so a listing prefix is a scan prefix; and keys never collide (`a`, `a/b`,
//! `a\0`, `a\0\x01` all get distinct, correctly ordered rows).
//!
//! `seq` is a per-bucket counter bumped by every version write, stored inverted (`!seq`) so
//! one forward scan of `3 esc(key) 00 01` yields the key's versions newest first, and a
//! forward scan of `3 esc(prefix)` yields keys in byte order, each key's newest version
//! first. The order is the commit order of the bucket's Raft group, not a clock: the
//! `null` version moves to the front when it is rewritten, as S3 does. The counter lives
//! with the bucket (not the Raft log index), so it survives moving a bucket to another
//! group later.

use super::model::{BucketName, ObjectKey, UploadId, VersionId};
use crate::store::StoreError;

/// First byte of every object key in a data group's state.
pub const OBJECT_TAG: u8 = 2;

const KIND_BUCKET: u8 = 1;
const KIND_SEQUENCE: u8 = 2;
const KIND_VERSION: u8 = 3;
const KIND_VERSION_ID: u8 = 4;
const KIND_UPLOAD: u8 = 5;
const KIND_PART: u8 = 6;

const ESCAPE: [u8; 2] = [0x00, 0xff];
const TERMINATOR: [u8; 2] = [0x00, 0x01];

fn bucket_kind(bucket: &BucketName, kind: u8) -> Vec<u8> {
    let name = bucket.as_str().as_bytes();
    let mut k = Vec::with_capacity(name.len() + 3);
    k.push(OBJECT_TAG);
    // Bucket names are at most 63 bytes (checked by BucketName).
    k.push(name.len() as u8);
    k.extend_from_slice(name);
    k.push(kind);
    k
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == 0 {
            out.extend_from_slice(&ESCAPE);
        } else {
            out.push(b);
        }
    }
}

fn push_component(out: &mut Vec<u8>, bytes: &[u8]) {
    push_escaped(out, bytes);
    out.extend_from_slice(&TERMINATOR);
}

/// Split one escaped, terminated component off the front of `raw`.
fn take_component(raw: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0 {
            match raw.get(i + 1) {
                Some(0xff) => out.push(0),
                Some(0x01) => return Some((out, &raw[i + 2..])),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    None
}

fn corrupt(what: &str, raw: &[u8]) -> StoreError {
    StoreError::corrupt(what, format!("malformed key {raw:02x?}"))
}

/// The smallest key greater than every key starting with `prefix`.
pub fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only a prefix of 0xff bytes gets here; no object key starts with 0xff.
    vec![0xff; prefix.len() + 1]
}

/// The smallest key greater than `key` itself.
pub fn just_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Every key of one bucket (record, versions, uploads, parts).
pub fn bucket_space(bucket: &BucketName) -> Vec<u8> {
    let mut k = bucket_kind(bucket, 0);
    k.pop();
    k
}

pub fn bucket_record(bucket: &BucketName) -> Vec<u8> {
    bucket_kind(bucket, KIND_BUCKET)
}

pub fn version_sequence(bucket: &BucketName) -> Vec<u8> {
    bucket_kind(bucket, KIND_SEQUENCE)
}

/// Versions of every key of the bucket.
pub fn versions(bucket: &BucketName) -> Vec<u8> {
    bucket_kind(bucket, KIND_VERSION)
}

/// Versions of every key starting with `prefix` (a listing prefix, not terminated).
pub fn versions_under(bucket: &BucketName, prefix: &[u8]) -> Vec<u8> {
    let mut k = versions(bucket);
    push_escaped(&mut k, prefix);
    k
}

/// Versions of exactly `key`, newest first.
pub fn versions_of(bucket: &BucketName, key: &ObjectKey) -> Vec<u8> {
    versions_of_bytes(bucket, key.as_bytes())
}

/// [`versions_of`] for any bytes (a client's marker need not be a valid key).
pub fn versions_of_bytes(bucket: &BucketName, key: &[u8]) -> Vec<u8> {
    let mut k = versions(bucket);
    push_component(&mut k, key);
    k
}

pub fn version(bucket: &BucketName, key: &ObjectKey, seq: u64) -> Vec<u8> {
    let mut k = versions_of(bucket, key);
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// Decode a version row's key (from a scan of [`versions`]) into (object key, seq).
pub fn parse_version(bucket: &BucketName, raw: &[u8]) -> Result<(ObjectKey, u64), StoreError> {
    let space = versions(bucket);
    let rest = raw
        .strip_prefix(space.as_slice())
        .ok_or_else(|| corrupt("object version", raw))?;
    let (key, rest) = take_component(rest).ok_or_else(|| corrupt("object version", raw))?;
    let inverted: [u8; 8] = rest
        .try_into()
        .map_err(|_| corrupt("object version", raw))?;
    let key = ObjectKey::from_bytes(&key).map_err(|e| StoreError::corrupt("object version", e))?;
    Ok((key, !u64::from_be_bytes(inverted)))
}

/// The version-id index: `(key, version id) -> seq`, to find one version without a scan.
pub fn version_id_index(bucket: &BucketName, key: &ObjectKey, version_id: &VersionId) -> Vec<u8> {
    let mut k = bucket_kind(bucket, KIND_VERSION_ID);
    push_component(&mut k, key.as_bytes());
    k.extend_from_slice(version_id.as_str().as_bytes());
    k
}

pub fn uploads(bucket: &BucketName) -> Vec<u8> {
    bucket_kind(bucket, KIND_UPLOAD)
}

pub fn uploads_under(bucket: &BucketName, prefix: &[u8]) -> Vec<u8> {
    let mut k = uploads(bucket);
    push_escaped(&mut k, prefix);
    k
}

pub fn uploads_of(bucket: &BucketName, key: &ObjectKey) -> Vec<u8> {
    uploads_of_bytes(bucket, key.as_bytes())
}

/// [`uploads_of`] for any bytes (a client's marker need not be a valid key).
pub fn uploads_of_bytes(bucket: &BucketName, key: &[u8]) -> Vec<u8> {
    let mut k = uploads(bucket);
    push_component(&mut k, key);
    k
}

pub fn upload(bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Vec<u8> {
    let mut k = uploads_of(bucket, key);
    push_component(&mut k, upload_id.as_str().as_bytes());
    k
}

/// Decode an upload row's key (from a scan of [`uploads`]) into (object key, upload id).
pub fn parse_upload(bucket: &BucketName, raw: &[u8]) -> Result<(ObjectKey, UploadId), StoreError> {
    let space = uploads(bucket);
    let rest = raw
        .strip_prefix(space.as_slice())
        .ok_or_else(|| corrupt("multipart upload", raw))?;
    let (key, rest) = take_component(rest).ok_or_else(|| corrupt("multipart upload", raw))?;
    let (id, rest) = take_component(rest).ok_or_else(|| corrupt("multipart upload", raw))?;
    if !rest.is_empty() {
        return Err(corrupt("multipart upload", raw));
    }
    let key =
        ObjectKey::from_bytes(&key).map_err(|e| StoreError::corrupt("multipart upload", e))?;
    let id = String::from_utf8(id)
        .ok()
        .and_then(|id| UploadId::parse(&id).ok())
        .ok_or_else(|| corrupt("multipart upload", raw))?;
    Ok((key, id))
}

/// Every part of one upload, in part-number order.
pub fn parts_of(bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Vec<u8> {
    let mut k = bucket_kind(bucket, KIND_PART);
    push_component(&mut k, key.as_bytes());
    push_component(&mut k, upload_id.as_str().as_bytes());
    k
}

pub fn part(bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId, number: u16) -> Vec<u8> {
    let mut k = parts_of(bucket, key, upload_id);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// Every part row of the bucket (to tell whether any upload is in progress).
pub fn all_parts(bucket: &BucketName) -> Vec<u8> {
    bucket_kind(bucket, KIND_PART)
}

/// Decode a part row's key into (object key, upload id, part number).
pub fn parse_part(
    bucket: &BucketName,
    raw: &[u8],
) -> Result<(ObjectKey, UploadId, u16), StoreError> {
    let space = all_parts(bucket);
    let rest = raw
        .strip_prefix(space.as_slice())
        .ok_or_else(|| corrupt("upload part", raw))?;
    let (key, rest) = take_component(rest).ok_or_else(|| corrupt("upload part", raw))?;
    let (id, rest) = take_component(rest).ok_or_else(|| corrupt("upload part", raw))?;
    let number: [u8; 2] = rest.try_into().map_err(|_| corrupt("upload part", raw))?;
    let key = ObjectKey::from_bytes(&key).map_err(|e| StoreError::corrupt("upload part", e))?;
    let id = String::from_utf8(id)
        .ok()
        .and_then(|id| UploadId::parse(&id).ok())
        .ok_or_else(|| corrupt("upload part", raw))?;
    Ok((key, id, u16::from_be_bytes(number)))
}

/// What a row of some bucket is, from its key alone: versions and parts are the rows
/// that point to blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketRow {
    Version(BucketName),
    Part(BucketName),
    Other,
}

/// Classify a key of the object space (a row outside every bucket is `Other`).
pub fn bucket_row(raw: &[u8]) -> BucketRow {
    let (Some(&OBJECT_TAG), Some(&len)) = (raw.first(), raw.get(1)) else {
        return BucketRow::Other;
    };
    let end = 2 + usize::from(len);
    let (Some(name), Some(&kind)) = (raw.get(2..end), raw.get(end)) else {
        return BucketRow::Other;
    };
    let Some(bucket) = std::str::from_utf8(name)
        .ok()
        .and_then(|n| BucketName::parse(n).ok())
    else {
        return BucketRow::Other;
    };
    match kind {
        KIND_VERSION => BucketRow::Version(bucket),
        KIND_PART => BucketRow::Part(bucket),
        _ => BucketRow::Other,
    }
}

/// Every key of the object space (buckets and the blob rows).
pub fn object_space() -> Vec<u8> {
    vec![OBJECT_TAG]
}

/// The blob rows' space: `[2][0]`, below every bucket (whose length byte is 3 or more).
const BLOB_SPACE: [u8; 2] = [OBJECT_TAG, 0];
const KIND_BLOB_INDEX_COMPLETE: u8 = 0;
const KIND_BLOB_REF: u8 = 1;
const KIND_BLOB_DAMAGED: u8 = 2;

fn blob_kind(kind: u8) -> Vec<u8> {
    let mut k = BLOB_SPACE.to_vec();
    k.push(kind);
    k
}

fn blob_row(kind: u8, blob: u128) -> Vec<u8> {
    let mut k = blob_kind(kind);
    k.extend_from_slice(&blob.to_be_bytes());
    k
}

/// Present once every version and part of the group is in the blob index (a group is
/// indexed as it is written from the start, or by a one-time backfill after an upgrade).
pub fn blob_index_complete() -> Vec<u8> {
    blob_kind(KIND_BLOB_INDEX_COMPLETE)
}

/// Every blob reference row, in blob id order.
pub fn blob_refs() -> Vec<u8> {
    blob_kind(KIND_BLOB_REF)
}

/// The row naming who points to `blob` (a version or an upload's part).
pub fn blob_ref(blob: u128) -> Vec<u8> {
    blob_row(KIND_BLOB_REF, blob)
}

/// Every row of a blob with shards recorded missing, in blob id order.
pub fn damaged_blobs() -> Vec<u8> {
    blob_kind(KIND_BLOB_DAMAGED)
}

/// The row present while `blob` has shards recorded missing.
pub fn damaged_blob(blob: u128) -> Vec<u8> {
    blob_row(KIND_BLOB_DAMAGED, blob)
}

/// The blob id of a row from a scan of [`blob_refs`] or [`damaged_blobs`].
pub fn parse_blob_row(raw: &[u8]) -> Result<u128, StoreError> {
    let bytes: [u8; 16] = raw
        .get(BLOB_SPACE.len() + 1..)
        .filter(|_| raw.starts_with(&BLOB_SPACE))
        .and_then(|rest| rest.try_into().ok())
        .ok_or_else(|| corrupt("blob row", raw))?;
    Ok(u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(name: &str) -> BucketName {
        BucketName::parse(name).unwrap()
    }

    fn key(k: &str) -> ObjectKey {
        ObjectKey::parse(k).unwrap()
    }

    /// Keys chosen to trip naive layouts: prefixes of each other, NUL and 0x01 bytes
    /// (the escape and terminator bytes), the delimiter, high code points.
    const ADVERSARIAL: [&str; 14] = [
        "a",
        "a\0",
        "a\0\u{1}",
        "a\0\0",
        "a\u{1}",
        "a\u{1}\0",
        "a/",
        "a/b",
        "a/b/c",
        "a0",
        "ab",
        "b",
        "\u{7f}",
        "\u{10ffff}",
    ];

    #[test]
    fn version_keys_sort_like_object_keys() {
        let b = bucket("bkt");
        let mut by_object: Vec<&str> = ADVERSARIAL.to_vec();
        by_object.sort();
        let mut by_row: Vec<&str> = ADVERSARIAL.to_vec();
        by_row.sort_by_key(|k| versions_of(&b, &key(k)));
        assert_eq!(by_object, by_row);
        // With any seq appended, order is by key first.
        let mut rows: Vec<(Vec<u8>, &str)> = ADVERSARIAL
            .iter()
            .enumerate()
            .map(|(i, k)| (version(&b, &key(k), (i as u64) * 7919 % 13), *k))
            .collect();
        rows.sort();
        let row_order: Vec<&str> = rows.into_iter().map(|(_, k)| k).collect();
        assert_eq!(row_order, by_object);
    }

    #[test]
    fn versions_of_one_key_are_newest_first_and_do_not_mix_with_longer_keys() {
        let b = bucket("bkt");
        let a = key("a");
        assert!(version(&b, &a, 10) < version(&b, &a, 9));
        assert!(version(&b, &a, u64::MAX) < version(&b, &a, 0));
        let prefix = versions_of(&b, &a);
        for other in ["a\0", "a\0\u{1}", "a/", "ab"] {
            let row = version(&b, &key(other), 1);
            assert!(
                !row.starts_with(&prefix),
                "{other:?} listed as a version of a"
            );
        }
        // Every version of "a" sorts before every version of the next key.
        assert!(version(&b, &a, 0) < version(&b, &key("a\0"), u64::MAX));
        assert!(after_prefix(&prefix) <= version(&b, &key("a\0"), u64::MAX));
    }

    #[test]
    fn listing_prefixes_are_scan_prefixes() {
        let b = bucket("bkt");
        for p in ["", "a", "a\0", "a/", "a/b"] {
            let scan = versions_under(&b, p.as_bytes());
            for k in ADVERSARIAL {
                let row = version(&b, &key(k), 3);
                assert_eq!(
                    row.starts_with(&scan),
                    k.starts_with(p),
                    "prefix {p:?} key {k:?}"
                );
                // Skipping a whole prefix lands after every key under it and before others.
                let skip = after_prefix(&scan);
                if k.starts_with(p) {
                    assert!(row < skip);
                } else if k > p {
                    assert!(row >= skip, "prefix {p:?} key {k:?}");
                }
            }
        }
    }

    #[test]
    fn rows_decode_back_to_key_and_seq() {
        let b = bucket("bkt");
        for k in ADVERSARIAL {
            let raw = version(&b, &key(k), 42);
            assert_eq!(parse_version(&b, &raw).unwrap(), (key(k), 42));
            let id = UploadId::generate(1, 2);
            let raw = upload(&b, &key(k), &id);
            assert_eq!(parse_upload(&b, &raw).unwrap(), (key(k), id));
        }
        assert!(parse_version(&b, &[OBJECT_TAG, 0]).is_err());
        let mut bad = versions(&b);
        bad.extend_from_slice(&[b'a', 0, 7, 1, 2]);
        assert!(parse_version(&b, &bad).is_err());
    }

    #[test]
    fn buckets_do_not_share_keys() {
        let (short, long) = (bucket("abc"), bucket("abcd"));
        assert!(!bucket_record(&long).starts_with(&bucket_space(&short)));
        assert!(!version(&long, &key("x"), 1).starts_with(&bucket_space(&short)));
        assert!(version(&short, &key("x"), 1).starts_with(&bucket_space(&short)));
        assert!(
            part(&short, &key("x"), &UploadId::generate(1, 1), 3).starts_with(&all_parts(&short))
        );
    }

    #[test]
    fn blob_rows_sort_by_id_and_stay_out_of_every_bucket() {
        let (low, high) = (blob_ref(5), blob_ref(1 << 100));
        assert!(low < high && high < blob_ref(u128::MAX));
        assert!(low.starts_with(&blob_refs()) && !low.starts_with(&damaged_blobs()));
        assert!(damaged_blob(7).starts_with(&damaged_blobs()));
        assert_eq!(
            parse_blob_row(&blob_ref(u128::MAX - 3)).unwrap(),
            u128::MAX - 3
        );
        assert_eq!(parse_blob_row(&damaged_blob(9)).unwrap(), 9);
        assert!(parse_blob_row(&blob_refs()).is_err());
        for name in ["abc", &"z".repeat(63)] {
            let space = bucket_space(&bucket(name));
            assert!(!blob_ref(1).starts_with(&space) && !space.starts_with(&blob_refs()));
        }
    }

    #[test]
    fn rows_are_classified_and_parts_decode() {
        let b = bucket("bkt");
        let id = UploadId::generate(3, 4);
        for k in ADVERSARIAL {
            let raw = part(&b, &key(k), &id, 7);
            assert_eq!(parse_part(&b, &raw).unwrap(), (key(k), id.clone(), 7));
            assert_eq!(bucket_row(&raw), BucketRow::Part(b.clone()));
            assert_eq!(
                bucket_row(&version(&b, &key(k), 1)),
                BucketRow::Version(b.clone())
            );
            assert_eq!(bucket_row(&upload(&b, &key(k), &id)), BucketRow::Other);
        }
        assert_eq!(bucket_row(&bucket_record(&b)), BucketRow::Other);
        assert_eq!(bucket_row(&blob_ref(1)), BucketRow::Other);
        assert_eq!(bucket_row(&blob_index_complete()), BucketRow::Other);
        assert_eq!(bucket_row(&[OBJECT_TAG, 200, 1]), BucketRow::Other);
        assert!(parse_part(&b, &upload(&b, &key("k"), &id)).is_err());
    }

    #[test]
    fn parts_and_uploads_order_by_number_and_id() {
        let b = bucket("bkt");
        let id = UploadId::generate(5, 5);
        assert!(part(&b, &key("k"), &id, 2) < part(&b, &key("k"), &id, 10));
        assert!(part(&b, &key("k"), &id, 10_000) < part(&b, &key("k\0"), &id, 1));
        let older = UploadId::generate(5, 9);
        let newer = UploadId::generate(6, 0);
        assert!(upload(&b, &key("k"), &older) < upload(&b, &key("k"), &newer));
        assert!(upload(&b, &key("k"), &newer) < upload(&b, &key("k/"), &older));
    }
}
