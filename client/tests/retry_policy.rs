//! The client against in-process fake nodes on 127.0.0.1 (ports chosen by the OS): which
//! failures it retries on another node, which it surfaces, and that a write with an
//! unknown outcome is sent exactly once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stratus_client::{Client, ClientConfig, Error};
use stratus_proto::cluster::cluster_server::{Cluster, ClusterServer};
use stratus_proto::cluster::{self as pb_cluster, NodeReport, StatusRequest};
use stratus_proto::kv::kv_server::{Kv, KvServer};
use stratus_proto::kv::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// How a fake node answers every request.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// A working single-node store.
    Healthy,
    /// `UNAVAILABLE` (not applied).
    Unavailable,
    /// `DEADLINE_EXCEEDED` (outcome unknown).
    DeadlineExceeded,
    /// Never answers.
    Hang,
}

/// Key -> (value, version).
type Store = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

#[derive(Clone)]
struct FakeNode {
    mode: Arc<Mutex<Mode>>,
    /// Whether replies echo the write's request id (a server that deduplicates by it).
    echo_ids: bool,
    calls: Arc<AtomicUsize>,
    /// The request ids of the writes received, in order.
    write_ids: Arc<Mutex<Vec<Vec<u8>>>>,
    data: Arc<Mutex<Store>>,
    next_version: Arc<AtomicUsize>,
}

