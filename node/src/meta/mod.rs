//! The meta group (group 0): the cluster record (nodes, zones, the group directory).
//! The bucket, stream and volume catalogs live here too; the control layer (IAM, VPC,
//! compute) will.

pub mod state;

use serde::{Deserialize, Serialize};

use crate::cluster::Directory;
use crate::object::catalog::{CatalogCommand, CatalogQuery, CatalogResult};
use crate::quorum::catalog_state::{VolumeCatalogCommand, VolumeCatalogQuery, VolumeCatalogResult};
use crate::stream::catalog_state::{StreamCatalogCommand, StreamCatalogQuery, StreamCatalogResult};

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
    /// The stream catalog (`stream::catalog_state`).
    StreamCatalog(StreamCatalogCommand),
    /// The volume catalog of quorum storage (`quorum::catalog_state`).
    VolumeCatalog(VolumeCatalogCommand),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetaQuery {
    Cluster,
    BucketCatalog(CatalogQuery),
    StreamCatalog(StreamCatalogQuery),
    VolumeCatalog(VolumeCatalogQuery),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Recorded { created: bool },
    Conflict(String),
    Cluster(Option<ClusterRecord>),
    Rejected(String),
    BucketCatalog(CatalogResult),
    StreamCatalog(StreamCatalogResult),
    VolumeCatalog(VolumeCatalogResult),
}
