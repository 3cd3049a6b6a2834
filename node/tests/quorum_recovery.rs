//! Writer crashes at random points on a real 6-node cluster: a fault-injecting transport
//! lets a writer's mini-transactions reach only some segments (chosen per node and PG by a
//! seeded RNG), then the writer is dropped (its tasks stop at once, like a crash). A new
//! writer's recovery must show every acknowledged commit, and of every unacknowledged
//! multi-put either all keys or none.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use stratus_client::quorum::catalog::{PgMembership, SegmentPlace, Truncation};
use stratus_client::quorum::transport::{
    AppendArgs, AppendReply, FenceReply, PageReply, RecordsReply, SegmentStatus,
};
use stratus_client::quorum::{
    CatalogService, Db, GrpcTransport, SegmentId, SegmentTransport, TransportError, VolumeCatalog,
    VolumeSpec, VolumeWriter, WriterOptions,
};
use stratus_client::ClientConfig;

/// Passes calls to gRPC, except appends to (node, PG) pairs outside `allowed` once
/// restricted: those fail as if the node were unreachable (nothing delivered).
struct Faulty {
    inner: GrpcTransport,
    allowed: Mutex<Option<HashSet<(u64, u32)>>>,
    /// Appends with records delivered while restricted.
    delivered: AtomicUsize,
}

impl Faulty {
    fn restrict(&self, allowed: HashSet<(u64, u32)>) {
        *self.allowed.lock().unwrap() = Some(allowed);
    }
}

#[async_trait]
impl SegmentTransport for Faulty {
    async fn append(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        args: AppendArgs,
    ) -> Result<AppendReply, TransportError> {
        let restricted = {
            let allowed = self.allowed.lock().unwrap();
            match allowed.as_ref() {
                None => false,
                Some(set) if set.contains(&(place.node_id, segment.pg)) => true,
                Some(_) => {
                    return Err(TransportError::Unreachable(format!(
                        "cut: node {} PG {}",
                        place.node_id, segment.pg
                    )))
                }
            }
        };
        let has_records = !args.records.is_empty();
        let reply = self.inner.append(place, segment, args).await;
        if restricted && has_records && reply.is_ok() {
            self.delivered.fetch_add(1, Ordering::SeqCst);
        }
        reply
    }

    async fn fence(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        epoch: u64,
        history: &[Truncation],
        membership: &PgMembership,
    ) -> Result<FenceReply, TransportError> {
        self.inner
            .fence(place, segment, epoch, history, membership)
            .await
    }

    async fn status(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
    ) -> Result<SegmentStatus, TransportError> {
        self.inner.status(place, segment).await
    }

    async fn read_records(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        after_lsn: u64,
        up_to_lsn: u64,
        max_bytes: u64,
    ) -> Result<RecordsReply, TransportError> {
        self.inner
            .read_records(place, segment, after_lsn, up_to_lsn, max_bytes)
            .await
    }

