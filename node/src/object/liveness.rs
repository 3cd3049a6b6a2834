//! Which nodes can take shard writes right now. A new blob's shards are placed only on
//! nodes that answered recently, so a PUT succeeds with a whole zone down: the zone's
//! shards go to live nodes of the other zones (fully durable, though no longer one zone
//! loss away from being unreadable until repair moves them back).
//!
//! A node is probed with a cheap `StatShard` of a shard that never exists: any answer,
//! `NotFound` included, proves the node serves; a refused connection, a timeout or an
//! unavailable node marks it down. Answers are cached briefly so a busy node is not
//! probed on every PUT, and shard I/O failures seen by writes and reads are reported
//! here too.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::shard_io::{ShardIo, ShardIoError};
use crate::cluster::directory::NodeId;
use crate::store::chunks::ShardId;

/// How long a probe may take before the node counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an answer (up or down) is trusted.
const ANSWER_TTL: Duration = Duration::from_secs(2);

pub struct Liveness {
    io: Arc<dyn ShardIo>,
    answers: Mutex<HashMap<NodeId, (bool, Instant)>>,
}

impl Liveness {
    pub fn new(io: Arc<dyn ShardIo>) -> Self {
        Liveness {
            io,
            answers: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, node: NodeId, now: Instant) -> Option<bool> {
        let answers = self.answers.lock().ok()?;
        let (up, at) = answers.get(&node)?;
        (now.duration_since(*at) < ANSWER_TTL).then_some(*up)
    }

    /// Record what shard I/O just saw of `node`.
    pub fn report(&self, node: NodeId, up: bool) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(node, (up, Instant::now()));
        }
    }

    async fn probe(&self, node: NodeId) -> bool {
        let never_written = ShardId::new(0, 0);
        let answer =
            tokio::time::timeout(PROBE_TIMEOUT, self.io.stat_shard(node, never_written)).await;
        let up = matches!(answer, Ok(Ok(_)) | Ok(Err(ShardIoError::NotFound { .. })));
        self.report(node, up);
        up
    }

    /// The nodes among `nodes` that are down now (probing those without a fresh answer,
    /// all at once).
    pub async fn down_among(&self, nodes: impl IntoIterator<Item = NodeId>) -> BTreeSet<NodeId> {
        let now = Instant::now();
        let mut down = BTreeSet::new();
        let mut unknown = Vec::new();
        for node in nodes {
            match self.cached(node, now) {
                Some(true) => {}
                Some(false) => {
                    down.insert(node);
                }
                None => unknown.push(node),
            }
        }
        let answers = join_all(unknown.iter().map(|&n| self.probe(n))).await;
        for (node, up) in unknown.into_iter().zip(answers) {
            if !up {
                down.insert(node);
            }
        }
        down
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::shard_io::LocalShardIo;
    use crate::store::chunks::{ChunkStore, MemChunkStore};

    fn three_nodes() -> Arc<LocalShardIo> {
        let nodes: HashMap<NodeId, Arc<dyn ChunkStore>> = (1..=3)
            .map(|n| (n, Arc::new(MemChunkStore::new()) as Arc<dyn ChunkStore>))
            .collect();
        Arc::new(LocalShardIo::new(nodes))
    }

    #[tokio::test]
    async fn down_nodes_are_found_and_answers_are_cached() {
        let io = three_nodes();
        let live = Liveness::new(io.clone());
        assert!(live.down_among([1, 2, 3]).await.is_empty());
        io.set_down(2, true);
        // The cached "up" answer is still trusted...
        assert!(live.down_among([1, 2, 3]).await.is_empty());
        // ...until shard I/O reports otherwise.
        live.report(2, false);
        assert_eq!(live.down_among([1, 2, 3]).await, BTreeSet::from([2]));
    }

    #[tokio::test]
    async fn an_unknown_node_is_down() {
        let live = Liveness::new(three_nodes());
        assert_eq!(live.down_among([1, 9]).await, BTreeSet::from([9]));
    }
}
