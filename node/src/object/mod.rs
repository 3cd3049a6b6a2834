//! The object store (ARCHITECTURE.md §4): S3 buckets, object versions and their
//! erasure-coded data.
//!
//! - `model`: domain types (bucket names, keys, versions, layouts, uploads).
//! - `keys`: how object metadata is laid out in a data group's ordered state.
//! - `state`: the deterministic apply of object commands in a data group.
//! - `catalog`: the bucket-name registry kept in the meta group.
//! - `erasure`: Reed–Solomon striping of object data into shards.
//! - `placement`: which node holds each shard of a blob, by storage class and zone.
//! - `shard_io`: reading and writing shards on other nodes (trait + gRPC).
//! - `liveness`: which nodes answer now, so new shards go only to live nodes.
//! - `write_path`: a body streamed into durable shards (or inline bytes), with its digests.
//! - `read_path`: a byte range streamed back, reconstructing around lost shards.
//! - `gc`: deleting shards nobody points to, and the orphan sweep that catches the rest.
//! - `service`: the S3 operations, over the router, the write and read paths.
//! - `blob_index`: the blob -> owner index of every data group, as the workers ask it.
//! - `damage`: bad shards found by reads and the scrubber, recorded missing for repair.
//! - `repair`: rebuilding missing shards, and moving shards back where they belong.
//! - `scrub`: re-verifying this node's shard files at a configured pace.
//! - `workers`: the background workers of a node, wired and spawned together.
//! - `worker_metrics`: their counters, in `/_stratus/metrics`.

pub mod blob_index;
pub mod catalog;
pub mod damage;
pub mod erasure;
pub mod gc;
pub mod keys;
pub mod liveness;
pub mod model;
pub mod placement;
pub mod read_path;
pub mod repair;
pub mod scrub;
pub mod service;
pub mod shard_io;
pub mod state;
pub mod worker_metrics;
pub mod workers;
pub mod write_path;
