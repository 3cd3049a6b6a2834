//! The set checker (Jepsen's `set`): clients add unique values, then one final read lists
//! the set. Every acknowledged add must be in it, and nothing may be in it that nobody
//! tried to add.
//!
//! Owns the classification of every added and read value:
//! - lost: an `Ok` add that completed before the final read began, missing from it.
//! - unexpected: in the final read, but never attempted before the read completed.
//! - failed but present: an add reported `Fail` (definitely did not happen) that is there.
//! - duplicated: listed more than once by the final read.
//! - recovered: an `Info` add that turned out to have happened (fine, reported for insight).
//! - unconfirmed: an `Ok` add concurrent with the final read and missing (fine: it may take
//!   effect after the read).
//!
//! The history is valid iff nothing is lost, unexpected, failed but present or duplicated.
//! The final read is the successful `read-all` invoked last; earlier reads are not checked
//! (that would be a different checker). Adds must carry unique values, and a history holds
//! one set (one key). Nemesis events are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::checker::{CheckError, Validity};
use crate::history::{History, Op, OpId, OpResult, Operation, Outcome, Value};

/// What the final read says about every add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetReport {
    /// The read all the others are judged by.
    pub final_read: Option<OpId>,
    /// Adds invoked before the final read completed.
    pub attempted: usize,
    /// Of those, adds acknowledged `Ok`.
    pub acknowledged: usize,
    /// Distinct values in the final read.
    pub present: usize,
    pub lost: Vec<Value>,
    pub unexpected: Vec<Value>,
    pub failed_but_present: Vec<Value>,
    pub duplicated: Vec<Value>,
    pub recovered: Vec<Value>,
    pub unconfirmed: Vec<Value>,
}

impl SetReport {
    pub fn validity(&self) -> Validity {
        if self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.failed_but_present.is_empty()
            && self.duplicated.is_empty()
        {
            Validity::Valid
        } else {
            Validity::Invalid
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

impl fmt::Display for SetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "set {}: {} adds attempted, {} acknowledged, {} values in the final read{}",
            self.validity(),
            self.attempted,
            self.acknowledged,
            self.present,
            self.final_read
                .map(|id| format!(" (#{})", id.0))
                .unwrap_or_default(),
        )?;
        let lists = [
            ("lost (acknowledged, missing)", &self.lost),
            ("unexpected (never attempted)", &self.unexpected),
            ("failed but present", &self.failed_but_present),
            ("duplicated in the read", &self.duplicated),
            ("recovered (unknown adds that happened)", &self.recovered),
            ("unconfirmed (concurrent with the read)", &self.unconfirmed),
        ];
        for (name, values) in lists {
            if !values.is_empty() {
                writeln!(f, "  {name}: {} {}", values.len(), Values(values))?;
            }
        }
        Ok(())
    }
}

