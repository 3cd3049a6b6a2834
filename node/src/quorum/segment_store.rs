//! Persistence of segments in the node's RocksDB, column family `segments`.
//!
//! Keys: `volume_id (8 BE) | pg (4 BE) | slot (4 BE) | kind (1) | suffix`:
//! - kind 0, no suffix: the meta row (`SegmentMeta`, bincode, preceded by its CRC32);
//! - kind 1, `lsn (8 BE)`: a log row, the record's protobuf encoding (`LogRecord`, whose
//!   `crc32` field is the CRC32 of its encoding with `crc32 = 0`);
//! - kind 2, `page (8 BE)`: a materialized page (`MaterializedPage`, with its own CRC32).
//!
//! Guarantees: every value is checked on every read; a bad one comes back as
//! `StoreError::Corrupt` (the host deletes it and refetches from peers). Every change to a
//! segment (records plus meta, pages plus meta, a whole copy) is one batch synced to the WAL.
//! Loading drops log rows that fail their CRC and segments whose meta row does.
//! Not here: what to write (the pure core in `segment`).

use std::collections::BTreeMap;

use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use stratus_proto::quorum::{self as wire, page_op, LogRecord, MaterializedPage};

use super::pages::{Page, PageOp};
use super::segment::{RecordHead, SegmentKey, SegmentMeta, SegmentState};
use crate::store::{decode, encode, NodeStore, StoreError, CF_SEGMENTS};

const KIND_META: u8 = 0;
const KIND_LOG: u8 = 1;
const KIND_PAGE: u8 = 2;
const PREFIX_LEN: usize = 16;

fn prefix(key: SegmentKey) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..8].copy_from_slice(&key.volume_id.to_be_bytes());
    p[8..12].copy_from_slice(&key.pg.to_be_bytes());
    p[12..16].copy_from_slice(&key.slot.to_be_bytes());
    p
}

fn parse_prefix(k: &[u8]) -> Option<SegmentKey> {
    if k.len() < PREFIX_LEN {
        return None;
    }
    Some(SegmentKey {
        volume_id: u64::from_be_bytes(k[..8].try_into().ok()?),
        pg: u32::from_be_bytes(k[8..12].try_into().ok()?),
        slot: u32::from_be_bytes(k[12..16].try_into().ok()?),
    })
}

fn row_key(key: SegmentKey, kind: u8, suffix: Option<u64>) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX_LEN + 9);
    k.extend_from_slice(&prefix(key));
    k.push(kind);
    if let Some(s) = suffix {
        k.extend_from_slice(&s.to_be_bytes());
    }
    k
}

fn meta_key(key: SegmentKey) -> Vec<u8> {
    row_key(key, KIND_META, None)
}

fn log_key(key: SegmentKey, lsn: u64) -> Vec<u8> {
    row_key(key, KIND_LOG, Some(lsn))
}

fn page_key(key: SegmentKey, page: u64) -> Vec<u8> {
    row_key(key, KIND_PAGE, Some(page))
}

/// CRC32 of a record's encoding with `crc32 = 0` (the wire contract's definition).
pub fn record_crc(r: &LogRecord) -> u32 {
    let mut copy = r.clone();
    copy.crc32 = 0;
    crc32fast::hash(&copy.encode_to_vec())
}

/// CRC32 of a page's encoding with `crc32 = 0`.
pub fn page_crc(p: &MaterializedPage) -> u32 {
    let mut copy = p.clone();
    copy.crc32 = 0;
    crc32fast::hash(&copy.encode_to_vec())
}

pub fn head_of(r: &LogRecord) -> RecordHead {
    RecordHead {
        lsn: r.lsn,
        prev_lsn: r.prev_lsn,
        epoch: r.epoch,
        pg: r.pg,
        page: r.page,
        crc32: r.crc32,
    }
}

