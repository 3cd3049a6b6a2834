//! The S3 scenario: closed-loop PutObject phases, then GetObject phases over the objects
//! just written, through the AWS SDK for Rust against the HTTP edge(s).
//!
//! The run makes its own bucket (`stratus-bench-<run id>`), writes each phase's objects
//! under their own prefix, deletes them after the phase's gets (so disk use stays at one
//! phase's objects), and deletes the bucket at the end.
//!
//! Memory stays bounded whatever the object size and concurrency: every PUT of a size
//! sends the same shared body (`ByteStream::from(Bytes)` clones a reference, not the
//! bytes), and GET bodies are streamed and dropped chunk by chunk, only counted.
//!
//! The SDK is configured as a user would (path-style, SigV4, its default request
//! checksums), except that it never retries (a failure is an `error`, not a hidden
//! second attempt) and its stalled-stream protection is off (the phase's own per-request
//! timeout bounds a request instead, so an overloaded node shows up as latency).
//! Client tasks are spread round-robin over the endpoints; each endpoint has one SDK
//! client with its own connection pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::Bytes;
use rand::Rng;
use tokio::task::JoinSet;

use crate::sdk::{error_text, AwsCredentials};
use crate::tally::{join_clients, ClientTally};

/// Every bucket this benchmark makes starts with this.
pub const BUCKET_PREFIX: &str = "stratus-bench-";

/// Most keys remembered from a put phase for the get phase that follows.
const KEY_POOL_LIMIT: usize = 100_000;

/// Pause after a failed request, so a down cluster does not turn into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

/// SDK clients for the edges, and this run's bucket.
#[derive(Debug, Clone)]
pub struct S3Target {
    clients: Vec<Client>,
    bucket: String,
}

impl S3Target {
    /// One SDK client per endpoint (`http://host:port`), and a fresh bucket name. Nothing
    /// is contacted yet: [`S3Target::create_bucket`] is the first request.
    pub fn new(
        endpoints: &[String],
        credentials: &AwsCredentials,
        connect_timeout: Duration,
    ) -> Self {
        let clients = endpoints
            .iter()
            .map(|endpoint| sdk_client(endpoint, credentials, connect_timeout))
            .collect();
        let run_id: u32 = rand::random();
        Self {
            clients,
            bucket: format!("{BUCKET_PREFIX}{run_id:08x}"),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Number of endpoints (SDK clients).
    pub fn endpoint_count(&self) -> usize {
        self.clients.len()
    }

    fn client_for(&self, task: usize) -> Client {
        self.clients[task % self.clients.len()].clone()
    }

    /// Creates the run's bucket (through the first endpoint).
    pub async fn create_bucket(&self) -> Result<(), String> {
        self.clients[0]
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }

    /// Deletes every object under `prefix` in the run's bucket; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, String> {
        let client = &self.clients[0];
        let mut deleted = 0u64;
        loop {
            // Listing again from the start after each batch: deleted keys no longer show.
            let listing = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(DELETE_BATCH as i32)
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            let keys: Vec<ObjectIdentifier> = listing
                .contents()
                .iter()
                .filter_map(|object| object.key())
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            let count = keys.len() as u64;
            let delete = Delete::builder()
                .set_objects(Some(keys))
                .quiet(true)
                .build()
                .map_err(|e| e.to_string())?;
            let answer = client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            if let Some(failed) = answer.errors().first() {
                return Err(format!(
                    "cannot delete {}: {}",
                    failed.key().unwrap_or("?"),
                    failed.message().unwrap_or("no message")
                ));
            }
            deleted += count;
        }
    }

    /// Deletes the run's objects and then its bucket.
    pub async fn delete_bucket(&self) -> Result<u64, String> {
        let deleted = self.delete_prefix("").await?;
        self.clients[0]
            .delete_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        Ok(deleted)
    }
}

fn sdk_client(endpoint: &str, credentials: &AwsCredentials, connect_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(credentials.region.clone()))
        .endpoint_url(endpoint.trim_end_matches('/'))
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &credentials.access_key,
            &credentials.secret_key,
            None,
            None,
            "stratus-bench",
        ))
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect_timeout)
                .build(),
        )
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// One phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct S3PhaseSpec {
    /// Concurrent client tasks, each with one request in flight.
    pub clients: usize,
    pub object_bytes: usize,
    pub duration: Duration,
    /// Cap on requests issued in the phase, over all clients.
    pub max_ops: u64,
    pub request_timeout: Duration,
}

