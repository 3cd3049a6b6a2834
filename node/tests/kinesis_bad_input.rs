//! Bad input to the Kinesis API (issue 6): oversized records and batches, too many
//! entries, partition keys and ExplicitHashKeys out of bounds, malformed, tampered and
//! misused shard iterators, unknown streams and shards, a name already taken, resharding
//! requests that cannot apply, and requests that are not Kinesis JSON at all (malformed
//! JSON, an unknown X-Amz-Target, sent signed through the SDK with the body or target
//! replaced). Each gets the error AWS gives, the request changes nothing, and the node
//! keeps serving.
//!
//! Which error AWS gives: a value that breaks the API model's constraints (a length, a
//! pattern, a range) is a `ValidationException` ("1 validation error detected: ..."),
//! checked before the operation runs; a value the model allows but the operation refuses
//! is the operation's modeled error (`InvalidArgumentException`, ...). References: the
//! API reference (https://docs.aws.amazon.com/kinesis/latest/APIReference/, "Common
//! Errors" and each operation's Errors), and AWS's answers as recorded by kinesalite's
//! test suite (github.com/mhart/kinesalite, test/*.js) and in client bug reports (e.g.
//! "Records size exceeds 5 MB limit", InvalidArgumentException, for PutRecords).

mod common;
mod kinesis_common;
mod sqs_common;

use std::time::Duration;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::create_stream::CreateStreamError;
use aws_sdk_kinesis::operation::get_records::GetRecordsError;
use aws_sdk_kinesis::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_kinesis::operation::merge_shards::MergeShardsError;
use aws_sdk_kinesis::operation::put_record::PutRecordError;
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::operation::split_shard::SplitShardError;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_sdk_kinesis::Client;
use kinesis_common::*;

const VALIDATION: &str = "ValidationException";

/// Every way one test found the server answering otherwise than AWS, so that one run
/// reports all of them (the test fails at its end if there is any).
#[derive(Default)]
struct Differences(Vec<String>);

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match e.as_service_error() {
        Some(_) => format!(
            "{} ({}): {}",
            e.code().unwrap_or("no code"),
            status_of(e).map_or("no status".into(), |s| s.to_string()),
            e.message().unwrap_or_default()
        ),
        None => DisplayErrorContext(e).to_string(),
    }
}

impl Differences {
    /// The call must fail with error code `code` (for errors outside an operation's model,
    /// such as ValidationException).
    fn code<T, E>(&mut self, what: &str, res: Result<T, SdkError<E>>, code: &str)
    where
        T: std::fmt::Debug,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match res {
            Ok(v) => self
                .0
                .push(format!("{what}: expected {code}, got success {v:?}")),
            Err(e) if e.code() == Some(code) => {}
            Err(e) => self
                .0
                .push(format!("{what}: expected {code}, got {}", describe(&e))),
        }
    }

    /// The call must fail with the modeled error `is` recognises (e.g.
    /// `GetRecordsError::is_invalid_argument_exception`).
    fn typed<T, E>(&mut self, what: &str, res: Result<T, SdkError<E>>, is: impl FnOnce(&E) -> bool)
    where
        T: std::fmt::Debug,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match res {
            Ok(v) => self
                .0
                .push(format!("{what}: expected an error, got success {v:?}")),
            Err(e) if e.as_service_error().is_some_and(is) => {}
            Err(e) => self.0.push(format!("{what}: wrong error {}", describe(&e))),
        }
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        if !ok {
            self.0.push(format!("{what}: {detail}"));
        }
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} difference(s) from AWS:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn entry(partition_key: &str, data: Vec<u8>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(partition_key)
        .data(Blob::new(data))
        .build()
        .expect("entry")
}

