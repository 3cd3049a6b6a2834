//! Background work of this node's segments (docs/quorum-storage.md, "Segments"): every
//! `gossip_interval_ms`, for each local segment with a membership,
//!
//! 1. ask every peer member for its status (concurrently, short timeouts) and adopt a newer
//!    epoch and history and a newer readable point;
//! 2. fill holes: read the records above our SCL from the peers that have them
//!    (`ReadRecords`, bounded per round), or copy the segment (`CopySegment`) from a peer
//!    whose log no longer reaches back to our SCL;
//! 3. materialize pages up to the readable point;
//! 4. collect the log at or below what a write quorum of members has materialized.
//!
//! Guarantees: nothing a peer sends is taken without its CRC and the same validity checks
//! as an Append (except the epoch equality); a peer that does not answer only delays this
//! segment's round. Not here: the decisions (`segment`) and persistence (`segment_host`).
//!
//! `wire` converts between the protobuf messages and the domain types; the gRPC service
//! uses it too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use stratus_proto::quorum::copy_segment_piece::Item;
use stratus_proto::quorum::segments_client::SegmentsClient;
use stratus_proto::quorum::{
    CopySegmentRequest, LogRecord, MaterializedPage, ReadRecordsRequest, SegmentStatusRequest,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, warn};

use super::segment::{needs_copy, Membership, Place, SegmentKey, SegmentStatus};
use super::segment_host::{SegmentCopy, SegmentHost};
use super::QuorumSettings;

/// How long a peer has to answer a status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a peer has to send records.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole segment copy may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(60);
/// Records fetched per segment per round.
const RECORDS_BYTES_PER_ROUND: u64 = 4 << 20;
/// A copy larger than this is refused (it would not fit in memory comfortably).
const MAX_COPY_BYTES: usize = 256 << 20;
/// Message size limit for segment traffic.
pub const MAX_SEGMENT_MESSAGE_BYTES: usize = 32 << 20;
/// Segments worked on at the same time.
const SEGMENTS_IN_PARALLEL: usize = 8;

