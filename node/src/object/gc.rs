//! Garbage collection of shards no object version points to any more.
//!
//! What it does now: best-effort deletes. Every write that drops data (an overwrite of a
//! `null` version, a deleted version, a replaced or unlisted part, an aborted upload)
//! answers with the blobs it dropped (`garbage` in `state`), and a write whose data never
//! got committed (refused by the state, or sure not to have reached Raft) leaves its own
//! blob behind; the service hands both here. Each shard of each blob is deleted from the
//! node the metadata names; failures (a node down, a timeout) are logged and left for the
//! sweep below. Deleting is idempotent: a shard that is already gone counts as done.
//!
//! What it guarantees: nothing. A delete that fails leaves an orphan, never a dangling
//! reference: metadata is always changed first (through Raft), data second. So the worst
//! case is wasted space until the sweep, never a version whose shards were collected.
//!
//! The orphan sweep ([`OrphanSweep`], one per node) catches what best-effort deletes
//! missed: a node that was down, a crash between commit and delete, a write whose outcome
//! was unknown, a straggler shard finished after its write gave up, the old copy of a shard
//! that repair moved. Every `gc_interval` it:
//!
//! 1. Pages through the node's chunk store (`ChunkStore::list`) in id order.
//! 2. Looks each page's blobs up in every data group's blob index (`blob_index`, the
//!    `keys::blob_ref` rows `state` writes in the same transactions as the versions and
//!    parts). A page whose lookup is incomplete (a group did not answer, or has not
//!    finished backfilling its index after an upgrade) is left alone: an unanswered
//!    question never reads as "unreferenced".
//! 3. Keeps a shard its blob's metadata places on this node ([`Verdict::Referenced`]);
//!    the others are orphans (nothing points to the blob) or strays (the blob's metadata
//!    places that shard on another node).
//! 4. Deletes an orphan or stray only once it has been seen so, pass after pass, for the
//!    grace period (an hour by default): a write in flight has durable shards for a while
//!    before its metadata commits, and a repair's new copy before its commit. The first
//!    sighting is kept in memory (at most [`MAX_TRACKED`] shards; more wait for a later
//!    pass), so the grace restarts when the node does, which only delays collection.
//!    The chunk store keeps no write time, and a clock read from a file would not be
//!    safer than this.
//! 5. Counts what it deletes in the worker metrics (`stratus_object_orphans_deleted_total`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::blob_index::BlobLookup;
use super::model::ErasureRef;
use super::shard_io::{ShardIo, ShardIoError};
use super::state::BlobEntry;
use super::worker_metrics::WorkerMetrics;
use crate::cluster::directory::NodeId;
use crate::store::chunks::{ChunkStore, ShardId};

/// Unreferenced shards whose first sighting the sweep remembers at once.
pub const MAX_TRACKED: usize = 100_000;
/// Shards listed (and blobs looked up) per page of a sweep.
const SWEEP_PAGE: usize = 256;

/// What a round of deletes did.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Shards removed.
    pub deleted: usize,
    /// Shards that were not there (never written, or already collected).
    pub absent: usize,
    /// Shards that could not be deleted now: left for the sweep.
    pub failed: Vec<(ShardId, NodeId, ShardIoError)>,
}

impl Deletion {
    fn absorb(&mut self, other: Deletion) {
        self.deleted += other.deleted;
        self.absent += other.absent;
        self.failed.extend(other.failed);
    }
}

/// Delete shard `i` of `blob` from `nodes[i]`, for every `i`, concurrently.
pub async fn delete_shards(io: &dyn ShardIo, blob: u128, nodes: &[NodeId]) -> Deletion {
    let deletes = nodes.iter().enumerate().map(|(index, &node)| async move {
        let id = ShardId::new(blob, index as u8);
        (id, node, io.delete_shard(node, id).await)
    });
    let mut out = Deletion::default();
    for (id, node, result) in futures::future::join_all(deletes).await {
        match result {
            Ok(true) => out.deleted += 1,
            Ok(false) | Err(ShardIoError::NotFound { .. }) => out.absent += 1,
            Err(e) => out.failed.push((id, node, e)),
        }
    }
    out
}

