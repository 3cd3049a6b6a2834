//! Errors of the quorum-storage client (writer, replica reader, catalog, key-value database).
//!
//! As in the rest of the client, the variants say what the caller must decide next. The one
//! that needs care is a commit that failed after its records left the process
//! ([`QuorumError::OutcomeUnknown`], and [`QuorumError::Fenced`] with `outcome_unknown`):
//! some segments may hold the records, and a later writer's recovery may find them on a
//! read quorum and keep them. Such a commit is all-or-nothing (a mini-transaction is
//! visible whole or not at all), but whether it happened is only known by reading.

use crate::Error as ClientError;

/// A failed quorum-storage operation.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// A bad argument from the caller (key length, value size, page out of range, ...).
    /// Retrying the same call fails the same way.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A key outside 1..=1024 bytes.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A value over the 64 KiB limit.
    #[error("value too large: {size_bytes} bytes (at most {limit_bytes})")]
    ValueTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },

    /// No volume of that name.
    #[error("volume not found: {0}")]
    VolumeNotFound(String),

    /// A volume of that name exists already.
    #[error("volume already exists: {0}")]
    VolumeExists(String),

    /// A newer writer opened the volume: this writer can no longer commit anything.
    /// With `outcome_unknown`, the failed commit had already sent records: the newer
    /// writer's recovery may have kept it (whole) or voided it (whole).
    #[error("writer of epoch {epoch} is fenced by a newer writer (epoch {newer_epoch}){}", if *.outcome_unknown { "; the commit's outcome is unknown" } else { "" })]
    Fenced {
        epoch: u64,
        newer_epoch: u64,
        outcome_unknown: bool,
    },

    /// A commit whose records were sent did not become durable before the deadline (too
    /// few segments answered). It may still become durable, now or through a later
    /// writer's recovery: whole or not at all. Read to find out.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),

    /// Too few segments answered in time: the operation did not happen (nothing that could
    /// become visible was sent). Retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// The writer was closed.
    #[error("the writer is closed")]
    Closed,

    /// Stored or received bytes failed their CRC, or a segment broke the protocol.
    #[error("corrupt or inconsistent data: {0}")]
    Corrupt(String),

    /// The catalog (or another cluster call) failed: see the client error.
    #[error("{0}")]
    Client(#[from] ClientError),
}

impl QuorumError {
    /// True when a write that failed with this error may nonetheless become durable.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            QuorumError::OutcomeUnknown(_) => true,
            QuorumError::Fenced {
                outcome_unknown, ..
            } => *outcome_unknown,
            QuorumError::Client(e) => e.is_outcome_unknown(),
            _ => false,
        }
    }

    /// True when the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            QuorumError::Unavailable(_) => true,
            QuorumError::Client(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Results of this module.
pub type Result<T, E = QuorumError> = std::result::Result<T, E>;
