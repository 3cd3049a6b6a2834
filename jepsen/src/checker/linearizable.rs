//! Linearizability of read/write/compare-and-set registers: is there one order of the
//! operations, consistent with real time, in which every result is what a single register
//! would have returned?
//!
//! Owns the register checker's API and its answers: [`check`] for a single-register
//! history, [`check_keys`] for a history of many independent registers (by locality of
//! linearizability, Herlihy & Wing: such a history is linearizable iff each key's
//! sub-history is), and the [`Verdict`] with a witness or an explanation.
//!
//! Guarantees:
//! - `Linearizable` comes with a witness: the order in which the operations that took
//!   effect were linearized. `Info` writes and cas may appear in it anywhere after their
//!   invocation, or not at all (they did not happen); `Fail` operations never do.
//! - `NotLinearizable` is a proof by exhaustion, explained by the longest linearizable
//!   prefix found and the operations pending where it got stuck.
//! - Each key's search stops after [`CheckOptions::max_steps`] steps and answers `Unknown`;
//!   it never runs unbounded.
//!
//! Not here: the search itself ([`super::wgl`]) and the register's semantics and Jepsen's
//! outcome rules ([`super::register`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::checker::register::{Register, RegisterOp};
use crate::checker::wgl::{search, SearchOp, SearchOutcome};
use crate::checker::{CheckError, Validity};
use crate::history::{History, Key, Op, OpId, Operation, Outcome, Value, ValueDisplay};

/// Search steps allowed per key by default. A step is cheap (tens of nanoseconds in a
/// release build) and memory grows far more slowly than steps, so this bounds a hopeless
/// search to seconds and tens of megabytes. Linearizable histories of thousands of
/// operations need a tiny fraction of it; refuting one takes more, and most when values
/// repeat and many operations are `Info`, which is why workloads should write unique
/// values.
pub const DEFAULT_MAX_STEPS: u64 = 50_000_000;

/// How to check a register history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Give up with `Unknown` after this many search steps (per key).
    pub max_steps: u64,
    /// What the register holds before the first operation (`None`: never written).
    pub initial: Option<Value>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_steps: DEFAULT_MAX_STEPS,
            initial: None,
        }
    }
}

/// The answer for one register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `linearization` lists the operations that took effect, in an order that explains
    /// every result and respects real time.
    Linearizable {
        linearization: Vec<OpId>,
    },
    NotLinearizable(Box<Counterexample>),
    /// The search gave up after `steps` steps.
    Unknown {
        steps: u64,
    },
}

impl Verdict {
    pub fn validity(&self) -> Validity {
        match self {
            Verdict::Linearizable { .. } => Validity::Valid,
            Verdict::NotLinearizable(_) => Validity::Invalid,
            Verdict::Unknown { .. } => Validity::Unknown,
        }
    }

    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable { .. })
    }
}

/// Why a register history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// How many operations the search had to place (after dropping `Fail`s and `Info`
    /// reads).
    pub checked_ops: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<Operation>,
    /// What the register holds after `prefix`.
    pub state_after_prefix: Option<Value>,
    /// The operation that completed before any order of the pending operations could make
    /// its result possible.
    pub stuck: Operation,
    /// Every operation that could have been linearized next at that point (invoked, not
    /// yet linearized; includes `stuck`), none of which leads anywhere.
    pub pending: Vec<Operation>,
}

/// How many of the prefix's last operations an explanation shows.
const PREFIX_SHOWN: usize = 8;
/// How many pending operations an explanation shows.
const PENDING_SHOWN: usize = 20;

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: the longest linearizable prefix has {} of {} operations and \
             leaves the register at {}; operation {} completed before it could take effect:",
            self.prefix.len(),
            self.checked_ops,
            ValueDisplay(self.state_after_prefix),
            self.stuck.id.0,
        )?;
        writeln!(f, "  stuck:   {}", self.stuck)?;
        writeln!(
            f,
            "  pending at that point ({}), no order of which explains it:",
            self.pending.len()
        )?;
        for op in self.pending.iter().take(PENDING_SHOWN) {
            writeln!(f, "    {op}")?;
        }
        if self.pending.len() > PENDING_SHOWN {
            writeln!(f, "    ... {} more", self.pending.len() - PENDING_SHOWN)?;
        }
        let skipped = self.prefix.len().saturating_sub(PREFIX_SHOWN);
        writeln!(f, "  end of the prefix, in linearization order:")?;
        if skipped > 0 {
            writeln!(f, "    ... {skipped} earlier")?;
        }
        for op in &self.prefix[skipped..] {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable { linearization } => writeln!(
                f,
                "linearizable ({} operations took effect)",
                linearization.len()
            ),
            Verdict::NotLinearizable(counterexample) => counterexample.fmt(f),
            Verdict::Unknown { steps } => writeln!(
                f,
                "unknown: gave up after {steps} search steps (raise the step budget)"
            ),
        }
    }
}

