//! The chunk store: where a node keeps the erasure-coded shards of object data, one file
//! per shard (ARCHITECTURE.md §2, §4). This module is the seam between `object/` and the
//! disk: `object/` speaks in [`ShardId`]s and pieces, never in paths.
//!
//! What it owns: a shard is all of one shard number's pieces of one blob (an object
//! version's data or one multipart part), stripe after stripe. Each piece is stored as a
//! block followed by its CRC32, behind a header naming the shard and its format
//! (see `format.rs`).
//!
//! What it guarantees:
//! - A shard becomes visible only complete: a writer fills a temporary file and
//!   [`ShardWriter::finish`] fsyncs it, renames it into place and fsyncs the directory.
//!   A crash before that leaves no shard under the final name, only a temporary file that
//!   [`ChunkStore::sweep_temp`] removes.
//! - Every read verifies the block's CRC and the header; bad bytes come back as
//!   [`ChunkError::Corrupt`], never as data. A truncated or extended file is corrupt.
//! - Finishing a shard that already exists replaces it (a retried upload or a repair).
//!
//! What it does not do: decide which node holds which shard, know object lengths, or
//! rebuild lost shards (that is `object/`'s erasure coding and repair).
//!
//! The trait is synchronous (blocking file I/O). Async callers run it on
//! `tokio::task::spawn_blocking`; the gRPC shell and `object::shard_io` do. A blocking
//! trait keeps it object-safe with no boxed futures, lets one blocking task do a batch of
//! work (a whole `verify`), and keeps the stores plain to test.

pub mod format;
pub mod fs;
pub mod memory;

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;

pub use format::{ShardFormat, MAX_PIECE_BYTES, MAX_TOTAL_SHARDS};
pub use fs::FsChunkStore;
pub use memory::MemChunkStore;

/// One shard of one blob. `blob` names one object version's data or one multipart part;
/// `index` is the shard number, `0..data_shards` for data and the rest for parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId {
    pub blob: u128,
    pub index: u8,
}

impl ShardId {
    pub fn new(blob: u128, index: u8) -> Self {
        ShardId { blob, index }
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}/{}", self.blob, self.index)
    }
}

/// What a finished shard holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardStat {
    pub format: ShardFormat,
    /// Number of blocks (pieces), one per stripe of the blob.
    pub blocks: u64,
    /// Piece bytes over all blocks (CRCs and header not counted).
    pub bytes: u64,
    /// Length of the last block's piece (the last stripe may be short); 0 with no blocks.
    pub last_piece_bytes: u32,
}

