//! gRPC face of this node's segments (`stratus.quorum.Segments`): writers append, fence and
//! read pages; peers read status and records and copy segments (docs/quorum-storage.md).
//!
//! Every request is checked for its cluster name (another cluster's request is
//! FAILED_PRECONDITION) and a segment id before the segment is touched. Errors map to the
//! codes the wire contract names: NOT_FOUND for a segment this node does not hold,
//! INVALID_ARGUMENT for a malformed request or record, DATA_LOSS for a record that fails its
//! CRC in transit or stored bytes that fail theirs. Expected protocol outcomes (fenced,
//! stale membership, not complete) are replies with an `outcome`. Messages are bounded by
//! `MAX_SEGMENT_MESSAGE_BYTES`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use stratus_proto::quorum::copy_segment_piece::Item;
use stratus_proto::quorum::segments_server::{Segments, SegmentsServer};
use stratus_proto::quorum::*;
use tonic::{Request, Response, Status};

use crate::quorum::gossip::wire;
use crate::quorum::gossip::MAX_SEGMENT_MESSAGE_BYTES;
use crate::quorum::segment::{Membership, ReadPoint, SegmentKey};
use crate::quorum::segment_host::{HostError, SegmentHost};
use crate::store::StoreError;

pub struct SegmentsApi {
    host: Arc<SegmentHost>,
}

impl SegmentsApi {
    pub fn new(host: Arc<SegmentHost>) -> Self {
        SegmentsApi { host }
    }

    /// The tonic service, with message sizes bounded for batches of records.
    pub fn into_server(self) -> SegmentsServer<SegmentsApi> {
        SegmentsServer::new(self)
            .max_decoding_message_size(MAX_SEGMENT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_SEGMENT_MESSAGE_BYTES)
    }

    fn check(&self, cluster: &str, segment: Option<&SegmentId>) -> Result<SegmentKey, Status> {
        if cluster != self.host.cluster_name {
            return Err(Status::failed_precondition(format!(
                "segment request for cluster '{cluster}' reached a node of cluster '{}'",
                self.host.cluster_name
            )));
        }
        let id = segment.ok_or_else(|| Status::invalid_argument("missing segment id"))?;
        Ok(wire::segment_key(id))
    }
}

fn status(e: HostError) -> Status {
    match e {
        HostError::NotFound(_) => Status::not_found(e.to_string()),
        HostError::Invalid(_) | HostError::Segment(_) => Status::invalid_argument(e.to_string()),
        HostError::DataLoss(_) | HostError::Store(StoreError::Corrupt { .. }) => {
            Status::data_loss(e.to_string())
        }
        HostError::Store(_) | HostError::Task(_) => Status::internal(e.to_string()),
    }
}

fn outcome(o: crate::quorum::segment::Outcome) -> i32 {
    wire::outcome_to_wire(o) as i32
}

type PieceStream = Pin<Box<dyn Stream<Item = Result<CopySegmentPiece, Status>> + Send>>;

#[tonic::async_trait]
impl Segments for SegmentsApi {
    async fn append(&self, req: Request<AppendRequest>) -> Result<Response<AppendReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let told = ReadPoint {
            vdl: req.vdl,
            pg_tail: req.pg_tail,
        };
        let r = self
            .host
            .append(key, req.epoch, req.membership_epoch, told, req.records)
            .await
            .map_err(status)?;
        Ok(Response::new(AppendReply {
            outcome: outcome(r.outcome),
            epoch: r.epoch,
            membership_epoch: r.membership_epoch,
            scl: r.scl,
        }))
    }

    async fn fence(&self, req: Request<FenceRequest>) -> Result<Response<FenceReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let membership = req
            .membership
            .as_ref()
            .map(wire::membership_from_wire)
            .map(checked)
            .transpose()?;
        let (o, s) = self
            .host
            .fence(
                key,
                req.epoch,
                wire::history_from_wire(&req.history),
                membership,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(FenceReply {
            outcome: outcome(o),
            epoch: s.epoch,
            status: Some(wire::status_to_wire(&s)),
        }))
    }

    async fn read_page(
        &self,
        req: Request<ReadPageRequest>,
    ) -> Result<Response<ReadPageReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        if req.read_lsn > 0 && req.pg_tail > req.read_lsn {
            return Err(Status::invalid_argument(format!(
                "pg_tail {} is above read_lsn {}",
                req.pg_tail, req.read_lsn
            )));
        }
        let r = self
            .host
            .read_page(key, req.page, req.read_lsn, req.pg_tail, req.min_read_lsn)
            .await
            .map_err(status)?;
        Ok(Response::new(ReadPageReply {
            outcome: outcome(r.outcome),
            read_lsn: r.read_lsn,
            entries: r
                .entries
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
            scl: r.scl,
        }))
    }

    async fn segment_status(
        &self,
        req: Request<SegmentStatusRequest>,
    ) -> Result<Response<SegmentStatusReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let s = self.host.status(key).await.map_err(status)?;
        Ok(Response::new(wire::status_to_wire(&s)))
    }

    async fn read_records(
        &self,
        req: Request<ReadRecordsRequest>,
    ) -> Result<Response<ReadRecordsReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let r = self
            .host
            .read_records(key, req.after_lsn, req.up_to_lsn, req.max_bytes)
            .await
            .map_err(status)?;
        Ok(Response::new(ReadRecordsReply {
            records: r.records,
            complete: r.complete,
            status: Some(wire::status_to_wire(&r.status)),
        }))
    }

    type CopySegmentStream = PieceStream;

    async fn copy_segment(
        &self,
        req: Request<CopySegmentRequest>,
    ) -> Result<Response<PieceStream>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let copy = self.host.copy_source(key).await.map_err(status)?;
        let first = std::iter::once(Item::Status(wire::status_to_wire(&copy.status)));
        let pages = copy.pages.into_iter().map(Item::Page);
        let records = copy.records.into_iter().map(Item::Record);
        let pieces = first
            .chain(pages)
            .chain(records)
            .map(|item| Ok(CopySegmentPiece { item: Some(item) }));
        Ok(Response::new(Box::pin(futures::stream::iter(pieces))))
    }

    async fn set_membership(
        &self,
        req: Request<SetMembershipRequest>,
    ) -> Result<Response<SetMembershipReply>, Status> {
        let req = req.into_inner();
        let key = self.check(&req.cluster, req.segment.as_ref())?;
        let m = req
            .membership
            .as_ref()
            .map(wire::membership_from_wire)
            .ok_or_else(|| Status::invalid_argument("missing membership"))
            .and_then(checked)?;
        let (o, membership_epoch) = self.host.set_membership(key, m).await.map_err(status)?;
        Ok(Response::new(SetMembershipReply {
            outcome: outcome(o),
            membership_epoch,
        }))
    }
}

/// A membership from the wire, refused with INVALID_ARGUMENT unless well formed.
fn checked(m: Membership) -> Result<Membership, Status> {
    m.validate()
        .map_err(|why| Status::invalid_argument(format!("bad membership: {why}")))?;
    Ok(m)
}