impl FakeNode {
    fn new(mode: Mode) -> Self {
        Self {
            mode: Arc::new(Mutex::new(mode)),
            echo_ids: true,
            calls: Arc::new(AtomicUsize::new(0)),
            write_ids: Arc::new(Mutex::new(Vec::new())),
            data: Arc::new(Mutex::new(Store::new())),
            next_version: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// An older server: it ignores request ids.
    fn without_ids(mut self) -> Self {
        self.echo_ids = false;
        self
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn echo(&self, id: Vec<u8>) -> Vec<u8> {
        if self.echo_ids {
            id
        } else {
            Vec::new()
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn write_ids(&self) -> Vec<Vec<u8>> {
        self.write_ids.lock().unwrap().clone()
    }

    fn note_write(&self, id: &[u8]) {
        self.write_ids.lock().unwrap().push(id.to_vec());
    }

    /// Counts the call and fails it unless the node is healthy.
    async fn enter(&self) -> Result<(), Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Healthy => Ok(()),
            Mode::Unavailable => Err(Status::unavailable("no leader for group 1")),
            Mode::DeadlineExceeded => Err(Status::deadline_exceeded("commit timed out")),
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(Status::internal("unreachable"))
            }
        }
    }

    fn check_key(key: &[u8]) -> Result<(), Status> {
        if key.is_empty() {
            return Err(Status::invalid_argument("key must not be empty"));
        }
        Ok(())
    }

    fn version(&self) -> u64 {
        self.next_version.fetch_add(1, Ordering::SeqCst) as u64
    }
}

#[tonic::async_trait]
impl Kv for FakeNode {
    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.note_write(&request.get_ref().request_id);
        self.enter().await?;
        let request = request.into_inner();
        Self::check_key(&request.key)?;
        let version = self.version();
        self.data
            .lock()
            .unwrap()
            .insert(request.key, (request.value, version));
        Ok(Response::new(PutResponse {
            version,
            request_id: self.echo(request.request_id),
        }))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.enter().await?;
        let request = request.into_inner();
        Self::check_key(&request.key)?;
        let found = self.data.lock().unwrap().get(&request.key).cloned();
        Ok(Response::new(match found {
            Some((value, version)) => GetResponse {
                found: true,
                value,
                version,
            },
            None => GetResponse::default(),
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.note_write(&request.get_ref().request_id);
        self.enter().await?;
        let request = request.into_inner();
        let existed = self.data.lock().unwrap().remove(&request.key).is_some();
        Ok(Response::new(DeleteResponse {
            existed,
            request_id: self.echo(request.request_id),
        }))
    }

    async fn compare_and_set(
        &self,
        request: Request<CasRequest>,
    ) -> Result<Response<CasResponse>, Status> {
        self.note_write(&request.get_ref().request_id);
        self.enter().await?;
        let request = request.into_inner();
        let mut data = self.data.lock().unwrap();
        let current = data.get(&request.key).cloned();
        if current.as_ref().map(|(v, _)| v) != request.expected.as_ref() {
            let found = current.is_some();
            let (current, version) = current.unwrap_or_default();
            return Ok(Response::new(CasResponse {
                succeeded: false,
                found,
                current,
                version,
                request_id: self.echo(request.request_id),
            }));
        }
        match request.new_value {
            Some(value) => {
                let version = self.version();
                data.insert(request.key, (value.clone(), version));
                Ok(Response::new(CasResponse {
                    succeeded: true,
                    found: true,
                    current: value,
                    version,
                    request_id: self.echo(request.request_id),
                }))
            }
            None => {
                data.remove(&request.key);
                Ok(Response::new(CasResponse {
                    succeeded: true,
                    request_id: self.echo(request.request_id),
                    ..Default::default()
                }))
            }
        }
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        self.enter().await?;
        let request = request.into_inner();
        let limit = if request.limit == 0 {
            1000
        } else {
            request.limit as usize
        };
        let data = self.data.lock().unwrap();
        let mut matching = data
            .iter()
            .filter(|(k, _)| k.starts_with(&request.prefix) && **k > request.start_after)
            .map(|(k, (v, version))| KeyValue {
                key: k.clone(),
                value: v.clone(),
                version: *version,
            });
        let entries: Vec<KeyValue> = matching.by_ref().take(limit).collect();
        let truncated = matching.next().is_some();
        Ok(Response::new(ScanResponse { entries, truncated }))
    }
}

#[tonic::async_trait]
impl Cluster for FakeNode {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<pb_cluster::ClusterStatus>, Status> {
        self.enter().await?;
        Ok(Response::new(pb_cluster::ClusterStatus {
            cluster_name: "fake".to_string(),
            responder: 1,
            nodes: vec![pb_cluster::NodeStatus {
                id: 1,
                zone: "zone-a".to_string(),
                grpc_addr: "127.0.0.1:7000".to_string(),
                http_addr: "127.0.0.1:4566".to_string(),
                up: true,
            }],
            groups: vec![pb_cluster::GroupStatus {
                id: 0,
                kind: "meta".to_string(),
                voters: vec![1],
                leader: 0,
                ..Default::default()
            }],
        }))
    }

    async fn local_status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<NodeReport>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

/// Serves `node` on a fresh port; returns its endpoint.
async fn serve(node: FakeNode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::new(node.clone()))
            .add_service(ClusterServer::new(node))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// An endpoint where nothing listens: connecting is refused.
async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn client(endpoints: Vec<String>, call_timeout: Duration) -> Client {
    let mut config = ClientConfig::new(endpoints).with_call_timeout(call_timeout);
    config.read_attempt_timeout = Duration::from_millis(300);
    Client::with_config(config).await.unwrap()
}

#[tokio::test]
async fn unavailable_node_is_skipped_for_writes() {
    let sick = FakeNode::new(Mode::Unavailable);
    let healthy = FakeNode::new(Mode::Healthy);
    let client = client(
        vec![serve(sick.clone()).await, serve(healthy.clone()).await],
        Duration::from_secs(5),
    )
    .await;

    let version = client.put("k", "v").await.unwrap();
    assert_eq!(sick.calls(), 1);
    assert_eq!(healthy.calls(), 1);
    assert_eq!(
        client.get("k").await.unwrap(),
        Some((b"v".to_vec(), version))
    );
    // The client now starts at the node that answered.
    assert_eq!(sick.calls(), 1);
}

#[tokio::test]
async fn refused_connection_is_skipped_for_writes() {
    let healthy = FakeNode::new(Mode::Healthy);
    let client = client(
        vec![dead_endpoint().await, serve(healthy.clone()).await],
        Duration::from_secs(5),
    )
    .await;
    client.put("k", "v").await.unwrap();
    assert_eq!(healthy.calls(), 1);
}

#[tokio::test]
async fn deadline_exceeded_write_is_retried_elsewhere_under_the_same_id() {
    let first = FakeNode::new(Mode::Healthy);
    let second = FakeNode::new(Mode::Healthy);
    let client = client(
        vec![serve(first.clone()).await, serve(second.clone()).await],
        Duration::from_secs(5),
    )
    .await;
    // A first write shows the client that the cluster echoes (honours) request ids.
    client.put("k", "v").await.unwrap();
    first.set_mode(Mode::DeadlineExceeded);

    client.put("k", "v2").await.unwrap();
    assert!(
        client
            .compare_and_set("k", Some(b"v2"), Some(b"w"))
            .await
            .unwrap()
            .succeeded
    );
    assert!(client.delete("k").await.unwrap());
    // Each write reached the slow node, then the healthy one, with one id per write.
    let (slow_ids, healthy_ids) = (first.write_ids(), second.write_ids());
    assert_eq!(healthy_ids.len(), 3);
    assert!(healthy_ids.iter().all(|id| id.len() == 16));
    for id in &slow_ids[1..] {
        assert!(healthy_ids.contains(id), "a retry carries its write's id");
    }
    assert_ne!(healthy_ids[0], healthy_ids[1], "each write has its own id");
}

#[tokio::test]
async fn a_write_that_may_have_applied_everywhere_is_reported_unknown() {
    let a = FakeNode::new(Mode::Healthy);
    let b = FakeNode::new(Mode::DeadlineExceeded);
    let client = client(
        vec![serve(a.clone()).await, serve(b.clone()).await],
        Duration::from_secs(2),
    )
    .await;
    client.put("warm", "up").await.unwrap();
    a.set_mode(Mode::DeadlineExceeded);
    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown(_)), "{err}");
    assert!(err.is_outcome_unknown());
    let ids: Vec<_> = a.write_ids()[1..]
        .iter()
        .cloned()
        .chain(b.write_ids())
        .collect();
    assert!(ids.len() >= 2, "retried until the deadline");
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "always the same id");
}

#[tokio::test]
async fn a_server_that_ignores_request_ids_never_gets_a_write_twice() {
    let old = FakeNode::new(Mode::Healthy).without_ids();
    let other = FakeNode::new(Mode::Healthy).without_ids();
    let client = client(
        vec![serve(old.clone()).await, serve(other.clone()).await],
        Duration::from_secs(5),
    )
    .await;
    client.put("k", "v").await.unwrap();
    old.set_mode(Mode::DeadlineExceeded);
    let err = client.put("k", "v2").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown(_)), "{err}");
    assert_eq!(old.write_ids().len(), 2);
    assert_eq!(other.write_ids().len(), 0, "not resent to another node");
}

