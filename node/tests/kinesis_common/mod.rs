//! What the Kinesis integration tests share: an `aws-sdk-kinesis` client for a node's edge,
//! the stream ARN a stream must have, the partition-key hashing and the even split of the
//! 128-bit hash-key space computed independently of the server (MD5 of the key's UTF-8
//! bytes read as a big-endian number; range `i` of `n` starts at floor(i × 2^128 / n)),
//! sequence-number comparison, and readers that take a shard to its end by following
//! `NextShardIterator` and a whole stream by following shard lineage (`ChildShards`).
//!
//! Generic helpers (polling with a deadline, matching an error code) are the SQS tests'
//! (`sqs_common`), imported rather than copied. Raw signed requests (HTTP/2, CBOR) are
//! in `signed`.

#![allow(dead_code)]

pub mod cbor;
pub mod signed;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ChildShard, Record, Shard, ShardIteratorType, StreamDescriptionSummary, StreamMode,
    StreamModeDetails, StreamStatus,
};
use aws_sdk_kinesis::Client;

use crate::common::{Options, TestCluster};
#[allow(unused_imports)]
pub use crate::sqs_common::{eventually, expect_code, now_ms, ACCOUNT, MIB, REGION};

/// The largest hash key: 2^128 − 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

pub fn kinesis_client(edge: &str) -> Client {
    build_client(edge, None)
}

/// A client for fault tests: one attempt per call (the test decides what to resend, so a
/// duplicate can only come from the server), a 2 s connect and 15 s attempt timeout (a
/// request to a dying node must not hang the test).
pub fn single_attempt_client(edge: &str) -> Client {
    build_client(edge, Some(Duration::from_secs(15)))
}

fn build_client(edge: &str, attempt_timeout: Option<Duration>) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let mut config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{edge}"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(http);
    if let Some(timeout) = attempt_timeout {
        config = config.retry_config(RetryConfig::disabled()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(timeout)
                .build(),
        );
    }
    Client::from_conf(config.build())
}

/// A 6-node, 3-zone cluster, ready, and a client for node 1's edge.
pub async fn start() -> (TestCluster, Client) {
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    let client = kinesis_client(&cluster.node(1).http);
    (cluster, client)
}

pub fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
}

/// The hash key Kinesis gives a partition key: the MD5 of its UTF-8 bytes as a big-endian
/// 128-bit number.
pub fn hash_key_of(partition_key: &str) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(partition_key.as_bytes()).into())
}

/// The `n` ranges a new stream of `n` shards has: range `i` starts at floor(i × 2^128 / n)
/// and ends where the next starts, the last at 2^128 − 1.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    let n = u128::from(n);
    // 2^128 = q·n + s with s = (2^128 − 1) mod n + 1 ≤ n, so i·2^128/n = i·q + i·s/n.
    let (q, s) = (u128::MAX / n, u128::MAX % n + 1);
    let start = |i: u128| i * q + i * s / n;
    (0..n)
        .map(|i| {
            let end = if i + 1 == n {
                MAX_HASH_KEY
            } else {
                start(i + 1) - 1
            };
            (start(i), end)
        })
        .collect()
}

pub fn parse_hash_key(s: &str) -> u128 {
    s.parse()
        .unwrap_or_else(|_| panic!("hash key {s:?} is not a decimal number in [0, 2^128)"))
}

/// A shard's hash-key range as numbers.
pub fn range_of(shard: &Shard) -> (u128, u128) {
    let r = shard
        .hash_key_range()
        .unwrap_or_else(|| panic!("shard without HashKeyRange: {shard:?}"));
    (
        parse_hash_key(r.starting_hash_key()),
        parse_hash_key(r.ending_hash_key()),
    )
}

pub fn is_open(shard: &Shard) -> bool {
    shard
        .sequence_number_range()
        .unwrap_or_else(|| panic!("shard without SequenceNumberRange: {shard:?}"))
        .ending_sequence_number()
        .is_none()
}

pub fn ending_sequence_number(shard: &Shard) -> Option<&str> {
    shard
        .sequence_number_range()
        .and_then(|r| r.ending_sequence_number())
}

