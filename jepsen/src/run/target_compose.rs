//! The compose target: the six-node cluster of `deploy/docker-compose.yml`, driven from
//! the host with the docker CLI.
//!
//! The contract with the compose file: containers `stratus-node1`..`stratus-node6`; node N
//! at 172.28.0.(10+N) on the compose network, its gRPC port published on the host at
//! 127.0.0.1:(6999+N) and its HTTP edge (S3) at 127.0.0.1:(4565+N); zones as everywhere
//! (node N in `ZONES[(N-1) % 3]`); root credentials from `STRATUS_CREDENTIALS__ACCESS_KEY`
//! and `STRATUS_CREDENTIALS__SECRET_KEY` as the compose file reads them (default
//! `test`/`test`).
//!
//! Faults: kill (`docker kill -s KILL`, then `docker start`: same volume, same data),
//! pause (`docker pause`/`unpause`, the cgroup freezer), partitions (iptables DROP rules
//! for peer addresses inside each container's network namespace, entered from the host
//! with nsenter: see [`crate::run::netns`]), slow (a tbf qdisc on the container's eth0).
//! The image has no shell: nothing runs inside the containers.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::run::netns::{run_command, Netns, THROTTLE};
use crate::run::partition::Partition;
use crate::run::target::{FaultKind, NodeId, S3Access, Target, TargetError, NODE_COUNT};

/// The interface each container reaches its peers on.
const DEVICE: &str = "eth0";

/// Tries of `docker pause` before giving up.
const PAUSE_ATTEMPTS: u32 = 5;

/// How long `up -d` may take to get every container running.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The container of node `id`.
pub fn container(id: NodeId) -> String {
    format!("stratus-node{id}")
}

/// Node `id`'s address on the compose network.
pub fn node_ip(id: NodeId) -> Ipv4Addr {
    Ipv4Addr::new(172, 28, 0, 10 + id as u8)
}

/// Node `id`'s gRPC endpoint as published on the host.
pub fn host_endpoint(id: NodeId) -> String {
    format!("http://127.0.0.1:{}", 6999 + id)
}

/// Node `id`'s HTTP edge (the S3 API) as published on the host.
pub fn host_http_endpoint(id: NodeId) -> String {
    format!("http://127.0.0.1:{}", 4565 + id)
}

/// A credential as the compose file resolves it: the environment, else `test`.
fn compose_credential(variable: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "test".into())
}

fn docker(args: &[&str]) -> Result<String, TargetError> {
    let shown = format!("docker {}", args.join(" "));
    run_command(Command::new("docker").args(args), &shown)
}

/// The docker-compose command: the standalone `docker-compose` when installed, else the
/// `docker compose` plugin.
fn compose_command(file: &Path, args: &[&str]) -> Result<String, TargetError> {
    let file = file.display().to_string();
    let standalone = Command::new("docker-compose").arg("version").output();
    let (program, mut full): (&str, Vec<&str>) = match standalone {
        Ok(out) if out.status.success() => ("docker-compose", vec!["-f", &file]),
        _ => ("docker", vec!["compose", "-f", &file]),
    };
    full.extend_from_slice(args);
    let shown = format!("{program} {}", full.join(" "));
    run_command(Command::new(program).args(&full), &shown)
}

/// The names of running containers.
fn running_containers() -> Result<BTreeSet<String>, TargetError> {
    Ok(docker(&["ps", "--format", "{{.Names}}"])?
        .lines()
        .map(|l| l.trim().to_string())
        .collect())
}

/// The docker-compose cluster, attached to (and brought up if it is not running).
pub struct ComposeCluster {
    killed: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
    slowed: BTreeSet<NodeId>,
    partitioned: bool,
}

