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
            Op::Add(_) | Op::ReadAll => return Err(unsupported()),
            // Faults are context, not register operations.
            Op::Nemesis(_) => return Ok(None),
            Op::Read | Op::Write(_) | Op::Cas { .. } => {}
        }
        Ok(match (&op.op, &op.outcome) {
            (_, Outcome::Fail) => None,
            (Op::Read, Outcome::Info) => None,
            (Op::Read, Outcome::Ok(OpResult::Read(value))) => Some(RegisterOp::Read(*value)),
            (Op::Write(value), Outcome::Ok(_) | Outcome::Info) => Some(RegisterOp::Write(*value)),
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
            RegisterOp::Cas { expected, new } => (expected == *state).then_some(Some(new)),
            RegisterOp::CasRejected { expected } => (expected != *state).then_some(*state),
        }
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_) | RegisterOp::CasRejected { .. })
    }

    fn is_blind_write(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
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
    }
}
