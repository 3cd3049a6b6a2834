//! The queue checker: clients send messages whose bodies are values unique in the run,
//! receive them and delete them; after the faults are healed a drain receives and deletes
//! until the queue stays empty.
//!
//! [`check`] indexes a history (every value's send attempts, deliveries and deletes) and
//! judges what every SQS queue promises:
//! - lost: a value a send acknowledged that no receive returned, although the drain saw
//!   the queue empty afterwards (without a successful drain such values are *unconfirmed*
//!   and the verdict is unknown);
//! - unexpected: a value a receive returned that no send invoked before that receive
//!   completed carried (a body that is not a value the workload wrote included);
//! - failed but delivered: a value every send of which was refused, returned by a receive;
//! - corrupt: two deliveries of one message (one message id) that disagree on its value,
//!   group or sequence number, or a delivery in another group than the value was sent to.
//!
//! Counted, not judged, for a standard queue (it delivers at least once): *redeliveries*
//! (a message returned again under the id it had), *copies* (a value returned under more
//! than one message id), *early redeliveries* (returned again before the visibility timeout
//! of an earlier delivery could have run out, by the harness's clock with
//! [`CLOCK_TOLERANCE_MS`] of slack), deliveries after an acknowledged delete (a standard
//! queue acknowledges a delete by an older receipt without deleting), and *recovered*
//! values (sends of unknown outcome that happened).
//!
//! For a FIFO queue ([`QueueKind::Fifo`]) copies of a value whose sends all fell inside the
//! deduplication window, early redeliveries and deliveries after an acknowledged delete are
//! anomalies too, and [`super::fifo`] checks the order within each message group.
//!
//! Not checked: message attributes, delays, retention, and how long the queue took to hand
//! a message out (an acknowledged message delivered only by the drain is not lost).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::checker::{CheckError, Validity};
use crate::history::{Delivery, History, Op, OpId, OpResult, Operation, Outcome, Tick, Value};

/// Which promises the queue makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// At least once, in no particular order.
    Standard,
    /// In order within a message group, without duplicates inside the deduplication window.
    Fifo,
}

/// Slack for the clocks of the nodes (which set visibility deadlines) against the
/// harness's (which times the receives).
pub const CLOCK_TOLERANCE_MS: u64 = 250;

/// How long after the first send of a value a FIFO queue must still recognise its
/// deduplication id: SQS's five-minute window, less a minute of slack for a send applied
/// after its invocation.
pub const DEDUP_WINDOW_US: u64 = 240 * 1_000_000;

/// How many anomalies of one kind a report keeps (all are counted).
pub const ANOMALIES_KEPT: usize = 100;

/// What happened to one entry of a send or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryOutcome {
    Applied,
    Refused,
    Unknown,
}

/// The outcome of entry `position` of `op`.
fn entry_outcome(op: &Operation, position: usize) -> EntryOutcome {
    match &op.outcome {
        Outcome::Ok(OpResult::Batch { refused }) if refused.contains(&position) => {
            EntryOutcome::Refused
        }
        Outcome::Ok(_) => EntryOutcome::Applied,
        Outcome::Fail => EntryOutcome::Refused,
        Outcome::Info => EntryOutcome::Unknown,
    }
}

/// One message a receive returned, where.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryAt<'a> {
    pub op: &'a Operation,
    pub delivery: &'a Delivery,
    pub visibility_ms: u64,
}

impl DeliveryAt<'_> {
    pub fn invoked(&self) -> Tick {
        self.op.invoked_at
    }

    pub fn completed(&self) -> Tick {
        self.op.completed_at.unwrap_or(Tick::MAX)
    }
}

/// Everything the history says about one value.
#[derive(Debug, Default)]
pub(crate) struct ValueRecord<'a> {
    /// The group its first send named.
    pub group: Option<String>,
    pub sends: Vec<(&'a Operation, EntryOutcome)>,
    pub deliveries: Vec<DeliveryAt<'a>>,
}

