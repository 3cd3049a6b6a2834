//! The local target: six `stratusd run` processes on 127.0.0.1, two per zone, each with
//! its own temporary data directory, OS-chosen ports and a TOML config.
//!
//! Faults: kill (SIGKILL, then the same binary restarted on the same data dir and ports),
//! pause (SIGSTOP/SIGCONT) and zone (both nodes of a zone killed). Partitions and slow
//! nodes need separate network stacks, which processes sharing 127.0.0.1 do not have: this
//! target refuses them. Node logs go to the run directory; data dirs are removed when the
//! target is dropped, and every process it started is killed then.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::run::partition::Partition;
use crate::run::target::{
    unsupported, zone_of, FaultKind, NodeId, S3Access, Target, TargetError, NODE_COUNT,
};

/// Raft timing for a loopback cluster: quick elections, so faults are felt and healed fast.
const RAFT_SETTINGS: &str = "heartbeat_ms = 50\nelection_timeout_min_ms = 300\n\
    election_timeout_max_ms = 600\nsnapshot_logs = 20000\nkeep_logs_after_snapshot = 1000\n";

/// The root credentials every local node is given (S3 clients sign with them).
const ACCESS_KEY: &str = "jepsen";
const SECRET_KEY: &str = "jepsen-secret";

/// How long a node waits for a leader before telling a client it is unavailable.
const REQUEST_TIMEOUT_MS: u64 = 4000;

struct LocalNode {
    grpc: String,
    http: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// Six local `stratusd` processes.
pub struct LocalCluster {
    stratusd: PathBuf,
    nodes: Vec<LocalNode>,
    /// Holds configs and data dirs; removed on drop.
    _dir: tempfile::TempDir,
}

/// Finds `stratusd`: `explicit` when given, else next to the running executable (where
/// cargo puts every binary of the workspace).
pub fn find_stratusd(explicit: Option<&Path>) -> Result<PathBuf, TargetError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|source| TargetError::Io {
                context: "locating the running executable".into(),
                source,
            })?
            .with_file_name("stratusd"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TargetError::Setup(format!(
            "stratusd not found at {} (build it with `cargo build -p stratus-node --bin \
             stratusd` or pass --stratusd PATH)",
            path.display()
        )))
    }
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> TargetError {
    move |source| TargetError::Io { context, source }
}

fn free_ports(count: usize) -> Result<Vec<u16>, TargetError> {
    // Hold every listener until all ports are chosen so none is handed out twice.
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error("choosing free ports".into()))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error("choosing free ports".into()))
}

impl LocalCluster {
    /// Writes the configs and starts every node. `log_dir` receives `node-N.log`.
    pub fn start(stratusd: PathBuf, log_dir: &Path) -> Result<LocalCluster, TargetError> {
        let dir = tempfile::Builder::new()
            .prefix("stratus-jepsen-")
            .tempdir()
            .map_err(io_error(
                "creating the cluster's temporary directory".into(),
            ))?;
        std::fs::create_dir_all(log_dir)
            .map_err(io_error(format!("creating {}", log_dir.display())))?;
        let ports = free_ports(NODE_COUNT as usize * 2)?;
        let addresses: Vec<(String, String)> = ports
            .chunks(2)
            .map(|p| (format!("127.0.0.1:{}", p[0]), format!("127.0.0.1:{}", p[1])))
            .collect();
        let mut peers = String::new();
        for (i, (grpc, http)) in addresses.iter().enumerate() {
            let id = i as u64 + 1;
            peers.push_str(&format!(
                "\n[[peers]]\nid = {id}\nzone = \"{}\"\ngrpc = \"{grpc}\"\nhttp = \"{http}\"\n",
                zone_of(id)
            ));
        }
        let mut nodes = Vec::new();
        for (i, (grpc, http)) in addresses.iter().enumerate() {
            let id = i as u64 + 1;
            let config = dir.path().join(format!("node-{id}.toml"));
            let data = dir.path().join(format!("data-{id}"));
            let text = format!(
                "node_id = {id}\nzone = \"{zone}\"\ndata_dir = \"{data}\"\n\
                 cluster_name = \"jepsen\"\ngrpc_listen = \"{grpc}\"\nhttp_listen = \"{http}\"\n\
                 data_groups = 6\nrequest_timeout_ms = {REQUEST_TIMEOUT_MS}\n\n\
                 [credentials]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n\n\
                 [raft]\n{RAFT_SETTINGS}{peers}",
                zone = zone_of(id),
                data = data.display(),
            );
            std::fs::write(&config, text)
                .map_err(io_error(format!("writing {}", config.display())))?;
            nodes.push(LocalNode {
                grpc: grpc.clone(),
                http: http.clone(),
                config,
                log: log_dir.join(format!("node-{id}.log")),
                child: None,
                paused: false,
            });
        }
        let mut cluster = LocalCluster {
            stratusd,
            nodes,
            _dir: dir,
        };
        for id in 1..=NODE_COUNT {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    fn node(&mut self, id: NodeId) -> Result<&mut LocalNode, TargetError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.nodes.get_mut(i))
            .ok_or(TargetError::UnknownNode(id))
    }

