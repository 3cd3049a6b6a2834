//! The quorum-storage scenario (docs/quorum-storage.md): closed-loop commits through the
//! writer library (`stratus_client::quorum::Db`), each a 4-of-6 write on the segments of
//! one protection group, with no consensus on the path.
//!
//! A phase runs `in_flight` client tasks against one open [`Db`], each with one commit in
//! flight at a time: either a `put` of a fresh random key (one record, one PG) or an
//! `mput` of several fresh keys (one mini-transaction, usually one record on each of
//! several PGs). A phase stops at its deadline or after `max_ops` commits; each commit
//! is also bounded by `commit_timeout`. Keys are left in the volume (they share the run's
//! prefix).
//!
//! Also here, the small limits the commit latency is read against: the round trip of one
//! 64-byte message on a loopback TCP connection ([`loopback_rtt`]), the round trip of the
//! cheapest gRPC call a node serves ([`grpc_rtt`], `Cluster.LocalStatus`), and, when the
//! nodes are this machine's processes, how many fsync/fdatasync calls they made in a phase
//! ([`SyncCounter`], through `perf stat` tracepoints).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use stratus_client::quorum::Db;
use stratus_proto::cluster::cluster_client::ClusterClient;
use stratus_proto::cluster::StatusRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tonic::transport::Endpoint;

use crate::tally::{join_clients, ClientTally};

/// Pause after a failed commit, so a stuck volume does not turn into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// What each commit of a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    /// `Db::put` of one fresh key.
    Put,
    /// `Db::mput` of this many fresh keys (one mini-transaction).
    Mput(usize),
}

impl CommitKind {
    /// The report's name of the phase.
    pub fn bench_name(&self) -> &'static str {
        match self {
            CommitKind::Put => "quorum_put",
            CommitKind::Mput(_) => "quorum_mput",
        }
    }

    /// Keys written per commit.
    pub fn keys(&self) -> usize {
        match self {
            CommitKind::Put => 1,
            CommitKind::Mput(n) => (*n).max(1),
        }
    }
}

/// One phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct CommitSpec {
    pub kind: CommitKind,
    pub in_flight: usize,
    pub value_bytes: usize,
    pub duration: Duration,
    pub max_ops: u64,
    pub commit_timeout: Duration,
}

/// What a phase measured.
#[derive(Debug, Clone, Default)]
pub struct CommitOutcome {
    /// Latency of each successful commit.
    pub latencies: Vec<Duration>,
    pub ops: u64,
    pub errors: u64,
    /// Failed commits whose outcome is unknown (they may still be applied).
    pub unknown: u64,
    pub elapsed: Duration,
    pub error_sample: Option<String>,
}

impl ClientTally for CommitOutcome {
    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.ops += other.ops;
        self.errors += other.errors;
        self.unknown += other.unknown;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    fn task_failed(&mut self, error: String) {
        self.errors += 1;
        self.error_sample.get_or_insert(error);
    }
}

struct Limits {
    deadline: Instant,
    issued: AtomicU64,
    max_ops: u64,
    commit_timeout: Duration,
}

/// Runs one closed-loop phase of commits on `db`, under keys starting with `prefix`.
pub async fn run_commits(db: &Arc<Db>, prefix: &str, spec: &CommitSpec) -> CommitOutcome {
    let mut value = vec![0u8; spec.value_bytes];
    rand::thread_rng().fill_bytes(&mut value);
    let value: Arc<[u8]> = value.into();
    let prefix: Arc<str> = prefix.into();
    let started = Instant::now();
    let limits = Arc::new(Limits {
        deadline: started + spec.duration,
        issued: AtomicU64::new(0),
        max_ops: spec.max_ops,
        commit_timeout: spec.commit_timeout,
    });
    let mut tasks = JoinSet::new();
    for _ in 0..spec.in_flight.max(1) {
        tasks.spawn(client_loop(
            db.clone(),
            spec.kind,
            prefix.clone(),
            value.clone(),
            limits.clone(),
        ));
    }
    let mut total = join_clients(tasks, CommitOutcome::default()).await;
    total.elapsed = started.elapsed();
    total
}

