//! gRPC face of the volume catalog (`stratus.quorum.Volumes`): any node answers; the
//! catalog forwards to the meta group's leader (`quorum::catalog`).
//!
//! Every request names its cluster (another cluster's is FAILED_PRECONDITION). Errors:
//! a bad name or number INVALID_ARGUMENT, a name in use ALREADY_EXISTS, an unknown volume
//! NOT_FOUND, a command that does not fit the volume's state (stale epoch, a change under
//! way, no free node) FAILED_PRECONDITION, the volume limit RESOURCE_EXHAUSTED, no meta
//! leader reachable UNAVAILABLE (certainly not applied), and a write whose outcome is
//! unknown DEADLINE_EXCEEDED (as the KV service answers).

use std::sync::Arc;

use stratus_proto::quorum::volumes_server::{Volumes, VolumesServer};
use stratus_proto::quorum::*;
use tonic::{Request, Response, Status};

use crate::quorum::catalog::{CatalogError, VolumeCatalog};
use crate::quorum::catalog_state::{VolumeError, VolumeRecord};
use crate::quorum::repair::membership_to_wire;

pub struct VolumesApi {
    cluster: String,
    catalog: Arc<VolumeCatalog>,
}

impl VolumesApi {
    pub fn new(cluster: String, catalog: Arc<VolumeCatalog>) -> Self {
        VolumesApi { cluster, catalog }
    }

    pub fn into_server(self) -> VolumesServer<VolumesApi> {
        VolumesServer::new(self)
    }

    fn check_cluster(&self, cluster: &str) -> Result<(), Status> {
        if cluster != self.cluster {
            return Err(Status::failed_precondition(format!(
                "volume request for cluster '{cluster}' reached a node of cluster '{}'",
                self.cluster
            )));
        }
        Ok(())
    }

    fn info(&self, v: VolumeRecord) -> VolumeInfo {
        let directory = self.catalog.directory();
        VolumeInfo {
            name: v.name.to_string(),
            volume_id: v.volume_id,
            pg_count: v.pg_count,
            pages_per_pg: v.pages_per_pg,
            epoch: v.epoch,
            history: v
                .history
                .iter()
                .map(|t| Truncation {
                    epoch: t.epoch,
                    truncated_above: t.truncated_above,
                })
                .collect(),
            pgs: v
                .pgs
                .iter()
                .map(|pg| membership_to_wire(pg, directory))
                .collect(),
            created_ms: v.created_ms,
        }
    }
}

fn status(e: CatalogError) -> Status {
    match e {
        CatalogError::Volume(v) => match v {
            VolumeError::InvalidArgument(m) => Status::invalid_argument(m),
            VolumeError::AlreadyExists(m) => Status::already_exists(m),
            VolumeError::NotFound(m) => Status::not_found(m),
            VolumeError::FailedPrecondition(m) => Status::failed_precondition(m),
            VolumeError::LimitExceeded(m) => Status::resource_exhausted(m),
        },
        CatalogError::Unavailable(m) => Status::unavailable(m),
        CatalogError::OutcomeUnknown(m) => Status::deadline_exceeded(m),
        CatalogError::Internal(m) => Status::internal(m),
    }
}

#[tonic::async_trait]
impl Volumes for VolumesApi {
    async fn create_volume(
        &self,
        req: Request<CreateVolumeRequest>,
    ) -> Result<Response<VolumeInfo>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let v = self
            .catalog
            .create(&r.name, r.pg_count, r.pages_per_pg)
            .await
            .map_err(status)?;
        Ok(Response::new(self.info(v)))
    }

    async fn delete_volume(
        &self,
        req: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeReply>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        self.catalog.delete(&r.name).await.map_err(status)?;
        Ok(Response::new(DeleteVolumeReply {}))
    }

    async fn describe_volume(
        &self,
        req: Request<DescribeVolumeRequest>,
    ) -> Result<Response<VolumeInfo>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let v = self.catalog.describe(&r.name).await.map_err(status)?;
        Ok(Response::new(self.info(v)))
    }

    async fn list_volumes(
        &self,
        req: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesReply>, Status> {
        self.check_cluster(&req.into_inner().cluster)?;
        let volumes = self.catalog.list().await.map_err(status)?;
        Ok(Response::new(ListVolumesReply {
            volumes: volumes.into_iter().map(|v| self.info(v)).collect(),
        }))
    }

    async fn begin_recovery(
        &self,
        req: Request<BeginRecoveryRequest>,
    ) -> Result<Response<VolumeInfo>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let v = self.catalog.begin_recovery(&r.name).await.map_err(status)?;
        Ok(Response::new(self.info(v)))
    }

    async fn complete_recovery(
        &self,
        req: Request<CompleteRecoveryRequest>,
    ) -> Result<Response<VolumeInfo>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let v = self
            .catalog
            .complete_recovery(&r.name, r.epoch, r.truncated_above)
            .await
            .map_err(status)?;
        Ok(Response::new(self.info(v)))
    }

    async fn replace_segment(
        &self,
        req: Request<ReplaceSegmentRequest>,
    ) -> Result<Response<VolumeInfo>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let new_node = (r.new_node != 0).then_some(r.new_node);
        let v = self
            .catalog
            .replace_segment(&r.name, r.pg, r.slot, new_node)
            .await
            .map_err(status)?;
        Ok(Response::new(self.info(v)))
    }
}
