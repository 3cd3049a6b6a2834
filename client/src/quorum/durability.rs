//! Durability bookkeeping of one writer: which LSNs are on a write quorum, and the points
//! that follow from that (docs/quorum-storage.md, "Writes: 4 of 6").
//!
//! Pure and deterministic: the writer feeds it allocations and acknowledgements and reads
//! back the points; no clock, no I/O.
//!
//! - A record is **durable** once 4 of its PG's six members acknowledged it; during a
//!   membership change, 4 of the old six **and** 4 of the new six. Once durable it stays
//!   durable (a later membership change does not undo it).
//! - **VCL**: the highest LSN such that every LSN from the open point up to it is durable.
//!   LSNs are dense, so VCL only needs the oldest records not yet passed.
//! - **VDL**: the highest consistency point (CPL) at or below VCL.
//! - **LAL**: no LSN is allocated more than `lal` above VDL (a mini-transaction larger than
//!   that may still start when nothing is in flight, or it would never run).
//! - Per PG, the last LSN at or below VCL and VDL (`pg_tail`), for piggybacking and reads;
//!   per member, the highest SCL it acknowledged.

use std::collections::{BTreeMap, HashMap};

use super::catalog::PgMembership;
use super::Lsn;

/// Acknowledgements needed from a six-member set.
pub const WRITE_QUORUM: usize = 4;

/// One segment of a PG as a member of a set: its slot on its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberKey {
    pub pg: u32,
    pub slot: u32,
    pub node_id: u64,
}

/// The set(s) whose acknowledgements make a PG's record durable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumSet {
    pub current: Vec<MemberKey>,
    /// Empty unless a membership change is under way.
    pub next: Vec<MemberKey>,
}

impl QuorumSet {
    pub fn from_membership(m: &PgMembership) -> Self {
        let keys = |places: &[super::SegmentPlace]| {
            places
                .iter()
                .map(|p| MemberKey {
                    pg: m.pg,
                    slot: p.slot,
                    node_id: p.node_id,
                })
                .collect()
        };
        QuorumSet {
            current: keys(&m.members),
            next: keys(&m.next_members),
        }
    }

    /// Whether `acks` hold a write quorum of every set.
    pub fn is_write_quorum(&self, acks: &[MemberKey]) -> bool {
        let count = |set: &[MemberKey]| set.iter().filter(|m| acks.contains(m)).count();
        count(&self.current) >= WRITE_QUORUM.min(self.current.len().max(1))
            && (self.next.is_empty() || count(&self.next) >= WRITE_QUORUM.min(self.next.len()))
    }

    /// Every member of either set, once.
    pub fn all(&self) -> Vec<MemberKey> {
        let mut all = self.current.clone();
        for m in &self.next {
            if !all.contains(m) {
                all.push(*m);
            }
        }
        all
    }
}

#[derive(Debug, Clone)]
struct Pending {
    pg: u32,
    cpl: bool,
    acks: Vec<MemberKey>,
    durable: bool,
}

/// Per-LSN acknowledgement tracking for one writer epoch.
#[derive(Debug, Clone)]
pub struct DurabilityTracker {
    sets: Vec<QuorumSet>,
    /// Allocated LSNs above VCL.
    pending: BTreeMap<Lsn, Pending>,
    next_lsn: Lsn,
    vcl: Lsn,
    vdl: Lsn,
    vcl_tails: Vec<Lsn>,
    vdl_tails: Vec<Lsn>,
    scls: HashMap<MemberKey, Lsn>,
    lal: u64,
}

impl DurabilityTracker {
    /// A tracker opening at `open_point` (recovery's VDL: every LSN at or below it is
    /// durable), with each PG's last LSN at or below it (`tails[pg]`, 0: none) and each
    /// PG's quorum set (`sets[pg]`).
    pub fn new(open_point: Lsn, tails: Vec<Lsn>, sets: Vec<QuorumSet>, lal: u64) -> Self {
        DurabilityTracker {
            sets,
            pending: BTreeMap::new(),
            next_lsn: open_point + 1,
            vcl: open_point,
            vdl: open_point,
            vcl_tails: tails.clone(),
            vdl_tails: tails,
            scls: HashMap::new(),
            lal: lal.max(1),
        }
    }

    pub fn vcl(&self) -> Lsn {
        self.vcl
    }

    pub fn vdl(&self) -> Lsn {
        self.vdl
    }

    /// The next LSN [`DurabilityTracker::allocate`] hands out.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// The last LSN of `pg` at or below VDL (0: none).
    pub fn pg_tail(&self, pg: u32) -> Lsn {
        self.vdl_tails.get(pg as usize).copied().unwrap_or(0)
    }

    /// Whether `count` more LSNs may be allocated now without passing LAL.
    pub fn can_allocate(&self, count: u64) -> bool {
        let last = self.next_lsn + count.max(1) - 1;
        last <= self.vdl + self.lal || self.next_lsn == self.vdl + 1
    }

