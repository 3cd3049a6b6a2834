//! The deterministic state of the object store inside a data group: buckets, object
//! versions, multipart uploads. Pure functions over the group's ordered key-value view
//! (layout in `keys`); no clock, no randomness, no I/O.
//!
//! What the proposer supplies: the time (`ApplyContext::now_ms`, used for last-modified
//! and initiation times), every random id (version ids, upload ids, blob ids), and data
//! that is already durable on the chunk stores. The state answers with the S3 outcome and,
//! for every write that drops data, the erasure-coded blobs nobody points to any more
//! (`garbage`), which the shell hands to the garbage collector. When a command fails, the
//! data it carried is the proposer's to collect.
//!
//! Guarantees:
//! - Every command checks everything before it writes, so a refused command leaves the
//!   state untouched (the host commits the transaction whatever the reply).
//! - Versions of a key are ordered by a per-bucket commit sequence, newest first; the
//!   `null` version moves to the front when rewritten, as in S3.
//! - Every read is bounded: listings read at most [`LIST_ROW_BUDGET`] rows per call and,
//!   when that budget runs out (a prefix full of delete markers, say), answer with fewer
//!   entries, `is_truncated` and a marker to resume from, as S3 itself may. Multipart
//!   commands read at most one row per part (at most 10,000).
//!
//! The blob index: beside the versions and parts, every erasure-coded blob they point to has
//! a row naming its owner (`keys::blob_ref`), and every version's blob with shards recorded
//! missing a second row (`keys::damaged_blob`). Both are written and removed in the same
//! transactions that add and drop the `DataRef`s, so they are exactly as current as the
//! versions. The background workers read them (`FindBlobs`, `ListBlobs`): the orphan sweep
//! to tell a referenced shard from an orphan, the scrubber to find the version a corrupt
//! shard belongs to, the repair worker to find what to rebuild.
//!
//! Upgrade note: groups whose versions were written before the blob index existed have no
//! rows for them. `IndexBlobs` backfills a group in bounded steps and then writes the
//! `keys::blob_index_complete` marker; every blob answer says whether the marker is there,
//! and nobody may conclude a blob is unreferenced from a group without it. The repair
//! worker runs the backfill on the groups it leads (a fresh group completes in one step).
//!
//! Not here: erasure coding and shard placement (`erasure`, `shard_io`), the bucket-name
//! catalog (`catalog`, in the meta group), lifecycle, and the S3 wire format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys;
use super::model::{
    validate_part_number, BucketName, BucketRecord, Checksum, ChecksumAlgorithm, DataRef, ETag,
    ErasureRef, MultipartUpload, NewObject, ObjectError, ObjectHeaders, ObjectKey, ObjectSummary,
    ObjectVersion, PartRecord, PartRef, StorageClass, TagSet, UploadId, UserMetadata, VersionId,
    VersionSummary, VersioningState, MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, MAX_PART_NUMBER,
    MIN_PART_SIZE_BYTES,
};
use crate::raft::ApplyContext;
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// S3's largest page of ListObjects / ListObjectVersions / ListMultipartUploads / ListParts.
pub const MAX_LIST_KEYS: u32 = 1000;
/// Rows a listing may read per call before it returns a truncated page.
pub const LIST_ROW_BUDGET: usize = 10_000;
/// Most blobs one `FindBlobs` may ask about.
pub const MAX_BLOB_LOOKUP: usize = 256;
/// Most blobs one `ListBlobs` page holds.
pub const MAX_BLOB_PAGE: u32 = 64;
/// Rows of the object space one `IndexBlobs` step reads.
pub const INDEX_STEP_ROWS: usize = 256;

/// Preconditions of a write (`If-Match`, `If-None-Match: *`), checked against the key's
/// current version (its newest, unless that is a delete marker).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteConditions {
    /// `If-Match`: the current version's ETag must equal this (`*`: any current version).
    pub if_match: Option<ETag>,
    /// `If-None-Match: *`: there must be no current version.
    pub if_none_match_any: bool,
}

/// What CreateMultipartUpload supplies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub storage_class: StorageClass,
    pub headers: ObjectHeaders,
    pub user_metadata: UserMetadata,
    pub tags: TagSet,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

/// What UploadPart supplies once the part's data is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPart {
    pub part_number: u16,
    pub etag: ETag,
    pub size_bytes: u64,
    pub checksum: Option<Checksum>,
    pub data: DataRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectCommand {
    /// Second step of bucket creation (after the catalog registered the name).
    /// Idempotent for the same owner.
    CreateBucket {
        bucket: BucketName,
        owner: String,
        created_ms: u64,
    },
    /// Refused with BucketNotEmpty while any version, delete marker or upload exists.
    DeleteBucket {
        bucket: BucketName,
    },
    PutBucketVersioning {
        bucket: BucketName,
        state: VersioningState,
    },
    PutBucketTagging {
        bucket: BucketName,
        tags: TagSet,
    },
    DeleteBucketTagging {
        bucket: BucketName,
    },
    PutObject {
        bucket: BucketName,
        key: ObjectKey,
        /// Used when versioning is enabled; otherwise the version is `null`.
        version_id: VersionId,
        object: NewObject,
        conditions: WriteConditions,
    },
    DeleteObject {
        bucket: BucketName,
        key: ObjectKey,
        /// Delete exactly this version (a delete marker included).
        version_id: Option<VersionId>,
        /// The id of the delete marker, should versioning be enabled.
        new_version_id: VersionId,
    },
    PutObjectTagging {
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
        tags: TagSet,
    },
    DeleteObjectTagging {
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
    },
    CreateUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        upload: NewUpload,
    },
    PutPart {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part: NewPart,
    },
    CompleteUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        /// (part number, ETag) as listed by the client.
        parts: Vec<(u16, ETag)>,
        version_id: VersionId,
        conditions: WriteConditions,
    },
    AbortUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
    },
    /// The repair worker rebuilt shards of `blob`: shard `index` now lives on `node`.
    MarkShardsRepaired {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
        blob: u128,
        repaired: Vec<(u8, u64)>,
    },
    /// The scrubber found shards of `blob` missing or corrupt: record them for repair.
    MarkShardsMissing {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
        blob: u128,
        missing: Vec<u8>,
    },
    /// One step of the blob index backfill: index the versions and parts among the next
    /// [`INDEX_STEP_ROWS`] rows of the object space after the raw key `after` (from the
    /// start when `None`). The last step writes the complete marker.
    IndexBlobs {
        after: Option<Vec<u8>>,
    },
}

/// Who points to an erasure-coded blob: an object version, or a part of a multipart upload
/// still in progress (a completed upload's parts belong to its version).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobOwner {
    Version {
        bucket: BucketName,
        key: ObjectKey,
        version_id: VersionId,
    },
    Part {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part_number: u16,
    },
}

impl BlobOwner {
    pub fn bucket(&self) -> &BucketName {
        match self {
            BlobOwner::Version { bucket, .. } | BlobOwner::Part { bucket, .. } => bucket,
        }
    }
}