/// Checks a single-set history.
pub fn check(history: &History) -> Result<SetReport, CheckError> {
    let count = history.keys().len();
    if count > 1 {
        return Err(CheckError::MultipleKeys { count });
    }
    let mut final_read: Option<(&Operation, &[Value])> = None;
    let mut adds: BTreeMap<Value, &Operation> = BTreeMap::new();
    for op in history.ops() {
        match (&op.op, &op.outcome) {
            (Op::Add(value), _) => {
                if let Some(first) = adds.insert(*value, op) {
                    return Err(CheckError::DuplicateAdd {
                        value: *value,
                        first: first.id,
                        second: op.id,
                    });
                }
            }
            (Op::ReadAll, Outcome::Ok(OpResult::ReadAll(values))) => {
                let later = final_read
                    .is_none_or(|(read, _)| (op.invoked_at, op.id) > (read.invoked_at, read.id));
                if later {
                    final_read = Some((op, values));
                }
            }
            (Op::ReadAll, _) | (Op::Nemesis(_), _) => {}
            _ => {
                return Err(CheckError::UnsupportedOp {
                    id: op.id,
                    op: op.op.clone(),
                    model: "set",
                })
            }
        }
    }
    let (read, read_values) = final_read.ok_or(CheckError::NoFinalRead)?;

    let mut seen = BTreeSet::new();
    let mut duplicated = BTreeSet::new();
    for value in read_values {
        if !seen.insert(*value) {
            duplicated.insert(*value);
        }
    }
    let mut report = SetReport {
        final_read: Some(read.id),
        present: seen.len(),
        duplicated: duplicated.into_iter().collect(),
        ..SetReport::default()
    };
    // An add invoked after the read completed cannot be in it.
    let read_done = read.completed_at.unwrap_or(read.invoked_at);
    let attempted = |add: &&Operation| add.invoked_at <= read_done;
    for (value, add) in adds.iter().filter(|(_, add)| attempted(add)) {
        report.attempted += 1;
        let present = seen.contains(value);
        match add.outcome {
            Outcome::Ok(_) => {
                report.acknowledged += 1;
                if !present {
                    if add.precedes(read) {
                        report.lost.push(*value);
                    } else {
                        report.unconfirmed.push(*value);
                    }
                }
            }
            Outcome::Fail if present => report.failed_but_present.push(*value),
            Outcome::Info if present => report.recovered.push(*value),
            Outcome::Fail | Outcome::Info => {}
        }
    }
    report.unexpected = seen
        .iter()
        .filter(|value| adds.get(value).is_none_or(|add| !attempted(add)))
        .copied()
        .collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Key, NemesisAction, NemesisEvent, ProcessId, Tick};

    fn op(invoked_at: Tick, completed_at: Tick, op: Op, outcome: Outcome) -> Operation {
        Operation {
            id: OpId(0),
            process: ProcessId(0),
            key: Key::new(),
            op,
            invoked_at,
            completed_at: Some(completed_at),
            outcome,
            wall: Default::default(),
        }
    }

    fn add(at: Tick, value: Value, outcome: Outcome) -> Operation {
        op(at, at + 1, Op::Add(value), outcome)
    }

    fn ok() -> Outcome {
        Outcome::Ok(OpResult::Done)
    }

    fn read_all(from: Tick, to: Tick, values: &[Value]) -> Operation {
        op(
            from,
            to,
            Op::ReadAll,
            Outcome::Ok(OpResult::ReadAll(values.to_vec())),
        )
    }

    fn history(ops: Vec<Operation>) -> History {
        History::from_ops(
            ops.into_iter()
                .enumerate()
                .map(|(i, op)| Operation {
                    id: OpId(i as u64),
                    ..op
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn every_acknowledged_add_present_is_valid() {
        let h = history(vec![
            add(0, 1, ok()),
            add(2, 2, ok()),
            add(4, 3, Outcome::Info),
            add(6, 4, Outcome::Fail),
            add(8, 5, Outcome::Info),
            read_all(20, 21, &[3, 2, 1]),
        ]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.attempted, 5);
        assert_eq!(report.acknowledged, 2);
        assert_eq!(report.present, 3);
        assert_eq!(report.recovered, vec![3]);
        assert_eq!(report.final_read, Some(OpId(5)));
    }

    #[test]
    fn lost_add_is_invalid() {
        let h = history(vec![
            add(0, 1, ok()),
            add(2, 2, ok()),
            add(4, 3, ok()),
            read_all(20, 21, &[1, 3]),
        ]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.lost, vec![2]);
        assert!(
            report
                .to_string()
                .contains("lost (acknowledged, missing): 1 [2]"),
            "{report}"
        );
    }

    #[test]
    fn unexpected_value_is_invalid() {
        let h = history(vec![add(0, 1, ok()), read_all(20, 21, &[1, 99])]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.unexpected, vec![99]);
        assert!(report.lost.is_empty());
    }

    #[test]
    fn failed_add_that_appears_is_invalid() {
        let h = history(vec![add(0, 1, Outcome::Fail), read_all(20, 21, &[1])]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.failed_but_present, vec![1]);
    }

    #[test]
    fn duplicate_in_read_is_invalid() {
        let h = history(vec![add(0, 1, ok()), read_all(20, 21, &[1, 1])]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Invalid);
        assert_eq!(report.duplicated, vec![1]);
    }

    #[test]
    fn add_concurrent_with_the_read_may_be_missing() {
        let h = history(vec![
            add(0, 1, ok()),
            op(15, 30, Op::Add(2), ok()),
            read_all(20, 21, &[1]),
        ]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.unconfirmed, vec![2]);
    }

    #[test]
    fn add_invoked_after_the_read_cannot_be_in_it() {
        let h = history(vec![read_all(0, 1, &[5]), add(10, 5, ok())]);
        let report = check(&h).unwrap();
        assert_eq!(report.unexpected, vec![5]);
        assert_eq!(report.attempted, 0);
    }

    #[test]
    fn the_last_read_is_the_final_one() {
        let h = history(vec![
            read_all(0, 1, &[]),
            add(2, 1, ok()),
            read_all(10, 11, &[1]),
            op(12, 13, Op::ReadAll, Outcome::Fail),
        ]);
        let report = check(&h).unwrap();
        assert_eq!(report.final_read, Some(OpId(2)));
        assert_eq!(report.validity(), Validity::Valid);
    }

    #[test]
    fn nemesis_events_are_skipped() {
        let fault = |at, action| {
            op(
                at,
                at + 1,
                Op::Nemesis(NemesisEvent {
                    action,
                    fault: "partition-halves".into(),
                    nodes: vec![1, 2, 3],
                    detail: "[1, 2, 3] | [4, 5, 6]".into(),
                }),
                ok(),
            )
        };
        let h = history(vec![
            fault(0, NemesisAction::Start),
            add(2, 1, ok()),
            add(4, 2, Outcome::Info),
            fault(6, NemesisAction::Stop),
            read_all(20, 21, &[1]),
        ]);
        let report = check(&h).unwrap();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.attempted, 2);

        // A lost add is still lost when faults surround it.
        let h = history(vec![
            fault(0, NemesisAction::Start),
            add(2, 1, ok()),
            fault(6, NemesisAction::Stop),
            read_all(20, 21, &[]),
        ]);
        assert_eq!(check(&h).unwrap().lost, vec![1]);
    }

    #[test]
    fn unusable_histories_are_errors() {
        let no_read = history(vec![add(0, 1, ok())]);
        assert!(matches!(check(&no_read), Err(CheckError::NoFinalRead)));
        let duplicate = history(vec![add(0, 1, ok()), add(2, 1, ok())]);
        assert!(matches!(
            check(&duplicate),
            Err(CheckError::DuplicateAdd { value: 1, .. })
        ));
        let register = history(vec![op(0, 1, Op::Write(1), ok())]);
        assert!(matches!(
            check(&register),
            Err(CheckError::UnsupportedOp { model: "set", .. })
        ));
        let mut two_keys = vec![add(0, 1, ok()), add(0, 2, ok())];
        two_keys[1].key = "other".into();
        assert!(matches!(
            check(&history(two_keys)),
            Err(CheckError::MultipleKeys { count: 2 })
        ));
    }
}
