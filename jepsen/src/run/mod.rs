//! `stratus-jepsen run`: drives a live cluster with a workload while a nemesis breaks it,
//! then checks the history and writes a report.
//!
//! A run: start (local) or attach to (compose) the target; wait until every group has a
//! leader; run the workload's clients and the nemesis for the time limit; undo every fault;
//! wait for the cluster to recover; do the workload's final reads; check the history; and
//! leave `<store>/<workload>-<UTC time>/` with history.jsonl, verdict.json, summary.txt,
//! latency.png (and the local target's node logs under nodes/).
//!
//! Guarantees: faults are undone and the local cluster stopped whatever happens after the
//! target started; a fault a target cannot inflict is refused before anything starts.
//!
//! Modules: [`target`] (the trait) with [`target_local`] and [`target_compose`];
//! [`partition`] and [`netns`] (network faults); [`nemesis`] (the fault schedule);
//! [`cluster_view`] (status, leaders); [`request`], [`workload_register`],
//! [`workload_set`] (the gRPC clients); [`s3_request`], [`workload_objects`] (the S3
//! clients); [`sqs_request`], [`workload_queue`] (the SQS clients, standard and FIFO);
//! [`kinesis_request`], [`workload_stream`] (the Kinesis clients); [`placement`] (which
//! data group holds a queue or a shard, to aim faults); [`verdict`], [`report`], [`plot`]
//! (the results).

pub mod cluster_view;
pub mod kinesis_request;
pub mod nemesis;
pub mod netns;
pub mod partition;
pub mod placement;
pub mod plot;
pub mod report;
pub mod request;
pub mod s3_request;
pub mod sqs_request;
pub mod target;
pub mod target_compose;
pub mod target_local;
pub mod verdict;
pub mod workload_objects;
pub mod workload_queue;
pub mod workload_quorum;
pub mod workload_register;
pub mod workload_set;
pub mod workload_stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::checker::queue::QueueKind;
use crate::history::{History, Recorder};
use crate::run::cluster_view::ClusterView;
use crate::run::nemesis::{Nemesis, Schedule};
use crate::run::report::RunInfo;
use crate::run::request::ClientContext;
use crate::run::target::{FaultKind, Target};
use crate::run::verdict::{exit_code, Checked};
use crate::run::workload_objects::ObjectsWorkload;
use crate::run::workload_queue::QueueWorkload;
use crate::run::workload_quorum::QuorumWorkload;
use crate::run::workload_register::RegisterWorkload;
use crate::run::workload_set::SetWorkload;
use crate::run::workload_stream::{ReshardChoice, StreamWorkload};

/// Which cluster to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Local,
    Compose,
}

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Register,
    Set,
    /// The S3 API on the HTTP edges: keys as registers that may be absent, and listings.
    Objects,
    /// SQS on the HTTP edges, a standard queue: at least once, nothing invented.
    Queue,
    /// SQS on the HTTP edges, a FIFO queue: in order per group, no duplicates.
    Fifo,
    /// Kinesis on the HTTP edges: a sharded stream put to and read back shard by shard.
    Stream,
    /// Quorum storage (6 segments, 4/6 writes) through its key-value database: registers
    /// and atomic multi-puts, with the writer crashed and recovered along the way.
    Quorum,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
            WorkloadKind::Objects => "objects",
            WorkloadKind::Queue => "queue",
            WorkloadKind::Fifo => "fifo",
            WorkloadKind::Stream => "stream",
            WorkloadKind::Quorum => "quorum",
        }
    }

    /// The kind of queue a queue workload drives.
    pub fn queue_kind(self) -> Option<QueueKind> {
        match self {
            WorkloadKind::Queue => Some(QueueKind::Standard),
            WorkloadKind::Fifo => Some(QueueKind::Fifo),
            _ => None,
        }
    }
}

/// Everything `stratus-jepsen run` is told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: TargetKind,
    pub workload: WorkloadKind,
    pub faults: Vec<FaultKind>,
    pub time_limit: Duration,
    pub clients: usize,
    /// Register and objects workloads: keys in use at once.
    pub keys: usize,
    /// Register and objects workloads: operations on one key before it is replaced by a
    /// fresh key.
    pub ops_per_key: u64,
    /// Stream workload: the split or merge made halfway through.
    pub reshard: ReshardChoice,
    pub nemesis_interval: Duration,
    /// Each client process talks to one node only (see `request::ClientContext::pinned`).
    pub pin_clients: bool,
    pub seed: u64,
    pub op_timeout: Duration,
    /// How long the cluster may take to be ready, at the start and after healing.
    pub ready_timeout: Duration,
    pub store: PathBuf,
    pub stratusd: Option<PathBuf>,
    pub compose_file: PathBuf,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    pub dir: PathBuf,
    pub checked: Checked,
    pub exit_code: u8,
    pub summary: String,
}

