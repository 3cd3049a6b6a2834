//! The object store's background workers against a real 6-node, 3-zone cluster of
//! `stratusd` processes, through the official AWS SDK for Rust and real faults on disk:
//! a shard file corrupted under a GET is read around and rebuilt; a node killed during
//! a PUT gets its shard back when it returns; the scrubber finds a corrupt shard no GET
//! reads; the orphan sweep deletes a shard nothing points to.
//!
//! The workers are made fast through `STRATUS_OBJECT__*` variables, which the `stratusd`
//! processes inherit from this test process (tests here run one at a time).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::{Options, TestCluster};
use stratus_node::store::chunks::{ChunkStore, FsChunkStore, ShardFormat, ShardId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
const DEADLINE: Duration = Duration::from_secs(90);

fn s3_client(edge: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{edge}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// Deterministic bytes that differ at every offset.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Worker pacing for the `stratusd` processes started next. `scrub`: bytes per second (0
/// turns the scrubber off); `orphan_grace_ms`: how long an orphan waits before deletion.
fn pace_workers(scrub: u64, orphan_grace_ms: u64) {
    for (name, value) in [
        ("REPAIR_INTERVAL_MS", 300),
        ("SCRUB_BYTES_PER_SECOND", scrub),
        ("SCRUB_INTERVAL_MS", 500),
        ("GC_INTERVAL_MS", 500),
        ("ORPHAN_GRACE_MS", orphan_grace_ms),
    ] {
        std::env::set_var(format!("STRATUS_OBJECT__{name}"), value.to_string());
    }
}

async fn start() -> TestCluster {
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    cluster
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e:?}"));
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

fn chunks_dir(cluster: &TestCluster, node: u64) -> PathBuf {
    cluster
        .dir
        .path()
        .join(format!("data-{node}"))
        .join("chunks")
}

/// Every finished shard file of a node: (path, shard id), from the file names
/// (`<32 hex digits of the blob>-<2 hex digits of the index>.shard`).
fn shard_files(cluster: &TestCluster, node: u64) -> Vec<(PathBuf, ShardId)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, ShardId)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "tmp") {
                    walk(&path, out);
                }
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let Some(stem) = name.strip_suffix(".shard") else {
                continue;
            };
            let Some((blob, index)) = stem.split_once('-') else {
                continue;
            };
            let blob = u128::from_str_radix(blob, 16).unwrap();
            let index = u8::from_str_radix(index, 16).unwrap();
            out.push((path, ShardId::new(blob, index)));
        }
    }
    let mut out = Vec::new();
    walk(&chunks_dir(cluster, node), &mut out);
    out.sort_by_key(|(_, id)| *id);
    out
}

/// (node, path, id) of every shard file in the cluster.
fn all_shards(cluster: &TestCluster) -> Vec<(u64, PathBuf, ShardId)> {
    (1..=cluster.nodes.len() as u64)
        .flat_map(|n| {
            shard_files(cluster, n)
                .into_iter()
                .map(move |(p, id)| (n, p, id))
        })
        .collect()
}

fn store(cluster: &TestCluster, node: u64) -> FsChunkStore {
    FsChunkStore::open(&chunks_dir(cluster, node)).unwrap()
}

/// Whether a node's copy of shard `id` is there and every block passes its CRC.
fn verifies(cluster: &TestCluster, node: u64, id: ShardId) -> bool {
    store(cluster, node).verify(id).is_ok()
}

/// Flip one byte in the middle of a file (inside some block, so its CRC fails).
fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// A counter summed over the running nodes' `/_stratus/metrics`.
async fn metric(cluster: &TestCluster, name: &str) -> u64 {
    let mut total = 0;
    for node in &cluster.nodes {
        if !cluster.is_running(node.id) {
            continue;
        }
        let Ok(mut tcp) = tokio::net::TcpStream::connect(&node.http).await else {
            continue;
        };
        let request = format!(
            "GET /_stratus/metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            node.http
        );
        if tcp.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        let mut text = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut text));
        if !matches!(read.await, Ok(Ok(_))) {
            continue;
        }
        let prefix = format!("{name}{{");
        total += text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}

