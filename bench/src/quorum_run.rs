//! `stratus-bench quorum`: commit throughput and latency of quorum storage (4 of 6
//! segments, no consensus) at several commits in flight, beside the limits of the same run
//! (the disk's fsync latency, a loopback TCP round trip, a gRPC round trip) and the Raft
//! KV's puts at the same concurrency; then the same phases with one node stopped
//! (SIGSTOP) for the whole phase, with one node stopped for part of every cycle
//! ("flapping"), and with two nodes of different zones stopped. Slowdowns need a cluster
//! the benchmark started itself (`--spawn`); against `--endpoint` only the healthy phases
//! run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use stratus_bench::cluster_procs::{
    self, pick_victims, DutyCycle, Slowdown, SpawnOptions, SpawnedCluster,
};
use stratus_bench::cpu::CpuMeter;
use stratus_bench::kv::{self, KvTarget, PhaseSpec};
use stratus_bench::quorum::{self, CommitKind, CommitSpec, SyncCounter};
use stratus_bench::report::{
    self, Goal, HostReport, PhaseCost, PhaseNumbers, QuorumPhaseReport, QuorumRatioReport,
    RttLimitReport, SlowdownInfo,
};
use stratus_client::quorum::{Db, WriterOptions};
use stratus_client::ClientConfig;

use super::{parse_duration_secs, run_fsync, EndpointList, FsyncArgs};

/// The quorum goals (issue 7), as ratios.
const P50_GOAL: f64 = 1.5;
const SLOW_P99_GOAL: f64 = 1.5;

/// One way to slow the cluster down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlowdownKind {
    /// One node stopped for the whole condition.
    Paused,
    /// One node stopped for --stop-ms out of every --period-ms.
    Flapping,
    /// Two nodes of different zones stopped for the whole condition.
    PausedTwoZones,
}

impl SlowdownKind {
    fn name(self) -> &'static str {
        match self {
            SlowdownKind::Paused => "paused",
            SlowdownKind::Flapping => "flapping",
            SlowdownKind::PausedTwoZones => "paused_two_zones",
        }
    }
}

#[derive(Debug, Args)]
pub struct QuorumArgs {
    /// Start a cluster of separate `stratusd run` processes from this binary (temporary
    /// data directories, free ports, three zones), run everything against it, and stop it
    /// at the end. Needed for the slowdown phases.
    #[arg(long, value_name = "STRATUSD", conflicts_with = "endpoint")]
    spawn: Option<PathBuf>,

    /// gRPC endpoint(s) of an already running cluster (e.g. `stratusd dev`); only the
    /// healthy phases run [default: http://127.0.0.1:7000 without --spawn].
    #[arg(long, value_parser = EndpointList::parse, value_name = "URLS")]
    endpoint: Option<EndpointList>,

    /// Nodes of the spawned cluster (two per zone for one segment of each PG per node).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(3..=12))]
    nodes: u64,

    /// Raft data groups of the spawned cluster.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=64))]
    data_groups: u64,

    /// Parent directory of the spawned cluster's data (use the disk to measure)
    /// [default: the temp dir].
    #[arg(long, value_name = "DIR")]
    cluster_dir: Option<PathBuf>,

    /// Keep the spawned cluster's directory (configs, data, logs) after the run.
    #[arg(long)]
    keep_cluster: bool,

    /// Short preset: 3 s phases, 1 s limit probes, 1 s settling. Options given
    /// explicitly win over the preset.
    #[arg(long)]
    quick: bool,

    /// Commits in flight, comma-separated (one phase each) [default: 1,16,64].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    in_flight: Option<Vec<u64>>,

    /// Length of each phase in seconds [default: 10].
    #[arg(long, value_parser = parse_duration_secs)]
    duration_secs: Option<f64>,

    /// Bytes of each value.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=65_536))]
    value_bytes: u64,

    /// Keys of each commit of the mput phase (0 skips it).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=100))]
    mput_keys: u64,

    /// Commits in flight in the mput phase.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    mput_in_flight: u64,

