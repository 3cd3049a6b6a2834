//! The history of a test run: every operation a client invoked, when, and how it ended.
//!
//! Owns the data model the checkers read ([`Operation`], [`Op`], [`Outcome`]), its on-disk
//! form (JSON lines, one completed operation per line, so a run can be saved and checked
//! again later), and the [`Recorder`] that clients share while a workload runs.
//!
//! Guarantees:
//! - A [`History`] is always well formed: operation ids are unique, an `Ok` result has the
//!   shape of its operation (a read returns a value, a cas returns whether it swapped), `Ok`
//!   and `Fail` operations have a completion that is not before their invocation. Every way
//!   of building one ([`History::from_ops`], [`History::read_json_lines`], [`Recorder`])
//!   checks this, so checkers never see a malformed history.
//! - Time is a [`Tick`]: a point in one total order of events. Only the order matters. The
//!   [`Recorder`] hands out ticks from a counter under its lock, so an operation completed
//!   before another was invoked has a strictly smaller tick, exactly as the recorder saw it.
//!   Equal ticks in hand-written histories count as concurrent.
//! - Outcomes follow Jepsen: `Ok` happened (with its result), `Fail` definitely did not
//!   happen, `Info` is unknown (a timeout, a lost connection): it may or may not have taken
//!   effect, at any time after its invocation, so its completion counts as +infinity.
//!
//! Values: registers and sets hold [`Value`]s (`u64`); a register that was never written
//! (or was deleted) reads as `None`. Workloads write small unique integers (as Jepsen's do);
//! a store of bytes encodes the number as the object's body. Keys ([`Key`]) are strings, so
//! one history can hold many independent registers (see `checker::linearizable::check_keys`)
//! or an object store's keys (see `checker::objects`, where one listing reads many at once).
//! A queue's messages carry values as their bodies; a receive returns each with the id the
//! queue gave it (see `checker::queue`). A stream's records carry values as their data; a
//! put answers with the shard and sequence number of each, a read returns them in a
//! shard's order (see `checker::stream`).
//!
//! Not here: what counts as correct (the checkers) or how operations reach the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a register holds and a set contains.
pub type Value = u64;

/// Names one independent register or set within a history.
pub type Key = String;

/// A point in a history's total order of events (logical time). Only the order matters.
pub type Tick = u64;

/// The client (Jepsen "process") that issued an operation. A process has at most one
/// operation in flight; after an `Info` outcome a workload should continue as a new process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub u64);

/// Identifies one operation within a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", content = "value", rename_all = "snake_case")]
pub enum Op {
    /// Register read.
    Read,
    /// Register write.
    Write(Value),
    /// Register compare-and-set: if the register holds `expected` (`None`: was never
    /// written), replace it with `new`.
    Cas { expected: Option<Value>, new: Value },
    /// Set insert of a value unique within the history.
    Add(Value),
    /// Set read of every element.
    ReadAll,
    /// Register delete: the register becomes absent (`None`), as an object store's key does
    /// when its current version is a delete marker.
    Delete,
    /// Object store listing of every key that starts with the operation's key (the
    /// prefix): a read of all of them at once. Its result says which are present and what
    /// each holds; every other key under the prefix is absent.
    List,
    /// Queue send of messages whose bodies are values unique in the history (SendMessage,
    /// or SendMessageBatch for more than one). `group`: a FIFO queue's message group. A
    /// FIFO send of unknown outcome is retried as another send of the same values under
    /// the same deduplication ids, so a value may be carried by several sends.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        values: Vec<Value>,
    },
    /// Queue receive: the visible messages it returns are then in flight (invisible to
    /// other receives) for `visibility_ms`.
    Receive { visibility_ms: u64 },
    /// Queue delete of received messages by the receipt handles their receives gave
    /// (DeleteMessage, or DeleteMessageBatch for more than one).
    DeleteMessages(Vec<MessageRef>),
    /// The end of a queue run: receive and delete until the queue stays empty. It
    /// succeeds once the queue was seen empty long enough that every message still in it
    /// would have been delivered; the receives and deletes it makes are operations of
    /// their own.
    Drain,
    /// Stream put of records whose data are values unique in the history (PutRecord for
    /// one, PutRecords for more), each with the partition key (and explicit hash key) it
    /// was sent with.
    PutRecords(Vec<StreamPut>),
    /// GetShardIterator for `shard`: TRIM_HORIZON when `after` is `None`, else
    /// AFTER_SEQUENCE_NUMBER `after`. `reader` names the consumer whose read of the shard
    /// it continues.
    GetShardIterator {
        shard: String,
        reader: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// GetRecords on `shard` with an iterator that must continue right after sequence
    /// number `after` (`None`: from the start of the shard), the last record `reader` had
    /// read of the shard: got by GetShardIterator, or the previous call's
    /// NextShardIterator.
    GetRecords {
        shard: String,
        reader: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// ListShards of the stream (every page).
    ListShards,
    /// SplitShard of `shard` at `hash_key` (decimal).
    SplitShard { shard: String, hash_key: String },
    /// MergeShards of `shard` with its neighbour `adjacent`.
    MergeShards { shard: String, adjacent: String },
    /// A fault starting or ending (Jepsen's nemesis operations). Not part of any model:
    /// checkers skip it; it records when the cluster was being broken, for the reports.
    Nemesis(NemesisEvent),
}

impl Op {
    /// Whether this is a nemesis event rather than a client operation.
    pub fn is_nemesis(&self) -> bool {
        matches!(self, Op::Nemesis(_))
    }
}

/// One message a queue receive returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The value its body holds.
    pub value: Value,
    /// The id the queue gave the message when it was sent: a redelivery of the message
    /// has the same id, a second copy of a value another one.
    pub message_id: String,
    /// FIFO queues: the message group and the sequence number the queue reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
}

