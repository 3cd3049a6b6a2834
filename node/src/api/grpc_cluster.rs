//! gRPC face of cluster status.

use std::sync::Arc;

use stratus_proto::cluster::cluster_server::Cluster;
use stratus_proto::cluster::{self as pb, StatusRequest};
use tonic::{Request, Response, Status};

use crate::cluster::Directory;
use crate::raft::host::GroupHost;
use crate::status::{cluster_view, local_report, GroupView};

pub struct ClusterApi {
    host: Arc<GroupHost>,
    directory: Arc<Directory>,
}

impl ClusterApi {
    pub fn new(host: Arc<GroupHost>, directory: Arc<Directory>) -> Self {
        ClusterApi { host, directory }
    }
}

pub fn group_to_proto(g: GroupView) -> pb::GroupStatus {
    pb::GroupStatus {
        id: g.id,
        kind: g.kind,
        voters: g.voters,
        leader: g.leader.unwrap_or(0),
        term: g.term,
        last_log_index: g.last_log_index,
        applied_index: g.applied_index,
        snapshot_index: g.snapshot_index,
    }
}

pub fn group_from_proto(g: pb::GroupStatus) -> GroupView {
    GroupView {
        id: g.id,
        kind: g.kind,
        voters: g.voters,
        leader: (g.leader != 0).then_some(g.leader),
        term: g.term,
        last_log_index: g.last_log_index,
        applied_index: g.applied_index,
        snapshot_index: g.snapshot_index,
    }
}

#[tonic::async_trait]
impl Cluster for ClusterApi {
    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<pb::ClusterStatus>, Status> {
        let view = cluster_view(&self.host, &self.directory).await;
        Ok(Response::new(pb::ClusterStatus {
            cluster_name: view.cluster_name,
            responder: view.responder,
            nodes: view
                .nodes
                .into_iter()
                .map(|n| pb::NodeStatus {
                    id: n.id,
                    zone: n.zone,
                    grpc_addr: n.grpc_addr,
                    http_addr: n.http_addr,
                    up: n.up,
                })
                .collect(),
            groups: view.groups.into_iter().map(group_to_proto).collect(),
        }))
    }

    async fn local_status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<pb::NodeReport>, Status> {
        let r = local_report(&self.host, &self.directory);
        Ok(Response::new(pb::NodeReport {
            id: r.id,
            zone: r.zone,
            cluster_name: r.cluster_name,
            groups: r.groups.into_iter().map(group_to_proto).collect(),
        }))
    }
}
