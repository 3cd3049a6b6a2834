//! Enhanced fan-out (issue 6) through `aws-sdk-kinesis` against a real 6-node, 3-zone
//! cluster: consumers registered, described, listed and deregistered in the stream
//! catalog with Kinesis's errors and limits, and SubscribeToShard's event stream read by
//! the SDK's own `subscribe_to_shard()` over plain HTTP/1.1: records put before and after
//! subscribing arrive in order with their continuation sequence numbers, a resubscription
//! after the last continuation reads the rest exactly once, and a shard split under a
//! subscription ends it with the children (ChildShards).
//!
//! AWS reference: API_RegisterStreamConsumer, API_DescribeStreamConsumer,
//! API_ListStreamConsumers, API_DeregisterStreamConsumer, API_SubscribeToShard,
//! API_SubscribeToShardEvent; developer guide "Develop enhanced fan-out consumers".

mod common;
mod kinesis_common;
mod sqs_common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{
    ConsumerStatus, Record, ShardIteratorType, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use kinesis_common::*;

/// How long a test waits for records it put to be pushed.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

async fn register(client: &Client, stream: &str, name: &str) -> String {
    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn(stream))
        .consumer_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterStreamConsumer {name}: {}", DisplayErrorContext(&e)));
    let c = out.consumer().expect("Consumer");
    assert_eq!(c.consumer_name(), name);
    assert_eq!(c.consumer_status(), &ConsumerStatus::Creating);
    c.consumer_arn().to_string()
}

fn position(kind: ShardIteratorType, sequence: Option<&str>) -> StartingPosition {
    StartingPosition::builder()
        .r#type(kind)
        .set_sequence_number(sequence.map(String::from))
        .build()
        .expect("StartingPosition")
}

async fn try_subscribe(
    client: &Client,
    consumer_arn: &str,
    shard: &str,
    start: StartingPosition,
) -> Result<
    SubscribeToShardOutput,
    aws_sdk_kinesis::error::SdkError<
        aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardError,
    >,
> {
    client
        .subscribe_to_shard()
        .consumer_arn(consumer_arn)
        .shard_id(shard)
        .starting_position(start)
        .send()
        .await
}

/// Subscribe, waiting out the five seconds Kinesis asks between two subscriptions of the
/// same consumer to the same shard (ResourceInUseException meanwhile).
async fn subscribe(
    client: &Client,
    consumer_arn: &str,
    shard: &str,
    start: StartingPosition,
) -> SubscribeToShardOutput {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match try_subscribe(client, consumer_arn, shard, start.clone()).await {
            Ok(out) => return out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                assert!(
                    Instant::now() < deadline,
                    "SubscribeToShard still refused: {}",
                    DisplayErrorContext(&e)
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("SubscribeToShard {shard}: {}", DisplayErrorContext(&e)),
        }
    }
}

/// The next SubscribeToShardEvent (None when the stream ended), within PUSH_TIMEOUT.
async fn next_event(out: &mut SubscribeToShardOutput) -> Option<SubscribeToShardEvent> {
    let received = tokio::time::timeout(PUSH_TIMEOUT, out.event_stream.recv())
        .await
        .expect("no event within the timeout");
    match received.unwrap_or_else(|e| panic!("event stream: {}", DisplayErrorContext(&e))) {
        Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => Some(e),
        Some(other) => panic!("unexpected event {other:?}"),
        None => None,
    }
}

/// Events until `n` records arrived; checks each event's continuation is its last record.
async fn receive(out: &mut SubscribeToShardOutput, n: usize) -> (Vec<Record>, String) {
    let mut records = Vec::new();
    let mut continuation = String::new();
    while records.len() < n {
        let e = next_event(out)
            .await
            .unwrap_or_else(|| panic!("the stream ended after {} records", records.len()));
        assert!(
            e.child_shards().is_empty(),
            "an open shard's event has no ChildShards"
        );
        if let Some(last) = e.records().last() {
            assert_eq!(
                e.continuation_sequence_number(),
                last.sequence_number(),
                "an event's ContinuationSequenceNumber is its last record's"
            );
        }
        assert!(!e.continuation_sequence_number().is_empty());
        continuation = e.continuation_sequence_number().to_string();
        records.extend(e.records().iter().cloned());
    }
    assert_eq!(records.len(), n, "exactly the records put: {records:?}");
    (records, continuation)
}

fn payloads(records: &[Record]) -> Vec<String> {
    records.iter().map(data_of).collect()
}

