//! Kinesis's CBOR protocol (`Content-Type: application/x-amz-cbor-1.1`, the AWS SDK for
//! Java's default, v1 and v2, hence the KCL's) against a real 6-node, 3-zone cluster.
//!
//! Requests are SigV4-signed raw HTTP (`kinesis_common::signed`) whose bodies are CBOR
//! written by the test's own codec (`kinesis_common::cbor`, apart from the server's), two
//! of them checked against bytes written out by hand; answers are decoded by that codec.
//! What is checked is what a Java client relies on: record data as CBOR byte strings
//! (major type 2) both ways, timestamps as tag 1 around integer epoch milliseconds both
//! ways (AWS's CBOR convention, not RFC 8949's seconds: the Java SDKs write and read
//! `toEpochMilli()`), answers and errors in CBOR with the JSON protocol's statuses and
//! `__type`, SubscribeToShard's events with CBOR payloads; and that malformed CBOR is a
//! `SerializationException` after which the node goes on serving. The SDK for Rust
//! (JSON) reads what CBOR wrote, so the two protocols see the same records.
//!
//! AWS reference: API_PutRecord, API_GetRecords, API_SubscribeToShard; the AWS SDK for
//! Java v2's `AwsCborProtocolFactory` ("CBOR uses epoch millis for timestamps").

mod common;
mod kinesis_common;
mod sqs_common;

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use kinesis_common::cbor::{self, bytes, epoch_millis, map, text, Item};
use kinesis_common::signed::{self, Answer, EventReader, RawClient, CBOR, EVENT_STREAM};
use kinesis_common::*;

const STREAM: &str = "cbor-stream";

/// A CBOR call whose answer must be a 200 CBOR document; returns it decoded.
async fn ok(client: &RawClient, edge: &str, operation: &str, body: &Item) -> Item {
    let answer = signed::call(client, edge, operation, CBOR, cbor::encode(body)).await;
    decoded_ok(operation, &answer)
}

/// GetShardIterator with `request`, then the first GetRecords page of that iterator.
async fn first_page(client: &RawClient, edge: &str, request: &Item) -> Item {
    let it = ok(client, edge, "GetShardIterator", request).await;
    let iterator = map(vec![("ShardIterator", it.at("ShardIterator").clone())]);
    ok(client, edge, "GetRecords", &iterator).await
}

fn decoded_ok(operation: &str, answer: &Answer) -> Item {
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{operation}: {answer:?} ({:02x?})",
        &answer.body[..answer.body.len().min(200)]
    );
    assert_eq!(answer.content_type(), CBOR, "{operation}");
    cbor::decode(&answer.body)
}