async fn record_count(client: &Client, stream: &str) -> usize {
    let mut n = 0;
    for shard in list_shards(client, stream).await {
        n += read_shard(client, stream, &shard).await.records.len();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_records_and_batches_are_refused_and_store_nothing() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "sizes", 2).await;
    let put_record = |key: &str, data: Vec<u8>| {
        kinesis
            .put_record()
            .stream_name("sizes")
            .partition_key(key)
            .data(Blob::new(data))
            .send()
    };

    // A data blob over 1 MiB breaks the model (Data: length <= 1048576).
    diffs.code(
        "PutRecord with 1 MiB + 1 byte of data",
        put_record("k", vec![b'x'; MIB + 1]).await,
        VALIDATION,
    );
    diffs.code(
        "PutRecords with an entry of 1 MiB + 1 byte",
        kinesis
            .put_records()
            .stream_name("sizes")
            .records(entry("k", b"small".to_vec()))
            .records(entry("k", vec![b'x'; MIB + 1]))
            .send()
            .await,
        VALIDATION,
    );
    // A record is at most 1 MiB counting its partition key: exactly 1 MiB is accepted.
    put_record("k", vec![b'x'; MIB - 1])
        .await
        .unwrap_or_else(|e| panic!("PutRecord of exactly 1 MiB: {}", DisplayErrorContext(&e)));

    // PutRecords takes 1 to 500 entries.
    let entries = |n: usize| -> Vec<PutRecordsRequestEntry> {
        (0..n)
            .map(|i| entry(&format!("k{i}"), format!("e{i}").into_bytes()))
            .collect()
    };
    diffs.code(
        "PutRecords with 501 entries",
        kinesis
            .put_records()
            .stream_name("sizes")
            .set_records(Some(entries(501)))
            .send()
            .await,
        VALIDATION,
    );
    diffs.code(
        "PutRecords with no entries",
        kinesis
            .put_records()
            .stream_name("sizes")
            .set_records(Some(Vec::new()))
            .send()
            .await,
        VALIDATION,
    );
    let out = kinesis
        .put_records()
        .stream_name("sizes")
        .set_records(Some(entries(500)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecords with 500 entries: {}", DisplayErrorContext(&e)));
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), 500);

    // A whole request over 5 MiB (six records of 1,000,000 bytes) is refused.
    diffs.typed(
        "PutRecords of 6,000,000 bytes",
        kinesis
            .put_records()
            .stream_name("sizes")
            .set_records(Some(
                (0..6)
                    .map(|i| entry(&format!("big{i}"), vec![b'y'; 1_000_000]))
                    .collect(),
            ))
            .send()
            .await,
        PutRecordsError::is_invalid_argument_exception,
    );

    // Only the accepted puts are in the stream.
    assert_eq!(record_count(&kinesis, "sizes").await, 1 + 500);
    diffs.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_keys_and_explicit_hash_keys_out_of_bounds_are_refused() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "keys", 2).await;
    let put_record = |key: String, hash_key: Option<String>| {
        kinesis
            .put_record()
            .stream_name("keys")
            .partition_key(key)
            .set_explicit_hash_key(hash_key)
            .data(Blob::new("x"))
            .send()
    };

    // PartitionKey: 1 to 256 characters.
    diffs.code(
        "PutRecord with a 257-character partition key",
        put_record("k".repeat(257), None).await,
        VALIDATION,
    );
    diffs.code(
        "PutRecord with an empty partition key",
        put_record(String::new(), None).await,
        VALIDATION,
    );
    diffs.code(
        "PutRecords with a 257-character partition key",
        kinesis
            .put_records()
            .stream_name("keys")
            .records(entry(&"k".repeat(257), b"x".to_vec()))
            .send()
            .await,
        VALIDATION,
    );

    // ExplicitHashKey: a decimal number (pattern 0|([1-9]\d{0,38})) in [0, 2^128 - 1].
    let two_to_128 = "340282366920938463463374607431768211456".to_string();
    diffs.typed(
        "PutRecord with ExplicitHashKey 2^128",
        put_record("k".into(), Some(two_to_128.clone())).await,
        PutRecordError::is_invalid_argument_exception,
    );
    diffs.typed(
        "PutRecords with an entry's ExplicitHashKey 2^128",
        kinesis
            .put_records()
            .stream_name("keys")
            .records(entry("k", b"x".to_vec()))
            .records(
                PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .explicit_hash_key(two_to_128)
                    .data(Blob::new("x"))
                    .build()
                    .expect("entry"),
            )
            .send()
            .await,
        PutRecordsError::is_invalid_argument_exception,
    );
    for bad in ["abc", "-1", "12x"] {
        diffs.code(
            &format!("PutRecord with ExplicitHashKey {bad:?}"),
            put_record("k".into(), Some(bad.into())).await,
            VALIDATION,
        );
    }

    assert_eq!(
        record_count(&kinesis, "keys").await,
        0,
        "nothing refused was stored"
    );
    diffs.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_tampered_and_misused_iterators_are_refused() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "iters", 2).await;
    let (shard, seq) = put(&kinesis, "iters", "k", b"secret").await;
    let other = if shard == "shardId-000000000000" {
        "shardId-000000000001"
    } else {
        "shardId-000000000000"
    };
    let get_records = |it: String| kinesis.get_records().shard_iterator(it).send();

    // Not an iterator at all.
    diffs.typed(
        "GetRecords with a made-up iterator",
        get_records("not-an-iterator".into()).await,
        GetRecordsError::is_invalid_argument_exception,
    );

    // A real iterator with one character changed is not accepted (iterators are
    // verifiable): the token must not be steerable to another position or shard.
    let it = shard_iterator(
        &kinesis,
        "iters",
        &shard,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let ok = get_records(it.clone()).await.unwrap_or_else(|e| {
        panic!(
            "GetRecords with the real iterator: {}",
            DisplayErrorContext(&e)
        )
    });
    assert_eq!(ok.records().len(), 1);
    for at in [it.len() / 4, it.len() / 2, it.len() * 3 / 4] {
        let mut bytes = it.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ASCII");
        diffs.typed(
            &format!("GetRecords with the iterator changed at {at}"),
            get_records(tampered).await,
            GetRecordsError::is_invalid_argument_exception,
        );
    }

    // GetShardIterator: a sequence number with exactly the types that take one.
    let iterator = |kind: ShardIteratorType, shard: &str, seq: Option<&str>| {
        kinesis
            .get_shard_iterator()
            .stream_name("iters")
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(seq.map(String::from))
            .send()
    };
    for kind in [
        ShardIteratorType::AtSequenceNumber,
        ShardIteratorType::AfterSequenceNumber,
    ] {
        diffs.typed(
            &format!("GetShardIterator {kind:?} without StartingSequenceNumber"),
            iterator(kind.clone(), &shard, None).await,
            GetShardIteratorError::is_invalid_argument_exception,
        );
    }
    for kind in [ShardIteratorType::Latest, ShardIteratorType::TrimHorizon] {
        diffs.typed(
            &format!("GetShardIterator {kind:?} with a StartingSequenceNumber"),
            iterator(kind.clone(), &shard, Some(&seq)).await,
            GetShardIteratorError::is_invalid_argument_exception,
        );
    }
    // A sequence number of another shard, and one that is not a number.
    diffs.typed(
        "GetShardIterator AT_SEQUENCE_NUMBER with another shard's sequence number",
        iterator(ShardIteratorType::AtSequenceNumber, other, Some(&seq)).await,
        GetShardIteratorError::is_invalid_argument_exception,
    );
    diffs.code(
        "GetShardIterator AT_SEQUENCE_NUMBER abc",
        iterator(ShardIteratorType::AtSequenceNumber, &shard, Some("abc")).await,
        VALIDATION,
    );
    // AT_TIMESTAMP needs a Timestamp, and not one in the future.
    diffs.typed(
        "GetShardIterator AT_TIMESTAMP without Timestamp",
        iterator(ShardIteratorType::AtTimestamp, &shard, None).await,
        GetShardIteratorError::is_invalid_argument_exception,
    );
    diffs.typed(
        "GetShardIterator AT_TIMESTAMP an hour ahead",
        kinesis
            .get_shard_iterator()
            .stream_name("iters")
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(now_ms() as i64 + 3_600_000))
            .send()
            .await,
        GetShardIteratorError::is_invalid_argument_exception,
    );
    // A shard the stream does not have.
    diffs.typed(
        "GetShardIterator on shardId-000000000099",
        iterator(ShardIteratorType::TrimHorizon, "shardId-000000000099", None).await,
        GetShardIteratorError::is_resource_not_found_exception,
    );

    // GetRecords Limit: 1 to 10,000 (the model says so for 0; for 10,001 the API
    // reference names InvalidArgumentException while AWS was recorded answering the
    // model's ValidationException: either is AWS's).
    diffs.code(
        "GetRecords Limit 0",
        kinesis
            .get_records()
            .shard_iterator(&it)
            .limit(0)
            .send()
            .await,
        VALIDATION,
    );
    let over = kinesis
        .get_records()
        .shard_iterator(&it)
        .limit(10_001)
        .send()
        .await;
    let code = over.as_ref().err().and_then(|e| e.code()).map(String::from);
    diffs.check(
        "GetRecords Limit 10001",
        matches!(
            code.as_deref(),
            Some("InvalidArgumentException" | "ValidationException")
        ),
        format!(
            "expected InvalidArgumentException or ValidationException, got {:?}",
            over.map_err(|e| describe(&e))
        ),
    );

    // The iterator of a deleted stream finds nothing.
    kinesis
        .delete_stream()
        .stream_name("iters")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteStream: {}", DisplayErrorContext(&e)));
    let k = &kinesis;
    eventually("iters deleted", Duration::from_secs(30), || async move {
        k.describe_stream_summary()
            .stream_name("iters")
            .send()
            .await
            .err()
            .filter(|e| {
                e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
            })
            .map(|_| ())
    })
    .await;
    diffs.typed(
        "GetRecords with an iterator of a deleted stream",
        get_records(it).await,
        GetRecordsError::is_resource_not_found_exception,
    );
    diffs.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_streams_are_not_found_and_taken_names_are_in_use() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "taken", 2).await;
    let missing = "no-such-stream";

    macro_rules! not_found {
        ($what:expr, $call:expr) => {{
            match $call.await {
                Ok(v) => diffs.check(
                    $what,
                    false,
                    format!("expected ResourceNotFoundException, got {v:?}"),
                ),
                Err(e) => diffs.check(
                    $what,
                    e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()),
                    format!("expected ResourceNotFoundException, got {}", describe(&e)),
                ),
            }
        }};
    }
    not_found!(
        "DescribeStream",
        kinesis.describe_stream().stream_name(missing).send()
    );
    not_found!(
        "DescribeStreamSummary",
        kinesis
            .describe_stream_summary()
            .stream_name(missing)
            .send()
    );
    not_found!(
        "ListShards",
        kinesis.list_shards().stream_name(missing).send()
    );
    not_found!(
        "PutRecord",
        kinesis
            .put_record()
            .stream_name(missing)
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
    );
    not_found!(
        "PutRecords",
        kinesis
            .put_records()
            .stream_name(missing)
            .records(entry("k", b"x".to_vec()))
            .send()
    );
    not_found!(
        "GetShardIterator",
        kinesis
            .get_shard_iterator()
            .stream_name(missing)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
    );
    not_found!(
        "DeleteStream",
        kinesis.delete_stream().stream_name(missing).send()
    );
    not_found!(
        "AddTagsToStream",
        kinesis
            .add_tags_to_stream()
            .stream_name(missing)
            .tags("a", "b")
            .send()
    );
    not_found!(
        "ListTagsForStream",
        kinesis.list_tags_for_stream().stream_name(missing).send()
    );
    not_found!(
        "IncreaseStreamRetentionPeriod",
        kinesis
            .increase_stream_retention_period()
            .stream_name(missing)
            .retention_period_hours(48)
            .send()
    );
    not_found!(
        "SplitShard",
        kinesis
            .split_shard()
            .stream_name(missing)
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("1000")
            .send()
    );
    not_found!(
        "MergeShards",
        kinesis
            .merge_shards()
            .stream_name(missing)
            .shard_to_merge("shardId-000000000000")
            .adjacent_shard_to_merge("shardId-000000000001")
            .send()
    );
    not_found!(
        "UpdateShardCount",
        kinesis
            .update_shard_count()
            .stream_name(missing)
            .target_shard_count(2)
            .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
            .send()
    );

    // CreateStream on a name that exists: ResourceInUseException, the stream untouched.
    diffs.typed(
        "CreateStream on an existing name",
        kinesis
            .create_stream()
            .stream_name("taken")
            .shard_count(5)
            .send()
            .await,
        CreateStreamError::is_resource_in_use_exception,
    );
    assert_eq!(list_shards(&kinesis, "taken").await.len(), 2);

    // Names outside [a-zA-Z0-9_.-]{1,128} and a shard count below 1 break the model.
    for bad in ["bad name", "slash/name", &"n".repeat(129)] {
        diffs.code(
            &format!("CreateStream {bad:?}"),
            kinesis
                .create_stream()
                .stream_name(bad)
                .shard_count(1)
                .send()
                .await,
            VALIDATION,
        );
    }
    diffs.code(
        "CreateStream with ShardCount 0",
        kinesis
            .create_stream()
            .stream_name("zero")
            .shard_count(0)
            .send()
            .await,
        VALIDATION,
    );
    let names = kinesis
        .list_streams()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStreams: {}", DisplayErrorContext(&e)));
    assert_eq!(
        names.stream_names(),
        ["taken"],
        "no refused stream was created"
    );
    diffs.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_requests_that_cannot_apply_are_refused() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "fixed", 3).await;
    let shards = list_shards(&kinesis, "fixed").await;
    let (start0, end0) = range_of(&shards[0]);
    let (start2, _) = range_of(&shards[2]);
    let split = |shard: &str, key: u128| {
        kinesis
            .split_shard()
            .stream_name("fixed")
            .shard_to_split(shard)
            .new_starting_hash_key(key.to_string())
            .send()
    };

    // NewStartingHashKey must fall strictly inside the shard's range.
    for key in [start0, end0 + 1, start2] {
        diffs.typed(
            &format!("SplitShard shard 0 at {key}"),
            split("shardId-000000000000", key).await,
            SplitShardError::is_invalid_argument_exception,
        );
    }
    diffs.typed(
        "SplitShard of a shard the stream does not have",
        split("shardId-000000000042", 12345).await,
        SplitShardError::is_resource_not_found_exception,
    );
    // Only adjacent shards merge.
    diffs.typed(
        "MergeShards of shards 0 and 2",
        kinesis
            .merge_shards()
            .stream_name("fixed")
            .shard_to_merge("shardId-000000000000")
            .adjacent_shard_to_merge("shardId-000000000002")
            .send()
            .await,
        MergeShardsError::is_invalid_argument_exception,
    );

    wait_active(&kinesis, "fixed").await;
    let after = list_shards(&kinesis, "fixed").await;
    assert_eq!(after.len(), 3, "nothing was resharded: {after:?}");
    assert!(after.iter().all(is_open));
    diffs.assert_none();
}

