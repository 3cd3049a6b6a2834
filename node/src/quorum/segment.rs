//! The state of one segment and every decision about it, with no I/O (docs/quorum-storage.md,
//! "Segments"): fencing by epoch, the truncation history and the void rule, the backlink
//! chain and its complete point (SCL), the readable point, what to materialize and what the
//! log may lose (GC).
//!
//! Guarantees: a record is accepted only when its epoch is at or below the segment's epoch
//! and the known history does not void it; the SCL only covers an unbroken chain from the
//! materialized base; the readable point is always a piggybacked VDL whose `pg_tail` the
//! chain covers (or the materialized point). The shell (`segment_host`) persists what these
//! methods change; when a write fails it reloads the state from disk.
//!
//! Not here: record bytes and CRCs (`segment_store`), page images (`pages`), peers
//! (`gossip`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// (volume, protection group, slot): one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentKey {
    pub volume_id: u64,
    pub pg: u32,
    pub slot: u32,
}

/// Records of epochs below `epoch` above `truncated_above` are void.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    pub epoch: u64,
    pub truncated_above: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub slot: u32,
    pub node_id: u64,
    pub zone: String,
    pub grpc_addr: String,
}

/// A protection group's six members (and, during a replacement, the next six).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub pg: u32,
    pub membership_epoch: u64,
    pub members: Vec<Place>,
    pub next_members: Vec<Place>,
}

/// Segments per protection group.
pub const SEGMENTS_PER_PG: usize = 6;

/// The largest LSN a record may carry: far beyond any real volume, and low enough that
/// `lsn + 1` never overflows anywhere.
pub const MAX_LSN: u64 = 1 << 62;

impl Membership {
    /// A membership from outside (a writer's Fence, the repair worker) must have six
    /// members in slot order on real nodes, and a next set that is empty or six the same.
    pub fn validate(&self) -> Result<(), String> {
        if self.membership_epoch == 0 {
            return Err("membership epoch 0 (epochs start at 1)".into());
        }
        let check = |set: &[Place], which: &str| -> Result<(), String> {
            if set.len() != SEGMENTS_PER_PG {
                return Err(format!(
                    "{which} has {} members; a protection group has {SEGMENTS_PER_PG}",
                    set.len()
                ));
            }
            for (i, place) in set.iter().enumerate() {
                if place.slot as usize != i {
                    return Err(format!("{which}[{i}] is slot {}; expected {i}", place.slot));
                }
                if place.node_id == 0 {
                    return Err(format!("{which}[{i}] names node 0"));
                }
                if place.grpc_addr.is_empty() {
                    return Err(format!("{which}[{i}] has no gRPC address"));
                }
            }
            Ok(())
        };
        check(&self.members, "members")?;
        if !self.next_members.is_empty() {
            check(&self.next_members, "next_members")?;
        }
        Ok(())
    }

    /// Does either set put `node_id` in `slot`?
    pub fn names(&self, slot: u32, node_id: u64) -> bool {
        self.members
            .iter()
            .chain(self.next_members.iter())
            .any(|p| p.slot == slot && p.node_id == node_id)
    }

    /// Every member of either set on another node, once per node.
    pub fn peers(&self, own_node: u64) -> Vec<Place> {
        let mut out: Vec<Place> = Vec::new();
        for p in self.members.iter().chain(self.next_members.iter()) {
            if p.node_id != own_node && !out.iter().any(|q| q.node_id == p.node_id) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// A durable point: a VDL and the PG's last LSN at or below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadPoint {
    pub vdl: u64,
    pub pg_tail: u64,
}

/// What the core needs to know of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    pub lsn: u64,
    pub prev_lsn: u64,
    pub epoch: u64,
    pub pg: u32,
    pub page: u64,
    /// The record's own CRC32: two records at one (LSN, epoch) are the same record only if
    /// it matches (a writer never makes two; a client that sends two is refused).
    pub crc32: u32,
}

/// Expected protocol outcomes (not errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fenced,
    NeedsFence,
    StaleMembership,
    NotComplete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> SegmentError {
    SegmentError::Invalid(msg.into())
}

/// The persistent part of a segment's state (the meta row).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub epoch: u64,
    /// Sorted by epoch, one entry per epoch.
    pub history: Vec<Truncation>,
    pub membership: Option<Membership>,
    pub known_vdl: u64,
    /// Points told but not readable yet (their pg_tail is above the SCL), by VDL.
    pub told: Vec<ReadPoint>,
    pub readable: ReadPoint,
    /// Pages hold every record up to `materialized.vdl`; the chain is complete up to
    /// `materialized.pg_tail` whatever the log still holds.
    pub materialized: ReadPoint,
    pub scl: u64,
}

/// A status as this segment reports it (and as peers report theirs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentStatus {
    pub epoch: u64,
    pub membership_epoch: u64,
    pub scl: u64,
    pub max_lsn: u64,
    pub known_vdl: u64,
    pub readable: ReadPoint,
    pub materialized: ReadPoint,
    pub log_start_lsn: u64,
    pub history: Vec<Truncation>,
}

/// Told points kept while waiting for the chain to reach them.
const MAX_TOLD: usize = 32;

