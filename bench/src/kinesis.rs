//! The Kinesis scenario, through the AWS SDK for Rust against the HTTP edge(s):
//!
//! - **ingest**: `producers` tasks run closed loops of PutRecords, `batch` records of
//!   `record_bytes` each with a random partition key (so the records spread over every
//!   shard), on a fresh stream of `shards` shards, for a phase. Records per second and
//!   MB/s count the records acknowledged within the phase (a record the answer lists as
//!   failed is an error, not a record).
//! - **catch-up**: right after an ingest phase, one reader per shard reads the stream back
//!   from TRIM_HORIZON (GetRecords of up to 10,000 records, following NextShardIterator)
//!   until a page comes back empty with MillisBehindLatest 0: everything the phase wrote,
//!   as a consumer that fell behind reads it. Records per second and MB/s from the first
//!   GetShardIterator to the last reader done.
//! - **latency**: one reader per shard polls an iterator taken at LATEST, sleeping
//!   `poll_sleep` after each empty page, while one producer puts single records
//!   (PutRecord) at a fixed rate, each carrying the time its put started; a record's
//!   latency is from its put starting to the GetRecords that returned it answering.
//!
//! Each phase has its own stream (`stratus-bench-<run>-<what>-s<shards>...`), deleted
//! after the phase. Producer and reader tasks are spread round-robin over the endpoints;
//! each endpoint has one SDK client with its own connection pool. The SDK never retries:
//! a failed request counts as an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use aws_sdk_kinesis::Client;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::cpu::{CpuMeter, CpuUse};
use crate::sdk::{error_text, AwsCredentials};

/// Every stream this benchmark makes starts with this.
pub const STREAM_PREFIX: &str = "stratus-bench-";

/// Most records one GetRecords returns (Kinesis's limit).
pub const MAX_GET_RECORDS: i32 = 10_000;

/// Bytes of a record taken by its header: the time its put started, in hex microseconds.
pub const RECORD_HEADER_BYTES: usize = 16;

/// Pause after a failed request, so a down cluster does not turn into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// How long a new stream may take to become ACTIVE.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// SDK clients for the edges, and this run's id (in every stream name).
#[derive(Debug, Clone)]
pub struct KinesisTarget {
    clients: Vec<Client>,
    run_id: u32,
}

impl KinesisTarget {
    /// One SDK client per endpoint (`http://host:port`). Nothing is contacted yet.
    pub fn new(
        endpoints: &[String],
        credentials: &AwsCredentials,
        connect_timeout: Duration,
    ) -> Self {
        let clients = endpoints
            .iter()
            .map(|endpoint| sdk_client(endpoint, credentials, connect_timeout))
            .collect();
        Self {
            clients,
            run_id: rand::random(),
        }
    }

    pub fn endpoint_count(&self) -> usize {
        self.clients.len()
    }

    fn client_for(&self, task: usize) -> Client {
        self.clients[task % self.clients.len()].clone()
    }

    /// The name of one phase's stream.
    pub fn stream_name(&self, what: &str, shards: usize, batch: usize, producers: usize) -> String {
        format!(
            "{STREAM_PREFIX}{:08x}-{what}-s{shards}-b{batch}-c{producers}",
            self.run_id
        )
    }

    /// Creates a stream of `shards` shards (through the first endpoint), waits until it is
    /// ACTIVE, and returns its shard ids.
    pub async fn create_stream(&self, name: &str, shards: usize) -> Result<Vec<String>, String> {
        let client = &self.clients[0];
        client
            .create_stream()
            .stream_name(name)
            .shard_count(i32::try_from(shards).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("CreateStream {name}: {}", error_text(&e)))?;
        let deadline = Instant::now() + CREATE_TIMEOUT;
        loop {
            let summary = client
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .map_err(|e| format!("DescribeStreamSummary {name}: {}", error_text(&e)))?;
            let active = summary
                .stream_description_summary()
                .is_some_and(|s| *s.stream_status() == StreamStatus::Active);
            if active {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("stream {name} not ACTIVE after {CREATE_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(token) => client.list_shards().next_token(token),
                None => client.list_shards().stream_name(name),
            };
            let page = request
                .send()
                .await
                .map_err(|e| format!("ListShards {name}: {}", error_text(&e)))?;
            ids.extend(page.shards().iter().map(|s| s.shard_id().to_string()));
            match page.next_token() {
                Some(next) if !page.shards().is_empty() => token = Some(next.to_string()),
                _ => return Ok(ids),
            }
        }
    }

    /// Deletes a stream and its records.
    pub async fn delete_stream(&self, name: &str) -> Result<(), String> {
        self.clients[0]
            .delete_stream()
            .stream_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("DeleteStream {name}: {}", error_text(&e)))
    }
}

