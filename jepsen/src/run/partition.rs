//! Network partitions as data: which nodes may not talk to which. Pure functions choose
//! them (from a seeded RNG and, for some kinds, the current leader or a zone); targets
//! only apply the result.
//!
//! Guarantees for every [`Partition`]: the cut is symmetric (if a cannot reach b, b cannot
//! reach a), no node is cut from itself, and every node belongs to exactly one side
//! except a bridge's middle node, which belongs to both and is cut from nobody.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::run::target::{zone_of, NodeId};

/// How the nodes are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// Two random halves (3 | 3 of 6): neither side has a majority of every group.
    Halves,
    /// A random minority (1 or 2 nodes) against the rest.
    MajorityMinority,
    /// The current leader of a data group alone against everybody else.
    IsolateLeader,
    /// Both nodes of one zone against the other zones.
    IsolateZone,
    /// Two sides that cannot talk to each other, and one node in the middle that talks to
    /// both (Jepsen's bridge): majorities overlap only in that node.
    Bridge,
}

impl PartitionKind {
    pub const ALL: [PartitionKind; 5] = [
        PartitionKind::Halves,
        PartitionKind::MajorityMinority,
        PartitionKind::IsolateLeader,
        PartitionKind::IsolateZone,
        PartitionKind::Bridge,
    ];

    /// The fault name recorded in the history.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::Halves => "partition-halves",
            PartitionKind::MajorityMinority => "partition-majority-minority",
            PartitionKind::IsolateLeader => "partition-leader",
            PartitionKind::IsolateZone => "partition-zone",
            PartitionKind::Bridge => "partition-bridge",
        }
    }
}

/// A split of the cluster's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub kind: PartitionKind,
    /// The sides, as the report shows them (a bridge's middle node is in both).
    pub sides: Vec<Vec<NodeId>>,
    /// For every node, the nodes it cannot exchange packets with.
    pub cut: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl Partition {
    /// Complete cuts between every pair of `sides` (each node in exactly one side).
    pub fn between(kind: PartitionKind, sides: Vec<Vec<NodeId>>) -> Partition {
        let mut cut: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (i, side) in sides.iter().enumerate() {
            for (j, other) in sides.iter().enumerate() {
                if i == j {
                    continue;
                }
                for a in side {
                    cut.entry(*a).or_default().extend(other.iter().copied());
                }
            }
        }
        let mut sides = sides;
        for side in &mut sides {
            side.sort_unstable();
        }
        Partition { kind, sides, cut }
    }

    /// The nodes that lose at least one peer.
    pub fn affected(&self) -> Vec<NodeId> {
        self.cut
            .iter()
            .filter(|(_, peers)| !peers.is_empty())
            .map(|(node, _)| *node)
            .collect()
    }

    /// The peers `node` cannot reach.
    pub fn cut_from(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.cut.get(&node).into_iter().flatten().copied()
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sides: Vec<String> = self.sides.iter().map(|s| format!("{s:?}")).collect();
        write!(f, "{}", sides.join(" | "))
    }
}

fn shuffled(nodes: &[NodeId], rng: &mut impl Rng) -> Vec<NodeId> {
    let mut nodes = nodes.to_vec();
    nodes.shuffle(rng);
    nodes
}

/// Two random halves (the larger one gets the odd node out).
pub fn halves(nodes: &[NodeId], rng: &mut impl Rng) -> Partition {
    let nodes = shuffled(nodes, rng);
    let (a, b) = nodes.split_at(nodes.len() / 2);
    Partition::between(PartitionKind::Halves, vec![a.to_vec(), b.to_vec()])
}

/// A random minority of one or two nodes (never half or more) against the rest.
pub fn majority_minority(nodes: &[NodeId], rng: &mut impl Rng) -> Partition {
    let nodes = shuffled(nodes, rng);
    let largest_minority = (nodes.len().saturating_sub(1) / 2).clamp(1, 2);
    let size = rng.gen_range(1..=largest_minority);
    let (minority, majority) = nodes.split_at(size);
    Partition::between(
        PartitionKind::MajorityMinority,
        vec![minority.to_vec(), majority.to_vec()],
    )
}

/// `leader` alone against every other node.
pub fn isolate(nodes: &[NodeId], leader: NodeId) -> Partition {
    let rest = nodes.iter().copied().filter(|n| *n != leader).collect();
    Partition::between(PartitionKind::IsolateLeader, vec![vec![leader], rest])
}

