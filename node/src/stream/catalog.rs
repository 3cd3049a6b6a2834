//! A stream's catalog record, kept in the meta group (`catalog_state`): its incarnation,
//! shards (hash ranges, lineage, starting and ending sequence numbers), retention, mode,
//! tags and the reshard under way. The records themselves live in data groups, one shard
//! log per (stream, incarnation, shard) (`log`).
//!
//! Resharding touches shard logs and the catalog, so it runs as a plan of steps
//! (`reshard`), each a split or a merge done in two idempotent halves: the service closes
//! the parents' logs (which fixes their ending sequence numbers and refuses further
//! puts), then records the step here, which adds the children and marks the parents
//! closed. The plan is fixed when the reshard begins (`begin_reshard`, which turns the
//! stream `UPDATING`), so whoever finishes it (the caller, or the stream worker after a
//! crash) does the same steps. A put that meets a closed log before its step is recorded
//! reads the catalog again and retries: the step is one Raft round trip away.
//!
//! Pure: (record, command) → (record, result); no clock (times come in the command).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{
    HashRange, Incarnation, SequenceNumber, ShardId, StreamError, StreamName, ACCOUNT_ID,
    MAX_RETENTION_HOURS, MIN_RETENTION_HOURS, REGION,
};
use super::reshard::{self, ReshardStep};

/// Kinesis's default quota of open shards (Stratus applies it per stream).
pub const MAX_SHARDS_PER_STREAM: u32 = 500;
/// On-demand streams start with 4 shards, as Kinesis's do.
pub const ON_DEMAND_SHARDS: u32 = 4;
pub const DEFAULT_RETENTION_HOURS: u32 = 24;
/// Tags a stream may carry.
pub const MAX_TAGS: usize = 50;
/// UpdateShardCount calls a stream may make in a rolling 24 hours.
pub const MAX_SCALINGS_PER_DAY: usize = 10;
const DAY_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    pub fn parse(s: &str) -> Result<StreamMode, StreamError> {
        match s {
            "PROVISIONED" => Ok(StreamMode::Provisioned),
            "ON_DEMAND" => Ok(StreamMode::OnDemand),
            other => Err(StreamError::constraint(
                "streamModeDetails.streamMode",
                other,
                "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]",
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Active,
    Updating,
}

impl StreamStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub id: ShardId,
    pub range: HashRange,
    pub parent: Option<ShardId>,
    pub adjacent_parent: Option<ShardId>,
    pub created_ms: u64,
    /// Set when the shard was closed by a split or merge.
    pub ending: Option<SequenceNumber>,
    pub closed_ms: Option<u64>,
}

impl ShardRecord {
    pub fn is_open(&self) -> bool {
        self.ending.is_none()
    }

    pub fn starting(&self) -> SequenceNumber {
        SequenceNumber {
            shard: self.id.0,
            position: 0,
        }
    }

    /// Whether the shard was open at some moment of `[from_ms, to_ms]`.
    pub fn open_during(&self, from_ms: u64, to_ms: u64) -> bool {
        self.created_ms <= to_ms && self.closed_ms.is_none_or(|c| c >= from_ms)
    }
}

/// What a reshard was asked for (UpdateShardCount keeps its target for the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReshardRequest {
    Split {
        shard: ShardId,
        new_starting_hash_key: u128,
    },
    Merge {
        shard: ShardId,
        adjacent: ShardId,
    },
    Scale {
        target: u32,
    },
}

/// A reshard under way: its plan and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshard {
    pub request: ReshardRequest,
    pub steps: Vec<ReshardStep>,
    /// The first step not recorded yet.
    pub next: usize,
    /// When the reshard began or last recorded a step (the worker takes over stalled ones).
    pub updated_ms: u64,
}

