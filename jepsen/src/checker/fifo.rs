//! Order within the message groups of a FIFO queue, on top of [`super::queue`]'s checks.
//!
//! SQS promises that a group's messages are delivered in the order they were sent, and
//! that none is delivered while an earlier one of its group is still in the queue (in
//! flight or visible again): a receive may return several of a group at once, in order,
//! but a later message waits until every earlier one has been deleted. Four checks follow,
//! each from what the history can prove; every violation is a [`Reorder`]:
//!
//! 1. *First deliveries in send order*: if a send of A was acknowledged before any send
//!    of B (same group) was invoked, no receive may return B and complete before every
//!    receive that returned A began (A must be delivered first). This needs nothing from
//!    the server but the values.
//! 2. *Sequence numbers in send order*: under the same condition, A's sequence number is
//!    below B's.
//! 3. *One receive, in order*: a receive lists a group's messages by increasing sequence
//!    number, and never B before A when A was acknowledged before B was sent.
//! 4. *Nothing overtakes an undeleted message*: when a receive returns message Y, every
//!    message of its group with a lower sequence number (that some receive returned, so it
//!    is known to exist) was either returned by that same receive or deleted before it:
//!    some delete of it that was not refused was invoked before the receive completed.
//!    Nothing else removes a message here (no dead-letter queue, no purge, four days of
//!    retention).
//!
//! Messages no receive returned have no known sequence number and take part only in the
//! first check (as lost, when acknowledged). Not checked: order across groups (SQS
//! promises none).

use std::collections::{BTreeMap, BTreeSet};

use crate::checker::queue::{DeliveryAt, EntryOutcome, QueueIndex, QueueReport, Reorder};
use crate::history::{Delivery, OpResult, Outcome, Tick, Value};

/// Runs the four checks over every group of `index`, adding what they find to `report`.
pub(crate) fn check_order(index: &QueueIndex<'_>, report: &mut QueueReport) {
    let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (value, record) in &index.values {
        if let Some(group) = &record.group {
            groups.entry(group.as_str()).or_default().push(*value);
        }
    }
    report.groups = groups.len();
    for (group, values) in &groups {
        first_deliveries_follow_send_order(index, group, values, report);
        sequence_numbers_follow_send_order(index, group, values, report);
    }
    receives_list_each_group_in_order(index, report);
    nothing_overtakes_an_undeleted_message(index, report);
}

fn sequence_of(d: &DeliveryAt<'_>) -> Option<u128> {
    d.delivery.sequence.as_deref()?.parse().ok()
}

/// For each value B of `group`, the predecessors A (acknowledged before B's first send)
/// whose `key` is largest, against B's own: finds the worst A in O(n log n).
/// `key(A)` and `bound(B)` are the compared quantities; a pair violates when
/// `key(A) > bound(B)`.
fn worst_predecessors<K: Ord + Copy>(
    index: &QueueIndex<'_>,
    values: &[Value],
    key: impl Fn(Value) -> Option<K>,
    bound: impl Fn(Value) -> Option<K>,
) -> Vec<(Value, Value)> {
    // (acknowledged at, key, value), by acknowledgement.
    let mut acknowledged: Vec<(Tick, K, Value)> = values
        .iter()
        .filter_map(|v| Some((index.values[v].acknowledged_at()?, key(*v)?, *v)))
        .collect();
    acknowledged.sort();
    let mut prefix_max: Vec<(K, Value)> = Vec::with_capacity(acknowledged.len());
    for (_, k, v) in &acknowledged {
        let best = match prefix_max.last() {
            Some(&(m, w)) if m >= *k => (m, w),
            _ => (*k, *v),
        };
        prefix_max.push(best);
    }
    let mut pairs = Vec::new();
    for b in values {
        let record = &index.values[b];
        let (Some(first_send), Some(limit)) = (record.first_send(), bound(*b)) else {
            continue;
        };
        let n = acknowledged.partition_point(|(ack, _, _)| *ack < first_send);
        if let Some(&(k, a)) = n.checked_sub(1).map(|i| &prefix_max[i]) {
            if k > limit {
                pairs.push((a, *b));
            }
        }
    }
    pairs
}

