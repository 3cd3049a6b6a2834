//! Quorum storage through a repair on a real 9-node cluster (three nodes per zone, so each
//! zone has a spare for every PG): a writer keeps its volume while a whole zone and one
//! more member are down, reads go on, writes stall (3 of 6 is below the write quorum), a
//! replacement moves the lost member's slot to its zone's spare, and writes resume on the
//! same writer once the new member holds the PG. When the dead nodes return, every member
//! of the new six holds every record: the PG is fully replicated again.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use stratus_client::quorum::{
    CatalogService, Db, SegmentPlace, Volume, VolumeCatalog, VolumeSpec, VolumeWriter,
    WriterOptions,
};
use stratus_client::ClientConfig;
use stratus_proto::quorum::volumes_client::VolumesClient;
use stratus_proto::quorum::{ReplaceSegmentRequest, SegmentId, SegmentStatusRequest};

const CLUSTER: &str = "test";
const VOLUME: &str = "repaired";

fn config(c: &TestCluster) -> ClientConfig {
    ClientConfig::new(c.live_endpoints()).with_call_timeout(Duration::from_secs(10))
}

fn options() -> WriterOptions {
    WriterOptions {
        commit_timeout: Duration::from_secs(3),
        open_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(20),
        segment_call_timeout: Duration::from_secs(1),
        ..WriterOptions::default()
    }
}

async fn catalog(c: &TestCluster) -> VolumeCatalog {
    VolumeCatalog::connect(config(c)).await.unwrap()
}

async fn describe(c: &TestCluster) -> Volume {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match catalog(c).await.describe(VOLUME).await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("describe: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("describe {VOLUME}: {e}"),
        }
    }
}

async fn scl_of(place: &SegmentPlace, volume_id: u64) -> Option<u64> {
    let mut client = stratus_proto::quorum::segments_client::SegmentsClient::new(
        channel(&format!("http://{}", place.grpc_addr)).ok()?,
    );
    let mut request = tonic::Request::new(SegmentStatusRequest {
        cluster: CLUSTER.into(),
        segment: Some(SegmentId {
            volume_id,
            pg: 0,
            slot: place.slot,
        }),
    });
    request.set_timeout(Duration::from_secs(1));
    Some(client.segment_status(request).await.ok()?.into_inner().scl)
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("v{i}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_resume_after_repair_and_the_pg_ends_fully_replicated() {
    let _serial = serial().await;
    std::env::set_var("STRATUS_QUORUM__REPLACE_AFTER_MS", "0");
    std::env::set_var("STRATUS_QUORUM__GOSSIP_INTERVAL_MS", "100");
    let mut cluster = TestCluster::start(Options {
        nodes: 9,
        data_groups: 3,
        ..Options::default()
    });
    cluster.wait_ready(Duration::from_secs(60)).await;
    let status = cluster.status().await.expect("cluster status");
    let meta_voters: BTreeSet<u64> = status
        .groups
        .iter()
        .find(|g| g.id == 0)
        .map(|g| g.voters.iter().copied().collect())
        .expect("the meta group");

    let deadline = Instant::now() + Duration::from_secs(30);
    let volume = loop {
        let spec = VolumeSpec {
            pg_count: 1,
            pages_per_pg: 16,
        };
        match catalog(&cluster).await.ensure(VOLUME, spec).await {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("create: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("create {VOLUME}: {e}"),
        }
    };
    let writer = VolumeWriter::open(config(&cluster), VOLUME, options())
        .await
        .expect("open the writer");
    let db = Db::from_writer(writer);
    for i in 0..30 {
        db.put(&key(i), &value(i))
            .await
            .expect("put before the loss");
    }

    // Lose a whole zone and one more member elsewhere that is not a meta voter (the
    // catalog must stay up to run the repair): 3 of the PG's 6 members are left.
    let pg = volume.pgs[0].clone();
    let lost_zone = pg.members[0].zone.clone();
    let extra = pg
        .members
        .iter()
        .find(|m| m.zone != lost_zone && !meta_voters.contains(&m.node_id))
        .cloned()
        .expect("a member outside the lost zone that is not a meta voter");
    let zone_nodes: Vec<u64> = (1..=9u64)
        .filter(|id| cluster.node(*id).zone == lost_zone)
        .collect();
    for id in &zone_nodes {
        cluster.kill(*id);
    }
    cluster.kill(extra.node_id);
    let members: BTreeSet<u64> = pg.members.iter().map(|m| m.node_id).collect();
    let spare = (1..=9u64)
        .find(|id| cluster.node(*id).zone == extra.zone && !members.contains(id))
        .expect("a spare in the extra member's zone");

    // Reads continue on 3 of 6.
    for i in 0..30 {
        assert_eq!(
            db.get(&key(i))
                .await
                .expect("read with a zone and a node down"),
            Some(value(i)),
            "key {i}"
        );
    }
    // Writes cannot be durable: the commit's outcome is unknown (its records wait in the
    // writer's queues and may still land after the repair).
    match db.put(b"during", b"outage").await {
        Err(e) => assert!(e.is_outcome_unknown(), "unexpected error {e}"),
        Ok(lsn) => panic!("a commit was acknowledged by 3 of 6 segments (lsn {lsn})"),
    }

    // Repair: the extra member's slot moves to its zone's spare.
    let live = cluster.live_endpoints();
    let mut volumes = VolumesClient::new(channel(&live[0]).unwrap());
    volumes
        .replace_segment(ReplaceSegmentRequest {
            cluster: CLUSTER.into(),
            name: VOLUME.into(),
            pg: 0,
            slot: extra.slot,
            new_node: 0,
        })
        .await
        .expect("start the replacement");
    let deadline = Instant::now() + Duration::from_secs(60);
    let repaired = loop {
        let v = describe(&cluster).await;
        let m = v.pgs[0].clone();
        if m.next_members.is_empty() && m.members[extra.slot as usize].node_id == spare {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the replacement did not finish: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(repaired.membership_epoch, pg.membership_epoch + 2);

    // Writes resume on the same writer: it learns the new six from a segment that
    // answers STALE_MEMBERSHIP and counts the spare's acknowledgements.
    let deadline = Instant::now() + Duration::from_secs(60);
    let last_lsn = loop {
        match db.put(b"after", b"repair").await {
            Ok(lsn) => break lsn,
            Err(e) if e.is_outcome_unknown() && Instant::now() < deadline => {
                eprintln!("put after the repair: {e}; retrying");
            }
            Err(e) => panic!("writes did not resume after the repair: {e}"),
        }
    };
    for i in 0..30 {
        assert_eq!(db.get(&key(i)).await.unwrap(), Some(value(i)), "key {i}");
    }
    assert_eq!(db.get(b"after").await.unwrap(), Some(b"repair".to_vec()));

    // The dead come back; every member of the new six ends up holding every record.
    for id in zone_nodes.iter().copied().chain([extra.node_id]) {
        cluster.start_node(id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut behind = Vec::new();
        for place in &repaired.members {
            match scl_of(place, volume.volume_id).await {
                Some(scl) if scl >= last_lsn => {}
                other => behind.push((place.node_id, other)),
            }
        }
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members still behind lsn {last_lsn}: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new writer's recovery sees every acknowledged commit.
    drop(db);
    let db = Db::from_writer(
        VolumeWriter::open(config(&cluster), VOLUME, options())
            .await
            .expect("reopen after the repair"),
    );
    for i in 0..30 {
        assert_eq!(db.get(&key(i)).await.unwrap(), Some(value(i)), "key {i}");
    }
    assert_eq!(db.get(b"after").await.unwrap(), Some(b"repair".to_vec()));
}
