//! The SQS scenario: producers and consumers run together against one queue for a phase,
//! through the AWS SDK for Rust against the HTTP edge(s), and every message's end-to-end
//! latency (its producer starting the send → a consumer holding it) is measured.
//!
//! Each phase has its own queue (`stratus-bench-<run>-<type>-b<batch>-c<clients>`, with
//! `.fifo` for a FIFO queue), deleted after the phase. `clients` producer tasks and
//! `clients` consumer tasks run closed loops:
//!
//! - a producer sends `batch` messages (SendMessage for 1, SendMessageBatch for 10),
//!   each body starting with the time its send started (microseconds since the phase
//!   began, on this process's monotonic clock) and a unique id; on a FIFO queue the
//!   messages rotate over `message_groups` groups, with the id as deduplication id;
//! - a consumer long-polls ReceiveMessage for up to `batch` messages and deletes what it
//!   got (DeleteMessage each for 1, one DeleteMessageBatch for 10).
//!
//! Producers may run at most `max_backlog` messages ahead of the consumers (sent but not
//! yet received; by default one receive's worth per consumer). Without that bound,
//! producers that are cheaper than consumers (one request per batch against two) grow the
//! queue for the whole phase, and by Little's law the latency then measures the backlog
//! (backlog / throughput), not the queue. A first run with 1, 2 and 4 receives' worth per
//! consumer gave the same throughput and latencies growing with the bound, so the default
//! is the smallest: throughput is whatever the slower side sustains, and latency is the
//! pipeline's own (send, wait for a consumer's next receive, receive).
//!
//! Rates count what completed inside the phase's window (start to deadline): a message
//! counts end to end when its delete was acknowledged within it. Requests still in
//! flight at the deadline (a long poll ends within `wait_seconds`) are let finish and
//! not counted; what is left in the queue goes with it. The SDK never retries: a failed
//! request, or a failed entry of a batch, is an error.
//!
//! Client tasks are spread round-robin over the endpoints (producers first, then
//! consumers, so with one client of each they use different edges); each endpoint has one
//! SDK client with its own connection pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cpu::{CpuMeter, CpuUse};
use crate::sdk::{error_text, AwsCredentials};
use crate::tally::{join_clients, ClientTally};

/// Every queue this benchmark makes starts with this.
pub const QUEUE_PREFIX: &str = "stratus-bench-";

/// Pause after a failed request, so a down cluster does not turn into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Bytes of a body taken by its header: send time, a dash, the message id, a dash.
pub const BODY_HEADER_BYTES: usize = 16 + 1 + 16 + 1;

/// Standard or FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    Standard,
    Fifo,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Standard => "standard",
            QueueType::Fifo => "fifo",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "standard" | "std" => Ok(QueueType::Standard),
            "fifo" => Ok(QueueType::Fifo),
            other => Err(format!("{other:?} is not a queue type (standard, fifo)")),
        }
    }
}

/// SDK clients for the edges, and this run's id (in every queue name).
#[derive(Debug, Clone)]
pub struct SqsTarget {
    clients: Vec<Client>,
    run_id: u32,
}

impl SqsTarget {
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

    /// Number of endpoints (SDK clients).
    pub fn endpoint_count(&self) -> usize {
        self.clients.len()
    }

    fn client_for(&self, task: usize) -> Client {
        self.clients[task % self.clients.len()].clone()
    }

    /// The name of the queue of one phase of this run.
    pub fn queue_name(&self, queue_type: QueueType, batch: usize, clients: usize) -> String {
        queue_name(self.run_id, queue_type, batch, clients)
    }

    /// Creates a queue (through the first endpoint); returns its URL.
    pub async fn create_queue(&self, name: &str, queue_type: QueueType) -> Result<String, String> {
        let mut request = self.clients[0].create_queue().queue_name(name);
        if queue_type == QueueType::Fifo {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let created = request.send().await.map_err(|e| error_text(&e))?;
        created
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| format!("CreateQueue {name} answered no QueueUrl"))
    }

    /// Deletes a queue and whatever is left in it.
    pub async fn delete_queue(&self, url: &str) -> Result<(), String> {
        self.clients[0]
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e))
    }
}