impl ComposeCluster {
    /// Attaches to the running cluster, or runs `docker-compose -f FILE up -d` when some
    /// of its containers are not running, and waits until all are.
    pub fn attach(compose_file: &Path) -> Result<ComposeCluster, TargetError> {
        docker(&["info", "--format", "{{.ServerVersion}}"]).map_err(|e| {
            TargetError::Setup(format!(
                "docker does not answer ({e}); is the daemon running?"
            ))
        })?;
        let expected: Vec<String> = (1..=NODE_COUNT).map(container).collect();
        let missing = |running: &BTreeSet<String>| {
            expected
                .iter()
                .filter(|c| !running.contains(*c))
                .cloned()
                .collect::<Vec<_>>()
        };
        if !missing(&running_containers()?).is_empty() {
            if !compose_file.is_file() {
                return Err(TargetError::Setup(format!(
                    "the compose cluster is not running and {} does not exist",
                    compose_file.display()
                )));
            }
            compose_command(compose_file, &["up", "-d"])?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let absent = missing(&running_containers()?);
            if absent.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(TargetError::Setup(format!(
                    "containers not running after {START_TIMEOUT:?}: {absent:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut cluster = ComposeCluster {
            killed: BTreeSet::new(),
            paused: BTreeSet::new(),
            slowed: BTreeSet::new(),
            partitioned: false,
        };
        // Leftovers of an interrupted run would skew this one: paused containers, cuts,
        // throttles. (Killed ones were started again by `up -d` above.)
        for id in 1..=NODE_COUNT {
            cluster.resume(id)?;
        }
        cluster.partitioned = true;
        cluster.heal()?;
        for id in 1..=NODE_COUNT {
            cluster.netns(id)?.unthrottle(DEVICE)?;
        }
        Ok(cluster)
    }

    fn netns(&self, id: NodeId) -> Result<Netns, TargetError> {
        let out = docker(&["inspect", "-f", "{{.State.Pid}}", &container(id)])?;
        let pid: u32 = out.trim().parse().map_err(|_| {
            TargetError::Setup(format!("docker inspect gave no pid for node {id}: {out:?}"))
        })?;
        if pid == 0 {
            return Err(TargetError::Setup(format!(
                "{} is not running",
                container(id)
            )));
        }
        Ok(Netns::of_pid(pid))
    }

    fn check_node(id: NodeId) -> Result<(), TargetError> {
        if (1..=NODE_COUNT).contains(&id) {
            Ok(())
        } else {
            Err(TargetError::UnknownNode(id))
        }
    }
}

/// Where the compose file is by default, relative to the workspace root.
pub fn default_compose_file() -> PathBuf {
    PathBuf::from("deploy/docker-compose.yml")
}

impl Target for ComposeCluster {
    fn name(&self) -> &'static str {
        "compose"
    }

    fn endpoints(&self) -> Vec<String> {
        (1..=NODE_COUNT).map(host_endpoint).collect()
    }

    fn s3_access(&self) -> S3Access {
        S3Access {
            endpoints: (1..=NODE_COUNT).map(host_http_endpoint).collect(),
            access_key: compose_credential("STRATUS_CREDENTIALS__ACCESS_KEY"),
            secret_key: compose_credential("STRATUS_CREDENTIALS__SECRET_KEY"),
        }
    }

    fn supports(&self, _fault: FaultKind) -> bool {
        true
    }

    fn kill(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        docker(&["kill", "-s", "KILL", &container(id)])?;
        self.killed.insert(id);
        self.paused.remove(&id);
        self.slowed.remove(&id);
        Ok(())
    }

    fn restart(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        docker(&["start", &container(id)])?;
        self.killed.remove(&id);
        Ok(())
    }

    fn pause(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        // The cgroup freezer can fail to freeze a process caught in uninterruptible I/O
        // ("unable to freeze"); it usually succeeds a moment later.
        let name = container(id);
        let mut attempt = 1;
        loop {
            match docker(&["pause", &name]) {
                Ok(_) => break,
                Err(TargetError::Command { detail, .. })
                    if detail.contains("unable to freeze") && attempt < PAUSE_ATTEMPTS =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        self.paused.insert(id);
        Ok(())
    }

    fn resume(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        match docker(&["unpause", &container(id)]) {
            Ok(_) => {}
            // Already running: what resuming asks for.
            Err(TargetError::Command { detail, .. }) if detail.contains("is not paused") => {}
            Err(e) => return Err(e),
        }
        self.paused.remove(&id);
        Ok(())
    }

    fn partition(&mut self, partition: &Partition) -> Result<(), TargetError> {
        self.partitioned = true;
        for id in partition.affected() {
            let peers: Vec<Ipv4Addr> = partition.cut_from(id).map(node_ip).collect();
            self.netns(id)?.drop_peers(&peers)?;
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), TargetError> {
        if !self.partitioned {
            return Ok(());
        }
        let mut first_error = None;
        for id in (1..=NODE_COUNT).filter(|id| !self.killed.contains(id)) {
            if let Err(e) = self.netns(id).and_then(|ns| ns.flush()) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => {
                self.partitioned = false;
                Ok(())
            }
            Some(e) => Err(e),
        }
    }

    fn slow(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        self.netns(id)?.throttle(DEVICE, &THROTTLE)?;
        self.slowed.insert(id);
        Ok(())
    }

    fn unslow(&mut self, id: NodeId) -> Result<(), TargetError> {
        Self::check_node(id)?;
        self.netns(id)?.unthrottle(DEVICE)?;
        self.slowed.remove(&id);
        Ok(())
    }

    fn heal_all(&mut self) -> Result<(), TargetError> {
        let mut first_error = None;
        let mut note = |result: Result<(), TargetError>| {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        };
        for id in self.paused.clone() {
            note(self.resume(id));
        }
        for id in self.killed.clone() {
            note(self.restart(id));
        }
        note(self.heal());
        for id in self.slowed.clone() {
            note(self.unslow(id));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn shutdown(&mut self) -> Result<(), TargetError> {
        self.heal_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_the_compose_contract() {
        assert_eq!(container(3), "stratus-node3");
        assert_eq!(node_ip(1), Ipv4Addr::new(172, 28, 0, 11));
        assert_eq!(node_ip(6), Ipv4Addr::new(172, 28, 0, 16));
        assert_eq!(host_endpoint(1), "http://127.0.0.1:7000");
        assert_eq!(host_endpoint(6), "http://127.0.0.1:7005");
        assert_eq!(host_http_endpoint(1), "http://127.0.0.1:4566");
        assert_eq!(host_http_endpoint(6), "http://127.0.0.1:4571");
    }
}
