//! The volume catalog of quorum storage (issue 7) on real clusters: `stratus.quorum.Volumes`
//! over gRPC (create, describe, list, delete, epochs, truncation history, every error
//! code), the placement a client sees, and segment replacement by the catalog's repair
//! worker, asked for explicitly and started on its own after `quorum.replace_after_ms`
//! (set through `STRATUS_QUORUM__REPLACE_AFTER_MS`, which the `stratusd` children inherit).

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use common::*;
use prost::Message;
use stratus_proto::quorum::segments_client::SegmentsClient;
use stratus_proto::quorum::volumes_client::VolumesClient;
use stratus_proto::quorum::*;
use tonic::transport::Channel;
use tonic::Code;

const CLUSTER: &str = "test";

fn volumes(cluster: &TestCluster, id: u64) -> VolumesClient<Channel> {
    VolumesClient::new(channel(&format!("http://{}", cluster.node(id).grpc)).unwrap())
}

/// Run `call` until it answers something other than UNAVAILABLE (a meta leader being
/// elected), within 30 s.
async fn retry<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Err(s) if s.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.map(|r| r.into_inner()),
        }
    }
}

async fn create(
    c: &VolumesClient<Channel>,
    name: &str,
    pg_count: u32,
    pages_per_pg: u32,
) -> Result<VolumeInfo, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = CreateVolumeRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
            pg_count,
            pages_per_pg,
        };
        async move { c.create_volume(req).await }
    })
    .await
}

async fn describe(c: &VolumesClient<Channel>, name: &str) -> Result<VolumeInfo, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = DescribeVolumeRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
        };
        async move { c.describe_volume(req).await }
    })
    .await
}

async fn list(c: &VolumesClient<Channel>) -> Vec<String> {
    retry(|| {
        let mut c = c.clone();
        async move {
            c.list_volumes(ListVolumesRequest {
                cluster: CLUSTER.into(),
            })
            .await
        }
    })
    .await
    .unwrap()
    .volumes
    .into_iter()
    .map(|v| v.name)
    .collect()
}

async fn delete(
    c: &VolumesClient<Channel>,
    name: &str,
) -> Result<DeleteVolumeReply, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = DeleteVolumeRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
        };
        async move { c.delete_volume(req).await }
    })
    .await
}

async fn begin(c: &VolumesClient<Channel>, name: &str) -> Result<VolumeInfo, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = BeginRecoveryRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
        };
        async move { c.begin_recovery(req).await }
    })
    .await
}

async fn complete(
    c: &VolumesClient<Channel>,
    name: &str,
    epoch: u64,
    truncated_above: u64,
) -> Result<VolumeInfo, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = CompleteRecoveryRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
            epoch,
            truncated_above,
        };
        async move { c.complete_recovery(req).await }
    })
    .await
}

async fn replace(
    c: &VolumesClient<Channel>,
    name: &str,
    pg: u32,
    slot: u32,
    new_node: u64,
) -> Result<VolumeInfo, tonic::Status> {
    retry(|| {
        let mut c = c.clone();
        let req = ReplaceSegmentRequest {
            cluster: CLUSTER.into(),
            name: name.into(),
            pg,
            slot,
            new_node,
        };
        async move { c.replace_segment(req).await }
    })
    .await
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.unwrap_err().code()
}

/// Two slots per zone in zone order, six distinct nodes, addresses from the cluster.
fn assert_placed(cluster: &TestCluster, pg: &PgMembership) {
    assert_eq!(pg.members.len(), 6, "{pg:?}");
    let nodes: BTreeSet<u64> = pg.members.iter().map(|m| m.node_id).collect();
    assert_eq!(nodes.len(), 6, "distinct nodes: {pg:?}");
    for (i, m) in pg.members.iter().enumerate() {
        assert_eq!(m.slot, i as u32);
        let node = cluster.node(m.node_id);
        assert_eq!(m.zone, ZONES[i / 2], "slot {i} of {pg:?}");
        assert_eq!(m.zone, node.zone);
        assert_eq!(m.grpc_addr, node.grpc);
    }
}