/// A record's redo as page operations (an empty op is skipped).
pub fn ops_of(r: &LogRecord) -> Vec<PageOp> {
    r.ops
        .iter()
        .filter_map(|op| match &op.op {
            Some(page_op::Op::Put(kv)) => Some(PageOp::Put {
                key: kv.key.clone(),
                value: kv.value.clone(),
            }),
            Some(page_op::Op::Delete(key)) => Some(PageOp::Delete { key: key.clone() }),
            None => None,
        })
        .collect()
}

/// A page image in its stored (and copied) form, CRC set.
pub fn page_to_wire(page_no: u64, page: &Page) -> MaterializedPage {
    let mut p = MaterializedPage {
        page: page_no,
        entries: page
            .iter()
            .map(|(k, v)| wire::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        crc32: 0,
    };
    p.crc32 = page_crc(&p);
    p
}

pub fn page_from_wire(p: &MaterializedPage) -> Page {
    p.entries
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

fn decode_record(what: &str, bytes: &[u8]) -> Result<LogRecord, StoreError> {
    let r = LogRecord::decode(bytes).map_err(|e| StoreError::corrupt(what, e))?;
    let crc = record_crc(&r);
    if crc != r.crc32 {
        return Err(StoreError::corrupt(
            what,
            format!("CRC {crc:#010x}, stored {:#010x}", r.crc32),
        ));
    }
    Ok(r)
}

fn decode_page(what: &str, bytes: &[u8]) -> Result<MaterializedPage, StoreError> {
    let p = MaterializedPage::decode(bytes).map_err(|e| StoreError::corrupt(what, e))?;
    let crc = page_crc(&p);
    if crc != p.crc32 {
        return Err(StoreError::corrupt(
            what,
            format!("CRC {crc:#010x}, stored {:#010x}", p.crc32),
        ));
    }
    Ok(p)
}

fn encode_meta(meta: &SegmentMeta) -> Vec<u8> {
    let body = encode(meta);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode_meta(what: &str, bytes: &[u8]) -> Result<SegmentMeta, StoreError> {
    if bytes.len() < 4 {
        return Err(StoreError::corrupt(what, "meta row shorter than its CRC"));
    }
    let (crc, body) = bytes.split_at(4);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err(StoreError::corrupt(what, "meta row fails its CRC"));
    }
    decode(what, body)
}

/// One batch of changes to a segment.
#[derive(Default)]
pub struct SegmentChange<'a> {
    /// Delete the segment's log and pages first (a copy or a reset).
    pub clear_data: bool,
    pub delete_records: &'a [u64],
    pub put_records: Vec<&'a LogRecord>,
    pub put_pages: Vec<&'a MaterializedPage>,
    pub meta: Option<&'a SegmentMeta>,
}

#[derive(Clone)]
pub struct SegmentStore {
    store: NodeStore,
}

impl SegmentStore {
    pub fn new(store: NodeStore) -> Self {
        SegmentStore { store }
    }

    /// Every segment on this node. Bad log rows are deleted (gossip refetches them); a
    /// segment whose meta row is bad is deleted whole (it is recreated by Fence or
    /// SetMembership and refilled from peers).
    pub fn load_all(&self) -> Result<Vec<SegmentState>, StoreError> {
        let db = self.store.db();
        let cf = self.store.cf(CF_SEGMENTS);
        let mut keys: Vec<SegmentKey> = Vec::new();
        for item in db.iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = item?;
            if let Some(key) = parse_prefix(&k) {
                if keys.last() != Some(&key) {
                    keys.push(key);
                }
            }
        }
        let mut out = Vec::new();
        for key in keys {
            if let Some(state) = self.load_one(key)? {
                out.push(state);
            }
        }
        Ok(out)
    }

    /// One segment from disk (None: not held, or dropped because its meta row was bad).
    pub fn load_one(&self, key: SegmentKey) -> Result<Option<SegmentState>, StoreError> {
        let db = self.store.db();
        let cf = self.store.cf(CF_SEGMENTS);
        let meta = match db.get_cf(cf, meta_key(key))? {
            None => None,
            Some(bytes) => match decode_meta(&format!("segment {key:?} meta"), &bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(?key, error = %e, "segment meta is corrupt; dropping the segment");
                    None
                }
            },
        };
        let Some(meta) = meta else {
            self.delete_segment(key)?;
            return Ok(None);
        };
        let start = row_key(key, KIND_LOG, None);
        let mut heads = Vec::new();
        let mut bad = Vec::new();
        for item in db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&start) || k.len() != start.len() + 8 {
                break;
            }
            let lsn = u64::from_be_bytes(k[start.len()..].try_into().unwrap_or([0; 8]));
            match decode_record(&format!("segment {key:?} record {lsn}"), &v) {
                Ok(r) if r.lsn == lsn => heads.push(head_of(&r)),
                Ok(r) => {
                    tracing::warn!(
                        ?key,
                        lsn,
                        found = r.lsn,
                        "log row holds another LSN; dropping it"
                    );
                    bad.push(lsn);
                }
                Err(e) => {
                    tracing::warn!(?key, lsn, error = %e, "log record fails its CRC; dropping it");
                    bad.push(lsn);
                }
            }
        }
        let stored_meta = meta.clone();
        let (state, void) = SegmentState::load(key, meta, heads);
        let mut deletes = bad;
        deletes.extend(void);
        if !deletes.is_empty() || state.meta != stored_meta {
            self.commit(
                key,
                SegmentChange {
                    delete_records: &deletes,
                    meta: Some(&state.meta),
                    ..Default::default()
                },
            )?;
        }
        Ok(Some(state))
    }

    /// Apply one change as a single synced batch.
    pub fn commit(&self, key: SegmentKey, change: SegmentChange<'_>) -> Result<(), StoreError> {
        let cf = self.store.cf(CF_SEGMENTS);
        let mut batch = WriteBatch::default();
        if change.clear_data {
            batch.delete_range_cf(
                cf,
                row_key(key, KIND_LOG, None),
                row_key(key, KIND_PAGE + 1, None),
            );
        }
        for lsn in change.delete_records {
            batch.delete_cf(cf, log_key(key, *lsn));
        }
        for r in change.put_records {
            batch.put_cf(cf, log_key(key, r.lsn), r.encode_to_vec());
        }
        for p in change.put_pages {
            batch.put_cf(cf, page_key(key, p.page), p.encode_to_vec());
        }
        if let Some(meta) = change.meta {
            batch.put_cf(cf, meta_key(key), encode_meta(meta));
        }
        self.store.write_synced(batch)
    }

    pub fn delete_segment(&self, key: SegmentKey) -> Result<(), StoreError> {
        let cf = self.store.cf(CF_SEGMENTS);
        let mut batch = WriteBatch::default();
        let mut end = prefix(key).to_vec();
        end.push(u8::MAX);
        end.extend_from_slice(&[u8::MAX; 8]);
        batch.delete_range_cf(cf, prefix(key).to_vec(), end);
        self.store.write_synced(batch)
    }

    /// A log record, CRC-checked (`StoreError::Corrupt` when it fails).
    pub fn read_record(&self, key: SegmentKey, lsn: u64) -> Result<Option<LogRecord>, StoreError> {
        let what = format!("segment {key:?} record {lsn}");
        match self.store.get_cf(CF_SEGMENTS, &log_key(key, lsn))? {
            None => Ok(None),
            Some(bytes) => {
                let r = decode_record(&what, &bytes)?;
                if r.lsn != lsn {
                    return Err(StoreError::corrupt(
                        what,
                        format!("row holds LSN {}", r.lsn),
                    ));
                }
                Ok(Some(r))
            }
        }
    }

    /// A materialized page, CRC-checked.
    pub fn read_page(
        &self,
        key: SegmentKey,
        page: u64,
    ) -> Result<Option<MaterializedPage>, StoreError> {
        let what = format!("segment {key:?} page {page}");
        match self.store.get_cf(CF_SEGMENTS, &page_key(key, page))? {
            None => Ok(None),
            Some(bytes) => decode_page(&what, &bytes).map(Some),
        }
    }

    /// Every materialized page of a segment, CRC-checked, in page order.
    pub fn all_pages(&self, key: SegmentKey) -> Result<Vec<MaterializedPage>, StoreError> {
        let db = self.store.db();
        let cf = self.store.cf(CF_SEGMENTS);
        let start = row_key(key, KIND_PAGE, None);
        let mut out = Vec::new();
        for item in db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(&start) {
                break;
            }
            out.push(decode_page(&format!("segment {key:?} page row {k:?}"), &v)?);
        }
        Ok(out)
    }
}

