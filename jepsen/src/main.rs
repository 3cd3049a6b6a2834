//! `stratus-jepsen`: runs Jepsen-style tests against a live cluster and checks histories.
//!
//! - `stratus-jepsen run --target compose|local --workload register|set|objects|queue|fifo|stream|quorum --nemesis
//!   kill,pause,partition,zone,slow --time-limit SECONDS ...` drives a cluster while
//!   breaking it and writes a run directory (see `stratus_jepsen::run`). Exits 0 when the
//!   history is valid, 1 on any anomaly, 2 when it could not be decided, 3 when the harness
//!   itself failed.
//! - `stratus-jepsen check --history FILE --model register|set|objects|queue|fifo|stream|quorum` reads a JSON-lines history
//!   (as written by `History::save` or a run), prints the verdict and exits 0 when valid, 1
//!   when invalid and 2 when unknown (search budget exhausted) or on any error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stratus_jepsen::checker::linearizable::{self, CheckOptions, DEFAULT_MAX_STEPS};
use stratus_jepsen::checker::queue::{self, QueueKind};
use stratus_jepsen::checker::{atomic, objects, set, stream, Validity};
use stratus_jepsen::history::History;
use stratus_jepsen::run::target::FaultKind;
use stratus_jepsen::run::verdict::EXIT_HARNESS;
use stratus_jepsen::run::workload_stream::ReshardChoice;
use stratus_jepsen::run::{self, RunOptions, TargetKind, WorkloadKind};

#[derive(Parser)]
#[command(
    name = "stratus-jepsen",
    version,
    about = "Jepsen-style checks for Stratus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a recorded history against a model.
    Check(CheckArgs),
    /// Run a workload against a cluster while a nemesis breaks it, then check it.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The cluster: six local stratusd processes, or the docker-compose cluster.
    #[arg(long, value_enum)]
    target: TargetArg,
    /// What the clients do.
    #[arg(long, value_enum)]
    workload: ModelKind,
    /// Faults to inflict, comma separated: kill, pause, partition, zone, slow; or none.
    #[arg(long, default_value = "kill,pause", value_parser = parse_faults)]
    nemesis: FaultList,
    /// Seconds of workload (final reads and checking come after).
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Register and objects workloads: keys in use at once.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// Register and objects workloads: operations per key before moving to fresh keys.
    #[arg(long, default_value_t = 300)]
    ops_per_key: u64,
    /// Stream workload: halfway through, split a shard, merge two, neither, or either
    /// (split for an odd seed, merge for an even one).
    #[arg(long, default_value = "either", value_parser = parse_reshard)]
    reshard: ReshardChoice,
    /// Seconds between faults and of each fault.
    #[arg(long, default_value_t = 10)]
    nemesis_interval: u64,
    /// Each client process talks to one node only, as Jepsen's do (a node cut off from
    /// its group must answer with an error, never with stale data); by default a process
    /// fails over to any node.
    #[arg(long)]
    pin_clients: bool,
    /// Seed of every random choice (operations, victims, partitions).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds one request may take (the client's call deadline).
    #[arg(long, default_value_t = 5000)]
    op_timeout_ms: u64,
    /// Seconds the cluster may take to be ready, at the start and after healing.
    #[arg(long, default_value_t = 120)]
    ready_timeout: u64,
    /// Where run directories go.
    #[arg(long, default_value = "jepsen/store")]
    store: PathBuf,
    /// The stratusd binary for the local target (default: next to this executable).
    #[arg(long)]
    stratusd: Option<PathBuf>,
    /// The compose file, used to bring the compose cluster up when it is not running.
    #[arg(long, default_value = "deploy/docker-compose.yml")]
    compose_file: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    /// Six `stratusd run` processes on 127.0.0.1 (kill, pause, zone).
    Local,
    /// The docker-compose cluster (every fault).
    Compose,
}

#[derive(Clone)]
struct FaultList(Vec<FaultKind>);

fn parse_faults(list: &str) -> Result<FaultList, String> {
    let mut faults = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "none" {
            continue;
        }
        let fault = FaultKind::parse(name).ok_or_else(|| {
            format!("unknown fault {name:?}; expected kill, pause, partition, zone, slow or none")
        })?;
        if !faults.contains(&fault) {
            faults.push(fault);
        }
    }
    Ok(FaultList(faults))
}