async fn client_loop(
    db: Arc<Db>,
    kind: CommitKind,
    prefix: Arc<str>,
    value: Arc<[u8]>,
    limits: Arc<Limits>,
) -> CommitOutcome {
    let mut rng = StdRng::from_entropy();
    let mut tally = CommitOutcome::default();
    while Instant::now() < limits.deadline
        && limits.issued.fetch_add(1, Ordering::Relaxed) < limits.max_ops
    {
        let started = Instant::now();
        let commit = async {
            match kind {
                CommitKind::Put => db.put(&bench_key(&prefix, rng.gen()), &value).await,
                CommitKind::Mput(n) => {
                    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n.max(1))
                        .map(|_| (bench_key(&prefix, rng.gen()), value.to_vec()))
                        .collect();
                    db.mput(&pairs).await
                }
            }
        };
        let error = match tokio::time::timeout(limits.commit_timeout, commit).await {
            Ok(Ok(_lsn)) => {
                tally.latencies.push(started.elapsed());
                tally.ops += 1;
                continue;
            }
            Ok(Err(e)) => {
                if e.is_outcome_unknown() {
                    tally.unknown += 1;
                }
                e.to_string()
            }
            Err(_) => {
                tally.unknown += 1;
                format!("no answer within {:?}", limits.commit_timeout)
            }
        };
        tally.errors += 1;
        tally.error_sample.get_or_insert(error);
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    tally
}

/// A fresh key under `prefix`.
pub fn bench_key(prefix: &str, random: u64) -> Vec<u8> {
    format!("{prefix}{random:016x}").into_bytes()
}

/// Round trips of `message_bytes` over one loopback TCP connection (a tokio echo task),
/// one at a time, until `iterations` or `budget`; one untimed warm-up round first.
pub async fn loopback_rtt(
    message_bytes: usize,
    iterations: usize,
    budget: Duration,
) -> std::io::Result<Vec<Duration>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let size = message_bytes.max(1);
    let echo = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        loop {
            match socket.read_exact(&mut buf).await {
                Ok(_) => socket.write_all(&buf).await?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        Ok::<_, std::io::Error>(())
    });
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let message = vec![0x5a_u8; size];
    let mut reply = vec![0u8; size];
    socket.write_all(&message).await?;
    socket.read_exact(&mut reply).await?;
    let mut samples = Vec::with_capacity(iterations.min(1_000_000));
    let started = Instant::now();
    while samples.len() < iterations && started.elapsed() < budget {
        let t = Instant::now();
        socket.write_all(&message).await?;
        socket.read_exact(&mut reply).await?;
        samples.push(t.elapsed());
    }
    drop(socket);
    echo.await
        .map_err(|e| std::io::Error::other(format!("echo task: {e}")))??;
    Ok(samples)
}

/// Round trips of `Cluster.LocalStatus` (answered from memory) to `endpoint`, one at a
/// time, for `budget` after one untimed call: the price of one gRPC call on this machine.
pub async fn grpc_rtt(endpoint: &str, budget: Duration) -> anyhow::Result<Vec<Duration>> {
    let channel = Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = ClusterClient::new(channel);
    client.local_status(StatusRequest {}).await?;
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget && samples.len() < 1_000_000 {
        let t = Instant::now();
        client.local_status(StatusRequest {}).await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// Counts the fsync and fdatasync calls of a set of processes over one phase, with
/// `perf stat` on the syscall tracepoints (needs `perf` and permission to trace them).
#[derive(Debug)]
pub struct SyncCounter {
    child: tokio::process::Child,
}

/// What a [`SyncCounter`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub fsync: u64,
    pub fdatasync: u64,
}

impl SyncCounts {
    pub fn total(&self) -> u64 {
        self.fsync + self.fdatasync
    }
}

impl SyncCounter {
    /// Starts counting for `pids` until [`SyncCounter::stop`] (perf is killed if the
    /// counter is dropped instead).
    pub fn start(perf: &str, pids: &[u32]) -> std::io::Result<Self> {
        let pid_list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let child = tokio::process::Command::new(perf)
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                "-p",
                &pid_list,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self { child })
    }

    /// Stops counting (SIGINT, so perf prints its counts) and returns what it counted.
    pub async fn stop(self) -> Option<SyncCounts> {
        if let Some(pid) = self.child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) takes plain integers; the child is ours and not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        let output = tokio::time::timeout(Duration::from_secs(10), self.child.wait_with_output())
            .await
            .ok()?
            .ok()?;
        parse_perf_counts(&String::from_utf8_lossy(&output.stderr))
    }
}

/// The counts in `perf stat -x,` output (`count,unit,event,...` lines).
pub fn parse_perf_counts(text: &str) -> Option<SyncCounts> {
    let mut counts = SyncCounts::default();
    let mut seen = false;
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(count) = count.trim().parse::<u64>() else {
            continue;
        };
        match event.trim() {
            "syscalls:sys_enter_fsync" => counts.fsync = count,
            "syscalls:sys_enter_fdatasync" => counts.fdatasync = count,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(counts)
}

/// CPU seconds (user + system) of every process in `pids` together; `None` when one
/// cannot be read.
pub fn processes_cpu_time(pids: &[u32]) -> Option<Duration> {
    pids.iter()
        .map(|&pid| crate::cpu::process_cpu_time(Some(pid)))
        .sum()
}
