//! What the cluster looks like from one node: its own groups (from openraft's metrics) and,
//! by asking every peer for theirs, the whole cluster. Serves `stratus cluster status`,
//! `/_stratus/health` and the Raft gauges of `/_stratus/metrics`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use stratus_proto::cluster::cluster_client::ClusterClient;
use stratus_proto::cluster::StatusRequest;

use crate::cluster::Directory;
use crate::raft::host::GroupHost;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    pub id: u64,
    pub kind: String,
    pub voters: Vec<u64>,
    /// None when no leader is known.
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub id: u64,
    pub zone: String,
    pub cluster_name: String,
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub id: u64,
    pub zone: String,
    pub grpc_addr: String,
    pub http_addr: String,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub cluster_name: String,
    pub responder: u64,
    /// "ok": every node up and every group led; "degraded": some node down, every group
    /// led; "unavailable": some group has no leader.
    pub status: &'static str,
    pub nodes: Vec<NodeView>,
    pub groups: Vec<GroupView>,
}

pub fn local_report(host: &GroupHost, directory: &Directory) -> NodeReport {
    let zone = directory
        .nodes
        .get(&host.node_id())
        .map(|n| n.zone.clone())
        .unwrap_or_default();
    let groups = host
        .groups()
        .iter()
        .map(|g| {
            let m = g.metrics();
            GroupView {
                id: g.id,
                kind: g.kind.to_string(),
                voters: m.membership_config.membership().voter_ids().collect(),
                leader: m.current_leader,
                term: m.current_term,
                last_log_index: m.last_log_index.unwrap_or(0),
                applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
                snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            }
        })
        .collect();
    NodeReport {
        id: host.node_id(),
        zone,
        cluster_name: directory.cluster_name.clone(),
        groups,
    }
}

/// Ask every node for its report (this one answers locally) and merge them.
pub async fn cluster_view(host: &Arc<GroupHost>, directory: &Directory) -> ClusterView {
    let me = host.node_id();
    let asks = directory.nodes.values().map(|n| {
        let host = host.clone();
        let id = n.id;
        async move {
            if id == me {
                return Some(local_report(&host, directory));
            }
            let channel = host.peers().channel(id).ok()?;
            let mut req = tonic::Request::new(StatusRequest {});
            req.set_timeout(Duration::from_millis(1000));
            let reply = ClusterClient::new(channel)
                .local_status(req)
                .await
                .ok()?
                .into_inner();
            Some(NodeReport {
                id: reply.id,
                zone: reply.zone,
                cluster_name: reply.cluster_name,
                groups: reply
                    .groups
                    .into_iter()
                    .map(crate::api::grpc_cluster::group_from_proto)
                    .collect(),
            })
        }
    });
    let reports: Vec<Option<NodeReport>> = futures::future::join_all(asks).await;
    merge(me, directory, reports)
}

fn merge(me: u64, directory: &Directory, reports: Vec<Option<NodeReport>>) -> ClusterView {
    let nodes: Vec<NodeView> = directory
        .nodes
        .values()
        .zip(reports.iter())
        .map(|(n, r)| NodeView {
            id: n.id,
            zone: n.zone.clone(),
            grpc_addr: n.grpc_addr.clone(),
            http_addr: n.http_addr.clone(),
            up: r.is_some(),
        })
        .collect();
    let groups: Vec<GroupView> = directory
        .groups
        .values()
        .map(|placement| {
            // The freshest view of the group: a live leader's own report if there is one,
            // else the member report with the highest term.
            let views = reports.iter().flatten().flat_map(|r| {
                r.groups
                    .iter()
                    .filter(|g| g.id == placement.id)
                    .map(move |g| (r.id, g))
            });
            let best = views
                .max_by_key(|(reporter, g)| (g.leader == Some(*reporter), g.term, g.applied_index));
            match best {
                // A leader that did not answer is not leading anything we can reach: a
                // follower keeps naming a dead leader until its election timeout fires.
                Some((_, g)) => {
                    let mut g = g.clone();
                    let leader_up = g
                        .leader
                        .is_some_and(|l| reports.iter().flatten().any(|r| r.id == l));
                    if !leader_up {
                        g.leader = None;
                    }
                    g
                }
                None => GroupView {
                    id: placement.id,
                    kind: placement.kind.label().to_string(),
                    voters: placement.voters.clone(),
                    leader: None,
                    term: 0,
                    last_log_index: 0,
                    applied_index: 0,
                    snapshot_index: 0,
                },
            }
        })
        .collect();
    let status = if groups.iter().any(|g| g.leader.is_none()) {
        "unavailable"
    } else if nodes.iter().any(|n| !n.up) {
        "degraded"
    } else {
        "ok"
    };
    ClusterView {
        cluster_name: directory.cluster_name.clone(),
        responder: me,
        status,
        nodes,
        groups,
    }
}

