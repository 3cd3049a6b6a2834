//! `MemChunkStore`: shards in memory, for tests that run many "nodes" in one process.
//! It keeps each block with its CRC and verifies on read like the file store, so
//! [`MemChunkStore::corrupt_block`] and [`MemChunkStore::drop_block`] can exercise the
//! paths that detect bad data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::format::{self, PieceSequence};
use super::{ChunkError, ChunkStore, ShardFormat, ShardId, ShardReader, ShardStat, ShardWriter};

#[derive(Clone)]
struct MemShard {
    stat: ShardStat,
    /// Each block's piece followed by its CRC, as on disk.
    blocks: Vec<Vec<u8>>,
}

type Shards = Arc<Mutex<BTreeMap<ShardId, Arc<MemShard>>>>;

#[derive(Default, Clone)]
pub struct MemChunkStore {
    shards: Shards,
}

impl MemChunkStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn shards(&self) -> MutexGuard<'_, BTreeMap<ShardId, Arc<MemShard>>> {
        lock(&self.shards)
    }

    /// Flip a bit of a stored block (test fault injection); returns whether it existed.
    pub fn corrupt_block(&self, id: ShardId, index: u64) -> bool {
        self.edit_block(id, index, |block| {
            if let Some(b) = block.first_mut() {
                *b ^= 1;
            }
        })
    }

    /// Cut a stored block short (test fault injection); returns whether it existed.
    pub fn drop_block(&self, id: ShardId, index: u64) -> bool {
        self.edit_block(id, index, |block| block.truncate(block.len() / 2))
    }

    fn edit_block(&self, id: ShardId, index: u64, edit: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut shards = self.shards();
        let Some(shard) = shards.get_mut(&id) else {
            return false;
        };
        let shard = Arc::make_mut(shard);
        match usize::try_from(index)
            .ok()
            .and_then(|i| shard.blocks.get_mut(i))
        {
            Some(block) => {
                edit(block);
                true
            }
            None => false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChunkStore for MemChunkStore {
    fn create(&self, id: ShardId, format: ShardFormat) -> Result<Box<dyn ShardWriter>, ChunkError> {
        Ok(Box::new(MemShardWriter {
            pieces: PieceSequence::new(id, format)?,
            blocks: Vec::new(),
            shards: self.shards.clone(),
        }))
    }

    fn open(&self, id: ShardId) -> Result<Box<dyn ShardReader>, ChunkError> {
        let shard = self
            .shards()
            .get(&id)
            .cloned()
            .ok_or(ChunkError::NotFound(id))?;
        Ok(Box::new(MemShardReader { id, shard }))
    }

    fn delete(&self, id: ShardId) -> Result<bool, ChunkError> {
        Ok(self.shards().remove(&id).is_some())
    }

    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardId>, ChunkError> {
        let shards = self.shards();
        let ids = match after {
            Some(a) => shards
                .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                .map(|(id, _)| *id)
                .take(limit)
                .collect(),
            None => shards.keys().copied().take(limit).collect(),
        };
        Ok(ids)
    }

    fn sweep_temp(&self) -> Result<usize, ChunkError> {
        // Unfinished writers hold their blocks themselves; nothing is ever left behind.
        Ok(0)
    }
}

struct MemShardWriter {
    pieces: PieceSequence,
    blocks: Vec<Vec<u8>>,
    shards: Shards,
}

impl ShardWriter for MemShardWriter {
    fn append(&mut self, piece: &[u8]) -> Result<(), ChunkError> {
        self.pieces.admit(piece.len())?;
        let mut block = Vec::with_capacity(piece.len() + format::CRC_BYTES);
        block.extend_from_slice(piece);
        block.extend_from_slice(&format::block_crc(piece));
        self.blocks.push(block);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<ShardStat, ChunkError> {
        let header = self.pieces.header(true);
        let stat = header.stat();
        lock(&self.shards).insert(
            header.id,
            Arc::new(MemShard {
                stat,
                blocks: self.blocks,
            }),
        );
        Ok(stat)
    }
}

struct MemShardReader {
    id: ShardId,
    shard: Arc<MemShard>,
}

impl ShardReader for MemShardReader {
    fn stat(&self) -> ShardStat {
        self.shard.stat
    }

    fn read_block(&mut self, index: u64) -> Result<Bytes, ChunkError> {
        let out_of_range = ChunkError::BlockOutOfRange {
            id: self.id,
            block: index,
            blocks: self.shard.stat.blocks,
        };
        let expected = self.shard.stat.piece_bytes_of(index).ok_or(out_of_range)?;
        let block = usize::try_from(index)
            .ok()
            .and_then(|i| self.shard.blocks.get(i))
            .ok_or_else(|| ChunkError::corrupt(self.id, Some(index), "block missing"))?;
        let len = format::check_block(self.id, index, block)?;
        if len != expected as usize {
            return Err(ChunkError::corrupt(
                self.id,
                Some(index),
                format!("piece of {len} bytes, expected {expected}"),
            ));
        }
        Ok(Bytes::copy_from_slice(&block[..len]))
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;

    #[test]
    fn write_read_delete() {
        contract::write_read_delete(&MemChunkStore::new());
    }

    #[test]
    fn empty_shard() {
        contract::empty_shard(&MemChunkStore::new());
    }

    #[test]
    fn bad_pieces_refused() {
        contract::bad_pieces_refused(&MemChunkStore::new());
    }

    #[test]
    fn list_pages_in_order() {
        contract::list_pages_in_order(&MemChunkStore::new());
    }

    #[test]
    fn overwrite_replaces() {
        contract::overwrite_replaces(&MemChunkStore::new());
    }

    #[test]
    fn injected_faults_are_detected() {
        let s = MemChunkStore::new();
        let id = ShardId::new(1, 0);
        contract::write(&s, id, &[1000, 1000, 20]);
        assert!(s.corrupt_block(id, 1));
        assert!(s.drop_block(id, 2));
        assert!(!s.corrupt_block(id, 3));
        assert!(s.read_block(id, 0).is_ok());
        assert!(matches!(
            s.read_block(id, 1),
            Err(ChunkError::Corrupt { block: Some(1), .. })
        ));
        assert!(matches!(
            s.read_block(id, 2),
            Err(ChunkError::Corrupt { block: Some(2), .. })
        ));
        assert!(s.verify(id).is_err());
    }
}
