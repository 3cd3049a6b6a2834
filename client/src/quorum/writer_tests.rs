//! The writer and recovery against in-memory segments (`super::super::fake`).

use std::sync::Arc;
use std::time::Duration;

use super::super::fake::{FakeCluster, FakeTransport, Fault};
use super::super::page::lookup;
use super::*;

fn options() -> WriterOptions {
    WriterOptions {
        commit_timeout: Duration::from_secs(5),
        open_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        heartbeat: Duration::from_millis(10),
        ..WriterOptions::default()
    }
}

async fn open(cluster: &Arc<FakeCluster>, transport: &Arc<FakeTransport>) -> VolumeWriter {
    VolumeWriter::open_with(cluster.catalog(), transport.clone(), "v", options())
        .await
        .unwrap()
}

fn put(page: u64, key: &str, value: &str) -> MiniTransaction {
    let mut mtx = MiniTransaction::new();
    mtx.push(
        page,
        vec![PageOp::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
    );
    mtx
}

/// One mini-transaction putting `value` under `k0` on page 0 and `k1` on page 1 (two PGs
/// when the volume has two).
fn put_pair(k0: &str, k1: &str, value: &str) -> MiniTransaction {
    let mut mtx = put(0, k0, value);
    mtx.push(
        1,
        vec![PageOp::Put {
            key: k1.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
    );
    mtx
}

async fn value(w: &VolumeWriter, page: u64, key: &str) -> Option<String> {
    let entries = w.read_page(page).await.unwrap();
    lookup(&entries, key.as_bytes()).map(|v| String::from_utf8(v).unwrap())
}

#[tokio::test]
async fn commits_resolve_at_four_acks_with_two_segments_down() {
    let cluster = FakeCluster::new(2, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    assert_eq!(w.epoch(), 1);
    transport.set_fault(5, Some(Fault::Down));
    transport.set_fault(6, Some(Fault::Down));
    let a = w.commit(put(0, "a", "1")).await.unwrap();
    let b = w.commit(put(1, "b", "2")).await.unwrap();
    assert_eq!((a, b), (1, 2));
    assert!(w.vdl() >= 2);
    assert_eq!(value(&w, 0, "a").await.as_deref(), Some("1"));
    assert_eq!(value(&w, 1, "b").await.as_deref(), Some("2"));
    // Backlinks are per PG: the second record of PG 0 points at the first.
    let c = w.commit(put(2, "c", "3")).await.unwrap();
    let seg = cluster.segment(1, 0).unwrap();
    assert_eq!(seg.records[&c].prev_lsn, a);
    assert!(seg.records[&c].cpl);
    assert!(cluster
        .segment(5, 0)
        .is_none_or(|s| !s.records.contains_key(&c)));
}

#[tokio::test]
async fn a_slow_segment_does_not_block_commits() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    transport.set_fault(3, Some(Fault::Slow(Duration::from_secs(3600))));
    for i in 0..20 {
        w.commit(put(i % 4, &format!("k{i}"), "v")).await.unwrap();
    }
    assert_eq!(w.vdl(), 20);
}

#[tokio::test]
async fn three_acks_are_not_enough_and_the_commit_reports_outcome_unknown() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let mut opts = options();
    opts.commit_timeout = Duration::from_millis(300);
    let w = VolumeWriter::open_with(cluster.catalog(), transport.clone(), "v", opts)
        .await
        .unwrap();
    for node in 4..=6 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let err = w.commit(put(0, "a", "1")).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err}");
    // The record is on three segments; once a fourth answers it becomes durable.
    transport.set_fault(4, None);
    let next = w.commit(put(0, "b", "2")).await.unwrap();
    assert_eq!(next, 2);
}

#[tokio::test]
async fn lal_makes_commits_wait_and_reports_nothing_sent() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let mut opts = options();
    opts.lal = 1;
    opts.commit_timeout = Duration::from_millis(300);
    let w = VolumeWriter::open_with(cluster.catalog(), transport.clone(), "v", opts)
        .await
        .unwrap();
    for node in 3..=6 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let w = Arc::new(w);
    let first = {
        let w = w.clone();
        tokio::spawn(async move { w.commit(put(0, "a", "1")).await })
    };
    // Wait until the first commit holds the only LSN allowed.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cluster.segment(1, 0).is_none_or(|s| s.records.is_empty()) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = w.commit(put(1, "b", "2")).await.unwrap_err();
    assert!(
        matches!(err, QuorumError::Unavailable(_)) && !err.is_outcome_unknown(),
        "{err}"
    );
    assert!(first.await.unwrap().unwrap_err().is_outcome_unknown());
}