/// The open shard whose range holds `key`; exactly one must.
pub fn open_shard_holding(shards: &[Shard], key: u128) -> &Shard {
    let holding: Vec<&Shard> = shards
        .iter()
        .filter(|s| is_open(s))
        .filter(|s| {
            let (start, end) = range_of(s);
            start <= key && key <= end
        })
        .collect();
    assert_eq!(
        holding.len(),
        1,
        "hash key {key} must be in exactly one open shard: {shards:?}"
    );
    holding[0]
}

/// The open shards' ranges cover [0, 2^128 − 1] with no gap and no overlap.
#[track_caller]
pub fn assert_open_shards_cover_the_space(shards: &[Shard]) {
    let mut ranges: Vec<(u128, u128)> =
        shards.iter().filter(|s| is_open(s)).map(range_of).collect();
    ranges.sort();
    assert!(!ranges.is_empty(), "no open shard: {shards:?}");
    assert_eq!(ranges[0].0, 0, "open shards must start at hash key 0");
    assert_eq!(
        ranges.last().unwrap().1,
        MAX_HASH_KEY,
        "open shards must end at 2^128 - 1"
    );
    for w in ranges.windows(2) {
        assert!(w[0].0 <= w[0].1, "empty range {:?}", w[0]);
        assert_eq!(
            w[0].1.checked_add(1),
            Some(w[1].0),
            "gap or overlap between open ranges {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

/// Numeric order of two sequence numbers (decimal strings of any length).
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    for s in [a, b] {
        assert!(
            !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()),
            "sequence number {s:?} is not a decimal string"
        );
    }
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Sequence numbers strictly increase along `records`.
#[track_caller]
pub fn assert_strictly_increasing(what: &str, records: &[Record]) {
    for w in records.windows(2) {
        assert_eq!(
            seq_cmp(w[0].sequence_number(), w[1].sequence_number()),
            Ordering::Less,
            "{what}: sequence numbers must strictly increase: {} then {}",
            w[0].sequence_number(),
            w[1].sequence_number()
        );
    }
}

pub fn data_of(r: &Record) -> String {
    String::from_utf8(r.data().as_ref().to_vec())
        .unwrap_or_else(|_| panic!("record data is not UTF-8: {r:?}"))
}

/// A record's ApproximateArrivalTimestamp in whole milliseconds, rounded: the wire carries
/// epoch seconds with three decimals, which the SDK reads as a float, so `to_millis()`
/// (which truncates) can land one millisecond early.
pub fn arrival_ms(r: &Record) -> i64 {
    let t = r
        .approximate_arrival_timestamp()
        .unwrap_or_else(|| panic!("record without ApproximateArrivalTimestamp: {r:?}"));
    t.secs() * 1000 + (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000
}

/// The call must fail with a service error of the expected modeled type (`is`, e.g.
/// `DescribeStreamError::is_resource_not_found_exception`). Returns the error.
#[track_caller]
pub fn expect_service_error<T, E>(
    what: &str,
    res: Result<T, SdkError<E>>,
    is: impl FnOnce(&E) -> bool,
) -> SdkError<E>
where
    T: std::fmt::Debug,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let err = match res {
        Ok(v) => panic!("{what}: expected an error, got success {v:?}"),
        Err(e) => e,
    };
    let matched = err.as_service_error().map(is).unwrap_or(false);
    assert!(
        matched,
        "{what}: wrong error: {}",
        DisplayErrorContext(&err)
    );
    err
}

/// The HTTP status the server answered an error with.
pub fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub async fn create_stream(client: &Client, name: &str, shards: i32) -> StreamDescriptionSummary {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name}: {}", DisplayErrorContext(&e)));
    wait_active(client, name).await
}

pub async fn create_on_demand_stream(client: &Client, name: &str) -> StreamDescriptionSummary {
    client
        .create_stream()
        .stream_name(name)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .expect("stream mode"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name} ON_DEMAND: {}", DisplayErrorContext(&e)));
    wait_active(client, name).await
}

pub async fn summary(client: &Client, name: &str) -> StreamDescriptionSummary {
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStreamSummary {name}: {}", DisplayErrorContext(&e)))
        .stream_description_summary()
        .cloned()
        .unwrap_or_else(|| panic!("DescribeStreamSummary {name}: no StreamDescriptionSummary"))
}

/// Polls DescribeStreamConsumer until the consumer is ACTIVE.
pub async fn wait_consumer_active(client: &Client, consumer_arn: &str) {
    eventually("the consumer ACTIVE", Duration::from_secs(30), || async {
        let d = client
            .describe_stream_consumer()
            .consumer_arn(consumer_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStreamConsumer: {}", DisplayErrorContext(&e)));
        let status = d
            .consumer_description()
            .map(|c| c.consumer_status().clone());
        (status == Some(aws_sdk_kinesis::types::ConsumerStatus::Active)).then_some(())
    })
    .await;
}

/// Polls DescribeStreamSummary until the stream is ACTIVE (CREATING and UPDATING pass).
pub async fn wait_active(client: &Client, name: &str) -> StreamDescriptionSummary {
    eventually(
        &format!("stream {name} ACTIVE"),
        Duration::from_secs(30),
        || async {
            let s = summary(client, name).await;
            (s.stream_status() == &StreamStatus::Active).then_some(s)
        },
    )
    .await
}

/// Every shard of a stream, through ListShards pages of `page` (NextToken followed).
pub async fn list_shards_paged(client: &Client, name: &str, page: Option<i32>) -> Vec<Shard> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let req = client.list_shards().set_max_results(page);
        let req = match &token {
            Some(t) => req.next_token(t),
            None => req.stream_name(name),
        };
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListShards {name}: {}", DisplayErrorContext(&e)));
        if let Some(max) = page {
            assert!(
                out.shards().len() <= max as usize,
                "ListShards {name}: MaxResults {max} but {} shards in a page",
                out.shards().len()
            );
        }
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return shards,
        }
    }
    panic!("ListShards {name}: NextToken never ended");
}

