//! The on-disk format of a shard file, version 1.
//!
//! ```text
//! header (64 bytes, little-endian)
//!    0  magic          b"STRSHARD"
//!    8  version        u16 = 1
//!   10  header_len     u16 = 64
//!   12  blob           u128
//!   28  index          u8   shard number
//!   29  data_shards    u8
//!   30  parity_shards  u8
//!   31  sealed         u8   1 once finished; an unsealed file is never valid
//!   32  piece_bytes    u32  length of every block's piece but the last
//!   36  last_piece     u32  length of the last block's piece (0 with no blocks)
//!   40  block_count    u64
//!   48  reserved       12 bytes of zero
//!   60  header_crc     u32  CRC32 of bytes 0..60
//! blocks, one per stripe of the blob
//!   piece bytes, then CRC32 of the piece (u32 LE)
//! ```
//!
//! The header is written as a placeholder when the file is created and rewritten with the
//! final counts, sealed, just before the fsync, so a reader can tell a complete file from
//! one cut short: the file's length must be exactly what the header says.

use super::{ChunkError, ShardId, ShardStat};

pub const MAGIC: [u8; 8] = *b"STRSHARD";
pub const VERSION: u16 = 1;
pub const HEADER_BYTES: usize = 64;
pub const CRC_BYTES: usize = 4;

/// Largest piece a shard may hold. Keeps one block, and one gRPC message carrying it,
/// small enough to hold in memory per request (1 MiB stripes over 4 data shards use 256 KiB).
pub const MAX_PIECE_BYTES: u32 = 4 * 1024 * 1024;

/// Reed–Solomon over GF(2^8) allows at most 256 shards, numbered by a `u8`.
pub const MAX_TOTAL_SHARDS: u16 = 256;

/// How a blob's shards are cut: the erasure layout's shard counts and the piece length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardFormat {
    pub data_shards: u8,
    pub parity_shards: u8,
    pub piece_bytes: u32,
}

impl ShardFormat {
    pub fn total_shards(&self) -> u16 {
        u16::from(self.data_shards) + u16::from(self.parity_shards)
    }

