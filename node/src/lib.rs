//! stratus-node: the Stratus server library and the `stratusd` binary.
//!
//! Layers (ARCHITECTURE.md §2), each importing only those below it:
//! `api` → services (`kv`, `meta`, `data_group`) → `raft` → `cluster` → `store`.

pub mod api;
pub mod cluster;
pub mod config;
pub mod data_group;
pub mod dev;
pub mod kv;
pub mod meta;
pub mod metrics;
pub mod node;
pub mod object;
pub mod queue;
pub mod quorum;
pub mod raft;
pub mod status;
pub mod store;
pub mod stream;

pub use config::NodeConfig;
pub use node::RunningNode;
