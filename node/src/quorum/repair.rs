//! The catalog's repair worker: membership changes of protection groups, run by the meta
//! group's leader only (every `2 × quorum.gossip_interval_ms`).
//!
//! Each round it reads the catalog (a linearizable read), asks every segment of every PG
//! for its status (`Segments.SegmentStatus`, short timeout) and then, per PG
//! (`plan_pg`, pure):
//! 1. tells segments that lack the PG's membership, or hold an older one (NOT_FOUND, or an
//!    older membership epoch), with `Segments.SetMembership`; during a replacement this
//!    creates the new segment, which fills itself from its peers;
//! 2. ends a replacement (`FinishReplace`) once the new segment holds everything up to the
//!    target the change began with (SCL or readable point at or above it; with target 0,
//!    once it exists), then tells the new six;
//! 3. when `quorum.replace_after_ms` > 0, starts a replacement (`ReplaceSegment`) of a
//!    member whose node has answered no probe for that long, on a node of the same zone
//!    that holds no segment of the PG and does answer; one change per PG at a time.
//!
//! Silence is measured from when this node became the meta leader (a new leader starts
//! every node's clock afresh), so a leader change delays an automatic replacement by up to
//! `replace_after_ms`, never hastens it. Every action is a catalog command checked by the
//! apply (stale epochs refused), or an idempotent message to a segment; a failed action is
//! retried next round.
//!
//! Also here: `SegmentPeers`, the seam between the catalog side and the segments' gRPC
//! service (`GrpcSegmentPeers` over `stratus.quorum.Segments`), and the wire form of a PG's
//! membership, which the Volumes service shares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stratus_proto::quorum as wire;
use stratus_proto::quorum::segments_client::SegmentsClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::catalog::{CatalogError, VolumeCatalog};
use super::catalog_state::{PgRecord, VolumeId, VolumeRecord, SEGMENTS_PER_PG};
use super::placement::{choose_replacement, segment_load, SegmentLoad};
use super::QuorumSettings;
use crate::cluster::directory::NodeId;
use crate::cluster::{Directory, NodeInfo, META_GROUP};
use crate::raft::host::GroupHost;

/// How long a status probe or membership message may take.
const PEER_TIMEOUT: Duration = Duration::from_millis(1_000);

/// One segment: volume, PG, slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentRef {
    pub volume_id: VolumeId,
    pub pg: u32,
    pub slot: u32,
}

/// What a segment said of itself (the parts the catalog side uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentProbe {
    pub membership_epoch: u64,
    pub scl: u64,
    pub known_vdl: u64,
    pub readable_lsn: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The node answered: it holds no such segment.
    #[error("the node holds no such segment")]
    NotFound,
    /// The node answered with another error (it is alive).
    #[error("the node refused: {0}")]
    Refused(String),
    /// No answer (connection refused, timeout, unknown node).
    #[error("no answer: {0}")]
    Unreachable(String),
}

impl ProbeError {
    /// Whether the node itself answered.
    pub fn answered(&self) -> bool {
        !matches!(self, ProbeError::Unreachable(_))
    }
}

pub type ProbeResult = Result<SegmentProbe, ProbeError>;

/// The catalog side's calls to segments.
#[async_trait::async_trait]
pub trait SegmentPeers: Send + Sync {
    async fn status(&self, node: NodeId, segment: SegmentRef) -> ProbeResult;
    /// Tell the segment its PG's membership (`pg` as the catalog holds it).
    async fn set_membership(
        &self,
        node: NodeId,
        segment: SegmentRef,
        pg: &PgRecord,
    ) -> Result<(), ProbeError>;
}

/// The slots of a PG's segments and their nodes: the six members, and during a
/// replacement the new segment too.
pub fn segments_of(pg: &PgRecord) -> Vec<(u32, NodeId)> {
    let mut out: Vec<(u32, NodeId)> = pg
        .members
        .iter()
        .enumerate()
        .map(|(slot, node)| (slot as u32, *node))
        .collect();
    if let Some((slot, node)) = pg.replacement() {
        out.push((slot as u32, node));
    }
    out
}

