//! `stratus-bench`: runs a scenario and prints one JSON line per result on stdout;
//! progress goes to stderr.
//!
//! `stratus-bench kv` first measures the disk's fsync latency (the physical limit of a
//! durable write), then for each (clients, value size) runs a put phase and a get phase.
//!
//! `stratus-bench s3` first measures the limits of the object data path (erasure encode
//! and decode, memcpy, loopback TCP), then for each (object size, clients) runs a
//! PutObject phase and a GetObject phase through the S3 API, and ends with the ratios of
//! large-object throughput to those limits.
//!
//! `stratus-bench sqs` first measures the limits a queue operation runs into (the disk's
//! fsync latency and, given the nodes' gRPC endpoints, closed-loop KV puts: one Raft
//! command each), then for each (queue type, batch size, clients) runs producers and
//! consumers together on a fresh queue and reports messages per second end to end and
//! each message's latency from send to receive.
//!
//! `stratus-bench kinesis` first measures the limits a stream runs into (the disk's fsync
//! latency, one loopback TCP connection and, given the nodes' gRPC endpoints, closed-loop
//! KV puts of a shard's share of a PutRecords: one Raft command each), then for each
//! (shards, batch, producers) runs a PutRecords ingest phase on a fresh stream and reads
//! it all back from TRIM_HORIZON with one reader per shard, and for each shard count
//! measures put -> get latency with readers polling LATEST.
//!
//! `stratus-bench quorum` first measures the limits a quorum commit runs into (the disk's
//! fsync latency, a loopback TCP round trip, a gRPC round trip), then for each number of
//! commits in flight runs closed-loop `Db::put`s on a fresh volume (and one phase of
//! multi-key `mput`s) beside Raft KV puts at the same concurrency; with `--spawn` it
//! starts its own cluster and repeats the phases with nodes stopped (see `quorum_run`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use stratus_bench::cpu::CpuMeter;
use stratus_bench::fsync::FsyncProbe;
use stratus_bench::kinesis::{self, IngestSpec, KinesisTarget, LatencySpec};
use stratus_bench::kv::{self, KvTarget, PhaseSpec};
use stratus_bench::limits::{self, ErasureGeometry, Throughput};
use stratus_bench::report::{
    self, FsyncReport, Goal, HostReport, KinesisCatchUpReport, KinesisIngestReport,
    KinesisLatencyReport, KinesisLimits, KvReport, LimitReport, RatioReport, S3Report, SqsLimits,
    SqsReport,
};
use stratus_bench::s3::{self, S3PhaseSpec, S3Target};
use stratus_bench::sdk::AwsCredentials;
use stratus_bench::sqs::{self, QueueType, SqsPhaseSpec, SqsTarget};
use stratus_client::{parse_endpoint_list, DEFAULT_ENDPOINT};

mod quorum_run;

/// The HTTP edge (S3, SQS and Kinesis) of a node started with the default HTTP port.
const DEFAULT_EDGE_ENDPOINT: &str = "http://127.0.0.1:4566";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Largest object the s3 scenario writes (one shared buffer of it is held per size).
const MAX_OBJECT_BYTES: u64 = GIB;

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
    /// S3 PutObject then GetObject phases through the HTTP edge(s), after measuring the
    /// data path's limits (erasure encode/decode, memcpy, loopback TCP).
    S3(S3Args),
    /// SQS producers and consumers together (send -> receive -> delete) through the HTTP
    /// edge(s), by queue type, batch size and clients, after measuring fsync and
    /// (with --kv-endpoint) the Raft KV put rate.
    Sqs(SqsArgs),
    /// Kinesis: PutRecords ingest and catch-up reads from TRIM_HORIZON by shards, batch
    /// and producers, and put -> get latency with readers polling LATEST, after measuring
    /// fsync, loopback TCP and (with --kv-endpoint) Raft KV puts.
    Kinesis(KinesisArgs),
    /// Quorum storage: commit throughput and latency (1, 16, 64 in flight; 4-key mputs)
    /// beside fsync, loopback and gRPC round trips and Raft KV puts; with --spawn also
    /// with one node stopped, one node flapping, and two nodes of two zones stopped.
    Quorum(quorum_run::QuorumArgs),
}

/// The Kinesis goals (issue 6), in 10^6 bytes per second.
const KINESIS_INGEST_GOAL_MB_PER_S: f64 = 30.0;
const KINESIS_CATCH_UP_GOAL_MB_PER_S: f64 = 100.0;

#[derive(Debug, Args)]
struct KinesisArgs {
    /// Kinesis endpoint(s) (a node's HTTP edge), comma-separated; producers and readers
    /// are spread over them.
    #[arg(
        long,
        env = "STRATUS_KINESIS_ENDPOINT",
        default_value = DEFAULT_EDGE_ENDPOINT,
        value_parser = EndpointList::parse,
        value_name = "URLS"
    )]
    endpoint: EndpointList,

    /// Access key of the cluster's root credentials.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "test")]
    access_key: String,

    /// Secret key of the cluster's root credentials.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    secret_key: String,

    /// Region the requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Short preset (about 30 s): batches of 500, producers 1,16, 2 s phases, 3 s latency
    /// phases, 0.5 s limit probes. Options given explicitly win over the preset.
    #[arg(long)]
    quick: bool,

    /// Shards of the streams, comma-separated [default: 4,16].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=500)
    )]
    shards: Option<Vec<u64>>,

    /// Records per PutRecords, comma-separated [default: 500,100].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=500)
    )]
    batches: Option<Vec<u64>>,

    /// Numbers of concurrent producers, comma-separated [default: 1,16,64].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    producers: Option<Vec<u64>>,

    /// Length of each ingest phase in seconds [default: 10].
    #[arg(long, value_parser = parse_duration_secs)]
    duration_secs: Option<f64>,

    /// Bytes of record data.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(16..=1_048_000))]
    record_bytes: u64,

    /// Time one request may take before it counts as an error.
    #[arg(long, default_value_t = 10.0, value_parser = parse_duration_secs)]
    request_timeout_secs: f64,

    /// Skip the catch-up reads after the ingest phases.
    #[arg(long)]
    skip_catch_up: bool,

    /// Length of each latency phase in seconds (0 skips them) [default: 10].
    #[arg(long)]
    latency_secs: Option<f64>,

    /// Records per second the latency phase's producer puts, one PutRecord each.
    #[arg(long, default_value_t = 50.0)]
    latency_rate: f64,

    /// Milliseconds a latency reader sleeps after a page that came back empty.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    poll_sleep_ms: u64,

    /// gRPC endpoint(s) of the nodes: when given, closed-loop KV puts of
    /// --kv-value-bytes are measured first, with as many in flight as each ingest phase
    /// has producers: the Raft command rate a PutRecords is read against.
    #[arg(long, value_parser = EndpointList::parse, value_name = "URLS")]
    kv_endpoint: Option<EndpointList>,

    /// Bytes of each KV put of that probe (a 500-record PutRecords of 1 KiB records on 4
    /// shards is one ~128 KiB Raft command per shard; on 16 shards ~32 KiB).
    #[arg(long, default_value = "64KiB", value_parser = parse_byte_size)]
    kv_value_bytes: u64,

    /// Seconds each limit probe runs [default: 3].
    #[arg(long, value_parser = parse_duration_secs)]
    limit_secs: Option<f64>,

    /// Process id of the server (e.g. a `stratusd dev` on this machine): each phase then
    /// reports the CPU it used, in cores and per MB.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    #[command(flatten)]
    fsync: FsyncArgs,
}