impl ValueRecord<'_> {
    /// When its first send was invoked.
    pub fn first_send(&self) -> Option<Tick> {
        self.sends.iter().map(|(op, _)| op.invoked_at).min()
    }

    /// When a send of it was first acknowledged.
    pub fn acknowledged_at(&self) -> Option<Tick> {
        self.sends
            .iter()
            .filter(|(_, outcome)| *outcome == EntryOutcome::Applied)
            .filter_map(|(op, _)| op.completed_at)
            .min()
    }

    /// The earliest invocation of a receive that returned it.
    pub fn first_delivery_invoked(&self) -> Option<Tick> {
        self.deliveries.iter().map(DeliveryAt::invoked).min()
    }

    /// The earliest completion of a receive that returned it.
    pub fn first_delivery_completed(&self) -> Option<Tick> {
        self.deliveries.iter().map(DeliveryAt::completed).min()
    }
}

/// A delete of one message, with what became of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeleteAt<'a> {
    pub op: &'a Operation,
    pub outcome: EntryOutcome,
}

/// A history's queue operations, by value and by message id.
#[derive(Debug, Default)]
pub(crate) struct QueueIndex<'a> {
    pub values: BTreeMap<Value, ValueRecord<'a>>,
    /// Every delivery of each message id, in history order.
    pub messages: BTreeMap<&'a str, Vec<DeliveryAt<'a>>>,
    /// Every delete entry naming each message id.
    pub deletes: BTreeMap<&'a str, Vec<DeleteAt<'a>>>,
    /// The successful receives, in history order.
    pub receives: Vec<(&'a Operation, &'a [Delivery])>,
    /// The successful drain invoked last.
    pub drain: Option<&'a Operation>,
}

impl<'a> QueueIndex<'a> {
    pub fn of(history: &'a History) -> Result<QueueIndex<'a>, CheckError> {
        let mut index = QueueIndex::default();
        for op in history.ops() {
            match (&op.op, &op.outcome) {
                (Op::Send { group, values }, _) => {
                    for (position, value) in values.iter().enumerate() {
                        let record = index.values.entry(*value).or_default();
                        if record.sends.is_empty() {
                            record.group = group.clone();
                        }
                        record.sends.push((op, entry_outcome(op, position)));
                    }
                }
                (Op::Receive { visibility_ms }, Outcome::Ok(OpResult::Received(deliveries))) => {
                    index.receives.push((op, deliveries));
                    for delivery in deliveries {
                        let at = DeliveryAt {
                            op,
                            delivery,
                            visibility_ms: *visibility_ms,
                        };
                        index
                            .values
                            .entry(delivery.value)
                            .or_default()
                            .deliveries
                            .push(at);
                        index
                            .messages
                            .entry(delivery.message_id.as_str())
                            .or_default()
                            .push(at);
                    }
                }
                (Op::DeleteMessages(refs), _) => {
                    for (position, r) in refs.iter().enumerate() {
                        index
                            .deletes
                            .entry(r.message_id.as_str())
                            .or_default()
                            .push(DeleteAt {
                                op,
                                outcome: entry_outcome(op, position),
                            });
                    }
                }
                (Op::Drain, Outcome::Ok(_)) => {
                    if index.drain.is_none_or(|d| op.invoked_at > d.invoked_at) {
                        index.drain = Some(op);
                    }
                }
                (Op::Receive { .. } | Op::Drain | Op::Nemesis(_), _) => {}
                _ => {
                    return Err(CheckError::UnsupportedOp {
                        id: op.id,
                        op: op.op.clone(),
                        model: "queue",
                    })
                }
            }
        }
        Ok(index)
    }
}

/// A message returned again sooner than the visibility timeout of an earlier delivery
/// allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyRedelivery {
    pub value: Value,
    pub message_id: String,
    /// The receives, in the order they were invoked.
    pub first: OpId,
    pub second: OpId,
    /// How long after the first receive was invoked the second completed.
    pub after_ms: u64,
    pub visibility_ms: u64,
}

/// A message returned by a receive invoked after a delete of it was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredAfterDelete {
    pub value: Value,
    pub message_id: String,
    pub delete: OpId,
    pub receive: OpId,
}

/// Two messages of one FIFO group delivered against their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorder {
    pub group: String,
    /// The value that had to come first, and the one that came before it.
    pub first: Value,
    pub then: Value,
    /// What shows it, naming the operations.
    pub why: String,
}

