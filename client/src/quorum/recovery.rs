//! Recovery: what a writer does when it opens a volume (docs/quorum-storage.md, "Recovery
//! and fencing"), in exactly the design's six steps:
//!
//! 1. `BeginRecovery` in the catalog: a new epoch E.
//! 2. `Fence(E, history)` on every segment of every PG; each PG needs a write quorum (4 of
//!    6, of each set during a membership change). From then on the old writer cannot
//!    reach 4 anywhere.
//! 3. From the fenced segments (at least a read quorum, 3, per PG): the **floor** = the
//!    highest `known_vdl`, or the last history entry's `truncated_above` if higher.
//! 4. Records above the floor from those segments; their union holds every durable record
//!    (3 + 4 > 6). VCL over the union (dense LSNs), VDL = the highest CPL at or below it.
//! 5. Re-replicate every record in (floor, VDL] until 4 members of its PG hold it (a record
//!    counted in VCL may have been on one segment only).
//! 6. `CompleteRecovery(E, VDL)`, then `Fence(E, history)` again so the segments drop what
//!    the new entry voids. The writer numbers from VDL + 1 with backlinks from the union.
//!
//! The computations (voiding, the union, VCL/VDL, the floor) are pure functions here with
//! unit tests; [`recover`] is the async shell over a [`CatalogService`] and a
//! [`SegmentTransport`].
//!
//! One deviation is possible at run time: if segments refuse step 5's appends with
//! `NEEDS_FENCE` (they accept epoch E only once its truncation entry exists), recovery runs
//! step 6 first and re-replicates after it. That order is only unsafe if a segment holding
//! the sole copy of a record at or below VDL is lost before step 5 completes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::catalog::{CatalogService, PgMembership, SegmentPlace, Truncation, Volume};
use super::durability::{MemberKey, QuorumSet};
use super::record::LogRecord;
use super::transport::{AppendArgs, Outcome, SegmentId, SegmentStatus, SegmentTransport};
use super::{Epoch, Lsn, QuorumError};

/// A record of epoch `epoch` at `lsn` is void when a later epoch's recovery truncated
/// below it.
pub fn is_void(epoch: Epoch, lsn: Lsn, history: &[Truncation]) -> bool {
    history
        .iter()
        .any(|t| t.epoch > epoch && t.truncated_above < lsn)
}

/// Step 3: everything at or below the floor is durable.
pub fn floor<'a>(
    history: &[Truncation],
    statuses: impl IntoIterator<Item = &'a SegmentStatus>,
) -> Lsn {
    let truncated = history.last().map_or(0, |t| t.truncated_above);
    statuses
        .into_iter()
        .map(|s| s.known_vdl)
        .fold(truncated, Lsn::max)
}

/// A record found during recovery and the members known to hold it.
#[derive(Debug, Clone)]
pub struct Held {
    pub record: LogRecord,
    pub holders: Vec<MemberKey>,
}

/// The union of records read from a PG's read quorum (step 4), void records left out.
#[derive(Debug, Clone, Default)]
pub struct RecordUnion {
    pub records: BTreeMap<Lsn, Held>,
}

impl RecordUnion {
    /// Adds a record `member` returned. A record voided by `history` is ignored; two
    /// different records at one LSN (which a correct history never leaves) resolve to the
    /// newer epoch.
    pub fn add(&mut self, member: MemberKey, record: LogRecord, history: &[Truncation]) {
        if is_void(record.epoch, record.lsn, history) {
            return;
        }
        match self.records.get_mut(&record.lsn) {
            Some(held) if held.record == record => {
                if !held.holders.contains(&member) {
                    held.holders.push(member);
                }
            }
            Some(held) if held.record.epoch >= record.epoch => {}
            _ => {
                self.records.insert(
                    record.lsn,
                    Held {
                        record,
                        holders: vec![member],
                    },
                );
            }
        }
    }
}

