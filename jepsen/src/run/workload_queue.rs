//! The `queue` and `fifo` workloads: clients drive SQS on the nodes' HTTP edges (the
//! official AWS SDK, a random edge per request) against one queue made for the run: a
//! standard queue, or a FIFO queue with [`FIFO_GROUPS`] message groups.
//!
//! Each client loops over: SendMessage of one fresh value (35%), SendMessageBatch of 2–10
//! (15%), and ReceiveMessage of up to 10 (50%; `WaitTimeSeconds` [`WAIT_SECONDS`],
//! `VisibilityTimeout` [`VISIBILITY_SECONDS`]) followed by deleting what it got, with one
//! DeleteMessageBatch or one DeleteMessage each; one receive in twenty keeps its messages
//! undeleted, as a consumer that crashed would, so they come back after the timeout. A
//! message's body is its value in decimal, unique in the run; a body that is not such a
//! number or does not match its `MD5OfBody` is recorded as [`GARBLED`], which no send
//! carries. On a FIFO queue a batch goes to one random group, and each message's
//! `MessageDeduplicationId` is its value: a send of unknown outcome is sent again (by the
//! next process, through another edge) with the same values and ids, up to
//! [`MAX_SEND_ATTEMPTS`] times within [`RETRY_WINDOW`] of the first (pausing
//! [`FAILURE_PAUSE`] times the attempt before each), well inside SQS's five-minute
//! deduplication window, so the queue must not hold a value twice. After a refused request
//! a client pauses [`FAILURE_PAUSE`], so a dead edge does not make it spin.
//!
//! After the faults are healed a drain receives and deletes until no receive has returned
//! anything for [`DRAIN_QUIET`] (longer than the visibility timeout, so messages left in
//! flight have come back) and GetQueueAttributes counts no message; it is recorded as a
//! `drain` operation around its receives and deletes, and is what lets the checker call an
//! acknowledged message that never came out lost.
//!
//! Checking: [`crate::checker::queue`] (and [`crate::checker::fifo`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::checker::queue::{self, QueueKind, QueueReport};
use crate::checker::CheckError;
use crate::history::{Delivery, History, MessageRef, Op, OpResult, Outcome, ProcessId, Value};
use crate::run::placement;
use crate::run::request::ClientContext;
use crate::run::s3_request::{bounded, S3Failure};
use crate::run::sqs_request::{outcome, SqsEdge, SqsProcess};
use crate::run::target::S3Access;
use crate::run::workload_register::FINAL_READER;

/// A body that is not a value the workload sent is recorded as this value.
pub const GARBLED: Value = u64::MAX;

/// How long a received message stays invisible to other receives.
pub const VISIBILITY_SECONDS: i32 = 5;

/// How long a receive waits for a message when the queue is empty.
pub const WAIT_SECONDS: i32 = 1;

/// Message groups of the FIFO queue.
pub const FIFO_GROUPS: usize = 3;

/// How many times a FIFO send of unknown outcome is tried in all.
pub const MAX_SEND_ATTEMPTS: usize = 5;

/// How long after its first attempt a FIFO send may still be retried.
pub const RETRY_WINDOW: Duration = Duration::from_secs(60);

/// How long a client waits after a refused request, and (times the attempt) before a FIFO
/// send is retried.
pub const FAILURE_PAUSE: Duration = Duration::from_millis(100);

/// How long the drain must see nothing before it stops.
pub const DRAIN_QUIET: Duration = Duration::from_secs(VISIBILITY_SECONDS as u64 + 5);

/// The process the drain operation is recorded under (its receives and deletes are
/// [`FINAL_READER`]'s).
pub const DRAINER: ProcessId = ProcessId(u64::MAX - 2);

/// The body `value` is sent with.
pub fn body(value: Value) -> String {
    value.to_string()
}

/// The value a received body holds, or [`GARBLED`] unless it is exactly [`body`] of a
/// value and matches the MD5 the queue sent with it.
pub fn decode(text: &str, md5_of_body: Option<&str>) -> Value {
    use md5::Digest;
    let digest: String = md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if md5_of_body.is_some_and(|m| !m.eq_ignore_ascii_case(&digest)) {
        return GARBLED;
    }
    text.parse::<Value>()
        .ok()
        .filter(|v| *v != GARBLED && body(*v) == text)
        .unwrap_or(GARBLED)
}

