//! The object store's background workers on one node, wired together: the repair worker
//! (`repair`), the scrubber (`scrub`), the orphan sweep (`gc`) and the damage intake
//! (`damage`), paced by the `[object]` section of the node's configuration.
//!
//! `node.rs` builds an [`ObjectWorkers`] before the object service, gives the service the
//! watched shard I/O (so GETs report the bad shards they read around), and spawns the
//! workers with the node's shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::blob_index::BlobIndex;
use super::damage::{self, DamageReport, DamageReporter, WatchedShardIo};
use super::gc::OrphanSweep;
use super::repair::RepairWorker;
use super::scrub::Scrubber;
use super::shard_io::ShardIo;
use super::worker_metrics::{self, WorkerMetrics};
use crate::cluster::directory::Directory;
use crate::config::ObjectConfig;
use crate::raft::host::GroupHost;
use crate::raft::router::Router;
use crate::store::chunks::ChunkStore;

/// How the workers are paced (from `[object]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    pub repair_interval: Duration,
    /// 0: the scrubber is off.
    pub scrub_bytes_per_second: u64,
    pub scrub_interval: Duration,
    pub gc_interval: Duration,
    pub orphan_grace: Duration,
}

impl From<&ObjectConfig> for WorkerSettings {
    fn from(c: &ObjectConfig) -> Self {
        WorkerSettings {
            repair_interval: Duration::from_millis(c.repair_interval_ms),
            scrub_bytes_per_second: c.scrub_bytes_per_second,
            scrub_interval: Duration::from_millis(c.scrub_interval_ms),
            gc_interval: Duration::from_millis(c.gc_interval_ms),
            orphan_grace: Duration::from_millis(c.orphan_grace_ms),
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings::from(&ObjectConfig::default())
    }
}

pub struct ObjectWorkers {
    settings: WorkerSettings,
    host: Arc<GroupHost>,
    directory: Arc<Directory>,
    chunks: Arc<dyn ChunkStore>,
    io: Arc<dyn ShardIo>,
    index: Arc<BlobIndex>,
    metrics: Arc<WorkerMetrics>,
    reporter: DamageReporter,
    reports: mpsc::Receiver<DamageReport>,
}

impl ObjectWorkers {
    /// `io` is the node's plain shard I/O; `chunks` its own chunk store.
    pub fn new(
        settings: WorkerSettings,
        host: Arc<GroupHost>,
        router: Arc<Router>,
        directory: Arc<Directory>,
        chunks: Arc<dyn ChunkStore>,
        io: Arc<dyn ShardIo>,
    ) -> Self {
        let (reporter, reports) = damage::channel();
        ObjectWorkers {
            settings,
            metrics: worker_metrics::for_node(host.node_id()),
            index: Arc::new(BlobIndex::new(router, directory.clone())),
            host,
            directory,
            chunks,
            io,
            reporter,
            reports,
        }
    }

    /// Shard I/O for the object service: its reads report the bad shards they meet.
    pub fn watched_io(&self) -> Arc<dyn ShardIo> {
        Arc::new(WatchedShardIo::new(self.io.clone(), self.reporter.clone()))
    }

    /// Start every worker; each stops when `stop` turns true.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let node = self.host.node_id();
        let s = &self.settings;
        let repair = RepairWorker::new(
            self.host.clone(),
            self.directory.clone(),
            self.index.clone(),
            self.io.clone(),
            self.metrics.clone(),
        );
        let scrubber = Scrubber::new(
            node,
            self.chunks.clone(),
            self.reporter.clone(),
            self.metrics.clone(),
            s.scrub_bytes_per_second,
        );
        let sweep = OrphanSweep::new(
            node,
            self.chunks.clone(),
            self.index.clone(),
            self.metrics.clone(),
            s.orphan_grace,
        );
        vec![
            tokio::spawn(damage::run_intake(
                self.reports,
                self.index.clone(),
                self.metrics.clone(),
                stop.clone(),
            )),
            tokio::spawn(repair.run(s.repair_interval, stop.clone())),
            tokio::spawn(scrubber.run(s.scrub_interval, stop.clone())),
            tokio::spawn(sweep.run(s.gc_interval, stop)),
        ]
    }
}