/// VCL and VDL found by recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurablePoint {
    pub vcl: Lsn,
    pub vdl: Lsn,
}

/// Step 4: VCL = the end of the dense run of LSNs above `floor` present in `lsns` (given as
/// `(lsn, cpl)` in any order), VDL = the highest CPL at or below it, or the floor.
pub fn durable_point(floor: Lsn, lsns: impl IntoIterator<Item = (Lsn, bool)>) -> DurablePoint {
    let present: BTreeMap<Lsn, bool> = lsns.into_iter().filter(|(l, _)| *l > floor).collect();
    let mut vcl = floor;
    let mut vdl = floor;
    while let Some(&cpl) = present.get(&(vcl + 1)) {
        vcl += 1;
        if cpl {
            vdl = vcl;
        }
    }
    DurablePoint { vcl, vdl }
}

/// The last LSN of `pg` at or below `vdl` among `union`'s records (None: none above the
/// floor, look below it).
pub fn tail_in_union(union: &RecordUnion, pg: u32, vdl: Lsn) -> Option<Lsn> {
    union
        .records
        .range(..=vdl)
        .rev()
        .find(|(_, h)| h.record.pg == pg)
        .map(|(l, _)| *l)
}

/// What recovery hands the writer.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The catalog's view after `CompleteRecovery` (history includes this epoch's entry).
    pub volume: Volume,
    pub epoch: Epoch,
    /// The volume durable point: the writer numbers from `vdl + 1`.
    pub vdl: Lsn,
    /// Each PG's last LSN at or below `vdl` (0: none).
    pub tails: Vec<Lsn>,
    /// SCLs the fenced segments reported.
    pub scls: Vec<(MemberKey, Lsn)>,
    /// Whether step 6 had to run before step 5 (segments refused the re-replication).
    pub completed_before_replication: bool,
}

/// Tunables of one recovery.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryLimits {
    pub deadline: Instant,
    /// Payload per `ReadRecords` / re-replication `Append`.
    pub batch_bytes: u64,
}

/// Runs the six steps against the live volume `name`.
pub async fn recover(
    catalog: &dyn CatalogService,
    transport: &dyn SegmentTransport,
    name: &str,
    limits: RecoveryLimits,
) -> Result<Recovered, QuorumError> {
    // 1.
    let volume = catalog.begin_recovery(name).await?;
    let epoch = volume.epoch;
    check_geometry(&volume)?;
    // 2.
    let fenced = fence_all(transport, &volume, epoch, &volume.history, limits, true).await?;
    // 3.
    let floor = floor(
        &volume.history,
        fenced
            .values()
            .flat_map(|per_pg| per_pg.iter().map(|(_, s)| s)),
    );
    // 4.
    let mut unions = Vec::with_capacity(volume.pgs.len());
    for m in &volume.pgs {
        let members = &fenced[&m.pg];
        unions.push(read_union(transport, &volume, m, members, floor, limits).await?);
    }
    let point = durable_point(
        floor,
        unions
            .iter()
            .flat_map(|u| u.records.iter().map(|(l, h)| (*l, h.record.cpl))),
    );
    let vdl = point.vdl;
    let mut tails = vec![0; volume.pg_count as usize];
    for (m, union) in volume.pgs.iter().zip(&unions) {
        tails[m.pg as usize] = match tail_in_union(union, m.pg, vdl) {
            Some(tail) => tail,
            None => tail_below(transport, &volume, m, &fenced[&m.pg], floor, limits).await?,
        };
    }
    // 5, then 6 (or 6 then 5 when the segments insist).
    let mut completed_before_replication = false;
    let completed =
        match rereplicate(transport, &volume, epoch, &mut unions, floor, vdl, limits).await {
            Ok(()) => complete(catalog, transport, name, epoch, vdl, limits).await?,
            Err(ReplicationError::NeedsTruncationFirst) => {
                completed_before_replication = true;
                let completed = complete(catalog, transport, name, epoch, vdl, limits).await?;
                rereplicate(
                    transport,
                    &completed,
                    epoch,
                    &mut unions,
                    floor,
                    vdl,
                    limits,
                )
                .await
                .map_err(ReplicationError::into_quorum_error)?;
                completed
            }
            Err(other) => return Err(other.into_quorum_error()),
        };
    let scls = fenced
        .into_values()
        .flatten()
        .map(|(member, status)| (member, status.scl))
        .collect();
    Ok(Recovered {
        volume: completed,
        epoch,
        vdl,
        tails,
        scls,
        completed_before_replication,
    })
}