/// The data group a cluster of `data_groups` data groups keeps queue `name` in: the node's
/// placement (`cluster::routing::group_for_queue`: 64-bit FNV-1a of `queue/<name>`, modulo
/// the number of data groups, from 1), a published hash fixed for good. The nemesis aims
/// its leader-targeted faults at this group.
pub fn queue_group(name: &str, data_groups: u64) -> u64 {
    placement::queue_group(name, data_groups)
}

/// The name of a run's queue: unique per run start and seed, and a valid SQS name (at most
/// 80 characters; a FIFO queue's ends in `.fifo`).
pub fn queue_name(stem: &str, kind: QueueKind) -> String {
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(75)
        .collect();
    match kind {
        QueueKind::Standard => stem,
        QueueKind::Fifo => format!("{stem}.fifo"),
    }
}

/// What a received message is recorded as, with the receipt handle to delete it by.
fn delivery_of(message: &Message) -> (Delivery, Option<String>) {
    let attribute = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .cloned()
    };
    let delivery = Delivery {
        value: decode(message.body().unwrap_or_default(), message.md5_of_body()),
        message_id: message.message_id().unwrap_or_default().to_string(),
        group: attribute(MessageSystemAttributeName::MessageGroupId),
        sequence: attribute(MessageSystemAttributeName::SequenceNumber),
    };
    (delivery, message.receipt_handle().map(str::to_string))
}

/// A message a client received and may delete.
struct Held {
    reference: MessageRef,
    receipt: String,
}

/// Shared by every client of one run.
pub struct QueueWorkload {
    kind: QueueKind,
    name: String,
    access: S3Access,
    next_value: AtomicU64,
}