fn parse_reshard(name: &str) -> Result<ReshardChoice, String> {
    ReshardChoice::parse(name)
        .ok_or_else(|| format!("unknown reshard {name:?}; expected split, merge, none or either"))
}

#[derive(Args)]
struct CheckArgs {
    /// JSON-lines history file.
    #[arg(long)]
    history: PathBuf,
    /// What the operations act on.
    #[arg(long, value_enum)]
    model: ModelKind,
    /// Register and objects models: give up (exit 2) after this many search steps per key.
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS)]
    max_steps: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelKind {
    /// Read/write/compare-and-set registers, each key checked for linearizability.
    Register,
    /// Unique adds and a final read of one set.
    Set,
    /// S3 objects: keys as registers that may be absent (put, delete, get, conditional
    /// put), and listings read every key under a prefix at once.
    Objects,
    /// An SQS standard queue: every acknowledged message delivered at least once, nothing
    /// delivered that was never sent; duplicates counted.
    Queue,
    /// An SQS FIFO queue: as a standard queue, plus order within each message group and no
    /// duplicates.
    Fifo,
    /// A Kinesis stream: every acknowledged record read back where its put said, nothing
    /// invented or duplicated, every reader's pages continuing one another, parents before
    /// children.
    Stream,
    /// Quorum storage's key-value database: every key a linearizable register, and no
    /// multi-put seen in part.
    Quorum,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Run(args) => return run_command(args),
    };
    match result {
        Ok(Validity::Valid) => ExitCode::SUCCESS,
        Ok(Validity::Invalid) => ExitCode::from(1),
        Ok(Validity::Unknown) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<Validity> {
    let history = History::load(&args.history)
        .with_context(|| format!("reading history {}", args.history.display()))?;
    let validity = match args.model {
        ModelKind::Register => {
            let options = CheckOptions {
                max_steps: args.max_steps,
                ..CheckOptions::default()
            };
            let report = linearizable::check_keys(&history, &options)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Set => {
            let report = set::check(&history)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Objects => {
            let options = CheckOptions {
                max_steps: args.max_steps,
                ..CheckOptions::default()
            };
            let report = objects::check(&history, &options)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Queue | ModelKind::Fifo => {
            let kind = match args.model {
                ModelKind::Fifo => QueueKind::Fifo,
                _ => QueueKind::Standard,
            };
            let report = queue::check(&history, kind)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Stream => {
            let report = stream::check(&history)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Quorum => {
            let options = CheckOptions {
                max_steps: args.max_steps,
                ..CheckOptions::default()
            };
            let report = atomic::check_quorum(&history, &options)?;
            print!("{report}");
            report.validity()
        }
    };
    println!("{validity}");
    Ok(validity)
}

fn run_command(args: RunArgs) -> ExitCode {
    let options = RunOptions {
        target: match args.target {
            TargetArg::Local => TargetKind::Local,
            TargetArg::Compose => TargetKind::Compose,
        },
        workload: match args.workload {
            ModelKind::Register => WorkloadKind::Register,
            ModelKind::Set => WorkloadKind::Set,
            ModelKind::Objects => WorkloadKind::Objects,
            ModelKind::Queue => WorkloadKind::Queue,
            ModelKind::Fifo => WorkloadKind::Fifo,
            ModelKind::Stream => WorkloadKind::Stream,
            ModelKind::Quorum => WorkloadKind::Quorum,
        },
        faults: args.nemesis.0,
        time_limit: Duration::from_secs(args.time_limit),
        clients: args.clients,
        keys: args.keys,
        ops_per_key: args.ops_per_key,
        reshard: args.reshard,
        nemesis_interval: Duration::from_secs(args.nemesis_interval.max(1)),
        pin_clients: args.pin_clients,
        seed: args.seed,
        op_timeout: Duration::from_millis(args.op_timeout_ms.max(1)),
        ready_timeout: Duration::from_secs(args.ready_timeout),
        store: args.store,
        stratusd: args.stratusd,
        compose_file: args.compose_file,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(EXIT_HARNESS);
        }
    };
    match runtime.block_on(run::run(options)) {
        Ok(result) => {
            print!("{}", result.summary);
            println!("run directory: {}", result.dir.display());
            ExitCode::from(result.exit_code)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}
