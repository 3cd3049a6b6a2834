//! What a client of the SQS API (the nodes' HTTP edges, AWS JSON 1.0) shares: the official
//! AWS SDK client for each edge with the queue's URL there, its Jepsen process id, and how
//! one request's failure becomes a history outcome. The counterpart of
//! [`crate::run::s3_request`], whose [`S3Failure`] classifies the SDK's errors here too
//! (both SDKs share the same error types).
//!
//! Every request is one attempt (the SDK's retries are off), with the run's
//! `--op-timeout-ms` as the SDK's operation timeout and the harness's deadline 2 s later.
//!
//! Outcome rules, from what the node's SQS edge promises:
//! - a request answered with a `4xx` (every queue error is a `400`, a bad signature a
//!   `403`) was not applied: `fail`; so is one whose connection was refused;
//! - any `5xx`, `408`, a timeout or a lost connection: `info`. Unlike the S3 edge, the SQS
//!   edge answers `503 ServiceUnavailable` both when the queue's group had no leader and
//!   when a proposal's outcome is unknown (the queue service folds the router's
//!   `OutcomeUnknown` into `Unavailable`), so a `503` does not prove a send or delete was
//!   not applied;
//! - a receive is a write too (the messages it returns are in flight, invisible to others,
//!   until their visibility timeout runs out), judged by the same rules.
//!
//! After an `info` the client continues as a new process with new connections.

use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_sqs::Client;
use rand::Rng;

use crate::history::{Outcome, ProcessId};
use crate::run::request::ClientContext;
use crate::run::s3_request::S3Failure;
use crate::run::target::S3Access;

/// The account id in every queue URL of a Stratus cluster.
pub const ACCOUNT_ID: &str = "000000000000";

/// How long connecting to an edge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A plain-HTTP client of one edge, with one attempt per request.
pub fn edge_client(endpoint: &str, access: &S3Access, op_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(op_timeout))
        .operation_timeout(op_timeout)
        .build();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
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

/// The URL of queue `name` on the edge at `endpoint` (`http://host:port`).
pub fn queue_url(endpoint: &str, name: &str) -> String {
    format!("{}/{ACCOUNT_ID}/{name}", endpoint.trim_end_matches('/'))
}

/// One edge as a process uses it.
pub struct SqsEdge {
    /// The node, from 1.
    pub node: u64,
    pub client: Client,
    /// The queue's URL on this edge.
    pub url: String,
}

/// One Jepsen process of a queue workload: a client per edge it may use, until an `info`
/// retires it.
pub struct SqsProcess {
    pub id: ProcessId,
    edges: Vec<SqsEdge>,
    incarnation: u64,
}

impl SqsProcess {
    /// The first process of the client `ctx` describes, for queue `name`.
    pub fn first(ctx: &ClientContext, access: &S3Access, name: &str) -> SqsProcess {
        SqsProcess::incarnation(ctx, access, name, 0)
    }

    /// The process that takes over after this one saw an `info`.
    pub fn next(&self, ctx: &ClientContext, access: &S3Access, name: &str) -> SqsProcess {
        SqsProcess::incarnation(ctx, access, name, self.incarnation + 1)
    }

    /// Every edge by default; with `--pin-clients` one edge per process, a different one
    /// for each incarnation.
    fn incarnation(
        ctx: &ClientContext,
        access: &S3Access,
        name: &str,
        incarnation: u64,
    ) -> SqsProcess {
        let nodes = ctx.edge_nodes(access.endpoints.len(), incarnation);
        SqsProcess {
            id: ctx.process_id(incarnation),
            edges: nodes
                .into_iter()
                .map(|node| {
                    let endpoint = &access.endpoints[node];
                    SqsEdge {
                        node: node as u64 + 1,
                        client: edge_client(endpoint, access, ctx.op_timeout),
                        url: queue_url(endpoint, name),
                    }
                })
                .collect(),
            incarnation,
        }
    }

    /// A random edge of this process.
    pub fn edge(&self, rng: &mut impl Rng) -> &SqsEdge {
        &self.edges[rng.gen_range(0..self.edges.len())]
    }

    /// The edges in turn, starting at the `attempt`th: for retries that move on.
    pub fn edge_at(&self, attempt: usize) -> &SqsEdge {
        &self.edges[attempt % self.edges.len()]
    }

    /// Whether the process has an edge at all.
    pub fn has_edges(&self) -> bool {
        !self.edges.is_empty()
    }
}

/// The outcome a failed SQS request is recorded with (see the module docs).
pub fn outcome(failure: &S3Failure) -> Outcome {
    match failure {
        S3Failure::NotSent(_) | S3Failure::Refused => Outcome::Fail,
        S3Failure::NoAnswer(_) => Outcome::Info,
        S3Failure::Status { status: 408, .. } => Outcome::Info,
        S3Failure::Status { status, .. } if *status < 500 => Outcome::Fail,
        S3Failure::Status { .. } => Outcome::Info,
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
    fn only_answers_in_the_4xx_range_prove_nothing_was_applied() {
        assert_eq!(
            outcome(&status(400, "AWS.SimpleQueueService.NonExistentQueue")),
            Outcome::Fail
        );
        assert_eq!(
            outcome(&status(403, "SignatureDoesNotMatch")),
            Outcome::Fail
        );
        assert_eq!(outcome(&status(503, "ServiceUnavailable")), Outcome::Info);
        assert_eq!(outcome(&status(500, "InternalFailure")), Outcome::Info);
        assert_eq!(outcome(&status(408, "RequestTimeout")), Outcome::Info);
        assert_eq!(outcome(&S3Failure::NoAnswer("reset".into())), Outcome::Info);
        assert_eq!(outcome(&S3Failure::Refused), Outcome::Fail);
    }

    #[test]
    fn queue_urls_name_the_edge_the_account_and_the_queue() {
        assert_eq!(
            queue_url("http://127.0.0.1:4566/", "q.fifo"),
            "http://127.0.0.1:4566/000000000000/q.fifo"
        );
    }

    #[tokio::test]
    async fn processes_use_every_edge_or_one_when_pinned() {
        let access = S3Access {
            endpoints: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            access_key: "a".into(),
            secret_key: "s".into(),
        };
        let ctx = ClientContext {
            index: 1,
            clients: 3,
            endpoints: Vec::new(),
            op_timeout: Duration::from_secs(1),
            recorder: Recorder::new(),
            seed: 0,
            pinned: false,
        };
        let first = SqsProcess::first(&ctx, &access, "q");
        let second = first.next(&ctx, &access, "q");
        assert_eq!((first.id, second.id), (ProcessId(1), ProcessId(4)));
        assert_eq!(first.edges.len(), 2);
        assert_eq!(first.edge_at(1).url, "http://127.0.0.1:2/000000000000/q");
        let pinned = ClientContext {
            pinned: true,
            ..ctx
        };
        let first = SqsProcess::first(&pinned, &access, "q");
        assert_eq!(first.edge_at(5).node, 2);
        assert_eq!(first.next(&pinned, &access, "q").edge_at(0).node, 1);
    }
}
