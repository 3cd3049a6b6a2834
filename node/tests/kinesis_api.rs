//! The Kinesis Data Streams control plane (issue 6) through the official AWS SDK for Rust
//! (`aws-sdk-kinesis`, AWS JSON 1.1) against a real 6-node, 3-zone cluster: creating
//! streams in both capacity modes, describing them (full and summary, with shard paging),
//! listing streams and shards page by page, tags, the retention period and its limits,
//! deletion, and the stream ARN accepted wherever AWS accepts it.
//!
//! These tests are the specification: each asserts what Amazon Kinesis Data Streams does
//! (API reference, https://docs.aws.amazon.com/kinesis/latest/APIReference/), error types as
//! the SDK models them. Records are in `kinesis_records.rs`, resharding in
//! `kinesis_resharding.rs`, bad input in `kinesis_bad_input.rs`, faults in
//! `kinesis_faults.rs`.

mod common;
mod kinesis_common;
mod sqs_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::operation::decrease_stream_retention_period::DecreaseStreamRetentionPeriodError;
use aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryError;
use aws_sdk_kinesis::operation::increase_stream_retention_period::IncreaseStreamRetentionPeriodError;
use aws_sdk_kinesis::operation::list_shards::ListShardsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    EncryptionType, PutRecordsRequestEntry, ShardIteratorType, StreamMode, StreamStatus, Tag,
};
use aws_sdk_kinesis::Client;
use kinesis_common::*;

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn tags_of(client: &Client, stream: &str) -> BTreeMap<String, String> {
    let out = client
        .list_tags_for_stream()
        .stream_name(stream)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTagsForStream {stream}: {}", DisplayErrorContext(&e)));
    assert!(!out.has_more_tags(), "default Limit covers a few tags");
    tag_map(out.tags())
}

async fn retention_of(client: &Client, stream: &str) -> i32 {
    summary(client, stream).await.retention_period_hours()
}

