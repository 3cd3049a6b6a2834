//! Quorum-storage segments on a real 6-node cluster, at the gRPC level (docs/quorum-storage.md):
//! a PG's six segments (slot i on node i+1) are fenced, appended to and read; old writers are
//! fenced; gossip fills a hole a segment missed; a record corrupted on disk is dropped and
//! refetched from peers; a segment keeps its records and epoch across a crash.
//!
//! The membership is built by hand from the cluster's nodes (Fence carries it), so these tests
//! do not need the volume catalog.

mod common;

use std::time::{Duration, Instant};

use common::*;
use prost::Message;
use stratus_proto::quorum::segments_client::SegmentsClient;
use stratus_proto::quorum::Outcome;
use stratus_proto::quorum::*;
use tonic::transport::Channel;

const CLUSTER: &str = "test";
const PG: u32 = 0;

fn membership(c: &TestCluster) -> PgMembership {
    PgMembership {
        pg: PG,
        membership_epoch: 1,
        members: (0..6u32)
            .map(|slot| {
                let node = c.node(u64::from(slot) + 1);
                SegmentPlace {
                    slot,
                    node_id: node.id,
                    zone: ZONES[slot as usize % 3].to_string(),
                    grpc_addr: node.grpc.clone(),
                }
            })
            .collect(),
        next_members: Vec::new(),
    }
}

fn segment(volume_id: u64, slot: u32) -> Option<SegmentId> {
    Some(SegmentId {
        volume_id,
        pg: PG,
        slot,
    })
}

fn client(c: &TestCluster, slot: u32) -> SegmentsClient<Channel> {
    let node = c.node(u64::from(slot) + 1);
    SegmentsClient::new(channel(&format!("http://{}", node.grpc)).unwrap())
}

fn put(key: &str, value: &str) -> PageOp {
    PageOp {
        op: Some(page_op::Op::Put(KeyValue {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        })),
    }
}

fn delete(key: &str) -> PageOp {
    PageOp {
        op: Some(page_op::Op::Delete(key.as_bytes().to_vec())),
    }
}

/// A record with its CRC (of its encoding with crc32 = 0).
fn record(lsn: u64, prev_lsn: u64, epoch: u64, page: u64, ops: Vec<PageOp>) -> LogRecord {
    let mut r = LogRecord {
        lsn,
        prev_lsn,
        epoch,
        pg: PG,
        page,
        cpl: true,
        ops,
        crc32: 0,
    };
    r.crc32 = crc32fast::hash(&r.encode_to_vec());
    r
}

fn truncation(epoch: u64, truncated_above: u64) -> Truncation {
    Truncation {
        epoch,
        truncated_above,
    }
}

async fn fence(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
    epoch: u64,
    history: Vec<Truncation>,
) -> FenceReply {
    client(c, slot)
        .fence(FenceRequest {
            cluster: CLUSTER.into(),
            segment: segment(volume_id, slot),
            epoch,
            history,
            membership: Some(membership(c)),
        })
        .await
        .expect("fence")
        .into_inner()
}

async fn fence_all(c: &TestCluster, volume_id: u64, epoch: u64, history: Vec<Truncation>) {
    for slot in 0..6 {
        let reply = fence(c, volume_id, slot, epoch, history.clone()).await;
        assert_eq!(reply.outcome(), Outcome::Ok, "fence of slot {slot}");
        assert_eq!(reply.epoch, epoch);
    }
}

async fn append(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
    epoch: u64,
    records: Vec<LogRecord>,
    vdl: u64,
    pg_tail: u64,
) -> AppendReply {
    client(c, slot)
        .append(AppendRequest {
            cluster: CLUSTER.into(),
            segment: segment(volume_id, slot),
            epoch,
            membership_epoch: 1,
            vdl,
            pg_tail,
            records,
        })
        .await
        .expect("append")
        .into_inner()
}

async fn status(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
) -> Result<SegmentStatusReply, tonic::Status> {
    let mut req = tonic::Request::new(SegmentStatusRequest {
        cluster: CLUSTER.into(),
        segment: segment(volume_id, slot),
    });
    req.set_timeout(Duration::from_secs(2));
    client(c, slot)
        .segment_status(req)
        .await
        .map(|r| r.into_inner())
}

