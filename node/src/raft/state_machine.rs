//! One group's state machine: applies committed entries through the group's
//! [`ServiceState`] and keeps the host's bookkeeping beside the service's keys.
//!
//! Persistence: each `apply` call writes one atomic RocksDB batch holding the service's
//! writes, the last applied log id and the request-id table, past the write-ahead log
//! (`NodeStore::write_unlogged`): the Raft log already holds every command, so writing its
//! bytes to a second WAL bought nothing. The batch is durable when the `state` family's
//! memtable is flushed (RocksDB's own flushes, or the one each snapshot makes before
//! openraft may purge the log below it). After a crash the state machine holds a prefix of
//! its applies, so it can only be behind its log, never ahead of it, and openraft applies
//! the rest again. Snapshot installs replace the whole group state and are synced.
//!
//! Exactly-once: a proposal whose request id was applied in the last
//! [`REQUEST_ID_RETENTION_MS`] gets the recorded reply instead of being applied again.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership,
};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::log_store::io_error;
use super::{
    ApplyContext, GroupId, NodeId, Proposal, Reply, ServiceState, TypeConfig, SYSTEM_KEY_PREFIX,
};
use crate::store::keys::{group_end, group_key, group_prefix};
use crate::store::state_txn::KeyValue;
use crate::store::{
    decode, encode, GroupStateReader, NodeStore, OverlayTxn, StateRead, StateTxn, StoreError,
};
use crate::store::{CF_SNAPSHOT, CF_STATE};

/// How long a request id is remembered; a retry later than this may apply twice.
pub const REQUEST_ID_RETENTION_MS: u64 = 10 * 60 * 1000;
/// At most this many expired request ids are dropped per applied entry.
const REQUEST_ID_PRUNE_PER_ENTRY: usize = 16;

const KEY_APPLIED: &[u8] = &[SYSTEM_KEY_PREFIX, b'a'];
const KEY_MEMBERSHIP: &[u8] = &[SYSTEM_KEY_PREFIX, b'm'];
const REQUEST_PREFIX: &[u8] = &[SYSTEM_KEY_PREFIX, b'r'];
const REQUEST_BY_TIME_PREFIX: &[u8] = &[SYSTEM_KEY_PREFIX, b't'];

type Membership = StoredMembership<NodeId, openraft::BasicNode>;

#[derive(Clone)]
pub struct GroupStateMachine {
    group: GroupId,
    store: NodeStore,
    service: Arc<dyn ServiceState>,
}

/// A snapshot as stored and as shipped: its metadata and every state key of the group.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    pairs: Vec<KeyValue>,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    io_error(ErrorSubject::StateMachine, verb, e)
}

fn request_key(request_id: u128) -> Vec<u8> {
    let mut key = REQUEST_PREFIX.to_vec();
    key.extend_from_slice(&request_id.to_be_bytes());
    key
}

fn request_time_key(now_ms: u64, request_id: u128) -> Vec<u8> {
    let mut key = REQUEST_BY_TIME_PREFIX.to_vec();
    key.extend_from_slice(&now_ms.to_be_bytes());
    key.extend_from_slice(&request_id.to_be_bytes());
    key
}

/// Apply one proposal with exactly-once semantics by request id.
pub fn apply_proposal(
    service: &dyn ServiceState,
    txn: &mut dyn StateTxn,
    proposal: &Proposal,
    log_index: u64,
) -> Result<Vec<u8>, StoreError> {
    let key = request_key(proposal.request_id);
    if let Some(reply) = txn.get(&key)? {
        return Ok(reply);
    }
    let ctx = ApplyContext {
        log_index,
        now_ms: proposal.now_ms,
    };
    let reply = service.apply(txn, &proposal.command, &ctx)?;
    txn.put(&key, reply.clone());
    txn.put(
        &request_time_key(proposal.now_ms, proposal.request_id),
        Vec::new(),
    );
    prune_request_ids(txn, proposal.now_ms)?;
    Ok(reply)
}

fn prune_request_ids(txn: &mut dyn StateTxn, now_ms: u64) -> Result<(), StoreError> {
    let cutoff = now_ms.saturating_sub(REQUEST_ID_RETENTION_MS);
    for (time_key, _) in txn.scan(REQUEST_BY_TIME_PREFIX, b"", REQUEST_ID_PRUNE_PER_ENTRY)? {
        let rest = &time_key[REQUEST_BY_TIME_PREFIX.len()..];
        let (Some(time), Some(id)) = (rest.get(..8), rest.get(8..24)) else {
            return Err(StoreError::corrupt("request-id index", "short key"));
        };
        let time = u64::from_be_bytes(time.try_into().unwrap_or_default());
        if time >= cutoff {
            break;
        }
        let id = u128::from_be_bytes(id.try_into().unwrap_or_default());
        txn.delete(&time_key);
        txn.delete(&request_key(id));
    }
    Ok(())
}

impl GroupStateMachine {
    pub fn new(store: NodeStore, group: GroupId, service: Arc<dyn ServiceState>) -> Self {
        GroupStateMachine {
            group,
            store,
            service,
        }
    }