pub async fn list_shards(client: &Client, name: &str) -> Vec<Shard> {
    list_shards_paged(client, name, None).await
}

pub fn shard_ids(shards: &[Shard]) -> BTreeSet<String> {
    shards.iter().map(|s| s.shard_id().to_string()).collect()
}

/// One PutRecord that must succeed: (ShardId, SequenceNumber).
pub async fn put(
    client: &Client,
    stream: &str,
    partition_key: &str,
    data: &[u8],
) -> (String, String) {
    let out = client
        .put_record()
        .stream_name(stream)
        .partition_key(partition_key)
        .data(Blob::new(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PutRecord {stream}/{partition_key}: {}",
                DisplayErrorContext(&e)
            )
        });
    (
        out.shard_id().to_string(),
        out.sequence_number().to_string(),
    )
}

pub async fn shard_iterator(
    client: &Client,
    stream: &str,
    shard_id: &str,
    kind: ShardIteratorType,
    sequence: Option<&str>,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(kind.clone())
        .set_starting_sequence_number(sequence.map(String::from))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "GetShardIterator {stream}/{shard_id} {kind:?} {sequence:?}: {}",
                DisplayErrorContext(&e)
            )
        })
        .shard_iterator()
        .unwrap_or_else(|| panic!("GetShardIterator {stream}/{shard_id}: no ShardIterator"))
        .to_string()
}

/// What reading a shard to its end saw.
#[derive(Debug, Clone, Default)]
pub struct ShardRead {
    pub records: Vec<Record>,
    /// From the last response of a closed shard (its end reached).
    pub child_shards: Vec<ChildShard>,
    /// The shard ended: the last response had no NextShardIterator.
    pub ended: bool,
    /// Where to go on reading an open shard.
    pub next_iterator: Option<String>,
    /// MillisBehindLatest of every response, in order.
    pub millis_behind: Vec<Option<i64>>,
}

