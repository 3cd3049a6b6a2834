//! Retention trimming (issue 6) with a compressed clock: the nodes of this test process run
//! with `stream.seconds_per_hour = 1` (set through `STRATUS_STREAM__SECONDS_PER_HOUR`, which
//! the `stratusd` children inherit), so a stream's 24-hour retention lasts 24 seconds, and
//! the trimming worker runs every 200 ms. Records older than the retention period stop
//! being readable, and none goes before its time (AWS: "records are accessible for up to
//! the retention period"; developer guide, "Changing the data retention period").

mod common;
mod kinesis_common;
mod sqs_common;

use std::time::Duration;

use aws_sdk_kinesis::types::ShardIteratorType;
use kinesis_common::*;

/// 24 "hours" of one second each.
const RETENTION_MS: i64 = 24_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_past_retention_are_trimmed_and_newer_ones_stay() {
    let _serial = common::serial().await;
    std::env::set_var("STRATUS_STREAM__SECONDS_PER_HOUR", "1");
    std::env::set_var("STRATUS_STREAM__WORKER_INTERVAL_MS", "200");
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "aging", 1).await;
    assert_eq!(
        summary(&kinesis, "aging").await.retention_period_hours(),
        24
    );
    let shard = list_shards(&kinesis, "aging").await.remove(0);

    for i in 0..5 {
        put(&kinesis, "aging", "k", format!("old-{i}").as_bytes()).await;
    }
    let old = read_shard(&kinesis, "aging", &shard).await.records;
    assert_eq!(old.len(), 5);
    let first_arrival = arrival_ms(&old[0]);

    // The old records go once they are older than the retention period, not before.
    let (k, s, old) = (&kinesis, &shard, &old);
    eventually(
        "the old records to be trimmed",
        Duration::from_secs(90),
        || async move {
            let left = read_shard(k, "aging", s).await.records;
            if left.len() == old.len() {
                return None;
            }
            let now = now_ms() as i64;
            for r in old.iter().filter(|r| !left.contains(r)) {
                assert!(
                    now - arrival_ms(r) >= RETENTION_MS,
                    "{} trimmed {} ms after it arrived, before the {RETENTION_MS} ms retention",
                    data_of(r),
                    now - arrival_ms(r)
                );
            }
            left.is_empty().then_some(())
        },
    )
    .await;
    assert!(now_ms() as i64 - first_arrival >= RETENTION_MS);

    // The shard lives on: new records are kept and readable from the trim horizon and by
    // AT_TIMESTAMP before them (which starts at the oldest record kept).
    for i in 0..3 {
        put(&kinesis, "aging", "k", format!("new-{i}").as_bytes()).await;
    }
    let kept = read_shard(&kinesis, "aging", &shard).await.records;
    assert_eq!(
        kept.iter().map(data_of).collect::<Vec<_>>(),
        ["new-0", "new-1", "new-2"]
    );
    let it = kinesis
        .get_shard_iterator()
        .stream_name("aging")
        .shard_id(shard.shard_id())
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
            first_arrival,
        ))
        .send()
        .await
        .expect("GetShardIterator AT_TIMESTAMP")
        .shard_iterator()
        .expect("ShardIterator")
        .to_string();
    assert_eq!(read_to_end(&kinesis, &it, false).await.records, kept);
}