/// A received message a delete names: its value and the id it was delivered under (the
/// request itself carries that delivery's receipt handle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub value: Value,
    pub message_id: String,
}

/// One record of a stream put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPut {
    /// The value its data holds.
    pub value: Value,
    pub partition_key: String,
    /// The hash key it was routed by instead of its partition key's MD5 (decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
}

/// What an answered stream put said about one of its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum PutEntry {
    /// Appended to `shard` at `sequence`.
    Ok { shard: String, sequence: String },
    /// Refused with an error that says it was not appended.
    Refused { code: String },
    /// Failed with an error that leaves it unknown whether it was appended.
    Unknown { code: String },
}

/// One record a GetRecords returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The value its data holds (a workload's `GARBLED` value for anything else).
    pub value: Value,
    pub sequence: String,
    pub partition_key: String,
}

/// A shard as ListShards lists it or GetRecords names it at the end of its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard: String,
    /// The shards it was split or merged from.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Its hash-key range (decimal, inclusive).
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    /// ListShards: the last sequence number of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_sequence: Option<String>,
}

/// What a nemesis did: started or stopped one fault on some nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NemesisEvent {
    pub action: NemesisAction,
    /// The kind of fault, e.g. `kill`, `pause`, `partition-halves`, `zone`, `slow`.
    pub fault: String,
    /// The nodes it acts on.
    pub nodes: Vec<u64>,
    /// Anything else worth knowing, e.g. the sides of a partition.
    #[serde(default)]
    pub detail: String,
}

/// Whether a nemesis event begins or ends a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisAction {
    Start,
    Stop,
}

/// What an `Ok` operation returned. Its shape must match the operation (see
/// [`OpResult::fits`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpResult {
    /// A write or add that was acknowledged.
    Done,
    /// A read's value (`None`: never written).
    Read(Option<Value>),
    /// A cas's answer: `true` it swapped, `false` the register did not hold `expected`.
    Cas(bool),
    /// A set read's elements, in the order the store returned them.
    ReadAll(Vec<Value>),
    /// A listing's keys, each with the value its current version holds.
    Listed(BTreeMap<Key, Value>),
    /// A queue send or delete that was answered: the positions of the entries the queue
    /// refused (each definitely not applied); every other entry was applied.
    Batch { refused: Vec<usize> },
    /// A queue receive's messages, in the order the queue returned them.
    Received(Vec<Delivery>),
    /// A stream put's answer, one entry per record in request order.
    Put(Vec<PutEntry>),
    /// A GetRecords page, in the order the shard returned it. `children` is present when
    /// the call reached the end of a closed shard (no NextShardIterator): the shards to
    /// read next. `behind_ms`: MillisBehindLatest.
    Records {
        records: Vec<StreamRecord>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        children: Option<Vec<ShardInfo>>,
        behind_ms: u64,
    },
    /// ListShards' shards.
    Shards(Vec<ShardInfo>),
}

