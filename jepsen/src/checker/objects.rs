//! The object store checker (the `objects` workload): every key is a register whose states
//! are "absent" or a value. A PUT writes its value, a DELETE writes absent, a GET reads
//! (`NoSuchKey`: absent), a conditional PUT is a compare-and-set, and a listing reads every
//! key under its prefix at once.
//!
//! How: each listing is projected onto every key it covers (the keys of the history under
//! its prefix, and any key it listed) as a read of that key alone, spanning the listing's
//! whole window: listed with a value, or absent. Then each key's operations, projections
//! included, are checked for linearizability by the register checker
//! ([`linearizable::check_register`], Wing–Gong–Lowe), key by key (locality). So:
//! - a GET or a listing must see a state the key held at some moment within its window:
//!   a stale read, a value never written, a corrupt body (recorded as a value no write
//!   produced), and a listing that shows a key whose acknowledged delete completed before
//!   the listing began (with no put that could come after) are all refuted;
//! - an acknowledged write is never lost: once it completed, every later read must see it
//!   or a write that could follow it. That needs a read after it, so a key with an
//!   acknowledged write (put, delete, or cas that swapped) and no successful read invoked
//!   after the last one completed is *unverified*, which makes the answer unknown rather
//!   than valid (the workload's final reads give every key one).
//!
//! Not checked: that a listing is a snapshot of all its keys at one moment (S3 does not
//! promise it; each key is checked on its own), listing order or pagination, and
//! object metadata other than the value. Cost: one search per key, and a listing adds one
//! read to each key it covers, so workloads keep keys per prefix few and rotate them.

use std::collections::BTreeMap;
use std::fmt;

use crate::checker::linearizable::{check_register, CheckOptions, KeyedReport};
use crate::checker::{CheckError, Validity};
use crate::history::{History, Key, Op, OpResult, Operation, Outcome, Tick};

/// What checking an object store history found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsReport {
    /// Each key's linearizability verdict.
    pub keys: KeyedReport,
    /// Successful listings, each checked against every key it covers.
    pub listings: usize,
    /// Reads of single keys those listings amounted to.
    pub listing_reads: usize,
    /// Keys with an acknowledged write that nothing read afterwards: a lost write there
    /// could not be seen.
    pub unverified: Vec<Key>,
}

impl ObjectsReport {
    /// Invalid if any key is not linearizable; else unknown if a key's search gave up or
    /// a key is unverified; else valid.
    pub fn validity(&self) -> Validity {
        match self.keys.validity() {
            Validity::Valid if !self.unverified.is_empty() => Validity::Unknown,
            validity => validity,
        }
    }
}

/// How many unverified keys a report shows.
const UNVERIFIED_SHOWN: usize = 20;

impl fmt::Display for ObjectsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "objects {}: {} listings checked as {} reads of single keys",
            self.validity(),
            self.listings,
            self.listing_reads
        )?;
        write!(f, "{}", self.keys)?;
        if !self.unverified.is_empty() {
            let shown: Vec<&str> = self
                .unverified
                .iter()
                .take(UNVERIFIED_SHOWN)
                .map(String::as_str)
                .collect();
            writeln!(
                f,
                "unverified (acknowledged writes never read afterwards): {} {:?}{}",
                self.unverified.len(),
                shown,
                if self.unverified.len() > UNVERIFIED_SHOWN {
                    " ..."
                } else {
                    ""
                }
            )?;
        }
        Ok(())
    }
}

/// Checks an object store history (see the module docs).
pub fn check(history: &History, options: &CheckOptions) -> Result<ObjectsReport, CheckError> {
    let by_key = project(history)?;
    let mut report = ObjectsReport {
        listings: history
            .client_ops()
            .filter(|op| op.op == Op::List && matches!(op.outcome, Outcome::Ok(_)))
            .count(),
        ..ObjectsReport::default()
    };
    for (key, ops) in &by_key {
        report.listing_reads += ops.iter().filter(|op| op.op == Op::List).count();
        if !verified(ops) {
            report.unverified.push(key.clone());
        }
        let verdict = check_register(ops.iter(), options)?;
        report.keys.keys.insert(key.clone(), verdict);
    }
    Ok(report)
}

