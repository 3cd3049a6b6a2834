//! The volume catalog's share of the meta group's state machine (group 0), wrapped in
//! `MetaCommand::VolumeCatalog` / `MetaQuery::VolumeCatalog`: one `VolumeRecord` per volume
//! name, and the counter that hands out volume ids.
//!
//! Guarantees, because every change is one deterministic apply in the meta group:
//! - volume ids come from a counter in this state, so they are never reused: a volume
//!   deleted and created again is another volume (its segments have another id);
//! - the volume epoch only rises (`BeginRecovery`), and the truncation history gets at
//!   most one entry per epoch, only from the writer of the current epoch;
//! - a protection group is in at most one membership change at a time, its membership
//!   epoch rises by one at its start and by one at its end, and a node never holds two
//!   segments of one PG through a replacement.
//!
//! Not here: where segments go (`placement`, computed by the proposer from the directory
//! and handed in with `Create`), telling segments about their membership (`repair`), and
//! the segments' data (deleting a volume leaves its segments for a later collection).

use serde::{Deserialize, Serialize};

use crate::cluster::directory::NodeId;
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every volume-catalog key in the meta group's state (1 is the cluster
/// record, 2 the bucket catalog, 3 the stream catalog).
pub const VOLUME_CATALOG_TAG: u8 = 4;
const KIND_COUNTER: u8 = 0;
const KIND_VOLUME: u8 = 1;

/// Segments per protection group.
pub const SEGMENTS_PER_PG: usize = 6;
/// Volumes a cluster may hold.
pub const MAX_VOLUMES: usize = 256;
pub const DEFAULT_PG_COUNT: u32 = 4;
pub const MAX_PG_COUNT: u32 = 64;
pub const DEFAULT_PAGES_PER_PG: u32 = 256;
pub const MAX_PAGES_PER_PG: u32 = 65_536;
pub const MAX_NAME_CHARS: usize = 63;

pub type VolumeId = u64;
/// The node of each slot of a protection group (slot i at index i).
pub type Members = [NodeId; SEGMENTS_PER_PG];

/// Why the catalog refused a command (an answer, not a failure of the state machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotFound(String),
    /// The command does not fit the volume's current state (stale epoch, a change under way).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    LimitExceeded(String),
}

impl VolumeError {
    pub fn not_found(name: &VolumeName) -> VolumeError {
        VolumeError::NotFound(format!("volume '{name}' does not exist"))
    }
}

/// A volume name: 1 to 63 of `[a-z0-9-]`, neither starting nor ending with '-'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VolumeName(String);

