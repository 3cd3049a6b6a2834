//! gRPC face of the KV service.

use std::sync::Arc;

use stratus_proto::kv::kv_server::Kv;
use stratus_proto::kv::*;
use tonic::{Request, Response, Status};

use crate::kv::{KvError, KvService};

pub struct KvApi {
    service: Arc<KvService>,
}

impl KvApi {
    pub fn new(service: Arc<KvService>) -> Self {
        KvApi { service }
    }
}

/// UNAVAILABLE: certainly not applied, retry. DEADLINE_EXCEEDED: a write whose outcome is
/// unknown. INVALID_ARGUMENT: the request is wrong and retrying will not help.
fn status(e: KvError) -> Status {
    match e {
        KvError::InvalidArgument(m) => Status::invalid_argument(m),
        KvError::Unavailable(m) => Status::unavailable(m),
        KvError::OutcomeUnknown(m) => Status::deadline_exceeded(m),
        KvError::Internal(m) => Status::internal(m),
    }
}

#[tonic::async_trait]
impl Kv for KvApi {
    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let r = req.into_inner();
        let id = request_id(&r.request_id)?;
        let version = self.service.put(r.key, r.value, id).await.map_err(status)?;
        Ok(Response::new(PutResponse {
            version,
            request_id: r.request_id,
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let found = self
            .service
            .get(req.into_inner().key)
            .await
            .map_err(status)?;
        Ok(Response::new(match found {
            Some(v) => GetResponse {
                found: true,
                value: v.value,
                version: v.version,
            },
            None => GetResponse::default(),
        }))
    }

    async fn delete(
        &self,
        req: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let r = req.into_inner();
        let id = request_id(&r.request_id)?;
        let existed = self.service.delete(r.key, id).await.map_err(status)?;
        Ok(Response::new(DeleteResponse {
            existed,
            request_id: r.request_id,
        }))
    }

    async fn compare_and_set(
        &self,
        req: Request<CasRequest>,
    ) -> Result<Response<CasResponse>, Status> {
        let r = req.into_inner();
        let outcome = self
            .service
            .compare_and_set(r.key, r.expected, r.new_value, request_id(&r.request_id)?)
            .await
            .map_err(status)?;
        let (found, current, version) = match outcome.current {
            Some(v) => (true, v.value, v.version),
            None => (false, Vec::new(), 0),
        };
        Ok(Response::new(CasResponse {
            succeeded: outcome.succeeded,
            found,
            current,
            version,
            request_id: r.request_id,
        }))
    }

    async fn scan(&self, req: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        let r = req.into_inner();
        let (entries, truncated) = self
            .service
            .scan(r.prefix, r.start_after, r.limit)
            .await
            .map_err(status)?;
        Ok(Response::new(ScanResponse {
            entries: entries
                .into_iter()
                .map(|(key, v)| KeyValue {
                    key,
                    value: v.value,
                    version: v.version,
                })
                .collect(),
            truncated,
        }))
    }
}

/// A client's write id: empty (none) or exactly 16 bytes.
fn request_id(bytes: &[u8]) -> Result<Option<u128>, Status> {
    match bytes.len() {
        0 => Ok(None),
        16 => {
            let mut id = [0u8; 16];
            id.copy_from_slice(bytes);
            Ok(Some(u128::from_be_bytes(id)))
        }
        n => Err(Status::invalid_argument(format!(
            "request_id must be empty or 16 bytes, not {n}"
        ))),
    }
}