    /// Registers the next LSN for a record of `pg`; `cpl` marks the end of a
    /// mini-transaction.
    pub fn allocate(&mut self, pg: u32, cpl: bool) -> Lsn {
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        self.pending.insert(
            lsn,
            Pending {
                pg,
                cpl,
                acks: Vec::new(),
                durable: false,
            },
        );
        lsn
    }

    /// `member` holds `lsns` (acknowledged by an `Append`). Returns whether VDL moved.
    pub fn ack(&mut self, member: MemberKey, lsns: impl IntoIterator<Item = Lsn>) -> bool {
        for lsn in lsns {
            let Some(p) = self.pending.get_mut(&lsn) else {
                continue;
            };
            if p.pg != member.pg || p.acks.contains(&member) {
                continue;
            }
            p.acks.push(member);
            if !p.durable {
                if let Some(set) = self.sets.get(p.pg as usize) {
                    p.durable = set.is_write_quorum(&p.acks);
                }
            }
        }
        self.advance()
    }

    /// Adopts a PG's new quorum set (a membership change started or finished) and
    /// re-evaluates what is durable under it. Returns whether VDL moved.
    pub fn set_membership(&mut self, pg: u32, set: QuorumSet) -> bool {
        if let Some(slot) = self.sets.get_mut(pg as usize) {
            *slot = set;
        }
        let set = self.sets.get(pg as usize).cloned().unwrap_or_default();
        for p in self.pending.values_mut() {
            if p.pg == pg && !p.durable {
                p.durable = set.is_write_quorum(&p.acks);
            }
        }
        self.advance()
    }

    pub fn quorum_set(&self, pg: u32) -> Option<&QuorumSet> {
        self.sets.get(pg as usize)
    }

    /// Whether `lsn` is known durable.
    pub fn is_durable(&self, lsn: Lsn) -> bool {
        lsn <= self.vcl || self.pending.get(&lsn).is_some_and(|p| p.durable)
    }

    /// Records the SCL a member reported in an acknowledgement (it only rises).
    pub fn note_scl(&mut self, member: MemberKey, scl: Lsn) {
        let entry = self.scls.entry(member).or_insert(0);
        *entry = (*entry).max(scl);
    }

    /// The highest SCL `member` acknowledged (0: none known).
    pub fn scl(&self, member: &MemberKey) -> Lsn {
        self.scls.get(member).copied().unwrap_or(0)
    }

    fn advance(&mut self) -> bool {
        let before = self.vdl;
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.vcl + 1 || !entry.get().durable {
                break;
            }
            let (lsn, p) = entry.remove_entry();
            self.vcl = lsn;
            if let Some(tail) = self.vcl_tails.get_mut(p.pg as usize) {
                *tail = lsn;
            }
            if p.cpl {
                self.vdl = lsn;
                self.vdl_tails.clone_from(&self.vcl_tails);
            }
        }
        self.vdl != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(pg: u32, slot: u32) -> MemberKey {
        MemberKey {
            pg,
            slot,
            node_id: u64::from(slot) + 1,
        }
    }

    fn six(pg: u32) -> QuorumSet {
        QuorumSet {
            current: (0..6).map(|s| member(pg, s)).collect(),
            next: Vec::new(),
        }
    }

    fn tracker(pgs: u32, open: Lsn, lal: u64) -> DurabilityTracker {
        DurabilityTracker::new(
            open,
            vec![0; pgs as usize],
            (0..pgs).map(six).collect(),
            lal,
        )
    }

    fn ack_slots(t: &mut DurabilityTracker, pg: u32, slots: &[u32], lsn: Lsn) -> bool {
        let mut moved = false;
        for &s in slots {
            moved |= t.ack(member(pg, s), [lsn]);
        }
        moved
    }

    #[test]
    fn a_record_is_durable_at_four_acks_not_three() {
        let mut t = tracker(1, 0, 100);
        let lsn = t.allocate(0, true);
        assert_eq!(lsn, 1);
        assert!(!ack_slots(&mut t, 0, &[0, 1, 2], 1));
        assert_eq!((t.vcl(), t.vdl()), (0, 0));
        // A repeated ack from the same member does not count twice.
        assert!(!t.ack(member(0, 2), [1]));
        assert!(ack_slots(&mut t, 0, &[5], 1));
        assert_eq!((t.vcl(), t.vdl()), (1, 1));
        assert_eq!(t.pg_tail(0), 1);
    }

    #[test]
    fn acks_from_another_pg_or_a_stranger_do_not_count() {
        let mut t = tracker(2, 0, 100);
        t.allocate(0, true);
        for s in 0..6 {
            t.ack(member(1, s), [1]);
        }
        t.ack(
            MemberKey {
                pg: 0,
                slot: 0,
                node_id: 99,
            },
            [1],
        );
        assert_eq!(t.vdl(), 0);
        assert!(!t.is_durable(1));
    }

