//! The queue store's deterministic state machine: queues, their messages, visibility,
//! FIFO groups and deduplication, dead-letter moves and message move tasks.
//!
//! Every change is a [`QueueCommand`] applied by every replica of the queue's data group
//! in log order with the proposer's clock (`ApplyContext::now_ms`); ids and receipt nonces
//! come inside the command. So all replicas agree on which message a receive returned and
//! on every receipt handle. A receive is a write: it moves messages in flight.
//!
//! Invariants (checked by the tests below):
//! - every message of a queue has exactly one row in a visibility index (`visibility`: the
//!   waiting index until its first receive, the received index after) at its
//!   `visible_at_ms`, unless it is on its way to another queue (then it has a moving row
//!   instead); each index's floor is at or below all of its rows;
//! - in a FIFO queue, a group's messages are delivered in send order, and none is delivered
//!   while an earlier one of its group is in flight;
//! - a FIFO message whose deduplication id was seen within the window is not added again;
//!   the sender gets the first message's id and sequence number;
//! - `message_count` is the number of message rows.
//!
//! Moving a message to another queue (a dead-letter queue, or back out of one with a move
//! task) spans two groups. It is done in three steps, each idempotent: mark it moving here
//! (it is no longer delivered), `Enqueue` a copy there under a request id derived from the
//! message, `FinishMove` here. A mover that dies half way leaves the moving row, which the
//! redrive worker finds and completes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::errors::QueueError;
use super::keys::{self, successor, KIND_ATTEMPT, KIND_DEDUP, KIND_MESSAGE, KIND_MOVING};
use super::model::{
    DedupScope, MessageAttributes, QueueConfig, QueueName, DEDUP_WINDOW_MS,
    MAX_VISIBILITY_TIMEOUT_SECONDS, PURGE_INTERVAL_MS,
};
use super::visibility::{self, Due, Floors, Index};
use crate::raft::ApplyContext;
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// Visibility-index rows a receive looks at before it gives up (a FIFO queue with many
/// blocked groups has many rows that cannot be delivered).
const RECEIVE_SCAN_BUDGET: usize = 10_000;
/// Rows one sweep removes per kind, so a sweep is a bounded Raft entry.
const SWEEP_BATCH: usize = 1_000;
/// Rows counted for the approximate counts.
const COUNT_BUDGET: usize = 100_000;
/// Move tasks remembered per queue (ListMessageMoveTasks shows at most 10).
const MOVE_TASK_HISTORY: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveStatus {
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

impl MoveStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MoveStatus::Running => "RUNNING",
            MoveStatus::Completed => "COMPLETED",
            MoveStatus::Cancelling => "CANCELLING",
            MoveStatus::Cancelled => "CANCELLED",
            MoveStatus::Failed => "FAILED",
        }
    }
}

/// A StartMessageMoveTask on this (dead-letter) queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveTask {
    pub handle: String,
    /// None: each message goes back to the queue it was dead-lettered from.
    pub destination: Option<QueueName>,
    pub max_per_second: Option<u32>,
    pub status: MoveStatus,
    pub started_ms: u64,
    pub moved: u64,
    pub to_move: u64,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub name: QueueName,
    pub config: QueueConfig,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub tags: BTreeMap<String, String>,
    /// The next message's sequence number (send order; FIFO SequenceNumber).
    pub next_seq: u64,
    pub message_count: u64,
    pub last_purge_ms: Option<u64>,
    pub move_tasks: Vec<MoveTask>,
    /// Where receives start in the visibility indexes; kept in a row of its own (so this
    /// record's encoding predates it), loaded and saved with the record.
    #[serde(skip)]
    pub floors: Floors,
}

impl QueueRecord {
    pub fn running_task(&self) -> Option<&MoveTask> {
        self.move_tasks
            .iter()
            .find(|t| matches!(t.status, MoveStatus::Running | MoveStatus::Cancelling))
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: MessageAttributes,
    pub trace_header: Option<String>,
    pub sender_id: String,
    pub sent_ms: u64,
    pub visible_at_ms: u64,
    pub receive_count: u32,
    pub first_receive_ms: Option<u64>,
    /// The nonce of the newest receipt handle (0: never received).
    pub receipt_nonce: u64,
    /// When the newest receipt handle was issued (the 12-hour visibility cap counts from it).
    pub received_ms: u64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The queue this message was dead-lettered from.
    pub dead_letter_source: Option<QueueName>,
}

/// A message for SendMessage(Batch), checked by the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: MessageAttributes,
    pub trace_header: Option<String>,
    pub sender_id: String,
    /// None: the queue's DelaySeconds.
    pub delay_seconds: Option<u32>,
    pub group_id: Option<String>,
    /// FIFO: the explicit id, or the body's SHA-256 under content-based deduplication.
    pub dedup_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub message_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub seq: u64,
    pub message: StoredMessage,
}

