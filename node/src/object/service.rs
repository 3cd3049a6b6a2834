//! The object service: S3 semantics over the cluster. It validates requests, moves object
//! bytes through the write and read paths, and commits metadata through the bucket's data
//! group (and bucket names through the catalog in the meta group), via the router.
//!
//! Order of effects, which every operation keeps:
//! - Data before metadata: a version is committed only once its bytes are durable (at
//!   least `data_shards + 1` shards), so no committed version points at missing data.
//! - Metadata before garbage: shards a write dropped are deleted only after the write
//!   committed (`gc`, in the background). A write whose metadata was refused, or surely
//!   never reached Raft (`Unavailable`), has its own new shards deleted; one whose outcome
//!   is unknown keeps them (the version may exist) and leaves them to the orphan sweep.
//! - Bucket creation and deletion follow the catalog protocol in `catalog`.
//!
//! The proposing node supplies the time and every random id (version ids, upload ids,
//! blob ids); the state machine decides whether a version id is used (versioning on) or
//! the version is `null`.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::catalog::{CatalogCommand, CatalogQuery, CatalogReply, CatalogState, MAX_LIST_BUCKETS};
use super::gc;
use super::liveness::Liveness;
use super::model::{
    validate_part_number, validate_user_metadata, BucketName, BucketRecord, Checksum,
    ChecksumAlgorithm, DataRef, ETag, ErasureRef, MultipartUpload, NewObject, ObjectError,
    ObjectHeaders, ObjectKey, ObjectVersion, StorageClass, TagSet, UploadId, UserMetadata,
    VersionId, VersioningState, MAX_OBJECT_TAGS,
};
use super::placement::{self, PlanError, ShardPlan};
use super::read_path::{self, PREFETCH_STRIPES};
use super::shard_io::ShardIo;
use super::state::{
    NewPart, NewUpload, ObjectCommand, ObjectListing, ObjectQuery, ObjectReply, ObjectResult,
    PartListing, UploadListing, VersionListing, WriteConditions,
};
use super::write_path::{self, BodyChecks, WriteTuning, WrittenBody, MAX_PUT_BYTES};
use crate::cluster::directory::{Directory, NodeId};
use crate::cluster::{routing, META_GROUP};
use crate::data_group::{DataCommand, DataQuery};
use crate::meta::{MetaCommand, MetaQuery, MetaReply};
use crate::raft::codec;
use crate::raft::router::{RouteError, Router};

/// A request or response body.
pub type BodyStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// S3's largest CopyObject source; larger objects are copied with UploadPartCopy.
pub const MAX_COPY_BYTES: u64 = MAX_PUT_BYTES;

#[derive(Debug, Clone)]
pub struct ObjectSettings {
    /// Bodies up to this size live inline in the metadata (multipart parts never do).
    pub inline_max_bytes: usize,
    /// Object bytes per erasure stripe.
    pub stripe_bytes: u32,
}

impl Default for ObjectSettings {
    fn default() -> Self {
        ObjectSettings {
            inline_max_bytes: 16 * 1024,
            stripe_bytes: super::erasure::DEFAULT_STRIPE_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An S3 client error with its own code and status.
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// An `x-amz-checksum-*` value that does not match the body (S3: `BadDigest`).
    #[error("{0}")]
    ChecksumMismatch(String),
    #[error(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )]
    IncompleteBody,
    /// The body stream failed. The edge may recover its own error (a bad chunk signature,
    /// say) with `get_ref()` and a downcast; otherwise it is reported as `IncompleteBody`.
    #[error("The request body could not be read: {0}")]
    Body(std::io::Error),
    /// Not applied: too few nodes or no leader. Safe to retry.
    #[error("Service is unavailable: {0}")]
    Unavailable(String),
    /// May or may not have been applied.
    #[error("The outcome of the request is unknown, it may or may not have been applied: {0}")]
    OutcomeUnknown(String),
    #[error("We encountered an internal error. Please try again. ({0})")]
    Internal(String),
}

impl ServiceError {
    /// The S3 error code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Object(e) => e.code(),
            ServiceError::BadDigest | ServiceError::ChecksumMismatch(_) => "BadDigest",
            ServiceError::InvalidDigest => "InvalidDigest",
            ServiceError::IncompleteBody | ServiceError::Body(_) => "IncompleteBody",
            ServiceError::Unavailable(_) => "ServiceUnavailable",
            ServiceError::OutcomeUnknown(_) | ServiceError::Internal(_) => "InternalError",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            ServiceError::Object(e) => e.http_status(),
            ServiceError::BadDigest
            | ServiceError::ChecksumMismatch(_)
            | ServiceError::InvalidDigest
            | ServiceError::IncompleteBody
            | ServiceError::Body(_) => 400,
            ServiceError::Unavailable(_) => 503,
            ServiceError::OutcomeUnknown(_) | ServiceError::Internal(_) => 500,
        }
    }

