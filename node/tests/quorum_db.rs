//! The quorum-storage writer library and its key-value database (`stratus_client::quorum`)
//! on a real 6-node cluster (one segment of each PG per node, two nodes per zone):
//! round trips, recovery by a new writer, a zone down for writes, a zone plus a node down
//! for reads, fencing of an old writer, and the `stratus db` / `stratus volume` CLI.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use stratus_client::quorum::{
    Db, DbReader, QuorumError, VolumeCatalog, VolumeSpec, VolumeWriter, WriterOptions,
};
use stratus_client::ClientConfig;

fn config(c: &TestCluster) -> ClientConfig {
    ClientConfig::new(c.live_endpoints()).with_call_timeout(Duration::from_secs(10))
}

fn options() -> WriterOptions {
    WriterOptions {
        commit_timeout: Duration::from_secs(10),
        open_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(15),
        segment_call_timeout: Duration::from_secs(1),
        ..WriterOptions::default()
    }
}

async fn start() -> TestCluster {
    let c = TestCluster::start(Options::default());
    c.wait_ready(Duration::from_secs(60)).await;
    c
}

/// Creates the volume (retrying while the catalog settles after startup).
async fn create_volume(c: &TestCluster, name: &str, pg_count: u32, pages_per_pg: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = async {
            let catalog = VolumeCatalog::connect(config(c)).await?;
            catalog
                .ensure(
                    name,
                    VolumeSpec {
                        pg_count,
                        pages_per_pg,
                    },
                )
                .await
        }
        .await;
        match result {
            Ok(volume) => {
                assert_eq!(volume.pgs.len(), pg_count as usize);
                return;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("create volume {name}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("create volume {name}: {e}"),
        }
    }
}

async fn open_db(c: &TestCluster, name: &str) -> Db {
    let writer = VolumeWriter::open(config(c), name, options())
        .await
        .unwrap_or_else(|e| panic!("open {name}: {e}"));
    Db::from_writer(writer)
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_del_mput_round_trip_and_a_new_writer_sees_every_commit() {
    let _serial = serial().await;
    let c = start().await;
    create_volume(&c, "kv", 4, 16).await;
    let db = open_db(&c, "kv").await;
    assert_eq!(db.writer().epoch(), 1);
    db.put(b"a", b"1").await.unwrap();
    db.put(b"b", b"2").await.unwrap();
    db.put(b"a", b"3").await.unwrap();
    db.del(b"b").await.unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..30)
        .map(|i| (b(&format!("m{i}")), b(&format!("v{i}"))))
        .collect();
    db.mput(&pairs).await.unwrap();
    assert_eq!(db.get(b"a").await.unwrap(), Some(b("3")));
    assert_eq!(db.get(b"b").await.unwrap(), None);
    assert_eq!(db.get(b"m17").await.unwrap(), Some(b("v17")));
    assert_eq!(db.get(b"nope").await.unwrap(), None);
    assert!(matches!(
        db.put(b"", b"x").await,
        Err(QuorumError::InvalidKey(_))
    ));
    assert!(matches!(
        db.put(b"k", &vec![0; 65 * 1024]).await,
        Err(QuorumError::ValueTooLarge { .. })
    ));
    let vdl = db.writer().vdl();
    db.close().await.unwrap();

    // A read replica sees the closed writer's last VDL.
    let reader = DbReader::open(config(&c), "kv", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(reader.get(b"a").await.unwrap(), Some(b("3")));
    assert_eq!(reader.get(b"m29").await.unwrap(), Some(b("v29")));
    assert_eq!(reader.get(b"b").await.unwrap(), None);
    assert!(reader.reader().read_point() >= vdl);

    // A new writer (recovery, epoch 2) sees every acknowledged commit and goes on.
    let db = open_db(&c, "kv").await;
    assert_eq!(db.writer().epoch(), 2);
    assert_eq!(db.writer().vdl(), vdl);
    assert_eq!(db.get(b"a").await.unwrap(), Some(b("3")));
    assert_eq!(db.get(b"b").await.unwrap(), None);
    for (k, v) in &pairs {
        assert_eq!(db.get(k).await.unwrap().as_ref(), Some(v));
    }
    let lsn = db.put(b"after", b"recovery").await.unwrap();
    assert_eq!(lsn, vdl + 1);
    assert_eq!(db.get(b"after").await.unwrap(), Some(b("recovery")));
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_zone_down_and_reads_a_zone_plus_a_node() {
    let _serial = serial().await;
    let mut c = start().await;
    create_volume(&c, "zones", 4, 16).await;
    let db = open_db(&c, "zones").await;
    db.put(b"before", b"1").await.unwrap();
    // Zone az-c is nodes 3 and 6.
    c.kill(3);
    c.kill(6);
    for i in 0..20 {
        db.put(format!("zone-down-{i}").as_bytes(), b"x")
            .await
            .unwrap();
    }
    db.mput(&[(b("m1"), b("a")), (b("m2"), b("b"))])
        .await
        .unwrap();
    assert_eq!(db.get(b"zone-down-7").await.unwrap(), Some(b("x")));
    let vdl = db.writer().vdl();
    drop(db);
    // A new writer can recover with the zone still down (4 segments of each PG).
    let db = open_db(&c, "zones").await;
    assert!(db.writer().vdl() >= vdl);
    db.put(b"second-writer", b"2").await.unwrap();
    let reader = DbReader::open(config(&c), "zones", Duration::from_secs(15))
        .await
        .unwrap();
    // One more node down: 3 segments of each PG are left, a read quorum.
    c.kill(2);
    assert_eq!(db.get(b"before").await.unwrap(), Some(b("1")));
    assert_eq!(db.get(b"second-writer").await.unwrap(), Some(b("2")));
    assert_eq!(db.get(b"m2").await.unwrap(), Some(b("b")));
    assert_eq!(reader.get(b"zone-down-19").await.unwrap(), Some(b("x")));
    // Writes cannot reach 4 of 6 now: the commit fails with its outcome unknown.
    let err = db.put(b"no-quorum", b"3").await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_writer_is_fenced_once_a_new_one_opens() {
    let _serial = serial().await;
    let c = start().await;
    create_volume(&c, "fence", 2, 8).await;
    let old = open_db(&c, "fence").await;
    old.put(b"k", b"old").await.unwrap();
    let new = open_db(&c, "fence").await;
    assert!(new.writer().epoch() > old.writer().epoch());
    let err = old.put(b"k", b"stale").await.unwrap_err();
    assert!(matches!(err, QuorumError::Fenced { .. }), "{err}");
    let err = old.put(b"k2", b"stale").await.unwrap_err();
    assert!(matches!(err, QuorumError::Fenced { .. }), "{err}");
    assert_eq!(new.get(b"k").await.unwrap(), Some(b("old")));
    new.put(b"k", b"new").await.unwrap();
    assert_eq!(new.get(b"k").await.unwrap(), Some(b("new")));
}

/// The `stratus` binary next to `stratusd` (build it with
/// `cargo build -p stratus-client --bin stratus`).
fn stratus_cli() -> PathBuf {
    let path = PathBuf::from(stratusd()).with_file_name("stratus");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p stratus-client --bin stratus` first",
        path.display()
    );
    path
}

fn run_cli(c: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(stratus_cli())
        .arg("--endpoint")
        .arg(c.live_endpoints().join(","))
        .arg("--timeout-ms")
        .arg("15000")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_puts_gets_mputs_and_deletes() {
    let _serial = serial().await;
    let c = start().await;
    // The catalog may still be settling right after startup: the first command retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, err) = run_cli(&c, &["db", "put", "hello", "world"]);
        if code == 0 {
            assert!(out.starts_with("ok: lsn "), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "db put: {code} {out} {err}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, out, err) = run_cli(&c, &["db", "get", "hello"]);
    assert_eq!((code, out.as_str()), (0, "world"), "{err}");
    let (code, out, err) = run_cli(&c, &["db", "mput", "a=1", "b=2", "c=x=y"]);
    assert_eq!(code, 0, "{out} {err}");
    let (code, out, _) = run_cli(&c, &["db", "get", "c", "--consistent"]);
    assert_eq!((code, out.as_str()), (0, "x=y"));
    let (code, out, _) = run_cli(&c, &["db", "get", "b"]);
    assert_eq!((code, out.as_str()), (0, "2"));
    let (code, _, err) = run_cli(&c, &["db", "del", "hello"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_cli(&c, &["db", "get", "hello"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("key not found"), "{err}");
    let (code, _, err) = run_cli(&c, &["db", "mput", "a=1", "a=2"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, err) = run_cli(&c, &["volume", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with("db ")), "{out}");
    let (code, out, err) = run_cli(&c, &["volume", "create", "cli-vol", "--pgs", "2"]);
    assert_eq!(code, 0, "{out} {err}");
    let (code, out, err) = run_cli(&c, &["volume", "describe", "cli-vol"]);
    assert_eq!(code, 0, "{err}");
    // Header plus 2 PGs of 6 members.
    assert_eq!(
        out.lines().filter(|l| l.contains("current")).count(),
        12,
        "{out}"
    );
    let (code, _, err) = run_cli(&c, &["volume", "create", "cli-vol"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run_cli(&c, &["volume", "delete", "cli-vol"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_cli(&c, &["volume", "describe", "cli-vol"]);
    assert_eq!(code, 3);
    assert!(err.contains("not found"), "{err}");
}