/// Poll `done` until it holds, or fail with `what` after the deadline.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_corrupted_on_disk_is_read_around_and_rebuilt() {
    let _serial = common::serial().await;
    // The scrubber is off: only the GET can find the damage.
    pace_workers(0, 3_600_000);
    let cluster = start().await;
    let s3 = s3_client(&cluster.node(1).http);
    s3.create_bucket().bucket("repair").send().await.unwrap();
    let body = pattern(3 * MIB + 5, 1);
    put(&s3, "repair", "obj", &body).await;

    // The object's only blob has six shards, one per node; damage data shard 0.
    let shards = all_shards(&cluster);
    assert_eq!(shards.len(), 6, "{shards:?}");
    let (node, path, id) = shards
        .iter()
        .find(|(_, _, id)| id.index == 0)
        .cloned()
        .unwrap();
    flip_middle_byte(&path);
    assert!(!verifies(&cluster, node, id));

    assert_eq!(get(&s3, "repair", "obj").await, body, "GET reads around it");

    // Reported by that GET, recorded missing, rebuilt: every copy verifies again.
    eventually("the corrupt shard is rebuilt", || async {
        let shards = all_shards(&cluster);
        metric(&cluster, "stratus_object_shards_repaired_total").await >= 1
            && shards.len() == 6
            && shards.iter().all(|(n, _, id)| verifies(&cluster, *n, *id))
    })
    .await;
    assert!(metric(&cluster, "stratus_object_shards_marked_missing_total").await >= 1);
    assert_eq!(get(&s3, "repair", "obj").await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_missed_a_put_gets_its_shard_back() {
    let _serial = common::serial().await;
    pace_workers(0, 3_600_000);
    let mut cluster = start().await;
    let s3 = s3_client(&cluster.node(1).http);
    s3.create_bucket().bucket("restart").send().await.unwrap();
    // Node 1 learns every node is up (answers are trusted for two seconds)...
    put(&s3, "restart", "warm-up", &pattern(MIB, 2)).await;
    let before: Vec<u128> = all_shards(&cluster).iter().map(|s| s.2.blob).collect();
    // ...then node 2 dies, and the PUT that follows places a shard on it and loses it
    // (or, had node 1 seen it die already, puts that shard on its zone partner: then the
    // audit moves it back, and the end state checked below is the same).
    let lost: u64 = 2;
    cluster.kill(lost);
    let body = pattern(3 * MIB, 3);
    put(&s3, "restart", "obj", &body).await;
    let blob = all_shards(&cluster)
        .iter()
        .map(|s| s.2.blob)
        .find(|b| !before.contains(b))
        .expect("the new object's shards");
    assert!(shard_files(&cluster, lost).iter().all(|s| s.1.blob != blob));
    assert_eq!(get(&s3, "restart", "obj").await, body);

    cluster.start_node(lost);
    cluster.wait_ready(Duration::from_secs(60)).await;
    eventually(
        "the restarted node holds a shard of the object again",
        || async {
            let mine = shard_files(&cluster, lost)
                .into_iter()
                .any(|(_, id)| id.blob == blob && verifies(&cluster, lost, id));
            let committed = metric(&cluster, "stratus_object_shards_repaired_total").await
                + metric(&cluster, "stratus_object_shards_moved_total").await;
            mine && committed >= 1
        },
    )
    .await;

    // Six shards again, two per zone: the object survives losing a whole other zone
    // (az-c: nodes 3 and 6), which it would not have with the restarted node's shard lost.
    cluster.kill(3);
    cluster.kill(6);
    assert_eq!(get(&s3, "restart", "obj").await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scrubber_finds_rot_and_the_sweep_deletes_orphans() {
    let _serial = common::serial().await;
    pace_workers(64 * MIB as u64, 1_000);
    let cluster = start().await;
    let s3 = s3_client(&cluster.node(1).http);
    s3.create_bucket().bucket("scrub").send().await.unwrap();
    let body = pattern(MIB + 100, 4);
    put(&s3, "scrub", "obj", &body).await;
    let shards = all_shards(&cluster);
    assert_eq!(shards.len(), 6, "{shards:?}");
    let blob = shards[0].2.blob;

    // A parity shard, which no GET reads while the data shards are fine.
    let (node, path, parity) = shards
        .iter()
        .find(|(_, _, id)| id.index == 5)
        .cloned()
        .unwrap();
    flip_middle_byte(&path);
    assert!(!verifies(&cluster, node, parity));

    // A shard nothing points to, as a write that never committed leaves behind.
    let orphan = ShardId::new(0x0dd5_0000_0000_0000_0000_0000_0000_0001, 0);
    let format = ShardFormat {
        data_shards: 4,
        parity_shards: 2,
        piece_bytes: 1024,
    };
    let mut writer = store(&cluster, 1).create(orphan, format).unwrap();
    writer.append(&[7u8; 1024]).unwrap();
    writer.finish().unwrap();
    assert!(verifies(&cluster, 1, orphan));

    eventually(
        "the rot is scrubbed and rebuilt, the orphan deleted",
        || async {
            let shards = all_shards(&cluster);
            let blob_shards: Vec<_> = shards.iter().filter(|s| s.2.blob == blob).collect();
            metric(&cluster, "stratus_object_corrupt_shards_total").await >= 1
                && metric(&cluster, "stratus_object_shards_repaired_total").await >= 1
                && blob_shards.len() == 6
                && blob_shards
                    .iter()
                    .all(|(n, _, id)| verifies(&cluster, *n, *id))
                && !shards.iter().any(|s| s.2 == orphan)
        },
    )
    .await;
    assert!(metric(&cluster, "stratus_object_orphans_deleted_total").await >= 1);
    assert!(metric(&cluster, "stratus_object_scrubbed_bytes_total").await > 0);
    assert_eq!(get(&s3, "scrub", "obj").await, body);
}
