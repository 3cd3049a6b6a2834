//! Shards found bad, turned into `MarkShardsMissing` so the repair worker rebuilds them.
//!
//! Two kinds of finders report here: reads (through [`WatchedShardIo`], which wraps the
//! object service's shard I/O and sees every block a GET or a copy reads) and this node's
//! scrubber. A report names a node and a shard that was corrupt or absent there. The
//! intake ([`run_intake`]) looks the blob up in the index and records the shard missing
//! only if the metadata still places that shard on that node and does not already record
//! it: a read racing a repair that moved the shard, or a GC that collected an overwritten
//! version, finds nothing to record.
//!
//! Reporting never slows a read: reports go through a bounded queue and are dropped when
//! it is full (the scrubber finds what is dropped, later). Repeats of one shard within a
//! minute are folded into one lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::StreamExt;
use tokio::sync::{mpsc, watch};

use super::blob_index::BlobIndex;
use super::shard_io::{BlockStream, PieceStream, ShardIo, ShardIoError};
use super::worker_metrics::WorkerMetrics;
use crate::cluster::directory::NodeId;
use crate::store::chunks::{ShardFormat, ShardId, ShardStat};

/// Reports waiting for the intake; more are dropped.
const QUEUE_REPORTS: usize = 1024;
/// A shard reported again within this time is not looked up again.
const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// Reports kept for a retry when the index could not be asked; more are dropped.
const MAX_PENDING: usize = 4096;
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Damage {
    Corrupt,
    Absent,
}

/// Shard `shard` on node `node` is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DamageReport {
    pub node: NodeId,
    pub shard: ShardId,
    pub damage: Damage,
}

/// Where bad shards are reported (cheap to clone, never blocks).
#[derive(Clone)]
pub struct DamageReporter {
    tx: mpsc::Sender<DamageReport>,
}

pub fn channel() -> (DamageReporter, mpsc::Receiver<DamageReport>) {
    let (tx, rx) = mpsc::channel(QUEUE_REPORTS);
    (DamageReporter { tx }, rx)
}

impl DamageReporter {
    pub fn report(&self, report: DamageReport) {
        if self.tx.try_send(report).is_err() {
            tracing::debug!(shard = %report.shard, node = report.node, "damage report dropped");
        }
    }

    /// Report what a shard I/O error says about the shard, if anything.
    pub fn report_error(&self, error: &ShardIoError) {
        match error {
            ShardIoError::Corrupt { node, id, .. } => self.report(DamageReport {
                node: *node,
                shard: *id,
                damage: Damage::Corrupt,
            }),
            ShardIoError::NotFound { node, id } => self.report(DamageReport {
                node: *node,
                shard: *id,
                damage: Damage::Absent,
            }),
            _ => {}
        }
    }
}

/// Shard I/O that reports the corrupt and absent shards its reads meet. Reads are the only
/// calls watched: a `stat` of a shard that does not exist is how liveness probes a node.
pub struct WatchedShardIo {
    inner: Arc<dyn ShardIo>,
    reporter: DamageReporter,
}

impl WatchedShardIo {
    pub fn new(inner: Arc<dyn ShardIo>, reporter: DamageReporter) -> Self {
        WatchedShardIo { inner, reporter }
    }
}

impl ShardIo for WatchedShardIo {
    fn put_shard(
        &self,
        node: NodeId,
        id: ShardId,
        format: ShardFormat,
        pieces: PieceStream,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        self.inner.put_shard(node, id, format, pieces)
    }

    fn read_blocks(
        &self,
        node: NodeId,
        id: ShardId,
        first: u64,
        count: Option<u64>,
    ) -> BoxFuture<'_, Result<BlockStream, ShardIoError>> {
        Box::pin(async move {
            match self.inner.read_blocks(node, id, first, count).await {
                Ok(blocks) => {
                    let reporter = self.reporter.clone();
                    Ok(blocks
                        .inspect(move |item| {
                            if let Err(e) = item {
                                reporter.report_error(e);
                            }
                        })
                        .boxed())
                }
                Err(e) => {
                    self.reporter.report_error(&e);
                    Err(e)
                }
            }
        })
    }

    fn stat_shard(
        &self,
        node: NodeId,
        id: ShardId,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        self.inner.stat_shard(node, id)
    }

    fn delete_shard(&self, node: NodeId, id: ShardId) -> BoxFuture<'_, Result<bool, ShardIoError>> {
        self.inner.delete_shard(node, id)
    }
}