/// Check 1.
fn first_deliveries_follow_send_order(
    index: &QueueIndex<'_>,
    group: &str,
    values: &[Value],
    report: &mut QueueReport,
) {
    let pairs = worst_predecessors(
        index,
        values,
        |a| index.values[&a].first_delivery_invoked(),
        |b| index.values[&b].first_delivery_completed(),
    );
    for (a, b) in pairs {
        let (ra, rb) = (&index.values[&a], &index.values[&b]);
        let acked_by = ra
            .sends
            .iter()
            .filter(|(_, o)| *o == EntryOutcome::Applied)
            .min_by_key(|(op, _)| op.completed_at)
            .map(|(op, _)| op.id.0);
        let sent_by = rb
            .sends
            .iter()
            .map(|(op, _)| op)
            .min_by_key(|op| op.invoked_at);
        let returned_b = rb.deliveries.iter().min_by_key(|d| d.completed());
        let returned_a = ra.deliveries.iter().min_by_key(|d| d.invoked());
        report.push_reorder(Reorder {
            group: group.to_string(),
            first: a,
            then: b,
            why: format!(
                "{a} was acknowledged (#{}) before {b} was first sent (#{}), yet #{} returned \
                 {b} and completed before the first receive of {a} (#{}) began",
                acked_by.unwrap_or_default(),
                sent_by.map(|op| op.id.0).unwrap_or_default(),
                returned_b.map(|d| d.op.id.0).unwrap_or_default(),
                returned_a.map(|d| d.op.id.0).unwrap_or_default(),
            ),
        });
    }
}

/// The lowest sequence number `value` was returned with.
fn lowest_sequence(index: &QueueIndex<'_>, value: Value) -> Option<u128> {
    index.values[&value]
        .deliveries
        .iter()
        .filter_map(sequence_of)
        .min()
}

/// Check 2.
fn sequence_numbers_follow_send_order(
    index: &QueueIndex<'_>,
    group: &str,
    values: &[Value],
    report: &mut QueueReport,
) {
    // A sequence number equal to a predecessor's is as wrong as a lower one: compare
    // (sequence, 1) against (sequence, 0).
    let pairs = worst_predecessors(
        index,
        values,
        |a| lowest_sequence(index, a).map(|s| (s, 1u8)),
        |b| lowest_sequence(index, b).map(|s| (s, 0u8)),
    );
    for (a, b) in pairs {
        report.push_reorder(Reorder {
            group: group.to_string(),
            first: a,
            then: b,
            why: format!(
                "{a} was acknowledged before {b} was first sent, yet has sequence number {} \
                 and {b} {}",
                lowest_sequence(index, a).unwrap_or_default(),
                lowest_sequence(index, b).unwrap_or_default(),
            ),
        });
    }
}

/// Check 3.
fn receives_list_each_group_in_order(index: &QueueIndex<'_>, report: &mut QueueReport) {
    for (op, deliveries) in &index.receives {
        for (i, earlier) in deliveries.iter().enumerate() {
            for later in &deliveries[i + 1..] {
                let Some(group) = earlier
                    .group
                    .as_ref()
                    .filter(|g| later.group.as_ref() == Some(*g))
                else {
                    continue;
                };
                let sequences = (
                    earlier
                        .sequence
                        .as_deref()
                        .and_then(|s| s.parse::<u128>().ok()),
                    later
                        .sequence
                        .as_deref()
                        .and_then(|s| s.parse::<u128>().ok()),
                );
                if let (Some(s1), Some(s2)) = sequences {
                    if s1 >= s2 {
                        report.push_reorder(Reorder {
                            group: group.clone(),
                            first: later.value,
                            then: earlier.value,
                            why: format!(
                                "#{} listed {} (sequence {s1}) before {} (sequence {s2})",
                                op.id.0, earlier.value, later.value
                            ),
                        });
                        continue;
                    }
                }
                let acked_later = index
                    .values
                    .get(&later.value)
                    .and_then(|r| r.acknowledged_at());
                let sent_earlier = index
                    .values
                    .get(&earlier.value)
                    .and_then(|r| r.first_send());
                if let (Some(ack), Some(sent)) = (acked_later, sent_earlier) {
                    if ack < sent {
                        report.push_reorder(Reorder {
                            group: group.clone(),
                            first: later.value,
                            then: earlier.value,
                            why: format!(
                                "#{} listed {} before {}, which was acknowledged before {} \
                                 was first sent",
                                op.id.0, earlier.value, later.value, earlier.value
                            ),
                        });
                    }
                }
            }
        }
    }
}

