//! What a client of the S3 API (the nodes' HTTP edges) shares: the official AWS SDK client
//! for each edge, its Jepsen process id, and how one request's failure becomes a history
//! outcome. The counterpart of [`crate::run::request`] for the gRPC client.
//!
//! Every request is one attempt: the SDK's retries are off (a retried PUT could apply twice
//! within one recorded operation, and a retry is the client library's business, not the
//! harness's), its stalled-stream protection is off (a paused node must end in a timeout
//! like any other request), and the SDK's operation timeout is the run's `--op-timeout-ms`,
//! with the harness's own deadline 2 s later on top.
//!
//! Outcome rules, from what the node promises (its S3 error mapping):
//! - a write answered `503 ServiceUnavailable` or any other `4xx` was not applied: `fail`;
//! - a write answered `500 InternalError` (the node's "outcome unknown"), any other `5xx`,
//!   `408`, a timeout, a connection lost after the request may have been sent, or a response
//!   that could not be read: `info`, it may or may not have happened;
//! - a write whose connection was refused never left the harness: `fail`;
//! - a failed read changed nothing: `info` when it timed out or lost its connection (the
//!   process is retired), `fail` otherwise; the checker gives neither any weight.
//!
//! After an `info` the client continues as a new process with new connections, so a
//! process never has two operations in flight.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::Client;
use rand::Rng;

use crate::history::{Outcome, ProcessId};
use crate::run::request::{ClientContext, Effect};
use crate::run::target::S3Access;

/// Time a request may take beyond its SDK deadline before the harness gives up on it.
const GRACE: Duration = Duration::from_secs(2);

/// How long connecting to an edge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A plain-HTTP, path-style client of one edge, with one attempt per request.
pub fn edge_client(endpoint: &str, access: &S3Access, op_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(op_timeout))
        .operation_timeout(op_timeout)
        .build();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &access.access_key,
            &access.secret_key,
            None,
            None,
            "stratus-jepsen",
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// One Jepsen process of the S3 workload: a client per edge it may use, until an `info`
/// retires it.
pub struct S3Process {
    pub id: ProcessId,
    /// (node index from 0, client of that node's edge).
    edges: Vec<(usize, Client)>,
    incarnation: u64,
}

impl S3Process {
    /// The first process of the client `ctx` describes.
    pub fn first(ctx: &ClientContext, access: &S3Access) -> S3Process {
        S3Process::incarnation(ctx, access, 0)
    }

    /// The process that takes over after this one saw an `info`.
    pub fn next(&self, ctx: &ClientContext, access: &S3Access) -> S3Process {
        S3Process::incarnation(ctx, access, self.incarnation + 1)
    }

    /// Every edge by default; with `--pin-clients` one edge per process, a different one
    /// for each incarnation.
    fn incarnation(ctx: &ClientContext, access: &S3Access, incarnation: u64) -> S3Process {
        let nodes = ctx.edge_nodes(access.endpoints.len(), incarnation);
        S3Process {
            id: ctx.process_id(incarnation),
            edges: nodes
                .into_iter()
                .map(|node| {
                    let client = edge_client(&access.endpoints[node], access, ctx.op_timeout);
                    (node, client)
                })
                .collect(),
            incarnation,
        }
    }

    /// A random edge of this process, with its node number (from 1).
    pub fn edge(&self, rng: &mut impl Rng) -> (u64, &Client) {
        let (node, client) = &self.edges[rng.gen_range(0..self.edges.len())];
        (*node as u64 + 1, client)
    }

    /// The edges in turn, starting at the `attempt`th: for retries that move on.
    pub fn edge_at(&self, attempt: usize) -> (u64, &Client) {
        let (node, client) = &self.edges[attempt % self.edges.len()];
        (*node as u64 + 1, client)
    }
}

/// How a request failed, in the terms the outcome rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Failure {
    /// The server answered with this HTTP status and error code.
    Status { status: u16, code: String },
    /// The connection was refused: nothing was sent.
    Refused,
    /// No complete answer: a timeout, a lost connection, an unreadable response.
    NoAnswer(String),
    /// The request could not even be built: nothing was sent.
    NotSent(String),
}

