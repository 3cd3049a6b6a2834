//! Where a volume's segments go: six per protection group, two in each of three zones
//! (slots 0 and 1 in the first zone by name, 2 and 3 in the second, 4 and 5 in the third),
//! on six distinct nodes when the cluster has them, least-loaded node first (segments it
//! already holds, this volume's earlier PGs included), ties by node id. Same input, same
//! output; no I/O.
//!
//! A 6-node, 3-zone cluster therefore puts one segment of every PG on every node, and a
//! 9-node one spreads them evenly. A smaller cluster still gets a placement: a slot whose
//! zone has no node left for this PG takes a spare node of another zone, and when the
//! whole cluster has none, a node of its zone holds a second segment of the PG (a 1-node
//! dev cluster holds all six). With more than three zones, each PG uses the three zones
//! holding the fewest segments.
//!
//! Not here: whether a node is alive (the repair worker passes the nodes to avoid).

use std::collections::BTreeMap;

use super::catalog_state::{Members, VolumeRecord, SEGMENTS_PER_PG};
use crate::cluster::directory::NodeId;
use crate::cluster::NodeInfo;

/// Segments per node.
pub type SegmentLoad = BTreeMap<NodeId, u32>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("the cluster has no nodes to place segments on")]
    NoNodes,
}

/// Segments each node holds across `volumes` (a replacement's new segment included).
pub fn segment_load(volumes: &[VolumeRecord]) -> SegmentLoad {
    let mut load = SegmentLoad::new();
    for pg in volumes.iter().flat_map(|v| &v.pgs) {
        for node in pg.members {
            *load.entry(node).or_default() += 1;
        }
        if let Some((_, node)) = pg.replacement() {
            *load.entry(node).or_default() += 1;
        }
    }
    load
}

fn load_of(load: &SegmentLoad, node: NodeId) -> u32 {
    load.get(&node).copied().unwrap_or(0)
}

/// Place `pg_count` protection groups; `load` is what nodes hold already.
pub fn place_volume(
    nodes: &[NodeInfo],
    pg_count: u32,
    load: &SegmentLoad,
) -> Result<Vec<Members>, PlacementError> {
    if nodes.is_empty() {
        return Err(PlacementError::NoNodes);
    }
    let mut zones: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for n in nodes {
        zones.entry(n.zone.as_str()).or_default().push(n.id);
    }
    let mut load: SegmentLoad = nodes.iter().map(|n| (n.id, load_of(load, n.id))).collect();
    let mut out = Vec::with_capacity(pg_count as usize);
    for _ in 0..pg_count {
        let members = place_pg(&zones, &load);
        for node in members {
            *load.entry(node).or_default() += 1;
        }
        out.push(members);
    }
    Ok(out)
}

/// One PG over `zones` (non-empty, each with at least one node).
fn place_pg(zones: &BTreeMap<&str, Vec<NodeId>>, load: &SegmentLoad) -> Members {
    // The three zones holding the fewest segments, in name order.
    let mut by_load: Vec<(&str, u32)> = zones
        .iter()
        .map(|(z, ids)| (*z, ids.iter().map(|id| load_of(load, *id)).sum()))
        .collect();
    by_load.sort_by_key(|(z, l)| (*l, *z));
    let mut chosen: Vec<&str> = by_load.iter().take(3).map(|(z, _)| *z).collect();
    chosen.sort_unstable();

    let all: Vec<NodeId> = zones.values().flatten().copied().collect();
    let least = |candidates: &mut dyn Iterator<Item = NodeId>| {
        candidates.min_by_key(|id| (load_of(load, *id), *id))
    };
    let mut members: Members = [0; SEGMENTS_PER_PG];
    for slot in 0..SEGMENTS_PER_PG {
        let zone = &zones[chosen[(slot / 2) % chosen.len()]];
        let taken = &members[..slot];
        let free = |id: &NodeId| !taken.contains(id);
        // Doubling up: the zone's node holding the fewest slots of this PG.
        let doubled = zone.iter().copied().min_by_key(|id| {
            (
                taken.iter().filter(|t| *t == id).count(),
                load_of(load, *id),
                *id,
            )
        });
        members[slot] = least(&mut zone.iter().copied().filter(free))
            .or_else(|| least(&mut all.iter().copied().filter(free)))
            .or(doubled)
            .unwrap_or(zone[0]);
    }
    members
}

