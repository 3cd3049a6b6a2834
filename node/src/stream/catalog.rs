//! The stream catalog, kept in the meta group: every stream with its shards (hash ranges,
//! lineage, starting and ending sequence numbers), retention, mode and tags. The records
//! themselves live in data groups, one shard log per (stream, shard) (`log`).
//!
//! Resharding touches the shard logs and the catalog, so it runs in two steps, each
//! idempotent: the service closes the parent shard's log (which fixes its ending sequence
//! number and refuses further puts), then records the split or merge here, which adds the
//! children and marks the parents closed. Until the second step lands, puts for the
//! parent's range are refused as retryable and the stream shows `UPDATING`.
//!
//! Pure: (record, command) → (record, result); no clock (times come in the command).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{
    HashRange, SequenceNumber, ShardId, StreamError, StreamName, MAX_RETENTION_HOURS,
    MIN_RETENTION_HOURS,
};

/// Kinesis's default quota of shards per stream (on-demand streams start with 4).
pub const MAX_SHARDS_PER_STREAM: u32 = 500;
pub const ON_DEMAND_SHARDS: u32 = 4;
pub const DEFAULT_RETENTION_HOURS: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Active,
    Updating,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: StreamName,
    pub mode: StreamMode,
    pub status: StreamStatus,
    pub shards: Vec<ShardRecord>,
    pub retention_hours: u32,
    pub created_ms: u64,
    pub tags: BTreeMap<String, String>,
}