    /// Whether the request surely had no effect (its new data may be collected).
    fn surely_not_applied(&self) -> bool {
        matches!(self, ServiceError::Object(_) | ServiceError::Unavailable(_))
    }
}

impl From<RouteError> for ServiceError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::OutcomeUnknown(_) => ServiceError::OutcomeUnknown(e.to_string()),
            RouteError::UnknownGroup(_) => ServiceError::Internal(e.to_string()),
            _ => ServiceError::Unavailable(e.to_string()),
        }
    }
}

impl From<PlanError> for ServiceError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Class(e) => ServiceError::Object(e),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// What PutObject (and CopyObject's destination) supplies besides the body.
#[derive(Debug, Clone, Default)]
pub struct PutMeta {
    pub headers: ObjectHeaders,
    pub user_metadata: UserMetadata,
    pub tags: TagSet,
    pub storage_class: StorageClass,
    pub content_md5: Option<[u8; 16]>,
    /// Verified against the body when set.
    pub expected_checksum: Option<Checksum>,
    /// Computed and stored when set.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub content_length: Option<u64>,
    pub conditions: WriteConditions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// `None` in a bucket that was never versioned.
    pub version_id: Option<VersionId>,
    pub etag: ETag,
    pub checksum: Option<Checksum>,
    pub size_bytes: u64,
}

pub struct GetOutcome {
    pub version: ObjectVersion,
    /// The bytes served, `start..end` (end exclusive), when a range applied.
    pub range: Option<(u64, u64)>,
    pub body: BodyStream,
}

impl fmt::Debug for GetOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOutcome")
            .field("version", &self.version)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub version_id: Option<VersionId>,
    pub delete_marker: bool,
}

/// An HTTP byte range as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=start-` or `bytes=start-end` (end inclusive).
    FromTo(u64, Option<u64>),
    /// `bytes=-len`: the last `len` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes to serve (`start..end`) of an object of `size` bytes: `Ok(None)` for a
    /// range that is syntactically invalid (`end < start`, ignored as RFC 9110 says: the
    /// whole object is served), `InvalidRange` for one that is unsatisfiable.
    pub fn resolve(self, size: u64) -> Result<Option<Range<u64>>, ObjectError> {
        let unsatisfiable = ObjectError::InvalidRange { object_size: size };
        match self {
            RangeSpec::FromTo(start, Some(end)) if end < start => Ok(None),
            RangeSpec::FromTo(start, end) => {
                if start >= size {
                    return Err(unsatisfiable);
                }
                let end = end.map_or(size, |e| e.saturating_add(1).min(size));
                Ok(Some(start..end))
            }
            RangeSpec::Suffix(len) => {
                if len == 0 || size == 0 {
                    return Err(unsatisfiable);
                }
                Ok(Some(size - len.min(size)..size))
            }
        }
    }
}

pub struct ObjectService {
    router: Arc<Router>,
    shard_io: Arc<dyn ShardIo>,
    directory: Arc<Directory>,
    settings: ObjectSettings,
    tuning: WriteTuning,
    liveness: Liveness,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_version_id() -> VersionId {
    VersionId::generate(now_ms(), rand::random())
}

fn unexpected(what: &str, reply: impl fmt::Debug) -> ServiceError {
    ServiceError::Internal(format!("unexpected reply to {what}: {reply:?}"))
}

/// Every erasure-coded blob of a data reference, with where its shards are.
fn erasure_refs(data: &DataRef) -> Vec<ErasureRef> {
    match data {
        DataRef::Inline(_) => Vec::new(),
        DataRef::Erasure(e) => vec![e.clone()],
        DataRef::Parts(parts) => parts.iter().flat_map(|p| erasure_refs(&p.data)).collect(),
    }
}

/// The precondition check of `state`, run before streaming a large body so a request
/// that is bound to fail does not write gigabytes first (the state checks again).
fn precheck(
    conditions: &WriteConditions,
    current: Option<&ObjectVersion>,
) -> Result<(), ObjectError> {
    if conditions.if_none_match_any && current.is_some() {
        return Err(ObjectError::PreconditionFailed);
    }
    if let Some(expected) = &conditions.if_match {
        let Some(current) = current else {
            return Err(ObjectError::NoSuchKey {
                delete_marker: None,
            });
        };
        if expected.as_str() != "*" && current.etag.as_ref() != Some(expected) {
            return Err(ObjectError::PreconditionFailed);
        }
    }
    Ok(())
}

impl ObjectService {
    pub fn new(
        router: Arc<Router>,
        shard_io: Arc<dyn ShardIo>,
        directory: Arc<Directory>,
        settings: ObjectSettings,
    ) -> Self {
        ObjectService {
            router,
            liveness: Liveness::new(shard_io.clone()),
            shard_io,
            directory,
            settings,
            tuning: WriteTuning::default(),
        }
    }

    pub fn settings(&self) -> &ObjectSettings {
        &self.settings
    }

