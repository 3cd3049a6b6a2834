//! The volume catalog as the client sees it: a typed wrapper over the `Volumes` gRPC
//! service, returning domain types.
//!
//! Any node answers catalog calls (it forwards to the meta group's leader), so a call moves
//! on to the next endpoint when one is unreachable or answers `UNAVAILABLE`, until the call
//! deadline (the retry policy of [`crate::retry`]). The catalog is consulted when a writer
//! opens a volume and when a membership changes, never on the write path.
//!
//! [`CatalogService`] is the seam the writer depends on, so unit tests run it against an
//! in-memory catalog.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use stratus_proto::cluster::{cluster_client::ClusterClient, StatusRequest};
use stratus_proto::quorum as pb;
use stratus_proto::quorum::volumes_client::VolumesClient;
use tonic::transport::Channel;
use tonic::Status;

use super::{Epoch, Lsn, QuorumError};
use crate::retry::OpKind;
use crate::{Client, ClientConfig, Error as ClientError};

/// A volume as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub volume_id: u64,
    pub pg_count: u32,
    pub pages_per_pg: u32,
    /// The newest epoch handed out (0: never opened).
    pub epoch: Epoch,
    /// One entry per completed recovery, in epoch order.
    pub history: Vec<Truncation>,
    pub pgs: Vec<PgMembership>,
    pub created_ms: u64,
}

/// A completed recovery: records of older epochs above `truncated_above` are void.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    pub epoch: Epoch,
    pub truncated_above: Lsn,
}

/// A protection group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgMembership {
    pub pg: u32,
    pub membership_epoch: u64,
    /// Six members, slot i at index i.
    pub members: Vec<SegmentPlace>,
    /// During a replacement: the new six (writes need 4 of each set).
    pub next_members: Vec<SegmentPlace>,
}

/// Where one segment lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentPlace {
    pub slot: u32,
    pub node_id: u64,
    pub zone: String,
    /// `host:port` of the node's gRPC service.
    pub grpc_addr: String,
}

/// What to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolumeSpec {
    /// Protection groups (0: the default, 4).
    pub pg_count: u32,
    /// Pages per PG (0: the default, 256).
    pub pages_per_pg: u32,
}

impl Volume {
    /// The membership of `pg`, if the catalog listed it.
    pub fn pg(&self, pg: u32) -> Option<&PgMembership> {
        self.pgs.iter().find(|m| m.pg == pg)
    }
}

impl PgMembership {
    /// Every distinct segment a writer sends to: the members, then new members not
    /// already among them.
    pub fn all_places(&self) -> Vec<SegmentPlace> {
        let mut places = self.members.clone();
        for next in &self.next_members {
            if !places.contains(next) {
                places.push(next.clone());
            }
        }
        places
    }
}

/// The catalog calls the writer and reader make (gRPC in production, in memory in tests).
#[async_trait]
pub trait CatalogService: Send + Sync {
    async fn describe(&self, name: &str) -> Result<Volume, QuorumError>;
    async fn begin_recovery(&self, name: &str) -> Result<Volume, QuorumError>;
    async fn complete_recovery(
        &self,
        name: &str,
        epoch: Epoch,
        truncated_above: Lsn,
    ) -> Result<Volume, QuorumError>;
    /// The cluster name every segment request must carry.
    fn cluster_name(&self) -> &str;
}

/// The `Volumes` service of a cluster, over any of its nodes (through a [`Client`], so
/// calls move between endpoints exactly as its own do).
#[derive(Debug, Clone)]
pub struct VolumeCatalog {
    client: Client,
    cluster: Arc<str>,
}

impl VolumeCatalog {
    /// Connects to the cluster and learns its name (from the first node that answers).
    pub async fn connect(config: ClientConfig) -> Result<Self, QuorumError> {
        let client = Client::with_config(config).await?;
        let report = client
            .call(OpKind::Read, |channel| async move {
                Ok(ClusterClient::new(channel)
                    .local_status(StatusRequest {})
                    .await?
                    .into_inner())
            })
            .await?;
        Ok(VolumeCatalog {
            client,
            cluster: report.cluster_name.into(),
        })
    }