/// The kinesis options after the preset and the defaults are applied.
#[derive(Debug, Clone, PartialEq)]
struct KinesisPlan {
    shards: Vec<usize>,
    batches: Vec<usize>,
    producers: Vec<usize>,
    duration: Duration,
    latency_duration: Option<Duration>,
    limit_time: Duration,
}

impl KinesisArgs {
    fn plan(&self) -> KinesisPlan {
        let (batches, producers, duration_secs, latency_secs, limit_secs) = if self.quick {
            (vec![500], vec![1, 16], 2.0, 3.0, 0.5)
        } else {
            (vec![500, 100], vec![1, 16, 64], 10.0, 10.0, 3.0)
        };
        let to_usize = |v: &Vec<u64>| v.iter().map(|&n| n as usize).collect::<Vec<_>>();
        let latency_secs = self.latency_secs.unwrap_or(latency_secs);
        KinesisPlan {
            shards: self.shards.as_ref().map_or(vec![4, 16], to_usize),
            batches: self.batches.as_ref().map_or(batches, to_usize),
            producers: self.producers.as_ref().map_or(producers, to_usize),
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(duration_secs)),
            latency_duration: (latency_secs.is_finite() && latency_secs > 0.0)
                .then(|| Duration::from_secs_f64(latency_secs.min(86_400.0))),
            limit_time: Duration::from_secs_f64(self.limit_secs.unwrap_or(limit_secs)),
        }
    }

    fn ingest_spec(
        &self,
        plan: &KinesisPlan,
        shards: usize,
        batch: usize,
        producers: usize,
    ) -> IngestSpec {
        IngestSpec {
            shards,
            batch,
            producers,
            record_bytes: self.record_bytes as usize,
            duration: plan.duration,
            request_timeout: Duration::from_secs_f64(self.request_timeout_secs),
            server_pid: self.server_pid,
        }
    }
}

/// Messages per second end to end the SQS goal asks for with batches of 10 (issue 5).
const SQS_GOAL_MSGS_PER_S: f64 = 10_000.0;

#[derive(Debug, Args)]
struct SqsArgs {
    /// SQS endpoint(s) (a node's HTTP edge), comma-separated; producers and consumers are
    /// spread over them.
    #[arg(
        long,
        env = "STRATUS_SQS_ENDPOINT",
        default_value = DEFAULT_EDGE_ENDPOINT,
        value_parser = EndpointList::parse,
        value_name = "URLS"
    )]
    endpoint: EndpointList,

    /// Access key of the cluster's root credentials.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "test")]
    access_key: String,

    /// Secret key of the cluster's root credentials.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    secret_key: String,

    /// Region the requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Short preset (about 30 s): clients 1,16, 2 s phases, 0.5 s KV probes. Options
    /// given explicitly win over the preset.
    #[arg(long)]
    quick: bool,

    /// Queue types, comma-separated [default: standard,fifo].
    #[arg(long, value_delimiter = ',', value_parser = QueueType::parse)]
    queue_types: Option<Vec<QueueType>>,

    /// Messages per send and most per receive, comma-separated: 1 uses SendMessage and
    /// DeleteMessage, more the batch calls [default: 1,10].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=10)
    )]
    batches: Option<Vec<u64>>,

    /// Numbers of producers (and as many consumers), comma-separated [default: 1,16,64].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    clients: Option<Vec<u64>>,

    /// Length of each phase in seconds [default: 10].
    #[arg(long, value_parser = parse_duration_secs)]
    duration_secs: Option<f64>,

    /// Bytes of each message body (the first 34 carry its send time and id).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(34..=262_144))]
    body_bytes: u64,

    /// FIFO queues: message groups the messages rotate over.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    message_groups: u64,

    /// Most messages producers may be ahead of consumers (sent, not yet received)
    /// [default: clients x batch, one receive's worth per consumer].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    max_backlog: Option<u64>,

    /// WaitTimeSeconds of each receive (long poll).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,

    /// Time one request may take before it counts as an error.
    #[arg(long, default_value_t = 10.0, value_parser = parse_duration_secs)]
    request_timeout_secs: f64,

    /// gRPC endpoint(s) of the nodes: when given, closed-loop KV puts of the body size
    /// are measured first (as many in flight as each phase has: 2 x clients), the Raft
    /// command rate a queue operation is read against.
    #[arg(long, value_parser = EndpointList::parse, value_name = "URLS")]
    kv_endpoint: Option<EndpointList>,

    /// Seconds each KV put probe runs [default: 3].
    #[arg(long, value_parser = parse_duration_secs)]
    limit_secs: Option<f64>,

    /// Process id of the server (e.g. a `stratusd dev` on this machine): each phase then
    /// reports the CPU it used, in cores and per message.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    #[command(flatten)]
    fsync: FsyncArgs,
}