impl Reshard {
    pub fn next_step(&self) -> Option<ReshardStep> {
        self.steps.get(self.next).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: StreamName,
    pub incarnation: Incarnation,
    pub mode: StreamMode,
    pub status: StreamStatus,
    pub shards: Vec<ShardRecord>,
    pub retention_hours: u32,
    pub created_ms: u64,
    pub tags: BTreeMap<String, String>,
    pub pending: Option<Reshard>,
    /// When UpdateShardCount ran in the last 24 hours.
    pub scalings_ms: Vec<u64>,
}

fn check_shard_count(shard_count: u32) -> Result<(), StreamError> {
    if shard_count == 0 {
        return Err(StreamError::constraint(
            "shardCount",
            shard_count,
            "Member must have value greater than or equal to 1",
        ));
    }
    if shard_count > MAX_SHARDS_PER_STREAM {
        return Err(shard_limit(shard_count));
    }
    Ok(())
}

fn shard_limit(shards: u32) -> StreamError {
    StreamError::LimitExceeded(format!(
        "This request would exceed the shard limit for the account {ACCOUNT_ID} in {REGION}. \
         Current limit of shards is {MAX_SHARDS_PER_STREAM}; the stream would have {shards}."
    ))
}

pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), StreamError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(StreamError::invalid(format!(
                "Tag key {k} must be between 1 and 128 characters long."
            )));
        }
        if v.chars().count() > 256 {
            return Err(StreamError::invalid(format!(
                "Tag value of key {k} must be at most 256 characters long."
            )));
        }
        if k.starts_with("aws:") {
            return Err(StreamError::invalid(
                "Tag keys starting with 'aws:' are reserved for use by AWS.",
            ));
        }
    }
    Ok(())
}

impl StreamRecord {
    pub fn new(
        name: StreamName,
        incarnation: Incarnation,
        shard_count: u32,
        mode: StreamMode,
        now_ms: u64,
    ) -> Result<StreamRecord, StreamError> {
        check_shard_count(shard_count)?;
        let shards = HashRange::even(shard_count)
            .into_iter()
            .enumerate()
            .map(|(i, range)| ShardRecord {
                id: ShardId(i as u32),
                range,
                parent: None,
                adjacent_parent: None,
                created_ms: now_ms,
                ending: None,
                closed_ms: None,
            })
            .collect();
        Ok(StreamRecord {
            name,
            incarnation,
            mode,
            status: StreamStatus::Active,
            shards,
            retention_hours: DEFAULT_RETENTION_HOURS,
            created_ms: now_ms,
            tags: BTreeMap::new(),
            pending: None,
            scalings_ms: Vec::new(),
        })
    }

    pub fn arn(&self) -> String {
        self.name.arn()
    }

    pub fn shard(&self, id: ShardId) -> Result<&ShardRecord, StreamError> {
        self.shards.iter().find(|s| s.id == id).ok_or_else(|| {
            StreamError::ResourceNotFound(format!(
                "Shard {id} in stream {} under account {ACCOUNT_ID} does not exist",
                self.name
            ))
        })
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &ShardRecord> {
        self.shards.iter().filter(|s| s.is_open())
    }

    pub fn open_shard_count(&self) -> u32 {
        self.open_shards().count() as u32
    }

    /// The open shard whose range holds `hash_key`.
    pub fn shard_for(&self, hash_key: u128) -> Option<&ShardRecord> {
        self.open_shards().find(|s| s.range.contains(hash_key))
    }

    pub(super) fn next_id(&self) -> ShardId {
        ShardId(self.shards.iter().map(|s| s.id.0 + 1).max().unwrap_or(0))
    }

    fn check_open(&self, id: ShardId) -> Result<&ShardRecord, StreamError> {
        let shard = self.shard(id)?;
        if !shard.is_open() {
            return Err(StreamError::ResourceInUse(format!(
                "Shard {id} in stream {} under account {ACCOUNT_ID} has already been merged or split, and thus is not eligible for merging or splitting.",
                self.name
            )));
        }
        Ok(shard)
    }

    fn check_active(&self) -> Result<(), StreamError> {
        if self.status != StreamStatus::Active {
            return Err(StreamError::ResourceInUse(format!(
                "Stream {} under account {ACCOUNT_ID} not ACTIVE, instead in state {}",
                self.name,
                self.status.as_str()
            )));
        }
        Ok(())
    }

    fn check_provisioned(&self, operation: &str) -> Result<(), StreamError> {
        if self.mode == StreamMode::OnDemand {
            return Err(StreamError::validation(format!(
                "{operation} is not supported for stream {} under account {ACCOUNT_ID} because it is in ON_DEMAND capacity mode.",
                self.name
            )));
        }
        Ok(())
    }

    /// Check a split: an open shard, a key strictly inside its range, room for one more.
    pub fn check_split(
        &self,
        shard: ShardId,
        new_starting_hash_key: u128,
    ) -> Result<(), StreamError> {
        let parent = self.check_open(shard)?;
        if new_starting_hash_key <= parent.range.start || new_starting_hash_key > parent.range.end {
            return Err(StreamError::invalid(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {shard} in stream {} under account {ACCOUNT_ID} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                self.name, parent.range.start, parent.range.end
            )));
        }
        if self.open_shard_count() + 1 > MAX_SHARDS_PER_STREAM {
            return Err(shard_limit(self.open_shard_count() + 1));
        }
        Ok(())
    }