/// Every node of `zone` against the nodes of the other zones.
pub fn isolate_zone(nodes: &[NodeId], zone: &str) -> Partition {
    let (inside, outside): (Vec<NodeId>, Vec<NodeId>) =
        nodes.iter().copied().partition(|n| zone_of(*n) == zone);
    Partition::between(PartitionKind::IsolateZone, vec![inside, outside])
}

/// Two halves of the others that cannot talk, and one random node that talks to both.
pub fn bridge(nodes: &[NodeId], rng: &mut impl Rng) -> Partition {
    let nodes = shuffled(nodes, rng);
    let Some((&middle, rest)) = nodes.split_first() else {
        return Partition::between(PartitionKind::Bridge, Vec::new());
    };
    let (a, b) = rest.split_at(rest.len() / 2);
    let mut partition = Partition::between(PartitionKind::Bridge, vec![a.to_vec(), b.to_vec()]);
    partition.cut.insert(middle, BTreeSet::new());
    for side in &mut partition.sides {
        side.push(middle);
        side.sort_unstable();
    }
    partition
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const NODES: [NodeId; 6] = [1, 2, 3, 4, 5, 6];

    fn assert_well_formed(p: &Partition) {
        for (node, peers) in &p.cut {
            assert!(!peers.contains(node), "{p:?}: {node} cut from itself");
            for peer in peers {
                assert!(
                    p.cut.get(peer).is_some_and(|back| back.contains(node)),
                    "{p:?}: cut {node}-{peer} is one-way"
                );
            }
        }
    }

    fn reachable(p: &Partition, a: NodeId, b: NodeId) -> bool {
        !p.cut_from(a).any(|n| n == b)
    }

    #[test]
    fn halves_split_three_and_three_completely() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20 {
            let p = halves(&NODES, &mut rng);
            assert_well_formed(&p);
            assert_eq!(p.sides.len(), 2);
            assert_eq!((p.sides[0].len(), p.sides[1].len()), (3, 3));
            for a in &p.sides[0] {
                assert_eq!(p.cut_from(*a).collect::<Vec<_>>(), p.sides[1]);
            }
        }
    }

    #[test]
    fn minority_is_one_or_two_nodes() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut sizes = BTreeSet::new();
        for _ in 0..50 {
            let p = majority_minority(&NODES, &mut rng);
            assert_well_formed(&p);
            sizes.insert(p.sides[0].len());
            assert_eq!(p.sides[0].len() + p.sides[1].len(), 6);
        }
        assert_eq!(sizes, BTreeSet::from([1, 2]));
    }

    #[test]
    fn isolated_leader_reaches_nobody() {
        let p = isolate(&NODES, 4);
        assert_well_formed(&p);
        assert_eq!(p.cut_from(4).collect::<Vec<_>>(), vec![1, 2, 3, 5, 6]);
        assert!(reachable(&p, 1, 2));
        assert_eq!(p.to_string(), "[4] | [1, 2, 3, 5, 6]");
    }

    #[test]
    fn zone_isolation_cuts_both_nodes_of_the_zone() {
        let p = isolate_zone(&NODES, "az-b");
        assert_well_formed(&p);
        assert_eq!(p.sides, vec![vec![2, 5], vec![1, 3, 4, 6]]);
        assert!(reachable(&p, 2, 5));
        assert!(!reachable(&p, 2, 1));
        assert_eq!(p.affected(), NODES.to_vec());
    }

    #[test]
    fn bridge_node_talks_to_both_sides_which_do_not_talk() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            let p = bridge(&NODES, &mut rng);
            assert_well_formed(&p);
            let common: Vec<NodeId> = p.sides[0]
                .iter()
                .filter(|n| p.sides[1].contains(n))
                .copied()
                .collect();
            assert_eq!(common.len(), 1, "{p:?}");
            let middle = common[0];
            assert_eq!(p.cut_from(middle).count(), 0);
            for a in p.sides[0].iter().filter(|n| **n != middle) {
                for b in p.sides[1].iter().filter(|n| **n != middle) {
                    assert!(!reachable(&p, *a, *b));
                }
            }
            assert_eq!(p.affected().len(), 5);
        }
    }
}
