//! Quorum storage in the style of Aurora (ARCHITECTURE.md §7, docs/quorum-storage.md):
//! volumes split into protection groups of six segments; a single writer (the client
//! library `stratus_client::quorum`) ships redo records to all six and counts 4/6
//! acknowledgements itself. Not Raft: only the volume catalog lives in the meta group.
//!
//! - catalog side: `catalog_state` (deterministic apply in the meta group), `catalog`
//!   (service over the router), `placement` (six segments, two per zone), `repair`
//!   (membership changes when a node is lost);
//! - segment side: `segment` (pure state of one segment), `segment_store` (RocksDB
//!   persistence with CRCs), `segment_host` (all segments of this node), `pages`
//!   (materialized page images), `gossip` (hole filling, materialization, GC).

pub mod catalog;
pub mod catalog_state;
pub mod gossip;
pub mod pages;
pub mod placement;
pub mod repair;
pub mod segment;
pub mod segment_host;
pub mod segment_store;

/// `[quorum]` settings of a node (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSettings {
    /// How often each segment compares itself with its peers (gossip), materializes pages
    /// and collects garbage.
    pub gossip_interval_ms: u64,
    /// Replace a segment whose node has not answered for this long (0: never on its own).
    pub replace_after_ms: u64,
}

impl Default for QuorumSettings {
    fn default() -> Self {
        QuorumSettings {
            gossip_interval_ms: 500,
            replace_after_ms: 0,
        }
    }
}
