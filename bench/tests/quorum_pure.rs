//! The pure parts of the quorum scenario: the flapping node's duty cycle, the choice of
//! the nodes to slow, the parsing of `perf stat` counts, and the round-trip probe.

use std::time::Duration;

use stratus_bench::cluster_procs::{node_config, pick_victims, DutyCycle, Victims};
use stratus_bench::quorum::{bench_key, loopback_rtt, parse_perf_counts, CommitKind, SyncCounts};
use stratus_proto::cluster::{ClusterStatus, GroupStatus, NodeStatus};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn duty_cycle_stops_first_then_runs() {
    let cycle = DutyCycle {
        stopped: ms(50),
        period: ms(200),
    };
    assert!(cycle.is_stopped_at(ms(0)));
    assert!(cycle.is_stopped_at(ms(49)));
    assert!(!cycle.is_stopped_at(ms(50)));
    assert!(!cycle.is_stopped_at(ms(199)));
    assert!(cycle.is_stopped_at(ms(200)));
    assert!(cycle.is_stopped_at(ms(1_010)));
    assert_eq!(cycle.next_change_after(ms(0)), Some(ms(50)));
    assert_eq!(cycle.next_change_after(ms(60)), Some(ms(140)));
    assert_eq!(cycle.next_change_after(ms(250)), Some(ms(150)));
    assert_eq!(cycle.stopped_fraction(), 0.25);
}

#[test]
fn duty_cycle_edges() {
    let always = DutyCycle {
        stopped: ms(1000),
        period: ms(1000),
    };
    assert!(always.is_stopped_at(ms(0)) && always.is_stopped_at(ms(123_456)));
    assert_eq!(always.next_change_after(ms(5)), None);
    assert_eq!(always.stopped_fraction(), 1.0);
    let never = DutyCycle {
        stopped: Duration::ZERO,
        period: ms(200),
    };
    assert!(!never.is_stopped_at(ms(0)));
    assert_eq!(never.next_change_after(ms(0)), None);
    let degenerate = DutyCycle {
        stopped: ms(10),
        period: Duration::ZERO,
    };
    assert!(!degenerate.is_stopped_at(ms(3)));
    assert_eq!(degenerate.stopped_fraction(), 0.0);
}

fn node(id: u64, zone: &str) -> NodeStatus {
    NodeStatus {
        id,
        zone: zone.into(),
        up: true,
        ..Default::default()
    }
}

fn group(id: u64, kind: &str, leader: u64) -> GroupStatus {
    GroupStatus {
        id,
        kind: kind.into(),
        leader,
        ..Default::default()
    }
}

#[test]
fn victims_avoid_the_meta_leader_and_prefer_data_leaders_in_two_zones() {
    let status = ClusterStatus {
        nodes: vec![
            node(1, "az-a"),
            node(2, "az-b"),
            node(3, "az-c"),
            node(4, "az-a"),
            node(5, "az-b"),
            node(6, "az-c"),
        ],
        groups: vec![
            group(0, "meta", 1),
            group(1, "data", 4),
            group(2, "data", 1),
            group(3, "data", 6),
        ],
        ..Default::default()
    };
    // Node 1 leads meta; 4 and 6 lead data groups; 4 has the lowest id; 6 is in another zone.
    assert_eq!(
        pick_victims(&status),
        Some(Victims {
            first: 4,
            second: Some(6)
        })
    );
    // No data leader among the candidates: lowest id that is not the meta leader.
    let quiet = ClusterStatus {
        groups: vec![group(0, "meta", 2)],
        ..status.clone()
    };
    assert_eq!(
        pick_victims(&quiet),
        Some(Victims {
            first: 1,
            second: Some(3)
        })
    );
    // One zone only: no second victim.
    let one_zone = ClusterStatus {
        nodes: vec![node(1, "az-a"), node(2, "az-a")],
        groups: vec![group(0, "meta", 1)],
        ..Default::default()
    };
    assert_eq!(
        pick_victims(&one_zone),
        Some(Victims {
            first: 2,
            second: None
        })
    );
    assert_eq!(pick_victims(&ClusterStatus::default()), None);
}

#[test]
fn perf_stat_csv_counts() {
    let text = "12,,syscalls:sys_enter_fsync,1000,100.00,,\n\
                3456,,syscalls:sys_enter_fdatasync,1000,100.00,,\n";
    assert_eq!(
        parse_perf_counts(text),
        Some(SyncCounts {
            fsync: 12,
            fdatasync: 3456
        })
    );
    assert_eq!(parse_perf_counts(text).map(|c| c.total()), Some(3468));
    // Not counted (no permission) or garbage: nothing.
    assert_eq!(
        parse_perf_counts("<not counted>,,syscalls:sys_enter_fsync,0,0.00,,\n"),
        None
    );
    assert_eq!(parse_perf_counts("Error: no access\n"), None);
}

#[test]
fn commit_kinds_and_keys() {
    assert_eq!(CommitKind::Put.keys(), 1);
    assert_eq!(CommitKind::Mput(4).keys(), 4);
    assert_eq!(CommitKind::Mput(0).keys(), 1);
    assert_eq!(CommitKind::Mput(4).bench_name(), "quorum_mput");
    assert_eq!(
        bench_key("bench/0000002a/", 255),
        b"bench/0000002a/00000000000000ff"
    );
}

#[test]
fn node_configs_name_the_zone_and_the_peers() {
    let text = node_config(
        2,
        "az-b",
        std::path::Path::new("/tmp/d"),
        "127.0.0.1:1",
        "127.0.0.1:2",
        6,
        "[[peers]]\nid = 1\n",
    );
    assert!(text.contains("node_id = 2\n"));
    assert!(text.contains("zone = \"az-b\""));
    assert!(text.contains("data_groups = 6"));
    assert!(text.ends_with("[[peers]]\nid = 1\n"));
}

#[tokio::test]
async fn loopback_round_trips_are_counted_and_bounded() {
    let samples = loopback_rtt(64, 50, Duration::from_secs(5)).await.unwrap();
    assert_eq!(samples.len(), 50);
    let none = loopback_rtt(64, 50, Duration::ZERO).await.unwrap();
    assert!(none.is_empty());
}