fn start(nodes: usize, replace_after_ms: u64) -> TestCluster {
    std::env::set_var(
        "STRATUS_QUORUM__REPLACE_AFTER_MS",
        replace_after_ms.to_string(),
    );
    // The repair worker runs every two gossip intervals: 200 ms here.
    std::env::set_var("STRATUS_QUORUM__GOSSIP_INTERVAL_MS", "100");
    TestCluster::start(Options {
        nodes,
        data_groups: 3,
        ..Options::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalog_creates_describes_lists_and_deletes_volumes() {
    let _serial = serial().await;
    let cluster = start(6, 0);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let one = volumes(&cluster, 1);
    let four = volumes(&cluster, 4);

    let a = create(&one, "vol-a", 0, 0).await.unwrap();
    assert_eq!(
        (a.name.as_str(), a.pg_count, a.pages_per_pg),
        ("vol-a", 4, 256)
    );
    assert!(a.volume_id >= 1);
    assert_eq!((a.epoch, a.history.len()), (0, 0));
    assert!(a.created_ms > 0);
    assert_eq!(a.pgs.len(), 4);
    for (i, pg) in a.pgs.iter().enumerate() {
        assert_eq!((pg.pg, pg.membership_epoch), (i as u32, 1));
        assert!(pg.next_members.is_empty());
        // Six nodes in three zones: one segment of every PG on every node.
        assert_placed(&cluster, pg);
    }
    // Any node answers, with what the catalog holds.
    assert_eq!(describe(&four, "vol-a").await.unwrap(), a);

    let b = create(&four, "vol-b", 2, 16).await.unwrap();
    assert_eq!((b.pg_count, b.pages_per_pg, b.pgs.len()), (2, 16, 2));
    assert!(b.volume_id > a.volume_id);
    assert_eq!(list(&one).await, ["vol-a", "vol-b"]);

    // Errors.
    assert_eq!(code(create(&one, "vol-a", 1, 1).await), Code::AlreadyExists);
    for bad in ["", "Vol", "-a", "a-", "a_b", &"x".repeat(64)] {
        assert_eq!(
            code(create(&one, bad, 1, 1).await),
            Code::InvalidArgument,
            "{bad:?}"
        );
    }
    assert_eq!(code(create(&one, "c", 65, 1).await), Code::InvalidArgument);
    assert_eq!(
        code(create(&one, "c", 1, 65_537).await),
        Code::InvalidArgument
    );
    assert_eq!(code(describe(&one, "nope").await), Code::NotFound);
    assert_eq!(code(begin(&one, "nope").await), Code::NotFound);
    let mut other = one.clone();
    let wrong = other
        .describe_volume(DescribeVolumeRequest {
            cluster: "another".into(),
            name: "vol-a".into(),
        })
        .await;
    assert_eq!(code(wrong), Code::FailedPrecondition);

    // Delete: gone for readers, the name is free again, under a new id.
    delete(&one, "vol-b").await.unwrap();
    assert_eq!(code(describe(&four, "vol-b").await), Code::NotFound);
    assert_eq!(code(delete(&four, "vol-b").await), Code::NotFound);
    assert_eq!(list(&four).await, ["vol-a"]);
    let again = create(&one, "vol-b", 1, 0).await.unwrap();
    assert!(again.volume_id > b.volume_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn epochs_rise_and_only_the_current_writer_truncates() {
    let _serial = serial().await;
    let cluster = start(6, 0);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let c = volumes(&cluster, 2);
    create(&c, "db", 1, 0).await.unwrap();

    assert_eq!(begin(&c, "db").await.unwrap().epoch, 1);
    assert_eq!(begin(&volumes(&cluster, 5), "db").await.unwrap().epoch, 2);
    // The writer of epoch 1 was overtaken.
    assert_eq!(
        code(complete(&c, "db", 1, 10).await),
        Code::FailedPrecondition
    );
    let v = complete(&c, "db", 2, 10).await.unwrap();
    assert_eq!(
        v.history,
        [Truncation {
            epoch: 2,
            truncated_above: 10
        }]
    );
    // Once per epoch.
    assert_eq!(
        code(complete(&c, "db", 2, 12).await),
        Code::FailedPrecondition
    );
    assert_eq!(begin(&c, "db").await.unwrap().epoch, 3);
    let v = complete(&c, "db", 3, 15).await.unwrap();
    assert_eq!(v.history.len(), 2);
    assert_eq!(describe(&volumes(&cluster, 6), "db").await.unwrap(), v);

    // Replacements that cannot be: no free node in the zone (six nodes, six segments), a
    // node already in the PG, a PG or slot that does not exist, an unknown node.
    let pg = &v.pgs[0];
    assert_eq!(
        code(replace(&c, "db", 0, 0, 0).await),
        Code::FailedPrecondition
    );
    let member = pg.members[3].node_id;
    assert_eq!(
        code(replace(&c, "db", 0, 0, member).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(replace(&c, "db", 1, 0, 0).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(replace(&c, "db", 0, 6, 0).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(replace(&c, "db", 0, 0, 99).await),
        Code::InvalidArgument
    );
    assert_eq!(code(replace(&c, "nope", 0, 0, 0).await), Code::NotFound);
    // Nothing changed.
    assert_eq!(describe(&c, "db").await.unwrap().pgs[0].membership_epoch, 1);
}

fn segments(place: &SegmentPlace) -> SegmentsClient<Channel> {
    SegmentsClient::new(channel(&format!("http://{}", place.grpc_addr)).unwrap())
}

fn segment_id(volume_id: u64, slot: u32) -> Option<SegmentId> {
    Some(SegmentId {
        volume_id,
        pg: 0,
        slot,
    })
}

/// Fence PG 0's six segments at the volume's epoch and append three records to each,
/// with VDL 3, as a writer would.
async fn write_three_records(v: &VolumeInfo) {
    let pg = &v.pgs[0];
    let records: Vec<LogRecord> = (1..=3u64)
        .map(|lsn| {
            let mut r = LogRecord {
                lsn,
                prev_lsn: lsn - 1,
                epoch: v.epoch,
                pg: 0,
                page: 0,
                cpl: true,
                ops: vec![PageOp {
                    op: Some(page_op::Op::Put(KeyValue {
                        key: format!("k{lsn}").into_bytes(),
                        value: b"v".to_vec(),
                    })),
                }],
                crc32: 0,
            };
            r.crc32 = crc32fast::hash(&r.encode_to_vec());
            r
        })
        .collect();
    for place in &pg.members {
        let mut s = segments(place);
        let fenced = s
            .fence(FenceRequest {
                cluster: CLUSTER.into(),
                segment: segment_id(v.volume_id, place.slot),
                epoch: v.epoch,
                history: v.history.clone(),
                membership: Some(pg.clone()),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            fenced.outcome(),
            stratus_proto::quorum::Outcome::Ok,
            "fence of slot {}",
            place.slot
        );
        let appended = s
            .append(AppendRequest {
                cluster: CLUSTER.into(),
                segment: segment_id(v.volume_id, place.slot),
                epoch: v.epoch,
                membership_epoch: pg.membership_epoch,
                vdl: 3,
                pg_tail: 3,
                records: records.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            appended.outcome(),
            stratus_proto::quorum::Outcome::Ok,
            "append to slot {}",
            place.slot
        );
        assert_eq!(appended.scl, 3);
    }
}

async fn segment_status(place: &SegmentPlace, volume_id: u64) -> SegmentStatusReply {
    segments(place)
        .segment_status(SegmentStatusRequest {
            cluster: CLUSTER.into(),
            segment: segment_id(volume_id, place.slot),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Wait until PG `pg` of `name` has left its membership change with `node` in `slot`.
async fn wait_replaced(
    c: &VolumesClient<Channel>,
    name: &str,
    pg: u32,
    slot: usize,
    node: u64,
) -> PgMembership {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = describe(c, name).await.unwrap();
        let m = v.pgs[pg as usize].clone();
        if m.next_members.is_empty() && m.members[slot].node_id == node {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "PG {pg} of {name} did not finish its replacement: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_segment_is_replaced_on_a_spare_node_of_its_zone() {
    let _serial = serial().await;
    let mut cluster = start(9, 0);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let c = volumes(&cluster, 1);
    let v = create(&c, "vol", 1, 0).await.unwrap();
    let pg = &v.pgs[0];
    assert_placed(&cluster, pg);
    // Slot 2 is in az-b (nodes 2, 5, 8); the spare is the one not in the PG.
    let lost = pg.members[2].node_id;
    let in_pg: BTreeSet<u64> = pg.members.iter().map(|m| m.node_id).collect();
    let spare = [2, 5, 8].into_iter().find(|n| !in_pg.contains(n)).unwrap();
    let c = volumes(&cluster, if lost == 1 { 3 } else { 1 });
    // A writer of epoch 1 made three records durable on all six before the loss.
    assert_eq!(begin(&c, "vol").await.unwrap().epoch, 1);
    let v = complete(&c, "vol", 1, 0).await.unwrap();
    write_three_records(&v).await;
    cluster.kill(lost);

    let started = replace(&c, "vol", 0, 2, 0).await.unwrap();
    let m = &started.pgs[0];
    assert_eq!(m.membership_epoch, 2);
    assert_eq!(m.members[2].node_id, lost);
    assert_eq!(m.next_members[2].node_id, spare);
    assert_eq!(m.next_members[2].zone, "az-b");
    assert_eq!(m.next_members[2].grpc_addr, cluster.node(spare).grpc);
    // A second change of the same PG waits for this one.
    assert_eq!(
        code(replace(&c, "vol", 0, 4, 0).await),
        Code::FailedPrecondition
    );

    let done = wait_replaced(&c, "vol", 0, 2, spare).await;
    assert_eq!(done.membership_epoch, 3);
    // The change ended only once the new segment held what was durable when it began.
    let status = segment_status(&done.members[2], v.volume_id).await;
    assert!(status.scl >= 3, "{status:?}");
    assert!(status.membership_epoch >= 2, "{status:?}");
    let nodes: BTreeSet<u64> = done.members.iter().map(|m| m.node_id).collect();
    assert_eq!(nodes.len(), 6);
    assert!(!nodes.contains(&lost));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_node_s_segments_are_replaced_on_their_own() {
    let _serial = serial().await;
    let mut cluster = start(9, 3_000);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let c = volumes(&cluster, 1);
    let v = create(&c, "auto", 1, 0).await.unwrap();
    let pg = &v.pgs[0];
    // Slot 5 is in az-c (nodes 3, 6, 9).
    let lost = pg.members[5].node_id;
    let in_pg: BTreeSet<u64> = pg.members.iter().map(|m| m.node_id).collect();
    let spare = [3, 6, 9].into_iter().find(|n| !in_pg.contains(n)).unwrap();
    let c = volumes(&cluster, if lost == 1 { 2 } else { 1 });
    cluster.kill(lost);

    let done = wait_replaced(&c, "auto", 0, 5, spare).await;
    assert_eq!(done.membership_epoch, 3);
    assert_eq!(done.members[5].zone, "az-c");
    // The others stay where they were.
    for slot in 0..5 {
        assert_eq!(done.members[slot].node_id, pg.members[slot].node_id);
    }
}