/// The answer for a history of many independent registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedReport {
    pub keys: BTreeMap<Key, Verdict>,
}

impl KeyedReport {
    /// Invalid if any key is, else unknown if any key is, else valid.
    pub fn validity(&self) -> Validity {
        let validities = || self.keys.values().map(Verdict::validity);
        if validities().any(|v| v == Validity::Invalid) {
            Validity::Invalid
        } else if validities().any(|v| v == Validity::Unknown) {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// Keys whose history is not linearizable, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&Key, &Counterexample)> {
        self.keys.iter().filter_map(|(key, verdict)| match verdict {
            Verdict::NotLinearizable(counterexample) => Some((key, counterexample.as_ref())),
            _ => None,
        })
    }
}

impl fmt::Display for KeyedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |validity| {
            self.keys
                .values()
                .filter(|v| v.validity() == validity)
                .count()
        };
        writeln!(
            f,
            "{} keys: {} linearizable, {} not linearizable, {} unknown",
            self.keys.len(),
            count(Validity::Valid),
            count(Validity::Invalid),
            count(Validity::Unknown),
        )?;
        for (key, verdict) in &self.keys {
            if verdict.validity() != Validity::Valid {
                write!(f, "key {key:?}: {verdict}")?;
            }
        }
        Ok(())
    }
}

/// Checks a single-register history. Errors if it acts on more than one key (use
/// [`check_keys`]) or holds operations that are not register operations.
pub fn check(history: &History, options: &CheckOptions) -> Result<Verdict, CheckError> {
    let count = history.keys().len();
    if count > 1 {
        return Err(CheckError::MultipleKeys { count });
    }
    reject_listings(history)?;
    check_register(history.ops().iter(), options)
}

