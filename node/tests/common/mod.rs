//! A real cluster for integration tests: `stratusd run` processes on 127.0.0.1 with
//! temporary data directories and OS-chosen ports, which tests kill (SIGKILL) and restart.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stratus_proto::cluster::cluster_client::ClusterClient;
use stratus_proto::cluster::{ClusterStatus, NodeReport, StatusRequest};
use stratus_proto::kv::kv_client::KvClient;
use stratus_proto::kv::{CasRequest, GetRequest, PutRequest};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

pub const ZONES: [&str; 3] = ["az-a", "az-b", "az-c"];

pub struct Options {
    pub nodes: usize,
    pub data_groups: u64,
    pub snapshot_logs: u64,
    pub keep_logs_after_snapshot: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 6,
            data_groups: 6,
            snapshot_logs: 20_000,
            keep_logs_after_snapshot: 1_000,
        }
    }
}

pub struct TestNode {
    pub id: u64,
    pub zone: &'static str,
    pub grpc: String,
    pub http: String,
    pub config: PathBuf,
    child: Option<Child>,
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
}

pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

pub fn stratusd() -> &'static str {
    env!("CARGO_BIN_EXE_stratusd")
}

impl TestCluster {
    pub fn start(opts: Options) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(opts.nodes * 2);
        let mut peers = String::new();
        let mut nodes = Vec::new();
        for i in 0..opts.nodes {
            let id = i as u64 + 1;
            let zone = ZONES[i % 3];
            let grpc = format!("127.0.0.1:{}", ports[2 * i]);
            let http = format!("127.0.0.1:{}", ports[2 * i + 1]);
            peers.push_str(&format!(
                "[[peers]]\nid = {id}\nzone = \"{zone}\"\ngrpc = \"{grpc}\"\nhttp = \"{http}\"\n"
            ));
            nodes.push(TestNode {
                id,
                zone,
                grpc,
                http,
                config: dir.path().join(format!("node-{id}.toml")),
                child: None,
            });
        }
        for n in &nodes {
            let text = format!(
                "node_id = {id}\nzone = \"{zone}\"\ndata_dir = \"{data}\"\ncluster_name = \"test\"\n\
                 grpc_listen = \"{grpc}\"\nhttp_listen = \"{http}\"\ndata_groups = {groups}\nrequest_timeout_ms = 8000\n\
                 [credentials]\naccess_key = \"test\"\nsecret_key = \"test\"\n\
                 [raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n\
                 snapshot_logs = {snap}\nkeep_logs_after_snapshot = {keep}\n{peers}",
                id = n.id,
                zone = n.zone,
                data = dir.path().join(format!("data-{}", n.id)).display(),
                grpc = n.grpc,
                http = n.http,
                groups = opts.data_groups,
                snap = opts.snapshot_logs,
                keep = opts.keep_logs_after_snapshot,
            );
            std::fs::write(&n.config, text).unwrap();
        }
        let mut cluster = TestCluster { dir, nodes };
        for id in 1..=opts.nodes as u64 {
            cluster.start_node(id);
        }
        cluster
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[id as usize - 1]
    }

    pub fn start_node(&mut self, id: u64) {
        let log = self.dir.path().join(format!("node-{id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let node = &mut self.nodes[id as usize - 1];
        assert!(node.child.is_none(), "node {id} is already running");
        let child = Command::new(stratusd())
            .arg("run")
            .arg("--config")
            .arg(&node.config)
            .env("STRATUS_LOG", "info,openraft=warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn stratusd");
        node.child = Some(child);
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[id as usize - 1];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes[id as usize - 1].child.is_some()
    }

    /// The OS process id of a running node (to read its `/proc/<pid>/status`).
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes[id as usize - 1].child.as_ref().map(|c| c.id())
    }

    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }

    pub fn live_endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| format!("http://{}", n.grpc))
            .collect()
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(self.live_endpoints())
    }

    pub async fn status(&self) -> Option<ClusterStatus> {
        for ep in self.live_endpoints() {
            let Ok(ch) = channel(&ep) else { continue };
            let mut req = tonic::Request::new(StatusRequest {});
            req.set_timeout(Duration::from_secs(3));
            if let Ok(s) = ClusterClient::new(ch).status(req).await {
                return Some(s.into_inner());
            }
        }
        None
    }

    pub async fn local_report(&self, id: u64) -> Option<NodeReport> {
        let ch = channel(&format!("http://{}", self.node(id).grpc)).ok()?;
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(Duration::from_secs(2));
        Some(
            ClusterClient::new(ch)
                .local_status(req)
                .await
                .ok()?
                .into_inner(),
        )
    }

    /// Wait until every group has a leader that is a running node.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status().await {
                let led = s
                    .groups
                    .iter()
                    .all(|g| g.leader != 0 && self.is_running(g.leader));
                if led && !s.groups.is_empty() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "cluster not ready within {timeout:?}: {:?}",
                    self.status().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current leader of a group, as the cluster reports it.
    pub async fn leader_of(&self, group: u64) -> Option<u64> {
        let s = self.status().await?;
        s.groups
            .iter()
            .find(|g| g.id == group)
            .map(|g| g.leader)
            .filter(|l| *l != 0)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.kill(id);
        }
    }
}

pub fn channel(endpoint: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy())
}

/// A status the server sent (it has response headers), not one made up by the client.
pub fn from_server(s: &tonic::Status) -> bool {
    s.metadata().get("content-type").is_some()
}

/// The connection could not be made: the request never left.
pub fn never_sent(s: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Outcome of one client operation, as a Jepsen history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    Ok(T),
    /// Certainly not applied.
    Fail(String),
    /// May or may not have been applied.
    Unknown(String),
}

