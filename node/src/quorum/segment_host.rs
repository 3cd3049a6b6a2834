//! All segments of this node: the async shell around the pure core (`segment`) and its
//! persistence (`segment_store`), used by the gRPC service (`api::grpc_segments`) and the
//! background worker (`gossip`).
//!
//! Guarantees: operations on one segment are serialized by a per-segment async mutex
//! (different segments proceed in parallel; RocksDB group-commits their synced writes); every
//! change is persisted in one synced batch before the call returns; store calls run on
//! `spawn_blocking`. A record or page that fails its CRC when read is logged, deleted and
//! never returned: a record makes the SCL fall back before it, a page resets the segment's
//! data (epoch, history and membership stay) so gossip refills it from peers. When a write
//! fails, the segment's in-memory state is reloaded from disk.
//!
//! Not here: talking to peers (`gossip`), the wire format of requests (`api`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stratus_proto::quorum::{LogRecord, MaterializedPage};
use tracing::warn;

use super::pages::{self, Page};
use super::segment::{
    gc_point, MaterializePlan, Membership, Outcome, PageReadPlan, ReadPoint, SegmentError,
    SegmentKey, SegmentState, SegmentStatus, Truncation,
};
use super::segment_store::{
    head_of, ops_by_page, ops_of, page_crc, page_from_wire, page_to_wire, record_crc,
    SegmentChange, SegmentStore,
};
use crate::store::{NodeStore, StoreError};

/// Records materialized per segment per round at most.
const MATERIALIZE_BATCH_RECORDS: usize = 10_000;
/// ReadRecords answers at most this much (and this much when asked for 0).
pub const MAX_READ_RECORDS_BYTES: u64 = 16 << 20;
const DEFAULT_READ_RECORDS_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("segment (volume {}, pg {}, slot {}) is not held by this node", .0.volume_id, .0.pg, .0.slot)]
    NotFound(SegmentKey),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    DataLoss(String),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("segment task failed: {0}")]
    Task(String),
}

pub struct AppendResult {
    pub outcome: Outcome,
    pub epoch: u64,
    pub membership_epoch: u64,
    pub scl: u64,
}

pub struct PageRead {
    pub outcome: Outcome,
    pub read_lsn: u64,
    pub entries: Page,
    pub scl: u64,
}

pub struct RecordsRead {
    pub records: Vec<LogRecord>,
    pub complete: bool,
    pub status: SegmentStatus,
}

/// What CopySegment sends: status, pages at the materialized point, log above it.
pub struct SegmentCopy {
    pub status: SegmentStatus,
    pub pages: Vec<MaterializedPage>,
    pub records: Vec<LogRecord>,
}

type Shared = Arc<tokio::sync::Mutex<SegmentState>>;

pub struct SegmentHost {
    pub cluster_name: String,
    pub node_id: u64,
    store: SegmentStore,
    segments: Mutex<HashMap<SegmentKey, Shared>>,
}

