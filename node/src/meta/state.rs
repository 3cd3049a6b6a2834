//! The meta group's deterministic state.

use super::{ClusterRecord, MetaCommand, MetaQuery, MetaReply};
use crate::raft::{codec, ApplyContext, ServiceState};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

const CLUSTER_KEY: &[u8] = b"\x01cluster";

pub struct MetaState;

fn load_cluster(state: &dyn StateRead) -> Result<Option<ClusterRecord>, StoreError> {
    match state.get(CLUSTER_KEY)? {
        Some(bytes) => Ok(Some(decode("cluster record", &bytes)?)),
        None => Ok(None),
    }
}

pub fn apply(txn: &mut dyn StateTxn, command: MetaCommand) -> Result<MetaReply, StoreError> {
    Ok(match command {
        MetaCommand::RecordCluster(record) => match load_cluster(txn)? {
            None => {
                txn.put(CLUSTER_KEY, encode(&record));
                MetaReply::Recorded { created: true }
            }
            Some(existing) if existing.directory == record.directory => MetaReply::Recorded { created: false },
            Some(existing) => MetaReply::Conflict(format!(
                "the cluster was created with {} nodes and {} data groups; this node's configuration differs \
                 (changing membership is not supported yet)",
                existing.directory.nodes.len(),
                existing.directory.data_groups
            )),
        },
        MetaCommand::BucketCatalog(cmd) => {
            MetaReply::BucketCatalog(crate::object::catalog::apply(txn, cmd)?)
        }
        MetaCommand::StreamCatalog(cmd) => {
            MetaReply::StreamCatalog(crate::stream::catalog_state::apply(txn, cmd)?)
        }
        MetaCommand::VolumeCatalog(cmd) => {
            MetaReply::VolumeCatalog(crate::quorum::catalog_state::apply(txn, cmd)?)
        }
    })
}

impl ServiceState for MetaState {
    fn apply(
        &self,
        txn: &mut dyn StateTxn,
        command: &[u8],
        _ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError> {
        let reply = match codec::decode::<MetaCommand>(command) {
            Ok(cmd) => apply(txn, cmd)?,
            Err(e) => MetaReply::Rejected(e),
        };
        Ok(codec::encode(&reply))
    }

    fn read(&self, state: &dyn StateRead, query: &[u8]) -> Result<Vec<u8>, StoreError> {
        let reply = match codec::decode::<MetaQuery>(query) {
            Ok(MetaQuery::Cluster) => MetaReply::Cluster(load_cluster(state)?),
            Ok(MetaQuery::BucketCatalog(q)) => {
                MetaReply::BucketCatalog(crate::object::catalog::read(state, q)?)
            }
            Ok(MetaQuery::StreamCatalog(q)) => {
                MetaReply::StreamCatalog(crate::stream::catalog_state::read(state, q)?)
            }
            Ok(MetaQuery::VolumeCatalog(q)) => {
                MetaReply::VolumeCatalog(crate::quorum::catalog_state::read(state, q)?)
            }
            Err(e) => MetaReply::Rejected(e),
        };
        Ok(codec::encode(&reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Directory, NodeInfo};
    use crate::store::MemState;

    fn record(nodes: u64) -> ClusterRecord {
        let nodes = (1..=nodes)
            .map(|id| NodeInfo {
                id,
                zone: format!("az-{id}"),
                grpc_addr: String::new(),
                http_addr: String::new(),
            })
            .collect();
        ClusterRecord {
            directory: Directory::build("c", nodes, 2).unwrap(),
            created_ms: 1,
        }
    }

    #[test]
    fn cluster_is_recorded_once_and_conflicts_are_refused() {
        let mut s = MemState::default();
        assert_eq!(
            apply(&mut s, MetaCommand::RecordCluster(record(3))).unwrap(),
            MetaReply::Recorded { created: true }
        );
        let mut again = record(3);
        again.created_ms = 99;
        assert_eq!(
            apply(&mut s, MetaCommand::RecordCluster(again)).unwrap(),
            MetaReply::Recorded { created: false }
        );
        assert!(matches!(
            apply(&mut s, MetaCommand::RecordCluster(record(4))).unwrap(),
            MetaReply::Conflict(_)
        ));
        assert_eq!(load_cluster(&s).unwrap().unwrap().created_ms, 1);
    }
}