/// A message marked for a move to `destination`, to be enqueued there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moving {
    pub queue: QueueName,
    pub seq: u64,
    pub destination: QueueName,
    pub message: StoredMessage,
    /// The move task that took it (counts it when the move finishes).
    pub task: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MovingRow {
    destination: QueueName,
    marked_ms: u64,
    task: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DedupRow {
    message_id: String,
    seq: u64,
    expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AttemptRow {
    expires_ms: u64,
    /// (seq, receipt nonce) of what the first attempt delivered.
    delivered: Vec<(u64, u64)>,
}

/// A reference to one received message, as a receipt handle carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub seq: u64,
    pub nonce: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    Create {
        name: QueueName,
        config: QueueConfig,
        /// The attribute names CreateQueue gave: an existing queue must match them.
        given: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    Delete {
        name: QueueName,
    },
    SetAttributes {
        name: QueueName,
        attributes: BTreeMap<String, String>,
    },
    Tag {
        name: QueueName,
        tags: BTreeMap<String, String>,
    },
    Untag {
        name: QueueName,
        keys: Vec<String>,
    },
    Send {
        name: QueueName,
        messages: Vec<NewMessage>,
    },
    Receive {
        name: QueueName,
        max: u32,
        visibility_timeout_seconds: Option<u32>,
        /// One fresh nonce per message that may be delivered.
        nonces: Vec<u64>,
        attempt_id: Option<String>,
    },
    DeleteMessages {
        name: QueueName,
        receipts: Vec<Receipt>,
    },
    ChangeVisibility {
        name: QueueName,
        entries: Vec<(Receipt, u32)>,
    },
    Purge {
        name: QueueName,
    },
    /// Add a message moved from another queue (keeps its id, body, attributes and times).
    Enqueue {
        name: QueueName,
        message: StoredMessage,
    },
    FinishMove {
        name: QueueName,
        seq: u64,
    },
    /// The destination refused the message: deliver it here again.
    AbortMove {
        name: QueueName,
        seq: u64,
        reason: String,
    },
    StartMoveTask {
        name: QueueName,
        handle: String,
        destination: Option<QueueName>,
        max_per_second: Option<u32>,
    },
    CancelMoveTask {
        name: QueueName,
        handle: String,
    },
    /// Mark up to `max` visible messages for the running move task.
    TakeForMoveTask {
        name: QueueName,
        handle: String,
        max: u32,
    },
    /// Remove expired messages and expired deduplication and attempt rows.
    Sweep {
        name: QueueName,
    },
}

impl QueueCommand {
    pub fn queue(&self) -> &QueueName {
        match self {
            QueueCommand::Create { name, .. }
            | QueueCommand::Delete { name }
            | QueueCommand::SetAttributes { name, .. }
            | QueueCommand::Tag { name, .. }
            | QueueCommand::Untag { name, .. }
            | QueueCommand::Send { name, .. }
            | QueueCommand::Receive { name, .. }
            | QueueCommand::DeleteMessages { name, .. }
            | QueueCommand::ChangeVisibility { name, .. }
            | QueueCommand::Purge { name }
            | QueueCommand::Enqueue { name, .. }
            | QueueCommand::FinishMove { name, .. }
            | QueueCommand::AbortMove { name, .. }
            | QueueCommand::StartMoveTask { name, .. }
            | QueueCommand::CancelMoveTask { name, .. }
            | QueueCommand::TakeForMoveTask { name, .. }
            | QueueCommand::Sweep { name } => name,
        }
    }

    /// Whether applying this may make a message receivable (long polls wake on it).
    pub fn may_add_messages(&self) -> bool {
        matches!(
            self,
            QueueCommand::Send { .. }
                | QueueCommand::Enqueue { .. }
                | QueueCommand::AbortMove { .. }
                | QueueCommand::ChangeVisibility { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub messages: Vec<Delivered>,
    /// Messages this receive found over their maxReceiveCount, now moving to the DLQ.
    pub dead: Vec<Moving>,
    /// When the next message not receivable now becomes visible (a long poll wakes then).
    pub next_visible_ms: Option<u64>,
    /// The queue's send counter after this receive (a long poll waits for it to grow).
    pub next_seq: u64,
    /// The queue's ReceiveMessageWaitTimeSeconds (the wait of a receive that names none).
    pub queue_wait_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueReply {
    Created { existed: bool },
    Done,
    Sent(Vec<Result<SentMessage, QueueError>>),
    Received(Received),
    PerEntry(Vec<Result<(), QueueError>>),
    Enqueued { seq: u64 },
    Taken(Vec<Moving>),
}

pub type QueueResult = Result<QueueReply, QueueError>;

/// Counts for the Approximate* attributes, at the time the query names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueQuery {
    Get {
        name: QueueName,
        now_ms: u64,
    },
    List {
        prefix: String,
        after: Option<String>,
        limit: u32,
    },
    DeadLetterSources {
        dead_letter_queue: QueueName,
        after: Option<String>,
        limit: u32,
    },
    /// Messages marked moving before `marked_before_ms` (a mover that died left them).
    StalledMoves {
        marked_before_ms: u64,
        limit: u32,
    },
    /// Every queue of the group and the running move tasks, for the group's leader's worker.
    Maintenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueQueryReply {
    Queue(Option<Box<(QueueRecord, Counts)>>),
    Names(Vec<QueueName>),
    Moves(Vec<Moving>),
    Maintenance {
        queues: Vec<QueueName>,
        /// (queue, task handle, max messages per second)
        running_tasks: Vec<(QueueName, String, Option<u32>)>,
    },
}

// ---------------------------------------------------------------------------------------
// Storage helpers

pub fn load_queue(
    state: &dyn StateRead,
    name: &QueueName,
) -> Result<Option<QueueRecord>, StoreError> {
    let Some(bytes) = state.get(&keys::queue(name.as_str()))? else {
        return Ok(None);
    };
    let mut record: QueueRecord = decode("queue record", &bytes)?;
    record.floors = Floors::load(state, name.as_str())?;
    Ok(Some(record))
}

fn save_queue(txn: &mut dyn StateTxn, record: &QueueRecord) {
    txn.put(&keys::queue(record.name.as_str()), encode(record));
    record.floors.save(txn, record.name.as_str());
}

fn load_message(
    state: &dyn StateRead,
    queue: &QueueName,
    seq: u64,
) -> Result<Option<StoredMessage>, StoreError> {
    state
        .get(&keys::message(queue.as_str(), seq))?
        .map(|b| decode("queue message", &b))
        .transpose()
}

/// Store `m` as a new message at `seq` with its index rows.
fn insert_message(txn: &mut dyn StateTxn, record: &mut QueueRecord, seq: u64, m: &StoredMessage) {
    let q = record.name.as_str();
    txn.put(&keys::message(q, seq), encode(m));
    visibility::insert(txn, &mut record.floors, q, seq, m);
    if record.config.fifo {
        if let Some(g) = &m.group_id {
            txn.put(&keys::group(q, g, seq), Vec::new());
        }
    }
    record.message_count += 1;
}

/// Rewrite `m` after a change of its visibility; `old` is the message as stored before,
/// when it had an index row (not when it comes back from moving).
fn update_visibility(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    seq: u64,
    old: Option<&StoredMessage>,
    m: &StoredMessage,
) {
    let q = record.name.as_str();
    if let Some(old) = old {
        visibility::remove(txn, q, seq, old);
    }
    visibility::insert(txn, &mut record.floors, q, seq, m);
    txn.put(&keys::message(q, seq), encode(m));
}

/// Remove a message and every row that points to it.
fn remove_message(txn: &mut dyn StateTxn, record: &mut QueueRecord, seq: u64, m: &StoredMessage) {
    let q = record.name.as_str();
    txn.delete(&keys::message(q, seq));
    visibility::remove(txn, q, seq, m);
    txn.delete(&keys::moving(q, seq));
    if let Some(g) = &m.group_id {
        txn.delete(&keys::group(q, g, seq));
    }
    record.message_count = record.message_count.saturating_sub(1);
}

/// Take `m` out of delivery and record where it is going.
fn mark_moving(
    txn: &mut dyn StateTxn,
    record: &QueueRecord,
    seq: u64,
    m: &StoredMessage,
    destination: QueueName,
    task: Option<String>,
    now_ms: u64,
) -> Moving {
    let q = record.name.as_str();
    visibility::remove(txn, q, seq, m);
    let row = MovingRow {
        destination: destination.clone(),
        marked_ms: now_ms,
        task: task.clone(),
    };
    txn.put(&keys::moving(q, seq), encode(&row));
    Moving {
        queue: record.name.clone(),
        seq,
        destination,
        message: m.clone(),
        task,
    }
}

fn expired(record: &QueueRecord, m: &StoredMessage, now_ms: u64) -> bool {
    m.sent_ms + u64::from(record.config.retention_seconds) * 1000 <= now_ms
}

fn dedup_key(scope: DedupScope, group: Option<&str>, dedup_id: &str) -> String {
    match scope {
        DedupScope::Queue => dedup_id.to_string(),
        DedupScope::MessageGroup => format!("{}\n{dedup_id}", group.unwrap_or("")),
    }
}

// ---------------------------------------------------------------------------------------
// Apply

pub fn apply(
    txn: &mut dyn StateTxn,
    command: QueueCommand,
    ctx: &ApplyContext,
) -> Result<QueueResult, StoreError> {
    let now = ctx.now_ms;
    if let QueueCommand::Create {
        name,
        config,
        given,
        tags,
    } = command
    {
        return create(txn, name, config, given, tags, now);
    }
    let name = command.queue().clone();
    let Some(mut record) = load_queue(txn, &name)? else {
        return Ok(Err(QueueError::QueueDoesNotExist));
    };
    let reply = match command {
        QueueCommand::Create { .. } => unreachable!("handled above"),
        QueueCommand::Delete { .. } => {
            delete_queue(txn, &name)?;
            return Ok(Ok(QueueReply::Done));
        }
        QueueCommand::SetAttributes { attributes, .. } => {
            let mut config = record.config.clone();
            for (k, v) in &attributes {
                if let Err(e) = config.apply(k, v) {
                    return Ok(Err(e));
                }
            }
            if let Err(e) = config.check_fifo_combination() {
                return Ok(Err(e));
            }
            record.config = config;
            record.modified_ms = now;
            QueueReply::Done
        }
        QueueCommand::Tag { tags, .. } => {
            let mut all = record.tags.clone();
            all.extend(tags);
            if let Err(e) = super::model::check_tags(&all) {
                return Ok(Err(e));
            }
            record.tags = all;
            QueueReply::Done
        }
        QueueCommand::Untag { keys, .. } => {
            for k in keys {
                record.tags.remove(&k);
            }
            QueueReply::Done
        }
        QueueCommand::Send { messages, .. } => QueueReply::Sent(
            messages
                .into_iter()
                .map(|m| send(txn, &mut record, m, now))
                .collect(),
        ),
        QueueCommand::Receive {
            max,
            visibility_timeout_seconds,
            nonces,
            attempt_id,
            ..
        } => QueueReply::Received(receive(
            txn,
            &mut record,
            max,
            visibility_timeout_seconds,
            &nonces,
            attempt_id,
            now,
        )?),
        QueueCommand::DeleteMessages { receipts, .. } => {
            let mut out = Vec::with_capacity(receipts.len());
            for r in receipts {
                let Some(m) = load_message(txn, &name, r.seq)? else {
                    // Already deleted: SQS answers success.
                    out.push(Ok(()));
                    continue;
                };
                if m.receipt_nonce == r.nonce && (!record.config.fifo || m.visible_at_ms > now) {
                    remove_message(txn, &mut record, r.seq, &m);
                    out.push(Ok(()));
                } else if record.config.fifo {
                    // A FIFO receipt is good only while its message is in flight under it
                    // (exactly-once processing): later, another consumer may hold it.
                    out.push(Err(QueueError::invalid_value(
                        "ReceiptHandle",
                        "",
                        "The receipt handle has expired.",
                    )));
                } else {
                    // An older receipt of a message received again: SQS answers success
                    // and the newest receipt still holds the message.
                    out.push(Ok(()));
                }
            }
            QueueReply::PerEntry(out)
        }
        QueueCommand::ChangeVisibility { entries, .. } => {
            let mut out = Vec::with_capacity(entries.len());
            for (r, timeout) in entries {
                out.push(change_visibility(txn, &mut record, r, timeout, now)?);
            }
            QueueReply::PerEntry(out)
        }
        QueueCommand::Purge { .. } => {
            if let Some(last) = record.last_purge_ms {
                if now < last + PURGE_INTERVAL_MS {
                    return Ok(Err(QueueError::PurgeQueueInProgress(record.name.arn())));
                }
            }
            purge(txn, &mut record)?;
            record.last_purge_ms = Some(now);
            QueueReply::Done
        }
        QueueCommand::Enqueue { message, .. } => {
            let seq = record.next_seq;
            record.next_seq += 1;
            let mut m = message;
            m.visible_at_ms = now;
            insert_message(txn, &mut record, seq, &m);
            QueueReply::Enqueued { seq }
        }
        QueueCommand::FinishMove { seq, .. } => {
            let row: Option<MovingRow> = txn
                .get(&keys::moving(name.as_str(), seq))?
                .map(|b| decode("moving row", &b))
                .transpose()?;
            if let (Some(row), Some(m)) = (row, load_message(txn, &name, seq)?) {
                remove_message(txn, &mut record, seq, &m);
                if let Some(handle) = row.task {
                    if let Some(t) = record.move_tasks.iter_mut().find(|t| t.handle == handle) {
                        t.moved += 1;
                    }
                }
            }
            QueueReply::Done
        }
        QueueCommand::AbortMove { seq, reason, .. } => {
            let row: Option<MovingRow> = txn
                .get(&keys::moving(name.as_str(), seq))?
                .map(|b| decode("moving row", &b))
                .transpose()?;
            if let (Some(row), Some(mut m)) = (row, load_message(txn, &name, seq)?) {
                txn.delete(&keys::moving(name.as_str(), seq));
                m.visible_at_ms = now;
                update_visibility(txn, &mut record, seq, None, &m);
                if let Some(handle) = row.task {
                    if let Some(t) = record.move_tasks.iter_mut().find(|t| t.handle == handle) {
                        t.status = MoveStatus::Failed;
                        t.failure = Some(reason);
                    }
                }
            }
            QueueReply::Done
        }
        QueueCommand::StartMoveTask {
            handle,
            destination,
            max_per_second,
            ..
        } => {
            if record.running_task().is_some() {
                return Ok(Err(QueueError::invalid_value(
                    "SourceArn",
                    record.name.arn(),
                    "There is already a message movement task running on this queue.",
                )));
            }
            let to_move = record.message_count;
            record.move_tasks.push(MoveTask {
                handle,
                destination,
                max_per_second,
                status: MoveStatus::Running,
                started_ms: now,
                moved: 0,
                to_move,
                failure: None,
            });
            let excess = record.move_tasks.len().saturating_sub(MOVE_TASK_HISTORY);
            record.move_tasks.drain(..excess);
            QueueReply::Done
        }
        QueueCommand::CancelMoveTask { handle, .. } => {
            match record
                .move_tasks
                .iter_mut()
                .find(|t| t.handle == handle && t.status == MoveStatus::Running)
            {
                Some(t) => t.status = MoveStatus::Cancelled,
                None => return Ok(Err(QueueError::ResourceNotFound(
                    "The resource that you specified for the TaskHandle parameter does not exist."
                        .into(),
                ))),
            }
            QueueReply::Done
        }
        QueueCommand::TakeForMoveTask { handle, max, .. } => {
            QueueReply::Taken(take_for_move_task(txn, &mut record, &handle, max, now)?)
        }
        QueueCommand::Sweep { .. } => {
            sweep(txn, &mut record, now)?;
            QueueReply::Done
        }
    };
    save_queue(txn, &record);
    Ok(Ok(reply))
}

fn create(
    txn: &mut dyn StateTxn,
    name: QueueName,
    config: QueueConfig,
    given: Vec<String>,
    tags: BTreeMap<String, String>,
    now: u64,
) -> Result<QueueResult, StoreError> {
    if let Some(existing) = load_queue(txn, &name)? {
        for attribute in &given {
            if existing.config.attribute(attribute) != config.attribute(attribute) {
                return Ok(Err(QueueError::QueueNameExists(attribute.clone())));
            }
        }
        return Ok(Ok(QueueReply::Created { existed: true }));
    }
    let record = QueueRecord {
        name,
        config,
        created_ms: now,
        modified_ms: now,
        tags,
        next_seq: 1,
        message_count: 0,
        last_purge_ms: None,
        move_tasks: Vec::new(),
        floors: Floors::empty(),
    };
    save_queue(txn, &record);
    Ok(Ok(QueueReply::Created { existed: false }))
}

/// Remove a queue and all its rows.
fn delete_queue(txn: &mut dyn StateTxn, name: &QueueName) -> Result<(), StoreError> {
    for kind in keys::ALL_KINDS {
        let prefix = keys::space(kind, name.as_str());
        loop {
            let rows = txn.scan(&prefix, &prefix, SWEEP_BATCH)?;
            if rows.is_empty() {
                break;
            }
            for (k, _) in rows {
                txn.delete(&k);
            }
        }
    }
    Ok(())
}

fn send(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    m: NewMessage,
    now: u64,
) -> Result<SentMessage, QueueError> {
    let q = record.name.as_str().to_string();
    let mut m = m;
    check_for_queue(&record.config, &mut m)?;
    let dedup = match (&m.dedup_id, record.config.fifo) {
        (Some(id), true) => Some(dedup_key(
            record.config.dedup_scope,
            m.group_id.as_deref(),
            id,
        )),
        _ => None,
    };
    if let Some(key) = &dedup {
        let row: Option<DedupRow> = txn
            .get(&keys::dedup(&q, key))
            .ok()
            .flatten()
            .and_then(|b| decode("dedup row", &b).ok());
        if let Some(row) = row.filter(|r| r.expires_ms > now) {
            return Ok(SentMessage {
                message_id: row.message_id,
                seq: row.seq,
            });
        }
    }
    let delay = m.delay_seconds.unwrap_or(record.config.delay_seconds);
    let seq = record.next_seq;
    record.next_seq += 1;
    let stored = StoredMessage {
        message_id: m.message_id.clone(),
        body: m.body,
        attributes: m.attributes,
        trace_header: m.trace_header,
        sender_id: m.sender_id,
        sent_ms: now,
        visible_at_ms: now + u64::from(delay) * 1000,
        receive_count: 0,
        first_receive_ms: None,
        receipt_nonce: 0,
        received_ms: 0,
        group_id: m.group_id,
        dedup_id: m.dedup_id,
        dead_letter_source: None,
    };
    insert_message(txn, record, seq, &stored);
    if let Some(key) = dedup {
        let row = DedupRow {
            message_id: m.message_id.clone(),
            seq,
            expires_ms: now + DEDUP_WINDOW_MS,
        };
        txn.put(&keys::dedup(&q, &key), encode(&row));
    }
    Ok(SentMessage {
        message_id: m.message_id,
        seq,
    })
}

/// The checks that depend on the queue's type and settings; fills in a content-based
/// deduplication id.
fn check_for_queue(config: &QueueConfig, m: &mut NewMessage) -> Result<(), QueueError> {
    let not_for_this_type = |name: &str, value: &str| {
        QueueError::invalid_value(
            name,
            value,
            "The request include parameter that is not valid for this queue type.",
        )
    };
    if config.fifo {
        if m.group_id.is_none() {
            return Err(QueueError::MissingParameter("MessageGroupId".into()));
        }
        if let Some(d) = m.delay_seconds.filter(|d| *d != 0) {
            return Err(not_for_this_type("DelaySeconds", &d.to_string()));
        }
        if m.dedup_id.is_none() {
            if !config.content_based_dedup {
                return Err(QueueError::invalid_value(
                    "MessageDeduplicationId",
                    "",
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
            use sha2::Digest;
            let digest = sha2::Sha256::digest(m.body.as_bytes());
            m.dedup_id = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
        }
    } else if let Some(id) = &m.dedup_id {
        return Err(not_for_this_type("MessageDeduplicationId", id));
    }
    let size = m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| v.size_bytes(k))
            .sum::<usize>();
    if size > config.maximum_message_size as usize {
        return Err(QueueError::invalid_value(
            "MessageBody",
            format!("({size} bytes)"),
            format!("One or more parameters are invalid. Reason: Message must be shorter than {} bytes.", config.maximum_message_size),
        ));
    }
    Ok(())
}

/// Hand `m` to a receiver: a new receipt, a new visibility deadline.
fn deliver(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    seq: u64,
    old: StoredMessage,
    nonce: u64,
    visibility_ms: u64,
    now: u64,
) -> Delivered {
    let mut m = old.clone();
    m.receive_count += 1;
    m.first_receive_ms.get_or_insert(now);
    m.receipt_nonce = nonce;
    m.received_ms = now;
    m.visible_at_ms = now + visibility_ms;
    update_visibility(txn, record, seq, Some(&old), &m);
    Delivered { seq, message: m }
}

fn receive(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    max: u32,
    visibility_timeout_seconds: Option<u32>,
    nonces: &[u64],
    attempt_id: Option<String>,
    now: u64,
) -> Result<Received, StoreError> {
    let name = record.name.clone();
    let q = name.as_str().to_string();
    if let Some(id) = &attempt_id {
        if let Some(again) = repeat_attempt(txn, &name, id, now)? {
            return Ok(Received {
                messages: again,
                dead: Vec::new(),
                next_visible_ms: None,
                next_seq: record.next_seq,
                queue_wait_seconds: record.config.receive_wait_seconds,
            });
        }
    }
    let want = (max as usize).min(nonces.len());
    let visibility_ms =
        u64::from(visibility_timeout_seconds.unwrap_or(record.config.visibility_timeout_seconds))
            * 1000;
    let redrive = record.config.redrive_policy.clone();
    let fifo = record.config.fifo;
    let mut due = Due::new(&q, &record.floors, now, want);
    let mut delivered: Vec<Delivered> = Vec::new();
    let mut dead = Vec::new();
    let mut seen_groups: BTreeSet<Vec<u8>> = BTreeSet::new();
    // The queue's oldest message (FIFO group scans start there), found once per receive.
    let mut oldest: Option<u64> = None;
    let mut ran_out = false;
    while delivered.len() < want && due.seen() < RECEIVE_SCAN_BUDGET {
        let Some(row) = due.next(txn)? else {
            ran_out = true;
            break;
        };
        if delivered.iter().any(|d| d.seq == row.seq) {
            // Delivered by this very receive (with a zero visibility timeout).
            continue;
        }
        if fifo && !row.group.is_empty() && seen_groups.contains(row.group.as_slice()) {
            // Its group's run was taken (or found blocked) earlier in this receive.
            due.keep(&row);
            continue;
        }
        let Some(m) = load_message(txn, &name, row.seq)? else {
            txn.delete(&row.key(&q));
            continue;
        };
        if !row.matches(&m) {
            // Stale: the message has moved on (earlier in this receive, through its group).
            txn.delete(&row.key(&q));
            continue;
        }
        let candidates = if fifo {
            let Some(group) = m.group_id.clone() else {
                due.keep(&row);
                continue;
            };
            if seen_groups.insert(group.clone().into_bytes()) {
                let oldest = match oldest {
                    Some(seq) => seq,
                    None => {
                        *oldest.insert(record.floors.oldest_message(txn, &q, record.next_seq)?)
                    }
                };
                group_head_run(txn, record, &group, oldest, now)?
            } else {
                Vec::new()
            }
        } else {
            vec![(row.seq, m)]
        };
        // Whether this row's message leaves the index (delivered, expired or moving); a
        // FIFO message behind one of its group in flight, or past what this receive takes,
        // stays and holds the floor.
        let mut consumed = false;
        for (seq, m) in candidates {
            if delivered.len() >= want {
                break;
            }
            consumed |= seq == row.seq;
            if expired(record, &m, now) {
                remove_message(txn, record, seq, &m);
                continue;
            }
            if let Some(p) = &redrive {
                if m.receive_count >= p.max_receive_count && p.dead_letter_queue != name {
                    dead.push(mark_moving(
                        txn,
                        record,
                        seq,
                        &m,
                        p.dead_letter_queue.clone(),
                        None,
                        now,
                    ));
                    continue;
                }
            }
            let nonce = nonces[delivered.len()];
            delivered.push(deliver(txn, record, seq, m, nonce, visibility_ms, now));
        }
        if !consumed {
            due.keep(&row);
        }
    }
    let next_visible_ms = if ran_out {
        due.next_visible(txn)?
    } else {
        None
    };
    due.finish(&mut record.floors);
    if let Some(id) = attempt_id {
        let row = AttemptRow {
            expires_ms: now + DEDUP_WINDOW_MS,
            delivered: delivered
                .iter()
                .map(|d| (d.seq, d.message.receipt_nonce))
                .collect(),
        };
        txn.put(&keys::attempt(&q, &id), encode(&row));
    }
    Ok(Received {
        messages: delivered,
        dead,
        next_visible_ms,
        next_seq: record.next_seq,
        queue_wait_seconds: record.config.receive_wait_seconds,
    })
}

/// The messages of a FIFO group that may be delivered now, in order: from the head, while
/// visible. Empty when the head is in flight or delayed (the group is blocked).
/// `oldest`: no message of the queue has a smaller sequence number (the scan seeks there,
/// past the group's deleted rows).
fn group_head_run(
    txn: &dyn StateRead,
    record: &QueueRecord,
    group: &str,
    oldest: u64,
    now: u64,
) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
    let prefix = keys::group_space(record.name.as_str(), group);
    let from = keys::group(record.name.as_str(), group, oldest);
    let mut out = Vec::new();
    for (key, _) in txn.scan(&prefix, &from, super::model::MAX_RECEIVE_MESSAGES as usize)? {
        let Some(seq) = keys::trailing_seq(&key) else {
            break;
        };
        let Some(m) = load_message(txn, &record.name, seq)? else {
            break;
        };
        if txn.get(&keys::moving(record.name.as_str(), seq))?.is_some() {
            break;
        }
        if m.visible_at_ms > now {
            break;
        }
        out.push((seq, m));
    }
    Ok(out)
}

/// The messages a FIFO receive attempt delivered, with the same receipts, when the same
/// attempt id comes again while they are all still in flight under those receipts.
fn repeat_attempt(
    txn: &mut dyn StateTxn,
    queue: &QueueName,
    attempt_id: &str,
    now: u64,
) -> Result<Option<Vec<Delivered>>, StoreError> {
    let key = keys::attempt(queue.as_str(), attempt_id);
    let Some(row) = txn.get(&key)? else {
        return Ok(None);
    };
    let row: AttemptRow = decode("attempt row", &row)?;
    txn.delete(&key);
    if row.expires_ms <= now {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (seq, nonce) in &row.delivered {
        match load_message(txn, queue, *seq)? {
            Some(m) if m.receipt_nonce == *nonce && m.visible_at_ms > now => out.push(Delivered {
                seq: *seq,
                message: m,
            }),
            _ => return Ok(None),
        }
    }
    txn.put(&key, encode(&row));
    Ok(Some(out))
}

fn change_visibility(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    r: Receipt,
    timeout_seconds: u32,
    now: u64,
) -> Result<Result<(), QueueError>, StoreError> {
    if timeout_seconds > MAX_VISIBILITY_TIMEOUT_SECONDS {
        return Ok(Err(QueueError::invalid_value(
            "VisibilityTimeout",
            timeout_seconds,
            "Must be between 0 and 43200, if provided.",
        )));
    }
    let queue = &record.name;
    let m = match load_message(txn, queue, r.seq)? {
        Some(m) if m.receipt_nonce == r.nonce => m,
        _ => {
            return Ok(Err(QueueError::invalid_value(
                "ReceiptHandle",
                "",
                "The receipt handle has expired.",
            )))
        }
    };
    if txn.get(&keys::moving(queue.as_str(), r.seq))?.is_some() || m.visible_at_ms <= now {
        return Ok(Err(QueueError::MessageNotInflight));
    }
    let deadline = now + u64::from(timeout_seconds) * 1000;
    if deadline > m.received_ms + u64::from(MAX_VISIBILITY_TIMEOUT_SECONDS) * 1000 {
        return Ok(Err(QueueError::invalid_value(
            "VisibilityTimeout",
            timeout_seconds,
            "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
        )));
    }
    let mut changed = m.clone();
    changed.visible_at_ms = deadline;
    update_visibility(txn, record, r.seq, Some(&m), &changed);
    Ok(Ok(()))
}

fn purge(txn: &mut dyn StateTxn, record: &mut QueueRecord) -> Result<(), StoreError> {
    let q = record.name.as_str().to_string();
    let kinds = [KIND_MESSAGE, keys::KIND_GROUP, KIND_MOVING, KIND_ATTEMPT];
    for kind in kinds.into_iter().chain(visibility::KINDS) {
        let prefix = keys::space(kind, &q);
        loop {
            let rows = txn.scan(&prefix, &prefix, SWEEP_BATCH)?;
            if rows.is_empty() {
                break;
            }
            for (k, _) in rows {
                txn.delete(&k);
            }
        }
    }
    record.message_count = 0;
    record.floors.reset_empty();
    Ok(())
}

fn take_for_move_task(
    txn: &mut dyn StateTxn,
    record: &mut QueueRecord,
    handle: &str,
    max: u32,
    now: u64,
) -> Result<Vec<Moving>, StoreError> {
    let Some(task) = record
        .move_tasks
        .iter()
        .find(|t| t.handle == handle && t.status == MoveStatus::Running)
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let q = record.name.as_str().to_string();
    let mut due = Due::new(&q, &record.floors, now, max as usize);
    let mut out = Vec::new();
    while out.len() < max as usize && due.seen() < RECEIVE_SCAN_BUDGET {
        let Some(row) = due.next(txn)? else {
            break;
        };
        let Some(m) = load_message(txn, &record.name, row.seq)? else {
            txn.delete(&row.key(&q));
            continue;
        };
        if !row.matches(&m) {
            txn.delete(&row.key(&q));
            continue;
        }
        let Some(destination) = task
            .destination
            .clone()
            .or_else(|| m.dead_letter_source.clone())
        else {
            // Not dead-lettered here and no destination given: it stays.
            due.keep(&row);
            continue;
        };
        out.push(mark_moving(
            txn,
            record,
            row.seq,
            &m,
            destination,
            Some(handle.to_string()),
            now,
        ));
    }
    due.finish(&mut record.floors);
    if out.is_empty() && !has_rows(txn, KIND_MOVING, &q)? {
        if let Some(t) = record.move_tasks.iter_mut().find(|t| t.handle == handle) {
            t.status = MoveStatus::Completed;
        }
    }
    Ok(out)
}

fn has_rows(state: &dyn StateRead, kind: u8, queue: &str) -> Result<bool, StoreError> {
    let prefix = keys::space(kind, queue);
    Ok(!state.scan(&prefix, &prefix, 1)?.is_empty())
}

fn sweep(txn: &mut dyn StateTxn, record: &mut QueueRecord, now: u64) -> Result<(), StoreError> {
    let q = record.name.as_str().to_string();
    let prefix = keys::space(KIND_MESSAGE, &q);
    let oldest = record.floors.oldest_message(txn, &q, record.next_seq)?;
    for (key, bytes) in txn.scan(&prefix, &keys::message(&q, oldest), SWEEP_BATCH)? {
        let m: StoredMessage = decode("queue message", &bytes)?;
        if !expired(record, &m, now) {
            break;
        }
        if let Some(seq) = keys::trailing_seq(&key) {
            remove_message(txn, record, seq, &m);
        }
    }
    for kind in [KIND_DEDUP, KIND_ATTEMPT] {
        let prefix = keys::space(kind, &q);
        for (key, bytes) in txn.scan(&prefix, &prefix, SWEEP_BATCH)? {
            // Both rows lead with their expiry.
            let expires_ms = if kind == KIND_DEDUP {
                decode::<DedupRow>("dedup row", &bytes)?.expires_ms
            } else {
                decode::<AttemptRow>("attempt row", &bytes)?.expires_ms
            };
            if expires_ms <= now {
                txn.delete(&key);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Queries

pub fn read(state: &dyn StateRead, query: QueueQuery) -> Result<QueueQueryReply, StoreError> {
    Ok(match query {
        QueueQuery::Get { name, now_ms } => match load_queue(state, &name)? {
            Some(record) => {
                let counts = counts(state, &record, now_ms)?;
                QueueQueryReply::Queue(Some(Box::new((record, counts))))
            }
            None => QueueQueryReply::Queue(None),
        },
        QueueQuery::List {
            prefix,
            after,
            limit,
        } => QueueQueryReply::Names(list_queues(state, after.as_deref(), limit as usize, |r| {
            r.name.as_str().starts_with(&prefix)
        })?),
        QueueQuery::DeadLetterSources {
            dead_letter_queue,
            after,
            limit,
        } => QueueQueryReply::Names(list_queues(state, after.as_deref(), limit as usize, |r| {
            r.config
                .redrive_policy
                .as_ref()
                .is_some_and(|p| p.dead_letter_queue == dead_letter_queue)
        })?),
        QueueQuery::StalledMoves {
            marked_before_ms,
            limit,
        } => {
            let prefix = keys::kind_prefix(KIND_MOVING);
            let mut out = Vec::new();
            for (key, bytes) in state.scan(&prefix, &prefix, limit as usize)? {
                let row: MovingRow = decode("moving row", &bytes)?;
                if row.marked_ms >= marked_before_ms {
                    continue;
                }
                let (Some(queue), Some(seq)) = (keys::queue_of(&key), keys::trailing_seq(&key))
                else {
                    continue;
                };
                let Ok(queue) = QueueName::parse(queue) else {
                    continue;
                };
                if let Some(message) = load_message(state, &queue, seq)? {
                    out.push(Moving {
                        queue,
                        seq,
                        destination: row.destination,
                        message,
                        task: row.task,
                    });
                }
            }
            QueueQueryReply::Moves(out)
        }
        QueueQuery::Maintenance => {
            let prefix = keys::kind_prefix(keys::KIND_QUEUE);
            let mut from = prefix.clone();
            let (mut queues, mut running_tasks) = (Vec::new(), Vec::new());
            loop {
                let rows = state.scan(&prefix, &from, 512)?;
                let Some((last, _)) = rows.last() else { break };
                from = successor(last);
                for (_, bytes) in rows {
                    let record: QueueRecord = decode("queue record", &bytes)?;
                    if let Some(t) = record.running_task() {
                        if t.status == MoveStatus::Running {
                            running_tasks.push((
                                record.name.clone(),
                                t.handle.clone(),
                                t.max_per_second,
                            ));
                        }
                    }
                    queues.push(record.name);
                }
            }
            QueueQueryReply::Maintenance {
                queues,
                running_tasks,
            }
        }
    })
}

fn list_queues(
    state: &dyn StateRead,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&QueueRecord) -> bool,
) -> Result<Vec<QueueName>, StoreError> {
    let prefix = keys::kind_prefix(keys::KIND_QUEUE);
    let mut from = prefix.clone();
    let mut out = Vec::new();
    loop {
        let rows = state.scan(&prefix, &from, 512)?;
        if rows.is_empty() {
            out.sort();
            out.truncate(limit);
            return Ok(out);
        }
        from = rows.last().map(|(k, _)| successor(k)).unwrap_or_default();
        for (_, bytes) in rows {
            let record: QueueRecord = decode("queue record", &bytes)?;
            if after.is_some_and(|a| record.name.as_str() <= a) || !keep(&record) {
                continue;
            }
            out.push(record.name);
        }
        // Keys sort by name length first, so every row is seen; only the smallest `limit`
        // names are kept along the way.
        if out.len() > limit * 4 + 1024 {
            out.sort();
            out.truncate(limit);
        }
    }
}

fn counts(state: &dyn StateRead, record: &QueueRecord, now: u64) -> Result<Counts, StoreError> {
    let q = record.name.as_str();
    let after_now =
        |index| visibility::count_after(state, &record.floors, q, index, now, COUNT_BUDGET);
    let mut c = Counts {
        delayed: after_now(Index::Waiting)?,
        not_visible: after_now(Index::Received)?,
        ..Counts::default()
    };
    let moving_prefix = keys::space(KIND_MOVING, q);
    c.not_visible += state
        .scan(&moving_prefix, &moving_prefix, COUNT_BUDGET)?
        .len() as u64;
    c.visible = record
        .message_count
        .saturating_sub(c.not_visible + c.delayed);
    Ok(c)
}

#[cfg(test)]
mod tests;