    /// Check the format itself and that `id` is one of its shards.
    pub fn validate_for(&self, id: ShardId) -> Result<(), ChunkError> {
        if self.data_shards == 0 {
            return Err(ChunkError::invalid(
                id,
                "a layout needs at least one data shard",
            ));
        }
        if self.total_shards() > MAX_TOTAL_SHARDS {
            return Err(ChunkError::invalid(
                id,
                format!(
                    "{} shards is more than the {MAX_TOTAL_SHARDS} allowed",
                    self.total_shards()
                ),
            ));
        }
        if u16::from(id.index) >= self.total_shards() {
            return Err(ChunkError::invalid(
                id,
                format!(
                    "shard index {} is outside a layout of {}+{} shards",
                    id.index, self.data_shards, self.parity_shards
                ),
            ));
        }
        if self.piece_bytes == 0 || self.piece_bytes > MAX_PIECE_BYTES {
            return Err(ChunkError::invalid(
                id,
                format!(
                    "piece size {} is outside 1..={MAX_PIECE_BYTES}",
                    self.piece_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Everything the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: ShardId,
    pub format: ShardFormat,
    pub sealed: bool,
    pub blocks: u64,
    pub last_piece_bytes: u32,
}

impl Header {
    pub fn stat(&self) -> ShardStat {
        let bytes = match self.blocks {
            0 => 0,
            n => (n - 1) * u64::from(self.format.piece_bytes) + u64::from(self.last_piece_bytes),
        };
        ShardStat {
            format: self.format,
            blocks: self.blocks,
            bytes,
            last_piece_bytes: self.last_piece_bytes,
        }
    }

    /// The exact length of a sealed file with this header.
    pub fn file_bytes(&self) -> u64 {
        HEADER_BYTES as u64 + self.stat().bytes + self.blocks * CRC_BYTES as u64
    }

    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_BYTES as u16).to_le_bytes());
        h[12..28].copy_from_slice(&self.id.blob.to_le_bytes());
        h[28] = self.id.index;
        h[29] = self.format.data_shards;
        h[30] = self.format.parity_shards;
        h[31] = u8::from(self.sealed);
        h[32..36].copy_from_slice(&self.format.piece_bytes.to_le_bytes());
        h[36..40].copy_from_slice(&self.last_piece_bytes.to_le_bytes());
        h[40..48].copy_from_slice(&self.blocks.to_le_bytes());
        let crc = crc32fast::hash(&h[0..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parse and check the header of the file that should hold shard `expected`. Any
    /// byte sequence gives a header or an error, never a panic.
    pub fn decode(expected: ShardId, bytes: &[u8]) -> Result<Header, ChunkError> {
        let bad = |detail: String| ChunkError::corrupt(expected, None, detail);
        if bytes.len() < HEADER_BYTES {
            return Err(bad(format!(
                "file is {} bytes, shorter than the {HEADER_BYTES}-byte header",
                bytes.len()
            )));
        }
        let h = &bytes[..HEADER_BYTES];
        if h[0..8] != MAGIC {
            return Err(bad("bad magic: not a Stratus shard file".into()));
        }
        let stored_crc = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
        if crc32fast::hash(&h[0..60]) != stored_crc {
            return Err(bad("header CRC mismatch".into()));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != VERSION {
            return Err(ChunkError::UnsupportedVersion {
                id: expected,
                version,
                supported: VERSION,
            });
        }
        let header_len = u16::from_le_bytes([h[10], h[11]]);
        if usize::from(header_len) != HEADER_BYTES {
            return Err(bad(format!(
                "header length {header_len}, expected {HEADER_BYTES}"
            )));
        }
        let mut blob = [0u8; 16];
        blob.copy_from_slice(&h[12..28]);
        let id = ShardId::new(u128::from_le_bytes(blob), h[28]);
        if id != expected {
            return Err(bad(format!("file holds shard {id}")));
        }
        let format = ShardFormat {
            data_shards: h[29],
            parity_shards: h[30],
            piece_bytes: u32::from_le_bytes([h[32], h[33], h[34], h[35]]),
        };
        format
            .validate_for(id)
            .map_err(|e| bad(format!("header has an invalid format: {e}")))?;
        let sealed = match h[31] {
            0 => false,
            1 => true,
            other => return Err(bad(format!("bad sealed flag {other}"))),
        };
        let last_piece_bytes = u32::from_le_bytes([h[36], h[37], h[38], h[39]]);
        let mut blocks = [0u8; 8];
        blocks.copy_from_slice(&h[40..48]);
        let blocks = u64::from_le_bytes(blocks);
        let last_ok = if blocks == 0 {
            last_piece_bytes == 0
        } else {
            last_piece_bytes >= 1 && last_piece_bytes <= format.piece_bytes
        };
        if !last_ok {
            return Err(bad(format!(
                "last piece of {last_piece_bytes} bytes with {blocks} blocks of {}",
                format.piece_bytes
            )));
        }
        // Bound the count so the file length below cannot overflow.
        if blocks > u64::MAX / (u64::from(MAX_PIECE_BYTES) + CRC_BYTES as u64 + 1) {
            return Err(bad(format!("absurd block count {blocks}")));
        }
        Ok(Header {
            id,
            format,
            sealed,
            blocks,
            last_piece_bytes,
        })
    }

    /// Byte offset of block `index` in the file.
    pub fn block_offset(&self, index: u64) -> u64 {
        HEADER_BYTES as u64 + index * (u64::from(self.format.piece_bytes) + CRC_BYTES as u64)
    }
}

/// Tracks the pieces a writer has taken and refuses those that break the format: each
/// piece has `piece_bytes` but the last, which may be shorter, and none is empty.
#[derive(Clone, Copy, Debug)]
pub struct PieceSequence {
    id: ShardId,
    format: ShardFormat,
    blocks: u64,
    last_piece_bytes: u32,
}

impl PieceSequence {
    pub fn new(id: ShardId, format: ShardFormat) -> Result<Self, ChunkError> {
        format.validate_for(id)?;
        Ok(PieceSequence {
            id,
            format,
            blocks: 0,
            last_piece_bytes: 0,
        })
    }

    /// Check the next piece's length and count it.
    pub fn admit(&mut self, len: usize) -> Result<(), ChunkError> {
        if self.blocks > 0 && self.last_piece_bytes < self.format.piece_bytes {
            return Err(ChunkError::invalid(
                self.id,
                format!(
                    "block {} follows a short last piece of {} bytes",
                    self.blocks, self.last_piece_bytes
                ),
            ));
        }
        if len == 0 || len > self.format.piece_bytes as usize {
            return Err(ChunkError::invalid(
                self.id,
                format!(
                    "piece of {len} bytes for block {}, expected 1..={}",
                    self.blocks, self.format.piece_bytes
                ),
            ));
        }
        self.blocks += 1;
        self.last_piece_bytes = len as u32;
        Ok(())
    }

    pub fn header(&self, sealed: bool) -> Header {
        Header {
            id: self.id,
            format: self.format,
            sealed,
            blocks: self.blocks,
            last_piece_bytes: self.last_piece_bytes,
        }
    }
}

/// A block as stored: the piece, then its CRC32.
pub fn block_crc(piece: &[u8]) -> [u8; CRC_BYTES] {
    crc32fast::hash(piece).to_le_bytes()
}

/// Check a stored block (piece + CRC) and return the piece's length.
pub fn check_block(id: ShardId, index: u64, block: &[u8]) -> Result<usize, ChunkError> {
    let Some(piece_len) = block.len().checked_sub(CRC_BYTES) else {
        return Err(ChunkError::corrupt(
            id,
            Some(index),
            "block shorter than its CRC",
        ));
    };
    let (piece, crc) = block.split_at(piece_len);
    if block_crc(piece) != crc {
        return Err(ChunkError::corrupt(id, Some(index), "block CRC mismatch"));
    }
    Ok(piece_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            id: ShardId::new(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, 5),
            format: ShardFormat {
                data_shards: 4,
                parity_shards: 2,
                piece_bytes: 262_144,
            },
            sealed: true,
            blocks: 3,
            last_piece_bytes: 12,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        assert_eq!(Header::decode(h.id, &h.encode()).unwrap(), h);
        assert_eq!(h.stat().bytes, 2 * 262_144 + 12);
        assert_eq!(h.file_bytes(), 64 + 2 * 262_144 + 12 + 3 * 4);
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let h = header();
        let good = h.encode();
        for i in 0..HEADER_BYTES {
            let mut bytes = good;
            bytes[i] ^= 0x40;
            assert!(Header::decode(h.id, &bytes).is_err(), "byte {i}");
        }
    }

    #[test]
    fn wrong_shard_and_garbage_are_refused() {
        let h = header();
        let other = ShardId::new(h.id.blob, 4);
        let err = Header::decode(other, &h.encode()).unwrap_err().to_string();
        assert!(err.contains("file holds shard"), "{err}");
        let err = Header::decode(h.id, b"hello").unwrap_err().to_string();
        assert!(err.contains("shorter than"), "{err}");
        let err = Header::decode(h.id, &[0xff; 100]).unwrap_err().to_string();
        assert!(err.contains("not a Stratus shard file"), "{err}");
    }

    #[test]
    fn a_newer_version_is_named() {
        let h = header();
        let mut bytes = h.encode();
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        let crc = crc32fast::hash(&bytes[0..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Header::decode(h.id, &bytes),
            Err(ChunkError::UnsupportedVersion { version: 2, .. })
        ));
    }

    #[test]
    fn inconsistent_counts_are_refused() {
        for (blocks, last) in [(0u64, 1u32), (2, 0), (2, 262_145), (u64::MAX, 1)] {
            let h = Header {
                blocks,
                last_piece_bytes: last,
                ..header()
            };
            assert!(
                Header::decode(h.id, &h.encode()).is_err(),
                "{blocks} {last}"
            );
        }
    }

    #[test]
    fn blocks_check_their_crc() {
        let id = header().id;
        let mut block = b"piece".to_vec();
        block.extend_from_slice(&block_crc(b"piece"));
        assert_eq!(check_block(id, 0, &block).unwrap(), 5);
        block[1] ^= 1;
        assert!(matches!(
            check_block(id, 0, &block),
            Err(ChunkError::Corrupt { block: Some(0), .. })
        ));
        assert!(check_block(id, 0, &[1, 2]).is_err());
    }
}
