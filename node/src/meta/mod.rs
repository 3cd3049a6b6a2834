//! The meta group (group 0): the cluster record (nodes, zones, the group directory).
//! Catalogs and the control layer (IAM, VPC, compute) will live here too.

pub mod state;

use serde::{Deserialize, Serialize};

use crate::cluster::Directory;
use crate::object::catalog::{CatalogCommand, CatalogQuery, CatalogResult};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub directory: Directory,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Record the cluster at its first start. Recording the same directory again is a no-op;
    /// a different one is refused (membership changes are a later, explicit operation).
    RecordCluster(ClusterRecord),
    /// The bucket-name catalog (`object::catalog`).
    BucketCatalog(CatalogCommand),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetaQuery {
    Cluster,
    BucketCatalog(CatalogQuery),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Recorded { created: bool },
    Conflict(String),
    Cluster(Option<ClusterRecord>),
    Rejected(String),
    BucketCatalog(CatalogResult),
}
