//! The retry policy: which failed attempts may be tried again, and how long to wait.
//!
//! This module classifies one failed attempt: a write failure that proves the write was
//! not applied is retryable: the server itself answered `UNAVAILABLE` (by the server's
//! convention: not applied), or the connection could not even be opened (nothing was
//! sent). A server-sent status carries no `source`; a status that tonic made from a local
//! transport failure does, which is how the two are told apart. Any other write failure
//! leaves the outcome unknown; `Client::call` still retries it, because every write
//! carries a request id that the cluster applies at most once (within 10 minutes), and
//! reports `OutcomeUnknown` only if it then gives up.
//!
//! Reads change nothing, so any transport failure or `DEADLINE_EXCEEDED` is retried.

use std::error::Error as StdError;
use std::time::Duration;

use tonic::{Code, Status};

use crate::error::Error;

/// Whether an operation changes state (and so must not be repeated blindly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    Write,
}

/// What to do after a failed attempt.
#[derive(Debug)]
pub(crate) enum Disposition {
    /// The attempt was not applied: try again (on the next endpoint). The error is the one
    /// to report if the deadline runs out first.
    Retry(Error),
    /// Stop and report this error.
    Fail(Error),
}

/// Decides what a failed attempt against `endpoint` means for an operation of `kind`.
pub(crate) fn classify(status: &Status, kind: OpKind, endpoint: &str) -> Disposition {
    let message = format!("{endpoint}: {}", describe(status));
    if is_connect_failure(status) {
        return Disposition::Retry(Error::Transport(message));
    }
    let from_server = status.source().is_none();
    if !from_server {
        // The request may have reached the server before the connection failed.
        return match kind {
            OpKind::Read => Disposition::Retry(Error::Transport(message)),
            OpKind::Write => Disposition::Fail(Error::OutcomeUnknown(message)),
        };
    }
    match status.code() {
        Code::Unavailable => Disposition::Retry(Error::Unavailable(message)),
        Code::InvalidArgument => Disposition::Fail(Error::InvalidArgument(message)),
        Code::NotFound => Disposition::Fail(Error::NotFound(message)),
        Code::DeadlineExceeded => match kind {
            OpKind::Read => Disposition::Retry(Error::Timeout(message)),
            OpKind::Write => Disposition::Fail(Error::OutcomeUnknown(message)),
        },
        // Rejections that happen before any state is touched.
        code @ (Code::Unauthenticated
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::AlreadyExists) => Disposition::Fail(server_error(code, status)),
        // Anything else gives no promise about a write (e.g. INTERNAL after a crash in
        // the middle of a request).
        code => match kind {
            OpKind::Read => Disposition::Fail(server_error(code, status)),
            OpKind::Write => Disposition::Fail(Error::OutcomeUnknown(format!(
                "{endpoint}: server error {}: {}",
                code_name(code),
                status.message()
            ))),
        },
    }
}

/// Exponential backoff between retries: `initial`, doubling, capped at `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            next: initial.min(max),
            max,
        }
    }

    /// The pause before the next retry (before jitter).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }
}

/// Scales `delay` by `factor` in [0.5, 1.0] so that many clients retrying at once spread out.
pub(crate) fn with_jitter(delay: Duration, factor: f64) -> Duration {
    delay.mul_f64(factor.clamp(0.5, 1.0))
}

