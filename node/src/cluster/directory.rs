//! The group directory: every group's kind and voters, built from the node list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::placement::{place_groups, PlacementError};
use super::{routing, META_GROUP, REPLICAS};

pub type NodeId = u64;
pub type GroupId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub zone: String,
    /// Address peers and clients dial for gRPC.
    pub grpc_addr: String,
    /// Address of the HTTP edge (S3/SQS/... and /_stratus).
    pub http_addr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    Meta,
    Data,
}

impl GroupKind {
    pub fn label(self) -> &'static str {
        match self {
            GroupKind::Meta => "meta",
            GroupKind::Data => "data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlacement {
    pub id: GroupId,
    pub kind: GroupKind,
    /// Voters in distinct zones where possible; the first is the preferred leader.
    pub voters: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub cluster_name: String,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub groups: BTreeMap<GroupId, GroupPlacement>,
    pub data_groups: u64,
}

impl Directory {
    pub fn build(
        cluster_name: &str,
        nodes: Vec<NodeInfo>,
        data_groups: u64,
    ) -> Result<Self, PlacementError> {
        let groups = place_groups(&nodes, data_groups, REPLICAS)?;
        Ok(Directory {
            cluster_name: cluster_name.to_string(),
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            groups: groups.into_iter().map(|g| (g.id, g)).collect(),
            data_groups,
        })
    }

    pub fn voters(&self, group: GroupId) -> Option<&[NodeId]> {
        self.groups.get(&group).map(|g| g.voters.as_slice())
    }

    /// The data group that owns `key`.
    pub fn group_for_key(&self, key: &[u8]) -> GroupId {
        routing::data_group_for_key(key, self.data_groups)
    }

    pub fn data_group_ids(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups
            .values()
            .filter(|g| g.kind == GroupKind::Data)
            .map(|g| g.id)
    }

    /// Groups with a voter on `node`.
    pub fn groups_of(&self, node: NodeId) -> impl Iterator<Item = &GroupPlacement> + '_ {
        self.groups
            .values()
            .filter(move |g| g.voters.contains(&node))
    }

    pub fn meta(&self) -> Option<&GroupPlacement> {
        self.groups.get(&META_GROUP)
    }
}