/// What a queue history shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReport {
    pub kind: QueueKind,
    /// The drain the lost values are judged by.
    pub drain: Option<OpId>,
    /// Distinct values some send carried.
    pub attempted: usize,
    /// Of those, values a send acknowledged.
    pub acknowledged: usize,
    /// Distinct values some receive returned.
    pub delivered: usize,
    /// Messages returned in all, redeliveries included.
    pub deliveries: usize,
    pub lost: Vec<Value>,
    /// Acknowledged, never returned, and no drain to say they are gone.
    pub unconfirmed: Vec<Value>,
    /// Values returned that no send had carried by then (op of the first such receive).
    pub unexpected: Vec<(Value, OpId)>,
    pub failed_but_delivered: Vec<Value>,
    pub corrupt: Vec<String>,
    /// Values of unknown outcome that were delivered.
    pub recovered: usize,
    /// Values carried by more than one send (FIFO retries of unknown outcomes).
    pub resent: usize,
    /// Deliveries of a message id already delivered before.
    pub redeliveries: usize,
    /// Values returned under more than one message id.
    pub copies: Vec<Value>,
    /// FIFO: copies whose sends all fell inside the deduplication window.
    pub duplicated: Vec<Value>,
    pub early_redeliveries: Vec<EarlyRedelivery>,
    pub early_redelivery_count: usize,
    pub after_delete: Vec<DeliveredAfterDelete>,
    pub after_delete_count: usize,
    /// FIFO: order violations within message groups.
    pub reorders: Vec<Reorder>,
    pub reorder_count: usize,
    /// FIFO: message groups checked.
    pub groups: usize,
}

impl QueueReport {
    fn new(kind: QueueKind) -> Self {
        QueueReport {
            kind,
            drain: None,
            attempted: 0,
            acknowledged: 0,
            delivered: 0,
            deliveries: 0,
            lost: Vec::new(),
            unconfirmed: Vec::new(),
            unexpected: Vec::new(),
            failed_but_delivered: Vec::new(),
            corrupt: Vec::new(),
            recovered: 0,
            resent: 0,
            redeliveries: 0,
            copies: Vec::new(),
            duplicated: Vec::new(),
            early_redeliveries: Vec::new(),
            early_redelivery_count: 0,
            after_delete: Vec::new(),
            after_delete_count: 0,
            reorders: Vec::new(),
            reorder_count: 0,
            groups: 0,
        }
    }

    pub fn validity(&self) -> Validity {
        let always = self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.failed_but_delivered.is_empty()
            && self.corrupt.is_empty();
        let fifo = self.kind == QueueKind::Standard
            || (self.duplicated.is_empty()
                && self.early_redelivery_count == 0
                && self.after_delete_count == 0
                && self.reorder_count == 0);
        if !(always && fifo) {
            Validity::Invalid
        } else if !self.unconfirmed.is_empty() {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    pub(crate) fn push_reorder(&mut self, reorder: Reorder) {
        self.reorder_count += 1;
        if self.reorders.len() < ANOMALIES_KEPT {
            self.reorders.push(reorder);
        }
    }
}

/// How many values of each list a report shows.
const VALUES_SHOWN: usize = 20;

struct Values<'a>(&'a [Value]);

impl fmt::Display for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .0
            .iter()
            .take(VALUES_SHOWN)
            .map(Value::to_string)
            .collect();
        write!(f, "[{}", shown.join(", "))?;
        if self.0.len() > VALUES_SHOWN {
            write!(f, ", ... {} more", self.0.len() - VALUES_SHOWN)?;
        }
        write!(f, "]")
    }
}