/// Pages touched by a set of records, with their records' ops in LSN order.
pub fn ops_by_page(records: &[LogRecord]) -> BTreeMap<u64, Vec<PageOp>> {
    let mut by_page: BTreeMap<u64, Vec<PageOp>> = BTreeMap::new();
    let mut sorted: Vec<&LogRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.lsn);
    for r in sorted {
        by_page.entry(r.page).or_default().extend(ops_of(r));
    }
    by_page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::segment::{ReadPoint, Truncation};

    fn record(lsn: u64, prev: u64) -> LogRecord {
        let mut r = LogRecord {
            lsn,
            prev_lsn: prev,
            epoch: 1,
            pg: 0,
            page: 4,
            cpl: true,
            ops: vec![wire::PageOp {
                op: Some(page_op::Op::Put(wire::KeyValue {
                    key: b"k".to_vec(),
                    value: format!("v{lsn}").into_bytes(),
                })),
            }],
            crc32: 0,
        };
        r.crc32 = record_crc(&r);
        r
    }

    const KEY: SegmentKey = SegmentKey {
        volume_id: 1,
        pg: 0,
        slot: 3,
    };

    #[test]
    fn rows_round_trip_and_bad_bytes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::new(NodeStore::open(dir.path()).unwrap());
        let meta = SegmentMeta {
            epoch: 1,
            history: vec![Truncation {
                epoch: 1,
                truncated_above: 0,
            }],
            ..Default::default()
        };
        let (r1, r2) = (record(1, 0), record(2, 1));
        let page = page_to_wire(4, &Page::from([(b"a".to_vec(), b"b".to_vec())]));
        store
            .commit(
                KEY,
                SegmentChange {
                    put_records: vec![&r1, &r2],
                    put_pages: vec![&page],
                    meta: Some(&meta),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(store.read_record(KEY, 2).unwrap(), Some(r2.clone()));
        assert_eq!(store.read_page(KEY, 4).unwrap(), Some(page));

        // Flip a byte of record 2's row: reads say Corrupt; loading drops it.
        let raw = store
            .store
            .get_cf(CF_SEGMENTS, &log_key(KEY, 2))
            .unwrap()
            .unwrap();
        let mut bad = raw.clone();
        let last = bad.len() - 6;
        bad[last] ^= 0x55;
        let mut batch = WriteBatch::default();
        batch.put_cf(store.store.cf(CF_SEGMENTS), log_key(KEY, 2), bad);
        store.store.write_synced(batch).unwrap();
        assert!(matches!(
            store.read_record(KEY, 2),
            Err(StoreError::Corrupt { .. })
        ));
        let loaded = store.load_all().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].scl(), 1);
        assert!(loaded[0].holds(2).is_none());
        assert_eq!(
            store.read_record(KEY, 2).unwrap(),
            None,
            "the bad row is gone"
        );
        assert_eq!(loaded[0].meta.readable, ReadPoint::default());
    }

    #[test]
    fn ops_group_by_page_in_lsn_order() {
        let mut a = record(5, 0);
        a.page = 1;
        let b = record(3, 0);
        let by_page = ops_by_page(&[a, b]);
        assert_eq!(by_page.keys().copied().collect::<Vec<_>>(), vec![1, 4]);
    }
}