/// Is a record of `epoch` at `lsn` void under `history`?
pub fn is_void(history: &[Truncation], lsn: u64, epoch: u64) -> bool {
    history
        .iter()
        .any(|t| t.epoch > epoch && t.truncated_above < lsn)
}

/// The union of two histories; the same epoch with two truncation points is refused.
pub fn merge_history(
    own: &[Truncation],
    incoming: &[Truncation],
) -> Result<Vec<Truncation>, SegmentError> {
    let mut by_epoch: BTreeMap<u64, u64> = BTreeMap::new();
    for t in own.iter().chain(incoming.iter()) {
        match by_epoch.get(&t.epoch) {
            Some(&above) if above != t.truncated_above => {
                return Err(invalid(format!(
                    "history conflict: epoch {} truncated above {} and above {}",
                    t.epoch, above, t.truncated_above
                )))
            }
            _ => {
                by_epoch.insert(t.epoch, t.truncated_above);
            }
        }
    }
    Ok(by_epoch
        .into_iter()
        .map(|(epoch, truncated_above)| Truncation {
            epoch,
            truncated_above,
        })
        .collect())
}

/// The log may lose records at or below this: the lowest materialized point among a write
/// quorum (the 4th highest of the six members' points; unknown members count as 0), and
/// never above the segment's own.
pub fn gc_point(own_materialized: u64, members_materialized: &[u64]) -> u64 {
    let mut points = members_materialized.to_vec();
    points.sort_unstable_by(|a, b| b.cmp(a));
    let quorum = points.get(3).copied().unwrap_or(0);
    quorum.min(own_materialized)
}

/// Should a segment with status `own` copy from `peer` instead of reading its log? When the
/// peer's pages cover records beyond our chain and its log no longer reaches back to them.
pub fn needs_copy(own: &SegmentStatus, peer: &SegmentStatus) -> bool {
    peer.materialized.vdl > own.scl
        && peer.materialized.vdl > own.materialized.vdl
        && (peer.log_start_lsn == 0 || peer.log_start_lsn > own.scl + 1)
}

/// What an Append changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEffect {
    pub outcome: Outcome,
    /// Indices (into the request's records) to write.
    pub write: Vec<usize>,
    /// The meta row changed (write it).
    pub meta_changed: bool,
}

/// How to serve a page read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageReadPlan {
    Serve {
        read_lsn: u64,
        /// The page image is as of here.
        materialized_lsn: u64,
        /// The page's records to apply on the image, in LSN order.
        lsns: Vec<u64>,
    },
    NotComplete {
        readable_lsn: u64,
    },
}

/// Records to apply to pages, and the point that makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterializePlan {
    pub target: ReadPoint,
    pub lsns: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct SegmentState {
    pub key: SegmentKey,
    pub meta: SegmentMeta,
    /// Every log record held, by LSN.
    records: BTreeMap<u64, RecordHead>,
}

impl SegmentState {
    pub fn new(key: SegmentKey) -> Self {
        SegmentState {
            key,
            meta: SegmentMeta::default(),
            records: BTreeMap::new(),
        }
    }

    /// A segment loaded from disk. Returns it and the LSNs of held records that the history
    /// voids (to delete).
    pub fn load(
        key: SegmentKey,
        meta: SegmentMeta,
        heads: impl IntoIterator<Item = RecordHead>,
    ) -> (Self, Vec<u64>) {
        let mut s = SegmentState {
            key,
            meta,
            records: heads.into_iter().map(|h| (h.lsn, h)).collect(),
        };
        let dropped = s.drop_void();
        s.recompute_scl();
        (s, dropped)
    }

    pub fn epoch(&self) -> u64 {
        self.meta.epoch
    }

    pub fn scl(&self) -> u64 {
        self.meta.scl
    }

    pub fn membership_epoch(&self) -> u64 {
        self.meta
            .membership
            .as_ref()
            .map(|m| m.membership_epoch)
            .unwrap_or(0)
    }

    pub fn holds(&self, lsn: u64) -> Option<&RecordHead> {
        self.records.get(&lsn)
    }

    pub fn status(&self) -> SegmentStatus {
        SegmentStatus {
            epoch: self.meta.epoch,
            membership_epoch: self.membership_epoch(),
            scl: self.meta.scl,
            max_lsn: self.records.keys().next_back().copied().unwrap_or(0),
            known_vdl: self.meta.known_vdl,
            readable: self.meta.readable,
            materialized: self.meta.materialized,
            log_start_lsn: self.records.keys().next().copied().unwrap_or(0),
            history: self.meta.history.clone(),
        }
    }

    /// Raise the epoch to `epoch` and merge `history`; adopt a newer membership. Returns the
    /// outcome and the LSNs of records now void (to delete).
    pub fn fence(
        &mut self,
        epoch: u64,
        history: &[Truncation],
        membership: Option<&Membership>,
    ) -> Result<(Outcome, Vec<u64>), SegmentError> {
        if epoch < self.meta.epoch {
            return Ok((Outcome::Fenced, Vec::new()));
        }
        let merged = merge_history(&self.meta.history, history)?;
        if let Some(m) = membership {
            self.check_membership(m)?;
        }
        self.meta.epoch = epoch;
        self.meta.history = merged;
        if let Some(m) = membership {
            self.adopt_membership(m);
        }
        let dropped = self.drop_void();
        Ok((Outcome::Ok, dropped))
    }