impl S3Failure {
    /// The S3 error code of an answered request (`NoSuchKey`, `PreconditionFailed`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Failure::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            S3Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Classifies an SDK error.
    pub fn of<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> S3Failure
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match error {
            SdkError::ServiceError(service) => S3Failure::Status {
                status: service.raw().status().as_u16(),
                code: service.err().code().unwrap_or("").to_string(),
            },
            SdkError::ConstructionFailure(_) => {
                S3Failure::NotSent(aws_sdk_s3::error::DisplayErrorContext(error).to_string())
            }
            SdkError::DispatchFailure(_) if connection_refused(error) => S3Failure::Refused,
            _ => S3Failure::NoAnswer(aws_sdk_s3::error::DisplayErrorContext(error).to_string()),
        }
    }

    /// The outcome a failed request of `effect` is recorded with (see the module docs).
    pub fn outcome(&self, effect: Effect) -> Outcome {
        match (effect, self) {
            (_, S3Failure::NotSent(_) | S3Failure::Refused) => Outcome::Fail,
            (_, S3Failure::NoAnswer(_)) => Outcome::Info,
            (_, S3Failure::Status { status: 408, .. }) => Outcome::Info,
            (Effect::Read, S3Failure::Status { .. }) => Outcome::Fail,
            (Effect::Write, S3Failure::Status { status, .. }) => {
                if *status < 500 || *status == 503 {
                    Outcome::Fail
                } else {
                    Outcome::Info
                }
            }
        }
    }
}

/// Whether an error was caused by a refused connection (the request was never sent).
fn connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

/// Runs `request` with the harness's hard deadline on top of the SDK's own; a request cut
/// short by it had no answer.
pub async fn bounded<T>(
    op_timeout: Duration,
    request: impl Future<Output = Result<T, S3Failure>>,
) -> Result<T, S3Failure> {
    match tokio::time::timeout(op_timeout + GRACE, request).await {
        Ok(result) => result,
        Err(_) => Err(S3Failure::NoAnswer(format!(
            "no answer within the harness deadline of {:?}",
            op_timeout + GRACE
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Recorder;

    fn status(status: u16, code: &str) -> S3Failure {
        S3Failure::Status {
            status,
            code: code.into(),
        }
    }

    #[test]
    fn only_writes_without_a_definite_answer_are_info() {
        let w = |f: S3Failure| f.outcome(Effect::Write);
        assert_eq!(w(status(503, "ServiceUnavailable")), Outcome::Fail);
        assert_eq!(w(status(412, "PreconditionFailed")), Outcome::Fail);
        assert_eq!(w(status(404, "NoSuchKey")), Outcome::Fail);
        assert_eq!(w(status(500, "InternalError")), Outcome::Info);
        assert_eq!(w(status(504, "")), Outcome::Info);
        assert_eq!(w(status(408, "RequestTimeout")), Outcome::Info);
        assert_eq!(w(S3Failure::NoAnswer("timeout".into())), Outcome::Info);
        assert_eq!(w(S3Failure::Refused), Outcome::Fail);
        assert_eq!(w(S3Failure::NotSent("bad".into())), Outcome::Fail);
        let r = |f: S3Failure| f.outcome(Effect::Read);
        assert_eq!(r(status(500, "InternalError")), Outcome::Fail);
        assert_eq!(r(S3Failure::NoAnswer("reset".into())), Outcome::Info);
    }

    #[test]
    fn a_refused_connection_is_found_in_the_error_chain() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "connect failed")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = Wrapper(std::io::ErrorKind::ConnectionRefused.into());
        let reset = Wrapper(std::io::ErrorKind::ConnectionReset.into());
        assert!(connection_refused(&refused));
        assert!(!connection_refused(&reset));
    }

    #[tokio::test]
    async fn processes_use_every_edge_or_one_when_pinned() {
        let access = S3Access {
            endpoints: vec![
                "http://127.0.0.1:1".into(),
                "http://127.0.0.1:2".into(),
                "http://127.0.0.1:3".into(),
            ],
            access_key: "a".into(),
            secret_key: "s".into(),
        };
        let ctx = ClientContext {
            index: 1,
            clients: 4,
            endpoints: Vec::new(),
            op_timeout: Duration::from_secs(1),
            recorder: Recorder::new(),
            seed: 0,
            pinned: false,
        };
        let first = S3Process::first(&ctx, &access);
        let second = first.next(&ctx, &access);
        assert_eq!((first.id, second.id), (ProcessId(1), ProcessId(5)));
        assert_eq!(first.edges.len(), 3);
        let pinned = ClientContext {
            pinned: true,
            ..ctx
        };
        let first = S3Process::first(&pinned, &access);
        let second = first.next(&pinned, &access);
        assert_eq!(first.edge_at(7).0, 2);
        assert_eq!(second.edge_at(0).0, 3);
    }
}
