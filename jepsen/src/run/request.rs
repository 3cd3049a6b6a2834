//! What every workload client shares: its own connection to the cluster, its Jepsen process
//! id, and how one bounded request's result becomes a history outcome.
//!
//! Outcome rules (the client library's guarantees, see `stratus_client::Error`):
//! - a write that failed with `OutcomeUnknown`, or that the harness's own deadline cut
//!   short, is `info`: it may or may not have happened;
//! - every other failed write is `fail`: the library promises it was not applied;
//! - a failed read changed nothing: `info` when it timed out, `fail` otherwise (the
//!   checkers give neither any weight).
//!
//! After an `info` the client continues as a new process with a new connection, as
//! Jepsen's clients do, so a process never has two operations in flight.

use std::future::Future;
use std::time::Duration;

use stratus_client::{Client, ClientConfig, Error};

use crate::history::{Outcome, ProcessId, Recorder};

/// Time a request may take beyond its client deadline before the harness gives up on it.
const GRACE: Duration = Duration::from_secs(2);

/// Whether a request can change the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
}

/// What one workload client is given.
#[derive(Debug, Clone)]
pub struct ClientContext {
    /// This client's number, from 0.
    pub index: usize,
    /// How many clients run at once.
    pub clients: usize,
    /// Every node's gRPC endpoint.
    pub endpoints: Vec<String>,
    /// Deadline of one request (the client library's call timeout).
    pub op_timeout: Duration,
    pub recorder: Recorder,
    pub seed: u64,
    /// Each process talks to one node only (Jepsen's way: a node on the wrong side of a
    /// partition must answer with an error, not stale data). Otherwise a process may fail
    /// over to any node.
    pub pinned: bool,
}

/// One Jepsen process: a client and the connection it uses until an `info` retires it.
pub struct Process {
    pub id: ProcessId,
    pub client: Client,
    incarnation: u64,
}

impl ClientContext {
    /// The first process of this client.
    pub async fn process(&self) -> Result<Process, Error> {
        self.incarnation(0).await
    }

    /// The process that takes over after `previous` saw an `info`.
    pub async fn next(&self, previous: &Process) -> Result<Process, Error> {
        self.incarnation(previous.incarnation + 1).await
    }

    /// The id of this client's process in its `incarnation`th life (ids never repeat
    /// across clients).
    pub fn process_id(&self, incarnation: u64) -> ProcessId {
        ProcessId(self.index as u64 + self.clients.max(1) as u64 * incarnation)
    }

    /// The nodes (indexes into `count` edges) a process of this client may use in its
    /// `incarnation`th life: every one, or with `--pin-clients` one, a different one for
    /// each incarnation.
    pub fn edge_nodes(&self, count: usize, incarnation: u64) -> Vec<usize> {
        if self.pinned && count > 0 {
            vec![(self.index + incarnation as usize) % count]
        } else {
            (0..count).collect()
        }
    }

    async fn incarnation(&self, incarnation: u64) -> Result<Process, Error> {
        // Each incarnation starts on a different node, so a node that stopped answering
        // does not hold every new process up.
        let mut endpoints = self.endpoints.clone();
        if !endpoints.is_empty() {
            let first = (self.index + incarnation as usize) % endpoints.len();
            endpoints.rotate_left(first);
            if self.pinned {
                endpoints.truncate(1);
            }
        }
        let mut config = ClientConfig::new(endpoints).with_call_timeout(self.op_timeout);
        config.read_attempt_timeout = self.op_timeout.min(Duration::from_secs(2));
        Ok(Process {
            id: self.process_id(incarnation),
            client: Client::with_config(config).await?,
            incarnation,
        })
    }

    /// Runs `request` with the harness's hard deadline on top of the client's own.
    pub async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.op_timeout + GRACE, request).await {
            Ok(result) => result,
            Err(_) => Err(Error::OutcomeUnknown(format!(
                "no answer within the harness deadline of {:?}",
                self.op_timeout + GRACE
            ))),
        }
    }
}

/// The outcome a failed request of `effect` is recorded with.
pub fn failure_outcome(effect: Effect, error: &Error) -> Outcome {
    match (effect, error) {
        (_, Error::OutcomeUnknown(_)) => Outcome::Info,
        (Effect::Read, Error::Timeout(_)) => Outcome::Info,
        _ => Outcome::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_writes_are_info() {
        let unknown = Error::OutcomeUnknown("deadline".into());
        let unavailable = Error::Unavailable("no leader".into());
        let transport = Error::Transport("refused".into());
        assert_eq!(failure_outcome(Effect::Write, &unknown), Outcome::Info);
        assert_eq!(failure_outcome(Effect::Write, &unavailable), Outcome::Fail);
        assert_eq!(failure_outcome(Effect::Write, &transport), Outcome::Fail);
        assert_eq!(
            failure_outcome(Effect::Read, &Error::Timeout("slow".into())),
            Outcome::Info
        );
        assert_eq!(failure_outcome(Effect::Read, &unavailable), Outcome::Fail);
    }

    #[tokio::test]
    async fn new_incarnations_get_new_process_ids_and_start_elsewhere() {
        let ctx = ClientContext {
            index: 1,
            clients: 4,
            endpoints: vec![
                "http://a:1".into(),
                "http://b:1".into(),
                "http://c:1".into(),
            ],
            op_timeout: Duration::from_secs(1),
            recorder: Recorder::new(),
            seed: 0,
            pinned: false,
        };
        let first = ctx.process().await.unwrap();
        let second = ctx.next(&first).await.unwrap();
        assert_eq!(first.id, ProcessId(1));
        assert_eq!(second.id, ProcessId(5));
        assert_eq!(first.client.config().endpoints.len(), 3);
        assert_eq!(first.client.config().endpoints[0], "http://b:1");
        assert_eq!(second.client.config().endpoints[0], "http://c:1");

        let pinned = ClientContext {
            pinned: true,
            ..ctx
        };
        let first = pinned.process().await.unwrap();
        let second = pinned.next(&first).await.unwrap();
        assert_eq!(first.client.config().endpoints, ["http://b:1"]);
        assert_eq!(second.client.config().endpoints, ["http://c:1"]);
    }
}
