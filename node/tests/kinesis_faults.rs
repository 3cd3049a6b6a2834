//! Kinesis through failures (issue 6): producers put records one after another through
//! every node's edge while (a) the leader of every Raft group, data groups holding the
//! shards and the meta group alike, is killed in turn (SIGKILL) and restarted, or (b) a
//! whole zone's nodes are killed. Consumers read each shard all along.
//!
//! What must hold, per shard: every acknowledged record is there exactly once, under the
//! shard and sequence number it was acknowledged with; sequence numbers strictly increase;
//! a producer's acknowledged records keep the order they were put in; nothing appears that
//! was never sent, and a put whose outcome was unknown appears at most once; a consumer
//! that read through the failures saw exactly what a reader from TRIM_HORIZON sees after
//! them (it never skipped, repeated or reordered a record).
//!
//! Producers resend only what certainly did not apply (the connection was refused, or the
//! server answered 503 / throttled): a duplicate can then only come from the server.

mod common;
mod kinesis_common;
mod sqs_common;

use std::cmp::Ordering as SeqOrdering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use common::TestCluster;
use kinesis_common::*;

const PRODUCERS: usize = 6;
const PER_PRODUCER: usize = 60;
const SHARDS: i32 = 4;

/// What one shard holds, in order: (SequenceNumber, data).
type ShardLog = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Acked {
        shard: String,
        seq: String,
    },
    /// The put may or may not have been applied.
    Unknown(String),
}

#[derive(Debug, Clone)]
struct Sent {
    producer: usize,
    data: String,
    outcome: Outcome,
}

/// The request certainly had no effect: it never reached a server (connection refused),
/// or the server said so (503, or throttled).
fn certainly_not_applied<E>(err: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(status) = err.raw_response().map(|r| r.status().as_u16()) {
        return status == 503 || err.code() == Some("ProvisionedThroughputExceededException");
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = e.source();
    }
    false
}

fn clients(cluster: &TestCluster) -> Vec<Client> {
    cluster
        .nodes
        .iter()
        .map(|n| single_attempt_client(&n.http))
        .collect()
}

/// One producer: records `p{p}-{i}` one after another, each with its outcome. A put that
/// certainly did not apply is resent (through the next edge) until it is acknowledged or
/// its outcome is unknown; the cluster must take it within 90 s.
async fn produce(
    p: usize,
    edges: Vec<Client>,
    stream: String,
    done: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut edge = p;
    for i in 0..PER_PRODUCER {
        let data = format!("p{p}-{i}");
        let key = format!("p{p}-k{}", i % 4);
        let deadline = Instant::now() + Duration::from_secs(90);
        let outcome = loop {
            let res = edges[edge % edges.len()]
                .put_record()
                .stream_name(&stream)
                .partition_key(&key)
                .data(Blob::new(data.clone()))
                .send()
                .await;
            match res {
                Ok(out) => {
                    break Outcome::Acked {
                        shard: out.shard_id().to_string(),
                        seq: out.sequence_number().to_string(),
                    }
                }
                Err(e) if certainly_not_applied(&e) => {
                    assert!(
                        Instant::now() < deadline,
                        "{data} not accepted within 90 s: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(&e)
                    );
                    edge += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    break Outcome::Unknown(
                        aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string(),
                    )
                }
            }
        };
        sent.push(Sent {
            producer: p,
            data,
            outcome,
        });
        done.fetch_add(1, Ordering::Relaxed);
    }
    sent
}