/// Every key's operations, with each successful listing projected onto every key it
/// covers. Listings that failed or whose outcome is unknown read nothing and are dropped.
pub fn project(history: &History) -> Result<BTreeMap<Key, Vec<Operation>>, CheckError> {
    let mut by_key: BTreeMap<Key, Vec<Operation>> = BTreeMap::new();
    let mut listings: Vec<(&Operation, &BTreeMap<Key, u64>)> = Vec::new();
    for op in history.client_ops() {
        match (&op.op, &op.outcome) {
            (Op::Add(_) | Op::ReadAll, _) => {
                return Err(CheckError::UnsupportedOp {
                    id: op.id,
                    op: op.op.clone(),
                    model: "objects",
                })
            }
            (Op::List, Outcome::Ok(OpResult::Listed(entries))) => listings.push((op, entries)),
            (Op::List, _) => {}
            _ => by_key.entry(op.key.clone()).or_default().push(op.clone()),
        }
    }
    // A key only a listing mentions is a register too (one nobody wrote).
    for (_, entries) in &listings {
        for key in entries.keys() {
            by_key.entry(key.clone()).or_default();
        }
    }
    for (listing, entries) in listings {
        let prefix = listing.key.as_str();
        let under_prefix = by_key
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect::<Vec<Key>>();
        let outside = entries
            .keys()
            .filter(|key| !key.starts_with(prefix))
            .cloned();
        for key in under_prefix.into_iter().chain(outside) {
            let seen: BTreeMap<Key, u64> = entries
                .get(&key)
                .map(|value| (key.clone(), *value))
                .into_iter()
                .collect();
            let projected = Operation {
                key: key.clone(),
                op: Op::List,
                outcome: Outcome::Ok(OpResult::Listed(seen)),
                ..listing.clone()
            };
            if let Some(ops) = by_key.get_mut(&key) {
                ops.push(projected);
            }
        }
    }
    Ok(by_key)
}