async fn put_all(client: &Client, stream: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut sequences = Vec::new();
    for i in 0..n {
        let data = format!("{prefix}-{i}");
        sequences.push(put(client, stream, "one-key", data.as_bytes()).await.1);
    }
    sequences
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_are_registered_described_listed_and_deregistered() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "fans", 1).await;
    let before = now_ms();
    let arn = register(&kinesis, "fans", "app-a").await;
    // <stream ARN>/consumer/<name>:<creation epoch seconds>
    let (prefix, seconds) = arn.rsplit_once(':').expect("ARN");
    assert_eq!(prefix, format!("{}/consumer/app-a", stream_arn("fans")));
    let seconds: u64 = seconds.parse().expect("epoch seconds");
    assert!(seconds >= before / 1000 - 1 && seconds <= now_ms() / 1000 + 1);
    let arn_b = register(&kinesis, "fans", "app-b").await;

    // By ARN and by stream and name: ACTIVE, with the stream's ARN.
    for d in [
        kinesis
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await,
        kinesis
            .describe_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .consumer_name("app-a")
            .send()
            .await,
    ] {
        let d = d.unwrap_or_else(|e| panic!("DescribeStreamConsumer: {}", DisplayErrorContext(&e)));
        let c = d.consumer_description().expect("ConsumerDescription");
        assert_eq!(
            (c.consumer_name(), c.consumer_arn(), c.stream_arn()),
            ("app-a", arn.as_str(), stream_arn("fans").as_str())
        );
        assert_eq!(c.consumer_status(), &ConsumerStatus::Active);
        assert_eq!(c.consumer_creation_timestamp().secs() as u64, seconds);
    }
    assert_eq!(
        summary(&kinesis, "fans").await.consumer_count(),
        Some(2),
        "DescribeStreamSummary counts the consumers"
    );

    // Pages of one, in name order.
    let first = kinesis
        .list_stream_consumers()
        .stream_arn(stream_arn("fans"))
        .max_results(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreamConsumers: {}", DisplayErrorContext(&e)));
    assert_eq!(first.consumers().len(), 1);
    assert_eq!(first.consumers()[0].consumer_arn(), arn);
    let token = first.next_token().expect("NextToken with more to list");
    let second = kinesis
        .list_stream_consumers()
        .stream_arn(stream_arn("fans"))
        .next_token(token)
        .max_results(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreamConsumers page 2: {}", DisplayErrorContext(&e)));
    assert_eq!(second.consumers()[0].consumer_arn(), arn_b);
    assert_eq!(second.next_token(), None);
    // StreamCreationTimestamp names the stream's incarnation.
    let created = summary(&kinesis, "fans").await;
    let ok = kinesis
        .list_stream_consumers()
        .stream_arn(stream_arn("fans"))
        .stream_creation_timestamp(*created.stream_creation_timestamp())
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreamConsumers: {}", DisplayErrorContext(&e)));
    assert_eq!(ok.consumers().len(), 2);
    expect_code(
        "ListStreamConsumers of another incarnation",
        kinesis
            .list_stream_consumers()
            .stream_arn(stream_arn("fans"))
            .stream_creation_timestamp(DateTime::from_secs(1_000))
            .send()
            .await,
        "ResourceNotFoundException",
    );

    // Errors.
    expect_code(
        "a taken consumer name",
        kinesis
            .register_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .consumer_name("app-a")
            .send()
            .await,
        "ResourceInUseException",
    );
    expect_code(
        "a consumer of an unknown stream",
        kinesis
            .register_stream_consumer()
            .stream_arn(stream_arn("nope"))
            .consumer_name("x")
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_code(
        "a consumer name outside [a-zA-Z0-9_.-]",
        kinesis
            .register_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .consumer_name("bad name")
            .send()
            .await,
        "ValidationException",
    );
    expect_code(
        "MaxResults 0",
        kinesis
            .list_stream_consumers()
            .stream_arn(stream_arn("fans"))
            .max_results(0)
            .send()
            .await,
        "ValidationException",
    );
    expect_code(
        "a made-up NextToken",
        kinesis
            .list_stream_consumers()
            .stream_arn(stream_arn("fans"))
            .next_token("bm90IGEgdG9rZW4")
            .send()
            .await,
        "InvalidArgumentException",
    );
    expect_code(
        "DescribeStreamConsumer with neither ARN nor name",
        kinesis
            .describe_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .send()
            .await,
        "InvalidArgumentException",
    );
    expect_code(
        "an unknown consumer",
        kinesis
            .describe_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .consumer_name("nobody")
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_code(
        "a ConsumerARN of another registration time",
        kinesis
            .describe_stream_consumer()
            .consumer_arn(format!("{prefix}:{}", seconds - 7))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_code(
        "a malformed ConsumerARN",
        kinesis
            .describe_stream_consumer()
            .consumer_arn("arn:aws:kinesis:us-east-1:000000000000:stream/fans")
            .send()
            .await,
        "ValidationException",
    );

    // Twenty per stream.
    for i in 2..20 {
        register(&kinesis, "fans", &format!("app-{i:02}")).await;
    }
    let over = expect_code(
        "a 21st consumer",
        kinesis
            .register_stream_consumer()
            .stream_arn(stream_arn("fans"))
            .consumer_name("one-too-many")
            .send()
            .await,
        "LimitExceededException",
    );
    assert_eq!(status_of(&over), Some(400));
    assert_eq!(summary(&kinesis, "fans").await.consumer_count(), Some(20));

    // Deregistering by ARN and by name frees places.
    kinesis
        .deregister_stream_consumer()
        .consumer_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeregisterStreamConsumer: {}", DisplayErrorContext(&e)));
    kinesis
        .deregister_stream_consumer()
        .stream_arn(stream_arn("fans"))
        .consumer_name("app-b")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeregisterStreamConsumer: {}", DisplayErrorContext(&e)));
    expect_code(
        "a deregistered consumer",
        kinesis
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_code(
        "deregistering twice",
        kinesis
            .deregister_stream_consumer()
            .consumer_arn(&arn_b)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    register(&kinesis, "fans", "one-more").await;
    assert_eq!(summary(&kinesis, "fans").await.consumer_count(), Some(19));

    // A stream with consumers is deleted only with EnforceConsumerDeletion, which takes
    // its consumers with it.
    expect_code(
        "DeleteStream with consumers",
        kinesis.delete_stream().stream_name("fans").send().await,
        "ResourceInUseException",
    );
    kinesis
        .delete_stream()
        .stream_name("fans")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteStream: {}", DisplayErrorContext(&e)));
    create_stream(&kinesis, "fans", 1).await;
    let listed = kinesis
        .list_stream_consumers()
        .stream_arn(stream_arn("fans"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreamConsumers: {}", DisplayErrorContext(&e)));
    assert!(
        listed.consumers().is_empty(),
        "a new stream of the name starts without consumers"
    );
    assert_eq!(summary(&kinesis, "fans").await.consumer_count(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_pushes_records_in_order_and_resumes_after_its_continuation() {
    let _serial = common::serial().await;
    let (cluster, kinesis) = start().await;
    create_stream(&kinesis, "pushed", 1).await;
    let shard = "shardId-000000000000";
    let consumer = register(&kinesis, "pushed", "reader").await;
    let before = put_all(&kinesis, "pushed", "before", 5).await;

    // Errors before the stream starts are ordinary JSON errors.
    let unknown = consumer.replace("/consumer/reader:", "/consumer/nobody:");
    let e = try_subscribe(
        &kinesis,
        &unknown,
        shard,
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await
    .expect_err("an unknown consumer");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{}",
        DisplayErrorContext(&e)
    );
    let e = try_subscribe(
        &kinesis,
        &consumer,
        "shardId-000000000009",
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await
    .expect_err("an unknown shard");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{}",
        DisplayErrorContext(&e)
    );
    let e = try_subscribe(
        &kinesis,
        &consumer,
        shard,
        position(ShardIteratorType::AtSequenceNumber, None),
    )
    .await
    .expect_err("AT_SEQUENCE_NUMBER without a sequence number");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_invalid_argument_exception()),
        "{}",
        DisplayErrorContext(&e)
    );

    // Records put before subscribing, then records put while subscribed, in order.
    let mut sub = subscribe(
        &kinesis,
        &consumer,
        shard,
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    let e = try_subscribe(
        &kinesis,
        &consumer,
        shard,
        position(ShardIteratorType::Latest, None),
    )
    .await
    .expect_err("the same consumer and shard again at once");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception()),
        "{}",
        DisplayErrorContext(&e)
    );
    let (first, c1) = receive(&mut sub, 5).await;
    assert_eq!(payloads(&first), names("before", 5));
    assert_eq!(
        first
            .iter()
            .map(|r| r.sequence_number().to_string())
            .collect::<Vec<_>>(),
        before
    );
    assert_eq!(c1, before[4]);
    let live = put_all(&kinesis, "pushed", "live", 4).await;
    let (second, c2) = receive(&mut sub, 4).await;
    assert_eq!(payloads(&second), names("live", 4));
    assert_eq!(c2, live[3]);
    let mut all = first.clone();
    all.extend(second.clone());
    assert_strictly_increasing("pushed records", &all);
    drop(sub);

    // Put while nobody listens; a subscription after the last continuation (through
    // another node's edge) reads exactly the rest, then what comes next.
    let after = put_all(&kinesis, "pushed", "after", 3).await;
    let other = kinesis_client(&cluster.node(4).http);
    let mut again = subscribe(
        &other,
        &consumer,
        shard,
        position(ShardIteratorType::AfterSequenceNumber, Some(&c2)),
    )
    .await;
    let (rest, c3) = receive(&mut again, 3).await;
    assert_eq!(payloads(&rest), names("after", 3));
    assert_eq!(c3, after[2]);
    put_all(&kinesis, "pushed", "last", 1).await;
    let (last, _) = receive(&mut again, 1).await;
    assert_eq!(
        payloads(&last),
        names("last", 1),
        "nothing read before comes again"
    );

    // AT_SEQUENCE_NUMBER starts at that record; LATEST after the tip.
    let mut at = subscribe(
        &kinesis,
        &register(&kinesis, "pushed", "second-reader").await,
        shard,
        position(ShardIteratorType::AtSequenceNumber, Some(&live[1])),
    )
    .await;
    let (from_live, _) = receive(&mut at, 3 + 3 + 1).await;
    assert_eq!(payloads(&from_live[..3]), names("live", 4)[1..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_split_ends_the_subscription_with_the_child_shards() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "splitting", 1).await;
    let parent = "shardId-000000000000";
    let consumer = register(&kinesis, "splitting", "follower").await;
    let mut sub = subscribe(
        &kinesis,
        &consumer,
        parent,
        position(ShardIteratorType::Latest, None),
    )
    .await;
    put_all(&kinesis, "splitting", "pre", 3).await;
    let (pre, _) = receive(&mut sub, 3).await;
    assert_eq!(payloads(&pre), names("pre", 3));

    kinesis
        .split_shard()
        .stream_name("splitting")
        .shard_to_split(parent)
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SplitShard: {}", DisplayErrorContext(&e)));
    // The parent's last event names both children; the stream then ends.
    let last = loop {
        let e = next_event(&mut sub)
            .await
            .expect("the stream ended without ChildShards");
        assert!(
            e.records().is_empty(),
            "no record reaches a closed parent: {e:?}"
        );
        if !e.child_shards().is_empty() {
            break e;
        }
    };
    let mut children: Vec<(&str, Vec<String>)> = last
        .child_shards()
        .iter()
        .map(|c| (c.shard_id(), c.parent_shards().to_vec()))
        .collect();
    children.sort();
    assert_eq!(
        children,
        vec![
            ("shardId-000000000001", vec![parent.to_string()]),
            ("shardId-000000000002", vec![parent.to_string()]),
        ]
    );
    assert!(
        next_event(&mut sub).await.is_none(),
        "the subscription ends after the ChildShards event"
    );

    // A child takes its records and pushes them.
    let key = "goes-to-a-child";
    let (child, _) = put(&kinesis, "splitting", key, b"child record").await;
    let mut on_child = subscribe(
        &kinesis,
        &consumer,
        &child,
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    let (got, _) = receive(&mut on_child, 1).await;
    assert_eq!(payloads(&got), vec!["child record".to_string()]);
}

/// A failure midway is an exception message, not a broken connection: deregistering the
/// consumer ends its subscription with a ResourceNotFoundException the SDK types (the
/// subscription checks its consumer at least every 5 s while idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deregistering_the_consumer_ends_its_subscription_with_an_exception_event() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "dropped", 1).await;
    let consumer = register(&kinesis, "dropped", "leaver").await;
    let mut sub = subscribe(
        &kinesis,
        &consumer,
        "shardId-000000000000",
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    put_all(&kinesis, "dropped", "r", 2).await;
    receive(&mut sub, 2).await;
    kinesis
        .deregister_stream_consumer()
        .consumer_arn(&consumer)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeregisterStreamConsumer: {}", DisplayErrorContext(&e)));
    let failure = loop {
        let received = tokio::time::timeout(PUSH_TIMEOUT, sub.event_stream.recv())
            .await
            .expect("no event within the timeout");
        match received {
            Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))) => {
                assert!(e.records().is_empty(), "nothing was put: {e:?}");
            }
            Ok(other) => panic!("expected an exception event, got {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(
        failure
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{}",
        DisplayErrorContext(&failure)
    );
    let after = tokio::time::timeout(PUSH_TIMEOUT, sub.event_stream.recv())
        .await
        .expect("the stream ends");
    assert!(
        matches!(after, Ok(None)),
        "nothing follows the exception: {after:?}"
    );
}
