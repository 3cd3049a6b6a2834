//! The `quorum` workload: Aurora-style quorum storage (docs/quorum-storage.md) through its
//! first user, the page-based key-value database (`stratus_client::quorum::Db`).
//!
//! One writer per volume is the design, so the harness holds one [`Db`] that every client
//! shares; clients put and get register keys (values unique in the run), and multi-put
//! fresh groups of 2–4 keys (`<prefix>/g<N>/<i>`, one value for the whole group, one
//! mini-transaction) and read groups back key by key. Every few seconds the workload
//! **crashes the writer**: operations in flight are abandoned where they stand (writes
//! become `info`), the writer is dropped without closing, and a new one opens the volume,
//! which fences the old epoch and recovers (truncating any half-written mini-transaction).
//! The nemesis meanwhile kills, pauses and partitions nodes, i.e. segments.
//!
//! Reads go through the current writer (at its VDL), so they are linearizable; a replica's
//! reads are not, and are left to the integration tests. After the faults are healed, a
//! fresh writer reads every key once.
//!
//! Checking ([`crate::checker::atomic::check_quorum`]): every key is a linearizable register,
//! so an acknowledged commit is never lost and never read stale; and no group is seen in
//! part (a key seen written, another of its keys later absent).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stratus_client::quorum::{Db, QuorumError, WriterOptions};
use stratus_client::ClientConfig;
use tokio::sync::{watch, RwLock};
use tokio::time::Instant;

use crate::checker::atomic::{check_quorum, QuorumReport};
use crate::checker::linearizable::CheckOptions;
use crate::checker::CheckError;
use crate::history::{History, Op, OpResult, Outcome, ProcessId, Value};
use crate::run::request::ClientContext;
use crate::run::workload_register::{decode, FINAL_READER};

/// How long a client waits for a writer to be open before it gives up on an operation.
const WRITER_WAIT: Duration = Duration::from_secs(30);

/// The writer every client shares, replaced when the workload crashes it.
struct WriterSlot {
    db: RwLock<Option<Arc<Db>>>,
    /// Bumped at every crash: operations started on an older writer are abandoned.
    generation: watch::Sender<u64>,
}

/// Shared by every client of one run.
pub struct QuorumWorkload {
    volume: String,
    prefix: String,
    keys: usize,
    crash_interval: Duration,
    slot: WriterSlot,
    next_value: AtomicU64,
    next_group: AtomicU64,
    /// Keys of each multi-put group, by group number.
    group_sizes: Mutex<HashMap<u64, usize>>,
    /// Writers opened (the first included).
    opened: AtomicU64,
}

/// How one operation ended, before it is recorded.
enum Ended<T> {
    Done(T),
    Failed(QuorumError),
    /// The writer crashed under it (or no writer could be had): abandoned mid-flight.
    Abandoned,
}

impl QuorumWorkload {
    pub fn new(volume: String, prefix: String, keys: usize, crash_interval: Duration) -> Arc<Self> {
        let (generation, _) = watch::channel(0);
        Arc::new(QuorumWorkload {
            volume,
            prefix,
            keys: keys.max(1),
            crash_interval,
            slot: WriterSlot {
                db: RwLock::new(None),
                generation,
            },
            next_value: AtomicU64::new(1),
            next_group: AtomicU64::new(0),
            group_sizes: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
        })
    }

    pub fn volume(&self) -> &str {
        &self.volume
    }

    /// Writers opened so far (each a recovery).
    pub fn writers_opened(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }

    fn options(op_timeout: Duration) -> WriterOptions {
        WriterOptions {
            commit_timeout: op_timeout,
            read_timeout: op_timeout,
            ..WriterOptions::default()
        }
    }

