//! The scrubber: each node re-reads its own shard files and checks every block's CRC, at
//! a configured pace, so bit rot is found while the other shards can still rebuild it
//! (ARCHITECTURE.md §4).
//!
//! One pass walks the chunk store in id order (`ChunkStore::list`), reading each shard
//! block by block through the same verified read as a GET. Between blocks it sleeps as long
//! as the block's bytes take at `bytes_per_second`, so a pass over a full disk is spread out
//! and never competes with client traffic for long. A shard that fails (a bad block, a bad
//! header, a truncated file) is reported to the damage intake (`damage`), which records it
//! missing if the metadata still places it here; the repair worker then rebuilds it,
//! normally onto this same node. After a pass the scrubber waits `pass_interval`.
//!
//! What it does not do: decide whether a shard is referenced (the orphan sweep does), or
//! find shards that should be here and are not (the repair worker's audit `stat`s them).

use std::sync::Arc;
use std::time::Duration;

use futures::stream::StreamExt;
use tokio::sync::watch;

use super::damage::{Damage, DamageReport, DamageReporter};
use super::shard_io::{read_shard_blocks, ShardIoError};
use super::worker_metrics::WorkerMetrics;
use crate::cluster::directory::NodeId;
use crate::store::chunks::{ChunkStore, ShardId};

/// Shards listed per page of a pass.
const PAGE_SHARDS: usize = 64;

/// What one pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub shards: u64,
    pub bytes: u64,
    pub bad: Vec<ShardId>,
}

pub struct Scrubber {
    node: NodeId,
    chunks: Arc<dyn ChunkStore>,
    reporter: DamageReporter,
    metrics: Arc<WorkerMetrics>,
    /// 0: no pacing (tests).
    bytes_per_second: u64,
}

impl Scrubber {
    pub fn new(
        node: NodeId,
        chunks: Arc<dyn ChunkStore>,
        reporter: DamageReporter,
        metrics: Arc<WorkerMetrics>,
        bytes_per_second: u64,
    ) -> Self {
        Scrubber {
            node,
            chunks,
            reporter,
            metrics,
            bytes_per_second,
        }
    }

    /// Scrub pass after pass, `pass_interval` apart, until `stop`. A rate of 0 means the
    /// scrubber is off.
    pub async fn run(self, pass_interval: Duration, mut stop: watch::Receiver<bool>) {
        if self.bytes_per_second == 0 {
            tracing::info!("scrubber off (object.scrub_bytes_per_second = 0)");
            return;
        }
        loop {
            let report = tokio::select! {
                r = self.pass() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            tracing::info!(
                shards = report.shards,
                bytes = report.bytes,
                bad = report.bad.len(),
                "scrub pass finished"
            );
            tokio::select! {
                _ = tokio::time::sleep(pass_interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass over every shard of this node.
    pub async fn pass(&self) -> PassReport {
        let mut report = PassReport::default();
        let mut after = None;
        loop {
            let chunks = self.chunks.clone();
            let listed = tokio::task::spawn_blocking(move || chunks.list(after, PAGE_SHARDS)).await;
            let page = match listed {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    tracing::warn!("scrub pass stopped: cannot list shards: {e}");
                    return report;
                }
                Err(e) => {
                    tracing::warn!("scrub pass stopped: {e}");
                    return report;
                }
            };
            let Some(last) = page.last().copied() else {
                return report;
            };
            for id in page {
                self.scrub_shard(id, &mut report).await;
            }
            after = Some(last);
        }
    }

    async fn scrub_shard(&self, id: ShardId, report: &mut PassReport) {
        let mut blocks = match read_shard_blocks(self.chunks.clone(), self.node, id, 0, None).await
        {
            Ok(blocks) => blocks,
            Err(e) => return self.failed(id, e, report),
        };
        while let Some(block) = blocks.next().await {
            match block {
                Ok(piece) => {
                    let bytes = piece.len() as u64;
                    report.bytes += bytes;
                    WorkerMetrics::add(&self.metrics.scrubbed_bytes, bytes);
                    if self.bytes_per_second > 0 {
                        let pause = bytes as f64 / self.bytes_per_second as f64;
                        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
                    }
                }
                Err(e) => return self.failed(id, e, report),
            }
        }
        report.shards += 1;
        WorkerMetrics::add(&self.metrics.scrubbed_shards, 1);
    }

    fn failed(&self, id: ShardId, error: ShardIoError, report: &mut PassReport) {
        match error {
            // Deleted since it was listed (collected garbage, a moved shard).
            ShardIoError::NotFound { .. } => {}
            ShardIoError::Corrupt { .. } => {
                tracing::warn!(shard = %id, "scrub found a corrupt shard: {error}");
                report.shards += 1;
                report.bad.push(id);
                WorkerMetrics::add(&self.metrics.scrubbed_shards, 1);
                WorkerMetrics::add(&self.metrics.corrupt_shards_found, 1);
                self.reporter.report(DamageReport {
                    node: self.node,
                    shard: id,
                    damage: Damage::Corrupt,
                });
            }
            other => tracing::warn!(shard = %id, "scrub could not read a shard: {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::damage;
    use crate::store::chunks::{MemChunkStore, ShardFormat};

    fn write(store: &MemChunkStore, id: ShardId, blocks: usize) {
        let format = ShardFormat {
            data_shards: 4,
            parity_shards: 2,
            piece_bytes: 100,
        };
        let mut w = store.create(id, format).unwrap();
        for b in 0..blocks {
            w.append(&[b as u8; 100]).unwrap();
        }
        w.finish().unwrap();
    }

    #[tokio::test]
    async fn a_pass_verifies_every_shard_and_reports_the_bad_ones() {
        let store = MemChunkStore::new();
        for blob in 1..=70u128 {
            write(&store, ShardId::new(blob, 0), 3);
        }
        let bad = [ShardId::new(5, 0), ShardId::new(66, 0)];
        assert!(store.corrupt_block(bad[0], 2));
        assert!(store.drop_block(bad[1], 0));
        let (reporter, mut reports) = damage::channel();
        let metrics = Arc::new(WorkerMetrics::default());
        let scrubber = Scrubber::new(4, Arc::new(store.clone()), reporter, metrics.clone(), 0);
        let report = scrubber.pass().await;
        assert_eq!(report.shards, 70);
        assert_eq!(report.bad, bad);
        // 68 good shards of 300 bytes, and the blocks before the bad one.
        assert_eq!(report.bytes, 68 * 300 + 200);
        let got: Vec<DamageReport> = std::iter::from_fn(|| reports.try_recv().ok()).collect();
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .all(|r| r.node == 4 && r.damage == Damage::Corrupt));
        assert_eq!(
            metrics
                .corrupt_shards_found
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