/// One consumer of one shard, from TRIM_HORIZON, following NextShardIterator through
/// failures (a failed GetRecords is retried with the same iterator on the next edge).
/// Stops at the first empty read after `stop` is set. Returns (SequenceNumber, data) in
/// the order read.
async fn consume(
    edges: Vec<Client>,
    stream: String,
    shard: String,
    stop: Arc<AtomicBool>,
) -> ShardLog {
    let mut edge = 0;
    let mut it = loop {
        match edges[edge % edges.len()]
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
        {
            Ok(out) => break out.shard_iterator().expect("ShardIterator").to_string(),
            Err(_) => {
                edge += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut got = Vec::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match edges[edge % edges.len()]
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
        {
            Ok(out) => {
                got.extend(
                    out.records()
                        .iter()
                        .map(|r| (r.sequence_number().to_string(), data_of(r))),
                );
                it = out
                    .next_shard_iterator()
                    .unwrap_or_else(|| panic!("{shard} is open, yet GetRecords ended it"))
                    .to_string();
                if out.records().is_empty() {
                    if stopping {
                        return got;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Err(e) => {
                assert!(
                    !e.as_service_error()
                        .is_some_and(|e| e.is_expired_iterator_exception()
                            || e.is_invalid_argument_exception()),
                    "{shard}: the consumer's iterator was refused: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&e)
                );
                edge += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

struct Run {
    producers: Vec<tokio::task::JoinHandle<Vec<Sent>>>,
    consumers: Vec<(String, tokio::task::JoinHandle<ShardLog>)>,
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

async fn start_traffic(cluster: &TestCluster, stream: &str) -> Run {
    let admin = kinesis_client(&cluster.node(1).http);
    create_stream(&admin, stream, SHARDS).await;
    let shards = list_shards(&admin, stream).await;
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producers = (0..PRODUCERS)
        .map(|p| {
            tokio::spawn(produce(
                p,
                clients(cluster),
                stream.to_string(),
                done.clone(),
            ))
        })
        .collect();
    let consumers = shards
        .iter()
        .map(|s| {
            let id = s.shard_id().to_string();
            let task = tokio::spawn(consume(
                clients(cluster),
                stream.to_string(),
                id.clone(),
                stop.clone(),
            ));
            (id, task)
        })
        .collect();
    Run {
        producers,
        consumers,
        done,
        stop,
    }
}

async fn wait_progress(done: &AtomicUsize, at_least: usize) {
    eventually(
        &format!("{at_least} puts answered"),
        Duration::from_secs(120),
        || async move { (done.load(Ordering::Relaxed) >= at_least).then_some(()) },
    )
    .await;
}

/// Waits for the producers, reads every shard through `reader` and checks what must hold;
/// then lets the consumers finish and compares what they read.
async fn finish_and_verify(run: Run, reader: &Client, stream: &str) {
    let mut sent: Vec<Sent> = Vec::new();
    for p in run.producers {
        sent.extend(p.await.expect("producer"));
    }
    let acked = sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Acked { .. }))
        .count();
    let unknown: Vec<&Sent> = sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Unknown(_)))
        .collect();
    eprintln!(
        "{stream}: {acked} acknowledged, {} unknown of {}: {:?}",
        unknown.len(),
        sent.len(),
        unknown
            .iter()
            .map(|s| (&s.data, &s.outcome))
            .collect::<Vec<_>>()
    );
    assert!(
        acked >= sent.len() / 2,
        "most puts must be acknowledged through the failures: {acked} of {}",
        sent.len()
    );

    let shards = list_shards(reader, stream).await;
    assert_eq!(shards.len(), SHARDS as usize);
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut per_shard: BTreeMap<String, ShardLog> = BTreeMap::new();
    for shard in &shards {
        let read = read_shard(reader, stream, shard).await;
        assert_strictly_increasing(shard.shard_id(), &read.records);
        let list: ShardLog = read
            .records
            .iter()
            .map(|r| (r.sequence_number().to_string(), data_of(r)))
            .collect();
        for (seq, data) in &list {
            found
                .entry(data.clone())
                .or_default()
                .push((shard.shard_id().to_string(), seq.clone()));
        }
        per_shard.insert(shard.shard_id().to_string(), list);
    }

    let by_data: BTreeMap<&str, &Sent> = sent.iter().map(|s| (s.data.as_str(), s)).collect();
    for data in found.keys() {
        assert!(
            by_data.contains_key(data.as_str()),
            "{data} was read but never sent"
        );
    }
    for s in &sent {
        let copies = found.get(&s.data).cloned().unwrap_or_default();
        match &s.outcome {
            Outcome::Acked { shard, seq } => assert_eq!(
                copies,
                vec![(shard.clone(), seq.clone())],
                "acknowledged {} must be read exactly once where it was acknowledged",
                s.data
            ),
            Outcome::Unknown(_) => assert!(
                copies.len() <= 1,
                "{} stored {} times",
                s.data,
                copies.len()
            ),
        }
    }
    // A producer's acknowledged records, in the order put, have increasing sequence
    // numbers on each shard.
    for p in 0..PRODUCERS {
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for s in sent.iter().filter(|s| s.producer == p) {
            if let Outcome::Acked { shard, seq } = &s.outcome {
                if let Some(prev) = last.insert(shard.as_str(), seq.as_str()) {
                    assert_eq!(
                        seq_cmp(prev, seq),
                        SeqOrdering::Less,
                        "producer {p}: {} put after {prev} but numbered {seq}",
                        s.data
                    );
                }
            }
        }
    }

    // The consumers that read through the failures saw the same records in the same order.
    run.stop.store(true, Ordering::SeqCst);
    for (shard, task) in run.consumers {
        let seen = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .unwrap_or_else(|_| panic!("consumer of {shard} did not finish"))
            .expect("consumer");
        assert_eq!(
            seen, per_shard[&shard],
            "the consumer of {shard} skipped, repeated or reordered records"
        );
    }
    let all: BTreeSet<&String> = found.keys().collect();
    assert!(all.len() >= acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_survive_the_leader_of_every_group_being_killed_in_turn() {
    let _serial = common::serial().await;
    let (mut cluster, _) = start().await;
    let run = start_traffic(&cluster, "failover").await;
    let total = PRODUCERS * PER_PRODUCER;
    wait_progress(&run.done, total / 8).await;

    // Every group, meta and data alike: so the groups holding the stream's shards and its
    // catalog all lose their leader while puts go on.
    let groups: Vec<u64> = cluster
        .status()
        .await
        .expect("cluster status")
        .groups
        .iter()
        .map(|g| g.id)
        .collect();
    for g in groups {
        let c = &cluster;
        let leader = eventually(
            &format!("a leader of group {g}"),
            Duration::from_secs(30),
            || async move { c.leader_of(g).await.filter(|l| c.is_running(*l)) },
        )
        .await;
        let before = run.done.load(Ordering::Relaxed);
        cluster.kill(leader);
        let c = &cluster;
        eventually(
            &format!("group {g} to elect a leader other than node {leader}"),
            Duration::from_secs(30),
            || async move {
                c.leader_of(g)
                    .await
                    .filter(|l| *l != leader && c.is_running(*l))
            },
        )
        .await;
        // Puts go on while the node is down.
        wait_progress(&run.done, (before + PRODUCERS).min(total)).await;
        cluster.start_node(leader);
        cluster.wait_ready(Duration::from_secs(60)).await;
        common::wait_caught_up(&cluster, &[leader], Duration::from_secs(60)).await;
    }

    let reader = kinesis_client(&cluster.node(1).http);
    finish_and_verify(run, &reader, "failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puts_survive_a_zone_outage() {
    let _serial = common::serial().await;
    let (mut cluster, _) = start().await;
    let run = start_traffic(&cluster, "outage").await;
    let total = PRODUCERS * PER_PRODUCER;
    wait_progress(&run.done, total / 4).await;

    // Zone az-c (nodes 3 and 6) goes down; puts go on through the other zones.
    cluster.kill(3);
    cluster.kill(6);
    wait_progress(&run.done, total).await;
    let reader = kinesis_client(&cluster.node(2).http);
    // Stop the consumers only after the zone is back, so that they also read through
    // its return.
    cluster.start_node(3);
    cluster.start_node(6);
    cluster.wait_ready(Duration::from_secs(60)).await;
    finish_and_verify(run, &reader, "outage").await;

    // The restarted nodes serve the same records.
    let via3 = kinesis_client(&cluster.node(3).http);
    for shard in list_shards(&reader, "outage").await {
        let a = read_shard(&reader, "outage", &shard).await.records;
        let b = read_shard(&via3, "outage", &shard).await.records;
        assert_eq!(
            a,
            b,
            "{} read through node 3 after its return",
            shard.shard_id()
        );
    }
}
