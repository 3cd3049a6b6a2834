//! A cluster of separate `stratusd run` processes that the benchmark owns, so it can slow
//! a node down (SIGSTOP / SIGCONT) and measure the rest of the cluster meanwhile.
//!
//! `SpawnedCluster::start` writes one config per node (127.0.0.1, ports the OS picked,
//! zones `az-a`, `az-b`, `az-c` in turn, data and logs in a temporary directory), starts
//! the nodes, and `wait_ready` waits until every Raft group has a leader. Dropping the
//! cluster resumes and kills every node and removes the directory (unless kept).
//!
//! The duty cycle of a flapping node is pure ([`DutyCycle`]) and unit tested; the signal
//! loop that follows it is [`Slowdown::run`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use stratus_proto::cluster::cluster_client::ClusterClient;
use stratus_proto::cluster::{ClusterStatus, StatusRequest};
use tonic::transport::Endpoint;

/// Zones the nodes are spread over, in turn.
pub const ZONES: [&str; 3] = ["az-a", "az-b", "az-c"];

/// One node process.
#[derive(Debug)]
pub struct SpawnedNode {
    pub id: u64,
    pub zone: &'static str,
    /// `host:port` of its gRPC service.
    pub grpc: String,
    child: Option<Child>,
}

impl SpawnedNode {
    /// `http://host:port` of its gRPC service.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Its OS process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// The nodes and their directory.
#[derive(Debug)]
pub struct SpawnedCluster {
    dir: Option<tempfile::TempDir>,
    pub nodes: Vec<SpawnedNode>,
}

/// Shape of the spawned cluster.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    pub stratusd: PathBuf,
    pub nodes: usize,
    pub data_groups: u64,
    /// Parent of the temporary directory (data dirs, configs, logs); the system temp dir
    /// when `None`.
    pub parent_dir: Option<PathBuf>,
}

/// Ports the OS hands out now (free at the time of the call).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("picking free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The `stratusd run` config of one node of a local cluster.
pub fn node_config(
    id: u64,
    zone: &str,
    data_dir: &Path,
    grpc: &str,
    http: &str,
    data_groups: u64,
    peers: &str,
) -> String {
    format!(
        "node_id = {id}\nzone = \"{zone}\"\ndata_dir = \"{data}\"\ncluster_name = \"bench\"\n\
         grpc_listen = \"{grpc}\"\nhttp_listen = \"{http}\"\ndata_groups = {data_groups}\n\
         request_timeout_ms = 8000\n\
         [credentials]\naccess_key = \"test\"\nsecret_key = \"test\"\n\
         [raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n\
         {peers}",
        data = data_dir.display(),
    )
}

impl SpawnedCluster {
    /// Writes the configs and starts every node (not yet ready: see `wait_ready`).
    pub fn start(options: &SpawnOptions) -> anyhow::Result<Self> {
        if options.nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        let mut builder = tempfile::Builder::new();
        builder.prefix("stratus-bench-cluster-");
        let dir = match &options.parent_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("creating the cluster directory")?;
        let ports = free_ports(options.nodes * 2)?;
        let mut peers = String::new();
        let mut nodes = Vec::new();
        for i in 0..options.nodes {
            let id = i as u64 + 1;
            let zone = ZONES[i % ZONES.len()];
            let grpc = format!("127.0.0.1:{}", ports[2 * i]);
            let http = format!("127.0.0.1:{}", ports[2 * i + 1]);
            peers.push_str(&format!(
                "[[peers]]\nid = {id}\nzone = \"{zone}\"\ngrpc = \"{grpc}\"\nhttp = \"{http}\"\n"
            ));
            nodes.push((id, zone, grpc, http));
        }
        let mut cluster = SpawnedCluster {
            dir: None,
            nodes: Vec::new(),
        };
        for (id, zone, grpc, http) in nodes {
            let config_path = dir.path().join(format!("node-{id}.toml"));
            let data_dir = dir.path().join(format!("data-{id}"));
            let text = node_config(
                id,
                zone,
                &data_dir,
                &grpc,
                &http,
                options.data_groups,
                &peers,
            );
            std::fs::write(&config_path, text)
                .with_context(|| format!("writing {}", config_path.display()))?;
            let log_path = dir.path().join(format!("node-{id}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let child = Command::new(&options.stratusd)
                .arg("run")
                .arg("--config")
                .arg(&config_path)
                .env("STRATUS_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", options.stratusd.display()))?;
            cluster.nodes.push(SpawnedNode {
                id,
                zone,
                grpc,
                child: Some(child),
            });
        }
        cluster.dir = Some(dir);
        Ok(cluster)
    }

    /// The directory holding the nodes' data, configs and logs.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// Keeps the directory after the run (for the logs); returns where it is.
    pub fn keep_dir(&mut self) -> Option<PathBuf> {
        self.dir.take().map(|d| d.keep())
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(SpawnedNode::endpoint).collect()
    }

    pub fn node(&self, id: u64) -> Option<&SpawnedNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(SpawnedNode::pid).collect()
    }

