//! Log records as the writer builds them, and their wire form with its CRC32.
//!
//! A record's CRC is CRC32 (IEEE, `crc32fast`) of its protobuf encoding with `crc32 = 0`
//! (quorum.proto). [`LogRecord::seal`] computes it once when the writer makes the record;
//! [`LogRecord::from_wire`] checks it on everything read back from a segment, so a corrupt
//! record is never counted or re-replicated.

use prost::Message;
use stratus_proto::quorum as pb;

use super::{Epoch, Lsn, QuorumError};

/// One redo operation on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// A redo log record of one page (docs/quorum-storage.md, "Log records and LSNs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub lsn: Lsn,
    /// The previous LSN of the same PG (0: none): the backlink.
    pub prev_lsn: Lsn,
    pub epoch: Epoch,
    pub pg: u32,
    pub page: u64,
    /// Last record of a mini-transaction.
    pub cpl: bool,
    pub ops: Vec<PageOp>,
    /// CRC32 of the wire encoding with this field 0 (see [`LogRecord::seal`]).
    pub crc32: u32,
}

impl LogRecord {
    /// A record with its CRC computed.
    pub fn seal(mut self) -> Self {
        self.crc32 = 0;
        self.crc32 = crc_of(&self.wire_without_crc());
        self
    }

    /// Approximate payload size, for batching.
    pub fn size_bytes(&self) -> usize {
        48 + self
            .ops
            .iter()
            .map(|op| match op {
                PageOp::Put { key, value } => key.len() + value.len() + 8,
                PageOp::Delete { key } => key.len() + 4,
            })
            .sum::<usize>()
    }

    /// The wire form, carrying the CRC computed by [`LogRecord::seal`].
    pub fn to_wire(&self) -> pb::LogRecord {
        let mut wire = self.wire_without_crc();
        wire.crc32 = self.crc32;
        wire
    }

    /// A record read from a segment; fails when its CRC does not match its contents.
    pub fn from_wire(wire: pb::LogRecord) -> Result<Self, QuorumError> {
        let mut unsealed = wire.clone();
        unsealed.crc32 = 0;
        let expected = crc_of(&unsealed);
        if expected != wire.crc32 {
            return Err(QuorumError::Corrupt(format!(
                "record at LSN {} fails its CRC (stored {:#010x}, computed {expected:#010x})",
                wire.lsn, wire.crc32
            )));
        }
        let mut ops = Vec::with_capacity(wire.ops.len());
        for op in wire.ops {
            match op.op {
                Some(pb::page_op::Op::Put(kv)) => ops.push(PageOp::Put {
                    key: kv.key,
                    value: kv.value,
                }),
                Some(pb::page_op::Op::Delete(key)) => ops.push(PageOp::Delete { key }),
                None => {
                    return Err(QuorumError::Corrupt(format!(
                        "record at LSN {} has an empty page op",
                        wire.lsn
                    )))
                }
            }
        }
        Ok(LogRecord {
            lsn: wire.lsn,
            prev_lsn: wire.prev_lsn,
            epoch: wire.epoch,
            pg: wire.pg,
            page: wire.page,
            cpl: wire.cpl,
            ops,
            crc32: wire.crc32,
        })
    }

    fn wire_without_crc(&self) -> pb::LogRecord {
        pb::LogRecord {
            lsn: self.lsn,
            prev_lsn: self.prev_lsn,
            epoch: self.epoch,
            pg: self.pg,
            page: self.page,
            cpl: self.cpl,
            ops: self
                .ops
                .iter()
                .map(|op| pb::PageOp {
                    op: Some(match op {
                        PageOp::Put { key, value } => pb::page_op::Op::Put(pb::KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                        }),
                        PageOp::Delete { key } => pb::page_op::Op::Delete(key.clone()),
                    }),
                })
                .collect(),
            crc32: 0,
        }
    }
}

fn crc_of(wire: &pb::LogRecord) -> u32 {
    crc32fast::hash(&wire.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord {
        LogRecord {
            lsn: 7,
            prev_lsn: 3,
            epoch: 2,
            pg: 1,
            page: 5,
            cpl: true,
            ops: vec![
                PageOp::Put {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                },
                PageOp::Delete { key: b"x".to_vec() },
            ],
            crc32: 0,
        }
        .seal()
    }

    #[test]
    fn a_sealed_record_round_trips_through_the_wire() {
        let r = record();
        assert_ne!(r.crc32, 0);
        let back = LogRecord::from_wire(r.to_wire()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_crc_is_over_the_encoding_with_crc_zero() {
        let r = record();
        let mut wire = r.to_wire();
        wire.crc32 = 0;
        assert_eq!(crc32fast::hash(&wire.encode_to_vec()), r.crc32);
    }

    #[test]
    fn a_changed_byte_fails_the_crc() {
        let mut wire = record().to_wire();
        wire.page = 6;
        assert!(matches!(
            LogRecord::from_wire(wire),
            Err(QuorumError::Corrupt(_))
        ));
    }
}