    fn spawn(&mut self, id: NodeId) -> Result<(), TargetError> {
        let stratusd = self.stratusd.clone();
        let node = self.node(id)?;
        if node.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(io_error(format!("opening {}", node.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io_error(format!("opening {}", node.log.display())))?;
        let child = Command::new(&stratusd)
            .arg("run")
            .arg("--config")
            .arg(&node.config)
            .env("STRATUS_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(io_error(format!("starting {}", stratusd.display())))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    fn signal(&mut self, id: NodeId, signal: libc::c_int) -> Result<(), TargetError> {
        let node = self.node(id)?;
        let Some(child) = &node.child else {
            return Err(TargetError::Setup(format!("node {id} is not running")));
        };
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|_| TargetError::Setup(format!("node {id} has no valid pid")))?;
        // SAFETY: kill(2) with a pid this process spawned and still owns (not yet waited
        // for), so it cannot name an unrelated, recycled process.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(TargetError::Io {
                context: format!("signalling node {id} (pid {pid})"),
                source: std::io::Error::last_os_error(),
            })
        }
    }
}

impl Target for LocalCluster {
    fn name(&self) -> &'static str {
        "local"
    }

    fn endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("http://{}", n.grpc))
            .collect()
    }

    fn s3_access(&self) -> S3Access {
        S3Access {
            endpoints: self
                .nodes
                .iter()
                .map(|n| format!("http://{}", n.http))
                .collect(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
        }
    }

    fn supports(&self, fault: FaultKind) -> bool {
        matches!(fault, FaultKind::Kill | FaultKind::Pause | FaultKind::Zone)
    }

    fn unsupported_reason(&self, _fault: FaultKind) -> &'static str {
        "every local node shares 127.0.0.1, so there is no per-node network to cut or \
         throttle; use --target compose"
    }

    fn kill(&mut self, id: NodeId) -> Result<(), TargetError> {
        let node = self.node(id)?;
        if let Some(mut child) = node.child.take() {
            // SIGKILL ends a stopped process too.
            child
                .kill()
                .map_err(io_error(format!("killing node {id}")))?;
            child
                .wait()
                .map_err(io_error(format!("reaping node {id}")))?;
        }
        node.paused = false;
        Ok(())
    }

    fn restart(&mut self, id: NodeId) -> Result<(), TargetError> {
        self.spawn(id)
    }

    fn pause(&mut self, id: NodeId) -> Result<(), TargetError> {
        self.signal(id, libc::SIGSTOP)?;
        self.node(id)?.paused = true;
        Ok(())
    }

    fn resume(&mut self, id: NodeId) -> Result<(), TargetError> {
        self.signal(id, libc::SIGCONT)?;
        self.node(id)?.paused = false;
        Ok(())
    }

    fn partition(&mut self, _partition: &Partition) -> Result<(), TargetError> {
        Err(unsupported(self, FaultKind::Partition))
    }

    fn heal(&mut self) -> Result<(), TargetError> {
        Ok(())
    }

    fn slow(&mut self, _node: NodeId) -> Result<(), TargetError> {
        Err(unsupported(self, FaultKind::Slow))
    }

    fn unslow(&mut self, _node: NodeId) -> Result<(), TargetError> {
        Ok(())
    }

    fn heal_all(&mut self) -> Result<(), TargetError> {
        let mut first_error = None;
        for id in 1..=NODE_COUNT {
            let node = self.node(id)?;
            let result = if node.child.is_none() {
                self.spawn(id)
            } else if node.paused {
                self.resume(id)
            } else {
                Ok(())
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn shutdown(&mut self) -> Result<(), TargetError> {
        let mut first_error = None;
        for id in 1..=NODE_COUNT {
            if let Err(e) = self.kill(id) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