/// A blob as the background workers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub blob: u128,
    pub owner: BlobOwner,
    /// Where the blob's shards are; `None` if the owner does not hold the blob (the state
    /// never writes that; a reader still treats the blob as referenced).
    pub erasure: Option<ErasureRef>,
    /// Bytes the blob encodes (the version's size, or its part's).
    pub size_bytes: u64,
    pub storage_class: StorageClass,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPage {
    pub entries: Vec<BlobEntry>,
    /// Where the next page starts (`ListBlobs` only); `None` when the list is exhausted.
    pub next_after: Option<u128>,
    /// Whether every version and part of the group is indexed (see the upgrade note):
    /// without it, a blob left out of `entries` may still be referenced.
    pub index_complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectQuery {
    HeadBucket {
        bucket: BucketName,
    },
    GetBucket {
        bucket: BucketName,
    },
    GetObject {
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
    },
    /// ListObjects v1 and v2: v2's continuation token and start-after both become `marker`
    /// (keys strictly after it are listed).
    ListObjects {
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        marker: Option<String>,
        max_keys: u32,
    },
    ListObjectVersions {
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        key_marker: Option<String>,
        version_id_marker: Option<VersionId>,
        max_keys: u32,
    },
    ListUploads {
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        key_marker: Option<String>,
        upload_id_marker: Option<UploadId>,
        max_uploads: u32,
    },
    GetUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
    },
    ListParts {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        /// Parts with a number strictly greater are listed.
        part_number_marker: u16,
        max_parts: u32,
    },
    /// The index entries of those of `blobs` that something points to (at most
    /// [`MAX_BLOB_LOOKUP`]); blobs nothing points to are left out.
    FindBlobs {
        blobs: Vec<u128>,
    },
    /// Referenced blobs in id order, strictly after `after`: all of them, or only the ones
    /// with shards recorded missing. At most `limit` (capped at [`MAX_BLOB_PAGE`]).
    ListBlobs {
        damaged_only: bool,
        after: Option<u128>,
        limit: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectListing {
    pub contents: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// Where the next page starts (a key or a common prefix); set when truncated.
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionListing {
    /// Versions and delete markers, by key, newest first within a key.
    pub versions: Vec<VersionSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<VersionId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSummary {
    pub key: ObjectKey,
    pub upload_id: UploadId,
    pub initiated_ms: u64,
    pub storage_class: StorageClass,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadListing {
    pub uploads: Vec<UploadSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<UploadId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSummary {
    pub part_number: u16,
    pub etag: ETag,
    pub size_bytes: u64,
    pub uploaded_ms: u64,
    pub checksum: Option<Checksum>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartListing {
    pub upload: MultipartUpload,
    pub parts: Vec<PartSummary>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<u16>,
}

/// The answer to a command or a query. `version_id` fields are `None` in a bucket that
/// was never versioned (S3 then sends no `x-amz-version-id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectReply {
    BucketCreated {
        created: bool,
    },
    BucketDeleted,
    BucketUpdated,
    ObjectPut {
        version_id: Option<VersionId>,
        garbage: Vec<ErasureRef>,
    },
    ObjectDeleted {
        version_id: Option<VersionId>,
        delete_marker: bool,
        garbage: Vec<ErasureRef>,
    },
    TaggingUpdated {
        version_id: Option<VersionId>,
    },
    UploadCreated {
        upload_id: UploadId,
    },
    PartPut {
        garbage: Vec<ErasureRef>,
    },
    UploadCompleted {
        version_id: Option<VersionId>,
        etag: ETag,
        size_bytes: u64,
        garbage: Vec<ErasureRef>,
    },
    UploadAborted {
        garbage: Vec<ErasureRef>,
    },
    ShardsUpdated {
        updated: bool,
    },
    /// A backfill step: where the next one starts, `None` once the index is complete.
    BlobsIndexed {
        next: Option<Vec<u8>>,
    },
    Bucket(BucketRecord),
    Object(ObjectVersion),
    Objects(ObjectListing),
    Versions(VersionListing),
    Uploads(UploadListing),
    Upload(MultipartUpload),
    Parts(PartListing),
    Blobs(BlobPage),
}

/// What a data group answers for an object command or query.
pub type ObjectResult = Result<ObjectReply, ObjectError>;

/// A step fails either with an S3 error for the client or a storage fault for the host.
enum Fail {
    Client(ObjectError),
    Store(StoreError),
}

impl From<ObjectError> for Fail {
    fn from(e: ObjectError) -> Self {
        Fail::Client(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

type Step<T> = Result<T, Fail>;

fn finish(step: Step<ObjectReply>) -> Result<ObjectResult, StoreError> {
    match step {
        Ok(reply) => Ok(Ok(reply)),
        Err(Fail::Client(e)) => Ok(Err(e)),
        Err(Fail::Store(e)) => Err(e),
    }
}

pub fn apply(
    txn: &mut dyn StateTxn,
    command: ObjectCommand,
    ctx: &ApplyContext,
) -> Result<ObjectResult, StoreError> {
    finish(apply_step(txn, command, ctx.now_ms))
}

pub fn read(state: &dyn StateRead, query: ObjectQuery) -> Result<ObjectResult, StoreError> {
    finish(read_step(state, query, LIST_ROW_BUDGET))
}

// ---------------------------------------------------------------------------------------
// Stored rows

fn load_bucket(state: &dyn StateRead, bucket: &BucketName) -> Step<BucketRecord> {
    match state.get(&keys::bucket_record(bucket))? {
        Some(bytes) => Ok(decode("bucket record", &bytes)?),
        None => Err(ObjectError::NoSuchBucket(bucket.to_string()).into()),
    }
}

/// Take the bucket's next version sequence number (a write: call after every check).
fn next_seq(txn: &mut dyn StateTxn, bucket: &BucketName) -> Step<u64> {
    let key = keys::version_sequence(bucket);
    let current: u64 = match txn.get(&key)? {
        Some(bytes) => decode("version sequence", &bytes)?,
        None => 0,
    };
    let next = current + 1;
    txn.put(&key, encode(&next));
    Ok(next)
}

fn newest_version(
    state: &dyn StateRead,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Step<Option<(u64, ObjectVersion)>> {
    let prefix = keys::versions_of(bucket, key);
    match state.scan(&prefix, &prefix, 1)?.into_iter().next() {
        Some((raw, value)) => {
            let (_, seq) = keys::parse_version(bucket, &raw)?;
            Ok(Some((seq, decode("object version", &value)?)))
        }
        None => Ok(None),
    }
}

fn find_version(
    state: &dyn StateRead,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: &VersionId,
) -> Step<Option<(u64, ObjectVersion)>> {
    let Some(bytes) = state.get(&keys::version_id_index(bucket, key, version_id))? else {
        return Ok(None);
    };
    let seq: u64 = decode("version id index", &bytes)?;
    match state.get(&keys::version(bucket, key, seq))? {
        Some(value) => Ok(Some((seq, decode("object version", &value)?))),
        None => Err(StoreError::corrupt(
            "version id index",
            format!("{key}@{version_id} points to a missing version"),
        )
        .into()),
    }
}

fn version_owner(bucket: &BucketName, v: &ObjectVersion) -> BlobOwner {
    BlobOwner::Version {
        bucket: bucket.clone(),
        key: v.key.clone(),
        version_id: v.version_id.clone(),
    }
}

fn part_owner(
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &UploadId,
    part_number: u16,
) -> BlobOwner {
    BlobOwner::Part {
        bucket: bucket.clone(),
        key: key.clone(),
        upload_id: upload_id.clone(),
        part_number,
    }
}

fn erasure_refs_of(data: &DataRef) -> Vec<&ErasureRef> {
    match data {
        DataRef::Inline(_) => Vec::new(),
        DataRef::Erasure(e) => vec![e],
        DataRef::Parts(parts) => parts
            .iter()
            .flat_map(|p| erasure_refs_of(&p.data))
            .collect(),
    }
}

/// Point the blob index at `owner` for every blob of `data` (and keep the damaged row of
/// each blob in step with its `missing` shards; only versions get repaired).
fn index_blobs(txn: &mut dyn StateTxn, owner: &BlobOwner, data: &DataRef) {
    let value = encode(owner);
    for e in erasure_refs_of(data) {
        txn.put(&keys::blob_ref(e.blob), value.clone());
        mark_damaged(txn, owner, e);
    }
}

fn mark_damaged(txn: &mut dyn StateTxn, owner: &BlobOwner, e: &ErasureRef) {
    if matches!(owner, BlobOwner::Version { .. }) && !e.missing.is_empty() {
        txn.put(&keys::damaged_blob(e.blob), encode(owner));
    } else {
        txn.delete(&keys::damaged_blob(e.blob));
    }
}

/// Drop the blob index rows of `data` that name `owner` (a row naming another owner is
/// left alone: then that owner points to the blob too).
fn unindex_blobs(txn: &mut dyn StateTxn, owner: &BlobOwner, data: &DataRef) -> Step<()> {
    for e in erasure_refs_of(data) {
        let row = keys::blob_ref(e.blob);
        let Some(bytes) = txn.get(&row)? else {
            continue;
        };
        let indexed: BlobOwner = decode("blob owner", &bytes)?;
        if &indexed == owner {
            txn.delete(&row);
            txn.delete(&keys::damaged_blob(e.blob));
        }
    }
    Ok(())
}

fn write_version(txn: &mut dyn StateTxn, bucket: &BucketName, seq: u64, v: &ObjectVersion) {
    txn.put(&keys::version(bucket, &v.key, seq), encode(v));
    txn.put(
        &keys::version_id_index(bucket, &v.key, &v.version_id),
        encode(&seq),
    );
    index_blobs(txn, &version_owner(bucket, v), &v.data);
}

fn remove_version(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    seq: u64,
    v: &ObjectVersion,
) -> Step<()> {
    txn.delete(&keys::version(bucket, &v.key, seq));
    txn.delete(&keys::version_id_index(bucket, &v.key, &v.version_id));
    unindex_blobs(txn, &version_owner(bucket, v), &v.data)
}

/// The version a read or a tagging call addresses: the newest, or one by id.
fn addressed_version(
    state: &dyn StateRead,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: Option<&VersionId>,
) -> Step<(u64, ObjectVersion)> {
    match version_id {
        None => match newest_version(state, bucket, key)? {
            None => Err(ObjectError::NoSuchKey {
                delete_marker: None,
            }
            .into()),
            Some((_, v)) if v.is_delete_marker => Err(ObjectError::NoSuchKey {
                delete_marker: Some(v.version_id),
            }
            .into()),
            Some(found) => Ok(found),
        },
        Some(id) => match find_version(state, bucket, key, id)? {
            None => Err(ObjectError::NoSuchVersion.into()),
            Some((_, v)) if v.is_delete_marker => Err(ObjectError::MethodNotAllowed {
                version_id: v.version_id,
                last_modified_ms: v.last_modified_ms,
            }
            .into()),
            Some(found) => Ok(found),
        },
    }
}

fn load_upload(
    state: &dyn StateRead,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &UploadId,
) -> Step<MultipartUpload> {
    match state.get(&keys::upload(bucket, key, upload_id))? {
        Some(bytes) => Ok(decode("multipart upload", &bytes)?),
        None => Err(ObjectError::NoSuchUpload.into()),
    }
}

/// Every part of an upload (at most MAX_PART_NUMBER rows, by construction).
fn load_parts(
    state: &dyn StateRead,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &UploadId,
) -> Step<BTreeMap<u16, PartRecord>> {
    let prefix = keys::parts_of(bucket, key, upload_id);
    let rows = state.scan(&prefix, &prefix, usize::from(MAX_PART_NUMBER) + 1)?;
    let mut parts = BTreeMap::new();
    for (_, value) in rows {
        let part: PartRecord = decode("upload part", &value)?;
        parts.insert(part.part_number, part);
    }
    Ok(parts)
}

/// The version id S3 reports for a write in a bucket in this state.
fn reported(versioning: VersioningState, id: VersionId) -> Option<VersionId> {
    match versioning {
        VersioningState::Unversioned => None,
        _ => Some(id),
    }
}

/// The blobs of `dropped` that `kept` does not also point to.
fn garbage_of(dropped: &DataRef, kept: Option<&DataRef>) -> Vec<ErasureRef> {
    let keep: Vec<u128> = kept.map(DataRef::blobs).unwrap_or_default();
    let mut out = Vec::new();
    collect_erasure(dropped, &keep, &mut out);
    out
}

fn collect_erasure(data: &DataRef, keep: &[u128], out: &mut Vec<ErasureRef>) {
    match data {
        DataRef::Inline(_) => {}
        DataRef::Erasure(e) => {
            if !keep.contains(&e.blob) {
                out.push(e.clone());
            }
        }
        DataRef::Parts(parts) => {
            for part in parts {
                collect_erasure(&part.data, keep, out);
            }
        }
    }
}

fn check_conditions(conditions: &WriteConditions, current: Option<&ObjectVersion>) -> Step<()> {
    let current = current.filter(|v| !v.is_delete_marker);
    if conditions.if_none_match_any && current.is_some() {
        return Err(ObjectError::PreconditionFailed.into());
    }
    if let Some(expected) = &conditions.if_match {
        let Some(current) = current else {
            return Err(ObjectError::NoSuchKey {
                delete_marker: None,
            }
            .into());
        };
        if expected.as_str() != "*" && current.etag.as_ref() != Some(expected) {
            return Err(ObjectError::PreconditionFailed.into());
        }
    }
    Ok(())
}

/// Make room for a new version: in an enabled bucket check the proposer's id is fresh; in
/// an unversioned or suspended bucket the new version is `null` and replaces the old
/// `null` version, returned for removal.
#[allow(clippy::type_complexity)]
fn choose_version_id(
    state: &dyn StateRead,
    bucket: &BucketRecord,
    key: &ObjectKey,
    proposed: &VersionId,
) -> Step<(VersionId, Option<(u64, ObjectVersion)>)> {
    match bucket.versioning {
        VersioningState::Enabled => {
            if proposed.is_null() {
                return Err(
                    ObjectError::invalid("a versioned write needs a generated version id").into(),
                );
            }
            if find_version(state, &bucket.name, key, proposed)?.is_some() {
                return Err(ObjectError::invalid(format!(
                    "version id {proposed} is already in use"
                ))
                .into());
            }
            Ok((proposed.clone(), None))
        }
        VersioningState::Unversioned | VersioningState::Suspended => {
            let null = VersionId::null();
            let replaced = find_version(state, &bucket.name, key, &null)?;
            Ok((null, replaced))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Commands

fn apply_step(txn: &mut dyn StateTxn, command: ObjectCommand, now_ms: u64) -> Step<ObjectReply> {
    match command {
        ObjectCommand::CreateBucket {
            bucket,
            owner,
            created_ms,
        } => create_bucket(txn, bucket, owner, created_ms),
        ObjectCommand::DeleteBucket { bucket } => delete_bucket(txn, &bucket),
        ObjectCommand::PutBucketVersioning { bucket, state } => {
            if state == VersioningState::Unversioned {
                return Err(ObjectError::MalformedXml(
                    "versioning can only be Enabled or Suspended".into(),
                )
                .into());
            }
            let mut record = load_bucket(txn, &bucket)?;
            record.versioning = state;
            txn.put(&keys::bucket_record(&bucket), encode(&record));
            Ok(ObjectReply::BucketUpdated)
        }
        ObjectCommand::PutBucketTagging { bucket, tags } => {
            tags.validate(MAX_BUCKET_TAGS)?;
            let mut record = load_bucket(txn, &bucket)?;
            record.tags = tags;
            txn.put(&keys::bucket_record(&bucket), encode(&record));
            Ok(ObjectReply::BucketUpdated)
        }
        ObjectCommand::DeleteBucketTagging { bucket } => {
            let mut record = load_bucket(txn, &bucket)?;
            record.tags = TagSet::default();
            txn.put(&keys::bucket_record(&bucket), encode(&record));
            Ok(ObjectReply::BucketUpdated)
        }
        ObjectCommand::PutObject {
            bucket,
            key,
            version_id,
            object,
            conditions,
        } => put_object(txn, &bucket, key, version_id, object, &conditions, now_ms),
        ObjectCommand::DeleteObject {
            bucket,
            key,
            version_id,
            new_version_id,
        } => delete_object(txn, &bucket, key, version_id, new_version_id, now_ms),
        ObjectCommand::PutObjectTagging {
            bucket,
            key,
            version_id,
            tags,
        } => {
            tags.validate(MAX_OBJECT_TAGS)?;
            set_object_tags(txn, &bucket, &key, version_id.as_ref(), tags)
        }
        ObjectCommand::DeleteObjectTagging {
            bucket,
            key,
            version_id,
        } => set_object_tags(txn, &bucket, &key, version_id.as_ref(), TagSet::default()),
        ObjectCommand::CreateUpload {
            bucket,
            key,
            upload_id,
            upload,
        } => create_upload(txn, &bucket, key, upload_id, upload, now_ms),
        ObjectCommand::PutPart {
            bucket,
            key,
            upload_id,
            part,
        } => put_part(txn, &bucket, &key, &upload_id, part, now_ms),
        ObjectCommand::CompleteUpload {
            bucket,
            key,
            upload_id,
            parts,
            version_id,
            conditions,
        } => complete_upload(
            txn,
            &bucket,
            key,
            &upload_id,
            &parts,
            version_id,
            &conditions,
            now_ms,
        ),
        ObjectCommand::AbortUpload {
            bucket,
            key,
            upload_id,
        } => {
            load_bucket(txn, &bucket)?;
            load_upload(txn, &bucket, &key, &upload_id)?;
            let parts = load_parts(txn, &bucket, &key, &upload_id)?;
            let mut garbage = Vec::new();
            for part in parts.values() {
                garbage.extend(garbage_of(&part.data, None));
                txn.delete(&keys::part(&bucket, &key, &upload_id, part.part_number));
                let owner = part_owner(&bucket, &key, &upload_id, part.part_number);
                unindex_blobs(txn, &owner, &part.data)?;
            }
            txn.delete(&keys::upload(&bucket, &key, &upload_id));
            Ok(ObjectReply::UploadAborted { garbage })
        }
        ObjectCommand::MarkShardsRepaired {
            bucket,
            key,
            version_id,
            blob,
            repaired,
        } => update_shards(txn, &bucket, &key, &version_id, blob, |e| {
            let total = e.layout.total_shards();
            if repaired.iter().any(|&(i, _)| usize::from(i) >= total) {
                return Err(ObjectError::invalid(
                    "a repaired shard index is out of range",
                ));
            }
            for &(index, node) in &repaired {
                e.shard_nodes[usize::from(index)] = node;
                e.missing.retain(|&m| m != index);
            }
            Ok(())
        }),
        ObjectCommand::MarkShardsMissing {
            bucket,
            key,
            version_id,
            blob,
            missing,
        } => update_shards(txn, &bucket, &key, &version_id, blob, |e| {
            let total = e.layout.total_shards();
            if missing.iter().any(|&i| usize::from(i) >= total) {
                return Err(ObjectError::invalid(
                    "a missing shard index is out of range",
                ));
            }
            for &index in &missing {
                if !e.missing.contains(&index) {
                    e.missing.push(index);
                }
            }
            e.missing.sort_unstable();
            Ok(())
        }),
        ObjectCommand::IndexBlobs { after } => index_existing(txn, after),
    }
}

/// One backfill step (see `ObjectCommand::IndexBlobs`).
fn index_existing(txn: &mut dyn StateTxn, after: Option<Vec<u8>>) -> Step<ObjectReply> {
    let space = keys::object_space();
    // Blob rows ([2][0]...) sort before every bucket: start past them.
    let first_bucket = vec![keys::OBJECT_TAG, 1];
    let from = match after {
        Some(after) => keys::just_after(&after).max(first_bucket),
        None => first_bucket,
    };
    let rows = txn.scan(&space, &from, INDEX_STEP_ROWS)?;
    let last = rows.last().map(|(raw, _)| raw.clone());
    for (raw, value) in &rows {
        match keys::bucket_row(raw) {
            keys::BucketRow::Version(bucket) => {
                let version: ObjectVersion = decode("object version", value)?;
                index_blobs(txn, &version_owner(&bucket, &version), &version.data);
            }
            keys::BucketRow::Part(bucket) => {
                let (key, upload_id, number) = keys::parse_part(&bucket, raw)?;
                let part: PartRecord = decode("upload part", value)?;
                index_blobs(
                    txn,
                    &part_owner(&bucket, &key, &upload_id, number),
                    &part.data,
                );
            }
            keys::BucketRow::Other => {}
        }
    }
    if rows.len() < INDEX_STEP_ROWS {
        txn.put(&keys::blob_index_complete(), encode(&true));
        return Ok(ObjectReply::BlobsIndexed { next: None });
    }
    Ok(ObjectReply::BlobsIndexed { next: last })
}

fn blob_index_complete(state: &dyn StateRead) -> Step<bool> {
    Ok(state.get(&keys::blob_index_complete())?.is_some())
}

fn create_bucket(
    txn: &mut dyn StateTxn,
    bucket: BucketName,
    owner: String,
    created_ms: u64,
) -> Step<ObjectReply> {
    match load_bucket(txn, &bucket) {
        Ok(existing) if existing.owner == owner => {
            Ok(ObjectReply::BucketCreated { created: false })
        }
        Ok(_) => Err(ObjectError::BucketAlreadyExists.into()),
        Err(Fail::Client(ObjectError::NoSuchBucket(_))) => {
            let record = BucketRecord {
                name: bucket.clone(),
                owner,
                created_ms,
                versioning: VersioningState::Unversioned,
                tags: TagSet::default(),
            };
            txn.put(&keys::bucket_record(&bucket), encode(&record));
            Ok(ObjectReply::BucketCreated { created: true })
        }
        Err(e) => Err(e),
    }
}

fn delete_bucket(txn: &mut dyn StateTxn, bucket: &BucketName) -> Step<ObjectReply> {
    load_bucket(txn, bucket)?;
    // Versions include delete markers: S3 refuses to delete a bucket that holds any.
    let versions = keys::versions(bucket);
    let uploads = keys::uploads(bucket);
    if !txn.scan(&versions, &versions, 1)?.is_empty()
        || !txn.scan(&uploads, &uploads, 1)?.is_empty()
    {
        return Err(ObjectError::BucketNotEmpty.into());
    }
    txn.delete(&keys::bucket_record(bucket));
    txn.delete(&keys::version_sequence(bucket));
    Ok(ObjectReply::BucketDeleted)
}

fn put_object(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: ObjectKey,
    proposed: VersionId,
    object: NewObject,
    conditions: &WriteConditions,
    now_ms: u64,
) -> Step<ObjectReply> {
    let record = load_bucket(txn, bucket)?;
    object.validate()?;
    let current = newest_version(txn, bucket, &key)?;
    check_conditions(conditions, current.as_ref().map(|(_, v)| v))?;
    let (version_id, replaced) = choose_version_id(txn, &record, &key, &proposed)?;
    let version = ObjectVersion {
        key,
        version_id: version_id.clone(),
        is_delete_marker: false,
        size_bytes: object.size_bytes,
        etag: Some(object.etag),
        last_modified_ms: now_ms,
        headers: object.headers,
        user_metadata: object.user_metadata,
        tags: object.tags,
        checksum: object.checksum,
        storage_class: object.storage_class,
        data: object.data,
    };
    let mut garbage = Vec::new();
    if let Some((seq, old)) = replaced {
        garbage = garbage_of(&old.data, Some(&version.data));
        remove_version(txn, bucket, seq, &old)?;
    }
    let seq = next_seq(txn, bucket)?;
    write_version(txn, bucket, seq, &version);
    Ok(ObjectReply::ObjectPut {
        version_id: reported(record.versioning, version_id),
        garbage,
    })
}

fn delete_object(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: ObjectKey,
    version_id: Option<VersionId>,
    new_version_id: VersionId,
    now_ms: u64,
) -> Step<ObjectReply> {
    let record = load_bucket(txn, bucket)?;
    if let Some(id) = version_id {
        // Exactly this version; deleting a delete marker makes the previous version current.
        let Some((seq, old)) = find_version(txn, bucket, &key, &id)? else {
            return Ok(ObjectReply::ObjectDeleted {
                version_id: Some(id),
                delete_marker: false,
                garbage: Vec::new(),
            });
        };
        remove_version(txn, bucket, seq, &old)?;
        return Ok(ObjectReply::ObjectDeleted {
            version_id: Some(id),
            delete_marker: old.is_delete_marker,
            garbage: garbage_of(&old.data, None),
        });
    }
    match record.versioning {
        VersioningState::Unversioned => {
            let mut garbage = Vec::new();
            if let Some((seq, old)) = find_version(txn, bucket, &key, &VersionId::null())? {
                garbage = garbage_of(&old.data, None);
                remove_version(txn, bucket, seq, &old)?;
            }
            Ok(ObjectReply::ObjectDeleted {
                version_id: None,
                delete_marker: false,
                garbage,
            })
        }
        VersioningState::Enabled | VersioningState::Suspended => {
            let (marker_id, replaced) = choose_version_id(txn, &record, &key, &new_version_id)?;
            let mut garbage = Vec::new();
            if let Some((seq, old)) = replaced {
                garbage = garbage_of(&old.data, None);
                remove_version(txn, bucket, seq, &old)?;
            }
            let marker = ObjectVersion::delete_marker(key, marker_id.clone(), now_ms);
            let seq = next_seq(txn, bucket)?;
            write_version(txn, bucket, seq, &marker);
            Ok(ObjectReply::ObjectDeleted {
                version_id: Some(marker_id),
                delete_marker: true,
                garbage,
            })
        }
    }
}

fn set_object_tags(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: Option<&VersionId>,
    tags: TagSet,
) -> Step<ObjectReply> {
    let record = load_bucket(txn, bucket)?;
    let (seq, mut version) = addressed_version(txn, bucket, key, version_id)?;
    version.tags = tags;
    txn.put(&keys::version(bucket, key, seq), encode(&version));
    Ok(ObjectReply::TaggingUpdated {
        version_id: reported(record.versioning, version.version_id),
    })
}

fn create_upload(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: ObjectKey,
    upload_id: UploadId,
    upload: NewUpload,
    now_ms: u64,
) -> Step<ObjectReply> {
    load_bucket(txn, bucket)?;
    super::model::validate_user_metadata(&upload.user_metadata)?;
    upload.tags.validate(MAX_OBJECT_TAGS)?;
    let row = keys::upload(bucket, &key, &upload_id);
    if txn.get(&row)?.is_none() {
        let record = MultipartUpload {
            upload_id: upload_id.clone(),
            key,
            initiated_ms: now_ms,
            storage_class: upload.storage_class,
            headers: upload.headers,
            user_metadata: upload.user_metadata,
            tags: upload.tags,
            checksum_algorithm: upload.checksum_algorithm,
        };
        txn.put(&row, encode(&record));
    }
    Ok(ObjectReply::UploadCreated { upload_id })
}

fn put_part(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &UploadId,
    part: NewPart,
    now_ms: u64,
) -> Step<ObjectReply> {
    load_bucket(txn, bucket)?;
    let upload = load_upload(txn, bucket, key, upload_id)?;
    validate_part_number(part.part_number)?;
    if matches!(part.data, DataRef::Parts(_)) {
        return Err(ObjectError::invalid("a part cannot itself have parts").into());
    }
    part.data.validate(part.size_bytes)?;
    if let Some(checksum) = &part.checksum {
        checksum.validate()?;
        if let Some(expected) = upload.checksum_algorithm {
            if checksum.algorithm != expected {
                return Err(ObjectError::invalid(format!(
                    "the upload was created with checksum algorithm {}",
                    expected.as_str()
                ))
                .into());
            }
        }
    }
    let row = keys::part(bucket, key, upload_id, part.part_number);
    let owner = part_owner(bucket, key, upload_id, part.part_number);
    let garbage = match txn.get(&row)? {
        Some(bytes) => {
            let old: PartRecord = decode("upload part", &bytes)?;
            unindex_blobs(txn, &owner, &old.data)?;
            garbage_of(&old.data, Some(&part.data))
        }
        None => Vec::new(),
    };
    let record = PartRecord {
        part_number: part.part_number,
        etag: part.etag,
        size_bytes: part.size_bytes,
        uploaded_ms: now_ms,
        checksum: part.checksum,
        data: part.data,
    };
    index_blobs(txn, &owner, &record.data);
    txn.put(&row, encode(&record));
    Ok(ObjectReply::PartPut { garbage })
}

#[allow(clippy::too_many_arguments)]
fn complete_upload(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: ObjectKey,
    upload_id: &UploadId,
    listed: &[(u16, ETag)],
    proposed: VersionId,
    conditions: &WriteConditions,
    now_ms: u64,
) -> Step<ObjectReply> {
    let record = load_bucket(txn, bucket)?;
    let upload = load_upload(txn, bucket, &key, upload_id)?;
    if listed.is_empty() {
        return Err(ObjectError::MalformedXml("You must specify at least one part".into()).into());
    }
    if listed.len() > usize::from(MAX_PART_NUMBER) {
        return Err(ObjectError::invalid("an upload has at most 10000 parts").into());
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ObjectError::InvalidPartOrder.into());
    }
    let mut stored = load_parts(txn, bucket, &key, upload_id)?;
    let uploaded: Vec<u16> = stored.keys().copied().collect();
    let mut chosen = Vec::with_capacity(listed.len());
    for (number, etag) in listed {
        match stored.remove(number) {
            Some(part) if &part.etag == etag => chosen.push(part),
            _ => {
                return Err(ObjectError::InvalidPart(format!(
                    "part {number} with ETag {} was not uploaded",
                    etag.quoted()
                ))
                .into())
            }
        }
    }
    let last = chosen.len() - 1;
    for part in &chosen[..last] {
        if part.size_bytes < MIN_PART_SIZE_BYTES {
            return Err(ObjectError::EntityTooSmall(format!(
                "part {} is {} bytes; every part but the last must be at least {MIN_PART_SIZE_BYTES}",
                part.part_number, part.size_bytes
            ))
            .into());
        }
    }
    let mut digests = Vec::with_capacity(chosen.len());
    for part in &chosen {
        match part.etag.md5() {
            Some(digest) => digests.push(digest),
            None => {
                return Err(ObjectError::InvalidPart(format!(
                    "part {} has no MD5 ETag",
                    part.part_number
                ))
                .into())
            }
        }
    }
    let etag = ETag::multipart(&digests);
    let current = newest_version(txn, bucket, &key)?;
    check_conditions(conditions, current.as_ref().map(|(_, v)| v))?;
    let (version_id, replaced) = choose_version_id(txn, &record, &key, &proposed)?;

    // Every check passed: write.
    let size_bytes: u64 = chosen.iter().map(|p| p.size_bytes).sum();
    let data = DataRef::Parts(
        chosen
            .into_iter()
            .map(|p| PartRef {
                part_number: p.part_number,
                size_bytes: p.size_bytes,
                etag: p.etag,
                data: p.data,
            })
            .collect(),
    );
    let mut garbage = Vec::new();
    for unlisted in stored.values() {
        garbage.extend(garbage_of(&unlisted.data, Some(&data)));
    }
    // Every part's blob leaves the index as a part's; the listed ones come back as the
    // version's when it is written below.
    for (number, part_data) in
        stored
            .values()
            .map(|p| (p.part_number, &p.data))
            .chain(match &data {
                DataRef::Parts(parts) => parts.iter().map(|p| (p.part_number, &p.data)).collect(),
                _ => Vec::new(),
            })
    {
        unindex_blobs(txn, &part_owner(bucket, &key, upload_id, number), part_data)?;
    }
    for number in uploaded {
        txn.delete(&keys::part(bucket, &key, upload_id, number));
    }
    txn.delete(&keys::upload(bucket, &key, upload_id));
    if let Some((seq, old)) = replaced {
        garbage.extend(garbage_of(&old.data, Some(&data)));
        remove_version(txn, bucket, seq, &old)?;
    }
    let version = ObjectVersion {
        key,
        version_id: version_id.clone(),
        is_delete_marker: false,
        size_bytes,
        etag: Some(etag.clone()),
        last_modified_ms: now_ms,
        headers: upload.headers,
        user_metadata: upload.user_metadata,
        tags: upload.tags,
        checksum: None,
        storage_class: upload.storage_class,
        data,
    };
    let seq = next_seq(txn, bucket)?;
    write_version(txn, bucket, seq, &version);
    Ok(ObjectReply::UploadCompleted {
        version_id: reported(record.versioning, version_id),
        etag,
        size_bytes,
        garbage,
    })
}

fn update_shards(
    txn: &mut dyn StateTxn,
    bucket: &BucketName,
    key: &ObjectKey,
    version_id: &VersionId,
    blob: u128,
    change: impl FnOnce(&mut ErasureRef) -> Result<(), ObjectError>,
) -> Step<ObjectReply> {
    load_bucket(txn, bucket)?;
    // The version may have been deleted or rewritten since the worker looked: not an error,
    // the worker then collects what it rebuilt.
    let Some((seq, mut version)) = find_version(txn, bucket, key, version_id)? else {
        return Ok(ObjectReply::ShardsUpdated { updated: false });
    };
    let owner = version_owner(bucket, &version);
    let Some(erasure) = version.data.erasure_mut(blob) else {
        return Ok(ObjectReply::ShardsUpdated { updated: false });
    };
    change(erasure)?;
    mark_damaged(txn, &owner, erasure);
    txn.put(&keys::version(bucket, key, seq), encode(&version));
    Ok(ObjectReply::ShardsUpdated { updated: true })
}

// ---------------------------------------------------------------------------------------
// Queries

fn read_step(state: &dyn StateRead, query: ObjectQuery, budget: usize) -> Step<ObjectReply> {
    match query {
        ObjectQuery::HeadBucket { bucket } | ObjectQuery::GetBucket { bucket } => {
            Ok(ObjectReply::Bucket(load_bucket(state, &bucket)?))
        }
        ObjectQuery::GetObject {
            bucket,
            key,
            version_id,
        } => {
            load_bucket(state, &bucket)?;
            let (_, version) = addressed_version(state, &bucket, &key, version_id.as_ref())?;
            Ok(ObjectReply::Object(version))
        }
        ObjectQuery::ListObjects {
            bucket,
            prefix,
            delimiter,
            marker,
            max_keys,
        } => {
            load_bucket(state, &bucket)?;
            let page = Page::new(&prefix, delimiter.as_deref(), max_keys, budget);
            Ok(ObjectReply::Objects(list_objects(
                state,
                &bucket,
                &page,
                marker.as_deref(),
            )?))
        }
        ObjectQuery::ListObjectVersions {
            bucket,
            prefix,
            delimiter,
            key_marker,
            version_id_marker,
            max_keys,
        } => {
            load_bucket(state, &bucket)?;
            let key_marker = key_marker.filter(|m| !m.is_empty());
            if version_id_marker.is_some() && key_marker.is_none() {
                return Err(ObjectError::invalid(
                    "A version-id marker cannot be specified without a key marker.",
                )
                .into());
            }
            let page = Page::new(&prefix, delimiter.as_deref(), max_keys, budget);
            Ok(ObjectReply::Versions(list_versions(
                state,
                &bucket,
                &page,
                key_marker.as_deref(),
                version_id_marker.as_ref(),
            )?))
        }
        ObjectQuery::ListUploads {
            bucket,
            prefix,
            delimiter,
            key_marker,
            upload_id_marker,
            max_uploads,
        } => {
            load_bucket(state, &bucket)?;
            let page = Page::new(&prefix, delimiter.as_deref(), max_uploads, budget);
            Ok(ObjectReply::Uploads(list_uploads(
                state,
                &bucket,
                &page,
                key_marker.as_deref().filter(|m| !m.is_empty()),
                upload_id_marker.as_ref(),
            )?))
        }
        ObjectQuery::GetUpload {
            bucket,
            key,
            upload_id,
        } => {
            load_bucket(state, &bucket)?;
            Ok(ObjectReply::Upload(load_upload(
                state, &bucket, &key, &upload_id,
            )?))
        }
        ObjectQuery::ListParts {
            bucket,
            key,
            upload_id,
            part_number_marker,
            max_parts,
        } => {
            load_bucket(state, &bucket)?;
            let upload = load_upload(state, &bucket, &key, &upload_id)?;
            let max_parts = max_parts.min(MAX_LIST_KEYS) as usize;
            let prefix = keys::parts_of(&bucket, &key, &upload_id);
            let from = match part_number_marker.checked_add(1) {
                Some(first) => keys::part(&bucket, &key, &upload_id, first),
                None => keys::after_prefix(&prefix),
            };
            let rows = state.scan(&prefix, &from, max_parts + 1)?;
            let is_truncated = rows.len() > max_parts;
            let mut parts = Vec::with_capacity(rows.len().min(max_parts));
            for (_, value) in rows.into_iter().take(max_parts) {
                let part: PartRecord = decode("upload part", &value)?;
                parts.push(PartSummary {
                    part_number: part.part_number,
                    etag: part.etag,
                    size_bytes: part.size_bytes,
                    uploaded_ms: part.uploaded_ms,
                    checksum: part.checksum,
                });
            }
            let next_part_number_marker = if is_truncated {
                parts.last().map(|p| p.part_number)
            } else {
                None
            };
            Ok(ObjectReply::Parts(PartListing {
                upload,
                parts,
                is_truncated,
                next_part_number_marker,
            }))
        }
        ObjectQuery::FindBlobs { blobs } => {
            if blobs.len() > MAX_BLOB_LOOKUP {
                return Err(ObjectError::invalid(format!(
                    "at most {MAX_BLOB_LOOKUP} blobs may be looked up at once"
                ))
                .into());
            }
            let mut owners = OwnerCache::default();
            let mut entries = Vec::new();
            for blob in blobs {
                if let Some(bytes) = state.get(&keys::blob_ref(blob))? {
                    let owner: BlobOwner = decode("blob owner", &bytes)?;
                    entries.push(owners.entry(state, blob, owner)?);
                }
            }
            Ok(ObjectReply::Blobs(BlobPage {
                entries,
                next_after: None,
                index_complete: blob_index_complete(state)?,
            }))
        }
        ObjectQuery::ListBlobs {
            damaged_only,
            after,
            limit,
        } => {
            let prefix = if damaged_only {
                keys::damaged_blobs()
            } else {
                keys::blob_refs()
            };
            let limit = limit.clamp(1, MAX_BLOB_PAGE) as usize;
            let from = match after {
                Some(blob) if damaged_only => keys::just_after(&keys::damaged_blob(blob)),
                Some(blob) => keys::just_after(&keys::blob_ref(blob)),
                None => prefix.clone(),
            };
            let rows = state.scan(&prefix, &from, limit + 1)?;
            let more = rows.len() > limit;
            let mut owners = OwnerCache::default();
            let mut entries = Vec::with_capacity(rows.len().min(limit));
            for (raw, value) in rows.into_iter().take(limit) {
                let blob = keys::parse_blob_row(&raw)?;
                let owner: BlobOwner = decode("blob owner", &value)?;
                entries.push(owners.entry(state, blob, owner)?);
            }
            let next_after = if more {
                entries.last().map(|e| e.blob)
            } else {
                None
            };
            Ok(ObjectReply::Blobs(BlobPage {
                entries,
                next_after,
                index_complete: blob_index_complete(state)?,
            }))
        }
    }
}

/// The versions a blob query decoded last: the parts of one multipart object are many
/// blobs of one (possibly large) version, decoded once per call rather than once per part.
#[derive(Default)]
struct OwnerCache {
    versions: Vec<(BlobOwner, Option<ObjectVersion>)>,
}

impl OwnerCache {
    const CAPACITY: usize = 8;

    fn version(
        &mut self,
        state: &dyn StateRead,
        owner: &BlobOwner,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Step<Option<ObjectVersion>> {
        if let Some((_, v)) = self.versions.iter().find(|(o, _)| o == owner) {
            return Ok(v.clone());
        }
        let found = find_version(state, bucket, key, version_id)?.map(|(_, v)| v);
        if self.versions.len() == Self::CAPACITY {
            self.versions.remove(0);
        }
        self.versions.push((owner.clone(), found.clone()));
        Ok(found)
    }

    /// What `owner` says of `blob`.
    fn entry(&mut self, state: &dyn StateRead, blob: u128, owner: BlobOwner) -> Step<BlobEntry> {
        let mut entry = BlobEntry {
            blob,
            owner: owner.clone(),
            erasure: None,
            size_bytes: 0,
            storage_class: StorageClass::Standard,
        };
        match &owner {
            BlobOwner::Version {
                bucket,
                key,
                version_id,
            } => {
                if let Some(v) = self.version(state, &owner, bucket, key, version_id)? {
                    entry.storage_class = v.storage_class;
                    if let Some((e, size)) = locate_blob(&v.data, v.size_bytes, blob) {
                        entry.erasure = Some(e.clone());
                        entry.size_bytes = size;
                    }
                }
            }
            BlobOwner::Part {
                bucket,
                key,
                upload_id,
                part_number,
            } => {
                let row = keys::part(bucket, key, upload_id, *part_number);
                if let Some(bytes) = state.get(&row)? {
                    let part: PartRecord = decode("upload part", &bytes)?;
                    if let Some((e, size)) = locate_blob(&part.data, part.size_bytes, blob) {
                        entry.erasure = Some(e.clone());
                        entry.size_bytes = size;
                    }
                }
                if let Some(bytes) = state.get(&keys::upload(bucket, key, upload_id))? {
                    let upload: MultipartUpload = decode("multipart upload", &bytes)?;
                    entry.storage_class = upload.storage_class;
                }
            }
        }
        Ok(entry)
    }
}

/// The erasure reference of `blob` in `data` (of `size_bytes`), with the bytes it encodes.
fn locate_blob(data: &DataRef, size_bytes: u64, blob: u128) -> Option<(&ErasureRef, u64)> {
    match data {
        DataRef::Inline(_) => None,
        DataRef::Erasure(e) => (e.blob == blob).then_some((e, size_bytes)),
        DataRef::Parts(parts) => parts
            .iter()
            .find_map(|p| locate_blob(&p.data, p.size_bytes, blob)),
    }
}

/// The shape of one listing page.
struct Page<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    max_entries: usize,
    row_budget: usize,
}

impl<'a> Page<'a> {
    fn new(prefix: &'a str, delimiter: Option<&'a str>, max_entries: u32, budget: usize) -> Self {
        Page {
            prefix,
            delimiter: delimiter.filter(|d| !d.is_empty()),
            max_entries: max_entries.min(MAX_LIST_KEYS) as usize,
            row_budget: budget.max(1),
        }
    }

    /// The common prefix `key` rolls up into: the prefix, then everything up to and
    /// including the first delimiter after it.
    fn common_prefix<'k>(&self, key: &'k str) -> Option<&'k str> {
        let delimiter = self.delimiter?;
        let rest = key.strip_prefix(self.prefix)?;
        let at = rest.find(delimiter)?;
        Some(&key[..self.prefix.len() + at + delimiter.len()])
    }

    /// Rows to ask for next: one more than still fits (to tell whether more follow),
    /// at least a few, never past the budget.
    fn batch(&self, emitted: usize, rows_read: usize) -> usize {
        let wanted = (self.max_entries.saturating_sub(emitted) + 1).clamp(16, 1000);
        wanted.min(self.row_budget.saturating_sub(rows_read)).max(1)
    }

    /// Where a listing resumes after a key marker (a key or a common prefix handed out
    /// as a marker). A marker that is itself a common prefix skips everything under it,
    /// so a common prefix is never listed twice; any other marker resumes after every row
    /// of that key.
    fn resume_after(&self, marker: &str, under: &[u8], of_key: &[u8]) -> Vec<u8> {
        if self.common_prefix(marker) == Some(marker) {
            keys::after_prefix(under)
        } else {
            keys::after_prefix(of_key)
        }
    }
}

/// A ListObjects walk: visits the newest version of each key in order.
struct ObjectWalk<'p> {
    page: &'p Page<'p>,
    listing: ObjectListing,
    emitted: usize,
    /// The last key or common prefix this call has passed, listed or not.
    last_seen: Option<String>,
}

impl ObjectWalk<'_> {
    /// Visit a key's newest version; false when the page is full (and so truncated).
    fn visit(&mut self, key: &ObjectKey, version: ObjectVersion) -> bool {
        if version.is_delete_marker {
            // Not listed, and a common prefix needs a key that is.
            self.last_seen = Some(key.as_str().to_string());
            return true;
        }
        if self.emitted == self.page.max_entries {
            self.listing.is_truncated = true;
            return false;
        }
        self.emitted += 1;
        let entry = match self.page.common_prefix(key.as_str()) {
            Some(common) => {
                self.listing.common_prefixes.push(common.to_string());
                common.to_string()
            }
            None => {
                self.listing.contents.push(ObjectSummary {
                    key: key.clone(),
                    size_bytes: version.size_bytes,
                    etag: version.etag,
                    last_modified_ms: version.last_modified_ms,
                    storage_class: version.storage_class,
                    checksum_algorithm: version.checksum.map(|c| c.algorithm),
                });
                key.as_str().to_string()
            }
        };
        self.listing.next_marker = Some(entry.clone());
        self.last_seen = Some(entry);
        true
    }
}

fn list_objects(
    state: &dyn StateRead,
    bucket: &BucketName,
    page: &Page,
    marker: Option<&str>,
) -> Step<ObjectListing> {
    let mut walk = ObjectWalk {
        page,
        listing: ObjectListing {
            contents: Vec::new(),
            common_prefixes: Vec::new(),
            is_truncated: false,
            next_marker: None,
        },
        emitted: 0,
        last_seen: None,
    };
    if page.max_entries == 0 {
        return Ok(walk.listing);
    }
    let scan_prefix = keys::versions_under(bucket, page.prefix.as_bytes());
    let mut cursor = scan_prefix.clone();
    if let Some(marker) = marker.filter(|m| !m.is_empty()) {
        let from = page.resume_after(
            marker,
            &keys::versions_under(bucket, marker.as_bytes()),
            &keys::versions_of_bytes(bucket, marker.as_bytes()),
        );
        cursor = cursor.max(from);
    }
    let mut rows_read = 0usize;
    loop {
        if rows_read >= page.row_budget {
            return finish_short_listing(state, bucket, page, walk, marker);
        }
        let batch = page.batch(walk.emitted, rows_read);
        let rows = state.scan(&scan_prefix, &cursor, batch)?;
        rows_read += rows.len();
        let exhausted = rows.len() < batch;
        for (raw, value) in rows {
            if raw < cursor {
                continue; // an older version, or a key under a prefix already rolled up
            }
            let (key, _) = keys::parse_version(bucket, &raw)?;
            let version: ObjectVersion = decode("object version", &value)?;
            // This row is the key's newest version: skip the rest of its versions, and
            // everything under its common prefix once that prefix is listed.
            cursor = keys::after_prefix(&keys::versions_of(bucket, &key));
            if !walk.visit(&key, version) {
                return Ok(walk.listing);
            }
            if let Some(common) = page.common_prefix(key.as_str()) {
                if walk.listing.common_prefixes.last().map(String::as_str) == Some(common) {
                    cursor = keys::after_prefix(&keys::versions_under(bucket, common.as_bytes()));
                }
            }
        }
        if exhausted {
            walk.listing.next_marker = None;
            return Ok(walk.listing);
        }
    }
}

/// The row budget ran out: answer with what was found and a marker just past what was
/// read. A marker that equals a common prefix would make the next call skip that whole
/// prefix, which is wrong when the last key passed was a delete marker named exactly like
/// its prefix (`a/` with delimiter `/`) and keys under it were not read yet; one more
/// one-row read settles it.
fn finish_short_listing(
    state: &dyn StateRead,
    bucket: &BucketName,
    page: &Page,
    mut walk: ObjectWalk,
    marker: Option<&str>,
) -> Step<ObjectListing> {
    if let Some(seen) = walk.last_seen.clone() {
        if page.common_prefix(&seen) == Some(seen.as_str())
            && walk.listing.common_prefixes.last() != Some(&seen)
        {
            let region = keys::versions_under(bucket, seen.as_bytes());
            let from = keys::after_prefix(&keys::versions_of_bytes(bucket, seen.as_bytes()));
            if let Some((raw, value)) = state.scan(&region, &from, 1)?.into_iter().next() {
                let (key, _) = keys::parse_version(bucket, &raw)?;
                if !walk.visit(&key, decode("object version", &value)?) {
                    return Ok(walk.listing);
                }
            }
        }
    }
    walk.listing.is_truncated = true;
    walk.listing.next_marker = walk.last_seen.or_else(|| marker.map(str::to_string));
    Ok(walk.listing)
}

fn list_versions(
    state: &dyn StateRead,
    bucket: &BucketName,
    page: &Page,
    key_marker: Option<&str>,
    version_id_marker: Option<&VersionId>,
) -> Step<VersionListing> {
    let mut listing = VersionListing {
        versions: Vec::new(),
        common_prefixes: Vec::new(),
        is_truncated: false,
        next_key_marker: None,
        next_version_id_marker: None,
    };
    if page.max_entries == 0 {
        return Ok(listing);
    }
    let scan_prefix = keys::versions_under(bucket, page.prefix.as_bytes());
    let mut cursor = scan_prefix.clone();
    // The key whose newest version is before the cursor (its later rows are not latest).
    let mut current_key: Option<ObjectKey> = None;
    if let Some(marker) = key_marker {
        let from = match version_id_marker {
            Some(id) => {
                let found = match ObjectKey::parse(marker) {
                    Ok(key) => find_version(state, bucket, &key, id)?.map(|(seq, _)| (key, seq)),
                    Err(_) => None,
                };
                match found {
                    Some((key, seq)) => {
                        let from = keys::just_after(&keys::version(bucket, &key, seq));
                        current_key = Some(key);
                        from
                    }
                    // The marker version was deleted since the last page: list that key
                    // again from its newest version (repeating beats skipping).
                    None => keys::versions_of_bytes(bucket, marker.as_bytes()),
                }
            }
            None => page.resume_after(
                marker,
                &keys::versions_under(bucket, marker.as_bytes()),
                &keys::versions_of_bytes(bucket, marker.as_bytes()),
            ),
        };
        cursor = cursor.max(from);
    }
    let mut emitted = 0usize;
    let mut rows_read = 0usize;
    loop {
        if rows_read >= page.row_budget {
            // Every row read was listed or skipped under a listed common prefix, so the
            // markers of the last entry are exactly where to resume.
            listing.is_truncated = true;
            return Ok(listing);
        }
        let batch = page.batch(emitted, rows_read);
        let rows = state.scan(&scan_prefix, &cursor, batch)?;
        rows_read += rows.len();
        let exhausted = rows.len() < batch;
        for (raw, value) in rows {
            if raw < cursor {
                continue;
            }
            let (key, _) = keys::parse_version(bucket, &raw)?;
            if emitted == page.max_entries {
                listing.is_truncated = true;
                return Ok(listing);
            }
            emitted += 1;
            cursor = keys::just_after(&raw);
            if let Some(common) = page.common_prefix(key.as_str()) {
                cursor = keys::after_prefix(&keys::versions_under(bucket, common.as_bytes()));
                listing.common_prefixes.push(common.to_string());
                listing.next_key_marker = Some(common.to_string());
                listing.next_version_id_marker = None;
                continue;
            }
            let is_latest = current_key.as_ref() != Some(&key);
            let version: ObjectVersion = decode("object version", &value)?;
            listing.next_key_marker = Some(key.as_str().to_string());
            listing.next_version_id_marker = Some(version.version_id.clone());
            listing.versions.push(version.summary(is_latest));
            current_key = Some(key);
        }
        if exhausted {
            listing.next_key_marker = None;
            listing.next_version_id_marker = None;
            return Ok(listing);
        }
    }
}

fn list_uploads(
    state: &dyn StateRead,
    bucket: &BucketName,
    page: &Page,
    key_marker: Option<&str>,
    upload_id_marker: Option<&UploadId>,
) -> Step<UploadListing> {
    let mut listing = UploadListing {
        uploads: Vec::new(),
        common_prefixes: Vec::new(),
        is_truncated: false,
        next_key_marker: None,
        next_upload_id_marker: None,
    };
    if page.max_entries == 0 {
        return Ok(listing);
    }
    let scan_prefix = keys::uploads_under(bucket, page.prefix.as_bytes());
    let mut cursor = scan_prefix.clone();
    if let Some(marker) = key_marker {
        let from = match (upload_id_marker, ObjectKey::parse(marker)) {
            (Some(id), Ok(key)) => keys::just_after(&keys::upload(bucket, &key, id)),
            _ => page.resume_after(
                marker,
                &keys::uploads_under(bucket, marker.as_bytes()),
                &keys::uploads_of_bytes(bucket, marker.as_bytes()),
            ),
        };
        cursor = cursor.max(from);
    }
    let mut emitted = 0usize;
    let mut rows_read = 0usize;
    loop {
        if rows_read >= page.row_budget {
            listing.is_truncated = true;
            return Ok(listing);
        }
        let batch = page.batch(emitted, rows_read);
        let rows = state.scan(&scan_prefix, &cursor, batch)?;
        rows_read += rows.len();
        let exhausted = rows.len() < batch;
        for (raw, value) in rows {
            if raw < cursor {
                continue;
            }
            let (key, upload_id) = keys::parse_upload(bucket, &raw)?;
            if emitted == page.max_entries {
                listing.is_truncated = true;
                return Ok(listing);
            }
            emitted += 1;
            cursor = keys::just_after(&raw);
            if let Some(common) = page.common_prefix(key.as_str()) {
                cursor = keys::after_prefix(&keys::uploads_under(bucket, common.as_bytes()));
                listing.common_prefixes.push(common.to_string());
                listing.next_key_marker = Some(common.to_string());
                listing.next_upload_id_marker = None;
                continue;
            }
            let upload: MultipartUpload = decode("multipart upload", &value)?;
            listing.next_key_marker = Some(key.as_str().to_string());
            listing.next_upload_id_marker = Some(upload_id.clone());
            listing.uploads.push(UploadSummary {
                key,
                upload_id,
                initiated_ms: upload.initiated_ms,
                storage_class: upload.storage_class,
            });
        }
        if exhausted {
            listing.next_key_marker = None;
            listing.next_upload_id_marker = None;
            return Ok(listing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::model::ShardLayout;
    use crate::store::MemState;

    const OWNER: &str = "alice";

    fn b(name: &str) -> BucketName {
        BucketName::parse(name).unwrap()
    }

    fn k(key: &str) -> ObjectKey {
        ObjectKey::parse(key).unwrap()
    }

    fn vid(n: u64) -> VersionId {
        VersionId::generate(1_000 + n, n)
    }

    fn md5_of(body: &[u8]) -> [u8; 16] {
        use md5::{Digest, Md5};
        let digest = Md5::digest(body);
        let mut out = [0u8; 16];
        out.copy_from_slice(digest.as_slice());
        out
    }

    fn etag_of(body: &[u8]) -> ETag {
        ETag::from_md5(&md5_of(body))
    }

    fn erasure(blob: u128) -> ErasureRef {
        ErasureRef {
            blob,
            layout: ShardLayout {
                data_shards: 4,
                parity_shards: 2,
                stripe_bytes: 1 << 20,
            },
            shard_nodes: vec![1, 2, 3, 4, 5, 6],
            missing: vec![],
        }
    }

    fn inline_object(body: &[u8]) -> NewObject {
        NewObject {
            size_bytes: body.len() as u64,
            etag: etag_of(body),
            headers: ObjectHeaders {
                content_type: Some("text/plain".into()),
                ..ObjectHeaders::default()
            },
            user_metadata: UserMetadata::new(),
            tags: TagSet::default(),
            checksum: None,
            storage_class: StorageClass::Standard,
            data: DataRef::Inline(body.to_vec()),
        }
    }

    fn erasure_object(blob: u128, size_bytes: u64) -> NewObject {
        NewObject {
            size_bytes,
            etag: etag_of(&blob.to_be_bytes()),
            data: DataRef::Erasure(erasure(blob)),
            ..inline_object(b"")
        }
    }

    struct Fixture {
        s: MemState,
        log_index: u64,
    }

    impl Fixture {
        fn new() -> Self {
            let mut f = Fixture {
                s: MemState::default(),
                log_index: 0,
            };
            f.ok(ObjectCommand::CreateBucket {
                bucket: b("bkt"),
                owner: OWNER.into(),
                created_ms: 1,
            });
            f
        }

        fn run(&mut self, command: ObjectCommand) -> ObjectResult {
            self.log_index += 1;
            let ctx = ApplyContext {
                log_index: self.log_index,
                now_ms: 1_000 + self.log_index,
            };
            apply(&mut self.s, command, &ctx).unwrap()
        }

        fn ok(&mut self, command: ObjectCommand) -> ObjectReply {
            match self.run(command.clone()) {
                Ok(reply) => reply,
                Err(e) => panic!("{command:?} failed: {e:?}"),
            }
        }

        /// Run a command that must fail, and check it changed nothing.
        fn refused(&mut self, command: ObjectCommand) -> ObjectError {
            let before = self.s.map.clone();
            let err = self.run(command).unwrap_err();
            assert_eq!(self.s.map, before, "a refused command wrote to the state");
            err
        }

        fn query(&self, query: ObjectQuery) -> ObjectResult {
            read(&self.s, query).unwrap()
        }

        fn versioning(&mut self, state: VersioningState) {
            self.ok(ObjectCommand::PutBucketVersioning {
                bucket: b("bkt"),
                state,
            });
        }

        fn put(&mut self, key: &str, body: &[u8], version: u64) -> ObjectReply {
            self.ok(put_cmd(key, inline_object(body), version))
        }

        fn delete(&mut self, key: &str, version_id: Option<VersionId>, marker: u64) -> ObjectReply {
            self.ok(ObjectCommand::DeleteObject {
                bucket: b("bkt"),
                key: k(key),
                version_id,
                new_version_id: vid(marker),
            })
        }

        fn get(
            &self,
            key: &str,
            version_id: Option<VersionId>,
        ) -> Result<ObjectVersion, ObjectError> {
            self.query(ObjectQuery::GetObject {
                bucket: b("bkt"),
                key: k(key),
                version_id,
            })
            .map(|reply| match reply {
                ObjectReply::Object(v) => v,
                other => panic!("{other:?}"),
            })
        }

        fn body(&self, key: &str) -> Vec<u8> {
            match self.get(key, None).unwrap().data {
                DataRef::Inline(bytes) => bytes,
                other => panic!("{other:?}"),
            }
        }

        fn list(
            &self,
            prefix: &str,
            delimiter: Option<&str>,
            marker: Option<&str>,
            max_keys: u32,
            budget: usize,
        ) -> ObjectListing {
            let query = ObjectQuery::ListObjects {
                bucket: b("bkt"),
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                marker: marker.map(Into::into),
                max_keys,
            };
            match finish(read_step(&self.s, query, budget)).unwrap() {
                Ok(ObjectReply::Objects(listing)) => listing,
                other => panic!("{other:?}"),
            }
        }

        fn versions(
            &self,
            prefix: &str,
            delimiter: Option<&str>,
            key_marker: Option<&str>,
            version_marker: Option<VersionId>,
            max_keys: u32,
        ) -> VersionListing {
            match self.query(ObjectQuery::ListObjectVersions {
                bucket: b("bkt"),
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                key_marker: key_marker.map(Into::into),
                version_id_marker: version_marker,
                max_keys,
            }) {
                Ok(ObjectReply::Versions(listing)) => listing,
                other => panic!("{other:?}"),
            }
        }
    }

    fn put_cmd(key: &str, object: NewObject, version: u64) -> ObjectCommand {
        ObjectCommand::PutObject {
            bucket: b("bkt"),
            key: k(key),
            version_id: vid(version),
            object,
            conditions: WriteConditions::default(),
        }
    }

    /// Every page of a listing, following markers, as (keys, common prefixes).
    fn all_pages(
        f: &Fixture,
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: u32,
        budget: usize,
    ) -> (Vec<String>, Vec<String>) {
        let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
        let mut marker: Option<String> = None;
        for _ in 0..10_000 {
            let page = f.list(prefix, delimiter, marker.as_deref(), max_keys, budget);
            assert!(page.contents.len() + page.common_prefixes.len() <= max_keys as usize);
            keys.extend(page.contents.iter().map(|o| o.key.to_string()));
            prefixes.extend(page.common_prefixes.iter().cloned());
            if !page.is_truncated {
                assert_eq!(page.next_marker, None);
                return (keys, prefixes);
            }
            let next = page.next_marker.expect("a truncated page has a marker");
            // The marker may go back to a common prefix first found after a marker inside
            // it (S3 does the same); it never stays put.
            assert_ne!(
                marker.as_deref(),
                Some(next.as_str()),
                "the marker must move"
            );
            marker = Some(next);
        }
        panic!("listing did not terminate");
    }

    /// What a listing must return, computed naively from the visible keys.
    fn expected(
        visible: &[&str],
        prefix: &str,
        delimiter: Option<&str>,
    ) -> (Vec<String>, Vec<String>) {
        let mut sorted: Vec<&str> = visible.to_vec();
        sorted.sort();
        let (mut keys, mut prefixes) = (Vec::new(), Vec::<String>::new());
        for key in sorted {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            match delimiter.and_then(|d| rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])) {
                Some(common) => {
                    if prefixes.last().map(String::as_str) != Some(common) {
                        prefixes.push(common.to_string());
                    }
                }
                None => keys.push(key.to_string()),
            }
        }
        (keys, prefixes)
    }

    #[test]
    fn buckets_are_created_once_and_deleted_only_when_empty() {
        let mut f = Fixture::new();
        assert_eq!(
            f.ok(ObjectCommand::CreateBucket {
                bucket: b("bkt"),
                owner: OWNER.into(),
                created_ms: 9
            }),
            ObjectReply::BucketCreated { created: false }
        );
        assert_eq!(
            f.refused(ObjectCommand::CreateBucket {
                bucket: b("bkt"),
                owner: "bob".into(),
                created_ms: 9
            }),
            ObjectError::BucketAlreadyExists
        );
        match f
            .query(ObjectQuery::HeadBucket { bucket: b("bkt") })
            .unwrap()
        {
            ObjectReply::Bucket(record) => {
                assert_eq!(record.created_ms, 1);
                assert_eq!(record.versioning, VersioningState::Unversioned);
            }
            other => panic!("{other:?}"),
        }
        let tags = TagSet::from_pairs(
            [("team".to_string(), "storage".to_string())],
            MAX_BUCKET_TAGS,
        )
        .unwrap();
        f.ok(ObjectCommand::PutBucketTagging {
            bucket: b("bkt"),
            tags: tags.clone(),
        });
        match f
            .query(ObjectQuery::GetBucket { bucket: b("bkt") })
            .unwrap()
        {
            ObjectReply::Bucket(record) => assert_eq!(record.tags, tags),
            other => panic!("{other:?}"),
        }
        f.ok(ObjectCommand::DeleteBucketTagging { bucket: b("bkt") });
        assert_eq!(
            f.refused(ObjectCommand::PutBucketVersioning {
                bucket: b("bkt"),
                state: VersioningState::Unversioned
            })
            .code(),
            "MalformedXML"
        );
        f.put("k", b"x", 1);
        assert_eq!(
            f.refused(ObjectCommand::DeleteBucket { bucket: b("bkt") }),
            ObjectError::BucketNotEmpty
        );
        f.delete("k", None, 2);
        assert_eq!(
            f.ok(ObjectCommand::DeleteBucket { bucket: b("bkt") }),
            ObjectReply::BucketDeleted
        );
        assert_eq!(
            f.query(ObjectQuery::HeadBucket { bucket: b("bkt") })
                .unwrap_err()
                .code(),
            "NoSuchBucket"
        );
        assert_eq!(
            f.refused(ObjectCommand::DeleteBucket { bucket: b("bkt") })
                .code(),
            "NoSuchBucket"
        );
        assert_eq!(
            f.refused(put_cmd("k", inline_object(b"x"), 3)).code(),
            "NoSuchBucket"
        );
        // Nothing of the bucket is left behind.
        assert!(f
            .s
            .map
            .keys()
            .all(|key| !key.starts_with(&keys::bucket_space(&b("bkt")))));
    }

    #[test]
    fn bucket_with_only_delete_markers_or_uploads_is_not_empty() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        // Deleting a key that never existed still leaves a delete marker, as in S3.
        let marker = match f.delete("ghost", None, 1) {
            ObjectReply::ObjectDeleted {
                version_id: Some(id),
                delete_marker: true,
                ..
            } => id,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            f.refused(ObjectCommand::DeleteBucket { bucket: b("bkt") }),
            ObjectError::BucketNotEmpty
        );
        f.delete("ghost", Some(marker), 2);
        f.ok(ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: UploadId::generate(1, 1),
            upload: NewUpload::default(),
        });
        assert_eq!(
            f.refused(ObjectCommand::DeleteBucket { bucket: b("bkt") }),
            ObjectError::BucketNotEmpty
        );
        f.ok(ObjectCommand::AbortUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: UploadId::generate(1, 1),
        });
        f.ok(ObjectCommand::DeleteBucket { bucket: b("bkt") });
    }

    #[test]
    fn unversioned_puts_replace_the_null_version_and_return_garbage() {
        let mut f = Fixture::new();
        assert_eq!(
            f.ok(put_cmd("doc", erasure_object(7, 100), 1)),
            ObjectReply::ObjectPut {
                version_id: None,
                garbage: vec![]
            }
        );
        match f.ok(put_cmd("doc", inline_object(b"v2"), 2)) {
            ObjectReply::ObjectPut {
                version_id: None,
                garbage,
            } => assert_eq!(garbage, vec![erasure(7)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.body("doc"), b"v2");
        let v = f.get("doc", None).unwrap();
        assert!(v.version_id.is_null());
        assert_eq!(v.etag, Some(etag_of(b"v2")));
        assert_eq!(v.headers.content_type.as_deref(), Some("text/plain"));
        assert_eq!(f.versions("", None, None, None, 100).versions.len(), 1);
        assert_eq!(
            f.delete("doc", None, 3),
            ObjectReply::ObjectDeleted {
                version_id: None,
                delete_marker: false,
                garbage: vec![]
            }
        );
        assert_eq!(
            f.get("doc", None).unwrap_err(),
            ObjectError::NoSuchKey {
                delete_marker: None
            }
        );
        // Deleting again is fine (S3 answers 204).
        f.delete("doc", None, 4);
        assert!(f.versions("", None, None, None, 100).versions.is_empty());
    }

    #[test]
    fn versioning_round_trip() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let v1 = match f.put("photo", b"one", 1) {
            ObjectReply::ObjectPut {
                version_id: Some(id),
                garbage,
            } => {
                assert!(garbage.is_empty());
                id
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(v1, vid(1));
        f.put("photo", b"two", 2);
        assert_eq!(f.body("photo"), b"two");
        assert_eq!(
            f.get("photo", Some(vid(1))).unwrap().data,
            DataRef::Inline(b"one".to_vec())
        );
        assert_eq!(
            f.get("photo", Some(vid(99))).unwrap_err(),
            ObjectError::NoSuchVersion
        );
        let listed = f.versions("", None, None, None, 100);
        let summary: Vec<(VersionId, bool)> = listed
            .versions
            .iter()
            .map(|v| (v.version_id.clone(), v.is_latest))
            .collect();
        assert_eq!(summary, vec![(vid(2), true), (vid(1), false)]);

        // A delete without a version id adds a marker; the object disappears.
        assert_eq!(
            f.delete("photo", None, 3),
            ObjectReply::ObjectDeleted {
                version_id: Some(vid(3)),
                delete_marker: true,
                garbage: vec![]
            }
        );
        assert_eq!(
            f.get("photo", None).unwrap_err(),
            ObjectError::NoSuchKey {
                delete_marker: Some(vid(3))
            }
        );
        assert!(matches!(
            f.get("photo", Some(vid(3))).unwrap_err(),
            ObjectError::MethodNotAllowed { version_id, .. } if version_id == vid(3)
        ));
        assert!(f
            .list("", None, None, 100, LIST_ROW_BUDGET)
            .contents
            .is_empty());
        let listed = f.versions("", None, None, None, 100);
        let summary: Vec<(VersionId, bool, bool)> = listed
            .versions
            .iter()
            .map(|v| (v.version_id.clone(), v.is_latest, v.is_delete_marker))
            .collect();
        assert_eq!(
            summary,
            vec![
                (vid(3), true, true),
                (vid(2), false, false),
                (vid(1), false, false)
            ]
        );

        // Deleting the marker undeletes.
        assert_eq!(
            f.delete("photo", Some(vid(3)), 4),
            ObjectReply::ObjectDeleted {
                version_id: Some(vid(3)),
                delete_marker: true,
                garbage: vec![]
            }
        );
        assert_eq!(f.body("photo"), b"two");
        assert_eq!(
            f.list("", None, None, 100, LIST_ROW_BUDGET).contents.len(),
            1
        );
        // Deleting a version by id removes exactly it.
        f.delete("photo", Some(vid(2)), 5);
        assert_eq!(f.body("photo"), b"one");
        // A version id that was never used: nothing to do, no error.
        f.delete("photo", Some(vid(77)), 6);
        assert_eq!(f.body("photo"), b"one");
        // A proposer that reuses an id, or gives null in an enabled bucket, is refused.
        assert_eq!(
            f.refused(put_cmd("photo", inline_object(b"x"), 1)).code(),
            "InvalidArgument"
        );
        let mut null_put = put_cmd("photo", inline_object(b"x"), 1);
        if let ObjectCommand::PutObject { version_id, .. } = &mut null_put {
            *version_id = VersionId::null();
        }
        assert_eq!(f.refused(null_put).code(), "InvalidArgument");
    }

    #[test]
    fn suspended_bucket_replaces_the_null_version() {
        let mut f = Fixture::new();
        f.ok(put_cmd("k", erasure_object(10, 5), 0)); // the null version, written unversioned
        f.versioning(VersioningState::Enabled);
        f.put("k", b"enabled", 1);
        f.versioning(VersioningState::Suspended);
        match f.ok(put_cmd("k", erasure_object(11, 5), 2)) {
            ObjectReply::ObjectPut {
                version_id: Some(id),
                garbage,
            } => {
                assert!(id.is_null());
                assert_eq!(
                    garbage,
                    vec![erasure(10)],
                    "the old null version's shards are garbage"
                );
            }
            other => panic!("{other:?}"),
        }
        let ids: Vec<(String, bool)> = f
            .versions("", None, None, None, 100)
            .versions
            .iter()
            .map(|v| (v.version_id.to_string(), v.is_latest))
            .collect();
        // The rewritten null version is the newest, ahead of the enabled-era version.
        assert_eq!(
            ids,
            vec![("null".to_string(), true), (vid(1).to_string(), false)]
        );
        assert!(matches!(f.get("k", None).unwrap().data, DataRef::Erasure(ref e) if e.blob == 11));

        // A delete replaces the null version with a null delete marker.
        match f.delete("k", None, 3) {
            ObjectReply::ObjectDeleted {
                version_id: Some(id),
                delete_marker: true,
                garbage,
            } => {
                assert!(id.is_null());
                assert_eq!(garbage, vec![erasure(11)]);
            }
            other => panic!("{other:?}"),
        }
        let listed = f.versions("", None, None, None, 100).versions;
        assert_eq!(listed.len(), 2);
        assert!(
            listed[0].version_id.is_null() && listed[0].is_delete_marker && listed[0].is_latest
        );
        assert_eq!(listed[1].version_id, vid(1));
        assert_eq!(
            f.get("k", None).unwrap_err(),
            ObjectError::NoSuchKey {
                delete_marker: Some(VersionId::null())
            }
        );
        // Removing the null marker by id brings back the enabled-era version.
        f.delete("k", Some(VersionId::null()), 4);
        assert_eq!(f.body("k"), b"enabled");
    }

    #[test]
    fn conditional_writes() {
        let mut f = Fixture::new();
        let conditional =
            |key: &str, body: &[u8], if_match: Option<&str>, if_none_match_any: bool| {
                ObjectCommand::PutObject {
                    bucket: b("bkt"),
                    key: k(key),
                    version_id: vid(1),
                    object: inline_object(body),
                    conditions: WriteConditions {
                        if_match: if_match.map(|t| ETag::parse(t).unwrap()),
                        if_none_match_any,
                    },
                }
            };
        f.ok(conditional("k", b"first", None, true));
        assert_eq!(
            f.refused(conditional("k", b"second", None, true)),
            ObjectError::PreconditionFailed
        );
        let wrong = etag_of(b"nope").quoted();
        assert_eq!(
            f.refused(conditional("k", b"second", Some(&wrong), false)),
            ObjectError::PreconditionFailed
        );
        assert_eq!(
            f.refused(conditional("missing", b"x", Some("*"), false)),
            ObjectError::NoSuchKey {
                delete_marker: None
            }
        );
        let right = etag_of(b"first").quoted();
        f.ok(conditional("k", b"second", Some(&right), false));
        f.ok(conditional("k", b"third", Some("*"), false));
        assert_eq!(f.body("k"), b"third");
        // A key whose newest version is a delete marker counts as absent.
        f.versioning(VersioningState::Enabled);
        f.delete("k", None, 5);
        let mut create = conditional("k", b"again", None, true);
        if let ObjectCommand::PutObject { version_id, .. } = &mut create {
            *version_id = vid(6);
        }
        f.ok(create);
        assert_eq!(f.body("k"), b"again");
    }

    #[test]
    fn object_tags_follow_the_addressed_version() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        f.put("k", b"1", 1);
        f.put("k", b"2", 2);
        let tags =
            TagSet::from_pairs([("a".to_string(), "b".to_string())], MAX_OBJECT_TAGS).unwrap();
        f.ok(ObjectCommand::PutObjectTagging {
            bucket: b("bkt"),
            key: k("k"),
            version_id: Some(vid(1)),
            tags: tags.clone(),
        });
        assert_eq!(f.get("k", Some(vid(1))).unwrap().tags, tags);
        assert!(f.get("k", None).unwrap().tags.is_empty());
        f.ok(ObjectCommand::DeleteObjectTagging {
            bucket: b("bkt"),
            key: k("k"),
            version_id: Some(vid(1)),
        });
        assert!(f.get("k", Some(vid(1))).unwrap().tags.is_empty());
        f.delete("k", None, 3);
        assert_eq!(
            f.refused(ObjectCommand::PutObjectTagging {
                bucket: b("bkt"),
                key: k("k"),
                version_id: None,
                tags: tags.clone()
            }),
            ObjectError::NoSuchKey {
                delete_marker: Some(vid(3))
            }
        );
        let too_many = TagSet((0..11).map(|i| (format!("t{i}"), String::new())).collect());
        assert_eq!(
            f.refused(ObjectCommand::PutObjectTagging {
                bucket: b("bkt"),
                key: k("k"),
                version_id: Some(vid(1)),
                tags: too_many
            })
            .code(),
            "InvalidTag"
        );
    }

    #[test]
    fn listing_with_a_delimiter_rolls_up_prefixes_and_pages_without_repeats_or_gaps() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let visible = [
            "a",
            "a/",
            "a/b",
            "a/c/d",
            "a/c/e",
            "a/d",
            "a\0x",
            "ab",
            "b/1",
            "b/2/x",
            "c",
            "d/",
            "d/e/f",
            "é/1",
            "photos/2006/jan/1.jpg",
            "photos/2006/feb/2.jpg",
            "photos/2007/x.jpg",
            "photos/index.html",
            "z",
        ];
        let mut n = 0;
        for key in visible {
            n += 1;
            f.put(key, key.as_bytes(), n);
            n += 1;
            f.put(key, key.as_bytes(), n); // two versions each: only the newest is listed
        }
        // Keys whose newest version is a delete marker must not appear, even in a prefix.
        for key in ["a/zz", "deleted", "e/only-deleted", "photos/2008/gone.jpg"] {
            n += 1;
            f.put(key, b"x", n);
            n += 1;
            f.delete(key, None, n);
        }
        for (prefix, delimiter) in [
            ("", None),
            ("", Some("/")),
            ("a/", Some("/")),
            ("photos/", Some("/")),
            ("photos/2006/", Some("/")),
            ("a", Some("/")),
            ("", Some("c/")),
            ("nothing", Some("/")),
        ] {
            let want = expected(&visible, prefix, delimiter);
            assert_eq!(
                all_pages(&f, prefix, delimiter, 1000, LIST_ROW_BUDGET),
                want,
                "prefix {prefix:?} delimiter {delimiter:?}"
            );
            for max_keys in [1, 2, 3, 5] {
                assert_eq!(
                    all_pages(&f, prefix, delimiter, max_keys, LIST_ROW_BUDGET),
                    want,
                    "prefix {prefix:?} delimiter {delimiter:?} max_keys {max_keys}"
                );
            }
        }
        let top = f.list("", Some("/"), None, 1000, LIST_ROW_BUDGET);
        assert_eq!(top.common_prefixes, ["a/", "b/", "d/", "photos/", "é/"]);
        assert!(
            !top.common_prefixes.contains(&"e/".to_string()),
            "a prefix of only deleted keys is hidden"
        );
        // A common prefix counts once toward max-keys.
        let page = f.list("photos/", Some("/"), None, 2, LIST_ROW_BUDGET);
        assert_eq!(page.common_prefixes, ["photos/2006/", "photos/2007/"]);
        assert!(page.contents.is_empty() && page.is_truncated);
        assert_eq!(page.next_marker.as_deref(), Some("photos/2007/"));
        // max-keys 0 lists nothing.
        let empty = f.list("", None, None, 0, LIST_ROW_BUDGET);
        assert!(empty.contents.is_empty() && !empty.is_truncated);
        // A client's start-after that is not a key.
        let after = f.list("", None, Some("b"), 1000, LIST_ROW_BUDGET);
        assert_eq!(after.contents.first().map(|o| o.key.as_str()), Some("b/1"));
    }

    #[test]
    fn listing_cuts_its_work_on_long_runs_of_delete_markers() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let mut n = 0;
        let mut visible = Vec::new();
        // "a/" itself is deleted and sorts before live keys under "a/": a marker equal to
        // a common prefix must not make the next page skip them.
        for key in ["a/"]
            .into_iter()
            .map(String::from)
            .chain((0..60).map(|i| format!("a/dead{i:03}")))
            .chain((0..40).map(|i| format!("m{i:03}")))
        {
            n += 1;
            f.put(&key, b"x", n);
            n += 1;
            f.delete(&key, None, n);
        }
        for key in ["a/zlive", "b", "m/x", "n"] {
            n += 1;
            f.put(key, b"x", n);
            visible.push(key);
        }
        for delimiter in [None, Some("/")] {
            let want = expected(&visible, "", delimiter);
            for budget in [1, 2, 3, 7, 50] {
                for max_keys in [1, 2, 1000] {
                    assert_eq!(
                        all_pages(&f, "", delimiter, max_keys, budget),
                        want,
                        "budget {budget} max_keys {max_keys} delimiter {delimiter:?}"
                    );
                }
            }
        }
        // A short budget answers with a truncated page rather than scanning on.
        let page = f.list("", None, None, 1000, 5);
        assert!(page.is_truncated);
        assert!(page.contents.is_empty());
        assert!(page.next_marker.is_some());
    }

    #[test]
    fn version_listing_pages_with_key_and_version_markers() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let mut n = 0;
        let mut all = Vec::new();
        for key in ["a", "a/1", "a/2", "b", "c/x"] {
            for _ in 0..3 {
                n += 1;
                f.put(key, b"x", n);
            }
            n += 1;
            f.delete(key, None, n);
        }
        for v in f.versions("", None, None, None, 1000).versions {
            all.push((
                v.key.to_string(),
                v.version_id.clone(),
                v.is_latest,
                v.is_delete_marker,
            ));
        }
        assert_eq!(all.len(), 20);
        assert!(
            all[0].2 && all[0].3,
            "the newest of a key is its delete marker"
        );
        assert!(!all[1].2);
        for max_keys in [1, 2, 3, 7] {
            let mut got = Vec::new();
            let (mut key_marker, mut version_marker) = (None::<String>, None::<VersionId>);
            loop {
                let page = f.versions(
                    "",
                    None,
                    key_marker.as_deref(),
                    version_marker.clone(),
                    max_keys,
                );
                got.extend(page.versions.iter().map(|v| {
                    (
                        v.key.to_string(),
                        v.version_id.clone(),
                        v.is_latest,
                        v.is_delete_marker,
                    )
                }));
                if !page.is_truncated {
                    break;
                }
                key_marker = page.next_key_marker;
                version_marker = page.next_version_id_marker;
            }
            assert_eq!(got, all, "max_keys {max_keys}");
        }
        // With a delimiter, versions under a prefix roll up, and the prefix counts once.
        let page = f.versions("", Some("/"), None, None, 1000);
        assert_eq!(page.common_prefixes, ["a/", "c/"]);
        assert_eq!(page.versions.len(), 8);
        let first = f.versions("", Some("/"), None, None, 5);
        assert_eq!(first.common_prefixes, ["a/"]);
        assert_eq!(first.next_key_marker.as_deref(), Some("a/"));
        let rest = f.versions("", Some("/"), Some("a/"), None, 1000);
        assert_eq!(rest.common_prefixes, ["c/"]);
        assert_eq!(rest.versions.len(), 4);
        assert!(rest.versions.iter().all(|v| v.key.as_str() == "b"));
        // A version marker needs a key marker.
        assert_eq!(
            f.query(ObjectQuery::ListObjectVersions {
                bucket: b("bkt"),
                prefix: String::new(),
                delimiter: None,
                key_marker: None,
                version_id_marker: Some(vid(1)),
                max_keys: 10,
            })
            .unwrap_err()
            .code(),
            "InvalidArgument"
        );
    }

    fn upload_id() -> UploadId {
        UploadId::generate(1_000, 42)
    }

    fn part(number: u16, size_bytes: u64, blob: u128) -> ObjectCommand {
        ObjectCommand::PutPart {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            part: NewPart {
                part_number: number,
                etag: etag_of(&blob.to_be_bytes()),
                size_bytes,
                checksum: None,
                data: DataRef::Erasure(erasure(blob)),
            },
        }
    }

    fn complete(parts: &[(u16, u128)]) -> ObjectCommand {
        ObjectCommand::CompleteUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            parts: parts
                .iter()
                .map(|&(n, blob)| (n, etag_of(&blob.to_be_bytes())))
                .collect(),
            version_id: vid(9),
            conditions: WriteConditions::default(),
        }
    }

    #[test]
    fn multipart_upload_follows_s3_completion_rules() {
        let mut f = Fixture::new();
        let tags = TagSet::from_pairs([("kind".to_string(), "video".to_string())], MAX_OBJECT_TAGS)
            .unwrap();
        f.ok(ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            upload: NewUpload {
                storage_class: StorageClass::StandardIa,
                tags: tags.clone(),
                ..NewUpload::default()
            },
        });
        assert_eq!(f.refused(part(0, 1, 1)).code(), "InvalidArgument");
        assert_eq!(f.refused(part(10_001, 1, 1)).code(), "InvalidArgument");
        assert_eq!(
            f.ok(part(1, MIN_PART_SIZE_BYTES, 101)),
            ObjectReply::PartPut { garbage: vec![] }
        );
        f.ok(part(2, 10, 102));
        // Uploading part 2 again replaces it; the first upload's shards are garbage.
        assert_eq!(
            f.ok(part(2, MIN_PART_SIZE_BYTES + 1, 202)),
            ObjectReply::PartPut {
                garbage: vec![erasure(102)]
            }
        );
        f.ok(part(3, 1, 103));
        f.ok(part(4, 1, 104));

        assert_eq!(f.refused(complete(&[])).code(), "MalformedXML");
        assert_eq!(
            f.refused(complete(&[(2, 202), (1, 101)])),
            ObjectError::InvalidPartOrder
        );
        assert_eq!(
            f.refused(complete(&[(1, 101), (1, 101)])),
            ObjectError::InvalidPartOrder
        );
        assert_eq!(
            f.refused(complete(&[(1, 101), (2, 102)])).code(),
            "InvalidPart",
            "stale ETag"
        );
        assert_eq!(
            f.refused(complete(&[(1, 101), (5, 105)])).code(),
            "InvalidPart",
            "never uploaded"
        );
        assert_eq!(
            f.refused(complete(&[(1, 101), (3, 103), (4, 104)])).code(),
            "EntityTooSmall"
        );

        let reply = f.ok(complete(&[(1, 101), (2, 202), (4, 104)]));
        let expected_etag = ETag::multipart(&[
            md5_of(&101u128.to_be_bytes()),
            md5_of(&202u128.to_be_bytes()),
            md5_of(&104u128.to_be_bytes()),
        ]);
        assert!(expected_etag.as_str().ends_with("-3"));
        match reply {
            ObjectReply::UploadCompleted {
                version_id,
                etag,
                size_bytes,
                garbage,
            } => {
                assert_eq!(version_id, None);
                assert_eq!(etag, expected_etag);
                assert_eq!(size_bytes, 2 * MIN_PART_SIZE_BYTES + 2);
                assert_eq!(garbage, vec![erasure(103)], "the unlisted part is garbage");
            }
            other => panic!("{other:?}"),
        }
        let object = f.get("big", None).unwrap();
        assert_eq!(object.etag, Some(expected_etag));
        assert_eq!(object.storage_class, StorageClass::StandardIa);
        assert_eq!(object.tags, tags);
        match &object.data {
            DataRef::Parts(parts) => {
                let numbers: Vec<u16> = parts.iter().map(|p| p.part_number).collect();
                assert_eq!(numbers, [1, 2, 4]);
                assert_eq!(object.data.blobs(), vec![101, 202, 104]);
            }
            other => panic!("{other:?}"),
        }
        // The upload and its parts are gone.
        assert_eq!(
            f.query(ObjectQuery::ListParts {
                bucket: b("bkt"),
                key: k("big"),
                upload_id: upload_id(),
                part_number_marker: 0,
                max_parts: 10
            })
            .unwrap_err(),
            ObjectError::NoSuchUpload
        );
        assert!(f
            .s
            .map
            .keys()
            .all(|key| !key.starts_with(&keys::all_parts(&b("bkt")))));
        assert_eq!(f.refused(complete(&[(1, 101)])), ObjectError::NoSuchUpload);
        // Overwriting the multipart object collects every part's shards.
        match f.put("big", b"small now", 10) {
            ObjectReply::ObjectPut { garbage, .. } => {
                assert_eq!(garbage, vec![erasure(101), erasure(202), erasure(104)])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_part_upload_and_abort() {
        let mut f = Fixture::new();
        let create = ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            upload: NewUpload::default(),
        };
        f.ok(create.clone());
        f.ok(create); // a retried create with the same id is harmless
        f.ok(part(1, 3, 1));
        // The last (only) part may be small.
        match f.ok(complete(&[(1, 1)])) {
            ObjectReply::UploadCompleted { etag, .. } => assert!(etag.as_str().ends_with("-1")),
            other => panic!("{other:?}"),
        }
        f.ok(ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            upload: NewUpload::default(),
        });
        f.ok(part(1, 3, 2));
        f.ok(part(2, 3, 3));
        let abort = ObjectCommand::AbortUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
        };
        assert_eq!(
            f.ok(abort.clone()),
            ObjectReply::UploadAborted {
                garbage: vec![erasure(2), erasure(3)]
            }
        );
        assert_eq!(f.refused(abort), ObjectError::NoSuchUpload);
        assert_eq!(f.refused(part(1, 3, 4)), ObjectError::NoSuchUpload);
    }

    #[test]
    fn uploads_and_parts_are_listed_in_pages() {
        let mut f = Fixture::new();
        let mut ids = Vec::new();
        for (i, key) in ["a", "a", "dir/x", "dir/y", "z"].iter().enumerate() {
            let id = UploadId::generate(10 + i as u64, 0);
            f.ok(ObjectCommand::CreateUpload {
                bucket: b("bkt"),
                key: k(key),
                upload_id: id.clone(),
                upload: NewUpload::default(),
            });
            ids.push((key.to_string(), id));
        }
        let list = |f: &Fixture,
                    delimiter: Option<&str>,
                    key_marker: Option<String>,
                    upload_marker: Option<UploadId>,
                    max| match f
            .query(ObjectQuery::ListUploads {
                bucket: b("bkt"),
                prefix: String::new(),
                delimiter: delimiter.map(Into::into),
                key_marker,
                upload_id_marker: upload_marker,
                max_uploads: max,
            })
            .unwrap()
        {
            ObjectReply::Uploads(listing) => listing,
            other => panic!("{other:?}"),
        };
        let mut got = Vec::new();
        let (mut key_marker, mut upload_marker) = (None, None);
        loop {
            let page = list(&f, None, key_marker, upload_marker, 2);
            got.extend(
                page.uploads
                    .iter()
                    .map(|u| (u.key.to_string(), u.upload_id.clone())),
            );
            if !page.is_truncated {
                break;
            }
            key_marker = page.next_key_marker;
            upload_marker = page.next_upload_id_marker;
        }
        assert_eq!(got, ids, "by key, then in initiation order");
        let rolled = list(&f, Some("/"), None, None, 100);
        assert_eq!(rolled.common_prefixes, ["dir/"]);
        assert_eq!(rolled.uploads.len(), 3);

        let id = ids[0].1.clone();
        for number in [1u16, 2, 3, 10, 11] {
            f.ok(ObjectCommand::PutPart {
                bucket: b("bkt"),
                key: k("a"),
                upload_id: id.clone(),
                part: NewPart {
                    part_number: number,
                    etag: etag_of(&[number as u8]),
                    size_bytes: 1,
                    checksum: None,
                    data: DataRef::Inline(vec![number as u8]),
                },
            });
        }
        let parts = |marker, max| match f
            .query(ObjectQuery::ListParts {
                bucket: b("bkt"),
                key: k("a"),
                upload_id: id.clone(),
                part_number_marker: marker,
                max_parts: max,
            })
            .unwrap()
        {
            ObjectReply::Parts(listing) => listing,
            other => panic!("{other:?}"),
        };
        let first = parts(0, 3);
        assert_eq!(
            first
                .parts
                .iter()
                .map(|p| p.part_number)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(first.is_truncated);
        assert_eq!(first.next_part_number_marker, Some(3));
        let second = parts(3, 3);
        assert_eq!(
            second
                .parts
                .iter()
                .map(|p| p.part_number)
                .collect::<Vec<_>>(),
            [10, 11]
        );
        assert!(!second.is_truncated);
        assert!(parts(u16::MAX, 3).parts.is_empty());
    }

    #[test]
    fn repair_updates_shard_locations_of_the_right_blob() {
        let mut f = Fixture::new();
        let mut object = erasure_object(5, 100);
        if let DataRef::Erasure(e) = &mut object.data {
            e.missing = vec![4];
        }
        f.ok(put_cmd("k", object, 1));
        let repaired = |blob, shards: Vec<(u8, u64)>| ObjectCommand::MarkShardsRepaired {
            bucket: b("bkt"),
            key: k("k"),
            version_id: VersionId::null(),
            blob,
            repaired: shards,
        };
        assert_eq!(
            f.ok(repaired(6, vec![(4, 9)])),
            ObjectReply::ShardsUpdated { updated: false }
        );
        assert_eq!(
            f.refused(repaired(5, vec![(6, 9)])).code(),
            "InvalidArgument"
        );
        assert_eq!(
            f.ok(repaired(5, vec![(4, 9)])),
            ObjectReply::ShardsUpdated { updated: true }
        );
        let DataRef::Erasure(e) = f.get("k", None).unwrap().data else {
            panic!()
        };
        assert!(e.missing.is_empty());
        assert_eq!(e.shard_nodes, [1, 2, 3, 4, 9, 6]);
        f.ok(ObjectCommand::MarkShardsMissing {
            bucket: b("bkt"),
            key: k("k"),
            version_id: VersionId::null(),
            blob: 5,
            missing: vec![2, 0, 2],
        });
        let DataRef::Erasure(e) = f.get("k", None).unwrap().data else {
            panic!()
        };
        assert_eq!(e.missing, [0, 2]);
        // The version is gone: the worker is told, not failed.
        f.delete("k", None, 2);
        assert_eq!(
            f.ok(repaired(5, vec![(0, 7)])),
            ObjectReply::ShardsUpdated { updated: false }
        );
    }

    /// The blob index as (blob, owner) rows, and the damaged rows' blobs.
    fn blob_index(f: &Fixture) -> (Vec<(u128, BlobOwner)>, Vec<u128>) {
        let rows = |prefix: Vec<u8>| {
            f.s.scan(&prefix, &prefix, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|(raw, value)| {
                    let blob = keys::parse_blob_row(&raw).unwrap();
                    (blob, decode::<BlobOwner>("blob owner", &value).unwrap())
                })
                .collect::<Vec<_>>()
        };
        let damaged = rows(keys::damaged_blobs()).into_iter().map(|(b, _)| b);
        (rows(keys::blob_refs()), damaged.collect())
    }

    fn blobs_of(f: &Fixture) -> Vec<u128> {
        blob_index(f).0.into_iter().map(|(b, _)| b).collect()
    }

    fn version_owner_of(key: &str, version_id: VersionId) -> BlobOwner {
        BlobOwner::Version {
            bucket: b("bkt"),
            key: k(key),
            version_id,
        }
    }

    fn blob_page(f: &Fixture, query: ObjectQuery) -> BlobPage {
        match f.query(query) {
            Ok(ObjectReply::Blobs(page)) => page,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_blob_index_follows_versions_and_their_garbage() {
        let mut f = Fixture::new();
        f.ok(put_cmd("k", erasure_object(1, 100), 1));
        assert_eq!(
            blob_index(&f).0,
            [(1, version_owner_of("k", VersionId::null()))]
        );
        // Overwriting the null version moves the index to the new blob.
        f.ok(put_cmd("k", erasure_object(2, 100), 2));
        assert_eq!(blobs_of(&f), [2]);
        f.versioning(VersioningState::Enabled);
        f.ok(put_cmd("k", erasure_object(3, 100), 3));
        f.ok(put_cmd(
            "other",
            inline_object(b"inline data has no blob"),
            4,
        ));
        assert_eq!(blobs_of(&f), [2, 3]);
        // A delete marker keeps the versions, and so their blobs; deleting one drops it.
        f.delete("k", None, 5);
        assert_eq!(blobs_of(&f), [2, 3]);
        f.delete("k", Some(vid(3)), 6);
        assert_eq!(
            blob_index(&f).0,
            [(2, version_owner_of("k", VersionId::null()))]
        );

        // Missing shards put the blob in the damaged rows until repaired.
        let mut damaged = erasure_object(5, 100);
        if let DataRef::Erasure(e) = &mut damaged.data {
            e.missing = vec![4];
        }
        f.ok(put_cmd("d", damaged, 7));
        assert_eq!(blob_index(&f).1, [5]);
        let shards = |missing: bool, index: u8| {
            let (bucket, key, version_id, blob) = (b("bkt"), k("d"), vid(7), 5);
            if missing {
                ObjectCommand::MarkShardsMissing {
                    bucket,
                    key,
                    version_id,
                    blob,
                    missing: vec![index],
                }
            } else {
                ObjectCommand::MarkShardsRepaired {
                    bucket,
                    key,
                    version_id,
                    blob,
                    repaired: vec![(index, 9)],
                }
            }
        };
        f.ok(shards(false, 4));
        assert!(blob_index(&f).1.is_empty());
        f.ok(shards(true, 0));
        assert_eq!(blob_index(&f).1, [5]);
        let page = blob_page(
            &f,
            ObjectQuery::ListBlobs {
                damaged_only: true,
                after: None,
                limit: 10,
            },
        );
        assert_eq!(page.entries.len(), 1);
        let entry = &page.entries[0];
        assert_eq!(entry.owner, version_owner_of("d", vid(7)));
        let e = entry.erasure.as_ref().unwrap();
        assert_eq!((e.missing.clone(), e.shard_nodes[4]), (vec![0], 9));
        assert_eq!(entry.size_bytes, 100);
        // Deleting the version drops both rows.
        f.delete("d", Some(vid(7)), 8);
        assert_eq!(
            blob_index(&f),
            (vec![(2, version_owner_of("k", VersionId::null()))], vec![])
        );
        f.delete("k", Some(VersionId::null()), 9);
        assert_eq!(blob_index(&f), (vec![], vec![]));
    }

    #[test]
    fn the_blob_index_follows_parts_into_their_version() {
        let mut f = Fixture::new();
        let create = |id: UploadId| ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: id,
            upload: NewUpload {
                storage_class: StorageClass::OnezoneIa,
                ..NewUpload::default()
            },
        };
        f.ok(create(upload_id()));
        f.ok(part(1, MIN_PART_SIZE_BYTES, 10));
        f.ok(part(2, 7, 11));
        f.ok(part(3, 7, 13));
        // A part uploaded again replaces its blob in the index.
        f.ok(part(2, 7, 12));
        let owner = |n| BlobOwner::Part {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            part_number: n,
        };
        assert_eq!(
            blob_index(&f).0,
            [(10, owner(1)), (12, owner(2)), (13, owner(3))]
        );
        let found = blob_page(
            &f,
            ObjectQuery::FindBlobs {
                blobs: vec![12, 11, 99],
            },
        );
        assert_eq!(found.entries.len(), 1);
        assert_eq!(found.entries[0].owner, owner(2));
        assert_eq!(found.entries[0].size_bytes, 7);
        assert_eq!(found.entries[0].storage_class, StorageClass::OnezoneIa);

        // Completing moves the listed parts to the version; the unlisted one is garbage.
        f.ok(complete(&[(1, 10), (2, 12)]));
        assert_eq!(
            blob_index(&f).0,
            [
                (10, version_owner_of("big", VersionId::null())),
                (12, version_owner_of("big", VersionId::null()))
            ]
        );
        let found = blob_page(
            &f,
            ObjectQuery::FindBlobs {
                blobs: vec![10, 12, 13],
            },
        );
        let sizes: Vec<(u128, u64)> = found
            .entries
            .iter()
            .map(|e| (e.blob, e.size_bytes))
            .collect();
        assert_eq!(sizes, [(10, MIN_PART_SIZE_BYTES), (12, 7)]);

        // An aborted upload takes its parts' rows with it.
        let second = UploadId::generate(2_000, 1);
        f.ok(create(second.clone()));
        f.ok(ObjectCommand::PutPart {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: second.clone(),
            part: NewPart {
                part_number: 1,
                etag: etag_of(b"x"),
                size_bytes: 100,
                checksum: None,
                data: DataRef::Erasure(erasure(20)),
            },
        });
        assert_eq!(blobs_of(&f), [10, 12, 20]);
        f.ok(ObjectCommand::AbortUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: second,
        });
        assert_eq!(blobs_of(&f), [10, 12]);
    }

    #[test]
    fn blob_listings_page_in_id_order_and_lookups_are_bounded() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let blobs: Vec<u128> = (1..=9u128).map(|i| i * 1_000_003 + (i << 100)).collect();
        for (i, blob) in blobs.iter().enumerate() {
            f.ok(put_cmd("k", erasure_object(*blob, 10), i as u64 + 1));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = blob_page(
                &f,
                ObjectQuery::ListBlobs {
                    damaged_only: false,
                    after,
                    limit: 4,
                },
            );
            assert!(page.entries.len() <= 4);
            seen.extend(page.entries.iter().map(|e| e.blob));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut sorted = blobs.clone();
        sorted.sort_unstable();
        assert_eq!(seen, sorted);
        let err = f
            .query(ObjectQuery::FindBlobs {
                blobs: vec![1; MAX_BLOB_LOOKUP + 1],
            })
            .unwrap_err();
        assert_eq!(err.code(), "InvalidArgument");
    }

    #[test]
    fn a_backfill_indexes_what_was_written_before_the_index_and_marks_it_complete() {
        let mut f = Fixture::new();
        f.versioning(VersioningState::Enabled);
        let mut damaged = erasure_object(3, 10);
        if let DataRef::Erasure(e) = &mut damaged.data {
            e.missing = vec![1];
        }
        for i in 0..300u64 {
            f.ok(put_cmd(
                &format!("k{i:03}"),
                erasure_object(1_000 + u128::from(i), 10),
                i + 1,
            ));
        }
        f.ok(put_cmd("damaged", damaged, 400));
        f.ok(ObjectCommand::CreateUpload {
            bucket: b("bkt"),
            key: k("big"),
            upload_id: upload_id(),
            upload: NewUpload::default(),
        });
        f.ok(part(1, MIN_PART_SIZE_BYTES, 7));
        let indexed = f.s.map.clone();
        // As a group written before the index existed: no blob rows, no marker.
        let blob_space = vec![keys::OBJECT_TAG, 0];
        f.s.map.retain(|key, _| !key.starts_with(&blob_space));
        assert!(!blob_page(&f, ObjectQuery::FindBlobs { blobs: vec![] }).index_complete);
        let mut after = None;
        let mut steps = 0;
        loop {
            steps += 1;
            match f.ok(ObjectCommand::IndexBlobs { after }) {
                ObjectReply::BlobsIndexed { next: Some(next) } => after = Some(next),
                ObjectReply::BlobsIndexed { next: None } => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(steps > 2, "{steps} steps for over 600 rows");
        let mut expected = indexed;
        expected.insert(keys::blob_index_complete(), encode(&true));
        assert_eq!(f.s.map, expected);
        assert_eq!(blob_index(&f).1, [3]);
        assert!(blob_page(&f, ObjectQuery::FindBlobs { blobs: vec![7] }).index_complete);
        // Running it again changes nothing.
        f.ok(ObjectCommand::IndexBlobs { after: None });
        assert_eq!(f.s.map, expected);
    }

    #[test]
    fn bad_commands_are_refused_without_panics() {
        let mut f = Fixture::new();
        let mut bad_size = inline_object(b"abc");
        bad_size.size_bytes = 4;
        assert_eq!(
            f.refused(put_cmd("k", bad_size, 1)).code(),
            "InvalidArgument"
        );
        let mut too_few_shards = erasure_object(1, 10);
        if let DataRef::Erasure(e) = &mut too_few_shards.data {
            e.missing = vec![0, 1, 2];
        }
        assert_eq!(
            f.refused(put_cmd("k", too_few_shards, 1)).code(),
            "InvalidArgument"
        );
        let mut big_metadata = inline_object(b"abc");
        big_metadata
            .user_metadata
            .insert("m".into(), "v".repeat(3000));
        assert_eq!(
            f.refused(put_cmd("k", big_metadata, 1)).code(),
            "MetadataTooLarge"
        );
        let mut nested = inline_object(b"");
        nested.data = DataRef::Parts(vec![PartRef {
            part_number: 1,
            size_bytes: 0,
            etag: etag_of(b""),
            data: DataRef::Parts(vec![]),
        }]);
        nested.size_bytes = 0;
        assert_eq!(f.refused(put_cmd("k", nested, 1)).code(), "InvalidArgument");
        assert_eq!(
            f.refused(ObjectCommand::PutPart {
                bucket: b("bkt"),
                key: k("k"),
                upload_id: upload_id(),
                part: NewPart {
                    part_number: 1,
                    etag: etag_of(b""),
                    size_bytes: 0,
                    checksum: None,
                    data: DataRef::empty()
                },
            }),
            ObjectError::NoSuchUpload
        );

        // Through the data group's envelope: garbage bytes and invalid names are
        // rejected at decoding, a valid command gets an ObjectResult.
        use crate::data_group::{DataCommand, DataGroupState, DataQuery};
        use crate::kv::model::KvReply;
        use crate::raft::{codec, ServiceState};
        let ctx = ApplyContext {
            log_index: 100,
            now_ms: 5,
        };
        let reply = DataGroupState::unobserved(1)
            .apply(&mut f.s, &[0xff, 0xff, 0xff], &ctx)
            .unwrap();
        assert!(matches!(
            codec::decode::<KvReply>(&reply).unwrap(),
            KvReply::Rejected(_)
        ));
        let mut bytes = codec::encode(&DataCommand::Object(Box::new(
            ObjectCommand::DeleteBucket { bucket: b("bkt") },
        )));
        let name_at = bytes.len() - 3;
        bytes[name_at] = b'K'; // "bkt" -> "bKt": not a valid bucket name
        let before = f.s.map.clone();
        let reply = DataGroupState::unobserved(1)
            .apply(&mut f.s, &bytes, &ctx)
            .unwrap();
        assert!(matches!(
            codec::decode::<KvReply>(&reply).unwrap(),
            KvReply::Rejected(_)
        ));
        assert_eq!(f.s.map, before);
        let command =
            DataCommand::Object(Box::new(put_cmd("via-envelope", inline_object(b"hi"), 1)));
        let reply = DataGroupState::unobserved(1)
            .apply(&mut f.s, &codec::encode(&command), &ctx)
            .unwrap();
        assert!(matches!(
            codec::decode::<ObjectResult>(&reply).unwrap(),
            Ok(ObjectReply::ObjectPut { .. })
        ));
        let query = DataQuery::Object(ObjectQuery::GetObject {
            bucket: b("bkt"),
            key: k("via-envelope"),
            version_id: None,
        });
        let reply = DataGroupState::unobserved(1)
            .read(&f.s, &codec::encode(&query))
            .unwrap();
        match codec::decode::<ObjectResult>(&reply).unwrap() {
            Ok(ObjectReply::Object(v)) => assert_eq!(v.last_modified_ms, 5),
            other => panic!("{other:?}"),
        }
        let query = DataQuery::Object(ObjectQuery::GetObject {
            bucket: b("nope"),
            key: k("x"),
            version_id: None,
        });
        let reply = DataGroupState::unobserved(1)
            .read(&f.s, &codec::encode(&query))
            .unwrap();
        assert_eq!(
            codec::decode::<ObjectResult>(&reply)
                .unwrap()
                .unwrap_err()
                .code(),
            "NoSuchBucket"
        );
    }
}
