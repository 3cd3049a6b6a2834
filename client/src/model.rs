//! Domain types returned by the client, converted from the wire types at this edge so
//! callers never handle protobuf structs.

use serde::Serialize;
use stratus_proto::{cluster as pb_cluster, kv as pb_kv};

/// One entry of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Raft log index of the last write to the key in its group.
    pub version: u64,
}

/// The result of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the current value matched and was replaced.
    pub succeeded: bool,
    /// After success: the new value and its version (`None` after a delete). After a
    /// failure: the value that did not match (`None` when the key was absent).
    pub current: Option<(Vec<u8>, u64)>,
}

/// The whole cluster as seen from the node that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub cluster_name: String,
    /// Id of the node that answered.
    pub responder: u64,
    pub nodes: Vec<NodeStatus>,
    pub groups: Vec<GroupStatus>,
}

/// A member node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: u64,
    pub zone: String,
    pub grpc_addr: String,
    pub http_addr: String,
    /// Whether the answering node could reach it.
    pub up: bool,
}

/// A Raft group and its replication progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    pub id: u64,
    /// `meta` or `data`.
    pub kind: String,
    pub voters: Vec<u64>,
    /// The current leader's node id, if one is known.
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
}

impl From<pb_kv::KeyValue> for KeyValue {
    fn from(kv: pb_kv::KeyValue) -> Self {
        Self {
            key: kv.key,
            value: kv.value,
            version: kv.version,
        }
    }
}

impl From<pb_kv::CasResponse> for CasOutcome {
    fn from(response: pb_kv::CasResponse) -> Self {
        Self {
            succeeded: response.succeeded,
            current: response
                .found
                .then_some((response.current, response.version)),
        }
    }
}

impl From<pb_cluster::ClusterStatus> for ClusterStatus {
    fn from(status: pb_cluster::ClusterStatus) -> Self {
        Self {
            cluster_name: status.cluster_name,
            responder: status.responder,
            nodes: status.nodes.into_iter().map(NodeStatus::from).collect(),
            groups: status.groups.into_iter().map(GroupStatus::from).collect(),
        }
    }
}

impl From<pb_cluster::NodeStatus> for NodeStatus {
    fn from(node: pb_cluster::NodeStatus) -> Self {
        Self {
            id: node.id,
            zone: node.zone,
            grpc_addr: node.grpc_addr,
            http_addr: node.http_addr,
            up: node.up,
        }
    }
}

impl From<pb_cluster::GroupStatus> for GroupStatus {
    fn from(group: pb_cluster::GroupStatus) -> Self {
        Self {
            id: group.id,
            kind: group.kind,
            voters: group.voters,
            leader: (group.leader != 0).then_some(group.leader),
            term: group.term,
            last_log_index: group.last_log_index,
            applied_index: group.applied_index,
            snapshot_index: group.snapshot_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_outcome_keeps_the_current_value_only_when_found() {
        let failed = CasOutcome::from(pb_kv::CasResponse {
            succeeded: false,
            found: true,
            current: b"old".to_vec(),
            version: 7,
            ..Default::default()
        });
        assert_eq!(failed.current, Some((b"old".to_vec(), 7)));
        let deleted = CasOutcome::from(pb_kv::CasResponse {
            succeeded: true,
            found: false,
            current: Vec::new(),
            version: 0,
            ..Default::default()
        });
        assert_eq!(
            deleted,
            CasOutcome {
                succeeded: true,
                current: None
            }
        );
    }

    #[test]
    fn leader_zero_means_no_leader() {
        let group = GroupStatus::from(pb_cluster::GroupStatus {
            id: 3,
            kind: "data".into(),
            voters: vec![1, 2, 3],
            leader: 0,
            ..Default::default()
        });
        assert_eq!(group.leader, None);
        let group = GroupStatus::from(pb_cluster::GroupStatus {
            leader: 2,
            ..Default::default()
        });
        assert_eq!(group.leader, Some(2));
    }
}
