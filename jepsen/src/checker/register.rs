//! The sequential specification of a read/write/compare-and-set register, and how each
//! recorded operation constrains it.
//!
//! Owns the translation from a history [`Operation`] (op + outcome) to a [`RegisterOp`] the
//! model can step, which is where Jepsen's outcome rules live:
//! - `Fail` operations definitely did not happen: dropped.
//! - Nemesis events are not register operations: dropped.
//! - An `Info` read returned nothing we know: it constrains nothing, dropped.
//! - An `Info` write or cas may have happened: kept, and the search may place it anywhere
//!   after its invocation or nowhere. An `Info` cas that happened but did not match changed
//!   nothing, which is the same as not happening, so it is modelled as a successful cas.
//! - An `Ok` cas that answered `false` is a check that the register did *not* hold
//!   `expected` at some point during the call.
//! - A delete is a write of `None` (absent), kept like a write.
//! - A listing projected onto one key (see `checker::objects`) is a read of that key:
//!   listed with a value, or absent when not listed.
//!
//! The register starts as `None` (never written) unless the caller says otherwise.

use crate::checker::wgl::Model;
use crate::checker::CheckError;
use crate::history::{Op, OpResult, Operation, Outcome, Value, ValueDisplay};
use std::fmt;

/// What one operation requires of the register at its linearization point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOp {
    /// The register holds this value.
    Read(Option<Value>),
    /// The register becomes this value.
    Write(Value),
    /// The register becomes absent (`None`).
    Delete,
    /// The register holds `expected` and becomes `new`.
    Cas { expected: Option<Value>, new: Value },
    /// The register does not hold `expected`; nothing changes.
    CasRejected { expected: Option<Value> },
}

impl RegisterOp {
    /// What `op` requires of the register, `Ok(None)` when it constrains nothing, or an
    /// error when it is not a register operation.
    pub fn from_operation(op: &Operation) -> Result<Option<RegisterOp>, CheckError> {
        let unsupported = || CheckError::UnsupportedOp {
            id: op.id,
            op: op.op.clone(),
            model: "register",
        };
        match op.op {
            Op::Add(_)
            | Op::ReadAll
            | Op::Send { .. }
            | Op::Receive { .. }
            | Op::DeleteMessages(_)
            | Op::Drain
            | Op::PutRecords(_)
            | Op::GetShardIterator { .. }
            | Op::GetRecords { .. }
            | Op::ListShards
            | Op::SplitShard { .. }
            | Op::MergeShards { .. } => return Err(unsupported()),
            // Faults are context, not register operations.
            Op::Nemesis(_) => return Ok(None),
            Op::Read | Op::Write(_) | Op::Cas { .. } | Op::Delete | Op::List => {}
        }
        Ok(match (&op.op, &op.outcome) {
            (_, Outcome::Fail) => None,
            (Op::Read | Op::List, Outcome::Info) => None,
            (Op::Read, Outcome::Ok(OpResult::Read(value))) => Some(RegisterOp::Read(*value)),
            // A listing projected onto this key: what it says of this key alone.
            (Op::List, Outcome::Ok(OpResult::Listed(entries))) => {
                Some(RegisterOp::Read(entries.get(&op.key).copied()))
            }
            (Op::Write(value), Outcome::Ok(_) | Outcome::Info) => Some(RegisterOp::Write(*value)),
            (Op::Delete, Outcome::Ok(_) | Outcome::Info) => Some(RegisterOp::Delete),
            (Op::Cas { expected, new }, Outcome::Info | Outcome::Ok(OpResult::Cas(true))) => {
                Some(RegisterOp::Cas {
                    expected: *expected,
                    new: *new,
                })
            }
            (Op::Cas { expected, .. }, Outcome::Ok(OpResult::Cas(false))) => {
                Some(RegisterOp::CasRejected {
                    expected: *expected,
                })
            }
            // A well-formed history never pairs an op with another op's result.
            _ => return Err(unsupported()),
        })
    }
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterOp::Read(v) => write!(f, "read {}", ValueDisplay(*v)),
            RegisterOp::Write(v) => write!(f, "write {v}"),
            RegisterOp::Delete => write!(f, "delete"),
            RegisterOp::Cas { expected, new } => {
                write!(f, "cas {} -> {new}", ValueDisplay(*expected))
            }
            RegisterOp::CasRejected { expected } => {
                write!(f, "cas {} rejected", ValueDisplay(*expected))
            }
        }
    }
}

