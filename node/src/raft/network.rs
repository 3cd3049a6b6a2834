//! The sending side of the Raft transport: one lazily connected gRPC channel per peer node,
//! shared by every group, and an openraft `RaftNetwork` per (group, target) on top of it.
//!
//! Failure mapping: a peer we cannot reach is `Unreachable` (openraft backs off); any other
//! transport failure is a `Network` error; an error the peer's Raft returned comes back as
//! `RemoteError`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stratus_proto::raft::group_router_client::GroupRouterClient;
use stratus_proto::raft::raft_transport_client::RaftTransportClient;
use stratus_proto::raft::RaftMessage;
use tonic::transport::{Channel, Endpoint};

use super::{codec, GroupId, NodeId, TypeConfig};
use crate::metrics::RpcMetrics;

/// gRPC channels to the other nodes, keyed by node id.
pub struct PeerChannels {
    cluster: String,
    addrs: HashMap<NodeId, String>,
    channels: Mutex<HashMap<NodeId, Channel>>,
    pub metrics: Arc<RpcMetrics>,
}

impl PeerChannels {
    pub fn new(cluster: String, addrs: HashMap<NodeId, String>, metrics: Arc<RpcMetrics>) -> Self {
        PeerChannels {
            cluster,
            addrs,
            channels: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The channel to `node`, created on first use (connection happens lazily).
    pub fn channel(&self, node: NodeId) -> Result<Channel, tonic::Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(&node) {
            return Ok(ch.clone());
        }
        let addr = self.addrs.get(&node).ok_or_else(|| {
            tonic::Status::not_found(format!("node {node} is not a member of this cluster"))
        })?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| {
                tonic::Status::invalid_argument(format!("bad address {addr} for node {node}: {e}"))
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5));
        let ch = endpoint.connect_lazy();
        channels.insert(node, ch.clone());
        Ok(ch)
    }

    pub fn raft_client(&self, node: NodeId) -> Result<RaftTransportClient<Channel>, tonic::Status> {
        Ok(RaftTransportClient::new(self.channel(node)?)
            .max_decoding_message_size(codec::MAX_MESSAGE_BYTES as usize)
            .max_encoding_message_size(codec::MAX_MESSAGE_BYTES as usize))
    }

    pub fn router_client(&self, node: NodeId) -> Result<GroupRouterClient<Channel>, tonic::Status> {
        Ok(GroupRouterClient::new(self.channel(node)?)
            .max_decoding_message_size(codec::MAX_MESSAGE_BYTES as usize)
            .max_encoding_message_size(codec::MAX_MESSAGE_BYTES as usize))
    }

    pub fn message<T: Serialize>(
        &self,
        group: GroupId,
        payload: &T,
        timeout: Duration,
    ) -> tonic::Request<RaftMessage> {
        let mut req = tonic::Request::new(RaftMessage {
            cluster: self.cluster.clone(),
            group_id: group,
            payload: codec::encode(payload),
        });
        req.set_timeout(timeout);
        req
    }
}

/// Whether a gRPC failure means the peer could not be reached at all.
pub fn is_unreachable(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
}

/// Whether a request certainly never reached the peer: the connection could not be made.
/// (A reset after connecting, or a timeout, may have delivered it.)
pub fn never_sent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

pub struct NetworkFactory {
    pub group: GroupId,
    pub peers: Arc<PeerChannels>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = GroupNetwork;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        GroupNetwork {
            group: self.group,
            target,
            peers: self.peers.clone(),
        }
    }
}

pub struct GroupNetwork {
    group: GroupId,
    target: NodeId,
    peers: Arc<PeerChannels>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl GroupNetwork {
    // The error type is openraft's, fixed by the `RaftNetwork` trait.
    #[allow(clippy::result_large_err)]
    fn decode_reply<T, E>(
        &self,
        reply: Result<tonic::Response<RaftMessage>, tonic::Status>,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        match reply {
            Ok(msg) => match codec::decode::<Result<T, E>>(&msg.into_inner().payload) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(remote)) => {
                    Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
                }
                Err(e) => Err(RPCError::Network(NetworkError::new(
                    &std::io::Error::other(e),
                ))),
            },
            Err(status) if is_unreachable(&status) => {
                Err(RPCError::Unreachable(Unreachable::new(&status)))
            }
            Err(status) => Err(RPCError::Network(NetworkError::new(&status))),
        }
    }

    fn record<T, E: std::error::Error>(
        &self,
        rpc: &'static str,
        started: Instant,
        result: &RpcResult<T, E>,
    ) {
        self.peers
            .metrics
            .record(self.group, rpc, result.is_ok(), started.elapsed());
    }
}

impl RaftNetwork<TypeConfig> for GroupNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        let started = Instant::now();
        let req = self.peers.message(self.group, &rpc, option.hard_ttl());
        let reply = match self.peers.raft_client(self.target) {
            Ok(mut client) => client.append_entries(req).await,
            Err(status) => Err(status),
        };
        let result = self.decode_reply(reply);
        self.record("append_entries", started, &result);
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let started = Instant::now();
        let req = self.peers.message(self.group, &rpc, option.hard_ttl());
        let reply = match self.peers.raft_client(self.target) {
            Ok(mut client) => client.install_snapshot(req).await,
            Err(status) => Err(status),
        };
        let result = self.decode_reply(reply);
        self.record("install_snapshot", started, &result);
        result
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        let started = Instant::now();
        let req = self.peers.message(self.group, &rpc, option.hard_ttl());
        let reply = match self.peers.raft_client(self.target) {
            Ok(mut client) => client.vote(req).await,
            Err(status) => Err(status),
        };
        let result = self.decode_reply(reply);
        self.record("vote", started, &result);
        result
    }
}