    // -----------------------------------------------------------------------------------
    // Raft plumbing

    fn group_of(&self, bucket: &BucketName) -> u64 {
        routing::group_for_bucket(bucket.as_str(), self.directory.data_groups)
    }

    async fn command(
        &self,
        bucket: &BucketName,
        command: ObjectCommand,
    ) -> Result<ObjectReply, ServiceError> {
        let envelope = codec::encode(&DataCommand::Object(Box::new(command)));
        let bytes = self.router.write(self.group_of(bucket), envelope).await?;
        let result: ObjectResult = codec::decode(&bytes).map_err(ServiceError::Internal)?;
        Ok(result?)
    }

    async fn query(
        &self,
        bucket: &BucketName,
        query: ObjectQuery,
    ) -> Result<ObjectReply, ServiceError> {
        let envelope = codec::encode(&DataQuery::Object(query));
        let bytes = self.router.read(self.group_of(bucket), envelope).await?;
        let result: ObjectResult = codec::decode(&bytes).map_err(ServiceError::Internal)?;
        Ok(result?)
    }

    async fn catalog_command(&self, command: CatalogCommand) -> Result<CatalogReply, ServiceError> {
        let envelope = codec::encode(&MetaCommand::BucketCatalog(command));
        let bytes = self.router.write(META_GROUP, envelope).await?;
        match codec::decode::<MetaReply>(&bytes).map_err(ServiceError::Internal)? {
            MetaReply::BucketCatalog(result) => Ok(result?),
            other => Err(unexpected("a catalog command", other)),
        }
    }

    async fn catalog_query(&self, query: CatalogQuery) -> Result<CatalogReply, ServiceError> {
        let envelope = codec::encode(&MetaQuery::BucketCatalog(query));
        let bytes = self.router.read(META_GROUP, envelope).await?;
        match codec::decode::<MetaReply>(&bytes).map_err(ServiceError::Internal)? {
            MetaReply::BucketCatalog(result) => Ok(result?),
            other => Err(unexpected("a catalog query", other)),
        }
    }

    fn collect(&self, garbage: Vec<ErasureRef>, why: &'static str) {
        gc::collect_in_background(self.shard_io.clone(), garbage, why);
    }

    /// A write carrying `data` failed: collect the data unless the write may have applied.
    fn discard_on(&self, error: &ServiceError, data: &DataRef) {
        if error.surely_not_applied() {
            self.collect(erasure_refs(data), "uncommitted write");
        }
    }

    /// Where a new blob's shards go: only on nodes that answer now (`liveness`).
    async fn plan(&self, class: StorageClass) -> Result<ShardPlan, ServiceError> {
        placement::scheme_for(class)?;
        let down = self
            .liveness
            .down_among(self.directory.nodes.keys().copied())
            .await;
        self.plan_with(class, &down)
    }

    fn plan_with(
        &self,
        class: StorageClass,
        down: &BTreeSet<NodeId>,
    ) -> Result<ShardPlan, ServiceError> {
        match placement::plan(
            &self.directory,
            class,
            rand::random(),
            self.settings.stripe_bytes,
            down,
        ) {
            Err(PlanError::NoNodes) => Err(ServiceError::Unavailable(
                "no node of the cluster can take shard writes".into(),
            )),
            other => Ok(other?),
        }
    }

    // -----------------------------------------------------------------------------------
    // Buckets

    /// CreateBucket, through the catalog protocol (`catalog`).
    pub async fn create_bucket(&self, owner: &str, bucket: BucketName) -> Result<(), ServiceError> {
        let reply = self
            .catalog_command(CatalogCommand::Register {
                name: bucket.clone(),
                owner: owner.to_string(),
                created_ms: now_ms(),
            })
            .await?;
        let entry = match reply {
            CatalogReply::Registered { entry, created } => {
                if !created {
                    match entry.state {
                        CatalogState::Active => {
                            return Err(ObjectError::BucketAlreadyOwnedByYou.into())
                        }
                        CatalogState::Deleting => {
                            return Err(ObjectError::OperationAborted(format!(
                                "bucket {bucket} is being deleted; try again"
                            ))
                            .into())
                        }
                        // An earlier create stopped half way: finish it.
                        CatalogState::Creating => {}
                    }
                }
                entry
            }
            other => return Err(unexpected("Register", other)),
        };
        let created = self
            .command(
                &bucket,
                ObjectCommand::CreateBucket {
                    bucket: bucket.clone(),
                    owner: entry.owner.clone(),
                    created_ms: entry.created_ms,
                },
            )
            .await;
        match created {
            Ok(ObjectReply::BucketCreated { .. }) => {}
            Ok(other) => return Err(unexpected("CreateBucket", other)),
            Err(ServiceError::Object(refused)) => {
                // Refused for good by the data group: roll the name back.
                self.catalog_command(CatalogCommand::Unregister { name: bucket })
                    .await?;
                return Err(refused.into());
            }
            Err(e) => return Err(e),
        }
        match self
            .catalog_command(CatalogCommand::Activate { name: bucket })
            .await?
        {
            CatalogReply::Updated(_) => Ok(()),
            other => Err(unexpected("Activate", other)),
        }
    }

