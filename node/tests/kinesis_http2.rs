//! HTTP/2 on the edge against a real 6-node, 3-zone cluster: the edge port speaks
//! HTTP/2 with prior knowledge (h2c, plain `http://`) beside HTTP/1.1, as HTTP/2-only
//! clients (the Java SDK v2's Netty client, the KCL 2.x) need for SubscribeToShard.
//!
//! The stream, the consumer and the records are made with the AWS SDK for Rust (over
//! HTTP/1.1); then a raw `hyper_util` client that speaks only HTTP/2 sends SigV4-signed
//! requests (`kinesis_common::signed`) without a `Host` header, as HTTP/2 clients do (the
//! host travels in `:authority`, and the signature must verify against it).
//! SubscribeToShard answers over HTTP/2 with the event stream, whose messages (both CRCs
//! checked) carry the records put, with their sequence numbers and data; ordinary JSON
//! operations and errors answer over HTTP/2 too, and HTTP/1.1 keeps working on the port.
//!
//! AWS reference: API_SubscribeToShard ("This operation uses HTTP/2"), RFC 9113 §3.3
//! (starting HTTP/2 with prior knowledge).

mod common;
mod kinesis_common;
mod sqs_common;

use std::time::Duration;

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{StatusCode, Version};
use kinesis_common::signed::{self, EventReader, EVENT_STREAM, JSON};
use kinesis_common::*;
use serde_json::{json, Value};

