//! Bad input to a node's quorum-storage services (`Segments`, `Volumes`) gets a clear gRPC
//! error, never a panic, and the node keeps serving: another cluster's requests, missing
//! ids, malformed memberships and histories, records that break the log's rules or fail
//! their CRC, ranges upside down, an oversized message, and unknown segments and volumes.

mod common;

use std::time::Duration;

use common::*;
use prost::Message;
use stratus_proto::quorum::segments_client::SegmentsClient;
use stratus_proto::quorum::volumes_client::VolumesClient;
use stratus_proto::quorum::Outcome;
use stratus_proto::quorum::*;
use tonic::transport::Channel;
use tonic::Code;

const CLUSTER: &str = "test";

fn membership(c: &TestCluster) -> PgMembership {
    PgMembership {
        pg: 0,
        membership_epoch: 1,
        members: (0..6u32)
            .map(|slot| {
                let node = c.node(u64::from(slot) + 1);
                SegmentPlace {
                    slot,
                    node_id: node.id,
                    zone: node.zone.to_string(),
                    grpc_addr: node.grpc.clone(),
                }
            })
            .collect(),
        next_members: Vec::new(),
    }
}

fn id(volume_id: u64) -> Option<SegmentId> {
    Some(SegmentId {
        volume_id,
        pg: 0,
        slot: 0,
    })
}

fn node1(c: &TestCluster) -> SegmentsClient<Channel> {
    SegmentsClient::new(channel(&format!("http://{}", c.node(1).grpc)).unwrap())
        .max_encoding_message_size(64 << 20)
}

fn sealed(mut r: LogRecord) -> LogRecord {
    r.crc32 = 0;
    r.crc32 = crc32fast::hash(&r.encode_to_vec());
    r
}

fn record(lsn: u64, prev_lsn: u64) -> LogRecord {
    sealed(LogRecord {
        lsn,
        prev_lsn,
        epoch: 1,
        pg: 0,
        page: 0,
        cpl: true,
        ops: vec![PageOp {
            op: Some(page_op::Op::Put(KeyValue {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            })),
        }],
        crc32: 0,
    })
}

fn append(volume_id: u64, records: Vec<LogRecord>) -> AppendRequest {
    AppendRequest {
        cluster: CLUSTER.into(),
        segment: id(volume_id),
        epoch: 1,
        membership_epoch: 1,
        vdl: 0,
        pg_tail: 0,
        records,
    }
}