/// A node of `zone` for a replacement segment: not in `exclude` (the PG's nodes, nodes
/// known to be down), least loaded, ties by id. None when the zone has no such node.
pub fn choose_replacement(
    nodes: &[NodeInfo],
    zone: &str,
    exclude: &[NodeId],
    load: &SegmentLoad,
) -> Option<NodeId> {
    nodes
        .iter()
        .filter(|n| n.zone == zone && !exclude.contains(&n.id))
        .map(|n| n.id)
        .min_by_key(|id| (load_of(load, *id), *id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `n` nodes over `zones` zones, round robin: node 1 in az-a, 2 in az-b, ...
    fn cluster(n: u64, zones: u64) -> Vec<NodeInfo> {
        (1..=n)
            .map(|id| NodeInfo {
                id,
                zone: format!("az-{}", (b'a' + ((id - 1) % zones) as u8) as char),
                grpc_addr: format!("127.0.0.1:{}", 7000 + id),
                http_addr: String::new(),
            })
            .collect()
    }

    fn zone_of(nodes: &[NodeInfo], id: NodeId) -> String {
        nodes.iter().find(|n| n.id == id).unwrap().zone.clone()
    }

    fn distinct(m: &Members) -> usize {
        m.iter().collect::<BTreeSet<_>>().len()
    }

    fn count(placement: &[Members]) -> SegmentLoad {
        let mut load = SegmentLoad::new();
        for id in placement.iter().flatten() {
            *load.entry(*id).or_default() += 1;
        }
        load
    }

    #[test]
    fn six_nodes_in_three_zones_hold_one_segment_of_every_pg_each() {
        let nodes = cluster(6, 3);
        let placed = place_volume(&nodes, 8, &SegmentLoad::new()).unwrap();
        assert_eq!(placed.len(), 8);
        for m in &placed {
            assert_eq!(distinct(m), 6, "{m:?}");
            for (slot, id) in m.iter().enumerate() {
                let want = ["az-a", "az-b", "az-c"][slot / 2];
                assert_eq!(zone_of(&nodes, *id), want, "slot {slot} of {m:?}");
            }
        }
        assert_eq!(placed[0], [1, 4, 2, 5, 3, 6]);
        assert_eq!(
            placed,
            place_volume(&nodes, 8, &SegmentLoad::new()).unwrap()
        );
    }

    #[test]
    fn nine_nodes_are_balanced_within_and_across_volumes() {
        let nodes = cluster(9, 3);
        let first = place_volume(&nodes, 3, &SegmentLoad::new()).unwrap();
        let load = count(&first);
        assert_eq!(load.len(), 9);
        assert!(load.values().all(|n| *n == 2), "{load:?}");
        for m in &first {
            assert_eq!(distinct(m), 6);
        }
        // A second volume of one PG goes to the least loaded, then evenly again.
        let mut load = count(&first);
        load.insert(1, 5);
        let second = place_volume(&nodes, 1, &load).unwrap();
        assert!(!second[0].contains(&1), "{second:?}");
        let four = place_volume(&nodes, 4, &SegmentLoad::new()).unwrap();
        let spread = count(&four);
        let (lo, hi) = (
            spread.values().min().unwrap(),
            spread.values().max().unwrap(),
        );
        assert!(hi - lo <= 1, "{spread:?}");
    }

    #[test]
    fn one_node_holds_every_slot() {
        let placed = place_volume(&cluster(1, 1), 2, &SegmentLoad::new()).unwrap();
        assert_eq!(placed, vec![[1; 6]; 2]);
    }

    #[test]
    fn four_nodes_in_two_zones_use_every_node() {
        let nodes = cluster(4, 2);
        let placed = place_volume(&nodes, 2, &SegmentLoad::new()).unwrap();
        for m in &placed {
            assert_eq!(distinct(m), 4, "{m:?}");
            // Slots 0-1 in the first zone, 2-3 in the second, 4-5 wrap to the first.
            for slot in [0, 1, 4, 5] {
                assert_eq!(zone_of(&nodes, m[slot]), "az-a", "{m:?}");
            }
            for slot in [2, 3] {
                assert_eq!(zone_of(&nodes, m[slot]), "az-b", "{m:?}");
            }
        }
    }

    #[test]
    fn a_thin_zone_borrows_a_spare_node_of_another_zone() {
        // az-a has nodes 1, 4, 7, 8; az-b only 2; az-c only 3.
        let mut nodes = cluster(4, 3);
        nodes[3].zone = "az-a".into();
        nodes.push(NodeInfo {
            zone: "az-a".into(),
            ..nodes[0].clone()
        });
        nodes[4].id = 7;
        nodes.push(NodeInfo {
            zone: "az-a".into(),
            ..nodes[0].clone()
        });
        nodes[5].id = 8;
        let placed = place_volume(&nodes, 1, &SegmentLoad::new()).unwrap();
        assert_eq!(distinct(&placed[0]), 6, "{placed:?}");
    }

    #[test]
    fn more_than_three_zones_rotate_over_the_emptiest() {
        let nodes = cluster(8, 4);
        let placed = place_volume(&nodes, 4, &SegmentLoad::new()).unwrap();
        let load = count(&placed);
        assert_eq!(load.len(), 8, "every node used: {load:?}");
        assert!(place_volume(&[], 1, &SegmentLoad::new()).is_err());
    }

    #[test]
    fn replacements_stay_in_the_zone_and_avoid_the_pg() {
        let nodes = cluster(9, 3);
        // az-a: 1, 4, 7.
        let load = SegmentLoad::from([(7, 3), (4, 1)]);
        assert_eq!(choose_replacement(&nodes, "az-a", &[1], &load), Some(4));
        assert_eq!(choose_replacement(&nodes, "az-a", &[1, 4], &load), Some(7));
        assert_eq!(choose_replacement(&nodes, "az-a", &[1, 4, 7], &load), None);
        assert_eq!(
            choose_replacement(&cluster(6, 3), "az-a", &[1, 4], &load),
            None
        );
    }

    #[test]
    fn load_counts_a_replacement_once_and_the_old_segment_too() {
        use super::super::catalog_state::{PgRecord, VolumeName};
        let v = VolumeRecord {
            name: VolumeName::parse("v").unwrap(),
            volume_id: 1,
            pg_count: 1,
            pages_per_pg: 1,
            epoch: 0,
            history: vec![],
            pgs: vec![PgRecord {
                pg: 0,
                membership_epoch: 2,
                members: [1, 2, 3, 4, 5, 6],
                next_members: Some([1, 2, 3, 4, 5, 9]),
                transition_target_lsn: 0,
            }],
            created_ms: 0,
        };
        let load = segment_load(&[v]);
        assert_eq!(load.len(), 7);
        assert!(load.values().all(|n| *n == 1));
    }
}
