//! In-memory segments and catalog for unit tests: just enough of the node side's contract
//! (epochs, fencing, voiding by history, chains, pages at a read point) to drive the writer,
//! recovery and readers, with per-transport faults (a node down or slow).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::catalog::{CatalogService, PgMembership, SegmentPlace, Truncation, Volume};
use super::record::{LogRecord, PageOp};
use super::recovery::is_void;
use super::transport::{
    AppendArgs, AppendReply, FenceReply, Outcome, PageReply, RecordsReply, SegmentId,
    SegmentStatus, SegmentTransport, TransportError,
};
use super::{Epoch, Lsn, QuorumError};

#[derive(Debug, Default, Clone)]
pub struct FakeSegment {
    pub epoch: Epoch,
    pub history: Vec<Truncation>,
    pub records: BTreeMap<Lsn, LogRecord>,
    pub known_vdl: Lsn,
    pub appends: usize,
}

impl FakeSegment {
    fn scl(&self) -> Lsn {
        let mut complete: HashMap<Lsn, bool> = HashMap::new();
        let mut scl = 0;
        for (lsn, r) in &self.records {
            let ok = r.prev_lsn == 0 || complete.get(&r.prev_lsn).copied().unwrap_or(false);
            complete.insert(*lsn, ok);
            if ok {
                scl = *lsn;
            } else {
                break;
            }
        }
        scl
    }

    fn status(&self) -> SegmentStatus {
        SegmentStatus {
            epoch: self.epoch,
            scl: self.scl(),
            max_lsn: self.records.keys().next_back().copied().unwrap_or(0),
            known_vdl: self.known_vdl,
            readable_lsn: self.known_vdl,
            history: self.history.clone(),
            ..Default::default()
        }
    }

    fn page_at(&self, page: u64, read_lsn: Lsn) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut map: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for r in self.records.range(..=read_lsn).map(|(_, r)| r) {
            if r.page != page {
                continue;
            }
            for op in &r.ops {
                match op {
                    PageOp::Put { key, value } => {
                        map.insert(key.clone(), value.clone());
                    }
                    PageOp::Delete { key } => {
                        map.remove(key);
                    }
                }
            }
        }
        map.into_iter().collect()
    }
}

/// A volume's catalog and its segments (node id, segment id) → state.
#[derive(Debug)]
pub struct FakeCluster {
    pub volume: Mutex<Volume>,
    pub segments: Mutex<HashMap<(u64, SegmentId), FakeSegment>>,
}

impl FakeCluster {
    /// A volume of `pg_count` PGs, each with slot i on node i + 1 (six nodes).
    pub fn new(pg_count: u32, pages_per_pg: u32) -> Arc<Self> {
        let zones = ["az-a", "az-b", "az-c"];
        let pgs = (0..pg_count)
            .map(|pg| PgMembership {
                pg,
                membership_epoch: 1,
                members: (0..6)
                    .map(|slot| SegmentPlace {
                        slot,
                        node_id: u64::from(slot) + 1,
                        zone: zones[slot as usize % 3].to_string(),
                        grpc_addr: format!("node-{}", slot + 1),
                    })
                    .collect(),
                next_members: Vec::new(),
            })
            .collect();
        Arc::new(FakeCluster {
            volume: Mutex::new(Volume {
                name: "v".into(),
                volume_id: 9,
                pg_count,
                pages_per_pg,
                epoch: 0,
                history: Vec::new(),
                pgs,
                created_ms: 0,
            }),
            segments: Mutex::new(HashMap::new()),
        })
    }

    pub fn segment(&self, node: u64, pg: u32) -> Option<FakeSegment> {
        let segments = self.segments.lock().unwrap();
        segments
            .iter()
            .find(|((n, id), _)| *n == node && id.pg == pg)
            .map(|(_, s)| s.clone())
    }

    pub fn with_segment(&self, node: u64, pg: u32, f: impl FnOnce(&mut FakeSegment)) {
        let mut segments = self.segments.lock().unwrap();
        if let Some((_, s)) = segments
            .iter_mut()
            .find(|((n, id), _)| *n == node && id.pg == pg)
        {
            f(s);
        }
    }

    pub fn wipe(&self, node: u64, pg: u32) {
        self.segments
            .lock()
            .unwrap()
            .retain(|(n, id), _| !(*n == node && id.pg == pg));
    }

    pub fn catalog(self: &Arc<Self>) -> Arc<FakeCatalog> {
        Arc::new(FakeCatalog(self.clone()))
    }

    pub fn transport(self: &Arc<Self>) -> Arc<FakeTransport> {
        Arc::new(FakeTransport {
            cluster: self.clone(),
            faults: Mutex::new(HashMap::new()),
        })
    }
}

#[derive(Debug)]
pub struct FakeCatalog(Arc<FakeCluster>);

#[async_trait]
impl CatalogService for FakeCatalog {
    async fn describe(&self, _name: &str) -> Result<Volume, QuorumError> {
        Ok(self.0.volume.lock().unwrap().clone())
    }

    async fn begin_recovery(&self, _name: &str) -> Result<Volume, QuorumError> {
        let mut v = self.0.volume.lock().unwrap();
        v.epoch += 1;
        Ok(v.clone())
    }