    /// Slowdowns to run after the healthy phases, comma-separated (--spawn only)
    /// [default: paused,flapping,paused-two-zones].
    #[arg(long, value_delimiter = ',')]
    slowdowns: Option<Vec<SlowdownKind>>,

    /// Flapping: milliseconds a node is stopped in each cycle.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    stop_ms: u64,

    /// Flapping: length of one cycle in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(2..=600_000))]
    period_ms: u64,

    /// Seconds to let the cluster settle after a slowdown ends [default: 5].
    #[arg(long, value_parser = parse_duration_secs)]
    settle_secs: Option<f64>,

    /// Time one commit may take before it counts as an error.
    #[arg(long, default_value_t = 10.0, value_parser = parse_duration_secs)]
    commit_timeout_secs: f64,

    /// Seconds each round-trip probe runs [default: 3].
    #[arg(long, value_parser = parse_duration_secs)]
    limit_secs: Option<f64>,

    /// Skip the Raft KV puts (the peer measured beside each quorum phase).
    #[arg(long)]
    skip_kv: bool,

    /// Count the nodes' fsync/fdatasync calls in each phase with this `perf` binary
    /// (spawned clusters only; needs permission to use syscall tracepoints).
    #[arg(long, value_name = "PERF")]
    count_syncs: Option<String>,

    #[command(flatten)]
    fsync: FsyncArgs,
}

/// The options after the preset and the defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumPlan {
    pub in_flight: Vec<usize>,
    pub duration: Duration,
    pub limit_time: Duration,
    pub settle: Duration,
    pub slowdowns: Vec<SlowdownKind>,
}

impl QuorumArgs {
    pub fn plan(&self) -> QuorumPlan {
        let (duration, limit, settle) = if self.quick {
            (3.0, 1.0, 1.0)
        } else {
            (10.0, 3.0, 5.0)
        };
        QuorumPlan {
            in_flight: self
                .in_flight
                .as_ref()
                .map_or(vec![1, 16, 64], |v| v.iter().map(|&n| n as usize).collect()),
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(duration)),
            limit_time: Duration::from_secs_f64(self.limit_secs.unwrap_or(limit)),
            settle: Duration::from_secs_f64(self.settle_secs.unwrap_or(settle)),
            slowdowns: match (&self.spawn, &self.slowdowns) {
                (None, _) => Vec::new(),
                (Some(_), Some(list)) => list.clone(),
                (Some(_), None) => vec![
                    SlowdownKind::Paused,
                    SlowdownKind::Flapping,
                    SlowdownKind::PausedTwoZones,
                ],
            },
        }
    }

    fn cycle(&self) -> DutyCycle {
        DutyCycle {
            stopped: Duration::from_millis(self.stop_ms.min(self.period_ms)),
            period: Duration::from_millis(self.period_ms),
        }
    }
}

/// The headline numbers of one phase, kept for the ratios and the summary.
#[derive(Debug, Clone)]
struct PhaseResult {
    bench: &'static str,
    slowdown: &'static str,
    in_flight: usize,
    ops_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    errors: u64,
    syncs_per_op: Option<f64>,
}

impl PhaseResult {
    fn of(line: &QuorumPhaseReport) -> Self {
        Self {
            bench: line.bench,
            slowdown: line.slowdown.slowdown,
            in_flight: line.in_flight,
            ops_per_s: line.ops_per_s,
            p50_ms: line.p50_ms,
            p99_ms: line.p99_ms,
            p999_ms: line.p999_ms,
            errors: line.errors,
            syncs_per_op: line.syncs_per_op,
        }
    }
}

/// What the runner works against.
struct Cluster {
    spawned: Option<SpawnedCluster>,
    endpoints: Vec<String>,
}

impl Cluster {
    fn pids(&self) -> Vec<u32> {
        self.spawned
            .as_ref()
            .map(SpawnedCluster::pids)
            .unwrap_or_default()
    }
}

/// Measures one phase's client CPU, the nodes' CPU and (optionally) their syncs.
struct CostMeter {
    client: CpuMeter,
    pids: Vec<u32>,
    server_before: Option<Duration>,
    syncs: Option<SyncCounter>,
}

