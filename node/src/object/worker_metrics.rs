//! Counters of the object store's background workers (repair, scrub, orphan sweep),
//! rendered as Prometheus text in `/_stratus/metrics`.
//!
//! One set per node, kept in a process-wide registry keyed by node id: the workers and the
//! metrics endpoint find them without threading a handle through every layer, and
//! `stratusd dev` (several nodes in one process) still reports each node apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cluster::directory::NodeId;

#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Shards rebuilt from the others and committed at their new place.
    pub shards_repaired: AtomicU64,
    /// Shards copied to a better node (placement debt) and committed there.
    pub shards_moved: AtomicU64,
    /// Repair or move attempts that did not finish (retried on a later round).
    pub repair_failures: AtomicU64,
    /// Shards this node recorded missing (found corrupt or absent by reads, scrub, audit).
    pub shards_marked_missing: AtomicU64,
    /// Shard bytes the scrubber read and verified.
    pub scrubbed_bytes: AtomicU64,
    /// Shards the scrubber finished (verified or found bad).
    pub scrubbed_shards: AtomicU64,
    /// Shards the scrubber found corrupt.
    pub corrupt_shards_found: AtomicU64,
    /// Shards the orphan sweep deleted.
    pub orphans_deleted: AtomicU64,
}

impl WorkerMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn series(&self) -> [(&'static str, &'static str, u64); 8] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            (
                "stratus_object_shards_repaired_total",
                "Shards rebuilt from the other shards of their blob and committed.",
                get(&self.shards_repaired),
            ),
            (
                "stratus_object_shards_moved_total",
                "Shards moved to a node of the right zone (placement debt) and committed.",
                get(&self.shards_moved),
            ),
            (
                "stratus_object_repair_failures_total",
                "Repairs or moves that did not finish and will be retried.",
                get(&self.repair_failures),
            ),
            (
                "stratus_object_shards_marked_missing_total",
                "Shards recorded missing after reads, the scrubber or the audit found them bad.",
                get(&self.shards_marked_missing),
            ),
            (
                "stratus_object_scrubbed_bytes_total",
                "Shard bytes the scrubber read and verified.",
                get(&self.scrubbed_bytes),
            ),
            (
                "stratus_object_scrubbed_shards_total",
                "Shards the scrubber finished.",
                get(&self.scrubbed_shards),
            ),
            (
                "stratus_object_corrupt_shards_total",
                "Shards the scrubber found corrupt.",
                get(&self.corrupt_shards_found),
            ),
            (
                "stratus_object_orphans_deleted_total",
                "Shards no object version or upload points to, deleted by the orphan sweep.",
                get(&self.orphans_deleted),
            ),
        ]
    }

    /// Append this node's series to a Prometheus text exposition.
    pub fn render_into(&self, node_id: NodeId, out: &mut String) {
        for (name, help, value) in self.series() {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name}{{node=\"{node_id}\"}} {value}");
        }
    }
}

fn registry() -> &'static Mutex<BTreeMap<NodeId, Arc<WorkerMetrics>>> {
    static REGISTRY: Mutex<BTreeMap<NodeId, Arc<WorkerMetrics>>> = Mutex::new(BTreeMap::new());
    &REGISTRY
}

/// The counters of node `node_id` (created on first use).
pub fn for_node(node_id: NodeId) -> Arc<WorkerMetrics> {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(node_id)
        .or_default()
        .clone()
}

/// Append node `node_id`'s worker series to a Prometheus text exposition.
pub fn render(node_id: NodeId, out: &mut String) {
    for_node(node_id).render_into(node_id, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_per_node() {
        let mine = for_node(9_001);
        WorkerMetrics::add(&mine.shards_repaired, 2);
        WorkerMetrics::add(&for_node(9_002).orphans_deleted, 1);
        let mut out = String::new();
        render(9_001, &mut out);
        assert!(out.contains("stratus_object_shards_repaired_total{node=\"9001\"} 2"));
        assert!(out.contains("stratus_object_orphans_deleted_total{node=\"9001\"} 0"));
        assert!(out.contains("# TYPE stratus_object_scrubbed_bytes_total counter"));
    }
}