    /// Fails when a node process has exited (with its id and status).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("node {} exited: {status}", node.id);
                }
            }
        }
        Ok(())
    }

    /// Waits until every group has a leader, as the first node that answers says.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<ClusterStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if let Some(status) = cluster_status(&self.endpoints()).await {
                let expected_nodes = self.nodes.len();
                if !status.groups.is_empty()
                    && status.nodes.len() >= expected_nodes
                    && status.groups.iter().all(|g| g.leader != 0)
                {
                    return Ok(status);
                }
            }
            if Instant::now() > deadline {
                bail!("the cluster had no leader in every group within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for SpawnedCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // A stopped process is killed as well, but resume it first so nothing
                // waits on it.
                signal(child.id(), Signal::Continue);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The cluster's status from the first of `endpoints` that answers within 2 s.
pub async fn cluster_status(endpoints: &[String]) -> Option<ClusterStatus> {
    for endpoint in endpoints {
        let Ok(template) = Endpoint::from_shared(endpoint.clone()) else {
            continue;
        };
        let channel = template.connect_timeout(Duration::from_millis(500));
        let Ok(channel) = channel.connect().await else {
            continue;
        };
        let mut request = tonic::Request::new(StatusRequest {});
        request.set_timeout(Duration::from_secs(2));
        if let Ok(status) = ClusterClient::new(channel).status(request).await {
            return Some(status.into_inner());
        }
    }
    None
}

/// The two signals the benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Continue,
}

/// Sends `sig` to process `pid`; false when it could not be sent.
pub fn signal(pid: u32, sig: Signal) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let number = match sig {
        Signal::Stop => libc::SIGSTOP,
        Signal::Continue => libc::SIGCONT,
    };
    // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
    unsafe { libc::kill(pid, number) == 0 }
}

/// A node stopped for `stopped` out of every `period`, starting stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    pub stopped: Duration,
    pub period: Duration,
}

impl DutyCycle {
    /// Whether the node is stopped at `elapsed` since the cycle began. A zero period
    /// means always running; `stopped >= period` means always stopped.
    pub fn is_stopped_at(&self, elapsed: Duration) -> bool {
        if self.period.is_zero() || self.stopped.is_zero() {
            return false;
        }
        if self.stopped >= self.period {
            return true;
        }
        let into = elapsed.as_nanos() % self.period.as_nanos();
        into < self.stopped.as_nanos()
    }

    /// Time from `elapsed` to the next change of state (`None` when it never changes).
    pub fn next_change_after(&self, elapsed: Duration) -> Option<Duration> {
        if self.period.is_zero() || self.stopped.is_zero() || self.stopped >= self.period {
            return None;
        }
        let period = self.period.as_nanos();
        let into = elapsed.as_nanos() % period;
        let stopped = self.stopped.as_nanos();
        let left = if into < stopped {
            stopped - into
        } else {
            period - into
        };
        Some(Duration::from_nanos(
            u64::try_from(left).unwrap_or(u64::MAX),
        ))
    }

    /// The fraction of time stopped.
    pub fn stopped_fraction(&self) -> f64 {
        if self.period.is_zero() {
            0.0
        } else {
            (self.stopped.as_secs_f64() / self.period.as_secs_f64()).min(1.0)
        }
    }
}

/// How the slowed nodes behave during a phase.
#[derive(Debug, Clone)]
pub struct Slowdown {
    pub pids: Vec<u32>,
    pub cycle: DutyCycle,
    /// SIGSTOPs sent so far (readable while the slowdown runs).
    pub stops: Arc<AtomicU64>,
}

impl Slowdown {
    /// Follows the duty cycle on every pid until `stop` fires, then resumes them all.
    /// Returns how many SIGSTOPs were sent.
    pub async fn run(self, mut stop: tokio::sync::oneshot::Receiver<()>) -> u64 {
        let started = tokio::time::Instant::now();
        let mut stopped = false;
        loop {
            let elapsed = started.elapsed();
            let want = self.cycle.is_stopped_at(elapsed);
            if want != stopped {
                let sig = if want { Signal::Stop } else { Signal::Continue };
                for &pid in &self.pids {
                    signal(pid, sig);
                }
                if want {
                    self.stops.fetch_add(1, Ordering::Relaxed);
                }
                stopped = want;
            }
            let wait = self
                .cycle
                .next_change_after(started.elapsed())
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for &pid in &self.pids {
            signal(pid, Signal::Continue);
        }
        self.stops.load(Ordering::Relaxed)
    }
}

/// Which nodes each slowdown stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victims {
    pub first: u64,
    pub second: Option<u64>,
}

/// Picks the node to slow: not the meta group's leader (the catalog stays reachable),
/// preferably one that leads a data group (so the Raft KV peer feels it too), lowest id
/// first; and a second one in another zone, on the same terms.
pub fn pick_victims(status: &ClusterStatus) -> Option<Victims> {
    let meta_leader = status
        .groups
        .iter()
        .find(|g| g.kind == "meta")
        .map(|g| g.leader);
    let leads_data = |id: u64| {
        status
            .groups
            .iter()
            .any(|g| g.kind != "meta" && g.leader == id)
    };
    let mut candidates: Vec<_> = status
        .nodes
        .iter()
        .filter(|n| Some(n.id) != meta_leader)
        .collect();
    candidates.sort_by_key(|n| (!leads_data(n.id), n.id));
    let first = candidates.first()?;
    let second = candidates
        .iter()
        .find(|n| n.zone != first.zone && n.id != first.id)
        .map(|n| n.id);
    Some(Victims {
        first: first.id,
        second,
    })
}