#[tokio::test]
async fn a_newer_writer_fences_the_old_one_and_its_pending_commits_fail() {
    let cluster = FakeCluster::new(1, 4);
    let old_transport = cluster.transport();
    let old = Arc::new(open(&cluster, &old_transport).await);
    old.commit(put(0, "a", "1")).await.unwrap();
    // The old writer reaches only nodes 5 and 6: its next commit stays pending.
    for node in 1..=4 {
        old_transport.set_fault(node, Some(Fault::Down));
    }
    let pending = {
        let old = old.clone();
        tokio::spawn(async move { old.commit(put(0, "b", "2")).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cluster.segment(5, 0).is_none_or(|s| s.records.len() < 2) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let new = open(&cluster, &cluster.transport()).await;
    assert_eq!(new.epoch(), 2);
    for node in 1..=4 {
        old_transport.set_fault(node, None);
    }
    let err = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            QuorumError::Fenced {
                epoch: 1,
                newer_epoch: 2,
                outcome_unknown: true
            }
        ),
        "{err}"
    );
    let err = old.commit(put(0, "c", "3")).await.unwrap_err();
    assert!(
        matches!(
            err,
            QuorumError::Fenced {
                outcome_unknown: false,
                ..
            }
        ),
        "{err}"
    );
    // The new writer sees the acknowledged commit; the unknown one was on two segments,
    // so recovery found it (it was in the union) and kept it whole.
    assert_eq!(value(&new, 0, "a").await.as_deref(), Some("1"));
    assert_eq!(value(&new, 0, "b").await.as_deref(), Some("2"));
    new.commit(put(0, "d", "4")).await.unwrap();
}

#[tokio::test]
async fn needs_fence_and_a_missing_segment_are_fenced_and_retried() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    w.commit(put(0, "a", "1")).await.unwrap();
    // Node 2 forgets its fence; node 3 loses its segment altogether.
    cluster.with_segment(2, 0, |s| {
        s.epoch = 0;
        s.history.clear();
    });
    cluster.wipe(3, 0);
    // Only nodes 1, 2, 3 and 4 answer: the commit needs both repaired segments.
    transport.set_fault(5, Some(Fault::Down));
    transport.set_fault(6, Some(Fault::Down));
    let lsn = w.commit(put(0, "b", "2")).await.unwrap();
    for node in [2, 3] {
        let s = cluster.segment(node, 0).unwrap();
        assert_eq!(s.epoch, 1);
        assert!(s.records.contains_key(&lsn));
    }
}

