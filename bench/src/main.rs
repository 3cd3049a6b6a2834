//! `stratus-bench`: runs a scenario and prints one JSON line per result on stdout;
//! progress goes to stderr.
//!
//! `stratus-bench kv` first measures the disk's fsync latency (the physical limit of a
//! durable write), then for each (clients, value size) runs a put phase and a get phase.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use stratus_bench::fsync::FsyncProbe;
use stratus_bench::kv::{self, KvTarget, PhaseSpec};
use stratus_bench::report::{self, FsyncReport, KvReport};
use stratus_client::{parse_endpoint_list, DEFAULT_ENDPOINT};

/// Load generator for a Stratus cluster; prints one JSON line per result.
#[derive(Debug, Parser)]
#[command(name = "stratus-bench", version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Closed-loop key-value puts (then gets), after measuring the disk's fsync latency.
    Kv(KvArgs),
    /// Only measure the disk's fsync latency.
    Fsync(FsyncArgs),
}

#[derive(Debug, Args)]
struct KvArgs {
    /// gRPC endpoint(s) of the cluster, comma-separated; clients are spread over them.
    #[arg(
        long,
        env = "STRATUS_ENDPOINT",
        default_value = DEFAULT_ENDPOINT,
        value_parser = EndpointList::parse,
        value_name = "URLS"
    )]
    endpoint: EndpointList,

    /// Numbers of concurrent clients to run, comma-separated (one result each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64",
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    clients: Vec<u64>,

    /// Value sizes in bytes, comma-separated (one result each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,4096",
        value_parser = clap::value_parser!(u64).range(0..=64 * 1024 * 1024)
    )]
    value_sizes: Vec<u64>,

    /// Length of each phase in seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_duration_secs)]
    duration_secs: f64,

    /// Cap on the requests of one phase, over all clients.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_ops: u64,

    /// HTTP/2 connections opened to each endpoint.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    connections: u64,

    /// Time one request may take before it counts as an error.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    request_timeout_ms: u64,

    /// Run only the put phases.
    #[arg(long)]
    skip_gets: bool,

    #[command(flatten)]
    fsync: FsyncArgs,
}

#[derive(Debug, Args)]
struct FsyncArgs {
    /// Directory on the disk to probe (use the nodes' data disk; default: the temp dir).
    #[arg(long, value_name = "DIR")]
    fsync_dir: Option<PathBuf>,

    /// Number of 4 KiB write + fsync rounds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    fsync_iterations: u64,
}

/// A parsed, non-empty list of endpoints.
#[derive(Debug, Clone)]
struct EndpointList(Vec<String>);

impl EndpointList {
    fn parse(list: &str) -> Result<Self, String> {
        parse_endpoint_list(list)
            .map(EndpointList)
            .map_err(|e| e.to_string())
    }
}

fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err("must be more than 0 and at most 86400 seconds".to_string());
    }
    Ok(seconds)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stratus-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.scenario {
            Scenario::Kv(args) => run_kv(args).await,
            Scenario::Fsync(args) => run_fsync(&args).await.map(|_| ()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stratus-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Measures fsync latency, prints its line, and returns its p50 in milliseconds.
async fn run_fsync(args: &FsyncArgs) -> anyhow::Result<Option<f64>> {
    let dir = args.fsync_dir.clone().unwrap_or_else(std::env::temp_dir);
    let probe = FsyncProbe {
        iterations: usize::try_from(args.fsync_iterations).unwrap_or(usize::MAX),
        ..FsyncProbe::default()
    };
    eprintln!(
        "stratus-bench: fsync probe: {} x {} bytes in {}",
        probe.iterations,
        probe.write_bytes,
        dir.display()
    );
    let probe_dir = dir.clone();
    let measurement = tokio::task::spawn_blocking(move || probe.run(&probe_dir))
        .await
        .context("fsync probe task")?
        .with_context(|| format!("fsync probe in {}", dir.display()))?;
    let line = FsyncReport::new(&dir, &probe, &measurement);
    report::emit(&line)?;
    Ok(line.p50_ms)
}

async fn run_kv(args: KvArgs) -> anyhow::Result<()> {
    let fsync_p50_ms = run_fsync(&args.fsync).await?;

    let connections = usize::try_from(args.connections).unwrap_or(1);
    let target = KvTarget::connect(&args.endpoint.0, connections, Duration::from_secs(1)).await?;
    eprintln!(
        "stratus-bench: {} connection(s) to {}; writing under {}",
        target.connection_count(),
        args.endpoint.0.join(","),
        target.run_prefix()
    );

    for &clients in &args.clients {
        for &value_bytes in &args.value_sizes {
            let spec = PhaseSpec {
                clients: usize::try_from(clients)?,
                value_bytes: usize::try_from(value_bytes)?,
                duration: Duration::from_secs_f64(args.duration_secs),
                max_ops: args.max_ops,
                request_timeout: Duration::from_millis(args.request_timeout_ms),
            };
            eprintln!(
                "stratus-bench: kv_put clients={clients} value_bytes={value_bytes} for {} s",
                args.duration_secs
            );
            let puts = kv::run_puts(&target, &spec).await;
            report::emit(&KvReport::new(
                "kv_put",
                spec.clients,
                spec.value_bytes,
                &puts,
                fsync_p50_ms,
            ))?;

            if args.skip_gets {
                continue;
            }
            if puts.written_keys.is_empty() {
                eprintln!("stratus-bench: kv_get skipped: no put succeeded");
                continue;
            }
            eprintln!(
                "stratus-bench: kv_get clients={clients} value_bytes={value_bytes} for {} s",
                args.duration_secs
            );
            let gets = kv::run_gets(&target, &spec, puts.written_keys).await;
            report::emit(&KvReport::new(
                "kv_get",
                spec.clients,
                spec.value_bytes,
                &gets,
                fsync_p50_ms,
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stratus-bench").chain(args.iter().copied()))
    }

    fn kv_args(args: &[&str]) -> Result<KvArgs, clap::Error> {
        match parse(args)?.scenario {
            Scenario::Kv(kv) => Ok(kv),
            Scenario::Fsync(_) => panic!("not kv"),
        }
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kv_defaults() {
        let args = kv_args(&["kv", "--endpoint", "127.0.0.1:7000"]).unwrap();
        assert_eq!(args.endpoint.0, vec!["http://127.0.0.1:7000"]);
        assert_eq!(args.clients, vec![1, 16, 64]);
        assert_eq!(args.value_sizes, vec![100, 4096]);
        assert_eq!(args.duration_secs, 10.0);
        assert_eq!(args.fsync.fsync_iterations, 200);
        assert_eq!(args.fsync.fsync_dir, None);
        assert!(!args.skip_gets);
    }

    #[test]
    fn kv_lists_and_limits() {
        let args = kv_args(&[
            "kv",
            "--endpoint",
            "http://a:7000,http://b:7001",
            "--clients",
            "2,8",
            "--value-sizes",
            "0,65536",
            "--duration-secs",
            "0.5",
            "--fsync-dir",
            "/data",
            "--max-ops",
            "1000",
        ])
        .unwrap();
        assert_eq!(args.endpoint.0.len(), 2);
        assert_eq!(args.clients, vec![2, 8]);
        assert_eq!(args.value_sizes, vec![0, 65536]);
        assert_eq!(args.duration_secs, 0.5);
        assert_eq!(args.max_ops, 1000);
        assert_eq!(args.fsync.fsync_dir, Some(PathBuf::from("/data")));
    }

    #[test]
    fn bad_input_is_rejected_by_the_parser() {
        for bad in [
            &["kv", "--clients", "0"][..],
            &["kv", "--clients", "1,x"],
            &["kv", "--value-sizes", "-1"],
            &["kv", "--duration-secs", "0"],
            &["kv", "--duration-secs", "NaN"],
            &["kv", "--duration-secs", "inf"],
            &["kv", "--max-ops", "0"],
            &["kv", "--endpoint", "ftp://x"],
            &["fsync", "--fsync-iterations", "0"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duration_parser() {
        assert_eq!(parse_duration_secs("2.5"), Ok(2.5));
        assert!(parse_duration_secs("-1").is_err());
        assert!(parse_duration_secs("100000").is_err());
        assert!(parse_duration_secs("soon").is_err());
    }
}
