//! The cluster a run drives, behind one small trait so the nemesis and the workloads do
//! not care whether nodes are local processes or docker containers.
//!
//! Owns: the [`Target`] trait (the faults a cluster can suffer and how each is undone), the
//! node and zone layout both targets share, and [`TargetError`].
//!
//! Every fault method is blocking (they run commands or send signals) and idempotent
//! enough to be called again after a partial failure; [`Target::heal_all`] undoes every
//! fault the target knows it applied, so a run can always end on a healthy cluster.
//! Not here: which fault to apply when (the nemesis) or cluster status (the cluster view).

use std::fmt;

use thiserror::Error;

use crate::run::partition::Partition;

/// A node of the cluster, numbered from 1.
pub type NodeId = u64;

/// The zones, in the order nodes are spread over them: node N lives in
/// `ZONES[(N - 1) % 3]`, so nodes 1 and 4 share `az-a`, 2 and 5 `az-b`, 3 and 6 `az-c`.
pub const ZONES: [&str; 3] = ["az-a", "az-b", "az-c"];

/// How many nodes both targets run.
pub const NODE_COUNT: u64 = 6;

/// The zone of `node` under the layout above.
pub fn zone_of(node: NodeId) -> &'static str {
    ZONES[((node.max(1) - 1) % ZONES.len() as u64) as usize]
}

/// The kinds of fault a run can ask for (`--nemesis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL one node, restart it later with the same data.
    Kill,
    /// Freeze one node (SIGSTOP / cgroup freezer), thaw it later.
    Pause,
    /// Cut the network between groups of nodes.
    Partition,
    /// Kill both nodes of one zone, restart them later.
    Zone,
    /// Throttle one node's outgoing network traffic.
    Slow,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Zone,
        FaultKind::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Zone => "zone",
            FaultKind::Slow => "slow",
        }
    }

    /// Parses one name of `--nemesis`.
    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name.trim())
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a target could not do what it was asked.
#[derive(Debug, Error)]
pub enum TargetError {
    #[error("the {target} target cannot {fault}: {reason}")]
    Unsupported {
        target: &'static str,
        fault: FaultKind,
        reason: &'static str,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("node {0} is not part of the cluster")]
    UnknownNode(NodeId),
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// How the harness's S3 clients reach the cluster: every node's HTTP edge and the root
/// credentials the nodes were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Access {
    /// `http://host:port` of every node's HTTP edge, in node order.
    pub endpoints: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
}

/// A cluster of [`NODE_COUNT`] nodes the harness can break and repair.
pub trait Target {
    /// Short name for reports (`local`, `compose`).
    fn name(&self) -> &'static str;

    /// gRPC endpoints of every node, in node order, as the harness's clients reach them.
    fn endpoints(&self) -> Vec<String>;

    /// Every node's HTTP edge (the S3 API) and the credentials it accepts.
    fn s3_access(&self) -> S3Access;

    /// Whether this target can inflict `fault`; when not, [`Target::unsupported_reason`]
    /// says why.
    fn supports(&self, fault: FaultKind) -> bool;

    /// Why `fault` is not supported (meaningful only when [`Target::supports`] is false).
    fn unsupported_reason(&self, _fault: FaultKind) -> &'static str {
        "not implemented for this target"
    }

    /// The nodes, in order.
    fn nodes(&self) -> Vec<NodeId> {
        (1..=NODE_COUNT).collect()
    }

    /// The zone `node` belongs to.
    fn zone_of(&self, node: NodeId) -> &'static str {
        zone_of(node)
    }

    /// Kills `node` at once (no shutdown path runs).
    fn kill(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Starts a killed `node` again on the data it had.
    fn restart(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Freezes `node`: it keeps its connections but does nothing.
    fn pause(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Thaws a paused `node`.
    fn resume(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Drops traffic between the nodes `partition` cuts apart. Never drops the harness's
    /// own traffic to any node.
    fn partition(&mut self, partition: &Partition) -> Result<(), TargetError>;

    /// Removes every network cut.
    fn heal(&mut self) -> Result<(), TargetError>;

    /// Throttles `node`'s outgoing traffic.
    fn slow(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Removes `node`'s throttle.
    fn unslow(&mut self, node: NodeId) -> Result<(), TargetError>;

    /// Undoes every fault this target applied and has not undone: resumes paused nodes,
    /// restarts killed ones, heals the network, removes throttles.
    fn heal_all(&mut self) -> Result<(), TargetError>;

    /// Ends the run: stops what the harness started (the local target's processes); a
    /// target the harness only attached to is left running, healed.
    fn shutdown(&mut self) -> Result<(), TargetError>;
}

/// The error a target returns for a fault it cannot inflict.
pub fn unsupported(target: &dyn Target, fault: FaultKind) -> TargetError {
    TargetError::Unsupported {
        target: target.name(),
        fault,
        reason: target.unsupported_reason(fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_spread_over_zones_two_by_two() {
        let zones: Vec<&str> = (1..=NODE_COUNT).map(zone_of).collect();
        assert_eq!(zones, ["az-a", "az-b", "az-c", "az-a", "az-b", "az-c"]);
    }

    #[test]
    fn fault_names_parse_back() {
        for kind in FaultKind::ALL {
            assert_eq!(FaultKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(FaultKind::parse(" kill "), Some(FaultKind::Kill));
        assert_eq!(FaultKind::parse("clock"), None);
    }
}
