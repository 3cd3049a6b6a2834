//! Concurrent clients read, write and compare-and-set a few registers on a real cluster
//! while the leader of their groups is killed; the recorded history must be linearizable
//! (checked per key by stratus-jepsen's Wing–Gong–Lowe search). A write whose outcome is
//! unknown is recorded as such (`Info`), never as a success or a failure.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rand::Rng;
use stratus_jepsen::checker::linearizable::{check_keys, CheckOptions};
use stratus_jepsen::checker::Validity;
use stratus_jepsen::history::{Op, OpResult, Outcome as Recorded, ProcessId, Recorder};

const KEYS: [&str; 3] = ["reg-a", "reg-b", "reg-c"];

fn parse(value: Option<Vec<u8>>) -> Option<u64> {
    value.map(|v| {
        String::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("register values are decimal numbers")
    })
}

async fn run_process(p: u64, client: TestClient, recorder: Recorder, stop: Instant) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(p);
    let mut next = p * 1_000_000;
    let mut last_seen: Option<u64> = None;
    while Instant::now() < stop {
        let key = KEYS[rng.gen_range(0..KEYS.len())];
        next += 1;
        let value = next; // unique across processes: keeps the search cheap and sharp
        match rng.gen_range(0..3) {
            0 => {
                let id = recorder.invoke_keyed(ProcessId(p), key, Op::Read);
                let outcome = match client.get(key).await {
                    Outcome::Ok(v) => {
                        let v = parse(v);
                        last_seen = v;
                        Recorded::Ok(OpResult::Read(v))
                    }
                    Outcome::Fail(_) => Recorded::Fail,
                    Outcome::Unknown(_) => Recorded::Info,
                };
                recorder.complete(id, outcome).unwrap();
            }
            1 => {
                let id = recorder.invoke_keyed(ProcessId(p), key, Op::Write(value));
                let outcome = match client.put(key, value.to_string().as_bytes()).await {
                    Outcome::Ok(_) => Recorded::Ok(OpResult::Done),
                    Outcome::Fail(_) => Recorded::Fail,
                    Outcome::Unknown(_) => Recorded::Info,
                };
                recorder.complete(id, outcome).unwrap();
            }
            _ => {
                let expected = if rng.gen_bool(0.8) { last_seen } else { None };
                let id = recorder.invoke_keyed(
                    ProcessId(p),
                    key,
                    Op::Cas {
                        expected,
                        new: value,
                    },
                );
                let expected_bytes = expected.map(|v| v.to_string().into_bytes());
                let outcome = match client
                    .cas(
                        key,
                        expected_bytes.as_deref(),
                        Some(value.to_string().as_bytes()),
                    )
                    .await
                {
                    Outcome::Ok((succeeded, current)) => {
                        last_seen = if succeeded {
                            Some(value)
                        } else {
                            parse(current)
                        };
                        Recorded::Ok(OpResult::Cas(succeeded))
                    }
                    Outcome::Fail(_) => Recorded::Fail,
                    Outcome::Unknown(_) => Recorded::Info,
                };
                recorder.complete(id, outcome).unwrap();
            }
        }
    }
}

use rand::SeedableRng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_is_linearizable_through_a_leader_kill() {
    let _serial = serial().await;
    let mut c = TestCluster::start(Options::default());
    c.wait_ready(Duration::from_secs(60)).await;
    let recorder = Recorder::new();
    let stop = Instant::now() + Duration::from_secs(8);
    let processes: Vec<_> = (0..6u64)
        .map(|p| tokio::spawn(run_process(p, c.client(), recorder.clone(), stop)))
        .collect();

    // Kill the leader of the group holding the first register, mid-run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let group = 1 + stratus_node::cluster::routing::stable_hash(KEYS[0].as_bytes()) % 6;
    let victim = c.leader_of(group).await.expect("leader");
    c.kill(victim);

    for p in processes {
        p.await.unwrap();
    }
    let history = recorder.history();
    let ok_cas = history
        .ops()
        .iter()
        .filter(|o| matches!(o.outcome, Recorded::Ok(OpResult::Cas(true))))
        .count();
    let completed = history
        .ops()
        .iter()
        .filter(|o| matches!(o.outcome, Recorded::Ok(_)))
        .count();
    assert!(
        completed >= 100,
        "too few operations completed ({completed}) for the check to mean much"
    );
    assert!(
        ok_cas >= 5,
        "too few successful compare-and-sets ({ok_cas})"
    );

    let report = check_keys(&history, &CheckOptions::default()).unwrap();
    if report.validity() != Validity::Valid {
        let path = std::env::temp_dir().join("stratus-cas-history.jsonl");
        history.save(&path).unwrap();
        panic!(
            "not linearizable (history saved to {}):\n{report}",
            path.display()
        );
    }
}