impl CostMeter {
    fn start(pids: &[u32], perf: Option<&str>) -> Self {
        let syncs = match perf {
            Some(perf) if !pids.is_empty() => match SyncCounter::start(perf, pids) {
                Ok(counter) => Some(counter),
                Err(e) => {
                    eprintln!("stratus-bench: cannot start {perf}: {e}");
                    None
                }
            },
            _ => None,
        };
        Self {
            client: CpuMeter::start(None),
            pids: pids.to_vec(),
            server_before: (!pids.is_empty())
                .then(|| quorum::processes_cpu_time(pids))
                .flatten(),
            syncs,
        }
    }

    async fn stop(self) -> PhaseCost {
        let client_cpu_s = self.client.stop().client_s;
        let server_cpu_s = self.server_before.and_then(|before| {
            Some(
                quorum::processes_cpu_time(&self.pids)?
                    .checked_sub(before)?
                    .as_secs_f64(),
            )
        });
        let syncs = match self.syncs {
            Some(counter) => counter.stop().await,
            None => None,
        };
        PhaseCost {
            client_cpu_s,
            server_cpu_s,
            syncs,
        }
    }
}

pub async fn run_quorum(args: QuorumArgs) -> anyhow::Result<()> {
    let plan = args.plan();
    report::emit(&HostReport::now("start"))?;

    let mut cluster = match &args.spawn {
        Some(stratusd) => {
            let options = SpawnOptions {
                stratusd: stratusd.clone(),
                nodes: args.nodes as usize,
                data_groups: args.data_groups,
                parent_dir: args.cluster_dir.clone(),
            };
            let mut spawned = SpawnedCluster::start(&options)?;
            eprintln!(
                "stratus-bench: started {} nodes of {} in {}",
                spawned.nodes.len(),
                stratusd.display(),
                spawned
                    .dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            );
            spawned.wait_ready(Duration::from_secs(90)).await?;
            let endpoints = spawned.endpoints();
            Cluster {
                spawned: Some(spawned),
                endpoints,
            }
        }
        None => Cluster {
            spawned: None,
            endpoints: args
                .endpoint
                .clone()
                .map(|e| e.0)
                .unwrap_or_else(|| vec![stratus_client::DEFAULT_ENDPOINT.to_string()]),
        },
    };

    let result = run_with(&args, &plan, &mut cluster).await;

    if let Some(mut spawned) = cluster.spawned.take() {
        if args.keep_cluster || result.is_err() {
            if let Some(dir) = spawned.keep_dir() {
                eprintln!(
                    "stratus-bench: kept the cluster's directory {}",
                    dir.display()
                );
            }
        }
        drop(spawned);
        eprintln!("stratus-bench: stopped the spawned cluster");
    }
    report::emit(&HostReport::now("end"))?;
    result
}