impl<T: std::fmt::Debug> Outcome<T> {
    pub fn unwrap(self) -> T {
        match self {
            Outcome::Ok(v) => v,
            other => panic!("operation did not succeed: {other:?}"),
        }
    }
}

/// A KV client that fails over across endpoints. Retries what certainly did not apply;
/// reports a write whose outcome is unknown as such.
#[derive(Clone)]
pub struct TestClient {
    clients: Vec<KvClient<Channel>>,
    pub timeout: Duration,
}

impl TestClient {
    pub fn new(endpoints: Vec<String>) -> Self {
        let clients = endpoints
            .iter()
            .map(|e| {
                KvClient::new(channel(e).unwrap())
                    .max_decoding_message_size(32 << 20)
                    .max_encoding_message_size(32 << 20)
            })
            .collect();
        TestClient {
            clients,
            timeout: Duration::from_secs(20),
        }
    }

    pub fn endpoint(&self, i: usize) -> KvClient<Channel> {
        self.clients[i % self.clients.len()].clone()
    }

    async fn call<T, F, Fut>(&self, start: usize, mut f: F) -> Outcome<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut i = start;
        loop {
            match f(self.endpoint(i)).await {
                Ok(v) => return Outcome::Ok(v),
                Err(s) if s.code() == Code::InvalidArgument => {
                    return Outcome::Fail(s.message().to_string())
                }
                // The server says it certainly did not apply it, or we never reached a server.
                Err(s) if (from_server(&s) && s.code() == Code::Unavailable) || never_sent(&s) => {}
                // Outcome unknown: the server says so, or the connection broke mid-request.
                Err(s) => return Outcome::Unknown(format!("{:?}: {}", s.code(), s.message())),
            }
            if Instant::now() > deadline {
                return Outcome::Fail("no endpoint answered".into());
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn put(&self, key: &str, value: &[u8]) -> Outcome<u64> {
        let start = key.len();
        self.call(start, |mut c| {
            let req = PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.to_vec(),
                ..Default::default()
            };
            async move { c.put(req).await.map(|r| r.into_inner().version) }
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Outcome<Option<Vec<u8>>> {
        self.call(key.len(), |mut c| {
            let req = GetRequest {
                key: key.as_bytes().to_vec(),
            };
            async move {
                c.get(req).await.map(|r| {
                    let r = r.into_inner();
                    r.found.then_some(r.value)
                })
            }
        })
        .await
    }

    /// Returns (succeeded, current value).
    pub async fn cas(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Outcome<(bool, Option<Vec<u8>>)> {
        self.call(key.len(), |mut c| {
            let req = CasRequest {
                key: key.as_bytes().to_vec(),
                expected: expected.map(|v| v.to_vec()),
                new_value: new.map(|v| v.to_vec()),
                ..Default::default()
            };
            async move {
                c.compare_and_set(req).await.map(|r| {
                    let r = r.into_inner();
                    (r.succeeded, r.found.then_some(r.current))
                })
            }
        })
        .await
    }
}

/// Tests that start clusters run one at a time: two clusters on two cores would starve each
/// other's heartbeats.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

pub fn value_of(key: &str) -> Vec<u8> {
    format!("value-of-{key}").into_bytes()
}

/// Write `prefix{i}` for each i, `concurrency` at a time; returns the acknowledged keys and
/// the ones whose outcome is unknown.
pub async fn write_keys(
    client: &TestClient,
    prefix: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> (Vec<String>, Vec<String>) {
    use futures::StreamExt;
    let results: Vec<(String, Outcome<u64>)> =
        futures::stream::iter(range.map(|i| format!("{prefix}{i}")))
            .map(|key| {
                let client = client.clone();
                async move {
                    let outcome = client.put(&key, &value_of(&key)).await;
                    (key, outcome)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let mut acked = Vec::new();
    let mut unknown = Vec::new();
    for (key, outcome) in results {
        match outcome {
            Outcome::Ok(_) => acked.push(key),
            Outcome::Unknown(_) => unknown.push(key),
            Outcome::Fail(e) => panic!("write of {key} failed: {e}"),
        }
    }
    (acked, unknown)
}

/// Every key must read back with its value.
pub async fn assert_all_readable(client: &TestClient, keys: &[String]) {
    use futures::StreamExt;
    let results: Vec<(String, Outcome<Option<Vec<u8>>>)> =
        futures::stream::iter(keys.iter().cloned())
            .map(|key| {
                let client = client.clone();
                async move {
                    let got = client.get(&key).await;
                    (key, got)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    for (key, got) in results {
        match got {
            Outcome::Ok(Some(v)) => assert_eq!(v, value_of(&key), "wrong value for {key}"),
            other => panic!("acknowledged key {key} not readable: {other:?}"),
        }
    }
}

/// Wait until each of `ids` has applied, in every group it hosts, at least what that
/// group's leader had applied when the wait began.
pub async fn wait_caught_up(cluster: &TestCluster, ids: &[u64], timeout: Duration) {
    let status = cluster.status().await.expect("cluster status");
    let deadline = Instant::now() + timeout;
    for id in ids {
        loop {
            let caught_up = match cluster.local_report(*id).await {
                Some(report) => {
                    !report.groups.is_empty()
                        && report.groups.iter().all(|g| {
                            let target = status
                                .groups
                                .iter()
                                .find(|s| s.id == g.id)
                                .map(|s| s.applied_index)
                                .unwrap_or(0);
                            g.applied_index >= target
                        })
                }
                None => false,
            };
            if caught_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not catch up: {:?}",
                cluster.local_report(*id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
