//! Deterministic placement of Raft groups onto nodes.
//!
//! Each group gets `replicas` voters in distinct zones (when the cluster has that many
//! zones), replicas are balanced across nodes, and preferred leaders (the first voter) are
//! balanced too, so no node carries more than its share of leadership. Same input, same
//! output, on every node.

use std::collections::{BTreeMap, BTreeSet};

use super::directory::{GroupKind, GroupPlacement, NodeId, NodeInfo};
use super::META_GROUP;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    #[error("the cluster has no nodes")]
    NoNodes,
    #[error("node id {0} appears more than once")]
    DuplicateNode(NodeId),
    #[error("node id 0 is reserved; number nodes from 1")]
    ZeroNodeId,
    #[error("data_groups must be between 1 and 1024, got {0}")]
    DataGroups(u64),
}

pub fn place_groups(
    nodes: &[NodeInfo],
    data_groups: u64,
    replicas: usize,
) -> Result<Vec<GroupPlacement>, PlacementError> {
    if nodes.is_empty() {
        return Err(PlacementError::NoNodes);
    }
    if !(1..=1024).contains(&data_groups) {
        return Err(PlacementError::DataGroups(data_groups));
    }
    let mut seen = BTreeSet::new();
    for n in nodes {
        if n.id == 0 {
            return Err(PlacementError::ZeroNodeId);
        }
        if !seen.insert(n.id) {
            return Err(PlacementError::DuplicateNode(n.id));
        }
    }
    let mut zones: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for n in nodes {
        zones.entry(n.zone.as_str()).or_default().push(n.id);
    }
    for ids in zones.values_mut() {
        ids.sort_unstable();
    }
    let zone_names: Vec<&str> = zones.keys().copied().collect();
    let replicas = replicas.min(nodes.len());

    let mut load: BTreeMap<NodeId, usize> = nodes.iter().map(|n| (n.id, 0)).collect();
    let mut leads: BTreeMap<NodeId, usize> = nodes.iter().map(|n| (n.id, 0)).collect();
    let mut out = Vec::new();
    for gid in std::iter::once(META_GROUP).chain(1..=data_groups) {
        let mut voters: Vec<NodeId> = Vec::with_capacity(replicas);
        // Rotate the starting zone per group; wrap around when there are fewer zones.
        let mut z = gid as usize % zone_names.len();
        while voters.len() < replicas {
            let in_zone = &zones[zone_names[z % zone_names.len()]];
            let pick = in_zone
                .iter()
                .filter(|id| !voters.contains(id))
                .min_by_key(|id| (load[*id], **id));
            if let Some(id) = pick {
                voters.push(*id);
                *load.get_mut(id).expect("every node has a load entry") += 1;
            }
            z += 1;
        }
        // Preferred leader: the voter leading fewest groups so far (meta leadership is not
        // counted, so data leaders spread evenly).
        let leader_pos = (0..voters.len())
            .min_by_key(|i| (leads[&voters[*i]], voters[*i]))
            .unwrap_or(0);
        voters.swap(0, leader_pos);
        let kind = if gid == META_GROUP {
            GroupKind::Meta
        } else {
            GroupKind::Data
        };
        if kind == GroupKind::Data {
            *leads.get_mut(&voters[0]).expect("leader is a node") += 1;
        }
        out.push(GroupPlacement {
            id: gid,
            kind,
            voters,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(nodes: usize, zones: usize) -> Vec<NodeInfo> {
        (1..=nodes as u64)
            .map(|id| NodeInfo {
                id,
                zone: format!("az-{}", (b'a' + ((id - 1) as usize % zones) as u8) as char),
                grpc_addr: format!("127.0.0.1:{}", 7000 + id),
                http_addr: format!("127.0.0.1:{}", 4566 + id),
            })
            .collect()
    }

    fn zone_of(nodes: &[NodeInfo], id: NodeId) -> &str {
        &nodes.iter().find(|n| n.id == id).unwrap().zone
    }

    #[test]
    fn every_group_gets_three_distinct_zones() {
        for (n, groups) in [(3, 1), (6, 6), (6, 12), (9, 8), (7, 5)] {
            let nodes = cluster(n, 3);
            let placed = place_groups(&nodes, groups, 3).unwrap();
            assert_eq!(placed.len() as u64, groups + 1);
            for g in &placed {
                let zones: BTreeSet<_> = g.voters.iter().map(|id| zone_of(&nodes, *id)).collect();
                assert_eq!(zones.len(), 3, "group {} on {:?}", g.id, g.voters);
            }
        }
    }

    #[test]
    fn replicas_and_leaders_are_balanced() {
        let nodes = cluster(6, 3);
        let placed = place_groups(&nodes, 6, 3).unwrap();
        let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut leads: BTreeMap<NodeId, usize> = BTreeMap::new();
        for g in placed.iter().filter(|g| g.kind == GroupKind::Data) {
            for v in &g.voters {
                *load.entry(*v).or_default() += 1;
            }
            *leads.entry(g.voters[0]).or_default() += 1;
        }
        let (lo, hi) = (load.values().min().unwrap(), load.values().max().unwrap());
        assert!(hi - lo <= 1, "replica load {load:?}");
        assert_eq!(leads.len(), 6, "every node leads one data group: {leads:?}");
    }

    #[test]
    fn placement_is_deterministic_and_uses_every_node_once_per_group() {
        let nodes = cluster(6, 3);
        let a = place_groups(&nodes, 8, 3).unwrap();
        let b = place_groups(&nodes, 8, 3).unwrap();
        assert_eq!(a, b);
        for g in &a {
            let distinct: BTreeSet<_> = g.voters.iter().collect();
            assert_eq!(distinct.len(), g.voters.len());
        }
    }

    #[test]
    fn small_clusters_place_what_they_can() {
        let one = place_groups(&cluster(1, 1), 2, 3).unwrap();
        assert!(one.iter().all(|g| g.voters == vec![1]));
        let two_zones = place_groups(&cluster(4, 2), 2, 3).unwrap();
        assert!(two_zones.iter().all(|g| g.voters.len() == 3));
    }

    #[test]
    fn bad_node_lists_are_errors() {
        assert_eq!(place_groups(&[], 1, 3), Err(PlacementError::NoNodes));
        let mut dup = cluster(3, 3);
        dup[2].id = 1;
        assert_eq!(
            place_groups(&dup, 1, 3),
            Err(PlacementError::DuplicateNode(1))
        );
        assert_eq!(
            place_groups(&cluster(3, 3), 0, 3),
            Err(PlacementError::DataGroups(0))
        );
    }
}