impl OpResult {
    /// Whether this is a result `op` can return.
    pub fn fits(&self, op: &Op) -> bool {
        matches!(
            (op, self),
            (Op::Read, OpResult::Read(_))
                | (Op::Write(_), OpResult::Done)
                | (Op::Cas { .. }, OpResult::Cas(_))
                | (Op::Add(_), OpResult::Done)
                | (Op::ReadAll, OpResult::ReadAll(_))
                | (Op::Delete, OpResult::Done)
                | (Op::List, OpResult::Listed(_))
                | (Op::Send { .. }, OpResult::Batch { .. })
                | (Op::DeleteMessages(_), OpResult::Batch { .. })
                | (Op::Receive { .. }, OpResult::Received(_))
                | (Op::Drain, OpResult::Done)
                | (Op::PutRecords(_), OpResult::Put(_))
                | (Op::GetShardIterator { .. }, OpResult::Done)
                | (Op::GetRecords { .. }, OpResult::Records { .. })
                | (Op::ListShards, OpResult::Shards(_))
                | (Op::SplitShard { .. }, OpResult::Done)
                | (Op::MergeShards { .. }, OpResult::Done)
                | (Op::Nemesis(_), OpResult::Done)
        )
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// It happened, between invocation and completion, and returned this.
    Ok(OpResult),
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may have happened at any time after its invocation, or never.
    Info,
}

/// One operation as recorded: who, what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub id: OpId,
    pub process: ProcessId,
    /// The register or set it acts on; empty for single-object histories.
    #[serde(default)]
    pub key: Key,
    pub op: Op,
    pub invoked_at: Tick,
    /// When the client saw the outcome. `None` for an `Info` that never came back (still
    /// pending when the history was taken). Ignored for `Info`: it counts as +infinity.
    #[serde(default)]
    pub completed_at: Option<Tick>,
    pub outcome: Outcome,
    /// When it happened on the wall clock. For latency reports only: checkers order
    /// events by tick.
    #[serde(flatten)]
    pub wall: WallClock,
}

/// Wall-clock times of an operation, in microseconds since its recorder started. Both
/// are absent in hand-made histories; `completed_us` is absent while pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallClock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_us: Option<u64>,
}

impl Operation {
    /// Whether `self` finished before `other` started, so every correct execution must order
    /// `self` first. Never true for an `Info` operation.
    pub fn precedes(&self, other: &Operation) -> bool {
        match (&self.outcome, self.completed_at) {
            (Outcome::Info, _) | (_, None) => false,
            (_, Some(done)) => done < other.invoked_at,
        }
    }

