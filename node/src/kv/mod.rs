//! The replicated key-value store: put, get, delete, compare-and-set and prefix scan over
//! the data groups. Keys route to a group by a stable hash; writes are Raft commands and
//! reads are linearizable (leader read-index). Small, but it is what the Jepsen harness
//! drives as a linearizable register.

pub mod model;
pub mod service;
pub mod state;

pub use model::{KvError, Versioned};
pub use service::KvService;