    /// Check a merge: both open and adjacent.
    pub fn check_merge(&self, shard: ShardId, adjacent: ShardId) -> Result<(), StreamError> {
        let a = self.check_open(shard)?;
        let b = self.check_open(adjacent)?;
        let adjacent_ranges = a.range.end.checked_add(1) == Some(b.range.start)
            || b.range.end.checked_add(1) == Some(a.range.start);
        if shard == adjacent || !adjacent_ranges {
            return Err(StreamError::invalid(format!(
                "Shards {shard} and {adjacent} in stream {} under account {ACCOUNT_ID} are not an adjacent pair of shards eligible for merging",
                self.name
            )));
        }
        Ok(())
    }

    /// Check UpdateShardCount's limits: within half and double of the open shards, under
    /// the shard quota, at most ten times a day.
    pub fn check_scale(&self, target: u32, now_ms: u64) -> Result<(), StreamError> {
        if target == 0 {
            return Err(StreamError::constraint(
                "targetShardCount",
                target,
                "Member must have value greater than or equal to 1",
            ));
        }
        let open = self.open_shard_count();
        if target > MAX_SHARDS_PER_STREAM {
            return Err(shard_limit(target));
        }
        if target > open.saturating_mul(2) {
            return Err(StreamError::LimitExceeded(format!(
                "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {open} Target shard count: {target}"
            )));
        }
        if target < open.div_ceil(2) {
            return Err(StreamError::LimitExceeded(format!(
                "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {open} Target shard count: {target}"
            )));
        }
        let recent = self
            .scalings_ms
            .iter()
            .filter(|t| now_ms.saturating_sub(**t) < DAY_MS)
            .count();
        if recent >= MAX_SCALINGS_PER_DAY {
            return Err(StreamError::LimitExceeded(format!(
                "Stream {} under account {ACCOUNT_ID} has already been scaled {recent} times in the last 24 hours; the limit is {MAX_SCALINGS_PER_DAY}.",
                self.name
            )));
        }
        Ok(())
    }

    /// Start a reshard: check it, fix its plan and turn the stream UPDATING.
    pub fn begin_reshard(
        &mut self,
        request: ReshardRequest,
        now_ms: u64,
    ) -> Result<(), StreamError> {
        self.check_active()?;
        let steps = match request {
            ReshardRequest::Split {
                shard,
                new_starting_hash_key,
            } => {
                self.check_provisioned("SplitShard")?;
                self.check_split(shard, new_starting_hash_key)?;
                vec![ReshardStep::Split {
                    shard,
                    new_starting_hash_key,
                }]
            }
            ReshardRequest::Merge { shard, adjacent } => {
                self.check_provisioned("MergeShards")?;
                self.check_merge(shard, adjacent)?;
                vec![ReshardStep::Merge { shard, adjacent }]
            }
            ReshardRequest::Scale { target } => {
                self.check_provisioned("UpdateShardCount")?;
                self.check_scale(target, now_ms)?;
                self.scalings_ms
                    .retain(|t| now_ms.saturating_sub(*t) < DAY_MS);
                self.scalings_ms.push(now_ms);
                reshard::plan_uniform(self, target)
            }
        };
        if steps.is_empty() {
            // Already at the target: nothing to do, the stream stays ACTIVE.
            return Ok(());
        }
        self.status = StreamStatus::Updating;
        self.pending = Some(Reshard {
            request,
            steps,
            next: 0,
            updated_ms: now_ms,
        });
        Ok(())
    }