    fn validate(&self) -> Result<(), HistoryError> {
        let id = self.id;
        match (&self.outcome, self.completed_at) {
            (Outcome::Ok(result), _) if !result.fits(&self.op) => {
                return Err(HistoryError::ResultMismatch {
                    id,
                    op: Box::new(self.op.clone()),
                    result: Box::new(result.clone()),
                })
            }
            (Outcome::Ok(_) | Outcome::Fail, None) => {
                return Err(HistoryError::MissingCompletion { id })
            }
            _ => {}
        }
        match self.completed_at {
            Some(done) if done < self.invoked_at => Err(HistoryError::CompletesBeforeInvoke {
                id,
                invoked_at: self.invoked_at,
                completed_at: done,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Read => write!(f, "read"),
            Op::Write(v) => write!(f, "write {v}"),
            Op::Cas { expected, new } => write!(f, "cas {} -> {new}", ValueDisplay(*expected)),
            Op::Add(v) => write!(f, "add {v}"),
            Op::ReadAll => write!(f, "read-all"),
            Op::Delete => write!(f, "delete"),
            Op::List => write!(f, "list"),
            Op::Send { group, values } => {
                write!(f, "send {values:?}")?;
                if let Some(group) = group {
                    write!(f, " to group {group}")?;
                }
                Ok(())
            }
            Op::Receive { visibility_ms } => write!(f, "receive (visibility {visibility_ms} ms)"),
            Op::DeleteMessages(refs) => {
                let shown: Vec<String> = refs
                    .iter()
                    .map(|r| format!("{} as {}", r.value, r.message_id))
                    .collect();
                write!(f, "delete [{}]", shown.join(", "))
            }
            Op::Drain => write!(f, "drain"),
            Op::PutRecords(records) => {
                let shown: Vec<String> = records
                    .iter()
                    .map(|r| match &r.explicit_hash_key {
                        Some(hash) => format!("{} by {} (hash {hash})", r.value, r.partition_key),
                        None => format!("{} by {}", r.value, r.partition_key),
                    })
                    .collect();
                write!(f, "put [{}]", shown.join(", "))
            }
            Op::GetShardIterator {
                shard,
                reader,
                after,
            } => match after {
                Some(after) => write!(f, "iterator of {shard} after {after} for reader {reader}"),
                None => write!(f, "iterator of {shard} from its start for reader {reader}"),
            },
            Op::GetRecords {
                shard,
                reader,
                after,
            } => match after {
                Some(after) => write!(f, "get-records {shard} after {after} (reader {reader})"),
                None => write!(f, "get-records {shard} from its start (reader {reader})"),
            },
            Op::ListShards => write!(f, "list-shards"),
            Op::SplitShard { shard, hash_key } => write!(f, "split {shard} at {hash_key}"),
            Op::MergeShards { shard, adjacent } => write!(f, "merge {shard} with {adjacent}"),
            Op::Nemesis(event) => {
                let action = match event.action {
                    NemesisAction::Start => "start",
                    NemesisAction::Stop => "stop",
                };
                write!(f, "{action} {} on {:?}", event.fault, event.nodes)?;
                if !event.detail.is_empty() {
                    write!(f, " ({})", event.detail)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(OpResult::Done) => write!(f, "ok"),
            Outcome::Ok(OpResult::Read(v)) => write!(f, "ok {}", ValueDisplay(*v)),
            Outcome::Ok(OpResult::Cas(swapped)) => write!(f, "ok {swapped}"),
            Outcome::Ok(OpResult::ReadAll(values)) => write!(f, "ok {values:?}"),
            Outcome::Ok(OpResult::Listed(entries)) => {
                let shown: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "ok [{}]", shown.join(", "))
            }
            Outcome::Ok(OpResult::Batch { refused }) if refused.is_empty() => write!(f, "ok"),
            Outcome::Ok(OpResult::Batch { refused }) => {
                write!(f, "ok, entries {refused:?} refused")
            }
            Outcome::Ok(OpResult::Received(deliveries)) => {
                let shown: Vec<String> = deliveries
                    .iter()
                    .map(|d| {
                        let mut text = format!("{} as {}", d.value, d.message_id);
                        if let Some(group) = &d.group {
                            text.push_str(&format!(" in {group}"));
                        }
                        if let Some(sequence) = &d.sequence {
                            text.push_str(&format!(" #{sequence}"));
                        }
                        text
                    })
                    .collect();
                write!(f, "ok [{}]", shown.join(", "))
            }
            Outcome::Ok(OpResult::Put(entries)) => {
                let shown: Vec<String> = entries
                    .iter()
                    .map(|e| match e {
                        PutEntry::Ok { shard, sequence } => format!("{shard} #{sequence}"),
                        PutEntry::Refused { code } => format!("refused {code}"),
                        PutEntry::Unknown { code } => format!("unknown {code}"),
                    })
                    .collect();
                write!(f, "ok [{}]", shown.join(", "))
            }
            Outcome::Ok(OpResult::Records {
                records,
                children,
                behind_ms,
            }) => {
                let shown: Vec<String> = records
                    .iter()
                    .map(|r| format!("{} #{}", r.value, r.sequence))
                    .collect();
                write!(f, "ok [{}] ({behind_ms} ms behind)", shown.join(", "))?;
                if let Some(children) = children {
                    let ids: Vec<&str> = children.iter().map(|c| c.shard.as_str()).collect();
                    write!(f, ", end of shard, children {ids:?}")?;
                }
                Ok(())
            }
            Outcome::Ok(OpResult::Shards(shards)) => {
                let shown: Vec<String> = shards
                    .iter()
                    .map(|s| {
                        let mut text = s.shard.clone();
                        if !s.parents.is_empty() {
                            text.push_str(&format!(" from {:?}", s.parents));
                        }
                        if s.ending_sequence.is_some() {
                            text.push_str(" (closed)");
                        }
                        text
                    })
                    .collect();
                write!(f, "ok [{}]", shown.join(", "))
            }
            Outcome::Fail => write!(f, "fail"),
            Outcome::Info => write!(f, "info"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.is_nemesis() {
            write!(f, "#{} nemesis ", self.id.0)?;
        } else {
            write!(f, "#{} p{} ", self.id.0, self.process.0)?;
        }
        if !self.key.is_empty() {
            write!(f, "key {:?} ", self.key)?;
        }
        let done = match (&self.outcome, self.completed_at) {
            (Outcome::Info, _) | (_, None) => "inf".to_string(),
            (_, Some(t)) => t.to_string(),
        };
        write!(
            f,
            "{}: {} [{}..{}]",
            self.op, self.outcome, self.invoked_at, done
        )
    }
}

/// Shows a register value with `nil` for never written.
pub(crate) struct ValueDisplay(pub Option<Value>);

impl fmt::Display for ValueDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => write!(f, "nil"),
        }
    }
}

/// Why a history could not be built, read, written or recorded.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("operation id {0:?} appears more than once")]
    DuplicateId(OpId),
    #[error("operation {id:?} completes at {completed_at} before it is invoked at {invoked_at}")]
    CompletesBeforeInvoke {
        id: OpId,
        invoked_at: Tick,
        completed_at: Tick,
    },
    #[error("operation {id:?} is ok or fail but has no completion time")]
    MissingCompletion { id: OpId },
    #[error("operation {id:?} ({op}) cannot return {result:?}")]
    ResultMismatch {
        id: OpId,
        op: Box<Op>,
        result: Box<OpResult>,
    },
    #[error("no operation {0:?} was invoked on this recorder")]
    UnknownOp(OpId),
    #[error("operation {0:?} was already completed")]
    AlreadyCompleted(OpId),
    #[error("history line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
    #[error("encoding history: {0}")]
    Encode(serde_json::Error),
    #[error("history i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A well-formed sequence of operations, ordered by id (which the [`Recorder`] assigns in
/// invocation order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `ops` is well formed (see the module docs) and orders it by id.
    pub fn from_ops(mut ops: Vec<Operation>) -> Result<Self, HistoryError> {
        ops.sort_by_key(|op| op.id);
        for pair in ops.windows(2) {
            if pair[0].id == pair[1].id {
                return Err(HistoryError::DuplicateId(pair[0].id));
            }
        }
        for op in &ops {
            op.validate()?;
        }
        Ok(Self { ops })
    }

    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The distinct keys client operations act on (nemesis events have none).
    pub fn keys(&self) -> BTreeSet<&str> {
        self.client_ops().map(|op| op.key.as_str()).collect()
    }

    /// The operations clients issued, without nemesis events.
    pub fn client_ops(&self) -> impl Iterator<Item = &Operation> {
        self.ops.iter().filter(|op| !op.op.is_nemesis())
    }

    /// Writes one JSON object per operation, one per line.
    pub fn write_json_lines<W: Write>(&self, mut out: W) -> Result<(), HistoryError> {
        for op in &self.ops {
            serde_json::to_writer(&mut out, op).map_err(HistoryError::Encode)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// Reads what [`History::write_json_lines`] wrote. Blank lines are skipped.
    pub fn read_json_lines<R: BufRead>(input: R) -> Result<Self, HistoryError> {
        let mut ops = Vec::new();
        for (index, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op = serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
                line: index + 1,
                source,
            })?;
            ops.push(op);
        }
        Self::from_ops(ops)
    }

    /// Saves the history to `path` as JSON lines.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        self.write_json_lines(BufWriter::new(File::create(path)?))
    }

