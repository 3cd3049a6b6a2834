//! The queue service: SQS operations over the queue's data group, wire-agnostic.
//!
//! It checks what can be checked without the queue (characters, attribute formats, batch
//! rules), stamps message ids and receipt nonces, and proposes one command per request;
//! checks that depend on the queue's settings run inside the command (`state`), so a
//! request costs one Raft round trip. Long polls wait here for the queue's group to apply
//! a send (`signals`, or a replica's through `grpc_queue` when this node is not one), and
//! messages a receive found over their maxReceiveCount are moved on (`redrive`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::errors::QueueError;
use super::model::{
    check_batch_id, check_message_attributes, check_tags, check_text, check_token,
    MessageAttributes, QueueConfig, QueueName, MAX_BATCH_ENTRIES, MAX_DELAY_SECONDS,
    MAX_MESSAGE_BYTES, MAX_RECEIVE_MESSAGES, MAX_VISIBILITY_TIMEOUT_SECONDS, MAX_WAIT_SECONDS,
};
use super::receipt;
use super::signals::QueueSignals;
use super::state::{
    Counts, MoveTask, NewMessage, QueueCommand, QueueQuery, QueueQueryReply, QueueRecord,
    QueueReply, QueueResult, Receipt, SentMessage, StoredMessage,
};
use crate::cluster::routing::group_for_queue;
use crate::cluster::Directory;
use crate::data_group::{DataCommand, DataQuery};
use crate::raft::codec;
use crate::raft::host::GroupHost;
use crate::raft::router::{RouteError, Router};
use crate::raft::GroupId;

