//! Kinesis records (issue 6) through `aws-sdk-kinesis` against a real 6-node, 3-zone
//! cluster: PutRecord and PutRecords with their per-record results, routing by the MD5
//! of the partition key or by ExplicitHashKey to the shard whose range holds it, sequence
//! numbers strictly increasing per shard under many concurrent producers, each record
//! read back once in sequence order, every shard-iterator type (TRIM_HORIZON, LATEST,
//! AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP) starting where AWS says, and
//! GetRecords' Limit and MillisBehindLatest.
//!
//! AWS reference: API_PutRecord, API_PutRecords, API_GetShardIterator, API_GetRecords
//! (https://docs.aws.amazon.com/kinesis/latest/APIReference/), and "Key concepts" of the
//! developer guide for partition keys (MD5 to a 128-bit integer).

mod common;
mod kinesis_common;
mod sqs_common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, Record, ShardIteratorType};
use aws_sdk_kinesis::Client;
use kinesis_common::*;

const PRODUCERS: usize = 16;
const PER_PRODUCER: usize = 40;
const BATCH: usize = 5;

/// AWS's pattern for a sequence number (API reference, SequenceNumber).
fn is_aws_sequence_number(s: &str) -> bool {
    s == "0"
        || (s.len() <= 129
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0')
            && !s.is_empty())
}

fn entry(partition_key: &str, data: &[u8]) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(partition_key)
        .data(Blob::new(data.to_vec()))
        .build()
        .expect("entry")
}

async fn get_iterator_at_timestamp(client: &Client, stream: &str, shard: &str, ms: i64) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_millis(ms))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "GetShardIterator AT_TIMESTAMP {ms}: {}",
                DisplayErrorContext(&e)
            )
        })
        .shard_iterator()
        .expect("ShardIterator")
        .to_string()
}