    fn read_system<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        match GroupStateReader::new(&self.store, self.group).get(key)? {
            Some(bytes) => Ok(Some(decode(what, &bytes)?)),
            None => Ok(None),
        }
    }

    fn snapshot_id(meta_last: &Option<LogId<NodeId>>) -> String {
        match meta_last {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        }
    }

    fn save_snapshot(&self, body: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_SNAPSHOT), group_prefix(self.group), body);
        self.store.write_synced(batch)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // One consistent view of the group's keys, taken while applies go on.
        let view = self.store.db().snapshot();
        // Everything in the view becomes durable before openraft may purge the log below it
        // (applies skip the WAL; only a memtable flush makes them durable).
        self.store
            .flush_cf(CF_STATE)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_upper_bound(group_end(self.group));
        let iter = view.iterator_cf_opt(
            self.store.cf(CF_STATE),
            opts,
            rocksdb::IteratorMode::From(&group_prefix(self.group), rocksdb::Direction::Forward),
        );
        let mut pairs = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|e| sm_err(ErrorVerb::Read, e))?;
            pairs.push((key[8..].to_vec(), value.to_vec()));
        }
        let find = |k: &[u8]| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let last_applied: Option<LogId<NodeId>> = match find(KEY_APPLIED) {
            Some(bytes) => {
                decode("applied log id", &bytes).map_err(|e| sm_err(ErrorVerb::Read, e))?
            }
            None => None,
        };
        let membership: Membership = match find(KEY_MEMBERSHIP) {
            Some(bytes) => decode("membership", &bytes).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            None => Membership::default(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: Self::snapshot_id(&last_applied),
        };
        let body = encode(&SnapshotBody {
            meta: meta.clone(),
            pairs,
        });
        self.save_snapshot(&body)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(body)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let applied = self
            .read_system::<Option<LogId<NodeId>>>(KEY_APPLIED, "applied log id")
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
            .flatten();
        let membership = self
            .read_system::<Membership>(KEY_MEMBERSHIP, "membership")
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
            .unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let base = GroupStateReader::new(&self.store, self.group);
        let mut txn = OverlayTxn::new(&base);
        let mut replies = Vec::new();
        for entry in entries {
            txn.put(KEY_APPLIED, encode(&Some(entry.log_id)));
            let reply = match &entry.payload {
                EntryPayload::Blank => Reply::default(),
                EntryPayload::Normal(proposal) => Reply(
                    apply_proposal(
                        self.service.as_ref(),
                        &mut txn,
                        proposal,
                        entry.log_id.index,
                    )
                    .map_err(|e| sm_err(ErrorVerb::Write, e))?,
                ),
                EntryPayload::Membership(membership) => {
                    let stored = Membership::new(Some(entry.log_id), membership.clone());
                    txn.put(KEY_MEMBERSHIP, encode(&stored));
                    Reply::default()
                }
            };
            replies.push(reply);
        }
        let batch = txn.into_batch(&self.store, self.group);
        self.store
            .write_unlogged(batch)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let body: SnapshotBody = decode("received snapshot", &bytes).map_err(|e| {
            io_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                e,
            )
        })?;
        // Replace the whole group state, then pin the applied point to the snapshot's.
        let cf = self.store.cf(CF_STATE);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, group_prefix(self.group).to_vec(), group_end(self.group));
        for (key, value) in &body.pairs {
            batch.put_cf(cf, group_key(self.group, key), value);
        }
        batch.put_cf(
            cf,
            group_key(self.group, KEY_APPLIED),
            encode(&meta.last_log_id),
        );
        batch.put_cf(
            cf,
            group_key(self.group, KEY_MEMBERSHIP),
            encode(&meta.last_membership),
        );
        let stored = encode(&SnapshotBody {
            meta: meta.clone(),
            pairs: body.pairs,
        });
        batch.put_cf(self.store.cf(CF_SNAPSHOT), group_prefix(self.group), stored);
        self.store
            .write_synced(batch)
            .map_err(|e| sm_err(ErrorVerb::Write, e))
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some(bytes) = self
            .store
            .get_cf(CF_SNAPSHOT, &group_prefix(self.group))
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        let body: SnapshotBody =
            decode("snapshot", &bytes).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta: body.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Entry};

    use super::*;
    use crate::store::StoreError;

    /// A service that stores each command under the key "k".
    struct Echo;

    impl ServiceState for Echo {
        fn apply(
            &self,
            txn: &mut dyn StateTxn,
            command: &[u8],
            _ctx: &ApplyContext,
        ) -> Result<Vec<u8>, StoreError> {
            txn.put(b"k", command.to_vec());
            Ok(Vec::new())
        }

        fn read(&self, state: &dyn StateRead, _query: &[u8]) -> Result<Vec<u8>, StoreError> {
            Ok(state.get(b"k")?.unwrap_or_default())
        }
    }

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Proposal {
                request_id: u128::from(index),
                now_ms: 1,
                command: vec![index as u8; 64],
            }),
        }
    }

    fn unflushed_state_entries(store: &NodeStore) -> u64 {
        store
            .db()
            .property_int_value_cf(store.cf(CF_STATE), "rocksdb.num-entries-active-mem-table")
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn applies_skip_the_wal_until_a_snapshot_flushes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let mut sm = GroupStateMachine::new(store.clone(), 3, Arc::new(Echo));
        sm.apply(vec![entry(1), entry(2)]).await.unwrap();
        // Applied and readable, but only in the memtable: no WAL record holds them.
        assert_eq!(sm.applied_state().await.unwrap().0.unwrap().index, 2);
        assert!(unflushed_state_entries(&store) > 0);
        let wal_bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(
            wal_bytes < 64,
            "the applies reached the WAL ({wal_bytes} bytes)"
        );
        // A snapshot makes everything it covers durable before the log may be purged.
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id.unwrap().index, 2);
        assert_eq!(unflushed_state_entries(&store), 0);
    }
}
