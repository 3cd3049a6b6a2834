//! Multi-group Raft host over openraft 0.9 (storage-v2).
//!
//! Every node runs many Raft groups (one openraft instance each) that share the node's
//! RocksDB (keys prefixed by group id) and one gRPC transport (every message names its
//! group). A group's state machine delegates to a [`ServiceState`], the pure, deterministic
//! seam between Raft and the services: raft/ moves opaque command bytes and never imports
//! a service.
//!
//! Every proposal carries a request id and the proposing node's clock (`now_ms`), stamped
//! once before the first attempt. The state machine remembers recent request ids with
//! their replies, so a proposal retried after a lost reply or a leader change is applied at
//! most once: routing can retry anything until its deadline.

pub mod codec;
pub mod host;
pub mod log_store;
pub mod network;
pub mod router;
pub mod state_machine;
#[cfg(test)]
mod storage_suite;
pub mod transport;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::store::{StateRead, StateTxn, StoreError};

pub use crate::store::keys::GroupId;
pub type NodeId = u64;

/// A command for a group's state machine, stamped by the proposing node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub request_id: u128,
    pub now_ms: u64,
    /// The service's own encoding of its command. Encoded as one byte string (the same
    /// bytes bincode writes for a `Vec<u8>`, but without a call per byte: a 1 MiB command
    /// took seconds to replicate in a debug build).
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
}

/// The state machine's answer to one log entry: the service's encoded reply, or nothing for
/// blank and membership entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply(#[serde(with = "serde_bytes")] pub Vec<u8>);

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Proposal,
        R = Reply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// What the state machine knows about the entry being applied.
#[derive(Debug, Clone, Copy)]
pub struct ApplyContext {
    pub log_index: u64,
    pub now_ms: u64,
}

/// The deterministic state of one kind of group: (state, command) -> (state, reply).
///
/// No clock, no randomness, no I/O besides the transaction it is given; a command that
/// cannot be decoded gets an error reply, never a panic, because every replica must apply
/// the same log to the same result.
pub trait ServiceState: Send + Sync + 'static {
    /// Group-local key prefix bytes reserved by the host; services must not write keys
    /// starting with [`SYSTEM_KEY_PREFIX`].
    fn apply(
        &self,
        txn: &mut dyn StateTxn,
        command: &[u8],
        ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError>;

    /// Answer a read-only query from applied state.
    fn read(&self, state: &dyn StateRead, query: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// Keys of the host's own bookkeeping inside a group's state (applied log id, membership,
/// request ids); service keys start with any other byte.
pub const SYSTEM_KEY_PREFIX: u8 = 0;