impl QueueWorkload {
    pub fn new(kind: QueueKind, name: String, access: S3Access) -> Arc<Self> {
        Arc::new(QueueWorkload {
            kind,
            name,
            access,
            next_value: AtomicU64::new(1),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn fresh_values(&self, count: usize) -> Vec<Value> {
        (0..count)
            .map(|_| self.next_value.fetch_add(1, Ordering::SeqCst))
            .collect()
    }

    fn first_process(&self, ctx: &ClientContext) -> SqsProcess {
        SqsProcess::first(ctx, &self.access, &self.name)
    }

    fn next_process(&self, ctx: &ClientContext, process: &SqsProcess) -> SqsProcess {
        process.next(ctx, &self.access, &self.name)
    }

    /// Creates the queue, trying the edges in turn until it exists or `deadline` passes.
    /// Not recorded: the history starts with the queue in place.
    pub async fn setup(&self, ctx: &ClientContext, deadline: Instant) -> Result<(), String> {
        let process = self.first_process(ctx);
        if !process.has_edges() {
            return Err("the target has no HTTP edge".into());
        }
        let mut attempt = 0;
        loop {
            let edge = process.edge_at(attempt);
            attempt += 1;
            let mut request = edge
                .client
                .create_queue()
                .queue_name(&self.name)
                .attributes(
                    QueueAttributeName::VisibilityTimeout,
                    VISIBILITY_SECONDS.to_string(),
                );
            if self.kind == QueueKind::Fifo {
                request = request.attributes(QueueAttributeName::FifoQueue, "true");
            }
            let created = bounded(ctx.op_timeout, async {
                request.send().await.map_err(|e| S3Failure::of(&e))
            })
            .await;
            match created {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("creating queue {}: {e:?}", self.name))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// One client: sends, receives and deletes through random edges until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(ctx.index as u64 * 7919));
        let mut process = self.first_process(&ctx);
        if !process.has_edges() {
            return Err("the target has no HTTP edge".into());
        }
        while Instant::now() < stop {
            let outcome = match rng.gen_range(0..100) {
                0..35 => self.send(&ctx, &mut process, &mut rng, 1, stop).await,
                35..50 => {
                    let count = rng.gen_range(2..=10);
                    self.send(&ctx, &mut process, &mut rng, count, stop).await
                }
                _ => self.consume(&ctx, &mut process, &mut rng).await,
            };
            // A refusal (a dead node's refused connection, mostly) comes back at once: do
            // not spin on it.
            if outcome == Outcome::Fail {
                tokio::time::sleep(FAILURE_PAUSE).await;
            }
        }
        Ok(())
    }

    /// Sends `count` fresh values (to one random group of a FIFO queue); a FIFO send of
    /// unknown outcome is sent again with the same values and deduplication ids, after a
    /// pause that grows with each attempt. Returns the last attempt's outcome.
    async fn send(
        &self,
        ctx: &ClientContext,
        process: &mut SqsProcess,
        rng: &mut StdRng,
        count: usize,
        stop: Instant,
    ) -> Outcome {
        let values = self.fresh_values(count);
        let group = match self.kind {
            QueueKind::Fifo => Some(format!("g{}", rng.gen_range(0..FIFO_GROUPS))),
            QueueKind::Standard => None,
        };
        let first = Instant::now();
        for attempt in 1..=MAX_SEND_ATTEMPTS {
            let outcome = self
                .send_once(ctx, process, process.edge(rng), &group, &values)
                .await;
            if outcome != Outcome::Info {
                return outcome;
            }
            *process = self.next_process(ctx, process);
            let retry = self.kind == QueueKind::Fifo
                && attempt < MAX_SEND_ATTEMPTS
                && first.elapsed() < RETRY_WINDOW
                && Instant::now() < stop;
            if !retry {
                return outcome;
            }
            tokio::time::sleep(FAILURE_PAUSE * attempt as u32).await;
        }
        Outcome::Info
    }

    /// One SendMessage (one value) or SendMessageBatch (more), recorded.
    async fn send_once(
        &self,
        ctx: &ClientContext,
        process: &SqsProcess,
        edge: &SqsEdge,
        group: &Option<String>,
        values: &[Value],
    ) -> Outcome {
        let id = ctx.recorder.invoke(
            process.id,
            Op::Send {
                group: group.clone(),
                values: values.to_vec(),
            },
        );
        let fifo = self.kind == QueueKind::Fifo;
        let result = if let [value] = values {
            let mut request = edge
                .client
                .send_message()
                .queue_url(&edge.url)
                .message_body(body(*value));
            if fifo {
                request = request
                    .set_message_group_id(group.clone())
                    .message_deduplication_id(value.to_string());
            }
            bounded(ctx.op_timeout, async {
                request.send().await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|_| Outcome::Ok(OpResult::Batch { refused: vec![] }))
        } else {
            let mut request = edge.client.send_message_batch().queue_url(&edge.url);
            for (position, value) in values.iter().enumerate() {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(format!("e{position}"))
                    .message_body(body(*value));
                if fifo {
                    entry = entry
                        .set_message_group_id(group.clone())
                        .message_deduplication_id(value.to_string());
                }
                match entry.build() {
                    Ok(entry) => request = request.entries(entry),
                    Err(e) => {
                        let _ = ctx.recorder.complete(id, Outcome::Fail);
                        eprintln!("building a batch entry: {e}");
                        return Outcome::Fail;
                    }
                }
            }
            bounded(ctx.op_timeout, async {
                request.send().await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|output| {
                let ids: Vec<&str> = output.successful().iter().map(|s| s.id()).collect();
                batch_outcome(
                    values.len(),
                    &ids,
                    output.failed().iter().map(|f| (f.id(), f.sender_fault())),
                )
            })
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(failure) => outcome(&failure),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// A receive, then deleting what it returned (unless this consumer "crashes").
    /// Returns the receive's outcome.
    async fn consume(
        &self,
        ctx: &ClientContext,
        process: &mut SqsProcess,
        rng: &mut StdRng,
    ) -> Outcome {
        let max = rng.gen_range(1..=10);
        let edge = process.edge(rng);
        let (result, held) = self.receive(ctx, process.id, edge, max).await;
        if result == Outcome::Info {
            *process = self.next_process(ctx, process);
            return result;
        }
        if held.is_empty() || rng.gen_range(0..20) == 0 {
            return result;
        }
        if held.len() > 1 && rng.gen_bool(0.5) {
            let edge = process.edge(rng);
            if self.delete(ctx, process.id, edge, &held).await == Outcome::Info {
                *process = self.next_process(ctx, process);
            }
            return result;
        }
        for one in held {
            let edge = process.edge(rng);
            if self.delete(ctx, process.id, edge, &[one]).await == Outcome::Info {
                *process = self.next_process(ctx, process);
            }
        }
        result
    }

    /// One ReceiveMessage of up to `max` messages, recorded; the messages it returned that
    /// carry a receipt handle.
    async fn receive(
        &self,
        ctx: &ClientContext,
        process: ProcessId,
        edge: &SqsEdge,
        max: i32,
    ) -> (Outcome, Vec<Held>) {
        let id = ctx.recorder.invoke(
            process,
            Op::Receive {
                visibility_ms: VISIBILITY_SECONDS as u64 * 1000,
            },
        );
        let request = edge
            .client
            .receive_message()
            .queue_url(&edge.url)
            .max_number_of_messages(max)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(WAIT_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let result = bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await;
        let (outcome, held) = match result {
            Ok(output) => {
                let mut deliveries = Vec::new();
                let mut held = Vec::new();
                for message in output.messages() {
                    let (delivery, receipt) = delivery_of(message);
                    if let Some(receipt) = receipt {
                        held.push(Held {
                            reference: MessageRef {
                                value: delivery.value,
                                message_id: delivery.message_id.clone(),
                            },
                            receipt,
                        });
                    }
                    deliveries.push(delivery);
                }
                (Outcome::Ok(OpResult::Received(deliveries)), held)
            }
            Err(failure) => (outcome(&failure), Vec::new()),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        (outcome, held)
    }

    /// One DeleteMessage (one message) or DeleteMessageBatch (more), recorded.
    async fn delete(
        &self,
        ctx: &ClientContext,
        process: ProcessId,
        edge: &SqsEdge,
        held: &[Held],
    ) -> Outcome {
        let refs = held.iter().map(|h| h.reference.clone()).collect();
        let id = ctx.recorder.invoke(process, Op::DeleteMessages(refs));
        let result = if let [one] = held {
            let request = edge
                .client
                .delete_message()
                .queue_url(&edge.url)
                .receipt_handle(&one.receipt)
                .send();
            bounded(ctx.op_timeout, async {
                request.await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|_| Outcome::Ok(OpResult::Batch { refused: vec![] }))
        } else {
            let mut request = edge.client.delete_message_batch().queue_url(&edge.url);
            for (position, h) in held.iter().enumerate() {
                let entry = DeleteMessageBatchRequestEntry::builder()
                    .id(format!("e{position}"))
                    .receipt_handle(&h.receipt)
                    .build();
                match entry {
                    Ok(entry) => request = request.entries(entry),
                    Err(e) => {
                        let _ = ctx.recorder.complete(id, Outcome::Fail);
                        eprintln!("building a batch entry: {e}");
                        return Outcome::Fail;
                    }
                }
            }
            let sent = request.send();
            bounded(ctx.op_timeout, async {
                sent.await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|output| {
                let ids: Vec<&str> = output.successful().iter().map(|s| s.id()).collect();
                batch_outcome(
                    held.len(),
                    &ids,
                    output.failed().iter().map(|f| (f.id(), f.sender_fault())),
                )
            })
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(failure) => outcome(&failure),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// GetQueueAttributes: the messages visible, in flight and delayed.
    async fn counts(&self, ctx: &ClientContext, edge: &SqsEdge) -> Result<[u64; 3], String> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let request = edge
            .client
            .get_queue_attributes()
            .queue_url(&edge.url)
            .set_attribute_names(Some(names.to_vec()))
            .send();
        let output = bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
        let mut counts = [0; 3];
        for (count, name) in counts.iter_mut().zip(&names) {
            *count = output
                .attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("GetQueueAttributes gave no {name}"))?;
        }
        Ok(counts)
    }

    /// After healing: receives and deletes (every request recorded, inside one `drain`
    /// operation) until nothing has come out for [`DRAIN_QUIET`] and the queue counts no
    /// message, or `deadline` passes.
    pub async fn drain(
        &self,
        ctx: &ClientContext,
        deadline: Instant,
    ) -> Result<DrainResult, String> {
        let drain = ctx.recorder.invoke(DRAINER, Op::Drain);
        let process = self.first_process(ctx);
        if !process.has_edges() {
            let _ = ctx.recorder.complete(drain, Outcome::Fail);
            return Err("the target has no HTTP edge".into());
        }
        let started = Instant::now();
        let mut result = DrainResult::default();
        let mut quiet_since = Instant::now();
        let mut attempt = 0;
        let mut last_counts = String::from("never asked");
        loop {
            if Instant::now() >= deadline {
                let _ = ctx.recorder.complete(drain, Outcome::Info);
                return Err(format!(
                    "the drain did not finish within {:.0?} ({} messages received; queue \
                     counts: {last_counts})",
                    started.elapsed(),
                    result.received
                ));
            }
            let edge = process.edge_at(attempt);
            let (outcome, held) = self.receive(ctx, FINAL_READER, edge, 10).await;
            match outcome {
                Outcome::Ok(_) if held.is_empty() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if quiet_since.elapsed() < DRAIN_QUIET {
                        continue;
                    }
                    match self.counts(ctx, edge).await {
                        Ok([0, 0, 0]) => break,
                        Ok([visible, in_flight, delayed]) => {
                            last_counts = format!(
                                "{visible} visible, {in_flight} in flight, {delayed} delayed"
                            );
                        }
                        Err(e) => last_counts = e,
                    }
                }
                Outcome::Ok(_) => {
                    quiet_since = Instant::now();
                    result.received += held.len();
                    // Failed deletes come back after the visibility timeout.
                    for chunk in held.chunks(10) {
                        let _ = self.delete(ctx, FINAL_READER, edge, chunk).await;
                    }
                }
                _ => {
                    // Whatever it may have received is in flight until the timeout.
                    quiet_since = Instant::now();
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let _ = ctx.recorder.complete(drain, Outcome::Ok(OpResult::Done));
        result.took = started.elapsed();
        Ok(result)
    }
}

/// What the drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainResult {
    pub received: usize,
    pub took: Duration,
}

/// A batch answer as an outcome: the entries it refused (their ids are `e<position>`),
/// or `info` when an entry is missing from both lists or failed by the server's fault
/// (nothing says whether that entry was applied).
fn batch_outcome<'a>(
    entries: usize,
    successful: &[&str],
    failed: impl Iterator<Item = (&'a str, bool)>,
) -> Outcome {
    let position = |id: &str| id.strip_prefix('e')?.parse::<usize>().ok();
    let mut answered = vec![false; entries];
    let mut refused = Vec::new();
    for id in successful {
        match position(id) {
            Some(p) if p < entries => answered[p] = true,
            _ => return Outcome::Info,
        }
    }
    for (id, sender_fault) in failed {
        match position(id) {
            Some(p) if p < entries && sender_fault => {
                answered[p] = true;
                refused.push(p);
            }
            _ => return Outcome::Info,
        }
    }
    if answered.iter().all(|a| *a) {
        refused.sort_unstable();
        Outcome::Ok(OpResult::Batch { refused })
    } else {
        Outcome::Info
    }
}

/// Runs the queue checker.
pub fn check(history: &History, kind: QueueKind) -> Result<QueueReport, CheckError> {
    queue::check(history, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_anything_else_is_garbled() {
        assert_eq!(decode(&body(42), None), 42);
        // md5("42")
        assert_eq!(decode("42", Some("a1d0c6e83f027327d8461063f4ac58a6")), 42);
        assert_eq!(
            decode("42", Some("00000000000000000000000000000000")),
            GARBLED
        );
        assert_eq!(decode("042", None), GARBLED);
        assert_eq!(decode("x", None), GARBLED);
        assert_eq!(decode(&u64::MAX.to_string(), None), GARBLED);
    }

    #[test]
    fn queues_are_placed_as_the_nodes_place_them() {
        // FNV-1a of "queue/", computed apart; and two queues of the runs in docs/jepsen.md.
        assert_eq!(queue_group("", u64::MAX), 1 + 0x5108_4ab4_1d27_b6b5);
        assert_eq!(queue_group("jepsen-20261123t220639520-94.fifo", 6), 6);
        assert_eq!(queue_group("jepsen-20261123t215120049-93", 6), 2);
        assert_eq!(queue_group("x", 0), 1);
    }

    #[test]
    fn queue_names_are_valid() {
        let fifo = queue_name("jepsen-20260102t030405678-7", QueueKind::Fifo);
        assert_eq!(fifo, "jepsen-20260102t030405678-7.fifo");
        let long = queue_name(&"x.y".repeat(40), QueueKind::Fifo);
        assert_eq!(long.len(), 80);
        assert!(long.starts_with("x-yx"));
        assert_eq!(queue_name("a", QueueKind::Standard), "a");
    }

    #[test]
    fn batch_answers_become_outcomes() {
        let none = std::iter::empty();
        assert_eq!(
            batch_outcome(2, &["e1", "e0"], none),
            Outcome::Ok(OpResult::Batch { refused: vec![] })
        );
        assert_eq!(
            batch_outcome(3, &["e0"], [("e2", true), ("e1", true)].into_iter()),
            Outcome::Ok(OpResult::Batch {
                refused: vec![1, 2]
            })
        );
        assert_eq!(batch_outcome(2, &["e0"], std::iter::empty()), Outcome::Info);
        assert_eq!(
            batch_outcome(2, &["e0"], [("e1", false)].into_iter()),
            Outcome::Info
        );
        assert_eq!(batch_outcome(1, &["x"], std::iter::empty()), Outcome::Info);
    }
}