    /// DeleteBucket, through the catalog protocol (`catalog`).
    pub async fn delete_bucket(&self, bucket: BucketName) -> Result<(), ServiceError> {
        self.catalog_command(CatalogCommand::BeginDelete {
            name: bucket.clone(),
        })
        .await?;
        match self
            .command(
                &bucket,
                ObjectCommand::DeleteBucket {
                    bucket: bucket.clone(),
                },
            )
            .await
        {
            Ok(ObjectReply::BucketDeleted)
            | Err(ServiceError::Object(ObjectError::NoSuchBucket(_))) => {}
            Err(ServiceError::Object(refused)) => {
                self.catalog_command(CatalogCommand::CancelDelete { name: bucket })
                    .await?;
                return Err(refused.into());
            }
            Ok(other) => return Err(unexpected("DeleteBucket", other)),
            Err(e) => return Err(e),
        }
        self.catalog_command(CatalogCommand::Unregister { name: bucket })
            .await?;
        Ok(())
    }

    /// The bucket's record (versioning state and tags included).
    pub async fn head_bucket(&self, bucket: BucketName) -> Result<BucketRecord, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::HeadBucket {
                    bucket: bucket.clone(),
                },
            )
            .await?
        {
            ObjectReply::Bucket(record) => Ok(record),
            other => Err(unexpected("HeadBucket", other)),
        }
    }

    /// The owner's active buckets in name order, with their creation times.
    pub async fn list_buckets(&self, owner: &str) -> Result<Vec<(BucketName, u64)>, ServiceError> {
        let mut out = Vec::new();
        let mut start_after = None;
        loop {
            match self
                .catalog_query(CatalogQuery::List {
                    owner: Some(owner.to_string()),
                    start_after: start_after.take(),
                    limit: MAX_LIST_BUCKETS,
                })
                .await?
            {
                CatalogReply::Buckets {
                    buckets,
                    next_start_after,
                } => {
                    out.extend(buckets.into_iter().map(|b| (b.name, b.created_ms)));
                    match next_start_after {
                        Some(next) => start_after = Some(next),
                        None => return Ok(out),
                    }
                }
                other => return Err(unexpected("List", other)),
            }
        }
    }

    async fn bucket_updated(
        &self,
        bucket: &BucketName,
        command: ObjectCommand,
    ) -> Result<(), ServiceError> {
        match self.command(bucket, command).await? {
            ObjectReply::BucketUpdated => Ok(()),
            other => Err(unexpected("a bucket update", other)),
        }
    }

    pub async fn put_bucket_versioning(
        &self,
        bucket: BucketName,
        state: VersioningState,
    ) -> Result<(), ServiceError> {
        self.bucket_updated(
            &bucket,
            ObjectCommand::PutBucketVersioning {
                bucket: bucket.clone(),
                state,
            },
        )
        .await
    }

    pub async fn put_bucket_tagging(
        &self,
        bucket: BucketName,
        tags: TagSet,
    ) -> Result<(), ServiceError> {
        self.bucket_updated(
            &bucket,
            ObjectCommand::PutBucketTagging {
                bucket: bucket.clone(),
                tags,
            },
        )
        .await
    }

    pub async fn delete_bucket_tagging(&self, bucket: BucketName) -> Result<(), ServiceError> {
        self.bucket_updated(
            &bucket,
            ObjectCommand::DeleteBucketTagging {
                bucket: bucket.clone(),
            },
        )
        .await
    }

    // -----------------------------------------------------------------------------------
    // Objects

    /// PutObject: store the body, then commit the version.
    pub async fn put_object(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        body: BodyStream,
        meta: PutMeta,
    ) -> Result<PutOutcome, ServiceError> {
        validate_user_metadata(&meta.user_metadata)?;
        meta.tags.validate(MAX_OBJECT_TAGS)?;
        if let Some(checksum) = &meta.expected_checksum {
            checksum.validate()?;
        }
        // A body known to fit inline writes no shards: no need to ask who is alive.
        let inline = meta
            .content_length
            .is_some_and(|len| len <= self.settings.inline_max_bytes as u64);
        let plan = if inline {
            self.plan_with(meta.storage_class, &BTreeSet::new())?
        } else {
            self.plan(meta.storage_class).await?
        };
        let checks = BodyChecks {
            content_length: meta.content_length,
            content_md5: meta.content_md5,
            expected_checksum: meta.expected_checksum.clone(),
            checksum_algorithm: meta.checksum_algorithm,
            max_bytes: MAX_PUT_BYTES,
        };
        checks.algorithm()?;
        // Before streaming what may be a large body, make sure it can be committed.
        let surely_inline = meta
            .content_length
            .is_some_and(|len| len <= self.settings.inline_max_bytes as u64);
        if !surely_inline {
            self.precheck_put(&bucket, &key, &meta.conditions).await?;
        }
        let written = write_path::write_body(
            self.shard_io.as_ref(),
            &plan,
            Some(self.settings.inline_max_bytes),
            body,
            &checks,
            &self.tuning,
        )
        .await?;
        let etag = written.etag();
        let WrittenBody {
            data,
            size_bytes,
            checksum,
            ..
        } = written;
        let command = ObjectCommand::PutObject {
            bucket: bucket.clone(),
            key,
            version_id: new_version_id(),
            object: NewObject {
                size_bytes,
                etag: etag.clone(),
                headers: meta.headers,
                user_metadata: meta.user_metadata,
                tags: meta.tags,
                checksum: checksum.clone(),
                storage_class: meta.storage_class,
                data: data.clone(),
            },
            conditions: meta.conditions,
        };
        match self.command(&bucket, command).await {
            Ok(ObjectReply::ObjectPut {
                version_id,
                garbage,
            }) => {
                self.collect(garbage, "overwritten version");
                Ok(PutOutcome {
                    version_id,
                    etag,
                    checksum,
                    size_bytes,
                })
            }
            Ok(other) => Err(unexpected("PutObject", other)),
            Err(e) => {
                self.discard_on(&e, &data);
                Err(e)
            }
        }
    }

    async fn precheck_put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        conditions: &WriteConditions,
    ) -> Result<(), ServiceError> {
        if conditions == &WriteConditions::default() {
            self.head_bucket(bucket.clone()).await?;
            return Ok(());
        }
        let current = match self
            .query(
                bucket,
                ObjectQuery::GetObject {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version_id: None,
                },
            )
            .await
        {
            Ok(ObjectReply::Object(version)) => Some(version),
            Ok(other) => return Err(unexpected("GetObject", other)),
            Err(ServiceError::Object(ObjectError::NoSuchKey { .. })) => None,
            Err(e) => return Err(e),
        };
        Ok(precheck(conditions, current.as_ref())?)
    }

    /// HeadObject (and the source of GetObjectTagging): the version, without its bytes.
    pub async fn head_object(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
    ) -> Result<ObjectVersion, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::GetObject {
                    bucket: bucket.clone(),
                    key,
                    version_id,
                },
            )
            .await?
        {
            ObjectReply::Object(version) => Ok(version),
            other => Err(unexpected("GetObject", other)),
        }
    }

    /// GetObject: the version and a stream of its bytes (or of a range of them).
    pub async fn get_object(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
        range: Option<RangeSpec>,
    ) -> Result<GetOutcome, ServiceError> {
        let version = self.head_object(bucket, key, version_id).await?;
        let size = version.size_bytes;
        let resolved = match range {
            Some(spec) => spec.resolve(size)?,
            None => None,
        };
        let bytes = resolved.clone().unwrap_or(0..size);
        let body = read_path::open_body(
            self.shard_io.clone(),
            &version.data,
            size,
            bytes,
            PREFETCH_STRIPES,
        )
        .await?;
        Ok(GetOutcome {
            range: resolved.map(|r| (r.start, r.end)),
            version,
            body,
        })
    }

    pub async fn delete_object(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
    ) -> Result<DeleteOutcome, ServiceError> {
        match self
            .command(
                &bucket,
                ObjectCommand::DeleteObject {
                    bucket: bucket.clone(),
                    key,
                    version_id,
                    new_version_id: new_version_id(),
                },
            )
            .await?
        {
            ObjectReply::ObjectDeleted {
                version_id,
                delete_marker,
                garbage,
            } => {
                self.collect(garbage, "deleted version");
                Ok(DeleteOutcome {
                    version_id,
                    delete_marker,
                })
            }
            other => Err(unexpected("DeleteObject", other)),
        }
    }

    /// ListObjects v1/v2 (v2's continuation token and start-after become `marker`).
    pub async fn list_objects(
        &self,
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        marker: Option<String>,
        max_keys: u32,
    ) -> Result<ObjectListing, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::ListObjects {
                    bucket: bucket.clone(),
                    prefix,
                    delimiter,
                    marker,
                    max_keys,
                },
            )
            .await?
        {
            ObjectReply::Objects(listing) => Ok(listing),
            other => Err(unexpected("ListObjects", other)),
        }
    }

    pub async fn list_object_versions(
        &self,
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        key_marker: Option<String>,
        version_id_marker: Option<VersionId>,
        max_keys: u32,
    ) -> Result<VersionListing, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::ListObjectVersions {
                    bucket: bucket.clone(),
                    prefix,
                    delimiter,
                    key_marker,
                    version_id_marker,
                    max_keys,
                },
            )
            .await?
        {
            ObjectReply::Versions(listing) => Ok(listing),
            other => Err(unexpected("ListObjectVersions", other)),
        }
    }

    /// CopyObject: the source's bytes written anew under the destination (a copy never
    /// shares shards with its source, so either can be collected alone). `meta` is the
    /// destination's, already resolved by the edge (metadata and tagging directives); its
    /// `content_length` is set here. Returns the source version too.
    pub async fn copy_object(
        &self,
        src_bucket: BucketName,
        src_key: ObjectKey,
        src_version: Option<VersionId>,
        dst_bucket: BucketName,
        dst_key: ObjectKey,
        meta: PutMeta,
    ) -> Result<(PutOutcome, ObjectVersion), ServiceError> {
        let source = self.head_object(src_bucket, src_key, src_version).await?;
        if source.size_bytes > MAX_COPY_BYTES {
            return Err(ObjectError::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a \
                 copy source: {MAX_COPY_BYTES}"
            ))
            .into());
        }
        let size = source.size_bytes;
        let body = read_path::open_body(
            self.shard_io.clone(),
            &source.data,
            size,
            0..size,
            PREFETCH_STRIPES,
        )
        .await?;
        let meta = PutMeta {
            content_length: Some(size),
            ..meta
        };
        let outcome = self.put_object(dst_bucket, dst_key, body, meta).await?;
        Ok((outcome, source))
    }

    pub async fn put_object_tagging(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
        tags: TagSet,
    ) -> Result<Option<VersionId>, ServiceError> {
        match self
            .command(
                &bucket,
                ObjectCommand::PutObjectTagging {
                    bucket: bucket.clone(),
                    key,
                    version_id,
                    tags,
                },
            )
            .await?
        {
            ObjectReply::TaggingUpdated { version_id } => Ok(version_id),
            other => Err(unexpected("PutObjectTagging", other)),
        }
    }

    pub async fn delete_object_tagging(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<VersionId>,
    ) -> Result<Option<VersionId>, ServiceError> {
        match self
            .command(
                &bucket,
                ObjectCommand::DeleteObjectTagging {
                    bucket: bucket.clone(),
                    key,
                    version_id,
                },
            )
            .await?
        {
            ObjectReply::TaggingUpdated { version_id } => Ok(version_id),
            other => Err(unexpected("DeleteObjectTagging", other)),
        }
    }

    // -----------------------------------------------------------------------------------
    // Multipart uploads

    pub async fn create_upload(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload: NewUpload,
    ) -> Result<UploadId, ServiceError> {
        placement::scheme_for(upload.storage_class)?;
        validate_user_metadata(&upload.user_metadata)?;
        upload.tags.validate(MAX_OBJECT_TAGS)?;
        match self
            .command(
                &bucket,
                ObjectCommand::CreateUpload {
                    bucket: bucket.clone(),
                    key,
                    upload_id: UploadId::generate(now_ms(), rand::random()),
                    upload,
                },
            )
            .await?
        {
            ObjectReply::UploadCreated { upload_id } => Ok(upload_id),
            other => Err(unexpected("CreateMultipartUpload", other)),
        }
    }

    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<MultipartUpload, ServiceError> {
        match self
            .query(
                bucket,
                ObjectQuery::GetUpload {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    upload_id: upload_id.clone(),
                },
            )
            .await?
        {
            ObjectReply::Upload(upload) => Ok(upload),
            other => Err(unexpected("GetUpload", other)),
        }
    }

    /// UploadPart: the part is always erasure coded (never inline), whatever its size.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part_number: u16,
        body: BodyStream,
        content_md5: Option<[u8; 16]>,
        expected_checksum: Option<Checksum>,
        content_length: Option<u64>,
    ) -> Result<(ETag, Option<Checksum>), ServiceError> {
        validate_part_number(part_number)?;
        if let Some(checksum) = &expected_checksum {
            checksum.validate()?;
        }
        let upload = self.get_upload(&bucket, &key, &upload_id).await?;
        let checks = BodyChecks {
            content_length,
            content_md5,
            expected_checksum,
            checksum_algorithm: upload.checksum_algorithm,
            max_bytes: MAX_PUT_BYTES,
        };
        checks.algorithm()?;
        let plan = self.plan(upload.storage_class).await?;
        let written = write_path::write_body(
            self.shard_io.as_ref(),
            &plan,
            None,
            body,
            &checks,
            &self.tuning,
        )
        .await?;
        self.commit_part(bucket, key, upload_id, part_number, written)
            .await
    }

    async fn commit_part(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part_number: u16,
        written: WrittenBody,
    ) -> Result<(ETag, Option<Checksum>), ServiceError> {
        let etag = written.etag();
        let checksum = written.checksum.clone();
        let data = written.data.clone();
        let command = ObjectCommand::PutPart {
            bucket: bucket.clone(),
            key,
            upload_id,
            part: NewPart {
                part_number,
                etag: etag.clone(),
                size_bytes: written.size_bytes,
                checksum: written.checksum,
                data: written.data,
            },
        };
        match self.command(&bucket, command).await {
            Ok(ObjectReply::PartPut { garbage }) => {
                self.collect(garbage, "replaced part");
                Ok((etag, checksum))
            }
            Ok(other) => Err(unexpected("UploadPart", other)),
            Err(e) => {
                self.discard_on(&e, &data);
                Err(e)
            }
        }
    }

    /// UploadPartCopy: bytes `range` (all of them when `None`) of the source become part
    /// `part_number`. Returns the part's ETag and checksum, and the source version.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part_number: u16,
        src_bucket: BucketName,
        src_key: ObjectKey,
        src_version: Option<VersionId>,
        range: Option<RangeSpec>,
    ) -> Result<(ETag, Option<Checksum>, ObjectVersion), ServiceError> {
        validate_part_number(part_number)?;
        let upload = self.get_upload(&bucket, &key, &upload_id).await?;
        let source = self.head_object(src_bucket, src_key, src_version).await?;
        let size = source.size_bytes;
        let bytes = match range {
            None => 0..size,
            Some(spec) => match spec.resolve(size) {
                Ok(Some(r)) => r,
                _ => {
                    return Err(ObjectError::InvalidArgument(format!(
                        "Range specified is not valid for source object of size: {size}"
                    ))
                    .into())
                }
            },
        };
        if bytes.end - bytes.start > MAX_PUT_BYTES {
            return Err(ObjectError::EntityTooLarge(format!(
                "a part is at most {MAX_PUT_BYTES} bytes"
            ))
            .into());
        }
        let length = bytes.end - bytes.start;
        let body = read_path::open_body(
            self.shard_io.clone(),
            &source.data,
            size,
            bytes,
            PREFETCH_STRIPES,
        )
        .await?;
        let checks = BodyChecks {
            checksum_algorithm: upload.checksum_algorithm,
            ..BodyChecks::length(Some(length))
        };
        let plan = self.plan(upload.storage_class).await?;
        let written = write_path::write_body(
            self.shard_io.as_ref(),
            &plan,
            None,
            body,
            &checks,
            &self.tuning,
        )
        .await?;
        let (etag, checksum) = self
            .commit_part(bucket, key, upload_id, part_number, written)
            .await?;
        Ok((etag, checksum, source))
    }

    /// CompleteMultipartUpload: the listed parts become the object (ETag `md5-of-md5s-N`).
    pub async fn complete_upload(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        parts: Vec<(u16, ETag)>,
        conditions: WriteConditions,
    ) -> Result<PutOutcome, ServiceError> {
        match self
            .command(
                &bucket,
                ObjectCommand::CompleteUpload {
                    bucket: bucket.clone(),
                    key,
                    upload_id,
                    parts,
                    version_id: new_version_id(),
                    conditions,
                },
            )
            .await?
        {
            ObjectReply::UploadCompleted {
                version_id,
                etag,
                size_bytes,
                garbage,
            } => {
                self.collect(garbage, "unlisted parts or overwritten version");
                Ok(PutOutcome {
                    version_id,
                    etag,
                    checksum: None,
                    size_bytes,
                })
            }
            other => Err(unexpected("CompleteMultipartUpload", other)),
        }
    }

    pub async fn abort_upload(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
    ) -> Result<(), ServiceError> {
        match self
            .command(
                &bucket,
                ObjectCommand::AbortUpload {
                    bucket: bucket.clone(),
                    key,
                    upload_id,
                },
            )
            .await?
        {
            ObjectReply::UploadAborted { garbage } => {
                self.collect(garbage, "aborted upload");
                Ok(())
            }
            other => Err(unexpected("AbortMultipartUpload", other)),
        }
    }

    /// ListParts: parts numbered above `part_number_marker`.
    pub async fn list_parts(
        &self,
        bucket: BucketName,
        key: ObjectKey,
        upload_id: UploadId,
        part_number_marker: u16,
        max_parts: u32,
    ) -> Result<PartListing, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::ListParts {
                    bucket: bucket.clone(),
                    key,
                    upload_id,
                    part_number_marker,
                    max_parts,
                },
            )
            .await?
        {
            ObjectReply::Parts(listing) => Ok(listing),
            other => Err(unexpected("ListParts", other)),
        }
    }

    pub async fn list_uploads(
        &self,
        bucket: BucketName,
        prefix: String,
        delimiter: Option<String>,
        key_marker: Option<String>,
        upload_id_marker: Option<UploadId>,
        max_uploads: u32,
    ) -> Result<UploadListing, ServiceError> {
        match self
            .query(
                &bucket,
                ObjectQuery::ListUploads {
                    bucket: bucket.clone(),
                    prefix,
                    delimiter,
                    key_marker,
                    upload_id_marker,
                    max_uploads,
                },
            )
            .await?
        {
            ObjectReply::Uploads(listing) => Ok(listing),
            other => Err(unexpected("ListMultipartUploads", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_s3_serves_them() {
        let r = |spec: RangeSpec, size: u64| spec.resolve(size);
        assert_eq!(r(RangeSpec::FromTo(0, Some(9)), 100), Ok(Some(0..10)));
        assert_eq!(r(RangeSpec::FromTo(90, Some(200)), 100), Ok(Some(90..100)));
        assert_eq!(r(RangeSpec::FromTo(5, None), 100), Ok(Some(5..100)));
        assert_eq!(r(RangeSpec::FromTo(99, Some(99)), 100), Ok(Some(99..100)));
        assert_eq!(r(RangeSpec::Suffix(10), 100), Ok(Some(90..100)));
        assert_eq!(r(RangeSpec::Suffix(500), 100), Ok(Some(0..100)));
        // Syntactically invalid: ignored, the whole object is served.
        assert_eq!(r(RangeSpec::FromTo(9, Some(3)), 100), Ok(None));
        for (spec, size) in [
            (RangeSpec::FromTo(100, None), 100),
            (RangeSpec::FromTo(0, Some(0)), 0),
            (RangeSpec::Suffix(0), 100),
            (RangeSpec::Suffix(5), 0),
        ] {
            let err = r(spec, size).unwrap_err();
            assert_eq!(err, ObjectError::InvalidRange { object_size: size });
            assert_eq!((err.code(), err.http_status()), ("InvalidRange", 416));
        }
    }

    #[test]
    fn service_errors_map_to_s3_codes() {
        let cases: Vec<(ServiceError, &str, u16)> = vec![
            (
                ObjectError::NoSuchBucket("b".into()).into(),
                "NoSuchBucket",
                404,
            ),
            (ServiceError::BadDigest, "BadDigest", 400),
            (ServiceError::ChecksumMismatch("x".into()), "BadDigest", 400),
            (ServiceError::InvalidDigest, "InvalidDigest", 400),
            (ServiceError::IncompleteBody, "IncompleteBody", 400),
            (
                ServiceError::Body(std::io::Error::other("cut")),
                "IncompleteBody",
                400,
            ),
            (
                ServiceError::Unavailable("x".into()),
                "ServiceUnavailable",
                503,
            ),
            (
                ServiceError::OutcomeUnknown("x".into()),
                "InternalError",
                500,
            ),
            (ServiceError::Internal("x".into()), "InternalError", 500),
            (
                RouteError::Unavailable {
                    group: 1,
                    reason: "no leader".into(),
                }
                .into(),
                "ServiceUnavailable",
                503,
            ),
            (
                RouteError::OutcomeUnknown("timeout".into()).into(),
                "InternalError",
                500,
            ),
            (
                PlanError::Class(ObjectError::InvalidStorageClass("GLACIER".into())).into(),
                "InvalidStorageClass",
                400,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!((err.code(), err.http_status()), (code, status), "{err}");
        }
        assert!(ServiceError::Unavailable("x".into()).surely_not_applied());
        assert!(!ServiceError::OutcomeUnknown("x".into()).surely_not_applied());
    }

    #[test]
    fn preconditions_are_checked_before_the_body() {
        let key = ObjectKey::parse("k").unwrap();
        let mut current = ObjectVersion::delete_marker(key, VersionId::null(), 1);
        current.is_delete_marker = false;
        current.etag = Some(ETag::parse("abc").unwrap());
        let none_match = WriteConditions {
            if_none_match_any: true,
            ..Default::default()
        };
        assert_eq!(
            precheck(&none_match, Some(&current)),
            Err(ObjectError::PreconditionFailed)
        );
        assert_eq!(precheck(&none_match, None), Ok(()));
        let if_match = |tag: &str| WriteConditions {
            if_match: Some(ETag::parse(tag).unwrap()),
            ..Default::default()
        };
        assert_eq!(precheck(&if_match("abc"), Some(&current)), Ok(()));
        assert_eq!(precheck(&if_match("*"), Some(&current)), Ok(()));
        assert_eq!(
            precheck(&if_match("def"), Some(&current)),
            Err(ObjectError::PreconditionFailed)
        );
        assert!(matches!(
            precheck(&if_match("abc"), None),
            Err(ObjectError::NoSuchKey { .. })
        ));
    }

    #[test]
    fn erasure_refs_are_found_in_parts() {
        let e = |blob| ErasureRef {
            blob,
            layout: super::super::erasure::ErasureLayout::STANDARD.into(),
            shard_nodes: vec![1; 6],
            missing: vec![],
        };
        let data = DataRef::Parts(vec![
            super::super::model::PartRef {
                part_number: 1,
                size_bytes: 1,
                etag: ETag::parse("a").unwrap(),
                data: DataRef::Erasure(e(3)),
            },
            super::super::model::PartRef {
                part_number: 2,
                size_bytes: 1,
                etag: ETag::parse("b").unwrap(),
                data: DataRef::Inline(vec![1]),
            },
        ]);
        assert_eq!(erasure_refs(&data), vec![e(3)]);
        assert!(erasure_refs(&DataRef::Inline(vec![])).is_empty());
    }
}