    async fn open(&self, ctx: &ClientContext, deadline: Instant) -> Result<Arc<Db>, String> {
        let config = ClientConfig::new(ctx.endpoints.clone()).with_call_timeout(ctx.op_timeout);
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match Db::open(config.clone(), &self.volume, Self::options(ctx.op_timeout)).await {
                Ok(db) => {
                    self.opened.fetch_add(1, Ordering::SeqCst);
                    return Ok(Arc::new(db));
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("could not open volume {}: {last}", self.volume))
    }

    /// Opens the first writer (creating the volume).
    pub async fn setup(&self, ctx: &ClientContext, deadline: Instant) -> Result<(), String> {
        let db = self.open(ctx, deadline).await?;
        *self.slot.db.write().await = Some(db);
        Ok(())
    }

    /// Crashes the writer every `crash_interval` until `stop`: abandon what is in flight,
    /// drop the writer unclosed, open a new one (recovery).
    pub async fn crasher(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x5eed_c4a5);
        loop {
            let jitter = rng.gen_range(0..=self.crash_interval.as_millis() as u64 / 2);
            let at = Instant::now() + self.crash_interval + Duration::from_millis(jitter);
            if at >= stop {
                return Ok(());
            }
            tokio::time::sleep_until(at).await;
            {
                let mut db = self.slot.db.write().await;
                self.slot.generation.send_modify(|g| *g += 1);
                // Dropping the last handle aborts the writer's senders mid-batch.
                db.take();
            }
            let reopened = self
                .open(&ctx, stop.max(Instant::now() + WRITER_WAIT))
                .await?;
            *self.slot.db.write().await = Some(reopened);
        }
    }

    /// Runs `op` on the current writer; abandons it if the writer crashes meanwhile.
    async fn on_writer<T, F, Fut>(&self, op: F) -> Ended<T>
    where
        F: FnOnce(Arc<Db>) -> Fut,
        Fut: std::future::Future<Output = Result<T, QuorumError>>,
    {
        let mut generation = self.slot.generation.subscribe();
        let wait_until = Instant::now() + WRITER_WAIT;
        let db = loop {
            generation.borrow_and_update();
            if let Some(db) = self.slot.db.read().await.clone() {
                break db;
            }
            if Instant::now() >= wait_until {
                return Ended::Abandoned;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let started = *generation.borrow();
        let crashed = async {
            let _ = generation.wait_for(|g| *g != started).await;
        };
        tokio::select! {
            result = op(db) => match result {
                Ok(value) => Ended::Done(value),
                Err(e) => Ended::Failed(e),
            },
            _ = crashed => Ended::Abandoned,
        }
    }

    fn register_key(&self, rng: &mut impl Rng) -> String {
        format!("{}/r{}", self.prefix, rng.gen_range(0..self.keys))
    }

    fn group_keys(&self, group: u64, size: usize) -> Vec<String> {
        (0..size)
            .map(|i| format!("{}/g{group}/{i}", self.prefix))
            .collect()
    }

    /// One client: random operations until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(ctx.index as u64 * 7919));
        let mut incarnation = 0u64;
        while Instant::now() < stop {
            let process = ctx.process_id(incarnation);
            let outcome = match rng.gen_range(0..20) {
                0..=7 => {
                    let key = self.register_key(&mut rng);
                    let value = self.next_value.fetch_add(1, Ordering::SeqCst);
                    self.put(&ctx, process, &key, value).await
                }
                8..=13 => {
                    let key = self.register_key(&mut rng);
                    self.get(&ctx, process, &key).await
                }
                14..=16 => {
                    let size = rng.gen_range(2..=4);
                    self.mput(&ctx, process, size).await
                }
                _ => match self.next_group.load(Ordering::SeqCst) {
                    0 => continue,
                    groups => {
                        let group = rng.gen_range(0..groups);
                        self.read_group(&ctx, process, group).await
                    }
                },
            };
            if outcome == Outcome::Info {
                incarnation += 1;
            }
        }
        Ok(())
    }

    async fn put(
        &self,
        ctx: &ClientContext,
        process: ProcessId,
        key: &str,
        value: Value,
    ) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process, key, Op::Write(value));
        let text = value.to_string();
        let outcome = write_outcome(
            self.on_writer(|db| async move { db.put(key.as_bytes(), text.as_bytes()).await })
                .await,
        );
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    async fn get(&self, ctx: &ClientContext, process: ProcessId, key: &str) -> Outcome {
        let id = ctx.recorder.invoke_keyed(process, key, Op::Read);
        let outcome = read_outcome(
            self.on_writer(|db| async move { db.get(key.as_bytes()).await })
                .await,
        );
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// A multi-put of a fresh group: one keyed write per key, all with the one outcome.
    async fn mput(&self, ctx: &ClientContext, process: ProcessId, size: usize) -> Outcome {
        let group = self.next_group.fetch_add(1, Ordering::SeqCst);
        self.group_sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group, size);
        let value = self.next_value.fetch_add(1, Ordering::SeqCst);
        let keys = self.group_keys(group, size);
        let ids: Vec<_> = keys
            .iter()
            .map(|key| {
                ctx.recorder
                    .invoke_keyed(process, key.as_str(), Op::Write(value))
            })
            .collect();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = keys
            .iter()
            .map(|key| (key.as_bytes().to_vec(), value.to_string().into_bytes()))
            .collect();
        let outcome = write_outcome(
            self.on_writer(|db| async move { db.mput(&pairs).await })
                .await,
        );
        for id in ids {
            let _ = ctx.recorder.complete(id, outcome.clone());
        }
        outcome
    }