/// True when the status came from failing to open a connection: nothing was sent.
fn is_connect_failure(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The status message, plus the underlying cause for local transport failures (tonic's
/// message alone is often just "transport error").
fn describe(status: &Status) -> String {
    let mut text = status.message().to_string();
    let mut source = status.source();
    while let Some(err) = source {
        let cause = err.to_string();
        // tonic wraps causes in a bare "transport error" that says nothing new.
        if !cause.is_empty() && cause != "transport error" && !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = err.source();
    }
    if text.is_empty() {
        text = code_name(status.code()).to_string();
    }
    text
}

fn server_error(code: Code, status: &Status) -> Error {
    Error::Server {
        code: code_name(code).to_string(),
        message: status.message().to_string(),
    }
}

/// The gRPC name of a status code, as in the specification (`UNAVAILABLE`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_failure() -> Status {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        Status::from_error(Box::new(tonic::ConnectError(Box::new(io))))
    }

    fn broken_connection() -> Status {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        Status::from_error(Box::new(io))
    }

    #[test]
    fn server_unavailable_is_retried_for_reads_and_writes() {
        for kind in [OpKind::Read, OpKind::Write] {
            let d = classify(&Status::unavailable("no leader"), kind, "http://n1");
            assert!(
                matches!(&d, Disposition::Retry(Error::Unavailable(m)) if m.contains("no leader") && m.contains("http://n1")),
                "{kind:?}: {d:?}"
            );
        }
    }

    #[test]
    fn connect_failures_are_retried_for_reads_and_writes() {
        let status = connect_failure();
        assert_eq!(status.code(), Code::Unavailable);
        for kind in [OpKind::Read, OpKind::Write] {
            assert!(matches!(
                classify(&status, kind, "e"),
                Disposition::Retry(Error::Transport(_))
            ));
        }
    }

    #[test]
    fn deadline_exceeded_write_is_never_retried() {
        let d = classify(&Status::deadline_exceeded("slow"), OpKind::Write, "e");
        assert!(matches!(d, Disposition::Fail(Error::OutcomeUnknown(_))));
        let d = classify(&Status::deadline_exceeded("slow"), OpKind::Read, "e");
        assert!(matches!(d, Disposition::Retry(Error::Timeout(_))));
    }

    #[test]
    fn broken_connection_after_send_leaves_a_write_unknown() {
        let status = broken_connection();
        assert!(matches!(
            classify(&status, OpKind::Write, "e"),
            Disposition::Fail(Error::OutcomeUnknown(_))
        ));
        assert!(matches!(
            classify(&status, OpKind::Read, "e"),
            Disposition::Retry(Error::Transport(_))
        ));
    }

    #[test]
    fn transport_unavailable_without_connect_error_is_not_a_safe_retry() {
        // tonic reports e.g. a keep-alive timeout as UNAVAILABLE with a source: the request
        // may have been delivered.
        let mut status = broken_connection();
        assert!(status.source().is_some());
        status = Status::from_error(Box::new(status));
        assert!(matches!(
            classify(&status, OpKind::Write, "e"),
            Disposition::Fail(Error::OutcomeUnknown(_))
        ));
    }

    #[test]
    fn bad_input_fails_at_once() {
        for kind in [OpKind::Read, OpKind::Write] {
            assert!(matches!(
                classify(&Status::invalid_argument("empty key"), kind, "e"),
                Disposition::Fail(Error::InvalidArgument(m)) if m.contains("empty key")
            ));
            assert!(matches!(
                classify(&Status::not_found("group 9"), kind, "e"),
                Disposition::Fail(Error::NotFound(_))
            ));
        }
    }

    #[test]
    fn unexpected_server_errors_leave_writes_unknown_but_fail_reads_plainly() {
        let status = Status::internal("boom");
        assert!(matches!(
            classify(&status, OpKind::Write, "e"),
            Disposition::Fail(Error::OutcomeUnknown(m)) if m.contains("INTERNAL")
        ));
        assert!(matches!(
            classify(&status, OpKind::Read, "e"),
            Disposition::Fail(Error::Server { code, .. }) if code == "INTERNAL"
        ));
        assert!(matches!(
            classify(&Status::permission_denied("no"), OpKind::Write, "e"),
            Disposition::Fail(Error::Server { code, .. }) if code == "PERMISSION_DENIED"
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100));
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![20, 40, 80, 100, 100]);
    }

    #[test]
    fn backoff_initial_above_cap_is_capped() {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let d = Duration::from_millis(100);
        assert_eq!(with_jitter(d, 0.0), Duration::from_millis(50));
        assert_eq!(with_jitter(d, 0.75), Duration::from_millis(75));
        assert_eq!(with_jitter(d, 7.0), d);
    }
}