fn sdk_client(endpoint: &str, credentials: &AwsCredentials, connect_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_sqs::Config::builder()
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

/// `stratus-bench-<run>-<type>-b<batch>-c<clients>`, ending in `.fifo` for FIFO.
pub fn queue_name(run_id: u32, queue_type: QueueType, batch: usize, clients: usize) -> String {
    let suffix = match queue_type {
        QueueType::Standard => "",
        QueueType::Fifo => ".fifo",
    };
    format!(
        "{QUEUE_PREFIX}{run_id:08x}-{}-b{batch}-c{clients}{suffix}",
        queue_type.as_str()
    )
}

/// One phase's shape.
#[derive(Debug, Clone, Copy)]
pub struct SqsPhaseSpec {
    pub queue_type: QueueType,
    /// Messages per send and most messages per receive: 1 (single-message calls) or up
    /// to 10 (the batch calls).
    pub batch: usize,
    /// Producer tasks, and as many consumer tasks.
    pub clients: usize,
    pub duration: Duration,
    /// Most messages sent but not yet received (at least `batch`).
    pub max_backlog: usize,
    /// FIFO: message groups the messages rotate over.
    pub message_groups: usize,
    /// Bytes of each message body (at least [`BODY_HEADER_BYTES`]).
    pub body_bytes: usize,
    /// WaitTimeSeconds of each receive.
    pub wait_seconds: i32,
    pub request_timeout: Duration,
    /// The server whose CPU the phase measures, up to its deadline.
    pub server_pid: Option<u32>,
}

/// What one kind of request did in a phase.
#[derive(Debug, Clone, Default)]
pub struct RequestTally {
    /// Requests answered within the phase's window.
    pub requests: u64,
    /// Messages they carried (sent, received or deleted).
    pub messages: u64,
    /// Latency of each successful request (receives: only those that returned messages).
    pub latencies: Vec<Duration>,
    /// Failed or timed-out requests, plus failed entries of batch requests.
    pub errors: u64,
}

impl RequestTally {
    fn merge(&mut self, other: RequestTally) {
        self.requests += other.requests;
        self.messages += other.messages;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }
}

/// What a phase measured.
#[derive(Debug, Clone, Default)]
pub struct SqsOutcome {
    /// End-to-end latency of every message received within the window.
    pub end_to_end: Vec<Duration>,
    pub sends: RequestTally,
    pub receives: RequestTally,
    pub deletes: RequestTally,
    /// Receives that came back without a message.
    pub empty_receives: u64,
    /// Received messages whose body was not one this phase sent.
    pub foreign_messages: u64,
    /// Messages completed (deleted) in the first half of the window: a queue whose
    /// operations slow down as messages pass through it shows a second half slower
    /// than the first.
    pub completed_first_half: u64,
    /// The window the rates are counted over.
    pub window: Duration,
    /// CPU used from the start to the deadline, and to the midpoint.
    pub cpu: CpuUse,
    pub cpu_first_half: CpuUse,
    pub error_sample: Option<String>,
}

impl ClientTally for SqsOutcome {
    fn merge(&mut self, other: Self) {
        self.end_to_end.extend(other.end_to_end);
        self.sends.merge(other.sends);
        self.receives.merge(other.receives);
        self.deletes.merge(other.deletes);
        self.empty_receives += other.empty_receives;
        self.foreign_messages += other.foreign_messages;
        self.completed_first_half += other.completed_first_half;
        if self.error_sample.is_none() {
            self.error_sample = other.error_sample;
        }
    }

    /// A failed client's counts are lost; its error is only a sample.
    fn task_failed(&mut self, error: String) {
        self.note_error(error);
    }
}

impl SqsOutcome {
    /// Messages whose delete was acknowledged within the window.
    pub fn completed(&self) -> u64 {
        self.deletes.messages
    }

    pub fn errors(&self) -> u64 {
        self.sends.errors + self.receives.errors + self.deletes.errors
    }

    fn note_error(&mut self, error: String) {
        self.error_sample.get_or_insert(error);
    }
}

/// State shared by the tasks of a phase.
struct Phase {
    url: String,
    spec: SqsPhaseSpec,
    /// Time zero of the send stamps.
    started: Instant,
    deadline: Instant,
    /// Halfway to the deadline.
    midpoint: Instant,
    /// Permits = messages producers may still send before consumers catch up.
    backlog: Semaphore,
    next_id: AtomicU64,
}

impl Phase {
    fn within_window(&self, at: Instant) -> bool {
        at <= self.deadline
    }
}

/// Runs one phase against the queue at `url` (of `spec.queue_type`).
pub async fn run_phase(target: &SqsTarget, url: &str, spec: &SqsPhaseSpec) -> SqsOutcome {
    let clients = spec.clients.max(1);
    let batch = spec.batch.clamp(1, 10);
    let spec = SqsPhaseSpec {
        clients,
        batch,
        max_backlog: spec.max_backlog.max(batch),
        message_groups: spec.message_groups.max(1),
        body_bytes: spec.body_bytes.max(BODY_HEADER_BYTES),
        ..*spec
    };
    let meter = CpuMeter::start(spec.server_pid);
    let started = Instant::now();
    let phase = Arc::new(Phase {
        url: url.to_string(),
        spec,
        started,
        deadline: started + spec.duration,
        midpoint: started + spec.duration / 2,
        backlog: Semaphore::new(spec.max_backlog),
        next_id: AtomicU64::new(0),
    });
    let mut tasks = JoinSet::new();
    for task in 0..clients {
        tasks.spawn(produce(target.client_for(task), phase.clone()));
    }
    for task in 0..clients {
        tasks.spawn(consume(target.client_for(clients + task), phase.clone()));
    }
    tokio::time::sleep_until(phase.midpoint.into()).await;
    let cpu_first_half = meter.stop();
    tokio::time::sleep_until(phase.deadline.into()).await;
    let cpu = meter.stop();
    let total = SqsOutcome {
        window: spec.duration,
        cpu,
        cpu_first_half,
        ..SqsOutcome::default()
    };
    join_clients(tasks, total).await
}

/// The body of message `id`, whose send started `sent_after` after the phase began.
pub fn message_body(sent_after: Duration, id: u64, body_bytes: usize) -> String {
    let micros = u64::try_from(sent_after.as_micros()).unwrap_or(u64::MAX);
    let mut body = format!("{micros:016x}-{id:016x}-");
    let len = body_bytes.max(body.len());
    body.extend(std::iter::repeat_n('x', len - body.len()));
    body
}

/// When a body's send started, after the phase began; `None` for a body not made by
/// [`message_body`].
pub fn sent_after(body: &str) -> Option<Duration> {
    let stamp = body.get(..16)?;
    if body.as_bytes().get(16) != Some(&b'-') {
        return None;
    }
    u64::from_str_radix(stamp, 16)
        .ok()
        .map(Duration::from_micros)
}

/// One producer: sends batches back to back until the deadline, never more than the
/// backlog allows ahead of the consumers.
async fn produce(client: Client, phase: Arc<Phase>) -> SqsOutcome {
    let spec = &phase.spec;
    let batch = spec.batch;
    let mut tally = SqsOutcome::default();
    loop {
        let permits = tokio::select! {
            permits = phase.backlog.acquire_many(batch as u32) => permits,
            _ = tokio::time::sleep_until(phase.deadline.into()) => break,
        };
        match permits {
            // Handed back by a consumer's receive, not by dropping this.
            Ok(permits) => permits.forget(),
            Err(_) => break,
        }
        let started = Instant::now();
        if !phase.within_window(started) {
            break;
        }
        let bodies: Vec<(u64, String)> = (0..batch)
            .map(|_| {
                let id = phase.next_id.fetch_add(1, Ordering::Relaxed);
                let body = message_body(started - phase.started, id, spec.body_bytes);
                (id, body)
            })
            .collect();
        let result =
            tokio::time::timeout(spec.request_timeout, send(&client, &phase, bodies)).await;
        let answered = Instant::now();
        // A failed request is one error; a batch answered with failed entries, one per entry.
        let (sent, errors, error) = match result {
            Ok(Ok((sent, failed, error))) => (sent, failed as u64, error),
            Ok(Err(error)) => (0, 1, Some(error)),
            Err(_) => (
                0,
                1,
                Some(format!("send: no answer within {:?}", spec.request_timeout)),
            ),
        };
        // Messages that were not sent give their room back.
        phase.backlog.add_permits(batch.saturating_sub(sent));
        tally.sends.errors += errors;
        if let Some(error) = error {
            tally.note_error(error);
        }
        if sent > 0 && phase.within_window(answered) {
            tally.sends.requests += 1;
            tally.sends.messages += sent as u64;
            tally.sends.latencies.push(answered - started);
        }
        if sent == 0 {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    tally
}

/// One send request of `bodies`; answers (sent, failed, first error).
async fn send(
    client: &Client,
    phase: &Phase,
    bodies: Vec<(u64, String)>,
) -> Result<(usize, usize, Option<String>), String> {
    let fifo = phase.spec.queue_type == QueueType::Fifo;
    let groups = phase.spec.message_groups as u64;
    let group_of = |id: u64| format!("g{}", id % groups);
    if bodies.len() == 1 {
        let (id, body) = bodies.into_iter().next().ok_or("no body")?;
        let mut request = client
            .send_message()
            .queue_url(&phase.url)
            .message_body(body);
        if fifo {
            request = request
                .message_group_id(group_of(id))
                .message_deduplication_id(id.to_string());
        }
        request
            .send()
            .await
            .map_err(|e| format!("SendMessage: {}", error_text(&e)))?;
        return Ok((1, 0, None));
    }
    let count = bodies.len();
    let entries = bodies
        .into_iter()
        .enumerate()
        .map(|(i, (id, body))| {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body);
            if fifo {
                entry = entry
                    .message_group_id(group_of(id))
                    .message_deduplication_id(id.to_string());
            }
            entry.build().map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answer = client
        .send_message_batch()
        .queue_url(&phase.url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| format!("SendMessageBatch: {}", error_text(&e)))?;
    let sent = answer.successful().len();
    let error = answer.failed().first().map(|f| {
        format!(
            "SendMessageBatch entry {}: {} {}",
            f.id(),
            f.code(),
            f.message().unwrap_or("")
        )
    });
    Ok((sent, count.saturating_sub(sent), error))
}

/// One consumer: receives and deletes until the deadline.
async fn consume(client: Client, phase: Arc<Phase>) -> SqsOutcome {
    let spec = &phase.spec;
    let mut tally = SqsOutcome::default();
    while phase.within_window(Instant::now()) {
        let started = Instant::now();
        let result = tokio::time::timeout(
            spec.request_timeout,
            client
                .receive_message()
                .queue_url(&phase.url)
                .max_number_of_messages(spec.batch as i32)
                .wait_time_seconds(spec.wait_seconds)
                .send(),
        )
        .await;
        let received_at = Instant::now();
        let messages = match result {
            Ok(Ok(answer)) => answer.messages.unwrap_or_default(),
            Ok(Err(e)) => {
                tally.receives.errors += 1;
                tally.note_error(format!("ReceiveMessage: {}", error_text(&e)));
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
            Err(_) => {
                tally.receives.errors += 1;
                tally.note_error(format!(
                    "ReceiveMessage: no answer within {:?}",
                    spec.request_timeout
                ));
                continue;
            }
        };
        // Received messages no longer count against the backlog, counted or not.
        phase.backlog.add_permits(messages.len());
        if !phase.within_window(received_at) {
            break;
        }
        tally.receives.requests += 1;
        if messages.is_empty() {
            tally.empty_receives += 1;
            continue;
        }
        tally.receives.messages += messages.len() as u64;
        tally.receives.latencies.push(received_at - started);
        for message in &messages {
            match message.body().and_then(sent_after) {
                Some(after) => tally
                    .end_to_end
                    .push(received_at.saturating_duration_since(phase.started + after)),
                None => tally.foreign_messages += 1,
            }
        }
        delete(&client, &phase, &messages, &mut tally).await;
    }
    tally
}

/// Deletes `messages` (one DeleteMessage each for batch 1, one DeleteMessageBatch
/// otherwise), counting what was acknowledged within the window.
async fn delete(client: &Client, phase: &Phase, messages: &[Message], tally: &mut SqsOutcome) {
    let spec = &phase.spec;
    let handles: Vec<&str> = messages.iter().filter_map(|m| m.receipt_handle()).collect();
    let missing = messages.len() - handles.len();
    if missing > 0 {
        tally.deletes.errors += missing as u64;
        tally.note_error("ReceiveMessage: a message without a receipt handle".into());
    }
    if spec.batch == 1 {
        for handle in handles {
            let started = Instant::now();
            let result = tokio::time::timeout(
                spec.request_timeout,
                client
                    .delete_message()
                    .queue_url(&phase.url)
                    .receipt_handle(handle)
                    .send(),
            )
            .await;
            let answered = Instant::now();
            match result {
                Ok(Ok(_)) if phase.within_window(answered) => {
                    tally.deletes.requests += 1;
                    tally.deletes.messages += 1;
                    if answered <= phase.midpoint {
                        tally.completed_first_half += 1;
                    }
                    tally.deletes.latencies.push(answered - started);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tally.deletes.errors += 1;
                    tally.note_error(format!("DeleteMessage: {}", error_text(&e)));
                }
                Err(_) => {
                    tally.deletes.errors += 1;
                    tally.note_error(format!(
                        "DeleteMessage: no answer within {:?}",
                        spec.request_timeout
                    ));
                }
            }
        }
        return;
    }
    if handles.is_empty() {
        return;
    }
    let entries = handles
        .iter()
        .enumerate()
        .map(|(i, handle)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(*handle)
                .build()
        })
        .collect::<Result<Vec<_>, _>>();
    let entries = match entries {
        Ok(entries) => entries,
        Err(e) => {
            tally.deletes.errors += handles.len() as u64;
            tally.note_error(format!("DeleteMessageBatch: {e}"));
            return;
        }
    };
    let started = Instant::now();
    let result = tokio::time::timeout(
        spec.request_timeout,
        client
            .delete_message_batch()
            .queue_url(&phase.url)
            .set_entries(Some(entries))
            .send(),
    )
    .await;
    let answered = Instant::now();
    match result {
        Ok(Ok(answer)) => {
            if let Some(f) = answer.failed().first() {
                tally.deletes.errors += answer.failed().len() as u64;
                tally.note_error(format!(
                    "DeleteMessageBatch entry {}: {} {}",
                    f.id(),
                    f.code(),
                    f.message().unwrap_or("")
                ));
            }
            if phase.within_window(answered) {
                tally.deletes.requests += 1;
                let deleted = answer.successful().len() as u64;
                tally.deletes.messages += deleted;
                if answered <= phase.midpoint {
                    tally.completed_first_half += deleted;
                }
                tally.deletes.latencies.push(answered - started);
            }
        }
        Ok(Err(e)) => {
            tally.deletes.errors += 1;
            tally.note_error(format!("DeleteMessageBatch: {}", error_text(&e)));
        }
        Err(_) => {
            tally.deletes.errors += 1;
            tally.note_error(format!(
                "DeleteMessageBatch: no answer within {:?}",
                spec.request_timeout
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_their_send_time() {
        let after = Duration::from_micros(1_234_567);
        let body = message_body(after, 42, 64);
        assert_eq!(body.len(), 64);
        assert!(body.starts_with("000000000012d687-000000000000002a-x"));
        assert_eq!(sent_after(&body), Some(after));
        // A body shorter than its header is the header.
        assert_eq!(message_body(after, 1, 0).len(), BODY_HEADER_BYTES);
        assert_eq!(sent_after("hello"), None);
        assert_eq!(sent_after("zzzzzzzzzzzzzzzz-"), None);
        assert_eq!(sent_after("0000000000000001x"), None);
        assert_eq!(sent_after("é"), None);
    }

    #[test]
    fn queue_names_are_valid_sqs_names() {
        for (queue_type, batch, clients) in
            [(QueueType::Standard, 1, 1), (QueueType::Fifo, 10, 4096)]
        {
            let name = queue_name(u32::MAX, queue_type, batch, clients);
            let stem = name.strip_suffix(".fifo").unwrap_or(&name);
            assert!(name.len() <= 80, "{name}");
            assert!(stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(name.ends_with(".fifo"), queue_type == QueueType::Fifo);
        }
        assert_eq!(
            queue_name(0x2a, QueueType::Fifo, 10, 64),
            "stratus-bench-0000002a-fifo-b10-c64.fifo"
        );
    }

    #[test]
    fn queue_types() {
        assert_eq!(QueueType::parse("FIFO"), Ok(QueueType::Fifo));
        assert_eq!(QueueType::parse("standard"), Ok(QueueType::Standard));
        assert!(QueueType::parse("lifo").is_err());
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
        let target = SqsTarget::new(
            &[format!("http://{addr}")],
            &credentials,
            Duration::from_millis(200),
        );
        assert!(target.create_queue("q", QueueType::Standard).await.is_err());
        let spec = SqsPhaseSpec {
            queue_type: QueueType::Fifo,
            batch: 10,
            clients: 2,
            duration: Duration::from_millis(200),
            max_backlog: 40,
            message_groups: 4,
            body_bytes: 100,
            wait_seconds: 1,
            request_timeout: Duration::from_secs(2),
            server_pid: None,
        };
        let started = Instant::now();
        let url = format!("http://{addr}/000000000000/q.fifo");
        let outcome = run_phase(&target, &url, &spec).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(outcome.completed(), 0);
        assert!(outcome.sends.errors >= 1);
        assert!(outcome.receives.errors >= 1);
        assert!(outcome.error_sample.is_some());
        assert!(outcome.end_to_end.is_empty());
        assert_eq!(outcome.window, spec.duration);
    }
}