/// Whether a successful read of the key was invoked after its last acknowledged write
/// completed (trivially so when no write was acknowledged).
fn verified(ops: &[Operation]) -> bool {
    let acknowledged_write = |op: &Operation| {
        matches!(
            (&op.op, &op.outcome),
            (Op::Write(_) | Op::Delete, Outcome::Ok(_))
                | (Op::Cas { .. }, Outcome::Ok(OpResult::Cas(true)))
        )
    };
    let last_write: Option<Tick> = ops
        .iter()
        .filter(|op| acknowledged_write(op))
        .filter_map(|op| op.completed_at)
        .max();
    let Some(last_write) = last_write else {
        return true;
    };
    ops.iter().any(|op| {
        matches!(op.op, Op::Read | Op::List)
            && matches!(op.outcome, Outcome::Ok(_))
            && op.invoked_at > last_write
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linearizable::Verdict;
    use crate::history::{OpId, ProcessId, Value};

    /// A hand-made history: operations numbered in the order given.
    struct Builder {
        ops: Vec<Operation>,
    }

    impl Builder {
        fn new() -> Self {
            Builder { ops: Vec::new() }
        }

        fn push(
            &mut self,
            process: u64,
            key: &str,
            op: Op,
            span: (Tick, Tick),
            outcome: Outcome,
        ) -> &mut Self {
            let info = outcome == Outcome::Info;
            self.ops.push(Operation {
                id: OpId(self.ops.len() as u64),
                process: ProcessId(process),
                key: key.to_string(),
                op,
                invoked_at: span.0,
                completed_at: (!info).then_some(span.1),
                outcome,
                wall: Default::default(),
            });
            self
        }

        fn put(&mut self, p: u64, key: &str, value: Value, span: (Tick, Tick)) -> &mut Self {
            self.push(p, key, Op::Write(value), span, Outcome::Ok(OpResult::Done))
        }

        fn put_info(&mut self, p: u64, key: &str, value: Value, at: Tick) -> &mut Self {
            self.push(p, key, Op::Write(value), (at, at), Outcome::Info)
        }

        fn delete(&mut self, p: u64, key: &str, span: (Tick, Tick)) -> &mut Self {
            self.push(p, key, Op::Delete, span, Outcome::Ok(OpResult::Done))
        }

        fn get(
            &mut self,
            p: u64,
            key: &str,
            value: Option<Value>,
            span: (Tick, Tick),
        ) -> &mut Self {
            self.push(p, key, Op::Read, span, Outcome::Ok(OpResult::Read(value)))
        }

        fn cas(
            &mut self,
            p: u64,
            key: &str,
            expected: Option<Value>,
            new: Value,
            swapped: bool,
            span: (Tick, Tick),
        ) -> &mut Self {
            self.push(
                p,
                key,
                Op::Cas { expected, new },
                span,
                Outcome::Ok(OpResult::Cas(swapped)),
            )
        }

        fn list(
            &mut self,
            p: u64,
            prefix: &str,
            entries: &[(&str, Value)],
            span: (Tick, Tick),
        ) -> &mut Self {
            let entries = entries.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            self.push(
                p,
                prefix,
                Op::List,
                span,
                Outcome::Ok(OpResult::Listed(entries)),
            )
        }

        fn check(&self) -> ObjectsReport {
            let history = History::from_ops(self.ops.clone()).unwrap();
            check(&history, &CheckOptions::default()).unwrap()
        }
    }

    /// The key the report finds not linearizable, and the operation it got stuck on.
    fn failure(report: &ObjectsReport) -> (Key, Operation) {
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        let (key, counterexample) = report.keys.failures().next().expect("a failure");
        (key.clone(), counterexample.stuck.clone())
    }

    /// A run over two epochs' keys with puts, deletes, cas, concurrent listings and final
    /// reads, every result one a correct store gives.
    fn valid_run() -> Builder {
        let mut b = Builder::new();
        b.put(0, "e0/k0", 1, (0, 3))
            .put(1, "e0/k1", 2, (1, 4))
            // Concurrent with both puts: may see either, both or neither.
            .list(2, "e0/", &[("e0/k0", 1)], (2, 5))
            .get(0, "e0/k0", Some(1), (6, 7))
            .cas(1, "e0/k0", Some(1), 3, true, (8, 9))
            .cas(2, "e0/k0", Some(1), 4, false, (10, 11))
            .delete(0, "e0/k1", (12, 13))
            .list(1, "e0/", &[("e0/k0", 3)], (14, 15))
            .get(2, "e0/k1", None, (16, 17))
            // A create-if-absent on a deleted key succeeds.
            .cas(0, "e0/k1", None, 5, true, (18, 19))
            .put_info(1, "e0/k0", 6, 20)
            .put(3, "e1/k0", 7, (21, 22))
            .list(2, "e1/", &[("e1/k0", 7)], (23, 24))
            // The unknown put happened after all.
            .get(4, "e0/k0", Some(6), (30, 31))
            .get(4, "e0/k1", Some(5), (32, 33))
            .get(4, "e1/k0", Some(7), (34, 35))
            .list(4, "", &[("e0/k0", 6), ("e0/k1", 5), ("e1/k0", 7)], (36, 37));
        b
    }

    #[test]
    fn a_valid_history_passes() {
        let report = valid_run().check();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.keys.keys.len(), 3);
        assert!(report.keys.keys.values().all(Verdict::is_linearizable));
        assert_eq!(report.listings, 4);
        // e0/ covers 2 keys twice, e1/ one key, the final listing 3 keys.
        assert_eq!(report.listing_reads, 2 + 2 + 1 + 3);
        assert!(report.unverified.is_empty());
    }

    #[test]
    fn a_lost_write_fails() {
        // The acknowledged put of 2 is followed by a read that sees the key as it was
        // before it.
        let mut b = Builder::new();
        b.put(0, "k", 1, (0, 1))
            .put(1, "k", 2, (2, 3))
            .get(2, "k", Some(1), (4, 5));
        let (key, stuck) = failure(&b.check());
        assert_eq!((key.as_str(), stuck.op), ("k", Op::Read));

        // Lost as seen by the final listing: the key is not listed at all.
        let mut b = Builder::new();
        b.put(0, "k", 1, (0, 1)).list(1, "", &[], (2, 3));
        let (key, stuck) = failure(&b.check());
        assert_eq!((key.as_str(), stuck.op), ("k", Op::List));
    }

    #[test]
    fn a_stale_read_fails() {
        let mut b = valid_run();
        // After the cas to 3 completed (tick 9), a read still sees 1.
        b.get(3, "e0/k0", Some(1), (25, 26));
        let (key, stuck) = failure(&b.check());
        assert_eq!(key, "e0/k0");
        assert_eq!(stuck.op, Op::Read);
        assert_eq!(stuck.invoked_at, 25);

        // A deleted key read as present by a GET.
        let mut b = Builder::new();
        b.put(0, "k", 1, (0, 1))
            .delete(0, "k", (2, 3))
            .get(1, "k", Some(1), (4, 5));
        assert_eq!(failure(&b.check()).0, "k");
    }

    #[test]
    fn a_listing_that_shows_a_deleted_key_fails() {
        let mut b = Builder::new();
        b.put(0, "e0/k0", 1, (0, 1))
            .put(0, "e0/k1", 2, (2, 3))
            .delete(1, "e0/k0", (4, 5))
            .list(2, "e0/", &[("e0/k0", 1), ("e0/k1", 2)], (6, 7));
        let (key, stuck) = failure(&b.check());
        assert_eq!(key, "e0/k0");
        assert_eq!(stuck.op, Op::List);
        // The same listing concurrent with the delete is fine.
        let mut b = Builder::new();
        b.put(0, "e0/k0", 1, (0, 1))
            .put(0, "e0/k1", 2, (2, 3))
            .delete(1, "e0/k0", (4, 7))
            .list(2, "e0/", &[("e0/k0", 1), ("e0/k1", 2)], (6, 8))
            .list(2, "e0/", &[("e0/k1", 2)], (9, 10));
        assert_eq!(b.check().validity(), Validity::Valid);
        // And so is one after the delete when a put may have recreated the key since.
        let mut b = Builder::new();
        b.put(0, "e0/k0", 1, (0, 1))
            .delete(1, "e0/k0", (2, 3))
            .put_info(0, "e0/k0", 9, 4)
            .list(2, "e0/", &[("e0/k0", 9)], (6, 7));
        assert_eq!(b.check().validity(), Validity::Valid);
    }

    #[test]
    fn listings_read_only_their_prefix_and_unknown_keys_are_caught() {
        // A listing of e1/ says nothing about e0/k0.
        let mut b = Builder::new();
        b.put(0, "e0/k0", 1, (0, 1))
            .list(1, "e1/", &[], (2, 3))
            .get(1, "e0/k0", Some(1), (4, 5));
        assert_eq!(b.check().validity(), Validity::Valid);
        // A listed key nobody ever wrote, or a value nobody wrote, is an anomaly.
        let mut b = Builder::new();
        b.list(1, "e1/", &[("e1/k9", 4)], (0, 1));
        assert_eq!(failure(&b.check()).0, "e1/k9");
        let mut b = Builder::new();
        b.put(0, "e1/k0", 1, (0, 1))
            .list(1, "e1/", &[("e1/k0", u64::MAX)], (2, 3));
        assert_eq!(failure(&b.check()).0, "e1/k0");
    }

    #[test]
    fn failed_and_unknown_listings_read_nothing() {
        let mut b = Builder::new();
        b.put(0, "k", 1, (0, 1))
            .push(1, "", Op::List, (2, 3), Outcome::Fail)
            .push(2, "", Op::List, (2, 2), Outcome::Info)
            .get(3, "k", Some(1), (4, 5));
        let report = b.check();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.listings, 0);
    }

    #[test]
    fn an_acknowledged_write_nobody_read_afterwards_is_unverified() {
        let mut b = Builder::new();
        b.put(0, "a", 1, (0, 1))
            .get(1, "a", Some(1), (2, 3))
            .delete(0, "a", (4, 5))
            .put(0, "b", 2, (6, 7))
            .list(1, "", &[("b", 2)], (8, 9))
            .put(0, "b", 3, (10, 11));
        let report = b.check();
        // "a" is read after its delete by the listing; "b"'s last put is never read.
        assert_eq!(report.unverified, vec!["b".to_string()]);
        assert_eq!(report.validity(), Validity::Unknown, "{report}");
        assert!(report.to_string().contains("unverified"), "{report}");
    }

    #[test]
    fn set_operations_are_not_objects() {
        let mut b = Builder::new();
        b.push(0, "s", Op::Add(1), (0, 1), Outcome::Ok(OpResult::Done));
        let history = History::from_ops(b.ops.clone()).unwrap();
        assert!(matches!(
            check(&history, &CheckOptions::default()),
            Err(CheckError::UnsupportedOp {
                model: "objects",
                ..
            })
        ));
    }

    #[test]
    fn the_register_checker_refuses_listings() {
        let history = History::from_ops(valid_run().ops).unwrap();
        assert!(matches!(
            crate::checker::linearizable::check_keys(&history, &CheckOptions::default()),
            Err(CheckError::UnsupportedOp { .. })
        ));
    }
}
