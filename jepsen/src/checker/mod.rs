//! Checkers: decide whether a recorded [`History`](crate::history::History) is one a
//! correct system could have produced.
//!
//! - [`linearizable`]: read/write/compare-and-set registers, one or many keys, by the
//!   Wing–Gong–Lowe search ([`wgl`]) over the [`register`] model.
//! - [`set`]: unique adds followed by a final read; nothing acknowledged is lost, nothing
//!   appears that was never attempted.
//! - [`objects`]: an object store's keys as registers that may be absent, with listings
//!   projected onto each key they cover and checked by the register checker.
//! - [`queue`]: messages sent, received and deleted; nothing acknowledged is lost, nothing
//!   delivered that was never sent; duplicates counted (standard) or refused ([`fifo`],
//!   which also checks the order within each message group).
//! - [`stream`]: records put to a sharded stream and read back shard by shard; nothing
//!   acknowledged is lost or moved, nothing read that was never put, no duplicates, and
//!   every reader's pages continue one another without a gap, parents before children.
//!
//! Every checker answers with a report whose [`Validity`] is `Valid`, `Invalid` (with an
//! explanation) or `Unknown` (the search budget ran out: neither proven nor refuted). A
//! history a checker cannot interpret (an operation its model does not know, no final
//! read) is a [`CheckError`], not a verdict.

pub mod atomic;
pub mod fifo;
pub mod linearizable;
pub mod objects;
pub mod queue;
pub mod register;
pub mod set;
pub mod stream;
pub mod wgl;

use std::fmt;

use thiserror::Error;

use crate::history::{Op, OpId, Value};

/// The bottom line of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// The history is consistent with the model.
    Valid,
    /// The history cannot be explained by the model.
    Invalid,
    /// The checker gave up within its budget.
    Unknown,
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        })
    }
}

/// Why a history could not be checked at all.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error("operation {id:?} ({op}) is not part of the {model} model")]
    UnsupportedOp {
        id: OpId,
        op: Op,
        model: &'static str,
    },
    #[error("history acts on {count} keys; check it key by key (check_keys)")]
    MultipleKeys { count: usize },
    #[error("operation {id:?} cannot be read as part of the {model} model: {what}")]
    Malformed {
        id: OpId,
        model: &'static str,
        what: String,
    },
    #[error("history has no successful read-all to serve as the final read")]
    NoFinalRead,
    #[error("value {value} is added by both {first:?} and {second:?}; set adds must be unique")]
    DuplicateAdd {
        value: Value,
        first: OpId,
        second: OpId,
    },
}