async fn run_with(
    args: &QuorumArgs,
    plan: &QuorumPlan,
    cluster: &mut Cluster,
) -> anyhow::Result<()> {
    // The disk limit: where the nodes write, unless told otherwise.
    let mut fsync_args = FsyncArgs {
        fsync_dir: args.fsync.fsync_dir.clone(),
        fsync_iterations: args.fsync.fsync_iterations,
    };
    if fsync_args.fsync_dir.is_none() {
        fsync_args.fsync_dir = cluster
            .spawned
            .as_ref()
            .and_then(|s| s.dir().map(PathBuf::from));
    }
    let fsync_p50_ms = run_fsync(&fsync_args).await?;

    eprintln!(
        "stratus-bench: limit: loopback TCP and gRPC round trips for {} s each",
        plan.limit_time.as_secs_f64()
    );
    let rtt = quorum::loopback_rtt(64, 1_000_000, plan.limit_time).await?;
    let rtt_line = RttLimitReport::new(
        "loopback_rtt",
        "64-byte echo on one loopback TCP connection (tokio, nodelay), one at a time",
        rtt,
    );
    report::emit(&rtt_line)?;
    let first = cluster
        .endpoints
        .first()
        .context("no endpoint to measure")?
        .clone();
    let grpc = quorum::grpc_rtt(&first, plan.limit_time)
        .await
        .with_context(|| format!("gRPC round trip to {first}"))?;
    let grpc_line = RttLimitReport::new(
        "grpc_rtt",
        format!("Cluster.LocalStatus to {first}, one at a time"),
        grpc,
    );
    report::emit(&grpc_line)?;

    // The writer.
    let run_id: u32 = rand::random();
    let volume = format!("bench-{run_id:08x}");
    let prefix = format!("bench/{run_id:08x}/");
    let options = WriterOptions {
        commit_timeout: Duration::from_secs_f64(args.commit_timeout_secs),
        ..WriterOptions::default()
    };
    let config =
        ClientConfig::new(cluster.endpoints.clone()).with_call_timeout(Duration::from_secs(10));
    let db = open_db(config, &volume, options).await?;
    eprintln!(
        "stratus-bench: opened volume {volume} (epoch {}, {} PGs x {} pages) through {} endpoint(s)",
        db.writer().epoch(),
        db.writer().pg_count(),
        db.writer().pages_per_pg(),
        cluster.endpoints.len()
    );

    // The nodes that may be slowed, and the Raft KV's endpoints: every node never slowed.
    let status = cluster_procs::cluster_status(&cluster.endpoints).await;
    let victims = match (&cluster.spawned, &status) {
        (Some(_), Some(status)) if !plan.slowdowns.is_empty() => pick_victims(status),
        _ => None,
    };
    let kv_endpoints: Vec<String> = match (&cluster.spawned, &victims) {
        (Some(spawned), Some(v)) => spawned
            .nodes
            .iter()
            .filter(|n| n.id != v.first && Some(n.id) != v.second)
            .map(|n| n.endpoint())
            .collect(),
        _ => cluster.endpoints.clone(),
    };
    let kv_target = if args.skip_kv {
        None
    } else {
        Some(KvTarget::connect(&kv_endpoints, 1, Duration::from_secs(2)).await?)
    };

    let mut results = Vec::new();
    let healthy = SlowdownInfo {
        slowdown: "healthy",
        ..SlowdownInfo::default()
    };
    run_condition(
        args,
        plan,
        cluster,
        &db,
        &prefix,
        kv_target.as_ref(),
        None,
        healthy,
        &mut results,
    )
    .await?;

    for &kind in &plan.slowdowns {
        let Some(victims) = &victims else {
            eprintln!("stratus-bench: no node to slow (no cluster status); skipping slowdowns");
            break;
        };
        let Some(spawned) = cluster.spawned.as_ref() else {
            break;
        };
        let ids: Vec<u64> = match kind {
            SlowdownKind::PausedTwoZones => match victims.second {
                Some(second) => vec![victims.first, second],
                None => {
                    eprintln!(
                        "stratus-bench: no second node in another zone; skipping {}",
                        kind.name()
                    );
                    continue;
                }
            },
            _ => vec![victims.first],
        };
        let pids: Vec<u32> = ids
            .iter()
            .filter_map(|&id| spawned.node(id).and_then(|n| n.pid()))
            .collect();
        let cycle = match kind {
            SlowdownKind::Flapping => args.cycle(),
            _ => DutyCycle {
                stopped: Duration::from_secs(1),
                period: Duration::from_secs(1),
            },
        };
        let now = cluster_procs::cluster_status(&cluster.endpoints).await;
        let info = SlowdownInfo {
            slowdown: kind.name(),
            slowed_nodes: ids.clone(),
            slowed_zones: ids
                .iter()
                .filter_map(|&id| spawned.node(id).map(|n| n.zone.to_string()))
                .collect(),
            stopped_fraction: cycle.stopped_fraction(),
            stop_ms: (kind == SlowdownKind::Flapping).then_some(args.stop_ms),
            cycle_period_ms: (kind == SlowdownKind::Flapping).then_some(args.period_ms),
            stops_sent: 0,
            slowed_leads_meta: now.as_ref().is_some_and(|s| {
                s.groups
                    .iter()
                    .any(|g| g.kind == "meta" && ids.contains(&g.leader))
            }),
            slowed_lead_data_groups: now
                .as_ref()
                .map(|s| {
                    s.groups
                        .iter()
                        .filter(|g| g.kind != "meta" && ids.contains(&g.leader))
                        .map(|g| g.id)
                        .collect()
                })
                .unwrap_or_default(),
        };
        eprintln!(
            "stratus-bench: slowdown {}: nodes {:?} (pids {:?}), leading data groups {:?}",
            kind.name(),
            ids,
            pids,
            info.slowed_lead_data_groups
        );
        let slowdown = Slowdown {
            pids,
            cycle,
            stops: Arc::new(AtomicU64::new(0)),
        };
        run_condition(
            args,
            plan,
            cluster,
            &db,
            &prefix,
            kv_target.as_ref(),
            Some(slowdown),
            info,
            &mut results,
        )
        .await?;
        // Let the stopped nodes catch up and the Raft groups settle.
        if let Some(spawned) = cluster.spawned.as_mut() {
            spawned.wait_ready(Duration::from_secs(60)).await?;
        }
        tokio::time::sleep(plan.settle).await;
    }

    emit_ratios(&results, fsync_p50_ms, rtt_line.p50_ms)?;
    print_summary(&results, fsync_p50_ms, rtt_line.p50_ms, grpc_line.p50_ms);

    if let Ok(db) = Arc::try_unwrap(db) {
        if let Err(e) = db.close().await {
            eprintln!("stratus-bench: closing the writer: {e}");
        }
    }
    if cluster.spawned.is_none() {
        let catalog = stratus_client::quorum::VolumeCatalog::connect(ClientConfig::new(
            cluster.endpoints.clone(),
        ))
        .await;
        match catalog {
            Ok(catalog) => match catalog.delete(&volume).await {
                Ok(()) => eprintln!("stratus-bench: deleted volume {volume} from the catalog"),
                Err(e) => eprintln!("stratus-bench: could not delete volume {volume}: {e}"),
            },
            Err(e) => eprintln!("stratus-bench: could not delete volume {volume}: {e}"),
        }
    }
    Ok(())
}

