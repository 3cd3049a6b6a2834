//! The identity a data directory belongs to. Written at the first start; every later start
//! must present the same cluster name and node id, so a directory copied from another
//! cluster (or another node of this one) is refused with a clear error instead of serving
//! someone else's Raft log.

use serde::{Deserialize, Serialize};

use super::{decode, encode, NodeStore, StoreError, CF_NODE};

const IDENTITY_KEY: &[u8] = b"identity";
/// Bumped when the on-disk layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_name: String,
    pub node_id: u64,
    /// Hash of the node ids, zones and data-group count the cluster was created with.
    pub topology: u64,
    pub format_version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityCheck {
    /// The directory was empty; the identity has now been recorded.
    Fresh,
    /// The directory already belonged to this node of this cluster.
    Existing,
}

impl NodeStore {
    pub fn check_identity(&self, expected: &Identity) -> Result<IdentityCheck, StoreError> {
        match self.get_cf(CF_NODE, IDENTITY_KEY)? {
            None => {
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(self.cf(CF_NODE), IDENTITY_KEY, encode(expected));
                self.write_synced(batch)?;
                Ok(IdentityCheck::Fresh)
            }
            Some(bytes) => {
                let found: Identity = decode("node identity", &bytes)?;
                if found.format_version != expected.format_version {
                    return Err(StoreError::Identity(format!(
                        "data directory {} has on-disk format {} but this build reads format {}",
                        self.path().display(),
                        found.format_version,
                        expected.format_version
                    )));
                }
                if found.cluster_name != expected.cluster_name || found.node_id != expected.node_id
                {
                    return Err(StoreError::Identity(format!(
                        "data directory {} belongs to node {} of cluster '{}', not to node {} of cluster '{}'; \
                         point data_dir at this node's own directory (or an empty one)",
                        self.path().display(),
                        found.node_id,
                        found.cluster_name,
                        expected.node_id,
                        expected.cluster_name
                    )));
                }
                if found.topology != expected.topology {
                    return Err(StoreError::Identity(format!(
                        "data directory {} was created for a cluster with other nodes, zones or data_groups \
                         than this configuration lists; changing membership is not supported yet \
                         (start with the original peers, or an empty data directory)",
                        self.path().display()
                    )));
                }
                Ok(IdentityCheck::Existing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(cluster: &str, node_id: u64) -> Identity {
        Identity {
            cluster_name: cluster.into(),
            node_id,
            topology: 7,
            format_version: FORMAT_VERSION,
        }
    }

    #[test]
    fn first_start_records_and_later_starts_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(
            store.check_identity(&identity("a", 1)).unwrap(),
            IdentityCheck::Fresh
        );
        assert_eq!(
            store.check_identity(&identity("a", 1)).unwrap(),
            IdentityCheck::Existing
        );
    }

    #[test]
    fn another_cluster_or_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        store.check_identity(&identity("a", 1)).unwrap();
        let err = store
            .check_identity(&identity("b", 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("belongs to node 1 of cluster 'a'"), "{err}");
        let err = store
            .check_identity(&identity("a", 2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not to node 2"), "{err}");
        let mut other_topology = identity("a", 1);
        other_topology.topology = 8;
        let err = store
            .check_identity(&other_topology)
            .unwrap_err()
            .to_string();
        assert!(err.contains("other nodes"), "{err}");
    }
}