fn code<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match result {
        Ok(reply) => panic!("accepted: {:?}", reply.into_inner()),
        Err(status) => {
            assert!(!status.message().is_empty(), "{status:?} says nothing");
            status.code()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_node_keeps_serving() {
    let _serial = serial().await;
    let cluster = TestCluster::start(Options::default());
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut seg = node1(&cluster);
    let volume = 4242;

    // Requests for another cluster, or with no segment id.
    let mut wrong = append(volume, vec![]);
    wrong.cluster = "other".into();
    assert_eq!(code(seg.append(wrong).await), Code::FailedPrecondition);
    let mut missing = append(volume, vec![]);
    missing.segment = None;
    assert_eq!(code(seg.append(missing).await), Code::InvalidArgument);
    // A segment nobody created.
    assert_eq!(
        code(seg.append(append(volume, vec![record(1, 0)])).await),
        Code::NotFound
    );

    // Fences with a membership that does not name this node in the slot, with none, and
    // with a history that gives one epoch two truncation points.
    let mut elsewhere = membership(&cluster);
    // Slot 0 on node 2, slot 1 on node 1.
    elsewhere.members[0].node_id = 2;
    elsewhere.members[1].node_id = 1;
    let fence = |membership: Option<PgMembership>, history: Vec<Truncation>| FenceRequest {
        cluster: CLUSTER.into(),
        segment: id(volume),
        epoch: 1,
        history,
        membership,
    };
    let one = |epoch, truncated_above| Truncation {
        epoch,
        truncated_above,
    };
    let foreign = seg
        .fence(fence(Some(elsewhere), vec![one(1, 0)]))
        .await
        .map(|r| r.into_inner().outcome);
    assert!(
        !matches!(foreign, Ok(o) if o == Outcome::Ok as i32),
        "a membership naming another node in slot 0 created a segment here: {foreign:?}"
    );
    let mut five = membership(&cluster);
    five.members.pop();
    assert_eq!(
        code(seg.fence(fence(Some(five), vec![one(1, 0)])).await),
        Code::InvalidArgument
    );
    let created = seg
        .fence(fence(Some(membership(&cluster)), vec![one(1, 0)]))
        .await
        .expect("a good fence")
        .into_inner();
    assert_eq!(created.outcome, Outcome::Ok as i32);
    assert_eq!(
        code(
            seg.fence(fence(
                Some(membership(&cluster)),
                vec![one(1, 0), one(1, 7)]
            ))
            .await
        ),
        Code::InvalidArgument
    );

    // Records that break the log's rules.
    let mut zero = record(0, 0);
    zero = sealed(zero);
    let mut backwards = record(3, 5);
    backwards = sealed(backwards);
    let mut other_pg = record(1, 0);
    other_pg.pg = 3;
    other_pg = sealed(other_pg);
    let mut future_epoch = record(1, 0);
    future_epoch.epoch = 9;
    future_epoch = sealed(future_epoch);
    let mut other_page = record(1, 0);
    other_page.page = 8;
    other_page = sealed(other_page);
    for (what, records) in [
        ("LSN 0", vec![zero]),
        ("the largest LSN", vec![sealed(record(u64::MAX, 1))]),
        ("a backlink not below its LSN", vec![backwards]),
        ("a record of another PG", vec![other_pg]),
        ("a record of a later epoch", vec![future_epoch]),
        ("one LSN twice, different", vec![record(1, 0), other_page]),
    ] {
        eprintln!("appending {what}");
        assert_eq!(
            code(seg.append(append(volume, records)).await),
            Code::InvalidArgument,
            "{what}"
        );
    }
    let mut torn = record(1, 0);
    torn.crc32 ^= 1;
    assert_eq!(
        code(seg.append(append(volume, vec![torn])).await),
        Code::DataLoss
    );

    // A good append still works after all that, and odd ranges are answered calmly.
    let ok = seg
        .append(append(volume, vec![record(1, 0)]))
        .await
        .expect("a good append")
        .into_inner();
    assert_eq!(ok.outcome, Outcome::Ok as i32);
    assert_eq!(ok.scl, 1);
    let upside_down = seg
        .read_records(ReadRecordsRequest {
            cluster: CLUSTER.into(),
            segment: id(volume),
            after_lsn: 9,
            up_to_lsn: 2,
            max_bytes: u64::MAX,
        })
        .await;
    match upside_down {
        Ok(reply) => assert!(reply.into_inner().records.is_empty()),
        Err(status) => assert_eq!(status.code(), Code::InvalidArgument),
    }

    // A message over the node's limit is refused by size, not read.
    let huge = LogRecord {
        ops: vec![PageOp {
            op: Some(page_op::Op::Put(KeyValue {
                key: b"k".to_vec(),
                value: vec![7u8; 40 << 20],
            })),
        }],
        ..record(2, 1)
    };
    let refused = code(seg.append(append(volume, vec![sealed(huge)])).await);
    assert!(
        matches!(
            refused,
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{refused:?}"
    );

    // The catalog refuses bad names and numbers.
    let mut volumes =
        VolumesClient::new(channel(&format!("http://{}", cluster.node(2).grpc)).unwrap());
    for (name, pg_count, pages_per_pg) in [
        ("Bad_Name", 1, 1),
        ("-dash", 1, 1),
        ("", 1, 1),
        ("ok-name", 65, 1),
        ("ok-name", 1, 70_000),
    ] {
        assert_eq!(
            code(
                volumes
                    .create_volume(CreateVolumeRequest {
                        cluster: CLUSTER.into(),
                        name: name.into(),
                        pg_count,
                        pages_per_pg,
                    })
                    .await
            ),
            Code::InvalidArgument,
            "{name} {pg_count} {pages_per_pg}"
        );
    }
    assert_eq!(
        code(
            volumes
                .describe_volume(DescribeVolumeRequest {
                    cluster: CLUSTER.into(),
                    name: "nobody".into(),
                })
                .await
        ),
        Code::NotFound
    );

    // Still serving: the segment answers, with what was appended.
    let status = seg
        .segment_status(SegmentStatusRequest {
            cluster: CLUSTER.into(),
            segment: id(volume),
        })
        .await
        .expect("status after bad input")
        .into_inner();
    assert_eq!(status.scl, 1);
    assert!(cluster.is_running(1));
}