/// The sqs options after the preset and the defaults are applied.
#[derive(Debug, Clone, PartialEq)]
struct SqsPlan {
    queue_types: Vec<QueueType>,
    batches: Vec<usize>,
    clients: Vec<usize>,
    duration: Duration,
    limit_time: Duration,
}

impl SqsArgs {
    fn plan(&self) -> SqsPlan {
        let (clients, duration_secs, limit_secs) = if self.quick {
            (vec![1, 16], 2.0, 0.5)
        } else {
            (vec![1, 16, 64], 10.0, 3.0)
        };
        let to_usize = |v: &Vec<u64>| v.iter().map(|&n| n as usize).collect::<Vec<_>>();
        SqsPlan {
            queue_types: self
                .queue_types
                .clone()
                .unwrap_or(vec![QueueType::Standard, QueueType::Fifo]),
            batches: self.batches.as_ref().map_or(vec![1, 10], to_usize),
            clients: self.clients.as_ref().map_or(clients, to_usize),
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(duration_secs)),
            limit_time: Duration::from_secs_f64(self.limit_secs.unwrap_or(limit_secs)),
        }
    }

    fn phase_spec(
        &self,
        plan: &SqsPlan,
        queue_type: QueueType,
        batch: usize,
        clients: usize,
    ) -> SqsPhaseSpec {
        SqsPhaseSpec {
            queue_type,
            batch,
            clients,
            duration: plan.duration,
            max_backlog: self.max_backlog.map_or(clients * batch, |b| b as usize),
            message_groups: self.message_groups as usize,
            body_bytes: self.body_bytes as usize,
            wait_seconds: self.wait_seconds,
            request_timeout: Duration::from_secs_f64(self.request_timeout_secs),
            server_pid: self.server_pid,
        }
    }
}

#[derive(Debug, Args)]
struct S3Args {
    /// S3 endpoint(s) (a node's HTTP edge), comma-separated; clients are spread over them.
    #[arg(
        long,
        env = "STRATUS_S3_ENDPOINT",
        default_value = DEFAULT_EDGE_ENDPOINT,
        value_parser = EndpointList::parse,
        value_name = "URLS"
    )]
    endpoint: EndpointList,

    /// Access key of the cluster's root credentials.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "test")]
    access_key: String,

    /// Secret key of the cluster's root credentials.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    secret_key: String,

    /// Region the requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Short preset: sizes 4KiB,1MiB,16MiB, clients 1,8, 2 s phases, 256 MiB per phase,
    /// 0.5 s per limit probe. Options given explicitly win over the preset.
    #[arg(long)]
    quick: bool,

    /// Object sizes, comma-separated (`4KiB`, `1MiB`, `64MiB`, `100`; at most 1 GiB)
    /// [default: 4KiB,1MiB,64MiB].
    #[arg(long, value_delimiter = ',', value_parser = parse_object_size)]
    sizes: Option<Vec<u64>>,

    /// Numbers of concurrent clients, comma-separated [default: 1,16,64].
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    clients: Option<Vec<u64>>,

    /// Length of each phase in seconds [default: 10].
    #[arg(long, value_parser = parse_duration_secs)]
    duration_secs: Option<f64>,

    /// Object bytes one phase may move, over all clients; every client still makes at
    /// least one request, so a phase moves at least clients x size [default: 4GiB].
    #[arg(long, value_parser = parse_byte_size)]
    max_bytes_per_phase: Option<u64>,

    /// Cap on the requests of one phase, over all clients.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_ops: u64,

    /// Time one request may take before it counts as an error (a 64 MiB object shared
    /// with 63 other clients on a small machine takes tens of seconds).
    #[arg(long, default_value_t = 300.0, value_parser = parse_duration_secs)]
    request_timeout_secs: f64,

    /// Seconds each limit probe runs [default: 3].
    #[arg(long, value_parser = parse_duration_secs)]
    limit_secs: Option<f64>,

    /// Also measure sequential write + fsync throughput in this directory (use the nodes'
    /// data disk), the floor under PUT: each PUT writes 1.5x its bytes under 4+2.
    #[arg(long, value_name = "DIR")]
    disk_dir: Option<PathBuf>,

    /// Process id of the server (e.g. a `stratusd dev` on this machine): each phase then
    /// reports the CPU time it used, to tell a starved node from a slow one.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    /// Run only the put phases.
    #[arg(long)]
    skip_gets: bool,
}

/// The s3 options after the preset and the defaults are applied.
#[derive(Debug, Clone, PartialEq)]
struct S3Plan {
    sizes: Vec<u64>,
    clients: Vec<u64>,
    duration: Duration,
    max_bytes_per_phase: u64,
    limit_time: Duration,
    /// Bytes the disk probe writes.
    disk_probe_bytes: u64,
}

impl S3Args {
    fn plan(&self) -> S3Plan {
        let (sizes, clients, duration_secs, max_bytes, limit_secs, disk_bytes) = if self.quick {
            let sizes = vec![4 * KIB, MIB, 16 * MIB];
            (sizes, vec![1, 8], 2.0, 256 * MIB, 0.5, 64 * MIB)
        } else {
            let sizes = vec![4 * KIB, MIB, 64 * MIB];
            (sizes, vec![1, 16, 64], 10.0, 4 * GIB, 3.0, GIB)
        };
        S3Plan {
            sizes: self.sizes.clone().unwrap_or(sizes),
            clients: self.clients.clone().unwrap_or(clients),
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(duration_secs)),
            max_bytes_per_phase: self.max_bytes_per_phase.unwrap_or(max_bytes),
            limit_time: Duration::from_secs_f64(self.limit_secs.unwrap_or(limit_secs)),
            disk_probe_bytes: disk_bytes,
        }
    }
}