/// Runs a test end to end. `Err` only when the harness could not run at all (bad
/// options, no cluster); anything found during the run is in the result.
pub async fn run(options: RunOptions) -> anyhow::Result<RunResult> {
    if options.clients == 0 {
        bail!("--clients must be at least 1");
    }
    // Everything that can be refused is refused before a directory or a node exists.
    let stratusd = match options.target {
        TargetKind::Local => {
            reject_unsupported_early(&options.faults)?;
            Some(target_local::find_stratusd(options.stratusd.as_deref())?)
        }
        TargetKind::Compose => None,
    };
    let started_at: DateTime<Utc> = Utc::now();
    let dir = run_dir(&options.store, options.workload, started_at)?;
    let mut target: Box<dyn Target> = match stratusd {
        Some(stratusd) => Box::new(target_local::LocalCluster::start(
            stratusd,
            &dir.join("nodes"),
        )?),
        None => Box::new(target_compose::ComposeCluster::attach(
            &options.compose_file,
        )?),
    };
    for fault in &options.faults {
        if !target.supports(*fault) {
            let _ = target.shutdown();
            return Err(target::unsupported(target.as_ref(), *fault).into());
        }
    }
    eprintln!("run directory: {}", dir.display());
    let outcome = drive(&options, target.as_mut(), &dir, started_at).await;
    let shutdown = target.shutdown();
    let (history, checked, mut info) = outcome?;
    if let Err(e) = shutdown {
        info.harness_errors
            .push(format!("stopping the target: {e}"));
    }
    let title = format!(
        "{} on {} with {}: {}",
        info.workload,
        info.target,
        if info.nemesis.is_empty() {
            "no faults".to_string()
        } else {
            info.nemesis.join(",")
        },
        checked.validity()
    );
    if let Err(e) = plot::latency_png(&dir.join("latency.png"), &history, &title) {
        info.harness_errors
            .push(format!("drawing latency.png: {e}"));
    }
    let code = exit_code(checked.validity(), !info.harness_errors.is_empty());
    let summary = report::write(&dir, &info, &history, &checked, code)
        .with_context(|| format!("writing the report in {}", dir.display()))?;
    Ok(RunResult {
        dir,
        checked,
        exit_code: code,
        summary,
    })
}

/// The local target cannot partition or slow nodes; say so before starting six nodes.
fn reject_unsupported_early(faults: &[FaultKind]) -> anyhow::Result<()> {
    if let Some(fault) = faults
        .iter()
        .find(|f| matches!(f, FaultKind::Partition | FaultKind::Slow))
    {
        bail!(
            "the local target cannot {fault}: every local node shares 127.0.0.1, so there is \
             no per-node network to cut or throttle; use --target compose or drop {fault} \
             from --nemesis"
        );
    }
    Ok(())
}