impl VolumeName {
    pub fn parse(name: &str) -> Result<VolumeName, VolumeError> {
        let bad = |why: &str| {
            Err(VolumeError::InvalidArgument(format!(
                "volume name '{name}' {why}"
            )))
        };
        if name.is_empty() || name.len() > MAX_NAME_CHARS {
            return bad("must be 1 to 63 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("may hold only lowercase letters, digits and '-'");
        }
        if name.starts_with('-') || name.ends_with('-') {
            return bad("must not start or end with '-'");
        }
        Ok(VolumeName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VolumeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check a create's numbers; 0 takes the default.
pub fn check_geometry(pg_count: u32, pages_per_pg: u32) -> Result<(u32, u32), VolumeError> {
    let pg_count = if pg_count == 0 {
        DEFAULT_PG_COUNT
    } else {
        pg_count
    };
    let pages_per_pg = if pages_per_pg == 0 {
        DEFAULT_PAGES_PER_PG
    } else {
        pages_per_pg
    };
    if pg_count > MAX_PG_COUNT {
        return Err(VolumeError::InvalidArgument(format!(
            "pg_count must be between 1 and {MAX_PG_COUNT}, got {pg_count}"
        )));
    }
    if pages_per_pg > MAX_PAGES_PER_PG {
        return Err(VolumeError::InvalidArgument(format!(
            "pages_per_pg must be between 1 and {MAX_PAGES_PER_PG}, got {pages_per_pg}"
        )));
    }
    Ok((pg_count, pages_per_pg))
}

/// One completed recovery: records of earlier epochs above `truncated_above` are void.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    pub epoch: u64,
    pub truncated_above: u64,
}

/// One protection group's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgRecord {
    pub pg: u32,
    /// 1 at creation; +1 when a replacement starts and +1 when it ends.
    pub membership_epoch: u64,
    pub members: Members,
    /// During a replacement: the new six (one slot differs from `members`).
    pub next_members: Option<Members>,
    /// During a replacement: the new segment must hold everything up to here (the old
    /// members' highest known VDL when the change began) before the change ends.
    pub transition_target_lsn: u64,
}

impl PgRecord {
    pub fn in_transition(&self) -> bool {
        self.next_members.is_some()
    }

    /// Every node holding a segment of this PG (old and new set), each once.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self
            .members
            .iter()
            .chain(self.next_members.iter().flatten())
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The slot being replaced and its new node, during a replacement.
    pub fn replacement(&self) -> Option<(usize, NodeId)> {
        let next = self.next_members.as_ref()?;
        (0..SEGMENTS_PER_PG)
            .find(|i| next[*i] != self.members[*i])
            .map(|i| (i, next[i]))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: VolumeName,
    pub volume_id: VolumeId,
    pub pg_count: u32,
    pub pages_per_pg: u32,
    /// The newest epoch handed out by `BeginRecovery` (0: never opened).
    pub epoch: u64,
    /// One entry per completed recovery, in epoch order.
    pub history: Vec<Truncation>,
    pub pgs: Vec<PgRecord>,
    pub created_ms: u64,
}

impl VolumeRecord {
    pub fn pg(&self, pg: u32) -> Result<&PgRecord, VolumeError> {
        self.pgs.get(pg as usize).ok_or_else(|| {
            VolumeError::InvalidArgument(format!(
                "volume '{}' has {} protection groups; there is no PG {pg}",
                self.name, self.pg_count
            ))
        })
    }

    fn check_id(&self, volume_id: Option<VolumeId>) -> Result<(), VolumeError> {
        match volume_id {
            Some(id) if id != self.volume_id => Err(VolumeError::not_found(&self.name)),
            _ => Ok(()),
        }
    }

    pub fn begin_recovery(&mut self) {
        self.epoch += 1;
    }

    pub fn complete_recovery(
        &mut self,
        epoch: u64,
        truncated_above: u64,
    ) -> Result<(), VolumeError> {
        if epoch != self.epoch {
            return Err(VolumeError::FailedPrecondition(format!(
                "volume '{}' is at epoch {}, not {epoch}: a newer writer began recovery",
                self.name, self.epoch
            )));
        }
        if self.history.iter().any(|t| t.epoch == epoch) {
            return Err(VolumeError::FailedPrecondition(format!(
                "recovery of epoch {epoch} of volume '{}' is already complete",
                self.name
            )));
        }
        self.history.push(Truncation {
            epoch,
            truncated_above,
        });
        Ok(())
    }

    pub fn replace_segment(
        &mut self,
        pg: u32,
        slot: u32,
        new_node: NodeId,
        target_lsn: u64,
    ) -> Result<(), VolumeError> {
        let name = self.name.clone();
        let record = self.pg(pg)?;
        if slot as usize >= SEGMENTS_PER_PG {
            return Err(VolumeError::InvalidArgument(format!(
                "slot must be 0 to {}, got {slot}",
                SEGMENTS_PER_PG - 1
            )));
        }
        if new_node == 0 {
            return Err(VolumeError::InvalidArgument(
                "the new node of a replacement must be named".into(),
            ));
        }
        if record.in_transition() {
            return Err(VolumeError::FailedPrecondition(format!(
                "PG {pg} of volume '{name}' is already changing membership (epoch {})",
                record.membership_epoch
            )));
        }
        if record.members.contains(&new_node) {
            return Err(VolumeError::FailedPrecondition(format!(
                "node {new_node} already holds a segment of PG {pg} of volume '{name}'"
            )));
        }
        let record = &mut self.pgs[pg as usize];
        let mut next = record.members;
        next[slot as usize] = new_node;
        record.next_members = Some(next);
        record.membership_epoch += 1;
        record.transition_target_lsn = target_lsn;
        Ok(())
    }

    pub fn finish_replace(&mut self, pg: u32, membership_epoch: u64) -> Result<(), VolumeError> {
        let name = self.name.clone();
        let record = self.pg(pg)?;
        if record.membership_epoch != membership_epoch {
            return Err(VolumeError::FailedPrecondition(format!(
                "PG {pg} of volume '{name}' is at membership epoch {}, not {membership_epoch}",
                record.membership_epoch
            )));
        }
        let record = &mut self.pgs[pg as usize];
        let Some(next) = record.next_members.take() else {
            return Err(VolumeError::FailedPrecondition(format!(
                "PG {pg} of volume '{name}' is not changing membership"
            )));
        };
        record.members = next;
        record.membership_epoch += 1;
        record.transition_target_lsn = 0;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeCatalogCommand {
    Create {
        name: VolumeName,
        /// 0: the default.
        pg_count: u32,
        pages_per_pg: u32,
        /// One entry per PG (`placement`), chosen by the proposer.
        placement: Vec<Members>,
        created_ms: u64,
    },
    Delete {
        name: VolumeName,
    },
    /// Hand out the next epoch.
    BeginRecovery {
        name: VolumeName,
    },
    CompleteRecovery {
        name: VolumeName,
        epoch: u64,
        truncated_above: u64,
    },
    /// Start replacing the segment in `slot` of `pg` with one on `new_node`. With
    /// `volume_id`, only that incarnation of the name is touched.
    ReplaceSegment {
        name: VolumeName,
        volume_id: Option<VolumeId>,
        pg: u32,
        slot: u32,
        new_node: NodeId,
        target_lsn: u64,
    },
    /// End the replacement that `membership_epoch` began.
    FinishReplace {
        name: VolumeName,
        volume_id: Option<VolumeId>,
        pg: u32,
        membership_epoch: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeCatalogQuery {
    Get {
        name: VolumeName,
    },
    /// Every volume, in name order (at most `MAX_VOLUMES`).
    List,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeCatalogReply {
    Volume(Box<VolumeRecord>),
    Deleted,
    Volumes(Vec<VolumeRecord>),
}

pub type VolumeCatalogResult = Result<VolumeCatalogReply, VolumeError>;

fn counter_key() -> [u8; 2] {
    [VOLUME_CATALOG_TAG, KIND_COUNTER]
}

fn volume_key(name: &VolumeName) -> Vec<u8> {
    let mut k = vec![VOLUME_CATALOG_TAG, KIND_VOLUME];
    k.extend_from_slice(name.as_str().as_bytes());
    k
}

const VOLUME_PREFIX: [u8; 2] = [VOLUME_CATALOG_TAG, KIND_VOLUME];

pub fn load(state: &dyn StateRead, name: &VolumeName) -> Result<Option<VolumeRecord>, StoreError> {
    match state.get(&volume_key(name))? {
        Some(b) => Ok(Some(decode("volume catalog record", &b)?)),
        None => Ok(None),
    }
}

fn load_all(state: &dyn StateRead) -> Result<Vec<VolumeRecord>, StoreError> {
    state
        .scan(&VOLUME_PREFIX, &VOLUME_PREFIX, MAX_VOLUMES + 1)?
        .into_iter()
        .map(|(_, v)| decode("volume catalog record", &v))
        .collect()
}

fn save(txn: &mut dyn StateTxn, record: &VolumeRecord) {
    txn.put(&volume_key(&record.name), encode(record));
}

fn next_volume_id(txn: &mut dyn StateTxn) -> Result<VolumeId, StoreError> {
    let current: u64 = match txn.get(&counter_key())? {
        Some(b) => decode("volume id counter", &b)?,
        None => 0,
    };
    let next = current + 1;
    txn.put(&counter_key(), encode(&next));
    Ok(next)
}

/// Check a create and build its record (volume id 0 until the apply assigns one).
fn new_volume(
    name: VolumeName,
    pg_count: u32,
    pages_per_pg: u32,
    placement: Vec<Members>,
    created_ms: u64,
) -> Result<VolumeRecord, VolumeError> {
    let (pg_count, pages_per_pg) = check_geometry(pg_count, pages_per_pg)?;
    if placement.len() != pg_count as usize || placement.iter().flatten().any(|n| *n == 0) {
        return Err(VolumeError::InvalidArgument(format!(
            "placement of volume '{name}' must name a node for each of the 6 slots of {pg_count} PGs"
        )));
    }
    let pgs = placement
        .into_iter()
        .enumerate()
        .map(|(pg, members)| PgRecord {
            pg: pg as u32,
            membership_epoch: 1,
            members,
            next_members: None,
            transition_target_lsn: 0,
        })
        .collect();
    Ok(VolumeRecord {
        name,
        volume_id: 0,
        pg_count,
        pages_per_pg,
        epoch: 0,
        history: Vec::new(),
        pgs,
        created_ms,
    })
}

/// Change an existing volume with `change` and return it.
fn update(
    txn: &mut dyn StateTxn,
    name: &VolumeName,
    change: impl FnOnce(&mut VolumeRecord) -> Result<(), VolumeError>,
) -> Result<VolumeCatalogResult, StoreError> {
    let Some(mut record) = load(txn, name)? else {
        return Ok(Err(VolumeError::not_found(name)));
    };
    if let Err(e) = change(&mut record) {
        return Ok(Err(e));
    }
    save(txn, &record);
    Ok(Ok(VolumeCatalogReply::Volume(Box::new(record))))
}

pub fn apply(
    txn: &mut dyn StateTxn,
    command: VolumeCatalogCommand,
) -> Result<VolumeCatalogResult, StoreError> {
    match command {
        VolumeCatalogCommand::Create {
            name,
            pg_count,
            pages_per_pg,
            placement,
            created_ms,
        } => {
            if load(txn, &name)?.is_some() {
                return Ok(Err(VolumeError::AlreadyExists(format!(
                    "volume '{name}' already exists"
                ))));
            }
            let mut record = match new_volume(name, pg_count, pages_per_pg, placement, created_ms) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            if load_all(txn)?.len() >= MAX_VOLUMES {
                return Ok(Err(VolumeError::LimitExceeded(format!(
                    "the cluster holds {MAX_VOLUMES} volumes, the most it may"
                ))));
            }
            record.volume_id = next_volume_id(txn)?;
            save(txn, &record);
            Ok(Ok(VolumeCatalogReply::Volume(Box::new(record))))
        }
        VolumeCatalogCommand::Delete { name } => {
            if load(txn, &name)?.is_none() {
                return Ok(Err(VolumeError::not_found(&name)));
            }
            txn.delete(&volume_key(&name));
            Ok(Ok(VolumeCatalogReply::Deleted))
        }
        VolumeCatalogCommand::BeginRecovery { name } => update(txn, &name, |v| {
            v.begin_recovery();
            Ok(())
        }),
        VolumeCatalogCommand::CompleteRecovery {
            name,
            epoch,
            truncated_above,
        } => update(txn, &name, |v| v.complete_recovery(epoch, truncated_above)),
        VolumeCatalogCommand::ReplaceSegment {
            name,
            volume_id,
            pg,
            slot,
            new_node,
            target_lsn,
        } => update(txn, &name, |v| {
            v.check_id(volume_id)?;
            v.replace_segment(pg, slot, new_node, target_lsn)
        }),
        VolumeCatalogCommand::FinishReplace {
            name,
            volume_id,
            pg,
            membership_epoch,
        } => update(txn, &name, |v| {
            v.check_id(volume_id)?;
            v.finish_replace(pg, membership_epoch)
        }),
    }
}

pub fn read(
    state: &dyn StateRead,
    query: VolumeCatalogQuery,
) -> Result<VolumeCatalogResult, StoreError> {
    match query {
        VolumeCatalogQuery::Get { name } => Ok(match load(state, &name)? {
            Some(r) => Ok(VolumeCatalogReply::Volume(Box::new(r))),
            None => Err(VolumeError::not_found(&name)),
        }),
        VolumeCatalogQuery::List => Ok(Ok(VolumeCatalogReply::Volumes(load_all(state)?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;

    fn name(s: &str) -> VolumeName {
        VolumeName::parse(s).unwrap()
    }

    const SIX: Members = [1, 2, 3, 4, 5, 6];

    fn create(st: &mut MemState, n: &str, pgs: u32) -> VolumeCatalogResult {
        let count = if pgs == 0 { DEFAULT_PG_COUNT } else { pgs };
        apply(
            st,
            VolumeCatalogCommand::Create {
                name: name(n),
                pg_count: pgs,
                pages_per_pg: 0,
                placement: vec![SIX; count as usize],
                created_ms: 7,
            },
        )
        .unwrap()
    }

    fn volume(result: VolumeCatalogResult) -> VolumeRecord {
        match result.unwrap() {
            VolumeCatalogReply::Volume(v) => *v,
            other => panic!("{other:?}"),
        }
    }

    fn get(st: &MemState, n: &str) -> VolumeCatalogResult {
        read(st, VolumeCatalogQuery::Get { name: name(n) }).unwrap()
    }

    fn run(st: &mut MemState, command: VolumeCatalogCommand) -> VolumeCatalogResult {
        apply(st, command).unwrap()
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["a", "db", "vol-1", "0", &"x".repeat(63)] {
            assert!(VolumeName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "é", &"x".repeat(64)] {
            assert!(
                matches!(VolumeName::parse(bad), Err(VolumeError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_uses_defaults_and_assigns_ids_that_are_never_reused() {
        let mut st = MemState::default();
        let v = volume(create(&mut st, "a", 0));
        assert_eq!((v.volume_id, v.pg_count, v.pages_per_pg), (1, 4, 256));
        assert_eq!((v.epoch, v.history.len(), v.created_ms), (0, 0, 7));
        assert!(v
            .pgs
            .iter()
            .enumerate()
            .all(|(i, p)| p.pg == i as u32 && p.membership_epoch == 1 && !p.in_transition()));
        assert_eq!(
            create(&mut st, "a", 2).unwrap_err(),
            VolumeError::AlreadyExists("volume 'a' already exists".into())
        );
        assert_eq!(volume(get(&st, "a")), v);
        run(&mut st, VolumeCatalogCommand::Delete { name: name("a") }).unwrap();
        assert!(matches!(get(&st, "a"), Err(VolumeError::NotFound(_))));
        assert!(matches!(
            run(&mut st, VolumeCatalogCommand::Delete { name: name("a") }),
            Err(VolumeError::NotFound(_))
        ));
        assert_eq!(volume(create(&mut st, "a", 1)).volume_id, 2);
    }

    #[test]
    fn create_refuses_bad_numbers_and_placements() {
        let mut st = MemState::default();
        for (pgs, pages) in [(65, 1), (1, 65_537)] {
            let r = run(
                &mut st,
                VolumeCatalogCommand::Create {
                    name: name("a"),
                    pg_count: pgs,
                    pages_per_pg: pages,
                    placement: vec![SIX; pgs as usize],
                    created_ms: 1,
                },
            );
            assert!(matches!(r, Err(VolumeError::InvalidArgument(_))), "{r:?}");
        }
        for placement in [vec![SIX; 3], vec![[1, 2, 3, 0, 5, 6]; 4]] {
            let r = run(
                &mut st,
                VolumeCatalogCommand::Create {
                    name: name("a"),
                    pg_count: 4,
                    pages_per_pg: 1,
                    placement,
                    created_ms: 1,
                },
            );
            assert!(matches!(r, Err(VolumeError::InvalidArgument(_))), "{r:?}");
        }
        // A refused create takes no id.
        assert_eq!(volume(create(&mut st, "a", 1)).volume_id, 1);
    }

    #[test]
    fn the_cluster_holds_a_bounded_number_of_volumes() {
        let mut st = MemState::default();
        for i in 0..MAX_VOLUMES {
            create(&mut st, &format!("v{i}"), 1).unwrap();
        }
        assert!(matches!(
            create(&mut st, "one-more", 1),
            Err(VolumeError::LimitExceeded(_))
        ));
        let VolumeCatalogReply::Volumes(all) =
            read(&st, VolumeCatalogQuery::List).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(all.len(), MAX_VOLUMES);
    }

    #[test]
    fn list_is_in_name_order() {
        let mut st = MemState::default();
        for n in ["c", "a", "b"] {
            create(&mut st, n, 1).unwrap();
        }
        let VolumeCatalogReply::Volumes(all) =
            read(&st, VolumeCatalogQuery::List).unwrap().unwrap()
        else {
            panic!()
        };
        let names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn epochs_rise_and_only_the_current_writer_completes_recovery_once() {
        let mut st = MemState::default();
        create(&mut st, "a", 1).unwrap();
        let begin = |st: &mut MemState| {
            volume(run(
                st,
                VolumeCatalogCommand::BeginRecovery { name: name("a") },
            ))
        };
        let complete = |st: &mut MemState, epoch, truncated_above| {
            run(
                st,
                VolumeCatalogCommand::CompleteRecovery {
                    name: name("a"),
                    epoch,
                    truncated_above,
                },
            )
        };
        assert_eq!(begin(&mut st).epoch, 1);
        assert_eq!(begin(&mut st).epoch, 2);
        assert!(matches!(
            complete(&mut st, 1, 10),
            Err(VolumeError::FailedPrecondition(_))
        ));
        let v = volume(complete(&mut st, 2, 10));
        assert_eq!(
            v.history,
            [Truncation {
                epoch: 2,
                truncated_above: 10
            }]
        );
        assert!(matches!(
            complete(&mut st, 2, 11),
            Err(VolumeError::FailedPrecondition(_))
        ));
        assert_eq!(begin(&mut st).epoch, 3);
        assert_eq!(volume(complete(&mut st, 3, 12)).history.len(), 2);
        assert!(matches!(
            run(
                &mut st,
                VolumeCatalogCommand::BeginRecovery { name: name("zz") }
            ),
            Err(VolumeError::NotFound(_))
        ));
    }

    fn replace(
        st: &mut MemState,
        volume_id: Option<VolumeId>,
        pg: u32,
        slot: u32,
        new_node: NodeId,
    ) -> VolumeCatalogResult {
        run(
            st,
            VolumeCatalogCommand::ReplaceSegment {
                name: name("a"),
                volume_id,
                pg,
                slot,
                new_node,
                target_lsn: 40,
            },
        )
    }

    fn finish(st: &mut MemState, pg: u32, membership_epoch: u64) -> VolumeCatalogResult {
        run(
            st,
            VolumeCatalogCommand::FinishReplace {
                name: name("a"),
                volume_id: None,
                pg,
                membership_epoch,
            },
        )
    }

    #[test]
    fn a_replacement_runs_through_a_transitional_membership() {
        let mut st = MemState::default();
        create(&mut st, "a", 2).unwrap();
        let v = volume(replace(&mut st, Some(1), 1, 2, 9));
        let pg = &v.pgs[1];
        assert_eq!(pg.membership_epoch, 2);
        assert_eq!(pg.members, SIX);
        assert_eq!(pg.next_members, Some([1, 2, 9, 4, 5, 6]));
        assert_eq!(pg.transition_target_lsn, 40);
        assert_eq!(pg.replacement(), Some((2, 9)));
        assert_eq!(pg.nodes(), [1, 2, 3, 4, 5, 6, 9]);
        assert!(!v.pgs[0].in_transition());
        // One change at a time per PG; other PGs are free.
        assert!(matches!(
            replace(&mut st, None, 1, 3, 8),
            Err(VolumeError::FailedPrecondition(_))
        ));
        replace(&mut st, None, 0, 0, 8).unwrap();
        // Finishing needs the epoch that began the change.
        assert!(matches!(
            finish(&mut st, 1, 1),
            Err(VolumeError::FailedPrecondition(_))
        ));
        let v = volume(finish(&mut st, 1, 2));
        let pg = &v.pgs[1];
        assert_eq!(
            (pg.membership_epoch, pg.members, pg.next_members),
            (3, [1, 2, 9, 4, 5, 6], None)
        );
        assert_eq!(pg.transition_target_lsn, 0);
        // Finished once only.
        assert!(matches!(
            finish(&mut st, 1, 3),
            Err(VolumeError::FailedPrecondition(_))
        ));
    }

    #[test]
    fn replacements_are_checked() {
        let mut st = MemState::default();
        create(&mut st, "a", 1).unwrap();
        // A node that already holds a segment of the PG.
        assert!(matches!(
            replace(&mut st, None, 0, 0, 4),
            Err(VolumeError::FailedPrecondition(_))
        ));
        for (pg, slot, node) in [(1, 0, 9), (0, 6, 9), (0, 0, 0)] {
            assert!(matches!(
                replace(&mut st, None, pg, slot, node),
                Err(VolumeError::InvalidArgument(_))
            ));
        }
        // Another incarnation of the name, or no volume at all.
        assert!(matches!(
            replace(&mut st, Some(7), 0, 0, 9),
            Err(VolumeError::NotFound(_))
        ));
        run(&mut st, VolumeCatalogCommand::Delete { name: name("a") }).unwrap();
        assert!(matches!(
            replace(&mut st, None, 0, 0, 9),
            Err(VolumeError::NotFound(_))
        ));
        assert!(matches!(
            finish(&mut st, 0, 2),
            Err(VolumeError::NotFound(_))
        ));
        // Nothing was changed by the refusals.
        let v = volume(create(&mut st, "a", 1));
        assert_eq!(v.pgs[0].membership_epoch, 1);
    }
}
