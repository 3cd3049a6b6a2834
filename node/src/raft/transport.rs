//! The receiving side of node-to-node gRPC: Raft messages for hosted groups, and proposals
//! or reads forwarded by other nodes to this node's leaders. Every message is checked for
//! cluster name and group before its payload is decoded; a bad message gets an
//! `InvalidArgument`/`NotFound` status and the node carries on.

use std::sync::Arc;
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use stratus_proto::raft::group_router_server::GroupRouter;
use stratus_proto::raft::raft_transport_server::RaftTransport;
use stratus_proto::raft::RaftMessage;
use tonic::{Request, Response, Status};

use super::host::{GroupHandle, GroupHost};
use super::router::RouteError;
use super::{codec, NodeId, Proposal, TypeConfig};

/// Longest a forwarded request may wait on this node.
const MAX_FORWARDED_WAIT: Duration = Duration::from_secs(30);

pub struct TransportService {
    host: Arc<GroupHost>,
}

impl TransportService {
    pub fn new(host: Arc<GroupHost>) -> Self {
        TransportService { host }
    }

    fn check_cluster(&self, msg: &RaftMessage) -> Result<(), Status> {
        let ours = self.host.peers().cluster();
        if msg.cluster != ours {
            return Err(Status::failed_precondition(format!(
                "message for cluster '{}' reached a node of cluster '{ours}'",
                msg.cluster
            )));
        }
        Ok(())
    }

    fn open(&self, req: Request<RaftMessage>) -> Result<(Arc<GroupHandle>, Vec<u8>), Status> {
        let msg = req.into_inner();
        self.check_cluster(&msg)?;
        let handle = self.host.group(msg.group_id).ok_or_else(|| {
            Status::not_found(format!(
                "group {} is not hosted on node {}",
                msg.group_id,
                self.host.node_id()
            ))
        })?;
        Ok((handle, msg.payload))
    }

    fn reply<T: serde::Serialize>(group: u64, value: &T) -> Response<RaftMessage> {
        Response::new(RaftMessage {
            cluster: String::new(),
            group_id: group,
            payload: codec::encode(value),
        })
    }
}

fn bad_payload(e: String) -> Status {
    Status::invalid_argument(e)
}

fn deadline_of<T>(req: &Request<T>) -> Duration {
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .unwrap_or(MAX_FORWARDED_WAIT)
        .min(MAX_FORWARDED_WAIT)
}

/// Parse gRPC's `grpc-timeout` header (`<digits><unit>`).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let (handle, payload) = self.open(req)?;
        let rpc: AppendEntriesRequest<TypeConfig> = codec::decode(&payload).map_err(bad_payload)?;
        let result = handle.raft.append_entries(rpc).await;
        Ok(Self::reply(handle.id, &result))
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let (handle, payload) = self.open(req)?;
        let rpc: VoteRequest<NodeId> = codec::decode(&payload).map_err(bad_payload)?;
        let result = handle.raft.vote(rpc).await;
        Ok(Self::reply(handle.id, &result))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let (handle, payload) = self.open(req)?;
        let rpc: InstallSnapshotRequest<TypeConfig> =
            codec::decode(&payload).map_err(bad_payload)?;
        let result = handle.raft.install_snapshot(rpc).await;
        Ok(Self::reply(handle.id, &result))
    }
}

#[tonic::async_trait]
impl GroupRouter for TransportService {
    async fn propose(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let wait = deadline_of(&req);
        let msg = req.into_inner();
        self.check_cluster(&msg)?;
        let proposal: Proposal = codec::decode(&msg.payload).map_err(bad_payload)?;
        let result: Result<Vec<u8>, RouteError> =
            self.host.propose_local(msg.group_id, proposal, wait).await;
        Ok(Self::reply(msg.group_id, &result))
    }

    async fn read(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let wait = deadline_of(&req);
        let msg = req.into_inner();
        self.check_cluster(&msg)?;
        let result: Result<Vec<u8>, RouteError> =
            self.host.read_local(msg.group_id, &msg.payload, wait).await;
        Ok(Self::reply(msg.group_id, &result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
