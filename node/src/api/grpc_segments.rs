//! gRPC face of this node's segments (`stratus.quorum.Segments`) (skeleton: filled in by
//! the segment work).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use stratus_proto::quorum::segments_server::{Segments, SegmentsServer};
use stratus_proto::quorum::*;
use tonic::{Request, Response, Status};

use crate::quorum::segment_host::SegmentHost;

pub struct SegmentsApi {
    #[allow(dead_code)]
    host: Arc<SegmentHost>,
}

impl SegmentsApi {
    pub fn new(host: Arc<SegmentHost>) -> Self {
        SegmentsApi { host }
    }

    pub fn into_server(self) -> SegmentsServer<SegmentsApi> {
        SegmentsServer::new(self)
    }
}

type PieceStream = Pin<Box<dyn Stream<Item = Result<CopySegmentPiece, Status>> + Send>>;

#[tonic::async_trait]
impl Segments for SegmentsApi {
    async fn append(&self, _: Request<AppendRequest>) -> Result<Response<AppendReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    async fn fence(&self, _: Request<FenceRequest>) -> Result<Response<FenceReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    async fn read_page(
        &self,
        _: Request<ReadPageRequest>,
    ) -> Result<Response<ReadPageReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    async fn segment_status(
        &self,
        _: Request<SegmentStatusRequest>,
    ) -> Result<Response<SegmentStatusReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    async fn read_records(
        &self,
        _: Request<ReadRecordsRequest>,
    ) -> Result<Response<ReadRecordsReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    type CopySegmentStream = PieceStream;
    async fn copy_segment(
        &self,
        _: Request<CopySegmentRequest>,
    ) -> Result<Response<PieceStream>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
    async fn set_membership(
        &self,
        _: Request<SetMembershipRequest>,
    ) -> Result<Response<SetMembershipReply>, Status> {
        Err(Status::unimplemented("segments are not built yet"))
    }
}