/// A failure of a queue request: the queue's own error, or the cluster's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Surely not applied: the request may be sent again.
    #[error("the queue's group is unavailable: {0}")]
    Unavailable(String),
    /// May or may not have been applied.
    #[error("{0}")]
    OutcomeUnknown(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RouteError> for ServiceError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::UnknownGroup(_) => ServiceError::Internal(e.to_string()),
            RouteError::OutcomeUnknown(_) => ServiceError::OutcomeUnknown(e.to_string()),
            _ => ServiceError::Unavailable(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// SendMessage's input besides the queue.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub body: Option<String>,
    pub attributes: MessageAttributes,
    pub trace_header: Option<String>,
    pub delay_seconds: Option<u32>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

impl SendRequest {
    /// Bytes this entry counts toward a batch's 1 MiB.
    pub fn size_bytes(&self) -> usize {
        self.body.as_ref().map_or(0, String::len)
            + self
                .attributes
                .iter()
                .map(|(k, v)| v.size_bytes(k))
                .sum::<usize>()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReceiveRequest {
    pub max_messages: Option<u32>,
    pub visibility_timeout_seconds: Option<u32>,
    pub wait_seconds: Option<u32>,
    pub attempt_id: Option<String>,
}

/// A received message with its receipt handle.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub message: StoredMessage,
    pub receipt_handle: String,
    /// FIFO queues: the message's sequence number.
    pub sequence_number: Option<String>,
}

/// A queue as GetQueueAttributes sees it.
#[derive(Debug, Clone)]
pub struct QueueView {
    pub record: QueueRecord,
    pub counts: Counts,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random id in UUID v4 form: SQS's message ids (and the edge's request ids).
pub fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// FIFO sequence numbers are decimal strings of 20 digits that grow with every send.
pub fn sequence_number(seq: u64) -> String {
    format!("{seq:020}")
}

/// SQS's batch rules: 1–10 entries, valid and distinct ids, at most 1 MiB in all.
pub fn check_batch(ids: &[&str], total_bytes: usize, entry_name: &str) -> Result<()> {
    if ids.is_empty() {
        return Err(QueueError::EmptyBatchRequest(entry_name.to_string()).into());
    }
    if ids.len() > MAX_BATCH_ENTRIES {
        return Err(QueueError::TooManyEntriesInBatchRequest(ids.len()).into());
    }
    let mut seen = BTreeSet::new();
    for id in ids {
        check_batch_id(id)?;
        if !seen.insert(*id) {
            return Err(QueueError::BatchEntryIdsNotDistinct(id.to_string()).into());
        }
    }
    if total_bytes > MAX_MESSAGE_BYTES as usize {
        return Err(QueueError::BatchRequestTooLong(total_bytes).into());
    }
    Ok(())
}

/// Propose `command` to the queue's `group` and decode its result; with a `request_id`
/// the command is applied at most once however often it is sent.
pub(super) async fn propose(
    router: &Router,
    group: GroupId,
    command: QueueCommand,
    request_id: Option<u128>,
) -> Result<QueueReply> {
    let envelope = codec::encode(&DataCommand::Queue(Box::new(command)));
    let bytes = match request_id {
        Some(id) => router.write_once(group, envelope, id).await?,
        None => router.write(group, envelope).await?,
    };
    let result: QueueResult = codec::decode(&bytes).map_err(ServiceError::Internal)?;
    Ok(result?)
}

/// How an edge that does not replicate a queue's group waits for its sends.
#[async_trait::async_trait]
pub trait RemoteWait: Send + Sync + 'static {
    /// Ask a replica of `group` to wait for `queue`'s send counter to pass `seen`; false
    /// when no replica could be asked (the caller then waits a short while itself).
    async fn wait(
        &self,
        group: GroupId,
        voters: &[u64],
        queue: &QueueName,
        seen: u64,
        timeout: Duration,
    ) -> bool;
}

pub struct QueueService {
    router: Arc<Router>,
    directory: Arc<Directory>,
    host: Arc<GroupHost>,
    signals: Arc<QueueSignals>,
    remote: Arc<dyn RemoteWait>,
}

impl QueueService {
    pub fn new(
        router: Arc<Router>,
        directory: Arc<Directory>,
        host: Arc<GroupHost>,
        signals: Arc<QueueSignals>,
        remote: Arc<dyn RemoteWait>,
    ) -> Self {
        QueueService {
            router,
            directory,
            host,
            signals,
            remote,
        }
    }

    pub fn group_of(&self, queue: &QueueName) -> GroupId {
        group_for_queue(queue.as_str(), self.directory.data_groups)
    }

    pub(super) async fn command_in(
        &self,
        group: GroupId,
        command: QueueCommand,
    ) -> Result<QueueReply> {
        propose(&self.router, group, command, None).await
    }

    async fn command(&self, command: QueueCommand) -> Result<QueueReply> {
        self.command_in(self.group_of(command.queue()), command)
            .await
    }

    pub(super) async fn query_in(
        &self,
        group: GroupId,
        query: QueueQuery,
    ) -> Result<QueueQueryReply> {
        let bytes = self
            .router
            .read(group, codec::encode(&DataQuery::Queue(query)))
            .await?;
        codec::decode(&bytes).map_err(ServiceError::Internal)
    }

    fn unexpected(reply: impl std::fmt::Debug) -> ServiceError {
        ServiceError::Internal(format!(
            "unexpected reply from the queue's group: {reply:?}"
        ))
    }

    /// The queue's record and counts now, or QueueDoesNotExist.
    pub async fn get(&self, queue: &QueueName) -> Result<QueueView> {
        let query = QueueQuery::Get {
            name: queue.clone(),
            now_ms: now_ms(),
        };
        match self.query_in(self.group_of(queue), query).await? {
            QueueQueryReply::Queue(Some(found)) => {
                let (record, counts) = *found;
                Ok(QueueView { record, counts })
            }
            QueueQueryReply::Queue(None) => Err(QueueError::QueueDoesNotExist.into()),
            other => Err(Self::unexpected(other)),
        }
    }

    /// Check a redrive policy's dead-letter queue: it exists, is of the same type and
    /// lets this queue use it.
    async fn check_dead_letter_target(
        &self,
        source: &QueueName,
        config: &QueueConfig,
    ) -> Result<()> {
        let Some(policy) = &config.redrive_policy else {
            return Ok(());
        };
        let invalid = |why: &str| {
            ServiceError::Queue(QueueError::invalid_value(
                "RedrivePolicy",
                policy.dead_letter_queue.arn(),
                why.to_string(),
            ))
        };
        let target = match self.get(&policy.dead_letter_queue).await {
            Ok(view) => view.record,
            Err(ServiceError::Queue(QueueError::QueueDoesNotExist)) => {
                return Err(invalid("Dead letter target does not exist."))
            }
            Err(e) => return Err(e),
        };
        if target.config.fifo != config.fifo {
            return Err(invalid(
                "Dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard queue.",
            ));
        }
        if !target.config.allows_source(source) {
            return Err(invalid(
                "The dead-letter queue's RedriveAllowPolicy does not allow this queue as a source.",
            ));
        }
        Ok(())
    }

    pub async fn create_queue(
        &self,
        name: &QueueName,
        attributes: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<()> {
        let config = QueueConfig::for_create(name, attributes)?;
        check_tags(&tags)?;
        self.check_dead_letter_target(name, &config).await?;
        let command = QueueCommand::Create {
            name: name.clone(),
            config,
            given: attributes.keys().cloned().collect(),
            tags,
        };
        match self.command(command).await? {
            QueueReply::Created { .. } => Ok(()),
            other => Err(Self::unexpected(other)),
        }
    }

    pub async fn delete_queue(&self, name: &QueueName) -> Result<()> {
        self.done(QueueCommand::Delete { name: name.clone() }).await
    }

    async fn done(&self, command: QueueCommand) -> Result<()> {
        match self.command(command).await? {
            QueueReply::Done => Ok(()),
            other => Err(Self::unexpected(other)),
        }
    }

    pub async fn set_attributes(
        &self,
        name: &QueueName,
        attributes: BTreeMap<String, String>,
    ) -> Result<()> {
        if attributes.is_empty() {
            return Err(QueueError::MissingParameter("Attributes".into()).into());
        }
        // Check the new settings against the current ones before proposing, so a bad
        // redrive target is refused with the same error as at creation.
        if attributes.contains_key("RedrivePolicy") {
            let mut config = self.get(name).await?.record.config;
            for (k, v) in &attributes {
                config.apply(k, v)?;
            }
            self.check_dead_letter_target(name, &config).await?;
        }
        self.done(QueueCommand::SetAttributes {
            name: name.clone(),
            attributes,
        })
        .await
    }

    pub async fn tag(&self, name: &QueueName, tags: BTreeMap<String, String>) -> Result<()> {
        check_tags(&tags)?;
        self.done(QueueCommand::Tag {
            name: name.clone(),
            tags,
        })
        .await
    }

    pub async fn untag(&self, name: &QueueName, keys: Vec<String>) -> Result<()> {
        self.done(QueueCommand::Untag {
            name: name.clone(),
            keys,
        })
        .await
    }

    /// Names of every queue matching, from every data group, in order, after `after`;
    /// the second value says whether more follow.
    pub async fn list(
        &self,
        query: impl Fn(Option<String>, u32) -> QueueQuery,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<QueueName>, bool)> {
        let mut all = Vec::new();
        for group in 1..=self.directory.data_groups {
            match self
                .query_in(group, query(after.clone(), limit + 1))
                .await?
            {
                QueueQueryReply::Names(names) => all.extend(names),
                other => return Err(Self::unexpected(other)),
            }
        }
        all.sort();
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        Ok((all, more))
    }

    pub async fn send(
        &self,
        queue: &QueueName,
        requests: Vec<SendRequest>,
        sender_id: &str,
    ) -> Result<Vec<std::result::Result<SentMessage, QueueError>>> {
        let mut results: Vec<Option<std::result::Result<SentMessage, QueueError>>> =
            vec![None; requests.len()];
        let mut accepted = Vec::new();
        let mut positions = Vec::new();
        for (i, r) in requests.into_iter().enumerate() {
            match check_send(r, sender_id) {
                Ok(m) => {
                    accepted.push(m);
                    positions.push(i);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        if !accepted.is_empty() {
            let command = QueueCommand::Send {
                name: queue.clone(),
                messages: accepted,
            };
            match self.command(command).await? {
                QueueReply::Sent(sent) => {
                    for (i, r) in positions.into_iter().zip(sent) {
                        results[i] = Some(r);
                    }
                }
                other => return Err(Self::unexpected(other)),
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(QueueError::invalid_value("Entry", "", "not processed"))))
            .collect())
    }

    pub async fn receive(
        &self,
        queue: &QueueName,
        request: ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>> {
        let max = request.max_messages.unwrap_or(1);
        if !(1..=MAX_RECEIVE_MESSAGES).contains(&max) {
            return Err(QueueError::invalid_value(
                "MaxNumberOfMessages",
                max,
                "Must be between 1 and 10, if provided.",
            )
            .into());
        }
        if let Some(v) = request.visibility_timeout_seconds {
            if v > MAX_VISIBILITY_TIMEOUT_SECONDS {
                return Err(QueueError::invalid_value(
                    "VisibilityTimeout",
                    v,
                    "Must be between 0 and 43200, if provided.",
                )
                .into());
            }
        }
        if let Some(w) = request.wait_seconds {
            if w > MAX_WAIT_SECONDS {
                return Err(QueueError::invalid_value(
                    "WaitTimeSeconds",
                    w,
                    "Must be >= 0 and <= 20, if provided.",
                )
                .into());
            }
        }
        if let Some(id) = &request.attempt_id {
            check_token("ReceiveRequestAttemptId", id)?;
        }
        let group = self.group_of(queue);
        let started = Instant::now();
        // A receive that names no wait takes the queue's, which the first attempt reports.
        let mut deadline = request
            .wait_seconds
            .map(|w| started + Duration::from_secs(u64::from(w)));
        let attempt_id = request.attempt_id.filter(|_| queue.is_fifo());
        loop {
            let command = QueueCommand::Receive {
                name: queue.clone(),
                max,
                visibility_timeout_seconds: request.visibility_timeout_seconds,
                nonces: (0..max).map(|_| rand::random::<u64>() | 1).collect(),
                attempt_id: attempt_id.clone(),
            };
            let received = match self.command_in(group, command).await? {
                QueueReply::Received(r) => r,
                other => return Err(Self::unexpected(other)),
            };
            if !received.dead.is_empty() {
                super::redrive::spawn_moves(self.mover(), received.dead);
            }
            let deadline = *deadline.get_or_insert_with(|| {
                started + Duration::from_secs(u64::from(received.queue_wait_seconds))
            });
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !received.messages.is_empty() || remaining.is_zero() {
                return Ok(received
                    .messages
                    .into_iter()
                    .map(|d| ReceivedMessage {
                        receipt_handle: receipt::encode(
                            queue,
                            Receipt {
                                seq: d.seq,
                                nonce: d.message.receipt_nonce,
                            },
                        ),
                        sequence_number: queue.is_fifo().then(|| sequence_number(d.seq)),
                        message: d.message,
                    })
                    .collect());
            }
            let until_visible = received
                .next_visible_ms
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms()).max(1)))
                .unwrap_or(remaining);
            self.wait_for_send(
                group,
                queue,
                received.next_seq,
                remaining.min(until_visible),
            )
            .await;
        }
    }

    async fn wait_for_send(&self, group: GroupId, queue: &QueueName, seen: u64, timeout: Duration) {
        if self.host.group(group).is_some() {
            self.signals.wait_past(group, queue, seen, timeout).await;
            return;
        }
        let voters = self.directory.voters(group).unwrap_or_default().to_vec();
        if !self.remote.wait(group, &voters, queue, seen, timeout).await {
            // No replica answered: try again shortly rather than sleep through a send.
            tokio::time::sleep(timeout.min(Duration::from_millis(250))).await;
        }
    }

    pub(super) fn mover(&self) -> super::redrive::Mover {
        super::redrive::Mover::new(self.router.clone(), self.directory.clone())
    }

    /// Delete messages by receipt handle; one result per handle.
    pub async fn delete_messages(
        &self,
        queue: &QueueName,
        handles: &[String],
    ) -> Result<Vec<std::result::Result<(), QueueError>>> {
        let mut results = vec![Ok(()); handles.len()];
        let mut receipts = Vec::new();
        let mut positions = Vec::new();
        for (i, h) in handles.iter().enumerate() {
            match receipt::decode(queue, h) {
                Ok(r) => {
                    receipts.push(r);
                    positions.push(i);
                }
                Err(e) => results[i] = Err(e),
            }
        }
        if receipts.is_empty() {
            // Still answer QueueDoesNotExist for a missing queue.
            self.get(queue).await?;
            return Ok(results);
        }
        let command = QueueCommand::DeleteMessages {
            name: queue.clone(),
            receipts,
        };
        self.per_entry(command, positions, results).await
    }

    pub async fn change_visibility(
        &self,
        queue: &QueueName,
        entries: &[(String, u32)],
    ) -> Result<Vec<std::result::Result<(), QueueError>>> {
        let mut results = vec![Ok(()); entries.len()];
        let mut checked = Vec::new();
        let mut positions = Vec::new();
        for (i, (h, timeout)) in entries.iter().enumerate() {
            match receipt::decode(queue, h) {
                Ok(r) => {
                    checked.push((r, *timeout));
                    positions.push(i);
                }
                Err(e) => results[i] = Err(e),
            }
        }
        if checked.is_empty() {
            self.get(queue).await?;
            return Ok(results);
        }
        let command = QueueCommand::ChangeVisibility {
            name: queue.clone(),
            entries: checked,
        };
        self.per_entry(command, positions, results).await
    }

    async fn per_entry(
        &self,
        command: QueueCommand,
        positions: Vec<usize>,
        mut results: Vec<std::result::Result<(), QueueError>>,
    ) -> Result<Vec<std::result::Result<(), QueueError>>> {
        match self.command(command).await? {
            QueueReply::PerEntry(replies) => {
                for (i, r) in positions.into_iter().zip(replies) {
                    results[i] = r;
                }
                Ok(results)
            }
            other => Err(Self::unexpected(other)),
        }
    }

    pub async fn purge(&self, queue: &QueueName) -> Result<()> {
        self.done(QueueCommand::Purge {
            name: queue.clone(),
        })
        .await
    }

    /// Queues whose RedrivePolicy names `dead_letter_queue`.
    pub async fn dead_letter_sources(
        &self,
        dead_letter_queue: &QueueName,
        after: Option<String>,
        limit: u32,
    ) -> Result<(Vec<QueueName>, bool)> {
        self.get(dead_letter_queue).await?;
        let dlq = dead_letter_queue.clone();
        self.list(
            move |after, limit| QueueQuery::DeadLetterSources {
                dead_letter_queue: dlq.clone(),
                after,
                limit,
            },
            after,
            limit,
        )
        .await
    }

    /// Start moving `source`'s messages to `destination` (or each back to the queue it was
    /// dead-lettered from). Returns the task handle.
    pub async fn start_move_task(
        &self,
        source: &QueueName,
        destination: Option<QueueName>,
        max_per_second: Option<u32>,
    ) -> Result<String> {
        if let Some(rate) = max_per_second {
            if !(1..=500).contains(&rate) {
                return Err(QueueError::invalid_value(
                    "MaxNumberOfMessagesPerSecond",
                    rate,
                    "Must be between 1 and 500.",
                )
                .into());
            }
        }
        let (sources, _) = self.dead_letter_sources(source, None, 1).await?;
        if sources.is_empty() {
            return Err(QueueError::invalid_value(
                "SourceArn",
                source.arn(),
                "Source queue must be configured as a Dead Letter Queue.",
            )
            .into());
        }
        if let Some(d) = &destination {
            self.get(d).await?;
        }
        let handle = super::redrive::task_handle(source, rand::random());
        self.done(QueueCommand::StartMoveTask {
            name: source.clone(),
            handle: handle.clone(),
            destination,
            max_per_second,
        })
        .await?;
        Ok(handle)
    }

    /// Cancel a running task; returns how many messages it had moved.
    pub async fn cancel_move_task(&self, handle: &str) -> Result<u64> {
        let not_found = || {
            ServiceError::Queue(QueueError::ResourceNotFound(
                "The resource that you specified for the TaskHandle parameter does not exist."
                    .into(),
            ))
        };
        let source = super::redrive::task_source(handle).ok_or_else(|| {
            QueueError::invalid_value("TaskHandle", handle, "It is not a task handle.")
        })?;
        let view = match self.get(&source).await {
            Err(ServiceError::Queue(QueueError::QueueDoesNotExist)) => return Err(not_found()),
            other => other?,
        };
        let moved = view
            .record
            .move_tasks
            .iter()
            .find(|t| t.handle == handle)
            .map(|t| t.moved)
            .ok_or_else(not_found)?;
        self.done(QueueCommand::CancelMoveTask {
            name: source,
            handle: handle.to_string(),
        })
        .await?;
        Ok(moved)
    }

    /// The queue's move tasks, newest first.
    pub async fn list_move_tasks(&self, source: &QueueName, max: u32) -> Result<Vec<MoveTask>> {
        if !(1..=10).contains(&max) {
            return Err(
                QueueError::invalid_value("MaxResults", max, "Must be between 1 and 10.").into(),
            );
        }
        let mut tasks = self.get(source).await?.record.move_tasks;
        tasks.reverse();
        tasks.truncate(max as usize);
        Ok(tasks)
    }
}

/// The checks of one message that need no queue, and its id.
fn check_send(r: SendRequest, sender_id: &str) -> std::result::Result<NewMessage, QueueError> {
    let body = r
        .body
        .filter(|b| !b.is_empty())
        .ok_or_else(|| QueueError::MissingParameter("MessageBody".into()))?;
    check_text("The message body", &body)?;
    check_message_attributes(&r.attributes)?;
    let size = body.len()
        + r.attributes
            .iter()
            .map(|(k, v)| v.size_bytes(k))
            .sum::<usize>();
    if size > MAX_MESSAGE_BYTES as usize {
        return Err(QueueError::invalid_value(
            "MessageBody",
            format!("({size} bytes)"),
            format!("One or more parameters are invalid. Reason: Message must be shorter than {MAX_MESSAGE_BYTES} bytes."),
        ));
    }
    if let Some(d) = r.delay_seconds {
        if d > MAX_DELAY_SECONDS {
            return Err(QueueError::invalid_value(
                "DelaySeconds",
                d,
                "DelaySeconds must be >= 0 and <= 900",
            ));
        }
    }
    if let Some(g) = &r.group_id {
        check_token("MessageGroupId", g)?;
    }
    if let Some(d) = &r.dedup_id {
        check_token("MessageDeduplicationId", d)?;
    }
    if let Some(t) = &r.trace_header {
        check_text("AWSTraceHeader", t)?;
    }
    Ok(NewMessage {
        message_id: random_uuid(),
        body,
        attributes: r.attributes,
        trace_header: r.trace_header,
        sender_id: sender_id.to_string(),
        delay_seconds: r.delay_seconds,
        group_id: r.group_id,
        dedup_id: r.dedup_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_look_like_sqs_ones() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid());
        assert_eq!(sequence_number(42), "00000000000000000042");
    }

    #[test]
    fn batch_rules() {
        assert!(check_batch(&["a", "b"], 10, "Entries").is_ok());
        let code = |r: Result<()>| match r {
            Err(ServiceError::Queue(e)) => e.query_code(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(check_batch(&[], 0, "Entries")),
            "AWS.SimpleQueueService.EmptyBatchRequest"
        );
        assert_eq!(
            code(check_batch(&["a"; 11], 0, "Entries")),
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
        );
        assert_eq!(
            code(check_batch(&["a", "a"], 0, "Entries")),
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
        );
        assert_eq!(
            code(check_batch(&["a b"], 0, "Entries")),
            "AWS.SimpleQueueService.InvalidBatchEntryId"
        );
        assert_eq!(
            code(check_batch(&["a"], 1_048_577, "Entries")),
            "AWS.SimpleQueueService.BatchRequestTooLong"
        );
    }

    #[test]
    fn sends_are_checked_before_they_reach_the_queue() {
        let ok = SendRequest {
            body: Some("hi".into()),
            ..Default::default()
        };
        assert!(check_send(ok.clone(), "me").is_ok());
        let mut r = ok.clone();
        r.body = None;
        assert_eq!(
            check_send(r, "me").unwrap_err().query_code(),
            "MissingParameter"
        );
        let mut r = ok.clone();
        r.body = Some("a\u{1}".into());
        assert_eq!(
            check_send(r, "me").unwrap_err().query_code(),
            "InvalidMessageContents"
        );
        let mut r = ok.clone();
        r.body = Some("x".repeat(MAX_MESSAGE_BYTES as usize + 1));
        assert_eq!(
            check_send(r, "me").unwrap_err().query_code(),
            "InvalidParameterValue"
        );
        let mut r = ok.clone();
        r.body = Some("x".repeat(MAX_MESSAGE_BYTES as usize));
        assert!(check_send(r, "me").is_ok());
        let mut r = ok;
        r.delay_seconds = Some(901);
        assert_eq!(
            check_send(r, "me").unwrap_err().query_code(),
            "InvalidParameterValue"
        );
    }
}