    /// The configuration this catalog client runs with.
    pub fn config(&self) -> &ClientConfig {
        self.client.config()
    }

    pub async fn create(&self, name: &str, spec: VolumeSpec) -> Result<Volume, QuorumError> {
        let request = pb::CreateVolumeRequest {
            cluster: self.cluster.to_string(),
            name: name.to_string(),
            pg_count: spec.pg_count,
            pages_per_pg: spec.pages_per_pg,
        };
        self.volume_call(name, OpKind::Write, move |mut c| {
            let request = request.clone();
            async move { c.create_volume(request).await }
        })
        .await
    }

    /// The volume, creating it with `spec` when it does not exist yet.
    pub async fn ensure(&self, name: &str, spec: VolumeSpec) -> Result<Volume, QuorumError> {
        match self.describe(name).await {
            Err(QuorumError::VolumeNotFound(_)) => match self.create(name, spec).await {
                Err(QuorumError::VolumeExists(_)) => self.describe(name).await,
                other => other,
            },
            other => other,
        }
    }

    pub async fn list(&self) -> Result<Vec<Volume>, QuorumError> {
        let request = pb::ListVolumesRequest {
            cluster: self.cluster.to_string(),
        };
        let reply = self
            .client
            .call(OpKind::Read, |channel| {
                let request = request.clone();
                async move {
                    Ok(VolumesClient::new(channel)
                        .list_volumes(request)
                        .await?
                        .into_inner())
                }
            })
            .await
            .map_err(|e| map_error(e, ""))?;
        Ok(reply.volumes.into_iter().map(Volume::from).collect())
    }

    pub async fn delete(&self, name: &str) -> Result<(), QuorumError> {
        let request = pb::DeleteVolumeRequest {
            cluster: self.cluster.to_string(),
            name: name.to_string(),
        };
        self.client
            .call(OpKind::Write, |channel| {
                let request = request.clone();
                async move {
                    Ok(VolumesClient::new(channel)
                        .delete_volume(request)
                        .await?
                        .into_inner())
                }
            })
            .await
            .map_err(|e| map_error(e, name))?;
        Ok(())
    }

    async fn volume_call<F, Fut>(
        &self,
        name: &str,
        kind: OpKind,
        attempt: F,
    ) -> Result<Volume, QuorumError>
    where
        F: Fn(VolumesClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<pb::VolumeInfo>, Status>>,
    {
        self.client
            .call(kind, |channel| {
                let fut = attempt(VolumesClient::new(channel));
                async move { Ok(fut.await?.into_inner()) }
            })
            .await
            .map(Volume::from)
            .map_err(|e| map_error(e, name))
    }
}

#[async_trait]
impl CatalogService for VolumeCatalog {
    async fn describe(&self, name: &str) -> Result<Volume, QuorumError> {
        let request = pb::DescribeVolumeRequest {
            cluster: self.cluster.to_string(),
            name: name.to_string(),
        };
        self.volume_call(name, OpKind::Read, move |mut c| {
            let request = request.clone();
            async move { c.describe_volume(request).await }
        })
        .await
    }

    async fn begin_recovery(&self, name: &str) -> Result<Volume, QuorumError> {
        let request = pb::BeginRecoveryRequest {
            cluster: self.cluster.to_string(),
            name: name.to_string(),
        };
        // Retried like a read: an epoch handed out to nobody is harmless.
        self.volume_call(name, OpKind::Read, move |mut c| {
            let request = request.clone();
            async move { c.begin_recovery(request).await }
        })
        .await
    }