fn sdk_client(endpoint: &str, credentials: &AwsCredentials, connect_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(credentials.region.clone()))
        .endpoint_url(endpoint.trim_end_matches('/'))
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

/// A record's data: the time its put started after `origin` (16 hex digits of
/// microseconds), then filler up to `record_bytes`.
pub fn record_data(sent_after: Duration, record_bytes: usize) -> Vec<u8> {
    let micros = u64::try_from(sent_after.as_micros()).unwrap_or(u64::MAX);
    let mut data = format!("{micros:016x}").into_bytes();
    data.resize(record_bytes.max(RECORD_HEADER_BYTES), b'x');
    data
}

/// When a record's put started, after the phase's origin; `None` for data not made by
/// [`record_data`].
pub fn sent_after(data: &[u8]) -> Option<Duration> {
    let stamp = std::str::from_utf8(data.get(..RECORD_HEADER_BYTES)?).ok()?;
    u64::from_str_radix(stamp, 16)
        .ok()
        .map(Duration::from_micros)
}

/// A random partition key: 16 hex digits, so the MD5 hash keys spread evenly.
fn partition_key(rng: &mut impl Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// One ingest phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct IngestSpec {
    pub shards: usize,
    /// Records per PutRecords (1..=500).
    pub batch: usize,
    pub producers: usize,
    pub record_bytes: usize,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub server_pid: Option<u32>,
}

/// What an ingest phase measured.
#[derive(Debug, Clone, Default)]
pub struct IngestOutcome {
    /// PutRecords answered within the window, and the records they appended.
    pub requests: u64,
    pub records: u64,
    /// Latency of each PutRecords answered within the window.
    pub latencies: Vec<Duration>,
    /// Records appended in all, the ones answered after the deadline included: what a
    /// catch-up read must find.
    pub records_appended: u64,
    /// Failed or timed-out requests.
    pub request_errors: u64,
    /// Requests that timed out: their records may or may not have been appended.
    pub unknown_requests: u64,
    /// Records an answered PutRecords listed as failed.
    pub failed_records: u64,
    pub window: Duration,
    pub cpu: CpuUse,
    pub error_sample: Option<String>,
}

impl IngestOutcome {
    fn merge(&mut self, other: IngestOutcome) {
        self.requests += other.requests;
        self.records += other.records;
        self.latencies.extend(other.latencies);
        self.records_appended += other.records_appended;
        self.request_errors += other.request_errors;
        self.unknown_requests += other.unknown_requests;
        self.failed_records += other.failed_records;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    fn note_error(&mut self, error: String) {
        self.error_sample.get_or_insert(error);
    }
}

/// Runs one ingest phase against `stream`.
pub async fn run_ingest(target: &KinesisTarget, stream: &str, spec: &IngestSpec) -> IngestOutcome {
    let meter = CpuMeter::start(spec.server_pid);
    let started = Instant::now();
    let deadline = started + spec.duration;
    // Every record carries the same bytes; each request copies them into its own blobs.
    let data: Arc<Vec<u8>> = Arc::new(record_data(Duration::ZERO, spec.record_bytes));
    let mut tasks = JoinSet::new();
    for task in 0..spec.producers.max(1) {
        let client = target.client_for(task);
        let (stream, data, spec) = (stream.to_string(), data.clone(), *spec);
        tasks.spawn(async move { produce(client, stream, data, spec, deadline).await });
    }
    tokio::time::sleep_until(deadline.into()).await;
    let mut total = IngestOutcome {
        window: spec.duration,
        cpu: meter.stop(),
        ..IngestOutcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(e) => total.note_error(format!("producer task failed: {e}")),
        }
    }
    total
}