/// Opens (creating) the volume, retrying while the catalog settles after startup.
async fn open_db(
    config: ClientConfig,
    volume: &str,
    options: WriterOptions,
) -> anyhow::Result<Arc<Db>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Db::open(config.clone(), volume, options.clone()).await {
            Ok(db) => return Ok(Arc::new(db)),
            Err(e) if Instant::now() < deadline => {
                eprintln!("stratus-bench: open volume {volume}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot open volume {volume}: {e}")),
        }
    }
}

/// Runs every phase of one condition (with `slowdown` applied throughout, if any).
#[allow(clippy::too_many_arguments)]
async fn run_condition(
    args: &QuorumArgs,
    plan: &QuorumPlan,
    cluster: &mut Cluster,
    db: &Arc<Db>,
    prefix: &str,
    kv_target: Option<&KvTarget>,
    slowdown: Option<Slowdown>,
    mut info: SlowdownInfo,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let stops = slowdown.as_ref().map(|s| s.stops.clone());
    let controller = slowdown.map(|s| tokio::spawn(s.run(stop_rx)));
    let outcome = run_phases(
        args,
        plan,
        cluster,
        db,
        prefix,
        kv_target,
        &info,
        stops.as_deref(),
        results,
    )
    .await;
    let _ = stop_tx.send(());
    if let Some(controller) = controller {
        info.stops_sent = controller.await.unwrap_or(0);
        eprintln!(
            "stratus-bench: {} ended: {} SIGSTOP(s) sent, nodes resumed",
            info.slowdown, info.stops_sent
        );
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn run_phases(
    args: &QuorumArgs,
    plan: &QuorumPlan,
    cluster: &mut Cluster,
    db: &Arc<Db>,
    prefix: &str,
    kv_target: Option<&KvTarget>,
    info: &SlowdownInfo,
    stops: Option<&AtomicU64>,
    results: &mut Vec<PhaseResult>,
) -> anyhow::Result<()> {
    let stops_now = || stops.map_or(0, |s| s.load(Ordering::Relaxed));
    let with_stops = |since: u64| SlowdownInfo {
        stops_sent: stops_now().saturating_sub(since),
        ..info.clone()
    };
    let pids = cluster.pids();
    let perf = args.count_syncs.as_deref();
    let commit_timeout = Duration::from_secs_f64(args.commit_timeout_secs);
    let value_bytes = args.value_bytes as usize;
    let mut phases: Vec<(CommitKind, usize)> = plan
        .in_flight
        .iter()
        .map(|&n| (CommitKind::Put, n))
        .collect();
    if args.mput_keys > 0 {
        phases.push((
            CommitKind::Mput(args.mput_keys as usize),
            args.mput_in_flight as usize,
        ));
    }
    for (kind, in_flight) in phases {
        if let Some(spawned) = cluster.spawned.as_mut() {
            spawned.check_alive()?;
        }
        let spec = CommitSpec {
            kind,
            in_flight,
            value_bytes,
            duration: plan.duration,
            max_ops: 10_000_000,
            commit_timeout,
        };
        eprintln!(
            "stratus-bench: {} {} in_flight={in_flight} keys={} for {:.1} s",
            info.slowdown,
            kind.bench_name(),
            kind.keys(),
            plan.duration.as_secs_f64()
        );
        let meter = CostMeter::start(&pids, perf);
        let stops_before = stops_now();
        let outcome = quorum::run_commits(db, prefix, &spec).await;
        let slowed = with_stops(stops_before);
        let cost = meter.stop().await;
        let line = QuorumPhaseReport::new(
            kind.bench_name(),
            slowed,
            in_flight,
            kind.keys(),
            value_bytes,
            PhaseNumbers {
                latencies: &outcome.latencies,
                ops: outcome.ops,
                errors: outcome.errors,
                unknown: outcome.unknown,
                elapsed: outcome.elapsed,
            },
            outcome.error_sample.clone(),
            cost,
        );
        report::emit(&line)?;
        results.push(PhaseResult::of(&line));

        // The Raft KV peer at the same concurrency, same condition (puts only).
        let (Some(target), CommitKind::Put) = (kv_target, kind) else {
            continue;
        };
        eprintln!(
            "stratus-bench: {} quorum_kv_put in_flight={in_flight} for {:.1} s",
            info.slowdown,
            plan.duration.as_secs_f64()
        );
        let kv_spec = PhaseSpec {
            clients: in_flight,
            value_bytes,
            duration: plan.duration,
            max_ops: 10_000_000,
            request_timeout: commit_timeout,
        };
        let meter = CostMeter::start(&pids, perf);
        let stops_before = stops_now();
        let puts = kv::run_puts(target, &kv_spec).await;
        let slowed = with_stops(stops_before);
        let cost = meter.stop().await;
        let line = QuorumPhaseReport::new(
            "quorum_kv_put",
            slowed,
            in_flight,
            1,
            value_bytes,
            PhaseNumbers {
                latencies: &puts.latencies,
                ops: puts.ops,
                errors: puts.errors,
                unknown: 0,
                elapsed: puts.elapsed,
            },
            puts.error_sample.clone(),
            cost,
        );
        report::emit(&line)?;
        results.push(PhaseResult::of(&line));
    }
    Ok(())
}

fn find<'a>(
    results: &'a [PhaseResult],
    bench: &str,
    slowdown: &str,
    in_flight: usize,
) -> Option<&'a PhaseResult> {
    results
        .iter()
        .find(|r| r.bench == bench && r.slowdown == slowdown && r.in_flight == in_flight)
}