    /// Record step `index` of the pending reshard, whose parents' logs closed at
    /// `endings` (in the order of `ReshardStep::parents`). A step already recorded is a
    /// no-op, so the same step may be finished twice (by its caller and the worker).
    pub fn record_step(
        &mut self,
        index: usize,
        endings: &[SequenceNumber],
        now_ms: u64,
    ) -> Result<(), StreamError> {
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        if index < pending.next {
            return Ok(());
        }
        let Some(step) = pending.steps.get(index).copied() else {
            return Err(StreamError::invalid(format!(
                "reshard step {index} is not part of the plan"
            )));
        };
        if index != pending.next || endings.len() != step.parents().len() {
            return Err(StreamError::invalid(format!(
                "reshard step {index} cannot be recorded now (next is {})",
                pending.next
            )));
        }
        pending.next += 1;
        pending.updated_ms = now_ms;
        if pending.next == pending.steps.len() {
            self.pending = None;
            self.status = StreamStatus::Active;
        }
        self.apply_step(step, endings, now_ms);
        Ok(())
    }

    /// Add the step's children and close its parents (checked when the plan was made).
    pub(super) fn apply_step(
        &mut self,
        step: ReshardStep,
        endings: &[SequenceNumber],
        now_ms: u64,
    ) {
        let first = self.next_id();
        let child = |id: u32, range, parent, adjacent_parent| ShardRecord {
            id: ShardId(id),
            range,
            parent: Some(parent),
            adjacent_parent,
            created_ms: now_ms,
            ending: None,
            closed_ms: None,
        };
        match step {
            ReshardStep::Split {
                shard,
                new_starting_hash_key: key,
            } => {
                let Ok(range) = self.shard(shard).map(|s| s.range) else {
                    return;
                };
                let low = HashRange {
                    start: range.start,
                    end: key.saturating_sub(1),
                };
                let high = HashRange {
                    start: key,
                    end: range.end,
                };
                self.shards.push(child(first.0, low, shard, None));
                self.shards.push(child(first.0 + 1, high, shard, None));
            }
            ReshardStep::Merge { shard, adjacent } => {
                let (Ok(a), Ok(b)) = (
                    self.shard(shard).map(|s| s.range),
                    self.shard(adjacent).map(|s| s.range),
                ) else {
                    return;
                };
                let range = HashRange {
                    start: a.start.min(b.start),
                    end: a.end.max(b.end),
                };
                self.shards
                    .push(child(first.0, range, shard, Some(adjacent)));
            }
        }
        for (parent, ending) in step.parents().into_iter().zip(endings) {
            if let Some(s) = self.shards.iter_mut().find(|s| s.id == parent) {
                s.ending = Some(*ending);
                s.closed_ms = Some(now_ms);
            }
        }
    }

    /// The shards split or merged out of `id` (a reader that finished `id` goes on there).
    pub fn children_of(&self, id: ShardId) -> Vec<&ShardRecord> {
        self.shards
            .iter()
            .filter(|s| s.parent == Some(id) || s.adjacent_parent == Some(id))
            .collect()
    }

