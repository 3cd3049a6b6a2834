//! Reshard plans: the splits and merges that take a stream's open shards to a new shape.
//!
//! SplitShard and MergeShards are plans of one step. UpdateShardCount (UNIFORM_SCALING)
//! is planned as Kinesis describes it: splits and merges of individual shards, which may
//! leave short-lived shards behind, ending in `target` open shards whose ranges are the
//! even split of the hash space (the same ranges a new stream of `target` shards gets).
//! The plan first splits every open shard at each target boundary strictly inside it,
//! then merges, within each target range, its pieces left to right.
//!
//! A plan names the shard ids its steps create before they exist: ids are handed out in
//! order (`StreamRecord::next_id`), so planning on a copy of the record and applying the
//! steps for real give the same ids. Pure.

use serde::{Deserialize, Serialize};

use super::catalog::StreamRecord;
use super::model::{HashRange, SequenceNumber, ShardId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReshardStep {
    Split {
        shard: ShardId,
        new_starting_hash_key: u128,
    },
    Merge {
        shard: ShardId,
        adjacent: ShardId,
    },
}

impl ReshardStep {
    /// The shards the step closes, in the order their endings are recorded.
    pub fn parents(&self) -> Vec<ShardId> {
        match *self {
            ReshardStep::Split { shard, .. } => vec![shard],
            ReshardStep::Merge { shard, adjacent } => vec![shard, adjacent],
        }
    }
}

/// The steps from `record`'s open shards to `target` uniform shards (none when the stream
/// has that shape already).
pub fn plan_uniform(record: &StreamRecord, target: u32) -> Vec<ReshardStep> {
    let targets = HashRange::even(target);
    let mut sim = record.clone();
    let mut steps = Vec::new();
    let mut apply = |sim: &mut StreamRecord, step: ReshardStep| {
        let endings = vec![SequenceNumber::default(); step.parents().len()];
        sim.apply_step(step, &endings, 0);
        steps.push(step);
    };
    for boundary in targets.iter().skip(1).map(|t| t.start) {
        let inside = sim
            .open_shards()
            .find(|s| s.range.start < boundary && boundary <= s.range.end)
            .map(|s| s.id);
        if let Some(shard) = inside {
            apply(
                &mut sim,
                ReshardStep::Split {
                    shard,
                    new_starting_hash_key: boundary,
                },
            );
        }
    }
    for t in &targets {
        let mut pieces: Vec<(u128, ShardId)> = sim
            .open_shards()
            .filter(|s| t.start <= s.range.start && s.range.end <= t.end)
            .map(|s| (s.range.start, s.id))
            .collect();
        pieces.sort();
        let mut pieces = pieces.into_iter().map(|(_, id)| id);
        let Some(mut left) = pieces.next() else {
            continue;
        };
        for right in pieces {
            let merged = sim.next_id();
            apply(
                &mut sim,
                ReshardStep::Merge {
                    shard: left,
                    adjacent: right,
                },
            );
            left = merged;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::catalog::{ReshardRequest, StreamMode, StreamStatus};
    use crate::stream::model::StreamName;

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

    /// Run a scale to the end as the service does, with made-up endings.
    fn scale(s: &mut StreamRecord, target: u32) -> usize {
        s.begin_reshard(ReshardRequest::Scale { target }, 5)
            .unwrap();
        let mut steps = 0;
        while let Some(p) = s.pending.clone() {
            let step = p.next_step().unwrap();
            let endings: Vec<SequenceNumber> = step
                .parents()
                .iter()
                .map(|id| SequenceNumber {
                    shard: id.0,
                    position: 3,
                })
                .collect();
            s.record_step(p.next, &endings, 6).unwrap();
            steps += 1;
        }
        assert_eq!(s.status, StreamStatus::Active);
        steps
    }

    fn open_ranges(s: &StreamRecord) -> Vec<HashRange> {
        let mut r: Vec<HashRange> = s.open_shards().map(|x| x.range).collect();
        r.sort_by_key(|x| x.start);
        r
    }

    #[test]
    fn uniform_scaling_ends_in_even_ranges_with_lineage() {
        for (from, to) in [
            (1, 2),
            (2, 1),
            (4, 3),
            (3, 6),
            (5, 8),
            (8, 5),
            (4, 4),
            (7, 4),
        ] {
            let mut s = stream(from);
            scale(&mut s, to);
            assert_eq!(open_ranges(&s), HashRange::even(to), "{from} -> {to}");
            // Every closed shard has children; every child names a parent that exists.
            for shard in &s.shards {
                if !shard.is_open() {
                    assert!(!s.children_of(shard.id).is_empty());
                }
                if let Some(p) = shard.parent {
                    assert!(s.shard(p).unwrap().ending.is_some());
                }
            }
        }
    }

    #[test]
    fn doubling_and_halving_take_one_step_per_shard() {
        let mut s = stream(4);
        assert_eq!(scale(&mut s, 8), 4);
        assert_eq!(scale(&mut s, 4), 4);
        // Already uniform at the target: no steps, the stream stays ACTIVE.
        assert!(plan_uniform(&s, 4).is_empty());
    }
}
