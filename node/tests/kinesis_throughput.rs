//! Per-shard write limits (issue 6): with `limits.enforce_shard_throughput` on (set for
//! this test process's nodes through `STRATUS_LIMITS__ENFORCE_SHARD_THROUGHPUT`), a shard
//! takes at most 1 MiB of data and partition keys (and 1,000 records) per second; what is
//! past that is refused with ProvisionedThroughputExceededException, per record in a
//! PutRecords result (AWS: API_PutRecords, "ErrorCodes can be either
//! ProvisionedThroughputExceededException or InternalFailure"; failed records carry
//! ErrorCode and ErrorMessage, no SequenceNumber or ShardId, and are not stored).
//!
//! No timing is assumed: one PutRecords of about 4.3 MiB to a single shard exceeds one
//! second's allowance however fast or slow the machine is.

mod common;
mod kinesis_common;
mod sqs_common;

use std::collections::BTreeSet;

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use kinesis_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_refuses_writes_past_one_mib_per_second_per_record() {
    let _serial = common::serial().await;
    std::env::set_var("STRATUS_LIMITS__ENFORCE_SHARD_THROUGHPUT", "true");
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "throttled", 1).await;

    let entries: Vec<PutRecordsRequestEntry> = (0..450)
        .map(|i| {
            let mut data = format!("r{i}-").into_bytes();
            data.resize(10_000, b'x');
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(data))
                .build()
                .expect("entry")
        })
        .collect();
    let out = kinesis
        .put_records()
        .stream_name("throttled")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecords of 4.5 MB: {}", DisplayErrorContext(&e)));
    assert_eq!(out.records().len(), 450);
    let failed = out
        .records()
        .iter()
        .filter(|r| r.error_code().is_some())
        .count();
    assert_eq!(out.failed_record_count(), Some(failed as i32));
    assert!(
        failed >= 450 - 105,
        "at most about 1 MiB (~105 records of 10 KB) fits a second of one shard; {failed} of 450 refused"
    );
    assert!(
        failed < 450,
        "the shard's first second of allowance is taken"
    );

    let mut stored = BTreeSet::new();
    for (i, r) in out.records().iter().enumerate() {
        match r.error_code() {
            Some(code) => {
                assert_eq!(
                    code, "ProvisionedThroughputExceededException",
                    "entry {i}: {r:?}"
                );
                assert!(
                    r.error_message().is_some_and(|m| !m.is_empty()),
                    "entry {i}: {r:?}"
                );
                assert_eq!(
                    r.sequence_number(),
                    None,
                    "a refused entry has no SequenceNumber"
                );
                assert_eq!(r.shard_id(), None, "a refused entry has no ShardId");
            }
            None => {
                assert!(
                    r.sequence_number().is_some() && r.shard_id().is_some(),
                    "entry {i}: {r:?}"
                );
                stored.insert(format!("r{i}-"));
            }
        }
    }
    let shard = list_shards(&kinesis, "throttled").await.remove(0);
    let read: BTreeSet<String> = read_shard(&kinesis, "throttled", &shard)
        .await
        .records
        .iter()
        .map(|r| {
            let d = r.data().as_ref();
            let end = d.iter().position(|b| *b == b'-').expect("prefix") + 1;
            String::from_utf8(d[..end].to_vec()).expect("ASCII")
        })
        .collect();
    assert_eq!(read, stored, "exactly the accepted entries are stored");
}

