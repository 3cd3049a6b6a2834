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
//! Later (not built yet), the orphan sweep worker, one per node, which catches what
//! best-effort deletes missed (a node that was down, a crash between commit and delete,
//! a write whose outcome was unknown, a straggler shard finished after its write gave up):
//!
//! 1. Page through the node's chunk store (`ChunkStore::list`) in id order.
//! 2. Skip shards younger than a grace period (an hour, say): a write in flight has
//!    durable shards for a while before its metadata commits, and a retried commit may
//!    still land. The shard header or file time gives the age.
//! 3. For the rest, ask the data groups whether any version, upload part or in-flight
//!    upload references the blob. That needs a blob → (bucket, key, version) index kept
//!    by `state` beside the versions (`keys::blob_ref`, written and removed in the same
//!    transactions that add and drop `DataRef`s), queried by blob id in batches, and a
//!    fan-out to every data group since the chunk store does not know the bucket.
//! 4. Delete the unreferenced ones; also delete shards of a referenced blob that the
//!    metadata places on another node (left behind by a repair that moved the shard).
//! 5. Report counts and bytes reclaimed in metrics and `stratus` CLI output, and pace
//!    itself (shards per second) so it never competes with client traffic.

use std::sync::Arc;

use super::model::ErasureRef;
use super::shard_io::{ShardIo, ShardIoError};
use crate::cluster::directory::NodeId;
use crate::store::chunks::ShardId;

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
}
