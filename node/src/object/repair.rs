//! The repair worker: rebuilds shards recorded missing and moves shards that sit in the
//! wrong place back where placement wants them (ARCHITECTURE.md §4).
//!
//! Who repairs: on every node a worker wakes every `repair_interval` and works only on the
//! data groups this node leads, so two nodes never rebuild the same blob at once (a
//! leadership change can overlap two rounds briefly; both write the same shard to the same
//! node, or the loser's copy becomes a stray the orphan sweep collects).
//!
//! What it does per led group, each round:
//! 0. Once per group and leadership: finish the blob index backfill if the group has not
//!    (a group written before the index existed; see the upgrade note in `state`).
//! 1. Repair: page through the blobs with missing shards (the state's damaged rows). For
//!    each, choose a live node for every missing shard ([`plan_targets`]), read `k`
//!    healthy shards stripe by stripe, rebuild the lost pieces with
//!    `Decoder::rebuild_pieces` and stream them to the chosen nodes ([`rebuild`]); once
//!    the new shards are durable, commit `MarkShardsRepaired` through the router, then
//!    delete the old copies. A source found corrupt or absent on the way is recorded
//!    missing too, so the next round rebuilds it.
//! 2. Audit: one page of all the group's blobs (a cursor walks them round after round).
//!    Each blob's shards are `stat`ed on their nodes (a shard that vanished, a disk that
//!    was replaced, is recorded missing), then its placement is checked: a shard in the
//!    wrong zone (placed there while its zone was down) or sharing a node with another
//!    shard of its blob is copied to a better live node, committed, and deleted from
//!    the old one ([`placement_debt`]). One move per blob per round.
//!
//! Where a shard goes: shard `i`'s zone is the one `placement::place` gives it with every
//! node of the cluster up. A live node of that zone holding no other shard of the blob is
//! best; then one of that zone that does (a node loss then costs two shards, a zone loss
//! still only two); then another zone (durability first; the audit moves it back when its
//! zone returns). Among equals: the node that held the shard, then its home node.
//!
//! Memory: a rebuild holds `k` pieces, the rebuilt stripe and two queued pieces per target;
//! a move streams one shard through. Nothing is ever committed before it is durable, and
//! old copies are deleted only after the commit, so a crash leaves strays (collected by the
//! orphan sweep), never a version pointing at a shard that is not there.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::blob_index::{BlobIndex, IndexError};
use super::erasure::{Decoder, ErasureLayout};
use super::liveness::Liveness;
use super::model::{ErasureRef, StorageClass};
use super::placement;
use super::shard_io::{BlockStream, ShardIo, ShardIoError};
use super::state::{BlobEntry, BlobOwner};
use super::worker_metrics::WorkerMetrics;
use crate::cluster::directory::{Directory, GroupId, NodeId};
use crate::raft::host::GroupHost;
use crate::store::chunks::ShardId;

/// A source or target that makes no progress for this long is given up.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Damaged blobs repaired per group per round (the rest wait for the next round).
const REPAIRS_PER_ROUND: usize = 64;
/// Blobs listed per page of the damaged rows.
const REPAIR_PAGE: u32 = 16;
/// Blobs audited per group per round.
const AUDIT_PAGE: u32 = 16;
/// Backfill steps per group per round.
const BACKFILL_STEPS_PER_ROUND: usize = 64;

/// How well a node suits a shard; later variants are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    OtherZoneShared,
    OtherZone,
    HomeZoneShared,
    HomeZone,
}

/// Where each shard of a blob would go with every node up: `nodes[i]` and its zone.
struct Homes {
    nodes: Vec<NodeId>,
    zones: Vec<String>,
}

fn zone_of(directory: &Directory, node: NodeId) -> Option<&str> {
    directory.nodes.get(&node).map(|n| n.zone.as_str())
}

fn homes(directory: &Directory, class: StorageClass, blob: u128, total: usize) -> Option<Homes> {
    let scheme = placement::scheme_for(class).ok()?;
    if scheme.total_shards() != total {
        return None; // written under another layout: its zones are not known
    }
    let nodes = placement::place(
        directory.nodes.values().map(|n| (n.id, n.zone.as_str())),
        &scheme,
        blob,
    )?;
    let zones = nodes
        .iter()
        .map(|&n| zone_of(directory, n).unwrap_or_default().to_string())
        .collect();
    Some(Homes { nodes, zones })
}