/// A CBOR error answer: its status, `__type` and message, checked to be a CBOR map in
/// the CBOR content type with the type also in `x-amzn-errortype`.
fn cbor_error(what: &str, answer: &Answer) -> (StatusCode, String, String) {
    assert_eq!(answer.content_type(), CBOR, "{what}: {answer:?}");
    let doc = cbor::decode(&answer.body);
    let code = doc.at("__type").as_text().to_string();
    assert_eq!(
        answer
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some(code.as_str()),
        "{what}"
    );
    (answer.status, code, doc.at("message").as_text().to_string())
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cbor_requests_and_answers_carry_bytes_and_epoch_millis() {
    let _serial = common::serial().await;
    let (cluster, kinesis) = start().await;
    let edge = cluster.node(1).http.clone();
    let raw = signed::http1_client();
    let started_ms = now_ms();

    // CreateStream {"StreamName": "cbor-stream", "ShardCount": 2}, written out by hand.
    let create = hex("a2 6a 53747265616d4e616d65 6b 63626f722d73747265616d
                      6a 5368617264436f756e74 02");
    assert_eq!(
        create,
        cbor::encode(&map(vec![
            ("StreamName", text(STREAM)),
            ("ShardCount", Item::Uint(2)),
        ])),
        "the test's encoder writes what the hand-written bytes say"
    );
    let created = signed::call(&raw, &edge, "CreateStream", CBOR, create).await;
    assert_eq!(decoded_ok("CreateStream", &created), Item::Map(vec![]));
    wait_active(&kinesis, STREAM).await;
    let ranges = even_ranges(2);
    let shard_of = |key: &str| {
        let h = hash_key_of(key);
        let i = ranges
            .iter()
            .position(|(s, e)| *s <= h && h <= *e)
            .expect("a range holds every hash key");
        format!("shardId-{i:012}")
    };

    // PutRecord {"StreamName": .., "Data": h'0001feff', "PartitionKey": "pk-1"}, by hand.
    let put_one = hex("a3 6a 53747265616d4e616d65 6b 63626f722d73747265616d
                       64 44617461 44 0001feff
                       6c 506172746974696f6e4b6579 64 706b2d31");
    assert_eq!(
        put_one,
        cbor::encode(&map(vec![
            ("StreamName", text(STREAM)),
            ("Data", bytes(&[0, 1, 0xfe, 0xff])),
            ("PartitionKey", text("pk-1")),
        ]))
    );
    let answer = signed::call(&raw, &edge, "PutRecord", CBOR, put_one).await;
    let put = decoded_ok("PutRecord", &answer);
    assert_eq!(put.at("ShardId").as_text(), shard_of("pk-1"));
    assert_eq!(put.at("EncryptionType").as_text(), "NONE");
    let first_sequence = put.at("SequenceNumber").as_text().to_string();
    // What the JSON protocol (the SDK for Rust) reads is the four bytes, not their text.
    let it = shard_iterator(
        &kinesis,
        STREAM,
        &shard_of("pk-1"),
        aws_sdk_kinesis::types::ShardIteratorType::AtSequenceNumber,
        Some(&first_sequence),
    )
    .await;
    let read = read_to_end(&kinesis, &it, false).await;
    assert_eq!(read.records[0].data().as_ref(), &[0, 1, 0xfe, 0xff]);
    assert_eq!(read.records[0].partition_key(), Some("pk-1"));

    // PutRecords: one result per entry, in order, routed by the partition key's MD5.
    let entries: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let data: Vec<u8> = (0..(i * 300 + 1)).map(|j| (j * 7 + i) as u8).collect();
            (format!("batch-{i}"), data)
        })
        .collect();
    let batch = map(vec![
        ("StreamName", text(STREAM)),
        (
            "Records",
            Item::Array(
                entries
                    .iter()
                    .map(|(k, d)| map(vec![("Data", bytes(d)), ("PartitionKey", text(k))]))
                    .collect(),
            ),
        ),
    ]);
    let put_many = ok(&raw, &edge, "PutRecords", &batch).await;
    assert_eq!(put_many.at("FailedRecordCount").as_uint(), 0);
    let results = put_many.at("Records").as_array();
    assert_eq!(results.len(), entries.len());
    // Every record put, by sequence number: (shard, partition key, data).
    let mut expected: BTreeMap<String, (String, String, Vec<u8>)> = BTreeMap::new();
    expected.insert(
        first_sequence.clone(),
        (shard_of("pk-1"), "pk-1".into(), vec![0, 1, 0xfe, 0xff]),
    );
    for ((key, data), result) in entries.iter().zip(results) {
        assert_eq!(result.at("ShardId").as_text(), shard_of(key), "{key}");
        assert!(result.get("ErrorCode").is_none(), "{result:?}");
        expected.insert(
            result.at("SequenceNumber").as_text().to_string(),
            (shard_of(key), key.clone(), data.clone()),
        );
    }

    // GetShardIterator + GetRecords in CBOR: the data come back as byte strings, arrival
    // times as tag 1 around epoch milliseconds.
    let mut read_back: BTreeMap<String, (String, String, Vec<u8>)> = BTreeMap::new();
    let mut arrivals: Vec<(String, u64)> = Vec::new();
    let finished_ms = now_ms();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let page = first_page(
            &raw,
            &edge,
            &map(vec![
                ("StreamName", text(STREAM)),
                ("ShardId", text(shard)),
                ("ShardIteratorType", text("TRIM_HORIZON")),
            ]),
        )
        .await;
        assert!(matches!(page.at("MillisBehindLatest"), Item::Uint(_)));
        assert!(!page.at("NextShardIterator").as_text().is_empty());
        for r in page.at("Records").as_array() {
            assert_eq!(
                r.keys().into_keys().collect::<Vec<_>>(),
                [
                    "ApproximateArrivalTimestamp",
                    "Data",
                    "PartitionKey",
                    "SequenceNumber"
                ]
            );
            let arrival_ms = r.at("ApproximateArrivalTimestamp").as_epoch_millis();
            assert!(
                started_ms <= arrival_ms + 1_000 && arrival_ms <= finished_ms + 1_000,
                "ApproximateArrivalTimestamp {arrival_ms} ms is not between {started_ms} and \
                 {finished_ms} (epoch milliseconds)"
            );
            let sequence = r.at("SequenceNumber").as_text().to_string();
            arrivals.push((sequence.clone(), arrival_ms));
            read_back.insert(
                sequence,
                (
                    shard.to_string(),
                    r.at("PartitionKey").as_text().to_string(),
                    r.at("Data").as_bytes().to_vec(),
                ),
            );
        }
    }
    assert_eq!(
        read_back, expected,
        "GetRecords in CBOR reads every record put"
    );

    // A timestamp sent as tag 1 + epoch milliseconds: AT_TIMESTAMP at a record's arrival
    // starts at that record (or one that arrived in the same millisecond before it).
    let target_shard = shard_of("pk-1");
    let (target_sequence, target_ms) = arrivals
        .iter()
        .filter(|(s, _)| expected[s].0 == target_shard)
        .max_by(|a, b| seq_cmp(&a.0, &b.0))
        .cloned()
        .expect("pk-1's shard holds records");
    let page = first_page(
        &raw,
        &edge,
        &map(vec![
            ("StreamName", text(STREAM)),
            ("ShardId", text(&target_shard)),
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            ("Timestamp", epoch_millis(target_ms)),
        ]),
    )
    .await;
    let from_time: Vec<&str> = page
        .at("Records")
        .as_array()
        .iter()
        .map(|r| r.at("SequenceNumber").as_text())
        .collect();
    assert_eq!(
        from_time.last().copied(),
        Some(target_sequence.as_str()),
        "AT_TIMESTAMP {target_ms} (epoch ms) must read up to and including the last record"
    );
    assert!(
        page.at("Records")
            .as_array()
            .iter()
            .all(|r| { r.at("ApproximateArrivalTimestamp").as_epoch_millis() >= target_ms }),
        "AT_TIMESTAMP {target_ms} read records that arrived earlier: {page:?}"
    );

    // The stream's creation time: tag 1 epoch milliseconds, around when the test made it.
    let summary = ok(
        &raw,
        &edge,
        "DescribeStreamSummary",
        &map(vec![("StreamName", text(STREAM))]),
    )
    .await;
    let summary = summary.at("StreamDescriptionSummary");
    assert_eq!(summary.at("StreamName").as_text(), STREAM);
    assert_eq!(summary.at("OpenShardCount").as_uint(), 2);
    assert_eq!(summary.at("RetentionPeriodHours").as_uint(), 24);
    let created_ms = summary.at("StreamCreationTimestamp").as_epoch_millis();
    assert!(
        started_ms <= created_ms + 1_000 && created_ms <= finished_ms,
        "StreamCreationTimestamp {created_ms} is not between {started_ms} and {finished_ms}"
    );

    // Errors: a CBOR map with __type and message, the JSON protocol's status.
    let missing = signed::call(
        &raw,
        &edge,
        "PutRecord",
        CBOR,
        cbor::encode(&map(vec![
            ("StreamName", text("no-such-stream")),
            ("Data", bytes(b"x")),
            ("PartitionKey", text("k")),
        ])),
    )
    .await;
    let (status, code, message) = cbor_error("PutRecord to an unknown stream", &missing);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "ResourceNotFoundException")
    );
    assert!(message.contains("no-such-stream"), "{message}");
    let invalid = signed::call(
        &raw,
        &edge,
        "GetShardIterator",
        CBOR,
        cbor::encode(&map(vec![
            ("StreamName", text(STREAM)),
            ("ShardId", text("shardId-000000000000")),
            ("ShardIteratorType", text("SOMETIME")),
        ])),
    )
    .await;
    let (status, code, _) = cbor_error("an unknown iterator type", &invalid);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "ValidationException")
    );

    // Malformed CBOR: a SerializationException that says so, for each kind of damage.
    let damaged: [(&str, Vec<u8>); 5] = [
        ("a map cut short", hex("a3 6a 53747265616d4e")),
        ("a stray break", hex("ff")),
        ("JSON text", br#"{"StreamName":"cbor-stream"}"#.to_vec()),
        ("an empty body", Vec::new()),
        (
            "a byte string 2^64 - 1 bytes long",
            hex("a1 64 44617461 5b ffffffffffffffff"),
        ),
    ];
    for (what, body) in damaged {
        let answer = signed::call(&raw, &edge, "DescribeStreamSummary", CBOR, body).await;
        let (status, code, message) = cbor_error(what, &answer);
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "SerializationException"),
            "{what}: {message}"
        );
        assert!(message.contains("CBOR"), "{what}: {message}");
    }
    // A well-formed body of the wrong shape: an array, and a map with a non-text key.
    for (what, body) in [
        ("an array", Item::Array(vec![text(STREAM)])),
        (
            "an integer key",
            Item::Map(vec![(Item::Uint(1), text(STREAM))]),
        ),
    ] {
        let answer = signed::call(
            &raw,
            &edge,
            "DescribeStreamSummary",
            CBOR,
            cbor::encode(&body),
        )
        .await;
        let (status, code, _) = cbor_error(what, &answer);
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "SerializationException"),
            "{what}"
        );
    }

    // The node goes on serving, in both protocols.
    assert_eq!(summary_name(&kinesis, STREAM).await, STREAM);
    let again = ok(
        &raw,
        &edge,
        "DescribeStreamSummary",
        &map(vec![("StreamName", text(STREAM))]),
    )
    .await;
    assert_eq!(
        again
            .at("StreamDescriptionSummary")
            .at("StreamName")
            .as_text(),
        STREAM
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_to_shard_in_cbor_pushes_cbor_events() {
    let _serial = common::serial().await;
    let (cluster, kinesis) = start().await;
    let edge = cluster.node(2).http.clone();
    let stream = "cbor-fanout";
    let shard = "shardId-000000000000";
    create_stream(&kinesis, stream, 1).await;
    let raw = signed::h2c_client();
    let started_ms = now_ms();

    let registered = ok(
        &raw,
        &edge,
        "RegisterStreamConsumer",
        &map(vec![
            ("StreamARN", text(&stream_arn(stream))),
            ("ConsumerName", text("java-like")),
        ]),
    )
    .await;
    let consumer = registered.at("Consumer");
    let consumer_arn = consumer.at("ConsumerARN").as_text().to_string();
    let consumer_ms = consumer.at("ConsumerCreationTimestamp").as_epoch_millis();
    assert!(
        started_ms <= consumer_ms + 1_000 && consumer_ms <= now_ms(),
        "ConsumerCreationTimestamp {consumer_ms} (epoch ms) is not around {started_ms}"
    );
    wait_consumer_active(&kinesis, &consumer_arn).await;

    // ListStreamConsumers with the stream's creation time as tag 1 + epoch milliseconds:
    // the right time lists the consumer, a time a second later is another stream.
    let created_ms = ok(
        &raw,
        &edge,
        "DescribeStreamSummary",
        &map(vec![("StreamName", text(stream))]),
    )
    .await
    .at("StreamDescriptionSummary")
    .at("StreamCreationTimestamp")
    .as_epoch_millis();
    let listed = ok(
        &raw,
        &edge,
        "ListStreamConsumers",
        &map(vec![
            ("StreamARN", text(&stream_arn(stream))),
            ("StreamCreationTimestamp", epoch_millis(created_ms)),
        ]),
    )
    .await;
    let consumers = listed.at("Consumers").as_array();
    assert_eq!(consumers.len(), 1, "{listed:?}");
    assert_eq!(consumers[0].at("ConsumerARN").as_text(), consumer_arn);
    let other_time = signed::call(
        &raw,
        &edge,
        "ListStreamConsumers",
        CBOR,
        cbor::encode(&map(vec![
            ("StreamARN", text(&stream_arn(stream))),
            ("StreamCreationTimestamp", epoch_millis(created_ms + 1_000)),
        ])),
    )
    .await;
    assert_eq!(
        cbor_error("another creation time", &other_time).1,
        "ResourceNotFoundException"
    );

    let payloads: Vec<Vec<u8>> = vec![vec![0xff, 0, 0x80], b"second".to_vec(), vec![7; 2_000]];
    let mut sequences = Vec::new();
    for (i, data) in payloads.iter().enumerate() {
        sequences.push(put(&kinesis, stream, &format!("k{i}"), data).await.1);
    }

    let resp = signed::send_signed(
        &raw,
        &edge,
        "SubscribeToShard",
        CBOR,
        cbor::encode(&map(vec![
            ("ConsumerARN", text(&consumer_arn)),
            ("ShardId", text(shard)),
            (
                "StartingPosition",
                map(vec![("Type", text("TRIM_HORIZON"))]),
            ),
        ])),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{resp:?}");
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(EVENT_STREAM.as_bytes())
    );
    let mut events = EventReader::new(resp.into_body());
    let initial = events
        .next(Duration::from_secs(30))
        .await
        .expect("an initial-response");
    assert_eq!(initial.header(":event-type"), Some("initial-response"));
    assert_eq!(initial.header(":content-type"), Some(CBOR));
    assert_eq!(cbor::decode(&initial.payload), Item::Map(vec![]));

    let mut received: Vec<(String, Vec<u8>)> = Vec::new();
    while received.len() < payloads.len() {
        let m = events
            .next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("the event stream ended after {received:?}"));
        assert_eq!(
            m.header(":event-type"),
            Some("SubscribeToShardEvent"),
            "{m:?}"
        );
        assert_eq!(m.header(":content-type"), Some(CBOR));
        let event = cbor::decode(&m.payload);
        assert!(matches!(event.at("MillisBehindLatest"), Item::Uint(_)));
        let records = event.at("Records").as_array();
        for r in records {
            let arrival_ms = r.at("ApproximateArrivalTimestamp").as_epoch_millis();
            assert!(
                started_ms <= arrival_ms + 1_000 && arrival_ms <= now_ms() + 1_000,
                "ApproximateArrivalTimestamp {arrival_ms} (epoch ms)"
            );
            received.push((
                r.at("SequenceNumber").as_text().to_string(),
                r.at("Data").as_bytes().to_vec(),
            ));
        }
        if let Some(last) = records.last() {
            assert_eq!(
                event.at("ContinuationSequenceNumber"),
                last.at("SequenceNumber")
            );
        }
    }
    let expected: Vec<(String, Vec<u8>)> = sequences.into_iter().zip(payloads).collect();
    assert_eq!(received, expected);
}

async fn summary_name(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> String {
    summary(kinesis, stream).await.stream_name().to_string()
}
