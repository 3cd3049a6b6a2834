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