impl fmt::Display for QueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fifo = self.kind == QueueKind::Fifo;
        writeln!(
            f,
            "{} queue {}: {} values sent, {} acknowledged, {} delivered ({} deliveries){}",
            if fifo { "fifo" } else { "standard" },
            self.validity(),
            self.attempted,
            self.acknowledged,
            self.delivered,
            self.deliveries,
            match self.drain {
                Some(id) => format!(", drained (#{})", id.0),
                None => ", NOT drained".to_string(),
            }
        )?;
        let unexpected: Vec<Value> = self.unexpected.iter().map(|(v, _)| *v).collect();
        let lists = [
            ("lost (acknowledged, never delivered)", &self.lost),
            (
                "unconfirmed (acknowledged, not delivered, no drain)",
                &self.unconfirmed,
            ),
            ("unexpected (never sent)", &unexpected),
            ("failed but delivered", &self.failed_but_delivered),
            (
                if fifo {
                    "copies outside the deduplication window"
                } else {
                    "copies (delivered under more than one message id)"
                },
                &self.copies,
            ),
            (
                "duplicated (copies inside the deduplication window)",
                &self.duplicated,
            ),
        ];
        for (name, values) in lists {
            if !values.is_empty() {
                writeln!(f, "  {name}: {} {}", values.len(), Values(values))?;
            }
        }
        for (value, op) in self.unexpected.iter().take(VALUES_SHOWN) {
            writeln!(f, "    {value} first returned by #{}", op.0)?;
        }
        if !self.corrupt.is_empty() {
            writeln!(f, "  corrupt deliveries: {}", self.corrupt.len())?;
            for c in self.corrupt.iter().take(VALUES_SHOWN) {
                writeln!(f, "    {c}")?;
            }
        }
        writeln!(
            f,
            "  recovered (unknown sends that happened): {}; resent: {}; redeliveries: {}",
            self.recovered, self.resent, self.redeliveries
        )?;
        let judged = if fifo { "" } else { " (allowed)" };
        if self.early_redelivery_count > 0 {
            writeln!(
                f,
                "  early redeliveries{judged}: {}",
                self.early_redelivery_count
            )?;
            for e in self.early_redeliveries.iter().take(VALUES_SHOWN) {
                writeln!(
                    f,
                    "    {} as {}: #{} then #{} completed {} ms after it began (visibility {} ms)",
                    e.value, e.message_id, e.first.0, e.second.0, e.after_ms, e.visibility_ms
                )?;
            }
        }
        if self.after_delete_count > 0 {
            writeln!(
                f,
                "  delivered after an acknowledged delete{judged}: {}",
                self.after_delete_count
            )?;
            for a in self.after_delete.iter().take(VALUES_SHOWN) {
                writeln!(
                    f,
                    "    {} as {}: deleted by #{}, returned again by #{}",
                    a.value, a.message_id, a.delete.0, a.receive.0
                )?;
            }
        }
        if fifo {
            writeln!(
                f,
                "  order: {} groups checked, {} violations",
                self.groups, self.reorder_count
            )?;
            for r in self.reorders.iter().take(VALUES_SHOWN) {
                writeln!(
                    f,
                    "    group {}: {} had to come before {}: {}",
                    r.group, r.first, r.then, r.why
                )?;
            }
        }
        Ok(())
    }
}

/// Checks a queue history: the promises of every queue, and for a FIFO queue its order
/// and deduplication too.
pub fn check(history: &History, kind: QueueKind) -> Result<QueueReport, CheckError> {
    let index = QueueIndex::of(history)?;
    let mut report = QueueReport::new(kind);
    report.drain = index.drain.map(|d| d.id);
    check_values(&index, &mut report);
    check_messages(&index, &mut report);
    if kind == QueueKind::Fifo {
        super::fifo::check_order(&index, &mut report);
    }
    Ok(report)
}

/// Lost, unexpected, failed but delivered, recovered and copies, value by value.
fn check_values(index: &QueueIndex<'_>, report: &mut QueueReport) {
    for (value, record) in &index.values {
        let sent = !record.sends.is_empty();
        let delivered = !record.deliveries.is_empty();
        report.attempted += usize::from(sent);
        report.resent += usize::from(record.sends.len() > 1);
        report.delivered += usize::from(delivered);
        report.deliveries += record.deliveries.len();
        let acknowledged = record.acknowledged_at();
        if acknowledged.is_some() {
            report.acknowledged += 1;
        }
        if !delivered {
            if let Some(ack) = acknowledged {
                match index.drain {
                    Some(drain) if ack < drain.invoked_at => report.lost.push(*value),
                    _ => report.unconfirmed.push(*value),
                }
            }
            continue;
        }
        // Unexpected: some delivery completed before any send of the value was invoked.
        let first_send = record.first_send();
        if let Some(early) = record
            .deliveries
            .iter()
            .filter(|d| first_send.is_none_or(|s| d.completed() < s))
            .min_by_key(|d| d.completed())
        {
            report.unexpected.push((*value, early.op.id));
        }
        let any = |wanted: EntryOutcome| record.sends.iter().any(|(_, o)| *o == wanted);
        if sent && !any(EntryOutcome::Applied) {
            if any(EntryOutcome::Unknown) {
                report.recovered += 1;
            } else {
                report.failed_but_delivered.push(*value);
            }
        }
        if let Some(group) = &record.group {
            for d in &record.deliveries {
                if d.delivery.group.as_ref() != Some(group) {
                    report.corrupt.push(format!(
                        "{value} sent to group {group} returned by #{} in group {:?}",
                        d.op.id.0, d.delivery.group
                    ));
                }
            }
        }
        let ids: BTreeSet<&str> = record
            .deliveries
            .iter()
            .map(|d| d.delivery.message_id.as_str())
            .collect();
        if ids.len() > 1 {
            let within_window = record
                .sends
                .iter()
                .filter_map(|(op, _)| op.wall.invoked_us)
                .fold(None, |range: Option<(u64, u64)>, us| match range {
                    None => Some((us, us)),
                    Some((lo, hi)) => Some((lo.min(us), hi.max(us))),
                })
                .is_none_or(|(lo, hi)| hi - lo < DEDUP_WINDOW_US);
            if report.kind == QueueKind::Fifo && within_window {
                report.duplicated.push(*value);
            } else {
                report.copies.push(*value);
            }
        }
    }
}

