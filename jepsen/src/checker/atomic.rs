//! Atomic multi-key writes: the `quorum` workload's multi-puts write one value, unique in
//! the history, to every key of a fresh group (`<prefix>/g<N>/<i>`), in one
//! mini-transaction. Each key is also an ordinary register, checked for linearizability
//! with the rest ([`check_quorum`] runs both checks); this module adds what a per-key check
//! cannot see: a reader that saw one key of a group written and, later in real time,
//! another key of the same group still absent. That is a torn write: the multi-put became
//! visible in part.
//!
//! Only reads that completed (`ok`) count; a read of an unrelated value is the
//! linearizability check's business.

use std::collections::BTreeMap;
use std::fmt;

use crate::checker::linearizable::{check_keys, CheckOptions, KeyedReport};
use crate::checker::{CheckError, Validity};
use crate::history::{History, Op, OpId, OpResult, Operation, Outcome, Value};

/// Two reads of one group that no atomic execution explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    pub group: String,
    /// A read that saw the group's value.
    pub seen: OpId,
    /// A read of another key of the group, invoked after `seen` completed, that found it
    /// absent.
    pub missing: OpId,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtomicReport {
    /// Multi-put groups in the history.
    pub groups: usize,
    /// Groups whose multi-put was acknowledged.
    pub acknowledged: usize,
    /// Groups read at least once with every key present.
    pub seen_whole: usize,
    pub torn: Vec<Torn>,
}

impl AtomicReport {
    pub fn validity(&self) -> Validity {
        if self.torn.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }
}

impl fmt::Display for AtomicReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "multi-puts: {} groups, {} acknowledged, {} read whole, {} torn",
            self.groups,
            self.acknowledged,
            self.seen_whole,
            self.torn.len()
        )?;
        for torn in self.torn.iter().take(20) {
            writeln!(
                f,
                "  torn group {}: op {} saw it written, later op {} found a key absent",
                torn.group, torn.seen.0, torn.missing.0
            )?;
        }
        Ok(())
    }
}

/// The quorum workload's verdict: every key linearizable, and no multi-put torn.
#[derive(Debug, Clone)]
pub struct QuorumReport {
    pub keys: KeyedReport,
    pub atomic: AtomicReport,
}

impl QuorumReport {
    pub fn validity(&self) -> Validity {
        match (self.keys.validity(), self.atomic.validity()) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }
}

impl fmt::Display for QuorumReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.keys)?;
        write!(f, "{}", self.atomic)
    }
}

/// The group a key belongs to: its parent path when the parent's last component is `g`
/// followed by digits.
pub fn group_of(key: &str) -> Option<&str> {
    let (parent, _) = key.rsplit_once('/')?;
    let last = parent.rsplit('/').next()?;
    let digits = last.strip_prefix('g')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(parent)
}

/// Checks every key for linearizability and every multi-put group for atomicity.
pub fn check_quorum(history: &History, options: &CheckOptions) -> Result<QuorumReport, CheckError> {
    Ok(QuorumReport {
        keys: check_keys(history, options)?,
        atomic: check_atomic(history),
    })
}

