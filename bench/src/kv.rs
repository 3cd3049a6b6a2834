//! The key-value scenario: closed-loop puts of fresh random keys under `bench/<run>/`,
//! then closed-loop gets of keys written in the same run.
//!
//! Requests go straight through the generated gRPC client, one attempt each, so the
//! numbers are the server's and failures show up as `errors` instead of hidden retries.
//! Client tasks are spread round-robin over the connections (endpoints x connections
//! per endpoint). A phase stops at its deadline or after `max_ops` requests; each request
//! is also bounded by `request_timeout`, so a phase never outlives
//! `duration + request_timeout`. Written keys are left in place (they all share the
//! run's prefix).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use stratus_proto::kv::{kv_client::KvClient, GetRequest, PutRequest};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::tally::{join_clients, ClientTally};

/// All keys this benchmark writes start with this.
pub const KEY_PREFIX: &str = "bench/";

/// Most keys remembered from a put phase for the get phase that follows.
const KEY_POOL_LIMIT: usize = 100_000;

/// Pause after a failed request, so a down cluster does not turn into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// An endpoint could not be reached before the benchmark started.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {endpoint}")]
pub struct ConnectError {
    pub endpoint: String,
    #[source]
    pub source: tonic::transport::Error,
}

/// Open connections to the cluster, and the key namespace of this run.
#[derive(Debug, Clone)]
pub struct KvTarget {
    channels: Vec<Channel>,
    run_id: u32,
}

impl KvTarget {
    /// Opens `connections_per_endpoint` (at least 1) HTTP/2 connections to every endpoint,
    /// eagerly, so that an unreachable cluster fails the run at once.
    pub async fn connect(
        endpoints: &[String],
        connections_per_endpoint: usize,
        connect_timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let mut channels = Vec::new();
        for endpoint in endpoints {
            let connect_error = |source| ConnectError {
                endpoint: endpoint.clone(),
                source,
            };
            let template = Endpoint::from_shared(endpoint.clone())
                .map_err(connect_error)?
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true);
            for _ in 0..connections_per_endpoint.max(1) {
                channels.push(template.connect().await.map_err(connect_error)?);
            }
        }
        Ok(Self {
            channels,
            run_id: rand::random(),
        })
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.channels.len()
    }

    /// The prefix under which this run writes: `bench/<run id>/`.
    pub fn run_prefix(&self) -> String {
        format!("{KEY_PREFIX}{:08x}/", self.run_id)
    }

    fn channel_for(&self, client: usize) -> Channel {
        self.channels[client % self.channels.len()].clone()
    }
}

/// One phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec {
    /// Concurrent client tasks, each with one request in flight.
    pub clients: usize,
    pub value_bytes: usize,
    pub duration: Duration,
    /// Cap on requests issued in the phase, over all clients.
    pub max_ops: u64,
    pub request_timeout: Duration,
}

/// What a phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseOutcome {
    /// Latency of each successful request.
    pub latencies: Vec<Duration>,
    /// Successful requests.
    pub ops: u64,
    pub errors: u64,
    /// Gets that found no value.
    pub misses: u64,
    pub elapsed: Duration,
    pub error_sample: Option<String>,
    /// Keys written by a put phase (up to a bound), for the get phase.
    pub written_keys: Vec<Vec<u8>>,
}

impl ClientTally for PhaseOutcome {
    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.ops += other.ops;
        self.errors += other.errors;
        self.misses += other.misses;
        self.written_keys.extend(other.written_keys);
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    fn task_failed(&mut self, error: String) {
        self.errors += 1;
        self.error_sample.get_or_insert(error);
    }
}

/// The request a phase repeats.
#[derive(Debug, Clone)]
enum Operation {
    /// Put `value` under a fresh random key below `prefix`.
    Put { prefix: Arc<str>, value: Arc<[u8]> },
    /// Get one of `keys`, picked at random.
    Get { keys: Arc<[Vec<u8>]> },
}

/// How one successful request turned out.
enum Answer {
    Written(Vec<u8>),
    Found,
    Missing,
}

