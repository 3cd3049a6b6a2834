//! The volume catalog service: volumes, placement, epochs and membership changes over the
//! meta group (`catalog_state`), reached through the router from any node, wire-agnostic.
//!
//! Reads are linearizable reads of the meta group (the router's read-index check), so a
//! writer that opens a volume never sees an epoch or membership older than one already
//! acknowledged. Writes are one Raft command each; the proposer adds what the apply cannot
//! know: the placement of a new volume (from the directory and the segments nodes already
//! hold, read linearizably just before) and, for a replacement, the node chosen and the
//! LSN the new segment must reach (the highest VDL the old members have been told, asked
//! of them directly). Two creates racing may both see the same load and place alike; the
//! placement is then merely less balanced, never wrong.
//!
//! Not here: talking to segments beyond that one status probe (`repair`), or any data.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::catalog_state::{
    check_geometry, VolumeCatalogCommand, VolumeCatalogQuery, VolumeCatalogReply, VolumeError,
    VolumeId, VolumeName, VolumeRecord, SEGMENTS_PER_PG,
};
use super::placement::{choose_replacement, place_volume, segment_load};
use super::repair::{highest_known_vdl, probe_all, SegmentPeers};
use crate::cluster::directory::NodeId;
use crate::cluster::{Directory, NodeInfo, META_GROUP};
use crate::meta::{MetaCommand, MetaQuery, MetaReply};
use crate::raft::codec;
use crate::raft::router::{RouteError, Router};

