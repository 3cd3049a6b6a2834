//! The key-value phases against an in-process fake node on 127.0.0.1: they stop by time
//! and by count, count what they did, and read back the keys they wrote.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratus_bench::kv::{self, KvTarget, PhaseSpec, KEY_PREFIX};
use stratus_proto::kv::kv_server::{Kv, KvServer};
use stratus_proto::kv::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct MemoryKv {
    data: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>,
}

#[tonic::async_trait]
impl Kv for MemoryKv {
    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let request = request.into_inner();
        if request.value.len() > 1000 {
            return Err(Status::invalid_argument("value too large"));
        }
        let mut data = self.data.lock().unwrap();
        data.insert(request.key, request.value);
        Ok(Response::new(PutResponse {
            version: data.len() as u64,
            ..Default::default()
        }))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let found = self
            .data
            .lock()
            .unwrap()
            .get(&request.into_inner().key)
            .cloned();
        Ok(Response::new(GetResponse {
            found: found.is_some(),
            value: found.unwrap_or_default(),
            version: 1,
        }))
    }

    async fn delete(&self, _: Request<DeleteRequest>) -> Result<Response<DeleteResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn compare_and_set(
        &self,
        _: Request<CasRequest>,
    ) -> Result<Response<CasResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn scan(&self, _: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

async fn serve(node: MemoryKv) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::new(node))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn spec(clients: usize, value_bytes: usize, duration_ms: u64, max_ops: u64) -> PhaseSpec {
    PhaseSpec {
        clients,
        value_bytes,
        duration: Duration::from_millis(duration_ms),
        max_ops,
        request_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn puts_then_gets_read_back_every_written_key() {
    let node = MemoryKv::default();
    let target = KvTarget::connect(&[serve(node.clone()).await], 2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(target.connection_count(), 2);

    let puts = kv::run_puts(&target, &spec(4, 100, 300, 1_000_000)).await;
    assert!(puts.ops > 0);
    assert_eq!(puts.errors, 0, "{:?}", puts.error_sample);
    assert_eq!(puts.latencies.len() as u64, puts.ops);
    assert!(!puts.written_keys.is_empty() && puts.written_keys.len() as u64 <= puts.ops);
    assert!(puts.elapsed < Duration::from_secs(5));
    {
        let data = node.data.lock().unwrap();
        assert_eq!(data.len() as u64, puts.ops);
        assert!(data
            .keys()
            .all(|k| k.starts_with(target.run_prefix().as_bytes())));
        assert!(target.run_prefix().starts_with(KEY_PREFIX));
        assert!(data.values().all(|v| v.len() == 100));
    }

    let gets = kv::run_gets(&target, &spec(4, 100, 200, 1_000_000), puts.written_keys).await;
    assert!(gets.ops > 0);
    assert_eq!(gets.errors, 0);
    assert_eq!(gets.misses, 0);
}

#[tokio::test]
async fn a_phase_stops_at_max_ops() {
    let target = KvTarget::connect(
        &[serve(MemoryKv::default()).await],
        1,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let puts = kv::run_puts(&target, &spec(8, 10, 60_000, 50)).await;
    assert_eq!(puts.ops, 50);
    assert!(puts.elapsed < Duration::from_secs(30));
}

#[tokio::test]
async fn rejected_requests_are_counted_as_errors_with_a_sample() {
    let target = KvTarget::connect(
        &[serve(MemoryKv::default()).await],
        1,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let puts = kv::run_puts(&target, &spec(2, 4096, 100, 1_000_000)).await;
    assert_eq!(puts.ops, 0);
    assert!(puts.errors > 0);
    assert!(puts.error_sample.unwrap().contains("value too large"));
    let gets = kv::run_gets(&target, &spec(2, 4096, 100, 1_000_000), Vec::new()).await;
    assert_eq!(gets.ops + gets.errors, 0);
}

#[tokio::test]
async fn unreachable_endpoint_fails_before_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = KvTarget::connect(std::slice::from_ref(&endpoint), 1, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&endpoint), "{err}");
}