impl ShardStat {
    /// Piece length of block `index`, or `None` past the end.
    pub fn piece_bytes_of(&self, index: u64) -> Option<u32> {
        match self.blocks.checked_sub(1) {
            Some(last) if index < last => Some(self.format.piece_bytes),
            Some(last) if index == last => Some(self.last_piece_bytes),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("shard {0} not found")]
    NotFound(ShardId),
    /// The bytes on disk are not what was written: a CRC mismatch, a bad header, a
    /// truncated or extended file. The shard must be rebuilt from the others.
    #[error("shard {id} is corrupt{}: {detail}", block_suffix(*.block))]
    Corrupt {
        id: ShardId,
        block: Option<u64>,
        detail: String,
    },
    /// The file was written by a newer format this build cannot read.
    #[error("shard {id} has format version {version}, this build reads version {supported}")]
    UnsupportedVersion {
        id: ShardId,
        version: u16,
        supported: u16,
    },
    #[error("shard {id} has {blocks} blocks, block {block} does not exist")]
    BlockOutOfRange {
        id: ShardId,
        block: u64,
        blocks: u64,
    },
    /// The caller asked for something invalid (a bad format, a piece of the wrong size).
    #[error("invalid request for shard {id}: {detail}")]
    Invalid { id: ShardId, detail: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn block_suffix(block: Option<u64>) -> String {
    match block {
        Some(b) => format!(" at block {b}"),
        None => String::new(),
    }
}

impl ChunkError {
    pub fn corrupt(id: ShardId, block: Option<u64>, detail: impl Into<String>) -> Self {
        ChunkError::Corrupt {
            id,
            block,
            detail: detail.into(),
        }
    }

    pub fn invalid(id: ShardId, detail: impl Into<String>) -> Self {
        ChunkError::Invalid {
            id,
            detail: detail.into(),
        }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChunkError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Writes one shard, piece by piece. Dropping a writer without `finish` abandons it: the
/// shard does not appear and its temporary bytes are removed.
pub trait ShardWriter: Send {
    /// Append the next piece. Every piece has the format's `piece_bytes`, except the last,
    /// which may be shorter (but not empty); nothing may follow a short piece.
    fn append(&mut self, piece: &[u8]) -> Result<(), ChunkError>;

    /// Make the shard durable and visible under its id; returns what it holds.
    fn finish(self: Box<Self>) -> Result<ShardStat, ChunkError>;
}

/// Reads the blocks of one finished shard; the header is checked once, at open.
pub trait ShardReader: Send {
    fn stat(&self) -> ShardStat;

    /// The piece of block `index`, after its CRC has been verified.
    fn read_block(&mut self, index: u64) -> Result<Bytes, ChunkError>;
}

/// A node's shard storage. Blocking; see the module docs.
pub trait ChunkStore: Send + Sync {
    /// Start writing shard `id`. Its pieces are `format.piece_bytes` long (the last may be
    /// shorter).
    fn create(&self, id: ShardId, format: ShardFormat) -> Result<Box<dyn ShardWriter>, ChunkError>;

    /// Open a finished shard for reading.
    fn open(&self, id: ShardId) -> Result<Box<dyn ShardReader>, ChunkError>;

    /// Read and verify one block.
    fn read_block(&self, id: ShardId, index: u64) -> Result<Bytes, ChunkError> {
        self.open(id)?.read_block(index)
    }

    /// What a shard holds, from its header (checked against the file's length).
    fn stat(&self, id: ShardId) -> Result<ShardStat, ChunkError> {
        Ok(self.open(id)?.stat())
    }

    /// Remove a shard; returns whether it existed.
    fn delete(&self, id: ShardId) -> Result<bool, ChunkError>;

    /// Up to `limit` finished shards in ascending id order, starting after `after`; page
    /// through all of them by passing the last id of one page to the next call.
    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardId>, ChunkError>;

    /// Read and verify every block of a shard.
    fn verify(&self, id: ShardId) -> Result<ShardStat, ChunkError> {
        let mut reader = self.open(id)?;
        let stat = reader.stat();
        for index in 0..stat.blocks {
            reader.read_block(index)?;
        }
        Ok(stat)
    }

    /// Remove leftovers of writers that never finished (a crash, a dropped connection),
    /// except those of writers still open in this process. Returns how many were removed.
    fn sweep_temp(&self) -> Result<usize, ChunkError>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! Behaviour every `ChunkStore` must have, run against each implementation.

    use super::*;

    pub fn format() -> ShardFormat {
        ShardFormat {
            data_shards: 4,
            parity_shards: 2,
            piece_bytes: 1000,
        }
    }

    pub fn piece(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    pub fn write(store: &dyn ChunkStore, id: ShardId, lens: &[usize]) -> ShardStat {
        let mut w = store.create(id, format()).unwrap();
        for (i, len) in lens.iter().enumerate() {
            w.append(&piece(i as u8, *len)).unwrap();
        }
        w.finish().unwrap()
    }

    pub fn write_read_delete(store: &dyn ChunkStore) {
        let id = ShardId::new(0xabcd_0000_0000_0000_0000_0000_0000_0001, 3);
        let stat = write(store, id, &[1000, 1000, 17]);
        assert_eq!(stat.blocks, 3);
        assert_eq!(stat.bytes, 2017);
        assert_eq!(stat.last_piece_bytes, 17);
        assert_eq!(store.stat(id).unwrap(), stat);
        for (i, len) in [1000usize, 1000, 17].iter().enumerate() {
            let got = store.read_block(id, i as u64).unwrap();
            assert_eq!(&got[..], &piece(i as u8, *len)[..]);
        }
        assert!(matches!(
            store.read_block(id, 3),
            Err(ChunkError::BlockOutOfRange {
                block: 3,
                blocks: 3,
                ..
            })
        ));
        assert!(matches!(
            store.read_block(id, u64::MAX),
            Err(ChunkError::BlockOutOfRange { .. })
        ));
        assert_eq!(store.verify(id).unwrap(), stat);
        assert_eq!(store.list(None, 10).unwrap(), vec![id]);

        assert!(store.delete(id).unwrap());
        assert!(!store.delete(id).unwrap());
        assert!(matches!(store.stat(id), Err(ChunkError::NotFound(x)) if x == id));
        assert!(matches!(
            store.read_block(id, 0),
            Err(ChunkError::NotFound(_))
        ));
        assert!(store.list(None, 10).unwrap().is_empty());
    }

    pub fn empty_shard(store: &dyn ChunkStore) {
        let id = ShardId::new(7, 0);
        let stat = write(store, id, &[]);
        assert_eq!((stat.blocks, stat.bytes, stat.last_piece_bytes), (0, 0, 0));
        assert_eq!(store.verify(id).unwrap(), stat);
        assert!(matches!(
            store.read_block(id, 0),
            Err(ChunkError::BlockOutOfRange { .. })
        ));
    }

    pub fn bad_pieces_refused(store: &dyn ChunkStore) {
        let id = ShardId::new(8, 1);
        let mut w = store.create(id, format()).unwrap();
        assert!(matches!(w.append(&[]), Err(ChunkError::Invalid { .. })));
        assert!(matches!(
            w.append(&[0; 1001]),
            Err(ChunkError::Invalid { .. })
        ));
        w.append(&[1; 10]).unwrap();
        // Nothing may follow a short piece.
        assert!(matches!(
            w.append(&[0; 1000]),
            Err(ChunkError::Invalid { .. })
        ));
        drop(w);
        // An abandoned writer leaves nothing behind.
        assert!(matches!(store.stat(id), Err(ChunkError::NotFound(_))));
        assert!(store.list(None, 10).unwrap().is_empty());

        let bad = ShardFormat {
            piece_bytes: 0,
            ..format()
        };
        assert!(matches!(
            store.create(id, bad),
            Err(ChunkError::Invalid { .. })
        ));
        // Index beyond data + parity shards.
        assert!(matches!(
            store.create(ShardId::new(8, 6), format()),
            Err(ChunkError::Invalid { .. })
        ));
    }

    pub fn list_pages_in_order(store: &dyn ChunkStore) {
        let mut ids = Vec::new();
        for blob in [5u128, 1 << 120, 3, u128::MAX, 0x00ff << 100] {
            for index in [2u8, 0, 5] {
                let id = ShardId::new(blob, index);
                write(store, id, &[10]);
                ids.push(id);
            }
        }
        ids.sort();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list(after, 4).unwrap();
            assert!(page.len() <= 4);
            if page.is_empty() {
                break;
            }
            after = page.last().copied();
            seen.extend(page);
        }
        assert_eq!(seen, ids);
    }

    pub fn overwrite_replaces(store: &dyn ChunkStore) {
        let id = ShardId::new(9, 0);
        write(store, id, &[1000, 5]);
        let stat = write(store, id, &[3]);
        assert_eq!(store.stat(id).unwrap(), stat);
        assert_eq!(&store.read_block(id, 0).unwrap()[..], &piece(0, 3)[..]);
        assert_eq!(store.list(None, 10).unwrap(), vec![id]);
    }
}
