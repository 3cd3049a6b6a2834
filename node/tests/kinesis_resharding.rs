//! Kinesis resharding (issue 6) through `aws-sdk-kinesis` against a real 6-node, 3-zone
//! cluster. SplitShard and MergeShards close their parents with an ending sequence number
//! and open children that name their parents (ParentShardId, AdjacentParentShardId) and
//! split or join the parents' hash ranges; new records go to the children; reading a
//! parent to its end answers its ChildShards and no NextShardIterator; a consumer that
//! follows lineage reads every acknowledged record exactly once, in sequence order per
//! shard. ListShards' ShardFilter selects shards by state and time. UpdateShardCount
//! reaches its target with uniform ranges and loses nothing.
//!
//! AWS reference: API_SplitShard, API_MergeShards, API_UpdateShardCount, API_GetRecords
//! (ChildShards), API_ShardFilter; developer guide "Resharding a stream" and "Data routing,
//! data persistence, and shard state after a reshard".

mod common;
mod kinesis_common;
mod sqs_common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::operation::update_shard_count::UpdateShardCountError;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{ScalingType, Shard, ShardFilter, ShardFilterType};
use aws_sdk_kinesis::Client;
use kinesis_common::*;

/// A record as acknowledged by PutRecord: (ShardId, SequenceNumber) by payload.
type Acks = BTreeMap<String, (String, String)>;

/// Puts `n` records `{prefix}-{i}` (partition key the same string) and checks each went to
/// the open shard, among `shards`, whose range holds its key's hash.
async fn put_batch(
    client: &Client,
    stream: &str,
    prefix: &str,
    n: usize,
    shards: &[Shard],
    acks: &mut Acks,
) {
    for i in 0..n {
        let data = format!("{prefix}-{i}");
        let (shard, seq) = put(client, stream, &data, data.as_bytes()).await;
        assert_eq!(
            shard,
            open_shard_holding(shards, hash_key_of(&data)).shard_id(),
            "{data} must go to the open shard whose range holds its hash"
        );
        assert!(acks.insert(data, (shard, seq)).is_none());
    }
}

fn find<'a>(shards: &'a [Shard], id: &str) -> &'a Shard {
    shards
        .iter()
        .find(|s| s.shard_id() == id)
        .unwrap_or_else(|| panic!("{id} not listed: {shards:?}"))
}

fn children_of<'a>(shards: &'a [Shard], parent: &str) -> Vec<&'a Shard> {
    shards
        .iter()
        .filter(|s| {
            s.parent_shard_id() == Some(parent) || s.adjacent_parent_shard_id() == Some(parent)
        })
        .collect()
}

/// Every acknowledged record is read exactly once, from the shard it was acknowledged on,
/// under its sequence number; each shard reads in strictly increasing order.
fn assert_exactly_the_acked_records(reads: &BTreeMap<String, ShardRead>, acks: &Acks) {
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (shard, read) in reads {
        assert_strictly_increasing(shard, &read.records);
        for r in &read.records {
            let data = data_of(r);
            let previous = seen.insert(
                data.clone(),
                (shard.clone(), r.sequence_number().to_string()),
            );
            assert_eq!(
                previous, None,
                "{data} read twice: from {shard} and {previous:?}"
            );
        }
    }
    for (data, ack) in acks {
        assert_eq!(
            seen.get(data),
            Some(ack),
            "{data} was acknowledged as {ack:?}"
        );
    }
    assert_eq!(seen.len(), acks.len(), "records read that were never put");
}

async fn split(client: &Client, stream: &str, shard: &str, new_starting_hash_key: u128) {
    client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(shard)
        .new_starting_hash_key(new_starting_hash_key.to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SplitShard {shard} at {new_starting_hash_key}: {}",
                DisplayErrorContext(&e)
            )
        });
    wait_active(client, stream).await;
}