/// Sends a request signed with SigV4 (by the SDK, as ListStreams) but with its body and
/// X-Amz-Target replaced, as a client with a bug (or no SDK at all) would.
async fn send_raw(
    client: &Client,
    target: &str,
    body: &str,
) -> Result<
    aws_sdk_kinesis::operation::list_streams::ListStreamsOutput,
    SdkError<aws_sdk_kinesis::operation::list_streams::ListStreamsError>,
> {
    let (t, b) = (target.to_string(), body.to_string());
    client
        .list_streams()
        .customize()
        .mutate_request(move |req| {
            *req.body_mut() = b.clone().into();
            req.headers_mut().insert("x-amz-target", t.clone());
            req.headers_mut()
                .insert("content-length", b.len().to_string());
        })
        .send()
        .await
}

/// The error a raw request got: its HTTP status and the `__type` of its JSON body, with
/// the response's content type checked.
fn json_error<E: std::fmt::Debug>(err: &SdkError<E>) -> Result<(u16, String), String> {
    let raw = err
        .raw_response()
        .ok_or_else(|| format!("no response: {err:?}"))?;
    let content_type = raw.headers().get("content-type");
    if content_type != Some("application/x-amz-json-1.1") {
        return Err(format!("content type {content_type:?}"));
    }
    let json: serde_json::Value = serde_json::from_slice(raw.body().bytes().unwrap_or_default())
        .map_err(|e| format!("the error body is not JSON: {e}"))?;
    let ty = json["__type"].as_str().unwrap_or_default();
    // `__type` may carry a namespace (`...#Code`); clients read what follows the `#`.
    let code = ty.rsplit('#').next().unwrap_or_default().to_string();
    Ok((raw.status().as_u16(), code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_the_aws_error_shape_and_the_node_keeps_serving() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    let mut diffs = Differences::default();
    create_stream(&kinesis, "alive", 1).await;

    let cases: [(&str, &str, &str); 6] = [
        ("Kinesis_20131202.ListStreams", "{not json", "SerializationException"),
        ("Kinesis_20131202.ListStreams", "[1, 2]", "SerializationException"),
        ("Kinesis_20131202.ListStreams", "", "SerializationException"),
        ("Kinesis_20131202.DescribeStreamSummary", "{\"StreamName\": 42}", "SerializationException"),
        ("Kinesis_20131202.PutRecord", "{\"StreamName\": \"alive\", \"PartitionKey\": \"k\", \"Data\": \"%%% not base64 %%%\"}", "SerializationException"),
        ("Kinesis_20131202.NoSuchOperation", "{}", "UnknownOperationException"),
    ];
    for (target, body, code) in cases {
        let what = format!("{target} with body {body:?}");
        match send_raw(&kinesis, target, body).await {
            Ok(v) => diffs.check(&what, false, format!("expected {code}, got success {v:?}")),
            Err(err) => {
                let got = json_error(&err);
                diffs.check(
                    &what,
                    got == Ok((400, code.to_string())) && err.code() == Some(code),
                    format!("expected 400 {code}, got {got:?} ({})", describe(&err)),
                );
            }
        }
    }

    // The node still answers, and nothing was put.
    let names = kinesis.list_streams().send().await.unwrap_or_else(|e| {
        panic!(
            "ListStreams after bad requests: {}",
            DisplayErrorContext(&e)
        )
    });
    assert_eq!(names.stream_names(), ["alive"]);
    assert_eq!(record_count(&kinesis, "alive").await, 0);
    put(&kinesis, "alive", "k", b"still serving").await;
    assert_eq!(record_count(&kinesis, "alive").await, 1);
    diffs.assert_none();
}

/// Operations of the Kinesis API that Stratus does not serve (encryption, enhanced monitoring, resource policies, account settings, stream mode and
/// capacity changes, channels) are refused with a 400 JSON error a client can read, never
/// a 5xx, a hang or a crash; the node serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_outside_stratus_are_refused_cleanly() {
    let _serial = common::serial().await;
    let (cluster, _) = start().await;
    // One attempt, bounded: a refused operation must not be retried or hang.
    let kinesis = single_attempt_client(&cluster.node(1).http);
    create_stream(&kinesis, "served", 1).await;
    let body = format!(
        "{{\"StreamName\": \"served\", \"StreamARN\": \"{arn}\", \"ResourceARN\": \"{arn}\"}}",
        arn = stream_arn("served")
    );
    let mut answers = Vec::new();
    for op in [
        "StartStreamEncryption",
        "StopStreamEncryption",
        "EnableEnhancedMonitoring",
        "DisableEnhancedMonitoring",
        "PutResourcePolicy",
        "GetResourcePolicy",
        "DeleteResourcePolicy",
        "DescribeAccountSettings",
        "UpdateAccountSettings",
        "UpdateStreamMode",
        "UpdateMaxRecordSize",
        "UpdateStreamWarmThroughput",
        "UpdateStreamRecordDistributionStrategy",
        "CreateChannel",
        "DescribeChannel",
        "ListChannels",
        "UpdateChannel",
        "DeleteChannel",
    ] {
        let target = format!("Kinesis_20131202.{op}");
        let err = match send_raw(&kinesis, &target, &body).await {
            Ok(v) => panic!("{op}: expected an error, got success {v:?}"),
            Err(e) => e,
        };
        let (status, code) =
            json_error(&err).unwrap_or_else(|e| panic!("{op}: {e}: {}", DisplayErrorContext(&err)));
        assert_eq!(status, 400, "{op}: {}", DisplayErrorContext(&err));
        assert!(
            matches!(
                code.as_str(),
                "InvalidArgumentException" | "UnknownOperationException"
            ),
            "{op}: {}",
            DisplayErrorContext(&err)
        );
        answers.push(format!(
            "{op}: {status} {code}: {}",
            err.message().unwrap_or_default()
        ));
    }
    eprintln!("{}", answers.join("\n"));
    assert_eq!(
        summary(&kinesis, "served").await.stream_status(),
        &aws_sdk_kinesis::types::StreamStatus::Active
    );
    put(&kinesis, "served", "k", b"still serving").await;
}

/// An iterator issued more than five minutes ago is expired (API_GetShardIterator:
/// "A shard iterator expires 5 minutes after it is returned"). Waiting five minutes is
/// the honest way (the ignored test below); this one ages a real iterator instead: it
/// opens the server's token with the test cluster's own key (derived from its cluster
/// name and root secret, which the harness configures) and seals it again with an issue
/// time six minutes back, as only a holder of the root secret can.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_iterator_issued_over_five_minutes_ago_is_expired() {
    use stratus_node::stream::iterator::{ShardIterator, TokenKey};
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "aged", 1).await;
    put(&kinesis, "aged", "k", b"x").await;
    let token = shard_iterator(
        &kinesis,
        "aged",
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let key = TokenKey::derive("test", "test");
    let now = now_ms();
    let mut it = ShardIterator::decode(&token, &key, now).unwrap_or_else(|e| {
        panic!("the server's iterator does not open with the cluster key: {e}")
    });
    // Four minutes back: still valid.
    it.issued_ms = now - 240_000;
    let young = it.encode(&key);
    let out = kinesis
        .get_records()
        .shard_iterator(&young)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "GetRecords with a 4-minute-old iterator: {}",
                DisplayErrorContext(&e)
            )
        });
    assert_eq!(out.records().len(), 1);
    // Six minutes back: expired.
    it.issued_ms = now - 360_000;
    let old = it.encode(&key);
    expect_service_error(
        "GetRecords with a 6-minute-old iterator",
        kinesis.get_records().shard_iterator(&old).send().await,
        GetRecordsError::is_expired_iterator_exception,
    );
}

/// Iterators expire five minutes after they are made (API_GetShardIterator). The server
/// has no setting to shorten that for tests, so this test waits the five minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "takes five minutes: there is no way to shorten the iterator expiry for tests"]
async fn an_iterator_expires_after_five_minutes() {
    let _serial = common::serial().await;
    let (_cluster, kinesis) = start().await;
    create_stream(&kinesis, "slow", 1).await;
    put(&kinesis, "slow", "k", b"x").await;
    // Taken before the request: the server made the iterator no earlier than this.
    let made = now_ms();
    let it = shard_iterator(
        &kinesis,
        "slow",
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let k = &kinesis;
    let it = &it;
    eventually(
        "the iterator to expire",
        Duration::from_secs(360),
        || async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            match k.get_records().shard_iterator(it).send().await {
                Ok(out) => {
                    assert_eq!(out.records().len(), 1);
                    None
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_expired_iterator_exception()) =>
                {
                    assert!(
                        now_ms() - made >= 300_000,
                        "expired before five minutes ({} ms)",
                        now_ms() - made
                    );
                    Some(())
                }
                Err(e) => panic!(
                    "GetRecords with an aging iterator: {}",
                    DisplayErrorContext(&e)
                ),
            }
        },
    )
    .await;
}