/// Delete every shard of an erasure-coded blob, wherever its metadata places them
/// (shards recorded missing too: a node may hold a partial or older copy).
pub async fn delete_blob(io: &dyn ShardIo, blob: &ErasureRef) -> Deletion {
    delete_shards(io, blob.blob, &blob.shard_nodes).await
}

/// Delete blobs one after another, logging what could not be deleted.
pub async fn collect(io: &dyn ShardIo, garbage: &[ErasureRef], why: &str) -> Deletion {
    let mut total = Deletion::default();
    for blob in garbage {
        total.absorb(delete_blob(io, blob).await);
    }
    for (id, node, e) in &total.failed {
        tracing::warn!(
            shard = %id,
            node,
            "garbage shard ({why}) not deleted, left for the orphan sweep: {e}"
        );
    }
    if total.deleted > 0 {
        tracing::debug!(deleted = total.deleted, "collected garbage shards ({why})");
    }
    total
}

/// [`collect`] on a background task: the client's answer does not wait for it.
pub fn collect_in_background(io: Arc<dyn ShardIo>, garbage: Vec<ErasureRef>, why: &'static str) {
    if garbage.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                collect(io.as_ref(), &garbage, why).await;
            });
        }
        Err(_) => tracing::warn!(
            blobs = garbage.len(),
            "no runtime to collect garbage shards ({why}); left for the orphan sweep"
        ),
    }
}

/// What a shard on this node is to the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its blob's metadata places this shard on this node: keep it.
    Referenced,
    /// Nothing points to its blob.
    Orphan,
    /// Its blob is referenced, but that shard lives on another node now.
    Stray,
}

