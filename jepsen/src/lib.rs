//! Stratus's Jepsen-style correctness testing: record what concurrent clients saw, then
//! decide whether a correct system could have produced it.
//!
//! - [`history`]: operations with their invoke/complete times and outcomes, the shared
//!   [`Recorder`](history::Recorder) clients write to, and the JSON-lines file format.
//! - [`checker`]: the linearizability checker for read/write/cas registers (single or per
//!   key) and the set checker.
//!
//! - [`run`]: the harness: targets (local processes, docker-compose), the nemesis that
//!   breaks them, the workloads that drive them through the public client, and the reports.
//!
//! The checkers know nothing about the cluster; the harness drives a live cluster through
//! its public API and records into a [`history::Recorder`].

pub mod checker;
pub mod history;
pub mod run;