    async fn complete_recovery(
        &self,
        name: &str,
        epoch: Epoch,
        truncated_above: Lsn,
    ) -> Result<Volume, QuorumError> {
        let request = pb::CompleteRecoveryRequest {
            cluster: self.cluster.to_string(),
            name: name.to_string(),
            epoch,
            truncated_above,
        };
        let result = self
            .volume_call(name, OpKind::Write, move |mut c| {
                let request = request.clone();
                async move { c.complete_recovery(request).await }
            })
            .await;
        match result {
            Err(QuorumError::Client(ClientError::Server { code, message }))
                if code == "FAILED_PRECONDITION" =>
            {
                // A newer writer began, or the entry exists already: look at which.
                let volume = self.describe(name).await?;
                if volume
                    .history
                    .iter()
                    .any(|t| t.epoch == epoch && t.truncated_above == truncated_above)
                {
                    Ok(volume)
                } else if volume.epoch > epoch {
                    Err(QuorumError::Fenced {
                        epoch,
                        newer_epoch: volume.epoch,
                        outcome_unknown: false,
                    })
                } else {
                    Err(QuorumError::Client(ClientError::Server { code, message }))
                }
            }
            other => other,
        }
    }

    fn cluster_name(&self) -> &str {
        &self.cluster
    }
}

fn map_error(error: ClientError, name: &str) -> QuorumError {
    match error {
        ClientError::NotFound(_) => QuorumError::VolumeNotFound(name.to_string()),
        ClientError::InvalidArgument(m) => QuorumError::InvalidArgument(m),
        ClientError::Server { code, .. } if code == "ALREADY_EXISTS" => {
            QuorumError::VolumeExists(name.to_string())
        }
        other => QuorumError::Client(other),
    }
}

impl From<pb::VolumeInfo> for Volume {
    fn from(v: pb::VolumeInfo) -> Self {
        Volume {
            name: v.name,
            volume_id: v.volume_id,
            pg_count: v.pg_count,
            pages_per_pg: v.pages_per_pg,
            epoch: v.epoch,
            history: v.history.into_iter().map(Truncation::from).collect(),
            pgs: v.pgs.into_iter().map(PgMembership::from).collect(),
            created_ms: v.created_ms,
        }
    }
}

impl From<pb::Truncation> for Truncation {
    fn from(t: pb::Truncation) -> Self {
        Truncation {
            epoch: t.epoch,
            truncated_above: t.truncated_above,
        }
    }
}

impl From<Truncation> for pb::Truncation {
    fn from(t: Truncation) -> Self {
        pb::Truncation {
            epoch: t.epoch,
            truncated_above: t.truncated_above,
        }
    }
}

impl From<pb::PgMembership> for PgMembership {
    fn from(m: pb::PgMembership) -> Self {
        PgMembership {
            pg: m.pg,
            membership_epoch: m.membership_epoch,
            members: m.members.into_iter().map(SegmentPlace::from).collect(),
            next_members: m.next_members.into_iter().map(SegmentPlace::from).collect(),
        }
    }
}

impl From<&PgMembership> for pb::PgMembership {
    fn from(m: &PgMembership) -> Self {
        pb::PgMembership {
            pg: m.pg,
            membership_epoch: m.membership_epoch,
            members: m.members.iter().map(pb::SegmentPlace::from).collect(),
            next_members: m.next_members.iter().map(pb::SegmentPlace::from).collect(),
        }
    }
}

impl From<pb::SegmentPlace> for SegmentPlace {
    fn from(p: pb::SegmentPlace) -> Self {
        SegmentPlace {
            slot: p.slot,
            node_id: p.node_id,
            zone: p.zone,
            grpc_addr: p.grpc_addr,
        }
    }
}

impl From<&SegmentPlace> for pb::SegmentPlace {
    fn from(p: &SegmentPlace) -> Self {
        pb::SegmentPlace {
            slot: p.slot,
            node_id: p.node_id,
            zone: p.zone.clone(),
            grpc_addr: p.grpc_addr.clone(),
        }
    }
}
