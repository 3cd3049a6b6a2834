//! The page-based key-value database on one volume (docs/quorum-storage.md, "The
//! key-value database"): [`Db`] writes and reads through a [`VolumeWriter`], [`DbReader`]
//! reads through a [`VolumeReader`].
//!
//! `put` and `del` are one record each; `mput` is one mini-transaction with one record per
//! page it touches (the last a CPL), so it becomes visible whole or not at all. A commit
//! that fails may still be applied later by recovery (see [`QuorumError::is_outcome_unknown`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::catalog::{CatalogService, VolumeCatalog, VolumeSpec};
use super::page::{check_key, check_value, lookup, Geometry, MAX_MPUT_KEYS};
use super::reader::VolumeReader;
use super::record::PageOp;
use super::transport::GrpcTransport;
use super::writer::{MiniTransaction, VolumeWriter, WriterOptions};
use super::{Lsn, QuorumError};
use crate::ClientConfig;

/// The key-value database, with this process as the volume's writer.
#[derive(Debug)]
pub struct Db {
    writer: VolumeWriter,
    geometry: Geometry,
}

impl Db {
    /// Opens (recovers) `volume`, creating it with the default layout when missing.
    pub async fn open(
        config: ClientConfig,
        volume: &str,
        options: WriterOptions,
    ) -> Result<Db, QuorumError> {
        let catalog = VolumeCatalog::connect(config).await?;
        catalog.ensure(volume, VolumeSpec::default()).await?;
        let transport = Arc::new(GrpcTransport::new(
            catalog.cluster_name(),
            options.segment_call_timeout,
        ));
        let writer = VolumeWriter::open_with(Arc::new(catalog), transport, volume, options).await?;
        Ok(Db::from_writer(writer))
    }

    /// A database over an open writer.
    pub fn from_writer(writer: VolumeWriter) -> Db {
        let geometry = Geometry {
            pg_count: writer.pg_count(),
            pages_per_pg: writer.pages_per_pg(),
        };
        Db { writer, geometry }
    }

    pub fn writer(&self) -> &VolumeWriter {
        &self.writer
    }

    /// Stores `value` under `key`; returns the commit's LSN.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<Lsn, QuorumError> {
        check_key(key)?;
        check_value(value)?;
        let mut mtx = MiniTransaction::new();
        mtx.push(
            self.geometry.page_of(key),
            vec![PageOp::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            }],
        );
        self.writer.commit(mtx).await
    }

    /// Removes `key` (whether or not it exists); returns the commit's LSN.
    pub async fn del(&self, key: &[u8]) -> Result<Lsn, QuorumError> {
        check_key(key)?;
        let mut mtx = MiniTransaction::new();
        mtx.push(
            self.geometry.page_of(key),
            vec![PageOp::Delete { key: key.to_vec() }],
        );
        self.writer.commit(mtx).await
    }

    /// Stores every pair at once: all visible or none. Keys must be distinct, at most 100.
    pub async fn mput(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Lsn, QuorumError> {
        let mtx = mput_transaction(self.geometry, pairs)?;
        self.writer.commit(mtx).await
    }

    /// The value of `key` as of the writer's VDL (every acknowledged commit is visible).
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, QuorumError> {
        check_key(key)?;
        let entries = self.writer.read_page(self.geometry.page_of(key)).await?;
        Ok(lookup(&entries, key))
    }

    /// Closes the writer (segments learn the final VDL).
    pub async fn close(self) -> Result<(), QuorumError> {
        self.writer.close().await
    }
}

/// The mini-transaction of an `mput`: one record per page touched, pages in order.
pub fn mput_transaction(
    geometry: Geometry,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<MiniTransaction, QuorumError> {
    if pairs.is_empty() || pairs.len() > MAX_MPUT_KEYS {
        return Err(QuorumError::InvalidArgument(format!(
            "mput takes 1 to {MAX_MPUT_KEYS} keys, not {}",
            pairs.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut pages: BTreeMap<u64, Vec<PageOp>> = BTreeMap::new();
    for (key, value) in pairs {
        check_key(key)?;
        check_value(value)?;
        if !seen.insert(key.as_slice()) {
            return Err(QuorumError::InvalidArgument(format!(
                "mput names key {:?} twice",
                String::from_utf8_lossy(key)
            )));
        }
        pages
            .entry(geometry.page_of(key))
            .or_default()
            .push(PageOp::Put {
                key: key.clone(),
                value: value.clone(),
            });
    }
    let mut mtx = MiniTransaction::new();
    for (page, ops) in pages {
        mtx.push(page, ops);
    }
    Ok(mtx)
}

/// Reads of the key-value database through a read replica (no fencing).
#[derive(Debug)]
pub struct DbReader {
    reader: VolumeReader,
    geometry: Geometry,
}

impl DbReader {
    pub async fn open(
        config: ClientConfig,
        volume: &str,
        read_timeout: Duration,
    ) -> Result<DbReader, QuorumError> {
        Ok(DbReader::from_reader(
            VolumeReader::open(config, volume, read_timeout).await?,
        ))
    }

    pub fn from_reader(reader: VolumeReader) -> DbReader {
        let volume = reader.volume();
        DbReader {
            reader,
            geometry: Geometry {
                pg_count: volume.pg_count,
                pages_per_pg: volume.pages_per_pg,
            },
        }
    }

    pub fn reader(&self) -> &VolumeReader {
        &self.reader
    }

    /// The value of `key` at the replica's read point.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, QuorumError> {
        check_key(key)?;
        let (_, entries) = self.reader.read_page(self.geometry.page_of(key)).await?;
        Ok(lookup(&entries, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry {
        pg_count: 4,
        pages_per_pg: 8,
    };

    fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn mput_is_one_record_per_page_touched() {
        let pairs: Vec<_> = (0..40).map(|i| kv(&format!("k{i}"), "v")).collect();
        let mtx = mput_transaction(G, &pairs).unwrap();
        let pages: HashSet<u64> = pairs.iter().map(|(k, _)| G.page_of(k)).collect();
        assert_eq!(mtx.len(), pages.len());
        let ops: usize = mtx_pages(&mtx).iter().map(|(_, ops)| ops.len()).sum();
        assert_eq!(ops, 40);
        for (page, ops) in mtx_pages(&mtx) {
            for op in ops {
                let PageOp::Put { key, .. } = op else {
                    panic!("not a put")
                };
                assert_eq!(G.page_of(&key), page);
            }
        }
    }

    fn mtx_pages(mtx: &MiniTransaction) -> Vec<(u64, Vec<PageOp>)> {
        mtx.records().to_vec()
    }

    #[test]
    fn mput_limits() {
        assert!(matches!(
            mput_transaction(G, &[]),
            Err(QuorumError::InvalidArgument(_))
        ));
        let many: Vec<_> = (0..101).map(|i| kv(&format!("k{i}"), "v")).collect();
        assert!(matches!(
            mput_transaction(G, &many),
            Err(QuorumError::InvalidArgument(_))
        ));
        assert!(mput_transaction(G, &many[..100]).is_ok());
        assert!(matches!(
            mput_transaction(G, &[kv("a", "1"), kv("a", "2")]),
            Err(QuorumError::InvalidArgument(_))
        ));
        assert!(matches!(
            mput_transaction(G, &[kv("", "1")]),
            Err(QuorumError::InvalidKey(_))
        ));
        assert!(matches!(
            mput_transaction(G, &[(b"k".to_vec(), vec![0; 65537])]),
            Err(QuorumError::ValueTooLarge { .. })
        ));
    }
}