fn check_geometry(volume: &Volume) -> Result<(), QuorumError> {
    let mut pgs: Vec<u32> = volume.pgs.iter().map(|m| m.pg).collect();
    pgs.sort_unstable();
    if volume.pg_count == 0 || pgs != (0..volume.pg_count).collect::<Vec<_>>() {
        return Err(QuorumError::Corrupt(format!(
            "volume {} lists PGs {pgs:?} for pg_count {}",
            volume.name, volume.pg_count
        )));
    }
    Ok(())
}

/// The segment id of a member.
pub(crate) fn segment_of(volume: &Volume, pg: u32, place: &SegmentPlace) -> SegmentId {
    SegmentId {
        volume_id: volume.volume_id,
        pg,
        slot: place.slot,
    }
}

pub(crate) fn member_of(pg: u32, place: &SegmentPlace) -> MemberKey {
    MemberKey {
        pg,
        slot: place.slot,
        node_id: place.node_id,
    }
}

/// Whether `members` contain a read quorum (3) of either set.
fn is_read_quorum(set: &QuorumSet, members: &[MemberKey]) -> bool {
    let count = |s: &[MemberKey]| s.iter().filter(|m| members.contains(m)).count();
    count(&set.current) >= 3 || (!set.next.is_empty() && count(&set.next) >= 3)
}

type Fenced = HashMap<u32, Vec<(MemberKey, SegmentStatus)>>;