/// The atomicity half of [`check_quorum`].
pub fn check_atomic(history: &History) -> AtomicReport {
    #[derive(Default)]
    struct Group<'h> {
        value: Option<Value>,
        acknowledged: bool,
        reads: Vec<&'h Operation>,
        keys: BTreeMap<&'h str, ()>,
    }
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for op in history.client_ops() {
        let Some(name) = group_of(&op.key) else {
            continue;
        };
        let group = groups.entry(name).or_default();
        group.keys.insert(op.key.as_str(), ());
        match (&op.op, &op.outcome) {
            (Op::Write(value), outcome) => {
                group.value = Some(*value);
                if matches!(outcome, Outcome::Ok(_)) {
                    group.acknowledged = true;
                }
            }
            (Op::Read, Outcome::Ok(OpResult::Read(_))) => group.reads.push(op),
            _ => {}
        }
    }
    let mut report = AtomicReport {
        groups: groups.len(),
        ..AtomicReport::default()
    };
    for (name, group) in &groups {
        if group.acknowledged {
            report.acknowledged += 1;
        }
        let Some(value) = group.value else {
            continue;
        };
        let holds = |op: &Operation| matches!(op.outcome, Outcome::Ok(OpResult::Read(Some(v))) if v == value);
        let absent = |op: &Operation| matches!(op.outcome, Outcome::Ok(OpResult::Read(None)));
        // Whole: every key of the group seen with the value by some read.
        let whole = group
            .keys
            .keys()
            .all(|key| group.reads.iter().any(|r| r.key == *key && holds(r)));
        if whole {
            report.seen_whole += 1;
        }
        for seen in group.reads.iter().filter(|r| holds(r)) {
            if let Some(missing) = group
                .reads
                .iter()
                .find(|r| r.key != seen.key && absent(r) && seen.precedes(r))
            {
                report.torn.push(Torn {
                    group: name.to_string(),
                    seen: seen.id,
                    missing: missing.id,
                });
                break;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ProcessId, Recorder};

    fn write(rec: &Recorder, key: &str, value: Value, ok: bool) {
        let id = rec.invoke_keyed(ProcessId(0), key, Op::Write(value));
        let outcome = if ok {
            Outcome::Ok(OpResult::Done)
        } else {
            Outcome::Info
        };
        rec.complete(id, outcome).unwrap();
    }

    fn read(rec: &Recorder, key: &str, found: Option<Value>) {
        let id = rec.invoke_keyed(ProcessId(1), key, Op::Read);
        rec.complete(id, Outcome::Ok(OpResult::Read(found)))
            .unwrap();
    }

    #[test]
    fn groups_are_parents_named_g_and_digits() {
        assert_eq!(group_of("run/quorum/g12/0"), Some("run/quorum/g12"));
        assert_eq!(group_of("run/quorum/r3.1"), None);
        assert_eq!(group_of("run/quorum/gx/0"), None);
        assert_eq!(group_of("g1"), None);
    }

    #[test]
    fn a_group_seen_whole_or_absent_is_atomic() {
        let rec = Recorder::new();
        write(&rec, "p/g1/0", 7, true);
        write(&rec, "p/g1/1", 7, true);
        read(&rec, "p/g1/0", Some(7));
        read(&rec, "p/g1/1", Some(7));
        write(&rec, "p/g2/0", 8, false);
        write(&rec, "p/g2/1", 8, false);
        read(&rec, "p/g2/0", None);
        read(&rec, "p/g2/1", None);
        let report = check_atomic(&rec.history());
        assert_eq!(report.groups, 2);
        assert_eq!(report.acknowledged, 1);
        assert_eq!(report.seen_whole, 1);
        assert!(report.torn.is_empty());
        assert_eq!(report.validity(), Validity::Valid);
    }

    #[test]
    fn a_key_absent_after_another_was_seen_is_torn() {
        let rec = Recorder::new();
        write(&rec, "p/g1/0", 7, false);
        write(&rec, "p/g1/1", 7, false);
        read(&rec, "p/g1/0", Some(7));
        read(&rec, "p/g1/1", None);
        let report = check_atomic(&rec.history());
        assert_eq!(report.torn.len(), 1);
        assert_eq!(report.torn[0].group, "p/g1");
        assert_eq!(report.validity(), Validity::Invalid);
    }

    #[test]
    fn an_absent_key_read_before_the_other_was_seen_is_not_torn() {
        let rec = Recorder::new();
        write(&rec, "p/g1/0", 7, false);
        write(&rec, "p/g1/1", 7, false);
        read(&rec, "p/g1/1", None);
        read(&rec, "p/g1/0", Some(7));
        assert!(check_atomic(&rec.history()).torn.is_empty());
    }
}