    fn check_membership(&self, m: &Membership) -> Result<(), SegmentError> {
        if m.pg != self.key.pg {
            return Err(invalid(format!(
                "membership of PG {} sent to a segment of PG {}",
                m.pg, self.key.pg
            )));
        }
        Ok(())
    }

    /// Adopt `m` when it is newer than the segment's membership (or the first one).
    /// Returns whether it did.
    pub fn adopt_membership(&mut self, m: &Membership) -> bool {
        let newer = match &self.meta.membership {
            None => true,
            Some(own) => m.membership_epoch > own.membership_epoch,
        };
        if newer && m.pg == self.key.pg {
            self.meta.membership = Some(m.clone());
            true
        } else {
            false
        }
    }

    /// SetMembership: adopt a newer membership; an older one is STALE_MEMBERSHIP.
    pub fn set_membership(&mut self, m: &Membership) -> Result<Outcome, SegmentError> {
        self.check_membership(m)?;
        if m.membership_epoch < self.membership_epoch() {
            return Ok(Outcome::StaleMembership);
        }
        self.adopt_membership(m);
        Ok(Outcome::Ok)
    }

    /// Check a writer's Append and take its records and piggybacked point. `records` must
    /// already have passed their CRC check.
    pub fn append(
        &mut self,
        epoch: u64,
        membership_epoch: u64,
        told: ReadPoint,
        records: &[RecordHead],
    ) -> Result<AppendEffect, SegmentError> {
        let refuse = |outcome| AppendEffect {
            outcome,
            write: Vec::new(),
            meta_changed: false,
        };
        if epoch < self.meta.epoch {
            return Ok(refuse(Outcome::Fenced));
        }
        if epoch > self.meta.epoch {
            return Ok(refuse(Outcome::NeedsFence));
        }
        if membership_epoch < self.membership_epoch() {
            return Ok(refuse(Outcome::StaleMembership));
        }
        // Until the segment knows this epoch's truncation point, it takes only records of
        // older epochs (recovery re-replicating what it found): a record of this epoch could
        // sit on a LSN the segment still holds a void record for.
        let has_entry = self.meta.history.iter().any(|t| t.epoch == epoch);
        if !has_entry && records.iter().any(|r| r.epoch >= epoch) {
            return Ok(refuse(Outcome::NeedsFence));
        }
        if told.pg_tail > told.vdl {
            return Err(invalid(format!(
                "pg_tail {} is above vdl {}",
                told.pg_tail, told.vdl
            )));
        }
        let mut write = Vec::new();
        let mut taken: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            self.check_record(r)?;
            if r.epoch > epoch {
                return Err(invalid(format!(
                    "record {} of epoch {} in an append of epoch {epoch}",
                    r.lsn, r.epoch
                )));
            }
            if is_void(&self.meta.history, r.lsn, r.epoch) {
                return Err(invalid(format!(
                    "record {} of epoch {} is void under the history",
                    r.lsn, r.epoch
                )));
            }
            if let Some(&(e, crc)) = taken.get(&r.lsn) {
                if (e, crc) != (r.epoch, r.crc32) {
                    return Err(invalid(format!(
                        "LSN {} twice in one append, as two different records",
                        r.lsn
                    )));
                }
                continue;
            }
            taken.insert(r.lsn, (r.epoch, r.crc32));
            if r.lsn <= self.meta.materialized.vdl {
                continue; // in the pages already
            }
            match self.records.get(&r.lsn) {
                Some(held) if held.epoch == r.epoch && held.crc32 == r.crc32 => {}
                Some(held) if held.epoch == r.epoch => {
                    return Err(invalid(format!(
                        "LSN {} of epoch {} is held as a different record",
                        r.lsn, r.epoch
                    )))
                }
                Some(held) if is_void(&self.meta.history, held.lsn, held.epoch) => write.push(i),
                Some(held) => {
                    return Err(invalid(format!(
                        "LSN {} is held with epoch {}, not {}",
                        r.lsn, held.epoch, r.epoch
                    )))
                }
                None => write.push(i),
            }
        }
        for &i in &write {
            self.records.insert(records[i].lsn, records[i]);
        }
        let before = (self.meta.scl, self.meta.readable);
        self.advance_scl();
        self.promote_told();
        let told_changed = self.tell(told);
        Ok(AppendEffect {
            outcome: Outcome::Ok,
            meta_changed: !write.is_empty()
                || told_changed
                || before != (self.meta.scl, self.meta.readable),
            write,
        })
    }

    fn check_record(&self, r: &RecordHead) -> Result<(), SegmentError> {
        if r.pg != self.key.pg {
            return Err(invalid(format!(
                "record {} is of PG {}, this segment is of PG {}",
                r.lsn, r.pg, self.key.pg
            )));
        }
        if r.lsn > MAX_LSN {
            return Err(invalid(format!(
                "record LSN {} is past the largest LSN, {MAX_LSN}",
                r.lsn
            )));
        }
        if r.lsn == 0 || r.prev_lsn >= r.lsn {
            return Err(invalid(format!(
                "record LSN {} with backlink {} (LSNs start at 1 and backlinks point down)",
                r.lsn, r.prev_lsn
            )));
        }
        Ok(())
    }

    /// Records a peer sent (gossip): the ones that are valid, not void, not held and not
    /// materialized are taken. Returns the indices to write.
    pub fn insert_peer_records(&mut self, records: &[RecordHead]) -> Vec<usize> {
        let mut write = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if self.check_record(r).is_err()
                || r.epoch > self.meta.epoch
                || is_void(&self.meta.history, r.lsn, r.epoch)
                || r.lsn <= self.meta.materialized.vdl
            {
                continue;
            }
            let take = match self.records.get(&r.lsn) {
                None => true,
                Some(held) => {
                    held.epoch != r.epoch && is_void(&self.meta.history, held.lsn, held.epoch)
                }
            };
            if take {
                self.records.insert(r.lsn, *r);
                write.push(i);
            }
        }
        self.advance_scl();
        self.promote_told();
        write
    }

    /// A piggybacked (or gossiped) durable point. Returns whether the meta changed.
    pub fn tell(&mut self, point: ReadPoint) -> bool {
        if point.vdl == 0 || point.pg_tail > point.vdl {
            return false;
        }
        let mut changed = false;
        if point.vdl > self.meta.known_vdl {
            self.meta.known_vdl = point.vdl;
            changed = true;
        }
        if point.vdl <= self.meta.readable.vdl {
            return changed;
        }
        if !self.meta.told.contains(&point) {
            self.meta.told.push(point);
            self.meta.told.sort_by_key(|p| p.vdl);
            if self.meta.told.len() > MAX_TOLD {
                // Keep the newest; an older point is superseded once the chain reaches it.
                self.meta.told.remove(0);
            }
            changed = true;
        }
        self.promote_told();
        changed
    }

    /// Make the newest told point that the chain covers the readable point.
    fn promote_told(&mut self) {
        let scl = self.meta.scl;
        if let Some(best) = self
            .meta
            .told
            .iter()
            .filter(|p| p.pg_tail <= scl)
            .max_by_key(|p| p.vdl)
            .copied()
        {
            if best.vdl > self.meta.readable.vdl {
                self.meta.readable = best;
            }
        }
        let readable = self.meta.readable.vdl;
        self.meta.told.retain(|p| p.vdl > readable);
    }

    /// Extend the SCL along the chain: the next record above it must link back to it.
    fn advance_scl(&mut self) {
        let mut scl = self.meta.scl;
        while let Some((&lsn, head)) = self.records.range(scl + 1..).next() {
            if head.prev_lsn != scl {
                break;
            }
            scl = lsn;
        }
        self.meta.scl = scl;
    }

    /// The SCL from the materialized base, after records went away; a readable point the
    /// chain no longer covers goes back to the told list.
    pub fn recompute_scl(&mut self) {
        self.meta.scl = self.meta.materialized.pg_tail;
        self.advance_scl();
        if self.meta.readable.pg_tail > self.meta.scl {
            let lost = self.meta.readable;
            self.meta.readable = self.meta.materialized;
            if !self.meta.told.contains(&lost) {
                self.meta.told.push(lost);
                self.meta.told.sort_by_key(|p| p.vdl);
            }
        }
        self.promote_told();
    }

    /// Drop records the history voids; returns their LSNs.
    fn drop_void(&mut self) -> Vec<u64> {
        let history = &self.meta.history;
        let void: Vec<u64> = self
            .records
            .values()
            .filter(|r| is_void(history, r.lsn, r.epoch))
            .map(|r| r.lsn)
            .collect();
        if !void.is_empty() {
            for lsn in &void {
                self.records.remove(lsn);
            }
            self.recompute_scl();
        }
        void
    }

    /// Records that went away (failed their CRC, or were collected).
    pub fn remove_records(&mut self, lsns: &[u64]) {
        for lsn in lsns {
            self.records.remove(lsn);
        }
        self.recompute_scl();
    }

    /// A peer's status: adopt a newer epoch and history (as a Fence would) and its readable
    /// point. Returns the LSNs now void.
    pub fn adopt_peer(&mut self, peer: &SegmentStatus) -> Result<Vec<u64>, SegmentError> {
        let merged = merge_history(&self.meta.history, &peer.history)?;
        let mut dropped = Vec::new();
        if merged != self.meta.history || peer.epoch > self.meta.epoch {
            self.meta.history = merged;
            self.meta.epoch = self.meta.epoch.max(peer.epoch);
            dropped = self.drop_void();
        }
        self.tell(peer.readable);
        if peer.known_vdl > self.meta.known_vdl {
            self.meta.known_vdl = peer.known_vdl;
        }
        Ok(dropped)
    }

    /// Which of the page's records to apply, or why not.
    pub fn plan_page_read(
        &self,
        page: u64,
        read_lsn: u64,
        pg_tail: u64,
        min_read_lsn: u64,
    ) -> PageReadPlan {
        let materialized = self.meta.materialized.vdl;
        let not_complete = PageReadPlan::NotComplete {
            readable_lsn: self.meta.readable.vdl,
        };
        let (at, tail) = if read_lsn > 0 {
            if pg_tail > read_lsn || self.meta.scl < pg_tail || read_lsn < materialized {
                return not_complete;
            }
            (read_lsn, pg_tail)
        } else {
            let r = self.meta.readable;
            if r.vdl < min_read_lsn || r.vdl < materialized || self.meta.scl < r.pg_tail {
                return not_complete;
            }
            (r.vdl, r.pg_tail)
        };
        // Only the chain counts: records of this PG at or below `at` are at or below its
        // pg_tail; anything else held there is not durable.
        let lsns = self
            .range(materialized, tail)
            .filter(|h| h.page == page)
            .map(|h| h.lsn)
            .collect();
        PageReadPlan::Serve {
            read_lsn: at,
            materialized_lsn: materialized,
            lsns,
        }
    }

    /// Records in (after, up_to] (up_to 0: no bound), in LSN order.
    pub fn lsns_in(&self, after: u64, up_to: u64) -> Vec<u64> {
        let end = if up_to == 0 { u64::MAX } else { up_to };
        self.range(after, end).map(|h| h.lsn).collect()
    }

    /// Held records in (after, up_to], in LSN order (empty when the range is).
    fn range(&self, after: u64, up_to: u64) -> impl Iterator<Item = &RecordHead> {
        let bounds = if up_to > after {
            Some((after + 1, up_to))
        } else {
            None
        };
        bounds
            .into_iter()
            .flat_map(move |(from, to)| self.records.range(from..=to).map(|(_, h)| h))
    }

    /// What to materialize next: the records up to the readable point, at most
    /// `max_records` (then the point is the last of them, which is on the chain).
    pub fn plan_materialize(&self, max_records: usize) -> Option<MaterializePlan> {
        let readable = self.meta.readable;
        let from = self.meta.materialized.vdl;
        if readable.vdl <= from || self.meta.scl < readable.pg_tail {
            return None;
        }
        let mut lsns: Vec<u64> = self.range(from, readable.pg_tail).map(|h| h.lsn).collect();
        let target = if lsns.len() > max_records.max(1) {
            lsns.truncate(max_records.max(1));
            let last = lsns.last().copied().unwrap_or(from);
            ReadPoint {
                vdl: last,
                pg_tail: last,
            }
        } else {
            readable
        };
        Some(MaterializePlan { target, lsns })
    }

    pub fn set_materialized(&mut self, target: ReadPoint) {
        if target.vdl > self.meta.materialized.vdl {
            self.meta.materialized = target;
        }
    }

    /// Drop log records at or below `point`; returns their LSNs.
    pub fn collect(&mut self, point: u64) -> Vec<u64> {
        let point = point.min(self.meta.materialized.vdl);
        let gone: Vec<u64> = self.records.range(..=point).map(|(&l, _)| l).collect();
        for l in &gone {
            self.records.remove(l);
        }
        gone
    }

    /// Forget pages and log (a page failed its CRC): the next gossip round refills the
    /// segment from peers. Epoch, history and membership stay.
    pub fn reset_data(&mut self) {
        self.records.clear();
        let readable = self.meta.readable;
        self.meta.materialized = ReadPoint::default();
        self.meta.readable = ReadPoint::default();
        self.meta.scl = 0;
        if readable.vdl > 0 && !self.meta.told.contains(&readable) {
            self.meta.told.push(readable);
            self.meta.told.sort_by_key(|p| p.vdl);
        }
    }

    /// Take a peer's copy: its pages (as of `source.materialized`) and log replace ours.
    pub fn install_copy(
        &mut self,
        source: &SegmentStatus,
        heads: &[RecordHead],
    ) -> Result<(), SegmentError> {
        let merged = merge_history(&self.meta.history, &source.history)?;
        self.meta.history = merged;
        self.meta.epoch = self.meta.epoch.max(source.epoch);
        self.records = heads
            .iter()
            .filter(|h| h.lsn > source.materialized.vdl && self.check_record(h).is_ok())
            .map(|h| (h.lsn, *h))
            .collect();
        let readable = self.meta.readable;
        self.meta.materialized = source.materialized;
        self.meta.readable = source.materialized;
        self.drop_void();
        self.recompute_scl();
        self.tell(readable);
        self.tell(source.readable);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: SegmentKey = SegmentKey {
        volume_id: 7,
        pg: 1,
        slot: 2,
    };

    fn rec(lsn: u64, prev_lsn: u64, epoch: u64) -> RecordHead {
        RecordHead {
            lsn,
            prev_lsn,
            epoch,
            pg: 1,
            page: lsn % 3,
            crc32: (lsn * 31 + epoch) as u32,
        }
    }

    fn point(vdl: u64, pg_tail: u64) -> ReadPoint {
        ReadPoint { vdl, pg_tail }
    }

    fn trunc(epoch: u64, truncated_above: u64) -> Truncation {
        Truncation {
            epoch,
            truncated_above,
        }
    }

    fn membership(epoch: u64) -> Membership {
        Membership {
            pg: 1,
            membership_epoch: epoch,
            members: (0..6)
                .map(|i| Place {
                    slot: i,
                    node_id: u64::from(i) + 1,
                    zone: "az-a".into(),
                    grpc_addr: format!("127.0.0.1:{}", 7000 + i),
                })
                .collect(),
            next_members: Vec::new(),
        }
    }

    /// A segment fenced at epoch 1 with history [(1, 0)].
    #[test]
    fn only_well_formed_memberships_are_valid() {
        assert_eq!(membership(1).validate(), Ok(()));
        assert!(membership(0).validate().is_err());
        let mut five = membership(1);
        five.members.pop();
        assert!(five.validate().unwrap_err().contains("5 members"));
        let mut shuffled = membership(1);
        shuffled.members.swap(0, 1);
        assert!(shuffled.validate().unwrap_err().contains("slot"));
        let mut nobody = membership(1);
        nobody.members[3].node_id = 0;
        assert!(nobody.validate().is_err());
        let mut half_next = membership(1);
        half_next.next_members = half_next.members[..3].to_vec();
        assert!(half_next.validate().unwrap_err().contains("next_members"));
    }

    fn fenced() -> SegmentState {
        let mut s = SegmentState::new(KEY);
        s.fence(1, &[trunc(1, 0)], Some(&membership(1))).unwrap();
        s
    }

    fn ok_append(s: &mut SegmentState, records: &[RecordHead], told: ReadPoint) -> AppendEffect {
        let e = s.append(s.epoch(), 1, told, records).unwrap();
        assert_eq!(e.outcome, Outcome::Ok);
        e
    }

    #[test]
    fn a_different_record_at_a_held_lsn_and_epoch_is_refused() {
        let mut s = fenced();
        ok_append(&mut s, &[rec(1, 0, 1)], point(0, 0));
        // The same record again is acknowledged without a write.
        assert!(ok_append(&mut s, &[rec(1, 0, 1)], point(0, 0))
            .write
            .is_empty());
        let mut other = rec(1, 0, 1);
        other.crc32 ^= 1;
        let err = s.append(1, 1, point(0, 0), &[other]).unwrap_err();
        assert!(err.to_string().contains("different record"), "{err}");
        let mut twin = rec(2, 1, 1);
        twin.crc32 ^= 1;
        let err = s
            .append(1, 1, point(0, 0), &[rec(2, 1, 1), twin])
            .unwrap_err();
        assert!(err.to_string().contains("two different records"), "{err}");
        assert_eq!(s.meta.scl, 1);
    }

    #[test]
    fn chain_holes_filled_in_any_order() {
        // The PG's chain: 2 <- 5 <- 6 <- 9 (other LSNs belong to other PGs).
        let chain = [rec(2, 0, 1), rec(5, 2, 1), rec(6, 5, 1), rec(9, 6, 1)];
        for order in [[3, 1, 0, 2], [0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let mut s = fenced();
            let mut scls = Vec::new();
            for i in order {
                ok_append(&mut s, &[chain[i]], ReadPoint::default());
                scls.push(s.scl());
            }
            assert_eq!(s.scl(), 9, "order {order:?}: {scls:?}");
            // The SCL only ever covers a complete prefix.
            for (k, scl) in scls.iter().enumerate() {
                let held: Vec<u64> = order[..=k].iter().map(|&i| chain[i].lsn).collect();
                let expect = chain
                    .iter()
                    .take_while(|r| held.contains(&r.lsn))
                    .last()
                    .map(|r| r.lsn)
                    .unwrap_or(0);
                assert_eq!(*scl, expect, "order {order:?} step {k}");
            }
        }
    }

    #[test]
    fn void_rule() {
        let h = [trunc(1, 0), trunc(2, 10), trunc(3, 15)];
        assert!(!is_void(&h, 10, 1));
        assert!(is_void(&h, 11, 1));
        assert!(!is_void(&h, 15, 2));
        assert!(is_void(&h, 16, 2));
        assert!(!is_void(&h, 100, 3), "no newer entry voids epoch 3");
    }

    #[test]
    fn fence_truncates_and_scl_falls_back() {
        let mut s = fenced();
        ok_append(
            &mut s,
            &[rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, 1), rec(4, 3, 1)],
            ReadPoint::default(),
        );
        assert_eq!(s.scl(), 4);
        // Recovery of epoch 2 found VDL 2: records of epoch 1 above 2 are void.
        let (outcome, dropped) = s.fence(2, &[trunc(1, 0), trunc(2, 2)], None).unwrap();
        assert_eq!(outcome, Outcome::Ok);
        assert_eq!(dropped, vec![3, 4]);
        assert_eq!(s.scl(), 2);
        assert_eq!(s.epoch(), 2);
        // The new writer continues the chain at 3.
        ok_append(&mut s, &[rec(3, 2, 2)], point(3, 3));
        assert_eq!(s.scl(), 3);
        assert_eq!(s.status().readable, point(3, 3));
    }

    #[test]
    fn fencing_outcomes() {
        let mut s = SegmentState::new(KEY);
        assert_eq!(s.fence(3, &[trunc(3, 0)], None).unwrap().0, Outcome::Ok);
        assert_eq!(s.fence(2, &[], None).unwrap().0, Outcome::Fenced);
        assert_eq!(s.epoch(), 3);
        let append = |s: &mut SegmentState, e, m| {
            s.append(e, m, ReadPoint::default(), &[rec(1, 0, e)])
                .unwrap()
                .outcome
        };
        assert_eq!(append(&mut s, 2, 0), Outcome::Fenced);
        assert_eq!(append(&mut s, 4, 0), Outcome::NeedsFence);
        assert_eq!(append(&mut s, 3, 0), Outcome::Ok);
        // Epoch 4 fenced without its truncation entry: new records wait for it, recovery's
        // re-replication of older records does not.
        s.fence(4, &[], Some(&membership(2))).unwrap();
        assert_eq!(append(&mut s, 4, 2), Outcome::NeedsFence);
        let e = s
            .append(4, 2, ReadPoint::default(), &[rec(2, 1, 3)])
            .unwrap();
        assert_eq!(e.outcome, Outcome::Ok);
        assert_eq!(s.scl(), 2);
        assert_eq!(append(&mut s, 4, 1), Outcome::StaleMembership);
        // A conflicting history is refused.
        assert!(s.fence(5, &[trunc(3, 7)], None).is_err());
        assert_eq!(s.epoch(), 4, "a refused fence changes nothing");
    }

    #[test]
    fn idempotent_reappend_and_conflicts() {
        let mut s = fenced();
        let e = ok_append(&mut s, &[rec(1, 0, 1), rec(2, 1, 1)], ReadPoint::default());
        assert_eq!(e.write, vec![0, 1]);
        let e = ok_append(
            &mut s,
            &[rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, 1)],
            ReadPoint::default(),
        );
        assert_eq!(
            e.write,
            vec![2],
            "held records are acknowledged, not rewritten"
        );
        assert_eq!(s.scl(), 3);
        // Bad records: whole append refused.
        assert!(s
            .append(1, 1, ReadPoint::default(), &[rec(4, 3, 1), rec(5, 5, 1)])
            .is_err());
        assert!(s
            .append(1, 1, ReadPoint::default(), &[rec(0, 0, 1)])
            .is_err());
        let mut other_pg = rec(4, 3, 1);
        other_pg.pg = 2;
        assert!(s.append(1, 1, ReadPoint::default(), &[other_pg]).is_err());
        assert!(
            s.append(1, 1, ReadPoint::default(), &[rec(4, 3, 2)])
                .is_err(),
            "future epoch"
        );
        assert!(s.holds(4).is_none());
    }

    #[test]
    fn void_record_is_replaced() {
        let mut s = fenced();
        ok_append(&mut s, &[rec(1, 0, 1), rec(2, 1, 1)], ReadPoint::default());
        s.fence(2, &[trunc(1, 0), trunc(2, 1)], None).unwrap();
        assert!(s.holds(2).is_none());
        let e = ok_append(&mut s, &[rec(2, 1, 2)], ReadPoint::default());
        assert_eq!(e.write, vec![0]);
        assert_eq!(s.holds(2).map(|h| h.epoch), Some(2));
        // An old-epoch record at a void LSN is refused.
        assert!(s
            .append(2, 1, ReadPoint::default(), &[rec(3, 2, 1)])
            .is_err());
    }

    #[test]
    fn readable_point_follows_the_chain() {
        let mut s = fenced();
        ok_append(&mut s, &[rec(1, 0, 1), rec(3, 1, 1)], point(3, 3));
        assert_eq!(s.status().readable, point(3, 3));
        // 5 is missing: the told point (7, 6) waits for it.
        ok_append(&mut s, &[rec(6, 5, 1)], point(7, 6));
        assert_eq!(s.status().readable, point(3, 3));
        assert_eq!(s.status().known_vdl, 7);
        ok_append(&mut s, &[rec(5, 3, 1)], ReadPoint::default());
        assert_eq!(s.status().readable, point(7, 6));
        // An older point never moves it back.
        s.tell(point(5, 5));
        assert_eq!(s.status().readable, point(7, 6));
        // Points pass between peers.
        let mut t = fenced();
        ok_append(
            &mut t,
            &[rec(1, 0, 1), rec(3, 1, 1), rec(5, 3, 1), rec(6, 5, 1)],
            ReadPoint::default(),
        );
        t.adopt_peer(&s.status()).unwrap();
        assert_eq!(t.status().readable, point(7, 6));
    }

    #[test]
    fn page_reads() {
        let mut s = fenced();
        let recs = [rec(1, 0, 1), rec(3, 1, 1), rec(4, 3, 1), rec(6, 4, 1)];
        ok_append(&mut s, &recs, point(5, 4));
        // page = lsn % 3: page 0 has 3 and 6, page 1 has 1 and 4.
        assert_eq!(
            s.plan_page_read(1, 0, 0, 0),
            PageReadPlan::Serve {
                read_lsn: 5,
                materialized_lsn: 0,
                lsns: vec![1, 4]
            }
        );
        assert_eq!(
            s.plan_page_read(0, 6, 6, 0),
            PageReadPlan::Serve {
                read_lsn: 6,
                materialized_lsn: 0,
                lsns: vec![3, 6]
            }
        );
        assert_eq!(
            s.plan_page_read(0, 0, 0, 6),
            PageReadPlan::NotComplete { readable_lsn: 5 }
        );
        assert_eq!(
            s.plan_page_read(0, 9, 8, 0),
            PageReadPlan::NotComplete { readable_lsn: 5 }
        );
        // After materializing to 5, older read points are gone.
        let plan = s.plan_materialize(100).unwrap();
        assert_eq!(
            plan,
            MaterializePlan {
                target: point(5, 4),
                lsns: vec![1, 3, 4]
            }
        );
        s.set_materialized(plan.target);
        assert_eq!(
            s.plan_page_read(0, 3, 3, 0),
            PageReadPlan::NotComplete { readable_lsn: 5 }
        );
        assert_eq!(
            s.plan_page_read(0, 6, 6, 0),
            PageReadPlan::Serve {
                read_lsn: 6,
                materialized_lsn: 5,
                lsns: vec![6]
            }
        );
        // A read point whose chain ends below the materialized point: the image alone.
        assert_eq!(
            s.plan_page_read(1, 5, 4, 0),
            PageReadPlan::Serve {
                read_lsn: 5,
                materialized_lsn: 5,
                lsns: vec![]
            }
        );
        s.tell(point(8, 4));
        assert_eq!(s.status().readable, point(8, 4));
        let plan = s.plan_materialize(100).unwrap();
        assert_eq!(plan.lsns, Vec::<u64>::new());
        s.set_materialized(plan.target);
        assert_eq!(s.status().materialized, point(8, 4));
    }

    #[test]
    fn materialize_in_bounded_steps() {
        let mut s = fenced();
        ok_append(
            &mut s,
            &[rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, 1)],
            point(4, 3),
        );
        let plan = s.plan_materialize(2).unwrap();
        assert_eq!(
            plan,
            MaterializePlan {
                target: point(2, 2),
                lsns: vec![1, 2]
            }
        );
        s.set_materialized(plan.target);
        let plan = s.plan_materialize(2).unwrap();
        assert_eq!(
            plan,
            MaterializePlan {
                target: point(4, 3),
                lsns: vec![3]
            }
        );
        s.set_materialized(plan.target);
        assert!(s.plan_materialize(2).is_none());
        // The log at or below the materialized point may go; the chain stays complete.
        assert_eq!(s.collect(10), vec![1, 2, 3]);
        let (reloaded, _) = SegmentState::load(KEY, s.meta.clone(), []);
        assert_eq!(reloaded.scl(), 3);
        let mut r = reloaded;
        ok_append(&mut r, &[rec(5, 3, 1)], ReadPoint::default());
        assert_eq!(r.scl(), 5);
    }

    #[test]
    fn gc_point_is_the_fourth_highest() {
        assert_eq!(gc_point(50, &[50, 40, 30, 20, 10, 0]), 20);
        assert_eq!(
            gc_point(10, &[50, 40, 30, 20, 10, 0]),
            10,
            "never above own"
        );
        assert_eq!(
            gc_point(50, &[50, 40, 30, 0, 0, 0]),
            0,
            "unknown members count as 0"
        );
        assert_eq!(gc_point(50, &[50, 40, 30]), 0);
    }

    #[test]
    fn lost_record_falls_back_and_refills() {
        let mut s = fenced();
        ok_append(
            &mut s,
            &[rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, 1), rec(4, 3, 1)],
            point(4, 4),
        );
        assert_eq!(s.status().readable, point(4, 4));
        // Record 2 failed its CRC and was dropped.
        s.remove_records(&[2]);
        assert_eq!(s.scl(), 1);
        assert_eq!(s.status().readable, ReadPoint::default());
        assert_eq!(
            s.plan_page_read(1, 0, 0, 1),
            PageReadPlan::NotComplete { readable_lsn: 0 }
        );
        // Gossip brings it back.
        assert_eq!(
            s.insert_peer_records(&[rec(2, 1, 1), rec(3, 2, 1)]),
            vec![0]
        );
        assert_eq!(s.scl(), 4);
        assert_eq!(s.status().readable, point(4, 4));
    }

    #[test]
    fn peer_adoption_and_copy() {
        let mut s = fenced();
        ok_append(
            &mut s,
            &[rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, 1)],
            ReadPoint::default(),
        );
        let peer = SegmentStatus {
            epoch: 2,
            history: vec![trunc(1, 0), trunc(2, 2)],
            readable: point(2, 2),
            ..Default::default()
        };
        assert_eq!(s.adopt_peer(&peer).unwrap(), vec![3]);
        assert_eq!(s.epoch(), 2);
        assert_eq!(s.status().readable, point(2, 2));
        // A peer that materialized to 20 and collected its log: copy.
        let far = SegmentStatus {
            epoch: 2,
            history: vec![trunc(1, 0), trunc(2, 2)],
            materialized: point(20, 19),
            readable: point(22, 21),
            log_start_lsn: 21,
            ..Default::default()
        };
        assert!(needs_copy(&s.status(), &far));
        s.install_copy(&far, &[rec(21, 19, 2)]).unwrap();
        assert_eq!(s.scl(), 21);
        assert_eq!(s.status().readable, point(22, 21));
        assert!(!needs_copy(&s.status(), &far));
    }

    #[test]
    fn reset_keeps_epoch_and_refills() {
        let mut s = fenced();
        ok_append(&mut s, &[rec(1, 0, 1), rec(2, 1, 1)], point(2, 2));
        s.reset_data();
        assert_eq!((s.epoch(), s.scl(), s.membership_epoch()), (1, 0, 1));
        assert_eq!(
            s.insert_peer_records(&[rec(1, 0, 1), rec(2, 1, 1)]),
            vec![0, 1]
        );
        assert_eq!(s.status().readable, point(2, 2));
    }
}