/// A message of one group as check 4 sees it.
struct Known<'a> {
    sequence: u128,
    message_id: &'a str,
    value: Value,
    /// When the first delete of it that was not refused was invoked (`Tick::MAX`: never).
    deleted_from: Tick,
}

/// Positions of the largest `deleted_from` over ranges, in O(1) per query.
struct RangeMax {
    /// `levels[j][i]`: the position of the largest of `2^j` items from `i`.
    levels: Vec<Vec<usize>>,
}

impl RangeMax {
    fn new(keys: &[Tick]) -> RangeMax {
        let mut levels = vec![(0..keys.len()).collect::<Vec<usize>>()];
        let mut width = 1;
        while width * 2 <= keys.len() {
            let previous = &levels[levels.len() - 1];
            let next = (0..=keys.len() - width * 2)
                .map(|i| {
                    let (a, b) = (previous[i], previous[i + width]);
                    if keys[b] > keys[a] {
                        b
                    } else {
                        a
                    }
                })
                .collect();
            levels.push(next);
            width *= 2;
        }
        RangeMax { levels }
    }

    /// The position of the largest key in `from..to` (not empty).
    fn query(&self, keys: &[Tick], from: usize, to: usize) -> usize {
        let level = (usize::BITS - 1 - (to - from).leading_zeros()) as usize;
        let (a, b) = (
            self.levels[level][from],
            self.levels[level][to - (1 << level)],
        );
        if keys[b] > keys[a] {
            b
        } else {
            a
        }
    }
}

/// Check 4.
fn nothing_overtakes_an_undeleted_message(index: &QueueIndex<'_>, report: &mut QueueReport) {
    // Each group's known messages by sequence number, from their first delivery.
    let mut groups: BTreeMap<&str, BTreeMap<u128, Known<'_>>> = BTreeMap::new();
    for (message_id, deliveries) in &index.messages {
        let first = &deliveries[0];
        let (Some(group), Some(sequence)) = (first.delivery.group.as_deref(), sequence_of(first))
        else {
            continue;
        };
        let deleted_from = index
            .deletes
            .get(message_id)
            .into_iter()
            .flatten()
            .filter(|d| d.outcome != EntryOutcome::Refused)
            .map(|d| d.op.invoked_at)
            .min()
            .unwrap_or(Tick::MAX);
        groups.entry(group).or_default().insert(
            sequence,
            Known {
                sequence,
                message_id,
                value: first.delivery.value,
                deleted_from,
            },
        );
    }
    for (group, known) in &groups {
        let known: Vec<&Known<'_>> = known.values().collect();
        let keys: Vec<Tick> = known.iter().map(|k| k.deleted_from).collect();
        let ranges = RangeMax::new(&keys);
        let position = |sequence: u128| known.binary_search_by_key(&sequence, |k| k.sequence);
        for (y_position, y) in known.iter().enumerate() {
            for delivery in &index.messages[y.message_id] {
                // The earlier messages of the group this receive returned with it.
                let (op, deliveries) = (delivery.op, received(delivery));
                let with_it: BTreeSet<usize> = deliveries
                    .iter()
                    .filter(|d| d.group.as_deref() == Some(*group))
                    .filter_map(|d| d.sequence.as_deref()?.parse::<u128>().ok())
                    .filter_map(|s| position(s).ok())
                    .filter(|p| *p < y_position)
                    .collect();
                let completed = op.completed_at.unwrap_or(Tick::MAX);
                let mut from = 0;
                for to in with_it.iter().copied().chain([y_position]) {
                    if from < to {
                        let worst = ranges.query(&keys, from, to);
                        if keys[worst] > completed {
                            let x = known[worst];
                            report.push_reorder(Reorder {
                                group: group.to_string(),
                                first: x.value,
                                then: y.value,
                                why: format!(
                                    "#{} returned {} (sequence {}) while {} (sequence {}) was \
                                     still in the queue: {}",
                                    op.id.0,
                                    y.value,
                                    y.sequence,
                                    x.value,
                                    x.sequence,
                                    if x.deleted_from == Tick::MAX {
                                        "never deleted".to_string()
                                    } else {
                                        format!(
                                            "its first delete began at tick {}, after the \
                                             receive completed at tick {completed}",
                                            x.deleted_from
                                        )
                                    }
                                ),
                            });
                        }
                    }
                    from = to + 1;
                }
            }
        }
    }
}