fn fit(directory: &Directory, node: NodeId, home_zone: Option<&str>, others: &[NodeId]) -> Fit {
    let home = home_zone.is_none_or(|z| zone_of(directory, node) == Some(z));
    let shared = others.contains(&node);
    match (home, shared) {
        (true, false) => Fit::HomeZone,
        (true, true) => Fit::HomeZoneShared,
        (false, false) => Fit::OtherZone,
        (false, true) => Fit::OtherZoneShared,
    }
}

/// The best live node for a shard whose zone is `home_zone`, given the nodes holding the
/// blob's other shards; ties go to `preferred` (in order), then to the lowest id.
fn best_node(
    directory: &Directory,
    home_zone: Option<&str>,
    others: &[NodeId],
    down: &BTreeSet<NodeId>,
    preferred: &[NodeId],
) -> Option<(NodeId, Fit)> {
    directory
        .nodes
        .keys()
        .copied()
        .filter(|n| !down.contains(n))
        .map(|n| {
            let rank = preferred
                .iter()
                .position(|p| *p == n)
                .map_or(0, |at| preferred.len() - at);
            (
                fit(directory, n, home_zone, others),
                rank,
                std::cmp::Reverse(n),
            )
        })
        .max()
        .map(|(fit, _, std::cmp::Reverse(n))| (n, fit))
}

/// A live node for every missing shard of `erasure` (a shard with no live node left is
/// left out): where a repair writes the rebuilt shards.
pub fn plan_targets(
    directory: &Directory,
    erasure: &ErasureRef,
    class: StorageClass,
    down: &BTreeSet<NodeId>,
) -> Vec<(u8, NodeId)> {
    let total = erasure.shard_nodes.len();
    let homes = homes(directory, class, erasure.blob, total);
    let mut holding: Vec<NodeId> = (0..total)
        .filter(|i| !erasure.missing.contains(&(*i as u8)))
        .map(|i| erasure.shard_nodes[i])
        .collect();
    let mut targets = Vec::new();
    for &index in &erasure.missing {
        let i = usize::from(index);
        let Some(&was) = erasure.shard_nodes.get(i) else {
            continue;
        };
        let (home_zone, mut preferred) = match &homes {
            Some(h) => (Some(h.zones[i].as_str()), vec![was, h.nodes[i]]),
            None => (zone_of(directory, was), vec![was]),
        };
        preferred.dedup();
        if let Some((node, _)) = best_node(directory, home_zone, &holding, down, &preferred) {
            targets.push((index, node));
            holding.push(node);
        }
    }
    targets
}

/// A shard to move: shard `index` from node `from` to the better node `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub index: u8,
    pub from: NodeId,
    pub to: NodeId,
}

/// The first shard of a fully durable blob that a live node would hold better (right
/// zone, or a node of its own), if any. Only shards on live nodes move (a copy reads the
/// old one); a blob with missing shards is repaired first.
pub fn placement_debt(
    directory: &Directory,
    erasure: &ErasureRef,
    class: StorageClass,
    down: &BTreeSet<NodeId>,
) -> Option<Move> {
    if !erasure.missing.is_empty() {
        return None;
    }
    let total = erasure.shard_nodes.len();
    let homes = homes(directory, class, erasure.blob, total)?;
    for (i, &node) in erasure.shard_nodes.iter().enumerate() {
        if down.contains(&node) {
            continue;
        }
        let others: Vec<NodeId> = erasure
            .shard_nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| *n)
            .collect();
        let zone = Some(homes.zones[i].as_str());
        let current = fit(directory, node, zone, &others);
        if current == Fit::HomeZone {
            continue;
        }
        if let Some((to, better)) = best_node(directory, zone, &others, down, &[homes.nodes[i]]) {
            if better > current {
                return Some(Move {
                    index: i as u8,
                    from: node,
                    to,
                });
            }
        }
    }
    None
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Targets whose shard is now complete and durable.
    pub written: Vec<(u8, NodeId)>,
    /// Source shards found corrupt or absent on the way (to record missing).
    pub bad_sources: Vec<u8>,
    /// Why the rebuild stopped, when it did not finish (then nothing was written).
    pub error: Option<String>,
}

impl Rebuilt {
    fn note_bad_source(&mut self, index: u8, error: &ShardIoError) {
        if matches!(
            error,
            ShardIoError::Corrupt { .. } | ShardIoError::NotFound { .. }
        ) && !self.bad_sources.contains(&index)
        {
            self.bad_sources.push(index);
        }
    }
}

