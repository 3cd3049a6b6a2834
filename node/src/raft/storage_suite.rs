//! openraft's own storage conformance suite, run against the RocksDB log store and state
//! machine (the contract every Raft guarantee rests on).

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

use super::log_store::GroupLogStore;
use super::state_machine::GroupStateMachine;
use super::{NodeId, TypeConfig};
use crate::data_group::DataGroupState;
use crate::store::NodeStore;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, GroupLogStore, GroupStateMachine, tempfile::TempDir>
    for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, GroupLogStore, GroupStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = NodeStore::open(dir.path()).expect("open store");
        // A non-zero group id, with another group's keys beside it, checks the prefixing.
        let group = 7;
        let log = GroupLogStore::new(store.clone(), group);
        let sm = GroupStateMachine::new(store, group, Arc::new(DataGroupState::unobserved(group)));
        Ok((dir, log, sm))
    }
}

#[test]
fn rocksdb_storage_passes_the_openraft_suite() {
    Suite::test_all(RocksBuilder).expect("openraft storage suite");
}