fn datas(records: &[Record]) -> Vec<String> {
    records.iter().map(data_of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_round_trip_with_their_keys_sequence_numbers_and_arrival_times() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "trip", 3).await;
    let shards = list_shards(&kinesis, "trip").await;

    // Every byte value, an empty payload and a non-ASCII partition key.
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("bytes".to_string(), every_byte),
        ("empty".to_string(), Vec::new()),
        ("ключ-🙂".to_string(), b"unicode key".to_vec()),
        ("k".repeat(256), b"longest key".to_vec()),
    ];
    let mut acked = Vec::new();
    for (key, data) in &cases {
        let before = now_ms() as i64;
        let (shard_id, seq) = put(&kinesis, "trip", key, data).await;
        let after = now_ms() as i64;
        // The shard is the one whose range holds MD5(key).
        assert_eq!(
            shard_id,
            open_shard_holding(&shards, hash_key_of(key)).shard_id(),
            "PutRecord {key:?} went to the wrong shard"
        );
        assert!(
            is_aws_sequence_number(&seq),
            "SequenceNumber {seq:?} does not match AWS's pattern 0|([1-9]\\d{{0,128}})"
        );
        acked.push((key.clone(), data.clone(), shard_id, seq, before, after));
    }

    for (key, data, shard_id, seq, before, after) in &acked {
        let shard = shards
            .iter()
            .find(|s| s.shard_id() == shard_id)
            .expect("acked shard is listed");
        let read = read_shard(&kinesis, "trip", shard).await;
        let found: Vec<&Record> = read
            .records
            .iter()
            .filter(|r| r.sequence_number() == seq)
            .collect();
        assert_eq!(found.len(), 1, "record {seq} read {} times", found.len());
        let r = found[0];
        assert_eq!(r.data().as_ref(), &data[..], "data of {key:?}");
        assert_eq!(r.partition_key(), Some(key.as_str()));
        let arrival = arrival_ms(r);
        assert!(
            (before - 1_000..=after + 1_000).contains(&arrival),
            "ApproximateArrivalTimestamp {arrival} of {key:?} is not the put's time [{before}, {after}]"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_records_answers_a_result_per_record_in_request_order() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "batch", 4).await;
    let shards = list_shards(&kinesis, "batch").await;

    let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
    let out = kinesis
        .put_records()
        .stream_name("batch")
        .set_records(Some(
            keys.iter()
                .map(|k| entry(k, format!("data-{k}").as_bytes()))
                .collect(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecords: {}", DisplayErrorContext(&e)));
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), keys.len(), "one result per entry");

    let mut expected: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (k, result) in keys.iter().zip(out.records()) {
        assert_eq!(result.error_code(), None, "{k}: {result:?}");
        let shard_id = result.shard_id().expect("ShardId of a stored record");
        let seq = result
            .sequence_number()
            .expect("SequenceNumber of a stored record");
        assert_eq!(
            shard_id,
            open_shard_holding(&shards, hash_key_of(k)).shard_id(),
            "result for {k} (results are in request order)"
        );
        let previous = expected
            .entry(shard_id.to_string())
            .or_default()
            .insert(seq.to_string(), format!("data-{k}"));
        assert_eq!(previous, None, "sequence number {seq} given twice");
    }
    for shard in &shards {
        let read = read_shard(&kinesis, "batch", shard).await;
        assert_strictly_increasing(shard.shard_id(), &read.records);
        let got: BTreeMap<String, String> = read
            .records
            .iter()
            .map(|r| (r.sequence_number().to_string(), data_of(r)))
            .collect();
        assert_eq!(got.len(), read.records.len());
        assert_eq!(
            got,
            expected.remove(shard.shard_id()).unwrap_or_default(),
            "records of {}",
            shard.shard_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_hash_key_routes_to_the_shard_whose_range_holds_it() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "routed", 4).await;
    let shards = list_shards(&kinesis, "routed").await;
    // One partition key for every record: only ExplicitHashKey can spread them.
    let key = "same-key";

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in &shards {
        let (start, end) = range_of(shard);
        for hk in [start, start + (end - start) / 2, end] {
            let data = format!("hk-{hk}");
            let out = kinesis
                .put_record()
                .stream_name("routed")
                .partition_key(key)
                .explicit_hash_key(hk.to_string())
                .data(Blob::new(data.clone()))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PutRecord ExplicitHashKey {hk}: {}",
                        DisplayErrorContext(&e)
                    )
                });
            assert_eq!(
                out.shard_id(),
                shard.shard_id(),
                "ExplicitHashKey {hk} is in the range of {}",
                shard.shard_id()
            );
            expected
                .entry(shard.shard_id().to_string())
                .or_default()
                .push(data);
        }
    }

    // PutRecords honours it per entry too: the two ends of the space.
    let out = kinesis
        .put_records()
        .stream_name("routed")
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .explicit_hash_key("0")
                .data(Blob::new("batch-first"))
                .build()
                .expect("entry"),
        )
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .explicit_hash_key(MAX_HASH_KEY.to_string())
                .data(Blob::new("batch-last"))
                .build()
                .expect("entry"),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PutRecords with ExplicitHashKey: {}",
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(out.failed_record_count(), Some(0));
    let ids: Vec<Option<&str>> = out.records().iter().map(|r| r.shard_id()).collect();
    assert_eq!(
        ids,
        vec![Some("shardId-000000000000"), Some("shardId-000000000003")]
    );
    expected
        .entry("shardId-000000000000".into())
        .or_default()
        .push("batch-first".into());
    expected
        .entry("shardId-000000000003".into())
        .or_default()
        .push("batch-last".into());

    // Each shard holds exactly the records routed to it, in the order put.
    for shard in &shards {
        let read = read_shard(&kinesis, "routed", shard).await;
        assert_eq!(
            datas(&read.records),
            expected.remove(shard.shard_id()).unwrap_or_default(),
            "records of {}",
            shard.shard_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_producers_get_strictly_increasing_sequence_numbers_per_shard() {
    let _serial = common::serial().await;
    let (cluster, _) = start().await;
    create_stream(&kinesis_client(&cluster.node(1).http), "busy", 2).await;

    // Producers on every node's edge, each sending its records one call after the other
    // (half by PutRecord, half by PutRecords batches), keys spread over both shards. A
    // call's records are acknowledged with (ShardId, SequenceNumber).
    #[derive(Debug, Clone)]
    struct Ack {
        producer: usize,
        call: usize,
        key: String,
        data: String,
        shard: String,
        seq: String,
    }
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let client = kinesis_client(&cluster.node(1 + (p % 6) as u64).http);
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            if p % 2 == 0 {
                for i in 0..PER_PRODUCER {
                    let (key, data) = (format!("p{p}-k{}", i % 3), format!("p{p}-{i}"));
                    let (shard, seq) = put(&client, "busy", &key, data.as_bytes()).await;
                    acks.push(Ack {
                        producer: p,
                        call: i,
                        key,
                        data,
                        shard,
                        seq,
                    });
                }
            } else {
                for call in 0..PER_PRODUCER / BATCH {
                    let batch: Vec<(String, String)> = (0..BATCH)
                        .map(|j| {
                            let i = call * BATCH + j;
                            (format!("p{p}-k{}", i % 3), format!("p{p}-{i}"))
                        })
                        .collect();
                    let out = client
                        .put_records()
                        .stream_name("busy")
                        .set_records(Some(
                            batch.iter().map(|(k, d)| entry(k, d.as_bytes())).collect(),
                        ))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("PutRecords p{p}: {}", DisplayErrorContext(&e)));
                    assert_eq!(out.failed_record_count(), Some(0), "p{p}: {out:?}");
                    for ((key, data), r) in batch.into_iter().zip(out.records()) {
                        acks.push(Ack {
                            producer: p,
                            call,
                            key,
                            data,
                            shard: r.shard_id().expect("ShardId").to_string(),
                            seq: r.sequence_number().expect("SequenceNumber").to_string(),
                        });
                    }
                }
            }
            acks
        }));
    }
    let mut acks: Vec<Ack> = Vec::new();
    for t in tasks {
        acks.extend(t.await.expect("producer"));
    }
    assert_eq!(acks.len(), PRODUCERS * PER_PRODUCER);

    let kinesis = kinesis_client(&cluster.node(2).http);
    let shards = list_shards(&kinesis, "busy").await;
    for a in &acks {
        assert_eq!(
            a.shard,
            open_shard_holding(&shards, hash_key_of(&a.key)).shard_id(),
            "{a:?} acknowledged on the wrong shard"
        );
    }
    let unique: BTreeSet<(&str, &str)> = acks
        .iter()
        .map(|a| (a.shard.as_str(), a.seq.as_str()))
        .collect();
    assert_eq!(
        unique.len(),
        acks.len(),
        "a sequence number was given twice"
    );

    // A producer's later call lands after its earlier ones on each shard.
    for p in 0..PRODUCERS {
        for shard in &shards {
            let mine: Vec<&Ack> = acks
                .iter()
                .filter(|a| a.producer == p && a.shard == shard.shard_id())
                .collect();
            for x in &mine {
                for y in &mine {
                    if x.call < y.call {
                        assert_eq!(
                            seq_cmp(&x.seq, &y.seq),
                            Ordering::Less,
                            "producer {p}: call {} acknowledged before call {} began, yet numbered after it",
                            x.call,
                            y.call
                        );
                    }
                }
            }
        }
    }

    // Each shard reads back in strictly increasing sequence order, with exactly the
    // records acknowledged on it, each under the sequence number it was acknowledged with.
    for shard in &shards {
        let read = read_shard(&kinesis, "busy", shard).await;
        assert_strictly_increasing(shard.shard_id(), &read.records);
        let got: Vec<(String, String)> = read
            .records
            .iter()
            .map(|r| (r.sequence_number().to_string(), data_of(r)))
            .collect();
        let mut expected: Vec<(String, String)> = acks
            .iter()
            .filter(|a| a.shard == shard.shard_id())
            .map(|a| (a.seq.clone(), a.data.clone()))
            .collect();
        expected.sort_by(|a, b| seq_cmp(&a.0, &b.0));
        assert_eq!(got, expected, "records of {}", shard.shard_id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_iterator_type_starts_where_aws_says() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "positions", 1).await;
    let shard = "shardId-000000000000";

    // Batch A, then (once the clock has passed A's last arrival) batch B.
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(
            put(&kinesis, "positions", "k", format!("a{i}").as_bytes())
                .await
                .1,
        );
    }
    let first = read_to_end(
        &kinesis,
        &shard_iterator(
            &kinesis,
            "positions",
            shard,
            ShardIteratorType::TrimHorizon,
            None,
        )
        .await,
        false,
    )
    .await;
    let last_a = first.records.iter().map(arrival_ms).max().expect("batch A");
    wait_clock_past(last_a + 5).await;
    for i in 0..5 {
        seqs.push(
            put(&kinesis, "positions", "k", format!("b{i}").as_bytes())
                .await
                .1,
        );
    }
    let all = ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"];

    // TRIM_HORIZON: everything, oldest first, under the acknowledged sequence numbers.
    let trim = shard_iterator(
        &kinesis,
        "positions",
        shard,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let full = read_to_end(&kinesis, &trim, false).await;
    assert_eq!(datas(&full.records), all);
    assert_eq!(
        full.records
            .iter()
            .map(|r| r.sequence_number().to_string())
            .collect::<Vec<_>>(),
        seqs
    );
    // An iterator may be used again: it still starts at the same place.
    let again = read_to_end(&kinesis, &trim, false).await;
    assert_eq!(datas(&again.records), all);

    // AT_SEQUENCE_NUMBER starts at that record, AFTER_SEQUENCE_NUMBER just after it.
    let at = shard_iterator(
        &kinesis,
        "positions",
        shard,
        ShardIteratorType::AtSequenceNumber,
        Some(&seqs[3]),
    )
    .await;
    assert_eq!(
        datas(&read_to_end(&kinesis, &at, false).await.records),
        all[3..]
    );
    let after = shard_iterator(
        &kinesis,
        "positions",
        shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(&seqs[3]),
    )
    .await;
    assert_eq!(
        datas(&read_to_end(&kinesis, &after, false).await.records),
        all[4..]
    );
    let after_last = shard_iterator(
        &kinesis,
        "positions",
        shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(&seqs[9]),
    )
    .await;
    assert!(read_to_end(&kinesis, &after_last, false)
        .await
        .records
        .is_empty());

    // AT_TIMESTAMP: the first record that arrived at or after the time; a time between
    // two records means the later one; a time before the stream means its trim horizon.
    let b0 = arrival_ms(&full.records[5]);
    assert!(
        full.records[..5].iter().all(|r| arrival_ms(r) < b0),
        "batch A arrived before batch B: {:?}",
        full.records
    );
    let at_b0 = get_iterator_at_timestamp(&kinesis, "positions", shard, b0).await;
    assert_eq!(
        datas(&read_to_end(&kinesis, &at_b0, false).await.records),
        all[5..]
    );
    if last_a + 1 < b0 {
        let between = get_iterator_at_timestamp(&kinesis, "positions", shard, last_a + 1).await;
        assert_eq!(
            datas(&read_to_end(&kinesis, &between, false).await.records),
            all[5..]
        );
    }
    let epoch = get_iterator_at_timestamp(&kinesis, "positions", shard, 0).await;
    assert_eq!(
        datas(&read_to_end(&kinesis, &epoch, false).await.records),
        all
    );

    // LATEST: just after the newest record. Nothing now; what is put later, from both the
    // iterator itself and the NextShardIterator of the empty read.
    let latest = shard_iterator(
        &kinesis,
        "positions",
        shard,
        ShardIteratorType::Latest,
        None,
    )
    .await;
    let empty = read_to_end(&kinesis, &latest, false).await;
    assert!(
        empty.records.is_empty(),
        "LATEST saw old records: {:?}",
        empty.records
    );
    for i in 0..3 {
        put(&kinesis, "positions", "k", format!("c{i}").as_bytes()).await;
    }
    let next = empty.next_iterator.expect("an open shard's read goes on");
    assert_eq!(
        datas(&read_to_end(&kinesis, &next, false).await.records),
        ["c0", "c1", "c2"]
    );
    assert_eq!(
        datas(&read_to_end(&kinesis, &latest, false).await.records),
        ["c0", "c1", "c2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_records_honours_limit_and_reports_millis_behind_latest() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "paced", 1).await;
    let shard = "shardId-000000000000";

    // Nine records, then (once the clock has moved well past them) a tenth: a reader at
    // the start is behind the tip by more than zero milliseconds.
    let mut last_seq = String::new();
    for i in 0..9 {
        last_seq = put(&kinesis, "paced", "k", format!("r{i}").as_bytes())
            .await
            .1;
    }
    let it = shard_iterator(
        &kinesis,
        "paced",
        shard,
        ShardIteratorType::AtSequenceNumber,
        Some(&last_seq),
    )
    .await;
    let ninth = kinesis
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords: {}", DisplayErrorContext(&e)));
    wait_clock_past(arrival_ms(&ninth.records()[0]) + 200).await;
    put(&kinesis, "paced", "k", b"r9").await;

    let mut it = shard_iterator(
        &kinesis,
        "paced",
        shard,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(
            pages < 100,
            "GetRecords with Limit 3 never caught up: {got:?}"
        );
        let out = kinesis
            .get_records()
            .shard_iterator(&it)
            .limit(3)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords Limit 3: {}", DisplayErrorContext(&e)));
        assert!(
            out.records().len() <= 3,
            "Limit 3 answered {} records",
            out.records().len()
        );
        let behind = out
            .millis_behind_latest()
            .unwrap_or_else(|| panic!("GetRecords without MillisBehindLatest: {out:?}"));
        assert!(behind >= 0);
        if pages == 1 {
            assert!(!out.records().is_empty(), "records are there to read");
            assert!(
                behind > 0,
                "the first page is 200+ ms behind the tip, yet MillisBehindLatest is 0"
            );
        }
        got.extend(datas(out.records()));
        it = out.next_shard_iterator().expect("open shard").to_string();
        if out.records().is_empty() {
            assert_eq!(behind, 0, "caught up with the tip");
            break;
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(got, expected);
    assert!(
        pages >= 5,
        "ten records in pages of at most three take four pages and an empty one"
    );

    // The largest Limit is accepted.
    let trim = shard_iterator(
        &kinesis,
        "paced",
        shard,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let out = kinesis
        .get_records()
        .shard_iterator(&trim)
        .limit(10_000)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords Limit 10000: {}", DisplayErrorContext(&e)));
    assert_eq!(datas(out.records()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequence_number_for_ordering_keeps_a_key_in_order() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "ordered", 1).await;
    let (_, first) = put(&kinesis, "ordered", "k", b"first").await;
    let second = kinesis
        .put_record()
        .stream_name("ordered")
        .partition_key("k")
        .sequence_number_for_ordering(&first)
        .data(Blob::new("second"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PutRecord SequenceNumberForOrdering: {}",
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(
        seq_cmp(second.sequence_number(), &first),
        Ordering::Greater,
        "SequenceNumberForOrdering: the new record's number is greater"
    );
}