/// The highest VDL any answering member of the PG's current six has been told.
pub fn highest_known_vdl(pg: &PgRecord, observed: &BTreeMap<(u32, NodeId), ProbeResult>) -> u64 {
    pg.members
        .iter()
        .enumerate()
        .filter_map(|(slot, node)| match observed.get(&(slot as u32, *node)) {
            Some(Ok(p)) => Some(p.known_vdl),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Probe every given segment of a PG at once.
pub async fn probe_all(
    peers: &dyn SegmentPeers,
    volume_id: VolumeId,
    pg: u32,
    segments: &[(u32, NodeId)],
) -> BTreeMap<(u32, NodeId), ProbeResult> {
    let probes = segments.iter().map(|(slot, node)| async move {
        let segment = SegmentRef {
            volume_id,
            pg,
            slot: *slot,
        };
        ((*slot, *node), peers.status(*node, segment).await)
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .collect()
}

// ---- the pure core ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairAction {
    /// Send the PG's membership to the segment in `slot` on `node`.
    Tell { slot: u32, node: NodeId },
    /// End the replacement begun at `membership_epoch`.
    Finish { membership_epoch: u64 },
    /// Start replacing `slot` with a segment on `new_node`.
    Replace {
        slot: u32,
        new_node: NodeId,
        target_lsn: u64,
    },
}

/// What to do for one PG, given what its segments answered and which nodes have been
/// silent too long (empty unless automatic replacement is on).
pub fn plan_pg(
    pg: &PgRecord,
    observed: &BTreeMap<(u32, NodeId), ProbeResult>,
    silent: &BTreeSet<NodeId>,
    nodes: &[NodeInfo],
    load: &SegmentLoad,
) -> Vec<RepairAction> {
    let mut actions = Vec::new();
    for (slot, node) in segments_of(pg) {
        let behind = match observed.get(&(slot, node)) {
            Some(Ok(p)) => p.membership_epoch < pg.membership_epoch,
            Some(Err(ProbeError::NotFound)) => true,
            _ => false,
        };
        if behind {
            actions.push(RepairAction::Tell { slot, node });
        }
    }
    if let Some((slot, node)) = pg.replacement() {
        let target = pg.transition_target_lsn;
        if let Some(Ok(p)) = observed.get(&(slot as u32, node)) {
            if target == 0 || p.scl >= target || p.readable_lsn >= target {
                actions.push(RepairAction::Finish {
                    membership_epoch: pg.membership_epoch,
                });
            }
        }
        return actions;
    }
    let zone_of = |id: NodeId| nodes.iter().find(|n| n.id == id).map(|n| n.zone.as_str());
    for (slot, old) in pg.members.iter().enumerate() {
        if !silent.contains(old) {
            continue;
        }
        let Some(zone) = zone_of(*old) else { continue };
        let exclude: Vec<NodeId> = pg
            .nodes()
            .into_iter()
            .chain(silent.iter().copied())
            .collect();
        if let Some(new_node) = choose_replacement(nodes, zone, &exclude, load) {
            actions.push(RepairAction::Replace {
                slot: slot as u32,
                new_node,
                target_lsn: highest_known_vdl(pg, observed),
            });
            break;
        }
    }
    actions
}

// ---- the async shell ----

pub struct RepairWorker {
    catalog: Arc<VolumeCatalog>,
    peers: Arc<dyn SegmentPeers>,
    host: Arc<GroupHost>,
    directory: Arc<Directory>,
    settings: QuorumSettings,
}

/// When each node last answered, as this leader saw it.
struct Liveness {
    last_answer: HashMap<NodeId, Instant>,
}

impl Liveness {
    fn start(directory: &Directory) -> Liveness {
        let now = Instant::now();
        Liveness {
            last_answer: directory.nodes.keys().map(|id| (*id, now)).collect(),
        }
    }

    fn answered(&mut self, node: NodeId) {
        self.last_answer.insert(node, Instant::now());
    }

    fn silent(&self, after: Duration) -> BTreeSet<NodeId> {
        self.last_answer
            .iter()
            .filter(|(_, t)| t.elapsed() >= after)
            .map(|(id, _)| *id)
            .collect()
    }
}

impl RepairWorker {
    pub fn new(
        catalog: Arc<VolumeCatalog>,
        peers: Arc<dyn SegmentPeers>,
        host: Arc<GroupHost>,
        directory: Arc<Directory>,
        settings: QuorumSettings,
    ) -> Self {
        RepairWorker {
            catalog,
            peers,
            host,
            directory,
            settings,
        }
    }

    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.settings.gossip_interval_ms.saturating_mul(2).max(20))
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut liveness: Option<Liveness> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if self.host.known_leader(META_GROUP) != Some(self.host.node_id()) {
                liveness = None;
                continue;
            }
            let live = liveness.get_or_insert_with(|| Liveness::start(&self.directory));
            if let Err(e) = self.round(live).await {
                tracing::debug!("volume repair round deferred: {e}");
            }
        }
    }

    async fn round(&self, live: &mut Liveness) -> Result<(), CatalogError> {
        let volumes = self.catalog.list().await?;
        let nodes: Vec<NodeInfo> = self.directory.nodes.values().cloned().collect();
        let mut load = segment_load(&volumes);
        let mut probed = BTreeSet::new();
        let mut plans = Vec::new();
        for volume in &volumes {
            for pg in &volume.pgs {
                let observed =
                    probe_all(&*self.peers, volume.volume_id, pg.pg, &segments_of(pg)).await;
                for ((_, node), result) in &observed {
                    probed.insert(*node);
                    if result.as_ref().err().is_none_or(ProbeError::answered) {
                        live.answered(*node);
                    }
                }
                plans.push((volume, pg, observed));
            }
        }
        // Nodes holding no segment are probed too, so a spare is known to be alive.
        let idle: Vec<(u32, NodeId)> = nodes
            .iter()
            .filter(|n| !probed.contains(&n.id))
            .map(|n| (0, n.id))
            .collect();
        for ((_, node), result) in probe_all(&*self.peers, 0, 0, &idle).await {
            if result.err().is_none_or(|e| e.answered()) {
                live.answered(node);
            }
        }
        let silent = match self.settings.replace_after_ms {
            0 => BTreeSet::new(),
            ms => live.silent(Duration::from_millis(ms)),
        };
        for (volume, pg, observed) in plans {
            for action in plan_pg(pg, &observed, &silent, &nodes, &load) {
                if let RepairAction::Replace { new_node, .. } = &action {
                    *load.entry(*new_node).or_default() += 1;
                }
                if let Err(e) = self.act(volume, pg, action).await {
                    tracing::debug!(
                        volume = %volume.name,
                        pg = pg.pg,
                        "volume repair action deferred: {e}"
                    );
                }
            }
        }
        Ok(())
    }

    async fn act(
        &self,
        volume: &VolumeRecord,
        pg: &PgRecord,
        action: RepairAction,
    ) -> Result<(), CatalogError> {
        let segment = |slot| SegmentRef {
            volume_id: volume.volume_id,
            pg: pg.pg,
            slot,
        };
        match action {
            RepairAction::Tell { slot, node } => {
                if let Err(e) = self.peers.set_membership(node, segment(slot), pg).await {
                    tracing::debug!(node, slot, pg = pg.pg, "membership not delivered: {e}");
                }
                Ok(())
            }
            RepairAction::Finish { membership_epoch } => {
                let updated = self
                    .catalog
                    .finish_replace(&volume.name, volume.volume_id, pg.pg, membership_epoch)
                    .await?;
                tracing::info!(volume = %volume.name, pg = pg.pg, "segment replacement finished");
                self.tell_all(&updated, pg.pg).await;
                Ok(())
            }
            RepairAction::Replace {
                slot,
                new_node,
                target_lsn,
            } => {
                let updated = self
                    .catalog
                    .start_replace(
                        &volume.name,
                        Some(volume.volume_id),
                        pg.pg,
                        slot,
                        new_node,
                        target_lsn,
                    )
                    .await?;
                tracing::info!(
                    volume = %volume.name,
                    pg = pg.pg,
                    slot,
                    old = pg.members[slot as usize],
                    new_node,
                    "replacing the segment of a silent node"
                );
                self.tell_all(&updated, pg.pg).await;
                Ok(())
            }
        }
    }

    /// Send a PG's membership to all its segments, at once; failures wait for next round.
    async fn tell_all(&self, volume: &VolumeRecord, pg: u32) {
        let Some(record) = volume.pgs.get(pg as usize) else {
            return;
        };
        let sends = segments_of(record).into_iter().map(|(slot, node)| {
            let segment = SegmentRef {
                volume_id: volume.volume_id,
                pg,
                slot,
            };
            async move { self.peers.set_membership(node, segment, record).await }
        });
        futures::future::join_all(sends).await;
    }
}

// ---- the segments' gRPC service ----

/// A PG's membership as the wire carries it (zones and addresses from the directory).
pub fn membership_to_wire(pg: &PgRecord, directory: &Directory) -> wire::PgMembership {
    let places = |members: &[NodeId; SEGMENTS_PER_PG]| {
        members
            .iter()
            .enumerate()
            .map(|(slot, node)| {
                let info = directory.nodes.get(node);
                wire::SegmentPlace {
                    slot: slot as u32,
                    node_id: *node,
                    zone: info.map(|n| n.zone.clone()).unwrap_or_default(),
                    grpc_addr: info.map(|n| n.grpc_addr.clone()).unwrap_or_default(),
                }
            })
            .collect()
    };
    wire::PgMembership {
        pg: pg.pg,
        membership_epoch: pg.membership_epoch,
        members: places(&pg.members),
        next_members: pg.next_members.as_ref().map(places).unwrap_or_default(),
    }
}

/// `SegmentPeers` over each node's `Segments` service, one lazy channel per node.
pub struct GrpcSegmentPeers {
    cluster: String,
    directory: Arc<Directory>,
    channels: Mutex<HashMap<NodeId, Channel>>,
}

impl GrpcSegmentPeers {
    pub fn new(cluster: String, directory: Arc<Directory>) -> Self {
        GrpcSegmentPeers {
            cluster,
            directory,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, node: NodeId) -> Result<SegmentsClient<Channel>, ProbeError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(&node) {
            return Ok(SegmentsClient::new(ch.clone()));
        }
        let addr = self
            .directory
            .nodes
            .get(&node)
            .map(|n| n.grpc_addr.clone())
            .ok_or_else(|| ProbeError::Unreachable(format!("node {node} is not in the cluster")))?;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ProbeError::Unreachable(format!("bad address {addr}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(node, channel.clone());
        Ok(SegmentsClient::new(channel))
    }

    fn segment_id(segment: SegmentRef) -> wire::SegmentId {
        wire::SegmentId {
            volume_id: segment.volume_id,
            pg: segment.pg,
            slot: segment.slot,
        }
    }
}

fn probe_error(status: tonic::Status) -> ProbeError {
    // A status without response headers was made up by the client (connection refused,
    // reset): the node did not answer.
    let from_node = status.metadata().get("content-type").is_some();
    match status.code() {
        Code::NotFound => ProbeError::NotFound,
        Code::Unavailable | Code::DeadlineExceeded => {
            ProbeError::Unreachable(status.message().to_string())
        }
        _ if !from_node => ProbeError::Unreachable(status.message().to_string()),
        code => ProbeError::Refused(format!("{code:?}: {}", status.message())),
    }
}

#[async_trait::async_trait]
impl SegmentPeers for GrpcSegmentPeers {
    async fn status(&self, node: NodeId, segment: SegmentRef) -> ProbeResult {
        let mut client = self.client(node)?;
        let mut request = tonic::Request::new(wire::SegmentStatusRequest {
            cluster: self.cluster.clone(),
            segment: Some(Self::segment_id(segment)),
        });
        request.set_timeout(PEER_TIMEOUT);
        let call = tokio::time::timeout(PEER_TIMEOUT, client.segment_status(request));
        match call.await {
            Err(_) => Err(ProbeError::Unreachable("timed out".into())),
            Ok(Err(status)) => Err(probe_error(status)),
            Ok(Ok(reply)) => {
                let r = reply.into_inner();
                Ok(SegmentProbe {
                    membership_epoch: r.membership_epoch,
                    scl: r.scl,
                    known_vdl: r.known_vdl,
                    readable_lsn: r.readable_lsn,
                })
            }
        }
    }

    async fn set_membership(
        &self,
        node: NodeId,
        segment: SegmentRef,
        pg: &PgRecord,
    ) -> Result<(), ProbeError> {
        let mut client = self.client(node)?;
        let mut request = tonic::Request::new(wire::SetMembershipRequest {
            cluster: self.cluster.clone(),
            segment: Some(Self::segment_id(segment)),
            membership: Some(membership_to_wire(pg, &self.directory)),
        });
        request.set_timeout(PEER_TIMEOUT);
        match tokio::time::timeout(PEER_TIMEOUT, client.set_membership(request)).await {
            Err(_) => Err(ProbeError::Unreachable("timed out".into())),
            Ok(Err(status)) => Err(probe_error(status)),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u64) -> Vec<NodeInfo> {
        (1..=n)
            .map(|id| NodeInfo {
                id,
                zone: format!("az-{}", (b'a' + ((id - 1) % 3) as u8) as char),
                grpc_addr: format!("127.0.0.1:{}", 7000 + id),
                http_addr: String::new(),
            })
            .collect()
    }

    fn pg() -> PgRecord {
        PgRecord {
            pg: 0,
            membership_epoch: 1,
            members: [1, 4, 2, 5, 3, 6],
            next_members: None,
            transition_target_lsn: 0,
        }
    }

    fn up(membership_epoch: u64, known_vdl: u64, scl: u64) -> ProbeResult {
        Ok(SegmentProbe {
            membership_epoch,
            scl,
            known_vdl,
            readable_lsn: 0,
        })
    }

    fn all_up(pg: &PgRecord, epoch: u64) -> BTreeMap<(u32, NodeId), ProbeResult> {
        segments_of(pg)
            .into_iter()
            .map(|s| (s, up(epoch, 10 + s.0 as u64, 0)))
            .collect()
    }

    #[test]
    fn a_healthy_pg_needs_nothing() {
        let pg = pg();
        let plan = plan_pg(
            &pg,
            &all_up(&pg, 1),
            &BTreeSet::new(),
            &nodes(9),
            &SegmentLoad::new(),
        );
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn segments_behind_or_missing_are_told() {
        let pg = pg();
        let mut observed = all_up(&pg, 1);
        observed.insert((0, 1), Err(ProbeError::NotFound));
        observed.insert((3, 5), up(0, 0, 0));
        observed.insert((4, 3), Err(ProbeError::Unreachable("down".into())));
        let plan = plan_pg(
            &pg,
            &observed,
            &BTreeSet::new(),
            &nodes(6),
            &SegmentLoad::new(),
        );
        assert_eq!(
            plan,
            [
                RepairAction::Tell { slot: 0, node: 1 },
                RepairAction::Tell { slot: 3, node: 5 }
            ]
        );
    }

    #[test]
    fn a_silent_member_is_replaced_in_its_zone_with_the_highest_known_vdl() {
        let pg = pg();
        let mut observed = all_up(&pg, 1);
        observed.insert((2, 2), Err(ProbeError::Unreachable("down".into())));
        let silent = BTreeSet::from([2]);
        // az-b holds 2, 5, 8: 8 is the spare.
        let plan = plan_pg(&pg, &observed, &silent, &nodes(9), &SegmentLoad::new());
        assert_eq!(
            plan,
            [RepairAction::Replace {
                slot: 2,
                new_node: 8,
                target_lsn: 15
            }]
        );
        // No spare in the zone (6 nodes): nothing to do.
        assert!(plan_pg(&pg, &observed, &silent, &nodes(6), &SegmentLoad::new()).is_empty());
        // A silent spare is not chosen.
        let both = BTreeSet::from([2, 8]);
        assert!(plan_pg(&pg, &observed, &both, &nodes(9), &SegmentLoad::new()).is_empty());
    }

    #[test]
    fn a_replacement_ends_when_the_new_segment_reaches_the_target() {
        let mut pg = pg();
        pg.membership_epoch = 2;
        pg.next_members = Some([1, 4, 8, 5, 3, 6]);
        pg.transition_target_lsn = 20;
        let mut observed = all_up(&pg, 2);
        observed.insert((2, 2), Err(ProbeError::Unreachable("down".into())));
        observed.insert((2, 8), up(2, 0, 19));
        // Not there yet; the silent old member gives no second replacement.
        let silent = BTreeSet::from([2]);
        assert!(plan_pg(&pg, &observed, &silent, &nodes(9), &SegmentLoad::new()).is_empty());
        observed.insert((2, 8), up(2, 0, 20));
        assert_eq!(
            plan_pg(&pg, &observed, &silent, &nodes(9), &SegmentLoad::new()),
            [RepairAction::Finish {
                membership_epoch: 2
            }]
        );
        // A new segment that does not exist yet is told first.
        observed.insert((2, 8), Err(ProbeError::NotFound));
        assert_eq!(
            plan_pg(&pg, &observed, &silent, &nodes(9), &SegmentLoad::new()),
            [RepairAction::Tell { slot: 2, node: 8 }]
        );
        // Target 0: existing is enough.
        pg.transition_target_lsn = 0;
        observed.insert((2, 8), up(1, 0, 0));
        assert_eq!(
            plan_pg(&pg, &observed, &silent, &nodes(9), &SegmentLoad::new()),
            [
                RepairAction::Tell { slot: 2, node: 8 },
                RepairAction::Finish {
                    membership_epoch: 2
                }
            ]
        );
    }

    #[test]
    fn the_wire_membership_names_zones_and_addresses() {
        let directory = Directory::build("c", nodes(9), 1).unwrap();
        let mut pg = pg();
        pg.next_members = Some([1, 4, 8, 5, 3, 6]);
        let w = membership_to_wire(&pg, &directory);
        assert_eq!(w.members.len(), 6);
        assert_eq!(w.next_members[2].node_id, 8);
        assert_eq!(w.next_members[2].zone, "az-b");
        assert_eq!(w.members[2].grpc_addr, "127.0.0.1:7002");
        assert_eq!(w.members[5].slot, 5);
    }
}
