//! What a client of the Kinesis API (the nodes' HTTP edges, AWS JSON 1.1) shares: the
//! official AWS SDK client for each edge, its Jepsen process id, and how one request's
//! failure becomes a history outcome. The counterpart of [`crate::run::sqs_request`];
//! [`S3Failure`] classifies the SDK's errors here too (the AWS SDKs share their error
//! types).
//!
//! Every request is one attempt (the SDK's retries are off: a retried put could append a
//! record twice within one recorded operation), with the run's `--op-timeout-ms` as the
//! SDK's operation timeout and the harness's deadline 2 s later.
//!
//! Outcome rules, from what the node's Kinesis edge promises (`api/kinesis/errors.rs`):
//! - an answer in the `4xx` range was not applied: `fail`; so is a request whose
//!   connection was refused or that could not be built;
//! - `503 ServiceUnavailable` is the edge's "surely had no effect": `fail`;
//! - `500 InternalFailure` (the edge's "outcome unknown"), any other `5xx`, `408`, a
//!   timeout or a lost connection: `info`;
//! - within an answered PutRecords, a record that failed with
//!   `ProvisionedThroughputExceededException` was refused; one that failed with
//!   `InternalFailure` (or anything else) is of unknown outcome.
//!
//! Reads (GetShardIterator, GetRecords, ListShards) follow the same rules; they change
//! nothing either way. After an `info` the client continues as a new process with new
//! connections.

use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
};
use aws_sdk_kinesis::Client;
use rand::Rng;

use crate::history::{Outcome, ProcessId, PutEntry};
use crate::run::request::ClientContext;
use crate::run::s3_request::S3Failure;
use crate::run::target::S3Access;

/// How long connecting to an edge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The per-record error code that says a record was refused (not appended).
pub const THROUGHPUT_EXCEEDED: &str = "ProvisionedThroughputExceededException";

/// A plain-HTTP client of one edge, with one attempt per request.
pub fn edge_client(endpoint: &str, access: &S3Access, op_timeout: Duration) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(op_timeout))
        .operation_timeout(op_timeout)
        .build();
    let config = aws_sdk_kinesis::Config::builder()
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

/// One Jepsen process of the stream workload: a client per edge it may use, until an
/// `info` retires it.
pub struct KinesisProcess {
    pub id: ProcessId,
    /// (node from 1, client of its edge).
    edges: Vec<(u64, Client)>,
    incarnation: u64,
}

impl KinesisProcess {
    /// The first process of the client `ctx` describes.
    pub fn first(ctx: &ClientContext, access: &S3Access) -> KinesisProcess {
        KinesisProcess::incarnation(ctx, access, 0)
    }

    /// The process that takes over after this one saw an `info`.
    pub fn next(&self, ctx: &ClientContext, access: &S3Access) -> KinesisProcess {
        KinesisProcess::incarnation(ctx, access, self.incarnation + 1)
    }

    /// Every edge by default; with `--pin-clients` one edge per process, a different one
    /// for each incarnation.
    fn incarnation(ctx: &ClientContext, access: &S3Access, incarnation: u64) -> KinesisProcess {
        let nodes = ctx.edge_nodes(access.endpoints.len(), incarnation);
        KinesisProcess {
            id: ctx.process_id(incarnation),
            edges: nodes
                .into_iter()
                .map(|node| {
                    let client = edge_client(&access.endpoints[node], access, ctx.op_timeout);
                    (node as u64 + 1, client)
                })
                .collect(),
            incarnation,
        }
    }

    /// A random edge of this process.
    pub fn edge(&self, rng: &mut impl Rng) -> &Client {
        &self.edges[rng.gen_range(0..self.edges.len())].1
    }

    /// The edges in turn, starting at the `attempt`th: for retries that move on.
    pub fn edge_at(&self, attempt: usize) -> &Client {
        &self.edges[attempt % self.edges.len()].1
    }

    /// Whether the process has an edge at all.
    pub fn has_edges(&self) -> bool {
        !self.edges.is_empty()
    }
}

/// The outcome a failed Kinesis request is recorded with (see the module docs).
pub fn outcome(failure: &S3Failure) -> Outcome {
    match failure {
        S3Failure::NotSent(_) | S3Failure::Refused => Outcome::Fail,
        S3Failure::NoAnswer(_) => Outcome::Info,
        S3Failure::Status { status: 408, .. } => Outcome::Info,
        S3Failure::Status { status, .. } if *status < 500 || *status == 503 => Outcome::Fail,
        S3Failure::Status { .. } => Outcome::Info,
    }
}

/// One record of an answered PutRecords as the history records it: appended where the
/// answer says, refused, or unknown.
pub fn put_entry(shard: Option<&str>, sequence: Option<&str>, error: Option<&str>) -> PutEntry {
    match (shard, sequence, error) {
        (Some(shard), Some(sequence), None) => PutEntry::Ok {
            shard: shard.to_string(),
            sequence: sequence.to_string(),
        },
        (_, _, Some(THROUGHPUT_EXCEEDED)) => PutEntry::Refused {
            code: THROUGHPUT_EXCEEDED.to_string(),
        },
        (_, _, code) => PutEntry::Unknown {
            code: code.unwrap_or("no shard or sequence number").to_string(),
        },
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
    fn only_definite_refusals_are_fail() {
        assert_eq!(
            outcome(&status(400, "ResourceNotFoundException")),
            Outcome::Fail
        );
        assert_eq!(
            outcome(&status(400, "ExpiredIteratorException")),
            Outcome::Fail
        );
        assert_eq!(outcome(&status(503, "ServiceUnavailable")), Outcome::Fail);
        assert_eq!(outcome(&status(500, "InternalFailure")), Outcome::Info);
        assert_eq!(outcome(&status(502, "")), Outcome::Info);
        assert_eq!(outcome(&status(408, "RequestTimeout")), Outcome::Info);
        assert_eq!(outcome(&S3Failure::NoAnswer("reset".into())), Outcome::Info);
        assert_eq!(outcome(&S3Failure::Refused), Outcome::Fail);
    }

    #[test]
    fn put_records_entries_are_appended_refused_or_unknown() {
        assert_eq!(
            put_entry(Some("shardId-000000000001"), Some("49"), None),
            PutEntry::Ok {
                shard: "shardId-000000000001".into(),
                sequence: "49".into()
            }
        );
        assert_eq!(
            put_entry(None, None, Some(THROUGHPUT_EXCEEDED)),
            PutEntry::Refused {
                code: THROUGHPUT_EXCEEDED.into()
            }
        );
        assert_eq!(
            put_entry(None, None, Some("InternalFailure")),
            PutEntry::Unknown {
                code: "InternalFailure".into()
            }
        );
        assert!(matches!(
            put_entry(Some("s"), None, None),
            PutEntry::Unknown { .. }
        ));
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
        let first = KinesisProcess::first(&ctx, &access);
        let second = first.next(&ctx, &access);
        assert_eq!((first.id, second.id), (ProcessId(1), ProcessId(4)));
        assert_eq!(first.edges.len(), 2);
        let pinned = ClientContext {
            pinned: true,
            ..ctx
        };
        let first = KinesisProcess::first(&pinned, &access);
        assert_eq!(first.edges.len(), 1);
        assert_eq!(first.edges[0].0, 2);
        assert_eq!(first.next(&pinned, &access).edges[0].0, 1);
    }
}