/// Requests a phase may issue: enough for its byte budget, at least one per client, and
/// never more than `max_ops`.
fn phase_ops(max_bytes: u64, object_bytes: u64, clients: u64, max_ops: u64) -> u64 {
    (max_bytes / object_bytes.max(1)).max(clients).min(max_ops)
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

/// A byte count with an optional unit: `B`, `KiB`/`K`, `MiB`/`M`, `GiB`/`G` (powers of
/// 1024) or `KB`, `MB`, `GB` (powers of 1000); case-insensitive.
fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like 4096, 4KiB, 64MiB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown unit {other:?} in {text:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_object_size(text: &str) -> Result<u64, String> {
    let bytes = parse_byte_size(text)?;
    if bytes > MAX_OBJECT_BYTES {
        return Err(format!(
            "{text:?} is more than the 1 GiB this benchmark writes"
        ));
    }
    Ok(bytes)
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
            Scenario::S3(args) => run_s3(args).await,
            Scenario::Sqs(args) => run_sqs(args).await,
            Scenario::Kinesis(args) => run_kinesis(args).await,
            Scenario::Quorum(args) => quorum_run::run_quorum(args).await,
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

/// The limits measured before the s3 phases, in 10^6 bytes per second.
#[derive(Debug, Clone, Copy)]
struct DataPathLimits {
    encode_mb_per_s: f64,
    loopback_mb_per_s: f64,
    disk_write_mb_per_s: Option<f64>,
    /// (data + parity) / data of the layout: bytes written per object byte.
    write_amplification: f64,
}

async fn measure_limits(
    budget: Duration,
    disk: Option<(PathBuf, u64)>,
) -> anyhow::Result<DataPathLimits> {
    let geometry = ErasureGeometry::STANDARD;
    let codec_line = |name, measured: &Throughput| LimitReport {
        data_shards: Some(geometry.data_shards),
        parity_shards: Some(geometry.parity_shards),
        piece_bytes: Some(geometry.piece_bytes()),
        ..LimitReport::new(name, measured)
    };

    eprintln!(
        "stratus-bench: limits: erasure {}+{} with {} KiB pieces, memcpy, loopback TCP ({} s each)",
        geometry.data_shards,
        geometry.parity_shards,
        geometry.piece_bytes() / 1024,
        budget.as_secs_f64()
    );
    let encode = tokio::task::spawn_blocking(move || limits::erasure_encode(geometry, budget))
        .await
        .context("encode probe task")??;
    report::emit(&codec_line("erasure_encode", &encode))?;
    let decode = tokio::task::spawn_blocking(move || limits::erasure_decode(geometry, budget))
        .await
        .context("decode probe task")??;
    report::emit(&codec_line("erasure_decode", &decode))?;

    let memcpy_bytes = (64 * MIB) as usize;
    let memcpy = tokio::task::spawn_blocking(move || limits::memcpy(memcpy_bytes, budget))
        .await
        .context("memcpy probe task")??;
    report::emit(&LimitReport {
        buffer_bytes: Some(memcpy_bytes),
        ..LimitReport::new("memcpy", &memcpy)
    })?;

    let write_bytes = MIB as usize;
    let loopback = measure_loopback(budget).await?;

    let mut disk_write_mb_per_s = None;
    if let Some((dir, bytes)) = disk {
        eprintln!(
            "stratus-bench: disk: {} MiB of 1 MiB writes + fsync in {}",
            bytes / MIB,
            dir.display()
        );
        let probe_dir = dir.clone();
        let disk =
            tokio::task::spawn_blocking(move || limits::disk_write(&probe_dir, bytes, write_bytes))
                .await
                .context("disk probe task")?
                .with_context(|| format!("disk probe in {}", dir.display()))?;
        report::emit(&LimitReport {
            buffer_bytes: Some(write_bytes),
            ..LimitReport::new("disk_write", &disk)
        })?;
        disk_write_mb_per_s = Some(disk.gb_per_s() * 1000.0);
    }

    Ok(DataPathLimits {
        encode_mb_per_s: encode.gb_per_s() * 1000.0,
        loopback_mb_per_s: loopback.mb_per_s,
        disk_write_mb_per_s,
        write_amplification: (geometry.data_shards + geometry.parity_shards) as f64
            / geometry.data_shards as f64,
    })
}

/// What the loopback probe measured.
#[derive(Debug, Clone, Copy)]
struct LoopbackLimit {
    mb_per_s: f64,
    /// CPU seconds per 10^9 bytes for both ends (numerically ms per 10^6 bytes).
    cpu_s_per_gb: Option<f64>,
}

/// One loopback TCP connection (1 MiB writes) for `budget`; prints its line.
async fn measure_loopback(budget: Duration) -> anyhow::Result<LoopbackLimit> {
    let write_bytes = MIB as usize;
    let meter = CpuMeter::start(None);
    let loopback = limits::loopback_tcp(write_bytes, budget).await?;
    let loopback_cpu = meter.stop().client_s;
    let line = LimitReport {
        buffer_bytes: Some(write_bytes),
        // A writer task and a reader task, each on its own worker.
        threads: 2,
        ..LimitReport::new("loopback_tcp", &loopback)
    }
    .with_cpu(loopback_cpu);
    report::emit(&line)?;
    Ok(LoopbackLimit {
        mb_per_s: loopback.gb_per_s() * 1000.0,
        cpu_s_per_gb: line.cpu_s_per_gb,
    })
}

/// PUT and GET throughput of one (size, clients), for the ratios.
#[derive(Debug, Clone, Copy)]
struct PhaseRates {
    object_bytes: u64,
    clients: u64,
    put_mb_per_s: f64,
    get_mb_per_s: Option<f64>,
}

async fn run_s3(args: S3Args) -> anyhow::Result<()> {
    let plan = args.plan();
    report::emit(&HostReport::now("start"))?;
    let disk = args
        .disk_dir
        .clone()
        .map(|dir| (dir, plan.disk_probe_bytes));
    let limits = measure_limits(plan.limit_time, disk).await?;

    let credentials = AwsCredentials {
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        region: args.region.clone(),
    };
    let target = S3Target::new(&args.endpoint.0, &credentials, Duration::from_secs(2));
    target
        .create_bucket()
        .await
        .map_err(|e| anyhow::anyhow!("cannot create bucket {}: {e}", target.bucket()))?;
    eprintln!(
        "stratus-bench: bucket {} through {} endpoint(s): {}",
        target.bucket(),
        target.endpoint_count(),
        args.endpoint.0.join(",")
    );

    let phases = run_s3_phases(&args, &plan, &target).await;

    // Clean up whatever happened in the phases.
    match target.delete_bucket().await {
        Ok(left) => eprintln!(
            "stratus-bench: deleted bucket {} ({left} leftover objects)",
            target.bucket()
        ),
        Err(e) => eprintln!(
            "stratus-bench: could not delete bucket {}: {e}",
            target.bucket()
        ),
    }
    let rates = phases?;

    // Large-object ratios: the largest size measured, at every concurrency.
    let largest = rates.iter().map(|r| r.object_bytes).max();
    for rate in rates.iter().filter(|r| Some(r.object_bytes) == largest) {
        let object_bytes = usize::try_from(rate.object_bytes)?;
        let clients = usize::try_from(rate.clients)?;
        if let Some(get) = rate.get_mb_per_s {
            report::emit(&RatioReport::new(
                "get_vs_loopback",
                object_bytes,
                clients,
                get,
                limits.loopback_mb_per_s,
                Goal::AtLeast(0.5),
            ))?;
        }
        report::emit(&RatioReport::new(
            "put_vs_encode",
            object_bytes,
            clients,
            rate.put_mb_per_s,
            limits.encode_mb_per_s,
            Goal::Below(1.0),
        ))?;
        if let Some(disk) = limits.disk_write_mb_per_s {
            // Shard bytes written per second against what the disk takes.
            report::emit(&RatioReport::new(
                "put_vs_disk",
                object_bytes,
                clients,
                rate.put_mb_per_s * limits.write_amplification,
                disk,
                Goal::None,
            ))?;
        }
    }
    report::emit(&HostReport::now("end"))?;
    Ok(())
}

async fn run_s3_phases(
    args: &S3Args,
    plan: &S3Plan,
    target: &S3Target,
) -> anyhow::Result<Vec<PhaseRates>> {
    let endpoints = target.endpoint_count();
    let mut rates = Vec::new();
    for (seed, &size) in plan.sizes.iter().enumerate() {
        // One body per size, shared by every PUT of it.
        let body = Bytes::from(limits::pseudo_random(
            usize::try_from(size)?,
            seed as u64 + 10,
        ));
        for &clients in &plan.clients {
            let spec = S3PhaseSpec {
                clients: usize::try_from(clients)?,
                object_bytes: usize::try_from(size)?,
                duration: plan.duration,
                max_ops: phase_ops(plan.max_bytes_per_phase, size, clients, args.max_ops),
                request_timeout: Duration::from_secs_f64(args.request_timeout_secs),
            };
            let prefix = s3::phase_prefix(spec.object_bytes, spec.clients);
            eprintln!(
                "stratus-bench: s3_put size={size} clients={clients} for {:.1} s (at most {} requests)",
                plan.duration.as_secs_f64(),
                spec.max_ops
            );
            let meter = CpuMeter::start(args.server_pid);
            let puts = s3::run_puts(target, &spec, &prefix, body.clone()).await;
            let put_line = S3Report::new(
                "s3_put",
                spec.object_bytes,
                spec.clients,
                endpoints,
                &puts,
                meter.stop(),
            );
            report::emit(&put_line)?;

            let mut get_mb_per_s = None;
            if args.skip_gets {
                // Nothing to read back.
            } else if puts.written_keys.is_empty() {
                eprintln!("stratus-bench: s3_get skipped: no put succeeded");
            } else {
                eprintln!(
                    "stratus-bench: s3_get size={size} clients={clients} over {} objects",
                    puts.written_keys.len()
                );
                let meter = CpuMeter::start(args.server_pid);
                let gets = s3::run_gets(target, &spec, puts.written_keys).await;
                let get_line = S3Report::new(
                    "s3_get",
                    spec.object_bytes,
                    spec.clients,
                    endpoints,
                    &gets,
                    meter.stop(),
                );
                report::emit(&get_line)?;
                get_mb_per_s = Some(get_line.mb_per_s);
            }
            rates.push(PhaseRates {
                object_bytes: size,
                clients,
                put_mb_per_s: put_line.mb_per_s,
                get_mb_per_s,
            });
            match target.delete_prefix(&prefix).await {
                Ok(n) => eprintln!("stratus-bench: deleted {n} objects under {prefix}"),
                Err(e) => eprintln!("stratus-bench: could not delete {prefix}: {e}"),
            }
        }
    }
    Ok(rates)
}

/// What the KV put probe of the sqs scenario measured at one number of requests in flight.
#[derive(Debug, Clone, Copy)]
struct KvPutRate {
    clients: usize,
    ops_per_s: f64,
    p50_ms: Option<f64>,
    server_cpu_ms_per_op: Option<f64>,
}

async fn measure_kv_puts(
    endpoints: &[String],
    in_flight: &[usize],
    value_bytes: usize,
    duration: Duration,
    fsync_p50_ms: Option<f64>,
    server_pid: Option<u32>,
) -> anyhow::Result<Vec<KvPutRate>> {
    let target = KvTarget::connect(endpoints, 1, Duration::from_secs(2)).await?;
    let mut rates = Vec::new();
    for &clients in in_flight {
        eprintln!(
            "stratus-bench: limit kv_put clients={clients} value_bytes={value_bytes} for {} s",
            duration.as_secs_f64()
        );
        let spec = PhaseSpec {
            clients,
            value_bytes,
            duration,
            max_ops: 1_000_000,
            request_timeout: Duration::from_secs(10),
        };
        let meter = CpuMeter::start(server_pid);
        let puts = kv::run_puts(&target, &spec).await;
        let line = KvReport::new("kv_put", clients, value_bytes, &puts, fsync_p50_ms)
            .with_server_cpu(meter.stop().server_s);
        report::emit(&line)?;
        rates.push(KvPutRate {
            clients,
            ops_per_s: line.ops_per_s,
            p50_ms: line.p50_ms,
            server_cpu_ms_per_op: line.server_cpu_ms_per_op,
        });
    }
    Ok(rates)
}

async fn run_sqs(args: SqsArgs) -> anyhow::Result<()> {
    let plan = args.plan();
    report::emit(&HostReport::now("start"))?;
    let fsync_p50_ms = run_fsync(&args.fsync).await?;

    // A phase with c clients has c sends and c receives or deletes in flight.
    let mut in_flight: Vec<usize> = plan.clients.iter().map(|&c| 2 * c).collect();
    in_flight.sort_unstable();
    in_flight.dedup();
    let kv_rates = match &args.kv_endpoint {
        Some(endpoints) => {
            measure_kv_puts(
                &endpoints.0,
                &in_flight,
                args.body_bytes as usize,
                plan.limit_time,
                fsync_p50_ms,
                args.server_pid,
            )
            .await?
        }
        None => Vec::new(),
    };

    let credentials = AwsCredentials {
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        region: args.region.clone(),
    };
    let target = SqsTarget::new(&args.endpoint.0, &credentials, Duration::from_secs(2));
    eprintln!(
        "stratus-bench: sqs through {} endpoint(s): {}",
        target.endpoint_count(),
        args.endpoint.0.join(",")
    );
    for &queue_type in &plan.queue_types {
        for &batch in &plan.batches {
            for &clients in &plan.clients {
                let spec = args.phase_spec(&plan, queue_type, batch, clients);
                let name = target.queue_name(queue_type, batch, clients);
                let url = target
                    .create_queue(&name, queue_type)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot create queue {name}: {e}"))?;
                eprintln!(
                    "stratus-bench: sqs {} batch={batch} clients={clients} for {:.1} s on {url}",
                    queue_type.as_str(),
                    plan.duration.as_secs_f64()
                );
                let outcome = sqs::run_phase(&target, &url, &spec).await;
                let kv = kv_rates.iter().find(|k| k.clients == 2 * clients);
                let limits = SqsLimits {
                    fsync_p50_ms,
                    kv_put_ops_per_s: kv.map(|k| k.ops_per_s),
                    kv_put_p50_ms: kv.and_then(|k| k.p50_ms),
                    kv_put_server_cpu_ms_per_op: kv.and_then(|k| k.server_cpu_ms_per_op),
                    goal_msgs_per_s: (batch == 10).then_some(SQS_GOAL_MSGS_PER_S),
                };
                report::emit(&SqsReport::new(
                    &spec,
                    target.endpoint_count(),
                    &outcome,
                    limits,
                ))?;
                if let Err(e) = target.delete_queue(&url).await {
                    eprintln!("stratus-bench: could not delete queue {name}: {e}");
                }
            }
        }
    }
    report::emit(&HostReport::now("end"))?;
    Ok(())
}

async fn run_kinesis(args: KinesisArgs) -> anyhow::Result<()> {
    let plan = args.plan();
    report::emit(&HostReport::now("start"))?;
    let fsync_p50_ms = run_fsync(&args.fsync).await?;
    eprintln!(
        "stratus-bench: limit: loopback TCP for {} s",
        plan.limit_time.as_secs_f64()
    );
    let loopback = measure_loopback(plan.limit_time).await?;
    let kv_value_bytes = usize::try_from(args.kv_value_bytes)?;
    let kv_rates = match &args.kv_endpoint {
        Some(endpoints) => {
            let mut in_flight = plan.producers.clone();
            in_flight.sort_unstable();
            in_flight.dedup();
            measure_kv_puts(
                &endpoints.0,
                &in_flight,
                kv_value_bytes,
                plan.limit_time,
                fsync_p50_ms,
                args.server_pid,
            )
            .await?
        }
        None => Vec::new(),
    };
    let limits_for = |producers: usize, goal: f64| {
        let kv = kv_rates.iter().find(|k| k.clients == producers);
        KinesisLimits {
            fsync_p50_ms,
            loopback_mb_per_s: Some(loopback.mb_per_s),
            loopback_cpu_ms_per_mb: loopback.cpu_s_per_gb,
            kv_put_value_bytes: kv.map(|_| kv_value_bytes),
            kv_put_ops_per_s: kv.map(|k| k.ops_per_s),
            kv_put_mb_per_s: kv.map(|k| k.ops_per_s * kv_value_bytes as f64 / 1e6),
            kv_put_server_cpu_ms_per_op: kv.and_then(|k| k.server_cpu_ms_per_op),
            goal_mb_per_s: Some(goal),
        }
    };

    let credentials = AwsCredentials {
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        region: args.region.clone(),
    };
    let target = KinesisTarget::new(&args.endpoint.0, &credentials, Duration::from_secs(2));
    eprintln!(
        "stratus-bench: kinesis through {} endpoint(s): {}",
        target.endpoint_count(),
        args.endpoint.0.join(",")
    );
    let request_timeout = Duration::from_secs_f64(args.request_timeout_secs);
    for &shards in &plan.shards {
        for &batch in &plan.batches {
            for &producers in &plan.producers {
                let spec = args.ingest_spec(&plan, shards, batch, producers);
                let name = target.stream_name("ingest", shards, batch, producers);
                let shard_ids = target
                    .create_stream(&name, shards)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot create stream {name}: {e}"))?;
                eprintln!(
                    "stratus-bench: kinesis_ingest shards={shards} batch={batch} \
                     producers={producers} for {:.1} s on {name}",
                    plan.duration.as_secs_f64()
                );
                let ingest = kinesis::run_ingest(&target, &name, &spec).await;
                report::emit(&KinesisIngestReport::new(
                    &spec,
                    target.endpoint_count(),
                    &ingest,
                    limits_for(producers, KINESIS_INGEST_GOAL_MB_PER_S),
                ))?;
                if !args.skip_catch_up {
                    eprintln!(
                        "stratus-bench: kinesis_catch_up of {} records, {} readers",
                        ingest.records_appended, shards
                    );
                    // A reader that makes no progress for this long gives up.
                    let give_up = request_timeout * 3;
                    let read = kinesis::run_catch_up(
                        &target,
                        &name,
                        &shard_ids,
                        request_timeout,
                        give_up,
                        args.server_pid,
                    )
                    .await;
                    report::emit(&KinesisCatchUpReport::new(
                        &spec,
                        &read,
                        ingest.records_appended,
                        limits_for(producers, KINESIS_CATCH_UP_GOAL_MB_PER_S),
                    ))?;
                }
                if let Err(e) = target.delete_stream(&name).await {
                    eprintln!("stratus-bench: {e}");
                }
            }
        }
    }
    if let Some(duration) = plan.latency_duration {
        for &shards in &plan.shards {
            let name = target.stream_name("latency", shards, 1, 1);
            let shard_ids = target
                .create_stream(&name, shards)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create stream {name}: {e}"))?;
            let spec = LatencySpec {
                shards,
                records_per_s: args.latency_rate,
                record_bytes: args.record_bytes as usize,
                duration,
                poll_sleep: Duration::from_millis(args.poll_sleep_ms),
                request_timeout,
                server_pid: args.server_pid,
            };
            eprintln!(
                "stratus-bench: kinesis_latency shards={shards} at {} records/s for {:.1} s",
                args.latency_rate,
                duration.as_secs_f64()
            );
            let outcome = kinesis::run_latency(&target, &name, &shard_ids, &spec).await;
            report::emit(&KinesisLatencyReport::new(
                &spec,
                &outcome,
                KinesisLimits {
                    fsync_p50_ms,
                    ..KinesisLimits::default()
                },
            ))?;
            if let Err(e) = target.delete_stream(&name).await {
                eprintln!("stratus-bench: {e}");
            }
        }
    }
    report::emit(&HostReport::now("end"))?;
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
            _ => panic!("not kv"),
        }
    }

    fn s3_args(args: &[&str]) -> Result<S3Args, clap::Error> {
        match parse(args)?.scenario {
            Scenario::S3(s3) => Ok(s3),
            _ => panic!("not s3"),
        }
    }

    #[test]
    fn s3_defaults_and_the_quick_preset() {
        let args = s3_args(&["s3"]).unwrap();
        assert_eq!(args.endpoint.0, vec!["http://127.0.0.1:4566"]);
        assert_eq!(args.access_key, "test");
        let plan = args.plan();
        assert_eq!(plan.sizes, vec![4096, MIB, 64 * MIB]);
        assert_eq!(plan.clients, vec![1, 16, 64]);
        assert_eq!(plan.duration, Duration::from_secs(10));
        assert_eq!(plan.max_bytes_per_phase, 4 * GIB);

        let quick = s3_args(&["s3", "--quick"]).unwrap().plan();
        assert_eq!(quick.clients, vec![1, 8]);
        assert_eq!(quick.duration, Duration::from_secs(2));
        assert!(quick.limit_time < plan.limit_time);

        // Explicit options win over the preset.
        let mixed = s3_args(&[
            "s3",
            "--quick",
            "--sizes",
            "1KiB,2MB",
            "--duration-secs",
            "5",
        ])
        .unwrap()
        .plan();
        assert_eq!(mixed.sizes, vec![1024, 2_000_000]);
        assert_eq!(mixed.duration, Duration::from_secs(5));
        assert_eq!(mixed.clients, vec![1, 8]);
    }

    #[test]
    fn s3_full_command_line() {
        let args = s3_args(&[
            "s3",
            "--endpoint",
            "http://127.0.0.1:34566,http://127.0.0.1:34567",
            "--access-key",
            "ak",
            "--secret-key",
            "sk",
            "--sizes",
            "4KiB,1MiB,64MiB",
            "--clients",
            "1,16,64",
            "--duration-secs",
            "10",
            "--max-bytes-per-phase",
            "2GiB",
            "--disk-dir",
            "/data",
            "--server-pid",
            "42",
            "--skip-gets",
        ])
        .unwrap();
        assert_eq!(args.disk_dir, Some(PathBuf::from("/data")));
        assert_eq!(args.server_pid, Some(42));
        assert_eq!(args.endpoint.0.len(), 2);
        assert_eq!(
            (args.access_key.as_str(), args.secret_key.as_str()),
            ("ak", "sk")
        );
        assert_eq!(args.plan().max_bytes_per_phase, 2 * GIB);
        assert!(args.skip_gets);
    }

    #[test]
    fn s3_bad_input_is_rejected() {
        for bad in [
            &["s3", "--sizes", "2GiB"][..],
            &["s3", "--sizes", "4XB"],
            &["s3", "--sizes", "-1"],
            &["s3", "--clients", "0"],
            &["s3", "--duration-secs", "0"],
            &["s3", "--limit-secs", "-1"],
            &["s3", "--max-bytes-per-phase", "lots"],
            &["s3", "--endpoint", "ftp://x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn sqs_args(args: &[&str]) -> Result<SqsArgs, clap::Error> {
        match parse(args)?.scenario {
            Scenario::Sqs(sqs) => Ok(sqs),
            _ => panic!("not sqs"),
        }
    }

    #[test]
    fn sqs_defaults_and_the_quick_preset() {
        let args = sqs_args(&["sqs"]).unwrap();
        assert_eq!(args.endpoint.0, vec!["http://127.0.0.1:4566"]);
        assert!(args.kv_endpoint.is_none());
        let plan = args.plan();
        assert_eq!(plan.queue_types, vec![QueueType::Standard, QueueType::Fifo]);
        assert_eq!(plan.batches, vec![1, 10]);
        assert_eq!(plan.clients, vec![1, 16, 64]);
        assert_eq!(plan.duration, Duration::from_secs(10));
        let spec = args.phase_spec(&plan, QueueType::Fifo, 10, 16);
        assert_eq!(spec.max_backlog, 160);
        assert_eq!(spec.message_groups, 64);
        assert_eq!(spec.body_bytes, 256);
        assert_eq!(spec.wait_seconds, 1);

        let quick = sqs_args(&["sqs", "--quick", "--batches", "10"]).unwrap();
        let quick_plan = quick.plan();
        assert_eq!(quick_plan.clients, vec![1, 16]);
        assert_eq!(quick_plan.batches, vec![10]);
        assert_eq!(quick_plan.duration, Duration::from_secs(2));
        assert!(quick_plan.limit_time < plan.limit_time);
    }

    #[test]
    fn sqs_full_command_line_and_bad_input() {
        let args = sqs_args(&[
            "sqs",
            "--endpoint",
            "http://127.0.0.1:14566,http://127.0.0.1:14567",
            "--kv-endpoint",
            "http://127.0.0.1:17000",
            "--queue-types",
            "fifo",
            "--clients",
            "2,8",
            "--max-backlog",
            "100",
            "--message-groups",
            "8",
            "--server-pid",
            "42",
            "--fsync-dir",
            "/data",
        ])
        .unwrap();
        assert_eq!(args.endpoint.0.len(), 2);
        assert_eq!(args.kv_endpoint.as_ref().map(|e| e.0.len()), Some(1));
        assert_eq!(args.server_pid, Some(42));
        assert_eq!(args.fsync.fsync_dir, Some(PathBuf::from("/data")));
        let plan = args.plan();
        assert_eq!(plan.queue_types, vec![QueueType::Fifo]);
        let spec = args.phase_spec(&plan, QueueType::Fifo, 1, 8);
        assert_eq!((spec.max_backlog, spec.message_groups), (100, 8));
        for bad in [
            &["sqs", "--batches", "11"][..],
            &["sqs", "--batches", "0"],
            &["sqs", "--queue-types", "lifo"],
            &["sqs", "--clients", "0"],
            &["sqs", "--body-bytes", "10"],
            &["sqs", "--wait-seconds", "21"],
            &["sqs", "--kv-endpoint", "ftp://x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn kinesis_args(args: &[&str]) -> Result<KinesisArgs, clap::Error> {
        match parse(args)?.scenario {
            Scenario::Kinesis(kinesis) => Ok(kinesis),
            _ => panic!("not kinesis"),
        }
    }

    #[test]
    fn kinesis_defaults_and_the_quick_preset() {
        let args = kinesis_args(&["kinesis"]).unwrap();
        assert_eq!(args.endpoint.0, vec!["http://127.0.0.1:4566"]);
        assert_eq!(args.record_bytes, 1024);
        assert_eq!(args.kv_value_bytes, 64 * KIB);
        let plan = args.plan();
        assert_eq!(plan.shards, vec![4, 16]);
        assert_eq!(plan.batches, vec![500, 100]);
        assert_eq!(plan.producers, vec![1, 16, 64]);
        assert_eq!(plan.duration, Duration::from_secs(10));
        assert_eq!(plan.latency_duration, Some(Duration::from_secs(10)));
        let spec = args.ingest_spec(&plan, 16, 100, 64);
        assert_eq!((spec.shards, spec.batch, spec.producers), (16, 100, 64));
        assert_eq!(spec.record_bytes, 1024);

        let quick = kinesis_args(&["kinesis", "--quick", "--shards", "4"])
            .unwrap()
            .plan();
        assert_eq!(quick.shards, vec![4]);
        assert_eq!(quick.batches, vec![500]);
        assert_eq!(quick.producers, vec![1, 16]);
        assert_eq!(quick.duration, Duration::from_secs(2));
        assert!(quick.limit_time < plan.limit_time);
        let no_latency = kinesis_args(&["kinesis", "--latency-secs", "0"])
            .unwrap()
            .plan();
        assert_eq!(no_latency.latency_duration, None);
    }

    #[test]
    fn kinesis_full_command_line_and_bad_input() {
        let args = kinesis_args(&[
            "kinesis",
            "--endpoint",
            "http://127.0.0.1:25566,http://127.0.0.1:25567",
            "--kv-endpoint",
            "http://127.0.0.1:28000",
            "--kv-value-bytes",
            "32KiB",
            "--shards",
            "2",
            "--batches",
            "10",
            "--producers",
            "3",
            "--server-pid",
            "42",
            "--poll-sleep-ms",
            "5",
            "--skip-catch-up",
        ])
        .unwrap();
        assert_eq!(args.endpoint.0.len(), 2);
        assert_eq!(args.kv_endpoint.as_ref().map(|e| e.0.len()), Some(1));
        assert_eq!(args.kv_value_bytes, 32 * KIB);
        assert_eq!(args.server_pid, Some(42));
        assert_eq!(args.poll_sleep_ms, 5);
        assert!(args.skip_catch_up);
        let plan = args.plan();
        assert_eq!(
            (plan.shards, plan.batches, plan.producers),
            (vec![2], vec![10], vec![3])
        );
        for bad in [
            &["kinesis", "--batches", "501"][..],
            &["kinesis", "--batches", "0"],
            &["kinesis", "--shards", "0"],
            &["kinesis", "--producers", "0"],
            &["kinesis", "--record-bytes", "2000000"],
            &["kinesis", "--kv-endpoint", "ftp://x"],
            &["kinesis", "--duration-secs", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("4KiB"), Ok(4096));
        assert_eq!(parse_byte_size("4k"), Ok(4096));
        assert_eq!(parse_byte_size("1MiB"), Ok(MIB));
        assert_eq!(parse_byte_size("64mib"), Ok(64 * MIB));
        assert_eq!(parse_byte_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_byte_size("10 B"), Ok(10));
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("1.5MiB").is_err());
        assert!(parse_byte_size("99999999999999999999GiB").is_err());
        assert!(parse_byte_size("18446744073709551615GiB").is_err());
        assert!(parse_object_size("1GiB").is_ok());
        assert!(parse_object_size("1025MiB").is_err());
    }

    #[test]
    fn phase_op_caps() {
        // 64 MiB x 64 clients: one request each, whatever the budget.
        assert_eq!(phase_ops(4 * GIB, 64 * MIB, 64, 1_000_000), 64);
        assert_eq!(phase_ops(GIB, 64 * MIB, 64, 1_000_000), 64);
        // 64 MiB x 1 client: the budget decides.
        assert_eq!(phase_ops(4 * GIB, 64 * MIB, 1, 1_000_000), 64);
        // Small objects: max_ops decides.
        assert_eq!(phase_ops(4 * GIB, 4096, 16, 1_000_000), 1_000_000);
        assert_eq!(phase_ops(4 * GIB, 0, 1, 10), 10);
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
