//! The multi-group host: every Raft group this node is a voter of, by group id.
//!
//! Starting a group opens its log store and state machine over the shared RocksDB and
//! creates its openraft instance; the designated node (the preferred leader) initializes a
//! brand-new group with its voters. Proposals and linearizable reads on this node's own
//! replicas go through here; forwarding to other nodes is the router's job.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics};

use super::log_store::GroupLogStore;
use super::network::{NetworkFactory, PeerChannels};
use super::router::RouteError;
use super::state_machine::GroupStateMachine;
use super::{GroupId, NodeId, Proposal, Raft, ServiceState};
use crate::store::{GroupStateReader, NodeStore};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("group {group}: raft failed to start: {reason}")]
    Start { group: GroupId, reason: String },
    #[error("group {group} is already running on this node")]
    Duplicate { group: GroupId },
}

pub struct GroupHandle {
    pub id: GroupId,
    pub kind: &'static str,
    pub voters: Vec<NodeId>,
    pub raft: Raft,
    service: Arc<dyn ServiceState>,
}

impl GroupHandle {
    pub fn metrics(&self) -> RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }
}

pub struct GroupHost {
    node_id: NodeId,
    store: NodeStore,
    peers: Arc<PeerChannels>,
    config: Arc<openraft::Config>,
    groups: RwLock<BTreeMap<GroupId, Arc<GroupHandle>>>,
}

/// What a new group is started with.
pub struct GroupSpec {
    pub id: GroupId,
    pub kind: &'static str,
    pub voters: Vec<NodeId>,
    pub service: Arc<dyn ServiceState>,
    /// Initialize the group's membership if it has never been initialized (done by one
    /// designated voter of a new cluster).
    pub initialize: bool,
}

impl GroupHost {
    pub fn new(
        node_id: NodeId,
        store: NodeStore,
        peers: Arc<PeerChannels>,
        config: openraft::Config,
    ) -> Self {
        GroupHost {
            node_id,
            store,
            peers,
            config: Arc::new(config),
            groups: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    pub fn peers(&self) -> &Arc<PeerChannels> {
        &self.peers
    }

    pub async fn start_group(
        &self,
        spec: GroupSpec,
        addrs: &BTreeMap<NodeId, String>,
    ) -> Result<(), HostError> {
        if self.group(spec.id).is_some() {
            return Err(HostError::Duplicate { group: spec.id });
        }
        let log_store = GroupLogStore::new(self.store.clone(), spec.id);
        let state_machine =
            GroupStateMachine::new(self.store.clone(), spec.id, spec.service.clone());
        let network = NetworkFactory {
            group: spec.id,
            peers: self.peers.clone(),
        };
        let raft = Raft::new(
            self.node_id,
            self.config.clone(),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| HostError::Start {
            group: spec.id,
            reason: e.to_string(),
        })?;
        // A restarted group already has its membership in its log; asking openraft to
        // initialize it again is refused and logged as an error, so ask only when empty.
        let initialized = raft.is_initialized().await.map_err(|e| HostError::Start {
            group: spec.id,
            reason: format!("is_initialized: {e}"),
        })?;
        if spec.initialize && !initialized {
            let members: BTreeMap<NodeId, BasicNode> = spec
                .voters
                .iter()
                .map(|id| {
                    (
                        *id,
                        BasicNode::new(addrs.get(id).cloned().unwrap_or_default()),
                    )
                })
                .collect();
            match raft.initialize(members).await {
                Ok(()) => {
                    tracing::info!(group = spec.id, voters = ?spec.voters, "initialized group")
                }
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    return Err(HostError::Start {
                        group: spec.id,
                        reason: format!("initialize: {e}"),
                    })
                }
            }
        }
        let handle = Arc::new(GroupHandle {
            id: spec.id,
            kind: spec.kind,
            voters: spec.voters,
            raft,
            service: spec.service,
        });
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.id, handle);
        Ok(())
    }

    pub fn group(&self, id: GroupId) -> Option<Arc<GroupHandle>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn groups(&self) -> Vec<Arc<GroupHandle>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn hosted(&self, group: GroupId) -> Result<Arc<GroupHandle>, RouteError> {
        self.group(group).ok_or(RouteError::NotHosted {
            node: self.node_id,
            group,
        })
    }

    /// The leader this node currently believes in for a group it hosts.
    pub fn known_leader(&self, group: GroupId) -> Option<NodeId> {
        self.group(group)
            .and_then(|g| g.raft.metrics().borrow().current_leader)
    }

    /// Propose on this node's replica; succeeds only if it is the leader.
    pub async fn propose_local(
        &self,
        group: GroupId,
        proposal: Proposal,
        timeout: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        let handle = self.hosted(group)?;
        match tokio::time::timeout(timeout, handle.raft.client_write(proposal)).await {
            Ok(Ok(resp)) => Ok(resp.data.0),
            // Rejected before appending, or its entry was truncated: certainly not applied.
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(RouteError::NotLeader {
                    group,
                    leader: f.leader_id,
                })
            }
            Ok(Err(e)) => Err(RouteError::OutcomeUnknown(format!("group {group}: {e}"))),
            Err(_) => Err(RouteError::OutcomeUnknown(format!(
                "group {group}: not committed within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// A linearizable read on this node: confirm leadership with a quorum (read index), wait
    /// until that index is applied, then answer from local state.
    pub async fn read_local(
        &self,
        group: GroupId,
        query: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        let handle = self.hosted(group)?;
        match tokio::time::timeout(timeout, handle.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => {}
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                return Err(RouteError::NotLeader {
                    group,
                    leader: f.leader_id,
                })
            }
            Ok(Err(e)) => {
                return Err(RouteError::Unavailable {
                    group,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(RouteError::Unavailable {
                    group,
                    reason: format!("read index not confirmed within {} ms", timeout.as_millis()),
                })
            }
        }
        let reader = GroupStateReader::new(&self.store, group);
        handle
            .service
            .read(&reader, query)
            .map_err(|e| RouteError::Unavailable {
                group,
                reason: format!("local state: {e}"),
            })
    }

    /// Voters of each hosted group, as the group's applied membership says.
    pub fn membership_voters(&self, group: GroupId) -> BTreeSet<NodeId> {
        self.group(group)
            .map(|g| {
                g.raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn shutdown(&self) {
        let groups = std::mem::take(&mut *self.groups.write().unwrap_or_else(|p| p.into_inner()));
        for (id, handle) in groups {
            if let Err(e) = handle.raft.shutdown().await {
                tracing::warn!(group = id, "raft shutdown: {e}");
            }
        }
    }
}