async fn read_page(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
    page: u64,
    read_lsn: u64,
    pg_tail: u64,
) -> ReadPageReply {
    client(c, slot)
        .read_page(ReadPageRequest {
            cluster: CLUSTER.into(),
            segment: segment(volume_id, slot),
            page,
            read_lsn,
            pg_tail,
            min_read_lsn: 0,
        })
        .await
        .expect("read page")
        .into_inner()
}

async fn read_records(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
) -> Result<Vec<LogRecord>, tonic::Status> {
    let mut req = tonic::Request::new(ReadRecordsRequest {
        cluster: CLUSTER.into(),
        segment: segment(volume_id, slot),
        after_lsn: 0,
        up_to_lsn: 0,
        max_bytes: 0,
    });
    req.set_timeout(Duration::from_secs(2));
    client(c, slot)
        .read_records(req)
        .await
        .map(|r| r.into_inner().records)
}

fn entries(reply: &ReadPageReply) -> Vec<(String, String)> {
    reply
        .entries
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect()
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Poll a segment's status until `done` holds.
async fn wait_status(
    c: &TestCluster,
    volume_id: u64,
    slot: u32,
    timeout: Duration,
    what: &str,
    done: impl Fn(&SegmentStatusReply) -> bool,
) -> SegmentStatusReply {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(c, volume_id, slot).await;
        if let Ok(s) = &s {
            if done(s) {
                return s.clone();
            }
        }
        assert!(Instant::now() < deadline, "{what}: last status {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_cluster() -> TestCluster {
    let c = TestCluster::start(Options::default());
    c.wait_ready(Duration::from_secs(60)).await;
    c
}

/// Three records of one PG: page 0 gets a=1, page 4 gets b=2, page 0 gets c=3 and loses a.
fn three_records(epoch: u64) -> Vec<LogRecord> {
    vec![
        record(1, 0, epoch, 0, vec![put("a", "1")]),
        record(2, 1, epoch, 4, vec![put("b", "2")]),
        record(3, 2, epoch, 0, vec![put("c", "3"), delete("a")]),
    ]
}

#[tokio::test]
async fn append_read_fence_and_reappend() {
    let _serial = serial().await;
    let c = start_cluster().await;

    // 1. Fence all six, append to all six (no durable point yet, so the log stays as it
    // is): SCL 3; a page reads at any point the chain covers.
    let vol = 1;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    let records = three_records(1);
    for slot in 0..6 {
        let reply = append(&c, vol, slot, 1, records.clone(), 0, 0).await;
        assert_eq!(
            (reply.outcome(), reply.scl, reply.epoch),
            (Outcome::Ok, 3, 1)
        );
    }
    let s = status(&c, vol, 4).await.unwrap();
    assert_eq!(
        (s.scl, s.max_lsn, s.readable_lsn, s.log_start_lsn),
        (3, 3, 0, 1)
    );

    let page = read_page(&c, vol, 0, 0, 3, 3).await;
    assert_eq!((page.outcome(), page.read_lsn), (Outcome::Ok, 3));
    assert_eq!(entries(&page), vec![kv("c", "3")]);
    let page = read_page(&c, vol, 0, 0, 2, 2).await;
    assert_eq!(entries(&page), vec![kv("a", "1")]);
    // Beyond the chain: not complete, with the readable point (none yet).
    let page = read_page(&c, vol, 2, 0, 9, 8).await;
    assert_eq!((page.outcome(), page.read_lsn), (Outcome::NotComplete, 0));
    let page = read_page(&c, vol, 2, 0, 0, 0).await;
    assert_eq!((page.outcome(), page.read_lsn), (Outcome::Ok, 0));
    assert!(page.entries.is_empty(), "nothing is readable at 0");

    // Re-append: acknowledged, nothing duplicated or changed.
    for slot in 0..6 {
        let reply = append(&c, vol, slot, 1, records.clone(), 0, 0).await;
        assert_eq!((reply.outcome(), reply.scl), (Outcome::Ok, 3));
    }
    assert_eq!(read_records(&c, vol, 3).await.unwrap(), records);

    // The writer's idle append tells the durable point: a replica reads there.
    for slot in 0..6 {
        let reply = append(&c, vol, slot, 1, Vec::new(), 3, 3).await;
        assert_eq!((reply.outcome(), reply.scl), (Outcome::Ok, 3));
    }
    let page = read_page(&c, vol, 1, 4, 0, 0).await;
    assert_eq!(
        (page.outcome(), page.read_lsn),
        (Outcome::Ok, 3),
        "replica read at the readable point"
    );
    assert_eq!(entries(&page), vec![kv("b", "2")]);
    let s = status(&c, vol, 1).await.unwrap();
    assert_eq!((s.readable_lsn, s.readable_pg_tail, s.known_vdl), (3, 3, 3));

    // Gossip materializes the pages, then every member has, so the log is collected; pages
    // read the same.
    for slot in 0..6 {
        wait_status(
            &c,
            vol,
            slot,
            Duration::from_secs(30),
            "materialized and collected",
            |s| s.materialized_lsn == 3 && s.log_start_lsn == 0,
        )
        .await;
    }
    assert_eq!(
        entries(&read_page(&c, vol, 5, 0, 3, 3).await),
        vec![kv("c", "3")]
    );
    assert_eq!(
        entries(&read_page(&c, vol, 5, 4, 0, 0).await),
        vec![kv("b", "2")]
    );
    let page = read_page(&c, vol, 5, 0, 2, 2).await;
    assert_eq!(
        page.outcome(),
        Outcome::NotComplete,
        "below the materialized point"
    );

    // 2. Fencing: a newer epoch truncates above 2 and fences epoch 1.
    let vol = 2;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    for slot in 0..6 {
        append(&c, vol, slot, 1, three_records(1), 0, 0).await;
    }
    let history = vec![truncation(1, 0), truncation(2, 2)];
    fence_all(&c, vol, 2, history.clone()).await;
    let s = status(&c, vol, 0).await.unwrap();
    assert_eq!(
        (s.epoch, s.scl, s.max_lsn),
        (2, 2, 2),
        "record 3 of epoch 1 is void"
    );
    assert_eq!(s.history, history);
    let old = append(&c, vol, 0, 1, vec![record(4, 3, 1, 0, vec![])], 0, 0).await;
    assert_eq!((old.outcome(), old.epoch), (Outcome::Fenced, 2));
    assert_eq!(
        fence(&c, vol, 0, 1, vec![truncation(1, 0)]).await.outcome(),
        Outcome::Fenced
    );
    let new = append(
        &c,
        vol,
        0,
        2,
        vec![record(3, 2, 2, 0, vec![put("z", "9")])],
        3,
        3,
    )
    .await;
    assert_eq!((new.outcome(), new.scl), (Outcome::Ok, 3));
    // Epoch 3 fenced without its truncation entry: its records need the entry first.
    fence(&c, vol, 0, 3, history.clone()).await;
    let early = append(&c, vol, 0, 3, vec![record(4, 3, 3, 0, vec![])], 0, 0).await;
    assert_eq!(early.outcome(), Outcome::NeedsFence);
    let ahead = append(&c, vol, 1, 4, vec![record(4, 3, 4, 0, vec![])], 0, 0).await;
    assert_eq!(
        ahead.outcome(),
        Outcome::NeedsFence,
        "an epoch the segment has not seen"
    );

    // Bad input: a record failing its CRC is DATA_LOSS; a broken backlink is refused.
    let mut bad = record(4, 3, 2, 0, vec![put("x", "1")]);
    bad.crc32 ^= 1;
    let err = client(&c, 2)
        .append(AppendRequest {
            cluster: CLUSTER.into(),
            segment: segment(vol, 2),
            epoch: 3,
            membership_epoch: 1,
            records: vec![bad],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DataLoss);
    let err = client(&c, 2)
        .segment_status(SegmentStatusRequest {
            cluster: CLUSTER.into(),
            segment: segment(99, 2),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn gossip_fills_a_hole() {
    let _serial = serial().await;
    let c = start_cluster().await;
    let vol = 3;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    let records = three_records(1);
    for slot in 0..6 {
        append(&c, vol, slot, 1, vec![records[0].clone()], 0, 0).await;
    }
    // Record 2 reaches five segments only.
    for slot in 0..5 {
        append(&c, vol, slot, 1, vec![records[1].clone()], 0, 0).await;
    }
    // (Gossip may already be at work on slot 5, so its SCL here is 1 or 3.)
    for slot in 0..6 {
        let reply = append(&c, vol, slot, 1, vec![records[2].clone()], 3, 3).await;
        assert_eq!(reply.outcome(), Outcome::Ok);
    }

    wait_status(
        &c,
        vol,
        5,
        Duration::from_secs(30),
        "slot 5 filled by gossip",
        |s| s.scl == 3 && s.readable_lsn == 3,
    )
    .await;
    // Record 2's redo is there (in the log, or already in the materialized page), and
    // whatever is still in the log is exactly what the writer sent.
    for r in read_records(&c, vol, 5).await.unwrap() {
        assert_eq!(r, records[r.lsn as usize - 1]);
    }
    let page = read_page(&c, vol, 5, 4, 0, 0).await;
    assert_eq!((page.outcome(), page.read_lsn), (Outcome::Ok, 3));
    assert_eq!(entries(&page), vec![kv("b", "2")]);
}

/// The segments column family of a stopped node, opened directly.
fn open_node_db(c: &TestCluster, id: u64) -> rocksdb::DB {
    let path = c.dir.path().join(format!("data-{id}")).join("db");
    let cfs =
        rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("list column families");
    rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, cfs).expect("open the node's RocksDB")
}

/// A row of the segments column family: `volume | pg | slot | kind | lsn-or-page`.
fn row_key(volume_id: u64, slot: u32, kind: u8, n: u64) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend_from_slice(&volume_id.to_be_bytes());
    k.extend_from_slice(&PG.to_be_bytes());
    k.extend_from_slice(&slot.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn log_row_key(volume_id: u64, slot: u32, lsn: u64) -> Vec<u8> {
    row_key(volume_id, slot, 1, lsn)
}

fn page_row_key(volume_id: u64, slot: u32, page: u64) -> Vec<u8> {
    row_key(volume_id, slot, 2, page)
}

#[tokio::test]
async fn corrupt_record_is_dropped_and_refetched() {
    let _serial = serial().await;
    let mut c = start_cluster().await;
    let vol = 4;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    // No durable point piggybacked: nothing is materialized or collected, the log stays.
    let records = three_records(1);
    for slot in 0..6 {
        append(&c, vol, slot, 1, records.clone(), 0, 0).await;
    }

    // Flip bytes of record 2's row on node 3 (slot 2) while it is down.
    c.kill(3);
    {
        let db = open_node_db(&c, 3);
        let cf = db.cf_handle("segments").expect("segments column family");
        let key = log_row_key(vol, 2, 2);
        let mut value = db.get_cf(&cf, &key).unwrap().expect("record 2 is on disk");
        let original = records[1].encode_to_vec();
        assert_eq!(value, original);
        let at = value.len() - 8;
        value[at] ^= 0xFF;
        value[at + 1] ^= 0xFF;
        db.put_cf(&cf, &key, &value).unwrap();
        db.flush_wal(true).unwrap();
    }
    c.start_node(3);

    // Whatever it answers, node 3 never returns the corrupt bytes, and gossip brings the
    // record back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(held) = read_records(&c, vol, 2).await {
            for r in &held {
                assert_eq!(
                    r,
                    &records[r.lsn as usize - 1],
                    "node 3 returned a bad record"
                );
            }
            if held.len() == 3 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "record 2 not refetched: {:?}",
            status(&c, vol, 2).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status(&c, vol, 2).await.unwrap();
    assert_eq!((s.scl, s.max_lsn, s.epoch), (3, 3, 1));
    assert!(
        c.log_of(3).contains("fails its CRC"),
        "the corruption was not reported in the node's log"
    );
}

#[tokio::test]
async fn restarted_segment_keeps_records_and_epoch() {
    let _serial = serial().await;
    let mut c = start_cluster().await;
    let vol = 5;
    let history = vec![truncation(2, 0)];
    fence_all(&c, vol, 2, history.clone()).await;
    let records = three_records(2);
    for slot in 0..6 {
        append(&c, vol, slot, 2, records.clone(), 0, 0).await;
    }
    // Every node crashes; node 2 comes back alone, so what it has is from its own disk.
    for id in 1..=6 {
        c.kill(id);
    }
    c.start_node(2);
    let s = wait_status(
        &c,
        vol,
        1,
        Duration::from_secs(30),
        "node 2 answers",
        |_| true,
    )
    .await;
    assert_eq!(
        (s.epoch, s.scl, s.max_lsn, s.membership_epoch),
        (2, 3, 3, 1)
    );
    assert_eq!(s.history, history);
    assert_eq!(read_records(&c, vol, 1).await.unwrap(), records);
    let old = append(&c, vol, 1, 1, vec![record(4, 3, 1, 0, vec![])], 0, 0).await;
    assert_eq!(
        old.outcome(),
        Outcome::Fenced,
        "the epoch survived the crash"
    );
    let page = read_page(&c, vol, 1, 0, 3, 3).await;
    assert_eq!(entries(&page), vec![kv("c", "3")]);
}

#[tokio::test]
async fn lagging_segment_copies_from_peers_after_their_log_is_collected() {
    let _serial = serial().await;
    let mut c = start_cluster().await;
    let vol = 6;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    let records = three_records(1);
    for slot in 0..6 {
        append(&c, vol, slot, 1, vec![records[0].clone()], 0, 0).await;
    }
    // Node 6 (slot 5) is down while the rest of the log is written and made durable.
    c.kill(6);
    for slot in 0..5 {
        let reply = append(&c, vol, slot, 1, records[1..].to_vec(), 3, 3).await;
        assert_eq!((reply.outcome(), reply.scl), (Outcome::Ok, 3));
    }
    // Five members materialize to 3: a write quorum has, so they collect their logs.
    for slot in 0..5 {
        wait_status(
            &c,
            vol,
            slot,
            Duration::from_secs(30),
            "materialized and collected",
            |s| s.materialized_lsn == 3 && s.log_start_lsn == 0,
        )
        .await;
    }
    // Node 6 comes back: the records it misses are in no peer's log any more, so it copies.
    c.start_node(6);
    let s = wait_status(
        &c,
        vol,
        5,
        Duration::from_secs(30),
        "slot 5 copied from a peer",
        |s| s.materialized_lsn == 3 && s.scl >= 3 && s.readable_lsn == 3,
    )
    .await;
    assert_eq!(s.epoch, 1);
    let page = read_page(&c, vol, 5, 0, 0, 0).await;
    assert_eq!((page.outcome(), page.read_lsn), (Outcome::Ok, 3));
    assert_eq!(entries(&page), vec![kv("c", "3")]);
    assert_eq!(
        entries(&read_page(&c, vol, 5, 4, 3, 3).await),
        vec![kv("b", "2")]
    );
}

#[tokio::test]
async fn corrupt_page_is_never_served_and_is_copied_again() {
    let _serial = serial().await;
    let mut c = start_cluster().await;
    let vol = 7;
    fence_all(&c, vol, 1, vec![truncation(1, 0)]).await;
    for slot in 0..6 {
        append(&c, vol, slot, 1, three_records(1), 3, 3).await;
    }
    for slot in 0..6 {
        wait_status(
            &c,
            vol,
            slot,
            Duration::from_secs(30),
            "materialized and collected",
            |s| s.materialized_lsn == 3 && s.log_start_lsn == 0,
        )
        .await;
    }

    // Flip bytes of page 0's image on node 4 (slot 3) while it is down.
    c.kill(4);
    {
        let db = open_node_db(&c, 4);
        let cf = db.cf_handle("segments").expect("segments column family");
        let key = page_row_key(vol, 3, 0);
        let mut value = db.get_cf(&cf, &key).unwrap().expect("page 0 is on disk");
        let at = value.len() / 2;
        value[at] ^= 0xFF;
        db.put_cf(&cf, &key, &value).unwrap();
        db.flush_wal(true).unwrap();
    }
    c.start_node(4);

    // Node 4 never serves the bad image; it copies the segment again from a peer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut req = tonic::Request::new(ReadPageRequest {
            cluster: CLUSTER.into(),
            segment: segment(vol, 3),
            page: 0,
            read_lsn: 3,
            pg_tail: 3,
            min_read_lsn: 0,
        });
        req.set_timeout(Duration::from_secs(2));
        if let Ok(reply) = client(&c, 3).read_page(req).await {
            let reply = reply.into_inner();
            if reply.outcome() == Outcome::Ok {
                assert_eq!(
                    entries(&reply),
                    vec![kv("c", "3")],
                    "node 4 served a bad page"
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "page 0 not refilled: {:?}",
            status(&c, vol, 3).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        c.log_of(4).contains("a page is corrupt"),
        "the corruption was not reported in the node's log"
    );
}