impl SegmentHost {
    pub fn open(
        store: NodeStore,
        cluster_name: String,
        node_id: u64,
    ) -> Result<Arc<SegmentHost>, StoreError> {
        let store = SegmentStore::new(store);
        let segments = store
            .load_all()?
            .into_iter()
            .map(|s| (s.key, Arc::new(tokio::sync::Mutex::new(s))))
            .collect();
        Ok(Arc::new(SegmentHost {
            cluster_name,
            node_id,
            store,
            segments: Mutex::new(segments),
        }))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentKey, Shared>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The segments this node holds.
    pub fn keys(&self) -> Vec<SegmentKey> {
        let mut keys: Vec<SegmentKey> = self.map().keys().copied().collect();
        keys.sort();
        keys
    }

    /// Create the segment (empty, in memory until its first change is written) when it is
    /// missing and `membership` puts this node in its slot.
    fn ensure(&self, key: SegmentKey, membership: Option<&Membership>) -> Result<(), HostError> {
        let mut map = self.map();
        if map.contains_key(&key) {
            return Ok(());
        }
        match membership {
            None => Err(HostError::NotFound(key)),
            Some(m) if m.pg != key.pg => Err(HostError::Invalid(format!(
                "membership of PG {} for a segment of PG {}",
                m.pg, key.pg
            ))),
            Some(m) if !m.names(key.slot, self.node_id) => Err(HostError::Invalid(format!(
                "the membership does not place slot {} of PG {} on node {}",
                key.slot, key.pg, self.node_id
            ))),
            Some(_) => {
                map.insert(
                    key,
                    Arc::new(tokio::sync::Mutex::new(SegmentState::new(key))),
                );
                Ok(())
            }
        }
    }

    /// Run `f` on the segment under its lock, off the async threads.
    async fn with_segment<T, F>(self: &Arc<Self>, key: SegmentKey, f: F) -> Result<T, HostError>
    where
        T: Send + 'static,
        F: FnOnce(&SegmentHost, &mut SegmentState) -> Result<T, HostError> + Send + 'static,
    {
        let shared = self
            .map()
            .get(&key)
            .cloned()
            .ok_or(HostError::NotFound(key))?;
        let mut guard = shared.lock_owned().await;
        let host = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&host, &mut guard);
            if let Err(HostError::Store(e)) = &result {
                // The in-memory state may be ahead of the disk: take the disk's.
                warn!(?key, error = %e, "segment write failed; reloading it from disk");
                if let Ok(Some(fresh)) = host.store.load_one(key) {
                    *guard = fresh;
                }
            }
            result
        })
        .await
        .map_err(|e| HostError::Task(e.to_string()))?
    }

    fn write_meta(&self, s: &SegmentState) -> Result<(), HostError> {
        self.store.commit(
            s.key,
            SegmentChange {
                meta: Some(&s.meta),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// A record the index says is held, CRC-checked; a bad (or vanished) one is dropped.
    fn record_or_drop(
        &self,
        s: &mut SegmentState,
        lsn: u64,
    ) -> Result<Option<LogRecord>, HostError> {
        let problem = match self.store.read_record(s.key, lsn) {
            Ok(Some(r)) => return Ok(Some(r)),
            Ok(None) => "the row is missing".to_string(),
            Err(e @ StoreError::Corrupt { .. }) => e.to_string(),
            Err(e) => return Err(e.into()),
        };
        warn!(key = ?s.key, lsn, problem, "dropping a bad log record; peers will resend it");
        s.remove_records(&[lsn]);
        self.store.commit(
            s.key,
            SegmentChange {
                delete_records: &[lsn],
                meta: Some(&s.meta),
                ..Default::default()
            },
        )?;
        Ok(None)
    }

    /// A page image, CRC-checked (None: empty page). A bad one resets the segment's data.
    fn page_or_reset(&self, s: &mut SegmentState, page: u64) -> Result<Option<Page>, HostError> {
        match self.store.read_page(s.key, page) {
            Ok(p) => Ok(Some(p.map(|p| page_from_wire(&p)).unwrap_or_default())),
            Err(e @ StoreError::Corrupt { .. }) => {
                self.reset(s, &e.to_string())?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn reset(&self, s: &mut SegmentState, problem: &str) -> Result<(), HostError> {
        warn!(key = ?s.key, problem, "a page is corrupt; resetting the segment to refill it from peers");
        s.reset_data();
        self.store.commit(
            s.key,
            SegmentChange {
                clear_data: true,
                meta: Some(&s.meta),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    pub async fn append(
        self: &Arc<Self>,
        key: SegmentKey,
        epoch: u64,
        membership_epoch: u64,
        told: ReadPoint,
        records: Vec<LogRecord>,
    ) -> Result<AppendResult, HostError> {
        if let Some(r) = records.iter().find(|r| record_crc(r) != r.crc32) {
            return Err(HostError::DataLoss(format!(
                "record {} fails its CRC in transit",
                r.lsn
            )));
        }
        self.with_segment(key, move |host, s| {
            let heads: Vec<_> = records.iter().map(head_of).collect();
            let effect = s.append(epoch, membership_epoch, told, &heads)?;
            if effect.outcome == Outcome::Ok && (effect.meta_changed || !effect.write.is_empty()) {
                host.store.commit(
                    key,
                    SegmentChange {
                        put_records: effect.write.iter().map(|&i| &records[i]).collect(),
                        meta: Some(&s.meta),
                        ..Default::default()
                    },
                )?;
            }
            Ok(AppendResult {
                outcome: effect.outcome,
                epoch: s.epoch(),
                membership_epoch: s.membership_epoch(),
                scl: s.scl(),
            })
        })
        .await
    }

    pub async fn fence(
        self: &Arc<Self>,
        key: SegmentKey,
        epoch: u64,
        history: Vec<Truncation>,
        membership: Option<Membership>,
    ) -> Result<(Outcome, SegmentStatus), HostError> {
        self.ensure(key, membership.as_ref())?;
        self.with_segment(key, move |host, s| {
            let (outcome, dropped) = s.fence(epoch, &history, membership.as_ref())?;
            if outcome == Outcome::Ok {
                host.store.commit(
                    key,
                    SegmentChange {
                        delete_records: &dropped,
                        meta: Some(&s.meta),
                        ..Default::default()
                    },
                )?;
            }
            Ok((outcome, s.status()))
        })
        .await
    }

    pub async fn set_membership(
        self: &Arc<Self>,
        key: SegmentKey,
        membership: Membership,
    ) -> Result<(Outcome, u64), HostError> {
        self.ensure(key, Some(&membership))?;
        self.with_segment(key, move |host, s| {
            let before = s.meta.clone();
            let outcome = s.set_membership(&membership)?;
            if s.meta != before || before == Default::default() {
                host.write_meta(s)?;
            }
            Ok((outcome, s.membership_epoch()))
        })
        .await
    }

    pub async fn status(self: &Arc<Self>, key: SegmentKey) -> Result<SegmentStatus, HostError> {
        let shared = self
            .map()
            .get(&key)
            .cloned()
            .ok_or(HostError::NotFound(key))?;
        let s = shared.lock().await;
        Ok(s.status())
    }

    /// The membership and status of a segment, for gossip (None: not held).
    pub async fn gossip_view(
        &self,
        key: SegmentKey,
    ) -> Option<(Option<Membership>, SegmentStatus)> {
        let shared = self.map().get(&key).cloned()?;
        let s = shared.lock().await;
        Some((s.meta.membership.clone(), s.status()))
    }

    pub async fn read_page(
        self: &Arc<Self>,
        key: SegmentKey,
        page: u64,
        read_lsn: u64,
        pg_tail: u64,
        min_read_lsn: u64,
    ) -> Result<PageRead, HostError> {
        self.with_segment(key, move |host, s| {
            'plan: loop {
                let (at, lsns) = match s.plan_page_read(page, read_lsn, pg_tail, min_read_lsn) {
                    PageReadPlan::NotComplete { readable_lsn } => {
                        return Ok(PageRead {
                            outcome: Outcome::NotComplete,
                            read_lsn: readable_lsn,
                            entries: Page::new(),
                            scl: s.scl(),
                        })
                    }
                    PageReadPlan::Serve { read_lsn, lsns, .. } => (read_lsn, lsns),
                };
                let Some(mut image) = host.page_or_reset(s, page)? else {
                    continue 'plan; // reset: the next plan says not complete
                };
                for lsn in lsns {
                    match host.record_or_drop(s, lsn)? {
                        Some(r) => pages::apply(&mut image, ops_of(&r)),
                        None => continue 'plan,
                    }
                }
                return Ok(PageRead {
                    outcome: Outcome::Ok,
                    read_lsn: at,
                    entries: image,
                    scl: s.scl(),
                });
            }
        })
        .await
    }

    pub async fn read_records(
        self: &Arc<Self>,
        key: SegmentKey,
        after_lsn: u64,
        up_to_lsn: u64,
        max_bytes: u64,
    ) -> Result<RecordsRead, HostError> {
        let budget = match max_bytes {
            0 => DEFAULT_READ_RECORDS_BYTES,
            n => n.min(MAX_READ_RECORDS_BYTES),
        };
        self.with_segment(key, move |host, s| {
            let mut records = Vec::new();
            let mut bytes = 0u64;
            let mut complete = true;
            for lsn in s.lsns_in(after_lsn, up_to_lsn) {
                let Some(r) = host.record_or_drop(s, lsn)? else {
                    complete = false;
                    break;
                };
                let size = prost::Message::encoded_len(&r) as u64;
                if !records.is_empty() && bytes + size > budget {
                    complete = false;
                    break;
                }
                bytes += size;
                records.push(r);
            }
            Ok(RecordsRead {
                records,
                complete,
                status: s.status(),
            })
        })
        .await
    }

    /// Everything a new segment needs to continue from this one.
    pub async fn copy_source(self: &Arc<Self>, key: SegmentKey) -> Result<SegmentCopy, HostError> {
        self.with_segment(key, move |host, s| {
            let pages = match host.store.all_pages(key) {
                Ok(p) => p,
                Err(e @ StoreError::Corrupt { .. }) => {
                    host.reset(s, &e.to_string())?;
                    return Err(HostError::DataLoss(format!(
                        "a page of this segment was corrupt: {e}"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let mut records = Vec::new();
            for lsn in s.lsns_in(s.meta.materialized.vdl, 0) {
                match host.record_or_drop(s, lsn)? {
                    Some(r) => records.push(r),
                    None => break,
                }
            }
            Ok(SegmentCopy {
                status: s.status(),
                pages,
                records,
            })
        })
        .await
    }

    /// Gossip: a peer's status (newer epoch and history, readable point).
    pub async fn adopt_peer(
        self: &Arc<Self>,
        key: SegmentKey,
        peer: SegmentStatus,
    ) -> Result<(), HostError> {
        self.with_segment(key, move |host, s| {
            let before = s.meta.clone();
            let dropped = s.adopt_peer(&peer)?;
            if s.meta != before || !dropped.is_empty() {
                host.store.commit(
                    key,
                    SegmentChange {
                        delete_records: &dropped,
                        meta: Some(&s.meta),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Gossip: records a peer sent. Bad ones are skipped. Returns the SCL after.
    pub async fn insert_peer_records(
        self: &Arc<Self>,
        key: SegmentKey,
        records: Vec<LogRecord>,
    ) -> Result<u64, HostError> {
        let records: Vec<LogRecord> = records
            .into_iter()
            .filter(|r| {
                let ok = record_crc(r) == r.crc32;
                if !ok {
                    warn!(
                        ?key,
                        lsn = r.lsn,
                        "a peer sent a record that fails its CRC; skipped"
                    );
                }
                ok
            })
            .collect();
        self.with_segment(key, move |host, s| {
            let before = s.meta.clone();
            let heads: Vec<_> = records.iter().map(head_of).collect();
            let write = s.insert_peer_records(&heads);
            if !write.is_empty() || s.meta != before {
                host.store.commit(
                    key,
                    SegmentChange {
                        put_records: write.iter().map(|&i| &records[i]).collect(),
                        meta: Some(&s.meta),
                        ..Default::default()
                    },
                )?;
            }
            Ok(s.scl())
        })
        .await
    }

    /// Gossip: replace this segment's pages and log with a peer's copy.
    pub async fn install_copy(
        self: &Arc<Self>,
        key: SegmentKey,
        copy: SegmentCopy,
    ) -> Result<(), HostError> {
        if let Some(p) = copy.pages.iter().find(|p| page_crc(p) != p.crc32) {
            return Err(HostError::DataLoss(format!(
                "copied page {} fails its CRC",
                p.page
            )));
        }
        if let Some(r) = copy.records.iter().find(|r| record_crc(r) != r.crc32) {
            return Err(HostError::DataLoss(format!(
                "copied record {} fails its CRC",
                r.lsn
            )));
        }
        self.with_segment(key, move |host, s| {
            let heads: Vec<_> = copy.records.iter().map(head_of).collect();
            s.install_copy(&copy.status, &heads)?;
            host.store.commit(
                key,
                SegmentChange {
                    clear_data: true,
                    put_records: copy
                        .records
                        .iter()
                        .filter(|r| s.holds(r.lsn).is_some_and(|h| h.epoch == r.epoch))
                        .collect(),
                    put_pages: copy.pages.iter().collect(),
                    meta: Some(&s.meta),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
    }

    /// Apply records up to the readable point to page images. Returns whether it moved.
    pub async fn materialize(self: &Arc<Self>, key: SegmentKey) -> Result<bool, HostError> {
        self.with_segment(key, move |host, s| {
            let Some(MaterializePlan { target, lsns }) =
                s.plan_materialize(MATERIALIZE_BATCH_RECORDS)
            else {
                return Ok(false);
            };
            let mut records = Vec::with_capacity(lsns.len());
            for lsn in lsns {
                match host.record_or_drop(s, lsn)? {
                    Some(r) => records.push(r),
                    None => return Ok(false),
                }
            }
            let mut images = Vec::new();
            for (page, ops) in ops_by_page(&records) {
                let Some(mut image) = host.page_or_reset(s, page)? else {
                    return Ok(false);
                };
                pages::apply(&mut image, ops);
                images.push(page_to_wire(page, &image));
            }
            s.set_materialized(target);
            host.store.commit(
                key,
                SegmentChange {
                    put_pages: images.iter().collect(),
                    meta: Some(&s.meta),
                    ..Default::default()
                },
            )?;
            Ok(true)
        })
        .await
    }

    /// Drop log records every write quorum has materialized. `member_sets`: for each member
    /// set of the PG, the six members' materialized points (unknown: 0). Returns how many
    /// records went.
    pub async fn collect_garbage(
        self: &Arc<Self>,
        key: SegmentKey,
        member_sets: Vec<Vec<u64>>,
    ) -> Result<usize, HostError> {
        self.with_segment(key, move |host, s| {
            let own = s.meta.materialized.vdl;
            let point = member_sets
                .iter()
                .map(|set| gc_point(own, set))
                .min()
                .unwrap_or(0);
            let gone = s.collect(point);
            if !gone.is_empty() {
                host.store.commit(
                    key,
                    SegmentChange {
                        delete_records: &gone,
                        ..Default::default()
                    },
                )?;
            }
            Ok(gone.len())
        })
        .await
    }
}