async fn stream_names(client: &Client) -> BTreeSet<String> {
    let out = client
        .list_streams()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreams: {}", DisplayErrorContext(&e)));
    out.stream_names().iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_are_created_described_and_deleted() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let before_ms = now_ms() as i64;

    // PROVISIONED with three shards: ACTIVE, the ARN AWS gives it, 24 h retention, the
    // hash space split evenly in shard-id order, every shard open and without a parent.
    let created = create_stream(&kinesis, "orders", 3).await;
    let after_ms = now_ms() as i64;
    assert_eq!(created.stream_name(), "orders");
    assert_eq!(created.stream_arn(), stream_arn("orders"));
    assert_eq!(created.stream_status(), &StreamStatus::Active);
    assert_eq!(created.retention_period_hours(), 24);
    assert_eq!(created.open_shard_count(), 3);
    assert_eq!(
        created.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::Provisioned)
    );
    assert!(
        matches!(created.encryption_type(), None | Some(EncryptionType::None)),
        "a stream created without encryption: {:?}",
        created.encryption_type()
    );
    assert_eq!(created.consumer_count().unwrap_or(0), 0);
    let created_ms = created
        .stream_creation_timestamp()
        .to_millis()
        .expect("creation time");
    assert!(
        (before_ms - 1_000..=after_ms + 1_000).contains(&created_ms),
        "StreamCreationTimestamp {created_ms} outside the test's [{before_ms}, {after_ms}]"
    );

    let described = kinesis
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStream: {}", DisplayErrorContext(&e)))
        .stream_description()
        .cloned()
        .expect("StreamDescription");
    assert_eq!(described.stream_name(), "orders");
    assert_eq!(described.stream_arn(), stream_arn("orders"));
    assert_eq!(described.stream_status(), &StreamStatus::Active);
    assert_eq!(described.retention_period_hours(), 24);
    assert!(!described.has_more_shards());
    let shards = described.shards();
    assert_eq!(
        shards.iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        vec![
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    assert_eq!(
        shards.iter().map(range_of).collect::<Vec<_>>(),
        even_ranges(3)
    );
    for s in shards {
        assert!(is_open(s), "a new stream's shards are open: {s:?}");
        assert_eq!(s.parent_shard_id(), None);
        assert_eq!(s.adjacent_parent_shard_id(), None);
        let start = s
            .sequence_number_range()
            .map(|r| r.starting_sequence_number())
            .unwrap_or_default();
        assert!(
            !start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()),
            "StartingSequenceNumber of {}: {start:?}",
            s.shard_id()
        );
    }

    // DescribeStream pages its shards: Limit, HasMoreShards, ExclusiveStartShardId.
    let page = kinesis
        .describe_stream()
        .stream_name("orders")
        .limit(2)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStream Limit 2: {}", DisplayErrorContext(&e)))
        .stream_description()
        .cloned()
        .expect("StreamDescription");
    assert_eq!(shard_ids(page.shards()).len(), 2);
    assert!(page.has_more_shards(), "two of three shards: more to come");
    let rest = kinesis
        .describe_stream()
        .stream_name("orders")
        .exclusive_start_shard_id("shardId-000000000001")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStream after shard 1: {}", DisplayErrorContext(&e)))
        .stream_description()
        .cloned()
        .expect("StreamDescription");
    assert_eq!(
        rest.shards()
            .iter()
            .map(|s| s.shard_id())
            .collect::<Vec<_>>(),
        vec!["shardId-000000000002"]
    );
    assert!(!rest.has_more_shards());

    // ON_DEMAND: no shard count given; the stream picks its shards, which cover the space.
    let on_demand = create_on_demand_stream(&kinesis, "clicks").await;
    assert_eq!(
        on_demand.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
    let clicks = list_shards(&kinesis, "clicks").await;
    assert_eq!(clicks.len() as i32, on_demand.open_shard_count());
    assert_open_shards_cover_the_space(&clicks);
    assert_eq!(
        stream_names(&kinesis).await,
        BTreeSet::from(["clicks".to_string(), "orders".to_string()])
    );

    // DeleteStream: the stream goes away (DELETING may show first), its name is free
    // again, and a stream created under it anew starts empty.
    put(&kinesis, "orders", "k", b"before the delete").await;
    kinesis
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteStream: {}", DisplayErrorContext(&e)));
    let k = &kinesis;
    eventually("orders deleted", Duration::from_secs(30), || async move {
        match k
            .describe_stream_summary()
            .stream_name("orders")
            .send()
            .await
        {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Some(())
            }
            Ok(out) => {
                let status = out
                    .stream_description_summary()
                    .map(|s| s.stream_status().clone());
                assert_eq!(status, Some(StreamStatus::Deleting), "after DeleteStream");
                None
            }
            Err(e) => panic!(
                "DescribeStreamSummary after delete: {}",
                DisplayErrorContext(&e)
            ),
        }
    })
    .await;
    assert_eq!(
        stream_names(&kinesis).await,
        BTreeSet::from(["clicks".to_string()])
    );
    create_stream(&kinesis, "orders", 1).await;
    let shard = list_shards(&kinesis, "orders").await.remove(0);
    let read = read_shard(&kinesis, "orders", &shard).await;
    assert!(
        read.records.is_empty(),
        "a re-created stream must not show the old stream's records: {:?}",
        read.records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_streams_pages_through_every_stream() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let names = ["ls-a", "ls-b", "ls-c", "ls-d", "ls-e"];
    for n in names {
        kinesis
            .create_stream()
            .stream_name(n)
            .shard_count(1)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateStream {n}: {}", DisplayErrorContext(&e)));
    }
    for n in names {
        wait_active(&kinesis, n).await;
    }
    let all: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();

    // Pages of two, NextToken followed: every stream once, HasMoreStreams until the last.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "ListStreams never finished: {seen:?}");
        let out = kinesis
            .list_streams()
            .limit(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListStreams page {page}: {}", DisplayErrorContext(&e)));
        assert!(out.stream_names().len() <= 2, "Limit 2: {out:?}");
        assert_eq!(
            out.stream_summaries().len(),
            out.stream_names().len(),
            "a summary per name: {out:?}"
        );
        for (name, s) in out.stream_names().iter().zip(out.stream_summaries()) {
            assert_eq!(s.stream_name(), name);
            assert_eq!(s.stream_arn(), stream_arn(name));
            assert_eq!(s.stream_status(), &StreamStatus::Active);
            assert_eq!(
                s.stream_mode_details().map(|m| m.stream_mode()),
                Some(&StreamMode::Provisioned)
            );
        }
        seen.extend(out.stream_names().iter().cloned());
        if !out.has_more_streams() {
            break;
        }
        token = Some(
            out.next_token()
                .unwrap_or_else(|| panic!("HasMoreStreams without NextToken: {out:?}"))
                .to_string(),
        );
    }
    assert_eq!(
        seen.len(),
        names.len(),
        "each stream exactly once: {seen:?}"
    );
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    // ExclusiveStartStreamName: the streams after that name.
    let out = kinesis
        .list_streams()
        .exclusive_start_stream_name("ls-b")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreams after ls-b: {}", DisplayErrorContext(&e)));
    assert_eq!(
        out.stream_names().iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["ls-c".to_string(), "ls-d".to_string(), "ls-e".to_string()])
    );
    assert!(!out.has_more_streams());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_shards_pages_with_next_token_and_exclusive_start() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "wide", 5).await;
    let expected: Vec<String> = (0..5).map(|i| format!("shardId-{i:012}")).collect();

    // Without MaxResults: every shard, in order, with its range; no NextToken.
    let all = kinesis
        .list_shards()
        .stream_name("wide")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListShards: {}", DisplayErrorContext(&e)));
    assert_eq!(
        all.shards()
            .iter()
            .map(|s| s.shard_id())
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(all.next_token(), None);
    assert_eq!(
        all.shards().iter().map(range_of).collect::<Vec<_>>(),
        even_ranges(5)
    );

    // MaxResults 2: pages of at most two; NextToken alone names the stream and position.
    let paged = list_shards_paged(&kinesis, "wide", Some(2)).await;
    assert_eq!(
        paged.iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        expected
    );
    let first = kinesis
        .list_shards()
        .stream_name("wide")
        .max_results(2)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListShards MaxResults 2: {}", DisplayErrorContext(&e)));
    let token = first
        .next_token()
        .expect("NextToken when more shards remain")
        .to_string();

    // NextToken together with StreamName is refused.
    expect_service_error(
        "ListShards with NextToken and StreamName",
        kinesis
            .list_shards()
            .stream_name("wide")
            .next_token(&token)
            .send()
            .await,
        ListShardsError::is_invalid_argument_exception,
    );

    // ExclusiveStartShardId: the shards after it.
    let after = kinesis
        .list_shards()
        .stream_name("wide")
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListShards after 2: {}", DisplayErrorContext(&e)));
    assert_eq!(
        after
            .shards()
            .iter()
            .map(|s| s.shard_id())
            .collect::<Vec<_>>(),
        vec!["shardId-000000000003", "shardId-000000000004"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_are_added_listed_paged_and_removed() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;

    // Tags given at creation are the stream's.
    kinesis
        .create_stream()
        .stream_name("tagged")
        .shard_count(1)
        .tags("origin", "create")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream with tags: {}", DisplayErrorContext(&e)));
    wait_active(&kinesis, "tagged").await;
    assert_eq!(
        tags_of(&kinesis, "tagged").await,
        pairs(&[("origin", "create")])
    );

    kinesis
        .add_tags_to_stream()
        .stream_name("tagged")
        .tags("env", "prod")
        .tags("team", "data")
        .tags("tier", "gold")
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTagsToStream: {}", DisplayErrorContext(&e)));
    let all = pairs(&[
        ("env", "prod"),
        ("origin", "create"),
        ("team", "data"),
        ("tier", "gold"),
    ]);
    assert_eq!(tags_of(&kinesis, "tagged").await, all);

    // Limit and ExclusiveStartTagKey page through them; HasMoreTags until the last.
    let mut seen: Vec<Tag> = Vec::new();
    let mut start: Option<String> = None;
    for page in 0.. {
        assert!(page < 10, "ListTagsForStream never finished: {seen:?}");
        let out = kinesis
            .list_tags_for_stream()
            .stream_name("tagged")
            .limit(2)
            .set_exclusive_start_tag_key(start.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("ListTagsForStream page {page}: {}", DisplayErrorContext(&e))
            });
        assert!(out.tags().len() <= 2, "Limit 2: {out:?}");
        if let Some(s) = &start {
            for t in out.tags() {
                assert!(t.key() > s.as_str(), "{} listed after {s}", t.key());
            }
        }
        seen.extend(out.tags().iter().cloned());
        if !out.has_more_tags() {
            break;
        }
        start = Some(
            out.tags()
                .last()
                .expect("a page with HasMoreTags has tags")
                .key()
                .to_string(),
        );
    }
    assert_eq!(seen.len(), all.len(), "each tag exactly once: {seen:?}");
    assert_eq!(tag_map(&seen), all);

    // Adding a tag that exists replaces its value; removing drops the named keys only.
    kinesis
        .add_tags_to_stream()
        .stream_name("tagged")
        .tags("env", "staging")
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTagsToStream overwrite: {}", DisplayErrorContext(&e)));
    kinesis
        .remove_tags_from_stream()
        .stream_name("tagged")
        .tag_keys("team")
        .tag_keys("origin")
        .send()
        .await
        .unwrap_or_else(|e| panic!("RemoveTagsFromStream: {}", DisplayErrorContext(&e)));
    assert_eq!(
        tags_of(&kinesis, "tagged").await,
        pairs(&[("env", "staging"), ("tier", "gold")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_by_resource_arn() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "arn-tagged", 1).await;
    let arn = stream_arn("arn-tagged");

    // TagResource / ListTagsForResource / UntagResource name the stream by its ARN and
    // see the same tags as the stream-named operations.
    kinesis
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "prod")
        .tags("team", "data")
        .send()
        .await
        .unwrap_or_else(|e| panic!("TagResource: {}", DisplayErrorContext(&e)));
    let listed = kinesis
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTagsForResource: {}", DisplayErrorContext(&e)));
    assert_eq!(
        tag_map(listed.tags()),
        pairs(&[("env", "prod"), ("team", "data")])
    );
    assert_eq!(
        tags_of(&kinesis, "arn-tagged").await,
        pairs(&[("env", "prod"), ("team", "data")])
    );
    kinesis
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap_or_else(|e| panic!("UntagResource: {}", DisplayErrorContext(&e)));
    assert_eq!(
        tags_of(&kinesis, "arn-tagged").await,
        pairs(&[("env", "prod")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_increases_and_decreases_within_24_to_8760_hours() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "kept", 1).await;
    assert_eq!(retention_of(&kinesis, "kept").await, 24);

    let increase = |hours: i32| {
        kinesis
            .increase_stream_retention_period()
            .stream_name("kept")
            .retention_period_hours(hours)
            .send()
    };
    let decrease = |hours: i32| {
        kinesis
            .decrease_stream_retention_period()
            .stream_name("kept")
            .retention_period_hours(hours)
            .send()
    };

    increase(48)
        .await
        .unwrap_or_else(|e| panic!("Increase to 48: {}", DisplayErrorContext(&e)));
    assert_eq!(retention_of(&kinesis, "kept").await, 48);

    // Each direction has its own operation: increasing to less, or decreasing to more,
    // than the current period is refused and changes nothing.
    expect_service_error(
        "IncreaseStreamRetentionPeriod below the current 48 h",
        increase(24).await,
        IncreaseStreamRetentionPeriodError::is_invalid_argument_exception,
    );
    expect_service_error(
        "DecreaseStreamRetentionPeriod above the current 48 h",
        decrease(100).await,
        DecreaseStreamRetentionPeriodError::is_invalid_argument_exception,
    );
    assert_eq!(retention_of(&kinesis, "kept").await, 48);

    decrease(24)
        .await
        .unwrap_or_else(|e| panic!("Decrease to 24: {}", DisplayErrorContext(&e)));
    assert_eq!(retention_of(&kinesis, "kept").await, 24);

    // The limits: 24 h at least, 8,760 h (365 days) at most.
    increase(8760)
        .await
        .unwrap_or_else(|e| panic!("Increase to 8760: {}", DisplayErrorContext(&e)));
    assert_eq!(retention_of(&kinesis, "kept").await, 8760);
    expect_service_error(
        "IncreaseStreamRetentionPeriod to 8761 h",
        increase(8761).await,
        IncreaseStreamRetentionPeriodError::is_invalid_argument_exception,
    );
    expect_service_error(
        "DecreaseStreamRetentionPeriod to 23 h",
        decrease(23).await,
        DecreaseStreamRetentionPeriodError::is_invalid_argument_exception,
    );
    assert_eq!(retention_of(&kinesis, "kept").await, 8760);
    decrease(24)
        .await
        .unwrap_or_else(|e| panic!("Decrease to 24: {}", DisplayErrorContext(&e)));
    assert_eq!(retention_of(&kinesis, "kept").await, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn describe_limits_counts_open_shards_and_on_demand_streams() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "three", 3).await;
    create_stream(&kinesis, "two", 2).await;
    let on_demand = create_on_demand_stream(&kinesis, "elastic").await;
    let open = 3 + 2 + on_demand.open_shard_count();

    // OpenShardCount counts the account's open shards; OnDemandStreamCount its on-demand
    // streams; each under its limit.
    let limits = kinesis
        .describe_limits()
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeLimits: {}", DisplayErrorContext(&e)));
    assert_eq!(limits.open_shard_count(), open);
    assert_eq!(limits.on_demand_stream_count(), 1);
    assert!(limits.shard_limit() >= open, "{limits:?}");
    assert!(limits.on_demand_stream_count_limit() >= 1, "{limits:?}");

    // A split adds an open shard (two children, one closed parent).
    kinesis
        .split_shard()
        .stream_name("two")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((MAX_HASH_KEY / 4).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SplitShard: {}", DisplayErrorContext(&e)));
    wait_active(&kinesis, "two").await;
    let limits = kinesis
        .describe_limits()
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeLimits: {}", DisplayErrorContext(&e)));
    assert_eq!(limits.open_shard_count(), open + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_arn_is_accepted_in_place_of_the_name() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "by-arn", 2).await;
    let arn = stream_arn("by-arn");

    let s = kinesis
        .describe_stream_summary()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStreamSummary by ARN: {}", DisplayErrorContext(&e)));
    assert_eq!(
        s.stream_description_summary().map(|d| d.stream_name()),
        Some("by-arn")
    );
    let d = kinesis
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStream by ARN: {}", DisplayErrorContext(&e)));
    assert_eq!(d.stream_description().map(|d| d.shards().len()), Some(2));
    let shards = kinesis
        .list_shards()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListShards by ARN: {}", DisplayErrorContext(&e)))
        .shards()
        .to_vec();
    assert_eq!(shards.len(), 2);

    // Records put by ARN are read back through an iterator taken by ARN.
    let one = kinesis
        .put_record()
        .stream_arn(&arn)
        .partition_key("k")
        .data(Blob::new("by arn"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecord by ARN: {}", DisplayErrorContext(&e)));
    let batch = kinesis
        .put_records()
        .stream_arn(&arn)
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new("batch by arn"))
                .build()
                .expect("entry"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecords by ARN: {}", DisplayErrorContext(&e)));
    assert_eq!(batch.failed_record_count().unwrap_or(0), 0);
    let it = kinesis
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(one.shard_id())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator by ARN: {}", DisplayErrorContext(&e)))
        .shard_iterator()
        .expect("ShardIterator")
        .to_string();
    let read = read_to_end(&kinesis, &it, false).await;
    assert_eq!(
        read.records.iter().map(data_of).collect::<Vec<_>>(),
        vec!["by arn", "batch by arn"]
    );

    // Tags and retention by ARN.
    kinesis
        .add_tags_to_stream()
        .stream_arn(&arn)
        .tags("via", "arn")
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTagsToStream by ARN: {}", DisplayErrorContext(&e)));
    let tags = kinesis
        .list_tags_for_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTagsForStream by ARN: {}", DisplayErrorContext(&e)));
    assert_eq!(tag_map(tags.tags()), pairs(&[("via", "arn")]));
    kinesis
        .increase_stream_retention_period()
        .stream_arn(&arn)
        .retention_period_hours(36)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "IncreaseStreamRetentionPeriod by ARN: {}",
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(retention_of(&kinesis, "by-arn").await, 36);

    // The ARN of a stream that does not exist is not found.
    expect_service_error(
        "DescribeStreamSummary by the ARN of an unknown stream",
        kinesis
            .describe_stream_summary()
            .stream_arn(stream_arn("no-such-stream"))
            .send()
            .await,
        DescribeStreamSummaryError::is_resource_not_found_exception,
    );

    // DeleteStream by ARN.
    kinesis
        .delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteStream by ARN: {}", DisplayErrorContext(&e)));
    let k = &kinesis;
    eventually("by-arn deleted", Duration::from_secs(30), || async move {
        match k
            .describe_stream_summary()
            .stream_name("by-arn")
            .send()
            .await
        {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;
}
