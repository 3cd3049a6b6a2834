//! The key-value view a service's deterministic state machine reads and writes.
//!
//! Services never touch RocksDB: they get a [`StateTxn`] whose keys are local to their group.
//! [`OverlayTxn`] buffers writes over a base reader (reads see the buffered writes), so a
//! batch of Raft entries is applied as one atomic RocksDB write. [`MemState`] is the same
//! contract over a `BTreeMap`, for unit tests with no disk.

use std::collections::BTreeMap;
use std::ops::Bound;

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::keys::{group_end, group_key, prefix_end, GroupId};
use super::{NodeStore, StoreError, CF_STATE};

pub type KeyValue = (Vec<u8>, Vec<u8>);

pub trait StateRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` pairs whose key starts with `prefix` and is >= `from`, in key order.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError>;
}

pub trait StateTxn: StateRead {
    fn put(&mut self, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, key: &[u8]);
    /// Remove every key in `[start, end)`, in constant time and entry size whatever the
    /// range holds (a RocksDB range tombstone).
    fn delete_range(&mut self, start: &[u8], end: &[u8]);
}

fn scan_start<'a>(prefix: &'a [u8], from: &'a [u8]) -> &'a [u8] {
    if from > prefix {
        from
    } else {
        prefix
    }
}

/// Reads one group's state straight from RocksDB.
pub struct GroupStateReader<'a> {
    store: &'a NodeStore,
    group: GroupId,
}

impl<'a> GroupStateReader<'a> {
    pub fn new(store: &'a NodeStore, group: GroupId) -> Self {
        GroupStateReader { store, group }
    }
}

impl StateRead for GroupStateReader<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_cf(CF_STATE, &group_key(self.group, key))
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        let start = group_key(self.group, scan_start(prefix, from));
        let end = match prefix_end(prefix) {
            Some(end) => group_key(self.group, &end),
            None => group_end(self.group),
        };
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(end);
        let iter = self.store.db().iterator_cf_opt(
            self.store.cf(CF_STATE),
            opts,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            out.push((key[8..].to_vec(), value.to_vec()));
        }
        Ok(out)
    }
}

/// Remove the keys in `[start, end)` (`start < end`) from a map.
fn remove_range<V>(map: &mut BTreeMap<Vec<u8>, V>, start: &[u8], end: &[u8]) {
    let mut from_start = map.split_off(start);
    let mut from_end = from_start.split_off(end);
    map.append(&mut from_end);
}

/// Buffered writes over a base reader; reads see the buffer first.
///
/// Range deletes hide the base's keys in their ranges; point writes made after a range
/// delete (the only ones the buffer keeps inside it: the range delete drops earlier ones)
/// are seen over it. The batch applies the range deletes first, then the point writes.
pub struct OverlayTxn<'a> {
    base: &'a dyn StateRead,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> OverlayTxn<'a> {
    pub fn new(base: &'a dyn StateRead) -> Self {
        OverlayTxn {
            base,
            writes: BTreeMap::new(),
            ranges: Vec::new(),
        }
    }

    /// The buffered writes as a RocksDB batch on `group`'s keys.
    pub fn into_batch(self, store: &NodeStore, group: GroupId) -> WriteBatch {
        let cf = store.cf(CF_STATE);
        let mut batch = WriteBatch::default();
        for (start, end) in self.ranges {
            batch.delete_range_cf(cf, group_key(group, &start), group_key(group, &end));
        }
        for (key, value) in self.writes {
            let key = group_key(group, &key);
            match value {
                Some(value) => batch.put_cf(cf, key, value),
                None => batch.delete_cf(cf, key),
            }
        }
        batch
    }

    /// The end of the range delete that holds `key`, if one does.
    fn range_end_over(&self, key: &[u8]) -> Option<&[u8]> {
        self.ranges
            .iter()
            .filter(|(start, end)| start.as_slice() <= key && key < end.as_slice())
            .map(|(_, end)| end.as_slice())
            .max()
    }
}

impl StateRead for OverlayTxn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None if self.range_end_over(key).is_some() => Ok(None),
            None => self.base.get(key),
        }
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        // Base rows outside the range deletes, from the start on in key order, until there
        // are enough to survive the buffered point deletes; then merge the buffer over them.
        let deleted = self.writes.values().filter(|v| v.is_none()).count();
        let want = limit.saturating_add(deleted);
        let start = scan_start(prefix, from).to_vec();
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut cursor = start.clone();
        while merged.len() < want {
            let rows = self.base.scan(prefix, &cursor, want - merged.len())?;
            let exhausted = rows.len() < want - merged.len();
            // Where to go on: past a range delete met in these rows (the rows after it are
            // read again from its end), else after the last row, unless the base ran out.
            let mut next = None;
            let mut ranged = false;
            for (key, value) in rows {
                if let Some(end) = self.range_end_over(&key) {
                    next = Some(end.to_vec());
                    ranged = true;
                    break;
                }
                let mut after = key.clone();
                after.push(0);
                next = Some(after);
                merged.insert(key, Some(value));
            }
            match next {
                Some(next) if ranged || !exhausted => cursor = next,
                _ => break,
            }
        }
        let upper = match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        for (key, value) in self.writes.range((Bound::Included(start), upper)) {
            merged.insert(key.clone(), value.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .take(limit)
            .collect())
    }
}

impl StateTxn for OverlayTxn<'_> {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.writes.insert(key.to_vec(), Some(value));
    }

    fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), None);
    }

    fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        if start < end {
            remove_range(&mut self.writes, start, end);
            self.ranges.push((start.to_vec(), end.to_vec()));
        }
    }
}

/// An in-memory state for tests of pure service logic.
#[derive(Debug, Default, Clone)]
pub struct MemState {
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl StateRead for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .map
            .range(scan_start(prefix, from).to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl StateTxn for MemState {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.map.insert(key.to_vec(), value);
    }

    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }

    fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        if start < end {
            remove_range(&mut self.map, start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_its_own_writes_and_hides_deletes() {
        let mut base = MemState::default();
        base.put(b"a1", b"x".to_vec());
        base.put(b"a2", b"y".to_vec());
        base.put(b"b1", b"z".to_vec());
        let mut txn = OverlayTxn::new(&base);
        txn.delete(b"a1");
        txn.put(b"a3", b"w".to_vec());
        assert_eq!(txn.get(b"a1").unwrap(), None);
        assert_eq!(txn.get(b"a2").unwrap(), Some(b"y".to_vec()));
        let keys: Vec<_> = txn
            .scan(b"a", b"", 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a2".to_vec(), b"a3".to_vec()]);
        let keys: Vec<_> = txn
            .scan(b"a", b"a3", 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a3".to_vec()]);
    }

    #[test]
    fn range_deletes_hide_base_keys_and_earlier_writes_but_not_later_ones() {
        let mut base = MemState::default();
        for k in ["a1", "a2", "a3", "a4", "a5", "b1"] {
            base.put(k.as_bytes(), k.as_bytes().to_vec());
        }
        let mut txn = OverlayTxn::new(&base);
        txn.put(b"a2", b"early".to_vec());
        txn.delete_range(b"a2", b"a5");
        txn.put(b"a3", b"late".to_vec());
        assert_eq!(txn.get(b"a2").unwrap(), None);
        assert_eq!(txn.get(b"a4").unwrap(), None);
        assert_eq!(txn.get(b"a3").unwrap(), Some(b"late".to_vec()));
        assert_eq!(txn.get(b"a5").unwrap(), Some(b"a5".to_vec()));
        let keys =
            |rows: Vec<KeyValue>| -> Vec<Vec<u8>> { rows.into_iter().map(|(k, _)| k).collect() };
        assert_eq!(
            keys(txn.scan(b"a", b"", 10).unwrap()),
            [b"a1".to_vec(), b"a3".to_vec(), b"a5".to_vec()]
        );
        // A limit smaller than what the range hides still finds the keys past it.
        assert_eq!(keys(txn.scan(b"a", b"a2", 1).unwrap()), [b"a3".to_vec()]);
        assert_eq!(keys(txn.scan(b"a", b"a4", 1).unwrap()), [b"a5".to_vec()]);
        txn.delete(b"a5");
        assert!(txn.scan(b"a", b"a4", 1).unwrap().is_empty());
        // The same operations on MemState and through a RocksDB batch agree.
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let empty = MemState::default();
        let mut seed = OverlayTxn::new(&empty);
        for k in ["a1", "a2", "a3", "a4", "a5", "b1"] {
            seed.put(k.as_bytes(), k.as_bytes().to_vec());
        }
        store.write(seed.into_batch(&store, 4)).unwrap();
        let reader = GroupStateReader::new(&store, 4);
        let mut txn = OverlayTxn::new(&reader);
        txn.put(b"a2", b"early".to_vec());
        txn.delete_range(b"a2", b"a5");
        txn.put(b"a3", b"late".to_vec());
        store.write(txn.into_batch(&store, 4)).unwrap();
        let mut mem = base.clone();
        mem.put(b"a2", b"early".to_vec());
        mem.delete_range(b"a2", b"a5");
        mem.put(b"a3", b"late".to_vec());
        assert_eq!(
            reader.scan(b"", b"", 100).unwrap(),
            mem.scan(b"", b"", 100).unwrap()
        );
    }

    #[test]
    fn rocksdb_reader_is_scoped_to_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for group in [1u64, 2] {
            let base = MemState::default();
            let mut txn = OverlayTxn::new(&base);
            txn.put(b"k1", format!("g{group}").into_bytes());
            txn.put(b"k2", b"v".to_vec());
            store.write(txn.into_batch(&store, group)).unwrap();
        }
        let reader = GroupStateReader::new(&store, 1);
        assert_eq!(reader.get(b"k1").unwrap(), Some(b"g1".to_vec()));
        let rows = reader.scan(b"k", b"", 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(reader.scan(b"k", b"k2", 10).unwrap().len(), 1);
        assert_eq!(reader.scan(b"", b"", 1).unwrap().len(), 1);
    }
}