/// What a phase measured.
#[derive(Debug, Clone, Default)]
pub struct S3Outcome {
    /// Latency of each successful request, to its last body byte.
    pub latencies: Vec<Duration>,
    /// For gets: time to the response headers of each successful request.
    pub first_byte: Vec<Duration>,
    /// Successful requests.
    pub ops: u64,
    /// Object bytes moved by successful requests.
    pub bytes: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub error_sample: Option<String>,
    /// Keys written by a put phase (up to a bound), for the get phase.
    pub written_keys: Vec<String>,
}

impl ClientTally for S3Outcome {
    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.first_byte.extend(other.first_byte);
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.errors += other.errors;
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
    /// Put `body` under a fresh random key below `prefix`.
    Put { prefix: Arc<str>, body: Bytes },
    /// Get one of `keys`, picked at random, expecting `object_bytes`.
    Get {
        keys: Arc<[String]>,
        object_bytes: u64,
    },
}

/// How one successful request turned out.
enum Answer {
    Written(String),
    Read { first_byte: Duration },
}

/// A closed-loop put phase of `body` (whose length should be `spec.object_bytes`) under
/// `prefix`.
pub async fn run_puts(
    target: &S3Target,
    spec: &S3PhaseSpec,
    prefix: &str,
    body: Bytes,
) -> S3Outcome {
    let operation = Operation::Put {
        prefix: prefix.into(),
        body,
    };
    run_phase(target, spec, operation).await
}

/// A closed-loop get phase over `keys` (objects of `spec.object_bytes` that should exist);
/// nothing to do without keys.
pub async fn run_gets(target: &S3Target, spec: &S3PhaseSpec, keys: Vec<String>) -> S3Outcome {
    if keys.is_empty() {
        return S3Outcome::default();
    }
    let operation = Operation::Get {
        keys: keys.into(),
        object_bytes: spec.object_bytes as u64,
    };
    run_phase(target, spec, operation).await
}

/// Limits shared by every client task of a phase.
struct PhaseLimits {
    bucket: String,
    deadline: Instant,
    issued: AtomicU64,
    max_ops: u64,
    request_timeout: Duration,
    keys_per_client: usize,
}

async fn run_phase(target: &S3Target, spec: &S3PhaseSpec, operation: Operation) -> S3Outcome {
    let clients = spec.clients.max(1);
    let started = Instant::now();
    let limits = Arc::new(PhaseLimits {
        bucket: target.bucket.clone(),
        deadline: started + spec.duration,
        issued: AtomicU64::new(0),
        max_ops: spec.max_ops,
        request_timeout: spec.request_timeout,
        keys_per_client: KEY_POOL_LIMIT.div_ceil(clients),
    });
    let mut tasks = JoinSet::new();
    for task in 0..clients {
        tasks.spawn(client_loop(
            target.client_for(task),
            operation.clone(),
            limits.clone(),
        ));
    }
    let mut total = join_clients(tasks, S3Outcome::default()).await;
    total.elapsed = started.elapsed();
    total
}