impl StreamRecord {
    pub fn new(
        name: StreamName,
        shard_count: u32,
        mode: StreamMode,
        now_ms: u64,
    ) -> Result<StreamRecord, StreamError> {
        if !(1..=MAX_SHARDS_PER_STREAM).contains(&shard_count) {
            return Err(StreamError::invalid(format!(
                "ShardCount must be between 1 and {MAX_SHARDS_PER_STREAM}; it was {shard_count}"
            )));
        }
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
            })
            .collect();
        Ok(StreamRecord {
            name,
            mode,
            status: StreamStatus::Active,
            shards,
            retention_hours: DEFAULT_RETENTION_HOURS,
            created_ms: now_ms,
            tags: BTreeMap::new(),
        })
    }

    pub fn shard(&self, id: ShardId) -> Result<&ShardRecord, StreamError> {
        self.shards.iter().find(|s| s.id == id).ok_or_else(|| {
            StreamError::ResourceNotFound(format!(
                "Shard {id} in stream {} under account {} does not exist",
                self.name,
                super::model::ACCOUNT_ID
            ))
        })
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &ShardRecord> {
        self.shards.iter().filter(|s| s.is_open())
    }

    /// The open shard whose range holds `hash_key`.
    pub fn shard_for(&self, hash_key: u128) -> Option<&ShardRecord> {
        self.open_shards().find(|s| s.range.contains(hash_key))
    }

    fn next_id(&self) -> ShardId {
        ShardId(self.shards.iter().map(|s| s.id.0 + 1).max().unwrap_or(0))
    }

    fn check_open(&self, id: ShardId) -> Result<&ShardRecord, StreamError> {
        let shard = self.shard(id)?;
        if !shard.is_open() {
            return Err(StreamError::ResourceInUse(format!(
                "Shard {id} in stream {} is closed",
                self.name
            )));
        }
        Ok(shard)
    }

    /// Check a split before the parent's log is closed.
    pub fn check_split(
        &self,
        shard: ShardId,
        new_starting_hash_key: u128,
    ) -> Result<(), StreamError> {
        let parent = self.check_open(shard)?;
        if new_starting_hash_key <= parent.range.start || new_starting_hash_key > parent.range.end {
            return Err(StreamError::invalid(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {shard} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                self.name,
                super::model::ACCOUNT_ID,
                parent.range.start,
                parent.range.end
            )));
        }
        if self.open_shards().count() as u32 + 1 > MAX_SHARDS_PER_STREAM {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit of {MAX_SHARDS_PER_STREAM} for the stream."
            )));
        }
        Ok(())
    }

    /// Record a split whose parent log closed at `ending`. Idempotent: a split already
    /// recorded is a no-op.
    pub fn split(
        &mut self,
        shard: ShardId,
        new_starting_hash_key: u128,
        ending: SequenceNumber,
        now_ms: u64,
    ) -> Result<(), StreamError> {
        if self.shard(shard)?.ending.is_some() {
            return Ok(());
        }
        self.check_split(shard, new_starting_hash_key)?;
        let parent_range = self.shard(shard)?.range;
        let first = self.next_id();
        for (i, range) in [
            HashRange {
                start: parent_range.start,
                end: new_starting_hash_key - 1,
            },
            HashRange {
                start: new_starting_hash_key,
                end: parent_range.end,
            },
        ]
        .into_iter()
        .enumerate()
        {
            self.shards.push(ShardRecord {
                id: ShardId(first.0 + i as u32),
                range,
                parent: Some(shard),
                adjacent_parent: None,
                created_ms: now_ms,
                ending: None,
            });
        }
        self.close(shard, ending);
        Ok(())
    }

    /// Check a merge before the parents' logs are closed: both open and adjacent.
    pub fn check_merge(&self, shard: ShardId, adjacent: ShardId) -> Result<(), StreamError> {
        let a = self.check_open(shard)?;
        let b = self.check_open(adjacent)?;
        let adjacent_ranges = a.range.end.checked_add(1) == Some(b.range.start)
            || b.range.end.checked_add(1) == Some(a.range.start);
        if !adjacent_ranges {
            return Err(StreamError::invalid(format!(
                "Shards {shard} and {adjacent} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                self.name,
                super::model::ACCOUNT_ID
            )));
        }
        Ok(())
    }

    /// Record a merge whose parent logs closed at the given ending sequence numbers.
    pub fn merge(
        &mut self,
        shard: ShardId,
        adjacent: ShardId,
        endings: (SequenceNumber, SequenceNumber),
        now_ms: u64,
    ) -> Result<(), StreamError> {
        if self.shard(shard)?.ending.is_some() && self.shard(adjacent)?.ending.is_some() {
            return Ok(());
        }
        self.check_merge(shard, adjacent)?;
        let (a, b) = (self.shard(shard)?.range, self.shard(adjacent)?.range);
        let id = self.next_id();
        self.shards.push(ShardRecord {
            id,
            range: HashRange {
                start: a.start.min(b.start),
                end: a.end.max(b.end),
            },
            parent: Some(shard),
            adjacent_parent: Some(adjacent),
            created_ms: now_ms,
            ending: None,
        });
        self.close(shard, endings.0);
        self.close(adjacent, endings.1);
        Ok(())
    }

    fn close(&mut self, id: ShardId, ending: SequenceNumber) {
        if let Some(s) = self.shards.iter_mut().find(|s| s.id == id) {
            s.ending = Some(ending);
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
        if !(MIN_RETENTION_HOURS..=MAX_RETENTION_HOURS).contains(&hours) {
            return Err(StreamError::invalid(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours and maximum is {MAX_RETENTION_HOURS} hours; {hours} was requested."
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: u32) -> StreamRecord {
        StreamRecord::new(
            StreamName::parse("s").unwrap(),
            n,
            StreamMode::Provisioned,
            1,
        )
        .unwrap()
    }

    fn seq(shard: u32, position: u64) -> SequenceNumber {
        SequenceNumber { shard, position }
    }

    #[test]
    fn a_new_stream_covers_the_hash_space() {
        let s = stream(4);
        assert_eq!(s.open_shards().count(), 4);
        assert_eq!(s.shard_for(0).unwrap().id, ShardId(0));
        assert_eq!(s.shard_for(u128::MAX).unwrap().id, ShardId(3));
        assert!(StreamRecord::new(
            StreamName::parse("s").unwrap(),
            0,
            StreamMode::Provisioned,
            1
        )
        .is_err());
    }

    #[test]
    fn a_split_closes_the_parent_and_opens_two_children_with_lineage() {
        let mut s = stream(1);
        let mid = 1u128 << 127;
        assert!(s.check_split(ShardId(0), 0).is_err());
        s.split(ShardId(0), mid, seq(0, 41), 5).unwrap();
        // Idempotent.
        s.split(ShardId(0), mid, seq(0, 41), 6).unwrap();
        assert_eq!(s.shards.len(), 3);
        assert_eq!(s.shard(ShardId(0)).unwrap().ending, Some(seq(0, 41)));
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
    fn a_merge_needs_adjacent_open_shards() {
        let mut s = stream(3);
        assert!(s.check_merge(ShardId(0), ShardId(2)).is_err());
        s.merge(ShardId(1), ShardId(0), (seq(1, 5), seq(0, 7)), 9)
            .unwrap();
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
        assert_eq!(s.open_shards().count(), 2);
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
}