/// Step 2 (and the second fence of step 6): fences every member of every PG. With
/// `need_quorum`, keeps trying until each PG has a write quorum fenced (or the deadline);
/// without, one round, best effort.
async fn fence_all(
    transport: &dyn SegmentTransport,
    volume: &Volume,
    epoch: Epoch,
    history: &[Truncation],
    limits: RecoveryLimits,
    need_quorum: bool,
) -> Result<Fenced, QuorumError> {
    let mut fenced: Fenced = volume.pgs.iter().map(|m| (m.pg, Vec::new())).collect();
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut calls = Vec::new();
        for m in &volume.pgs {
            let done = &fenced[&m.pg];
            for place in m.all_places() {
                let member = member_of(m.pg, &place);
                if done.iter().any(|(d, _)| *d == member) {
                    continue;
                }
                let segment = segment_of(volume, m.pg, &place);
                calls.push(async move {
                    let reply = transport.fence(&place, segment, epoch, history, m).await;
                    (m.pg, member, reply)
                });
            }
        }
        for (pg, member, reply) in join_all(calls).await {
            match reply {
                Ok(r) if r.outcome == Outcome::Ok => {
                    if let Some(list) = fenced.get_mut(&pg) {
                        list.push((member, r.status));
                    }
                }
                Ok(r) if r.outcome == Outcome::Fenced => {
                    return Err(QuorumError::Fenced {
                        epoch,
                        newer_epoch: r.epoch.max(r.status.epoch),
                        outcome_unknown: false,
                    })
                }
                _ => {}
            }
        }
        if !need_quorum {
            return Ok(fenced);
        }
        let missing: Vec<u32> = volume
            .pgs
            .iter()
            .filter(|m| {
                let set = QuorumSet::from_membership(m);
                let members: Vec<MemberKey> = fenced[&m.pg].iter().map(|(k, _)| *k).collect();
                !set.is_write_quorum(&members)
            })
            .map(|m| m.pg)
            .collect();
        if missing.is_empty() {
            return Ok(fenced);
        }
        if Instant::now() + backoff >= limits.deadline {
            return Err(QuorumError::Unavailable(format!(
                "recovery of volume {} could not fence a write quorum of PGs {missing:?}",
                volume.name
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Every record in (after, up_to] a segment holds (up_to 0: no bound), following pages.
/// Fails when the segment returned a record failing its CRC: it cannot count as a reader.
async fn read_all(
    transport: &dyn SegmentTransport,
    place: &SegmentPlace,
    segment: SegmentId,
    after: Lsn,
    up_to: Lsn,
    batch_bytes: u64,
) -> Result<Vec<LogRecord>, String> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let reply = transport
            .read_records(place, segment, cursor, up_to, batch_bytes)
            .await
            .map_err(|e| e.to_string())?;
        if reply.corrupt > 0 {
            return Err(format!("{} records failed their CRC", reply.corrupt));
        }
        let last = reply.records.last().map(|r| r.lsn);
        for r in reply.records {
            if r.lsn > cursor && (up_to == 0 || r.lsn <= up_to) && r.pg == segment.pg {
                out.push(r);
            }
        }
        match last {
            Some(l) if !reply.complete && l > cursor => cursor = l,
            Some(_) if !reply.complete => return Err("ReadRecords did not advance".into()),
            _ => return Ok(out),
        }
    }
}

/// Step 4 for one PG: the union of the records above the floor on its fenced members
/// (at least a read quorum of them must answer).
async fn read_union(
    transport: &dyn SegmentTransport,
    volume: &Volume,
    m: &PgMembership,
    fenced: &[(MemberKey, SegmentStatus)],
    floor: Lsn,
    limits: RecoveryLimits,
) -> Result<RecordUnion, QuorumError> {
    let set = QuorumSet::from_membership(m);
    let places: Vec<SegmentPlace> = m
        .all_places()
        .into_iter()
        .filter(|p| fenced.iter().any(|(k, _)| *k == member_of(m.pg, p)))
        .collect();
    let mut union = RecordUnion::default();
    let mut answered: Vec<MemberKey> = Vec::new();
    let mut backoff = Duration::from_millis(50);
    loop {
        let calls = places
            .iter()
            .filter(|p| !answered.contains(&member_of(m.pg, p)))
            .map(|place| async move {
                let segment = segment_of(volume, m.pg, place);
                let records =
                    read_all(transport, place, segment, floor, 0, limits.batch_bytes).await;
                (member_of(m.pg, place), records)
            });
        for (member, records) in join_all(calls).await {
            if let Ok(records) = records {
                for r in records {
                    union.add(member, r, &volume.history);
                }
                answered.push(member);
            }
        }
        if is_read_quorum(&set, &answered) {
            return Ok(union);
        }
        if Instant::now() + backoff >= limits.deadline {
            return Err(QuorumError::Unavailable(format!(
                "recovery of volume {}: fewer than 3 segments of PG {} returned their records",
                volume.name, m.pg
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// A PG with no record in (floor, VDL]: its last LSN at or below the floor, found by
/// reading backwards from the floor in doubling windows on its fenced members.
async fn tail_below(
    transport: &dyn SegmentTransport,
    volume: &Volume,
    m: &PgMembership,
    fenced: &[(MemberKey, SegmentStatus)],
    floor: Lsn,
    limits: RecoveryLimits,
) -> Result<Lsn, QuorumError> {
    if floor == 0 {
        return Ok(0);
    }
    let places: Vec<SegmentPlace> = m
        .all_places()
        .into_iter()
        .filter(|p| fenced.iter().any(|(k, _)| *k == member_of(m.pg, p)))
        .collect();
    let mut window: Lsn = 256;
    loop {
        let after = floor.saturating_sub(window);
        let calls = places.iter().map(|place| async move {
            let segment = segment_of(volume, m.pg, place);
            read_all(transport, place, segment, after, floor, limits.batch_bytes).await
        });
        let mut answered = 0;
        let mut best: Option<Lsn> = None;
        for records in join_all(calls).await.into_iter().flatten() {
            answered += 1;
            let last = records
                .iter()
                .filter(|r| !is_void(r.epoch, r.lsn, &volume.history))
                .map(|r| r.lsn)
                .max();
            best = best.max(last);
        }
        if answered >= 3.min(places.len()) {
            if let Some(tail) = best {
                return Ok(tail);
            }
            if after == 0 {
                // Nothing at or below the floor is left in any log: the PG has no records,
                // or its log was collected below its materialized point. The highest SCL
                // at or below the floor is then the best backlink there is.
                let scl = fenced
                    .iter()
                    .map(|(_, s)| s.scl)
                    .filter(|s| *s <= floor)
                    .max()
                    .unwrap_or(0);
                let collected = fenced.iter().any(|(_, s)| s.materialized_lsn > 0);
                return Ok(if collected { scl } else { 0 });
            }
            window = window.saturating_mul(4);
            continue;
        }
        if Instant::now() >= limits.deadline {
            return Err(QuorumError::Unavailable(format!(
                "recovery of volume {}: could not read PG {}'s log below LSN {floor}",
                volume.name, m.pg
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug)]
enum ReplicationError {
    /// Segments refuse epoch E's appends until its truncation entry exists.
    NeedsTruncationFirst,
    Failed(QuorumError),
}

impl ReplicationError {
    fn into_quorum_error(self) -> QuorumError {
        match self {
            ReplicationError::Failed(e) => e,
            ReplicationError::NeedsTruncationFirst => QuorumError::Unavailable(
                "segments refused recovery's re-replication even after the truncation".into(),
            ),
        }
    }
}

/// Step 5: every record of (floor, VDL] onto a write quorum of its PG.
async fn rereplicate(
    transport: &dyn SegmentTransport,
    volume: &Volume,
    epoch: Epoch,
    unions: &mut [RecordUnion],
    floor: Lsn,
    vdl: Lsn,
    limits: RecoveryLimits,
) -> Result<(), ReplicationError> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut calls = Vec::new();
        let mut all_durable = true;
        for (m, union) in volume.pgs.iter().zip(unions.iter()) {
            let set = QuorumSet::from_membership(m);
            // Nothing above the floor is durable when VDL is the floor itself.
            let range: Vec<&Held> = if vdl > floor {
                union
                    .records
                    .range(floor + 1..=vdl)
                    .map(|(_, h)| h)
                    .collect()
            } else {
                Vec::new()
            };
            if range.iter().all(|h| set.is_write_quorum(&h.holders)) {
                continue;
            }
            all_durable = false;
            for place in m.all_places() {
                let member = member_of(m.pg, &place);
                let missing: Vec<Arc<LogRecord>> = range
                    .iter()
                    .filter(|h| !h.holders.contains(&member))
                    .map(|h| Arc::new(h.record.clone()))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let segment = segment_of(volume, m.pg, &place);
                let membership_epoch = m.membership_epoch;
                calls.push(async move {
                    let mut acked = Vec::new();
                    for chunk in chunks(missing, limits.batch_bytes) {
                        let lsns: Vec<Lsn> = chunk.iter().map(|r| r.lsn).collect();
                        let args = AppendArgs {
                            epoch,
                            membership_epoch,
                            vdl: 0,
                            pg_tail: 0,
                            records: chunk,
                        };
                        match transport.append(&place, segment, args).await {
                            Ok(r) if r.outcome == Outcome::Ok => acked.extend(lsns),
                            Ok(r) => return (m.pg, member, acked, Some(r)),
                            Err(_) => break,
                        }
                    }
                    (m.pg, member, acked, None)
                });
            }
        }
        if all_durable {
            return Ok(());
        }
        let mut needs_fence = false;
        for (pg, member, acked, refusal) in join_all(calls).await {
            if let Some(union) = unions.get_mut(pg as usize) {
                for lsn in acked {
                    if let Some(h) = union.records.get_mut(&lsn) {
                        if !h.holders.contains(&member) {
                            h.holders.push(member);
                        }
                    }
                }
            }
            match refusal.map(|r| (r.outcome, r.epoch)) {
                Some((Outcome::Fenced, newer)) => {
                    return Err(ReplicationError::Failed(QuorumError::Fenced {
                        epoch,
                        newer_epoch: newer,
                        outcome_unknown: false,
                    }))
                }
                Some((Outcome::NeedsFence, _)) => needs_fence = true,
                _ => {}
            }
        }
        if needs_fence {
            return Err(ReplicationError::NeedsTruncationFirst);
        }
        if Instant::now() + backoff >= limits.deadline {
            return Err(ReplicationError::Failed(QuorumError::Unavailable(format!(
                "recovery of volume {} could not re-replicate (LSN {floor}, {vdl}] to write quorums",
                volume.name
            ))));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Step 6: the truncation entry, then the second fence so segments learn it.
async fn complete(
    catalog: &dyn CatalogService,
    transport: &dyn SegmentTransport,
    name: &str,
    epoch: Epoch,
    vdl: Lsn,
    limits: RecoveryLimits,
) -> Result<Volume, QuorumError> {
    let completed = catalog.complete_recovery(name, epoch, vdl).await?;
    if completed.epoch > epoch {
        return Err(QuorumError::Fenced {
            epoch,
            newer_epoch: completed.epoch,
            outcome_unknown: false,
        });
    }
    fence_all(
        transport,
        &completed,
        epoch,
        &completed.history,
        limits,
        false,
    )
    .await?;
    Ok(completed)
}

/// Splits records into appends of about `max_bytes` each (at least one record each).
pub(crate) fn chunks(records: Vec<Arc<LogRecord>>, max_bytes: u64) -> Vec<Vec<Arc<LogRecord>>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0u64;
    for r in records {
        let len = r.size_bytes() as u64;
        if !current.is_empty() && size + len > max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(r);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(lsn: Lsn, epoch: Epoch, pg: u32, cpl: bool) -> LogRecord {
        LogRecord {
            lsn,
            prev_lsn: 0,
            epoch,
            pg,
            page: u64::from(pg),
            cpl,
            ops: Vec::new(),
            crc32: 0,
        }
        .seal()
    }

    fn m(slot: u32) -> MemberKey {
        MemberKey {
            pg: 0,
            slot,
            node_id: u64::from(slot) + 1,
        }
    }

    fn point_of(floor: Lsn, union: &RecordUnion) -> DurablePoint {
        durable_point(floor, union.records.iter().map(|(l, h)| (*l, h.record.cpl)))
    }

    #[test]
    fn vcl_stops_at_the_first_hole() {
        let mut u = RecordUnion::default();
        for (l, cpl) in [(11, true), (12, false), (13, true), (15, true)] {
            u.add(m(0), rec(l, 1, 0, cpl), &[]);
        }
        assert_eq!(point_of(10, &u), DurablePoint { vcl: 13, vdl: 13 });
    }

    #[test]
    fn a_half_written_mini_transaction_is_cut_off() {
        // 11..13 is one mini-transaction whose CPL (13) is missing; 14 follows.
        let mut u = RecordUnion::default();
        for (l, cpl) in [(10, true), (11, false), (12, false), (14, true)] {
            u.add(m(1), rec(l, 1, 0, cpl), &[]);
        }
        assert_eq!(point_of(9, &u), DurablePoint { vcl: 12, vdl: 10 });
        // With nothing complete above the floor, VDL is the floor.
        let mut u = RecordUnion::default();
        u.add(m(1), rec(6, 1, 0, false), &[]);
        assert_eq!(point_of(5, &u), DurablePoint { vcl: 6, vdl: 5 });
        assert_eq!(
            point_of(5, &RecordUnion::default()),
            DurablePoint { vcl: 5, vdl: 5 }
        );
    }

    #[test]
    fn records_at_or_below_the_floor_do_not_count() {
        assert_eq!(
            durable_point(20, [(3, true), (21, true), (22, false)]),
            DurablePoint { vcl: 22, vdl: 21 }
        );
    }

    #[test]
    fn void_records_of_older_epochs_are_left_out() {
        // Epoch 2's recovery truncated above 12: epoch 1's 13 and 14 are void; epoch 2
        // wrote its own 13.
        let history = [
            Truncation {
                epoch: 1,
                truncated_above: 0,
            },
            Truncation {
                epoch: 2,
                truncated_above: 12,
            },
        ];
        assert!(is_void(1, 13, &history));
        assert!(!is_void(1, 12, &history));
        assert!(!is_void(2, 13, &history));
        let mut u = RecordUnion::default();
        u.add(m(0), rec(12, 1, 0, true), &history);
        u.add(m(0), rec(13, 1, 0, false), &history);
        u.add(m(1), rec(14, 1, 0, true), &history);
        u.add(m(2), rec(13, 2, 0, true), &history);
        assert_eq!(u.records.len(), 2);
        assert_eq!(u.records[&13].record.epoch, 2);
        assert_eq!(point_of(11, &u), DurablePoint { vcl: 13, vdl: 13 });
    }

    #[test]
    fn holders_accumulate_and_conflicts_keep_the_newer_epoch() {
        let mut u = RecordUnion::default();
        u.add(m(0), rec(5, 3, 0, true), &[]);
        u.add(m(1), rec(5, 3, 0, true), &[]);
        u.add(m(1), rec(5, 3, 0, true), &[]);
        assert_eq!(u.records[&5].holders, vec![m(0), m(1)]);
        u.add(m(2), rec(5, 2, 0, true), &[]);
        assert_eq!(u.records[&5].record.epoch, 3);
        u.add(m(3), rec(5, 4, 0, true), &[]);
        assert_eq!(u.records[&5].record.epoch, 4);
        assert_eq!(u.records[&5].holders, vec![m(3)]);
    }

    #[test]
    fn floor_is_the_highest_known_vdl_or_the_last_truncation() {
        let history = [Truncation {
            epoch: 4,
            truncated_above: 30,
        }];
        let s = |known_vdl| SegmentStatus {
            known_vdl,
            ..Default::default()
        };
        assert_eq!(floor(&history, &[s(12), s(25)]), 30);
        assert_eq!(floor(&history, &[s(12), s(41)]), 41);
        assert_eq!(floor(&[], &[s(0)]), 0);
    }

    #[test]
    fn tails_come_from_the_union_at_or_below_vdl() {
        let mut u = RecordUnion::default();
        let mut r = rec(8, 1, 1, true);
        r.page = 5;
        u.add(m(0), r.seal(), &[]);
        u.add(m(0), rec(9, 1, 0, true), &[]);
        u.add(m(0), rec(10, 1, 1, true), &[]);
        assert_eq!(tail_in_union(&u, 1, 9), Some(8));
        assert_eq!(tail_in_union(&u, 1, 10), Some(10));
        assert_eq!(tail_in_union(&u, 2, 10), None);
    }

    #[test]
    fn chunks_respect_the_byte_budget_but_never_split_below_one_record() {
        let records: Vec<Arc<LogRecord>> = (1..=5).map(|l| Arc::new(rec(l, 1, 0, true))).collect();
        let one = records[0].size_bytes() as u64;
        let split = chunks(records.clone(), one * 2);
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(chunks(records, 1).len(), 5);
    }
}
