//! Filled in by the quorum storage work (docs/quorum-storage.md).
