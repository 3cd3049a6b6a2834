//! The stream store (Kinesis Data Streams), in progress (issue 6). What exists: the domain
//! types (`model`), the stream catalog with resharding (`catalog`, to live in the meta
//! group) and a shard's record log (`log`, in the data group the (stream, shard) pair
//! hashes to), each pure and unit-tested. Not yet: the service, the Raft wiring and the
//! Kinesis JSON edge.

pub mod catalog;
pub mod log;
pub mod model;