#[tokio::test]
async fn deadline_exceeded_read_is_retried_elsewhere() {
    let slow = FakeNode::new(Mode::DeadlineExceeded);
    let healthy = FakeNode::new(Mode::Healthy);
    let client = client(
        vec![serve(slow.clone()).await, serve(healthy.clone()).await],
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(client.get("k").await.unwrap(), None);
    assert_eq!(slow.calls(), 1);
    assert_eq!(healthy.calls(), 1);
}

#[tokio::test]
async fn hung_node_makes_a_write_unknown_but_a_read_moves_on() {
    let hung = FakeNode::new(Mode::Hang);
    let healthy = FakeNode::new(Mode::Healthy);
    let endpoints = vec![serve(hung.clone()).await, serve(healthy.clone()).await];

    let writer = client(endpoints.clone(), Duration::from_millis(500)).await;
    let started = Instant::now();
    let err = writer.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(healthy.calls(), 0);

    let reader = client(endpoints, Duration::from_secs(5)).await;
    assert_eq!(reader.get("k").await.unwrap(), None);
    assert_eq!(healthy.calls(), 1);
}

#[tokio::test]
async fn no_reachable_node_fails_cleanly_within_the_deadline() {
    let client = client(
        vec![dead_endpoint().await, dead_endpoint().await],
        Duration::from_millis(400),
    )
    .await;
    let started = Instant::now();
    let err = client.put("k", "v").await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert!(!err.is_outcome_unknown());
    assert!(err.to_string().contains("gave up after"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn cluster_without_leader_reports_unavailable() {
    let sick = FakeNode::new(Mode::Unavailable);
    let client = client(vec![serve(sick.clone()).await], Duration::from_millis(400)).await;
    let err = client.put("k", "v").await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("no leader")),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(sick.calls() > 1, "retried on the same node after a backoff");
}

#[tokio::test]
async fn invalid_argument_is_not_retried() {
    let a = FakeNode::new(Mode::Healthy);
    let b = FakeNode::new(Mode::Healthy);
    let client = client(
        vec![serve(a.clone()).await, serve(b.clone()).await],
        Duration::from_secs(5),
    )
    .await;
    let err = client.put("", "v").await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.contains("empty")),
        "{err}"
    );
    assert_eq!(a.calls() + b.calls(), 1);
}

#[tokio::test]
async fn key_value_operations_map_to_domain_types() {
    let node = FakeNode::new(Mode::Healthy);
    let client = client(vec![serve(node).await], Duration::from_secs(5)).await;

    assert!(!client.delete("k").await.unwrap());
    let created = client.compare_and_set("k", None, Some(b"a")).await.unwrap();
    assert!(created.succeeded);
    let (value, version) = created.current.clone().unwrap();
    assert_eq!(value, b"a");

    let failed = client
        .compare_and_set("k", Some(b"zzz"), Some(b"b"))
        .await
        .unwrap();
    assert!(!failed.succeeded);
    assert_eq!(failed.current, Some((b"a".to_vec(), version)));

    let deleted = client.compare_and_set("k", Some(b"a"), None).await.unwrap();
    assert!(deleted.succeeded);
    assert_eq!(deleted.current, None);
    assert_eq!(client.get("k").await.unwrap(), None);

    let status = client.cluster_status().await.unwrap();
    assert_eq!(status.cluster_name, "fake");
    assert_eq!(status.nodes[0].zone, "zone-a");
    assert_eq!(status.groups[0].leader, None);
}

#[tokio::test]
async fn scan_follows_pages_up_to_the_requested_count() {
    let node = FakeNode::new(Mode::Healthy);
    {
        let mut data = node.data.lock().unwrap();
        for i in 0..2500u64 {
            data.insert(format!("p/{i:05}").into_bytes(), (b"x".to_vec(), i + 1));
        }
        data.insert(b"q/other".to_vec(), (b"x".to_vec(), 9999));
    }
    let client = client(vec![serve(node).await], Duration::from_secs(5)).await;

    let (page, truncated) = client.scan("p/", None, 10).await.unwrap();
    assert_eq!(page.len(), 10);
    assert!(truncated);

    let (all, more) = client.scan_up_to("p/", None, 100_000).await.unwrap();
    assert_eq!(all.len(), 2500);
    assert!(!more);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key));

    let (some, more) = client
        .scan_up_to("p/", Some(b"p/00100"), 1500)
        .await
        .unwrap();
    assert_eq!(some.len(), 1500);
    assert!(more);
    assert_eq!(some[0].key, b"p/00101");
    assert_eq!(some[1499].key, b"p/01600");
}

#[tokio::test]
async fn connect_accepts_plain_host_port_and_rejects_garbage() {
    assert!(Client::connect(["127.0.0.1:7000"]).await.is_ok());
    assert!(
        Client::connect(&["http://127.0.0.1:7000", "127.0.0.1:7001"])
            .await
            .is_ok()
    );
    let err = Client::connect(["ftp://x"]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidEndpoint { .. }));
    let empty: [&str; 0] = [];
    assert!(Client::connect(empty).await.is_err());
}