/// Reads from `iterator` following NextShardIterator. A closed shard is read until a
/// response has no NextShardIterator (its end); an open one until a response has no
/// records and MillisBehindLatest 0 (caught up with the tip).
pub async fn read_to_end(client: &Client, iterator: &str, closed: bool) -> ShardRead {
    let mut read = ShardRead::default();
    let mut it = iterator.to_string();
    for _ in 0..100_000 {
        let out = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords: {}", DisplayErrorContext(&e)));
        read.records.extend(out.records().iter().cloned());
        read.millis_behind.push(out.millis_behind_latest());
        match out.next_shard_iterator() {
            None => {
                assert!(
                    closed,
                    "GetRecords ended an open shard (no NextShardIterator): {out:?}"
                );
                read.ended = true;
                read.child_shards = out.child_shards().to_vec();
                return read;
            }
            Some(next) => {
                assert!(
                    out.child_shards().is_empty(),
                    "ChildShards before the end of the shard: {out:?}"
                );
                if !closed && out.records().is_empty() && out.millis_behind_latest() == Some(0) {
                    read.next_iterator = Some(next.to_string());
                    return read;
                }
                it = next.to_string();
            }
        }
    }
    panic!("shard never reached its end (closed: {closed})");
}

/// A shard from TRIM_HORIZON to its end.
pub async fn read_shard(client: &Client, stream: &str, shard: &Shard) -> ShardRead {
    let it = shard_iterator(
        client,
        stream,
        shard.shard_id(),
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    read_to_end(client, &it, !is_open(shard)).await
}

/// Reads a whole stream as a consumer following lineage does: first the shards without
/// a parent in the stream, each from TRIM_HORIZON to its end; a shard is read once every
/// parent has been finished, and the children of a finished shard are the ChildShards its
/// last GetRecords named. Every shard ListShards lists must be reached. Returns each
/// shard's read, by ShardId.
pub async fn read_following_lineage(client: &Client, stream: &str) -> BTreeMap<String, ShardRead> {
    let shards = list_shards(client, stream).await;
    let by_id: BTreeMap<String, Shard> = shards
        .iter()
        .map(|s| (s.shard_id().to_string(), s.clone()))
        .collect();
    let parents_of = |s: &Shard| -> Vec<String> {
        [s.parent_shard_id(), s.adjacent_parent_shard_id()]
            .into_iter()
            .flatten()
            .filter(|p| by_id.contains_key(*p))
            .map(String::from)
            .collect()
    };
    let mut queue: VecDeque<String> = shards
        .iter()
        .filter(|s| parents_of(s).is_empty())
        .map(|s| s.shard_id().to_string())
        .collect();
    let mut done: BTreeMap<String, ShardRead> = BTreeMap::new();
    let mut stalls = 0;
    while let Some(id) = queue.pop_front() {
        if done.contains_key(&id) {
            continue;
        }
        let shard = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("ChildShards named {id}, which ListShards does not list"));
        if !parents_of(shard).iter().all(|p| done.contains_key(p)) {
            stalls += 1;
            assert!(stalls < 10_000, "lineage of {stream} cannot be followed");
            queue.push_back(id);
            continue;
        }
        let read = read_shard(client, stream, shard).await;
        for child in &read.child_shards {
            queue.push_back(child.shard_id().to_string());
        }
        done.insert(id, read);
    }
    assert_eq!(
        done.keys().cloned().collect::<BTreeSet<_>>(),
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        "following ChildShards from the root shards of {stream} must reach every shard"
    );
    done
}

/// Waits until the wall clock is past `ms` (so the next record arrives later).
pub async fn wait_clock_past(ms: i64) {
    eventually(
        "the clock to move on",
        Duration::from_secs(5),
        || async move { (now_ms() as i64 > ms).then_some(()) },
    )
    .await;
}

/// Polls `f` until it returns true, with `what` in the panic after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn hashing_and_ranges_match_published_values() {
    // RFC 1321: MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
    assert_eq!(hash_key_of("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    // A three-shard stream as AWS lays it out (ranges AWS answers for ShardCount 3).
    assert_eq!(
        even_ranges(3),
        vec![
            (0, 113427455640312821154458202477256070484),
            (
                113427455640312821154458202477256070485,
                226854911280625642308916404954512140969
            ),
            (226854911280625642308916404954512140970, MAX_HASH_KEY),
        ]
    );
    assert_eq!(even_ranges(1), vec![(0, MAX_HASH_KEY)]);
    assert_eq!(seq_cmp("9", "10"), Ordering::Less);
    assert_eq!(seq_cmp("0010", "10"), Ordering::Equal);
}
