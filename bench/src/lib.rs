//! Load generator for Stratus: each scenario measures one service end to end and prints
//! one JSON line per result (see `report`), next to the physical limits measured in the
//! same run (see `fsync` and `limits`), so runs can be compared with each other and with
//! the machine.
//!
//! Scenarios are closed loops: each client task has one request in flight at a time, so
//! latency and throughput are measured together. Every loop stops by time and by count.

pub mod cluster_procs;
pub mod cpu;
pub mod fsync;
pub mod kinesis;
pub mod kv;
pub mod latency;
pub mod limits;
pub mod quorum;
pub mod report;
pub mod s3;
pub mod sdk;
pub mod sqs;
pub mod tally;