async fn merge(client: &Client, stream: &str, shard: &str, adjacent: &str) {
    client
        .merge_shards()
        .stream_name(stream)
        .shard_to_merge(shard)
        .adjacent_shard_to_merge(adjacent)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "MergeShards {shard} + {adjacent}: {}",
                DisplayErrorContext(&e)
            )
        });
    wait_active(client, stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_and_merge_close_parents_and_open_children_with_lineage() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "reshard", 2).await;
    let mut acks = Acks::new();
    let shards = list_shards(&kinesis, "reshard").await;
    put_batch(&kinesis, "reshard", "a", 60, &shards, &mut acks).await;

    // Split shard 0 in the middle of its range.
    let (start0, end0) = range_of(find(&shards, "shardId-000000000000"));
    let mid = start0 + (end0 - start0) / 2;
    split(&kinesis, "reshard", "shardId-000000000000", mid).await;
    let shards = list_shards(&kinesis, "reshard").await;
    assert_eq!(shards.len(), 4, "two parents and two children: {shards:?}");
    let parent = find(&shards, "shardId-000000000000");
    let ending = ending_sequence_number(parent).unwrap_or_else(|| {
        panic!("the split parent is closed with an EndingSequenceNumber: {parent:?}")
    });
    for (data, (shard, seq)) in &acks {
        if shard == "shardId-000000000000" {
            assert_ne!(
                seq_cmp(seq, ending),
                Ordering::Greater,
                "{data} ({seq}) is past the parent's EndingSequenceNumber {ending}"
            );
        }
    }
    let children = children_of(&shards, "shardId-000000000000");
    assert_eq!(children.len(), 2, "a split makes two children: {shards:?}");
    let mut child_ranges: Vec<(u128, u128)> = children.iter().map(|c| range_of(c)).collect();
    child_ranges.sort();
    assert_eq!(child_ranges, vec![(start0, mid - 1), (mid, end0)]);
    for c in &children {
        assert!(is_open(c));
        assert_eq!(c.parent_shard_id(), Some("shardId-000000000000"));
        assert_eq!(
            c.adjacent_parent_shard_id(),
            None,
            "a split child has one parent"
        );
    }
    assert!(is_open(find(&shards, "shardId-000000000001")));
    assert_open_shards_cover_the_space(&shards);
    let upper_child = children
        .iter()
        .find(|c| range_of(c) == (mid, end0))
        .expect("upper child")
        .shard_id()
        .to_string();
    put_batch(&kinesis, "reshard", "b", 60, &shards, &mut acks).await;

    // Merge the upper child with shard 1, the shard right above it.
    merge(&kinesis, "reshard", &upper_child, "shardId-000000000001").await;
    let shards = list_shards(&kinesis, "reshard").await;
    assert_eq!(shards.len(), 5, "a merge adds one shard: {shards:?}");
    for closed in [upper_child.as_str(), "shardId-000000000001"] {
        assert!(
            ending_sequence_number(find(&shards, closed)).is_some(),
            "merged parent {closed} is closed"
        );
    }
    let merged: Vec<&Shard> = shards
        .iter()
        .filter(|s| s.parent_shard_id() == Some(upper_child.as_str()))
        .collect();
    assert_eq!(merged.len(), 1, "one merged child: {shards:?}");
    let merged = merged[0];
    assert_eq!(
        merged.adjacent_parent_shard_id(),
        Some("shardId-000000000001")
    );
    assert_eq!(range_of(merged), (mid, MAX_HASH_KEY));
    assert!(is_open(merged));
    assert_open_shards_cover_the_space(&shards);
    put_batch(&kinesis, "reshard", "c", 60, &shards, &mut acks).await;

    // Reading a closed parent to its end: no NextShardIterator, and ChildShards naming the
    // children with their parents and ranges.
    let read0 = read_shard(&kinesis, "reshard", find(&shards, "shardId-000000000000")).await;
    assert!(read0.ended);
    let mut named: Vec<(String, Vec<String>, (u128, u128))> = read0
        .child_shards
        .iter()
        .map(|c| {
            let r = c.hash_key_range().expect("ChildShard HashKeyRange");
            (
                c.shard_id().to_string(),
                c.parent_shards().to_vec(),
                (
                    parse_hash_key(r.starting_hash_key()),
                    parse_hash_key(r.ending_hash_key()),
                ),
            )
        })
        .collect();
    named.sort_by_key(|c| c.2);
    let mut expected_children: Vec<(String, Vec<String>, (u128, u128))> = children
        .iter()
        .map(|c| {
            (
                c.shard_id().to_string(),
                vec!["shardId-000000000000".to_string()],
                range_of(c),
            )
        })
        .collect();
    expected_children.sort_by_key(|c| c.2);
    assert_eq!(
        named, expected_children,
        "ChildShards at the end of shard 0"
    );
    for parent in [upper_child.as_str(), "shardId-000000000001"] {
        let read = read_shard(&kinesis, "reshard", find(&shards, parent)).await;
        assert!(read.ended, "{parent} ends");
        assert_eq!(
            read.child_shards.len(),
            1,
            "{parent}: {:?}",
            read.child_shards
        );
        let c = &read.child_shards[0];
        assert_eq!(c.shard_id(), merged.shard_id());
        assert_eq!(
            c.parent_shards().iter().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from([upper_child.clone(), "shardId-000000000001".to_string()])
        );
    }

    // A consumer following lineage from the roots reads every record exactly once.
    let reads = read_following_lineage(&kinesis, "reshard").await;
    assert_exactly_the_acked_records(&reads, &acks);
    for (id, read) in &reads {
        assert_eq!(
            read.ended,
            !is_open(find(&shards, id)),
            "{id}: only closed shards end"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_shards_filters_by_shard_state_and_time() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "filtered", 2).await;
    let before_split = now_ms() as i64;
    wait_clock_past(before_split + 5).await;
    let shards = list_shards(&kinesis, "filtered").await;
    let (start0, end0) = range_of(find(&shards, "shardId-000000000000"));
    split(
        &kinesis,
        "filtered",
        "shardId-000000000000",
        start0 + (end0 - start0) / 2,
    )
    .await;
    let shards = list_shards(&kinesis, "filtered").await;
    let all = shard_ids(&shards);
    let open: BTreeSet<String> = shards
        .iter()
        .filter(|s| is_open(s))
        .map(|s| s.shard_id().to_string())
        .collect();
    let children: BTreeSet<String> = children_of(&shards, "shardId-000000000000")
        .iter()
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(all.len(), 4);
    assert_eq!(open.len(), 3);
    let after_split = now_ms() as i64;
    wait_clock_past(after_split + 5).await;

    let k = &kinesis;
    let filtered = |filter: ShardFilter| async move {
        let out = k
            .list_shards()
            .stream_name("filtered")
            .shard_filter(filter.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListShards {filter:?}: {}", DisplayErrorContext(&e)));
        shard_ids(out.shards())
    };
    let filter = |kind: ShardFilterType| ShardFilter::builder().r#type(kind);
    let originals = BTreeSet::from([
        "shardId-000000000000".to_string(),
        "shardId-000000000001".to_string(),
    ]);

    // AT_LATEST: the open shards only. FROM_TRIM_HORIZON: every shard in retention.
    // AT_TRIM_HORIZON: the shards open at the trim horizon (nothing trimmed yet: the
    // stream's first shards). AFTER_SHARD_ID: the shards after that id.
    assert_eq!(
        filtered(filter(ShardFilterType::AtLatest).build().unwrap()).await,
        open
    );
    assert_eq!(
        filtered(filter(ShardFilterType::FromTrimHorizon).build().unwrap()).await,
        all
    );
    assert_eq!(
        filtered(filter(ShardFilterType::AtTrimHorizon).build().unwrap()).await,
        originals
    );
    assert_eq!(
        filtered(
            filter(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000001")
                .build()
                .unwrap()
        )
        .await,
        children
    );

    // AT_TIMESTAMP: the shards open at that time. FROM_TIMESTAMP: shards closed at or after
    // it, and every open shard.
    let at = |ms: i64, kind: ShardFilterType| {
        filter(kind)
            .timestamp(DateTime::from_millis(ms))
            .build()
            .unwrap()
    };
    assert_eq!(
        filtered(at(before_split, ShardFilterType::AtTimestamp)).await,
        originals
    );
    assert_eq!(
        filtered(at(after_split, ShardFilterType::AtTimestamp)).await,
        open
    );
    assert_eq!(
        filtered(at(before_split, ShardFilterType::FromTimestamp)).await,
        all
    );
    assert_eq!(
        filtered(at(after_split, ShardFilterType::FromTimestamp)).await,
        open
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_shard_count_scales_uniformly_and_keeps_every_record() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "scaled", 2).await;
    let mut acks = Acks::new();
    let shards = list_shards(&kinesis, "scaled").await;
    put_batch(&kinesis, "scaled", "a", 40, &shards, &mut acks).await;

    let scale = |target: i32| {
        kinesis
            .update_shard_count()
            .stream_name("scaled")
            .target_shard_count(target)
            .scaling_type(ScalingType::UniformScaling)
            .send()
    };
    let assert_uniform = |shards: &[Shard], n: u32| {
        assert_open_shards_cover_the_space(shards);
        let open: Vec<&Shard> = shards.iter().filter(|s| is_open(s)).collect();
        assert_eq!(
            open.len(),
            n as usize,
            "open shards after scaling to {n}: {shards:?}"
        );
        let ideal = u128::MAX / u128::from(n);
        for s in open {
            let (start, end) = range_of(s);
            assert!(
                (end - start).abs_diff(ideal) <= 2 * u128::from(n),
                "UNIFORM_SCALING makes equal ranges: {} spans {start}..={end}",
                s.shard_id()
            );
        }
    };

    // Double: 2 -> 4.
    let out = scale(4)
        .await
        .unwrap_or_else(|e| panic!("UpdateShardCount 4: {}", DisplayErrorContext(&e)));
    assert_eq!(out.current_shard_count(), Some(2));
    assert_eq!(out.target_shard_count(), Some(4));
    assert_eq!(out.stream_name(), Some("scaled"));
    wait_active(&kinesis, "scaled").await;
    let shards = list_shards(&kinesis, "scaled").await;
    assert_uniform(&shards, 4);
    assert_eq!(summary(&kinesis, "scaled").await.open_shard_count(), 4);
    put_batch(&kinesis, "scaled", "b", 40, &shards, &mut acks).await;

    // More than double is refused and changes nothing.
    let err = scale(9).await;
    let refused = err
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .is_some_and(|e| {
            matches!(
                e,
                UpdateShardCountError::LimitExceededException(_)
                    | UpdateShardCountError::InvalidArgumentException(_)
            )
        });
    assert!(
        refused,
        "UpdateShardCount 4 -> 9 (more than double) must be refused: {:?}",
        err.map_err(|e| DisplayErrorContext(e).to_string())
    );
    wait_active(&kinesis, "scaled").await;
    assert_eq!(summary(&kinesis, "scaled").await.open_shard_count(), 4);

    // Halve: 4 -> 2.
    let out = scale(2)
        .await
        .unwrap_or_else(|e| panic!("UpdateShardCount 2: {}", DisplayErrorContext(&e)));
    assert_eq!(out.current_shard_count(), Some(4));
    assert_eq!(out.target_shard_count(), Some(2));
    wait_active(&kinesis, "scaled").await;
    let shards = list_shards(&kinesis, "scaled").await;
    assert_uniform(&shards, 2);
    put_batch(&kinesis, "scaled", "c", 40, &shards, &mut acks).await;

    let reads = read_following_lineage(&kinesis, "scaled").await;
    assert_exactly_the_acked_records(&reads, &acks);
}
