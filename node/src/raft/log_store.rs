//! One group's Raft log and vote in the node's RocksDB.
//!
//! Durability rule (the pitfall in openraft's RocksDB example): `append` reports entries
//! flushed only after the write batch is synced to the WAL, and votes, truncations and
//! purges are synced before they return. Losing an acknowledged log entry on one node can
//! lose a committed write cluster-wide, so nothing here is written lazily.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::{GroupId, NodeId, TypeConfig};
use crate::store::keys::{group_end, group_key, log_index_of, log_key};
use crate::store::{decode, encode, NodeStore, StoreError, CF_RAFT_LOG, CF_RAFT_STATE};

type Entry = openraft::Entry<TypeConfig>;

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"last_purged";
/// Encoded bytes of log entries one replication message carries, at most (one entry always
/// goes, whatever its size). openraft asks for up to 300 entries per AppendEntries and
/// gives the call one heartbeat interval; 300 entries of a few hundred KiB each (a
/// PutRecords shard command) could never arrive in time, so the leader resent them forever
/// while its followers fell further behind and elections followed. Bounded by bytes, a
/// lagging follower catches up a bounded message at a time.
pub const REPLICATION_BATCH_BYTES: usize = 512 * 1024;

#[derive(Clone)]
pub struct GroupLogStore {
    group: GroupId,
    store: NodeStore,
}

pub(crate) fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::error(e.to_string())).into()
}

fn read_err(e: StoreError) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: StoreError) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl GroupLogStore {
    pub fn new(store: NodeStore, group: GroupId) -> Self {
        GroupLogStore { group, store }
    }

    fn meta_key(&self, name: &[u8]) -> Vec<u8> {
        group_key(self.group, name)
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.store.get_cf(CF_RAFT_STATE, &self.meta_key(name))? {
            Some(bytes) => Ok(Some(decode(
                std::str::from_utf8(name).unwrap_or("raft state"),
                &bytes,
            )?)),
            None => Ok(None),
        }
    }

    fn put_meta_synced<T: serde::Serialize>(
        &self,
        name: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(CF_RAFT_STATE),
            self.meta_key(name),
            encode(value),
        );
        self.store.write_synced(batch)
    }

    fn last_entry(&self) -> Result<Option<Entry>, StoreError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(self.group, 0).to_vec());
        let mut iter = self.store.db().iterator_cf_opt(
            self.store.cf(CF_RAFT_LOG),
            opts,
            IteratorMode::From(&log_key(self.group, u64::MAX), Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (_, value) = item?;
                Ok(Some(decode("raft log entry", &value)?))
            }
            None => Ok(None),
        }
    }

    /// Entries from `start` to `end` (exclusive; None: the last), stopping after the entry
    /// that brings their encoded size to `max_bytes` (at least one entry when there is one).
    fn read_range(
        &self,
        start: u64,
        end: Option<u64>,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(match end {
            Some(end) => log_key(self.group, end).to_vec(),
            None => group_end(self.group),
        });
        let iter = self.store.db().iterator_cf_opt(
            self.store.cf(CF_RAFT_LOG),
            opts,
            IteratorMode::From(&log_key(self.group, start), Direction::Forward),
        );
        let mut entries = Vec::new();
        let mut expected = start;
        let mut bytes = 0usize;
        for item in iter {
            if bytes >= max_bytes {
                break;
            }
            let (key, value) = item?;
            bytes = bytes.saturating_add(value.len());
            let index = log_index_of(&key)
                .ok_or_else(|| StoreError::corrupt("raft log key", "short key"))?;
            if index != expected && !entries.is_empty() {
                return Err(StoreError::corrupt(
                    "raft log",
                    format!(
                        "group {} has a hole: expected index {expected}, found {index}",
                        self.group
                    ),
                ));
            }
            expected = index + 1;
            entries.push(decode("raft log entry", &value)?);
        }
        Ok(entries)
    }

    fn delete_from(&self, start: u64, end: Option<u64>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let end_key = match end {
            Some(end) => log_key(self.group, end).to_vec(),
            None => group_end(self.group),
        };
        batch.delete_range_cf(
            self.store.cf(CF_RAFT_LOG),
            log_key(self.group, start).to_vec(),
            end_key,
        );
        self.store.write_synced(batch)
    }
}

impl RaftLogReader<TypeConfig> for GroupLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.checked_add(1),
            Bound::Excluded(x) => Some(*x),
            Bound::Unbounded => None,
        };
        self.read_range(start, end, usize::MAX).map_err(read_err)
    }

    /// What replication sends: a prefix of `[start, end)` of at most
    /// [`REPLICATION_BATCH_BYTES`] (never empty for a non-empty range).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        self.read_range(start, Some(end), REPLICATION_BATCH_BYTES)
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for GroupLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(KEY_PURGED).map_err(read_err)?;
        let last = self.last_entry().map_err(read_err)?.map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_meta_synced(KEY_VOTE, vote)
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_VOTE)
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not synced: after a crash a smaller committed index is safe, only slower to serve.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(CF_RAFT_STATE),
            self.meta_key(KEY_COMMITTED),
            encode(&committed),
        );
        self.store.write(batch).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.store.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, log_key(self.group, entry.log_id.index), encode(&entry));
        }
        // Synced before the callback: the entries are on disk when Raft counts them.
        let result = self.store.write_synced(batch);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                callback.log_io_completed(Err(io));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.delete_from(log_id.index, None).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point first: a crash in between leaves extra entries, never a hole.
        self.put_meta_synced(KEY_PURGED, &log_id)
            .map_err(write_err)?;
        self.delete_from(0, Some(log_id.index + 1))
            .map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;
    use crate::raft::Proposal;

    fn entry(index: u64, command_bytes: usize) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Proposal {
                request_id: u128::from(index),
                now_ms: 0,
                command: vec![7; command_bytes],
            }),
        }
    }

    #[tokio::test]
    async fn replication_reads_are_bounded_by_bytes_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let mut log = GroupLogStore::new(store.clone(), 3);
        let cf = store.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        // 40 entries of 128 KiB (a PutRecords shard command's size), then one of 2 MiB.
        for i in 1..=40 {
            batch.put_cf(cf, log_key(3, i), encode(&entry(i, 128 * 1024)));
        }
        batch.put_cf(cf, log_key(3, 41), encode(&entry(41, 2 * 1024 * 1024)));
        store.write_synced(batch).unwrap();

        let first = log.limited_get_log_entries(1, 42).await.unwrap();
        // 512 KiB of 128 KiB entries: the fourth reaches the budget, so four go.
        assert_eq!(first.len(), 4);
        assert_eq!(first[0].log_id.index, 1);
        let oversized = log.limited_get_log_entries(41, 42).await.unwrap();
        assert_eq!(
            oversized.len(),
            1,
            "an entry over the budget still goes alone"
        );
        // Reads that are not replication still get the whole range.
        assert_eq!(log.try_get_log_entries(1..42).await.unwrap().len(), 41);
    }
}
