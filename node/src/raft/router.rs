//! Routing of proposals and linearizable reads to a group's leader, from any node.
//!
//! The router picks a target (this node if it leads the group, else the last known leader,
//! else the group's voters in turn), forwards over gRPC, and follows `NotLeader` hints.
//! Because every proposal carries a request id that the state machine deduplicates, a
//! proposal may be retried on any failure until the deadline; only when the deadline passes
//! after an attempt that might have been applied is the outcome reported as unknown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::host::GroupHost;
use super::network::never_sent;
use super::{codec, GroupId, NodeId, Proposal};
use crate::cluster::Directory;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RouteError {
    #[error("node {node} does not host group {group}")]
    NotHosted { node: NodeId, group: GroupId },
    #[error("node is not the leader of group {group} (leader: {leader:?})")]
    NotLeader {
        group: GroupId,
        leader: Option<NodeId>,
    },
    #[error("group {group} is unavailable: {reason}")]
    Unavailable { group: GroupId, reason: String },
    #[error("the outcome is unknown (the write may or may not have been applied): {0}")]
    OutcomeUnknown(String),
    #[error("no such group {0}")]
    UnknownGroup(GroupId),
}

pub struct Router {
    host: Arc<GroupHost>,
    directory: Arc<Directory>,
    timeout: Duration,
    leaders: Mutex<HashMap<GroupId, NodeId>>,
}

enum Call<'a> {
    Propose(&'a Proposal),
    Read(&'a [u8]),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Router {
    pub fn new(host: Arc<GroupHost>, directory: Arc<Directory>, timeout: Duration) -> Self {
        Router {
            host,
            directory,
            timeout,
            leaders: Mutex::new(HashMap::new()),
        }
    }

    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Propose `command` to `group` and return the state machine's reply.
    pub async fn write(&self, group: GroupId, command: Vec<u8>) -> Result<Vec<u8>, RouteError> {
        self.write_once(group, command, rand::random()).await
    }

    /// Propose `command` under a caller-chosen `request_id`: if a command with this id was
    /// already applied to `group` (within the dedup window), it is not applied again and
    /// its first reply is returned, so a client may retry a write whose outcome it does
    /// not know.
    pub async fn write_once(
        &self,
        group: GroupId,
        command: Vec<u8>,
        request_id: u128,
    ) -> Result<Vec<u8>, RouteError> {
        let proposal = Proposal {
            request_id,
            now_ms: now_ms(),
            command,
        };
        self.route(group, Call::Propose(&proposal)).await
    }

    /// A linearizable read of `group`'s state.
    pub async fn read(&self, group: GroupId, query: Vec<u8>) -> Result<Vec<u8>, RouteError> {
        self.route(group, Call::Read(&query)).await
    }

    fn first_target(&self, group: GroupId, voters: &[NodeId]) -> NodeId {
        if let Some(leader) = self.host.known_leader(group) {
            return leader;
        }
        if let Some(leader) = self
            .leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&group)
        {
            return *leader;
        }
        voters[0]
    }

    async fn route(&self, group: GroupId, call: Call<'_>) -> Result<Vec<u8>, RouteError> {
        let voters = self
            .directory
            .voters(group)
            .filter(|v| !v.is_empty())
            .ok_or(RouteError::UnknownGroup(group))?
            .to_vec();
        let deadline = Instant::now() + self.timeout;
        let mut target = self.first_target(group, &voters);
        let mut maybe_applied = false;
        let mut last_error = String::from("no attempt made");
        let mut rotation = voters.iter().position(|v| *v == target).unwrap_or(0);
        for attempt in 0u32.. {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let result = self.attempt(target, group, &call, remaining).await;
            let hinted = match result {
                Ok(reply) => {
                    self.leaders
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(group, target);
                    return Ok(reply);
                }
                Err(RouteError::NotLeader {
                    leader: Some(l), ..
                }) if l != target && voters.contains(&l) => {
                    last_error = format!("node {target} is not the leader; trying node {l}");
                    Some(l)
                }
                Err(RouteError::OutcomeUnknown(e)) => {
                    maybe_applied = true;
                    last_error = e;
                    None
                }
                Err(e @ RouteError::UnknownGroup(_)) => return Err(e),
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
            };
            target = match hinted {
                Some(l) if attempt < 2 * voters.len() as u32 => l,
                _ => {
                    // No usable hint (election under way, or hints going round): back off
                    // and try the next voter.
                    let backoff = Duration::from_millis(20u64 << attempt.min(4)).min(remaining);
                    tokio::time::sleep(backoff).await;
                    rotation = (rotation + 1) % voters.len();
                    voters[rotation]
                }
            };
        }
        if maybe_applied {
            Err(RouteError::OutcomeUnknown(last_error))
        } else {
            Err(RouteError::Unavailable {
                group,
                reason: format!(
                    "no leader answered within {} ms: {last_error}",
                    self.timeout.as_millis()
                ),
            })
        }
    }

    async fn attempt(
        &self,
        target: NodeId,
        group: GroupId,
        call: &Call<'_>,
        remaining: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        if target == self.host.node_id() {
            return match call {
                Call::Propose(p) => {
                    self.host
                        .propose_local(group, (*p).clone(), remaining)
                        .await
                }
                Call::Read(q) => self.host.read_local(group, q, remaining).await,
            };
        }
        let peers = self.host.peers();
        let mut client = peers
            .router_client(target)
            .map_err(|s| RouteError::Unavailable {
                group,
                reason: s.message().to_string(),
            })?;
        let reply = match call {
            Call::Propose(p) => client.propose(peers.message(group, *p, remaining)).await,
            Call::Read(q) => {
                let mut req = peers.message(group, &(), remaining);
                req.get_mut().payload = q.to_vec();
                client.read(req).await
            }
        };
        match reply {
            Ok(msg) => codec::decode::<Result<Vec<u8>, RouteError>>(&msg.into_inner().payload)
                .unwrap_or_else(|e| {
                    Err(RouteError::Unavailable {
                        group,
                        reason: format!("node {target} sent {e}"),
                    })
                }),
            Err(status) if never_sent(&status) => Err(RouteError::Unavailable {
                group,
                reason: format!("node {target} unreachable: {}", status.message()),
            }),
            // Other transport failures cannot tell "never arrived" from "reply lost": a
            // proposal may have been applied (the retry is still safe: request ids dedupe).
            Err(status) => match call {
                Call::Propose(_) => Err(RouteError::OutcomeUnknown(format!(
                    "node {target}: {}",
                    status.message()
                ))),
                Call::Read(_) => Err(RouteError::Unavailable {
                    group,
                    reason: format!("node {target}: {}", status.message()),
                }),
            },
        }
    }
}