#[tokio::test]
async fn recovery_keeps_acknowledged_commits_and_voids_a_half_written_one() {
    let cluster = FakeCluster::new(2, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    let mtx = put_pair("x", "y", "1");
    w.commit(mtx).await.unwrap();
    // A second mini-transaction whose first record reaches PG 0's segments but whose
    // CPL (PG 1) reaches only node 1: then the writer crashes.
    for node in 2..=6 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let mtx = put_pair("x", "y", "2");
    let w = Arc::new(w);
    let stuck = {
        let w = w.clone();
        tokio::spawn(async move { w.commit(mtx).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cluster.segment(1, 1).is_none_or(|s| s.records.len() < 2) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stuck.abort();
    drop(w);
    // Node 1 is then lost: recovery sees PG 1 without the CPL, and PG 0's record 3 on
    // node 1 only as well.
    let recovering = cluster.transport();
    recovering.set_fault(1, Some(Fault::Down));
    let w2 = open(&cluster, &recovering).await;
    assert_eq!(w2.epoch(), 2);
    assert_eq!(w2.vdl(), 2);
    assert_eq!(value(&w2, 0, "x").await.as_deref(), Some("1"));
    assert_eq!(value(&w2, 1, "y").await.as_deref(), Some("1"));
    // The next writer numbers from VDL + 1 with the right backlink.
    let lsn = w2.commit(put(0, "z", "9")).await.unwrap();
    assert_eq!(lsn, 3);
    let s = cluster.segment(2, 0).unwrap();
    assert_eq!(s.records[&3].prev_lsn, 1);
    assert_eq!(s.records[&3].epoch, 2);
    // Node 1 comes back: the next fence drops its void records.
    recovering.set_fault(1, None);
    drop(w2);
    let w3 = open(&cluster, &cluster.transport()).await;
    assert_eq!(w3.vdl(), 3);
    assert!(!cluster.segment(1, 1).unwrap().records.contains_key(&4));
    assert_eq!(value(&w3, 1, "y").await.as_deref(), Some("1"));
    assert_eq!(value(&w3, 0, "z").await.as_deref(), Some("9"));
}

#[tokio::test]
async fn recovery_re_replicates_a_record_seen_on_one_segment() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    for node in 2..=6 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let w = Arc::new(w);
    let stuck = {
        let w = w.clone();
        tokio::spawn(async move { w.commit(put(0, "a", "1")).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cluster.segment(1, 0).is_none_or(|s| s.records.is_empty()) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stuck.abort();
    drop(w);
    let w2 = open(&cluster, &cluster.transport()).await;
    assert_eq!(w2.vdl(), 1);
    let holders = (1..=6)
        .filter(|n| {
            cluster
                .segment(*n, 0)
                .is_some_and(|s| s.records.contains_key(&1))
        })
        .count();
    assert!(holders >= 4, "only {holders} segments hold LSN 1");
    assert_eq!(value(&w2, 0, "a").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn recovery_needs_a_write_quorum_of_fences() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    for node in 1..=3 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let mut opts = options();
    opts.open_timeout = Duration::from_millis(300);
    let err = VolumeWriter::open_with(cluster.catalog(), transport, "v", opts)
        .await
        .unwrap_err();
    assert!(matches!(err, QuorumError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn close_tells_segments_the_final_vdl_and_replicas_read_it() {
    let cluster = FakeCluster::new(1, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    w.commit(put(0, "a", "1")).await.unwrap();
    w.commit(put(0, "a", "2")).await.unwrap();
    w.close().await.unwrap();
    for node in 1..=6 {
        assert_eq!(cluster.segment(node, 0).unwrap().known_vdl, 2);
    }
    let reader = super::super::reader::VolumeReader::open_with(
        cluster.catalog(),
        cluster.transport(),
        "v",
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let (point, entries) = reader.read_page(0).await.unwrap();
    assert_eq!(point, 2);
    assert_eq!(lookup(&entries, b"a"), Some(b"2".to_vec()));
    assert_eq!(reader.read_point(), 2);
}

#[tokio::test]
async fn invalid_mini_transactions_are_refused_before_anything_is_sent() {
    let cluster = FakeCluster::new(1, 4);
    let w = open(&cluster, &cluster.transport()).await;
    assert!(matches!(
        w.commit(MiniTransaction::new()).await,
        Err(QuorumError::InvalidArgument(_))
    ));
    assert!(matches!(
        w.commit(put(4, "a", "1")).await,
        Err(QuorumError::InvalidArgument(_))
    ));
    assert_eq!(w.vdl(), 0);
}

#[tokio::test]
async fn recovery_with_its_durable_point_at_the_floor_and_a_partial_mtx_above_it() {
    // The segments know VDL 2 (the floor); above it only the first record of a
    // two-record mini-transaction survives, so VDL stays at the floor.
    let cluster = FakeCluster::new(2, 4);
    let transport = cluster.transport();
    let w = open(&cluster, &transport).await;
    w.commit(put(0, "a", "1")).await.unwrap();
    w.commit(put(1, "b", "1")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (1..=6).any(|n| (0..2).any(|pg| cluster.segment(n, pg).is_none_or(|s| s.known_vdl < 2))) {
        assert!(
            std::time::Instant::now() < deadline,
            "heartbeats never told VDL 2"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for node in 2..=6 {
        transport.set_fault(node, Some(Fault::Down));
    }
    let mtx = put_pair("a", "b", "2");
    let w = Arc::new(w);
    let stuck = {
        let w = w.clone();
        tokio::spawn(async move { w.commit(mtx).await })
    };
    while cluster
        .segment(1, 1)
        .is_none_or(|s| !s.records.contains_key(&4))
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stuck.abort();
    drop(w);
    // The CPL is lost; record 3 (PG 0, not a CPL) is still on node 1.
    cluster.with_segment(1, 1, |s| {
        s.records.remove(&4);
    });
    let w = open(&cluster, &cluster.transport()).await;
    assert_eq!(w.epoch(), 2);
    assert_eq!(w.vdl(), 2);
    assert_eq!(value(&w, 0, "a").await.as_deref(), Some("1"));
    assert_eq!(value(&w, 1, "b").await.as_deref(), Some("1"));
    assert_eq!(w.commit(put(0, "c", "1")).await.unwrap(), 3);
}