/// A spawned task that is aborted when dropped: an abandoned shard write must never run
/// on to finish a short shard.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type PieceSender = mpsc::Sender<Result<Bytes, ShardIoError>>;

/// Rebuild shards `targets` (index, node) of a blob of `size_bytes` from its other shards
/// and write them. Sources are the shards neither missing nor being rebuilt, data shards
/// first; one that fails is replaced by the next from the stripe it failed at.
pub async fn rebuild(
    io: Arc<dyn ShardIo>,
    erasure: &ErasureRef,
    size_bytes: u64,
    targets: &[(u8, NodeId)],
) -> Rebuilt {
    let mut out = Rebuilt::default();
    let layout = ErasureLayout::from(erasure.layout);
    let decoder = match Decoder::new(layout) {
        Ok(d) => d,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let total = usize::from(layout.total_shards());
    if erasure.shard_nodes.len() != total || targets.iter().any(|t| usize::from(t.0) >= total) {
        out.error = Some("shard locations do not match the layout".into());
        return out;
    }
    let k = usize::from(layout.data_shards);
    let stripes = layout.stripe_count(size_bytes);
    let format = layout.shard_format();

    let mut senders: Vec<Option<PieceSender>> = Vec::with_capacity(targets.len());
    let mut puts = Vec::with_capacity(targets.len());
    for &(index, node) in targets {
        let (tx, rx) = mpsc::channel(2);
        let io = io.clone();
        let id = ShardId::new(erasure.blob, index);
        puts.push(Some(AbortOnDrop(tokio::spawn(async move {
            io.put_shard(node, id, format, ReceiverStream::new(rx).boxed())
                .await
        }))));
        senders.push(Some(tx));
    }

    let rebuilding: Vec<u8> = targets.iter().map(|t| t.0).collect();
    let mut candidates: VecDeque<u8> = (0..total as u8)
        .filter(|i| !erasure.missing.contains(i) && !rebuilding.contains(i))
        .collect();
    let mut sources: Vec<(u8, BlockStream)> = Vec::with_capacity(k);
    'stripes: for s in 0..stripes {
        let stripe = match layout.stripe(size_bytes, s) {
            Ok(stripe) => stripe,
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        };
        let mut pieces: Vec<Option<Bytes>> = vec![None; total];
        loop {
            while sources.len() < k {
                let Some(index) = candidates.pop_front() else {
                    break;
                };
                let node = erasure.shard_nodes[usize::from(index)];
                let id = ShardId::new(erasure.blob, index);
                let open = io.read_blocks(node, id, s, Some(stripes - s));
                match tokio::time::timeout(STALL_TIMEOUT, open).await {
                    Ok(Ok(blocks)) => sources.push((index, blocks)),
                    Ok(Err(e)) => {
                        tracing::debug!(shard = %id, node, "repair source unreadable: {e}");
                        out.note_bad_source(index, &e);
                    }
                    Err(_) => tracing::debug!(shard = %id, node, "repair source stalled"),
                }
            }
            if sources.len() < k {
                out.error = Some(format!(
                    "stripe {s}: only {} of the {k} shards needed are readable",
                    sources.len()
                ));
                break 'stripes;
            }
            let waiting: Vec<usize> = (0..sources.len())
                .filter(|&p| pieces[usize::from(sources[p].0)].is_none())
                .collect();
            if waiting.is_empty() {
                break;
            }
            let reads = sources
                .iter_mut()
                .enumerate()
                .filter(|(p, _)| waiting.contains(p))
                .map(|(p, (index, blocks))| {
                    let index = *index;
                    async move {
                        let next = tokio::time::timeout(STALL_TIMEOUT, blocks.next()).await;
                        (p, index, next)
                    }
                });
            let mut dead = Vec::new();
            for (p, index, next) in futures::future::join_all(reads).await {
                match next {
                    Ok(Some(Ok(piece))) if piece.len() == stripe.piece_bytes as usize => {
                        pieces[usize::from(index)] = Some(piece);
                    }
                    Ok(Some(Err(e))) => {
                        out.note_bad_source(index, &e);
                        dead.push(p);
                    }
                    // A piece of the wrong length, a stream cut short, a stall.
                    _ => dead.push(p),
                }
            }
            for p in dead.into_iter().rev() {
                drop(sources.remove(p));
            }
        }
        let rebuilt = match decoder.rebuild_pieces(&stripe, &pieces) {
            Ok(rebuilt) => rebuilt,
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        };
        for (t, &(index, _)) in targets.iter().enumerate() {
            let Some(tx) = &senders[t] else {
                continue;
            };
            let piece = rebuilt[usize::from(index)].clone();
            let sent = tokio::time::timeout(STALL_TIMEOUT, tx.send(Ok(piece))).await;
            if !matches!(sent, Ok(Ok(()))) {
                // The target failed or stalls: stop its write (never let it end short).
                senders[t] = None;
                puts[t] = None;
            }
        }
    }
    drop(sources);
    if out.error.is_some() {
        return out; // dropping `puts` aborts every write
    }
    drop(senders); // the end of every piece stream: the writes finish
    for (t, put) in puts.into_iter().enumerate() {
        let (index, node) = targets[t];
        let Some(mut put) = put else {
            continue;
        };
        match (&mut put.0).await {
            Ok(Ok(stat)) if stat.blocks == stripes => out.written.push((index, node)),
            Ok(Ok(stat)) => tracing::warn!(
                blob = %format!("{:032x}", erasure.blob),
                index,
                node,
                "rebuilt shard has {} blocks, expected {stripes}",
                stat.blocks
            ),
            Ok(Err(e)) => tracing::debug!(index, node, "rebuilt shard not written: {e}"),
            Err(e) => tracing::debug!(index, node, "rebuilt shard write failed: {e}"),
        }
    }
    out
}

