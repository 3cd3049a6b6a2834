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
//! - `gc`: deleting shards nobody points to (and the plan for the orphan sweep).
//! - `service`: the S3 operations, over the router, the write and read paths.

pub mod catalog;
pub mod erasure;
pub mod gc;
pub mod keys;
pub mod liveness;
pub mod model;
pub mod placement;
pub mod read_path;
pub mod service;
pub mod shard_io;
pub mod state;
pub mod write_path;