    async fn read_page(
        &self,
        place: &SegmentPlace,
        segment: SegmentId,
        page: u64,
        read_lsn: u64,
        pg_tail: u64,
        min_read_lsn: u64,
    ) -> Result<PageReply, TransportError> {
        self.inner
            .read_page(place, segment, page, read_lsn, pg_tail, min_read_lsn)
            .await
    }
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

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn mput_pairs(seed: u64, kind: &str, i: usize, n: usize) -> Pairs {
    (0..n)
        .map(|j| {
            (
                format!("s{seed}-{kind}{i}-k{j}").into_bytes(),
                format!("v{seed}-{i}-{j}").into_bytes(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_crashing_at_random_points_loses_no_acknowledged_commit_and_no_half_mput() {
    let _serial = serial().await;
    let c = TestCluster::start(Options::default());
    c.wait_ready(Duration::from_secs(60)).await;
    let config = ClientConfig::new(c.live_endpoints()).with_call_timeout(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    let catalog = loop {
        match VolumeCatalog::connect(config.clone()).await {
            Ok(catalog) => match catalog
                .ensure(
                    "crash",
                    VolumeSpec {
                        pg_count: 4,
                        pages_per_pg: 16,
                    },
                )
                .await
            {
                Ok(_) => break catalog,
                Err(e) => assert!(Instant::now() < deadline, "create: {e}"),
            },
            Err(e) => assert!(Instant::now() < deadline, "connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let catalog = Arc::new(catalog);

    let mut acknowledged: Vec<Pairs> = Vec::new();
    let mut unknown: Vec<Pairs> = Vec::new();
    let mut kept_whole = 0;
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let transport = Arc::new(Faulty {
            inner: GrpcTransport::new(catalog.cluster_name(), Duration::from_secs(1)),
            allowed: Mutex::new(None),
            delivered: AtomicUsize::new(0),
        });
        let writer =
            VolumeWriter::open_with(catalog.clone(), transport.clone(), "crash", options())
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: open: {e}"));
        let db = Arc::new(Db::from_writer(writer));
        for i in 0..rng.gen_range(1..4) {
            let pairs = mput_pairs(seed, "a", i, rng.gen_range(1..8));
            db.mput(&pairs).await.unwrap();
            acknowledged.push(pairs);
        }
        // From now on each (node, PG) pair gets this writer's appends with probability 1/2.
        let allowed: HashSet<(u64, u32)> = (1..=6u64)
            .flat_map(|node| (0..4u32).map(move |pg| (node, pg)))
            .filter(|_| rng.gen_bool(0.5))
            .collect();
        transport.restrict(allowed);
        let mut in_flight = Vec::new();
        for i in 0..rng.gen_range(1..5) {
            let pairs = mput_pairs(seed, "u", i, rng.gen_range(2..9));
            let db = db.clone();
            let sent = pairs.clone();
            in_flight.push((pairs, tokio::spawn(async move { db.mput(&sent).await })));
        }
        // Crash once some records went out (or after a while if none could).
        let deadline = Instant::now() + Duration::from_secs(2);
        let extra = rng.gen_range(0..4);
        while transport.delivered.load(Ordering::SeqCst) <= extra && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for (pairs, task) in in_flight {
            if task.is_finished() {
                match task.await.unwrap() {
                    Ok(_) => acknowledged.push(pairs),
                    Err(_) => unknown.push(pairs),
                }
            } else {
                task.abort();
                unknown.push(pairs);
            }
        }
        drop(db);

        // A new writer recovers: every acknowledged mput whole, every other whole or absent.
        let db = Db::from_writer(
            VolumeWriter::open_with(
                catalog.clone(),
                Arc::new(GrpcTransport::new(
                    catalog.cluster_name(),
                    Duration::from_secs(1),
                )),
                "crash",
                options(),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: recovery: {e}")),
        );
        for pairs in &acknowledged {
            for (k, v) in pairs {
                assert_eq!(
                    db.get(k).await.unwrap().as_ref(),
                    Some(v),
                    "seed {seed}: acknowledged key {} lost",
                    String::from_utf8_lossy(k)
                );
            }
        }
        for pairs in &unknown {
            let mut present = 0;
            for (k, v) in pairs {
                if let Some(found) = db.get(k).await.unwrap() {
                    assert_eq!(&found, v);
                    present += 1;
                }
            }
            if present == pairs.len() {
                kept_whole += 1;
            }
            assert!(
                present == 0 || present == pairs.len(),
                "seed {seed}: {present} of {} keys of an unacknowledged mput are visible ({})",
                pairs.len(),
                String::from_utf8_lossy(&pairs[0].0)
            );
        }
        db.close().await.unwrap();
    }
    eprintln!(
        "{} acknowledged and {} unacknowledged mputs checked ({kept_whole} checks found an \
         unacknowledged mput whole, the rest found it absent)",
        acknowledged.len(),
        unknown.len()
    );
}