pub struct SegmentWorker {
    host: Arc<SegmentHost>,
    settings: QuorumSettings,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl SegmentWorker {
    pub fn new(host: Arc<SegmentHost>, settings: QuorumSettings) -> Self {
        SegmentWorker {
            host,
            settings,
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let period = Duration::from_millis(self.settings.gossip_interval_ms.max(10));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let worker = Arc::new(self);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                tokio::select! {
                    changed = shutdown.changed() => {
                        if changed.is_err() { break; }
                    }
                    _ = ticker.tick() => worker.round().await,
                }
            }
        })
    }

    /// One round over every local segment.
    pub async fn round(self: &Arc<Self>) {
        let keys = self.host.keys();
        futures::stream::iter(keys)
            .for_each_concurrent(SEGMENTS_IN_PARALLEL, |key| {
                let worker = self.clone();
                async move { worker.segment_round(key).await }
            })
            .await;
    }

    fn client(&self, addr: &str) -> Option<SegmentsClient<Channel>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .ok()?
                    .connect_timeout(STATUS_TIMEOUT);
                let c = endpoint.connect_lazy();
                channels.insert(addr.to_string(), c.clone());
                c
            }
        };
        Some(
            SegmentsClient::new(channel)
                .max_decoding_message_size(MAX_SEGMENT_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_SEGMENT_MESSAGE_BYTES),
        )
    }

    fn peer_id(&self, key: SegmentKey, peer: &Place) -> stratus_proto::quorum::SegmentId {
        wire::segment_id(SegmentKey {
            slot: peer.slot,
            ..key
        })
    }

    async fn peer_status(&self, key: SegmentKey, peer: &Place) -> Option<SegmentStatus> {
        let mut client = self.client(&peer.grpc_addr)?;
        let mut req = tonic::Request::new(SegmentStatusRequest {
            cluster: self.host.cluster_name.clone(),
            segment: Some(self.peer_id(key, peer)),
        });
        req.set_timeout(STATUS_TIMEOUT);
        match client.segment_status(req).await {
            Ok(reply) => Some(wire::status_from_wire(&reply.into_inner())),
            Err(e) => {
                debug!(?key, peer = peer.node_id, error = %e, "peer status unavailable");
                None
            }
        }
    }

    async fn segment_round(&self, key: SegmentKey) {
        let Some((Some(membership), _)) = self.host.gossip_view(key).await else {
            return;
        };
        let peers = membership.peers(self.host.node_id);
        let statuses: Vec<(Place, Option<SegmentStatus>)> =
            futures::future::join_all(peers.into_iter().map(|p| async move {
                let s = if p.grpc_addr.is_empty() {
                    None
                } else {
                    self.peer_status(key, &p).await
                };
                (p, s)
            }))
            .await;
        for (peer, status) in &statuses {
            if let Some(status) = status {
                if let Err(e) = self.host.adopt_peer(key, status.clone()).await {
                    warn!(?key, peer = peer.node_id, error = %e, "cannot adopt a peer's status");
                }
            }
        }
        if let Err(e) = self.fill(key, &statuses).await {
            warn!(?key, error = %e, "filling from peers failed");
        }
        if let Err(e) = self.host.materialize(key).await {
            warn!(?key, error = %e, "materialization failed");
        }
        let Ok(own) = self.host.status(key).await else {
            return;
        };
        let sets = gc_sets(&membership, self.host.node_id, &own, &statuses);
        if let Err(e) = self.host.collect_garbage(key, sets).await {
            warn!(?key, error = %e, "garbage collection failed");
        }
    }

    /// Fetch what peers hold beyond our SCL, most complete peer first.
    async fn fill(
        &self,
        key: SegmentKey,
        statuses: &[(Place, Option<SegmentStatus>)],
    ) -> Result<(), String> {
        let mut candidates: Vec<(&Place, &SegmentStatus)> = statuses
            .iter()
            .filter_map(|(p, s)| s.as_ref().map(|s| (p, s)))
            .collect();
        candidates.sort_by_key(|(_, s)| std::cmp::Reverse(s.scl));
        let mut budget = RECORDS_BYTES_PER_ROUND;
        for (peer, peer_status) in candidates {
            let own = self.host.status(key).await.map_err(|e| e.to_string())?;
            if peer_status.max_lsn <= own.scl && !needs_copy(&own, peer_status) {
                continue;
            }
            if needs_copy(&own, peer_status) {
                let copy = self.copy_from(key, peer).await?;
                self.host
                    .install_copy(key, copy)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    ?key,
                    from = peer.node_id,
                    "segment refilled by a copy from a peer"
                );
                continue;
            }
            if budget == 0 {
                break;
            }
            let records = self.records_from(key, peer, own.scl, budget).await?;
            let bytes: u64 = records
                .iter()
                .map(|r| prost::Message::encoded_len(r) as u64)
                .sum();
            budget = budget.saturating_sub(bytes.max(1));
            if !records.is_empty() {
                self.host
                    .insert_peer_records(key, records)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    async fn records_from(
        &self,
        key: SegmentKey,
        peer: &Place,
        after_lsn: u64,
        max_bytes: u64,
    ) -> Result<Vec<LogRecord>, String> {
        let mut client = self
            .client(&peer.grpc_addr)
            .ok_or_else(|| format!("bad address {}", peer.grpc_addr))?;
        let mut req = tonic::Request::new(ReadRecordsRequest {
            cluster: self.host.cluster_name.clone(),
            segment: Some(self.peer_id(key, peer)),
            after_lsn,
            up_to_lsn: 0,
            max_bytes,
        });
        req.set_timeout(RECORDS_TIMEOUT);
        let reply = client
            .read_records(req)
            .await
            .map_err(|e| format!("ReadRecords from node {}: {e}", peer.node_id))?;
        Ok(reply.into_inner().records)
    }

    async fn copy_from(&self, key: SegmentKey, peer: &Place) -> Result<SegmentCopy, String> {
        let mut client = self
            .client(&peer.grpc_addr)
            .ok_or_else(|| format!("bad address {}", peer.grpc_addr))?;
        let mut req = tonic::Request::new(CopySegmentRequest {
            cluster: self.host.cluster_name.clone(),
            segment: Some(self.peer_id(key, peer)),
        });
        req.set_timeout(COPY_TIMEOUT);
        let err = |e: tonic::Status| format!("CopySegment from node {}: {e}", peer.node_id);
        let mut stream = client.copy_segment(req).await.map_err(err)?.into_inner();
        let mut status = None;
        let mut pages: Vec<MaterializedPage> = Vec::new();
        let mut records: Vec<LogRecord> = Vec::new();
        let mut bytes = 0usize;
        while let Some(piece) = stream.message().await.map_err(err)? {
            match piece.item {
                Some(Item::Status(s)) => status = Some(wire::status_from_wire(&s)),
                Some(Item::Page(p)) => {
                    bytes += prost::Message::encoded_len(&p);
                    pages.push(p);
                }
                Some(Item::Record(r)) => {
                    bytes += prost::Message::encoded_len(&r);
                    records.push(r);
                }
                None => {}
            }
            if bytes > MAX_COPY_BYTES {
                return Err(format!(
                    "copy from node {} exceeds {MAX_COPY_BYTES} bytes",
                    peer.node_id
                ));
            }
        }
        let status =
            status.ok_or_else(|| format!("copy from node {} sent no status", peer.node_id))?;
        Ok(SegmentCopy {
            status,
            pages,
            records,
        })
    }
}

/// For each member set, the six members' materialized points (own from `own`, a peer's from
/// its status, 0 when unknown).
fn gc_sets(
    membership: &Membership,
    own_node: u64,
    own: &SegmentStatus,
    statuses: &[(Place, Option<SegmentStatus>)],
) -> Vec<Vec<u64>> {
    let point = |p: &Place| {
        if p.node_id == own_node {
            own.materialized.vdl
        } else {
            statuses
                .iter()
                .find(|(q, _)| q.node_id == p.node_id)
                .and_then(|(_, s)| s.as_ref())
                .map(|s| s.materialized.vdl)
                .unwrap_or(0)
        }
    };
    let mut sets = vec![membership.members.iter().map(point).collect::<Vec<u64>>()];
    if !membership.next_members.is_empty() {
        sets.push(membership.next_members.iter().map(point).collect());
    }
    sets
}

/// Conversions between the protobuf messages and the domain types of segments.
pub mod wire {
    use stratus_proto::quorum as pb;

    use crate::quorum::segment::{
        Membership, Outcome, Place, ReadPoint, SegmentKey, SegmentStatus, Truncation,
    };

    pub fn segment_id(key: SegmentKey) -> pb::SegmentId {
        pb::SegmentId {
            volume_id: key.volume_id,
            pg: key.pg,
            slot: key.slot,
        }
    }

    pub fn segment_key(id: &pb::SegmentId) -> SegmentKey {
        SegmentKey {
            volume_id: id.volume_id,
            pg: id.pg,
            slot: id.slot,
        }
    }

    pub fn history_from_wire(h: &[pb::Truncation]) -> Vec<Truncation> {
        h.iter()
            .map(|t| Truncation {
                epoch: t.epoch,
                truncated_above: t.truncated_above,
            })
            .collect()
    }

    pub fn history_to_wire(h: &[Truncation]) -> Vec<pb::Truncation> {
        h.iter()
            .map(|t| pb::Truncation {
                epoch: t.epoch,
                truncated_above: t.truncated_above,
            })
            .collect()
    }

    fn place_from_wire(p: &pb::SegmentPlace) -> Place {
        Place {
            slot: p.slot,
            node_id: p.node_id,
            zone: p.zone.clone(),
            grpc_addr: p.grpc_addr.clone(),
        }
    }

    pub fn membership_from_wire(m: &pb::PgMembership) -> Membership {
        Membership {
            pg: m.pg,
            membership_epoch: m.membership_epoch,
            members: m.members.iter().map(place_from_wire).collect(),
            next_members: m.next_members.iter().map(place_from_wire).collect(),
        }
    }

    pub fn status_to_wire(s: &SegmentStatus) -> pb::SegmentStatusReply {
        pb::SegmentStatusReply {
            epoch: s.epoch,
            membership_epoch: s.membership_epoch,
            scl: s.scl,
            max_lsn: s.max_lsn,
            known_vdl: s.known_vdl,
            readable_lsn: s.readable.vdl,
            materialized_lsn: s.materialized.vdl,
            log_start_lsn: s.log_start_lsn,
            history: history_to_wire(&s.history),
            readable_pg_tail: s.readable.pg_tail,
            materialized_pg_tail: s.materialized.pg_tail,
        }
    }

    pub fn status_from_wire(s: &pb::SegmentStatusReply) -> SegmentStatus {
        SegmentStatus {
            epoch: s.epoch,
            membership_epoch: s.membership_epoch,
            scl: s.scl,
            max_lsn: s.max_lsn,
            known_vdl: s.known_vdl,
            readable: ReadPoint {
                vdl: s.readable_lsn,
                pg_tail: s.readable_pg_tail.min(s.readable_lsn),
            },
            materialized: ReadPoint {
                vdl: s.materialized_lsn,
                pg_tail: s.materialized_pg_tail.min(s.materialized_lsn),
            },
            log_start_lsn: s.log_start_lsn,
            history: history_from_wire(&s.history),
        }
    }

    pub fn outcome_to_wire(o: Outcome) -> pb::Outcome {
        match o {
            Outcome::Ok => pb::Outcome::Ok,
            Outcome::Fenced => pb::Outcome::Fenced,
            Outcome::NeedsFence => pb::Outcome::NeedsFence,
            Outcome::StaleMembership => pb::Outcome::StaleMembership,
            Outcome::NotComplete => pb::Outcome::NotComplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::segment::ReadPoint;

    fn place(slot: u32, node_id: u64) -> Place {
        Place {
            slot,
            node_id,
            zone: "az-a".into(),
            grpc_addr: format!("127.0.0.1:{}", 7000 + node_id),
        }
    }

    #[test]
    fn gc_counts_unknown_members_as_zero() {
        let membership = Membership {
            pg: 0,
            membership_epoch: 1,
            members: (0..6).map(|i| place(i, u64::from(i) + 1)).collect(),
            next_members: Vec::new(),
        };
        let own = SegmentStatus {
            materialized: ReadPoint {
                vdl: 50,
                pg_tail: 50,
            },
            ..Default::default()
        };
        let peer = |node: u64, m: u64| {
            (
                place(node as u32 - 1, node),
                Some(SegmentStatus {
                    materialized: ReadPoint { vdl: m, pg_tail: m },
                    ..Default::default()
                }),
            )
        };
        let statuses = vec![peer(2, 40), peer(3, 30), peer(4, 20), (place(4, 5), None)];
        let sets = gc_sets(&membership, 1, &own, &statuses);
        assert_eq!(sets, vec![vec![50, 40, 30, 20, 0, 0]]);
    }
}