/// A single register. Its state is the value it holds (`None`: never written).
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type State = Option<Value>;
    type Op = RegisterOp;

    fn step(&self, state: &Option<Value>, op: &RegisterOp) -> Option<Option<Value>> {
        match *op {
            RegisterOp::Read(value) => (value == *state).then_some(*state),
            RegisterOp::Write(value) => Some(Some(value)),
            RegisterOp::Delete => Some(None),
            RegisterOp::Cas { expected, new } => (expected == *state).then_some(Some(new)),
            RegisterOp::CasRejected { expected } => (expected != *state).then_some(*state),
        }
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_) | RegisterOp::CasRejected { .. })
    }

    fn is_blind_write(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_) | RegisterOp::Delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpId, ProcessId};

    fn operation(op: Op, outcome: Outcome) -> Operation {
        Operation {
            id: OpId(0),
            process: ProcessId(0),
            key: String::new(),
            op,
            invoked_at: 0,
            completed_at: Some(1),
            outcome,
            wall: Default::default(),
        }
    }

    #[test]
    fn steps_follow_register_semantics() {
        let r = Register;
        assert_eq!(r.step(&None, &RegisterOp::Read(None)), Some(None));
        assert_eq!(r.step(&Some(1), &RegisterOp::Read(Some(2))), None);
        assert_eq!(r.step(&Some(1), &RegisterOp::Write(2)), Some(Some(2)));
        assert_eq!(r.step(&Some(1), &RegisterOp::Delete), Some(None));
        assert_eq!(r.step(&None, &RegisterOp::Delete), Some(None));
        assert!(r.is_blind_write(&RegisterOp::Delete));
        let cas = RegisterOp::Cas {
            expected: Some(1),
            new: 2,
        };
        assert_eq!(r.step(&Some(1), &cas), Some(Some(2)));
        assert_eq!(r.step(&Some(3), &cas), None);
        assert_eq!(r.step(&None, &cas), None);
        let create = RegisterOp::Cas {
            expected: None,
            new: 7,
        };
        assert_eq!(r.step(&None, &create), Some(Some(7)));
        let rejected = RegisterOp::CasRejected { expected: Some(1) };
        assert_eq!(r.step(&Some(3), &rejected), Some(Some(3)));
        assert_eq!(r.step(&Some(1), &rejected), None);
    }

    #[test]
    fn outcomes_translate_by_jepsen_rules() {
        let cas = Op::Cas {
            expected: Some(1),
            new: 2,
        };
        let tr = |op: Op, outcome| RegisterOp::from_operation(&operation(op, outcome)).unwrap();
        assert_eq!(tr(Op::Write(1), Outcome::Fail), None);
        assert_eq!(tr(Op::Read, Outcome::Info), None);
        assert_eq!(tr(Op::Write(4), Outcome::Info), Some(RegisterOp::Write(4)));
        assert_eq!(
            tr(cas.clone(), Outcome::Info),
            Some(RegisterOp::Cas {
                expected: Some(1),
                new: 2
            })
        );
        assert_eq!(
            tr(cas, Outcome::Ok(OpResult::Cas(false))),
            Some(RegisterOp::CasRejected { expected: Some(1) })
        );
        assert!(matches!(
            RegisterOp::from_operation(&operation(Op::Add(1), Outcome::Fail)),
            Err(CheckError::UnsupportedOp { .. })
        ));
        assert_eq!(
            tr(Op::Delete, Outcome::Ok(OpResult::Done)),
            Some(RegisterOp::Delete)
        );
        assert_eq!(tr(Op::Delete, Outcome::Info), Some(RegisterOp::Delete));
        assert_eq!(tr(Op::Delete, Outcome::Fail), None);
    }

    #[test]
    fn a_projected_listing_reads_its_own_key() {
        let listing = |key: &str, entries: &[(&str, Value)]| Operation {
            key: key.to_string(),
            ..operation(
                Op::List,
                Outcome::Ok(OpResult::Listed(
                    entries.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                )),
            )
        };
        let tr = |op: Operation| RegisterOp::from_operation(&op).unwrap();
        assert_eq!(
            tr(listing("a", &[("a", 3)])),
            Some(RegisterOp::Read(Some(3)))
        );
        assert_eq!(tr(listing("b", &[("a", 3)])), Some(RegisterOp::Read(None)));
        assert_eq!(
            tr(Operation {
                outcome: Outcome::Info,
                ..listing("a", &[])
            }),
            None
        );
    }
}
