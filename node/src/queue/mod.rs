//! The queue store (SQS): queues live in the data group their name hashes to; every send,
//! receive, delete and visibility change is a Raft command of that group (`state`), so a
//! queue survives anything that leaves its group a quorum. `service` is the async shell
//! that validates requests, stamps ids, waits for long polls (`signals`) and moves
//! messages between queues (`redrive`); `api::sqs` speaks SQS's JSON protocol over it.

pub mod errors;
pub mod keys;
pub mod model;
pub mod receipt;
pub mod redrive;
pub mod service;
pub mod signals;
pub mod state;
pub mod visibility;

pub use errors::QueueError;
pub use model::QueueName;