/// Turn reports into `MarkShardsMissing` until `stop`.
pub async fn run_intake(
    mut reports: mpsc::Receiver<DamageReport>,
    index: Arc<BlobIndex>,
    metrics: Arc<WorkerMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut recent: HashMap<(NodeId, ShardId), Instant> = HashMap::new();
    let mut pending: Vec<DamageReport> = Vec::new();
    loop {
        let wait = if pending.is_empty() {
            Duration::from_secs(3600)
        } else {
            RETRY_AFTER
        };
        let first = tokio::select! {
            r = reports.recv() => match r {
                Some(r) => Some(r),
                None => return,
            },
            _ = tokio::time::sleep(wait) => None,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = Instant::now();
        recent.retain(|_, at| now.duration_since(*at) < REPEAT_WINDOW);
        let mut batch = std::mem::take(&mut pending);
        batch.extend(first);
        while let Ok(more) = reports.try_recv() {
            batch.push(more);
        }
        let fresh: Vec<DamageReport> = batch
            .into_iter()
            .filter(|r| match recent.get(&(r.node, r.shard)) {
                Some(_) => false,
                None => {
                    recent.insert((r.node, r.shard), now);
                    true
                }
            })
            .collect();
        if fresh.is_empty() {
            continue;
        }
        if let Err(e) = record(&index, &metrics, &fresh).await {
            tracing::debug!("damage reports not recorded yet, retrying: {e}");
            for r in &fresh {
                recent.remove(&(r.node, r.shard));
            }
            pending = fresh;
            pending.truncate(MAX_PENDING);
        }
    }
}

/// Record the reported shards missing where the metadata still places them.
async fn record(
    index: &BlobIndex,
    metrics: &WorkerMetrics,
    reports: &[DamageReport],
) -> Result<(), super::blob_index::IndexError> {
    let mut blobs: Vec<u128> = reports.iter().map(|r| r.shard.blob).collect();
    blobs.sort_unstable();
    blobs.dedup();
    let entries = index.find(&blobs).await?;
    let mut by_blob: BTreeMap<u128, Vec<u8>> = BTreeMap::new();
    for r in reports {
        let Some(entry) = entries.get(&r.shard.blob) else {
            continue; // nothing points to the blob: an orphan, the sweep's
        };
        let Some(erasure) = &entry.erasure else {
            continue;
        };
        let index = r.shard.index;
        let placed_there = erasure.shard_nodes.get(usize::from(index)) == Some(&r.node);
        if placed_there && !erasure.missing.contains(&index) {
            tracing::warn!(
                shard = %r.shard,
                node = r.node,
                damage = ?r.damage,
                "shard found bad; recording it missing for repair"
            );
            by_blob.entry(r.shard.blob).or_default().push(index);
        }
    }
    for (blob, mut missing) in by_blob {
        let Some(entry) = entries.get(&blob) else {
            continue;
        };
        missing.sort_unstable();
        missing.dedup();
        let count = missing.len() as u64;
        if index.mark_missing(entry, missing).await? {
            WorkerMetrics::add(&metrics.shards_marked_missing, count);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;

    use super::*;
    use crate::object::shard_io::LocalShardIo;
    use crate::store::chunks::{ChunkStore, MemChunkStore};

    #[tokio::test]
    async fn reads_report_corrupt_and_absent_shards() {
        let store = MemChunkStore::new();
        let io = Arc::new(LocalShardIo::new(HashMap::from([(
            1,
            Arc::new(store.clone()) as Arc<dyn ChunkStore>,
        )])));
        let format = ShardFormat {
            data_shards: 2,
            parity_shards: 1,
            piece_bytes: 4,
        };
        let id = ShardId::new(5, 0);
        let pieces = futures::stream::iter([
            Ok(Bytes::from_static(b"abcd")),
            Ok(Bytes::from_static(b"efgh")),
        ])
        .boxed();
        io.put_shard(1, id, format, pieces).await.unwrap();
        assert!(store.corrupt_block(id, 1));

        let (reporter, mut reports) = channel();
        let watched = WatchedShardIo::new(io.clone(), reporter);
        let blocks: Vec<_> = watched
            .read_blocks(1, id, 0, None)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(blocks[0].is_ok() && blocks[1].is_err());
        let absent = ShardId::new(6, 2);
        assert!(watched.read_blocks(1, absent, 0, None).await.is_err());
        // A node that is down says nothing about its shards.
        io.set_down(1, true);
        assert!(watched.read_blocks(1, id, 0, None).await.is_err());
        // Nor does a stat (liveness probes stat shards that never exist).
        io.set_down(1, false);
        assert!(watched.stat_shard(1, absent).await.is_err());

        let mut got = Vec::new();
        while let Ok(r) = reports.try_recv() {
            got.push(r);
        }
        assert_eq!(
            got,
            [
                DamageReport {
                    node: 1,
                    shard: id,
                    damage: Damage::Corrupt
                },
                DamageReport {
                    node: 1,
                    shard: absent,
                    damage: Damage::Absent
                }
            ]
        );
    }
}