/// Runs a closed-loop put phase.
pub async fn run_puts(target: &KvTarget, spec: &PhaseSpec) -> PhaseOutcome {
    let mut value = vec![0u8; spec.value_bytes];
    rand::thread_rng().fill_bytes(&mut value);
    let operation = Operation::Put {
        prefix: target.run_prefix().into(),
        value: value.into(),
    };
    run_phase(target, spec, operation).await
}

/// Runs a closed-loop get phase over `keys` (which should exist); nothing to do without keys.
pub async fn run_gets(target: &KvTarget, spec: &PhaseSpec, keys: Vec<Vec<u8>>) -> PhaseOutcome {
    if keys.is_empty() {
        return PhaseOutcome::default();
    }
    let operation = Operation::Get { keys: keys.into() };
    run_phase(target, spec, operation).await
}

/// Limits shared by every client task of a phase.
struct PhaseLimits {
    deadline: Instant,
    issued: AtomicU64,
    max_ops: u64,
    request_timeout: Duration,
    keys_per_client: usize,
}

async fn run_phase(target: &KvTarget, spec: &PhaseSpec, operation: Operation) -> PhaseOutcome {
    let clients = spec.clients.max(1);
    let started = Instant::now();
    let limits = Arc::new(PhaseLimits {
        deadline: started + spec.duration,
        issued: AtomicU64::new(0),
        max_ops: spec.max_ops,
        request_timeout: spec.request_timeout,
        keys_per_client: KEY_POOL_LIMIT.div_ceil(clients),
    });
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let kv = KvClient::new(target.channel_for(client));
        tasks.spawn(client_loop(kv, operation.clone(), limits.clone()));
    }
    let mut total = join_clients(tasks, PhaseOutcome::default()).await;
    total.elapsed = started.elapsed();
    total
}

/// One client: issues requests back to back until the deadline or the phase's cap.
async fn client_loop(
    mut kv: KvClient<Channel>,
    operation: Operation,
    limits: Arc<PhaseLimits>,
) -> PhaseOutcome {
    let mut rng = StdRng::from_entropy();
    let mut tally = PhaseOutcome::default();
    while Instant::now() < limits.deadline
        && limits.issued.fetch_add(1, Ordering::Relaxed) < limits.max_ops
    {
        let started = Instant::now();
        let result =
            tokio::time::timeout(limits.request_timeout, issue(&operation, &mut kv, &mut rng))
                .await;
        let error = match result {
            Ok(Ok(answer)) => {
                tally.latencies.push(started.elapsed());
                tally.ops += 1;
                match answer {
                    Answer::Written(key) if tally.written_keys.len() < limits.keys_per_client => {
                        tally.written_keys.push(key)
                    }
                    Answer::Missing => tally.misses += 1,
                    Answer::Written(_) | Answer::Found => {}
                }
                continue;
            }
            Ok(Err(status)) => format!("{:?}: {}", status.code(), status.message()),
            Err(_) => format!("no answer within {:?}", limits.request_timeout),
        };
        tally.errors += 1;
        tally.error_sample.get_or_insert(error);
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    tally
}

async fn issue(
    operation: &Operation,
    kv: &mut KvClient<Channel>,
    rng: &mut StdRng,
) -> Result<Answer, tonic::Status> {
    match operation {
        Operation::Put { prefix, value } => {
            let key = bench_key(prefix, rng.gen());
            kv.put(PutRequest {
                key: key.clone(),
                value: value.to_vec(),
                ..Default::default()
            })
            .await?;
            Ok(Answer::Written(key))
        }
        Operation::Get { keys } => {
            let key = keys[rng.gen_range(0..keys.len())].clone();
            let response = kv.get(GetRequest { key }).await?.into_inner();
            Ok(if response.found {
                Answer::Found
            } else {
                Answer::Missing
            })
        }
    }
}

/// A fresh key under `prefix`: fixed width, so keys spread evenly over the groups.
fn bench_key(prefix: &str, random: u64) -> Vec<u8> {
    format!("{prefix}{random:016x}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_bench_prefix() {
        let key = bench_key("bench/0000002a/", 255);
        assert_eq!(key, b"bench/0000002a/00000000000000ff");
    }
}