/// The verdict on shard `id` on node `node`, given its blob's index entry (if any).
pub fn verdict(entry: Option<&BlobEntry>, id: ShardId, node: NodeId) -> Verdict {
    let Some(entry) = entry else {
        return Verdict::Orphan;
    };
    match &entry.erasure {
        // An owner that does not hold the blob: never collect on a doubtful answer.
        None => Verdict::Referenced,
        Some(e) if e.shard_nodes.get(usize::from(id.index)) == Some(&node) => Verdict::Referenced,
        Some(_) => Verdict::Stray,
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub shards: u64,
    pub deleted: u64,
    /// Orphans and strays still inside their grace period.
    pub waiting: u64,
}

/// The orphan sweep of one node (see the module docs).
pub struct OrphanSweep {
    node: NodeId,
    chunks: Arc<dyn ChunkStore>,
    index: Arc<dyn BlobLookup>,
    metrics: Arc<WorkerMetrics>,
    grace: Duration,
    first_seen: HashMap<ShardId, Instant>,
}

impl OrphanSweep {
    pub fn new(
        node: NodeId,
        chunks: Arc<dyn ChunkStore>,
        index: Arc<dyn BlobLookup>,
        metrics: Arc<WorkerMetrics>,
        grace: Duration,
    ) -> Self {
        OrphanSweep {
            node,
            chunks,
            index,
            metrics,
            grace,
            first_seen: HashMap::new(),
        }
    }

    /// Sweep every `interval` until `stop`.
    pub async fn run(mut self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let swept = tokio::select! {
                r = self.pass(Instant::now()) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match swept {
                Ok(report) if report.deleted > 0 => {
                    tracing::info!(deleted = report.deleted, "orphan sweep deleted shards")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("orphan sweep stopped early: {e}"),
            }
        }
    }

    /// One sweep over this node's shards, as of `now`.
    pub async fn pass(&mut self, now: Instant) -> Result<SweepReport, String> {
        let mut report = SweepReport::default();
        let mut unreferenced = HashSet::new();
        let mut after = None;
        loop {
            let chunks = self.chunks.clone();
            let page = tokio::task::spawn_blocking(move || chunks.list(after, SWEEP_PAGE))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last().copied() else {
                break;
            };
            after = Some(last);
            let mut blobs: Vec<u128> = page.iter().map(|id| id.blob).collect();
            blobs.dedup(); // listed in id order: a blob's shards are adjacent
            let entries = self.index.find(&blobs).await.map_err(|e| e.to_string())?;
            for id in page {
                report.shards += 1;
                let verdict = verdict(entries.get(&id.blob), id, self.node);
                if verdict == Verdict::Referenced {
                    self.first_seen.remove(&id);
                    continue;
                }
                unreferenced.insert(id);
                let tracked = self.first_seen.len();
                let first = match self.first_seen.get(&id) {
                    Some(at) => *at,
                    None if tracked < MAX_TRACKED => *self.first_seen.entry(id).or_insert(now),
                    None => continue,
                };
                if now.saturating_duration_since(first) < self.grace {
                    report.waiting += 1;
                    continue;
                }
                let chunks = self.chunks.clone();
                match tokio::task::spawn_blocking(move || chunks.delete(id)).await {
                    Ok(Ok(_)) => {
                        tracing::info!(shard = %id, ?verdict, "deleted an unreferenced shard");
                        report.deleted += 1;
                        WorkerMetrics::add(&self.metrics.orphans_deleted, 1);
                        self.first_seen.remove(&id);
                    }
                    Ok(Err(e)) => tracing::warn!(shard = %id, "cannot delete an orphan: {e}"),
                    Err(e) => tracing::warn!(shard = %id, "cannot delete an orphan: {e}"),
                }
            }
        }
        // Forget shards that are gone (or referenced again) since their first sighting.
        self.first_seen.retain(|id, _| unreferenced.contains(id));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::object::erasure::ErasureLayout;
    use crate::object::shard_io::LocalShardIo;
    use crate::store::chunks::{ChunkStore, MemChunkStore};

    #[tokio::test]
    async fn deletes_every_shard_and_reports_what_it_could_not() {
        let stores: Vec<MemChunkStore> = (0..6).map(|_| MemChunkStore::new()).collect();
        let io = LocalShardIo::new(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| (i as NodeId + 1, Arc::new(s.clone()) as Arc<dyn ChunkStore>))
                .collect::<HashMap<_, _>>(),
        );
        let layout = ErasureLayout::new(4, 2, 64).unwrap();
        for index in 0..6u8 {
            let piece = futures::stream::iter([Ok(Bytes::from_static(&[7; 16]))]).boxed();
            io.put_shard(
                NodeId::from(index) + 1,
                ShardId::new(9, index),
                layout.shard_format(),
                piece,
            )
            .await
            .unwrap();
        }
        let blob = ErasureRef {
            blob: 9,
            layout: layout.into(),
            shard_nodes: (1..=6).collect(),
            missing: vec![],
        };
        io.set_down(6, true);
        let first = collect(&io, std::slice::from_ref(&blob), "test").await;
        assert_eq!(first.deleted, 5);
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].1, 6);
        // Idempotent: a second round finds the rest gone and finishes the job.
        io.set_down(6, false);
        let second = delete_blob(&io, &blob).await;
        assert_eq!((second.deleted, second.absent), (1, 5));
        assert!(stores.iter().all(|s| s.list(None, 10).unwrap().is_empty()));
    }

    use futures::future::BoxFuture;

    use crate::object::blob_index::IndexError;
    use crate::object::model::{ObjectKey, StorageClass, VersionId};
    use crate::object::state::BlobOwner;

    /// A blob index in a map; `None` plays a data group that does not answer.
    struct MapLookup(std::sync::Mutex<Option<HashMap<u128, BlobEntry>>>);

    impl BlobLookup for MapLookup {
        fn find<'a>(
            &'a self,
            blobs: &'a [u128],
        ) -> BoxFuture<'a, Result<HashMap<u128, BlobEntry>, IndexError>> {
            let map = self.0.lock().unwrap().clone();
            Box::pin(async move {
                let map = map.ok_or(IndexError::Unavailable {
                    group: 1,
                    reason: "down".into(),
                })?;
                Ok(blobs
                    .iter()
                    .filter_map(|b| map.get(b).map(|e| (*b, e.clone())))
                    .collect())
            })
        }
    }

    fn entry(blob: u128, shard_nodes: Vec<NodeId>) -> BlobEntry {
        BlobEntry {
            blob,
            owner: BlobOwner::Version {
                bucket: crate::object::model::BucketName::parse("bkt").unwrap(),
                key: ObjectKey::parse("k").unwrap(),
                version_id: VersionId::null(),
            },
            erasure: Some(ErasureRef {
                blob,
                layout: ErasureLayout::new(4, 2, 64).unwrap().into(),
                shard_nodes,
                missing: vec![],
            }),
            size_bytes: 10,
            storage_class: StorageClass::Standard,
        }
    }

    fn write(store: &MemChunkStore, id: ShardId) {
        let layout = ErasureLayout::new(4, 2, 64).unwrap();
        let mut w = store.create(id, layout.shard_format()).unwrap();
        w.append(&[1; 16]).unwrap();
        w.finish().unwrap();
    }

    #[tokio::test]
    async fn the_sweep_deletes_orphans_and_strays_after_their_grace_only() {
        let store = MemChunkStore::new();
        let me: NodeId = 3;
        let (live, stray, orphan) = (
            ShardId::new(10, 2),
            ShardId::new(10, 4),
            ShardId::new(20, 0),
        );
        for id in [live, stray, orphan] {
            write(&store, id);
        }
        // Blob 10 places shard 2 here and shard 4 on node 5 (a repair moved it).
        let index = Arc::new(MapLookup(std::sync::Mutex::new(Some(HashMap::from([(
            10,
            entry(10, vec![1, 2, 3, 4, 5, 6]),
        )])))));
        let metrics = Arc::new(WorkerMetrics::default());
        let grace = Duration::from_secs(3600);
        let mut sweep = OrphanSweep::new(
            me,
            Arc::new(store.clone()),
            index.clone(),
            metrics.clone(),
            grace,
        );
        let t0 = Instant::now();
        let first = sweep.pass(t0).await.unwrap();
        assert_eq!((first.shards, first.deleted, first.waiting), (3, 0, 2));
        let later = sweep.pass(t0 + grace / 2).await.unwrap();
        assert_eq!(later.deleted, 0);
        // An index that cannot answer in full deletes nothing, even past the grace.
        *index.0.lock().unwrap() = None;
        assert!(sweep.pass(t0 + grace * 2).await.is_err());
        assert_eq!(store.list(None, 10).unwrap().len(), 3);
        // Blob 20's upload commits after all: its shard is referenced again, and forgotten.
        *index.0.lock().unwrap() = Some(HashMap::from([
            (10, entry(10, vec![1, 2, 3, 4, 5, 6])),
            (20, entry(20, vec![3, 1, 2, 4, 5, 6])),
        ]));
        let done = sweep.pass(t0 + grace).await.unwrap();
        assert_eq!((done.deleted, done.waiting), (1, 0));
        assert_eq!(store.list(None, 10).unwrap(), vec![live, orphan]);
        assert_eq!(
            metrics
                .orphans_deleted
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // Dropped from the index again: its grace starts over.
        *index.0.lock().unwrap() = Some(HashMap::new());
        let again = sweep.pass(t0 + grace * 3).await.unwrap();
        assert_eq!((again.deleted, again.waiting), (0, 2));
    }

    #[test]
    fn verdicts_follow_the_metadata() {
        let e = entry(7, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            verdict(Some(&e), ShardId::new(7, 2), 3),
            Verdict::Referenced
        );
        assert_eq!(verdict(Some(&e), ShardId::new(7, 2), 4), Verdict::Stray);
        assert_eq!(verdict(None, ShardId::new(7, 2), 3), Verdict::Orphan);
        let doubtful = BlobEntry { erasure: None, ..e };
        assert_eq!(
            verdict(Some(&doubtful), ShardId::new(7, 2), 9),
            Verdict::Referenced
        );
    }
}
