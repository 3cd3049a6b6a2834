//! The client side of quorum storage (docs/quorum-storage.md): the single writer of a
//! volume, its recovery, read replicas, the volume catalog, and the page-based key-value
//! database on top.
//!
//! Owns: LSN allocation, the 4-of-6 durability bookkeeping (VCL, VDL, LAL), the per-segment
//! send queues (client-side group commit), fencing and recovery when a writer opens a
//! volume, and reads at the writer's durable point or a replica's read point.
//!
//! Guarantees: a commit returns `Ok(lsn)` only when every record at or below its
//! consistency point is on 4 of 6 segments of its PG (4 of each set during a membership
//! change), so any later writer's recovery keeps it; a mini-transaction becomes visible
//! whole or not at all; once a newer writer has fenced a quorum of segments, an older one
//! fails every commit with [`QuorumError::Fenced`].
//!
//! Does not: run consensus, store anything itself (segments do), or repair segments
//! (gossip and the catalog's repair worker do, on the nodes).
//!
//! Layout: [`durability`] and the computations in [`recovery`] are pure and unit tested;
//! [`transport`] is the seam to the segments (gRPC, or an in-memory fake in tests);
//! [`writer`], [`reader`], [`catalog`] and [`db`] are the async shells.

pub mod catalog;
pub mod db;
pub mod durability;
mod error;
pub mod page;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod transport;
pub mod writer;

#[cfg(test)]
mod fake;

/// A log sequence number: dense, starting at 1; 0 means "none".
pub type Lsn = u64;

/// A writer's epoch (handed out by the catalog's BeginRecovery).
pub type Epoch = u64;

pub use catalog::{
    CatalogService, PgMembership, SegmentPlace, Truncation, Volume, VolumeCatalog, VolumeSpec,
};
pub use db::{Db, DbReader};
pub use error::{QuorumError, Result};
pub use page::{Geometry, MAX_KEY_BYTES, MAX_MPUT_KEYS, MAX_VALUE_BYTES};
pub use reader::VolumeReader;
pub use record::{LogRecord, PageOp};
pub use transport::{GrpcTransport, SegmentId, SegmentTransport, TransportError};
pub use writer::{MiniTransaction, VolumeWriter, WriterOptions};
