//! The blob index as the background workers use it, over the router: which version (or
//! upload part) points to a blob, and the commands that record shards missing or repaired.
//!
//! A shard file names its blob but not its bucket, so a lookup by blob asks every data
//! group (`FindBlobs`, answered from each group's `keys::blob_ref` rows). The answer is
//! complete or an error: when any group does not answer, or has not finished backfilling
//! its index (see the upgrade note in `state`), nobody may conclude that a blob is
//! unreferenced (the orphan sweep would delete live data).
//!
//! Shard updates go to the group of the owner's bucket. Only versions are updated: the
//! state cannot address an upload's part; its blobs are repaired once the upload completes
//! (or collected when it is aborted).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::state::{BlobEntry, BlobOwner, BlobPage, ObjectCommand, ObjectQuery, ObjectReply};
use super::state::{ObjectResult, MAX_BLOB_LOOKUP};
use crate::cluster::directory::{Directory, GroupId, NodeId};
use crate::cluster::routing;
use crate::data_group::{DataCommand, DataQuery};
use crate::raft::codec;
use crate::raft::router::Router;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The group did not answer (no leader, unreachable, outcome unknown): try later.
    #[error("data group {group}: {reason}")]
    Unavailable { group: GroupId, reason: String },
    /// The group's blob index is still being backfilled: its answer may leave out blobs
    /// that are referenced.
    #[error("data group {group} has not finished indexing its blobs")]
    Incomplete { group: GroupId },
    /// The group answered with an error or an unexpected reply.
    #[error("data group {group} answered {reason}")]
    Refused { group: GroupId, reason: String },
}

/// Looking blobs up by id: the seam between the orphan sweep and the cluster (tests give
/// a map).
pub trait BlobLookup: Send + Sync {
    /// The entries of those of `blobs` something points to; an error unless every data
    /// group answered.
    fn find<'a>(
        &'a self,
        blobs: &'a [u128],
    ) -> BoxFuture<'a, Result<HashMap<u128, BlobEntry>, IndexError>>;
}

impl BlobLookup for BlobIndex {
    fn find<'a>(
        &'a self,
        blobs: &'a [u128],
    ) -> BoxFuture<'a, Result<HashMap<u128, BlobEntry>, IndexError>> {
        Box::pin(BlobIndex::find(self, blobs))
    }
}

/// The cluster's blob index, from one node.
pub struct BlobIndex {
    router: Arc<Router>,
    directory: Arc<Directory>,
}

impl BlobIndex {
    pub fn new(router: Arc<Router>, directory: Arc<Directory>) -> Self {
        BlobIndex { router, directory }
    }

    async fn read(&self, group: GroupId, query: ObjectQuery) -> Result<ObjectReply, IndexError> {
        let envelope = codec::encode(&DataQuery::Object(query));
        let bytes =
            self.router
                .read(group, envelope)
                .await
                .map_err(|e| IndexError::Unavailable {
                    group,
                    reason: e.to_string(),
                })?;
        decode_reply(group, &bytes)
    }

    async fn write(
        &self,
        group: GroupId,
        command: ObjectCommand,
    ) -> Result<ObjectReply, IndexError> {
        let envelope = codec::encode(&DataCommand::Object(Box::new(command)));
        let bytes =
            self.router
                .write(group, envelope)
                .await
                .map_err(|e| IndexError::Unavailable {
                    group,
                    reason: e.to_string(),
                })?;
        decode_reply(group, &bytes)
    }

