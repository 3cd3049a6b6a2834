//! What the harness knows about the cluster's state, from `cluster_status()` over the
//! public client: whether it is ready, who leads a group. Used to aim faults (isolate or
//! kill a leader) and to wait for recovery; never to decide correctness.
//!
//! A status comes from whichever node answers, so it can be stale while faults are in
//! force; callers treat it as a hint.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use stratus_client::{Client, ClientConfig, ClusterStatus};

use crate::run::target::NodeId;

/// A status call gives up after this long (trying each node for up to a second).
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the cluster about itself.
pub struct ClusterView {
    client: Client,
    focus: Focus,
}

/// The data groups leader-targeted faults aim at (empty: any), shared so a workload can
/// widen it while the nemesis runs (a stream's shards, after a split or merge).
#[derive(Debug, Clone, Default)]
pub struct Focus(Arc<Mutex<Vec<u64>>>);

impl Focus {
    /// Aims at `groups` from now on.
    pub fn set(&self, groups: Vec<u64>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = groups;
    }

    pub fn groups(&self) -> Vec<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClusterView {
    pub async fn new(endpoints: Vec<String>) -> Result<ClusterView, stratus_client::Error> {
        let mut config = ClientConfig::new(endpoints).with_call_timeout(STATUS_TIMEOUT);
        config.read_attempt_timeout = Duration::from_secs(1);
        config.connect_timeout = Duration::from_millis(500);
        Ok(ClusterView {
            client: Client::with_config(config).await?,
            focus: Focus::default(),
        })
    }

    /// Makes [`ClusterView::random_data_leader`] pick among `groups` (the groups a workload
    /// lives in), falling back to any data group when none of them has a leader.
    pub fn focus_on(&mut self, groups: Vec<u64>) {
        self.focus.set(groups);
    }

    /// The focus, for a workload that moves it during the run.
    pub fn focus(&self) -> Focus {
        self.focus.clone()
    }

    /// How many data groups the cluster has, as the node that answers sees it.
    pub async fn data_groups(&self) -> Option<u64> {
        let status = self.status().await?;
        Some(status.groups.iter().filter(|g| g.kind == "data").count() as u64)
    }

    /// The cluster's status, or `None` when no node answered in time.
    pub async fn status(&self) -> Option<ClusterStatus> {
        self.client.cluster_status().await.ok()
    }

    /// The leader of a random data group (of the focus groups, when set and one of them
    /// has a leader), when one is known.
    pub async fn random_data_leader(&self, rng: &mut impl Rng) -> Option<(u64, NodeId)> {
        let status = self.status().await?;
        let led: Vec<(u64, NodeId)> = status
            .groups
            .iter()
            .filter(|g| g.kind == "data")
            .filter_map(|g| g.leader.map(|leader| (g.id, leader)))
            .collect();
        let focus = self.focus.groups();
        let focused: Vec<(u64, NodeId)> = led
            .iter()
            .filter(|(group, _)| focus.contains(group))
            .copied()
            .collect();
        if focused.is_empty() {
            led.choose(rng).copied()
        } else {
            focused.choose(rng).copied()
        }
    }

    /// Waits until every group has a leader and every node in `nodes` is up, as the node
    /// that answers sees it. Returns how long that took, or the last status seen.
    pub async fn wait_ready(
        &self,
        nodes: &[NodeId],
        timeout: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        let mut last = String::from("no node answered");
        loop {
            if let Some(status) = self.status().await {
                match readiness(&status, nodes) {
                    Ok(()) => return Ok(started.elapsed()),
                    Err(why) => last = why,
                }
            }
            if started.elapsed() > timeout {
                return Err(format!("not ready after {timeout:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Whether `status` shows a cluster ready for work, or what is missing.
pub fn readiness(status: &ClusterStatus, nodes: &[NodeId]) -> Result<(), String> {
    if status.groups.is_empty() {
        return Err("no groups reported".into());
    }
    let leaderless: Vec<u64> = status
        .groups
        .iter()
        .filter(|g| g.leader.is_none())
        .map(|g| g.id)
        .collect();
    if !leaderless.is_empty() {
        return Err(format!("groups without a leader: {leaderless:?}"));
    }
    let down: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|id| !status.nodes.iter().any(|n| n.id == *id && n.up))
        .collect();
    if !down.is_empty() {
        return Err(format!(
            "nodes down as seen by node {}: {down:?}",
            status.responder
        ));
    }
    Ok(())
}
