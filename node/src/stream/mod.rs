//! The stream store (Kinesis Data Streams), issue 6.
//!
//! - `model`: names, ARNs, shard ids, the 128-bit hash space, sequence numbers, limits and
//!   the errors a Kinesis client expects.
//! - `catalog` + `catalog_state`: every stream's record (incarnation, shards with their
//!   lineage, retention, mode, tags, the reshard under way) in the meta group, and its
//!   enhanced fan-out consumers (`consumer`); `catalog_cache` keeps leased copies of
//!   records for the record operations.
//! - `reshard`: the split/merge plans of SplitShard, MergeShards and UpdateShardCount.
//! - `log` + `state`: one record log per (stream, incarnation, shard) in the data group
//!   that `cluster::routing::group_for_shard` picks; sequence numbers are assigned at
//!   apply, so every replica agrees on them.
//! - `iterator`: shard iterators and list tokens, sealed with a cluster-wide MAC key.
//! - `paging`: which shards a listing shows (ShardFilter) and list NextTokens.
//! - `service`: the operations, wire-agnostic (`api::kinesis` is the JSON edge).
//! - `read_limit`: GetRecords' per-shard read limits (5 calls/s, 2 MiB/s).
//! - `subscription`: SubscribeToShard's pushes (what an event carries, when it is sent).
//! - `worker`: retention trimming, dropping deleted streams' logs, finishing stalled
//!   reshards, on the groups this node leads.
pub mod catalog;
pub mod catalog_cache;
pub mod catalog_state;
pub mod consumer;
pub mod iterator;
pub mod log;
pub mod model;
pub mod paging;
pub mod read_limit;
pub mod reshard;
pub mod service;
pub mod state;
pub mod subscription;
pub mod worker;
