//! `stratusd`: run one Stratus node, or a whole dev cluster in one process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stratus_node::dev::{self, DevOptions};
use stratus_node::{NodeConfig, RunningNode};

/// mimalloc instead of glibc's malloc: a node allocates and frees buffers of 100 KiB and
/// more (Raft entries, record batches, HTTP bodies) at a high rate, which glibc serves with
/// fresh mmap'd pages the kernel must zero each time (about a sixth of a node's CPU under
/// stream ingest went to malloc, free and page faults); mimalloc keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "stratusd",
    version,
    about = "Stratus node: distributed storage and messaging"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node. Configuration from a TOML file and/or STRATUS_* environment variables.
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Exit 0 when the node at ADDR serves its HTTP edge, 1 otherwise (a healthcheck for
    /// images with no shell or curl).
    Health {
        #[arg(long, default_value = "127.0.0.1:4566")]
        addr: String,
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Run an embedded cluster of several nodes over three zones on 127.0.0.1.
    Dev {
        /// Number of nodes (zones az-a, az-b, az-c in turn).
        #[arg(long, default_value_t = 6)]
        nodes: u64,
        /// Where the nodes keep their data (default: <tmp>/stratus-dev).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Delete the data directory first.
        #[arg(long)]
        fresh: bool,
        /// HTTP edge port of node 1; node i uses this + i - 1.
        #[arg(long, default_value_t = 4566)]
        http_port: u16,
        /// gRPC port of node 1; node i uses this + i - 1.
        #[arg(long, default_value_t = 7000)]
        grpc_port: u16,
        /// Number of data groups (fixed when the cluster is created).
        #[arg(long, default_value_t = 6)]
        data_groups: u64,
    },
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    std::env::var("STRATUS_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info,openraft=warn"))
}

/// Logs to stderr (`stratusd run`, where a supervisor collects them).
fn log_to_stderr() {
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never in a collected log.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

/// Logs to a file (`stratusd dev`, whose terminal shows the cluster's addresses instead).
fn log_to_file(path: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// GET /_stratus/health/node over plain HTTP/1.1 and require a 200.
async fn probe_health(addr: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connect")?;
    let request =
        format!("GET /_stratus/health/node HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.context("send")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.context("read")?;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        status_line.starts_with("HTTP/1.1 200"),
        "answered '{status_line}'"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            log_to_stderr();
            let config = NodeConfig::load(config.as_deref(), std::env::vars())?;
            let node = RunningNode::start(config).await?;
            stop_signal().await;
            tracing::info!("stopping");
            node.shutdown().await;
        }
        Command::Health { addr, timeout_ms } => {
            let timeout = Duration::from_millis(timeout_ms);
            match tokio::time::timeout(timeout, probe_health(&addr)).await {
                Ok(Ok(())) => println!("ok: {addr} is serving"),
                Ok(Err(e)) => {
                    eprintln!("unhealthy: {addr}: {e:#}");
                    std::process::exit(1);
                }
                Err(_) => {
                    eprintln!("unhealthy: {addr}: no answer within {timeout_ms} ms");
                    std::process::exit(1);
                }
            }
        }
        Command::Dev {
            nodes,
            data_dir,
            fresh,
            http_port,
            grpc_port,
            data_groups,
        } => {
            let data_dir = data_dir.unwrap_or_else(dev::default_data_dir);
            if fresh && data_dir.exists() {
                std::fs::remove_dir_all(&data_dir)
                    .with_context(|| format!("cannot remove {}", data_dir.display()))?;
            }
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("cannot create {}", data_dir.display()))?;
            let log_path = data_dir.join("stratusd.log");
            log_to_file(&log_path)?;
            let opts = DevOptions {
                nodes,
                data_dir: data_dir.clone(),
                http_port,
                grpc_port,
                data_groups,
            };
            let running = dev::start_dev_cluster(&opts).await?;
            println!(
                "Stratus dev cluster '{}': {} nodes over zones az-a, az-b, az-c",
                dev::DEV_CLUSTER_NAME,
                running.len()
            );
            println!(
                "  data:        {}{}",
                data_dir.display(),
                if running[0].fresh {
                    " (new)"
                } else {
                    " (restarted with its data)"
                }
            );
            for (n, zone) in running.iter().zip(dev::ZONES.iter().cycle()) {
                println!(
                    "  node {}  {}  grpc {}  http {}",
                    n.id, zone, n.grpc_addr, n.http_addr
                );
            }
            println!(
                "  AWS edge:    http://{}  (access key '{}', secret key '{}')",
                running[0].http_addr,
                dev::DEV_ACCESS_KEY,
                dev::DEV_SECRET_KEY
            );
            println!(
                "  health:      http://{}/_stratus/health",
                running[0].http_addr
            );
            if dev::wait_for_leaders(&running, Duration::from_secs(60)).await {
                println!("ready: every group has a leader. Try `stratus cluster status`; Ctrl-C stops the cluster.");
            } else {
                println!("warning: some groups have no leader yet; see `stratus cluster status`");
            }
            stop_signal().await;
            println!("stopping");
            for n in running {
                n.shutdown().await;
            }
        }
    }
    Ok(())
}
