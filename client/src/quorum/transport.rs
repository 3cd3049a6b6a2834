//! The seam between the writer and the segments: [`SegmentTransport`] (one call per
//! segment RPC, addressed by the segment's place and id) and its gRPC implementation.
//!
//! Outcomes the protocol expects (fenced, needs fence, stale membership, not complete) are
//! values ([`Outcome`]), not errors. [`TransportError`] separates a request that certainly
//! did not arrive ([`TransportError::Unreachable`]) from one that may have
//! ([`TransportError::Failed`]); the writer treats both as "no acknowledgement" and
//! retries, since appends and fences are idempotent.
//!
//! [`GrpcTransport`] keeps one lazily connected tonic channel per node address and bounds
//! every call with a short timeout, so a dead or paused node costs one timeout per attempt
//! and never blocks the other segments.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use stratus_proto::quorum as pb;
use stratus_proto::quorum::segments_client::SegmentsClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::catalog::{PgMembership, SegmentPlace, Truncation};
use super::record::LogRecord;
use super::{Epoch, Lsn};

/// One segment of a volume: PG and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId {
    pub volume_id: u64,
    pub pg: u32,
    pub slot: u32,
}

/// A segment's protocol answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The segment's epoch is newer: the writer is fenced.
    Fenced,
    /// The segment needs `Fence` (epoch and history) before it accepts this epoch.
    NeedsFence,
    /// The segment knows a newer membership: reload the catalog.
    StaleMembership,
    /// The segment cannot serve that read point yet.
    NotComplete,
}

/// A segment's state as it reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStatus {
    pub epoch: Epoch,
    pub membership_epoch: u64,
    pub scl: Lsn,
    pub max_lsn: Lsn,
    pub known_vdl: Lsn,
    pub readable_lsn: Lsn,
    pub materialized_lsn: Lsn,
    pub log_start_lsn: Lsn,
    pub history: Vec<Truncation>,
}

/// What an `Append` carries besides the segment's address.
#[derive(Debug, Clone, Default)]
pub struct AppendArgs {
    pub epoch: Epoch,
    pub membership_epoch: u64,
    pub vdl: Lsn,
    pub pg_tail: Lsn,
    pub records: Vec<Arc<LogRecord>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReply {
    pub outcome: Outcome,
    pub epoch: Epoch,
    pub membership_epoch: u64,
    pub scl: Lsn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceReply {
    pub outcome: Outcome,
    pub epoch: Epoch,
    pub status: SegmentStatus,
}

#[derive(Debug, Clone)]
pub struct RecordsReply {
    /// Records that passed their CRC, in LSN order.
    pub records: Vec<LogRecord>,
    /// Records that failed their CRC (not returned).
    pub corrupt: usize,
    pub complete: bool,
    pub status: SegmentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageReply {
    pub outcome: Outcome,
    pub read_lsn: Lsn,
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub scl: Lsn,
}

/// A failed segment call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Nothing was delivered (the connection could not be opened).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The call failed after it may have been delivered (timeout, broken connection,
    /// unexpected server error).
    #[error("failed: {0}")]
    Failed(String),
    /// The node holds no such segment.
    #[error("segment not found: {0}")]
    NotFound(String),
    /// The segment's bytes failed their CRC (DATA_LOSS): ask another segment.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// The request was refused as malformed or for another cluster.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Calls to one segment. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait SegmentTransport: Send + Sync {
    async fn append(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        args: AppendArgs,
    ) -> Result<AppendReply, TransportError>;

    async fn fence(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        epoch: Epoch,
        history: &[Truncation],
        membership: &PgMembership,
    ) -> Result<FenceReply, TransportError>;

    async fn status(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
    ) -> Result<SegmentStatus, TransportError>;

    async fn read_records(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        after_lsn: Lsn,
        up_to_lsn: Lsn,
        max_bytes: u64,
    ) -> Result<RecordsReply, TransportError>;

    async fn read_page(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        page: u64,
        read_lsn: Lsn,
        pg_tail: Lsn,
        min_read_lsn: Lsn,
    ) -> Result<PageReply, TransportError>;
}

/// [`SegmentTransport`] over the `Segments` gRPC service.
#[derive(Debug)]
pub struct GrpcTransport {
    cluster: String,
    call_timeout: Duration,
    connect_timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
}

impl GrpcTransport {
    /// Calls carry `cluster`; each is bounded by `call_timeout`.
    pub fn new(cluster: impl Into<String>, call_timeout: Duration) -> Self {
        GrpcTransport {
            cluster: cluster.into(),
            call_timeout,
            connect_timeout: call_timeout.min(Duration::from_millis(500)),
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, place: &SegmentPlace) -> Result<SegmentsClient<Channel>, TransportError> {
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| TransportError::Failed("channel cache poisoned".to_string()))?;
        if let Some(channel) = channels.get(&place.grpc_addr) {
            return Ok(SegmentsClient::new(channel.clone()).max_decoding_message_size(64 << 20));
        }
        let uri = format!("http://{}", place.grpc_addr);
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| TransportError::Rejected(format!("{}: {e}", place.grpc_addr)))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(place.grpc_addr.clone(), channel.clone());
        Ok(SegmentsClient::new(channel).max_decoding_message_size(64 << 20))
    }

    async fn bounded<T, F>(&self, place: &SegmentPlace, call: F) -> Result<T, TransportError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(classify(place, &status)),
            Err(_) => Err(TransportError::Failed(format!(
                "{} (node {}): no answer within {:?}",
                place.grpc_addr, place.node_id, self.call_timeout
            ))),
        }
    }

    fn wire_segment(segment: SegmentId) -> Option<pb::SegmentId> {
        Some(pb::SegmentId {
            volume_id: segment.volume_id,
            pg: segment.pg,
            slot: segment.slot,
        })
    }
}

