//! Local storage of one node: a single RocksDB instance with one column family per concern.
//!
//! - `raft_log`   : Raft log entries of every group, keyed `[group][index]` (big-endian).
//! - `raft_state` : per-group vote, committed and last-purged log ids.
//! - `state`      : every group's state-machine data, keyed `[group][service key]`.
//! - `snapshot`   : the latest snapshot of each group, keyed `[group]`.
//! - `node`       : this node's identity (cluster name, node id), checked at every start so a
//!   data directory from another cluster or node is refused instead of silently mixed in.
//! - `segments`   : quorum-storage segments (`quorum::segment_store`): meta, log and page rows
//!   keyed `[volume][pg][slot][kind]...` (big-endian), each value CRC-checked on read.
//!
//! All writes that Raft relies on for safety (log appends, votes, truncation, snapshot
//! installs) are synced to the write-ahead log before they are reported done. Because RocksDB
//! keeps one WAL for all column families, a synced write also makes every earlier logged
//! write of any family durable. The state machines' applies (`state`) skip the WAL: the Raft
//! log is their redo log, so each command's bytes go through one WAL, not two. After a crash
//! `state` holds what its last memtable flush held (a prefix of the applies, each group's
//! applied log id included) and openraft applies the rest again from the log; a snapshot
//! flushes `state` before openraft may purge the log below it.

pub mod chunks;
pub mod identity;
pub mod keys;
pub mod layout;
pub mod state_txn;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

pub use identity::{Identity, IdentityCheck};
pub use state_txn::{GroupStateReader, MemState, OverlayTxn, StateRead, StateTxn};

pub const CF_RAFT_LOG: &str = "raft_log";
pub const CF_RAFT_STATE: &str = "raft_state";
pub const CF_STATE: &str = "state";
pub const CF_SNAPSHOT: &str = "snapshot";
pub const CF_NODE: &str = "node";
pub const CF_SEGMENTS: &str = "segments";
const COLUMN_FAMILIES: [&str; 6] = [
    CF_RAFT_LOG,
    CF_RAFT_STATE,
    CF_STATE,
    CF_SNAPSHOT,
    CF_NODE,
    CF_SEGMENTS,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt record in {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("{0}")]
    Identity(String),
}

impl StoreError {
    pub fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// Shared handle on the node's RocksDB. Cheap to clone.
#[derive(Clone)]
pub struct NodeStore {
    db: Arc<DB>,
    path: PathBuf,
}

impl NodeStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| {
            StoreError::Identity(format!(
                "cannot create data directory {}: {e}",
                path.display()
            ))
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, family_options(name)));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(NodeStore {
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family is created at open; a missing one is a programming error.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} was not opened"))
    }

    /// Write a batch and sync the WAL before returning.
    pub fn write_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Write a batch without waiting for the disk; durable at the next synced write.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.db.write(batch)?;
        Ok(())
    }

    /// Write a batch past the write-ahead log: it is durable only once its column family's
    /// memtable is flushed ([`NodeStore::flush_cf`]). For state that can be rebuilt from a
    /// log kept elsewhere (the state machines, redone from the Raft log after a crash).
    pub fn write_unlogged(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// Make every write so far to one column family durable, including unlogged ones.
    pub fn flush_cf(&self, name: &str) -> Result<(), StoreError> {
        self.db.flush_cf(self.cf(name))?;
        Ok(())
    }

    pub fn get_cf(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }
}

/// Values at least this large go to blob files in the families that hold large values.
const MIN_BLOB_BYTES: u64 = 4096;

/// Options of one column family. The Raft log's entries and the state's large values
/// (stream batches, queue messages, object metadata with many parts) are kept in blob
/// files: written once when their memtable is flushed, and not rewritten by every
/// compaction level as values inside SSTs are (only their small keys and references are).
fn family_options(name: &str) -> Options {
    let mut opts = Options::default();
    if name == CF_RAFT_LOG || name == CF_STATE {
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(MIN_BLOB_BYTES);
        opts.set_enable_blob_gc(true);
    }
    opts
}

/// Encode a value for storage. Encoding our own types cannot fail.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).unwrap_or_else(|e| panic!("bincode encoding of an owned value: {e}"))
}

/// Decode a stored value, naming what it was when the bytes are bad.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(bytes).map_err(|e| StoreError::corrupt(what, e))
}