/// One producer: PutRecords back to back until the deadline.
async fn produce(
    client: Client,
    stream: String,
    data: Arc<Vec<u8>>,
    spec: IngestSpec,
    deadline: Instant,
) -> IngestOutcome {
    let mut tally = IngestOutcome::default();
    let mut rng = rand::rngs::StdRng::from_entropy();
    while Instant::now() < deadline {
        let entries: Result<Vec<PutRecordsRequestEntry>, String> = (0..spec.batch.max(1))
            .map(|_| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(data.as_slice()))
                    .partition_key(partition_key(&mut rng))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                tally.request_errors += 1;
                tally.note_error(format!("building a PutRecords entry: {e}"));
                break;
            }
        };
        let started = Instant::now();
        let request = client
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send();
        let result = tokio::time::timeout(spec.request_timeout, request).await;
        let answered = Instant::now();
        match result {
            Ok(Ok(answer)) => {
                let failed = answer
                    .records()
                    .iter()
                    .filter(|r| r.error_code().is_some())
                    .count() as u64;
                let appended = answer.records().len() as u64 - failed;
                tally.records_appended += appended;
                tally.failed_records += failed;
                if let Some(first) = answer.records().iter().find(|r| r.error_code().is_some()) {
                    tally.note_error(format!(
                        "PutRecords record: {} {}",
                        first.error_code().unwrap_or(""),
                        first.error_message().unwrap_or("")
                    ));
                }
                if answered <= deadline {
                    tally.requests += 1;
                    tally.records += appended;
                    tally.latencies.push(answered - started);
                }
            }
            Ok(Err(e)) => {
                tally.request_errors += 1;
                tally.note_error(format!("PutRecords: {}", error_text(&e)));
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                tally.request_errors += 1;
                tally.unknown_requests += 1;
                tally.note_error(format!(
                    "PutRecords: no answer within {:?}",
                    spec.request_timeout
                ));
            }
        }
    }
    tally
}

/// What a catch-up read measured.
#[derive(Debug, Clone, Default)]
pub struct CatchUpOutcome {
    pub readers: usize,
    pub records: u64,
    /// Record data bytes read.
    pub bytes: u64,
    /// GetRecords answered, and the latency of each.
    pub requests: u64,
    pub latencies: Vec<Duration>,
    /// Failed or timed-out GetShardIterator and GetRecords.
    pub errors: u64,
    /// Shards whose reader gave up before catching up.
    pub unfinished_shards: u64,
    /// From the first request to the last reader done.
    pub window: Duration,
    pub cpu: CpuUse,
    pub error_sample: Option<String>,
}

impl CatchUpOutcome {
    fn merge(&mut self, other: CatchUpOutcome) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.requests += other.requests;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.unfinished_shards += other.unfinished_shards;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    fn note_error(&mut self, error: String) {
        self.error_sample.get_or_insert(error);
    }
}

/// Reads every shard of `stream` from TRIM_HORIZON to the latest record, one reader per
/// shard, giving up on a shard after `give_up` without progress.
pub async fn run_catch_up(
    target: &KinesisTarget,
    stream: &str,
    shards: &[String],
    request_timeout: Duration,
    give_up: Duration,
    server_pid: Option<u32>,
) -> CatchUpOutcome {
    let meter = CpuMeter::start(server_pid);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (task, shard) in shards.iter().enumerate() {
        let client = target.client_for(task);
        let (stream, shard) = (stream.to_string(), shard.clone());
        tasks.spawn(async move {
            read_to_latest(client, stream, shard, request_timeout, give_up).await
        });
    }
    let mut total = CatchUpOutcome {
        readers: shards.len(),
        ..CatchUpOutcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(e) => total.note_error(format!("reader task failed: {e}")),
        }
    }
    total.window = started.elapsed();
    total.cpu = meter.stop();
    total
}

/// An iterator for `shard`: from its start, or after the last record read.
async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    after: Option<&str>,
    kind: ShardIteratorType,
    request_timeout: Duration,
) -> Result<String, String> {
    let request = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard);
    let request = match after {
        Some(after) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(after),
        None => request.shard_iterator_type(kind),
    };
    match tokio::time::timeout(request_timeout, request.send()).await {
        Ok(Ok(answer)) => answer
            .shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| format!("GetShardIterator {shard}: no iterator")),
        Ok(Err(e)) => Err(format!("GetShardIterator {shard}: {}", error_text(&e))),
        Err(_) => Err(format!(
            "GetShardIterator {shard}: no answer within {request_timeout:?}"
        )),
    }
}