/// One client: issues requests back to back until the deadline or the phase's cap.
async fn client_loop(client: Client, operation: Operation, limits: Arc<PhaseLimits>) -> S3Outcome {
    let mut tally = S3Outcome::default();
    while Instant::now() < limits.deadline
        && limits.issued.fetch_add(1, Ordering::Relaxed) < limits.max_ops
    {
        let started = Instant::now();
        let result = tokio::time::timeout(
            limits.request_timeout,
            issue(&operation, &client, &limits.bucket, started),
        )
        .await;
        let error = match result {
            Ok(Ok((answer, bytes))) => {
                tally.latencies.push(started.elapsed());
                tally.ops += 1;
                tally.bytes += bytes;
                match answer {
                    Answer::Written(key) if tally.written_keys.len() < limits.keys_per_client => {
                        tally.written_keys.push(key)
                    }
                    Answer::Written(_) => {}
                    Answer::Read { first_byte } => tally.first_byte.push(first_byte),
                }
                continue;
            }
            Ok(Err(message)) => message,
            Err(_) => format!("no answer within {:?}", limits.request_timeout),
        };
        tally.errors += 1;
        tally.error_sample.get_or_insert(error);
        tokio::time::sleep(ERROR_PAUSE).await;
    }
    tally
}

/// One request; on success, its answer and the object bytes it moved.
async fn issue(
    operation: &Operation,
    client: &Client,
    bucket: &str,
    started: Instant,
) -> Result<(Answer, u64), String> {
    match operation {
        Operation::Put { prefix, body } => {
            let key = object_key(prefix, rand::thread_rng().gen());
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            Ok((Answer::Written(key), body.len() as u64))
        }
        Operation::Get { keys, object_bytes } => {
            let key = &keys[rand::thread_rng().gen_range(0..keys.len())];
            let output = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            let first_byte = started.elapsed();
            let mut body = output.body;
            let mut received = 0u64;
            while let Some(chunk) = body.next().await {
                received += chunk.map_err(|e| error_text(&e))?.len() as u64;
            }
            if received != *object_bytes {
                return Err(format!(
                    "GET {key}: body of {received} bytes, expected {object_bytes}"
                ));
            }
            Ok((Answer::Read { first_byte }, received))
        }
    }
}

/// A fresh key under `prefix`: fixed width, so keys spread evenly over the groups.
pub fn object_key(prefix: &str, random: u64) -> String {
    format!("{prefix}{random:016x}")
}

/// The prefix of one phase's objects: `<size>b-<clients>c/`.
pub fn phase_prefix(object_bytes: usize, clients: usize) -> String {
    format!("{object_bytes}b-{clients}c/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes() {
        assert_eq!(phase_prefix(4096, 16), "4096b-16c/");
        assert_eq!(object_key("4096b-16c/", 255), "4096b-16c/00000000000000ff");
    }

    #[test]
    fn bucket_names_are_valid_s3_names() {
        let credentials = AwsCredentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            region: "us-east-1".into(),
        };
        let target = S3Target::new(
            &[
                "http://127.0.0.1:1".to_string(),
                "http://127.0.0.1:2/".to_string(),
            ],
            &credentials,
            Duration::from_secs(1),
        );
        let bucket = target.bucket();
        assert!(bucket.starts_with(BUCKET_PREFIX));
        assert!((3..=63).contains(&bucket.len()));
        assert!(bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(target.endpoint_count(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_edge_is_counted_as_errors_not_a_hang() {
        let credentials = AwsCredentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            region: "us-east-1".into(),
        };
        // A port nobody listens on: bind, take the address, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let target = S3Target::new(
            &[format!("http://{addr}")],
            &credentials,
            Duration::from_millis(200),
        );
        let spec = S3PhaseSpec {
            clients: 2,
            object_bytes: 10,
            duration: Duration::from_millis(100),
            max_ops: 4,
            request_timeout: Duration::from_secs(2),
        };
        let outcome = run_puts(&target, &spec, "p/", Bytes::from_static(b"0123456789")).await;
        assert_eq!(outcome.ops, 0);
        assert!(outcome.errors >= 1 && outcome.errors <= 4);
        assert!(outcome.error_sample.is_some());
        assert!(outcome.written_keys.is_empty());
        assert!(target.create_bucket().await.is_err());
        let gets = run_gets(&target, &spec, Vec::new()).await;
        assert_eq!(gets.ops + gets.errors, 0);
    }
}