/// Per-shard read limits (API_GetRecords: "Each data record can be up to 1 MiB in size,
/// and each shard can read up to 2 MiB per second ... each shard can support up to five
/// read transactions per second"): with the limit on, a burst of GetRecords calls on one
/// shard gets ProvisionedThroughputExceededException (HTTP 400, typed by the SDK) past
/// five a second, another shard is not affected, and the shard serves again once the
/// second has passed. Calls go through one edge (the limiter is per serving node).
///
/// No timing is assumed: bursts of 20 concurrent calls are sent until one is refused (a
/// machine fast enough to finish 20 calls inside a second refuses at least 15 of them;
/// the loop only guards against one too slow for that), and recovery is polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_refuses_get_records_past_five_calls_per_second() {
    use std::time::{Duration, Instant};

    use aws_sdk_kinesis::types::ShardIteratorType;

    let _serial = common::serial().await;
    std::env::set_var("STRATUS_LIMITS__ENFORCE_SHARD_THROUGHPUT", "true");
    let (cluster, _) = start().await;
    // One attempt per call: the SDK retries throttling errors by itself otherwise.
    let kinesis = single_attempt_client(&cluster.node(1).http);
    create_stream(&kinesis, "read-limited", 2).await;
    put(&kinesis, "read-limited", "k", b"one record").await;
    let iterator = |shard: &'static str| {
        let kinesis = kinesis.clone();
        async move {
            shard_iterator(
                &kinesis,
                "read-limited",
                shard,
                ShardIteratorType::TrimHorizon,
                None,
            )
            .await
        }
    };
    let first = iterator("shardId-000000000000").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let calls = (0..20).map(|_| kinesis.get_records().shard_iterator(&first).send());
        let results = futures::future::join_all(calls).await;
        let refused: Vec<_> = results.into_iter().filter_map(Result::err).collect();
        if let Some(e) = refused.into_iter().next() {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no GetRecords call was refused in bursts of 20"
        );
    };
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()),
        "{}",
        DisplayErrorContext(&refused)
    );
    assert_eq!(status_of(&refused), Some(400));
    let message = aws_sdk_kinesis::error::ProvideErrorMetadata::message(&refused)
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("Rate exceeded for shard shardId-000000000000 in stream read-limited"),
        "{message}"
    );

    // Another shard has its own allowance.
    let second = iterator("shardId-000000000001").await;
    kinesis
        .get_records()
        .shard_iterator(&second)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords on another shard: {}", DisplayErrorContext(&e)));

    // The throttled shard serves again once its second has passed.
    wait_until(
        "the shard to serve reads again",
        Duration::from_secs(30),
        || {
            let kinesis = kinesis.clone();
            let first = first.clone();
            async move {
                kinesis
                    .get_records()
                    .shard_iterator(&first)
                    .send()
                    .await
                    .is_ok()
            }
        },
    )
    .await;
}

/// The 2 MiB/s read limit: one GetRecords may return up to 10 MiB, after which the shard
/// refuses calls until the excess is repaid at 2 MiB per second (API_GetRecords: "if a
/// call returns 10 MiB, subsequent calls made within the next 5 seconds throw an
/// exception"). About 8 MiB read at once leaves some 6 MiB of debt, three seconds of
/// refusals; the very next call is refused on any machine that sends two requests within
/// that time, and the shard serves again afterwards (polled).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_read_throttles_the_shard_until_two_mib_per_second_repay_it() {
    use std::time::{Duration, Instant};

    use aws_sdk_kinesis::types::ShardIteratorType;

    let _serial = common::serial().await;
    std::env::set_var("STRATUS_LIMITS__ENFORCE_SHARD_THROUGHPUT", "true");
    let (cluster, _) = start().await;
    let kinesis = single_attempt_client(&cluster.node(1).http);
    create_stream(&kinesis, "bytes-limited", 1).await;

    // 800 records of 10,000 bytes, resending what the 1 MiB/s write limit refuses.
    let mut waiting: Vec<usize> = (0..800).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} records never stored",
            waiting.len()
        );
        let batch: Vec<usize> = waiting.iter().copied().take(100).collect();
        let entries = batch
            .iter()
            .map(|i| {
                let mut data = format!("r{i}-").into_bytes();
                data.resize(10_000, b'x');
                PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .data(Blob::new(data))
                    .build()
                    .expect("entry")
            })
            .collect::<Vec<_>>();
        let out = kinesis
            .put_records()
            .stream_name("bytes-limited")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {}", DisplayErrorContext(&e)));
        let stored: BTreeSet<usize> = batch
            .iter()
            .zip(out.records())
            .filter(|(_, r)| r.error_code().is_none())
            .map(|(i, _)| *i)
            .collect();
        waiting.retain(|i| !stored.contains(i));
        if stored.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let iterator = shard_iterator(
        &kinesis,
        "bytes-limited",
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let big = kinesis
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords of 8 MB: {}", DisplayErrorContext(&e)));
    assert_eq!(big.records().len(), 800, "one call returns all 8 MB");
    let refused = kinesis
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .expect_err("the call after an 8 MB read is refused");
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()),
        "{}",
        DisplayErrorContext(&refused)
    );
    wait_until(
        "the shard to serve reads again",
        Duration::from_secs(30),
        || {
            let kinesis = kinesis.clone();
            let iterator = iterator.clone();
            async move {
                kinesis
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(1)
                    .send()
                    .await
                    .is_ok()
            }
        },
    )
    .await;
}