/// Checks each key's register independently.
pub fn check_keys(history: &History, options: &CheckOptions) -> Result<KeyedReport, CheckError> {
    reject_listings(history)?;
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history.client_ops() {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut report = KeyedReport::default();
    for (key, ops) in by_key {
        let verdict = check_register(ops, options)?;
        report.keys.insert(key.to_string(), verdict);
    }
    Ok(report)
}

/// A listing reads many keys at once: it must be projected onto each of them first
/// (`checker::objects`), so the plain register checks refuse it.
fn reject_listings(history: &History) -> Result<(), CheckError> {
    match history.client_ops().find(|op| op.op == Op::List) {
        Some(op) => Err(CheckError::UnsupportedOp {
            id: op.id,
            op: op.op.clone(),
            model: "register (a listing needs the objects model)",
        }),
        None => Ok(()),
    }
}

/// Checks the operations of one register, given in any order: the register checks once
/// each key's operations are gathered (and, for an object store, listings projected onto
/// the key: see `checker::objects`).
pub fn check_register<'a>(
    ops: impl IntoIterator<Item = &'a Operation>,
    options: &CheckOptions,
) -> Result<Verdict, CheckError> {
    let mut kept: Vec<(&Operation, RegisterOp)> = Vec::new();
    for op in ops {
        if let Some(register_op) = RegisterOp::from_operation(op)? {
            kept.push((op, register_op));
        }
    }
    kept.sort_by_key(|(op, _)| (op.invoked_at, op.id));
    let search_ops: Vec<SearchOp<RegisterOp>> = kept
        .iter()
        .map(|(op, register_op)| SearchOp {
            invoked_at: op.invoked_at,
            completed_at: match op.outcome {
                Outcome::Info => None,
                _ => op.completed_at,
            },
            op: *register_op,
        })
        .collect();
    let operation = |index: usize| kept[index].0.clone();
    Ok(
        match search(&Register, options.initial, &search_ops, options.max_steps) {
            SearchOutcome::Linearizable { order } => Verdict::Linearizable {
                linearization: order.into_iter().map(|i| kept[i].0.id).collect(),
            },
            SearchOutcome::NotLinearizable {
                prefix,
                state,
                stuck,
                pending,
            } => Verdict::NotLinearizable(Box::new(Counterexample {
                checked_ops: kept.len(),
                prefix: prefix.into_iter().map(operation).collect(),
                state_after_prefix: state,
                stuck: operation(stuck),
                pending: pending.into_iter().map(operation).collect(),
            })),
            SearchOutcome::Exhausted { steps } => Verdict::Unknown { steps },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::wgl::Model;
    use crate::history::{NemesisAction, NemesisEvent, Op, OpResult, ProcessId, Tick};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashSet;

    fn operation(
        process: u64,
        invoked_at: Tick,
        completed_at: Tick,
        op: Op,
        outcome: Outcome,
    ) -> Operation {
        Operation {
            id: OpId(0),
            process: ProcessId(process),
            key: Key::new(),
            op,
            invoked_at,
            completed_at: Some(completed_at),
            outcome,
            wall: Default::default(),
        }
    }

    fn write(p: u64, from: Tick, to: Tick, value: Value) -> Operation {
        operation(p, from, to, Op::Write(value), Outcome::Ok(OpResult::Done))
    }

    fn read(p: u64, from: Tick, to: Tick, value: Option<Value>) -> Operation {
        operation(p, from, to, Op::Read, Outcome::Ok(OpResult::Read(value)))
    }

    fn cas(
        p: u64,
        from: Tick,
        to: Tick,
        expected: Option<Value>,
        new: Value,
        swapped: bool,
    ) -> Operation {
        operation(
            p,
            from,
            to,
            Op::Cas { expected, new },
            Outcome::Ok(OpResult::Cas(swapped)),
        )
    }

    fn info(p: u64, from: Tick, op: Op) -> Operation {
        Operation {
            completed_at: None,
            ..operation(p, from, from, op, Outcome::Info)
        }
    }

    fn fail(p: u64, from: Tick, to: Tick, op: Op) -> Operation {
        operation(p, from, to, op, Outcome::Fail)
    }

    fn keyed(key: &str, op: Operation) -> Operation {
        Operation {
            key: key.to_string(),
            ..op
        }
    }

    /// Numbers the operations in the order given.
    fn history(ops: Vec<Operation>) -> History {
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Operation {
                id: OpId(i as u64),
                ..op
            })
            .collect();
        History::from_ops(ops).unwrap()
    }

    /// Checks, and when linearizable also checks the witness independently: replaying it
    /// reproduces every result, it respects real time, it holds every completed operation
    /// and no failed one.
    fn verdict(history: &History) -> Verdict {
        let verdict = check(history, &CheckOptions::default()).unwrap();
        if let Verdict::Linearizable { linearization } = &verdict {
            assert_witness(history, linearization, None);
        }
        verdict
    }

    fn assert_witness(history: &History, linearization: &[OpId], initial: Option<Value>) {
        let by_id: BTreeMap<OpId, &Operation> =
            history.ops().iter().map(|op| (op.id, op)).collect();
        let mut state = initial;
        for id in linearization {
            let op = by_id[id];
            let register_op = RegisterOp::from_operation(op)
                .unwrap()
                .expect("placed op constrains");
            state = Register
                .step(&state, &register_op)
                .unwrap_or_else(|| panic!("witness step {op} impossible from {state:?}"));
        }
        // Real time: nothing placed later finished before something placed earlier began.
        let mut earliest_later_completion = Tick::MAX;
        for id in linearization.iter().rev() {
            let op = by_id[id];
            assert!(
                earliest_later_completion >= op.invoked_at,
                "witness places {op} after an operation that finished before it began"
            );
            if op.outcome != Outcome::Info {
                earliest_later_completion =
                    earliest_later_completion.min(op.completed_at.unwrap_or(Tick::MAX));
            }
        }
        let placed: HashSet<OpId> = linearization.iter().copied().collect();
        for op in history.ops() {
            let must = matches!(op.outcome, Outcome::Ok(_));
            if must {
                assert!(placed.contains(&op.id), "witness misses {op}");
            }
            if op.outcome == Outcome::Fail {
                assert!(!placed.contains(&op.id), "witness places failed {op}");
            }
        }
    }

    fn counterexample(history: &History) -> Counterexample {
        match verdict(history) {
            Verdict::NotLinearizable(c) => *c,
            other => panic!("expected not linearizable, got {other}"),
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(verdict(&History::new()).is_linearizable());
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = history(vec![
            read(0, 0, 1, None),
            write(0, 2, 3, 1),
            read(1, 4, 5, Some(1)),
            write(1, 6, 7, 2),
            read(0, 8, 9, Some(2)),
            cas(0, 10, 11, Some(2), 3, true),
            read(1, 12, 13, Some(3)),
        ]);
        assert_eq!(
            verdict(&h),
            Verdict::Linearizable {
                linearization: (0..7).map(OpId).collect()
            }
        );
    }

    #[test]
    fn overlapping_writes_may_take_effect_in_either_order() {
        // w1 and w2 overlap; a later read of 1 means w2 went first.
        let h = history(vec![
            write(0, 0, 10, 1),
            write(1, 1, 11, 2),
            read(2, 12, 13, Some(1)),
        ]);
        assert!(verdict(&h).is_linearizable());
        let h = history(vec![
            write(0, 0, 10, 1),
            write(1, 1, 11, 2),
            read(2, 12, 13, Some(2)),
        ]);
        assert!(verdict(&h).is_linearizable());
    }

    #[test]
    fn reads_concurrent_with_a_write_may_see_old_then_new() {
        let h = history(vec![
            write(0, 0, 1, 1),
            write(0, 2, 20, 2),
            read(1, 3, 4, Some(1)),
            read(2, 5, 6, Some(2)),
            read(1, 7, 8, Some(2)),
            read(3, 3, 19, Some(1)),
        ]);
        assert!(verdict(&h).is_linearizable());
    }

    #[test]
    fn cas_chain_is_linearizable() {
        let h = history(vec![
            cas(0, 0, 1, None, 0, true),
            cas(1, 2, 10, Some(0), 1, true),
            cas(2, 3, 11, Some(1), 2, true),
            cas(3, 4, 12, Some(2), 3, true),
            cas(4, 5, 13, Some(0), 9, false),
            read(0, 14, 15, Some(3)),
            cas(0, 16, 17, Some(4), 5, false),
        ]);
        assert!(verdict(&h).is_linearizable());
    }

    #[test]
    fn info_write_that_took_effect_is_placed() {
        let h = history(vec![
            info(0, 0, Op::Write(1)),
            read(1, 5, 6, None),
            read(1, 10, 11, Some(1)),
            read(2, 12, 13, Some(1)),
        ]);
        let v = verdict(&h);
        assert_eq!(
            v,
            Verdict::Linearizable {
                linearization: vec![OpId(1), OpId(0), OpId(2), OpId(3)]
            }
        );
    }

    #[test]
    fn info_write_that_did_not_take_effect_is_left_out() {
        let h = history(vec![
            write(0, 0, 1, 1),
            info(1, 2, Op::Write(2)),
            read(2, 10, 11, Some(1)),
            read(2, 100, 101, Some(1)),
        ]);
        // Never placed, or placed after the last read (the witness may do either).
        let Verdict::Linearizable { linearization } = verdict(&h) else {
            panic!("linearizable")
        };
        assert_eq!(linearization[..3], [OpId(0), OpId(2), OpId(3)]);
    }

    #[test]
    fn info_cas_may_take_effect_much_later() {
        let h = history(vec![
            write(0, 0, 1, 1),
            info(
                1,
                2,
                Op::Cas {
                    expected: Some(1),
                    new: 2,
                },
            ),
            read(2, 10, 11, Some(1)),
            read(2, 50, 51, Some(2)),
        ]);
        assert!(verdict(&h).is_linearizable());
    }

    #[test]
    fn failed_and_info_reads_constrain_nothing() {
        let h = history(vec![
            write(0, 0, 1, 1),
            fail(1, 2, 3, Op::Write(7)),
            info(2, 4, Op::Read),
            fail(3, 5, 6, Op::Read),
            read(0, 7, 8, Some(1)),
        ]);
        assert_eq!(
            verdict(&h),
            Verdict::Linearizable {
                linearization: vec![OpId(0), OpId(4)]
            }
        );
    }

    #[test]
    fn initial_value_is_configurable() {
        let h = history(vec![read(0, 0, 1, Some(5))]);
        let options = CheckOptions {
            initial: Some(5),
            ..CheckOptions::default()
        };
        assert!(check(&h, &options).unwrap().is_linearizable());
        assert!(!verdict(&h).is_linearizable());
    }

    #[test]
    fn stale_read_after_completed_write_is_not_linearizable() {
        let h = history(vec![
            write(0, 0, 1, 1),
            write(0, 2, 3, 2),
            read(1, 4, 5, Some(1)),
        ]);
        let c = counterexample(&h);
        assert_eq!(c.stuck.id, OpId(2));
        assert_eq!(
            c.prefix.iter().map(|op| op.id).collect::<Vec<_>>(),
            vec![OpId(0), OpId(1)]
        );
        assert_eq!(c.state_after_prefix, Some(2));
        assert_eq!(
            c.pending.iter().map(|op| op.id).collect::<Vec<_>>(),
            vec![OpId(2)]
        );
        let text = c.to_string();
        assert!(text.contains("2 of 3 operations"), "{text}");
        assert!(text.contains("#2 p1 read: ok 1 [4..5]"), "{text}");
    }

    #[test]
    fn read_of_a_value_never_written_is_not_linearizable() {
        let h = history(vec![
            write(0, 0, 10, 1),
            read(1, 2, 12, Some(42)),
            write(2, 3, 13, 2),
        ]);
        let c = counterexample(&h);
        assert_eq!(c.stuck.op, Op::Read);
        assert_eq!(c.checked_ops, 3);
    }

    #[test]
    fn two_successful_cas_from_the_same_value_is_not_linearizable() {
        let h = history(vec![
            write(0, 0, 1, 0),
            cas(1, 2, 5, Some(0), 1, true),
            cas(2, 3, 6, Some(0), 2, true),
        ]);
        let c = counterexample(&h);
        assert_eq!(c.prefix.len(), 2);
        assert_eq!(c.pending.len(), 1);
    }

    #[test]
    fn read_going_back_in_time_is_not_linearizable() {
        // Once a read sees the new value, a later read must not see the old one.
        let h = history(vec![
            write(0, 0, 1, 1),
            write(0, 2, 10, 2),
            read(1, 3, 4, Some(2)),
            read(2, 5, 6, Some(1)),
        ]);
        assert_eq!(counterexample(&h).stuck.id, OpId(3));
    }

    #[test]
    fn failed_write_that_is_read_is_not_linearizable() {
        let h = history(vec![fail(0, 0, 1, Op::Write(7)), read(1, 2, 3, Some(7))]);
        counterexample(&h);
    }

    #[test]
    fn info_write_cannot_take_effect_before_its_invocation() {
        let h = history(vec![read(0, 0, 1, Some(5)), info(1, 2, Op::Write(5))]);
        counterexample(&h);
    }

    #[test]
    fn rejected_cas_while_value_matched_is_not_linearizable() {
        let h = history(vec![write(0, 0, 1, 1), cas(1, 2, 3, Some(1), 2, false)]);
        counterexample(&h);
    }

    #[test]
    fn step_budget_gives_unknown() {
        let mut ops: Vec<Operation> = (0..12).map(|p| write(p, 0, 100, p)).collect();
        ops.push(read(20, 101, 102, Some(99)));
        let h = history(ops);
        let options = CheckOptions {
            max_steps: 50,
            ..CheckOptions::default()
        };
        assert!(matches!(check(&h, &options).unwrap(), Verdict::Unknown { steps } if steps >= 50));
        assert_eq!(check(&h, &options).unwrap().validity(), Validity::Unknown);
    }

    #[test]
    fn keys_are_checked_independently() {
        let h = history(vec![
            keyed("a", write(0, 0, 1, 1)),
            keyed("b", read(1, 2, 3, Some(1))),
            keyed("a", read(2, 4, 5, Some(1))),
            keyed("c", write(3, 0, 1, 5)),
            keyed("c", read(3, 2, 3, Some(5))),
        ]);
        assert!(matches!(
            check(&h, &CheckOptions::default()),
            Err(CheckError::MultipleKeys { count: 3 })
        ));
        let report = check_keys(&h, &CheckOptions::default()).unwrap();
        assert_eq!(report.validity(), Validity::Invalid);
        let failed: Vec<&Key> = report.failures().map(|(key, _)| key).collect();
        assert_eq!(failed, vec!["b"]);
        assert!(report.keys["a"].is_linearizable());
        assert!(report.keys["c"].is_linearizable());
        let text = report.to_string();
        assert!(
            text.contains("3 keys: 2 linearizable, 1 not linearizable"),
            "{text}"
        );
        assert!(text.contains("key \"b\""), "{text}");
    }

    fn nemesis(at: Tick, action: NemesisAction) -> Operation {
        operation(
            u64::MAX,
            at,
            at,
            Op::Nemesis(NemesisEvent {
                action,
                fault: "kill".into(),
                nodes: vec![3],
                detail: String::new(),
            }),
            Outcome::Ok(OpResult::Done),
        )
    }

    #[test]
    fn nemesis_events_are_not_register_operations() {
        let valid = history(vec![
            nemesis(0, NemesisAction::Start),
            keyed("a", write(0, 1, 2, 1)),
            keyed("a", read(1, 3, 4, Some(1))),
            nemesis(5, NemesisAction::Stop),
        ]);
        // One register: nemesis events hold no key of their own.
        assert!(check(&valid, &CheckOptions::default())
            .unwrap()
            .is_linearizable());
        let report = check_keys(&valid, &CheckOptions::default()).unwrap();
        assert_eq!(report.keys.len(), 1, "{report}");
        assert_eq!(report.validity(), Validity::Valid);

        // A stale read during a fault is still caught.
        let stale = history(vec![
            keyed("a", write(0, 0, 1, 1)),
            nemesis(2, NemesisAction::Start),
            keyed("a", write(0, 3, 4, 2)),
            keyed("a", read(1, 5, 6, Some(1))),
            nemesis(7, NemesisAction::Stop),
        ]);
        let report = check_keys(&stale, &CheckOptions::default()).unwrap();
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        let (_, c) = report.failures().next().unwrap();
        assert_eq!(c.stuck.op, Op::Read);
    }

    #[test]
    fn set_operations_are_rejected() {
        let h = history(vec![operation(
            0,
            0,
            1,
            Op::Add(1),
            Outcome::Ok(OpResult::Done),
        )]);
        assert!(matches!(
            check(&h, &CheckOptions::default()),
            Err(CheckError::UnsupportedOp {
                model: "register",
                ..
            })
        ));
    }

    /// A random sequential run of a real register: operation `i` occupies ticks
    /// `[10i, 10i + 5]` and its result is what the register gave at that moment. Some
    /// writes and cas end up `Info` (half of them took effect, half did not), some
    /// operations fail and did not take effect.
    fn sequential_run(rng: &mut StdRng, len: usize) -> Vec<Operation> {
        let mut state: Option<Value> = None;
        let mut ops = Vec::with_capacity(len);
        for i in 0..len as u64 {
            let (from, to, p) = (10 * i, 10 * i + 5, rng.gen_range(0..5));
            let value = rng.gen_range(0..5);
            let op = match rng.gen_range(0..10) {
                0..=3 => Op::Read,
                4..=6 => Op::Write(value),
                _ => Op::Cas {
                    expected: if rng.gen_bool(0.1) {
                        None
                    } else {
                        Some(rng.gen_range(0..5))
                    },
                    new: value,
                },
            };
            let roll = rng.gen_range(0..100);
            let takes_effect = roll >= 5;
            let outcome = match (&op, takes_effect) {
                (_, false) if roll < 3 => Outcome::Fail,
                (Op::Read, false) => Outcome::Info,
                (_, false) => Outcome::Info,
                (Op::Read, true) => Outcome::Ok(OpResult::Read(state)),
                (Op::Write(v), true) => {
                    state = Some(*v);
                    if roll < 10 {
                        Outcome::Info
                    } else {
                        Outcome::Ok(OpResult::Done)
                    }
                }
                (Op::Cas { expected, new }, true) => {
                    let swapped = *expected == state;
                    if swapped {
                        state = Some(*new);
                    }
                    if swapped && roll < 10 {
                        Outcome::Info
                    } else {
                        Outcome::Ok(OpResult::Cas(swapped))
                    }
                }
                _ => unreachable!("register ops only"),
            };
            let completed_at = (outcome != Outcome::Info).then_some(to);
            ops.push(Operation {
                id: OpId(i),
                process: ProcessId(p),
                key: Key::new(),
                op,
                invoked_at: from,
                completed_at,
                outcome,
                wall: Default::default(),
            });
        }
        ops
    }

    /// Widening every interval keeps each operation's real moment inside it, so the
    /// sequential order stays a valid linearization.
    fn widen(rng: &mut StdRng, ops: &mut [Operation], by: Tick) {
        for op in ops {
            op.invoked_at = op.invoked_at.saturating_sub(rng.gen_range(0..=by));
            if let Some(done) = op.completed_at.as_mut() {
                *done += rng.gen_range(0..=by);
            }
        }
    }

    #[test]
    fn random_widened_histories_are_linearizable_and_a_foreign_read_is_caught() {
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut ops = sequential_run(&mut rng, 150);
            widen(&mut rng, &mut ops, 30);
            let h = History::from_ops(ops.clone()).unwrap();
            let v = verdict(&h);
            assert!(v.is_linearizable(), "seed {seed}: {v}");

            let reads: Vec<usize> = (0..ops.len())
                .filter(|&i| matches!(ops[i].outcome, Outcome::Ok(OpResult::Read(_))))
                .collect();
            let victim = reads[rng.gen_range(0..reads.len())];
            ops[victim].outcome = Outcome::Ok(OpResult::Read(Some(1_000 + seed)));
            let h = History::from_ops(ops).unwrap();
            let v = verdict(&h);
            assert_eq!(v.validity(), Validity::Invalid, "seed {seed}: {v}");
        }
    }

    /// Ten clients run concurrently against a real register: each operation takes effect
    /// at a random moment inside its own interval. Timeouts turn a client's operation into
    /// `Info` (whether or not it took effect) and the client continues as a new process.
    struct Workload {
        clients: u64,
        ops: usize,
        timeout_rate: f64,
        /// Every write and cas writes a fresh value (cas expects one of the last few
        /// written); otherwise values come from 0..5, as in Jepsen's register test.
        unique_values: bool,
    }

    fn concurrent_run(rng: &mut StdRng, workload: &Workload) -> Vec<Operation> {
        let Workload {
            clients,
            ops: len,
            timeout_rate,
            unique_values,
        } = *workload;
        struct Planned {
            op: Operation,
            effect_at: Tick,
            takes_effect: bool,
            timed_out: bool,
        }
        let mut planned = Vec::with_capacity(len);
        let mut clock: Vec<Tick> = (0..clients).map(|_| rng.gen_range(0..50)).collect();
        let mut process: Vec<u64> = (0..clients).collect();
        let mut next_process = clients;
        for i in 0..len {
            let client = (0..clients as usize).min_by_key(|&c| clock[c]).unwrap_or(0);
            let from = clock[client];
            let latency = rng.gen_range(1..200);
            let to = from + latency;
            let (value, expected) = if unique_values {
                let back = rng.gen_range(1..=3).min(i);
                (100 + i as Value, Some(100 + (i - back) as Value))
            } else {
                (rng.gen_range(0..5), Some(rng.gen_range(0..5)))
            };
            let op = match rng.gen_range(0..10) {
                0..=4 => Op::Read,
                5..=7 => Op::Write(value),
                _ => Op::Cas {
                    expected,
                    new: value,
                },
            };
            let timed_out = rng.gen_bool(timeout_rate);
            planned.push(Planned {
                op: Operation {
                    id: OpId(i as u64),
                    process: ProcessId(process[client]),
                    key: Key::new(),
                    op,
                    invoked_at: from * 1000 + client as Tick,
                    completed_at: Some(to * 1000 + client as Tick),
                    outcome: Outcome::Info,
                    wall: Default::default(),
                },
                effect_at: (from + rng.gen_range(0..latency)) * 1000 + client as Tick,
                takes_effect: !timed_out || rng.gen_bool(0.5),
                timed_out,
            });
            clock[client] = to + rng.gen_range(1..20);
            if timed_out {
                process[client] = next_process;
                next_process += 1;
            }
        }
        let mut order: Vec<usize> = (0..planned.len()).collect();
        order.sort_by_key(|&i| planned[i].effect_at);
        let mut state: Option<Value> = None;
        for i in order {
            let p = &mut planned[i];
            if !p.takes_effect {
                continue;
            }
            let result = match p.op.op {
                Op::Read => OpResult::Read(state),
                Op::Write(v) => {
                    state = Some(v);
                    OpResult::Done
                }
                Op::Cas { expected, new } => {
                    let swapped = expected == state;
                    if swapped {
                        state = Some(new);
                    }
                    OpResult::Cas(swapped)
                }
                _ => unreachable!("register ops only"),
            };
            if !p.timed_out {
                p.op.outcome = Outcome::Ok(result);
            }
        }
        for p in &mut planned {
            if p.timed_out {
                p.op.completed_at = None;
            }
        }
        planned.into_iter().map(|p| p.op).collect()
    }

    #[test]
    fn thousands_of_operations_from_ten_clients_check_within_budget() {
        let mut rng = StdRng::seed_from_u64(100);
        let mut ops = concurrent_run(
            &mut rng,
            &Workload {
                clients: 10,
                ops: 3_000,
                timeout_rate: 0.01,
                unique_values: true,
            },
        );
        let h = History::from_ops(ops.clone()).unwrap();
        let v = verdict(&h);
        assert!(v.is_linearizable(), "{v}");

        // A stale read late in the run: it returns the value of a write that was
        // overwritten (by a write that completed after it) before the read began.
        let is_ok_write = |op: &Operation| {
            matches!(op.op, Op::Write(_)) && op.outcome == Outcome::Ok(OpResult::Done)
        };
        let victim = (ops.len() * 3 / 4..ops.len())
            .find(|&i| matches!(ops[i].outcome, Outcome::Ok(OpResult::Read(_))))
            .expect("a late read");
        let overwritten = ops
            .iter()
            .filter(|old| is_ok_write(old) && old.precedes(&ops[victim]))
            .find(|old| {
                ops.iter().any(|newer| {
                    is_ok_write(newer) && old.precedes(newer) && newer.precedes(&ops[victim])
                })
            })
            .expect("an overwritten write");
        let Op::Write(stale) = overwritten.op else {
            unreachable!("filtered to writes")
        };
        ops[victim].outcome = Outcome::Ok(OpResult::Read(Some(stale)));
        let v = verdict(&History::from_ops(ops).unwrap());
        let Verdict::NotLinearizable(c) = &v else {
            panic!("stale read not caught: {v}")
        };
        assert_eq!(c.stuck.id, OpId(victim as u64), "{v}");
    }

    #[test]
    fn keyed_witnesses_are_valid() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut ops = Vec::new();
        for (k, key) in ["x", "y", "z"].iter().enumerate() {
            let run = concurrent_run(
                &mut rng,
                &Workload {
                    clients: 4,
                    ops: 200,
                    timeout_rate: 0.02,
                    unique_values: false,
                },
            );
            ops.extend(run.into_iter().map(|op| Operation {
                id: OpId(op.id.0 + 1_000 * k as u64),
                key: key.to_string(),
                ..op
            }));
        }
        let h = History::from_ops(ops).unwrap();
        let report = check_keys(&h, &CheckOptions::default()).unwrap();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        for (key, verdict) in &report.keys {
            let Verdict::Linearizable { linearization } = verdict else {
                panic!("key {key}: {verdict}");
            };
            let sub = History::from_ops(
                h.ops()
                    .iter()
                    .filter(|op| &op.key == key)
                    .cloned()
                    .collect(),
            )
            .unwrap();
            assert_witness(&sub, linearization, None);
        }
    }
}
