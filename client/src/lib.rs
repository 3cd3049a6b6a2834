//! Typed async client for a Stratus cluster over gRPC.
//!
//! Owns: the connections to one or more nodes, the choice of which node to ask, and the
//! retry policy. Any node accepts any request and forwards it to the right Raft leader, so
//! the client only needs *some* reachable node.
//!
//! Guarantees:
//! - A call is retried (on the next endpoint, after a short backoff, until the per-call
//!   deadline) only when the failure proves the request was not applied: the server
//!   answered `UNAVAILABLE`, or the connection could not be opened.
//! - A write whose outcome is unknown (the server said `DEADLINE_EXCEEDED`, the connection
//!   broke after the request was sent, or the deadline passed while waiting) is never
//!   retried; it is reported as [`Error::OutcomeUnknown`]. Every other error from a write
//!   means the write was not applied.
//! - Reads (get, scan, cluster status) are idempotent and retried on any transport failure.
//!
//! Does not: validate keys or values (the server owns the limits), cache anything, or
//! resolve leaders itself.

mod client;
mod config;
mod error;
mod model;
pub mod quorum;
mod retry;

pub use client::Client;
pub use config::{parse_endpoint_list, ClientConfig, DEFAULT_ENDPOINT};
pub use error::Error;
pub use model::{CasOutcome, ClusterStatus, GroupStatus, KeyValue, NodeStatus};