#[async_trait]
impl SegmentTransport for GrpcTransport {
    async fn append(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        args: AppendArgs,
    ) -> Result<AppendReply, TransportError> {
        let mut client = self.client(place)?;
        let request = pb::AppendRequest {
            cluster: self.cluster.clone(),
            segment: Self::wire_segment(segment),
            epoch: args.epoch,
            membership_epoch: args.membership_epoch,
            vdl: args.vdl,
            pg_tail: args.pg_tail,
            records: args.records.iter().map(|r| r.to_wire()).collect(),
        };
        let reply = self.bounded(place, client.append(request)).await?;
        Ok(AppendReply {
            outcome: outcome_of(reply.outcome),
            epoch: reply.epoch,
            membership_epoch: reply.membership_epoch,
            scl: reply.scl,
        })
    }

    async fn fence(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        epoch: Epoch,
        history: &[Truncation],
        membership: &PgMembership,
    ) -> Result<FenceReply, TransportError> {
        let mut client = self.client(place)?;
        let request = pb::FenceRequest {
            cluster: self.cluster.clone(),
            segment: Self::wire_segment(segment),
            epoch,
            history: history.iter().copied().map(pb::Truncation::from).collect(),
            membership: Some(pb::PgMembership::from(membership)),
        };
        let reply = self.bounded(place, client.fence(request)).await?;
        Ok(FenceReply {
            outcome: outcome_of(reply.outcome),
            epoch: reply.epoch,
            status: reply.status.map(status_of).unwrap_or_default(),
        })
    }

    async fn status(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
    ) -> Result<SegmentStatus, TransportError> {
        let mut client = self.client(place)?;
        let request = pb::SegmentStatusRequest {
            cluster: self.cluster.clone(),
            segment: Self::wire_segment(segment),
        };
        let reply = self.bounded(place, client.segment_status(request)).await?;
        Ok(status_of(reply))
    }

    async fn read_records(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        after_lsn: Lsn,
        up_to_lsn: Lsn,
        max_bytes: u64,
    ) -> Result<RecordsReply, TransportError> {
        let mut client = self.client(place)?;
        let request = pb::ReadRecordsRequest {
            cluster: self.cluster.clone(),
            segment: Self::wire_segment(segment),
            after_lsn,
            up_to_lsn,
            max_bytes,
        };
        let reply = self.bounded(place, client.read_records(request)).await?;
        let mut records = Vec::with_capacity(reply.records.len());
        let mut corrupt = 0;
        for wire in reply.records {
            match LogRecord::from_wire(wire) {
                Ok(record) => records.push(record),
                Err(_) => corrupt += 1,
            }
        }
        Ok(RecordsReply {
            records,
            corrupt,
            complete: reply.complete,
            status: reply.status.map(status_of).unwrap_or_default(),
        })
    }

    async fn read_page(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        page: u64,
        read_lsn: Lsn,
        pg_tail: Lsn,
        min_read_lsn: Lsn,
    ) -> Result<PageReply, TransportError> {
        let mut client = self.client(place)?;
        let request = pb::ReadPageRequest {
            cluster: self.cluster.clone(),
            segment: Self::wire_segment(segment),
            page,
            read_lsn,
            pg_tail,
            min_read_lsn,
        };
        let reply = self.bounded(place, client.read_page(request)).await?;
        Ok(PageReply {
            outcome: outcome_of(reply.outcome),
            read_lsn: reply.read_lsn,
            entries: reply
                .entries
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
            scl: reply.scl,
        })
    }
}

fn outcome_of(raw: i32) -> Outcome {
    match pb::Outcome::try_from(raw) {
        Ok(pb::Outcome::Ok) => Outcome::Ok,
        Ok(pb::Outcome::Fenced) => Outcome::Fenced,
        Ok(pb::Outcome::NeedsFence) => Outcome::NeedsFence,
        Ok(pb::Outcome::StaleMembership) => Outcome::StaleMembership,
        // An outcome this client does not know: it cannot count as an acknowledgement.
        Ok(pb::Outcome::NotComplete) | Err(_) => Outcome::NotComplete,
    }
}

fn status_of(s: pb::SegmentStatusReply) -> SegmentStatus {
    SegmentStatus {
        epoch: s.epoch,
        membership_epoch: s.membership_epoch,
        scl: s.scl,
        max_lsn: s.max_lsn,
        known_vdl: s.known_vdl,
        readable_lsn: s.readable_lsn,
        materialized_lsn: s.materialized_lsn,
        log_start_lsn: s.log_start_lsn,
        history: s.history.into_iter().map(Truncation::from).collect(),
    }
}

fn classify(place: &SegmentPlace, status: &Status) -> TransportError {
    let text = format!(
        "{} (node {}): {:?}: {}",
        place.grpc_addr,
        place.node_id,
        status.code(),
        status.message()
    );
    if is_connect_failure(status) {
        return TransportError::Unreachable(text);
    }
    match status.code() {
        Code::NotFound => TransportError::NotFound(text),
        Code::DataLoss => TransportError::DataLoss(text),
        Code::InvalidArgument | Code::FailedPrecondition | Code::Unimplemented => {
            TransportError::Rejected(text)
        }
        _ => TransportError::Failed(text),
    }
}

fn is_connect_failure(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        source = err.source();
    }
    false
}