/// Per message id: deliveries that disagree, redeliveries, early redeliveries, and
/// deliveries after an acknowledged delete.
fn check_messages(index: &QueueIndex<'_>, report: &mut QueueReport) {
    for (message_id, deliveries) in &index.messages {
        let first = deliveries[0].delivery;
        for d in &deliveries[1..] {
            let other = d.delivery;
            if (other.value, &other.group, &other.sequence)
                != (first.value, &first.group, &first.sequence)
            {
                report.corrupt.push(format!(
                    "message {message_id} returned by #{} as {} (group {:?}, sequence {:?}) \
                     and by #{} as {} (group {:?}, sequence {:?})",
                    deliveries[0].op.id.0,
                    first.value,
                    first.group,
                    first.sequence,
                    d.op.id.0,
                    other.value,
                    other.group,
                    other.sequence
                ));
            }
        }
        report.redeliveries += deliveries.len() - 1;
        for (i, a) in deliveries.iter().enumerate() {
            for b in &deliveries[i + 1..] {
                if let Some(early) = early_redelivery(a, b) {
                    report.early_redelivery_count += 1;
                    if report.early_redeliveries.len() < ANOMALIES_KEPT {
                        report.early_redeliveries.push(early);
                    }
                }
            }
        }
        let acknowledged_deletes = index
            .deletes
            .get(message_id)
            .into_iter()
            .flatten()
            .filter(|d| d.outcome == EntryOutcome::Applied);
        let first_deleted = acknowledged_deletes.min_by_key(|d| d.op.completed_at);
        if let Some(delete) = first_deleted {
            let done = delete.op.completed_at.unwrap_or(Tick::MAX);
            for d in deliveries.iter().filter(|d| d.invoked() > done) {
                report.after_delete_count += 1;
                if report.after_delete.len() < ANOMALIES_KEPT {
                    report.after_delete.push(DeliveredAfterDelete {
                        value: d.delivery.value,
                        message_id: message_id.to_string(),
                        delete: delete.op.id,
                        receive: d.op.id,
                    });
                }
            }
        }
    }
}