    #[test]
    fn vcl_stops_at_a_hole_and_jumps_when_it_fills() {
        let mut t = tracker(2, 10, 100);
        let a = t.allocate(0, true); // 11
        let b = t.allocate(1, true); // 12
        let c = t.allocate(0, true); // 13
        assert_eq!((a, b, c), (11, 12, 13));
        ack_slots(&mut t, 0, &[0, 1, 2, 3], c);
        ack_slots(&mut t, 0, &[0, 1, 2, 3], a);
        assert_eq!(t.vcl(), 11);
        assert!(t.is_durable(13));
        assert!(ack_slots(&mut t, 1, &[2, 3, 4, 5], b));
        assert_eq!((t.vcl(), t.vdl()), (13, 13));
        assert_eq!((t.pg_tail(0), t.pg_tail(1)), (13, 12));
    }

    #[test]
    fn vdl_moves_only_at_consistency_points() {
        let mut t = tracker(2, 0, 100);
        // A mini-transaction of three records over two PGs.
        t.allocate(0, false);
        t.allocate(1, false);
        t.allocate(0, true);
        ack_slots(&mut t, 0, &[0, 1, 2, 3], 1);
        ack_slots(&mut t, 1, &[0, 1, 2, 3], 2);
        assert_eq!((t.vcl(), t.vdl()), (2, 0));
        assert_eq!(t.pg_tail(0), 0, "pg_tail follows VDL, not VCL");
        ack_slots(&mut t, 0, &[0, 1, 2, 3], 3);
        assert_eq!((t.vcl(), t.vdl()), (3, 3));
        assert_eq!((t.pg_tail(0), t.pg_tail(1)), (3, 2));
    }

    #[test]
    fn a_transition_needs_four_of_each_set() {
        let mut t = tracker(1, 0, 100);
        // Slot 5 moves from node 6 to node 60.
        let mut next = six(0).current;
        next[5].node_id = 60;
        t.set_membership(
            0,
            QuorumSet {
                current: six(0).current,
                next: next.clone(),
            },
        );
        t.allocate(0, true);
        // Slots 2..5 of the old set: 4 old acks, but only 3 of the new set (node 6 is
        // not in it).
        ack_slots(&mut t, 0, &[2, 3, 4, 5], 1);
        assert_eq!(t.vdl(), 0);
        assert!(t.ack(next[5], [1]));
        assert_eq!(t.vdl(), 1);
    }

    #[test]
    fn finishing_a_transition_re_evaluates_pending_records() {
        let mut t = tracker(1, 0, 100);
        let mut next = six(0).current;
        next[0].node_id = 70;
        t.set_membership(
            0,
            QuorumSet {
                current: six(0).current,
                next: next.clone(),
            },
        );
        t.allocate(0, true);
        // Acks from the new member and slots 1..3: 4 of the new set, 3 of the old.
        t.ack(next[0], [1]);
        ack_slots(&mut t, 0, &[1, 2, 3], 1);
        assert_eq!(t.vdl(), 0);
        assert!(t.set_membership(
            0,
            QuorumSet {
                current: next,
                next: Vec::new()
            }
        ));
        assert_eq!(t.vdl(), 1);
    }

    #[test]
    fn lal_bounds_allocation_above_vdl() {
        let mut t = tracker(1, 0, 3);
        assert!(t.can_allocate(3));
        assert!(!t.can_allocate(4) || t.next_lsn() == t.vdl() + 1);
        for _ in 0..3 {
            t.allocate(0, true);
        }
        assert!(!t.can_allocate(1));
        ack_slots(&mut t, 0, &[0, 1, 2, 3], 1);
        assert!(t.can_allocate(1));
        assert!(!t.can_allocate(2));
    }

    #[test]
    fn an_oversized_mini_transaction_may_start_when_nothing_is_in_flight() {
        let mut t = tracker(1, 5, 2);
        assert!(t.can_allocate(10));
        t.allocate(0, true);
        assert!(!t.can_allocate(10));
    }

    #[test]
    fn scl_only_rises() {
        let mut t = tracker(1, 0, 10);
        t.note_scl(member(0, 1), 7);
        t.note_scl(member(0, 1), 3);
        assert_eq!(t.scl(&member(0, 1)), 7);
        assert_eq!(t.scl(&member(0, 2)), 0);
    }

    #[test]
    fn open_point_tails_are_kept_until_a_newer_cpl() {
        let mut t = DurabilityTracker::new(20, vec![18, 20], vec![six(0), six(1)], 10);
        assert_eq!((t.pg_tail(0), t.pg_tail(1)), (18, 20));
        assert_eq!(t.allocate(0, true), 21);
        ack_slots(&mut t, 0, &[0, 1, 2, 3], 21);
        assert_eq!((t.pg_tail(0), t.pg_tail(1)), (21, 20));
    }
}
