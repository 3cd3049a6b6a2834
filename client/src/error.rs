//! Errors of the client library.
//!
//! The variants follow what a caller must decide next, not where the failure came from:
//! fix the input ([`Error::InvalidArgument`]), try again later ([`Error::Unavailable`],
//! [`Error::Transport`], [`Error::Timeout`]), or find out whether a write happened
//! ([`Error::OutcomeUnknown`]). Only `OutcomeUnknown` leaves a write possibly applied.

use std::time::Duration;

/// A failed client call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An endpoint given to the client is not usable (bad URI, unsupported scheme).
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    /// The server rejected the request as malformed (empty or oversized key, value over
    /// the limit, bad scan limit). Retrying the same request will fail the same way.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The server does not know the target (e.g. an unknown group).
    #[error("not found: {0}")]
    NotFound(String),

    /// The cluster answered that it could not serve the request (no leader yet, node
    /// shutting down) until the call deadline ran out. The operation was not applied.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),

    /// No endpoint could be reached until the call deadline ran out. The operation was
    /// not applied: no request was delivered.
    #[error("transport error: {0}")]
    Transport(String),

    /// A write may or may not have been applied: the server said `DEADLINE_EXCEEDED`, the
    /// connection broke after the request was sent, or no answer came before the deadline.
    /// Read the key to find out; the client never retries such a write on its own.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),

    /// A read got no answer before the call deadline.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The server's answer broke the protocol (e.g. a scan page that does not advance).
    #[error("protocol error: {0}")]
    Protocol(String),

    /// Any other error the server returned (`code` is the gRPC status code name).
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
}

impl Error {
    /// True when a write that failed with this error may nonetheless have been applied.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown(_))
    }

    /// True when the same request may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Transport(_) | Error::Timeout(_)
        )
    }

    /// The last retryable error of a call whose deadline ran out, with how hard it tried.
    pub(crate) fn gave_up(self, attempts: u32, elapsed: Duration) -> Self {
        let note = |message: String| {
            format!("{message} (gave up after {attempts} attempts in {elapsed:.1?})")
        };
        match self {
            Error::Unavailable(m) => Error::Unavailable(note(m)),
            Error::Transport(m) => Error::Transport(note(m)),
            Error::Timeout(m) => Error::Timeout(note(m)),
            other => other,
        }
    }
}