/// Copy shard `index` of a blob from node `from` to node `to` (verified block by block as
/// it is read); the copy must hold every stripe of the blob.
pub async fn copy_shard(
    io: &dyn ShardIo,
    erasure: &ErasureRef,
    size_bytes: u64,
    index: u8,
    from: NodeId,
    to: NodeId,
) -> Result<(), String> {
    let layout = ErasureLayout::from(erasure.layout);
    let stripes = layout.stripe_count(size_bytes);
    let id = ShardId::new(erasure.blob, index);
    // Generous: a minute, plus a second per 4 MiB of shard.
    let deadline = Duration::from_secs(60 + layout.shard_bytes(size_bytes) / (4 << 20));
    let copy = async {
        let blocks = io
            .read_blocks(from, id, 0, None)
            .await
            .map_err(|e| e.to_string())?;
        io.put_shard(to, id, layout.shard_format(), blocks)
            .await
            .map_err(|e| e.to_string())
    };
    let stat = tokio::time::timeout(deadline, copy)
        .await
        .map_err(|_| format!("copy of shard {id} did not finish in {deadline:?}"))??;
    if stat.blocks != stripes {
        let _ = io.delete_shard(to, id).await;
        return Err(format!(
            "shard {id} on node {from} has {} blocks, the blob has {stripes} stripes",
            stat.blocks
        ));
    }
    Ok(())
}

/// The repair worker of one node (see the module docs).
pub struct RepairWorker {
    node: NodeId,
    host: Arc<GroupHost>,
    directory: Arc<Directory>,
    index: Arc<BlobIndex>,
    io: Arc<dyn ShardIo>,
    liveness: Liveness,
    metrics: Arc<WorkerMetrics>,
    audit_after: HashMap<GroupId, Option<u128>>,
    /// Groups whose blob index is known complete; where an unfinished backfill resumes.
    indexed: HashSet<GroupId>,
    backfill_after: HashMap<GroupId, Vec<u8>>,
}

impl RepairWorker {
    pub fn new(
        host: Arc<GroupHost>,
        directory: Arc<Directory>,
        index: Arc<BlobIndex>,
        io: Arc<dyn ShardIo>,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        RepairWorker {
            node: host.node_id(),
            host,
            directory,
            index,
            liveness: Liveness::new(io.clone()),
            io,
            metrics,
            audit_after: HashMap::new(),
            indexed: HashSet::new(),
            backfill_after: HashMap::new(),
        }
    }