/// Whether two deliveries of one message came too close together: whichever the queue
/// made first, the other had to wait for its visibility timeout, so the other's receive
/// cannot have completed sooner than that after the first's began.
fn early_redelivery(a: &DeliveryAt<'_>, b: &DeliveryAt<'_>) -> Option<EarlyRedelivery> {
    let times = |d: &DeliveryAt<'_>| Some((d.op.wall.invoked_us?, d.op.wall.completed_us?));
    let ((a_start, a_end), (b_start, b_end)) = (times(a)?, times(b)?);
    let too_soon = |start: u64, end: u64, visibility_ms: u64| {
        end + CLOCK_TOLERANCE_MS * 1000 < start + visibility_ms * 1000
    };
    if too_soon(a_start, b_end, a.visibility_ms) && too_soon(b_start, a_end, b.visibility_ms) {
        let (first, second, start, end, visibility_ms) = if a_start <= b_start {
            (a, b, a_start, b_end, a.visibility_ms)
        } else {
            (b, a, b_start, a_end, b.visibility_ms)
        };
        Some(EarlyRedelivery {
            value: first.delivery.value,
            message_id: first.delivery.message_id.clone(),
            first: first.op.id,
            second: second.op.id,
            after_ms: end.saturating_sub(start) / 1000,
            visibility_ms,
        })
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::{Key, MessageRef, ProcessId, WallClock};

    /// Builds hand-made queue histories: every event takes the next tick, and the wall
    /// clock is the tick in milliseconds.
    #[derive(Default)]
    pub(crate) struct Builder {
        ops: Vec<Operation>,
        tick: Tick,
    }

    pub(crate) const VISIBILITY_MS: u64 = 5000;

    impl Builder {
        pub fn new() -> Self {
            Self::default()
        }

        /// Moves the clock on by `ms`.
        pub fn wait(&mut self, ms: u64) -> &mut Self {
            self.tick += ms;
            self
        }

        fn push(&mut self, op: Op, outcome: Outcome, span: u64) -> OpId {
            let id = OpId(self.ops.len() as u64);
            let invoked_at = self.tick;
            let completed_at = self.tick + span;
            self.tick = completed_at + 1;
            self.ops.push(Operation {
                id,
                process: ProcessId(0),
                key: Key::new(),
                op,
                invoked_at,
                completed_at: Some(completed_at),
                outcome,
                wall: WallClock {
                    invoked_us: Some(invoked_at * 1000),
                    completed_us: Some(completed_at * 1000),
                },
            });
            id
        }

        pub fn send_in(&mut self, group: Option<&str>, values: &[Value], outcome: Outcome) -> OpId {
            let op = Op::Send {
                group: group.map(str::to_string),
                values: values.to_vec(),
            };
            self.push(op, outcome, 1)
        }

        pub fn send(&mut self, values: &[Value]) -> OpId {
            self.send_in(None, values, ok())
        }

        /// A receive of (value, message id, sequence) in `group`.
        pub fn receive_in(&mut self, group: Option<&str>, got: &[(Value, &str, u64)]) -> OpId {
            let deliveries = got
                .iter()
                .map(|(value, id, sequence)| Delivery {
                    value: *value,
                    message_id: id.to_string(),
                    group: group.map(str::to_string),
                    sequence: group.map(|_| format!("{sequence:020}")),
                })
                .collect();
            self.push(
                Op::Receive {
                    visibility_ms: VISIBILITY_MS,
                },
                Outcome::Ok(OpResult::Received(deliveries)),
                1,
            )
        }

        pub fn receive(&mut self, got: &[(Value, &str)]) -> OpId {
            let got: Vec<(Value, &str, u64)> = got.iter().map(|(v, id)| (*v, *id, 0)).collect();
            self.receive_in(None, &got)
        }

        pub fn delete(&mut self, refs: &[(Value, &str)], outcome: Outcome) -> OpId {
            let refs = refs
                .iter()
                .map(|(value, id)| MessageRef {
                    value: *value,
                    message_id: id.to_string(),
                })
                .collect();
            self.push(Op::DeleteMessages(refs), outcome, 1)
        }

        pub fn drain(&mut self) -> OpId {
            self.push(Op::Drain, Outcome::Ok(OpResult::Done), 1)
        }

        pub fn history(&self) -> History {
            History::from_ops(self.ops.clone()).unwrap()
        }
    }

    pub(crate) fn ok() -> Outcome {
        Outcome::Ok(OpResult::Batch {
            refused: Vec::new(),
        })
    }

    pub(crate) fn refused(positions: &[usize]) -> Outcome {
        Outcome::Ok(OpResult::Batch {
            refused: positions.to_vec(),
        })
    }

    fn standard(b: &Builder) -> QueueReport {
        check(&b.history(), QueueKind::Standard).unwrap()
    }

    #[test]
    fn every_acknowledged_message_delivered_is_valid() {
        let mut b = Builder::new();
        b.send(&[1]);
        b.send(&[2, 3, 4]);
        b.send_in(None, &[5], Outcome::Info);
        b.send_in(None, &[6], Outcome::Fail);
        b.send_in(None, &[7, 8], refused(&[1]));
        b.send_in(None, &[9], Outcome::Info);
        b.receive(&[(3, "m3"), (1, "m1")]);
        b.delete(&[(3, "m3"), (1, "m1")], ok());
        b.receive(&[(2, "m2"), (5, "m5"), (7, "m7")]);
        b.delete(&[(2, "m2")], Outcome::Info);
        b.wait(VISIBILITY_MS);
        b.drain();
        b.receive(&[(2, "m2"), (4, "m4")]);
        b.delete(&[(2, "m2"), (4, "m4")], ok());
        let report = standard(&b);
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.attempted, 9);
        assert_eq!(report.acknowledged, 5);
        assert_eq!(report.delivered, 6);
        assert_eq!(report.deliveries, 7);
        assert_eq!(report.recovered, 1);
        assert_eq!(report.redeliveries, 1);
        assert!(report.early_redeliveries.is_empty());
    }

    #[test]
    fn a_lost_message_is_invalid_and_needs_the_drain() {
        let mut b = Builder::new();
        b.send(&[1, 2]);
        b.receive(&[(1, "m1")]);
        let without_drain = standard(&b);
        assert_eq!(without_drain.validity(), Validity::Unknown);
        assert_eq!(without_drain.unconfirmed, vec![2]);
        b.drain();
        let report = standard(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.lost, vec![2]);
        assert!(
            report
                .to_string()
                .contains("lost (acknowledged, never delivered): 1 [2]"),
            "{report}"
        );
        // A refused entry is not lost.
        let mut b = Builder::new();
        b.send_in(None, &[1, 2], refused(&[1]));
        b.receive(&[(1, "m1")]);
        b.drain();
        assert_eq!(standard(&b).validity(), Validity::Valid);
    }

    #[test]
    fn messages_never_sent_or_refused_are_invalid() {
        let mut b = Builder::new();
        b.receive(&[(7, "m7")]);
        b.send(&[7]);
        b.send_in(None, &[8, 9], refused(&[0]));
        b.receive(&[(8, "m8"), (99, "m99")]);
        b.drain();
        let report = standard(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(
            report
                .unexpected
                .iter()
                .map(|(v, _)| *v)
                .collect::<Vec<_>>(),
            [7, 99]
        );
        assert_eq!(report.failed_but_delivered, vec![8]);
        assert_eq!(report.unconfirmed, Vec::<Value>::new());
        assert_eq!(report.lost, vec![9]);
    }

    #[test]
    fn standard_duplicates_are_counted_not_judged() {
        let mut b = Builder::new();
        b.send(&[1, 2]);
        let first = b.receive(&[(1, "m1"), (2, "m2")]);
        b.delete(&[(1, "m1")], ok());
        // Early: the visibility timeout of the first delivery has not run out.
        b.wait(100);
        let second = b.receive(&[(2, "m2")]);
        // A second copy, and a delivery after an acknowledged delete.
        b.wait(VISIBILITY_MS);
        b.receive(&[(1, "m1b"), (1, "m1")]);
        b.drain();
        let report = standard(&b);
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.copies, vec![1]);
        assert_eq!(report.redeliveries, 2);
        assert_eq!(report.early_redelivery_count, 1);
        assert_eq!(
            (
                report.early_redeliveries[0].first,
                report.early_redeliveries[0].second
            ),
            (first, second)
        );
        assert_eq!(report.after_delete_count, 1);
        let text = report.to_string();
        assert!(text.contains("early redeliveries (allowed): 1"), "{text}");
        assert!(text.contains("copies (delivered under more than one message id): 1 [1]"));
    }

    #[test]
    fn disagreeing_deliveries_are_corrupt() {
        let mut b = Builder::new();
        b.send(&[1, 2]);
        b.receive(&[(1, "m1")]);
        b.wait(VISIBILITY_MS);
        b.receive(&[(2, "m1")]);
        b.drain();
        let report = standard(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.corrupt.len(), 1, "{report}");
    }

    #[test]
    fn other_operations_are_not_part_of_the_model() {
        let history = History::from_ops(vec![Operation {
            id: OpId(0),
            process: ProcessId(0),
            key: Key::new(),
            op: Op::Read,
            invoked_at: 0,
            completed_at: Some(1),
            outcome: Outcome::Ok(OpResult::Read(None)),
            wall: WallClock::default(),
        }])
        .unwrap();
        assert!(matches!(
            check(&history, QueueKind::Standard),
            Err(CheckError::UnsupportedOp { model: "queue", .. })
        ));
    }
}