    pub fn set_retention(&mut self, hours: u32, increase: bool) -> Result<(), StreamError> {
        if hours < MIN_RETENTION_HOURS {
            return Err(StreamError::invalid(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > MAX_RETENTION_HOURS {
            return Err(StreamError::invalid(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        if increase && hours < self.retention_hours {
            return Err(StreamError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({} hours). Use DecreaseRetentionPeriod API.",
                self.name, self.retention_hours
            )));
        }
        if !increase && hours > self.retention_hours {
            return Err(StreamError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({} hours). Use IncreaseRetentionPeriod API.",
                self.name, self.retention_hours
            )));
        }
        self.retention_hours = hours;
        Ok(())
    }

    pub fn add_tags(&mut self, tags: BTreeMap<String, String>) -> Result<(), StreamError> {
        check_tags(&tags)?;
        let mut merged = self.tags.clone();
        merged.extend(tags);
        if merged.len() > MAX_TAGS {
            return Err(StreamError::LimitExceeded(format!(
                "Failed to add tags to stream {} under account {ACCOUNT_ID} because a given stream cannot have more than {MAX_TAGS} tags.",
                self.name
            )));
        }
        self.tags = merged;
        Ok(())
    }

    pub fn remove_tags(&mut self, keys: &[String]) {
        for k in keys {
            self.tags.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: u32) -> StreamRecord {
        StreamRecord::new(
            StreamName::parse("s").unwrap(),
            1,
            n,
            StreamMode::Provisioned,
            1,
        )
        .unwrap()
    }

    fn seq(shard: u32, position: u64) -> SequenceNumber {
        SequenceNumber { shard, position }
    }

    fn split(s: &mut StreamRecord, shard: u32, key: u128, ending: SequenceNumber, now: u64) {
        s.begin_reshard(
            ReshardRequest::Split {
                shard: ShardId(shard),
                new_starting_hash_key: key,
            },
            now,
        )
        .unwrap();
        assert_eq!(s.status, StreamStatus::Updating);
        s.record_step(0, &[ending], now).unwrap();
    }

    #[test]
    fn a_new_stream_covers_the_hash_space() {
        let s = stream(4);
        assert_eq!(s.open_shards().count(), 4);
        assert_eq!(s.shard_for(0).unwrap().id, ShardId(0));
        assert_eq!(s.shard_for(u128::MAX).unwrap().id, ShardId(3));
        let name = StreamName::parse("s").unwrap();
        assert!(matches!(
            StreamRecord::new(name.clone(), 1, 0, StreamMode::Provisioned, 1),
            Err(StreamError::Validation(_))
        ));
        assert!(matches!(
            StreamRecord::new(name, 1, 501, StreamMode::Provisioned, 1),
            Err(StreamError::LimitExceeded(_))
        ));
    }

    #[test]
    fn a_split_closes_the_parent_and_opens_two_children_with_lineage() {
        let mut s = stream(1);
        let mid = 1u128 << 127;
        assert!(s.check_split(ShardId(0), 0).is_err());
        split(&mut s, 0, mid, seq(0, 41), 5);
        // Recording the same step again is a no-op.
        s.record_step(0, &[seq(0, 41)], 6).unwrap();
        assert_eq!(s.status, StreamStatus::Active);
        assert!(s.pending.is_none());
        assert_eq!(s.shards.len(), 3);
        let parent = s.shard(ShardId(0)).unwrap();
        assert_eq!(
            (parent.ending, parent.closed_ms),
            (Some(seq(0, 41)), Some(5))
        );
        assert_eq!(s.shard_for(mid - 1).unwrap().id, ShardId(1));
        assert_eq!(s.shard_for(mid).unwrap().id, ShardId(2));
        let children: Vec<ShardId> = s.children_of(ShardId(0)).iter().map(|c| c.id).collect();
        assert_eq!(children, [ShardId(1), ShardId(2)]);
        assert!(matches!(
            s.check_split(ShardId(0), mid + 1),
            Err(StreamError::ResourceInUse(_))
        ));
    }

    #[test]
    fn a_stream_reshards_one_plan_at_a_time() {
        let mut s = stream(2);
        let req = ReshardRequest::Split {
            shard: ShardId(0),
            new_starting_hash_key: 10,
        };
        s.begin_reshard(req, 1).unwrap();
        assert!(matches!(
            s.begin_reshard(ReshardRequest::Scale { target: 3 }, 1),
            Err(StreamError::ResourceInUse(_))
        ));
        // Out of order or with the wrong number of endings: refused.
        assert!(s.record_step(1, &[seq(0, 1)], 2).is_err());
        assert!(s.record_step(0, &[], 2).is_err());
        s.record_step(0, &[seq(0, 1)], 2).unwrap();
        assert_eq!(s.open_shard_count(), 3);
    }

    #[test]
    fn a_merge_needs_adjacent_open_shards() {
        let mut s = stream(3);
        assert!(s.check_merge(ShardId(0), ShardId(2)).is_err());
        assert!(s.check_merge(ShardId(0), ShardId(0)).is_err());
        s.begin_reshard(
            ReshardRequest::Merge {
                shard: ShardId(1),
                adjacent: ShardId(0),
            },
            9,
        )
        .unwrap();
        s.record_step(0, &[seq(1, 5), seq(0, 7)], 9).unwrap();
        let merged = s.shard_for(0).unwrap();
        assert_eq!(merged.id, ShardId(3));
        assert_eq!(
            (merged.parent, merged.adjacent_parent),
            (Some(ShardId(1)), Some(ShardId(0)))
        );
        assert_eq!(
            merged.range.end + 1,
            s.shard(ShardId(2)).unwrap().range.start
        );
        assert_eq!(s.shard(ShardId(0)).unwrap().ending, Some(seq(0, 7)));
        assert_eq!(s.open_shards().count(), 2);
    }

    #[test]
    fn on_demand_streams_do_not_reshard_by_hand() {
        let mut s = StreamRecord::new(
            StreamName::parse("s").unwrap(),
            1,
            ON_DEMAND_SHARDS,
            StreamMode::OnDemand,
            1,
        )
        .unwrap();
        let e = s
            .begin_reshard(ReshardRequest::Scale { target: 5 }, 1)
            .unwrap_err();
        assert_eq!(e.code(), "ValidationException");
    }

    #[test]
    fn scaling_limits_are_kinesis_limits() {
        let mut s = stream(4);
        assert!(matches!(
            s.check_scale(9, 1),
            Err(StreamError::LimitExceeded(_))
        ));
        assert!(matches!(
            s.check_scale(1, 1),
            Err(StreamError::LimitExceeded(_))
        ));
        assert!(s.check_scale(2, 1).is_ok() && s.check_scale(8, 1).is_ok());
        assert!(matches!(
            s.check_scale(0, 1),
            Err(StreamError::Validation(_))
        ));
        s.scalings_ms = vec![10; MAX_SCALINGS_PER_DAY];
        assert!(s.check_scale(5, 20).is_err());
        assert!(s.check_scale(5, 10 + DAY_MS).is_ok());
    }

    #[test]
    fn retention_changes_go_the_named_way_within_limits() {
        let mut s = stream(1);
        assert!(s.set_retention(48, true).is_ok());
        assert!(s.set_retention(24, true).is_err());
        assert!(s.set_retention(24, false).is_ok());
        assert!(s.set_retention(23, false).is_err());
        assert!(s.set_retention(8_761, true).is_err());
    }

    #[test]
    fn tags_merge_up_to_the_limit() {
        let mut s = stream(1);
        let tags = |n: usize, prefix: &str| {
            (0..n)
                .map(|i| (format!("{prefix}{i}"), "v".to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        s.add_tags(tags(40, "a")).unwrap();
        assert!(matches!(
            s.add_tags(tags(11, "b")),
            Err(StreamError::LimitExceeded(_))
        ));
        assert_eq!(s.tags.len(), 40);
        s.add_tags(tags(10, "b")).unwrap();
        s.remove_tags(&["a0".to_string(), "nope".to_string()]);
        assert_eq!(s.tags.len(), 49);
        assert!(s
            .add_tags(BTreeMap::from([("aws:x".into(), "v".into())]))
            .is_err());
        assert!(s
            .add_tags(BTreeMap::from([(String::new(), "v".into())]))
            .is_err());
    }
}