    async fn complete_recovery(
        &self,
        _name: &str,
        epoch: Epoch,
        truncated_above: Lsn,
    ) -> Result<Volume, QuorumError> {
        let mut v = self.0.volume.lock().unwrap();
        if v.epoch != epoch {
            return Err(QuorumError::Fenced {
                epoch,
                newer_epoch: v.epoch,
                outcome_unknown: false,
            });
        }
        v.history.push(Truncation {
            epoch,
            truncated_above,
        });
        Ok(v.clone())
    }

    fn cluster_name(&self) -> &str {
        "fake"
    }
}

/// What a transport does to calls to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Calls fail at once, nothing delivered.
    Down,
    /// Calls are delivered after this delay.
    Slow(Duration),
}

#[derive(Debug)]
pub struct FakeTransport {
    cluster: Arc<FakeCluster>,
    faults: Mutex<HashMap<u64, Fault>>,
}

impl FakeTransport {
    pub fn set_fault(&self, node: u64, fault: Option<Fault>) {
        let mut faults = self.faults.lock().unwrap();
        match fault {
            Some(f) => faults.insert(node, f),
            None => faults.remove(&node),
        };
    }

    async fn enter(&self, place: &SegmentPlace) -> Result<(), TransportError> {
        let fault = self.faults.lock().unwrap().get(&place.node_id).copied();
        match fault {
            Some(Fault::Down) => Err(TransportError::Unreachable(format!(
                "node {} is down",
                place.node_id
            ))),
            Some(Fault::Slow(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl SegmentTransport for FakeTransport {
    async fn append(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        args: AppendArgs,
    ) -> Result<AppendReply, TransportError> {
        self.enter(place).await?;
        let mut segments = self.cluster.segments.lock().unwrap();
        let Some(s) = segments.get_mut(&(place.node_id, segment)) else {
            return Err(TransportError::NotFound(format!("{segment:?}")));
        };
        let reply = |outcome, s: &FakeSegment| AppendReply {
            outcome,
            epoch: s.epoch,
            membership_epoch: 1,
            scl: s.scl(),
        };
        if args.epoch < s.epoch {
            return Ok(reply(Outcome::Fenced, s));
        }
        if args.epoch > s.epoch {
            return Ok(reply(Outcome::NeedsFence, s));
        }
        for r in args.records {
            if !is_void(r.epoch, r.lsn, &s.history) {
                s.records.entry(r.lsn).or_insert_with(|| (*r).clone());
            }
        }
        s.known_vdl = s.known_vdl.max(args.vdl);
        s.appends += 1;
        Ok(reply(Outcome::Ok, s))
    }

    async fn fence(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        epoch: Epoch,
        history: &[Truncation],
        _membership: &PgMembership,
    ) -> Result<FenceReply, TransportError> {
        self.enter(place).await?;
        let mut segments = self.cluster.segments.lock().unwrap();
        let s = segments.entry((place.node_id, segment)).or_default();
        if epoch < s.epoch {
            return Ok(FenceReply {
                outcome: Outcome::Fenced,
                epoch: s.epoch,
                status: s.status(),
            });
        }
        s.epoch = epoch;
        if history.len() >= s.history.len() {
            s.history = history.to_vec();
        }
        let history = s.history.clone();
        s.records.retain(|l, r| !is_void(r.epoch, *l, &history));
        Ok(FenceReply {
            outcome: Outcome::Ok,
            epoch,
            status: s.status(),
        })
    }

    async fn status(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
    ) -> Result<SegmentStatus, TransportError> {
        self.enter(place).await?;
        let segments = self.cluster.segments.lock().unwrap();
        segments
            .get(&(place.node_id, segment))
            .map(FakeSegment::status)
            .ok_or_else(|| TransportError::NotFound(format!("{segment:?}")))
    }

    async fn read_records(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        after_lsn: Lsn,
        up_to_lsn: Lsn,
        _max_bytes: u64,
    ) -> Result<RecordsReply, TransportError> {
        self.enter(place).await?;
        let segments = self.cluster.segments.lock().unwrap();
        let s = segments
            .get(&(place.node_id, segment))
            .ok_or_else(|| TransportError::NotFound(format!("{segment:?}")))?;
        let upper = if up_to_lsn == 0 { Lsn::MAX } else { up_to_lsn };
        Ok(RecordsReply {
            records: s
                .records
                .range(after_lsn + 1..=upper.max(after_lsn + 1))
                .filter(|(l, _)| **l <= upper)
                .map(|(_, r)| r.clone())
                .collect(),
            corrupt: 0,
            complete: true,
            status: s.status(),
        })
    }

    async fn read_page(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        page: u64,
        read_lsn: Lsn,
        pg_tail: Lsn,
        min_read_lsn: Lsn,
    ) -> Result<PageReply, TransportError> {
        self.enter(place).await?;
        let segments = self.cluster.segments.lock().unwrap();
        let s = segments
            .get(&(place.node_id, segment))
            .ok_or_else(|| TransportError::NotFound(format!("{segment:?}")))?;
        let not_complete = PageReply {
            outcome: Outcome::NotComplete,
            read_lsn: 0,
            entries: Vec::new(),
            scl: s.scl(),
        };
        let point = if read_lsn == 0 {
            if s.known_vdl < min_read_lsn {
                return Ok(not_complete);
            }
            s.known_vdl
        } else {
            if s.scl() < pg_tail {
                return Ok(not_complete);
            }
            read_lsn
        };
        Ok(PageReply {
            outcome: Outcome::Ok,
            read_lsn: point,
            entries: s.page_at(page, point),
            scl: s.scl(),
        })
    }
}
