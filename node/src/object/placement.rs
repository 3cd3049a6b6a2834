//! Where the shards of one blob go: a pure function of the cluster's nodes and zones, the
//! object's storage class and the blob id (ARCHITECTURE.md §4).
//!
//! Storage classes map to a [`Scheme`] (shard counts and how they spread):
//!
//! | class | scheme |
//! | --- | --- |
//! | STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, REDUCED_REDUNDANCY | 4+2 across zones |
//! | ONEZONE_IA | 4+2 in one zone |
//! | GLACIER, DEEP_ARCHIVE | refused (`InvalidStorageClass`) until restore exists |
//!
//! Archive classes are refused rather than stored like STANDARD: S3 clients expect a
//! GLACIER object to need a restore before GET, and answering a GET for it as if it were
//! STANDARD would be a silent lie about cost and behaviour.
//!
//! Across zones: zones are taken in name order and shard `i` goes to zone `(r + i) % Z`
//! (`r` from the blob id), so with 3 zones shards `i` and `i + 3` share a zone: 2 per zone,
//! and losing a whole zone costs exactly 2 shards, which 4+2 survives. With more zones the
//! shards spread further (never more than 2 in a zone); with 2 zones or 1 the layout still
//! works but cannot survive a zone. Within a zone, consecutive shards go to consecutive
//! nodes (in id order) from a start chosen by the blob id, so they land on distinct nodes
//! while the zone has enough of them. In one zone (ONEZONE_IA) the zone is chosen by the
//! blob id and the shards walk its nodes the same way.
//!
//! Same input, same output, on every node: the blob id is the only source of spread, and
//! it is random per blob, so load evens out over many blobs. Placement knows nothing of
//! which nodes are up: a shard aimed at a down node is simply recorded as missing by the
//! write path and rebuilt by repair.

use std::collections::{BTreeMap, BTreeSet};

use super::erasure::ErasureLayout;
use super::model::{ObjectError, StorageClass};
use crate::cluster::directory::{Directory, NodeId};

/// How a storage class lays out its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub data_shards: u8,
    pub parity_shards: u8,
    pub spread: Spread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Round-robin over the zones (2 per zone over 3 zones for 4+2).
    AcrossZones,
    /// Every shard in one zone, chosen by the blob id.
    OneZone,
}

impl Scheme {
    pub fn total_shards(&self) -> usize {
        usize::from(self.data_shards) + usize::from(self.parity_shards)
    }
}

/// The scheme of a storage class, or `InvalidStorageClass` for one that is not served.
pub fn scheme_for(class: StorageClass) -> Result<Scheme, ObjectError> {
    let four_two = |spread| Scheme {
        data_shards: 4,
        parity_shards: 2,
        spread,
    };
    match class {
        StorageClass::Standard
        | StorageClass::StandardIa
        | StorageClass::IntelligentTiering
        | StorageClass::GlacierIr
        | StorageClass::ReducedRedundancy => Ok(four_two(Spread::AcrossZones)),
        StorageClass::OnezoneIa => Ok(four_two(Spread::OneZone)),
        StorageClass::Glacier | StorageClass::DeepArchive => {
            Err(ObjectError::InvalidStorageClass(format!(
                "{} is not supported yet (archive classes need restore, which Stratus does not have)",
                class.as_str()
            )))
        }
    }
}

/// Where the shards of one blob go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    pub blob: u128,
    pub layout: ErasureLayout,
    /// `nodes[i]` holds shard `i`.
    pub nodes: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Class(#[from] ObjectError),
    #[error("the cluster has no nodes to hold shards")]
    NoNodes,
    #[error("invalid erasure layout: {0}")]
    Layout(String),
}

/// The plan for a new blob of `class` in `directory`'s cluster, with stripes of
/// `stripe_bytes` (rounded down to a multiple of the data shards).
///
/// Nodes in `down` get no shards: a zone with no live node loses its turn and its shards
/// go to the live zones (the write stays fully durable; repair restores the spread).
pub fn plan(
    directory: &Directory,
    class: StorageClass,
    blob: u128,
    stripe_bytes: u32,
    down: &BTreeSet<NodeId>,
) -> Result<ShardPlan, PlanError> {
    let scheme = scheme_for(class)?;
    let k = u32::from(scheme.data_shards);
    let stripe_bytes = (stripe_bytes / k).max(1) * k;
    let layout = ErasureLayout::new(scheme.data_shards, scheme.parity_shards, stripe_bytes)
        .map_err(|e| PlanError::Layout(e.to_string()))?;
    let nodes = place(
        directory
            .nodes
            .values()
            .filter(|n| !down.contains(&n.id))
            .map(|n| (n.id, n.zone.as_str())),
        &scheme,
        blob,
    )
    .ok_or(PlanError::NoNodes)?;
    Ok(ShardPlan {
        blob,
        layout,
        nodes,
    })
}