/// Everything the receive that made `delivery` returned.
fn received<'a>(delivery: &DeliveryAt<'a>) -> &'a [Delivery] {
    match &delivery.op.outcome {
        Outcome::Ok(OpResult::Received(all)) => all,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use crate::checker::queue::tests::{ok, Builder, VISIBILITY_MS};
    use crate::checker::queue::{check, QueueKind, QueueReport};
    use crate::checker::Validity;
    use crate::history::Outcome;

    const G: Option<&str> = Some("g1");
    const H: Option<&str> = Some("g2");

    fn fifo(b: &Builder) -> QueueReport {
        check(&b.history(), QueueKind::Fifo).unwrap()
    }

    /// Two groups, a batch, a retried send, a redelivery after a failed delete, and the
    /// drain.
    fn valid() -> Builder {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.send_in(H, &[10], ok());
        b.send_in(G, &[2, 3], ok());
        b.send_in(G, &[4], Outcome::Info);
        b.send_in(G, &[4], ok());
        b.receive_in(G, &[(1, "m1", 1), (2, "m2", 3)]);
        b.receive_in(H, &[(10, "m10", 2)]);
        b.delete(&[(1, "m1"), (2, "m2")], ok());
        b.delete(&[(10, "m10")], ok());
        b.receive_in(G, &[(3, "m3", 4)]);
        b.delete(&[(3, "m3")], Outcome::Fail);
        b.wait(VISIBILITY_MS);
        b.drain();
        b.receive_in(G, &[(3, "m3", 4), (4, "m4", 5)]);
        b.delete(&[(3, "m3"), (4, "m4")], ok());
        b
    }

    #[test]
    fn a_valid_fifo_history_passes() {
        let report = fifo(&valid());
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.groups, 2);
        assert_eq!(report.redeliveries, 1);
        assert_eq!(report.acknowledged, 5);
        assert_eq!(report.resent, 1);
    }

    #[test]
    fn a_lost_fifo_message_is_invalid() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.send_in(G, &[2], ok());
        b.receive_in(G, &[(2, "m2", 2)]);
        b.delete(&[(2, "m2")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.lost, vec![1]);
    }

    #[test]
    fn a_later_message_delivered_first_is_a_reorder() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.send_in(G, &[2], ok());
        b.receive_in(G, &[(2, "m2", 2)]);
        b.delete(&[(2, "m2")], ok());
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert!(report.lost.is_empty());
        // Checks 1 and 4 both see it.
        assert_eq!(report.reorder_count, 2, "{report}");
        assert!(report
            .reorders
            .iter()
            .all(|r| (r.first, r.then) == (1, 2) && r.group == "g1"));
        assert!(report.to_string().contains("1 had to come before 2"));
    }

    #[test]
    fn sequence_numbers_against_the_send_order_are_a_reorder() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.send_in(G, &[2], ok());
        b.receive_in(G, &[(1, "m1", 7)]);
        b.delete(&[(1, "m1")], ok());
        b.receive_in(G, &[(2, "m2", 6)]);
        b.delete(&[(2, "m2")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert!(report
            .reorders
            .iter()
            .any(|r| r.why.contains("has sequence number 7")));
    }

    #[test]
    fn one_receive_must_list_a_group_in_order() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.send_in(G, &[2], ok());
        b.receive_in(G, &[(2, "m2", 2), (1, "m1", 1)]);
        b.delete(&[(1, "m1"), (2, "m2")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert!(report.reorders.iter().any(|r| r.why.contains("listed 2")));
    }

    #[test]
    fn a_message_delivered_while_an_earlier_one_is_in_flight_is_a_reorder() {
        // 1 and 2 were sent concurrently (so only their sequence numbers order them); 2 is
        // returned while 1 is in flight and not deleted.
        let mut b = Builder::new();
        b.send_in(G, &[1, 2], Outcome::Info);
        b.receive_in(G, &[(1, "m1", 1)]);
        b.receive_in(G, &[(2, "m2", 2)]);
        b.delete(&[(1, "m1"), (2, "m2")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.reorder_count, 1, "{report}");
        assert!(report.reorders[0].why.contains("still in the queue"));
        // Deleted first: valid.
        let mut b = Builder::new();
        b.send_in(G, &[1, 2], Outcome::Info);
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], Outcome::Info);
        b.receive_in(G, &[(2, "m2", 2)]);
        b.delete(&[(2, "m2")], ok());
        b.drain();
        assert_eq!(fifo(&b).validity(), Validity::Valid);
        // Returned together, the earlier one deleted or not: valid.
        let mut b = Builder::new();
        b.send_in(G, &[1, 2], ok());
        b.receive_in(G, &[(1, "m1", 1), (2, "m2", 2)]);
        b.delete(&[(2, "m2")], ok());
        b.wait(VISIBILITY_MS);
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], ok());
        b.drain();
        assert_eq!(fifo(&b).validity(), Validity::Valid, "{}", fifo(&b));
    }

    #[test]
    fn a_duplicate_from_a_retried_send_is_invalid() {
        let mut b = Builder::new();
        b.send_in(G, &[1], Outcome::Info);
        b.send_in(G, &[1], ok());
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], ok());
        b.receive_in(G, &[(1, "m1-again", 2)]);
        b.delete(&[(1, "m1-again")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.duplicated, vec![1]);
        // The same history of a standard queue only counts the copy.
        let standard = check(&b.history(), QueueKind::Standard).unwrap();
        assert_eq!(standard.validity(), Validity::Valid, "{standard}");
        assert_eq!(standard.copies, vec![1]);
    }

    #[test]
    fn a_redelivery_after_an_acknowledged_delete_is_invalid() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], ok());
        b.wait(VISIBILITY_MS);
        b.receive_in(G, &[(1, "m1", 1)]);
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.after_delete_count, 1);
        // Not acknowledged (refused, or unknown): a redelivery is allowed.
        for outcome in [Outcome::Fail, Outcome::Info] {
            let mut b = Builder::new();
            b.send_in(G, &[1], ok());
            b.receive_in(G, &[(1, "m1", 1)]);
            b.delete(&[(1, "m1")], outcome);
            b.wait(VISIBILITY_MS);
            b.receive_in(G, &[(1, "m1", 1)]);
            b.delete(&[(1, "m1")], ok());
            b.drain();
            assert_eq!(fifo(&b).validity(), Validity::Valid, "{}", fifo(&b));
        }
    }

    #[test]
    fn a_redelivery_before_the_visibility_timeout_is_invalid() {
        let mut b = Builder::new();
        b.send_in(G, &[1], ok());
        b.receive_in(G, &[(1, "m1", 1)]);
        b.wait(VISIBILITY_MS / 2);
        b.receive_in(G, &[(1, "m1", 1)]);
        b.delete(&[(1, "m1")], ok());
        b.drain();
        let report = fifo(&b);
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.early_redelivery_count, 1, "{report}");
    }

    /// A correct FIFO queue driven by concurrent clients whose operations are applied at
    /// random points inside their windows, with lost replies, unapplied failures, retried
    /// sends, abandoned receipts and a drain: every history it makes must pass both checks.
    mod simulated {
        use std::collections::{BTreeSet, HashMap};

        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        use crate::checker::queue::{check, QueueKind};
        use crate::checker::Validity;
        use crate::history::{
            Delivery, History, Key, MessageRef, Op, OpId, OpResult, Operation, Outcome, ProcessId,
            Tick, Value, WallClock,
        };

        const VISIBILITY_MS: u64 = 600;

        struct Message {
            seq: u64,
            value: Value,
            group: String,
            id: String,
            visible_at: u64,
            nonce: u64,
            deleted: bool,
        }

        #[derive(Clone)]
        struct Held {
            value: Value,
            id: String,
            nonce: u64,
        }

        enum Pending {
            Send { group: String, values: Vec<Value> },
            Receive { max: usize },
            Delete(Vec<Held>),
        }

        struct InFlight {
            op: usize,
            pending: Pending,
            applied: Option<(OpResult, Vec<Held>)>,
        }

        #[derive(Default)]
        struct Client {
            in_flight: Option<InFlight>,
            retry: Option<(String, Vec<Value>)>,
            held: Vec<Held>,
        }

        struct Sim {
            rng: StdRng,
            now: u64,
            messages: Vec<Message>,
            /// Value → the message its deduplication id made.
            dedup: HashMap<Value, usize>,
            next_value: Value,
            next_nonce: u64,
            ops: Vec<Operation>,
        }

        impl Sim {
            fn tick(&mut self) -> Tick {
                self.now += self.rng.gen_range(1..=20);
                self.now
            }

            fn invoke(&mut self, process: u64, op: Op) -> usize {
                let at = self.tick();
                self.ops.push(Operation {
                    id: OpId(self.ops.len() as u64),
                    process: ProcessId(process),
                    key: Key::new(),
                    op,
                    invoked_at: at,
                    completed_at: None,
                    outcome: Outcome::Info,
                    wall: WallClock {
                        invoked_us: Some(at * 1000),
                        completed_us: None,
                    },
                });
                self.ops.len() - 1
            }

            fn complete(&mut self, op: usize, outcome: Outcome) {
                let at = self.tick();
                let entry = &mut self.ops[op];
                entry.completed_at = Some(at);
                entry.wall.completed_us = Some(at * 1000);
                entry.outcome = outcome;
            }

            fn apply(&mut self, pending: &Pending) -> (OpResult, Vec<Held>) {
                let now = self.tick();
                match pending {
                    Pending::Send { group, values } => {
                        for value in values {
                            if self.dedup.contains_key(value) {
                                continue;
                            }
                            let seq = self.messages.len() as u64 + 1;
                            self.dedup.insert(*value, self.messages.len());
                            self.messages.push(Message {
                                seq,
                                value: *value,
                                group: group.clone(),
                                id: format!("m{seq}"),
                                visible_at: now,
                                nonce: 0,
                                deleted: false,
                            });
                        }
                        (OpResult::Batch { refused: vec![] }, vec![])
                    }
                    Pending::Receive { max } => {
                        let mut blocked = BTreeSet::new();
                        let mut got = Vec::new();
                        let mut held = Vec::new();
                        for i in 0..self.messages.len() {
                            if got.len() == *max {
                                break;
                            }
                            let m = &self.messages[i];
                            if m.deleted || blocked.contains(&m.group) {
                                continue;
                            }
                            if m.visible_at > now {
                                blocked.insert(m.group.clone());
                                continue;
                            }
                            self.next_nonce += 1;
                            let m = &mut self.messages[i];
                            m.visible_at = now + VISIBILITY_MS;
                            m.nonce = self.next_nonce;
                            got.push(Delivery {
                                value: m.value,
                                message_id: m.id.clone(),
                                group: Some(m.group.clone()),
                                sequence: Some(format!("{:020}", m.seq)),
                            });
                            held.push(Held {
                                value: m.value,
                                id: m.id.clone(),
                                nonce: m.nonce,
                            });
                        }
                        (OpResult::Received(got), held)
                    }
                    Pending::Delete(refs) => {
                        let mut refused = Vec::new();
                        for (position, r) in refs.iter().enumerate() {
                            let Some(m) = self.messages.iter_mut().find(|m| m.id == r.id) else {
                                refused.push(position);
                                continue;
                            };
                            if m.deleted {
                                continue;
                            }
                            if m.nonce == r.nonce && m.visible_at > now {
                                m.deleted = true;
                            } else {
                                refused.push(position);
                            }
                        }
                        (OpResult::Batch { refused }, vec![])
                    }
                }
            }

            fn op_of(pending: &Pending) -> Op {
                match pending {
                    Pending::Send { group, values } => Op::Send {
                        group: Some(group.clone()),
                        values: values.clone(),
                    },
                    Pending::Receive { .. } => Op::Receive {
                        visibility_ms: VISIBILITY_MS,
                    },
                    Pending::Delete(refs) => Op::DeleteMessages(
                        refs.iter()
                            .map(|r| MessageRef {
                                value: r.value,
                                message_id: r.id.clone(),
                            })
                            .collect(),
                    ),
                }
            }

            /// One step of `client`: invoke, apply, or complete its operation.
            fn step(&mut self, process: u64, client: &mut Client) {
                let Some(mut flight) = client.in_flight.take() else {
                    let pending = if client.retry.is_some() && self.rng.gen_bool(0.7) {
                        let (group, values) = client.retry.clone().unwrap_or_default();
                        Pending::Send { group, values }
                    } else if !client.held.is_empty() {
                        let held = std::mem::take(&mut client.held);
                        if self.rng.gen_bool(0.1) {
                            return; // abandoned: redelivered after the timeout
                        }
                        Pending::Delete(held)
                    } else if self.rng.gen_bool(0.5) {
                        let count = self.rng.gen_range(1..=3);
                        let values = (0..count)
                            .map(|_| {
                                self.next_value += 1;
                                self.next_value
                            })
                            .collect();
                        let group = format!("g{}", self.rng.gen_range(0..2));
                        Pending::Send { group, values }
                    } else {
                        Pending::Receive {
                            max: self.rng.gen_range(1..=4),
                        }
                    };
                    let op = self.invoke(process, Self::op_of(&pending));
                    client.in_flight = Some(InFlight {
                        op,
                        pending,
                        applied: None,
                    });
                    return;
                };
                match flight.applied.take() {
                    None if self.rng.gen_bool(0.8) => {
                        flight.applied = Some(self.apply(&flight.pending));
                        client.in_flight = Some(flight);
                    }
                    None => {
                        let outcome = if self.rng.gen_bool(0.5) {
                            Outcome::Fail
                        } else {
                            Outcome::Info
                        };
                        self.complete(flight.op, outcome);
                    }
                    Some((result, held)) => {
                        let lost_reply = self.rng.gen_bool(0.1);
                        if let Pending::Send { group, values } = &flight.pending {
                            client.retry = lost_reply.then(|| (group.clone(), values.clone()));
                        }
                        if lost_reply {
                            self.complete(flight.op, Outcome::Info);
                        } else {
                            client.held.extend(held);
                            self.complete(flight.op, Outcome::Ok(result));
                        }
                    }
                }
            }

            /// Receive and delete until a receive after the visibility timeout finds
            /// nothing.
            fn drain(&mut self) {
                let drain = self.invoke(u64::MAX, Op::Drain);
                loop {
                    self.now += VISIBILITY_MS;
                    let pending = Pending::Receive { max: 10 };
                    let op = self.invoke(u64::MAX - 1, Self::op_of(&pending));
                    let (result, held) = self.apply(&pending);
                    self.complete(op, Outcome::Ok(result));
                    if held.is_empty() {
                        break;
                    }
                    let pending = Pending::Delete(held);
                    let op = self.invoke(u64::MAX - 1, Self::op_of(&pending));
                    let (result, _) = self.apply(&pending);
                    self.complete(op, Outcome::Ok(result));
                }
                self.complete(drain, Outcome::Ok(OpResult::Done));
            }
        }

        fn simulate(seed: u64, steps: usize) -> History {
            let mut sim = Sim {
                rng: StdRng::seed_from_u64(seed),
                now: 0,
                messages: Vec::new(),
                dedup: HashMap::new(),
                next_value: 0,
                next_nonce: 0,
                ops: Vec::new(),
            };
            let mut clients: Vec<Client> = (0..6).map(|_| Client::default()).collect();
            for _ in 0..steps {
                let c = sim.rng.gen_range(0..clients.len());
                sim.step(c as u64, &mut clients[c]);
            }
            // Let every operation in flight end, then drain.
            for (c, client) in clients.iter_mut().enumerate() {
                while client.in_flight.is_some() {
                    sim.step(c as u64, client);
                }
            }
            sim.drain();
            History::from_ops(sim.ops).unwrap()
        }

        #[test]
        fn histories_of_a_correct_queue_pass() {
            for seed in 0..20 {
                let history = simulate(seed, 3000);
                let fifo = check(&history, QueueKind::Fifo).unwrap();
                assert_eq!(fifo.validity(), Validity::Valid, "seed {seed}: {fifo}");
                assert!(fifo.delivered > 100, "seed {seed}: {fifo}");
                let standard = check(&history, QueueKind::Standard).unwrap();
                assert_eq!(
                    standard.validity(),
                    Validity::Valid,
                    "seed {seed}: {standard}"
                );
            }
        }

        #[test]
        fn a_history_missing_one_delivery_fails() {
            let mut history: Vec<Operation> = simulate(7, 3000).ops().to_vec();
            // Forget the only delivery of some acknowledged value.
            let report = check(
                &History::from_ops(history.clone()).unwrap(),
                QueueKind::Fifo,
            )
            .unwrap();
            assert!(report.redeliveries > 0 && report.acknowledged > 0);
            let delivered_once = history
                .iter()
                .filter_map(|op| match &op.outcome {
                    Outcome::Ok(OpResult::Received(d)) if d.len() == 1 => Some(d[0].value),
                    _ => None,
                })
                .find(|v| {
                    history
                        .iter()
                        .filter(|op| match &op.outcome {
                            Outcome::Ok(OpResult::Received(d)) => d.iter().any(|d| d.value == *v),
                            _ => false,
                        })
                        .count()
                        == 1
                })
                .expect("a value delivered once, alone");
            for op in &mut history {
                if let Outcome::Ok(OpResult::Received(d)) = &mut op.outcome {
                    d.retain(|d| d.value != delivered_once);
                }
            }
            let report = check(&History::from_ops(history).unwrap(), QueueKind::Fifo).unwrap();
            assert_eq!(report.validity(), Validity::Invalid, "{report}");
        }
    }

    #[test]
    fn range_max_finds_the_largest() {
        let keys = [3, 9, 1, 9, 4, 0, 7];
        let ranges = super::RangeMax::new(&keys);
        for from in 0..keys.len() {
            for to in from + 1..=keys.len() {
                let got = ranges.query(&keys, from, to);
                assert!((from..to).contains(&got));
                assert_eq!(keys[got], *keys[from..to].iter().max().unwrap());
            }
        }
    }
}