/// A failure of a catalog request: the catalog's answer, or the cluster's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// Surely not applied: the request may be sent again.
    #[error("the volume catalog is unavailable: {0}")]
    Unavailable(String),
    /// May or may not have been applied.
    #[error("{0}")]
    OutcomeUnknown(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RouteError> for CatalogError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::UnknownGroup(_) => CatalogError::Internal(e.to_string()),
            RouteError::OutcomeUnknown(_) => CatalogError::OutcomeUnknown(e.to_string()),
            _ => CatalogError::Unavailable(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, CatalogError>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn unexpected(what: impl std::fmt::Debug) -> CatalogError {
    CatalogError::Internal(format!("unexpected volume catalog reply: {what:?}"))
}

pub struct VolumeCatalog {
    router: Arc<Router>,
    directory: Arc<Directory>,
    peers: Arc<dyn SegmentPeers>,
}

impl VolumeCatalog {
    pub fn new(
        router: Arc<Router>,
        directory: Arc<Directory>,
        peers: Arc<dyn SegmentPeers>,
    ) -> Self {
        VolumeCatalog {
            router,
            directory,
            peers,
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    fn nodes(&self) -> Vec<NodeInfo> {
        self.directory.nodes.values().cloned().collect()
    }

    async fn write(&self, command: VolumeCatalogCommand) -> Result<VolumeCatalogReply> {
        let bytes = self
            .router
            .write(
                META_GROUP,
                codec::encode(&MetaCommand::VolumeCatalog(command)),
            )
            .await?;
        match codec::decode::<MetaReply>(&bytes).map_err(CatalogError::Internal)? {
            MetaReply::VolumeCatalog(result) => Ok(result?),
            other => Err(unexpected(other)),
        }
    }

    async fn read(&self, query: VolumeCatalogQuery) -> Result<VolumeCatalogReply> {
        let bytes = self
            .router
            .read(META_GROUP, codec::encode(&MetaQuery::VolumeCatalog(query)))
            .await?;
        match codec::decode::<MetaReply>(&bytes).map_err(CatalogError::Internal)? {
            MetaReply::VolumeCatalog(result) => Ok(result?),
            other => Err(unexpected(other)),
        }
    }

    async fn write_volume(&self, command: VolumeCatalogCommand) -> Result<VolumeRecord> {
        match self.write(command).await? {
            VolumeCatalogReply::Volume(v) => Ok(*v),
            other => Err(unexpected(other)),
        }
    }

    pub async fn create(
        &self,
        name: &str,
        pg_count: u32,
        pages_per_pg: u32,
    ) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        let (pg_count, pages_per_pg) = check_geometry(pg_count, pages_per_pg)?;
        let load = segment_load(&self.list().await?);
        let placement = place_volume(&self.nodes(), pg_count, &load)
            .map_err(|e| CatalogError::Internal(e.to_string()))?;
        self.write_volume(VolumeCatalogCommand::Create {
            name,
            pg_count,
            pages_per_pg,
            placement,
            created_ms: now_ms(),
        })
        .await
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let name = VolumeName::parse(name)?;
        match self.write(VolumeCatalogCommand::Delete { name }).await? {
            VolumeCatalogReply::Deleted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn describe(&self, name: &str) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        match self.read(VolumeCatalogQuery::Get { name }).await? {
            VolumeCatalogReply::Volume(v) => Ok(*v),
            other => Err(unexpected(other)),
        }
    }

    /// Every volume, in name order.
    pub async fn list(&self) -> Result<Vec<VolumeRecord>> {
        match self.read(VolumeCatalogQuery::List).await? {
            VolumeCatalogReply::Volumes(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    pub async fn begin_recovery(&self, name: &str) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        self.write_volume(VolumeCatalogCommand::BeginRecovery { name })
            .await
    }

    pub async fn complete_recovery(
        &self,
        name: &str,
        epoch: u64,
        truncated_above: u64,
    ) -> Result<VolumeRecord> {
        let name = VolumeName::parse(name)?;
        self.write_volume(VolumeCatalogCommand::CompleteRecovery {
            name,
            epoch,
            truncated_above,
        })
        .await
    }

    /// Start replacing the segment in `slot` of `pg`: on `new_node`, or (None) on the
    /// least-loaded node of the old node's zone holding no segment of the PG. The new
    /// segment must reach the highest VDL the PG's members answer with before the change
    /// can end.
    pub async fn replace_segment(
        &self,
        name: &str,
        pg: u32,
        slot: u32,
        new_node: Option<NodeId>,
    ) -> Result<VolumeRecord> {
        let volume = self.describe(name).await?;
        let record = volume.pg(pg)?;
        if slot as usize >= SEGMENTS_PER_PG {
            return Err(VolumeError::InvalidArgument(format!(
                "slot must be 0 to {}, got {slot}",
                SEGMENTS_PER_PG - 1
            ))
            .into());
        }
        if record.in_transition() {
            return Err(VolumeError::FailedPrecondition(format!(
                "PG {pg} of volume '{}' is already changing membership (epoch {})",
                volume.name, record.membership_epoch
            ))
            .into());
        }
        let old = record.members[slot as usize];
        let new_node = match new_node {
            Some(node) => {
                if !self.directory.nodes.contains_key(&node) {
                    return Err(VolumeError::InvalidArgument(format!(
                        "node {node} is not a node of this cluster"
                    ))
                    .into());
                }
                node
            }
            None => {
                let zone = self
                    .directory
                    .nodes
                    .get(&old)
                    .map(|n| n.zone.clone())
                    .unwrap_or_default();
                let load = segment_load(&self.list().await?);
                choose_replacement(&self.nodes(), &zone, &record.nodes(), &load).ok_or_else(
                    || {
                        VolumeError::FailedPrecondition(format!(
                            "no node of zone '{zone}' is free to take slot {slot} of PG {pg} of \
                             volume '{}': every node of the zone already holds a segment of \
                             this PG (name a node of another zone with new_node)",
                            volume.name
                        ))
                    },
                )?
            }
        };
        let members: Vec<(u32, NodeId)> = record
            .members
            .iter()
            .enumerate()
            .map(|(s, n)| (s as u32, *n))
            .collect();
        let observed = probe_all(&*self.peers, volume.volume_id, pg, &members).await;
        let target_lsn = highest_known_vdl(record, &observed);
        self.start_replace(
            &volume.name,
            Some(volume.volume_id),
            pg,
            slot,
            new_node,
            target_lsn,
        )
        .await
    }

    pub(crate) async fn start_replace(
        &self,
        name: &VolumeName,
        volume_id: Option<VolumeId>,
        pg: u32,
        slot: u32,
        new_node: NodeId,
        target_lsn: u64,
    ) -> Result<VolumeRecord> {
        self.write_volume(VolumeCatalogCommand::ReplaceSegment {
            name: name.clone(),
            volume_id,
            pg,
            slot,
            new_node,
            target_lsn,
        })
        .await
    }

    pub(crate) async fn finish_replace(
        &self,
        name: &VolumeName,
        volume_id: VolumeId,
        pg: u32,
        membership_epoch: u64,
    ) -> Result<VolumeRecord> {
        self.write_volume(VolumeCatalogCommand::FinishReplace {
            name: name.clone(),
            volume_id: Some(volume_id),
            pg,
            membership_epoch,
        })
        .await
    }
}