/// Choose a node for each of `scheme`'s shards; `None` when there are no nodes.
pub fn place<'a>(
    nodes: impl IntoIterator<Item = (NodeId, &'a str)>,
    scheme: &Scheme,
    blob: u128,
) -> Option<Vec<NodeId>> {
    let mut zones: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for (id, zone) in nodes {
        zones.entry(zone).or_default().push(id);
    }
    for ids in zones.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    let zones: Vec<&Vec<NodeId>> = zones.values().collect();
    if zones.is_empty() {
        return None;
    }
    let total = scheme.total_shards();
    let seed = mix(blob);
    let zone_count = zones.len();
    // Shard -> zone index.
    let zone_of: Vec<usize> = match scheme.spread {
        Spread::AcrossZones => {
            let rotation = (seed % zone_count as u64) as usize;
            (0..total).map(|i| (rotation + i) % zone_count).collect()
        }
        Spread::OneZone => {
            let zone = (seed % zone_count as u64) as usize;
            vec![zone; total]
        }
    };
    // Walk each zone's nodes from a start of its own, one node per shard placed there.
    let mut taken = vec![0usize; zone_count];
    let mut out = Vec::with_capacity(total);
    for zone in zone_of {
        let ids = zones[zone];
        let start = (mix_with(seed, zone as u64) % ids.len() as u64) as usize;
        out.push(ids[(start + taken[zone]) % ids.len()]);
        taken[zone] += 1;
    }
    Some(out)
}

/// SplitMix64 finalizer over both halves of the blob id: spread even from ids that are
/// not random (tests, sequential ids).
fn mix(blob: u128) -> u64 {
    mix_with(blob as u64, (blob >> 64) as u64)
}

