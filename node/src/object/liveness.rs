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
/// Probes that merely time out mark at most this many nodes down (a paused zone is two
/// nodes). More slow answers than that mean an overloaded cluster, not dead nodes: then
/// only nodes that refused the connection count as down, and the write path drops any
/// shard writer that stalls.
const MAX_DOWN_BY_TIMEOUT: usize = 2;

/// What a probe learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Up,
    /// Refused, unknown node, or any other definite failure.
    Down,
    /// No answer in time: down, or just busy.
    Silent,
}

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

    async fn probe(&self, node: NodeId) -> Probe {
        let never_written = ShardId::new(0, 0);
        let answer =
            tokio::time::timeout(PROBE_TIMEOUT, self.io.stat_shard(node, never_written)).await;
        let probe = match answer {
            Ok(Ok(_)) | Ok(Err(ShardIoError::NotFound { .. })) => Probe::Up,
            Ok(Err(_)) => Probe::Down,
            Err(_) => Probe::Silent,
        };
        // A silent node is not remembered as down: the next PUT asks again.
        if probe != Probe::Silent {
            self.report(node, probe == Probe::Up);
        }
        probe
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
        let mut silent = Vec::new();
        for (node, probe) in unknown.into_iter().zip(answers) {
            match probe {
                Probe::Up => {}
                Probe::Down => {
                    down.insert(node);
                }
                Probe::Silent => silent.push(node),
            }
        }
        if silent.len() <= MAX_DOWN_BY_TIMEOUT {
            down.extend(silent);
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

    /// A node whose shard I/O never answers.
    struct Hung(Arc<LocalShardIo>, BTreeSet<NodeId>);

    impl ShardIo for Hung {
        fn put_shard(
            &self,
            node: NodeId,
            id: ShardId,
            format: crate::store::chunks::ShardFormat,
            pieces: crate::object::shard_io::PieceStream,
        ) -> futures::future::BoxFuture<'_, Result<crate::store::chunks::ShardStat, ShardIoError>>
        {
            self.0.put_shard(node, id, format, pieces)
        }
        fn read_blocks(
            &self,
            node: NodeId,
            id: ShardId,
            first: u64,
            count: Option<u64>,
        ) -> futures::future::BoxFuture<
            '_,
            Result<crate::object::shard_io::BlockStream, ShardIoError>,
        > {
            self.0.read_blocks(node, id, first, count)
        }
        fn stat_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> futures::future::BoxFuture<'_, Result<crate::store::chunks::ShardStat, ShardIoError>>
        {
            if self.1.contains(&node) {
                Box::pin(futures::future::pending())
            } else {
                self.0.stat_shard(node, id)
            }
        }
        fn delete_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> futures::future::BoxFuture<'_, Result<bool, ShardIoError>> {
            self.0.delete_shard(node, id)
        }
    }

    #[tokio::test]
    async fn silent_nodes_are_down_only_while_few() {
        // One silent node (paused): down.
        let live = Liveness::new(Arc::new(Hung(three_nodes(), BTreeSet::from([3]))));
        assert_eq!(live.down_among([1, 2, 3]).await, BTreeSet::from([3]));
        // Every node silent (an overloaded cluster): nobody is declared down.
        let live = Liveness::new(Arc::new(Hung(three_nodes(), BTreeSet::from([1, 2, 3]))));
        assert!(live.down_among([1, 2, 3]).await.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_node_is_down() {
        let live = Liveness::new(three_nodes());
        assert_eq!(live.down_among([1, 9]).await, BTreeSet::from([9]));
    }
}