    /// The entries of those of `blobs` something points to, from every data group.
    pub async fn find(&self, blobs: &[u128]) -> Result<HashMap<u128, BlobEntry>, IndexError> {
        let groups: Vec<GroupId> = self.directory.data_group_ids().collect();
        let mut found = HashMap::new();
        for chunk in blobs.chunks(MAX_BLOB_LOOKUP) {
            let asks = groups.iter().map(|&group| async move {
                let query = ObjectQuery::FindBlobs {
                    blobs: chunk.to_vec(),
                };
                (group, self.read(group, query).await)
            });
            for (group, reply) in futures::future::join_all(asks).await {
                match reply? {
                    ObjectReply::Blobs(page) if !page.index_complete => {
                        return Err(IndexError::Incomplete { group })
                    }
                    ObjectReply::Blobs(page) => {
                        for entry in page.entries {
                            found.entry(entry.blob).or_insert(entry);
                        }
                    }
                    other => return Err(unexpected(group, other)),
                }
            }
        }
        Ok(found)
    }

    /// One page of a group's blobs (all, or those with missing shards), after `after`.
    pub async fn list(
        &self,
        group: GroupId,
        damaged_only: bool,
        after: Option<u128>,
        limit: u32,
    ) -> Result<BlobPage, IndexError> {
        let query = ObjectQuery::ListBlobs {
            damaged_only,
            after,
            limit,
        };
        match self.read(group, query).await? {
            ObjectReply::Blobs(page) => Ok(page),
            other => Err(unexpected(group, other)),
        }
    }

    /// One step of a group's blob index backfill; `None` once the index is complete.
    pub async fn backfill_step(
        &self,
        group: GroupId,
        after: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, IndexError> {
        match self
            .write(group, ObjectCommand::IndexBlobs { after })
            .await?
        {
            ObjectReply::BlobsIndexed { next } => Ok(next),
            other => Err(unexpected(group, other)),
        }
    }

    /// Record shards `missing` of the entry's blob for repair. `Ok(false)`: the version
    /// no longer holds the blob, or the owner is an upload's part (not recorded).
    pub async fn mark_missing(
        &self,
        entry: &BlobEntry,
        missing: Vec<u8>,
    ) -> Result<bool, IndexError> {
        let BlobOwner::Version {
            bucket,
            key,
            version_id,
        } = &entry.owner
        else {
            return Ok(false);
        };
        let command = ObjectCommand::MarkShardsMissing {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: version_id.clone(),
            blob: entry.blob,
            missing,
        };
        self.shards_updated(self.group_of(&entry.owner), command)
            .await
    }

    /// Record that shard `index` of the entry's blob now lives on `node`, for each pair.
    /// `Ok(false)`: the version no longer holds the blob (what was written is garbage).
    pub async fn mark_repaired(
        &self,
        entry: &BlobEntry,
        repaired: Vec<(u8, NodeId)>,
    ) -> Result<bool, IndexError> {
        let BlobOwner::Version {
            bucket,
            key,
            version_id,
        } = &entry.owner
        else {
            return Ok(false);
        };
        let command = ObjectCommand::MarkShardsRepaired {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: version_id.clone(),
            blob: entry.blob,
            repaired,
        };
        self.shards_updated(self.group_of(&entry.owner), command)
            .await
    }

    fn group_of(&self, owner: &BlobOwner) -> GroupId {
        routing::group_for_bucket(owner.bucket().as_str(), self.directory.data_groups)
    }

    async fn shards_updated(
        &self,
        group: GroupId,
        command: ObjectCommand,
    ) -> Result<bool, IndexError> {
        match self.write(group, command).await? {
            ObjectReply::ShardsUpdated { updated } => Ok(updated),
            other => Err(unexpected(group, other)),
        }
    }
}

fn decode_reply(group: GroupId, bytes: &[u8]) -> Result<ObjectReply, IndexError> {
    let result: ObjectResult = codec::decode(bytes).map_err(|reason| IndexError::Refused {
        group,
        reason: format!("an undecodable reply: {reason}"),
    })?;
    result.map_err(|e| IndexError::Refused {
        group,
        reason: format!("{}: {e}", e.code()),
    })
}

fn unexpected(group: GroupId, reply: ObjectReply) -> IndexError {
    IndexError::Refused {
        group,
        reason: format!("an unexpected reply: {reply:?}"),
    }
}
