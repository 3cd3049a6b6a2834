//! All segments of this node (skeleton: filled in by the segment work).

use std::sync::Arc;

use crate::store::{NodeStore, StoreError};

pub struct SegmentHost {
    pub cluster_name: String,
    pub node_id: u64,
    #[allow(dead_code)]
    store: NodeStore,
}

impl SegmentHost {
    pub fn open(
        store: NodeStore,
        cluster_name: String,
        node_id: u64,
    ) -> Result<Arc<SegmentHost>, StoreError> {
        Ok(Arc::new(SegmentHost {
            cluster_name,
            node_id,
            store,
        }))
    }
}