fn emit_ratios(
    results: &[PhaseResult],
    fsync_p50_ms: Option<f64>,
    rtt_p50_ms: Option<f64>,
) -> anyhow::Result<()> {
    let floor = match (fsync_p50_ms, rtt_p50_ms) {
        (Some(f), Some(r)) => Some(f + r),
        _ => None,
    };
    for r in results.iter().filter(|r| r.bench != "quorum_kv_put") {
        // Goal 1: healthy p50 within 1.5 x (fsync + loopback round trip).
        if r.slowdown == "healthy" {
            if let (Some(p50), Some(floor)) = (r.p50_ms, floor) {
                report::emit(&QuorumRatioReport::new(
                    "p50_vs_fsync_plus_rtt",
                    r.bench,
                    r.slowdown,
                    r.in_flight,
                    p50,
                    floor,
                    "fsync p50 + loopback rtt p50",
                    Goal::AtMost(P50_GOAL),
                ))?;
            }
        } else if let (Some(p99), Some(healthy)) = (
            r.p99_ms,
            find(results, r.bench, "healthy", r.in_flight).and_then(|h| h.p99_ms),
        ) {
            // Goal 2: with slow nodes, p99 within 1.5 x the healthy p99.
            report::emit(&QuorumRatioReport::new(
                "p99_vs_healthy",
                r.bench,
                r.slowdown,
                r.in_flight,
                p99,
                healthy,
                "healthy p99, same phase",
                Goal::AtMost(SLOW_P99_GOAL),
            ))?;
        }
        // The peer: Raft KV puts at the same concurrency and condition.
        if let Some(kv) = find(results, "quorum_kv_put", r.slowdown, r.in_flight) {
            if let (Some(p50), Some(kv_p50)) = (r.p50_ms, kv.p50_ms) {
                report::emit(&QuorumRatioReport::new(
                    "p50_vs_kv",
                    r.bench,
                    r.slowdown,
                    r.in_flight,
                    p50,
                    kv_p50,
                    "raft kv put p50, same condition",
                    Goal::None,
                ))?;
            }
            if let (Some(p99), Some(kv_p99)) = (r.p99_ms, kv.p99_ms) {
                report::emit(&QuorumRatioReport::new(
                    "p99_vs_kv",
                    r.bench,
                    r.slowdown,
                    r.in_flight,
                    p99,
                    kv_p99,
                    "raft kv put p99, same condition",
                    Goal::None,
                ))?;
            }
            report::emit(&QuorumRatioReport::new(
                "ops_vs_kv",
                r.bench,
                r.slowdown,
                r.in_flight,
                r.ops_per_s,
                kv.ops_per_s,
                "raft kv puts per second, same condition",
                Goal::None,
            ))?;
        }
    }
    // The peer's own tail under the same slowdowns.
    for r in results
        .iter()
        .filter(|r| r.bench == "quorum_kv_put" && r.slowdown != "healthy")
    {
        if let (Some(p99), Some(healthy)) = (
            r.p99_ms,
            find(results, r.bench, "healthy", r.in_flight).and_then(|h| h.p99_ms),
        ) {
            report::emit(&QuorumRatioReport::new(
                "kv_p99_vs_healthy",
                r.bench,
                r.slowdown,
                r.in_flight,
                p99,
                healthy,
                "raft kv healthy p99, same concurrency",
                Goal::None,
            ))?;
        }
    }
    Ok(())
}

fn print_summary(results: &[PhaseResult], fsync: Option<f64>, rtt: Option<f64>, grpc: Option<f64>) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    eprintln!(
        "\nstratus-bench quorum: fsync p50 {} ms, loopback rtt p50 {} ms, gRPC rtt p50 {} ms",
        ms(fsync),
        ms(rtt),
        ms(grpc)
    );
    eprintln!(
        "{:<18} {:<14} {:>9} {:>10} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "condition",
        "phase",
        "in_flight",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "errors",
        "syncs/op"
    );
    for r in results {
        eprintln!(
            "{:<18} {:<14} {:>9} {:>10.1} {:>8} {:>8} {:>8} {:>7} {:>9}",
            r.slowdown,
            r.bench,
            r.in_flight,
            r.ops_per_s,
            ms(r.p50_ms),
            ms(r.p99_ms),
            ms(r.p999_ms),
            r.errors,
            ms(r.syncs_per_op)
        );
    }
}
