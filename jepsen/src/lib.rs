//! Stratus's Jepsen-style correctness testing: record what concurrent clients saw, then
//! decide whether a correct system could have produced it.
//!
//! - [`history`]: operations with their invoke/complete times and outcomes, the shared
//!   [`Recorder`](history::Recorder) clients write to, and the JSON-lines file format.
//! - [`checker`]: the linearizability checker for read/write/cas registers (single or per
//!   key) and the set checker.
//!
//! This crate knows nothing about the cluster: workloads and fault injection drive a live
//! cluster through its public API and record into a [`history::Recorder`].

pub mod checker;
pub mod history;
