//! Who is in the cluster and where: nodes with their zones, deterministic placement of
//! every Raft group's voters across zones, and routing of keys to groups. Everything here
//! is a pure function of the cluster's node list, so every node computes the same answer.

pub mod directory;
pub mod placement;
pub mod routing;

pub use directory::{Directory, GroupKind, GroupPlacement, NodeInfo};
pub use placement::PlacementError;

/// The meta group: membership, zones, the group directory and catalogs.
pub const META_GROUP: u64 = 0;
/// Voters per group: one in each of three zones survives the loss of a whole zone.
pub const REPLICAS: usize = 3;