    /// Run a round every `interval` until `stop`.
    pub async fn run(mut self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = self.round() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn round(&mut self) {
        let groups: Vec<GroupId> = self.directory.data_group_ids().collect();
        for group in groups {
            if self.host.known_leader(group) != Some(self.node) {
                self.indexed.remove(&group);
                continue;
            }
            if !self.indexed.contains(&group) {
                if let Err(e) = self.backfill(group).await {
                    tracing::debug!(group, "blob index backfill stopped: {e}");
                }
            }
            if let Err(e) = self.repair_group(group).await {
                tracing::debug!(group, "repair round stopped: {e}");
            }
            if let Err(e) = self.audit_group(group).await {
                tracing::debug!(group, "audit round stopped: {e}");
            }
        }
    }

    /// Run the group's blob index backfill (a bounded number of steps per round).
    async fn backfill(&mut self, group: GroupId) -> Result<(), IndexError> {
        if self.index.list(group, true, None, 1).await?.index_complete {
            self.indexed.insert(group);
            return Ok(());
        }
        for _ in 0..BACKFILL_STEPS_PER_ROUND {
            let after = self.backfill_after.get(&group).cloned();
            match self.index.backfill_step(group, after).await? {
                Some(next) => {
                    self.backfill_after.insert(group, next);
                }
                None => {
                    tracing::info!(group, "blob index complete");
                    self.indexed.insert(group);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn down_nodes(&self) -> BTreeSet<NodeId> {
        self.liveness
            .down_among(self.directory.nodes.keys().copied())
            .await
    }

    async fn repair_group(&mut self, group: GroupId) -> Result<(), IndexError> {
        let mut after = None;
        let mut budget = REPAIRS_PER_ROUND;
        loop {
            let page = self.index.list(group, true, after, REPAIR_PAGE).await?;
            for entry in &page.entries {
                if budget == 0 {
                    return Ok(());
                }
                budget -= 1;
                self.repair_entry(entry).await;
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Rebuild the missing shards of one blob and commit where they now are.
    async fn repair_entry(&self, entry: &BlobEntry) {
        let Some(erasure) = &entry.erasure else {
            return;
        };
        if erasure.missing.is_empty() {
            return;
        }
        let blob = format!("{:032x}", entry.blob);
        let down = self.down_nodes().await;
        let targets = plan_targets(&self.directory, erasure, entry.storage_class, &down);
        if targets.is_empty() {
            tracing::debug!(%blob, "no live node to rebuild missing shards on");
            return;
        }
        let rebuilt = rebuild(self.io.clone(), erasure, entry.size_bytes, &targets).await;
        if !rebuilt.bad_sources.is_empty() {
            self.mark_missing(entry, rebuilt.bad_sources.clone()).await;
        }
        if let Some(why) = &rebuilt.error {
            WorkerMetrics::add(&self.metrics.repair_failures, 1);
            tracing::warn!(%blob, "repair did not finish, retrying next round: {why}");
            return;
        }
        if rebuilt.written.is_empty() {
            WorkerMetrics::add(&self.metrics.repair_failures, 1);
            return;
        }
        match self
            .index
            .mark_repaired(entry, rebuilt.written.clone())
            .await
        {
            Ok(true) => {
                WorkerMetrics::add(&self.metrics.shards_repaired, rebuilt.written.len() as u64);
                tracing::info!(%blob, shards = ?rebuilt.written, "repaired missing shards");
                for &(index, node) in &rebuilt.written {
                    let was = erasure.shard_nodes[usize::from(index)];
                    if was != node && !down.contains(&was) {
                        let id = ShardId::new(entry.blob, index);
                        let _ = self.io.delete_shard(was, id).await;
                    }
                }
            }
            Ok(false) => {
                // The version went away meanwhile: what was written is garbage.
                for &(index, node) in &rebuilt.written {
                    let _ = self
                        .io
                        .delete_shard(node, ShardId::new(entry.blob, index))
                        .await;
                }
            }
            Err(e) => {
                WorkerMetrics::add(&self.metrics.repair_failures, 1);
                tracing::warn!(%blob, "repaired shards not committed (left to the sweep): {e}");
            }
        }
    }

    async fn mark_missing(&self, entry: &BlobEntry, missing: Vec<u8>) {
        let count = missing.len() as u64;
        match self.index.mark_missing(entry, missing).await {
            Ok(true) => WorkerMetrics::add(&self.metrics.shards_marked_missing, count),
            Ok(false) => {}
            Err(e) => tracing::debug!(blob = %format!("{:032x}", entry.blob), "{e}"),
        }
    }

    async fn audit_group(&mut self, group: GroupId) -> Result<(), IndexError> {
        let after = self.audit_after.get(&group).copied().flatten();
        let page = self.index.list(group, false, after, AUDIT_PAGE).await?;
        self.audit_after.insert(group, page.next_after);
        if page.entries.is_empty() {
            return Ok(());
        }
        let down = self.down_nodes().await;
        for entry in &page.entries {
            self.audit_entry(entry, &down).await;
        }
        Ok(())
    }

    /// Check a fully durable blob's shards are there, and pay one shard of placement debt.
    async fn audit_entry(&self, entry: &BlobEntry, down: &BTreeSet<NodeId>) {
        let Some(erasure) = &entry.erasure else {
            return;
        };
        if !erasure.missing.is_empty() || !matches!(entry.owner, BlobOwner::Version { .. }) {
            return; // repaired first; parts of uploads cannot be updated
        }
        let layout = ErasureLayout::from(erasure.layout);
        let stripes = layout.stripe_count(entry.size_bytes);
        let stats = erasure
            .shard_nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| !down.contains(node))
            .map(|(i, &node)| async move {
                let id = ShardId::new(entry.blob, i as u8);
                (i as u8, self.io.stat_shard(node, id).await)
            });
        let mut bad = Vec::new();
        for (index, stat) in futures::future::join_all(stats).await {
            match stat {
                Ok(stat) if stat.blocks == stripes => {}
                Ok(_) | Err(ShardIoError::NotFound { .. } | ShardIoError::Corrupt { .. }) => {
                    bad.push(index)
                }
                Err(_) => {} // unreachable now: nothing known about the shard
            }
        }
        if !bad.is_empty() {
            tracing::warn!(
                blob = %format!("{:032x}", entry.blob),
                shards = ?bad,
                "audit found shards absent or damaged; recording them missing"
            );
            self.mark_missing(entry, bad).await;
            return;
        }
        let Some(debt) = placement_debt(&self.directory, erasure, entry.storage_class, down) else {
            return;
        };
        self.move_shard(entry, erasure, debt).await;
    }

    async fn move_shard(&self, entry: &BlobEntry, erasure: &ErasureRef, debt: Move) {
        let blob = format!("{:032x}", entry.blob);
        let id = ShardId::new(entry.blob, debt.index);
        let copied = copy_shard(
            self.io.as_ref(),
            erasure,
            entry.size_bytes,
            debt.index,
            debt.from,
            debt.to,
        )
        .await;
        if let Err(e) = copied {
            WorkerMetrics::add(&self.metrics.repair_failures, 1);
            tracing::debug!(%blob, ?debt, "shard not moved: {e}");
            return;
        }
        match self
            .index
            .mark_repaired(entry, vec![(debt.index, debt.to)])
            .await
        {
            Ok(true) => {
                WorkerMetrics::add(&self.metrics.shards_moved, 1);
                tracing::info!(%blob, ?debt, "moved a shard to a better node");
                let _ = self.io.delete_shard(debt.from, id).await;
            }
            Ok(false) => {
                let _ = self.io.delete_shard(debt.to, id).await;
            }
            Err(e) => {
                WorkerMetrics::add(&self.metrics.repair_failures, 1);
                tracing::warn!(%blob, ?debt, "shard move not committed (left to the sweep): {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::directory::NodeInfo;
    use crate::object::shard_io::LocalShardIo;
    use crate::object::write_path::tests::{body, object, six_nodes};
    use crate::object::write_path::{write_body, BodyChecks, WriteTuning};
    use crate::object::{model::DataRef, placement::ShardPlan};
    use crate::store::chunks::{ChunkStore, MemChunkStore};

    /// Nodes 1..=6 in zones a, b, c, a, b, c (two per zone).
    fn directory() -> Directory {
        let nodes = (1..=6u64)
            .map(|id| {
                let node = NodeInfo {
                    id,
                    zone: ["a", "b", "c"][(id as usize - 1) % 3].to_string(),
                    grpc_addr: String::new(),
                    http_addr: String::new(),
                };
                (id, node)
            })
            .collect();
        Directory {
            cluster_name: "test".into(),
            nodes,
            groups: BTreeMap::new(),
            data_groups: 1,
        }
    }

    fn zone(d: &Directory, n: NodeId) -> &str {
        zone_of(d, n).unwrap()
    }

    /// A blob placed as `place` would with every node up.
    fn placed(d: &Directory, blob: u128) -> ErasureRef {
        let scheme = placement::scheme_for(StorageClass::Standard).unwrap();
        let nodes = placement::place(
            d.nodes.values().map(|n| (n.id, n.zone.as_str())),
            &scheme,
            blob,
        )
        .unwrap();
        ErasureRef {
            blob,
            layout: ErasureLayout::new(4, 2, 4096).unwrap().into(),
            shard_nodes: nodes,
            missing: vec![],
        }
    }

    fn down(nodes: &[NodeId]) -> BTreeSet<NodeId> {
        nodes.iter().copied().collect()
    }

    #[test]
    fn a_missing_shard_goes_back_to_its_node_or_its_zone() {
        let d = directory();
        for blob in 0..50u128 {
            let mut e = placed(&d, blob * 7919);
            assert_eq!(
                placement_debt(&d, &e, StorageClass::Standard, &down(&[])),
                None
            );
            e.missing = vec![2];
            let was = e.shard_nodes[2];
            // Its node is up: rebuilt in place.
            assert_eq!(
                plan_targets(&d, &e, StorageClass::Standard, &down(&[])),
                [(2, was)]
            );
            // Its node is down: the other node of its zone, though it holds shard 5.
            let targets = plan_targets(&d, &e, StorageClass::Standard, &down(&[was]));
            assert_eq!(targets.len(), 1);
            let to = targets[0].1;
            assert_ne!(to, was);
            assert_eq!(zone(&d, to), zone(&d, was));
            assert_eq!(to, e.shard_nodes[5]);
            // Its whole zone is down: another zone, for durability.
            let partner = e.shard_nodes[5];
            let targets = plan_targets(&d, &e, StorageClass::Standard, &down(&[was, partner]));
            assert_ne!(zone(&d, targets[0].1), zone(&d, was));
            // Two missing shards of one zone never land on one node when avoidable.
            e.missing = vec![2, 5];
            let targets = plan_targets(&d, &e, StorageClass::Standard, &down(&[]));
            assert_eq!(targets, [(2, was), (5, partner)]);
        }
    }

    #[test]
    fn placement_debt_moves_shards_home_and_apart() {
        let d = directory();
        let home = placed(&d, 42);
        // Shard 1 doubled up on shard 4's node (same zone): moves to its own node.
        let mut shared = home.clone();
        shared.shard_nodes[1] = home.shard_nodes[4];
        let debt = placement_debt(&d, &shared, StorageClass::Standard, &down(&[])).unwrap();
        assert!(debt.index == 1 || debt.index == 4, "{debt:?}");
        assert_eq!(debt.to, home.shard_nodes[1]);
        // ...unless that node is down: then nothing better exists.
        assert_eq!(
            placement_debt(
                &d,
                &shared,
                StorageClass::Standard,
                &down(&[home.shard_nodes[1]])
            ),
            None
        );
        // Shard 0 written into another zone while its zone was down: back home.
        let mut astray = home.clone();
        let other_zone = (1..=6)
            .find(|n| zone(&d, *n) != zone(&d, home.shard_nodes[0]))
            .unwrap();
        astray.shard_nodes[0] = other_zone;
        let debt = placement_debt(&d, &astray, StorageClass::Standard, &down(&[])).unwrap();
        assert_eq!(debt.index, 0);
        assert_eq!(debt.from, other_zone);
        assert_eq!(zone(&d, debt.to), zone(&d, home.shard_nodes[0]));
        // While the home zone is down, it stays.
        let zone_down = down(&[home.shard_nodes[0], home.shard_nodes[3]]);
        assert_eq!(
            placement_debt(&d, &astray, StorageClass::Standard, &zone_down),
            None
        );
        // A blob with missing shards is repaired, not moved.
        astray.missing = vec![1];
        assert_eq!(
            placement_debt(&d, &astray, StorageClass::Standard, &down(&[])),
            None
        );
    }

    async fn stored(io: &Arc<LocalShardIo>, blob: u128, data: &[u8]) -> ErasureRef {
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let plan = ShardPlan {
            blob,
            layout,
            nodes: (1..=6).collect(),
        };
        let written = write_body(
            &**io,
            &plan,
            None,
            body(data),
            &BodyChecks::length(Some(data.len() as u64)),
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        match written.data {
            DataRef::Erasure(e) => e,
            other => panic!("{other:?}"),
        }
    }

    /// Every block of shard `index` of `blob` on a store, or `None` if it is not readable.
    fn blocks(store: &MemChunkStore, blob: u128, index: u8) -> Option<Vec<Bytes>> {
        let id = ShardId::new(blob, index);
        let stat = store.verify(id).ok()?;
        Some(
            (0..stat.blocks)
                .map(|b| store.read_block(id, b).unwrap())
                .collect(),
        )
    }

    #[tokio::test]
    async fn rebuilt_shards_are_the_lost_ones_byte_for_byte() {
        let (io, stores) = six_nodes();
        let data = object(5 * 4096 + 333);
        let size = data.len() as u64;
        let erasure = stored(&io, 9, &data).await;
        let original: Vec<Vec<Bytes>> = (0..6)
            .map(|i| blocks(&stores[i], 9, i as u8).unwrap())
            .collect();
        // Shard 1 lost (node 2), shard 4 corrupt in one block (node 5).
        assert!(stores[1].delete(ShardId::new(9, 1)).unwrap());
        assert!(stores[4].corrupt_block(ShardId::new(9, 4), 3));
        let mut damaged = erasure.clone();
        damaged.missing = vec![1, 4];
        let out = rebuild(io.clone(), &damaged, size, &[(1, 2), (4, 5)]).await;
        assert_eq!(out.error, None);
        assert_eq!(out.written, [(1, 2), (4, 5)]);
        assert_eq!(blocks(&stores[1], 9, 1).unwrap(), original[1]);
        assert_eq!(blocks(&stores[4], 9, 4).unwrap(), original[4]);

        // A source that turns out corrupt mid-way is replaced and reported.
        assert!(stores[0].corrupt_block(ShardId::new(9, 0), 2));
        let mut lost = erasure.clone();
        lost.missing = vec![3];
        assert!(stores[3].delete(ShardId::new(9, 3)).unwrap());
        let out = rebuild(io.clone(), &lost, size, &[(3, 1)]).await;
        assert_eq!(out.error, None);
        assert_eq!(out.written, [(3, 1)]);
        assert_eq!(out.bad_sources, [0]);
        assert_eq!(blocks(&stores[0], 9, 3).unwrap(), original[3]);
    }

    #[tokio::test]
    async fn a_rebuild_that_runs_out_of_sources_writes_nothing() {
        let (io, stores) = six_nodes();
        let data = object(4 * 4096);
        let mut erasure = stored(&io, 11, &data).await;
        let before = blocks(&stores[0], 11, 0).unwrap();
        // Shard 0 is to be rebuilt onto node 1, where its old copy still is. Shard 5's
        // node is down and shard 2 goes bad at stripe 2: after two stripes were sent to
        // the target, too few sources remain.
        erasure.missing = vec![0];
        io.set_down(6, true);
        assert!(stores[2].corrupt_block(ShardId::new(11, 2), 2));
        let out = rebuild(io.clone(), &erasure, data.len() as u64, &[(0, 1)]).await;
        assert!(
            out.error.as_deref().unwrap().contains("stripe 2"),
            "{out:?}"
        );
        assert!(out.written.is_empty());
        assert_eq!(out.bad_sources, [2]);
        // The aborted write never replaced the old copy with a short one.
        assert_eq!(blocks(&stores[0], 11, 0).unwrap(), before);
    }

    #[tokio::test]
    async fn copies_are_verified_and_whole() {
        let (io, stores) = six_nodes();
        let data = object(2 * 4096 + 5);
        let erasure = stored(&io, 13, &data).await;
        let size = data.len() as u64;
        copy_shard(io.as_ref(), &erasure, size, 2, 3, 1)
            .await
            .unwrap();
        assert_eq!(blocks(&stores[0], 13, 2), blocks(&stores[2], 13, 2));
        assert!(stores[2].corrupt_block(ShardId::new(13, 2), 1));
        assert!(copy_shard(io.as_ref(), &erasure, size, 2, 3, 4)
            .await
            .is_err());
        assert!(blocks(&stores[3], 13, 2).is_none(), "no partial copy left");
    }

    #[tokio::test]
    async fn an_empty_blob_rebuilds_to_an_empty_shard() {
        let (io, stores) = six_nodes();
        let erasure = ErasureRef {
            blob: 3,
            layout: ErasureLayout::new(4, 2, 4096).unwrap().into(),
            shard_nodes: (1..=6).collect(),
            missing: vec![0],
        };
        let out = rebuild(io, &erasure, 0, &[(0, 1)]).await;
        assert_eq!(out.written, [(0, 1)]);
        assert_eq!(stores[0].stat(ShardId::new(3, 0)).unwrap().blocks, 0);
    }
}
