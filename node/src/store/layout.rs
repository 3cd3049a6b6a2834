//! Where a node keeps its data under `data_dir`:
//!
//! ```text
//! <data_dir>/db/       RocksDB: Raft logs, votes, state machines, snapshots, identity
//! <data_dir>/chunks/   erasure-coded object shards (store::chunks)
//! ```
//!
//! Data directories written before this layout held RocksDB's files directly in
//! `data_dir`; opening one would silently start an empty node beside the old data, so it
//! is refused with an explanation instead.

use std::path::{Path, PathBuf};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    pub db: PathBuf,
    pub chunks: PathBuf,
}

impl DataLayout {
    pub fn of(data_dir: &Path) -> Result<Self, StoreError> {
        if data_dir.join("CURRENT").is_file() && !data_dir.join("db").exists() {
            return Err(StoreError::Identity(format!(
                "{} holds a RocksDB database from an older Stratus data layout (before db/ and \
                 chunks/); move its contents into {}/db or start with an empty directory",
                data_dir.display(),
                data_dir.display()
            )));
        }
        Ok(DataLayout {
            db: data_dir.join("db"),
            chunks: data_dir.join("chunks"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_directories_get_db_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::of(dir.path()).unwrap();
        assert_eq!(layout.db, dir.path().join("db"));
        assert_eq!(layout.chunks, dir.path().join("chunks"));
    }

    #[test]
    fn an_old_flat_layout_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("CURRENT"), "MANIFEST-000001\n").unwrap();
        let err = DataLayout::of(dir.path()).unwrap_err().to_string();
        assert!(err.contains("older Stratus data layout"), "{err}");
    }
}