fn mix_with(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// `per_zone[z]` nodes in zone `z`, numbered from 1.
    fn cluster(per_zone: &[usize]) -> Vec<(NodeId, String)> {
        let mut id = 0;
        let mut out = Vec::new();
        for (z, count) in per_zone.iter().enumerate() {
            for _ in 0..*count {
                id += 1;
                out.push((id, format!("zone-{z}")));
            }
        }
        out
    }

    fn placed(nodes: &[(NodeId, String)], class: StorageClass, blob: u128) -> Vec<NodeId> {
        let scheme = scheme_for(class).unwrap();
        place(nodes.iter().map(|(id, z)| (*id, z.as_str())), &scheme, blob).unwrap()
    }

    fn zone_of(nodes: &[(NodeId, String)], id: NodeId) -> &str {
        &nodes.iter().find(|(n, _)| *n == id).unwrap().1
    }

    fn per_zone_counts(nodes: &[(NodeId, String)], shards: &[NodeId]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for id in shards {
            *counts.entry(zone_of(nodes, *id).to_string()).or_insert(0) += 1;
        }
        counts
    }

    fn blobs() -> impl Iterator<Item = u128> {
        (0..600u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ i)
    }

    #[test]
    fn standard_puts_two_shards_per_zone_on_distinct_nodes() {
        for shape in [[2, 2, 2], [3, 3, 3], [2, 5, 3]] {
            let nodes = cluster(&shape);
            for blob in blobs() {
                let shards = placed(&nodes, StorageClass::Standard, blob);
                assert_eq!(shards.len(), 6);
                // Shard i and i + 3 share a zone; a zone loss costs exactly 2 shards.
                for i in 0..3 {
                    assert_eq!(zone_of(&nodes, shards[i]), zone_of(&nodes, shards[i + 3]));
                }
                let counts = per_zone_counts(&nodes, &shards);
                assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
                // Every zone here has 2+ nodes: all six shards on distinct nodes.
                assert_eq!(
                    shards.iter().collect::<BTreeSet<_>>().len(),
                    6,
                    "{shards:?}"
                );
            }
        }
    }

    #[test]
    fn load_and_first_shards_spread_over_blobs() {
        let nodes = cluster(&[3, 3, 3]);
        let mut per_node = BTreeMap::new();
        let mut first_per_zone = BTreeMap::new();
        let count = blobs().count();
        for blob in blobs() {
            let shards = placed(&nodes, StorageClass::Standard, blob);
            for id in &shards {
                *per_node.entry(*id).or_insert(0usize) += 1;
            }
            *first_per_zone
                .entry(zone_of(&nodes, shards[0]).to_string())
                .or_insert(0usize) += 1;
        }
        // 600 blobs * 6 shards over 9 nodes: 400 each when even; allow 15%.
        assert_eq!(per_node.len(), 9);
        for (node, n) in &per_node {
            assert!((340..=460).contains(n), "node {node}: {n} of {per_node:?}");
        }
        assert_eq!(first_per_zone.len(), 3);
        for n in first_per_zone.values() {
            assert!(*n > count / 4, "{first_per_zone:?}");
        }
    }

    #[test]
    fn the_other_standard_like_classes_share_the_layout() {
        let nodes = cluster(&[2, 2, 2]);
        for class in [
            StorageClass::StandardIa,
            StorageClass::IntelligentTiering,
            StorageClass::GlacierIr,
            StorageClass::ReducedRedundancy,
        ] {
            assert_eq!(
                placed(&nodes, class, 42),
                placed(&nodes, StorageClass::Standard, 42)
            );
        }
    }

    #[test]
    fn onezone_keeps_every_shard_in_one_zone() {
        let nodes = cluster(&[6, 6, 6]);
        let mut zones_used = BTreeSet::new();
        for blob in blobs() {
            let shards = placed(&nodes, StorageClass::OnezoneIa, blob);
            let counts = per_zone_counts(&nodes, &shards);
            assert_eq!(counts.len(), 1, "{shards:?}");
            assert_eq!(shards.iter().collect::<BTreeSet<_>>().len(), 6);
            zones_used.extend(counts.into_keys());
        }
        assert_eq!(zones_used.len(), 3, "the zone is chosen by the blob id");
    }

    #[test]
    fn small_clusters_still_get_every_shard_placed() {
        // Three nodes in three zones: two shards per node, a zone loss still costs 2.
        let nodes = cluster(&[1, 1, 1]);
        for blob in blobs().take(50) {
            let shards = placed(&nodes, StorageClass::Standard, blob);
            let mut per_node = BTreeMap::new();
            for id in &shards {
                *per_node.entry(*id).or_insert(0) += 1;
            }
            assert_eq!(per_node.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
        }
        // One zone of six nodes: STANDARD spreads over distinct nodes.
        let nodes = cluster(&[6]);
        for blob in blobs().take(50) {
            let shards = placed(&nodes, StorageClass::Standard, blob);
            assert_eq!(shards.iter().collect::<BTreeSet<_>>().len(), 6);
        }
        // One zone of two nodes: three shards each.
        let nodes = cluster(&[2]);
        let shards = placed(&nodes, StorageClass::OnezoneIa, 7);
        assert_eq!(shards.iter().filter(|id| **id == 1).count(), 3);
        // A single node holds everything.
        let nodes = cluster(&[1]);
        assert_eq!(placed(&nodes, StorageClass::Standard, 9), vec![1; 6]);
        // More zones than three: never more than 2 shards in a zone.
        let nodes = cluster(&[1, 1, 1, 1]);
        for blob in blobs().take(50) {
            let counts = per_zone_counts(&nodes, &placed(&nodes, StorageClass::Standard, blob));
            assert!(counts.values().all(|c| *c <= 2), "{counts:?}");
        }
        assert_eq!(
            place(
                std::iter::empty(),
                &scheme_for(StorageClass::Standard).unwrap(),
                1
            ),
            None
        );
    }

    #[test]
    fn placement_is_deterministic_and_ignores_input_order() {
        let nodes = cluster(&[2, 3, 2]);
        let mut reversed = nodes.clone();
        reversed.reverse();
        for blob in blobs().take(50) {
            assert_eq!(
                placed(&nodes, StorageClass::Standard, blob),
                placed(&reversed, StorageClass::Standard, blob)
            );
        }
    }

    #[test]
    fn archive_classes_are_refused() {
        for class in [StorageClass::Glacier, StorageClass::DeepArchive] {
            let err = scheme_for(class).unwrap_err();
            assert_eq!(err.code(), "InvalidStorageClass");
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn plans_use_the_directory_and_a_valid_layout() {
        let infos = cluster(&[2, 2, 2])
            .into_iter()
            .map(|(id, zone)| crate::cluster::NodeInfo {
                id,
                zone,
                grpc_addr: format!("127.0.0.1:{}", 7000 + id),
                http_addr: format!("127.0.0.1:{}", 4566 + id),
            })
            .collect();
        let directory = Directory::build("test", infos, 3).unwrap();
        let none = BTreeSet::new();
        let plan = plan(&directory, StorageClass::Standard, 5, 1_000_003, &none).unwrap();
        assert_eq!(plan.layout.data_shards, 4);
        assert_eq!(plan.layout.stripe_bytes % 4, 0);
        assert_eq!(plan.nodes.len(), 6);
        assert!(matches!(
            super::plan(&directory, StorageClass::Glacier, 5, 1 << 20, &none),
            Err(PlanError::Class(_))
        ));
        // A whole zone down: its shards go to the live zones, 3 and 3.
        let zone_c: BTreeSet<NodeId> = directory
            .nodes
            .values()
            .filter(|n| n.zone == "zone-2")
            .map(|n| n.id)
            .collect();
        assert_eq!(zone_c.len(), 2);
        for blob in 0..50u128 {
            let plan =
                super::plan(&directory, StorageClass::Standard, blob, 1 << 20, &zone_c).unwrap();
            assert!(
                plan.nodes.iter().all(|n| !zone_c.contains(n)),
                "{:?}",
                plan.nodes
            );
            for node in directory.nodes.keys().filter(|n| !zone_c.contains(n)) {
                let held = plan.nodes.iter().filter(|n| *n == node).count();
                assert!(
                    held <= 2,
                    "node {node} holds {held} shards of {:?}",
                    plan.nodes
                );
            }
        }
        let everyone: BTreeSet<NodeId> = directory.nodes.keys().copied().collect();
        assert!(matches!(
            super::plan(&directory, StorageClass::Standard, 5, 1 << 20, &everyone),
            Err(PlanError::NoNodes)
        ));
    }
}