/// Prometheus gauges for this node's groups.
pub fn render_raft_metrics(host: &GroupHost, out: &mut String) {
    let node = host.node_id();
    let gauges: [(&str, &str); 7] = [
        (
            "stratus_raft_term",
            "Current Raft term of the group on this node.",
        ),
        (
            "stratus_raft_last_log_index",
            "Last log index on this node.",
        ),
        (
            "stratus_raft_applied_index",
            "Last log index applied to the state machine.",
        ),
        (
            "stratus_raft_apply_lag",
            "Log entries appended but not yet applied.",
        ),
        (
            "stratus_raft_snapshot_index",
            "Last log index covered by this node's snapshot.",
        ),
        (
            "stratus_raft_is_leader",
            "1 when this node leads the group.",
        ),
        (
            "stratus_raft_follower_matched_index",
            "On the leader: the last index each follower matched.",
        ),
    ];
    let groups = host.groups();
    let metrics: Vec<_> = groups.iter().map(|g| (g.id, g.metrics())).collect();
    for (name, help) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (group, m) in &metrics {
            let last = m.last_log_index.unwrap_or(0);
            let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
            let value = match name {
                "stratus_raft_term" => m.current_term,
                "stratus_raft_last_log_index" => last,
                "stratus_raft_applied_index" => applied,
                "stratus_raft_apply_lag" => last.saturating_sub(applied),
                "stratus_raft_snapshot_index" => m.snapshot.map(|l| l.index).unwrap_or(0),
                "stratus_raft_is_leader" => u64::from(m.current_leader == Some(node)),
                _ => {
                    if let Some(replication) = &m.replication {
                        for (follower, matched) in replication.iter() {
                            let idx = matched.map(|l| l.index).unwrap_or(0);
                            let _ = writeln!(
                                out,
                                "{name}{{node=\"{node}\",group=\"{group}\",follower=\"{follower}\"}} {idx}"
                            );
                        }
                    }
                    continue;
                }
            };
            let _ = writeln!(out, "{name}{{node=\"{node}\",group=\"{group}\"}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeInfo;

    fn directory() -> Directory {
        let nodes = (1..=3)
            .map(|id| NodeInfo {
                id,
                zone: format!("az-{id}"),
                grpc_addr: format!("h:{id}"),
                http_addr: format!("h:{id}"),
            })
            .collect();
        Directory::build("c", nodes, 1).unwrap()
    }

    fn view(id: u64, leader: Option<u64>, term: u64) -> GroupView {
        GroupView {
            id,
            kind: "data".into(),
            voters: vec![1, 2, 3],
            leader,
            term,
            last_log_index: 5,
            applied_index: 5,
            snapshot_index: 0,
        }
    }

    fn report(node: u64, groups: Vec<GroupView>) -> Option<NodeReport> {
        Some(NodeReport {
            id: node,
            zone: String::new(),
            cluster_name: "c".into(),
            groups,
        })
    }

    #[test]
    fn merge_prefers_the_leaders_own_view_and_flags_down_nodes() {
        let d = directory();
        let reports = vec![
            report(1, vec![view(0, Some(1), 3), view(1, Some(2), 2)]),
            report(2, vec![view(0, Some(1), 3), view(1, Some(2), 3)]),
            None,
        ];
        let v = merge(1, &d, reports);
        assert_eq!(v.status, "degraded");
        assert!(!v.nodes[2].up);
        let g1 = v.groups.iter().find(|g| g.id == 1).unwrap();
        assert_eq!((g1.leader, g1.term), (Some(2), 3));
    }

    #[test]
    fn a_leader_that_did_not_answer_leads_nothing() {
        let d = directory();
        // Node 3 led group 1 and died; nodes 1 and 2 still name it until they elect anew.
        let reports = vec![
            report(1, vec![view(0, Some(1), 3), view(1, Some(3), 4)]),
            report(2, vec![view(0, Some(1), 3), view(1, Some(3), 4)]),
            None,
        ];
        let v = merge(1, &d, reports);
        let g1 = v.groups.iter().find(|g| g.id == 1).unwrap();
        assert_eq!(g1.leader, None);
        assert_eq!(v.status, "unavailable");
    }

    #[test]
    fn a_group_nobody_reports_is_unavailable() {
        let d = directory();
        let v = merge(
            1,
            &d,
            vec![report(1, vec![view(0, Some(1), 1)]), None, None],
        );
        assert_eq!(v.status, "unavailable");
        assert_eq!(v.groups.iter().find(|g| g.id == 1).unwrap().leader, None);
    }
}