/// One catch-up reader.
async fn read_to_latest(
    client: Client,
    stream: String,
    shard: String,
    request_timeout: Duration,
    give_up: Duration,
) -> CatchUpOutcome {
    let mut tally = CatchUpOutcome::default();
    let mut next: Option<String> = None;
    let mut last: Option<String> = None;
    let mut progress = Instant::now();
    loop {
        if progress.elapsed() > give_up {
            tally.unfinished_shards += 1;
            tally.note_error(format!("{shard}: no progress for {give_up:?}"));
            return tally;
        }
        let it = match next.take() {
            Some(it) => it,
            None => match iterator(
                &client,
                &stream,
                &shard,
                last.as_deref(),
                ShardIteratorType::TrimHorizon,
                request_timeout,
            )
            .await
            {
                Ok(it) => it,
                Err(e) => {
                    tally.errors += 1;
                    tally.note_error(e);
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let request = client
            .get_records()
            .shard_iterator(it)
            .limit(MAX_GET_RECORDS)
            .send();
        match tokio::time::timeout(request_timeout, request).await {
            Ok(Ok(page)) => {
                tally.requests += 1;
                tally.latencies.push(started.elapsed());
                let records = page.records();
                tally.records += records.len() as u64;
                tally.bytes += records
                    .iter()
                    .map(|r| r.data().as_ref().len() as u64)
                    .sum::<u64>();
                if let Some(record) = records.last() {
                    last = Some(record.sequence_number().to_string());
                    progress = Instant::now();
                }
                let behind = page.millis_behind_latest().unwrap_or(0);
                match page.next_shard_iterator() {
                    Some(it) if !(records.is_empty() && behind == 0) => next = Some(it.to_string()),
                    // Caught up, or the shard is closed and read to its end.
                    _ => return tally,
                }
            }
            Ok(Err(e)) => {
                tally.errors += 1;
                tally.note_error(format!("GetRecords {shard}: {}", error_text(&e)));
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                tally.errors += 1;
                tally.note_error(format!(
                    "GetRecords {shard}: no answer within {request_timeout:?}"
                ));
            }
        }
    }
}

/// One latency phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct LatencySpec {
    pub shards: usize,
    /// Records per second the producer puts (one PutRecord each).
    pub records_per_s: f64,
    pub record_bytes: usize,
    pub duration: Duration,
    /// How long a reader sleeps after a page that came back empty.
    pub poll_sleep: Duration,
    pub request_timeout: Duration,
    pub server_pid: Option<u32>,
}

/// What a latency phase measured.
#[derive(Debug, Clone, Default)]
pub struct LatencyOutcome {
    /// Put started -> GetRecords returned it, for every record read.
    pub put_to_get: Vec<Duration>,
    /// PutRecord latency.
    pub puts: Vec<Duration>,
    pub records_put: u64,
    pub records_read: u64,
    /// Records read whose data was not a stamped record of this phase.
    pub foreign_records: u64,
    pub get_requests: u64,
    pub empty_pages: u64,
    pub errors: u64,
    pub window: Duration,
    pub cpu: CpuUse,
    pub error_sample: Option<String>,
}

impl LatencyOutcome {
    fn merge(&mut self, other: LatencyOutcome) {
        self.put_to_get.extend(other.put_to_get);
        self.puts.extend(other.puts);
        self.records_put += other.records_put;
        self.records_read += other.records_read;
        self.foreign_records += other.foreign_records;
        self.get_requests += other.get_requests;
        self.empty_pages += other.empty_pages;
        self.errors += other.errors;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    fn note_error(&mut self, error: String) {
        self.error_sample.get_or_insert(error);
    }
}

/// Readers at LATEST on every shard, then one producer at a fixed rate; readers keep
/// reading for `grace` after the producer stops, for the last records.
pub async fn run_latency(
    target: &KinesisTarget,
    stream: &str,
    shards: &[String],
    spec: &LatencySpec,
) -> LatencyOutcome {
    let grace = Duration::from_secs(2).min(spec.duration);
    let mut total = LatencyOutcome::default();
    // Every reader holds its LATEST iterator before the first put.
    let mut iterators = Vec::new();
    for (task, shard) in shards.iter().enumerate() {
        let client = target.client_for(task);
        match iterator(
            &client,
            stream,
            shard,
            None,
            ShardIteratorType::Latest,
            spec.request_timeout,
        )
        .await
        {
            Ok(it) => iterators.push((client, shard.clone(), it)),
            Err(e) => {
                total.errors += 1;
                total.note_error(e);
            }
        }
    }
    let meter = CpuMeter::start(spec.server_pid);
    let origin = Instant::now();
    let deadline = origin + spec.duration;
    let mut tasks = JoinSet::new();
    for (client, shard, it) in iterators {
        let (stream, spec) = (stream.to_string(), *spec);
        tasks.spawn(async move {
            poll(client, stream, shard, it, spec, origin, deadline + grace).await
        });
    }
    let producer = {
        let client = target.client_for(shards.len());
        let (stream, spec) = (stream.to_string(), *spec);
        tokio::spawn(async move { put_at_rate(client, stream, spec, origin, deadline).await })
    };
    match producer.await {
        Ok(tally) => total.merge(tally),
        Err(e) => total.note_error(format!("producer task failed: {e}")),
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => total.merge(tally),
            Err(e) => total.note_error(format!("reader task failed: {e}")),
        }
    }
    total.window = spec.duration;
    total.cpu = meter.stop();
    total
}

/// The producer of a latency phase: one PutRecord every 1 / rate seconds.
async fn put_at_rate(
    client: Client,
    stream: String,
    spec: LatencySpec,
    origin: Instant,
    deadline: Instant,
) -> LatencyOutcome {
    let mut tally = LatencyOutcome::default();
    let period = Duration::from_secs_f64(1.0 / spec.records_per_s.max(0.001));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        ticks.tick().await;
        let started = Instant::now();
        if started >= deadline {
            return tally;
        }
        let request = client
            .put_record()
            .stream_name(&stream)
            .partition_key(partition_key(&mut rng))
            .data(Blob::new(record_data(started - origin, spec.record_bytes)))
            .send();
        match tokio::time::timeout(spec.request_timeout, request).await {
            Ok(Ok(_)) => {
                tally.records_put += 1;
                tally.puts.push(started.elapsed());
            }
            Ok(Err(e)) => {
                tally.errors += 1;
                tally.note_error(format!("PutRecord: {}", error_text(&e)));
            }
            Err(_) => {
                tally.errors += 1;
                tally.note_error(format!(
                    "PutRecord: no answer within {:?}",
                    spec.request_timeout
                ));
            }
        }
    }
}

/// A reader of a latency phase: GetRecords until `until`, sleeping after empty pages.
async fn poll(
    client: Client,
    stream: String,
    shard: String,
    first: String,
    spec: LatencySpec,
    origin: Instant,
    until: Instant,
) -> LatencyOutcome {
    let mut tally = LatencyOutcome::default();
    let mut next = Some(first);
    let mut last: Option<String> = None;
    while Instant::now() < until {
        let it = match next.take() {
            Some(it) => it,
            None => match iterator(
                &client,
                &stream,
                &shard,
                last.as_deref(),
                ShardIteratorType::Latest,
                spec.request_timeout,
            )
            .await
            {
                Ok(it) => it,
                Err(e) => {
                    tally.errors += 1;
                    tally.note_error(e);
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let request = client.get_records().shard_iterator(it).send();
        match tokio::time::timeout(spec.request_timeout, request).await {
            Ok(Ok(page)) => {
                let answered = Instant::now();
                tally.get_requests += 1;
                next = page.next_shard_iterator().map(str::to_string);
                let records = page.records();
                if let Some(record) = records.last() {
                    last = Some(record.sequence_number().to_string());
                }
                for record in records {
                    tally.records_read += 1;
                    match sent_after(record.data().as_ref()) {
                        Some(after) => tally
                            .put_to_get
                            .push(answered.saturating_duration_since(origin + after)),
                        None => tally.foreign_records += 1,
                    }
                }
                if records.is_empty() {
                    tally.empty_pages += 1;
                    tokio::time::sleep(spec.poll_sleep).await;
                }
            }
            Ok(Err(e)) => {
                tally.errors += 1;
                tally.note_error(format!("GetRecords {shard}: {}", error_text(&e)));
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                tally.errors += 1;
                tally.note_error(format!(
                    "GetRecords {shard}: no answer within {:?}",
                    spec.request_timeout
                ));
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_their_put_time_and_their_size() {
        let data = record_data(Duration::from_micros(0x1234), 1024);
        assert_eq!(data.len(), 1024);
        assert_eq!(sent_after(&data), Some(Duration::from_micros(0x1234)));
        // Smaller than the header: the header is kept whole.
        assert_eq!(record_data(Duration::ZERO, 4).len(), RECORD_HEADER_BYTES);
        assert_eq!(sent_after(b"not a stamp at all"), None);
        assert_eq!(sent_after(b"12"), None);
    }

    #[test]
    fn partition_keys_are_sixteen_hex_digits() {
        let mut rng = rand::rngs::StdRng::from_entropy();
        let key = partition_key(&mut rng);
        assert_eq!(key.len(), 16);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn stream_names_say_what_each_phase_is() {
        let target = KinesisTarget {
            clients: Vec::new(),
            run_id: 0xab,
        };
        let name = target.stream_name("ingest", 16, 500, 64);
        assert_eq!(name, "stratus-bench-000000ab-ingest-s16-b500-c64");
        // Kinesis stream names: at most 128 of [a-zA-Z0-9_.-].
        assert!(name.len() <= 128);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
}