    /// Reads a group's keys one after the other (stops at the first that is not `ok`).
    async fn read_group(&self, ctx: &ClientContext, process: ProcessId, group: u64) -> Outcome {
        let size = self
            .group_sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .copied()
            .unwrap_or(0);
        let mut last = Outcome::Ok(OpResult::Read(None));
        for key in self.group_keys(group, size) {
            last = self.get(ctx, process, &key).await;
            if !matches!(last, Outcome::Ok(_)) {
                break;
            }
        }
        last
    }

    /// After healing: a fresh writer (one more recovery) reads every key the run touched.
    pub async fn final_reads(&self, ctx: &ClientContext, deadline: Instant) -> Result<(), String> {
        {
            let mut db = self.slot.db.write().await;
            self.slot.generation.send_modify(|g| *g += 1);
            db.take();
        }
        let db = self.open(ctx, deadline).await?;
        let mut keys: Vec<String> = ctx
            .recorder
            .history()
            .keys()
            .into_iter()
            .map(str::to_string)
            .collect();
        keys.sort();
        for key in keys {
            let id = ctx
                .recorder
                .invoke_keyed(FINAL_READER, key.as_str(), Op::Read);
            let outcome = match db.get(key.as_bytes()).await {
                Ok(found) => Outcome::Ok(OpResult::Read(found.map(|b| decode(&b)))),
                Err(_) => Outcome::Fail,
            };
            let _ = ctx.recorder.complete(id, outcome);
        }
        if let Some(db) = Arc::into_inner(db) {
            let _ = db.close().await;
        }
        Ok(())
    }
}

fn write_outcome<T>(ended: Ended<T>) -> Outcome {
    match ended {
        Ended::Done(_) => Outcome::Ok(OpResult::Done),
        Ended::Failed(e) if e.is_outcome_unknown() => Outcome::Info,
        Ended::Failed(_) => Outcome::Fail,
        // Records may have left the process before the crash.
        Ended::Abandoned => Outcome::Info,
    }
}

fn read_outcome(ended: Ended<Option<Vec<u8>>>) -> Outcome {
    match ended {
        Ended::Done(found) => Outcome::Ok(OpResult::Read(found.map(|b| decode(&b)))),
        // A read changes nothing; the checkers give failed reads no weight.
        Ended::Failed(_) | Ended::Abandoned => Outcome::Fail,
    }
}

/// Checks every key's register for linearizability and every group for atomicity.
pub fn check(history: &History) -> Result<QuorumReport, CheckError> {
    check_quorum(history, &CheckOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_are_what_the_checker_groups() {
        let workload =
            QuorumWorkload::new("v".into(), "run/quorum".into(), 3, Duration::from_secs(5));
        let keys = workload.group_keys(7, 3);
        assert_eq!(
            keys,
            ["run/quorum/g7/0", "run/quorum/g7/1", "run/quorum/g7/2"]
        );
        for key in &keys {
            assert_eq!(crate::checker::atomic::group_of(key), Some("run/quorum/g7"));
        }
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            crate::checker::atomic::group_of(&workload.register_key(&mut rng)),
            None
        );
    }

    #[test]
    fn abandoned_writes_are_info_and_reads_fail() {
        assert_eq!(write_outcome::<u64>(Ended::Abandoned), Outcome::Info);
        assert_eq!(
            write_outcome::<u64>(Ended::Failed(QuorumError::Unavailable("x".into()))),
            Outcome::Fail
        );
        assert_eq!(
            write_outcome::<u64>(Ended::Failed(QuorumError::OutcomeUnknown("x".into()))),
            Outcome::Info
        );
        assert_eq!(read_outcome(Ended::Abandoned), Outcome::Fail);
        assert_eq!(
            read_outcome(Ended::Done(Some(b"5".to_vec()))),
            Outcome::Ok(OpResult::Read(Some(5)))
        );
    }
}