/// `<store>/<workload>-<UTC time>`, made unique with a suffix if needed.
fn run_dir(store: &Path, workload: WorkloadKind, at: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    let base = store.join(format!("{}-{stamp}", workload.name()));
    let mut dir = base.clone();
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = PathBuf::from(format!("{}-{n}", base.display()));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The objects workload's bucket (and the stem of the queue workloads' queue, and the
/// stream workload's stream): unique per run start and seed, and a valid S3 name (lower
/// case, at most 63 characters).
fn bucket_name(started_at: DateTime<Utc>, seed: u64) -> String {
    let name = format!("jepsen-{}-{seed}", started_at.format("%Y%m%dt%H%M%S%3f"));
    name.chars().take(63).collect()
}

/// Everything between a started target and its shutdown.
async fn drive(
    options: &RunOptions,
    target: &mut dyn Target,
    dir: &Path,
    started_at: DateTime<Utc>,
) -> anyhow::Result<(History, Checked, RunInfo)> {
    let endpoints = target.endpoints();
    let nodes = target.nodes();
    let mut view = ClusterView::new(endpoints.clone())
        .await
        .context("connecting to the cluster")?;
    let ready = view
        .wait_ready(&nodes, options.ready_timeout)
        .await
        .map_err(|e| anyhow::anyhow!("the cluster did not become ready: {e}"))?;
    eprintln!("cluster ready after {ready:.1?}");

    let recorder = Recorder::new();
    let run_id = format!(
        "jepsen/{}-{}",
        started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        options.seed
    );
    let context = |index: usize| ClientContext {
        index,
        clients: options.clients,
        endpoints: endpoints.clone(),
        op_timeout: options.op_timeout,
        recorder: recorder.clone(),
        seed: options.seed,
        pinned: options.pin_clients,
    };
    let register = RegisterWorkload::new(
        format!("{run_id}/register"),
        options.keys,
        options.ops_per_key,
    );
    let set = SetWorkload::new(format!("{run_id}/set"));
    let objects = ObjectsWorkload::new(
        bucket_name(started_at, options.seed),
        target.s3_access(),
        options.keys,
        options.ops_per_key,
    );
    let queue_kind = options.workload.queue_kind();
    let queue = QueueWorkload::new(
        queue_kind.unwrap_or(QueueKind::Standard),
        workload_queue::queue_name(
            &bucket_name(started_at, options.seed),
            queue_kind.unwrap_or(QueueKind::Standard),
        ),
        target.s3_access(),
    );
    if queue_kind.is_some() {
        let deadline = Instant::now() + options.ready_timeout;
        queue
            .setup(&context(options.clients), deadline)
            .await
            .map_err(|e| {
                anyhow::anyhow!("setting up the {} workload: {e}", options.workload.name())
            })?;
        eprintln!("queue {} ready", queue.name());
        // Leader-targeted faults aim at the queue's own group.
        if let Some(groups) = view.data_groups().await.filter(|g| *g > 0) {
            let group = workload_queue::queue_group(queue.name(), groups);
            view.focus_on(vec![group]);
            eprintln!("queue {} lives in data group {group}", queue.name());
        }
    }
    let stream = StreamWorkload::new(
        bucket_name(started_at, options.seed),
        target.s3_access(),
        options.reshard,
        options.seed,
        options.time_limit,
        view.focus(),
    );
    if options.workload == WorkloadKind::Stream {
        let deadline = Instant::now() + options.ready_timeout;
        let shards = stream
            .setup(&context(options.clients), deadline)
            .await
            .map_err(|e| anyhow::anyhow!("setting up the stream workload: {e}"))?;
        // Leader-targeted faults aim at the groups of the stream's shards.
        let groups = match view.data_groups().await {
            Some(groups) if groups > 0 => stream.aim(&shards, groups),
            _ => Vec::new(),
        };
        eprintln!(
            "stream {} ready: {} shards in data groups {groups:?}",
            stream.name(),
            shards.len()
        );
    }
    let quorum = QuorumWorkload::new(
        bucket_name(started_at, options.seed),
        format!("{run_id}/quorum"),
        options.keys,
        options.nemesis_interval,
    );
    if options.workload == WorkloadKind::Quorum {
        let deadline = Instant::now() + options.ready_timeout;
        quorum
            .setup(&context(options.clients), deadline)
            .await
            .map_err(|e| anyhow::anyhow!("setting up the quorum workload: {e}"))?;
        eprintln!("volume {} open", quorum.volume());
    }
    if options.workload == WorkloadKind::Objects {
        let deadline = Instant::now() + options.ready_timeout;
        objects
            .setup(options.op_timeout, deadline)
            .await
            .map_err(|e| anyhow::anyhow!("setting up the objects workload: {e}"))?;
        eprintln!("bucket {} ready (versioning enabled)", objects.bucket());
    }
    // The clients start their clock after the setup.
    let stop = Instant::now() + options.time_limit;
    let mut clients: Vec<JoinHandle<Result<(), String>>> = (0..options.clients)
        .map(|index| match options.workload {
            WorkloadKind::Register => {
                tokio::spawn(Arc::clone(&register).client(context(index), stop))
            }
            WorkloadKind::Set => tokio::spawn(Arc::clone(&set).client(context(index), stop)),
            WorkloadKind::Objects => {
                tokio::spawn(Arc::clone(&objects).client(context(index), stop))
            }
            WorkloadKind::Queue | WorkloadKind::Fifo => {
                tokio::spawn(Arc::clone(&queue).client(context(index), stop))
            }
            WorkloadKind::Stream => tokio::spawn(Arc::clone(&stream).client(context(index), stop)),
            WorkloadKind::Quorum => tokio::spawn(Arc::clone(&quorum).client(context(index), stop)),
        })
        .collect();
    if options.workload == WorkloadKind::Quorum {
        // The writer's own crashes: the workload's, beside the nemesis's node faults.
        clients.push(tokio::spawn(
            Arc::clone(&quorum).crasher(context(options.clients), stop),
        ));
    }

    let schedule = Schedule {
        faults: options.faults.clone(),
        interval: options.nemesis_interval,
        seed: options.seed,
    };
    let mut nemesis = Nemesis::new(target, &view, recorder.clone(), schedule);
    nemesis.run_until(stop).await;
    let mut harness_errors: Vec<String> = Vec::new();
    for client in clients {
        match client.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => harness_errors.push(format!("client: {e}")),
            Err(e) => harness_errors.push(format!("client task: {e}")),
        }
    }
    nemesis.heal_all();
    harness_errors.extend(nemesis.errors().iter().cloned());
    eprintln!("time limit reached; faults healed, waiting for recovery");

    let recovery = match view.wait_ready(&nodes, options.ready_timeout).await {
        Ok(took) => format!("ready after {took:.1?}"),
        Err(e) => format!("NOT READY: {e}"),
    };
    eprintln!("recovery: {recovery}");
    let final_context = context(options.clients);
    let checked = match options.workload {
        WorkloadKind::Register => {
            if let Err(e) = register.final_reads(&final_context).await {
                harness_errors.push(format!("final reads: {e}"));
            }
            let history = recorder.history();
            match workload_register::check(&history) {
                Ok(report) => Checked::Register(report),
                Err(e) => Checked::Unchecked(e.to_string()),
            }
        }
        WorkloadKind::Objects => {
            let deadline = Instant::now() + options.ready_timeout;
            if let Err(e) = objects.final_reads(&final_context, deadline).await {
                harness_errors.push(e);
            }
            match workload_objects::check(&recorder.history()) {
                Ok(report) => Checked::Objects(report),
                Err(e) => Checked::Unchecked(e.to_string()),
            }
        }
        WorkloadKind::Queue | WorkloadKind::Fifo => {
            let kind = queue_kind.unwrap_or(QueueKind::Standard);
            // Draining takes as long as the backlog the faults left.
            let deadline = Instant::now() + options.ready_timeout + options.time_limit;
            match queue.drain(&final_context, deadline).await {
                Ok(drained) => eprintln!(
                    "drained {} messages in {:.1?}",
                    drained.received, drained.took
                ),
                Err(e) => harness_errors.push(e),
            }
            match workload_queue::check(&recorder.history(), kind) {
                Ok(report) => Checked::Queue(report),
                Err(e) => Checked::Unchecked(e.to_string()),
            }
        }
        WorkloadKind::Stream => {
            // Reading everything back takes as long as there is to read.
            let deadline = Instant::now() + options.ready_timeout + options.time_limit;
            match stream.drain(&final_context, deadline).await {
                Ok(drained) => eprintln!(
                    "drained {} records of {} shards in {:.1?}",
                    drained.records, drained.shards, drained.took
                ),
                Err(e) => harness_errors.push(e),
            }
            match workload_stream::check(&recorder.history()) {
                Ok(report) => Checked::Stream(report),
                Err(e) => Checked::Unchecked(e.to_string()),
            }
        }
        WorkloadKind::Quorum => {
            let deadline = Instant::now() + options.ready_timeout;
            if let Err(e) = quorum.final_reads(&final_context, deadline).await {
                harness_errors.push(format!("final reads: {e}"));
            }
            eprintln!("writers opened (recoveries): {}", quorum.writers_opened());
            match workload_quorum::check(&recorder.history()) {
                Ok(report) => Checked::Quorum(report),
                Err(e) => Checked::Unchecked(e.to_string()),
            }
        }
        WorkloadKind::Set => {
            let deadline = Instant::now() + options.ready_timeout;
            match set.final_read(&final_context, deadline).await {
                Ok(final_read) => match workload_set::check(&recorder.history()) {
                    Ok(report) => Checked::Set { report, final_read },
                    Err(e) => Checked::Unchecked(e.to_string()),
                },
                Err(e) => Checked::Unchecked(e),
            }
        }
    };
    let history = recorder.history();
    history
        .save(&dir.join("history.jsonl"))
        .context("saving history.jsonl")?;
    let info = RunInfo {
        workload: options.workload.name().to_string(),
        target: target.name().to_string(),
        nemesis: options
            .faults
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
        seed: options.seed,
        time_limit_s: options.time_limit.as_secs(),
        clients: options.clients,
        pinned: options.pin_clients,
        started_utc: started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        recovery,
        harness_errors,
    };
    Ok((history, checked, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_target_refuses_network_faults_up_front() {
        assert!(reject_unsupported_early(&[FaultKind::Kill, FaultKind::Pause]).is_ok());
        let err = reject_unsupported_early(&[FaultKind::Kill, FaultKind::Partition])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot partition"), "{err}");
        assert!(reject_unsupported_early(&[FaultKind::Slow]).is_err());
    }

    #[test]
    fn run_dirs_are_named_for_workload_and_time_and_never_reused() {
        let store = tempfile::tempdir().unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = run_dir(store.path(), WorkloadKind::Set, at).unwrap();
        assert_eq!(first.file_name().unwrap(), "set-20260102T030405Z");
        let second = run_dir(store.path(), WorkloadKind::Set, at).unwrap();
        assert_eq!(second.file_name().unwrap(), "set-20260102T030405Z-2");
    }

    #[test]
    fn buckets_are_named_for_the_run_and_valid() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(bucket_name(at, 7), "jepsen-20260102t030405678-7");
        assert!(bucket_name(at, u64::MAX).len() <= 63);
    }
}