    /// Loads a history saved with [`History::save`].
    pub fn load(path: &Path) -> Result<Self, HistoryError> {
        Self::read_json_lines(BufReader::new(File::open(path)?))
    }
}

/// Records operations as concurrent clients invoke and complete them. Cloning is cheap and
/// every clone records into the same history, so each client task can hold its own.
/// Besides ticks, it stamps every event with the wall-clock time since it was created.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Recording>>,
    started: Instant,
    started_at: SystemTime,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            started: Instant::now(),
            started_at: SystemTime::now(),
        }
    }
}

#[derive(Debug, Default)]
struct Recording {
    next_tick: Tick,
    /// Indexed by `OpId`; `pending[i]` until `complete` is called for it.
    ops: Vec<Operation>,
    pending: Vec<bool>,
}

impl Recording {
    fn tick(&mut self) -> Tick {
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The wall-clock time the recorder was created: the origin of every [`WallClock`].
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Microseconds since the recorder was created.
    pub fn elapsed_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Records that `process` invokes `op` on the history's single (unnamed) object.
    pub fn invoke(&self, process: ProcessId, op: Op) -> OpId {
        self.invoke_keyed(process, Key::new(), op)
    }

    /// Records that `process` invokes `op` on the object named `key`.
    pub fn invoke_keyed(&self, process: ProcessId, key: impl Into<Key>, op: Op) -> OpId {
        let key = key.into();
        let mut recording = self.lock();
        let id = OpId(recording.ops.len() as u64);
        let invoked_at = recording.tick();
        let invoked_us = Some(self.elapsed_us());
        recording.ops.push(Operation {
            id,
            process,
            key,
            op,
            invoked_at,
            completed_at: None,
            outcome: Outcome::Info,
            wall: WallClock {
                invoked_us,
                completed_us: None,
            },
        });
        recording.pending.push(true);
        id
    }

    /// Records how operation `id` ended. Call it as soon as the client knows, before
    /// starting anything that depends on it, so real-time order is kept.
    pub fn complete(&self, id: OpId, outcome: Outcome) -> Result<(), HistoryError> {
        let mut recording = self.lock();
        let index = usize::try_from(id.0).map_err(|_| HistoryError::UnknownOp(id))?;
        match recording.pending.get(index) {
            None => return Err(HistoryError::UnknownOp(id)),
            Some(false) => return Err(HistoryError::AlreadyCompleted(id)),
            Some(true) => {}
        }
        if let Outcome::Ok(result) = &outcome {
            let op = &recording.ops[index].op;
            if !result.fits(op) {
                return Err(HistoryError::ResultMismatch {
                    id,
                    op: Box::new(op.clone()),
                    result: Box::new(result.clone()),
                });
            }
        }
        let completed_at = recording.tick();
        let completed_us = Some(self.elapsed_us());
        recording.pending[index] = false;
        let entry = &mut recording.ops[index];
        entry.completed_at = Some(completed_at);
        entry.wall.completed_us = completed_us;
        entry.outcome = outcome;
        Ok(())
    }

    /// A snapshot of everything recorded so far. Operations still pending count as `Info`.
    pub fn history(&self) -> History {
        History {
            ops: self.lock().ops.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A panic while holding the lock cannot leave a half-written entry (every update
        // is a push or a field store after validation), so the data stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let rec = Recorder::new();
        let w = rec.invoke(ProcessId(0), Op::Write(3));
        let r = rec.invoke(ProcessId(1), Op::Read);
        let c = rec.invoke_keyed(
            ProcessId(2),
            "k",
            Op::Cas {
                expected: None,
                new: 4,
            },
        );
        let a = rec.invoke_keyed(ProcessId(3), "s", Op::Add(9));
        let ra = rec.invoke_keyed(ProcessId(4), "s", Op::ReadAll);
        let _pending = rec.invoke(ProcessId(5), Op::Write(8));
        rec.complete(w, Outcome::Ok(OpResult::Done)).unwrap();
        rec.complete(r, Outcome::Ok(OpResult::Read(None))).unwrap();
        rec.complete(c, Outcome::Info).unwrap();
        rec.complete(a, Outcome::Fail).unwrap();
        rec.complete(ra, Outcome::Ok(OpResult::ReadAll(vec![1, 2])))
            .unwrap();
        rec.history()
    }

    #[test]
    fn json_lines_round_trip() {
        let history = sample();
        let mut bytes = Vec::new();
        history.write_json_lines(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.lines().count(), 6);
        let back = History::read_json_lines(bytes.as_slice()).unwrap();
        assert_eq!(back, history);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let history = sample();
        history.save(&path).unwrap();
        assert_eq!(History::load(&path).unwrap(), history);
    }

    #[test]
    fn json_form_is_readable() {
        let line = r#"{"id":7,"process":2,"key":"x","op":{"f":"cas","value":{"expected":null,"new":5}},"invoked_at":3,"completed_at":9,"outcome":{"type":"ok","result":{"cas":true}}}"#;
        let history = History::read_json_lines(line.as_bytes()).unwrap();
        let op = &history.ops()[0];
        assert_eq!(op.id, OpId(7));
        assert_eq!(op.key, "x");
        assert_eq!(
            op.op,
            Op::Cas {
                expected: None,
                new: 5
            }
        );
        assert_eq!(op.outcome, Outcome::Ok(OpResult::Cas(true)));
        // Key and completion may be left out.
        let line =
            r#"{"id":1,"process":0,"op":{"f":"read"},"invoked_at":0,"outcome":{"type":"info"}}"#;
        let history = History::read_json_lines(line.as_bytes()).unwrap();
        assert_eq!(history.ops()[0].key, "");
        assert_eq!(history.ops()[0].completed_at, None);
    }

    #[test]
    fn deletes_and_listings_round_trip() {
        let rec = Recorder::new();
        let d = rec.invoke_keyed(ProcessId(0), "e0/k1", Op::Delete);
        let l = rec.invoke_keyed(ProcessId(1), "e0/", Op::List);
        rec.complete(d, Outcome::Ok(OpResult::Done)).unwrap();
        let listed = BTreeMap::from([("e0/k0".to_string(), 4)]);
        assert!(matches!(
            rec.complete(l, Outcome::Ok(OpResult::Read(None))),
            Err(HistoryError::ResultMismatch { .. })
        ));
        rec.complete(l, Outcome::Ok(OpResult::Listed(listed)))
            .unwrap();
        let history = rec.history();
        let mut bytes = Vec::new();
        history.write_json_lines(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""op":{"f":"delete"}"#), "{text}");
        assert!(text.contains(r#""listed":{"e0/k0":4}"#), "{text}");
        assert_eq!(History::read_json_lines(bytes.as_slice()).unwrap(), history);
        assert!(history.ops()[1].to_string().contains("list: ok [e0/k0=4]"));
    }

    #[test]
    fn queue_operations_round_trip() {
        let rec = Recorder::new();
        let send = rec.invoke(
            ProcessId(0),
            Op::Send {
                group: Some("g1".into()),
                values: vec![1, 2],
            },
        );
        let receive = rec.invoke(
            ProcessId(1),
            Op::Receive {
                visibility_ms: 5000,
            },
        );
        rec.complete(send, Outcome::Ok(OpResult::Batch { refused: vec![1] }))
            .unwrap();
        let delivery = Delivery {
            value: 1,
            message_id: "m1".into(),
            group: Some("g1".into()),
            sequence: Some("00000000000000000001".into()),
        };
        assert!(matches!(
            rec.complete(receive, Outcome::Ok(OpResult::Batch { refused: vec![] })),
            Err(HistoryError::ResultMismatch { .. })
        ));
        rec.complete(receive, Outcome::Ok(OpResult::Received(vec![delivery])))
            .unwrap();
        let delete = rec.invoke(
            ProcessId(1),
            Op::DeleteMessages(vec![MessageRef {
                value: 1,
                message_id: "m1".into(),
            }]),
        );
        rec.complete(delete, Outcome::Ok(OpResult::Batch { refused: vec![] }))
            .unwrap();
        let drain = rec.invoke(ProcessId(2), Op::Drain);
        rec.complete(drain, Outcome::Ok(OpResult::Done)).unwrap();
        let history = rec.history();
        let mut bytes = Vec::new();
        history.write_json_lines(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""f":"send","value":{"group":"g1","values":[1,2]}"#),
            "{text}"
        );
        assert!(text.contains(r#""refused":[1]"#), "{text}");
        assert_eq!(History::read_json_lines(bytes.as_slice()).unwrap(), history);
        let shown: Vec<String> = history.ops().iter().map(|op| op.to_string()).collect();
        assert!(shown[0].contains("send [1, 2] to group g1: ok, entries [1] refused"));
        assert!(shown[1].contains("receive (visibility 5000 ms): ok [1 as m1 in g1 #0"));
        assert!(shown[2].contains("delete [1 as m1]: ok"));
        assert!(shown[3].contains("drain: ok"));
    }

    #[test]
    fn stream_operations_round_trip() {
        let rec = Recorder::new();
        let put = rec.invoke(
            ProcessId(0),
            Op::PutRecords(vec![
                StreamPut {
                    value: 1,
                    partition_key: "k1".into(),
                    explicit_hash_key: None,
                },
                StreamPut {
                    value: 2,
                    partition_key: "k2".into(),
                    explicit_hash_key: Some("42".into()),
                },
            ]),
        );
        rec.complete(
            put,
            Outcome::Ok(OpResult::Put(vec![
                PutEntry::Ok {
                    shard: "shardId-000000000000".into(),
                    sequence: "4900".into(),
                },
                PutEntry::Refused {
                    code: "ProvisionedThroughputExceededException".into(),
                },
            ])),
        )
        .unwrap();
        let get = rec.invoke(
            ProcessId(1),
            Op::GetRecords {
                shard: "shardId-000000000000".into(),
                reader: 1,
                after: None,
            },
        );
        assert!(matches!(
            rec.complete(get, Outcome::Ok(OpResult::Done)),
            Err(HistoryError::ResultMismatch { .. })
        ));
        let child = ShardInfo {
            shard: "shardId-000000000004".into(),
            parents: vec!["shardId-000000000000".into()],
            starting_hash_key: "0".into(),
            ending_hash_key: "9".into(),
            ending_sequence: None,
        };
        rec.complete(
            get,
            Outcome::Ok(OpResult::Records {
                records: vec![StreamRecord {
                    value: 1,
                    sequence: "4900".into(),
                    partition_key: "k1".into(),
                }],
                children: Some(vec![child.clone()]),
                behind_ms: 0,
            }),
        )
        .unwrap();
        let list = rec.invoke(ProcessId(2), Op::ListShards);
        rec.complete(list, Outcome::Ok(OpResult::Shards(vec![child])))
            .unwrap();
        let history = rec.history();
        let mut bytes = Vec::new();
        history.write_json_lines(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""f":"put_records""#), "{text}");
        assert!(text.contains(r#""explicit_hash_key":"42""#), "{text}");
        assert_eq!(History::read_json_lines(bytes.as_slice()).unwrap(), history);
        let shown: Vec<String> = history.ops().iter().map(|op| op.to_string()).collect();
        assert!(shown[0]
            .contains("put [1 by k1, 2 by k2 (hash 42)]: ok [shardId-000000000000 #4900, refused"));
        assert!(shown[1]
            .contains("get-records shardId-000000000000 from its start (reader 1): ok [1 #4900]"));
        assert!(
            shown[1].contains("end of shard, children [\"shardId-000000000004\"]"),
            "{}",
            shown[1]
        );
        assert!(shown[2].contains("list-shards: ok [shardId-000000000004 from"));
    }

    #[test]
    fn nemesis_events_and_wall_clock_round_trip() {
        let rec = Recorder::new();
        let fault = rec.invoke(
            ProcessId(u64::MAX),
            Op::Nemesis(NemesisEvent {
                action: NemesisAction::Start,
                fault: "pause".into(),
                nodes: vec![2],
                detail: "leader of group 3".into(),
            }),
        );
        let read = rec.invoke_keyed(ProcessId(0), "k", Op::Read);
        rec.complete(fault, Outcome::Ok(OpResult::Done)).unwrap();
        rec.complete(read, Outcome::Ok(OpResult::Read(None)))
            .unwrap();
        let history = rec.history();
        let ops = history.ops();
        let (invoked, completed) = (ops[0].wall.invoked_us, ops[0].wall.completed_us);
        assert!(invoked.is_some() && completed.is_some());
        assert!(invoked <= ops[1].wall.invoked_us && completed <= ops[1].wall.completed_us);
        assert_eq!(history.keys(), BTreeSet::from(["k"]));
        assert_eq!(history.client_ops().count(), 1);
        assert!(ops[0].to_string().contains("nemesis start pause on [2]"));

        let mut bytes = Vec::new();
        history.write_json_lines(&mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""f":"nemesis""#), "{text}");
        assert!(text.contains(r#""invoked_us":"#), "{text}");
        assert_eq!(History::read_json_lines(bytes.as_slice()).unwrap(), history);
    }

    #[test]
    fn recorder_orders_events_and_marks_pending_as_info() {
        let history = sample();
        let ops = history.ops();
        // Six invocations took ticks 0..6, completions follow in call order.
        assert_eq!(
            ops.iter().map(|op| op.invoked_at).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(ops[0].completed_at, Some(6));
        assert_eq!(ops[4].completed_at, Some(10));
        assert_eq!(ops[5].outcome, Outcome::Info);
        assert_eq!(ops[5].completed_at, None);
        assert_eq!(history.keys(), BTreeSet::from(["", "k", "s"]));
    }

    #[test]
    fn recorder_rejects_bad_completions() {
        let rec = Recorder::new();
        let id = rec.invoke(ProcessId(0), Op::Read);
        assert!(matches!(
            rec.complete(id, Outcome::Ok(OpResult::Cas(true))),
            Err(HistoryError::ResultMismatch { .. })
        ));
        rec.complete(id, Outcome::Ok(OpResult::Read(Some(1))))
            .unwrap();
        assert!(matches!(
            rec.complete(id, Outcome::Fail),
            Err(HistoryError::AlreadyCompleted(_))
        ));
        assert!(matches!(
            rec.complete(OpId(99), Outcome::Fail),
            Err(HistoryError::UnknownOp(_))
        ));
    }

    #[test]
    fn recorder_is_shared_between_threads() {
        let rec = Recorder::new();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let id = rec.invoke(ProcessId(p), Op::Write(p * 100 + i));
                        rec.complete(id, Outcome::Ok(OpResult::Done)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let history = rec.history();
        assert_eq!(history.len(), 100);
        let mut ticks: Vec<Tick> = history
            .ops()
            .iter()
            .flat_map(|op| [op.invoked_at, op.completed_at.unwrap()])
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        assert_eq!(ticks.len(), 200, "every event has its own tick");
    }

    #[test]
    fn malformed_histories_are_rejected() {
        let op = |id, outcome, completed_at| Operation {
            id: OpId(id),
            process: ProcessId(0),
            key: Key::new(),
            op: Op::Read,
            invoked_at: 5,
            completed_at,
            outcome,
            wall: WallClock::default(),
        };
        let read_ok = Outcome::Ok(OpResult::Read(None));
        assert!(matches!(
            History::from_ops(vec![
                op(1, read_ok.clone(), Some(6)),
                op(1, Outcome::Fail, Some(7))
            ]),
            Err(HistoryError::DuplicateId(OpId(1)))
        ));
        assert!(matches!(
            History::from_ops(vec![op(1, read_ok.clone(), Some(4))]),
            Err(HistoryError::CompletesBeforeInvoke { .. })
        ));
        assert!(matches!(
            History::from_ops(vec![op(1, read_ok, None)]),
            Err(HistoryError::MissingCompletion { .. })
        ));
        assert!(matches!(
            History::from_ops(vec![op(1, Outcome::Ok(OpResult::Done), Some(6))]),
            Err(HistoryError::ResultMismatch { .. })
        ));
        assert!(History::from_ops(vec![op(1, Outcome::Info, None)]).is_ok());
        let bad_json = "{\"id\":1}\n";
        assert!(matches!(
            History::read_json_lines(bad_json.as_bytes()),
            Err(HistoryError::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn precedence_is_strict_and_never_from_info() {
        let mk = |invoked_at, completed_at, outcome| Operation {
            id: OpId(0),
            process: ProcessId(0),
            key: Key::new(),
            op: Op::Write(1),
            invoked_at,
            completed_at: Some(completed_at),
            outcome,
            wall: WallClock::default(),
        };
        let ok = Outcome::Ok(OpResult::Done);
        assert!(mk(0, 1, ok.clone()).precedes(&mk(2, 3, ok.clone())));
        assert!(!mk(0, 2, ok.clone()).precedes(&mk(2, 3, ok.clone())));
        assert!(!mk(0, 1, Outcome::Info).precedes(&mk(2, 3, ok)));
    }
}