/// How long the test waits for records it put to be pushed.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_to_shard_and_every_operation_answer_over_h2c() {
    let _serial = common::serial().await;
    let (cluster, kinesis) = start().await;
    let edge = cluster.node(1).http.clone();
    let stream = "over-h2";
    let shard = "shardId-000000000000";
    create_stream(&kinesis, stream, 1).await;

    let registered = kinesis
        .register_stream_consumer()
        .stream_arn(stream_arn(stream))
        .consumer_name("h2-reader")
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterStreamConsumer: {}", DisplayErrorContext(&e)));
    let consumer = registered
        .consumer()
        .expect("Consumer")
        .consumer_arn()
        .to_string();
    wait_consumer_active(&kinesis, &consumer).await;

    let payloads: Vec<Vec<u8>> = vec![
        b"first over h2".to_vec(),
        (0..=255).collect(),
        Vec::new(),
        b"last".to_vec(),
    ];
    let mut put_sequences = Vec::new();
    for (i, data) in payloads.iter().enumerate() {
        let (shard_id, sequence) = put(&kinesis, stream, &format!("key-{i}"), data).await;
        assert_eq!(shard_id, shard);
        put_sequences.push(sequence);
    }

    // SubscribeToShard over HTTP/2 with prior knowledge.
    let h2 = signed::h2c_client();
    let request = json!({
        "ConsumerARN": consumer,
        "ShardId": shard,
        "StartingPosition": { "Type": "TRIM_HORIZON" },
    });
    let resp = signed::send_signed(
        &h2,
        &edge,
        "SubscribeToShard",
        JSON,
        request.to_string().into_bytes(),
    )
    .await;
    assert_eq!(resp.version(), Version::HTTP_2, "SubscribeToShard's answer");
    assert_eq!(resp.status(), StatusCode::OK, "{resp:?}");
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(EVENT_STREAM.as_bytes())
    );
    let mut events = EventReader::new(resp.into_body());
    let initial = events
        .next(PUSH_TIMEOUT)
        .await
        .expect("the event stream ended before its initial-response");
    assert_eq!(initial.header(":message-type"), Some("event"));
    assert_eq!(initial.header(":event-type"), Some("initial-response"));

    let mut received: Vec<(String, Vec<u8>, String)> = Vec::new();
    while received.len() < payloads.len() {
        let m = events
            .next(PUSH_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("the event stream ended after {received:?}"));
        assert_eq!(m.header(":message-type"), Some("event"), "{m:?}");
        assert_eq!(m.header(":event-type"), Some("SubscribeToShardEvent"));
        assert_eq!(m.header(":content-type"), Some("application/json"));
        let event: Value = serde_json::from_slice(&m.payload)
            .unwrap_or_else(|e| panic!("event payload is not JSON: {e}: {m:?}"));
        let records = event["Records"].as_array().expect("Records");
        for r in records {
            let sequence = r["SequenceNumber"].as_str().expect("SequenceNumber");
            let data = STANDARD
                .decode(r["Data"].as_str().expect("Data"))
                .expect("Data is base64");
            let key = r["PartitionKey"].as_str().expect("PartitionKey");
            assert!(
                r["ApproximateArrivalTimestamp"].is_number(),
                "ApproximateArrivalTimestamp: {r}"
            );
            received.push((sequence.to_string(), data, key.to_string()));
        }
        if let Some(last) = records.last() {
            assert_eq!(
                event["ContinuationSequenceNumber"], last["SequenceNumber"],
                "the continuation is the event's last record"
            );
        }
    }
    let expected: Vec<(String, Vec<u8>, String)> = put_sequences
        .iter()
        .zip(&payloads)
        .enumerate()
        .map(|(i, (s, d))| (s.clone(), d.clone(), format!("key-{i}")))
        .collect();
    assert_eq!(received, expected, "the records put, in order, over HTTP/2");
    drop(events);

    // Ordinary JSON operations over the same HTTP/2 client.
    let summary = signed::call_json(
        &h2,
        &edge,
        "DescribeStreamSummary",
        &json!({ "StreamName": stream }),
    )
    .await;
    assert_eq!(summary.version, Version::HTTP_2);
    assert_eq!(summary.status, StatusCode::OK, "{summary:?}");
    assert_eq!(summary.content_type(), JSON);
    let s = &summary.json()["StreamDescriptionSummary"];
    assert_eq!(s["StreamName"], stream);
    assert_eq!(s["StreamARN"], stream_arn(stream));
    assert_eq!(s["OpenShardCount"], 1);
    assert_eq!(s["ConsumerCount"], 1);

    let data = b"put over h2".to_vec();
    let put_h2 = signed::call_json(
        &h2,
        &edge,
        "PutRecord",
        &json!({
            "StreamName": stream,
            "PartitionKey": "h2",
            "Data": STANDARD.encode(&data),
        }),
    )
    .await;
    assert_eq!(put_h2.version, Version::HTTP_2);
    assert_eq!(put_h2.status, StatusCode::OK, "{put_h2:?}");
    let put_h2 = put_h2.json();
    assert_eq!(put_h2["ShardId"], shard);
    let sequence = put_h2["SequenceNumber"].as_str().expect("SequenceNumber");
    assert_eq!(
        seq_cmp(put_sequences.last().unwrap(), sequence),
        std::cmp::Ordering::Less,
        "the record put over HTTP/2 comes after the others"
    );
    // The SDK (over HTTP/1.1) reads what HTTP/2 wrote.
    let it = shard_iterator(
        &kinesis,
        stream,
        shard,
        ShardIteratorType::AtSequenceNumber,
        Some(sequence),
    )
    .await;
    let read = read_to_end(&kinesis, &it, false).await;
    assert_eq!(read.records.len(), 1, "{read:?}");
    assert_eq!(read.records[0].data().as_ref(), data.as_slice());
    assert_eq!(read.records[0].sequence_number(), sequence);

    // An error over HTTP/2 is the usual JSON error.
    let missing = signed::call_json(
        &h2,
        &edge,
        "DescribeStreamSummary",
        &json!({ "StreamName": "no-such-stream" }),
    )
    .await;
    assert_eq!(missing.version, Version::HTTP_2);
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["__type"], "ResourceNotFoundException");
    assert_eq!(
        missing
            .headers
            .get("x-amzn-errortype")
            .map(|v| v.as_bytes()),
        Some(&b"ResourceNotFoundException"[..])
    );

    // HTTP/1.1 on the same port, from the same kind of raw client.
    let h1 = signed::http1_client();
    let over_h1 = signed::call_json(
        &h1,
        &edge,
        "DescribeStreamSummary",
        &json!({ "StreamName": stream }),
    )
    .await;
    assert_eq!(over_h1.version, Version::HTTP_11);
    assert_eq!(over_h1.status, StatusCode::OK, "{over_h1:?}");
    assert_eq!(
        over_h1.json()["StreamDescriptionSummary"]["StreamName"],
        stream
    );

    // The node that served all of this still serves.
    assert_eq!(summary_of(&kinesis, stream).await, stream);
}

async fn summary_of(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> String {
    summary(kinesis, stream).await.stream_name().to_string()
}
